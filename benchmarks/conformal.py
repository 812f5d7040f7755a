"""Conformal coverage on the demo's data sets: the share of test cases whose prediction set (interval) holds the
truth, against the 1 - alpha asked for, overall and per class with Mondrian calibration.

Each demo experiment (WDBC and GBSG2 tables, the planted-motif DNA sequences, the EHR store, the ECG heart-rate
regression, and the survival cohorts GBSG2, WHAS500 and GSE7390, whose "sets" are lower bounds on the time to the
event, covered when the follow-up reaches them) is trained with ``evaluate.conformal: {alpha: 0.1, calibration:
0.6}`` and splits of 45/25/30 %, so that most test splits hold ≥ 200 cases (the goal's condition) and 15 % of the
cases calibrate (the spread of a single run's coverage around 1 - alpha shrinks with the calibration size: about
sqrt(alpha (1 - alpha) / n)); classification runs once more with ``mondrian: class``. Several training seeds give
independent draws.

    python benchmarks/conformal.py [--quick] [--seeds 3]      # prints one JSON line
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from _demo_runs import demo_runs  # benchmarks/_demo_runs.py, beside this script

from meddl import Experiment

ALPHA = 0.1


def _experiments(folder: Path, quick: bool) -> list[tuple[str, Path]]:
    names = ["wdbc-mlp", "gbsg2-mlp", "motifs-sequence_cnn", "ehr-gru", "ecg-seed_lstm", "survival"]
    short = {
        "wdbc-mlp": "wdbc",
        "gbsg2-mlp": "gbsg2",
        "motifs-sequence_cnn": "motifs",
        "ehr-gru": "ehr",
        "ecg-seed_lstm": "ecg",
    }
    return [(short.get(name, name), path) for name, path in demo_runs(folder, quick, names)]


def _figures(result: Any) -> dict[str, Any]:
    test = result.metrics["conformal"]["test"]
    overall = test["overall"]
    size = next(name for name in ("mean_width", "mean_lower_bound", "mean_set_size") if name in overall)
    row: dict[str, Any] = {
        "n_test": overall["n"],
        "n_calibration": result.metrics["conformal"]["n_calibration"],
        "coverage": round(overall["coverage"]["value"], 4),
        "coverage_ci": [round(v, 4) for v in overall["coverage"]["ci"]],
        size: round(overall[size]["value"], 4),
    }
    if "per_class" in test:
        row["per_class"] = {
            name: round(entry["coverage"]["value"], 4)
            for name, entry in test["per_class"].items()
            if "coverage" in entry
        }
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the demo's quick sizes and epochs")
    parser.add_argument("--seeds", type=int, default=3, help="training seeds (independent splits) per data set")
    args = parser.parse_args()
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, path in _experiments(Path(tmp), args.quick):
            experiment = yaml.safe_load(path.read_text())
            variants = {"marginal": {"alpha": ALPHA, "calibration": 0.6}}
            if experiment["task"] not in {"regression", "survival"}:
                variants["mondrian_class"] = {"alpha": ALPHA, "mondrian": "class", "calibration": 0.6}
            for variant, conformal in variants.items():
                for seed in range(args.seeds):
                    experiment.setdefault("evaluate", {}).update(conformal=conformal, bootstrap=200, robustness=False)
                    experiment["data"].setdefault("split", {}).update(train=0.45, validation=0.25, test=0.3)
                    experiment["train"].update(seed=seed, progress=False)
                    run = Experiment.from_dict(experiment, base_dir=path.parent)
                    result = run.run(Path(tmp) / "runs" / f"{name}-{variant}-{seed}")
                    runs.setdefault(name, {}).setdefault(variant, []).append(_figures(result))
    summary: dict[str, Any] = {}
    for name, variants in runs.items():
        for variant, rows in variants.items():
            coverage = np.array([r["coverage"] for r in rows])
            entry: dict[str, Any] = {
                "n_test": rows[0]["n_test"],
                "coverage_per_seed": coverage.round(4).tolist(),
                "coverage_mean": round(float(coverage.mean()), 4),
                "within_3_points": [bool(abs(c - (1 - ALPHA)) <= 0.03) for c in coverage],
            }
            if variant == "mondrian_class":
                worst = [min(r["per_class"].values()) for r in rows]
                entry["worst_class_coverage_per_seed"] = [round(w, 4) for w in worst]
                entry["every_class_within_5_points"] = [
                    all(abs(c - (1 - ALPHA)) <= 0.05 for c in r["per_class"].values()) for r in rows
                ]
            summary[f"{name}/{variant}"] = entry
    print(json.dumps({"benchmark": "conformal", "alpha": ALPHA, "summary": summary, "runs": runs}))


if __name__ == "__main__":
    main()
