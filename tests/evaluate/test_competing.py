"""Competing-risks evaluation checked against scikit-survival (BMT, CGVHD, tied synthetic data) and loop references."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from sksurv.datasets import load_bmt, load_cgvhd
from sksurv.metrics import concordance_index_censored
from sksurv.nonparametric import cumulative_incidence_competing_risks

from meddl.errors import MedDLError
from meddl.evaluate.competing import aalen_johansen, aj_at, cause_c_index, competing_risk_metrics
from meddl.evaluate.survival import harrell_c

HORIZONS = np.array([2.0, 5.0, 10.0])
CAUSES = ["relapse", "death"]


def _competing(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exponential cause-specific hazards 0.04 e^x (cause 1) and 0.04 e^-x (cause 2), censoring Exp(0.05) and at 15.

    Returns time, event and the true CIF ``(n, 2, 3)`` at ``HORIZONS``:
    ``F_k(h | x) = lambda_k / lambda * (1 - exp(-lambda h))`` with ``lambda = lambda_1 + lambda_2``.
    """
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    hazards = np.stack([0.04 * np.exp(x), 0.04 * np.exp(-x)], axis=1)
    total = hazards.sum(axis=1)
    failure = rng.exponential(1.0 / total)
    cause = np.where(rng.random(n) < hazards[:, 0] / total, 1, 2)
    censoring = np.minimum(rng.exponential(20.0, size=n), 15.0)
    time = np.minimum(failure, censoring)
    event = np.where(failure <= censoring, cause, 0)
    cif = (hazards / total[:, None])[:, :, None] * (1.0 - np.exp(-total[:, None, None] * HORIZONS[None, None, :]))
    return time, event, cif


def _tied(n: int, seed: int, n_causes: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Integer times 1..12 (many ties between events of every cause and censorings), about 30% censored."""
    rng = np.random.default_rng(seed)
    time = rng.integers(1, 13, size=n).astype(np.float64)
    event = np.where(rng.random(n) < 0.3, 0, rng.integers(1, n_causes + 1, size=n))
    return time, event


def _loop_c(time: np.ndarray, event: np.ndarray, score: np.ndarray, cause: int) -> float:
    """The definition, pair by pair."""
    concordant = comparable = 0.0
    for i in range(time.size):
        if event[i] != cause:
            continue
        for j in range(time.size):
            later = time[j] > time[i]
            other_cause = event[j] > 0 and event[j] != cause
            censored_at_tie = time[j] == time[i] and event[j] == 0
            if not (later or other_cause or censored_at_tie):
                continue
            comparable += 1
            if abs(score[i] - score[j]) <= 1e-8:
                concordant += 0.5
            elif score[i] > score[j]:
                concordant += 1
    return concordant / comparable


@pytest.fixture(scope="module")
def synthetic() -> dict:
    time, event, cif = _competing(1500, seed=1)
    doubled = cif.copy()
    doubled[:, 0] = np.minimum(2.0 * cif[:, 0], 1.0 - cif[:, 1])  # kept a valid CIF (sum <= 1)
    return {
        "time": time,
        "event": event,
        "cif": cif,
        "true": competing_risk_metrics(time, event, cif, HORIZONS, CAUSES, n_bootstrap=100, seed=3),
        "doubled": competing_risk_metrics(time, event, doubled, HORIZONS, CAUSES, n_bootstrap=100, seed=3),
    }


# --------------------------------------------------------------------------- Aalen–Johansen


@pytest.mark.parametrize("loader", [load_bmt, load_cgvhd])
def test_aalen_johansen_matches_sksurv_on_real_competing_risks_data(loader) -> None:
    _, y = loader()
    event, time = y["status"].astype(int), y["ftime"].astype(float)
    n_causes = int(event.max())
    assert n_causes >= 2 and {0, 1, 2} <= set(event.tolist())  # censored rows and competing events
    # BMT has two events at time 0; times must be > 0 here, and a shift leaves the estimator unchanged
    shift = 0.5 if time.min() <= 0 else 0.0
    sk_time, sk_cif = cumulative_incidence_competing_risks(event, time)
    assert sk_cif.shape == (n_causes + 1, sk_time.size)  # row 0 is the total, rows 1..K the causes
    np.testing.assert_allclose(sk_cif[0], sk_cif[1:].sum(axis=0), atol=1e-12)

    times, cif = aalen_johansen(time + shift, event, n_causes)
    moves = np.diff(np.r_[0.0, sk_cif[0]]) > 0  # sksurv keeps censoring-only times too; ours only event times
    np.testing.assert_allclose(times - shift, sk_time[moves], rtol=0, atol=1e-12)
    np.testing.assert_allclose(cif, sk_cif[1:, moves], rtol=0, atol=1e-10)
    np.testing.assert_allclose(aj_at(time + shift, event, n_causes, sk_time + shift), sk_cif[1:], rtol=0, atol=1e-10)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_aalen_johansen_matches_sksurv_with_ties_and_censoring(seed: int) -> None:
    time, event = _tied(300, seed)
    assert np.unique(time).size < 20 and (event == 0).any()
    sk_time, sk_cif = cumulative_incidence_competing_risks(event, time)
    times, cif = aalen_johansen(time, event, 3)
    np.testing.assert_array_equal(times, np.unique(time[event > 0]))
    np.testing.assert_allclose(cif, aj_at(time, event, 3, times), rtol=0, atol=0)
    np.testing.assert_allclose(aj_at(time, event, 3, sk_time), sk_cif[1:], rtol=0, atol=1e-10)


def test_aalen_johansen_by_hand_and_layout() -> None:
    # t=2: 4 at risk, one event of each cause -> F1 = F2 = 1/4, S = 1/2; t=3 censored; t=5: 1 at risk, cause 1
    time = [1.0, 2.0, 2.0, 3.0, 5.0]
    event = [0, 1, 2, 0, 1]
    times, cif = aalen_johansen(time, event, 3)
    np.testing.assert_array_equal(times, [2.0, 5.0])
    np.testing.assert_allclose(cif, [[0.25, 0.75], [0.25, 0.25], [0.0, 0.0]])  # cause 3: no event, zero row
    times, cif = aalen_johansen([1.0, 2.0], [0, 0], 2)
    assert times.shape == (0,) and cif.shape == (2, 0)


def test_aj_at_is_a_right_continuous_step_and_never_extrapolates() -> None:
    time = [1.0, 2.0, 2.0, 3.0, 5.0, 6.0]
    event = [0, 1, 2, 0, 1, 0]
    values = aj_at(time, event, 2, [0.5, 1.99, 2.0, 4.0, 5.0, 6.0, 6.5])
    np.testing.assert_allclose(values[:, :6], [[0, 0, 0.2, 0.2, 0.5, 0.5], [0, 0, 0.2, 0.2, 0.2, 0.2]])
    assert np.isnan(values[:, 6]).all()  # past the last follow-up with someone still event-free
    everyone_failed = aj_at([1.0, 2.0, 2.0], [1, 2, 1], 2, [3.0, 100.0])
    np.testing.assert_allclose(everyone_failed, [[2 / 3, 2 / 3], [1 / 3, 1 / 3]])


# --------------------------------------------------------------------------- concordance


@pytest.mark.parametrize("seed", [0, 1])
def test_cause_c_index_matches_the_pairwise_definition(seed: int) -> None:
    time, event = _tied(160, seed)
    rng = np.random.default_rng(seed + 10)
    score = np.round(rng.random(160), 1)  # many tied scores
    for cause in (1, 2, 3):
        assert cause_c_index(time, event, score, cause) == pytest.approx(_loop_c(time, event, score, cause), 1e-12)


def test_cause_c_index_counts_earlier_competing_events_as_comparable() -> None:
    # case: row 2 (cause 1 at t=3). Comparable: row 0 (cause 2 at t=1, before), row 3 (censored at t=3, tie),
    # row 4 (t=4). Not comparable: row 1 (censored at t=2, before), row 5 (cause 1 at t=3, tie) and itself.
    time = [1.0, 2.0, 3.0, 3.0, 4.0, 3.0]
    event = [2, 0, 1, 0, 0, 1]
    score = [0.9, 0.0, 0.5, 0.1, 0.5, 0.0]  # row 2 vs rows 0, 3, 4: discordant, concordant, tie
    # row 5 (cause 1, score 0.0) vs rows 0, 3, 4: all discordant
    assert cause_c_index(time, event, score, 1) == pytest.approx(1.5 / 6)
    reference = _loop_c(np.array(time), np.array(event), np.array(score), 1)
    assert cause_c_index(time, event, score, 1) == pytest.approx(reference)


def test_cause_c_index_with_one_cause_is_harrell_c() -> None:
    rng = np.random.default_rng(4)
    x = rng.normal(size=400)
    time = np.round(rng.exponential(1.0 / np.exp(x)), 1) + 0.1  # tied times
    event = (rng.random(400) < 0.6).astype(int)
    cif = np.round(1.0 - np.exp(-np.exp(x)), 2)  # tied scores
    value = cause_c_index(time, event, cif, 1)
    assert value == pytest.approx(harrell_c(time, event, cif), abs=1e-12)
    assert value == pytest.approx(concordance_index_censored(event > 0, time, cif)[0], abs=1e-12)


def test_cause_c_index_handles_10000_rows() -> None:
    time, event, cif = _competing(10_000, seed=7)
    value = cause_c_index(time, event, cif[:, 0, -1], 1)  # the blocked pair count at scale (no timing here)
    assert 0.65 < value < 0.9


# --------------------------------------------------------------------------- metrics


def test_true_cif_is_discriminative_and_calibrated(synthetic: dict) -> None:
    result = synthetic["true"]
    metrics = result["metrics"]
    expected = {f"c_index_cause{k}" for k in (1, 2)} | {
        f"cif_error_cause{k}@{h}" for k in (1, 2) for h in ("2", "5", "10")
    }
    assert set(metrics) == expected
    assert result["warnings"] == [] and result["horizons_used"] == [2.0, 5.0, 10.0]
    for k in (1, 2):
        assert metrics[f"c_index_cause{k}"]["value"] > 0.65
        for h in ("2", "5", "10"):
            assert abs(metrics[f"cif_error_cause{k}@{h}"]["value"]) < 0.05


def test_c_index_uses_the_last_usable_horizon_and_error_is_mean_minus_aalen_johansen(synthetic: dict) -> None:
    time, event, cif = synthetic["time"], synthetic["event"], synthetic["cif"]
    metrics = synthetic["true"]["metrics"]
    for k in (1, 2):
        assert metrics[f"c_index_cause{k}"]["value"] == cause_c_index(time, event, cif[:, k - 1, -1], k)
    observed = aj_at(time, event, 2, HORIZONS)
    for j, h in enumerate(("2", "5", "10")):
        for k in (1, 2):
            want = cif[:, k - 1, j].mean() - observed[k - 1, j]
            assert metrics[f"cif_error_cause{k}@{h}"]["value"] == pytest.approx(want, abs=1e-12)


def test_doubled_cif_for_cause_1_shows_a_positive_error(synthetic: dict) -> None:
    true, doubled = synthetic["true"]["metrics"], synthetic["doubled"]["metrics"]
    for h in ("2", "5", "10"):
        entry = doubled[f"cif_error_cause1@{h}"]
        assert entry["value"] > 0.07  # about the mean true CIF of cause 1 (0.11, 0.22, 0.33, less the clipping)
        assert entry["ci"][0] > 0.05  # clearly positive, not only on this sample
        assert entry["value"] > true[f"cif_error_cause1@{h}"]["value"] + 0.07
    assert doubled["cif_error_cause2@10"] == true["cif_error_cause2@10"]  # cause 2 untouched
    # doubling (clipped to keep the sum <= 1) is order-preserving for almost all rows: ranking stays good
    assert doubled["c_index_cause1"]["value"] > 0.65


def test_bootstrap_intervals_contain_the_point_and_repeat_with_the_seed(synthetic: dict) -> None:
    for entry in synthetic["true"]["metrics"].values():
        low, high = entry["ci"]
        assert low <= entry["value"] <= high and high - low > 0
    time, event, cif = _competing(300, seed=2)
    first = competing_risk_metrics(time, event, cif, HORIZONS, CAUSES, n_bootstrap=40, seed=5)
    again = competing_risk_metrics(time, event, cif, HORIZONS, CAUSES, n_bootstrap=40, seed=5)
    other = competing_risk_metrics(time, event, cif, HORIZONS, CAUSES, n_bootstrap=40, seed=6)
    assert first == again
    assert first["metrics"]["c_index_cause1"]["ci"] != other["metrics"]["c_index_cause1"]["ci"]
    assert first["metrics"]["c_index_cause1"]["value"] == other["metrics"]["c_index_cause1"]["value"]
    none = competing_risk_metrics(time, event, cif, HORIZONS, CAUSES, n_bootstrap=0)
    assert all(math.isnan(low) and math.isnan(high) for low, high in (e["ci"] for e in none["metrics"].values()))


def test_patient_bootstrap_keeps_the_rows_of_a_patient_together() -> None:
    time, event, cif = _competing(200, seed=3)
    twice = competing_risk_metrics(
        np.r_[time, time],
        np.r_[event, event],
        np.concatenate([cif, cif]),
        HORIZONS,
        CAUSES,
        groups=np.r_[np.arange(200), np.arange(200)],
        n_bootstrap=30,
        seed=1,
    )
    by_row = competing_risk_metrics(
        np.r_[time, time], np.r_[event, event], np.concatenate([cif, cif]), HORIZONS, CAUSES, n_bootstrap=30, seed=1
    )
    assert twice["metrics"]["c_index_cause1"]["value"] == by_row["metrics"]["c_index_cause1"]["value"]
    assert twice["metrics"]["c_index_cause1"]["ci"] != by_row["metrics"]["c_index_cause1"]["ci"]
    with pytest.raises(MedDLError, match="groups"):
        competing_risk_metrics(time, event, cif, HORIZONS, CAUSES, groups=np.arange(3), n_bootstrap=2)


def test_observed_and_predicted_curves_for_the_report(synthetic: dict) -> None:
    time, event, cif = synthetic["time"], synthetic["event"], synthetic["cif"]
    result = synthetic["true"]
    times, observed = aalen_johansen(time, event, 2)
    assert list(result["observed"]) == CAUSES and list(result["predicted"]) == CAUSES
    for k, name in enumerate(CAUSES):
        curve = result["observed"][name]
        assert curve["time"][0] == 0.0 and curve["cif"][0] == 0.0
        np.testing.assert_allclose(curve["time"][1 : times.size + 1], times)
        np.testing.assert_allclose(curve["cif"][1 : times.size + 1], observed[k])
        assert curve["time"][-1] == time.max() and curve["cif"][-1] == observed[k, -1]  # on to the last follow-up
        assert result["predicted"][name]["horizons"] == HORIZONS.tolist()
        np.testing.assert_allclose(result["predicted"][name]["mean_cif"], cif[:, k].mean(axis=0))


def test_unusable_horizons_are_left_out_with_a_warning() -> None:
    time, event, cif = _competing(300, seed=4)
    first_event = time[event > 0].min()
    horizons = np.array([first_event / 2, 5.0, time.max(), time.max() + 1.0])
    wide = np.repeat(cif[:, :, 1:2], 4, axis=2)
    result = competing_risk_metrics(time, event, wide, horizons, CAUSES, n_bootstrap=0)
    assert result["horizons_used"] == [5.0]
    assert {name.split("@")[-1] for name in result["metrics"] if "@" in name} == {"5"}
    text = " | ".join(result["warnings"])
    assert "comes before the first event" in text and "is at the last follow-up" in text
    assert "is past the last follow-up" in text and len(result["warnings"]) == 3
    late = competing_risk_metrics(time, event, cif[:, :, -1:], [time.max() + 1.0], CAUSES, n_bootstrap=0)
    assert late["metrics"] == {} and "no horizon is usable" in late["warnings"][-1]


def test_a_cause_without_events_is_warned_about_and_its_metrics_omitted() -> None:
    time, event, cif = _competing(300, seed=5)
    cif3 = np.concatenate([cif * 0.9, np.full((300, 1, 3), 0.05)], axis=1)
    result = competing_risk_metrics(time, event, cif3, HORIZONS, [*CAUSES, "other"], n_bootstrap=0)
    assert result["warnings"] == ["cause 3 ('other') has no event in the evaluated data; its metrics are omitted"]
    assert not any("cause3" in name for name in result["metrics"])
    assert "c_index_cause2" in result["metrics"]
    assert result["observed"]["other"]["cif"] == [0.0] * len(result["observed"]["other"]["cif"])


def test_bad_input_raises_an_error_naming_the_argument() -> None:
    time, event, cif = _competing(50, seed=6)
    cases: list[tuple[tuple[Any, ...], str]] = [
        ((time[:-1], event, cif, HORIZONS, CAUSES), "time has 49 samples but event has 50"),
        ((time, np.r_[event[:-1], 3], cif, HORIZONS, CAUSES), r"event must hold integer codes 0 .* to 2"),
        ((time, np.r_[event[:-1], -1], cif, HORIZONS, CAUSES), "event must hold"),
        ((time, np.r_[event[:-1], 1.5], cif, HORIZONS, CAUSES), "event must hold"),
        ((time, event, cif[:, :, :2], HORIZONS, CAUSES), r"cif must have shape \(50, 2, 3\)"),
        ((time, event, cif[:, :1], HORIZONS, CAUSES), r"cif must have shape \(50, 2, 3\)"),
        ((time, event, cif + 1.0, HORIZONS, CAUSES), r"cif must hold probabilities in \[0, 1\]"),
        ((time, event, np.full_like(cif, 0.6), HORIZONS, CAUSES), "cif of a patient must sum to at most 1"),
        ((time, event, cif, HORIZONS[::-1], CAUSES), "horizons must be strictly increasing"),
        ((time, np.zeros(50, dtype=int), cif, HORIZONS, CAUSES), "0 events of any cause in event"),
        ((time, event, cif, HORIZONS, "relapse"), "causes must be a non-empty list"),
        ((time, event, cif, HORIZONS, ["a", "a"]), "causes must be distinct"),
        ((-time, event, cif, HORIZONS, CAUSES), "time must be finite and > 0"),
    ]
    for args, message in cases:
        with pytest.raises(MedDLError, match=message):
            competing_risk_metrics(*args, n_bootstrap=0)
    over = cif.copy()
    over[7, :, 1] = [0.6, 0.4 + 2e-6]
    with pytest.raises(MedDLError, match="the first row 7 at horizon 5"):
        competing_risk_metrics(time, event, over, HORIZONS, CAUSES, n_bootstrap=0)
    over[7, :, 1] = [0.6, 0.4 + 5e-7]  # within the 1e-6 tolerance
    competing_risk_metrics(time, event, over, HORIZONS, CAUSES, n_bootstrap=0)
    with pytest.raises(MedDLError, match="n_bootstrap"):
        competing_risk_metrics(time, event, cif, HORIZONS, CAUSES, n_bootstrap=-1)


def test_bad_input_to_the_estimator_and_the_concordance() -> None:
    time, event = _tied(40, seed=3)
    with pytest.raises(MedDLError, match=r"event must hold integer codes 0 .* to 2"):
        aalen_johansen(time, event, 2)
    with pytest.raises(MedDLError, match="n_causes must be an integer >= 1"):
        aalen_johansen(time, event, 0)
    with pytest.raises(MedDLError, match="at has 1 non-finite"):
        aj_at(time, event, 3, [np.nan])
    with pytest.raises(MedDLError, match="time has 39 samples but event has 40"):
        aj_at(time[1:], event, 3, [1.0])
    with pytest.raises(MedDLError, match="cause 4 has no event"):
        cause_c_index(time, event, time, 4)
    with pytest.raises(MedDLError, match="cause must be an integer >= 1"):
        cause_c_index(time, event, time, 0)
    with pytest.raises(MedDLError, match="time has 40 samples but cif_k has 39"):
        cause_c_index(time, event, time[1:], 1)
