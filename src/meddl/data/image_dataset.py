"""A lazy image dataset with a persistent cache of preprocessed arrays.

Nothing is read when a dataset is built: each item is read, preprocessed and (optionally) cached when it is first
asked for, so a collection larger than memory trains with memory bounded by one batch. The deterministic
preprocessing is cached on disk under the pipeline's :func:`~meddl.preprocess.images.config_hash`; augmentation runs
after the cache, per ``(seed, epoch, index)``.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import torch
from torch.utils.data import Dataset

from meddl.data.image_cache import ImageCache
from meddl.errors import MedDLError

if TYPE_CHECKING:
    from meddl.io.images import ImageFormat
    from meddl.preprocess.images import ImagePipeline, VolumeLike

__all__ = ["ArraySource", "ArrayVolume", "ImageCache", "ImageDataset", "ImageItem", "ImageReader", "source_key"]

ImageReader = Callable[[Path, str], "VolumeLike"]
"""Reads one image: ``(path, format) -> ImageVolume``; the default is :func:`meddl.io.images.read_image`."""


def _sha256(parts: Sequence[str]) -> str:
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()


def _file_identity(path: Path) -> str:
    stat = path.stat()
    return f"{path}|{stat.st_size}|{stat.st_mtime_ns}"


def source_key(path: str | Path, format: str = "auto") -> str:
    """The cache key of an image file or DICOM series folder, as it is on disk now.

    A file is identified by its absolute path, size and modification time (ns); a folder by the sorted list of
    the files under it with theirs. Editing, replacing or adding a file gives a new key, so a stale entry is
    never served. Only ``stat`` is called: the pixels are not read.

    Raises:
        MedDLError: the path does not exist.
    """
    # Not resolve() (one stat per path component), and no Path object for a file: this runs on every item read,
    # and a third of its cost was building Paths.
    text = os.path.abspath(path)
    try:
        status = os.stat(text)
        if stat.S_ISDIR(status.st_mode):
            files = sorted(p for p in Path(text).rglob("*") if p.is_file())
            parts = ["dir", text, format, *(_file_identity(p) for p in files)]
        else:
            parts = ["file", format, f"{text}|{status.st_size}|{status.st_mtime_ns}"]
    except FileNotFoundError:
        raise MedDLError(f"image not found: {text}") from None
    return _sha256(parts)


@dataclass(frozen=True)
class ImageItem:
    """One image on disk: a file (PNG/JPEG/DICOM/NIfTI) or a DICOM series folder.

    Attributes:
        path: the file or folder.
        format: the reader's ``format`` (``auto`` guesses from the name / content).
    """

    path: Path
    format: str = "auto"


@dataclass(frozen=True)
class ArrayVolume:
    """An image held in memory (a row of a ``.npz``), shaped like :class:`meddl.io.images.ImageVolume`."""

    array: np.ndarray
    spacing: tuple[float, ...]
    source: str
    meta: dict[str, Any] = field(default_factory=dict)


class ArraySource:
    """Images already loaded as one array (a MedMNIST-style ``.npz`` split), preprocessed lazily per row.

    Args:
        images: ``(N, H, W)``, ``(N, C, H, W)`` / ``(N, H, W, C)`` for 2D; ``(N, D, H, W)``, ``(N, C, D, H, W)`` /
            ``(N, D, H, W, C)`` for 3D (e.g. as :func:`meddl.io.images.read_npz` returns them). May be a
            ``np.memmap``.
        spatial_dims: 2 or 3.
        source: the file the arrays came from (used in messages and in the cache key); when it is not a file,
            rows are keyed by their content.
        name: the array's name in the file, e.g. ``train_images``.
        spacing: pixel spacing per spatial axis (MedMNIST has none: 1.0).
        indices: the rows this source exposes (a split's view); default all.
        channels_first: whether a channel axis is the second axis (``True``) or the last (``False``); default:
            guessed (a last axis of 1, 3 or 4 with a second axis that is not is taken as channels-last).

    Raises:
        MedDLError: the array's shape does not fit ``spatial_dims``.
    """

    def __init__(
        self,
        images: np.ndarray,
        *,
        spatial_dims: int = 2,
        source: str | Path = "<memory>",
        name: str = "images",
        spacing: Sequence[float] | None = None,
        indices: Sequence[int] | np.ndarray | None = None,
        channels_first: bool | None = None,
    ) -> None:
        if images.ndim == spatial_dims + 1:
            channel_last = False
        elif images.ndim == spatial_dims + 2:
            if channels_first is None:
                channel_last = images.shape[-1] in (1, 3, 4) and images.shape[1] not in (1, 3, 4)
            else:
                channel_last = not channels_first
        else:
            expected = "(N, H, W) or (N, H, W, C)" if spatial_dims == 2 else "(N, D, H, W) or (N, C, D, H, W)"
            raise MedDLError(
                f"{source}: array {name!r} has shape {images.shape}; expected {expected} for {spatial_dims}D images"
            )
        self.images = images
        self.spatial_dims = int(spatial_dims)
        self.source = str(source)
        self.name = name
        self.spacing = tuple(float(s) for s in spacing) if spacing is not None else (1.0,) * spatial_dims
        self.indices = np.arange(len(images)) if indices is None else np.asarray(indices, dtype=np.int64)
        self._channel_last = channel_last
        self._identity: str | None = None

    def __len__(self) -> int:
        return len(self.indices)

    def select(self, indices: Sequence[int] | np.ndarray) -> ArraySource:
        """A view of rows ``indices`` (positions in this source); no pixels are copied."""
        chosen = self.indices[np.asarray(indices, dtype=np.int64)]
        return ArraySource(
            self.images,
            spatial_dims=self.spatial_dims,
            source=self.source,
            name=self.name,
            spacing=self.spacing,
            indices=chosen,
            channels_first=not self._channel_last,
        )

    def volume(self, position: int) -> ArrayVolume:
        """Row ``position`` as a channel-first float32 image."""
        row = int(self.indices[position])
        pixels = np.asarray(self.images[row], dtype=np.float32)
        if pixels.ndim == self.spatial_dims:
            pixels = pixels[np.newaxis]  # (1, *spatial)
        elif self._channel_last:
            pixels = np.moveaxis(pixels, -1, 0)  # (C, *spatial)
        return ArrayVolume(np.ascontiguousarray(pixels), self.spacing, f"{self.source}[{self.name}][{row}]")

    def cache_key(self, position: int) -> str:
        """A key for row ``position``: the file's identity + array name + row, or the row's content."""
        row = int(self.indices[position])
        if self._identity is None:
            path = Path(self.source)
            self._identity = _file_identity(path.resolve()) if path.is_file() else ""
        if self._identity:
            return _sha256(["npz", self._identity, self.name, str(row)])
        return _content_key(self.images[row])


def _content_key(array: np.ndarray) -> str:
    """The cache key of an image held only in memory: its bytes, dtype and shape."""
    pixels = np.ascontiguousarray(array)
    digest = hashlib.sha256(pixels.tobytes()).hexdigest()
    return _sha256(["array", str(pixels.dtype), str(pixels.shape), digest])


def _default_reader(path: Path, format: str) -> VolumeLike:
    from meddl.io.images import read_image  # imported here: the reader module is optional at import time

    volume: VolumeLike = read_image(path, format=cast("ImageFormat", format))
    return volume


class ImageDataset(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """Images read and preprocessed lazily, item by item, with an optional on-disk cache.

    ``__init__`` only stores references: no file is opened until an item is asked for. The deterministic
    preprocessing of item ``i`` comes from the cache when present; augmentation (``train=True`` only) is then
    drawn with the seed of ``(seed, epoch, i)``: the same run replays the same augmentations, and each epoch
    draws new ones. Call :meth:`set_epoch` before each epoch (the trainer does when the method exists).
    DataLoader workers get a copy of the dataset when they start, so use ``persistent_workers=False``
    or the epoch set later does not reach them.

    Args:
        items: image files / series folders (:class:`ImageItem`, or plain paths read with ``format="auto"``),
            images already in memory (arrays ``(C, *spatial)``, spacing 1.0, cached by content), or an
            :class:`ArraySource` whose rows are the items (cached by the ``.npz`` path and row: cheaper).
        targets: one target per item (``(N,)`` or ``(N, K)`` for multilabel), as NumPy or torch; floats become
            float32, integers stay int64.
        pipeline: the experiment's :class:`~meddl.preprocess.images.ImagePipeline`.
        train: apply the pipeline's augmentation (training split only).
        cache: where deterministic outputs are kept; ``None`` recomputes them every time.
        seed: the augmentation seed; default the pipeline's.
        reader: ``(path, format) -> ImageVolume``; default :func:`meddl.io.images.read_image`.

    Raises:
        MedDLError: ``items`` and ``targets`` differ in length.
    """

    def __init__(
        self,
        items: Sequence[ImageItem | str | Path | np.ndarray] | ArraySource,
        targets: np.ndarray | torch.Tensor,
        pipeline: ImagePipeline,
        *,
        train: bool,
        cache: ImageCache | None = None,
        seed: int | None = None,
        reader: ImageReader | None = None,
    ) -> None:
        if isinstance(items, ArraySource):
            self.source: ArraySource | None = items
            self.items: list[ImageItem | np.ndarray] = []
        else:
            self.source = None
            self.items = [item if isinstance(item, ImageItem | np.ndarray) else ImageItem(Path(item)) for item in items]
        if len(targets) != len(self):
            raise MedDLError(f"image dataset: {len(self)} images but {len(targets)} targets; they must pair one to one")
        self.targets = self._as_target_tensor(targets)
        self.pipeline = pipeline
        self.train = bool(train)
        if cache is not None and cache.config_hash != pipeline.config_hash:
            raise MedDLError(
                f"image cache {cache.folder} belongs to preprocessing {cache.config_hash[:12]}, "
                f"not to this pipeline's {pipeline.config_hash[:12]}"
            )
        self.cache = cache
        self.seed = pipeline.seed if seed is None else int(seed)
        self.reader: ImageReader = reader if reader is not None else _default_reader
        self.epoch = 0

    @staticmethod
    def _as_target_tensor(targets: np.ndarray | torch.Tensor) -> torch.Tensor:
        tensor = torch.as_tensor(targets)
        if tensor.is_floating_point():
            return tensor.to(torch.float32)
        if tensor.dtype == torch.bool:
            return tensor.to(torch.float32)
        return tensor.to(torch.int64)

    def __len__(self) -> int:
        return len(self.source) if self.source is not None else len(self.items)

    def set_epoch(self, epoch: int) -> None:
        """Draw this epoch's augmentations (called by the trainer before each epoch)."""
        self.epoch = int(epoch)

    def describe_item(self, index: int) -> str:
        """The file, folder or array row of item ``index``, for messages."""
        if self.source is not None:
            return f"{self.source.source}[{self.source.name}][{int(self.source.indices[index])}]"
        item = self.items[index]
        return f"image {index} (in memory)" if isinstance(item, np.ndarray) else str(item.path)

    def _key(self, index: int) -> str:
        if self.source is not None:
            return self.source.cache_key(index)
        item = self.items[index]
        if isinstance(item, np.ndarray):
            return _content_key(item)
        return source_key(item.path, item.format)

    def _compute(self, index: int) -> np.ndarray:
        if self.source is not None:
            volume: VolumeLike = self.source.volume(index)
        else:
            item = self.items[index]
            if isinstance(item, np.ndarray):
                volume = self._array_volume(item, index)
            else:
                volume = self.reader(item.path, item.format)
        return self.pipeline.deterministic(volume)

    def _array_volume(self, pixels: np.ndarray, index: int) -> ArrayVolume:
        dims = self.pipeline.spatial_dims
        if pixels.ndim == dims:
            pixels = pixels[np.newaxis]  # (1, *spatial)
        elif pixels.ndim != dims + 1:
            raise MedDLError(
                f"image {index} (in memory) has shape {pixels.shape}; expected (C, *spatial) or (*spatial) "
                f"for {dims}D images"
            )
        return ArrayVolume(np.asarray(pixels, dtype=np.float32), (1.0,) * dims, f"image {index} (in memory)")

    def preprocessed(self, index: int) -> np.ndarray:
        """Item ``index`` after the deterministic pipeline (from the cache when there), ``(C, *size)`` float32."""
        if self.cache is None:
            return self._compute(index)
        key = self._key(index)
        cached = self.cache.get(key)
        if cached is not None:
            expected_ndim = self.pipeline.spatial_dims + 1
            if cached.dtype == np.float32 and cached.ndim == expected_ndim and cached.shape[1:] == self.pipeline.size:
                return cached
            self.cache.discard(key)  # written by something else under our name: recompute
        array = self._compute(index)
        self.cache.put(key, array)
        return array

    def check_item(self, index: int) -> str | None:
        """Read and preprocess item ``index`` once — into the cache when there is one — and say why it cannot be
        used, or ``None``.

        This is the whole read, so it finds every problem (a truncated or corrupt file, an image the pipeline
        refuses); with a cache, the item's first use afterwards reads the cache instead of the file, so checking
        a data set this way before training costs no second read. An item already in the cache is not read again.

        Returns:
            The first line of the :class:`~meddl.errors.MedDLError`, without the file name in front, or ``None``.
        """
        from meddl.io.images import unreadable_reason

        try:
            self.preprocessed(index)
        except MedDLError as exc:
            return unreadable_reason(exc, self.describe_item(index))
        return None

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Item ``index`` as ``(image (C, *size) float32, target)``."""
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"image dataset index {index} out of range for {len(self)} items")
        array = self.preprocessed(index)
        if self.train:
            array = self.pipeline.augment(array, self.pipeline.augment_seed(self.epoch, index, seed=self.seed))
        return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32)), self.targets[index]
