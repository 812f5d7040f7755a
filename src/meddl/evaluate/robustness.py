"""How a model degrades when its data gets worse: corruptions of the model's inputs at rising severities.

A modality declares its corruptions (:class:`Corruption`) in the space of its *model inputs* — the arrays the network
takes after the fitted preprocessing — and says in each one's ``label`` and ``unit`` what a severity means in
clinical terms. :func:`evaluate_robustness` scores the test rows once clean and once per corruption and severity, and
reports the task's main metric with a bootstrap CI at each, and the largest fall from the clean value.

The array corruptions below are the reusable parts (noise, blur, contrast, rotation, lower resolution, baseline
wander, mains hum, a dropped channel, masked values, base mutations, shifts). Each returns a new array of the
input's shape and dtype and never changes its argument; the randomness comes from the ``rng`` passed in, so one seed
gives one result.
"""

from __future__ import annotations

import itertools
import math
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from scipy import ndimage

from meddl.errors import MedDLError
from meddl.evaluate.bootstrap import bootstrap_metrics, check_bootstrap_arguments, paired_bootstrap_difference
from meddl.evaluate.evaluation import (
    _check_groups,
    _check_task,
    _check_threshold,
    _json_ready,
    _metric_function,
    _validated_inputs,
    main_metric,
    undefined_metrics,
)
from meddl.evaluate.metrics import higher_is_better

__all__ = [
    "Corruption",
    "baseline_wander",
    "drop_channels",
    "evaluate_robustness",
    "gaussian_blur",
    "gaussian_noise",
    "lower_resolution",
    "mask_values",
    "mutate_kmer_tokens",
    "mutate_one_hot",
    "powerline_hum",
    "rotate",
    "scale_contrast",
    "shift_along_axis",
]

ScoresFunction = Callable[[Any], np.ndarray]
MetricFunction = Callable[[np.ndarray], dict[str, float]]


@dataclass(frozen=True)
class Corruption:
    """One way the data can get worse, at rising severities.

    Attributes:
        name: A short key (``gaussian_noise``), unique within a modality.
        label: What it is, in the clinic's words (``Gaussian noise on the numeric variables``).
        unit: What a severity means (``SD of the variable in the training split``).
        severities: Rising, positive severities (the clean data, severity 0, is scored once apart).
        apply: ``apply(inputs, severity, rng)`` → a corrupted copy of a modality's model inputs (the argument is
            never changed).
    """

    name: str
    label: str
    unit: str
    severities: tuple[float, ...]
    apply: Callable[[Any, float, np.random.Generator], Any]

    def __post_init__(self) -> None:
        if not self.name:
            raise MedDLError("Corruption.name must not be empty")
        values = [float(s) for s in self.severities]
        if not values or any(not math.isfinite(s) or s <= 0 for s in values):
            raise MedDLError(f"corruption {self.name!r}: severities must be positive numbers, got {self.severities}")
        if any(b <= a for a, b in itertools.pairwise(values)):
            raise MedDLError(f"corruption {self.name!r}: severities must rise, got {self.severities}")


def corruption_rng(seed: int, name: str, position: int) -> np.random.Generator:
    """The generator of one (corruption, severity): the same seed, name and position give the same draws whatever
    else is evaluated (``hash`` of a string changes between processes; CRC-32 does not)."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), zlib.crc32(name.encode("utf-8")), position]))


# -- array corruptions ---------------------------------------------------------------------------------------------


def gaussian_noise(
    x: np.ndarray, sd: float | np.ndarray, rng: np.random.Generator, *, where: np.ndarray | None = None
) -> np.ndarray:
    """``x`` plus Gaussian noise of standard deviation ``sd`` (a number or an array broadcast against ``x``, e.g. one
    SD per feature); ``where`` (broadcast against ``x``) limits the noise to some entries."""
    noise = rng.standard_normal(x.shape) * np.asarray(sd, dtype=np.float64)
    if where is not None:
        noise = noise * np.asarray(where, dtype=bool)
    return (x + noise).astype(x.dtype, copy=False)


def gaussian_blur(x: np.ndarray, sigma: float, *, spatial_dims: int) -> np.ndarray:
    """Gaussian blur of (N, C, *spatial) images over their ``spatial_dims`` last axes (``sigma`` in pixels)."""
    sigmas = [0.0] * (x.ndim - spatial_dims) + [float(sigma)] * spatial_dims
    return ndimage.gaussian_filter(x, sigma=sigmas, mode="nearest").astype(x.dtype, copy=False)


def scale_contrast(x: np.ndarray, factor: float, *, sample_axes: int = 1) -> np.ndarray:
    """Each sample's contrast multiplied by ``factor`` around its own mean (0.5: half the contrast); the first
    ``sample_axes`` axes index samples (and channels: 2)."""
    axes = tuple(range(sample_axes, x.ndim))
    mean = x.mean(axis=axes, keepdims=True, dtype=np.float64)
    return ((x - mean) * factor + mean).astype(x.dtype, copy=False)


def rotate(x: np.ndarray, degrees: float, rng: np.random.Generator) -> np.ndarray:
    """(N, C, *spatial) images rotated by ``degrees`` in the plane of their last two axes, each clockwise or
    anticlockwise at random; the corners brought in take the nearest edge value (bilinear interpolation)."""
    out = np.empty_like(x)
    clockwise = rng.random(len(x)) < 0.5
    for sign, rows in ((1.0, ~clockwise), (-1.0, clockwise)):
        if rows.any():
            out[rows] = ndimage.rotate(x[rows], sign * degrees, axes=(-2, -1), reshape=False, order=1, mode="nearest")
    return out


def lower_resolution(x: np.ndarray, factor: float, *, spatial_dims: int) -> np.ndarray:
    """(N, C, *spatial) arrays at ``1 / factor`` of their resolution (area averaging), brought back to their size
    by linear interpolation: what a coarser scanner or detector gives."""
    if spatial_dims not in (1, 2, 3):
        raise MedDLError(f"lower_resolution: spatial_dims must be 1, 2 or 3, got {spatial_dims}")
    size = tuple(int(n) for n in x.shape[-spatial_dims:])
    small = tuple(max(1, round(n / factor)) for n in size)
    batch = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).reshape(-1, 1, *size)  # (N·C, 1, *spatial)
    coarse = torch.nn.functional.interpolate(batch, size=small, mode="area")
    mode = {1: "linear", 2: "bilinear", 3: "trilinear"}[spatial_dims]
    back = torch.nn.functional.interpolate(coarse, size=size, mode=mode, align_corners=False)
    return back.reshape(x.shape).numpy().astype(x.dtype, copy=False)


def _sine(
    shape: tuple[int, ...], frequency: float, sampling_rate: float, rng: np.random.Generator
) -> np.ndarray:  # (N, C, L)
    """A unit sine at ``frequency`` Hz along the last axis, with a random phase per sample and channel."""
    time = np.arange(shape[-1]) / float(sampling_rate)
    phase = rng.uniform(0.0, 2.0 * np.pi, size=(*shape[:-1], 1))
    return np.sin(2.0 * np.pi * frequency * time + phase)


def baseline_wander(
    x: np.ndarray,
    amplitude: float | np.ndarray,
    rng: np.random.Generator,
    *,
    sampling_rate: float,
    frequency: float = 0.3,
) -> np.ndarray:
    """(N, C, L) signals plus a slow sine (breathing, electrode motion: ``frequency`` Hz) of ``amplitude`` (a number
    or (N, C, 1), e.g. a share of each channel's SD), with a random phase per record and channel."""
    wander = _sine(x.shape, frequency, sampling_rate, rng) * np.asarray(amplitude, dtype=np.float64)
    return (x + wander).astype(x.dtype, copy=False)


def powerline_hum(
    x: np.ndarray,
    amplitude: float | np.ndarray,
    rng: np.random.Generator,
    *,
    sampling_rate: float,
    frequency: float = 50.0,
) -> np.ndarray:
    """(N, C, L) signals plus mains interference at ``frequency`` Hz (50 in Europe, 60 in the Americas).

    Raises:
        MedDLError: If ``sampling_rate`` cannot represent the hum (at or below twice its frequency).
    """
    if sampling_rate <= 2.0 * frequency:
        raise MedDLError(
            f"powerline_hum: a {frequency:g} Hz hum needs a sampling rate above {2 * frequency:g} Hz, "
            f"got {sampling_rate:g} Hz"
        )
    hum = _sine(x.shape, frequency, sampling_rate, rng) * np.asarray(amplitude, dtype=np.float64)
    return (x + hum).astype(x.dtype, copy=False)


def drop_channels(
    x: np.ndarray, count: int, rng: np.random.Generator, *, axis: int = 1, fill: float = 0.0
) -> np.ndarray:
    """``count`` channels (leads) of each sample, chosen at random, set to ``fill`` (a detached lead: a flat line)."""
    n_channels = x.shape[axis]
    if not 1 <= count <= n_channels:
        raise MedDLError(f"drop_channels: count must be between 1 and {n_channels} channels, got {count}")
    keys = rng.random((len(x), n_channels))
    dropped = np.argsort(keys, axis=1)[:, :count]  # (N, count)
    mask = np.zeros((len(x), n_channels), dtype=bool)
    np.put_along_axis(mask, dropped, True, axis=1)
    shape = [1] * x.ndim
    shape[0], shape[axis] = len(x), n_channels
    return np.where(mask.reshape(shape), np.asarray(fill, dtype=x.dtype), x).astype(x.dtype, copy=False)


def mask_values(
    x: np.ndarray,
    share: float,
    rng: np.random.Generator,
    *,
    fill: float | np.ndarray = 0.0,
    where: np.ndarray | None = None,
) -> np.ndarray:
    """A random ``share`` of the entries of ``x`` (of those in ``where``, when given) set to ``fill`` (a number or an
    array broadcast against ``x``, e.g. the value an imputer fills in per feature)."""
    if not 0.0 <= share <= 1.0:
        raise MedDLError(f"mask_values: share must be in [0, 1], got {share}")
    hit = rng.random(x.shape) < share
    if where is not None:
        hit &= np.asarray(where, dtype=bool)
    return np.where(hit, np.broadcast_to(np.asarray(fill, dtype=x.dtype), x.shape), x).astype(x.dtype, copy=False)


def mutate_one_hot(x: np.ndarray, rate: float, rng: np.random.Generator) -> np.ndarray:
    """(N, 4, L) one-hot DNA with each real base (a single 1 among A, C, G, T) turned into one of the three other
    bases with probability ``rate``; ambiguous and padding positions stay as they are."""
    base = np.argmax(x, axis=1)  # (N, L)
    definite = np.isclose(x.max(axis=1), 1.0) & np.isclose(x.sum(axis=1), 1.0)
    mutated = definite & (rng.random(base.shape) < rate)
    new_base = (base + rng.integers(1, 4, size=base.shape)) % 4
    out = x.copy()
    rows, positions = np.nonzero(mutated)
    out[rows, :, positions] = 0
    out[rows, new_base[rows, positions], positions] = 1
    return out


def mutate_kmer_tokens(tokens: np.ndarray, rate: float, rng: np.random.Generator, *, k: int) -> np.ndarray:
    """Overlapping k-mer tokens (``[PAD]`` 0, ``[UNK]`` 1, then k-mers in ACGT order from 2; see
    :class:`~meddl.preprocess.sequences.KmerTokenizer`) of sequences whose known bases mutate with probability
    ``rate``: the bases are read back from the tokens, mutated, and every k-mer covering a mutation is re-encoded
    (a k-mer with an ambiguous base stays ``[UNK]``)."""
    n, n_tokens = tokens.shape
    length = n_tokens + k - 1
    powers = 4 ** np.arange(k - 1, -1, -1, dtype=np.int64)
    known = tokens >= 2
    bases = np.full((n, length), -1, dtype=np.int64)  # -1: not known from any k-mer
    for i in range(k):
        digit = ((tokens - 2) // powers[i]) % 4
        window = bases[:, i : i + n_tokens]  # a view: writes land in ``bases``
        window[known] = digit[known]
    mutated = (bases >= 0) & (rng.random(bases.shape) < rate)
    new_bases = np.where(mutated, (bases + rng.integers(1, 4, size=bases.shape)) % 4, bases)
    windows = np.lib.stride_tricks.sliding_window_view(new_bases, k, axis=1)  # (N, n_tokens, k)
    touched = np.lib.stride_tricks.sliding_window_view(mutated, k, axis=1).any(axis=-1) & known
    recoded = (np.clip(windows, 0, 3) * powers).sum(axis=-1) + 2
    return np.where(touched, recoded, tokens).astype(tokens.dtype, copy=False)


def shift_along_axis(
    x: np.ndarray, shift: int, rng: np.random.Generator, *, fill: float | np.ndarray = 0.0, axis: int = -1
) -> np.ndarray:
    """Each sample shifted by ``shift`` positions along ``axis``, left or right at random; what comes in is
    ``fill`` (e.g. the encoding of an unknown base, broadcast against one sample's slice)."""
    axis = axis % x.ndim
    size = x.shape[axis]
    shift = int(min(max(shift, 0), size))
    out = np.empty_like(x)
    right = rng.random(len(x)) < 0.5
    for direction, rows in ((1, right), (-1, ~right)):
        if not rows.any():
            continue
        moved = np.roll(x[rows], direction * shift, axis=axis)
        incoming = [slice(None)] * x.ndim
        incoming[axis] = slice(0, shift) if direction == 1 else slice(size - shift, size)
        moved[tuple(incoming)] = fill
        out[rows] = moved
    return out


# -- evaluation ----------------------------------------------------------------------------------------------------


def _metric_fn(task: str, y: np.ndarray, scores: np.ndarray, metric: str, cut: float) -> MetricFunction:
    """A function of row indices giving ``{metric: value}`` on validated arrays.

    Raises:
        MedDLError: If ``metric`` is not one of the task's metrics.
    """
    if task == "survival":
        from meddl.evaluate.survival import _harrell

        if metric != "c_index":
            raise MedDLError(f"metric {metric!r}: the robustness of a survival model is measured by 'c_index'")
        time, event = y[:, 0].astype(np.float64), (y[:, 1] > 0).astype(np.int64)
        risk = np.atleast_2d(np.asarray(scores, dtype=np.float64).T).T[:, 0]

        def concordance(rows: np.ndarray) -> dict[str, float]:
            return {metric: _harrell(time[rows], event[rows], risk[rows]) if event[rows].any() else math.nan}

        return concordance
    truth, score = _validated_inputs(task, y, scores)
    known = _metric_function(task, truth, score, cut)(np.arange(len(truth)))
    if metric not in known:
        raise MedDLError(f"metric {metric!r} is not a {task} metric; choose one of {sorted(known)}")
    compute = _metric_function(task, truth, score, cut, only=metric)
    return lambda rows: {metric: compute(rows)[metric]}


def _undefined(task: str, y: np.ndarray, scores: np.ndarray, metric: str, cut: float) -> str | None:
    """Why ``metric`` is not a number on these rows (e.g. AUROC with one class), or None."""
    if task == "survival":
        return None if np.any(y[:, 1] > 0) else "no event in the data"
    truth, score = _validated_inputs(task, y, scores)
    return undefined_metrics(task, truth, score, cut).get(metric)


def _drop(clean: float | None, value: float | None, better_up: bool) -> float | None:
    """How far ``value`` fell from ``clean`` in the metric's better direction (positive: worse)."""
    if clean is None or value is None or not (math.isfinite(clean) and math.isfinite(value)):
        return None
    return clean - value if better_up else value - clean


def evaluate_robustness(
    task: str,
    y: np.ndarray,
    scores_fn: ScoresFunction,
    inputs: Any,
    corruptions: Sequence[Corruption],
    *,
    metric: str | None = None,
    threshold: float | None = None,
    groups: object | None = None,
    n_bootstrap: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> dict[str, Any]:
    """The main metric on clean and corrupted inputs, with bootstrap CIs, and the worst-case drop.

    Every severity is scored on the same bootstrap resamples as the clean inputs (one ``seed``), so the intervals
    are comparable; each corruption draws from its own generator (:func:`corruption_rng`), the same for each of
    its severities (common random numbers: masks nest and noise scales as the severity rises), so adding a
    corruption does not change the others' figures.

    Args:
        task: ``binary``, ``multiclass``, ``multilabel``, ``regression`` or ``survival``.
        y: The rows' labels or values (survival: ``[time, event]`` rows).
        scores_fn: Model inputs → scores as :func:`~meddl.evaluate.evaluate_predictions` takes them (probabilities
            after any recalibration; survival: the risk first).
        inputs: The rows' model inputs (what each ``Corruption.apply`` takes).
        corruptions: The corruptions to apply.
        metric: The metric to follow (default: :func:`~meddl.evaluate.main_metric` of the task).
        threshold: Binary and multilabel: the decision threshold (threshold metrics only).
        groups: Optional patient id per row; the bootstrap then resamples patients.
        n_bootstrap: Bootstrap resamples per value (0: no CIs).
        level: Coverage of the intervals.
        seed: Seed of the corruptions and of the bootstrap.

    Returns:
        A JSON-ready dict (nan → None)::

            {"metric", "higher_is_better", "n", "clean": {"value", "ci"},
             "corruptions": [{"name", "label", "unit", "severities": [{"severity", "value", "ci", "drop"}],
                              "worst_drop", "worst_severity"}],
             "worst": {"corruption", "label", "severity", "value", "drop", "ci"} or None,
             "undefined": reason (only when the metric is not a number on the clean rows)}

        ``drop`` is the fall from the clean value in the metric's better direction (positive: worse); the worst
        case carries a paired-bootstrap CI of its drop.

    Raises:
        MedDLError: On an unknown task or metric, invalid bootstrap arguments, mismatched rows, a corruption
            that changes the number of rows, or two corruptions of one name.
    """
    _check_task(task)
    check_bootstrap_arguments(n_bootstrap, level)
    name = metric or main_metric(task)
    cut = _check_threshold(threshold, "threshold") if task in {"binary", "multilabel"} else math.nan
    y = np.asarray(y)
    group_array = _check_groups(groups, len(y))
    names = [c.name for c in corruptions]
    if len(set(names)) != len(names):
        raise MedDLError(f"corruption names must be unique, got {names}")
    better_up = higher_is_better(name)

    def scores_of(x: Any, what: str) -> np.ndarray:
        scores = np.asarray(scores_fn(x))
        if len(scores) != len(y):
            raise MedDLError(f"{what}: {len(scores)} scores for {len(y)} rows")
        return scores

    def interval(compute: MetricFunction) -> dict[str, Any]:
        result = bootstrap_metrics(
            compute, len(y), n_resamples=int(n_bootstrap), groups=group_array, level=level, seed=seed
        )
        return dict(result[name])

    clean_scores = scores_of(inputs, "clean inputs")
    clean_fn = _metric_fn(task, y, clean_scores, name, cut)
    clean = interval(clean_fn)
    result: dict[str, Any] = {
        "metric": name,
        "higher_is_better": better_up,
        "n": len(y),
        "clean": clean,
        "corruptions": [],
        "worst": None,
    }
    reason = _undefined(task, y, clean_scores, name, cut)
    if reason:
        result["undefined"] = reason
    worst: tuple[float, Corruption, float, MetricFunction, float] | None = None
    for corruption in corruptions:
        rows = []
        for severity in corruption.severities:
            # common random numbers: every severity of a corruption draws the same numbers, so a stronger one
            # corrupts a superset (masks nest, noise scales) and the curve's steps are the severity's, not luck's
            corrupted = corruption.apply(inputs, float(severity), corruption_rng(seed, corruption.name, 0))
            what = f"corruption {corruption.name!r} at severity {severity:g}"
            compute = _metric_fn(task, y, scores_of(corrupted, what), name, cut)
            entry = interval(compute)
            drop = _drop(clean["value"], entry["value"], better_up)
            rows.append({"severity": float(severity), **entry, "drop": drop})
            if drop is not None and (worst is None or drop > worst[0]):
                worst = (drop, corruption, float(severity), compute, entry["value"])
        drops = [r["drop"] for r in rows if r["drop"] is not None]
        worst_here = max(drops) if drops else None
        result["corruptions"].append(
            {
                "name": corruption.name,
                "label": corruption.label,
                "unit": corruption.unit,
                "severities": rows,
                "worst_drop": worst_here,
                "worst_severity": next((r["severity"] for r in rows if r["drop"] == worst_here), None),
            }
        )
    if worst is not None:
        drop, corruption, severity, compute, value = worst
        before, after = (clean_fn, compute) if better_up else (compute, clean_fn)
        paired = paired_bootstrap_difference(
            before, after, len(y), name, n_resamples=int(n_bootstrap), groups=group_array, level=level, seed=seed
        )
        result["worst"] = {
            "corruption": corruption.name,
            "label": corruption.label,
            "severity": severity,
            "value": value,
            "drop": drop,
            "ci": paired["ci"],
        }
    return _json_ready(result)  # type: ignore[return-value]
