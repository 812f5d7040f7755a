"""Segmentation metrics per case and over a test set, with patient-level bootstrap confidence intervals.

Overlap and surface distances come from MONAI (``compute_dice``, ``compute_iou``, ``compute_hausdorff_distance``
with ``percentile=95`` and ``compute_average_surface_distance`` with ``symmetric=True``), always with the voxel
spacing so distances are in millimetres; lesions are the connected components of a label (``scipy.ndimage.label``
with full connectivity: 8 neighbours in 2D, 26 in 3D).

Empty masks. MONAI returns nan or inf when the truth or the prediction of a label is empty; here every case gets a
number so that no case is silently dropped from a mean:

* truth and prediction both empty: ``dice = iou = 1`` and ``hd95 = msd = 0`` (nothing to find, nothing found);
* exactly one of them empty: ``dice = iou = 0`` and ``hd95 = msd =`` the image's diagonal in mm,
  ``sqrt(sum((shape[i] * spacing[i]) ** 2))``, longer than any distance between two voxels of the image. A case
  where the model finds nothing therefore counts as the worst possible case, never as a skipped one.
* ``volume_error_pct`` is None when the truth is empty (no volume to be a percentage of), and
  ``lesion_sensitivity`` is None when the truth has no lesion; :func:`aggregate` leaves those None values out of
  the metric's mean and reports how many cases were used (``n``).

Volumes: in 3D, millilitres (voxels x voxel volume in mm^3 / 1000); in 2D, the area in mm^2.

:func:`dice_score` is a separate, fast mean foreground Dice for validation during training (no MONAI, no surface
distances), following the same empty convention.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from numbers import Real
from typing import TYPE_CHECKING, Any

import numpy as np

from meddl.errors import MedDLError
from meddl.evaluate.bootstrap import bootstrap_metrics, check_bootstrap_arguments
from meddl.evaluate.evaluation import _json_ready

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["CASE_METRICS", "aggregate", "case_metrics", "dice_score", "per_case_table"]

CASE_METRICS = (
    "dice",
    "iou",
    "hd95",
    "msd",
    "volume_true",
    "volume_pred",
    "volume_error",
    "volume_error_pct",
    "lesions_true",
    "lesions_detected",
    "false_positive_lesions",
    "lesion_sensitivity",
)
# the macro average over labels, shown as the run's headline figures (dice first)
_MACRO_METRICS = ("dice", "iou", "hd95", "msd")
_MEDIAN_METRICS = ("dice", "hd95", "volume_error_pct")
_UNDEFINED_REASON = {
    "volume_error_pct": "the truth of this label is empty in every case",
    "lesion_sensitivity": "no case has a true lesion of this label",
}


# --------------------------------------------------------------------------- one case


def _as_label_map(values: object, name: str) -> np.ndarray:
    """An integer label map as a NumPy array (a torch tensor is moved to the CPU), validated."""
    if hasattr(values, "detach"):  # a torch tensor, possibly on a GPU
        values = values.detach().cpu().numpy()  # type: ignore[union-attr]
    array = np.asarray(values)
    if array.dtype.kind == "b":
        return array.astype(np.int64)
    if array.dtype.kind in "iu":
        return array
    if array.dtype.kind == "f":
        if not np.isfinite(array).all():
            raise MedDLError(f"{name} has {int((~np.isfinite(array)).sum())} non-finite values; expected label values")
        fractional = array != np.round(array)
        if fractional.any():
            example = array[fractional].flat[0]
            raise MedDLError(
                f"{name} must hold integer label values, got {int(fractional.sum())} fractional values, "
                f"e.g. {example!r}"
            )
        return array.astype(np.int64)
    raise MedDLError(f"{name} must be an integer label map, got dtype {array.dtype}")


def _check_spacing(spacing: object, ndim: int) -> tuple[float, ...]:
    try:
        values: tuple[Any, ...] = tuple(spacing)  # type: ignore[arg-type]
    except TypeError:
        raise MedDLError(f"spacing must be one number (mm) per axis, {ndim} values, got {spacing!r}") from None
    if len(values) != ndim:
        raise MedDLError(
            f"spacing must have one value (mm) per axis, {ndim} for this image, got {len(values)}: {spacing}"
        )
    for axis, value in enumerate(values):
        if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value) or value <= 0:
            raise MedDLError(f"spacing must be positive finite numbers (mm), got {value!r} for axis {axis}")
    return tuple(float(value) for value in values)


def _check_labels(labels: object) -> dict[int, str]:
    if not isinstance(labels, Mapping) or not labels:
        raise MedDLError(f"labels must be a non-empty mapping {{label value: name}}, got {labels!r}")
    checked: dict[int, str] = {}
    for value, name in labels.items():
        if isinstance(value, bool) or not isinstance(value, int | np.integer):
            raise MedDLError(f"labels keys must be integer label values, got {value!r} (named {name!r})")
        if not isinstance(name, str) or not name:
            raise MedDLError(f"labels must name label {value} with a non-empty string, got {name!r}")
        checked[int(value)] = name
    names = list(checked.values())
    if len(set(names)) != len(names):
        raise MedDLError(f"labels must have unique names, got {names}")
    return checked


def _lesion_counts(true_mask: np.ndarray, pred_mask: np.ndarray) -> tuple[int, int, int]:
    """(true lesions, true lesions touched by the prediction, predicted lesions touching no true voxel)."""
    from scipy import ndimage

    structure = ndimage.generate_binary_structure(true_mask.ndim, true_mask.ndim)  # full connectivity
    true_components, n_true = ndimage.label(true_mask, structure=structure)
    pred_components, n_pred = ndimage.label(pred_mask, structure=structure)
    detected = np.unique(true_components[pred_mask])
    n_detected = int(np.count_nonzero(detected))
    touching = np.unique(pred_components[true_mask])
    n_false_positive = int(n_pred - np.count_nonzero(touching))
    return int(n_true), n_detected, n_false_positive


def _surface_distances(true_mask: np.ndarray, pred_mask: np.ndarray, spacing: tuple[float, ...]) -> tuple[float, float]:
    """MONAI's symmetric 95th-percentile Hausdorff and mean surface distance (mm) of two non-empty masks."""
    import torch
    from monai.metrics import compute_average_surface_distance, compute_hausdorff_distance

    prediction = torch.from_numpy(pred_mask)[None, None]  # (1, 1, *spatial)
    truth = torch.from_numpy(true_mask)[None, None]  # (1, 1, *spatial)
    with warnings.catch_warnings():
        # MONAI 1.6 passes its own deprecated argument to get_mask_edges; nothing the caller can act on
        warnings.filterwarnings("ignore", message=".*always_return_as_numpy.*", category=FutureWarning)
        hd95 = compute_hausdorff_distance(prediction, truth, include_background=True, percentile=95, spacing=spacing)
        msd = compute_average_surface_distance(
            prediction, truth, include_background=True, symmetric=True, spacing=spacing
        )
    return float(hd95[0, 0]), float(msd[0, 0])


def case_metrics(
    prediction: object,
    truth: object,
    spacing: Sequence[float],
    labels: dict[int, str],
) -> dict[str, dict[str, float | int | None]]:
    """Overlap, surface distance, volume and lesion metrics of one segmented case, per label.

    See the module docstring for the values given when a mask is empty.

    Args:
        prediction: Predicted integer label map, shape ``(H, W)`` or ``(D, H, W)`` (NumPy array or tensor).
        truth: True integer label map of the same shape.
        spacing: Voxel size in mm along each axis of the maps, e.g. ``(2.5, 0.8, 0.8)``.
        labels: ``{label value: name}`` of the structures to score, e.g. ``{1: "liver", 2: "tumour"}``.

    Returns:
        ``{label name: {metric: value}}`` with plain Python numbers, the metrics being ``dice``, ``iou``,
        ``hd95`` (mm), ``msd`` (mean symmetric surface distance, mm), ``volume_true``, ``volume_pred`` and
        ``volume_error`` (prediction - truth; mL in 3D, mm^2 in 2D), ``volume_error_pct`` (``100 * |error| /
        volume_true``, None for an empty truth), ``lesions_true``, ``lesions_detected`` (true components touched
        by at least one predicted voxel), ``false_positive_lesions`` (predicted components touching no true voxel)
        and ``lesion_sensitivity`` (detected / true, None when there is no true lesion). For example::

            {"tumour": {"dice": 0.81, "iou": 0.68, "hd95": 3.2, "msd": 0.9, "volume_true": 12.4,
                        "volume_pred": 11.0, "volume_error": -1.4, "volume_error_pct": 11.3, "lesions_true": 2,
                        "lesions_detected": 1, "false_positive_lesions": 1, "lesion_sensitivity": 0.5}}

    Raises:
        MedDLError: If the maps are not 2D or 3D integer label maps of one shape, or ``spacing`` or ``labels``
            are invalid.
    """
    import torch
    from monai.metrics import compute_dice, compute_iou

    predicted = _as_label_map(prediction, "prediction")
    true = _as_label_map(truth, "truth")
    if predicted.shape != true.shape:
        raise MedDLError(f"prediction and truth must have the same shape, got {predicted.shape} and {true.shape}")
    if predicted.ndim not in (2, 3):
        raise MedDLError(f"prediction and truth must be 2D or 3D label maps, got shape {predicted.shape}")
    voxel_size = _check_spacing(spacing, predicted.ndim)
    names = _check_labels(labels)

    voxel_measure = float(np.prod(voxel_size)) / (1000.0 if predicted.ndim == 3 else 1.0)  # mL or mm^2
    diagonal = float(np.sqrt(np.sum((np.asarray(predicted.shape) * np.asarray(voxel_size)) ** 2)))
    values = list(names)
    pred_masks = np.stack([predicted == value for value in values])  # (C, *spatial)
    true_masks = np.stack([true == value for value in values])  # (C, *spatial)
    one_hot_pred = torch.from_numpy(pred_masks)[None].float()  # (1, C, *spatial)
    one_hot_true = torch.from_numpy(true_masks)[None].float()  # (1, C, *spatial)
    dice = compute_dice(one_hot_pred, one_hot_true, include_background=True, ignore_empty=False)[0]  # (C,)
    iou = compute_iou(one_hot_pred, one_hot_true, include_background=True, ignore_empty=False)[0]  # (C,)

    result: dict[str, dict[str, float | int | None]] = {}
    for channel, value in enumerate(values):
        pred_mask, true_mask = pred_masks[channel], true_masks[channel]
        n_pred, n_true = int(pred_mask.sum()), int(true_mask.sum())
        if n_pred and n_true:
            label_dice, label_iou = float(dice[channel]), float(iou[channel])
            hd95, msd = _surface_distances(true_mask, pred_mask, voxel_size)
        elif n_pred or n_true:
            label_dice, label_iou, hd95, msd = 0.0, 0.0, diagonal, diagonal
        else:
            label_dice, label_iou, hd95, msd = 1.0, 1.0, 0.0, 0.0
        volume_true, volume_pred = n_true * voxel_measure, n_pred * voxel_measure
        lesions_true, lesions_detected, false_positive_lesions = _lesion_counts(true_mask, pred_mask)
        result[names[value]] = {
            "dice": label_dice,
            "iou": label_iou,
            "hd95": hd95,
            "msd": msd,
            "volume_true": volume_true,
            "volume_pred": volume_pred,
            "volume_error": volume_pred - volume_true,
            "volume_error_pct": 100.0 * abs(n_pred - n_true) / n_true if n_true else None,
            "lesions_true": lesions_true,
            "lesions_detected": lesions_detected,
            "false_positive_lesions": false_positive_lesions,
            "lesion_sensitivity": lesions_detected / lesions_true if lesions_true else None,
        }
    return result


# --------------------------------------------------------------------------- many cases


def _metric_cube(per_case: object) -> tuple[list[str], np.ndarray]:
    """Label names and the (case, label, metric) array of the cases' metrics, None as nan; validated."""
    if not isinstance(per_case, Sequence) or isinstance(per_case, str | bytes) or not per_case:
        raise MedDLError("per_case must be a non-empty list of case_metrics results, one per case")
    first = per_case[0]
    if not isinstance(first, Mapping) or not first:
        raise MedDLError(f"per_case[0] must be a case_metrics result {{label name: metrics}}, got {first!r}")
    names = [str(name) for name in first]
    cube = np.full((len(per_case), len(names), len(CASE_METRICS)), np.nan)  # (cases, labels, metrics)
    for index, case in enumerate(per_case):
        if not isinstance(case, Mapping) or sorted(map(str, case)) != sorted(names):
            found = sorted(map(str, case)) if isinstance(case, Mapping) else type(case).__name__
            raise MedDLError(f"per_case[{index}] must score the labels {names} like per_case[0], got {found}")
        for j, name in enumerate(names):
            record = case[name]
            if not isinstance(record, Mapping):
                raise MedDLError(f"per_case[{index}][{name!r}] must be a dict of metrics, got {record!r}")
            for k, metric in enumerate(CASE_METRICS):
                if metric not in record:
                    raise MedDLError(f"per_case[{index}][{name!r}] has no {metric!r}; it has {sorted(record)}")
                value = record[metric]
                if value is None:
                    continue
                if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
                    raise MedDLError(
                        f"per_case[{index}][{name!r}][{metric!r}] must be a finite number or None, got {value!r}"
                    )
                cube[index, j, k] = float(value)
    return names, cube


def per_case_table(cases: list[dict], *, case_ids: Sequence[object] | None = None) -> pd.DataFrame:
    """One row per case and label, for a CSV of the per-case results.

    Args:
        cases: :func:`case_metrics` results, one per case.
        case_ids: Optional id of each case (e.g. the image file name); default the case's position, 0, 1, ...

    Returns:
        A DataFrame with columns ``case``, ``label`` and every metric of :data:`CASE_METRICS`; a None metric
        (e.g. ``volume_error_pct`` of an empty truth) is a missing value.

    Raises:
        MedDLError: If ``cases`` is not a list of results of one label set, or ``case_ids`` has another length.
    """
    import pandas as pd

    names, _ = _metric_cube(cases)
    ids = list(range(len(cases))) if case_ids is None else list(case_ids)
    if len(ids) != len(cases):
        raise MedDLError(f"case_ids must name each of the {len(cases)} cases, got {len(ids)} ids")
    rows = [
        {"case": case_id, "label": name, **{metric: case[name][metric] for metric in CASE_METRICS}}
        for case_id, case in zip(ids, cases, strict=True)
        for name in names
    ]
    return pd.DataFrame(rows, columns=["case", "label", *CASE_METRICS])


def _means(sample: np.ndarray) -> np.ndarray:
    """Mean over cases (axis 0) ignoring nan; nan where every case is nan."""
    finite = np.isfinite(sample)
    counts = finite.sum(axis=0)
    totals = np.where(finite, sample, 0.0).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, totals / np.maximum(counts, 1), np.nan)


def aggregate(
    per_case: list[dict],
    *,
    groups: np.ndarray | None = None,
    n_bootstrap: int = 1000,
    level: float = 0.95,
    seed: int = 0,
    spatial_dims: int,
) -> dict:
    """Means (and medians) of the per-case metrics over a test set, with patient-level bootstrap CIs.

    Every interval is a percentile bootstrap interval over the same resamples. With ``groups``, patients are drawn
    with replacement and all cases of a drawn patient are taken together, so several scans of one patient never
    count as independent evidence.

    Args:
        per_case: :func:`case_metrics` results, one per case, all scoring the same labels.
        groups: Optional patient id per case, shape ``(n_cases,)``; None treats the cases as independent.
        n_bootstrap: Number of bootstrap resamples; 0 gives ``[None, None]`` intervals.
        level: Coverage of the intervals, e.g. 0.95.
        seed: Seed of the resampling; the same seed gives the same intervals.
        spatial_dims: 2 or 3, the dimension of the images; it sets the volume unit (mm^2 or mL).

    Returns:
        A JSON-ready dict (Python types, nan as None), each metric in the record form of
        :func:`~meddl.evaluate.evaluate_predictions`, ``{"value", "ci": [low, high]}``, plus ``n``, the number of
        cases whose value was used (a None value of a case is left out), and ``"undefined": reason`` when no case
        has a value::

            {"n_cases": 12, "n_patients": 6, "volume_unit": "mL", "labels": ["liver", "tumour"],
             "metrics": {"dice": {"value": 0.83, "ci": [0.78, 0.87], "n": 12}, "iou": ..., "hd95": ..., "msd": ...},
             "per_label": {"tumour": {"dice": {"value", "ci", "n"}, "dice_median": {...}, "iou": ..., "hd95": ...,
                                      "hd95_median": ..., "msd": ..., "volume_true": ..., "volume_pred": ...,
                                      "volume_error": ..., "volume_error_pct": ..., "volume_error_pct_median": ...,
                                      "lesions_true": ..., "lesions_detected": ..., "false_positive_lesions": ...,
                                      "lesion_sensitivity": ...}, ...},
             "counts": {"tumour": {"empty_truth": 1, "empty_prediction": 2, "missed": 1}, ...}}

        ``metrics`` holds the headline figures: the macro average over labels (the mean over labels of each label's
        mean over cases) of ``dice`` (the headline), ``iou``, ``hd95`` and ``msd``. ``per_label`` has every metric's
        mean over cases and the median of ``dice``, ``hd95`` and ``volume_error_pct``. ``counts`` per label:
        cases whose truth is empty, cases where the model predicted nothing, and cases where it predicted nothing
        although the truth was not empty (``missed``).

    Raises:
        MedDLError: If ``per_case`` is not a list of :func:`case_metrics` results of one label set, ``groups``
            does not hold one patient id per case, or ``n_bootstrap``, ``level`` or ``spatial_dims`` are invalid.
    """
    check_bootstrap_arguments(n_bootstrap, level)
    if spatial_dims not in (2, 3) or isinstance(spatial_dims, bool):
        raise MedDLError(f"spatial_dims must be 2 or 3, got {spatial_dims!r}")
    names, cube = _metric_cube(per_case)
    n_cases = cube.shape[0]
    group_array = None
    if groups is not None:
        group_array = np.asarray(groups)
        if group_array.ndim != 1 or group_array.shape[0] != n_cases:
            raise MedDLError(
                f"groups must hold one patient id per case, shape ({n_cases},), got shape {group_array.shape}"
            )
    n_patients = n_cases if group_array is None else int(np.unique(group_array).size)

    column = {metric: k for k, metric in enumerate(CASE_METRICS)}
    macro_columns = [column[metric] for metric in _MACRO_METRICS]
    median_columns = [column[metric] for metric in _MEDIAN_METRICS]

    def compute(rows: np.ndarray) -> dict[str, float]:
        sample = cube[rows]  # (cases drawn, labels, metrics)
        means = _means(sample)  # (labels, metrics)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-nan slice: the median is nan, as it should be
            medians = np.nanmedian(sample[:, :, median_columns], axis=0)  # (labels, len(_MEDIAN_METRICS))
        macro = means[:, macro_columns].mean(axis=0)  # (len(_MACRO_METRICS),): never None, so never nan
        figures = {f"macro:{metric}": macro[i] for i, metric in enumerate(_MACRO_METRICS)}
        for j in range(len(names)):
            figures.update({f"{j}:{metric}": means[j, k] for k, metric in enumerate(CASE_METRICS)})
            figures.update({f"{j}:{metric}_median": medians[j, i] for i, metric in enumerate(_MEDIAN_METRICS)})
        return figures

    estimates = bootstrap_metrics(
        compute, n_cases, n_resamples=int(n_bootstrap), groups=group_array, level=level, seed=seed
    )
    used = np.isfinite(cube).sum(axis=0)  # (labels, metrics)

    def record(key: str, n: int, metric: str) -> dict:
        entry = {"value": estimates[key]["value"], "ci": estimates[key]["ci"], "n": int(n)}
        if n == 0:
            entry["undefined"] = _UNDEFINED_REASON.get(metric, "no case has a value")
        return entry

    per_label: dict[str, dict] = {}
    counts: dict[str, dict[str, int]] = {}
    for j, name in enumerate(names):
        entries: dict[str, dict] = {}
        for metric in CASE_METRICS:
            n = used[j, column[metric]]
            entries[metric] = record(f"{j}:{metric}", n, metric)
            if metric in _MEDIAN_METRICS:
                entries[f"{metric}_median"] = record(f"{j}:{metric}_median", n, metric)
        per_label[name] = entries
        empty_truth = cube[:, j, column["volume_true"]] == 0
        empty_prediction = cube[:, j, column["volume_pred"]] == 0
        counts[name] = {
            "empty_truth": int(empty_truth.sum()),
            "empty_prediction": int(empty_prediction.sum()),
            "missed": int((empty_prediction & ~empty_truth).sum()),
        }
    result = {
        "n_cases": n_cases,
        "n_patients": n_patients,
        "volume_unit": "mL" if spatial_dims == 3 else "mm²",
        "labels": names,
        "metrics": {metric: record(f"macro:{metric}", n_cases, metric) for metric in _MACRO_METRICS},
        "per_label": per_label,
        "counts": counts,
    }
    return _json_ready(result)  # type: ignore[return-value]


# --------------------------------------------------------------------------- fast Dice for training


def dice_score(prediction: object, truth: object, n_classes: int, cases: object | None = None) -> float:
    """Mean foreground Dice of a batch of label maps, fast enough to run at every validation step.

    The Dice of each case and each class ``1 .. n_classes - 1`` (0 is the background), averaged over both; a class
    absent from both maps of a case scores 1, absent from exactly one scores 0 (the module's empty convention, as
    MONAI's ``compute_dice(..., include_background=False, ignore_empty=False)``). Tensors stay on their device.

    Args:
        prediction: Predicted labels, shape ``(N, *spatial)``, integers in ``[0, n_classes)`` (tensor or array).
        truth: True labels of the same shape.
        n_classes: Number of classes including the background, at least 2.
        cases: the case of each map, shape ``(N,)`` (non-negative integers): the maps of one case — the tiles of a
            validation volume — are pooled into that case's Dice. Default: every map is a case of its own.

    Returns:
        The mean Dice as a Python float.

    Raises:
        MedDLError: On mismatched shapes, non-integer maps, labels outside ``[0, n_classes)`` or ``n_classes < 2``.
    """
    import torch

    if isinstance(n_classes, bool) or not isinstance(n_classes, int | np.integer) or n_classes < 2:
        raise MedDLError(f"n_classes must be an integer >= 2 (background and one class), got {n_classes!r}")
    predicted = torch.as_tensor(prediction)
    true = torch.as_tensor(truth, device=predicted.device)
    if predicted.shape != true.shape or predicted.ndim < 2:
        raise MedDLError(
            f"prediction and truth must be label maps of one shape (N, *spatial), got {tuple(predicted.shape)} "
            f"and {tuple(true.shape)}"
        )
    for name, maps in (("prediction", predicted), ("truth", true)):
        if maps.is_floating_point() or maps.is_complex():
            raise MedDLError(f"{name} must hold integer labels, got dtype {maps.dtype}")
        if maps.numel() and (int(maps.min()) < 0 or int(maps.max()) >= n_classes):
            raise MedDLError(
                f"{name} has labels outside [0, {n_classes}): min {int(maps.min())}, max {int(maps.max())}"
            )
    k = int(n_classes)
    n_maps = predicted.shape[0]
    if cases is None:
        case = torch.arange(n_maps, device=predicted.device)
    else:
        case = torch.as_tensor(np.asarray(cases), device=predicted.device).long()
        if case.shape != (n_maps,) or (n_maps and int(case.min()) < 0):
            raise MedDLError(f"cases must give a non-negative case index per map ({n_maps}), got {tuple(case.shape)}")
        case = torch.unique(case, return_inverse=True)[1]  # 0 .. n_cases - 1, empty cases never counted
    n_cases = int(case.max()) + 1 if n_maps else 0
    codes = case[:, None] * k * k + true.reshape(n_maps, -1).long() * k + predicted.reshape(n_maps, -1).long()
    counts = torch.bincount(codes.reshape(-1), minlength=n_cases * k * k)
    confusion = counts.reshape(n_cases, k, k)  # (case, true, predicted)
    overlap = torch.diagonal(confusion, dim1=1, dim2=2).double()  # (cases, K)
    sizes = (confusion.sum(dim=2) + confusion.sum(dim=1)).double()  # (cases, K): |truth| + |prediction|
    dice = torch.where(sizes > 0, 2.0 * overlap / sizes.clamp(min=1.0), torch.ones_like(sizes))  # (cases, K)
    return float(dice[:, 1:].mean())
