"""Does MedDL's image path cost throughput or memory compared with plain PyTorch / pydicom code?

Three measurements on synthetic CT phantoms written as real DICOM files (``write_phantom_dataset(fmt="dicom")``):

1. **Training throughput.** MedDL's ``Trainer`` exactly as the image pipeline drives it (``TrainerSettings`` with
   early stopping effectively off (patience > epochs), ``checkpoint_dir=None``, ``progress=False``,
   ``make_loss('binary')``, ``metric_fn=validation_metrics('binary')``) against a hand-written PyTorch loop. Both
   sides train the same network (``small_cnn`` through ``meddl.models.build_model``, built from the same seed) on
   the same ``ImageDataset`` (64×64 phantoms, the template's preprocessing and augmentation, cache warm) for the
   same epochs: AdamW (same learning rate and weight decay; the plain loop keeps PyTorch's default AdamW
   implementation), the same cosine schedule, gradient clipping at 1.0, batches from a plain ``DataLoader``
   shuffled per epoch (a ``RandomSampler`` with a generator seeded ``seed + epoch``, which draws the trainer's
   permutation, so the training losses should match) and the same validation work after every epoch (loss and
   ``validation_metrics('binary')`` over a ``DataLoader`` of the validation ``ImageDataset``). Samples per second
   count the training loop only; validation is reported as a share of the epoch. Repetitions alternate which side
   runs first; figures are medians, the ratio is the median of per-repetition ratios (MedDL / plain).
2. **DICOM read + preprocess.** ``ImageDataset.__getitem__`` over every item (``train=False``: no augmentation)
   with an empty cache (first pass: read, preprocess, write the cache entry), then again with the cache full
   (second pass), and without a cache, against a plain loop: ``pydicom.dcmread`` → ``pixel_array * RescaleSlope +
   RescaleIntercept`` → the same resize (``area``, 128×128 → 64×64) and z-score normalisation with torch, no cache.
   The files are read once beforehand so every pass finds them in the OS page cache. Then the image pipeline's
   path up to the end of the first epoch: every file checked before the split, then every item read —
   ``checked`` (the check reads each file into the cache, the epoch reads the cache: one read per file) against
   ``decode_checked`` (a decoding check, then a cold epoch: two reads per file), and the header-only check alone
   (``header_check_files_per_s``). Their ``*_ratio`` figures are files per second against the plain loop's.
3. **Peak memory with a cache smaller than the data set.** 128×128 phantoms, preprocessed at 128×128 (64 KiB per
   image), with ``ImageCache.for_pipeline(root, pipeline, limit_bytes=...)`` far below the preprocessed set; one
   training epoch through ``Trainer`` in a fresh child process per measurement (so peaks do not mix), for N and 2N
   images. The child resets its RSS high-water mark (``/proc/self/clear_refs``) just before ``fit`` and reads
   ``VmHWM`` after it: the peak during training, beside the RSS just before ``fit`` (their difference is the
   growth during training) and ``ru_maxrss``, the whole process's peak, which importing torch and MONAI nearly
   reaches on its own.

Torch runs on one thread by default (``--threads``), ``num_workers=0`` on both sides. Prints one JSON line to
stdout; progress goes to stderr.

    .venv/bin/python benchmarks/imaging_throughput.py            # full run, under 2 minutes on 2 CPU cores
    .venv/bin/python benchmarks/imaging_throughput.py --quick    # smoke run, well under a minute
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from _timing import RunTiming, fit_timed, summarise_pairs  # benchmarks/_timing.py, beside this script
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, Dataset, RandomSampler, Subset

from meddl.data.image_dataset import ImageCache, ImageDataset, ImageItem
from meddl.data.phantoms import write_phantom_dataset
from meddl.io.images import check_readable
from meddl.modalities.sections.image import ImagePreprocessConfig
from meddl.models import build_model
from meddl.preprocess.images import ImagePipeline
from meddl.run.common import validation_metrics
from meddl.train import Trainer, TrainerSettings, make_loss, seed_everything

LEARNING_RATE = 1e-3  # the image template's train section
WEIGHT_DECAY = 1e-4
GRAD_CLIP = 1.0
MB = 1024 * 1024


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- data ------------------------------------------------------------------------------------------------


def phantom_items(manifest: Path, n: int | None = None) -> tuple[list[ImageItem], np.ndarray]:
    """The first ``n`` images of a phantom manifest as ``ImageItem``s (format ``auto``, as the template) and
    their binary targets (lesion = 1)."""
    frame = pd.read_csv(manifest)
    if n is not None:
        frame = frame.iloc[:n]
    items = [ImageItem((manifest.parent / p).resolve(), "auto") for p in frame["path"]]
    return items, (frame["label"] == "lesion").to_numpy(dtype=np.float32)


def image_pipeline(size: int, seed: int) -> ImagePipeline:
    """The image template's preprocessing (no window, resize, z-score, flip + 10° rotation + intensity shift)."""
    return ImagePipeline(ImagePreprocessConfig(size=[size, size]), spatial_dims=2, seed=seed)


def build_network(seed: int, in_channels: int = 1) -> nn.Module:
    seed_everything(seed)  # the same initial weights on both sides
    return build_model("small_cnn", {}, spatial_dims=2, in_channels=in_channels, out_channels=1)


def cosine_factor(epochs: int) -> Callable[[int], float]:
    """The trainer's cosine schedule with no warm-up, stepped once per epoch."""

    def factor(step: int) -> float:
        return 0.5 * (1 + math.cos(math.pi * min(1.0, step / max(1, epochs))))

    return factor


def trainer_settings(epochs: int, batch_size: int, seed: int) -> TrainerSettings:
    """What ``ImagePipelineRun`` passes from the template's ``train`` section, early stopping off."""
    return TrainerSettings(
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=LEARNING_RATE,
        weight_decay=WEIGHT_DECAY,
        scheduler="cosine",
        patience=epochs + 1,  # early stopping never triggers
        monitor="auroc",
        monitor_mode="max",
        seed=seed,
        device="cpu",
        precision="32",
        grad_clip=GRAD_CLIP,
        progress=False,
        num_workers=0,
    )


# -- 1. training throughput ------------------------------------------------------------------------------


def run_meddl(train: Dataset, val: Dataset, *, epochs: int, batch_size: int, seed: int) -> RunTiming:
    """``Trainer.fit`` as ``ImagePipelineRun.run`` calls it; its epoch and validation methods are timed in place."""
    model = build_network(seed)
    trainer = Trainer(
        model,
        make_loss("binary"),
        trainer_settings(epochs, batch_size, seed),
        metric_fn=validation_metrics("binary"),
        checkpoint_dir=None,
    )
    return fit_timed(trainer, train, val)


def run_plain(train: Dataset, val: Dataset, *, epochs: int, batch_size: int, seed: int) -> RunTiming:
    """The loop a PyTorch user would write by hand over the same datasets."""
    model = build_network(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=LEARNING_RATE, weight_decay=WEIGHT_DECAY)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, cosine_factor(epochs))
    metric_fn = validation_metrics("binary")
    val_loader = DataLoader(val, batch_size=max(batch_size, 256), shuffle=False)
    set_epoch = getattr(train, "set_epoch", None)
    timing = RunTiming()
    started_fit = time.perf_counter()
    torch.manual_seed(seed)  # the dropout stream starts where the trainer's does
    for epoch in range(1, epochs + 1):
        started, started_cpu = time.perf_counter(), time.process_time()
        if callable(set_epoch):
            set_epoch(epoch)  # this epoch's augmentation draws
        # Shuffled per epoch. The sampler gets its own generator: a DataLoader's ``generator`` also seeds its
        # workers (one draw before the permutation), which would shift the order away from the trainer's.
        sampler = RandomSampler(train, generator=torch.Generator().manual_seed(seed + epoch))
        loader = DataLoader(train, batch_size=batch_size, sampler=sampler)
        model.train()
        total, count = 0.0, 0
        for inputs, targets in loader:
            loss = F.binary_cross_entropy_with_logits(model(inputs).reshape(-1), targets)  # (B, 1) → (B,)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), GRAD_CLIP)
            optimizer.step()
            total += loss.item() * len(targets)
            count += len(targets)
        timing.train_seconds += time.perf_counter() - started
        timing.train_cpu_seconds += time.process_time() - started_cpu
        timing.samples += count
        timing.train_losses.append(total / count)

        started = time.perf_counter()
        model.eval()
        with torch.no_grad():
            outputs, targets_all = [], []
            for inputs, targets in val_loader:
                outputs.append(model(inputs))
                targets_all.append(targets)
            out, tgt = torch.cat(outputs), torch.cat(targets_all)
            val_loss = float(F.binary_cross_entropy_with_logits(out.reshape(-1), tgt))
            metrics = metric_fn(out.numpy(), tgt.numpy())
        timing.validation_seconds += time.perf_counter() - started
        assert math.isfinite(val_loss) and "auroc" in metrics, "validation produced no usable figures"
        scheduler.step()
    timing.fit_seconds = time.perf_counter() - started_fit
    return timing


def compare_training(
    train: ImageDataset, val: ImageDataset, *, epochs: int, batch_size: int, repeats: int, seed: int
) -> dict[str, Any]:
    runners = {"meddl": run_meddl, "plain": run_plain}
    # Warm the cache (both sides then read preprocessed arrays) and pay lazy initialisation (MONAI transforms,
    # allocator, kernels) outside the timed runs.
    for data in (train, val):
        for i in range(len(data)):
            data[i]
    warm = Subset(train, list(range(min(len(train), batch_size * 4))))
    for runner in runners.values():
        runner(warm, val, epochs=1, batch_size=batch_size, seed=seed)

    results: dict[str, list[RunTiming]] = {"meddl": [], "plain": []}
    for repeat in range(repeats):
        order = ("meddl", "plain") if repeat % 2 == 0 else ("plain", "meddl")
        for side in order:
            timing = runners[side](train, val, epochs=epochs, batch_size=batch_size, seed=seed)
            results[side].append(timing)
            log(
                f"training repeat {repeat + 1}/{repeats} {side:5s}: {timing.samples_per_s:7.1f} samples/s "
                f"(train {timing.train_seconds:.2f}s, validation {timing.validation_seconds:.2f}s)"
            )

    figures = summarise_pairs(results, epochs)
    return {
        **figures,
        "n_train": len(train),
        "n_val": len(val),
        "image_size": list(train.pipeline.size),
        "batch_size": batch_size,
    }


# -- 2. DICOM read + preprocess --------------------------------------------------------------------------


def plain_read(path: Path, size: tuple[int, int]) -> np.ndarray:
    """What a pydicom user writes: rescale to HU, area-resize, z-score; ``(1, *size)`` float32."""
    import pydicom

    dataset = pydicom.dcmread(path)
    hu = dataset.pixel_array.astype(np.float32) * float(dataset.RescaleSlope) + float(dataset.RescaleIntercept)
    image = torch.from_numpy(hu)[None, None]  # (1, 1, H, W)
    if tuple(image.shape[2:]) != size:
        image = F.interpolate(image, size=size, mode="area")
    image = image[0]
    std = image.std(unbiased=False)
    image = (image - image.mean()) / (std if std > 0 else 1.0)
    return image.numpy()


def compare_reading(
    items: list[ImageItem], targets: np.ndarray, pipeline: ImagePipeline, work: Path, *, repeats: int
) -> dict[str, Any]:
    n = len(items)
    for item in items:  # into the OS page cache, so no pass pays for the disk
        item.path.read_bytes()
    uncached = ImageDataset(items, targets, pipeline, train=False, cache=None)
    # Lazy initialisation (pydicom handlers, MONAI transforms) outside the timed passes.
    uncached[0]
    plain_read(items[0].path, pipeline.size)
    difference = max(
        float(np.abs(uncached[i][0].numpy() - plain_read(items[i].path, pipeline.size)).max()) for i in range(min(n, 8))
    )

    def meddl_passes(repeat: int) -> dict[str, float]:
        root = work / f"read-cache-{repeat}"
        dataset = ImageDataset(items, targets, pipeline, train=False, cache=ImageCache.for_pipeline(root, pipeline))
        seconds = {}
        for name in ("cold", "warm"):
            started = time.perf_counter()
            for i in range(n):
                dataset[i]
            seconds[name] = time.perf_counter() - started
        assert dataset.cache is not None and dataset.cache.hits == n, "the second pass did not come from the cache"
        started = time.perf_counter()
        for i in range(n):
            uncached[i]
        seconds["nocache"] = time.perf_counter() - started
        shutil.rmtree(root, ignore_errors=True)
        seconds.update(pipeline_passes(repeat))
        return seconds

    def pipeline_passes(repeat: int) -> dict[str, float]:
        """What the image pipeline does before and in the first epoch: every file checked, then every item read.

        ``checked``: now — each file read and preprocessed into the cache by the check (``ImageDataset.check_item``),
        the first epoch reading the cache. ``decode_checked``: before — ``check_readable(decode=True)`` decoding each
        file, then the cold first epoch reading it again. ``header_check``: the header-level ``check_readable`` alone
        (what runs without a cache under ``on_bad_file: error``).
        """
        seconds = {}
        root = work / f"check-cache-{repeat}"
        dataset = ImageDataset(items, targets, pipeline, train=False, cache=ImageCache.for_pipeline(root, pipeline))
        started = time.perf_counter()
        for i in range(n):
            assert dataset.check_item(i) is None, f"{items[i].path} failed the check"
        for i in range(n):
            dataset[i]
        seconds["checked"] = time.perf_counter() - started
        assert dataset.cache is not None and dataset.cache.hits == n, "the first epoch did not read the cache"
        shutil.rmtree(root, ignore_errors=True)

        root = work / f"decode-check-cache-{repeat}"
        dataset = ImageDataset(items, targets, pipeline, train=False, cache=ImageCache.for_pipeline(root, pipeline))
        started = time.perf_counter()
        for item in items:
            assert check_readable(item.path, "auto", decode=True) is None
        for i in range(n):
            dataset[i]
        seconds["decode_checked"] = time.perf_counter() - started
        shutil.rmtree(root, ignore_errors=True)

        started = time.perf_counter()
        for item in items:
            assert check_readable(item.path, "auto") is None
        seconds["header_check"] = time.perf_counter() - started
        return seconds

    def plain_pass() -> float:
        started = time.perf_counter()
        for item in items:
            plain_read(item.path, pipeline.size)
        return time.perf_counter() - started

    runs: dict[str, list[float]] = {
        name: [] for name in ("meddl_cold", "meddl_warm", "meddl_nocache", "meddl_checked", "meddl_decode_checked")
    }
    runs.update({"meddl_header_check": [], "plain": []})
    for repeat in range(repeats):
        first_plain = repeat % 2 == 1
        if first_plain:
            runs["plain"].append(n / plain_pass())
        for name, seconds in meddl_passes(repeat).items():
            runs[f"meddl_{name}"].append(n / seconds)
        if not first_plain:
            runs["plain"].append(n / plain_pass())
        log(
            f"reading repeat {repeat + 1}/{repeats}: "
            + ", ".join(f"{name} {values[-1]:.0f} files/s" for name, values in runs.items())
        )
    figures: dict[str, Any] = {f"{name}_files_per_s": round(statistics.median(v), 1) for name, v in runs.items()}
    for name in ("meddl_cold", "meddl_warm", "meddl_nocache", "meddl_checked", "meddl_decode_checked"):
        per_repeat = [m / p for m, p in zip(runs[name], runs["plain"], strict=True)]
        figures[f"{name.removeprefix('meddl_')}_ratio"] = round(statistics.median(per_repeat), 4)
    figures.update(
        {
            "max_abs_difference_vs_plain": difference,
            "n_files": n,
            "source_size": [128, 128],
            "image_size": list(pipeline.size),
            "repeats": repeats,
        }
    )
    return figures


# -- 3. peak memory, one child process per measurement ---------------------------------------------------


def current_rss_mb() -> float:
    with open("/proc/self/statm") as stream:
        return int(stream.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / MB


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def reset_peak_rss() -> bool:
    """Reset the kernel's high-water mark (VmHWM) of this process (Linux ≥ 4.0); False where refused."""
    try:
        with open("/proc/self/clear_refs", "w") as stream:
            stream.write("5")
    except OSError:
        return False
    return True


def high_water_mb() -> float:
    with open("/proc/self/status") as stream:
        for line in stream:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    return float("nan")


def rss_child(spec: dict[str, Any]) -> None:
    """Train one epoch on the first ``spec['n']`` images with a size-limited cache; print the child's figures."""
    torch.set_num_threads(spec["threads"])
    seed = spec["seed"]
    items, targets = phantom_items(Path(spec["manifest"]), spec["n"])
    pipeline = image_pipeline(spec["size"], seed)
    cache = ImageCache.for_pipeline(spec["cache_root"], pipeline, limit_bytes=spec["limit_bytes"])
    train = ImageDataset(items, targets, pipeline, train=True, cache=cache, seed=seed)
    n_val = spec["n_val"]
    val = ImageDataset(items[-n_val:], targets[-n_val:], pipeline, train=False, cache=cache, seed=seed)
    trainer = Trainer(
        build_network(seed),
        make_loss("binary"),
        trainer_settings(1, spec["batch_size"], seed),
        metric_fn=validation_metrics("binary"),
        checkpoint_dir=None,
    )
    gc.collect()
    before, peak_before = current_rss_mb(), peak_rss_mb()
    # Importing torch and MONAI leaves a transient peak close to training's; reset the high-water mark so the
    # fit's own peak is measured too (ru_maxrss, the whole process's peak, is reported beside it).
    reset = reset_peak_rss()
    started = time.perf_counter()
    result = trainer.fit(train, val)
    seconds = time.perf_counter() - started
    peak = peak_rss_mb()
    fit_peak = high_water_mb() if reset else peak
    stats = cache.stats()
    print(
        json.dumps(
            {
                "n_images": spec["n"],
                "peak_rss_during_fit_mb": round(fit_peak, 1),
                "peak_rss_mb": round(peak, 1),
                "rss_before_fit_mb": round(before, 1),
                "peak_rss_before_fit_mb": round(peak_before, 1),
                "growth_during_fit_mb": round(fit_peak - before, 1),
                "high_water_mark_reset": reset,
                "preprocessed_set_mb": round(spec["n"] * int(np.prod(pipeline.size)) * 4 / MB, 1),
                "dicom_files_mb": round(sum(item.path.stat().st_size for item in items) / MB, 1),
                "cache_mb": round(stats["bytes"] / MB, 2),
                "cache_writes": stats["writes"],
                "cache_skipped_writes": stats["skipped_writes"],
                "samples_seen": result.samples_seen,
                "fit_s": round(seconds, 2),
            }
        )
    )


def measure_memory(
    manifest: Path, work: Path, *, n: int, size: int, limit_bytes: int, batch_size: int, threads: int, seed: int
) -> dict[str, Any]:
    runs = []
    for count in (n, 2 * n):
        cache_root = work / f"rss-cache-{count}"
        shutil.rmtree(cache_root, ignore_errors=True)  # both children start from an empty, limited cache
        spec = {
            "manifest": str(manifest),
            "n": count,
            "n_val": max(8, n // 8),
            "size": size,
            "cache_root": str(cache_root),
            "limit_bytes": limit_bytes,
            "batch_size": batch_size,
            "threads": threads,
            "seed": seed,
        }
        child = subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), "--rss-child", json.dumps(spec)],
            capture_output=True,
            text=True,
            check=False,
        )
        if child.returncode != 0:
            log(child.stderr)
            raise SystemExit(f"memory child for {count} images failed with exit status {child.returncode}")
        figures = json.loads(child.stdout.strip().splitlines()[-1])
        log(
            f"memory {count} images: peak RSS during fit {figures['peak_rss_during_fit_mb']:.0f} MB, "
            f"process {figures['peak_rss_mb']:.0f} MB "
            f"(before fit {figures['rss_before_fit_mb']:.0f} MB; preprocessed set {figures['preprocessed_set_mb']} MB, "
            f"cache {figures['cache_mb']} MB)"
        )
        runs.append(figures)
    small, large = runs
    growth_small, growth_large = small["growth_during_fit_mb"], large["growth_during_fit_mb"]
    fit_peak_small, fit_peak_large = small["peak_rss_during_fit_mb"], large["peak_rss_during_fit_mb"]
    return {
        "n": small,
        "2n": large,
        "peak_rss_during_fit_ratio_2n_vs_n": round(fit_peak_large / fit_peak_small, 4),
        "peak_rss_ratio_2n_vs_n": round(large["peak_rss_mb"] / small["peak_rss_mb"], 4),
        "growth_difference_mb": round(growth_large - growth_small, 1),
        "preprocessed_set_ratio_2n_vs_n": round(large["preprocessed_set_mb"] / small["preprocessed_set_mb"], 4),
        "cache_limit_mb": round(limit_bytes / MB, 2),
        "image_size": [size, size],
        "epochs": 1,
    }


# -- main ------------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run")
    parser.add_argument("--n-train", type=int, default=400, help="training images (64×64)")
    parser.add_argument("--n-val", type=int, default=100, help="validation images (64×64)")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32, help="the image template's")
    parser.add_argument("--train-repeats", type=int, default=9, help="alternating repetitions")
    parser.add_argument("--n-read", type=int, default=400, help="DICOM files (128×128) read in the read benchmark")
    parser.add_argument("--read-repeats", type=int, default=3)
    parser.add_argument("--memory-n", type=int, default=400, help="N: the memory runs train on N and 2N images")
    parser.add_argument("--cache-limit-mb", type=float, default=5.0)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (extra threads thrash here)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", type=Path, default=None, help="write the phantoms here and keep them")
    parser.add_argument("--rss-child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rss_child is not None:
        rss_child(json.loads(args.rss_child))
        return
    if args.quick:
        args.n_train, args.n_val, args.epochs, args.train_repeats = 64, 32, 1, 1
        args.n_read, args.read_repeats = 48, 1
        args.memory_n, args.cache_limit_mb = 48, 1.0
    torch.set_num_threads(args.threads)
    load_start = os.getloadavg()
    started = time.perf_counter()

    work = args.keep or Path(tempfile.mkdtemp(prefix="meddl-imaging-"))
    try:
        log(f"writing phantoms under {work}")
        small_manifest = write_phantom_dataset(
            work / "dicom64", args.n_train + args.n_val, size=64, fmt="dicom", seed=args.seed
        )
        n_large = max(args.n_read, 2 * args.memory_n)
        large_manifest = write_phantom_dataset(work / "dicom128", n_large, size=128, fmt="dicom", seed=args.seed + 1)
        log(f"{args.n_train + args.n_val} phantoms at 64×64 and {n_large} at 128×128 written")

        figures: dict[str, Any] = {"benchmark": "imaging_throughput"}

        items, targets = phantom_items(small_manifest)
        pipeline = image_pipeline(64, args.seed)
        cache = ImageCache.for_pipeline(work / "train-cache", pipeline)
        train = ImageDataset(
            items[: args.n_train], targets[: args.n_train], pipeline, train=True, cache=cache, seed=args.seed
        )
        val = ImageDataset(
            items[args.n_train :], targets[args.n_train :], pipeline, train=False, cache=cache, seed=args.seed
        )
        figures["training"] = compare_training(
            train, val, epochs=args.epochs, batch_size=args.batch_size, repeats=args.train_repeats, seed=args.seed
        )

        read_items, read_targets = phantom_items(large_manifest, args.n_read)
        figures["dicom_read"] = compare_reading(
            read_items, read_targets, image_pipeline(64, args.seed), work, repeats=args.read_repeats
        )

        figures["memory"] = measure_memory(
            large_manifest,
            work,
            n=args.memory_n,
            size=128,
            limit_bytes=int(args.cache_limit_mb * MB),
            batch_size=args.batch_size,
            threads=args.threads,
            seed=args.seed,
        )
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)

    figures.update(
        {
            "load_average": {"start": [round(v, 2) for v in load_start], "end": [round(v, 2) for v in os.getloadavg()]},
            "torch_threads": torch.get_num_threads(),
            "torch_version": torch.__version__,
            "quick": args.quick,
            "wall_s": round(time.perf_counter() - started, 1),
        }
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
