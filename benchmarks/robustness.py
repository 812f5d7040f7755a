"""The robustness suite on the demo's models, and what training-time augmentation buys against it.

Each demo experiment (WDBC table, DICOM phantoms, planted-motif DNA sequences, ECG heart rate, EHR store) is trained
once as the demo trains it; the run scores its test split under every corruption its modality declares, at each
severity (``evaluate.robustness``). The models that have augmentation are trained a second time with it on — the
phantoms with rotation, intensity shift and noise; the sequences with and without reverse-complement augmentation —
on the same split, so the two suites can be compared corruption by corruption.

    python benchmarks/robustness.py [--quick]      # prints one JSON line
"""

from __future__ import annotations

import argparse
import copy
import json
import tempfile
from pathlib import Path
from typing import Any

import yaml
from _demo_runs import demo_runs  # benchmarks/_demo_runs.py, beside this script

from meddl import Experiment

# what each augmentation switch changes in the experiment (off, on)
AUGMENT: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "phantoms": (
        {"flip": True, "rotate_degrees": 0, "intensity_shift": 0.0, "noise_std": 0.0},
        {"flip": True, "rotate_degrees": 20, "intensity_shift": 0.3, "noise_std": 0.25},
    ),
    "motifs": ({"reverse_complement": False}, {"reverse_complement": True}),
}


def _experiments(folder: Path, quick: bool) -> list[tuple[str, Path]]:
    names = ["wdbc-mlp", "phantoms-small_cnn", "motifs-sequence_cnn", "ecg-seed_lstm", "ehr-gru"]
    return [(name.split("-")[0], path) for name, path in demo_runs(folder, quick, names)]


def _summary(robustness: dict[str, Any]) -> dict[str, Any]:
    return {
        "metric": robustness["metric"],
        "clean": round(robustness["clean"]["value"], 4),
        "worst": {
            "corruption": robustness["worst"]["corruption"],
            "severity": robustness["worst"]["severity"],
            "value": round(robustness["worst"]["value"], 4),
            "drop": round(robustness["worst"]["drop"], 4),
            "drop_ci": [round(v, 4) for v in robustness["worst"]["ci"]],
        },
        "by_corruption": {
            c["name"]: {f"{s['severity']:g}": round(s["value"], 4) for s in c["severities"]}
            for c in robustness["corruptions"]
        },
    }


def _set_augmentation(experiment: dict[str, Any], name: str, on: bool) -> None:
    change = AUGMENT[name][1 if on else 0]
    preprocess = experiment.setdefault("preprocess", {})
    if name == "phantoms":
        preprocess["augment"] = {**preprocess.get("augment", {}), **change}
    else:
        preprocess.update(change)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the demo's quick sizes and epochs")
    args = parser.parse_args()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, path in _experiments(Path(tmp), args.quick):
            base = yaml.safe_load(path.read_text())
            base.setdefault("evaluate", {}).update(robustness=True, bootstrap=200)
            base["train"]["progress"] = False
            settings = {"as_demo": None} if name not in AUGMENT else {"augment_off": False, "augment_on": True}
            for label, augmented in settings.items():
                experiment = copy.deepcopy(base)
                if augmented is not None:
                    _set_augmentation(experiment, name, augmented)
                result = Experiment.from_dict(experiment, base_dir=path.parent).run(Path(tmp) / "runs" / name / label)
                results.setdefault(name, {})[label] = _summary(result.metrics["robustness"])
    bought = {}
    for name, runs in results.items():
        if "augment_on" in runs:
            off, on = runs["augment_off"]["by_corruption"], runs["augment_on"]["by_corruption"]
            bought[name] = {
                corruption: {s: round(on[corruption][s] - off[corruption][s], 4) for s in off[corruption]}
                for corruption in off
            }
    print(json.dumps({"benchmark": "robustness", "quick": args.quick, "augmentation_gain": bought, "runs": results}))


if __name__ == "__main__":
    main()
