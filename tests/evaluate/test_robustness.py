"""The robustness suite's parts: each array corruption (shape, dtype, no mutation, one seed one result, stronger with
severity, and what it does checked on a case with a known answer), and ``evaluate_robustness`` on hand-made scorers."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from meddl.errors import MedDLError
from meddl.evaluate import binary_metrics
from meddl.evaluate.robustness import (
    Corruption,
    baseline_wander,
    corruption_rng,
    drop_channels,
    evaluate_robustness,
    gaussian_blur,
    gaussian_noise,
    lower_resolution,
    mask_values,
    mutate_kmer_tokens,
    mutate_one_hot,
    powerline_hum,
    rotate,
    scale_contrast,
    shift_along_axis,
)
from meddl.preprocess.sequences import BASES, KmerTokenizer, one_hot

Rng = np.random.Generator


def images(seed: int = 0) -> np.ndarray:
    """(6, 2, 24, 24) float32 images with structure (a bright square) and some texture."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 0.2, size=(6, 2, 24, 24)).astype(np.float32)
    x[:, :, 6:14, 8:18] += 2.0
    return x


def signals(seed: int = 0) -> np.ndarray:
    """(5, 3, 1000) float32 traces: 1.2 Hz beats sampled at 250 Hz."""
    t = np.arange(1000) / 250.0
    rng = np.random.default_rng(seed)
    return (np.sin(2 * np.pi * 1.2 * t)[None, None] + rng.normal(0, 0.05, (5, 3, 1000))).astype(np.float32)


def ramps() -> np.ndarray:
    """(5, 3, 1000) float32 ramps from 0 to 1 (nothing repeats: a larger shift moves every value further)."""
    return np.broadcast_to(np.linspace(0.0, 1.0, 1000, dtype=np.float32), (5, 3, 1000)).copy()


def dna(n: int = 20, length: int = 50, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    sequences = ["".join(rng.choice(list(BASES), size=length)) for _ in range(n)]
    sequences[0] = sequences[0][:20] + "NN" + sequences[0][22:]  # an ambiguous stretch stays as it is
    return sequences


# Every corruption as (name, input maker, apply(x, severity, rng), rising severities).
CORRUPTIONS: list[tuple[str, Callable[[], np.ndarray], Callable[[np.ndarray, float, Rng], np.ndarray], tuple]] = [
    ("gaussian_noise", images, lambda x, s, rng: gaussian_noise(x, s, rng), (0.1, 0.3, 1.0)),
    ("gaussian_blur", images, lambda x, s, rng: gaussian_blur(x, s, spatial_dims=2), (0.5, 1.0, 3.0)),
    ("scale_contrast", images, lambda x, s, rng: scale_contrast(x, 1 - s), (0.25, 0.5, 0.9)),
    ("rotate", images, lambda x, s, rng: rotate(x, s, rng), (5.0, 15.0, 40.0)),
    ("lower_resolution", images, lambda x, s, rng: lower_resolution(x, s, spatial_dims=2), (2.0, 4.0, 8.0)),
    ("mask_values", images, lambda x, s, rng: mask_values(x, s, rng), (0.1, 0.3, 0.7)),
    ("drop_channels", signals, lambda x, s, rng: drop_channels(x, int(s), rng), (1, 2, 3)),
    ("baseline_wander", signals, lambda x, s, rng: baseline_wander(x, s, rng, sampling_rate=250.0), (0.2, 0.5, 1.0)),
    ("powerline_hum", signals, lambda x, s, rng: powerline_hum(x, s, rng, sampling_rate=250.0), (0.1, 0.3, 1.0)),
    ("shift_along_axis", ramps, lambda x, s, rng: shift_along_axis(x, int(s), rng), (10, 50, 200)),
    ("mutate_one_hot", lambda: one_hot(dna(), 50), mutate_one_hot, (0.02, 0.1, 0.4)),
    (
        "mutate_kmer_tokens",
        lambda: KmerTokenizer(k=3).fit().encode(dna(), 50),
        lambda x, s, rng: mutate_kmer_tokens(x, s, rng, k=3),
        (0.02, 0.1, 0.4),
    ),
]
RANDOM = {"gaussian_noise", "rotate", "mask_values", "drop_channels", "baseline_wander", "powerline_hum"}
RANDOM |= {"shift_along_axis", "mutate_one_hot", "mutate_kmer_tokens"}
IDS = [c[0] for c in CORRUPTIONS]


@pytest.mark.parametrize(("name", "make", "apply", "severities"), CORRUPTIONS, ids=IDS)
def test_a_corruption_keeps_shape_and_dtype_and_never_changes_its_argument(name, make, apply, severities) -> None:  # type: ignore[no-untyped-def]
    x = make()
    before = x.copy()
    for severity in severities:
        out = apply(x, severity, np.random.default_rng(0))
        assert out.shape == x.shape and out.dtype == x.dtype, name
        assert not np.shares_memory(out, x), f"{name} returned a view of its argument"
        assert not np.array_equal(out, x), f"{name} at {severity} changed nothing"
    np.testing.assert_array_equal(x, before, err_msg=f"{name} changed its argument")


@pytest.mark.parametrize(("name", "make", "apply", "severities"), CORRUPTIONS, ids=IDS)
def test_one_seed_gives_one_result(name, make, apply, severities) -> None:  # type: ignore[no-untyped-def]
    x = make()
    first = apply(x, severities[1], np.random.default_rng(7))
    np.testing.assert_array_equal(first, apply(x, severities[1], np.random.default_rng(7)))
    if name in RANDOM:
        assert not np.array_equal(first, apply(x, severities[1], np.random.default_rng(8))), name


@pytest.mark.parametrize(("name", "make", "apply", "severities"), CORRUPTIONS, ids=IDS)
def test_a_corruption_grows_with_its_severity(name, make, apply, severities) -> None:  # type: ignore[no-untyped-def]
    x = make()
    change = [float(np.abs(apply(x, s, np.random.default_rng(0)).astype(float) - x).mean()) for s in severities]
    assert change == sorted(change) and change[0] < change[-1], f"{name}: {change}"


def test_noise_has_the_sd_asked_for_per_feature_and_only_where_asked() -> None:
    x = np.zeros((20000, 3), dtype=np.float32)
    out = gaussian_noise(x, np.array([0.5, 2.0, 1.0]), np.random.default_rng(0), where=np.array([True, True, False]))
    np.testing.assert_allclose(out.std(axis=0), [0.5, 2.0, 0.0], atol=0.03)


def test_contrast_scales_each_images_spread_around_its_own_mean() -> None:
    x = images()
    out = scale_contrast(x, 0.5)
    np.testing.assert_allclose(out.mean(axis=(1, 2, 3)), x.mean(axis=(1, 2, 3)), atol=1e-5)
    np.testing.assert_allclose(out.std(axis=(1, 2, 3)), 0.5 * x.std(axis=(1, 2, 3)), rtol=1e-4)


def test_rotation_by_a_quarter_turn_moves_the_square_and_works_in_3d() -> None:
    x = np.zeros((2, 1, 9, 9), dtype=np.float32)
    x[:, :, 0, 4] = 1.0  # a dot at the top centre
    out = rotate(x, 90.0, np.random.default_rng(0))
    for image in out:
        row, column = np.unravel_index(np.argmax(image[0]), (9, 9))
        assert (row, column) in {(4, 0), (4, 8)}, "a quarter turn brings the top centre to a side"
    volume = np.random.default_rng(0).normal(size=(2, 1, 4, 10, 10)).astype(np.float32)
    assert rotate(volume, 10.0, np.random.default_rng(0)).shape == volume.shape


def test_blur_and_lower_resolution_remove_fine_detail_and_keep_the_mean_in_2d_and_3d() -> None:
    checker = np.indices((16, 16)).sum(axis=0) % 2  # the finest detail there is
    x = np.broadcast_to(checker, (2, 1, 16, 16)).astype(np.float32)
    for out in (gaussian_blur(x, 2.0, spatial_dims=2), lower_resolution(x, 2.0, spatial_dims=2)):
        assert out.std() < 0.1 * x.std()
        assert out.mean() == pytest.approx(x.mean(), abs=0.02)
    volume = np.random.default_rng(0).normal(size=(2, 1, 8, 8, 8)).astype(np.float32)
    assert lower_resolution(volume, 2.0, spatial_dims=3).std() < volume.std()
    assert gaussian_blur(volume, 1.0, spatial_dims=3).std() < volume.std()
    np.testing.assert_allclose(lower_resolution(volume, 1.0, spatial_dims=3), volume, atol=1e-5)


def spectrum_peak(x: np.ndarray, sampling_rate: float) -> float:
    power = np.abs(np.fft.rfft(x, axis=-1)) ** 2
    return float(np.fft.rfftfreq(x.shape[-1], 1.0 / sampling_rate)[np.argmax(power.mean(axis=(0, 1)))])


def test_wander_and_hum_add_a_sine_at_their_frequency_with_the_amplitude_asked_for() -> None:
    x = np.zeros((4, 2, 5000), dtype=np.float32)  # 20 s at 250 Hz
    hum = powerline_hum(x, 0.5, np.random.default_rng(0), sampling_rate=250.0)
    assert spectrum_peak(hum, 250.0) == pytest.approx(50.0, abs=0.1)
    np.testing.assert_allclose(np.sqrt(2 * (hum.astype(float) ** 2).mean(axis=-1)), 0.5, rtol=1e-3)  # amplitude
    wander = baseline_wander(x, 2.0, np.random.default_rng(0), sampling_rate=250.0)
    assert spectrum_peak(wander, 250.0) == pytest.approx(0.3, abs=0.06)
    with pytest.raises(MedDLError, match="sampling rate above 100"):
        powerline_hum(x, 0.5, np.random.default_rng(0), sampling_rate=100.0)


def test_dropped_channels_are_flat_and_exactly_as_many_as_asked() -> None:
    x = signals()
    out = drop_channels(x, 2, np.random.default_rng(0))
    flat = (out == 0).all(axis=-1)  # (N, C)
    assert (flat.sum(axis=1) == 2).all()
    np.testing.assert_array_equal(out[~flat], x[~flat])
    with pytest.raises(MedDLError, match="between 1 and 3"):
        drop_channels(x, 4, np.random.default_rng(0))


def test_masked_values_take_the_fill_of_their_feature_in_the_share_asked_for() -> None:
    x = np.ones((5000, 3), dtype=np.float32)
    out = mask_values(x, 0.3, np.random.default_rng(0), fill=np.array([-1.0, -2.0, -3.0]))
    for j, fill in enumerate((-1.0, -2.0, -3.0)):
        assert set(np.unique(out[:, j])) == {fill, 1.0}
        assert (out[:, j] == fill).mean() == pytest.approx(0.3, abs=0.03)


def test_one_hot_mutations_stay_one_hot_at_the_rate_asked_for_and_spare_ambiguous_bases() -> None:
    sequences = dna(n=200, length=100)
    x = one_hot(sequences, 100)
    out = mutate_one_hot(x, 0.1, np.random.default_rng(0))
    definite = np.isclose(x.max(axis=1), 1.0)
    np.testing.assert_array_equal(out[:, :, ~definite[0]][0], x[:, :, ~definite[0]][0])  # the N stretch
    assert np.allclose(out.sum(axis=1), x.sum(axis=1)) and set(np.unique(out[:, :, definite[0]])) <= {0.0, 1.0}
    changed = (np.argmax(out, axis=1) != np.argmax(x, axis=1)) & definite
    assert changed.sum() / definite.sum() == pytest.approx(0.1, abs=0.01)


def decode(tokens: np.ndarray, k: int) -> list[str]:
    """Sequences read back from k-mer tokens (N where a base is known from no k-mer)."""
    vocabulary = KmerTokenizer(k=k).fit().vocabulary
    out = []
    for row in tokens:
        bases = ["N"] * (len(row) + k - 1)
        for j, token in enumerate(row):
            if token >= 2:
                bases[j : j + k] = vocabulary[token]
        out.append("".join(bases))
    return out


def test_kmer_mutations_are_the_tokens_of_the_mutated_sequences() -> None:
    """Mutated tokens decode to sequences whose own tokens they are; the mutation rate per base is as asked."""
    tokenizer = KmerTokenizer(k=4).fit()
    sequences = dna(n=100, length=60, seed=1)
    tokens = tokenizer.encode(sequences, 60)
    out = mutate_kmer_tokens(tokens, 0.05, np.random.default_rng(0), k=4)
    mutated = decode(out, 4)
    np.testing.assert_array_equal(out, tokenizer.encode(mutated, 60))
    before = decode(tokens, 4)
    known = [(a, b) for s, t in zip(before, mutated, strict=True) for a, b in zip(s, t, strict=True) if a != "N"]
    assert np.mean([a != b for a, b in known]) == pytest.approx(0.05, abs=0.01)
    assert (out[0] == KmerTokenizer.UNK).sum() == (tokens[0] == KmerTokenizer.UNK).sum(), "k-mers with N stay [UNK]"


def test_a_shift_moves_the_content_and_fills_what_comes_in() -> None:
    x = np.arange(10, dtype=np.float32)[None, None].repeat(40, axis=0)  # (40, 1, 10)
    out = shift_along_axis(x, 3, np.random.default_rng(0), fill=-1.0)
    right = out[:, 0, 0] == -1.0
    assert right.any() and (~right).any(), "both directions are drawn"
    np.testing.assert_array_equal(out[right, 0], np.r_[[-1.0] * 3, np.arange(7)][None].repeat(right.sum(), 0))
    np.testing.assert_array_equal(out[~right, 0], np.r_[np.arange(3, 10), [-1.0] * 3][None].repeat((~right).sum(), 0))


def test_a_corruption_needs_positive_rising_severities() -> None:
    def same(x: np.ndarray, s: float, rng: Rng) -> np.ndarray:
        return x

    for severities in [(), (0.0, 1.0), (0.5, 0.2), (1.0, 1.0), (float("nan"),)]:
        with pytest.raises(MedDLError, match="severities"):
            Corruption("broken", "broken", "unit", severities, same)
    assert Corruption("fine", "fine", "unit", (0.1, 0.5), same).severities == (0.1, 0.5)


def test_each_corruption_and_severity_has_its_own_reproducible_generator() -> None:
    draw = [corruption_rng(0, "noise", 0).random(), corruption_rng(0, "noise", 1).random()]
    draw += [corruption_rng(0, "blur", 0).random(), corruption_rng(1, "noise", 0).random()]
    assert len(set(draw)) == 4
    assert corruption_rng(0, "noise", 0).random() == draw[0]


# -- evaluate_robustness -------------------------------------------------------------------------------------------


def flip_share(x: np.ndarray, share: float, rng: Rng) -> np.ndarray:
    """Scores of a share of the cases turned to their opposite (1 − p): a perfect ranking spoilt in proportion."""
    flipped = rng.random(len(x)) < share
    return np.where(flipped, 1.0 - x, x)


def perfect_case(n: int = 400, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Labels and a perfect score for them (every positive above every negative)."""
    y = np.random.default_rng(seed).integers(0, 2, n)
    return y, np.where(y == 1, 0.8, 0.2) + np.random.default_rng(seed + 1).uniform(-0.1, 0.1, n)


def test_a_perfect_scorer_is_perfect_clean_and_falls_with_severity_inside_its_cis() -> None:
    y, inputs = perfect_case()
    corruption = Corruption("flip", "flipped scores", "share of cases", (0.1, 0.3, 0.5), flip_share)
    result = evaluate_robustness("binary", y, lambda x: x, inputs, [corruption], n_bootstrap=200, seed=0)
    assert result["metric"] == "auroc" and result["higher_is_better"] is True and result["n"] == len(y)
    assert result["clean"]["value"] == 1.0
    rows = result["corruptions"][0]["severities"]
    values = [row["value"] for row in rows]
    assert values == sorted(values, reverse=True) and values[0] < 1.0
    assert values[-1] == pytest.approx(0.5, abs=0.08), "half the cases flipped: no better than chance"
    for row in rows:
        low, high = row["ci"]
        assert low <= row["value"] <= high and high - low > 0
        assert row["drop"] == pytest.approx(1.0 - row["value"])
        rng = corruption_rng(0, "flip", 0)  # every severity draws the same numbers
        expected = binary_metrics(y, flip_share(inputs, row["severity"], rng))["auroc"]
        assert row["value"] == pytest.approx(expected), "the metric of exactly the corrupted scores"
    worst = result["worst"]
    assert worst["corruption"] == "flip" and worst["severity"] == 0.5
    assert worst["drop"] == pytest.approx(1.0 - values[-1])
    assert worst["ci"][0] <= worst["drop"] <= worst["ci"][1]


def test_the_worst_drop_is_the_largest_fall_over_corruptions_in_the_metrics_better_direction() -> None:
    """Regression (RMSE: lower is better) on a hand-made case: shifting predictions by 1 and 3 raises RMSE from 0 to
    exactly 1 and 3; a corruption that improves the predictions has a negative drop."""
    y = np.linspace(0.0, 10.0, 50)

    def shift(x: np.ndarray, amount: float, rng: Rng) -> np.ndarray:
        return x + amount

    def halve_error(x: np.ndarray, amount: float, rng: Rng) -> np.ndarray:
        return y + (x - y) * (1 - amount)

    noisy = y + np.where(np.arange(50) % 2 == 0, 0.5, -0.5)  # RMSE 0.5 clean
    corruptions = [
        Corruption("offset", "offset", "units", (1.0, 3.0), shift),
        Corruption("better", "better", "share", (0.5,), halve_error),
    ]
    result = evaluate_robustness("regression", y, lambda x: x, noisy, corruptions, n_bootstrap=50)
    assert result["metric"] == "rmse" and result["higher_is_better"] is False
    assert result["clean"]["value"] == pytest.approx(0.5)
    offset, better = result["corruptions"]
    # predictions y ± 0.5 shifted by 1 and 3: errors 1.5/0.5 and 3.5/2.5, RMSE sqrt((a² + b²)/2)
    expected = [np.sqrt((1.5**2 + 0.5**2) / 2), np.sqrt((3.5**2 + 2.5**2) / 2)]
    assert [row["value"] for row in offset["severities"]] == pytest.approx(expected)
    assert offset["worst_drop"] == pytest.approx(expected[1] - 0.5) and offset["worst_severity"] == 3.0
    assert better["severities"][0]["drop"] == pytest.approx(0.25 - 0.5)
    assert result["worst"]["corruption"] == "offset" and result["worst"]["drop"] == pytest.approx(expected[1] - 0.5)


def test_results_are_reproducible_and_survival_is_judged_by_concordance() -> None:
    rng = np.random.default_rng(0)
    risk = rng.normal(size=300)
    time = np.exp(-risk + rng.normal(0, 0.3, 300)) * 10
    event = (rng.random(300) < 0.7).astype(float)
    y = np.column_stack([time, event])
    noise = Corruption("noise", "noise", "SD", (0.5, 2.0), lambda x, s, r: gaussian_noise(x, s, r))
    first = evaluate_robustness("survival", y, lambda x: x[:, None], risk, [noise], n_bootstrap=30, seed=1)
    assert first == evaluate_robustness("survival", y, lambda x: x[:, None], risk, [noise], n_bootstrap=30, seed=1)
    assert first["metric"] == "c_index" and first["clean"]["value"] > 0.8
    drops = [row["drop"] for row in first["corruptions"][0]["severities"]]
    assert 0 < drops[0] < drops[1]


def test_patients_are_resampled_and_bad_arguments_are_named() -> None:
    y, inputs = perfect_case(100)
    flip = Corruption("flip", "flip", "share", (0.2,), flip_share)
    groups = np.repeat(np.arange(50), 2)
    result = evaluate_robustness("binary", y, lambda x: x, inputs, [flip], groups=groups, n_bootstrap=20)
    assert result["corruptions"][0]["severities"][0]["ci"][0] is not None
    with pytest.raises(MedDLError, match="not a binary metric"):
        evaluate_robustness("binary", y, lambda x: x, inputs, [flip], metric="rmse", n_bootstrap=0)
    with pytest.raises(MedDLError, match="unique"):
        evaluate_robustness("binary", y, lambda x: x, inputs, [flip, flip], n_bootstrap=0)
    dropping = Corruption("lose_rows", "lose rows", "rows", (1.0,), lambda x, s, r: x[1:])
    with pytest.raises(MedDLError, match="99 scores for 100 rows"):
        evaluate_robustness("binary", y, lambda x: x, inputs, [dropping], n_bootstrap=0)
    with pytest.raises(MedDLError, match="groups"):
        evaluate_robustness("binary", y, lambda x: x, inputs, [flip], groups=groups[:10], n_bootstrap=0)
