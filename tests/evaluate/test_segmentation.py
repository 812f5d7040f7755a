"""Tests of meddl.evaluate.segmentation: known answers by hand, the empty conventions, lesion counts,
patient-level bootstrap, and cross-checks against MONAI."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch
from monai.metrics import (
    compute_average_surface_distance,
    compute_dice,
    compute_hausdorff_distance,
    compute_iou,
)

from meddl.errors import MedDLError
from meddl.evaluate.segmentation import CASE_METRICS, aggregate, case_metrics, dice_score, per_case_table


def _cube(shape: tuple[int, ...], start: int, stop: int) -> np.ndarray:
    mask = np.zeros(shape, dtype=np.int64)
    mask[tuple(slice(start, stop) for _ in shape)] = 1
    return mask


def _ball(shape: tuple[int, int, int], centre: tuple[int, int, int], radius: float) -> np.ndarray:
    grid = np.indices(shape)  # (3, D, H, W)
    squared = sum((grid[axis] - centre[axis]) ** 2 for axis in range(3))
    return (squared <= radius**2).astype(np.int64)


def _one_hot(label_map: np.ndarray, values: list[int]) -> torch.Tensor:
    return torch.from_numpy(np.stack([label_map == v for v in values]))[None].float()  # (1, C, *spatial)


# --------------------------------------------------------------------------- case_metrics: known answers


def test_dice_and_iou_of_two_overlapping_squares_match_the_formula():
    truth = np.zeros((20, 20), dtype=np.int64)
    prediction = np.zeros((20, 20), dtype=np.int64)
    truth[2:8, 2:8] = 1  # 36 pixels
    prediction[5:12, 4:10] = 1  # 42 pixels; overlap rows 5..7, cols 4..7 = 3 x 4 = 12
    metrics = case_metrics(prediction, truth, (1.0, 1.0), {1: "lesion"})["lesion"]
    assert metrics["dice"] == pytest.approx(2 * 12 / (36 + 42), rel=1e-6)
    assert metrics["iou"] == pytest.approx(12 / (36 + 42 - 12), rel=1e-6)


def test_hd95_of_a_shifted_cube_is_the_shift_in_mm_along_the_anisotropic_axis():
    truth = _cube((20, 20, 20), 5, 15)
    along_thick_axis = np.roll(truth, 2, axis=0)  # 2 voxels of 2 mm
    along_thin_axis = np.roll(truth, 2, axis=1)  # 2 voxels of 1 mm
    spacing = (2.0, 1.0, 1.0)
    assert case_metrics(along_thick_axis, truth, spacing, {1: "c"})["c"]["hd95"] == pytest.approx(4.0, abs=1e-5)
    assert case_metrics(along_thin_axis, truth, spacing, {1: "c"})["c"]["hd95"] == pytest.approx(2.0, abs=1e-5)


def test_hd95_of_a_shifted_sphere_is_bounded_by_the_shift_in_mm():
    truth = _ball((32, 32, 32), (16, 16, 16), 8)
    spacing = (2.0, 1.0, 1.0)
    thick = case_metrics(_ball((32, 32, 32), (18, 16, 16), 8), truth, spacing, {1: "s"})["s"]
    thin = case_metrics(_ball((32, 32, 32), (16, 16, 18), 8), truth, spacing, {1: "s"})["s"]
    # every surface point moved by exactly the shift, so no distance exceeds it; most of the surface near the poles
    # moved almost all of it
    assert 3.0 <= thick["hd95"] <= 4.0 + 1e-5
    assert 1.5 <= thin["hd95"] <= 2.0 + 1e-5
    assert 0 < thick["msd"] < thick["hd95"]


def test_volume_is_in_millilitres_from_the_spacing_in_3d_and_in_square_mm_in_2d():
    truth = _cube((12, 12, 12), 1, 11)  # 1000 voxels
    prediction = _cube((12, 12, 12), 1, 9)  # 512 voxels
    metrics = case_metrics(prediction, truth, (2.0, 1.5, 1.0), {1: "organ"})["organ"]
    assert metrics["volume_true"] == pytest.approx(3.0)  # 1000 voxels x 3 mm^3 / 1000
    assert metrics["volume_pred"] == pytest.approx(1.536)
    assert metrics["volume_error"] == pytest.approx(1.536 - 3.0)
    assert metrics["volume_error_pct"] == pytest.approx(100 * (1000 - 512) / 1000)

    flat = case_metrics(prediction[5], truth[5], (0.5, 0.5), {1: "organ"})["organ"]
    assert flat["volume_true"] == pytest.approx(100 * 0.25)  # 100 pixels of 0.25 mm^2
    assert flat["volume_pred"] == pytest.approx(64 * 0.25)


def test_each_label_is_scored_on_its_own_and_unlisted_labels_are_ignored():
    truth = np.zeros((10, 10), dtype=np.int64)
    truth[1:4, 1:4] = 1
    truth[6:9, 6:9] = 2
    prediction = truth.copy()
    prediction[6:9, 6:9] = 0  # label 2 missed entirely
    prediction[0, 9] = 7  # a label nobody asked about
    result = case_metrics(prediction, truth, (1.0, 1.0), {1: "kidney", 2: "cyst"})
    assert list(result) == ["kidney", "cyst"]
    assert result["kidney"]["dice"] == pytest.approx(1.0)
    assert result["kidney"]["hd95"] == pytest.approx(0.0)
    assert result["cyst"]["dice"] == 0.0


# --------------------------------------------------------------------------- empty conventions


def test_both_empty_scores_a_perfect_case():
    empty = np.zeros((8, 8, 8), dtype=np.int64)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # MONAI's empty-mask warnings must not reach the user
        metrics = case_metrics(empty, empty, (1.0, 1.0, 1.0), {1: "tumour"})["tumour"]
    assert (metrics["dice"], metrics["iou"], metrics["hd95"], metrics["msd"]) == (1.0, 1.0, 0.0, 0.0)
    assert metrics["volume_error"] == 0.0
    assert metrics["volume_error_pct"] is None
    assert (metrics["lesions_true"], metrics["lesions_detected"], metrics["false_positive_lesions"]) == (0, 0, 0)
    assert metrics["lesion_sensitivity"] is None


def test_model_finding_nothing_scores_zero_overlap_and_the_image_diagonal():
    truth = np.zeros((10, 12, 8), dtype=np.int64)
    truth[2:5, 2:5, 2:5] = 1
    empty = np.zeros_like(truth)
    diagonal = math.sqrt((10 * 2.0) ** 2 + (12 * 1.0) ** 2 + (8 * 0.5) ** 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        metrics = case_metrics(empty, truth, (2.0, 1.0, 0.5), {1: "tumour"})["tumour"]
    assert (metrics["dice"], metrics["iou"]) == (0.0, 0.0)
    assert metrics["hd95"] == pytest.approx(diagonal)
    assert metrics["msd"] == pytest.approx(diagonal)
    assert metrics["volume_error_pct"] == pytest.approx(100.0)
    assert metrics["lesions_true"] == 1
    assert metrics["lesions_detected"] == 0
    assert metrics["lesion_sensitivity"] == 0.0


def test_prediction_on_an_empty_truth_scores_zero_overlap_and_the_image_diagonal():
    prediction = np.zeros((6, 9), dtype=np.int64)
    prediction[1:3, 1:3] = 1
    empty = np.zeros_like(prediction)
    metrics = case_metrics(prediction, empty, (1.0, 0.5), {1: "nodule"})["nodule"]
    assert (metrics["dice"], metrics["iou"]) == (0.0, 0.0)
    assert metrics["hd95"] == pytest.approx(math.sqrt(6.0**2 + 4.5**2))
    assert metrics["msd"] == pytest.approx(math.sqrt(6.0**2 + 4.5**2))
    assert metrics["volume_error_pct"] is None
    assert metrics["false_positive_lesions"] == 1
    assert metrics["lesion_sensitivity"] is None


# --------------------------------------------------------------------------- lesions


def test_lesion_counts_with_one_detected_one_missed_and_one_false_positive_blob():
    truth = np.zeros((30, 30, 30), dtype=np.int64)
    truth[2:6, 2:6, 2:6] = 1  # lesion A: found
    truth[20:24, 20:24, 20:24] = 1  # lesion B: missed
    prediction = np.zeros_like(truth)
    prediction[4:8, 4:8, 4:8] = 1  # overlaps A
    prediction[2:5, 20:23, 2:5] = 1  # touches no true voxel
    metrics = case_metrics(prediction, truth, (1.0, 1.0, 1.0), {1: "metastasis"})["metastasis"]
    assert metrics["lesions_true"] == 2
    assert metrics["lesions_detected"] == 1
    assert metrics["false_positive_lesions"] == 1
    assert metrics["lesion_sensitivity"] == 0.5


def test_lesions_touching_at_a_corner_are_one_component():
    truth = np.zeros((6, 6, 6), dtype=np.int64)
    truth[1, 1, 1] = 1
    truth[2, 2, 2] = 1  # shares only a corner with the first voxel: one lesion under full connectivity
    metrics = case_metrics(truth, truth, (1.0, 1.0, 1.0), {1: "x"})["x"]
    assert metrics["lesions_true"] == 1
    assert metrics["lesions_detected"] == 1


# --------------------------------------------------------------------------- cross-check against MONAI


@pytest.mark.filterwarnings("ignore:.*always_return_as_numpy:FutureWarning")
@pytest.mark.parametrize("shape, spacing", [((24, 20), (0.7, 1.3)), ((14, 16, 12), (2.5, 0.8, 1.1))])
def test_dice_iou_hd95_msd_agree_with_monai_on_a_random_case(shape, spacing):
    rng = np.random.default_rng(7)
    truth = rng.integers(0, 3, size=shape)
    prediction = np.where(rng.random(shape) < 0.3, rng.integers(0, 3, size=shape), truth)
    values = [1, 2]
    ours = case_metrics(prediction, truth, spacing, {1: "a", 2: "b"})
    pred_hot, true_hot = _one_hot(prediction, values), _one_hot(truth, values)
    dice = compute_dice(pred_hot, true_hot, include_background=True)[0]
    iou = compute_iou(pred_hot, true_hot, include_background=True)[0]
    hd95 = compute_hausdorff_distance(pred_hot, true_hot, include_background=True, percentile=95, spacing=spacing)[0]
    msd = compute_average_surface_distance(
        pred_hot, true_hot, include_background=True, symmetric=True, spacing=spacing
    )[0]
    for channel, name in enumerate(["a", "b"]):
        assert ours[name]["dice"] == pytest.approx(float(dice[channel]), rel=1e-6)
        assert ours[name]["iou"] == pytest.approx(float(iou[channel]), rel=1e-6)
        assert ours[name]["hd95"] == pytest.approx(float(hd95[channel]), rel=1e-6)
        assert ours[name]["msd"] == pytest.approx(float(msd[channel]), rel=1e-6)
        assert 0 < ours[name]["dice"] < 1


def test_case_metrics_accepts_tensors_and_integral_floats():
    truth = _cube((8, 8), 2, 6)
    from_tensor = case_metrics(torch.from_numpy(truth), torch.from_numpy(truth), (1.0, 1.0), {1: "x"})
    from_float = case_metrics(truth.astype(np.float32), truth.astype(np.float64), (1.0, 1.0), {1: "x"})
    assert from_tensor == from_float
    assert from_tensor["x"]["dice"] == 1.0


@pytest.mark.parametrize(
    "prediction, truth, spacing, labels, message",
    [
        (np.zeros((4, 4), int), np.zeros((4, 5), int), (1, 1), {1: "x"}, "same shape"),
        (np.zeros((4,), int), np.zeros((4,), int), (1,), {1: "x"}, "2D or 3D"),
        (np.zeros((4, 4), int), np.zeros((4, 4), int), (1, 1, 1), {1: "x"}, "one value"),
        (np.zeros((4, 4), int), np.zeros((4, 4), int), (1, 0), {1: "x"}, "axis 1"),
        (np.full((4, 4), 0.5), np.zeros((4, 4), int), (1, 1), {1: "x"}, "fractional"),
        (np.zeros((4, 4), int), np.zeros((4, 4), int), (1, 1), {}, "non-empty"),
        (np.zeros((4, 4), int), np.zeros((4, 4), int), (1, 1), {1: "x", 2: "x"}, "unique"),
    ],
)
def test_case_metrics_rejects_bad_input_with_a_message_naming_it(prediction, truth, spacing, labels, message):
    with pytest.raises(MedDLError, match=message):
        case_metrics(prediction, truth, spacing, labels)


# --------------------------------------------------------------------------- per_case_table


def test_per_case_table_has_one_row_per_case_and_label():
    truth = _cube((10, 10), 2, 6)
    cases = [
        case_metrics(truth, truth, (1.0, 1.0), {1: "a", 2: "b"}),
        case_metrics(np.zeros_like(truth), truth, (1.0, 1.0), {1: "a", 2: "b"}),
    ]
    table = per_case_table(cases, case_ids=["scan-01", "scan-02"])
    assert list(table.columns) == ["case", "label", *CASE_METRICS]
    assert table[["case", "label"]].values.tolist() == [
        ["scan-01", "a"],
        ["scan-01", "b"],
        ["scan-02", "a"],
        ["scan-02", "b"],
    ]
    assert table["dice"].tolist() == [1.0, 1.0, 0.0, 1.0]
    assert table["volume_error_pct"].isna().tolist() == [False, True, False, True]  # empty truth of label b
    assert per_case_table(cases)["case"].tolist() == [0, 0, 1, 1]
    with pytest.raises(MedDLError, match="case_ids"):
        per_case_table(cases, case_ids=["only-one"])


# --------------------------------------------------------------------------- aggregate


def _synthetic_cases(n: int, seed: int) -> list[dict]:
    """n cases of two labels with varied overlap; label 'cyst' has an empty truth in case 0."""
    rng = np.random.default_rng(seed)
    cases = []
    for index in range(n):
        truth = np.zeros((16, 16, 16), dtype=np.int64)
        truth[3:11, 3:11, 3:11] = 1
        if index != 0:
            truth[12:15, 12:15, 12:15] = 2
        prediction = np.roll(truth, int(rng.integers(0, 4)), axis=int(rng.integers(0, 3)))
        cases.append(case_metrics(prediction, truth, (1.5, 1.0, 1.0), {1: "liver", 2: "cyst"}))
    return cases


def test_aggregate_means_medians_cis_and_counts():
    cases = _synthetic_cases(10, seed=1)
    result = aggregate(cases, groups=None, n_bootstrap=300, level=0.9, seed=0, spatial_dims=3)
    liver_dice = [case["liver"]["dice"] for case in cases]
    entry = result["per_label"]["liver"]["dice"]
    assert entry["value"] == pytest.approx(np.mean(liver_dice))
    assert entry["n"] == 10
    assert entry["ci"][0] <= entry["value"] <= entry["ci"][1]
    assert entry["ci"][0] < entry["ci"][1]
    assert result["per_label"]["liver"]["dice_median"]["value"] == pytest.approx(np.median(liver_dice))
    hd95 = [case["cyst"]["hd95"] for case in cases]
    assert result["per_label"]["cyst"]["hd95_median"]["value"] == pytest.approx(np.median(hd95))
    assert (result["n_cases"], result["n_patients"], result["volume_unit"]) == (10, 10, "mL")
    assert result["labels"] == ["liver", "cyst"]
    json.dumps(result)  # JSON-ready, nan replaced by None


def test_aggregate_skips_none_values_and_says_how_many_were_used():
    cases = _synthetic_cases(6, seed=2)  # cyst truth empty in case 0 -> volume_error_pct None there
    result = aggregate(cases, groups=None, n_bootstrap=50, level=0.95, seed=0, spatial_dims=3)
    entry = result["per_label"]["cyst"]["volume_error_pct"]
    expected = np.mean([case["cyst"]["volume_error_pct"] for case in cases[1:]])
    assert entry["n"] == 5
    assert entry["value"] == pytest.approx(expected)
    assert "undefined" not in entry
    assert result["per_label"]["cyst"]["dice"]["n"] == 6  # dice is never None: the empty case counts
    assert result["counts"]["cyst"]["empty_truth"] == 1


def test_aggregate_reports_a_metric_no_case_defines_as_undefined():
    empty = np.zeros((6, 6), dtype=np.int64)
    cases = [case_metrics(empty, empty, (1.0, 1.0), {1: "x"}) for _ in range(3)]
    result = aggregate(cases, groups=None, n_bootstrap=20, level=0.95, seed=0, spatial_dims=2)
    entry = result["per_label"]["x"]["lesion_sensitivity"]
    assert entry["value"] is None
    assert entry["ci"] == [None, None]
    assert entry["n"] == 0
    assert "no case has a true lesion" in entry["undefined"]
    assert result["volume_unit"] == "mm²"
    assert result["metrics"]["dice"]["value"] == 1.0


def test_headline_dice_is_the_macro_mean_over_labels():
    cases = _synthetic_cases(8, seed=3)
    result = aggregate(cases, groups=None, n_bootstrap=100, level=0.95, seed=0, spatial_dims=3)
    per_label = [result["per_label"][name]["dice"]["value"] for name in ("liver", "cyst")]
    assert result["metrics"]["dice"]["value"] == pytest.approx(np.mean(per_label))
    assert result["metrics"]["dice"]["value"] != pytest.approx(per_label[0])  # labels differ: a real average
    low, high = result["metrics"]["dice"]["ci"]
    assert low <= result["metrics"]["dice"]["value"] <= high
    hd95 = [result["per_label"][name]["hd95"]["value"] for name in ("liver", "cyst")]
    assert result["metrics"]["hd95"]["value"] == pytest.approx(np.mean(hd95))


def test_bootstrap_resamples_patients_so_repeated_scans_do_not_narrow_the_ci():
    one_per_patient = _synthetic_cases(5, seed=4)
    three_per_patient = [case for case in one_per_patient for _ in range(3)]  # three identical scans each
    patient_ids = np.repeat(np.array(["p1", "p2", "p3", "p4", "p5"]), 3)
    kwargs = {"n_bootstrap": 400, "level": 0.95, "seed": 11, "spatial_dims": 3}
    by_patient = aggregate(three_per_patient, groups=patient_ids, **kwargs)
    reference = aggregate(one_per_patient, groups=None, **kwargs)
    by_scan = aggregate(three_per_patient, groups=None, **kwargs)
    assert (by_patient["n_cases"], by_patient["n_patients"]) == (15, 5)
    assert by_scan["n_patients"] == 15
    # scans of a patient move together: the same interval as one scan per patient
    assert by_patient["per_label"]["liver"]["dice"]["ci"] == pytest.approx(
        reference["per_label"]["liver"]["dice"]["ci"]
    )
    assert by_patient["metrics"]["dice"]["ci"] == pytest.approx(reference["metrics"]["dice"]["ci"])
    # treating the 15 scans as independent pretends to more evidence: a narrower interval
    width = np.diff(by_patient["metrics"]["dice"]["ci"])[0]
    assert np.diff(by_scan["metrics"]["dice"]["ci"])[0] < width


def test_counts_of_empty_truth_empty_prediction_and_missed_cases():
    truth = _cube((8, 8), 2, 5)
    empty = np.zeros_like(truth)
    cases = [
        case_metrics(truth, truth, (1.0, 1.0), {1: "x"}),
        case_metrics(empty, truth, (1.0, 1.0), {1: "x"}),  # missed
        case_metrics(empty, empty, (1.0, 1.0), {1: "x"}),  # nothing to find, nothing found
        case_metrics(truth, empty, (1.0, 1.0), {1: "x"}),  # false alarm on an empty truth
    ]
    result = aggregate(cases, groups=None, n_bootstrap=0, level=0.95, seed=0, spatial_dims=2)
    assert result["counts"]["x"] == {"empty_truth": 2, "empty_prediction": 2, "missed": 1}
    assert result["metrics"]["dice"] == {"value": 0.5, "ci": [None, None], "n": 4}


@pytest.mark.parametrize(
    "change, message",
    [
        ({"groups": np.array([1, 2])}, "one patient id per case"),
        ({"spatial_dims": 4}, "spatial_dims"),
        ({"level": 1.5}, "level"),
    ],
)
def test_aggregate_rejects_bad_arguments(change, message):
    cases = _synthetic_cases(3, seed=5)
    kwargs = {"groups": None, "n_bootstrap": 10, "level": 0.95, "seed": 0, "spatial_dims": 3, **change}
    with pytest.raises(MedDLError, match=message):
        aggregate(cases, **kwargs)


def test_aggregate_rejects_cases_scoring_other_labels():
    cases = _synthetic_cases(2, seed=6)
    cases[1] = {"liver": cases[1]["liver"]}
    with pytest.raises(MedDLError, match=r"per_case\[1\]"):
        aggregate(cases, groups=None, n_bootstrap=10, level=0.95, seed=0, spatial_dims=3)


# --------------------------------------------------------------------------- dice_score


@pytest.mark.parametrize("shape", [(3, 12, 14), (2, 8, 9, 10)])
def test_dice_score_matches_monai_compute_dice(shape):
    rng = np.random.default_rng(0)
    n_classes = 4
    truth = rng.integers(0, 3, size=shape)  # class 3 absent from the truth
    prediction = np.where(rng.random(shape) < 0.4, rng.integers(0, 4, size=shape), truth)
    prediction[0][prediction[0] == 3] = 0  # case 0: class 3 absent from both maps -> 1
    one_hot = lambda maps: torch.nn.functional.one_hot(torch.from_numpy(maps), n_classes).movedim(-1, 1).float()  # noqa: E731
    expected = compute_dice(one_hot(prediction), one_hot(truth), include_background=False, ignore_empty=False)
    assert dice_score(prediction, truth, n_classes) == pytest.approx(float(expected.mean()), rel=1e-6)
    assert dice_score(torch.from_numpy(prediction), torch.from_numpy(truth), n_classes) == pytest.approx(
        float(expected.mean()), rel=1e-6
    )


def test_dice_score_of_a_perfect_prediction_is_one_and_of_a_disjoint_one_is_zero():
    truth = np.zeros((2, 6, 6), dtype=np.int64)
    truth[:, :3] = 1
    assert dice_score(truth, truth, 2) == 1.0
    assert dice_score(1 - truth, truth, 2) == 0.0


@pytest.mark.parametrize(
    "prediction, truth, n_classes, message",
    [
        (np.zeros((2, 4, 4), int), np.zeros((2, 4, 5), int), 2, "one shape"),
        (np.full((2, 4, 4), 2), np.zeros((2, 4, 4), int), 2, "outside"),
        (np.zeros((2, 4, 4)), np.zeros((2, 4, 4), int), 2, "integer labels"),
        (np.zeros((2, 4, 4), int), np.zeros((2, 4, 4), int), 1, "n_classes"),
    ],
)
def test_dice_score_rejects_bad_input(prediction, truth, n_classes, message):
    with pytest.raises(MedDLError, match=message):
        dice_score(prediction, truth, n_classes)


def test_module_imports_without_monai():
    code = "import sys, meddl.evaluate.segmentation; print('monai' in sys.modules, 'torch' in sys.modules)"
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert output.split() == ["False", "False"]


def test_dice_score_pools_the_tiles_of_a_case():
    truth = np.zeros((3, 4, 4), np.int64)
    prediction = np.zeros((3, 4, 4), np.int64)
    truth[0, :2, :2] = 1  # case 0: its lesion in tile 0, the prediction spills into tile 1
    prediction[0, :2, :2] = 1
    prediction[1, :2, :2] = 1
    truth[2, 0, 0] = 1  # case 1: missed
    # pooled: case 0 is 2·4 / (4 + 8) = 2/3, case 1 is 0; tile by tile it would be (1 + 0 + 0) / 3
    assert dice_score(prediction, truth, 2, cases=[5, 5, 9]) == pytest.approx((2 / 3 + 0) / 2)
    assert dice_score(prediction, truth, 2) == pytest.approx(1 / 3)
    with pytest.raises(MedDLError, match="case index per map"):
        dice_score(prediction, truth, 2, cases=[0, 1])
