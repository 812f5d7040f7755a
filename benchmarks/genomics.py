"""How well and how fast does MedDL learn planted JASPAR motifs, and what does its trainer cost on sequences?

Data: ``meddl.data.motifs.planted_motif_dataset(n, length=200, seed)`` (default n = 2000; ``--quick``: 600) —
a human-like Markov background, positives carrying 1–2 instances of five real JASPAR motifs (CTCF, TP53, REST,
SRF, NFKB1) sampled from their PFMs on a random strand — written as FASTA with ``write_planted_dataset``.

1. **Quality, through the whole pipeline.** Two experiments, each run exactly as ``meddl train`` runs an
   experiment file (``Experiment.from_dict(...).run``; the dicts follow ``sequence_demo_experiment`` of
   ``meddl.demo``: stratified 70/15/15 split seeded 0 (no patient ids), Youden threshold on validation, bootstrap CIs,
   the pipeline's k-mer (k = 4) logistic-regression baseline on the same split):

   * ``sequence_cnn`` on one-hot bases (reverse-complement and ±3-base shift augmentation, both strands
     averaged at prediction), one wide layer of 64 filters of 19 bases, as the demo configures it;
   * ``seed_attention`` on 3-mer tokens (embedding → LSTM → self-attention), the founding document's model.

   Reported per model: test accuracy and AUROC with 95 % CIs next to the baseline's; the motif recovery rate
   (``meddl.demo.motif_recovery_of`` on the run's ``metrics.json``: a planted motif counts when it is the top
   JASPAR match of a motif discovered from the model's attributions); and the attribution peak rate
   (``meddl.explain.sequences.attribution_peak_in_site``, tolerance 3 bases): the share of positive *test*
   sequences (test ids from the bundle's ``splits.csv``) whose largest per-base contribution falls inside one
   of their planted sites. Contributions come from the trained bundle (``meddl.load_bundle(run).model``):
   ``integrated_gradients_sequence`` + ``per_base_contributions`` for the one-hot model; for the token model,
   ``token_attributions`` (integrated gradients through the embedding) spread evenly over the k bases each
   token covers, as the sequence kind explains token models.

2. **Trainer overhead.** MedDL's ``Trainer`` against a hand-written PyTorch loop (``_timing
   .compare_training``: same network from the same seed, AdamW, cosine schedule, clipping at 1.0, the same
   per-epoch permutation and validation work) on ``sequence_cnn`` (the demo's parameters) and the same
   ``(N, 4, 200)`` one-hot ``TensorDataset`` of the sequence_cnn run's training and validation split. The
   pipeline itself trains one-hot models on ``AugmentedSequences`` (per-item reverse complement and shift
   drawn from ``default_rng([seed, epoch, i])``, batched by a ``DataLoader``); that path is timed too
   (``augmented``), and its samples/s are compared with the plain loop's on tensors, so the cost of the
   augmentation shows beside the trainer's own.

Torch runs on one thread by default (``--threads``). Prints one JSON line to stdout; progress goes to stderr.

    .venv/bin/python benchmarks/genomics.py            # full run, several minutes on 2 CPU cores
    .venv/bin/python benchmarks/genomics.py --quick    # smoke run, about a minute
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from _timing import TARGET_RATIO, compare_training, run_meddl  # benchmarks/_timing.py, beside this script
from torch import nn
from torch.utils.data import TensorDataset

import meddl
from meddl.data.motifs import PlantedMotifs, planted_motif_dataset, write_planted_dataset
from meddl.demo import motif_recovery_of
from meddl.experiment import Experiment
from meddl.explain.sequences import (
    attribution_peak_in_site,
    integrated_gradients_sequence,
    per_base_contributions,
    token_attributions,
)
from meddl.models import build_model
from meddl.preprocess.sequences import AugmentedSequences, SequenceEncoder

LENGTH = 200
CNN_PARAMS: dict[str, Any] = {"filters": [64], "kernel_sizes": [19], "dropout": 0.1, "hidden": 32}  # the demo's
BATCH_SIZE = 64  # the demo's train section
LEARNING_RATE = 0.005
PEAK_TOLERANCE = 3


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- 1. quality through the pipeline ------------------------------------------------------------------------


def experiment_dict(arch: str, fasta: Path, *, epochs: int, bootstrap: int, seed: int) -> dict[str, Any]:
    """The demo's sequence experiment (``sequence_demo_experiment``) for ``sequence_cnn`` or ``seed_attention``."""
    if arch == "sequence_cnn":
        preprocess: dict[str, Any] = {
            "length": LENGTH,
            "encoding": "onehot",
            "reverse_complement": True,
            "max_shift": 3,
        }
        model: dict[str, Any] = {"arch": arch, **CNN_PARAMS}
    elif arch == "seed_attention":
        # k-mer tokens: the pipeline augments and strand-averages one-hot inputs only.
        preprocess = {"length": LENGTH, "encoding": "kmer", "k": 3, "reverse_complement": False}
        model = {"arch": arch}
    else:
        raise ValueError(f"arch must be sequence_cnn or seed_attention, got {arch!r}")
    return {
        "name": f"motifs-{arch}",
        "task": "binary",
        "data": {"kind": "sequence", "path": str(fasta), "target": "label", "positive_label": 1},
        "preprocess": preprocess,
        "model": model,
        "train": {
            "epochs": epochs,
            "batch_size": BATCH_SIZE,
            "learning_rate": LEARNING_RATE,
            "early_stopping": {"monitor": "auroc", "patience": 4},
            "seed": seed,
            "progress": False,
        },
        "evaluate": {"bootstrap": bootstrap, "threshold": "youden", "baselines": ["logistic_regression"]},
    }


def metric(entry: dict[str, Any] | None) -> dict[str, Any]:
    """``{"value", "ci"}`` of a metrics.json entry, rounded."""
    if not entry:
        return {"value": None, "ci": None}
    ci = entry.get("ci")
    return {
        "value": round(float(entry["value"]), 4) if entry.get("value") is not None else None,
        "ci": [round(float(c), 4) if c is not None else None for c in ci] if ci else None,
    }


def test_split(run: Path, data: PlantedMotifs) -> tuple[np.ndarray, np.ndarray]:
    """Data-set indices of the run's test sequences (from ``splits.csv``) and of the positives among them."""
    splits = pd.read_csv(run / "splits.csv")
    position = {record_id: i for i, record_id in enumerate(data.ids)}
    test = np.array([position[i] for i in splits.loc[splits["split"] == "test", "id"]], dtype=np.int64)
    return test, test[data.labels[test] == 1]


def peak_in_site(run: Path, data: PlantedMotifs) -> dict[str, Any]:
    """Attribution peak rate on the positive test sequences, with the trained bundle's model."""
    bundle = meddl.load_bundle(run)
    model = bundle.model.cpu().eval()
    _, positives = test_split(run, data)
    sequences = [data.sequences[i] for i in positives]
    prep = bundle.config.preprocess
    encoder = SequenceEncoder(encoding=prep.encoding, length=prep.length, k=prep.k, ambiguous=prep.ambiguous)
    inputs = encoder.transform(sequences)
    started = time.perf_counter()
    if prep.encoding == "onehot":
        contributions = per_base_contributions(integrated_gradients_sequence(model, inputs, target=0))  # (P, L)
        method = "integrated_gradients_sequence + per_base_contributions"
    else:
        token_scores = token_attributions(model, inputs, target=0)  # (P, L - k + 1)
        contributions = np.zeros((len(sequences), prep.length), dtype=np.float32)
        for offset in range(prep.k):  # each token's score spread over the k bases it covers
            contributions[:, offset : offset + token_scores.shape[1]] += token_scores / prep.k
        method = "token_attributions spread over each k-mer's bases"
    seconds = time.perf_counter() - started
    # attribution_peak_in_site indexes contributions by the sites' ``sequence``: renumber to rows of ``positives``.
    row_of = {int(index): row for row, index in enumerate(positives)}
    sites = data.sites[data.sites["sequence"].isin(row_of)].copy()
    sites["sequence"] = sites["sequence"].map(row_of)
    result = attribution_peak_in_site(contributions, sites, tolerance=PEAK_TOLERANCE)
    return {**result, "fraction": round(float(result["fraction"]), 4), "method": method, "seconds": round(seconds, 1)}


def pipeline_quality(arch: str, fasta: Path, data: PlantedMotifs, work: Path, **settings: Any) -> dict[str, Any]:
    started = time.perf_counter()
    result = Experiment.from_dict(experiment_dict(arch, fasta, **settings)).run(out=work / "runs" / arch)
    run_seconds = time.perf_counter() - started
    metrics = result.metrics
    baseline = metrics["baselines"]["logistic_regression"]
    recovery = motif_recovery_of(metrics, [m.matrix_id for m in data.motifs])
    quality = metrics.get("explanation_quality") or {}
    figures = {
        "test_accuracy": metric(metrics["test"].get("accuracy")),
        "test_auroc": metric(metrics["test"].get("auroc")),
        "baseline_kmer_logistic_regression": {
            "test_accuracy": metric(baseline.get("accuracy")),
            "test_auroc": metric(baseline.get("auroc")),
        },
        "motif_recovery_rate": recovery["rate"],
        "motifs_recovered": recovery["recovered"],
        "motifs_discovered": quality.get("n_motifs"),
        "top_jaspar_matches": [m["matches"][0]["name"] for m in quality.get("motifs", []) if m.get("matches")],
        "attribution_peak_in_site": peak_in_site(result.path, data),
        "epochs_run": metrics["training"]["epochs_run"],
        "best_epoch": metrics["training"]["best_epoch"],
        "pipeline_s": round(run_seconds, 1),
    }
    log(
        f"{arch}: test AUROC {figures['test_auroc']['value']} (baseline {baseline['auroc']['value']:.3f}), "
        f"motifs recovered {recovery['recovered']}, peak in site {figures['attribution_peak_in_site']['fraction']}"
    )
    return figures


# -- 2. trainer overhead on one-hot tensors -----------------------------------------------------------------


def one_hot_split(run: Path, data: PlantedMotifs) -> dict[str, TensorDataset]:
    """The run's training and validation sequences as one-hot (N, 4, L) float32 tensors, float32 labels."""
    splits = pd.read_csv(run / "splits.csv")
    position = {record_id: i for i, record_id in enumerate(data.ids)}
    encoder = SequenceEncoder(encoding="onehot", length=LENGTH)
    tensors = {}
    for name in ("train", "validation"):
        rows = [position[i] for i in splits.loc[splits["split"] == name, "id"]]
        x = torch.from_numpy(np.ascontiguousarray(encoder.transform([data.sequences[i] for i in rows])))
        tensors[name] = TensorDataset(x, torch.from_numpy(data.labels[rows].astype(np.float32)))
    return tensors


def build_cnn() -> nn.Module:
    return build_model("sequence_cnn", dict(CNN_PARAMS), in_channels=4, out_channels=1)


def trainer_overhead(tensors: dict[str, TensorDataset], *, epochs: int, repeats: int, seed: int) -> dict[str, Any]:
    train, val = tensors["train"], tensors["validation"]
    settings: dict[str, Any] = {
        "epochs": epochs,
        "batch_size": BATCH_SIZE,
        "learning_rate": LEARNING_RATE,
        "seed": seed,
    }
    figures = compare_training("sequence_cnn", build_cnn, "binary", train, val, repeats=repeats, **settings)
    # The pipeline's own training set for one-hot models: per-item reverse complement and ±3 shift.
    augmented = AugmentedSequences(*train.tensors, rc_probability=0.5, max_shift=3, seed=seed)
    rates, cpu_rates = [], []
    for repeat in range(repeats):
        timing = run_meddl(build_cnn, "binary", augmented, val, **settings)
        rates.append(timing.samples_per_s)
        cpu_rates.append(timing.samples_per_cpu_s)
        log(f"sequence_cnn repeat {repeat + 1}/{repeats} meddl on AugmentedSequences: {rates[-1]:8.1f} samples/s")
    rate, cpu_rate = statistics.median(rates), statistics.median(cpu_rates)
    figures["augmented"] = {
        "meddl_samples_per_s": round(rate, 1),
        "ratio_vs_plain_tensors": round(rate / figures["plain_samples_per_s"], 4),
        "ratio_vs_meddl_tensors": round(rate / figures["meddl_samples_per_s"], 4),
        # On process CPU time, less disturbed by other work on a shared machine.
        "meddl_samples_per_cpu_s": round(cpu_rate, 1),
        "cpu_ratio_vs_plain_tensors": round(cpu_rate / figures["plain_samples_per_cpu_s"], 4),
    }
    figures["params"] = CNN_PARAMS
    return figures


# -- main ----------------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run")
    parser.add_argument("--n", type=int, default=2000, help="sequences (half positive)")
    parser.add_argument("--epochs", type=int, default=12, help="pipeline training epochs (the demo's)")
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--speed-epochs", type=int, default=2, help="epochs per timed trainer-overhead run")
    parser.add_argument("--repeats", type=int, default=5, help="alternating trainer-overhead repetitions")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (extra threads thrash here)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", type=Path, default=None, help="write the data and runs here and keep them")
    args = parser.parse_args()
    if args.quick:
        args.n, args.epochs, args.bootstrap, args.speed_epochs, args.repeats = 600, 3, 100, 1, 1
    torch.set_num_threads(args.threads)
    load_start = os.getloadavg()
    started = time.perf_counter()
    work = args.keep or Path(tempfile.mkdtemp(prefix="meddl-genomics-"))
    figures: dict[str, Any] = {"benchmark": "genomics"}
    try:
        data = planted_motif_dataset(args.n, length=LENGTH, seed=args.seed)
        fasta = write_planted_dataset(work / "data", data, formats=("fasta",))["fasta"]
        log(f"{args.n} planted-motif sequences written to {fasta}")
        settings = {"epochs": args.epochs, "bootstrap": args.bootstrap, "seed": args.seed}
        for arch in ("sequence_cnn", "seed_attention"):
            figures[arch] = pipeline_quality(arch, fasta, data, work, **settings)
        test, positives = test_split(work / "runs" / "sequence_cnn", data)
        figures["data"] = {
            "n": args.n,
            "length": LENGTH,
            "planted": [f"{m.name} ({m.matrix_id})" for m in data.motifs],
            "n_test": len(test),
            "n_test_positive": len(positives),
            "pipeline_epochs": args.epochs,
            "bootstrap": args.bootstrap,
        }
        tensors = one_hot_split(work / "runs" / "sequence_cnn", data)
        figures["trainer_overhead"] = trainer_overhead(
            tensors, epochs=args.speed_epochs, repeats=args.repeats, seed=args.seed
        )
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    figures.update(
        {
            "target_ratio": TARGET_RATIO,
            "meets_target": figures["trainer_overhead"]["ratio"] >= TARGET_RATIO,
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
