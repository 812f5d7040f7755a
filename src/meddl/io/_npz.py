"""Reading MedMNIST-style ``.npz`` files, which carry a whole data set with its own train / validation / test splits.

:func:`read_npz` is importable from :mod:`meddl.io.images` as well, where the other image readers are.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from meddl.errors import MedDLError
from meddl.io._image_types import _first_line

__all__ = ["NPZ_SPLITS", "read_npz"]

#: The split names of a MedMNIST-style ``.npz`` (file prefix → MedDL split name).
NPZ_SPLITS = {"train": "train", "val": "validation", "test": "test"}


@contextmanager
def numpy_file_errors(path: Path, what: str) -> Iterator[None]:
    """Turn what ``np.load`` raises on a damaged or foreign file into a MedDLError naming ``path`` (``what``: the
    kind of file expected, e.g. ``.npz``); a pickled object array is refused, never loaded."""
    try:
        yield
    except MedDLError:
        raise
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise MedDLError(
                f"{path}: holds Python objects (pickled arrays); only plain numeric arrays are read"
            ) from None
        raise MedDLError(f"{path}: not a readable {what} file: {_first_line(exc)}") from None
    except (OSError, zipfile.BadZipFile, EOFError) as exc:
        raise MedDLError(f"{path}: not a readable {what} file: {_first_line(exc)}") from None


def read_npz(path: str | Path, spatial_dims: int = 2) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Read a MedMNIST-style ``.npz`` that carries its own train / validation / test splits.

    Args:
        path: an ``.npz`` with ``train_images``, ``train_labels``, ``val_images``, ``val_labels``,
            ``test_images`` and ``test_labels``.
        spatial_dims: 2 for images ``(N, H, W)`` or ``(N, H, W, 3)``; 3 for volumes ``(N, D, H, W)``
            (a trailing channel axis of 1 or 3 is accepted).

    Returns:
        ``{"train": (X, y), "validation": (X, y), "test": (X, y)}`` with ``X`` float32 channel-first
        ``(N, C, H, W)`` or ``(N, C, D, H, W)`` and ``y`` of shape ``(N,)`` (one label; ``(N, 1)`` is
        flattened) or ``(N, K)`` (multilabel, one 0/1 column per finding).

    Raises:
        MedDLError: the file is missing or not an npz, holds pickled objects, lacks keys (all are listed),
            has an image shape that does not fit ``spatial_dims``, or images and labels of different lengths.
    """
    path = Path(path)
    if spatial_dims not in (2, 3):
        raise MedDLError(f"spatial_dims must be 2 or 3, got {spatial_dims!r}")
    if not path.exists():
        raise MedDLError(f"data file not found: {path}")
    if path.is_dir() or path.stat().st_size == 0:
        raise MedDLError(f"{path}: {'is a folder' if path.is_dir() else 'the file is empty'}; expected an .npz file")
    with numpy_file_errors(path, ".npz"), np.load(path, allow_pickle=False) as archive:
        keys = set(archive.files)
        required = [f"{prefix}_{kind}" for prefix in NPZ_SPLITS for kind in ("images", "labels")]
        missing = [key for key in required if key not in keys]
        if missing:
            raise MedDLError(
                f"{path}: missing key(s) {', '.join(missing)}; a MedMNIST-style .npz needs "
                f"{', '.join(required)} (found: {', '.join(sorted(keys)) or 'none'})"
            )
        raw = {key: archive[key] for key in required}
    splits: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for prefix, split in NPZ_SPLITS.items():
        images = _npz_images(raw[f"{prefix}_images"], spatial_dims, path, f"{prefix}_images")
        labels = _npz_labels(raw[f"{prefix}_labels"], path, f"{prefix}_labels")
        if len(images) != len(labels):
            raise MedDLError(
                f"{path}: {prefix}_images has {len(images)} images but {prefix}_labels has {len(labels)} labels"
            )
        splits[split] = (images, labels)
    widths = {split: (1 if y.ndim == 1 else y.shape[1]) for split, (_, y) in splits.items()}
    if len(set(widths.values())) > 1:
        raise MedDLError(f"{path}: the label arrays have different numbers of columns per split: {widths}")
    return splits


def _npz_images(images: np.ndarray, spatial_dims: int, path: Path, key: str) -> np.ndarray:
    if not (np.issubdtype(images.dtype, np.number) or images.dtype == np.bool_):
        raise MedDLError(f"{path}: {key} has dtype {images.dtype}; expected numbers")
    shape = images.shape
    if images.ndim == spatial_dims + 1:  # (N, H, W) or (N, D, H, W): grey
        out = images[:, None]
    elif images.ndim == spatial_dims + 2 and shape[-1] in (1, 3):  # (N, H, W, C) or (N, D, H, W, C)
        out = np.moveaxis(images, -1, 1)
    else:
        expected = "(N, H, W) or (N, H, W, 3)" if spatial_dims == 2 else "(N, D, H, W) or (N, D, H, W, 3)"
        hint = ""
        if spatial_dims == 2 and images.ndim == 4:
            hint = "; if these are volumes, set data.spatial_dims: 3"
        elif spatial_dims == 3 and images.ndim == 3:
            hint = "; if these are 2D images, set data.spatial_dims: 2"
        raise MedDLError(f"{path}: {key} has shape {shape}; expected {expected} for {spatial_dims}D images{hint}")
    return np.ascontiguousarray(out, dtype=np.float32)


def _npz_labels(labels: np.ndarray, path: Path, key: str) -> np.ndarray:
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim not in (1, 2):
        raise MedDLError(f"{path}: {key} has shape {labels.shape}; expected (N,), (N, 1) or (N, K) for multilabel")
    if np.issubdtype(labels.dtype, np.integer) or labels.dtype == np.bool_:
        return labels.astype(np.int64)
    return labels
