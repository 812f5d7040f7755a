"""What starting from another run's weights (``model.pretrained``) buys on a small data set from another site.

``small_cnn`` is trained on a larger phantom data set (8-bit PNGs, 48 pixels, half with lesions), and its
``model.safetensors`` is taken from the run folder. The target is a smaller data set of other phantoms (another
seed, NIfTI in Hounsfield units instead of windowed PNGs, 40 pixels upsampled to 48, a lower prevalence): it is
trained three ways with the same budget (epochs, learning rate, split, seed) — from scratch, fine-tuned from the
source weights, and fine-tuned with the encoder frozen. For each: the epochs needed to reach the from-scratch
model's best validation AUROC (and a fixed 0.80), and the test AUROC with its bootstrap CI, plus the paired
bootstrap difference to the from-scratch model on the same test images.

    python benchmarks/transfer.py [--quick]      # prints one JSON line
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from meddl import Experiment, load_bundle
from meddl.data.phantoms import write_phantom_dataset
from meddl.evaluate.bootstrap import paired_bootstrap_difference

FIXED_TARGET = 0.80  # validation AUROC


def _experiment(name: str, manifest: Path, epochs: int, **model: Any) -> dict[str, Any]:
    return {
        "name": name,
        "task": "binary",
        "data": {"kind": "image", "path": str(manifest), "target": "label", "positive_label": "lesion"},
        "preprocess": {"size": [48, 48], "augment": {"flip": True, "rotate_degrees": 10}},
        "model": {"arch": "small_cnn", **model},
        # the whole budget is run (patience = epochs) and the best validation epoch is kept, as usual
        "train": {
            "epochs": epochs,
            "batch_size": 32,
            "learning_rate": 2e-3,
            "early_stopping": {"monitor": "auroc", "patience": epochs},
            "progress": False,
        },
        "evaluate": {"bootstrap": 1000, "robustness": False, "baselines": []},
        "explain": {"heatmap": "gradcam", "integrated_gradients": False},
    }


def _first_epoch(history: list[dict[str, float]], target: float) -> int | None:
    """The first epoch whose validation AUROC reaches ``target`` (None: never within the budget)."""
    return next((int(row["epoch"]) for row in history if row.get("val_auroc", float("nan")) >= target - 1e-12), None)


def _test_scores(run: Path, manifest: Path) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities of the run's own test images, in manifest order, and their labels."""
    splits = pd.read_csv(run / "splits.csv")
    lines = splits.loc[splits["split"] == "test", "row"].to_numpy()  # the manifest's line numbers (header: 1)
    test = pd.read_csv(manifest).iloc[lines - 2]
    predictions = load_bundle(run).predict([manifest.parent / path for path in test["path"]])
    return predictions["probability_lesion"].to_numpy(), (test["label"] == "lesion").to_numpy().astype(int)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller data sets and budgets (a smoke test)")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", message="Only one class is present")  # a resample without positives: nan
    n_source, source_epochs = (200, 4) if args.quick else (500, 10)
    n_target, budget = (80, 4) if args.quick else (240, 12)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        source_manifest = write_phantom_dataset(folder / "source", n_source, size=48, seed=0)
        target_manifest = write_phantom_dataset(
            folder / "target", n_target, size=40, fmt="nifti", prevalence=0.3, seed=11
        )
        source = Experiment.from_dict(_experiment("source", source_manifest, source_epochs)).run(folder / "runs/source")
        weights = source.path / "model.safetensors"
        variants = {
            "scratch": {},
            "fine_tuned": {"pretrained": {"path": str(weights)}},
            "frozen_encoder": {"pretrained": {"path": str(weights), "freeze": ["encoder"]}},
        }
        runs: dict[str, Any] = {}
        for label, model in variants.items():
            clock = time.perf_counter()
            result = Experiment.from_dict(_experiment(label, target_manifest, budget, **model)).run(
                folder / "runs" / label
            )
            runs[label] = {"result": result, "seconds": round(time.perf_counter() - clock, 1)}
        scratch_best = float(runs["scratch"]["result"].record["training"]["best_score"])
        scores = {label: _test_scores(run["result"].path, target_manifest) for label, run in runs.items()}
        labels = scores["scratch"][1]
        summary: dict[str, Any] = {}
        for label, run in runs.items():
            record, metrics = run["result"].record, run["result"].metrics
            history = record["training"]["history"]
            auroc = metrics["test"]["auroc"]
            entry: dict[str, Any] = {
                "epochs_to_scratch_best": _first_epoch(history, scratch_best),
                f"epochs_to_{FIXED_TARGET:.2f}": _first_epoch(history, FIXED_TARGET),
                "best_epoch": record["training"]["best_epoch"],
                "best_val_auroc": round(float(record["training"]["best_score"]), 4),
                "val_auroc_epoch_1": round(float(history[0]["val_auroc"]), 4),
                "test_auroc": round(auroc["value"], 4),
                "test_auroc_ci": [round(v, 4) for v in auroc["ci"]],
                "seconds": run["seconds"],
            }
            if label != "scratch":
                own = scores[label][0]
                difference = paired_bootstrap_difference(
                    lambda rows, p=own: {"auroc": roc_auc_score(labels[rows], p[rows])},
                    lambda rows: {"auroc": roc_auc_score(labels[rows], scores["scratch"][0][rows])},
                    len(labels),
                    "auroc",
                    n_resamples=1000,
                )
                entry["test_auroc_minus_scratch"] = round(difference["value"], 4)
                entry["difference_ci"] = [round(v, 4) for v in difference["ci"]]
                pretrained = record["model"]["pretrained"]
                entry["loaded"], entry["n_frozen_parameters"] = pretrained["loaded"], pretrained["n_frozen_parameters"]
            summary[label] = entry
        source_auroc = source.metrics["test"]["auroc"]
        splits = runs["scratch"]["result"].record["data"]["splits"]
    print(
        json.dumps(
            {
                "benchmark": "transfer",
                "quick": args.quick,
                "source": {
                    "n": n_source,
                    "epochs": source_epochs,
                    "test_auroc": round(source_auroc["value"], 4),
                    "test_auroc_ci": [round(v, 4) for v in source_auroc["ci"]],
                },
                "target": {"n": n_target, "splits": splits, "budget_epochs": budget, "scratch_best_val": scratch_best},
                "runs": summary,
                "seconds": round(time.perf_counter() - started, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
