"""Tests of meddl.data.image_cache: pack files, torn and corrupt records, failed writes, several writers."""

from __future__ import annotations

import os
import pickle
import struct
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from torch.utils.data import DataLoader

from meddl.data import image_cache
from meddl.data.image_cache import ImageCache
from meddl.data.image_dataset import ImageDataset, source_key

from .test_image_dataset import SIZE, every_item, make_dataset, make_pipeline, write_pngs


def packs(cache: ImageCache) -> list[Path]:
    return sorted(cache.folder.glob("pack-*.bin"))


def array(value: float, shape: tuple[int, ...] = (1, 4, 4)) -> np.ndarray:
    return np.full(shape, value, dtype=np.float32)


def test_entries_round_trip_and_a_new_cache_finds_them(tmp_path: Path) -> None:
    cache = ImageCache(tmp_path, "hash")
    assert cache.get("a") is None and cache.misses == 1
    assert cache.put("a", array(1.0)) and cache.put("b", array(2.0, (2, 3, 5)))
    np.testing.assert_array_equal(cache.get("b"), array(2.0, (2, 3, 5)))
    got = cache.get("a")
    assert got is not None and got.flags.writeable  # handed to torch without a copy
    assert len(packs(cache)) == 1 and cache.bytes == packs(cache)[0].stat().st_size

    reopened = ImageCache(tmp_path, "hash")
    assert sorted(reopened.keys()) == ["a", "b"] and reopened.bytes == cache.bytes
    np.testing.assert_array_equal(reopened.get("a"), array(1.0))
    assert reopened.put("c", array(3.0))
    assert len(packs(cache)) == 2  # each writer appends to a pack of its own


def test_entry_of_the_wrong_shape_is_recomputed(tmp_path: Path) -> None:
    paths = write_pngs(tmp_path / "scans", 1)
    pipeline = make_pipeline()
    cache = ImageCache.for_pipeline(tmp_path / "cache", pipeline)
    cache.put(source_key(paths[0]), np.zeros((1, 3, 3), dtype=np.float32))
    dataset, reader = make_dataset(paths, pipeline, cache=cache)
    assert dataset[0][0].shape == (1, *SIZE) and reader.calls == 1 and cache.discarded == 1
    dataset[0]
    assert reader.calls == 1 and cache.hits == 2


def test_a_record_cut_short_is_not_served_and_later_writes_are_found(tmp_path: Path) -> None:
    cache = ImageCache(tmp_path, "hash")
    for i in range(3):
        cache.put(f"k{i}", array(float(i)))
    pack = packs(cache)[0]
    data = pack.read_bytes()
    pack.write_bytes(data[:-100])  # a writer killed inside its last record
    reopened = ImageCache(tmp_path, "hash")
    assert sorted(reopened.keys()) == ["k0", "k1"]
    assert reopened.get("k2") is None
    reopened.put("k2", array(2.0))
    np.testing.assert_array_equal(ImageCache(tmp_path, "hash").get("k2"), array(2.0))


def test_a_corrupt_record_is_passed_over_and_the_rest_of_its_pack_still_read(tmp_path: Path) -> None:
    cache = ImageCache(tmp_path, "hash")
    for i in range(3):
        cache.put(f"k{i}", array(float(i)))
    pack = packs(cache)[0]
    data = bytearray(pack.read_bytes())
    record = len(data) // 3
    header_start = record + 14 + 2  # the second record's .npy header
    assert data[header_start : header_start + 6] == b"\x93NUMPY"
    data[header_start : header_start + 6] = b"garbag"
    pack.write_bytes(bytes(data))
    assert sorted(ImageCache(tmp_path, "hash").keys()) == ["k0", "k2"]

    data[record : record + 4] = b"XXXX"  # not even a record: nothing after it in that pack can be found
    pack.write_bytes(bytes(data))
    assert ImageCache(tmp_path, "hash").keys() == ["k0"]


def test_a_pack_cut_after_it_was_indexed_is_a_miss_then_recomputed(tmp_path: Path) -> None:
    paths = write_pngs(tmp_path / "scans", 3)
    pipeline = make_pipeline()
    cache = ImageCache.for_pipeline(tmp_path / "cache", pipeline)
    dataset, reader = make_dataset(paths, pipeline, cache=cache)
    expected = every_item(dataset)
    reader_cache = ImageCache.for_pipeline(tmp_path / "cache", pipeline)
    pack = packs(cache)[0]
    pack.write_bytes(pack.read_bytes()[:-100])  # the last entry's data no longer all there
    again, reader = make_dataset(paths, pipeline, cache=reader_cache)
    for a, b in zip(expected, every_item(again), strict=True):
        np.testing.assert_array_equal(a, b)
    assert reader.calls == 1 and reader_cache.discarded == 1 and reader_cache.writes == 1


def test_a_failed_write_is_cut_off_so_the_next_record_is_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = ImageCache(tmp_path, "hash")
    cache.put("before", array(1.0))
    real_writev = os.writev

    def disk_full(handle: int, parts: list[Any]) -> int:
        real_writev(handle, parts[:2])  # the record's header and key reach the disk, then the disk is full
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "writev", disk_full)
    assert cache.put("failed", array(2.0)) is False
    assert cache.skipped_writes == 1 and cache.get("failed") is None
    monkeypatch.setattr(os, "writev", real_writev)
    assert cache.put("after", array(3.0))
    assert cache.bytes == packs(cache)[0].stat().st_size
    reopened = ImageCache(tmp_path, "hash")
    assert sorted(reopened.keys()) == ["after", "before"]
    np.testing.assert_array_equal(reopened.get("after"), array(3.0))


def test_a_short_write_counts_as_failed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = ImageCache(tmp_path, "hash")
    monkeypatch.setattr(os, "writev", lambda handle, parts: os.write(handle, bytes(parts[0])))
    assert cache.put("short", array(1.0)) is False
    assert packs(cache)[0].stat().st_size == 0 and cache.bytes == 0


def test_other_files_in_the_folder_are_not_entries(tmp_path: Path) -> None:
    cache = ImageCache(tmp_path, "hash", description={"size": [4, 4]})
    np.save(cache.folder / ("0" * 64 + ".npy"), array(1.0))  # an entry of the layout before packs
    (cache.folder / "pack-notes.txt").write_text("not a pack")
    (cache.folder / "pack-1-garbage.bin").write_bytes(b"not numpy at all, nor a record")
    reopened = ImageCache(tmp_path, "hash")
    assert reopened.keys() == [] and reopened.get("0" * 64) is None
    assert (cache.folder / "pipeline.json").read_text().startswith("{")


def test_threads_write_one_pack_without_mixing_records(tmp_path: Path) -> None:
    cache = ImageCache(tmp_path, "hash")

    def write(thread: int) -> None:
        for i in range(50):
            assert cache.put(f"t{thread}-{i}", array(thread * 100.0 + i, (1, 8, 8)))

    threads = [threading.Thread(target=write, args=(t,)) for t in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(packs(cache)) == 1
    reopened = ImageCache(tmp_path, "hash")
    assert len(reopened.keys()) == 200
    for t in range(4):
        for i in (0, 49):
            np.testing.assert_array_equal(reopened.get(f"t{t}-{i}"), array(t * 100.0 + i, (1, 8, 8)))


def test_a_copy_writes_its_own_pack_and_each_sees_the_others_records(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(image_cache, "_REFRESH_SECONDS", 0.0)
    cache = ImageCache(tmp_path, "hash")
    cache.put("parent", array(1.0))
    copy = pickle.loads(pickle.dumps(cache))  # what a spawned DataLoader worker receives
    np.testing.assert_array_equal(copy.get("parent"), array(1.0))
    copy.put("child", array(2.0))
    assert len(packs(cache)) == 2
    np.testing.assert_array_equal(cache.get("child"), array(2.0))  # a miss looks at the packs again


def test_dataloader_workers_fill_the_cache_for_the_main_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(image_cache, "_REFRESH_SECONDS", 0.0)
    paths = write_pngs(tmp_path / "scans", 8)
    pipeline = make_pipeline()
    cache = ImageCache.for_pipeline(tmp_path / "cache", pipeline)
    cache.put("before the workers", array(1.0))  # the parent's pack is open when the workers fork
    dataset, _ = make_dataset(paths, pipeline, cache=cache)
    from_workers = [batch[0] for batch in DataLoader(dataset, batch_size=2, num_workers=2)]
    assert len(packs(cache)) == 3  # the parent's and one per worker: no worker appended to the parent's
    in_main, reader = make_dataset(paths, pipeline, cache=cache)
    assert np.array_equal(np.concatenate([b.numpy() for b in from_workers]), np.stack(every_item(in_main)))
    assert reader.calls == 0 and cache.hits == 8
    np.testing.assert_array_equal(cache.get("before the workers"), array(1.0))


def test_record_layout_is_as_documented(tmp_path: Path) -> None:
    cache = ImageCache(tmp_path, "hash")
    cache.put("key", array(5.0, (1, 2, 2)))
    data = packs(cache)[0].read_bytes()
    magic, key_length, payload_length = struct.unpack_from("<4sHQ", data)
    assert (magic, key_length, data[14:17]) == (b"MDLc", 3, b"key")
    assert len(data) == 14 + 3 + payload_length and data[17:23] == b"\x93NUMPY"
    payload = tmp_path / "payload.npy"
    payload.write_bytes(data[17:])  # the payload is a whole .npy file
    np.testing.assert_array_equal(np.load(payload), array(5.0, (1, 2, 2)))


def test_dataset_over_a_cache_is_picklable_with_the_index(tmp_path: Path) -> None:
    paths = write_pngs(tmp_path / "scans", 2)
    pipeline = make_pipeline()
    cache = ImageCache.for_pipeline(tmp_path / "cache", pipeline)
    every_item(make_dataset(paths, pipeline, cache=cache)[0])
    copy = pickle.loads(pickle.dumps(ImageDataset(paths, np.zeros(2), pipeline, train=False, cache=cache)))
    assert copy.cache is not None and sorted(copy.cache.keys()) == sorted(cache.keys())


def test_long_and_non_ascii_keys(tmp_path: Path) -> None:
    cache = ImageCache(tmp_path, "hash")
    keys = ["k" * 2000, "bild-ü-图像"]
    for i, key in enumerate(keys):
        assert cache.put(key, array(float(i), (1, 2, 3, 4, 5, 6)))
    reopened = ImageCache(tmp_path, "hash")
    assert sorted(reopened.keys()) == sorted(keys)
    np.testing.assert_array_equal(reopened.get(keys[0]), array(0.0, (1, 2, 3, 4, 5, 6)))
