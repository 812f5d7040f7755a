"""Does fusing a patient's table, image and expression profile help, and does the model say which input mattered?

On patients with a known answer (:mod:`meddl.data.fusion`: the outcome needs a clinical marker, a lesion's size in
the image and an expression signature together, planted with weights clinical 1.3 > scan 1.0 > tumour 0.7), one
MedDL run per condition trains the fused model and, on the same split, each input's model alone; the run's own
paired bootstrap gives fused − single test AUROC with its 95 % CI on the test patients who have that input.

Conditions: every patient has all three inputs ("complete"); 30 % of the patients have no scan ("scans_missing").
The goals (issue 14): the fused model beats every single input with the CI above 0 on complete data; with 30 % of
the scans missing it still beats the best single input; the per-input contributions rank the inputs as planted
(integrated gradients summed per input, and the mean change of a prediction when the input is left out).

    python benchmarks/fusion.py [--quick] [--fusions attention,late,gated]    # prints one JSON line
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from meddl import Experiment
from meddl.data.fusion import FUSION_WEIGHTS, fusion_data_section, write_fusion_dataset

PLANTED = sorted(FUSION_WEIGHTS, key=lambda name: -FUSION_WEIGHTS[name])


def _experiment(files: dict[str, Path], fusion: str, epochs: int) -> dict[str, Any]:
    return {
        "name": f"fusion-{fusion}",
        "task": "binary",
        "data": fusion_data_section(files),
        "model": {"fusion": fusion},
        # as the `meddl init multimodal` template: a fused model overfits its easy inputs first at 1e-3
        "train": {"epochs": epochs, "learning_rate": 3e-4, "weight_decay": 0.01, "seed": 0, "progress": False},
        "evaluate": {"bootstrap": 1000, "robustness": False},
    }


def _round(value: Any, digits: int = 3) -> Any:
    if isinstance(value, float):
        return round(value, digits)
    if isinstance(value, list):
        return [_round(v, digits) for v in value]
    return value


def _condition(folder: Path, n: int, missing: float, fusion: str, epochs: int) -> dict[str, Any]:
    files = write_fusion_dataset(folder / "data", n, seed=0, missing={"scan": missing} if missing else None)
    start = time.perf_counter()
    result = Experiment.from_dict(_experiment(files, fusion, epochs)).run(out=folder / "run")
    seconds = time.perf_counter() - start
    record = json.loads((result.path / "run.json").read_text())
    metrics = result.metrics
    models = metrics["comparison_models"]["models"]
    singles = {
        name: {
            "auroc": _round(entry["baseline"]),
            "fused_minus_single": _round(entry["value"]),
            "ci": _round(entry["ci"]),
            "test_patients": entry["test_rows"],
        }
        for name, entry in models.items()
    }
    best = max(models, key=lambda name: models[name]["baseline"])
    contributions = record["explanations"]["inputs"]
    by_left_out = sorted(contributions, key=lambda name: -contributions[name]["mean_abs_change_when_left_out"])
    # per patient who has the input (a scan missing for 30 % would otherwise lose 30 % of its share)
    by_gradients = sorted(contributions, key=lambda name: -contributions[name]["mean_abs_integrated_gradients"])
    return {
        "patients": n,
        "scans_missing": missing,
        "fused_auroc": _round(metrics["test"]["auroc"]["value"]),
        "fused_ci": _round(metrics["test"]["auroc"]["ci"]),
        "single": singles,
        "beats_every_single": all(entry["ci"][0] > 0 for entry in models.values()),
        "best_single": best,
        "beats_best_single": models[best]["ci"][0] > 0,
        "ranking_left_out": by_left_out,
        "ranking_integrated_gradients": by_gradients,
        "mean_abs_change_left_out": {k: _round(v["mean_abs_change_when_left_out"]) for k, v in contributions.items()},
        "mean_abs_integrated_gradients": {
            k: _round(v["mean_abs_integrated_gradients"]) for k, v in contributions.items()
        },
        "share_integrated_gradients": {k: _round(v["share_of_integrated_gradients"]) for k, v in contributions.items()},
        "ranked_as_planted": by_left_out == PLANTED and by_gradients == PLANTED,
        "best_epoch": metrics["training"].get("best_epoch"),
        "seconds": round(seconds, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="400 patients, 15 epochs (a smoke run, not the goal)")
    parser.add_argument("--fusions", default="attention", help="comma-separated: attention, late, gated")
    args = parser.parse_args()
    n, epochs = (400, 15) if args.quick else (1000, 40)
    out: dict[str, Any] = {"benchmark": "fusion", "planted_ranking": PLANTED, "conditions": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for fusion in args.fusions.split(","):
            for label, missing in (("complete", 0.0), ("scans_missing", 0.3)):
                key = f"{fusion}/{label}"
                out["conditions"][key] = _condition(Path(tmp) / key, n, missing, fusion, epochs)
    conditions = out["conditions"]
    first = args.fusions.split(",")[0]
    out["goals"] = {
        "fused_beats_every_single_complete": conditions[f"{first}/complete"]["beats_every_single"],
        "fused_beats_best_single_30pct_scans_missing": conditions[f"{first}/scans_missing"]["beats_best_single"],
        "contributions_ranked_as_planted": conditions[f"{first}/complete"]["ranked_as_planted"],
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
