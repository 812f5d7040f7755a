"""How good are MedDL's tabular models against logistic regression and gradient boosting on the demo cohorts?

Runs every demo experiment (``meddl.demo.demo_experiments``: the Wisconsin breast cancer and GBSG2 cohorts,
each with the ``mlp`` and ``ft_transformer`` architectures) through the whole pipeline exactly as
``meddl train exp.yaml`` does — ``meddl.Experiment.from_yaml(path).run(out=...)`` — and collects from each
run's ``metrics.json``: the test AUROC with its 95% bootstrap CI, the Brier score and the expected calibration
error, for the MedDL model and for each baseline fitted by the pipeline on the same split and preprocessing,
plus the paired bootstrap comparison of the model with each baseline (``comparisons``) and the run's wall time.

Prints one JSON line to stdout; progress goes to stderr.

    .venv/bin/python benchmarks/tabular_quality.py            # full demo experiments (60 epochs, 1000 bootstrap)
    .venv/bin/python benchmarks/tabular_quality.py --quick    # quick demo experiments (8 epochs, 100 bootstrap)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from meddl import Experiment
from meddl.demo import demo_experiments

FIGURES = ("auroc", "brier", "ece")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _rounded(value: Any, digits: int = 4) -> Any:
    """Floats rounded for reading; the run folders keep full precision."""
    if isinstance(value, float):
        return round(value, digits)
    if isinstance(value, dict):
        return {k: _rounded(v, digits) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v, digits) for v in value]
    return value


def _figures(metrics: dict[str, Any]) -> dict[str, Any]:
    """AUROC, Brier score and ECE, each ``{"value", "ci"}`` as metrics.json stores them."""
    return {name: _rounded(metrics.get(name)) for name in FIGURES}


def summarise(metrics: dict[str, Any], experiment: Experiment, wall_s: float) -> dict[str, Any]:
    """The figures this benchmark reports from one run's metrics.json."""
    training = metrics.get("training", {})
    return {
        "meddl": _figures(metrics["test"]),
        "baselines": {name: _figures(values) for name, values in metrics.get("baselines", {}).items()},
        # Paired bootstrap on the same test rows: value = model − baseline, with CI and p-value.
        "comparisons": {
            name: {key: _rounded(entry.get(key)) for key in ("metric", "model", "baseline", "value", "ci", "p_value")}
            for name, entry in metrics.get("comparisons", {}).items()
        },
        "n_test": metrics.get("data", {}).get("splits", {}).get("test"),
        "ci_level": experiment.config.evaluate.confidence_level,
        "n_bootstrap": experiment.config.evaluate.bootstrap,
        "epochs_run": training.get("epochs_run"),
        "best_epoch": training.get("best_epoch"),
        "training_s": training.get("seconds"),
        "wall_s": round(wall_s, 2),
    }


def run_all(folder: Path, *, quick: bool) -> dict[str, dict[str, Any]]:
    results: dict[str, dict[str, Any]] = {}
    for cohort, path in demo_experiments(folder, quick=quick):
        experiment = Experiment.from_yaml(path)
        arch = experiment.config.model.arch
        log(f"{cohort.name} — {arch}")
        started = time.perf_counter()
        # Anything a library prints during the run goes to stderr, so stdout carries only the JSON line.
        with contextlib.redirect_stdout(sys.stderr):
            result = experiment.run(out=path.parent / "runs" / arch, log=lambda m: log(f"  {m}"))
        wall_s = time.perf_counter() - started
        on_disk = json.loads((result.path / "metrics.json").read_text())
        results.setdefault(cohort.name, {})[arch] = summarise(on_disk, experiment, wall_s)
        auroc = on_disk["test"]["auroc"]
        log(f"  AUROC {auroc['value']:.3f} {auroc['ci']} in {wall_s:.1f}s")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the demo's quick experiments (fewer epochs, bootstrap)")
    parser.add_argument("--keep", type=Path, default=None, help="write the runs here instead of a temporary folder")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch intra-op threads; 1 by default because several threads on a shared 2-core machine thrash",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    started = time.perf_counter()
    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=True)
        datasets = run_all(args.keep, quick=args.quick)
    else:
        with tempfile.TemporaryDirectory(prefix="meddl-tabular-quality-") as folder:
            datasets = run_all(Path(folder), quick=args.quick)
    figures = {
        "benchmark": "tabular_quality",
        "datasets": datasets,
        "quick": args.quick,
        "torch_threads": torch.get_num_threads(),
        "wall_s": round(time.perf_counter() - started, 1),
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
