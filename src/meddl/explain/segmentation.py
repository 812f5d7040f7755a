"""Pictures of a segmentation: the image with the predicted mask filled in colour and the true mask outlined.

For a volume the slice shown is the one with the most predicted (or, failing that, true) foreground.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["mask_overlay_png", "shown_slice"]

_COLOURS = ("#ff3b30", "#34c759", "#0a84ff", "#ffcc00", "#af52de", "#ff9500")


def shown_slice(predicted: np.ndarray, truth: np.ndarray | None = None) -> int:
    """The index along the first axis of a (D, H, W) label map with the most foreground (predicted, else true)."""
    for labels in (predicted, truth):
        if labels is not None and np.any(labels):
            return int(np.argmax((np.asarray(labels) > 0).reshape(labels.shape[0], -1).sum(axis=1)))
    return predicted.shape[0] // 2


def mask_overlay_png(
    image: np.ndarray,
    predicted: np.ndarray,
    truth: np.ndarray | None = None,
    path: str | Path | None = None,
    *,
    title: str | None = None,
    names: dict[int, str] | None = None,
    alpha: float = 0.45,
) -> bytes:
    """The image in grey, each predicted label filled in its colour, the true mask as a white outline; PNG bytes.

    Args:
        image: (H, W) or (C, H, W) intensities (any range: shown between its 1st and 99th percentiles).
        predicted: (H, W) label indices (0 background).
        truth: (H, W) true label indices, or None (prediction on a new case).
        path: also write the PNG there (parent folders created).
        title: a line above the picture.
        names: label index → name, for the legend.
        alpha: opacity of the filled prediction.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.colors import to_rgb
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    picture = np.asarray(image, dtype=np.float64)
    if picture.ndim == 3:
        picture = picture.mean(axis=0)
    low, high = np.percentile(picture, [1, 99]) if picture.size else (0.0, 1.0)
    picture = np.clip((picture - low) / (high - low if high > low else 1.0), 0, 1)
    predicted = np.asarray(predicted)
    if predicted.shape != picture.shape:
        raise ValueError(f"predicted must match the image's (H, W) {picture.shape}, got {predicted.shape}")
    rgb = np.repeat(picture[..., None], 3, axis=2)
    for value in [int(v) for v in np.unique(predicted) if v > 0]:
        colour = np.array(to_rgb(_COLOURS[(value - 1) % len(_COLOURS)]))
        inside = predicted == value
        rgb[inside] = (1 - alpha) * rgb[inside] + alpha * colour
    height, width = picture.shape
    scale = max(1, int(np.ceil(256 / max(height, width))))
    dpi, title_h = 100, 22 if title else 0
    figure = Figure(figsize=(width * scale / dpi, (height * scale + title_h) / dpi), dpi=dpi)
    canvas = FigureCanvasAgg(figure)
    axes = figure.add_axes((0.0, 0.0, 1.0, height * scale / (height * scale + title_h)))
    axes.set_axis_off()
    axes.imshow(rgb, interpolation="nearest")
    if truth is not None and np.asarray(truth).shape == picture.shape and np.any(truth):
        axes.contour(np.asarray(truth) > 0, levels=[0.5], colors="white", linewidths=1.2)
    legend = [
        Patch(color=_COLOURS[(k - 1) % len(_COLOURS)], label=f"predicted {name}") for k, name in (names or {}).items()
    ]
    if truth is not None:
        legend.append(Patch(facecolor="none", edgecolor="white", label="true mask (outline)"))
    if legend:
        axes.legend(handles=legend, loc="lower right", fontsize=6, framealpha=0.6)
    if title:
        figure.text(0.01, 1 - 16 / (height * scale + title_h), title, fontsize=8, color="#222222")
    canvas.draw()
    from io import BytesIO

    buffer = BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    data = buffer.getvalue()
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_bytes(data)
    return data
