"""A lazy image dataset with a persistent cache of preprocessed arrays.

Nothing is read when a dataset is built: each item is read, preprocessed and (optionally) cached when it is first
asked for, so a collection larger than memory trains with memory bounded by one batch. The deterministic
preprocessing is cached on disk under the pipeline's :func:`~meddl.preprocess.images.config_hash`; augmentation runs
after the cache, per ``(seed, epoch, index)``.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import math
import os
import stat
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import torch
from torch.utils.data import Dataset

from meddl.errors import MedDLError

if TYPE_CHECKING:
    from meddl.io.images import ImageFormat
    from meddl.preprocess.images import ImagePipeline, VolumeLike

__all__ = ["ArraySource", "ArrayVolume", "ImageCache", "ImageDataset", "ImageItem", "ImageReader", "source_key"]

ImageReader = Callable[[Path, str], "VolumeLike"]
"""Reads one image: ``(path, format) -> ImageVolume``; the default is :func:`meddl.io.images.read_image`."""

_STALE_TMP_SECONDS = 3600.0  # a temp file older than this belongs to a writer that died


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
    path = Path(os.path.abspath(path))  # not resolve(): one stat per path component, on every item read
    try:
        status = path.stat()
        if stat.S_ISDIR(status.st_mode):
            files = sorted(p for p in path.rglob("*") if p.is_file())
            parts = ["dir", str(path), format, *(_file_identity(p) for p in files)]
        else:
            parts = ["file", format, f"{path}|{status.st_size}|{status.st_mtime_ns}"]
    except FileNotFoundError:
        raise MedDLError(f"image not found: {path}") from None
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


_NPY_MAGIC = b"\x93NUMPY"


@functools.cache
def _npy_header(descr: str, shape: tuple[int, ...]) -> bytes:
    """The ``.npy`` (version 1.0) header of a C-ordered array, as ``np.save`` writes it; cached, as a cache holds
    many arrays of one shape."""
    import io

    stream = io.BytesIO()
    np.lib.format.write_array_header_1_0(stream, {"descr": descr, "fortran_order": False, "shape": shape})
    return stream.getvalue()


@functools.cache
def _parse_npy_header(header: bytes) -> tuple[np.dtype[Any], tuple[int, ...]]:
    import io

    stream = io.BytesIO(header)
    np.lib.format.read_magic(stream)
    shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(stream)
    if fortran_order or dtype.hasobject:
        raise ValueError("not an entry this cache writes")
    return dtype, tuple(shape)


def _read_npy(path: Path) -> np.ndarray:
    """A ``.npy`` file this cache wrote, read in one call and parsed with a cached header (``np.load`` parses the
    header's text on every read, which costs more than reading a small entry).

    Raises:
        FileNotFoundError: no entry.
        ValueError: not a ``.npy`` file of this cache's kind, or truncated.
    """
    with open(path, "rb") as stream:
        data = bytearray(stream.read())  # writable: the dataset hands it to torch without a copy
    if data[:6] != _NPY_MAGIC or data[6:8] != b"\x01\x00" or len(data) < 10:
        raise ValueError(f"{path}: not a version 1.0 .npy file")
    end = 10 + int.from_bytes(data[8:10], "little")
    dtype, shape = _parse_npy_header(bytes(data[:end]))
    count = math.prod(shape)
    if len(data) != end + count * dtype.itemsize:
        raise ValueError(f"{path}: {len(data) - end} bytes of data, expected {count * dtype.itemsize}")
    return np.frombuffer(data, dtype, count, offset=end).reshape(shape)


class ImageCache:
    """Preprocessed arrays on disk, one ``.npy`` per image under ``root / config_hash /``.

    Writes go to a temp file in the same folder and are renamed into place (``os.replace``), so an interrupted
    write never leaves a half-written entry under a real name; an entry that cannot be read (truncated,
    corrupt) is deleted and recomputed. A different ``config_hash`` is a different folder, so entries are never
    reused across configurations.

    Args:
        root: the cache folder (``preprocess.cache_dir``).
        config_hash: the pipeline's :func:`~meddl.preprocess.images.config_hash`.
        limit_bytes: stop writing new entries once the folder holds this many bytes (reads still work).
            Each DataLoader worker counts its own writes, so with ``W`` workers the folder can overshoot the
            limit by up to ``W - 1`` workers' writes of one epoch.
        description: written once as ``pipeline.json`` in the folder, so a person can tell what it holds.

    Raises:
        MedDLError: the folder cannot be created.
    """

    def __init__(
        self,
        root: str | Path,
        config_hash: str,
        *,
        limit_bytes: int | None = None,
        description: dict[str, Any] | None = None,
    ) -> None:
        if limit_bytes is not None and limit_bytes < 0:
            raise MedDLError(f"cache limit_bytes must be at least 0, got {limit_bytes}")
        self.root = Path(root)
        self.config_hash = config_hash
        self.folder = self.root / config_hash
        self.limit_bytes = limit_bytes
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise MedDLError(f"preprocess.cache_dir: cannot create the cache folder {self.folder}: {exc}") from None
        self.hits = 0
        self.misses = 0
        self.writes = 0
        self.skipped_writes = 0
        self.discarded = 0
        self.bytes = self._scan()
        if description is not None:
            self._write_description(description)

    @classmethod
    def for_pipeline(cls, root: str | Path, pipeline: ImagePipeline, *, limit_bytes: int | None = None) -> ImageCache:
        """The cache of ``pipeline``'s deterministic output under ``root``."""
        return cls(root, pipeline.config_hash, limit_bytes=limit_bytes, description=pipeline.describe())

    def _scan(self) -> int:
        """Bytes held by entries; also removes temp files left by writers that died long ago."""
        total = 0
        now = time.time()
        with os.scandir(self.folder) as entries:
            for entry in entries:
                try:
                    if entry.name.endswith(".npy"):
                        total += entry.stat().st_size
                    elif entry.name.endswith(".tmp") and now - entry.stat().st_mtime > _STALE_TMP_SECONDS:
                        os.unlink(entry.path)
                except FileNotFoundError:  # another process renamed or removed it meanwhile
                    continue
        return total

    def _write_description(self, description: dict[str, Any]) -> None:
        target = self.folder / "pipeline.json"
        if target.exists():
            return
        with contextlib.suppress(OSError):  # informational only: never fail a run over it
            self._atomic_write(target, json.dumps(description, indent=2, sort_keys=True).encode("utf-8"))

    def _atomic_write(self, target: Path, payload: bytes) -> None:
        handle, temp = tempfile.mkstemp(dir=self.folder, prefix=f".{target.stem}.", suffix=".tmp")
        try:
            with os.fdopen(handle, "wb") as stream:
                stream.write(payload)
            os.replace(temp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise

    def path(self, key: str) -> Path:
        """Where the entry of ``key`` lives (whether or not it exists)."""
        return self.folder / f"{key}.npy"

    def get(self, key: str) -> np.ndarray | None:
        """The cached array of ``key``, or ``None`` (a miss) when absent or unreadable.

        An unreadable entry (truncated or corrupt file) is deleted so the next :meth:`put` replaces it.
        """
        target = self.path(key)
        try:
            array = _read_npy(target)
        except FileNotFoundError:
            self.misses += 1
            return None
        except (OSError, ValueError, EOFError):
            self.discard(key)
            self.misses += 1
            return None
        self.hits += 1
        return array

    def discard(self, key: str) -> None:
        """Delete the entry of ``key`` (e.g. it is corrupt or has the wrong shape)."""
        target = self.path(key)
        with contextlib.suppress(FileNotFoundError):
            size = target.stat().st_size
            target.unlink()
            self.bytes = max(0, self.bytes - size)
            self.discarded += 1

    def put(self, key: str, array: np.ndarray) -> bool:
        """Store ``array`` under ``key`` atomically.

        Returns:
            ``True`` when written; ``False`` when ``limit_bytes`` would be exceeded or the disk refused
            (a full disk slows training down, it does not stop it).
        """
        array = np.ascontiguousarray(array)
        data = _npy_header(array.dtype.str, array.shape) + array.tobytes()
        if self.limit_bytes is not None and self.bytes + len(data) > self.limit_bytes:
            self.skipped_writes += 1
            return False
        # A name no other writer uses (process and thread): mkstemp's random names cost more than a small entry.
        temp = self.folder / f".{key}.{os.getpid()}.{threading.get_ident()}.tmp"
        try:
            handle = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                os.write(handle, data)
            finally:
                os.close(handle)
            os.replace(temp, self.path(key))
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            self.skipped_writes += 1
            return False
        self.bytes += len(data)
        self.writes += 1
        return True

    def get_or_compute(self, key: str, compute: Callable[[], np.ndarray]) -> np.ndarray:
        """The cached array of ``key``, computing and storing it on a miss."""
        cached = self.get(key)
        if cached is not None:
            return cached
        array = compute()
        self.put(key, array)
        return array

    def stats(self) -> dict[str, int]:
        """Hits, misses, writes, skipped writes, discarded (corrupt) entries and bytes on disk, as counted here.

        With DataLoader workers each worker counts in its own copy; the main process sees only its own calls.
        """
        return {
            "hits": self.hits,
            "misses": self.misses,
            "writes": self.writes,
            "skipped_writes": self.skipped_writes,
            "discarded": self.discarded,
            "bytes": self.bytes,
        }

    def __repr__(self) -> str:
        return f"ImageCache({str(self.folder)!r}, limit_bytes={self.limit_bytes})"


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
