"""Where in an image (or volume) a network saw the finding — heat maps, overlays and a localisation check.

* Grad-CAM (captum ``LayerGradCam``) on the network's ``target_layer``: gradient-weighted feature maps of the
  last convolutional stage, upsampled to the input. One backward pass; coarse (the stage's resolution).
* Occlusion (captum ``Occlusion``): how much the target score drops when a window of the input is set to 0
  (the mean intensity after normalisation). Model-agnostic and sharper, at one forward pass per window.
* ``overlay_png`` draws a heat map over the grey image as a PNG; ``best_slice`` picks the slice of a volume
  to show.
* ``pointing_game`` scores localisation against lesion masks: does the hottest pixel fall inside the lesion?

Every heat map is (B, *spatial), non-negative and scaled to [0, 1] per image (1 at the hottest pixel);
a map with no positive evidence is all zeros.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from meddl.errors import MedDLError

__all__ = ["best_slice", "grad_cam", "occlusion_map", "overlay_png", "pointing_game"]

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_INTERPOLATION = {1: "linear", 2: "bilinear", 3: "trilinear"}


def _targets(target_index: int | Sequence[int] | np.ndarray, batch: int, device: torch.device) -> torch.Tensor:
    """One output index per image: an int applies to all, a sequence gives one per image."""
    array = np.asarray(target_index, dtype=np.int64)
    if array.ndim == 0:
        array = np.full(batch, int(array), dtype=np.int64)
    if array.shape != (batch,):
        raise ValueError(f"target_index must be an int or have one entry per image ({batch}), got shape {array.shape}")
    return torch.as_tensor(array, device=device)


def _as_batch(images: torch.Tensor | np.ndarray, model: nn.Module) -> torch.Tensor:
    x = torch.as_tensor(images, dtype=torch.float32)
    if x.ndim not in (3, 4, 5):
        raise ValueError(f"images must be (B, C, *spatial) with 1 to 3 spatial axes, got shape {tuple(x.shape)}")
    parameter = next(model.parameters(), None)
    return x.to(parameter.device if parameter is not None else torch.device("cpu"))


def _normalise(heat: torch.Tensor) -> np.ndarray:
    """(B, *spatial) → ReLU'd, divided by each image's maximum (all-zero maps stay zero), as float32 NumPy."""
    heat = heat.detach().clamp(min=0).float()
    peak = heat.flatten(1).amax(dim=1).clamp(min=1e-12)  # (B,)
    heat = heat / peak.view(-1, *([1] * (heat.ndim - 1)))
    return heat.cpu().numpy().astype(np.float32)


def grad_cam(
    model: nn.Module,
    images: torch.Tensor | np.ndarray,
    target_index: int | Sequence[int] | np.ndarray = 0,
    *,
    layer: nn.Module | None = None,
    batch_size: int = 32,
) -> np.ndarray:
    """Grad-CAM heat maps (captum ``LayerGradCam``) upsampled to the input size, for 1D, 2D or 3D inputs.

    Args:
        model: a network mapping (B, C, *spatial) to (B, outputs) logits.
        images: (B, C, *spatial) preprocessed inputs, as the network sees them.
        target_index: the output to explain — one int for all images (a binary model's single logit: 0)
            or one per image (multiclass: usually the predicted class).
        layer: the convolutional layer to explain; defaults to ``model.target_layer``.
        batch_size: images per backward pass.

    Returns:
        (B, *spatial) float32 maps in [0, 1], 1 at each image's hottest pixel.

    Raises:
        MedDLError: no ``layer`` is given and the model has no ``target_layer``.
    """
    from captum.attr import LayerAttribution, LayerGradCam

    layer = layer if layer is not None else getattr(model, "target_layer", None)
    if not isinstance(layer, nn.Module):
        raise MedDLError(
            f"Grad-CAM: {type(model).__name__} has no target_layer; pass layer= (its last convolutional block)"
        )
    x = _as_batch(images, model)
    targets = _targets(target_index, len(x), x.device)
    spatial = tuple(x.shape[2:])
    was_training = model.training
    model.eval()
    explainer = LayerGradCam(model, layer)
    chunks = []
    try:
        for start in range(0, len(x), batch_size):
            cam = explainer.attribute(
                x[start : start + batch_size], target=targets[start : start + batch_size], relu_attributions=True
            )  # (b, 1, *grid)
            cam = LayerAttribution.interpolate(cam, spatial, _INTERPOLATION[len(spatial)])  # (b, 1, *spatial)
            chunks.append(cam[:, 0])  # (b, *spatial)
    finally:
        model.train(was_training)
    if not chunks:
        return np.zeros((0, *spatial), dtype=np.float32)
    return _normalise(torch.cat(chunks))


def occlusion_map(
    model: nn.Module,
    images: torch.Tensor | np.ndarray,
    target_index: int | Sequence[int] | np.ndarray = 0,
    *,
    window: int = 8,
    stride: int = 4,
    perturbations_per_eval: int = 16,
) -> np.ndarray:
    """Occlusion heat maps (captum ``Occlusion``): the drop in the target score when a window is zeroed.

    The window covers every channel and ``window`` pixels along each spatial axis (clipped to the image),
    moved by ``stride``; the baseline is 0, the mean intensity in the normalised space. Only drops (evidence
    for the target) are kept, then each map is scaled to [0, 1].

    Args:
        model: a network mapping (B, C, *spatial) to (B, outputs) logits.
        images: (B, C, *spatial) preprocessed inputs.
        target_index: the output to explain, one int for all images or one per image.
        window: side of the occluding window in pixels.
        stride: step between windows in pixels.
        perturbations_per_eval: occluded copies per forward pass (memory against speed).

    Returns:
        (B, *spatial) float32 maps in [0, 1].
    """
    from captum.attr import Occlusion

    if window < 1 or stride < 1:
        raise ValueError(f"window and stride must be positive, got window={window}, stride={stride}")
    x = _as_batch(images, model)
    targets = _targets(target_index, len(x), x.device)
    channels, spatial = int(x.shape[1]), tuple(int(s) for s in x.shape[2:])
    shape = (channels, *(min(window, s) for s in spatial))
    strides = (channels, *(min(stride, s) for s in spatial))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            attributions = Occlusion(model).attribute(
                x,
                sliding_window_shapes=shape,
                strides=strides,
                baselines=0.0,
                target=targets,
                perturbations_per_eval=perturbations_per_eval,
            )  # (B, C, *spatial)
    finally:
        model.train(was_training)
    return _normalise(attributions.sum(dim=1))  # (B, *spatial)


def best_slice(heat3d: np.ndarray, axis: int = 0) -> int:
    """The slice of a volume's heat map to show: the one holding the hottest voxel (ties: most total heat).

    Args:
        heat3d: (D, H, W) heat map.
        axis: the slicing axis (0: the first spatial axis, as in ``volume[:, k]`` for a (C, D, H, W) volume).

    Returns:
        The slice index along ``axis``.
    """
    heat = np.asarray(heat3d, dtype=np.float64)
    if heat.ndim != 3:
        raise ValueError(f"heat3d must be (D, H, W), got shape {heat.shape}")
    per_slice = np.moveaxis(heat, axis, 0).reshape(heat.shape[axis], -1)  # (D, H·W)
    peaks = per_slice.max(axis=1)
    candidates = np.flatnonzero(peaks == peaks.max())
    return int(candidates[np.argmax(per_slice[candidates].sum(axis=1))])


def _grey(image: np.ndarray) -> tuple[np.ndarray, bool]:
    """(H, W) or (C, H, W) → a displayable array scaled to [0, 1] and whether it is RGB."""
    array = np.asarray(image, dtype=np.float64)
    if array.ndim == 3:
        # (H, W, 3) for RGB; (H, W) otherwise: 1 channel, or several modalities averaged.
        array = np.moveaxis(array, 0, -1) if array.shape[0] == 3 else array.mean(axis=0)
    elif array.ndim != 2:
        raise ValueError(f"image must be (H, W) or (C, H, W); for a volume pass one slice, got shape {array.shape}")
    finite = array[np.isfinite(array)]
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    scaled = np.clip((np.nan_to_num(array, nan=low) - low) / (high - low if high > low else 1.0), 0.0, 1.0)
    return scaled, scaled.ndim == 3


def overlay_png(
    image: np.ndarray,
    heat: np.ndarray,
    path: str | Path | None = None,
    *,
    alpha: float = 0.4,
    colormap: str = "jet",
    title: str | None = None,
    mask: np.ndarray | None = None,
) -> bytes:
    """The image in grey (or RGB for 3 channels) with the heat map drawn over it, as PNG bytes, with a colour scale
    of the heat (0 = no relevance, 1 = the most relevant pixel), the lesion's outline when a mask is given and the
    image's source as a title.

    Small images are enlarged (nearest neighbour) so the picture is at least 256 pixels on its longer side.

    Args:
        image: (H, W) or (C, H, W); 3 channels are shown as RGB, other channel counts as their mean in grey.
            For a volume, pass the slice to show (see ``best_slice``).
        heat: (H, W) heat map in [0, 1].
        path: where to write the PNG too (parent folders are created), or None.
        alpha: opacity of the heat map.
        colormap: matplotlib colormap for the heat.
        title: a line above the picture (the source file's name), or None.
        mask: (H, W) lesion mask drawn as a white outline, or None.

    Returns:
        The PNG file's bytes.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    picture, rgb = _grey(image)
    heat = np.asarray(heat, dtype=np.float64)
    if heat.shape != picture.shape[:2]:
        raise ValueError(f"heat must match the image's (H, W) {picture.shape[:2]}, got shape {heat.shape}")
    if not 0 <= alpha <= 1:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    height, width = heat.shape
    scale = max(1, int(np.ceil(256 / max(height, width))))
    dpi = 100
    picture_w, picture_h = width * scale, height * scale
    bar_w, title_h = 64, 22 if title else 0  # pixels for the colour scale and the title line
    figure = Figure(figsize=((picture_w + bar_w) / dpi, (picture_h + title_h) / dpi), dpi=dpi)
    canvas = FigureCanvasAgg(figure)
    total_w, total_h = picture_w + bar_w, picture_h + title_h
    axes = figure.add_axes((0.0, 0.0, picture_w / total_w, picture_h / total_h))
    axes.set_axis_off()
    axes.imshow(picture, cmap=None if rgb else "gray", vmin=0.0, vmax=1.0, interpolation="nearest")
    shown = axes.imshow(np.nan_to_num(heat), cmap=colormap, vmin=0.0, vmax=1.0, alpha=alpha, interpolation="bilinear")
    if mask is not None and np.asarray(mask).shape == heat.shape and np.asarray(mask).any():
        axes.contour(np.asarray(mask) > 0, levels=[0.5], colors="white", linewidths=1.2)
    scale_axes = figure.add_axes(
        ((picture_w + 8) / total_w, 0.1 * picture_h / total_h, 12 / total_w, 0.8 * picture_h / total_h)
    )
    colour_bar = figure.colorbar(shown, cax=scale_axes)
    colour_bar.set_alpha(1.0)
    colour_bar.ax.tick_params(labelsize=7)
    colour_bar.set_label("relevance", fontsize=7)
    if title:
        figure.text(4 / total_w, 1 - 16 / total_h, title, fontsize=8, color="#222222")
    buffer = io.BytesIO()
    canvas.print_png(buffer)
    png = buffer.getvalue()
    if path is not None:
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(png)
    return png


def _dilate(masks: torch.Tensor, tolerance: int) -> torch.Tensor:
    """Grow (B, *spatial) boolean masks by ``tolerance`` pixels along every axis, diagonals included."""
    pool = {1: nn.functional.max_pool1d, 2: nn.functional.max_pool2d, 3: nn.functional.max_pool3d}[masks.ndim - 1]
    grown = pool(masks.float().unsqueeze(1), kernel_size=2 * tolerance + 1, stride=1, padding=tolerance)
    return grown[:, 0] > 0  # (B, *spatial)


def pointing_game(heat: np.ndarray, masks: np.ndarray, *, tolerance: int = 0) -> dict[str, int | float]:
    """The pointing game (Zhang et al., 2016): a hit when a heat map's hottest pixel lies inside the lesion mask.

    Only images whose mask is non-empty count. Ties for the maximum resolve to the first pixel in C order,
    so an all-zero map points at the corner. With ``tolerance`` t > 0, the mask is first dilated by t pixels
    along every axis (diagonal neighbours included), forgiving a peak just outside a small lesion.

    Args:
        heat: (B, *spatial) heat maps.
        masks: (B, *spatial) lesion masks (non-zero inside); a singleton channel axis (B, 1, *spatial) is accepted.
        tolerance: dilation of the masks in pixels.

    Returns:
        ``{"hits", "n", "hit_rate"}``; ``hit_rate`` is NaN when no mask is non-empty.
    """
    heat = np.asarray(heat)
    masks = np.asarray(masks)
    if masks.ndim == heat.ndim + 1 and masks.shape[1] == 1:
        masks = masks[:, 0]  # (B, *spatial)
    if heat.shape != masks.shape:
        raise ValueError(f"heat {heat.shape} and masks {masks.shape} must have the same (B, *spatial) shape")
    if not 2 <= heat.ndim <= 4:
        raise ValueError(f"heat must be (B, *spatial) with 1 to 3 spatial axes, got shape {heat.shape}")
    if tolerance < 0:
        raise ValueError(f"tolerance must be >= 0, got {tolerance}")
    inside = masks != 0
    if tolerance > 0 and len(inside):
        inside = _dilate(torch.as_tensor(inside), tolerance).numpy()
    hits = n = 0
    for heat_map, mask, lesion in zip(heat, inside, masks != 0, strict=True):
        if not lesion.any():
            continue
        n += 1
        peak = np.unravel_index(int(np.argmax(np.nan_to_num(heat_map, nan=-np.inf))), heat_map.shape)
        hits += bool(mask[peak])
    return {"hits": hits, "n": n, "hit_rate": hits / n if n else float("nan")}
