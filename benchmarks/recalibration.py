"""Recalibration on the demo's GBSG2 runs: ECE, Brier, calibration slope and AUROC on the test split for each demo
network trained once, judged without and with ``evaluate.recalibrate`` (none, auto and each method) — the same
split and weights (the map is fitted on the validation split after training, so the networks are identical).

    python benchmarks/recalibration.py [--quick]        # prints one JSON line
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import yaml

from meddl import Experiment
from meddl.demo import demo_experiments

METHODS = ("none", "auto", "temperature", "platt", "isotonic")
FIGURES = ("ece", "brier", "calibration_slope", "calibration_intercept", "auroc")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer epochs and resamples")
    args = parser.parse_args()
    results: dict[str, dict[str, dict[str, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for cohort, path in demo_experiments(Path(tmp), quick=args.quick):
            if cohort.name != "gbsg2":
                continue
            experiment = yaml.safe_load(path.read_text())
            arch = experiment["model"]["arch"]
            for method in METHODS:
                experiment["evaluate"].update({"recalibrate": method, "bootstrap": 0})
                experiment["train"]["progress"] = False
                result = Experiment.from_dict(experiment, base_dir=path.parent).run(Path(tmp) / f"{arch}-{method}")
                test = result.metrics["test"]
                row = {name: round(float(test[name]["value"]), 4) for name in FIGURES}
                info = json.loads((result.path / "model.json").read_text()).get("recalibration") or {}
                row["chosen"] = info.get("method", "none")
                results.setdefault(arch, {})[method] = row
    summary = {
        arch: {
            "ece_none": rows["none"]["ece"],
            "ece_auto": rows["auto"]["ece"],
            "ece_ratio_auto_vs_none": round(rows["auto"]["ece"] / rows["none"]["ece"], 3),
            "auroc_change_auto": round(rows["auto"]["auroc"] - rows["none"]["auroc"], 4),
            "auto_chose": rows["auto"]["chosen"],
        }
        for arch, rows in results.items()
    }
    print(json.dumps({"benchmark": "recalibration", "cohort": "gbsg2", "summary": summary, "runs": results}))


if __name__ == "__main__":
    main()
