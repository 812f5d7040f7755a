"""Image explanations: Grad-CAM finds the lesion a trained network uses; occlusion, overlays, pointing game."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from meddl.errors import MedDLError
from meddl.explain.images import best_slice, grad_cam, occlusion_map, overlay_png, pointing_game
from meddl.models.cnn import SmallCNN

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SIDE = 32


def _add_block(image: np.ndarray, rng: np.random.Generator, height: int, width: int) -> tuple[int, int]:
    row, col = int(rng.integers(0, SIDE - height + 1)), int(rng.integers(0, SIDE - width + 1))
    image[row : row + height, col : col + width] += 2.0
    return row, col


def _lesion_images(
    n: int, rng: np.random.Generator, positive_rate: float
) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """(n, 1, 32, 32) noisy images; positive iff an 8×8 bright square (the lesion) is present.

    Every image also has 4×16 bright bars — one in positives, two in negatives — so both classes hold the same
    amount of brightness and only the square's shape tells them apart: a network that separates them has to
    look at the square, and Grad-CAM should point there rather than at the bar.
    """
    images = rng.normal(0.0, 0.5, size=(n, 1, SIDE, SIDE)).astype(np.float32)
    labels = (rng.random(n) < positive_rate).astype(np.float32)
    masks = np.zeros((n, SIDE, SIDE), dtype=bool)
    for i in range(n):
        for _ in range(1 if labels[i] else 2):
            _add_block(images[i, 0], rng, *((4, 16) if rng.random() < 0.5 else (16, 4)))
        if labels[i]:
            row, col = _add_block(images[i, 0], rng, 8, 8)
            masks[i, row : row + 8, col : col + 8] = True
    return torch.from_numpy(images), torch.from_numpy(labels), masks


@pytest.fixture(scope="module")
def lesion_problem() -> dict[str, object]:
    """A small_cnn trained for ~3 s to find the square, with held-out positives and their lesion masks."""
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    train_x, train_y, _ = _lesion_images(384, rng, 0.5)
    val_x, val_y, _ = _lesion_images(128, rng, 0.5)
    test_x, _, test_masks = _lesion_images(64, rng, 1.0)
    model = SmallCNN(spatial_dims=2, in_channels=1, out_channels=1)
    untrained = SmallCNN(spatial_dims=2, in_channels=1, out_channels=1)
    untrained.load_state_dict(model.state_dict())
    epochs, batch = 8, 32
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=1e-2, total_steps=epochs * len(train_x) // batch)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(train_x))
        for start in range(0, len(train_x), batch):
            rows = order[start : start + batch]
            loss = F.binary_cross_entropy_with_logits(model(train_x[rows])[:, 0], train_y[rows])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
    model.eval()
    with torch.no_grad():
        val_accuracy = float(((model(val_x)[:, 0] > 0).float() == val_y).float().mean())
    return {
        "model": model,
        "untrained": untrained,
        "val_accuracy": val_accuracy,
        "images": test_x,
        "masks": test_masks,
    }


def test_grad_cam_points_at_the_lesion(lesion_problem: dict) -> None:
    model, images, masks = lesion_problem["model"], lesion_problem["images"], lesion_problem["masks"]
    assert lesion_problem["val_accuracy"] >= 0.85, "the network did not learn to separate the classes"
    heat = grad_cam(model, images, 0)
    assert heat.shape == (64, SIDE, SIDE)
    assert heat.dtype == np.float32
    assert heat.min() >= 0.0
    assert np.allclose(heat.max(axis=(1, 2)), 1.0)
    game = pointing_game(heat, masks, tolerance=1)
    assert game["n"] == 64
    assert game["hit_rate"] >= 0.8, game
    # The same network before training does not point at the lesion: the hits come from what it learned.
    before = pointing_game(grad_cam(lesion_problem["untrained"], images, 0), masks, tolerance=1)
    assert before["hit_rate"] < game["hit_rate"] - 0.2, (before, game)
    # Per-image targets and an explicit layer give the same maps for a single-logit model.
    again = grad_cam(model, images[:4], np.zeros(4, dtype=int), layer=model.target_layer, batch_size=3)
    np.testing.assert_allclose(again, heat[:4], atol=1e-5)


def test_grad_cam_leaves_training_mode_as_it_was(lesion_problem: dict) -> None:
    model = lesion_problem["model"]
    model.train()
    try:
        grad_cam(model, lesion_problem["images"][:2], 0)
        assert model.training
    finally:
        model.eval()


def test_occlusion_map_shape_range_and_localisation(lesion_problem: dict) -> None:
    model, images, masks = lesion_problem["model"], lesion_problem["images"][:16], lesion_problem["masks"][:16]
    heat = occlusion_map(model, images, 0, window=6, stride=3)
    assert heat.shape == (16, SIDE, SIDE)
    assert heat.min() >= 0.0
    assert np.allclose(heat.max(axis=(1, 2)), 1.0)
    assert pointing_game(heat, masks, tolerance=1)["hit_rate"] >= 0.75


@pytest.mark.parametrize("spatial_dims", [1, 3])
def test_heat_maps_for_signals_and_volumes(spatial_dims: int) -> None:
    torch.manual_seed(0)
    model = SmallCNN(spatial_dims=spatial_dims, in_channels=2, out_channels=3)
    x = torch.randn(2, 2, *([12] * spatial_dims))
    cam = grad_cam(model, x, [0, 2])
    occlusion = occlusion_map(model, x, [1, 2], window=4, stride=4)
    for heat in (cam, occlusion):
        assert heat.shape == (2, *([12] * spatial_dims))
        assert heat.min() >= 0.0 and heat.max() <= 1.0 + 1e-6
    with pytest.raises(ValueError, match="one entry per image"):
        grad_cam(model, x, [0, 1, 2])


def test_grad_cam_needs_a_layer() -> None:
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.Flatten(), torch.nn.LazyLinear(1))
    with pytest.raises(MedDLError, match="no target_layer"):
        grad_cam(model, torch.randn(1, 1, 8, 8), 0)
    heat = grad_cam(model, torch.randn(1, 1, 8, 8), 0, layer=model[0])
    assert heat.shape == (1, 8, 8)


def test_overlay_png_bytes_and_file(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    image = rng.normal(size=(1, 40, 24))
    heat = rng.random((40, 24))
    path = tmp_path / "heatmaps" / "case.png"
    png = overlay_png(image, heat, path, alpha=0.5)
    assert png.startswith(PNG_SIGNATURE)
    assert path.read_bytes() == png
    # Width and height from the PNG header: the picture enlarged to ≥ 256 px on the long side, aspect kept, plus
    # 64 px for the colour scale (and 22 px for a title line when there is one).
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert (width, height) == (24 * 7 + 64, 40 * 7)
    titled = overlay_png(image, heat, title="scan_007.dcm", mask=heat > 0.9)
    assert (int.from_bytes(titled[16:20], "big"), int.from_bytes(titled[20:24], "big")) == (24 * 7 + 64, 40 * 7 + 22)
    assert overlay_png(rng.random((3, 16, 16)), rng.random((16, 16))).startswith(PNG_SIGNATURE)  # RGB
    assert overlay_png(rng.random((16, 16)), np.zeros((16, 16))).startswith(PNG_SIGNATURE)  # (H, W), no heat
    with pytest.raises(ValueError, match="heat must match"):
        overlay_png(image, heat[:10])
    with pytest.raises(ValueError, match="one slice"):
        overlay_png(rng.random((1, 4, 16, 16)), heat)


def test_overlay_changes_with_the_heat() -> None:
    image = np.zeros((32, 32))
    cold, hot = np.zeros((32, 32)), np.zeros((32, 32))
    hot[8:16, 8:16] = 1.0
    assert overlay_png(image, cold) != overlay_png(image, hot)
    assert overlay_png(image, hot, alpha=0.0) == overlay_png(image, cold, alpha=0.0)


def test_best_slice_picks_the_hottest_slice() -> None:
    heat = np.zeros((6, 8, 8))
    heat[4, 2, 3] = 1.0
    heat[1] = 0.5
    assert best_slice(heat) == 4
    heat[2, 0, 0] = 1.0
    heat[2, 1, 1] = 0.9  # same peak as slice 4, more total heat
    assert best_slice(heat) == 2
    assert best_slice(np.moveaxis(heat, 0, 2), axis=2) == 2
    with pytest.raises(ValueError, match=r"\(D, H, W\)"):
        best_slice(np.zeros((8, 8)))


def test_pointing_game_counts() -> None:
    heat = np.zeros((4, 10, 10))
    masks = np.zeros((4, 10, 10), dtype=np.uint8)
    heat[0, 2, 2] = 1.0
    masks[0, 1:4, 1:4] = 1  # hit
    heat[1, 5, 5] = 1.0
    masks[1, 6:8, 6:8] = 1  # miss by one pixel (diagonal)
    heat[2, 0, 0] = 1.0
    masks[2, 5:9, 5:9] = 1  # clear miss
    heat[3, 3, 3] = 1.0  # empty mask: not counted
    assert pointing_game(heat, masks) == {"hits": 1, "n": 3, "hit_rate": pytest.approx(1 / 3)}
    assert pointing_game(heat, masks, tolerance=1) == {"hits": 2, "n": 3, "hit_rate": pytest.approx(2 / 3)}
    assert pointing_game(heat, masks[:, None], tolerance=1)["hits"] == 2  # (B, 1, H, W) masks
    assert np.isnan(pointing_game(heat[3:], masks[3:])["hit_rate"])
    volume_heat, volume_mask = np.zeros((1, 4, 4, 4)), np.zeros((1, 4, 4, 4))
    volume_heat[0, 1, 2, 3], volume_mask[0, 1, 2, 3] = 1.0, 1
    assert pointing_game(volume_heat, volume_mask)["hits"] == 1
    with pytest.raises(ValueError, match="same"):
        pointing_game(heat, masks[:, :5])
