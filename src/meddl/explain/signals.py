"""Which moments of a signal drove a network's output — integrated gradients over time, drawn on the trace.

* ``signal_integrated_gradients`` — ``compute_integrated_gradients`` from an all-zero baseline (a flat line,
  the channel mean after z-score normalisation). Attributions are signed, in the output's units, and sum
  (over channels and time) to f(x) − f(0) up to the integration error (completeness).
* ``trace_png`` — each channel's trace as a line coloured by its attribution (blue = pushed the output down,
  red = pushed it up, grey = no effect), with a shaded band under the trace of the same colour.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from meddl.explain.attribution import compute_integrated_gradients

__all__ = ["integrated_gradients_signal", "signal_integrated_gradients", "trace_png"]

_MAX_CHANNELS = 3


def signal_integrated_gradients(
    model: nn.Module,
    x: torch.Tensor | np.ndarray,
    target: int | Sequence[int] | np.ndarray = 0,
    n_steps: int = 32,
    *,
    batch_size: int = 16,
) -> np.ndarray:
    """Integrated gradients of one output per signal, from a zero baseline (``compute_integrated_gradients``).

    Args:
        model: a network mapping (N, C, L) to (N, outputs); evaluated in eval mode, its mode restored afterwards.
        x: (N, C, L) preprocessed signals, as the network sees them.
        target: the output to explain — 0 for regression or a binary model's single logit; one int for all
            signals or one per signal (multiclass: usually the predicted class).
        n_steps: points on the path from the baseline to the input (Gauss–Legendre rule).
        batch_size: signals per call (each call evaluates ``batch_size × n_steps`` inputs).

    Returns:
        (N, C, L) float32 signed attributions.
    """
    inputs = torch.as_tensor(x, dtype=torch.float32)
    if inputs.ndim != 3:
        raise ValueError(f"x must be (N, C, L), got shape {tuple(inputs.shape)}")
    if n_steps < 2:
        raise ValueError(f"n_steps must be at least 2, got {n_steps}")
    targets = np.asarray(target, dtype=np.int64)
    if targets.ndim == 0:
        targets = np.full(len(inputs), int(targets), dtype=np.int64)
    if targets.shape != (len(inputs),):
        raise ValueError(f"target must be an int or have one entry per signal ({len(inputs)}), got {targets.shape}")
    # cuDNN's LSTM cannot run backward in eval mode; captum needs gradients, so run the networks without cuDNN.
    return compute_integrated_gradients(
        model, inputs, None, target=targets, n_steps=n_steps, batch_size=batch_size, cudnn=False
    )


integrated_gradients_signal = signal_integrated_gradients
"""The former name of `signal_integrated_gradients`, kept for callers."""


def trace_png(
    signal: np.ndarray,
    attribution: np.ndarray,
    fs: float,
    channels: Sequence[str] | None = None,
    title: str = "",
    path: str | Path | None = None,
) -> bytes:
    """The first (up to 3) channels of a signal, each line coloured by its attribution, as PNG bytes.

    The colour scale is symmetric around 0 and shared by the channels shown: the largest absolute attribution
    among them is full red or full blue.

    Args:
        signal: (C, L) or (L,) samples.
        attribution: same shape as ``signal``.
        fs: sampling rate in Hz (the x axis is in seconds).
        channels: channel names for the y labels; default ``ch0``, ``ch1``, …
        title: figure title.
        path: where to write the PNG too (parent folders are created), or None.

    Returns:
        The PNG file's bytes.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.collections import LineCollection, PolyCollection
    from matplotlib.colors import Normalize
    from matplotlib.figure import Figure

    trace = np.atleast_2d(np.asarray(signal, dtype=np.float64))
    heat = np.atleast_2d(np.asarray(attribution, dtype=np.float64))
    if trace.ndim != 2 or heat.shape != trace.shape:
        raise ValueError(f"signal and attribution must both be (C, L); got {trace.shape} and {heat.shape}")
    if not fs > 0:
        raise ValueError(f"fs must be positive, got {fs}")
    names = list(channels) if channels is not None else [f"ch{i}" for i in range(trace.shape[0])]
    if len(names) < trace.shape[0]:
        raise ValueError(f"{len(names)} channel names for {trace.shape[0]} channels")
    shown = min(_MAX_CHANNELS, trace.shape[0])
    heat = np.nan_to_num(heat[:shown])
    peak = float(np.max(np.abs(heat))) if heat.size else 0.0
    norm = Normalize(vmin=-peak if peak > 0 else -1.0, vmax=peak if peak > 0 else 1.0)
    time = np.arange(trace.shape[1]) / fs

    figure = Figure(figsize=(10, 1.0 + 1.8 * shown), dpi=100, layout="constrained")
    canvas = FigureCanvasAgg(figure)
    axes_list = figure.subplots(shown, 1, sharex=True, squeeze=False)[:, 0]
    for channel, axes in enumerate(axes_list):
        values = np.nan_to_num(trace[channel])
        # One segment per pair of samples, coloured by the mean attribution of its two ends.
        points = np.stack([time, values], axis=1)  # (L, 2)
        segments = np.stack([points[:-1], points[1:]], axis=1)  # (L - 1, 2, 2)
        colour = (heat[channel, :-1] + heat[channel, 1:]) / 2
        low = float(values.min()) if values.size else 0.0
        high = float(values.max()) if values.size else 1.0
        margin = 0.05 * (high - low) if high > low else 1.0
        floor = low - margin
        band = PolyCollection(
            [[(t0, floor), (t0, v0), (t1, v1), (t1, floor)] for (t0, v0), (t1, v1) in segments],
            array=colour,
            cmap="coolwarm",
            norm=norm,
            alpha=0.35,
            linewidths=0,
        )
        line = LineCollection(list(segments), array=colour, cmap="coolwarm", norm=norm, linewidths=1.5)
        axes.add_collection(band)
        axes.add_collection(line)
        axes.set_xlim(float(time[0]) if time.size else 0.0, float(time[-1]) if time.size > 1 else 1.0)
        axes.set_ylim(floor, high + margin)
        axes.set_ylabel(names[channel])
    axes_list[-1].set_xlabel("time (s)")
    if title:
        figure.suptitle(title)
    figure.colorbar(line, ax=list(axes_list), label="attribution", shrink=0.8)
    buffer = io.BytesIO()
    canvas.print_png(buffer)
    png = buffer.getvalue()
    if path is not None:
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(png)
    return png
