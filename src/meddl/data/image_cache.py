"""The on-disk cache of preprocessed images: entries appended to pack files, one pack per writing process.

Layout: ``root / config_hash /`` holds ``pipeline.json`` (what the entries are) and ``pack-<pid>-<token>.bin`` files.
A pack is a sequence of records, each::

    b"MDLc" | key length (u16 LE) | payload length (u64 LE) | key (UTF-8) | payload (a version 1.0 .npy file)

Why packs, not a file per entry: creating, writing and renaming one small file per image cost 0.1–0.3 ms on the
virtual disks measured (a third of reading and preprocessing a 128×128 DICOM slice, more on network file systems,
where creating files is slowest), and left a folder of as many files as images. Appending a record to an open
file costs about 10 µs, and a cache hit is one ``pread`` on an open pack.

Safety without locks between processes:

* Each process appends only to its own pack (opened on its first write; a forked child opens another), so two
  writers never share a file; threads of one process take turns on a lock.
* A record is written in one ``writev``; one cut short (a full disk) is cut off again with ``ftruncate``. A
  record that ends past the end of its pack (a writer killed mid-record, or one still writing) is not indexed,
  nor is anything after it in that pack: it is read again later, or recomputed.
* A record whose ``.npy`` header does not describe its payload's length (corrupt) is passed over when the packs are
  indexed; one that cannot be read back is dropped from the index (:meth:`ImageCache.discard`) and recomputed.
* A process learns of other processes' records (DataLoader workers, another run on the same data) by indexing the
  packs' new bytes: when the cache opens, and on a miss at most once a second.

Several records for one key (two workers computed the same image) are equal — a key names the source file as it
is on disk and the preprocessing — so whichever is indexed last is served.
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import math
import os
import secrets
import struct
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from meddl.errors import MedDLError

if TYPE_CHECKING:
    from meddl.preprocess.images import ImagePipeline

__all__ = ["ImageCache"]

_MAGIC = b"MDLc"
_RECORD = struct.Struct("<4sHQ")  # magic, key length, payload length
_NPY_MAGIC = b"\x93NUMPY"
_PROBE_BYTES = 512  # read past a record's key: covers its .npy header (128 bytes as NumPy pads, more for many axes)
_REFRESH_SECONDS = 1.0  # a miss looks for other processes' new records at most this often
_OPEN_PACKS = 64  # packs held open for reading at once (least recently used closed first)


@functools.cache
def _npy_header(descr: str, shape: tuple[int, ...]) -> bytes:
    """The ``.npy`` (version 1.0) header of a C-ordered array, as ``np.save`` writes it; cached, as a cache holds
    many arrays of one shape."""
    stream = io.BytesIO()
    np.lib.format.write_array_header_1_0(stream, {"descr": descr, "fortran_order": False, "shape": shape})
    return stream.getvalue()


@functools.cache
def _parse_npy_header(header: bytes) -> tuple[np.dtype[Any], tuple[int, ...]]:
    stream = io.BytesIO(header)
    np.lib.format.read_magic(stream)
    shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(stream)
    if fortran_order or dtype.hasobject:
        raise ValueError("not an entry this cache writes")
    return dtype, tuple(shape)


def _npy_layout(payload_start: bytes | bytearray, payload_length: int) -> tuple[int, np.dtype[Any], tuple[int, ...]]:
    """The header length, dtype and shape of a ``.npy`` payload from its first bytes.

    Raises:
        ValueError: not a version 1.0 ``.npy`` of this cache's kind, or its data is not ``payload_length`` long.
    """
    if payload_start[:6] != _NPY_MAGIC or payload_start[6:8] != b"\x01\x00" or len(payload_start) < 10:
        raise ValueError("not a version 1.0 .npy payload")
    end = 10 + int.from_bytes(payload_start[8:10], "little")
    if len(payload_start) < end:
        raise ValueError("the .npy header is cut short")
    dtype, shape = _parse_npy_header(bytes(payload_start[:end]))
    if payload_length != end + math.prod(shape) * dtype.itemsize:
        raise ValueError(f"{payload_length - end} bytes of data for shape {shape} {dtype}")
    return end, dtype, shape


def _pread_into(handle: int, data: bytearray, offset: int) -> int:
    """Read ``len(data)`` bytes at ``offset`` into ``data``; the number read (``pread``: no shared file position,
    so threads and forked workers may read one descriptor at once)."""
    if hasattr(os, "preadv"):
        return os.preadv(handle, [data], offset)
    chunk = os.pread(handle, len(data), offset)  # macOS before 11: one copy more
    data[: len(chunk)] = chunk
    return len(chunk)


class ImageCache:
    """Preprocessed arrays on disk under ``root / config_hash /``, appended to pack files (see the module's notes).

    A different ``config_hash`` is a different folder, so entries are never reused across configurations. The
    object can be pickled (DataLoader workers): a worker keeps the index and opens its own pack to write.

    Args:
        root: the cache folder (``preprocess.cache_dir``).
        config_hash: the pipeline's :func:`~meddl.preprocess.images.config_hash`.
        limit_bytes: stop writing new entries once the folder's packs hold this many bytes (reads still work).
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
        self.bytes = 0
        # key -> (pack name, payload offset, payload length); pack name -> bytes indexed so far
        self._index: dict[str, tuple[str, int, int]] = {}
        self._indexed: dict[str, int] = {}
        self._reset_handles()
        self._refresh()
        if description is not None:
            self._write_description(description)

    @classmethod
    def for_pipeline(cls, root: str | Path, pipeline: ImagePipeline, *, limit_bytes: int | None = None) -> ImageCache:
        """The cache of ``pipeline``'s deterministic output under ``root``."""
        return cls(root, pipeline.config_hash, limit_bytes=limit_bytes, description=pipeline.describe())

    # -- process-local state: open files and the lock ---------------------------------------------------------

    def _reset_handles(self) -> None:
        self._lock = threading.Lock()
        self._readers: OrderedDict[str, int] = OrderedDict()  # pack name -> read-only descriptor
        self._writer: int | None = None  # this process's pack, opened on its first write
        self._writer_name = ""
        self._writer_pid = os.getpid()
        self._writer_end = 0
        self._refreshed_at = time.monotonic()

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        for name in ("_lock", "_readers", "_writer", "_writer_name", "_writer_pid", "_writer_end", "_refreshed_at"):
            del state[name]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._reset_handles()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):  # interpreter shutdown: os may be gone
            self.close()

    def close(self) -> None:
        """Close the packs this process holds open (a later read or write opens them again). In a forked child
        this closes the child's copies of the descriptors only."""
        handles = [*self._readers.values(), *([self._writer] if self._writer is not None else [])]
        self._readers.clear()
        self._writer = None
        for handle in handles:
            with contextlib.suppress(OSError):
                os.close(handle)

    # -- indexing -------------------------------------------------------------------------------------------

    def _refresh(self) -> None:
        """Index the records appended to the packs since the last look (this process's own are indexed as
        written)."""
        self._refreshed_at = time.monotonic()
        try:
            entries = list(os.scandir(self.folder))
        except OSError:
            return
        total = 0
        for entry in entries:
            if not (entry.name.startswith("pack-") and entry.name.endswith(".bin")):
                continue
            try:
                size = entry.stat().st_size
            except FileNotFoundError:
                continue
            total += size
            if entry.name != self._writer_name and size > self._indexed.get(entry.name, 0):
                self._index_pack(entry.name, size)
        self.bytes = total

    def _index_pack(self, name: str, size: int) -> None:
        offset = self._indexed.get(name, 0)
        try:
            with open(self.folder / name, "rb") as stream:
                while offset + _RECORD.size <= size:
                    stream.seek(offset)
                    probe = stream.read(_PROBE_BYTES)
                    if len(probe) < _RECORD.size:
                        break  # cut back by its writer after a failed write
                    magic, key_length, payload_length = _RECORD.unpack_from(probe)
                    if magic != _MAGIC:
                        offset = size  # not a record: nothing after it can be found; stop here for good
                        break
                    payload = offset + _RECORD.size + key_length
                    end = payload + payload_length
                    if end > size:
                        break  # being written, or cut short by a writer that died: look again later
                    wanted = min(end - offset, _RECORD.size + key_length + _PROBE_BYTES)
                    if len(probe) < wanted:  # the key and the .npy header, however long the key
                        probe += stream.read(wanted - len(probe))
                    key = probe[_RECORD.size : _RECORD.size + key_length]
                    try:
                        _npy_layout(probe[_RECORD.size + key_length :], payload_length)
                        self._index[key.decode("utf-8")] = (name, payload, payload_length)
                    except (ValueError, UnicodeDecodeError):
                        pass  # a corrupt record: passed over, its key recomputed
                    offset = end
        except OSError:
            return
        self._indexed[name] = offset

    def _reader(self, name: str) -> int:
        handle = self._readers.get(name)
        if handle is not None:
            self._readers.move_to_end(name)
            return handle
        handle = os.open(self.folder / name, os.O_RDONLY)
        self._readers[name] = handle
        if len(self._readers) > _OPEN_PACKS:
            os.close(self._readers.popitem(last=False)[1])
        return handle

    # -- reading and writing --------------------------------------------------------------------------------

    def _write_description(self, description: dict[str, Any]) -> None:
        target = self.folder / "pipeline.json"
        if target.exists():
            return
        temp = self.folder / f".pipeline.{os.getpid()}.{secrets.token_hex(4)}.tmp"
        with contextlib.suppress(OSError):  # informational only: never fail a run over it
            temp.write_text(json.dumps(description, indent=2, sort_keys=True), encoding="utf-8")
            os.replace(temp, target)
        with contextlib.suppress(OSError):
            temp.unlink()

    def get(self, key: str) -> np.ndarray | None:
        """The cached array of ``key``, or ``None`` (a miss) when absent or unreadable.

        An entry that cannot be read back (its pack cut short or changed since it was indexed) is dropped from
        the index, so the next :meth:`put` replaces it.
        """
        entry = self._index.get(key)
        if entry is None and time.monotonic() - self._refreshed_at >= _REFRESH_SECONDS:
            self._refresh()
            entry = self._index.get(key)
        if entry is None:
            self.misses += 1
            return None
        name, offset, length = entry
        data = bytearray(length)  # writable: the dataset hands it to torch without a copy
        try:
            read = _pread_into(self._reader(name), data, offset)
            if read != length:
                raise ValueError(f"{read} of {length} bytes")
            end, dtype, shape = _npy_layout(data, length)
        except (OSError, ValueError):
            self.discard(key)
            self.misses += 1
            return None
        self.hits += 1
        return np.frombuffer(data, dtype, math.prod(shape), offset=end).reshape(shape)

    def discard(self, key: str) -> None:
        """Forget the entry of ``key`` (it is corrupt or has the wrong shape): the next :meth:`put` replaces it.

        Its bytes stay in its pack until the folder is deleted (the cache is disposable: delete the folder to
        reclaim them)."""
        if self._index.pop(key, None) is not None:
            self.discarded += 1

    def put(self, key: str, array: np.ndarray) -> bool:
        """Append ``array`` under ``key`` to this process's pack.

        Returns:
            ``True`` when written; ``False`` when ``limit_bytes`` would be exceeded or the disk refused
            (a full disk slows training down, it does not stop it).
        """
        array = np.ascontiguousarray(array)
        header = _npy_header(array.dtype.str, array.shape)
        encoded = key.encode("utf-8")
        payload_length = len(header) + array.nbytes
        pixels = array.reshape(-1).view(np.uint8).data  # the array's bytes, not copied
        parts: list[bytes | memoryview] = [_RECORD.pack(_MAGIC, len(encoded), payload_length), encoded, header, pixels]
        size = _RECORD.size + len(encoded) + payload_length
        if self.limit_bytes is not None and self.bytes + size > self.limit_bytes:
            self.skipped_writes += 1
            return False
        if self._writer_pid != os.getpid():  # a forked child: the parent's pack and lock are not its own
            self.close()
            self._reset_handles()
        with self._lock:
            try:
                handle = self._open_writer()
                start = self._writer_end
                written = os.writev(handle, parts)
                if written != size:
                    raise OSError(f"wrote {written} of {size} bytes")
            except OSError:
                if self._writer is not None:  # cut a partial record off, so the pack's next record is found
                    with contextlib.suppress(OSError):
                        os.ftruncate(self._writer, self._writer_end)
                self.skipped_writes += 1
                return False
            self._writer_end = start + size
            self._indexed[self._writer_name] = self._writer_end
        self._index[key] = (self._writer_name, start + _RECORD.size + len(encoded), payload_length)
        self.bytes += size
        self.writes += 1
        return True

    def _open_writer(self) -> int:
        if self._writer is None:
            name = f"pack-{os.getpid()}-{secrets.token_hex(4)}.bin"
            self._writer = os.open(self.folder / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
            self._writer_name, self._writer_end = name, 0
        return self._writer

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

    def keys(self) -> list[str]:
        """The keys indexed here: this process's writes and every pack's records seen so far."""
        return list(self._index)

    def __repr__(self) -> str:
        return f"ImageCache({str(self.folder)!r}, limit_bytes={self.limit_bytes})"
