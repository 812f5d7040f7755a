"""Transfer learning for segmentation: a U-Net pretrained on one phantom set, fine-tuned on another "site".

The source is a 2-D segmentation run on 80 NIfTI phantoms (Hounsfield units, 64 px); its ``model.safetensors`` starts
the target runs. The target is a smaller set of other phantoms (another seed, 8-bit windowed PNGs, 64 px, 24
cases): trained from scratch and fine-tuned from the source weights with the same budget (epochs, learning rate,
split, seed). For each: the epochs needed to reach the from-scratch model's best validation Dice (and a fixed
0.70), and the test Dice with its patient-level CI.

    python benchmarks/transfer_segmentation.py [--quick]      # prints one JSON line (~5 min on 2 CPU cores)
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from _timing import log  # benchmarks/_timing.py, beside this script

from meddl import Experiment
from meddl.data.phantoms import write_phantom_dataset

FIXED_TARGET = 0.70  # validation Dice
MODEL = {"arch": "unet", "channels": [16, 32, 64], "num_res_units": 1}


def _experiment(name: str, manifest: Path, epochs: int, **model: Any) -> dict[str, Any]:
    return {
        "name": name,
        "task": "segmentation",
        "data": {"kind": "image", "path": str(manifest), "labels": {1: "lesion"}, "patient_id": "patient_id"},
        "model": {**MODEL, **model},
        "train": {"epochs": epochs, "learning_rate": 0.003, "early_stopping": {"patience": epochs}, "seed": 0,
                  "progress": False},
        "evaluate": {"bootstrap": 1000, "robustness": False},
    }  # fmt: skip


def _first_epoch(history: list[dict[str, float]], target: float) -> int | None:
    return next((int(row["epoch"]) for row in history if row.get("val_dice", 0.0) >= target), None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run (few epochs)")
    args = parser.parse_args()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        source_data = write_phantom_dataset(
            folder / "source", 40 if args.quick else 80, spatial_dims=2, size=64, fmt="nifti", prevalence=0.9,
            seed=11, patients=None, mask_column="mask",
        )  # fmt: skip
        target_data = write_phantom_dataset(
            folder / "target", 24, spatial_dims=2, size=64, fmt="png", prevalence=0.9, seed=12, mask_column="mask"
        )
        log("source: 2-D NIfTI phantoms")
        source = Experiment.from_dict(_experiment("source", source_data, 2 if args.quick else 12)).run(
            out=folder / "source-run", log=log
        )
        weights = source.path / "model.safetensors"
        budget = 2 if args.quick else 12
        runs: dict[str, Any] = {}
        splits: dict[str, int] = {}
        for name, extra in (("scratch", {}), ("fine_tuned", {"pretrained": {"path": str(weights)}})):
            log(f"target: {name}")
            result = Experiment.from_dict(_experiment(name, target_data, budget, **extra)).run(
                out=folder / f"{name}-run", log=log
            )
            history = result.record["training"]["history"]
            splits = result.metrics["data"]["splits"]
            runs[name] = {
                "history_val_dice": [round(row["val_dice"], 4) for row in history],
                "best_val_dice": round(max(row["val_dice"] for row in history), 4),
                "val_dice_epoch_1": round(history[0]["val_dice"], 4),
                f"epochs_to_{FIXED_TARGET}": _first_epoch(history, FIXED_TARGET),
                "test_dice": result.metrics["test"]["dice"],
                "loaded": (result.record["model"].get("pretrained") or {}).get("loaded"),
            }
        scratch_best = runs["scratch"]["best_val_dice"]
        for run in runs.values():
            run["epochs_to_scratch_best"] = _first_epoch(
                [{"epoch": k + 1, "val_dice": v} for k, v in enumerate(run["history_val_dice"])], scratch_best
            )
        figures = {
            "benchmark": "transfer_segmentation",
            "quick": args.quick,
            "source": {"test_dice": source.metrics["test"]["dice"], "n": 40 if args.quick else 80},
            "target": {"n": 24, "budget_epochs": budget, "splits": splits},
            "runs": runs,
            "seconds": round(time.perf_counter() - started, 1),
        }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
