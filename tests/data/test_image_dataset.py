"""Tests of meddl.data.image_dataset: lazy reading, the on-disk cache, seeded augmentation, array sources."""

from __future__ import annotations

import gc
import os
import pickle
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from meddl.data.image_dataset import ArraySource, ImageCache, ImageDataset, ImageItem, source_key
from meddl.errors import MedDLError
from meddl.modalities.sections.image import ImagePreprocessConfig
from meddl.preprocess.images import ImagePipeline

SIZE = [16, 16]


@dataclass
class Volume:
    """Stands in for meddl.io.images.ImageVolume."""

    array: np.ndarray
    spacing: tuple[float, ...]
    source: str
    meta: dict[str, Any] = field(default_factory=dict)


class CountingReader:
    """Reads PNGs with Pillow and counts every call, to prove what is read when."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, path: Path, format: str) -> Volume:
        self.calls += 1
        with Image.open(path) as image:
            pixels = np.asarray(image, dtype=np.float32)
        return Volume(pixels[None], (1.0, 1.0), str(path))  # (1, H, W)


def write_pngs(folder: Path, n: int, shape: tuple[int, int] = (24, 20), seed: int = 0) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        path = folder / f"case_{i:04d}.png"
        Image.fromarray(rng.integers(0, 256, size=shape, dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


def make_pipeline(seed: int = 0, **settings: Any) -> ImagePipeline:
    settings.setdefault("size", SIZE)
    settings.setdefault("augment", {"flip": True, "rotate_degrees": 15.0, "intensity_shift": 0.1, "noise_std": 0.05})
    return ImagePipeline(ImagePreprocessConfig(**settings), spatial_dims=2, seed=seed)


def make_dataset(
    paths: list[Path], pipeline: ImagePipeline, *, cache: ImageCache | None = None, train: bool = False
) -> tuple[ImageDataset, CountingReader]:
    reader = CountingReader()
    targets = np.arange(len(paths)) % 2
    return ImageDataset(paths, targets, pipeline, train=train, cache=cache, seed=3, reader=reader), reader


def every_item(dataset: ImageDataset) -> list[np.ndarray]:
    return [dataset[i][0].numpy() for i in range(len(dataset))]


# -- laziness and memory ----------------------------------------------------------------------------


def test_init_reads_nothing_and_iteration_holds_no_images(tmp_path: Path) -> None:
    paths = write_pngs(tmp_path / "scans", 200, shape=(64, 64))
    pipeline = make_pipeline(size=[64, 64])
    dataset, reader = make_dataset(paths, pipeline, train=True)
    assert reader.calls == 0
    assert len(dataset) == 200
    held_before = len(pickle.dumps(dataset))  # what a DataLoader worker receives: everything the dataset holds

    seen = []
    for batch, _ in DataLoader(dataset, batch_size=8):
        assert batch.shape == (8, 1, 64, 64)
        seen.append(weakref.ref(batch))
    del batch
    gc.collect()
    assert reader.calls == 200
    assert all(ref() is None for ref in seen), "batches are still referenced after iteration"
    all_images = 200 * 64 * 64 * 4  # 3.3 MB if the dataset kept what it read
    held_after = len(pickle.dumps(dataset))
    assert held_after - held_before < 1000 and held_after < all_images / 50, (held_before, held_after)


def test_items_and_targets(tmp_path: Path) -> None:
    paths = write_pngs(tmp_path, 4)
    dataset, _ = make_dataset(paths, make_pipeline())
    image, target = dataset[1]
    assert image.dtype == torch.float32 and image.shape == (1, *SIZE)
    assert target.dtype == torch.int64 and int(target) == 1
    assert torch.equal(dataset[-1][0], dataset[3][0])
    with pytest.raises(IndexError):
        dataset[4]
    floats = ImageDataset(paths, np.eye(4)[:, :2], make_pipeline(), train=False, reader=CountingReader())
    assert floats[0][1].dtype == torch.float32 and floats[0][1].shape == (2,)


def test_lengths_must_match(tmp_path: Path) -> None:
    with pytest.raises(MedDLError, match="3 images but 2 targets"):
        ImageDataset(write_pngs(tmp_path, 3), np.zeros(2), make_pipeline(), train=False)


def test_default_reader_is_meddl_io_read_image(tmp_path: Path) -> None:
    images = pytest.importorskip("meddl.io.images")
    paths = write_pngs(tmp_path, 3)
    dataset = ImageDataset([ImageItem(p, "png") for p in paths], np.zeros(3), make_pipeline(), train=False)
    expected = make_pipeline().deterministic(images.read_image(paths[2], format="png"))
    np.testing.assert_array_equal(dataset[2][0].numpy(), expected)


def test_dataloader_workers_get_the_epoch(tmp_path: Path) -> None:
    paths = write_pngs(tmp_path, 8)
    dataset, _ = make_dataset(paths, make_pipeline(), train=True)
    dataset.set_epoch(2)
    in_main = torch.stack([dataset[i][0] for i in range(8)])
    batches = list(DataLoader(dataset, batch_size=4, num_workers=2))
    torch.testing.assert_close(torch.cat([b[0] for b in batches]), in_main, rtol=0, atol=0)


# -- augmentation -----------------------------------------------------------------------------------


def test_augmentation_deterministic_per_seed_epoch_index(tmp_path: Path) -> None:
    paths = write_pngs(tmp_path, 6)
    first, _ = make_dataset(paths, make_pipeline(), train=True)
    second, _ = make_dataset(paths, make_pipeline(), train=True)
    first.set_epoch(1)
    second.set_epoch(1)
    for a, b in zip(every_item(first), every_item(second), strict=True):
        np.testing.assert_array_equal(a, b)

    epoch_1 = every_item(first)
    first.set_epoch(2)
    epoch_2 = every_item(first)
    assert all(not np.array_equal(a, b) for a, b in zip(epoch_1, epoch_2, strict=True))
    # the same image at two indices is augmented differently: the index is part of the seed
    twin, _ = make_dataset([paths[0], paths[0]], make_pipeline(), train=True)
    assert not torch.equal(twin[0][0], twin[1][0])


def test_no_augmentation_when_not_training(tmp_path: Path) -> None:
    paths = write_pngs(tmp_path, 4)
    pipeline = make_pipeline()
    evaluation, reader = make_dataset(paths, pipeline, train=False)
    before = every_item(evaluation)
    evaluation.set_epoch(5)
    for a, b, path in zip(before, every_item(evaluation), paths, strict=True):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, pipeline.deterministic(reader(path, "auto")))


# -- cache --------------------------------------------------------------------------------------------


def cache_for(root: Path, pipeline: ImagePipeline, limit_bytes: int | None = None) -> ImageCache:
    return ImageCache.for_pipeline(root, pipeline, limit_bytes=limit_bytes)


def test_second_pass_hits_the_cache(tmp_path: Path) -> None:
    paths = write_pngs(tmp_path / "scans", 10)
    pipeline = make_pipeline()
    cache = cache_for(tmp_path / "cache", pipeline)
    dataset, reader = make_dataset(paths, pipeline, cache=cache)
    first = every_item(dataset)
    assert (cache.misses, cache.hits, cache.writes, reader.calls) == (10, 0, 10, 10)
    second = every_item(dataset)
    assert (cache.hits, reader.calls) == (10, 10)
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)
    assert cache.bytes == sum(p.stat().st_size for p in cache.folder.glob("pack-*.bin"))
    assert len(list(cache.folder.glob("pack-*.bin"))) == 1  # one pack per writing process, not a file per image
    assert (cache.folder / "pipeline.json").is_file()

    # a new process reusing the folder starts warm
    reopened = cache_for(tmp_path / "cache", pipeline)
    assert reopened.bytes == cache.bytes
    warm, warm_reader = make_dataset(paths, pipeline, cache=reopened)
    every_item(warm)
    assert (reopened.hits, warm_reader.calls) == (10, 0)
    assert reopened.stats()["hits"] == 10


def test_changed_config_misses(tmp_path: Path) -> None:
    paths = write_pngs(tmp_path / "scans", 5)
    every_item(make_dataset(paths, make_pipeline(), cache=cache_for(tmp_path / "cache", make_pipeline()))[0])
    other = make_pipeline(normalize="minmax")
    cache = cache_for(tmp_path / "cache", other)
    dataset, reader = make_dataset(paths, other, cache=cache)
    every_item(dataset)
    assert (cache.hits, cache.misses, reader.calls) == (0, 5, 5)
    assert len(list((tmp_path / "cache").iterdir())) == 2  # one folder per config hash
    # augmentation settings do not change what is cached
    same = make_pipeline(augment={"flip": False, "rotate_degrees": 0.0})
    reused = cache_for(tmp_path / "cache", same)
    every_item(make_dataset(paths, same, cache=reused)[0])
    assert reused.hits == 5


def test_cache_of_another_config_is_refused(tmp_path: Path) -> None:
    cache = cache_for(tmp_path, make_pipeline(size=[8, 8]))
    with pytest.raises(MedDLError, match="belongs to preprocessing"):
        make_dataset(write_pngs(tmp_path / "scans", 1), make_pipeline(), cache=cache)


def test_changed_file_gets_a_new_entry(tmp_path: Path) -> None:
    paths = write_pngs(tmp_path / "scans", 1)
    pipeline = make_pipeline()
    dataset, reader = make_dataset(paths, pipeline, cache=cache_for(tmp_path / "cache", pipeline))
    before = dataset[0][0]
    Image.fromarray(np.zeros((30, 30), dtype=np.uint8) + 9).save(paths[0])
    os.utime(paths[0], ns=(time.time_ns(), time.time_ns() + 10**9))
    after = dataset[0][0]
    assert reader.calls == 2 and not torch.equal(before, after)


def test_limit_bytes_stops_new_writes_but_reads_still_work(tmp_path: Path) -> None:
    paths = write_pngs(tmp_path / "scans", 8)
    pipeline = make_pipeline()
    entry_size = 14 + 64 + 128 + 4 * SIZE[0] * SIZE[1]  # record header, key, .npy header, float32 (1, 16, 16)
    limit = 3 * entry_size + 10
    cache = cache_for(tmp_path / "cache", pipeline, limit_bytes=limit)
    dataset, reader = make_dataset(paths, pipeline, cache=cache)
    first = every_item(dataset)
    assert cache.writes == 3 and cache.skipped_writes == 5
    on_disk = sum(p.stat().st_size for p in cache.folder.glob("pack-*.bin"))
    assert on_disk <= limit and cache.bytes == on_disk
    second = every_item(dataset)
    assert cache.hits == 3 and reader.calls == 8 + 5
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)
    assert cache.stats() == {
        "hits": 3,
        "misses": 13,
        "writes": 3,
        "skipped_writes": 10,
        "discarded": 0,
        "bytes": on_disk,
    }


def test_series_folder_key_changes_when_a_file_is_added(tmp_path: Path) -> None:
    series = tmp_path / "series"
    write_pngs(series, 3)
    before = source_key(series, "dicom")
    assert source_key(series, "dicom") == before
    assert source_key(series, "auto") != before
    write_pngs(series / "more", 1)
    assert source_key(series, "dicom") != before
    with pytest.raises(MedDLError, match="not found"):
        source_key(tmp_path / "missing.dcm")


# -- array sources (MedMNIST-style .npz) ------------------------------------------------------------


def test_array_source_channel_layouts() -> None:
    rng = np.random.default_rng(0)
    first = rng.integers(0, 255, size=(5, 20, 20, 3)).astype(np.uint8)  # as stored in MedMNIST: channels last
    last = ArraySource(first, source="derma.npz", name="train_images")
    assert last.volume(2).array.shape == (3, 20, 20)
    np.testing.assert_array_equal(last.volume(2).array[1], first[2, :, :, 1])
    channel_first = ArraySource(np.moveaxis(first, -1, 1).astype(np.float32))  # as read_npz returns them
    np.testing.assert_array_equal(channel_first.volume(2).array, last.volume(2).array)
    grey = ArraySource(first[..., 0])
    assert grey.volume(0).array.shape == (1, 20, 20)
    volumes = ArraySource(rng.random((2, 6, 8, 8)), spatial_dims=3)
    assert volumes.volume(1).array.shape == (1, 6, 8, 8) and volumes.volume(1).spacing == (1.0, 1.0, 1.0)
    with pytest.raises(MedDLError, match=r"organ.npz.*shape"):
        ArraySource(rng.random((2, 8)), source="organ.npz")


def test_array_dataset_is_lazy_and_cached_by_npz_path_and_row(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    images = rng.integers(0, 255, size=(12, 28, 28)).astype(np.uint8)
    npz = tmp_path / "pneumonia.npz"
    np.savez(npz, train_images=images)
    source = ArraySource(images, source=npz, name="train_images")
    pipeline = make_pipeline()
    cache = cache_for(tmp_path / "cache", pipeline)
    dataset = ImageDataset(source.select(np.arange(2, 10)), np.zeros(8), pipeline, train=False, cache=cache)
    assert len(dataset) == 8 and cache.misses == 0
    first = every_item(dataset)
    np.testing.assert_array_equal(first[0], pipeline.deterministic(source.volume(2)))
    assert cache.writes == 8
    every_item(ImageDataset(source, np.zeros(12), pipeline, train=False, cache=cache))
    assert cache.hits == 8 and cache.writes == 12  # rows 2..9 shared between the view and the whole
    assert source.cache_key(0) != source.cache_key(1)
    assert dataset.describe_item(0).endswith("[train_images][2]")


def test_in_memory_rows_are_keyed_by_content() -> None:
    images = np.zeros((3, 8, 8), dtype=np.float32)
    images[1] += 1
    source = ArraySource(images)
    assert source.cache_key(0) == source.cache_key(2) != source.cache_key(1)


def test_in_memory_array_items(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    split = rng.random((4, 1, 20, 20)).astype(np.float32)  # (N, C, H, W) as read_npz returns a split
    pipeline = make_pipeline()
    cache = cache_for(tmp_path, pipeline)
    dataset = ImageDataset([*split[:3], split[3, 0]], np.zeros(4), pipeline, train=False, cache=cache)
    np.testing.assert_array_equal(dataset[0][0].numpy(), pipeline.deterministic(Volume(split[0], (1.0, 1.0), "row 0")))
    assert dataset[3][0].shape == (1, *SIZE)
    every_item(dataset)
    assert cache.hits == 2 and cache.writes == 4
    with pytest.raises(MedDLError, match=r"image 0 \(in memory\) has shape"):
        ImageDataset([np.zeros((2, 2, 8, 8))], np.zeros(1), pipeline, train=False)[0]


# -- checking items before training -----------------------------------------------------------------


def test_check_item_reads_once_into_the_cache_and_reports_bad_files(tmp_path: Path) -> None:
    paths = write_pngs(tmp_path / "scans", 3)
    broken = tmp_path / "scans" / "broken.png"
    broken.write_bytes(paths[0].read_bytes()[:60])  # cut inside the image data
    pipeline = make_pipeline()
    cache = cache_for(tmp_path / "cache", pipeline)
    checker = ImageDataset([*paths, broken], np.zeros(4), pipeline, train=False, cache=cache)  # meddl's reader
    assert [checker.check_item(i) for i in range(3)] == [None, None, None]
    reason = checker.check_item(3)
    assert reason is not None and "truncated or corrupt" in reason and str(broken) not in reason
    assert cache.writes == 3  # the bad file left no entry

    # Training afterwards reads the cache, not the files; a second check does not read them either.
    training, reader = make_dataset(paths, pipeline, cache=cache, train=True)
    every_item(training)
    assert reader.calls == 0
    assert training.check_item(0) is None and reader.calls == 0


def test_check_item_without_a_cache_still_reads_in_full(tmp_path: Path) -> None:
    paths = write_pngs(tmp_path / "scans", 2)
    dataset, reader = make_dataset(paths, make_pipeline(), cache=None)
    assert dataset.check_item(1) is None and reader.calls == 1
