"""Survival metrics checked against scikit-survival on GBSG2, WHAS500 and a synthetic set with tied times."""

from __future__ import annotations

import json
import math
from collections.abc import Callable

import numpy as np
import pytest
from sksurv.column import encode_categorical
from sksurv.compare import compare_survival
from sksurv.datasets import load_gbsg2, load_whas500
from sksurv.linear_model import CoxPHSurvivalAnalysis
from sksurv.metrics import (
    brier_score,
    concordance_index_censored,
    concordance_index_ipcw,
    cumulative_dynamic_auc,
    integrated_brier_score,
)
from sksurv.nonparametric import SurvivalFunctionEstimator, kaplan_meier_estimator
from sksurv.util import Surv

from meddl.errors import MedDLError
from meddl.evaluate import survival as survival_module
from meddl.evaluate.survival import (
    _h,
    calibration_at,
    harrell_c,
    kaplan_meier,
    km_at,
    km_by_group,
    logrank_p,
    paired_c_difference,
    risk_groups,
    survival_metrics,
)


class Split:
    """A train/test split with a Cox model's test risks and survival at the horizons."""

    def __init__(
        self,
        t_train: np.ndarray,
        e_train: np.ndarray,
        t_test: np.ndarray,
        e_test: np.ndarray,
        risk: np.ndarray,
        survival: np.ndarray,
        horizons: np.ndarray,
    ) -> None:
        self.t_train, self.e_train, self.t_test, self.e_test = t_train, e_train, t_test, e_test
        self.risk, self.survival, self.horizons = risk, survival, horizons
        self.y_train = Surv.from_arrays(event=e_train > 0, time=t_train)
        self.y_test = Surv.from_arrays(event=e_test > 0, time=t_test)


def _cox_split(X: np.ndarray, event: np.ndarray, time: np.ndarray, horizons: list[float], seed: int = 0) -> Split:
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(time))
    train, test = order[: int(0.7 * len(time))], order[int(0.7 * len(time)) :]
    y = Surv.from_arrays(event=event, time=time)
    X = (X - X[train].mean(axis=0)) / X[train].std(axis=0)
    model = CoxPHSurvivalAnalysis(alpha=1e-3, ties="efron").fit(X[train], y[train])
    hz = np.asarray(horizons, dtype=float)
    survival = np.array([f(hz) for f in model.predict_survival_function(X[test])])
    return Split(
        time[train], event[train].astype(int), time[test], event[test].astype(int), model.predict(X[test]), survival, hz
    )


@pytest.fixture(scope="module")
def gbsg2() -> Split:
    X, y = load_gbsg2()
    features = encode_categorical(X).to_numpy(dtype=float)
    return _cox_split(features, y["cens"], y["time"], [365.0, 1095.0, 1826.0])


@pytest.fixture(scope="module")
def whas500() -> Split:
    X, y = load_whas500()
    features = encode_categorical(X).to_numpy(dtype=float)
    return _cox_split(features, y["fstat"], y["lenfol"], [180.0, 365.0, 730.0, 1095.0])


def _tied_split(seed: int = 3) -> Split:
    """Integer times 1..12 (many ties, events and censorings at the same time) and risks rounded to 1 decimal."""
    rng = np.random.default_rng(seed)
    n = 260
    x = rng.normal(size=n)
    latent = rng.exponential(6.0 / np.exp(0.7 * x))
    censor = rng.uniform(1, 14, size=n)
    time = np.clip(np.ceil(np.minimum(latent, censor)), 1, 12)
    event = (latent <= censor).astype(int)
    event[rng.random(n) < 0.05] = 2  # a competing-risk code counts as an event in this module
    risk = np.round(x + 0.3 * rng.normal(size=n), 1)
    horizons = np.array([3.0, 6.0, 9.0])
    survival = np.exp(-np.outer(np.exp(0.7 * risk), horizons) / 6.0)
    train, test = np.arange(0, 140), np.arange(140, n)
    return Split(time[train], event[train], time[test], event[test], risk[test], survival[test], horizons)


@pytest.fixture(scope="module")
def tied() -> Split:
    return _tied_split()


@pytest.fixture(params=["gbsg2", "whas500", "tied"])
def split(request: pytest.FixtureRequest) -> Split:
    return request.getfixturevalue(request.param)


# --------------------------------------------------------------------------- Harrell's C


def test_harrell_c_matches_sksurv(split: Split) -> None:
    for time, event, risk in [
        (split.t_test, split.e_test, split.risk),
        (split.t_test, split.e_test, np.round(split.risk, 1)),  # many tied risks
        (split.t_train, split.e_train, np.zeros(split.t_train.size)),  # every pair a tie: C = 0.5
    ]:
        expected = concordance_index_censored(event > 0, time, risk)[0]
        assert harrell_c(time, event, risk) == pytest.approx(expected, abs=1e-9)


def test_harrell_c_tied_times_and_risk_tolerance() -> None:
    # an event and a censored row at the same time are comparable; two events at the same time are not
    time = np.array([1.0, 1.0, 1.0, 2.0, 2.0, 3.0, 3.0, 4.0])
    event = np.array([1, 1, 0, 1, 0, 1, 1, 0])
    risk = np.array([0.9, 0.1, 0.5, 0.5 + 5e-9, 0.5, 0.2, 0.7, 0.3])  # 0.5 and 0.5 + 5e-9 are tied within 1e-8
    expected = concordance_index_censored(event > 0, time, risk)[0]
    assert harrell_c(time, event, risk) == pytest.approx(expected, abs=1e-12)
    assert harrell_c([1.0, 2.0, 3.0], [1, 1, 0], [3.0, 2.0, 1.0]) == 1.0
    assert harrell_c([1.0, 2.0, 3.0], [1, 1, 0], [1.0, 2.0, 3.0]) == 0.0


def test_harrell_c_handles_10000_rows() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=10_000)
    time = np.round(rng.exponential(1.0 / np.exp(x)), 2) + 0.01
    event = (rng.random(10_000) < 0.6).astype(int)
    value = harrell_c(time, event, x)  # the blocked pair count at scale (speed belongs in benchmarks)
    assert 0.6 < value < 0.8
    # sksurv's Python loop is slow on 10,000 rows: compare on the first 1,500
    sub = slice(0, 1500)
    assert harrell_c(time[sub], event[sub], x[sub]) == pytest.approx(
        concordance_index_censored(event[sub] > 0, time[sub], x[sub])[0], abs=1e-9
    )


# --------------------------------------------------------------------------- Kaplan–Meier and log-rank


def test_kaplan_meier_and_km_at_match_sksurv(split: Split) -> None:
    time, event = split.t_test, split.e_test
    sk_time, sk_surv = kaplan_meier_estimator(event > 0, time)
    event_times, survival = kaplan_meier(time, event)
    has_event = np.isin(sk_time, time[event > 0])
    np.testing.assert_array_equal(event_times, sk_time[has_event])
    np.testing.assert_allclose(survival, sk_surv[has_event], atol=1e-12)
    assert np.all(np.diff(event_times) > 0) and np.all(np.diff(survival) <= 0)

    estimator = SurvivalFunctionEstimator().fit(split.y_test)
    between = np.r_[sk_time, (sk_time[:-1] + sk_time[1:]) / 2]
    np.testing.assert_allclose(km_at(time, event, between), estimator.predict_proba(between), atol=1e-12)
    before_first = time[event > 0].min() - 0.5
    assert km_at(time, event, [before_first, 0.0])[0] == 1.0
    past_end = km_at(time, event, [time.max() + 1.0])
    assert math.isnan(past_end[0]) if sk_surv[-1] > 0 else past_end[0] == 0.0


def test_logrank_p_matches_sksurv(gbsg2: Split, whas500: Split, tied: Split) -> None:
    X, y = load_gbsg2()
    for column in ["tgrade", "horTh", "menostat"]:
        labels = X[column].astype(str).to_numpy()
        expected = compare_survival(y, labels)[1]
        assert logrank_p(y["time"], y["cens"].astype(int), labels) == pytest.approx(expected, rel=1e-9, abs=1e-14)
    for data in (whas500, tied):
        groups = risk_groups(data.risk)
        expected = compare_survival(data.y_test, groups)[1]
        assert logrank_p(data.t_test, data.e_test, groups) == pytest.approx(expected, rel=1e-9, abs=1e-14)


def test_logrank_p_small_for_separated_groups_and_large_for_identical_ones() -> None:
    rng = np.random.default_rng(1)
    n = 150
    slow, fast = rng.exponential(10.0, n), rng.exponential(2.0, n)
    time = np.r_[slow, fast]
    event = np.ones(2 * n, dtype=int)
    event[rng.random(2 * n) < 0.2] = 0
    separated = np.r_[np.zeros(n), np.ones(n)]
    assert logrank_p(time, event, separated) < 1e-10

    same_time, same_event = np.r_[slow, slow], np.r_[event[:n], event[:n]]
    assert logrank_p(same_time, same_event, separated) == pytest.approx(1.0, abs=1e-9)
    with pytest.raises(MedDLError, match="at least two groups"):
        logrank_p(time, event, np.zeros(2 * n))


def test_risk_groups_and_km_by_group(gbsg2: Split) -> None:
    groups = risk_groups(gbsg2.risk)
    counts = np.bincount(groups)
    assert counts.size == 3 and counts.max() - counts.min() <= 1
    means = [gbsg2.risk[groups == g].mean() for g in range(3)]
    assert means[0] < means[1] < means[2]  # 0 = lowest risk
    assert (risk_groups(gbsg2.risk, n_groups=4) == 3).sum() == pytest.approx(len(gbsg2.risk) / 4, abs=1)

    curves = km_by_group(gbsg2.t_test, gbsg2.e_test, groups)
    assert list(curves) == [0, 1, 2]
    json.dumps(curves)
    for g, curve in curves.items():
        rows = groups == g
        assert curve["n"] == rows.sum() and curve["events"] == gbsg2.e_test[rows].sum()
        assert curve["time"][0] == 0.0 and curve["survival"][0] == 1.0
        event_times, survival = kaplan_meier(gbsg2.t_test[rows], gbsg2.e_test[rows])
        np.testing.assert_allclose(curve["time"][1 : 1 + event_times.size], event_times)
        np.testing.assert_allclose(curve["survival"][1 : 1 + survival.size], survival)
        assert curve["time"][-1] == gbsg2.t_test[rows].max()
    # the high-risk tertile dies sooner: its curve ends lowest and the curves differ significantly
    assert curves[2]["survival"][-1] < curves[0]["survival"][-1]
    assert logrank_p(gbsg2.t_test, gbsg2.e_test, groups) < 0.01


# --------------------------------------------------------------------------- survival_metrics vs sksurv


def test_survival_metrics_match_sksurv(split: Split, request: pytest.FixtureRequest) -> None:
    result = survival_metrics(
        split.t_train,
        split.e_train,
        split.t_test,
        split.e_test,
        split.risk,
        split.survival,
        split.horizons,
        n_bootstrap=0,
    )
    assert result["warnings"] == []
    assert result["horizons_used"] == split.horizons.tolist()
    value = {name: entry["value"] for name, entry in result["metrics"].items()}
    event = split.e_test > 0
    assert value["c_index"] == pytest.approx(concordance_index_censored(event, split.t_test, split.risk)[0], abs=1e-6)
    tau = split.horizons[-1]
    # sksurv evaluates the censoring weight of every test row, even of those no IPCW metric up to tau uses: it
    # raises once a test time passes the last training time (WHAS500) or G reaches 0 there (tied set). Rows after
    # tau enter these metrics only as "still event-free", so marking their events censored and clipping their times
    # to the last training time changes no metric and lets sksurv compute; where sksurv accepts the original test
    # outcome (GBSG2) it is used as is.
    late = split.t_test > tau
    y_ipcw = Surv.from_arrays(
        event & ~late, np.where(late, np.minimum(split.t_test, split.t_train.max()), split.t_test)
    )
    try:
        cumulative_dynamic_auc(split.y_train, split.y_test, 1.0 - split.survival, split.horizons)
        brier_score(split.y_train, split.y_test, split.survival, split.horizons)
        y_ipcw = split.y_test
    except ValueError:
        assert request.node.callspec.params["split"] != "gbsg2"
    assert value["c_index_uno"] == pytest.approx(
        concordance_index_ipcw(split.y_train, y_ipcw, split.risk, tau=tau)[0], abs=1e-6
    )
    auc, _ = cumulative_dynamic_auc(split.y_train, y_ipcw, 1.0 - split.survival, split.horizons)
    _, brier = brier_score(split.y_train, y_ipcw, split.survival, split.horizons)
    for k, horizon in enumerate(split.horizons):
        assert value[f"auc@{_h(horizon)}"] == pytest.approx(auc[k], abs=1e-6)
        assert value[f"brier@{_h(horizon)}"] == pytest.approx(brier[k], abs=1e-6)
        calibration = calibration_at(horizon, split.t_test, split.e_test, split.survival[:, k])
        assert value[f"calibration_slope@{_h(horizon)}"] == pytest.approx(calibration["slope"], abs=1e-12)
    assert value["ibs"] == pytest.approx(
        integrated_brier_score(split.y_train, y_ipcw, split.survival, split.horizons), abs=1e-6
    )
    expected_names = {"c_index", "c_index_uno", "ibs"} | {
        f"{m}@{_h(h)}" for m in ("auc", "brier", "calibration_slope") for h in split.horizons
    }
    assert set(value) == expected_names
    assert value["c_index"] > 0.6  # the Cox model is informative on the real data sets


def test_brier_defined_when_test_follow_up_outlasts_training(gbsg2: Split) -> None:
    # sksurv refuses any Brier score once a test time passes the last training time; only the weights of events
    # before the horizon are needed, so the value is still sksurv's on the rows that it accepts
    keep = gbsg2.t_train < 2000
    t_train, e_train = gbsg2.t_train[keep], gbsg2.e_train[keep]
    result = survival_metrics(
        t_train, e_train, gbsg2.t_test, gbsg2.e_test, gbsg2.risk, gbsg2.survival, gbsg2.horizons, n_bootstrap=0
    )
    with pytest.raises(ValueError):
        brier_score(Surv.from_arrays(e_train > 0, t_train), gbsg2.y_test, gbsg2.survival, gbsg2.horizons)
    assert t_train.max() > gbsg2.horizons[-1]
    # test times clipped at the last training time: the same cases and controls at every horizon
    clipped = Surv.from_arrays(gbsg2.e_test > 0, np.minimum(gbsg2.t_test, t_train.max()))
    _, expected = brier_score(Surv.from_arrays(e_train > 0, t_train), clipped, gbsg2.survival, gbsg2.horizons)
    for k, horizon in enumerate(gbsg2.horizons):
        assert result["metrics"][f"brier@{_h(horizon)}"]["value"] == pytest.approx(expected[k], abs=1e-9)


# --------------------------------------------------------------------------- horizons and warnings


def _toy(n: int = 120, seed: int = 0) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    latent = rng.exponential(100.0 / np.exp(x))
    time = np.minimum(latent, rng.uniform(50, 300, size=n)) + 10.0
    event = (latent + 10.0 <= time).astype(int)
    return time, event, x


def test_unusable_horizons_are_omitted_with_a_warning() -> None:
    t_train, e_train, _ = _toy(200, seed=1)
    t_test, e_test, risk = _toy(120, seed=2)
    first_event, last_test = t_test[e_test > 0].min(), t_test.max()
    e_train = np.where(t_train > 200.0, 0, e_train)  # training follow-up ends at 200: later rows are censored there
    t_train = np.minimum(t_train, 200.0)
    horizons = np.array([first_event / 2, 60.0, 150.0, 250.0, 3650.0])
    survival = np.tile(np.linspace(0.95, 0.3, horizons.size), (risk.size, 1))
    result = survival_metrics(t_train, e_train, t_test, e_test, risk, survival, horizons, n_bootstrap=0)
    assert result["horizons_used"] == [60.0, 150.0]
    text = " | ".join(result["warnings"])
    assert (
        f"horizon 3650 is past the last follow-up in the test split ({last_test:g}); "
        "metrics at it are omitted, never extrapolated"
    ) in text
    assert "horizon 250 is past the last follow-up in the training split (200)" in text
    assert f"horizon {_h(first_event / 2)} comes before the first event in the test split" in text
    names = set(result["metrics"])
    assert {"auc@60", "brier@150", "calibration_slope@150", "ibs", "c_index_uno"} <= names
    assert not any(name.endswith(("@250", "@3650")) for name in names)


def test_one_or_no_usable_horizon() -> None:
    t_train, e_train, _ = _toy(200, seed=1)
    t_test, e_test, risk = _toy(120, seed=2)
    one = survival_metrics(
        t_train, e_train, t_test, e_test, risk, np.full((120, 2), 0.5), [100.0, 5000.0], n_bootstrap=0
    )
    assert one["horizons_used"] == [100.0]
    assert "ibs" not in one["metrics"] and "brier@100" in one["metrics"]
    assert any("ibs is omitted" in w for w in one["warnings"])
    none = survival_metrics(t_train, e_train, t_test, e_test, risk, np.full((120, 1), 0.5), [5000.0], n_bootstrap=0)
    assert none["horizons_used"] == [] and set(none["metrics"]) == {"c_index"}
    assert any("no horizon is usable" in w for w in none["warnings"])


# --------------------------------------------------------------------------- bootstrap


def test_bootstrap_cis_contain_the_point_value_and_are_reproducible(gbsg2: Split) -> None:
    args = (gbsg2.t_train, gbsg2.e_train, gbsg2.t_test, gbsg2.e_test, gbsg2.risk, gbsg2.survival, gbsg2.horizons)
    first = survival_metrics(*args, n_bootstrap=200, seed=7)
    again = survival_metrics(*args, n_bootstrap=200, seed=7)
    other = survival_metrics(*args, n_bootstrap=200, seed=8)
    assert first == again
    assert first["metrics"]["c_index"]["ci"] != other["metrics"]["c_index"]["ci"]
    for name, entry in first["metrics"].items():
        low, high = entry["ci"]
        assert low <= entry["value"] <= high, name
        assert high - low > 0, name
    c_low, c_high = first["metrics"]["c_index"]["ci"]
    assert 0.02 < c_high - c_low < 0.25
    json.dumps(first)
    assert all(math.isnan(x) for x in survival_metrics(*args, n_bootstrap=0)["metrics"]["c_index"]["ci"])


def _captured_compute(monkeypatch: pytest.MonkeyPatch, split: Split) -> Callable[[np.ndarray], dict[str, float]]:
    """The metric function survival_metrics hands to the bootstrap, to call on chosen resamples."""
    captured = {}

    def capture(compute: Callable[[np.ndarray], dict[str, float]], n_samples: int, **_: object) -> dict:
        captured["compute"] = compute
        return {}

    monkeypatch.setattr(survival_module, "bootstrap_metrics", capture)
    survival_metrics(
        split.t_train, split.e_train, split.t_test, split.e_test, split.risk, split.survival, split.horizons
    )
    return captured["compute"]


def test_resamples_match_sksurv_and_give_nan_where_undefined(gbsg2: Split, monkeypatch: pytest.MonkeyPatch) -> None:
    compute = _captured_compute(monkeypatch, gbsg2)
    rows = np.random.default_rng(4).integers(0, gbsg2.t_test.size, size=gbsg2.t_test.size)  # repeated rows
    value = compute(rows)
    y_test = Surv.from_arrays(gbsg2.e_test[rows] > 0, gbsg2.t_test[rows])
    risk, survival = gbsg2.risk[rows], gbsg2.survival[rows]
    assert value["c_index"] == pytest.approx(concordance_index_censored(y_test["event"], y_test["time"], risk)[0])
    assert value["c_index_uno"] == pytest.approx(
        concordance_index_ipcw(gbsg2.y_train, y_test, risk, tau=gbsg2.horizons[-1])[0]
    )
    auc, _ = cumulative_dynamic_auc(gbsg2.y_train, y_test, 1.0 - survival, gbsg2.horizons)
    _, brier = brier_score(gbsg2.y_train, y_test, survival, gbsg2.horizons)
    for k, horizon in enumerate(gbsg2.horizons):
        assert value[f"auc@{_h(horizon)}"] == pytest.approx(auc[k], abs=1e-9)
        assert value[f"brier@{_h(horizon)}"] == pytest.approx(brier[k], abs=1e-9)
    assert value["ibs"] == pytest.approx(integrated_brier_score(gbsg2.y_train, y_test, survival, gbsg2.horizons))

    # a resample whose follow-up ends before the last horizon: sksurv refuses it, the metrics there are nan
    short = np.flatnonzero(gbsg2.t_test < 1500)
    with pytest.raises(ValueError):
        brier_score(gbsg2.y_train, gbsg2.y_test[short], gbsg2.survival[short], gbsg2.horizons)
    partial = compute(short)
    assert math.isnan(partial["auc@1826"]) and math.isnan(partial["brier@1826"]) and math.isnan(partial["ibs"])
    assert math.isfinite(partial["c_index"]) and math.isfinite(partial["auc@1095"])
    late = np.flatnonzero(gbsg2.t_test > 400)  # every row outlives the first horizon
    with pytest.raises(ValueError):
        brier_score(gbsg2.y_train, gbsg2.y_test[late], gbsg2.survival[late], gbsg2.horizons[:1])
    assert math.isnan(compute(late)["brier@365"]) and math.isfinite(compute(late)["brier@1095"])
    # no comparable pair (censored rows before the only event): C is nan, not an error
    latest_event = int(np.argmax(np.where(gbsg2.e_test > 0, gbsg2.t_test, 0.0)))
    earlier_censored = np.flatnonzero((gbsg2.e_test == 0) & (gbsg2.t_test < gbsg2.t_test[latest_event]))[:5]
    assert earlier_censored.size == 5
    assert math.isnan(compute(np.r_[earlier_censored, latest_event])["c_index"])


def test_patient_level_bootstrap_with_two_rows_per_patient(gbsg2: Split) -> None:
    # every test patient appears twice: a row bootstrap treats the copies as independent and is too narrow
    rows = np.r_[np.arange(gbsg2.t_test.size), np.arange(gbsg2.t_test.size)]
    patient = rows.copy()
    args = (
        gbsg2.t_train,
        gbsg2.e_train,
        gbsg2.t_test[rows],
        gbsg2.e_test[rows],
        gbsg2.risk[rows],
        gbsg2.survival[rows],
        gbsg2.horizons,
    )
    by_row = survival_metrics(*args, n_bootstrap=300, seed=0)["metrics"]
    by_patient = survival_metrics(*args, groups=patient, n_bootstrap=300, seed=0)["metrics"]
    single = survival_metrics(
        *args[:2], gbsg2.t_test, gbsg2.e_test, gbsg2.risk, gbsg2.survival, gbsg2.horizons, n_bootstrap=300, seed=0
    )["metrics"]

    def width(metrics: dict, name: str) -> float:
        low, high = metrics[name]["ci"]
        return high - low

    for name in ("c_index", "brier@1095"):
        assert width(by_patient, name) > 1.2 * width(by_row, name), name
        # a patient's two identical rows carry no more information than one: the width is that of the single rows
        assert width(by_patient, name) == pytest.approx(width(single, name), rel=0.1), name
    with pytest.raises(MedDLError, match="groups"):
        survival_metrics(*args, groups=patient[:-1], n_bootstrap=10)


def test_bootstrap_of_700_rows_and_3_horizons_gives_every_ci() -> None:
    t_train, e_train, _ = _toy(700, seed=5)
    t_test, e_test, risk = _toy(700, seed=6)
    horizons = np.array([60.0, 120.0, 200.0])
    survival = np.exp(-np.outer(np.exp(risk), horizons) / 100.0)
    # speed is measured in benchmarks, not asserted here: this checks the bootstrap of a large case completes
    result = survival_metrics(t_train, e_train, t_test, e_test, risk, survival, horizons, n_bootstrap=100)
    assert all(not math.isnan(entry["ci"][0]) for entry in result["metrics"].values())


def test_paired_c_difference(gbsg2: Split) -> None:
    rng = np.random.default_rng(0)
    noise = rng.normal(size=gbsg2.risk.size)
    result = paired_c_difference(gbsg2.t_test, gbsg2.e_test, gbsg2.risk, noise, n_bootstrap=300, seed=1)
    expected = harrell_c(gbsg2.t_test, gbsg2.e_test, gbsg2.risk) - harrell_c(gbsg2.t_test, gbsg2.e_test, noise)
    assert result["value"] == pytest.approx(expected, abs=1e-12)
    low, high = result["ci"]
    assert 0 < low <= result["value"] <= high
    assert result["p_value"] < 0.05
    same = paired_c_difference(gbsg2.t_test, gbsg2.e_test, gbsg2.risk, gbsg2.risk, n_bootstrap=50)
    assert same["value"] == 0.0 and same["p_value"] == 1.0
    assert paired_c_difference(gbsg2.t_test, gbsg2.e_test, gbsg2.risk, noise, n_bootstrap=300, seed=1) == result


# --------------------------------------------------------------------------- calibration


def _exponential_cohort(n: int = 3000, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exponential survival with hazard 0.1 * exp(0.8 x) and uniform censoring; returns time, event, hazard."""
    rng = np.random.default_rng(seed)
    hazard = 0.1 * np.exp(0.8 * rng.normal(size=n))
    latent = rng.exponential(1.0 / hazard)
    censor = rng.uniform(0, 30, size=n)
    return np.minimum(latent, censor), (latent <= censor).astype(int), hazard


def test_calibration_of_a_perfectly_calibrated_model() -> None:
    time, event, hazard = _exponential_cohort()
    truth = np.exp(-hazard * 5.0)
    result = calibration_at(5.0, time, event, truth)
    assert result["horizon"] == 5.0 and len(result["bins"]) == 10
    assert sum(b["n"] for b in result["bins"]) == time.size
    assert 0.85 < result["slope"] < 1.15
    assert result["ece"] < 0.04
    predicted = [b["predicted"] for b in result["bins"]]
    assert predicted == sorted(predicted)
    inside = sum(b["observed_ci"][0] <= b["predicted"] <= b["observed_ci"][1] for b in result["bins"])
    assert inside >= 8  # 95% intervals cover the true survival in (nearly) every bin
    json.dumps(result)


def test_calibration_of_miscalibrated_models() -> None:
    time, event, hazard = _exponential_cohort()
    truth = np.exp(-hazard * 5.0)
    shrunk = calibration_at(5.0, time, event, 0.5 + 0.5 * (truth - 0.5))  # predictions squeezed toward 0.5
    assert shrunk["slope"] > 1.6
    pessimistic = calibration_at(5.0, time, event, np.exp(-2.0 * hazard * 5.0))  # twice the true hazard
    assert pessimistic["ece"] > 0.1
    assert all(b["predicted"] < b["observed"] for b in pessimistic["bins"])


def test_calibration_bins_match_sksurv_km_and_small_bins_merge(whas500: Split) -> None:
    time, event = whas500.t_test, whas500.e_test
    predicted = whas500.survival[:, 1].copy()
    predicted[:3] = 0.001  # three tied outliers share the lowest bin
    result = calibration_at(365.0, time, event, predicted, n_bins=40)  # ~4 rows per quantile bin: bins get merged
    sizes = [b["n"] for b in result["bins"]]
    assert min(sizes) >= 5 and sum(sizes) == time.size and len(sizes) < 40
    assert len(set(sizes)) > 1  # unequal sizes, so the size weights matter below
    order = np.argsort(predicted, kind="stable")
    start = 0
    for entry in result["bins"]:
        rows = order[start : start + entry["n"]]
        start += entry["n"]
        assert entry["predicted"] == pytest.approx(predicted[rows].mean(), abs=1e-12)
        sk_time, sk_surv, sk_ci = kaplan_meier_estimator(event[rows] > 0, time[rows], conf_type="log-log")
        k = np.searchsorted(sk_time, 365.0, side="right") - 1
        assert entry["observed"] == pytest.approx(sk_surv[k] if k >= 0 else 1.0, abs=1e-12)
        if k >= 0:
            np.testing.assert_allclose(entry["observed_ci"], sk_ci[:, k], atol=1e-9)
    # slope and ECE from the bins, by their definition
    size = np.array(sizes, dtype=float)
    pred = np.array([b["predicted"] for b in result["bins"]])
    obs = np.array([b["observed"] for b in result["bins"]])
    slope = np.polyfit(pred, obs, 1, w=np.sqrt(size))[0]
    assert result["slope"] == pytest.approx(slope, rel=1e-9)
    assert result["ece"] == pytest.approx(np.sum(size * np.abs(obs - pred)) / size.sum(), rel=1e-12)


def test_calibration_bin_followed_up_shorter_than_the_horizon_is_unknown() -> None:
    time = np.r_[np.arange(1.0, 11.0) * 2, np.arange(1.0, 11.0) * 0.5, np.arange(1.0, 11.0)]
    event = np.r_[np.ones(10), np.zeros(10), np.ones(10)].astype(int)
    predicted = np.r_[np.full(10, 0.3), np.full(10, 0.9), np.full(10, 0.1)]
    # bins: 0.1 (all die by 10: observed 0), 0.3 (events to 20: known at 12), 0.9 (censored by 5: unknown at 12)
    result = calibration_at(12.0, time, event, predicted, n_bins=3)
    lowest, middle, highest = result["bins"]
    assert (lowest["predicted"], lowest["observed"], lowest["observed_ci"]) == (0.1, 0.0, [0.0, 0.0])
    assert middle["observed"] == pytest.approx(0.4)
    assert math.isnan(highest["observed"]) and all(math.isnan(x) for x in highest["observed_ci"])
    assert result["ece"] == pytest.approx((10 * 0.1 + 10 * 0.1) / 20)
    assert result["slope"] == pytest.approx(0.4 / 0.2)


# --------------------------------------------------------------------------- errors


def test_errors_name_the_argument_and_value(gbsg2: Split) -> None:
    t, e, r = gbsg2.t_test, gbsg2.e_test, gbsg2.risk
    with pytest.raises(MedDLError, match="time has 206 samples but event has 205"):
        harrell_c(t, e[:-1], r)
    with pytest.raises(MedDLError, match="time has 206 samples but risk has 205"):
        harrell_c(t, e, r[:-1])
    bad = t.copy()
    bad[4], bad[9] = 0.0, np.nan
    with pytest.raises(MedDLError, match=r"time must be finite and > 0; 2 values are not, the first at index 4: 0\.0"):
        harrell_c(bad, e, r)
    bad[4] = 5.0
    with pytest.raises(MedDLError, match=r"index 9: nan"):
        kaplan_meier(bad, e)
    codes = e.copy().astype(float)
    codes[7] = -1
    with pytest.raises(MedDLError, match=r"event must hold event codes.*index 7: -1\.0"):
        logrank_p(t, codes, risk_groups(r))
    codes[7] = 0.5
    with pytest.raises(MedDLError, match=r"index 7: 0\.5"):
        harrell_c(t, codes, r)
    with pytest.raises(MedDLError, match="risk has 1 non-finite"):
        harrell_c(t, e, np.r_[r[:-1], np.inf])
    with pytest.raises(MedDLError, match="too few events: 0 events in event"):
        harrell_c(t, np.zeros_like(e), r)
    assert math.isnan(harrell_c([1.0, 2.0], [0, 1], [0.1, 0.2]))  # events but no comparable pair: undefined


def test_survival_metrics_errors(gbsg2: Split) -> None:
    g = gbsg2
    base = dict(
        time_train=g.t_train,
        event_train=g.e_train,
        time_test=g.t_test,
        event_test=g.e_test,
        risk=g.risk,
        survival=g.survival,
        horizons=g.horizons,
    )
    cases: list[tuple[dict, str]] = [
        ({"event_test": np.zeros_like(g.e_test)}, "too few events: 0 events in the test split"),
        ({"event_train": np.zeros_like(g.e_train)}, "too few events: 0 events in the training split"),
        ({"time_train": np.r_[-1.0, g.t_train[1:]]}, r"time_train must be finite and > 0.*index 0: -1\.0"),
        ({"time_test": g.t_test[:-1]}, "time_test has 205 samples but event_test has 206"),
        ({"risk": g.risk[:-1]}, "time_test has 206 samples but risk has 205"),
        ({"horizons": g.horizons[::-1]}, "horizons must be strictly increasing"),
        ({"horizons": [365.0, 0.0, 1826.0]}, r"horizons must be finite and > 0.*index 1: 0\.0"),
        ({"survival": g.survival[:, :2]}, r"survival must have shape \(206, 3\), got shape \(206, 2\)"),
        (
            {"survival": np.where(np.arange(3) == 2, 1.5, g.survival)},
            r"survival must hold probabilities.*\(0, 2\): 1\.5",
        ),
        ({"n_bootstrap": -1}, "n_bootstrap must be a non-negative integer"),
        ({"level": 1.5}, "level must be strictly between 0 and 1"),
    ]
    for change, message in cases:
        with pytest.raises(MedDLError, match=message):
            survival_metrics(**{**base, "n_bootstrap": 0, "level": 0.95, **change})
    with pytest.raises(MedDLError, match="horizon 9000 is past the last follow-up"):
        calibration_at(9000.0, g.t_test, g.e_test, g.survival[:, 0])
    with pytest.raises(MedDLError, match="n_bins must be an integer >= 1"):
        calibration_at(365.0, g.t_test, g.e_test, g.survival[:, 0], n_bins=0)
    with pytest.raises(MedDLError, match="n_groups must be an integer >= 2"):
        risk_groups(g.risk, n_groups=1)
