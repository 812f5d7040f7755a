"""``meddl demo``: real cohorts shipped with installed packages, run through the whole pipeline.

Each cohort is written to disk as a CSV with an experiment YAML beside it, then run exactly as a user's
``meddl train exp.yaml`` would be — so the demo exercises the real readers, not an in-memory shortcut.
The folder it leaves behind (``runs/demo/<cohort>/``) holds the data, the YAML and the bundle with its report.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from meddl.data import Cohort, gbsg2_cohort, wdbc_cohort
from meddl.io import write_table

__all__ = ["demo_experiments", "run_demo"]


def _experiment(cohort: Cohort, arch: str, *, quick: bool) -> dict[str, Any]:
    model: dict[str, Any] = {"arch": arch}
    if arch == "ft_transformer":
        model.update({"d_token": 32, "n_blocks": 2, "n_heads": 4})
    return {
        "name": f"{cohort.name}-{arch}",
        "task": "binary",
        "data": {
            "kind": "tabular",
            "description": " ".join([cohort.description + ".", *cohort.notes]),
            "path": f"{cohort.name}.csv",
            "target": cohort.target,
            "positive_label": cohort.positive_label,
            "patient_id": cohort.patient_id,
        },
        "preprocess": {
            "missing": "median",
            "missing_indicators": True,
            "scale": "standard",
            # No reweighting: the demo reports calibrated risks, and reweighting would distort them
            # (the threshold chosen on validation handles the class balance instead).
            "imbalance": "none",
        },
        "model": model,
        "train": {
            "epochs": 8 if quick else 60,
            "batch_size": 64,
            "learning_rate": 1e-3,
            "early_stopping": {"monitor": "auroc", "patience": 10},
            "seed": 0,
            "progress": False,
        },
        "evaluate": {
            "bootstrap": 100 if quick else 1000,
            "threshold": "youden",
            "baselines": ["logistic_regression", "gradient_boosting"],
        },
        "explain": {"permutation_repeats": 2 if quick else 5},
    }


def demo_experiments(out: Path, *, quick: bool = False) -> list[tuple[Cohort, Path]]:
    """Write each demo cohort and its experiment files under ``out``; returns (cohort, yaml path) pairs."""
    written = []
    for cohort, archs in (
        (wdbc_cohort(), ("mlp", "ft_transformer")),
        (gbsg2_cohort(5.0), ("mlp", "ft_transformer")),
    ):
        folder = out / cohort.name
        folder.mkdir(parents=True, exist_ok=True)
        write_table(cohort.frame, folder / f"{cohort.name}.csv")
        for arch in archs:
            path = folder / f"{arch}.yaml"
            header = f"# {cohort.description}\n" + "".join(f"# {note}\n" for note in cohort.notes)
            path.write_text(header + yaml.safe_dump(_experiment(cohort, arch, quick=quick), sort_keys=False))
            written.append((cohort, path))
    return written


def run_demo(
    out: str | Path = "runs/demo", *, quick: bool = False, log: Callable[[str], None] | None = None
) -> list[dict]:
    """Run every demo experiment; returns one summary row per run for the CLI's table."""
    from meddl.experiment import Experiment

    say = log or (lambda message: None)
    out = Path(out)
    rows = []
    for cohort, path in demo_experiments(out, quick=quick):
        experiment = Experiment.from_yaml(path)
        say(f"{cohort.description} — {experiment.config.model.arch}")
        for note in cohort.notes:
            say(note)
        result = experiment.run(out=path.parent / "runs" / experiment.config.model.arch)
        metrics = result.metrics

        def fmt(entry: dict | None) -> str:
            if not entry or entry.get("value") is None:
                return "—"
            lo, hi = entry["ci"]
            return f"{entry['value']:.3f} ({lo:.3f}–{hi:.3f})" if lo is not None else f"{entry['value']:.3f}"

        rows.append(
            {
                "dataset": cohort.name,
                "model": experiment.config.model.arch,
                "metric": "AUROC",
                "meddl": fmt(metrics["test"]["auroc"]),
                "logistic_regression": fmt(metrics["baselines"]["logistic_regression"]["auroc"]),
                "gradient_boosting": fmt(metrics["baselines"]["gradient_boosting"]["auroc"]),
                "report": str(result.path / "report.html"),
                "metrics": metrics,
            }
        )
    return rows
