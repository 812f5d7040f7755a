"""The ``meddl`` command: thin — it parses, calls the Python API and prints.

Errors in the user's input (``MedDLError``) are printed as one line on stderr with exit code 2; set
``MEDDL_DEBUG=1`` to see a traceback for anything unexpected.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click
from rich.console import Console

from meddl._version import __version__
from meddl.errors import MedDLError
from meddl.modalities.kinds import TASK_TEMPLATES
from meddl.modalities.registry import kinds, template

# Piped output (CI logs, files) gets wide lines instead of rich's 80-column default, so paths stay whole.
out_console = Console(width=None if sys.stdout.isatty() else 200)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 200)

_PATH = click.Path(path_type=Path)


def _log(message: str) -> None:
    err_console.print(f"[dim]·[/dim] {message}", highlight=False)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="meddl")
def app() -> None:
    """Deep learning for medicine: train, evaluate, explain and serve models on clinical data."""


@app.command()
@click.argument("kind", default=kinds()[0], metavar="[" + "|".join([*kinds(), *TASK_TEMPLATES]) + "]")
def init(kind: str) -> None:
    """Print an annotated example experiment file (of a data kind, or of a task with its own: segmentation)."""
    sys.stdout.write(template(kind))


@app.command()
@click.argument("experiment", type=_PATH)
@click.option("--out", type=_PATH, default=None, help="run folder (default runs/<name>)")
@click.option("--resume", is_flag=True, help="continue an interrupted run from its last checkpoint (<out>.partial)")
@click.option(
    "--overwrite", is_flag=True, help="allow --out to be a non-empty folder MedDL did not make (its files are kept)"
)
@click.option("--quiet", is_flag=True, help="no progress messages")
def train(experiment: Path, out: Path | None, resume: bool, overwrite: bool, quiet: bool) -> None:
    """Train, evaluate and explain a model; the run folder becomes a loadable bundle."""
    from meddl.config import load_config

    config, base = load_config(experiment)  # every mistake in the file reported before torch and the data load
    from meddl.experiment import Experiment

    exp = Experiment(config, base)  # the file is read once; the model arguments are checked here
    result = exp.run(out=out, resume=resume, overwrite=overwrite, log=None if quiet else _log)
    if result.metrics:
        _print_metrics(result.record["name"], result.metrics, result.path)


@app.command()
@click.argument("bundle", type=_PATH)
@click.option(
    "--data",
    type=_PATH,
    default=None,
    help="new cases: a table, image(s), sequences, signal records, expression matrix",
)
@click.option("--out", type=_PATH, required=True, help="where to write the predictions (.csv/.parquet)")
@click.option("--explain", is_flag=True, help="add each case's explanation (variables, heat map, logo, trace)")
@click.option("--top-k", type=click.IntRange(min=1), default=None, help="variables per case with --explain")
@click.option("--variants", type=_PATH, default=None, help="sequence models: score REF and ALT of each VCF variant")
@click.option("--reference", type=_PATH, default=None, help="with --variants: the genome FASTA (default: as trained)")
@click.option(
    "--mc-samples",
    type=click.IntRange(min=2),
    default=None,
    help="MC dropout: average N passes with dropout on; adds mc_std (and predictive_entropy) per case",
)
def predict(
    bundle: Path,
    data: Path | None,
    out: Path,
    explain: bool,
    top_k: int | None,
    variants: Path | None,
    reference: Path | None,
    mc_samples: int | None,
) -> None:
    """Predict for new patients: probabilities, the label at the chosen threshold, explanations."""
    from meddl.run.predict import predict_to_file

    message = predict_to_file(
        bundle,
        out,
        data=data,
        explain=explain,
        top_k=top_k,
        variants=variants,
        reference=reference,
        mc_samples=mc_samples or 0,
    )
    err_console.print(message, highlight=False)


@app.command()
@click.argument("bundle", type=_PATH)
@click.option("--data", type=_PATH, required=True, help="labelled table from another site or period")
@click.option("--out", type=_PATH, required=True, help="folder for metrics.json, shift.csv and report.html")
@click.option("--bootstrap", type=click.IntRange(min=0), default=None, help="bootstrap resamples (default: as trained)")
@click.option(
    "--overwrite", is_flag=True, help="allow --out to be a non-empty folder MedDL did not make (its files are kept)"
)
def evaluate(bundle: Path, data: Path, out: Path, bootstrap: int | None, overwrite: bool) -> None:
    """External validation: the same metrics with CIs on new data, and which variables shifted."""
    from meddl.run import evaluate_external

    result = evaluate_external(bundle, data, out, n_bootstrap=bootstrap, overwrite=overwrite)
    _print_metrics(f"{result.record['name']} on {data.name}", result.metrics, result.path)
    shift = result.record.get("shift") or []
    if shift:
        top = ", ".join(f"{r['column']} ({r['score']:.2f})" for r in shift[:3])
        out_console.print(f"largest shifts vs training: {top}")


@app.command()
@click.argument("bundle", type=_PATH)
@click.option("--input", "input_path", type=_PATH, required=True, help="cases to explain (table, image, records…)")
@click.option(
    "--out", type=_PATH, required=True, help="tables: CSV of contributions; images: the heat-map PNG; others: a folder"
)
def explain(bundle: Path, input_path: Path, out: Path) -> None:
    """Why each case got its prediction: per-variable contributions (tables), a heat map (images), an attribution
    logo (sequences), a trace with attribution over time (signals), top genes (expression), attention (EHR)."""
    from meddl.bundle import load_bundle

    err_console.print(load_bundle(bundle).explain(input_path, out), highlight=False)


@app.command()
@click.option("--out", type=_PATH, default=Path("runs/demo"), show_default=True, help="folder for the demo runs")
@click.option("--quick", is_flag=True, help="fewer epochs and resamples (for smoke tests)")
@click.option(
    "--only",
    multiple=True,
    type=click.Choice(
        ["tables", "survival", "images", "segmentation", "genomics", "signals", "ehr", "molecules", "fusion"]
    ),
    help="run only these parts (repeatable); default: all",
)
@click.option(
    "--lanes",
    type=click.IntRange(1, None),
    default=None,
    help="parts run side by side, each in its own process on a share of the cores (default: one per core, at most "
    "4); 1 runs them one after another",
)
def demo(out: Path, quick: bool, only: tuple[str, ...], lanes: int | None) -> None:
    """The embedded default: real cohorts and compounds shipped with installed packages (FreeSolv among them) and
    synthetic data with known answers (phantoms, planted motifs, ECGs, an EHR cohort), trained, evaluated and
    explained end to end."""
    from meddl.demo import run_demo

    rows = run_demo(out, quick=quick, log=_log, parts=only or None, lanes=lanes)
    from rich.table import Table

    table = Table(title="MedDL demo — test split, 95% bootstrap CIs")
    for column in (
        "dataset",
        "model",
        "metric",
        "MedDL",
        "linear baseline",
        "tree baseline",
        "report",
    ):
        table.add_column(column)
    for row in rows:
        cells = ("dataset", "model", "metric", "meddl", "logistic_regression", "gradient_boosting", "report")
        table.add_row(*[str(row[c]) for c in cells])
    out_console.print(table)
    for row in rows:
        if row.get("note"):
            out_console.print(f"{row['dataset']}: {row['note']}", highlight=False)


@app.command()
@click.argument("bundles", nargs=-1, type=_PATH)
@click.option("--bundle", "extra", multiple=True, type=_PATH, help="another run folder to serve (repeatable)")
@click.option("--host", default="127.0.0.1", show_default=True, help="address to bind; non-loopback needs a token")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535), help="TCP port to listen on")
@click.option("--token-file", type=_PATH, default=None, help="file holding the access token (else $MEDDL_TOKEN)")
@click.option(
    "--audit-log", type=_PATH, default=Path("meddl-audit.jsonl"), show_default=True, help="JSON-lines audit trail"
)
@click.option("--no-audit-log", is_flag=True, help="do not write the audit trail")
def serve(
    bundles: tuple[Path, ...],
    extra: tuple[Path, ...],
    host: str,
    port: int,
    token_file: Path | None,
    audit_log: Path,
    no_audit_log: bool,
) -> None:
    """Serve bundles: a REST API (docs at /docs) and a web page for clinicians at /."""
    from meddl.serve import Settings, is_loopback, read_token
    from meddl.serve.main import run_server

    paths = [*bundles, *extra]
    if not paths:
        raise MedDLError("give at least one run folder to serve, e.g. `meddl serve runs/pima`")
    token = read_token(token_file)
    if not is_loopback(host) and token is None:
        raise MedDLError(
            f"--host {host} would expose the models to the network without authentication; "
            "set MEDDL_TOKEN or pass --token-file (at least 16 characters)"
        )
    settings = Settings(bundles=paths, host=host, port=port, token=token, audit_log=None if no_audit_log else audit_log)
    err_console.print(
        f"serving {len(paths)} model(s) on http://{host}:{port}/ (API docs at /docs)"
        + ("" if no_audit_log else f"; audit log {audit_log}"),
        highlight=False,
        soft_wrap=True,
    )
    run_server(settings)


@app.command()
@click.argument("bundle", type=_PATH)
@click.option("--onnx", "onnx_path", type=_PATH, required=True, help="where to write the ONNX model")
def export(bundle: Path, onnx_path: Path) -> None:
    """Export the network to ONNX (checked against PyTorch with onnxruntime)."""
    from meddl.export import export_onnx

    written = export_onnx(bundle, onnx_path)
    err_console.print(f"wrote {written} and {written}.json (input features and output transform)", highlight=False)


@app.group()
def ehr() -> None:
    """EHR event stores: import MIMIC-IV, OMOP CDM or FHIR R4 into DuckDB; generate a synthetic cohort."""


@ehr.command("import")
@click.argument("source", type=_PATH)
@click.option("--format", "fmt", type=click.Choice(["mimic", "omop", "fhir"]), required=True, help="source layout")
@click.option("--out", type=_PATH, required=True, help="the DuckDB event store to write")
@click.option("--overwrite", is_flag=True, help="replace an existing store")
def ehr_import(source: Path, fmt: str, out: Path, overwrite: bool) -> None:
    """Import an EHR extract (a folder of CSV / NDJSON files) into a MedDL event store."""
    import json

    from meddl.modalities import get_modality

    report = get_modality("ehr").import_store(source, fmt, out, overwrite=overwrite)  # type: ignore[attr-defined]
    out_console.print_json(json.dumps(report, default=str))
    err_console.print(f"wrote {out}", highlight=False)


@ehr.command("synthetic")
@click.option("--out", type=_PATH, required=True, help="the DuckDB event store to write")
@click.option(
    "--patients", type=click.IntRange(min=10), default=2000, show_default=True, help="patients in the synthetic cohort"
)
@click.option("--seed", type=int, default=0, show_default=True, help="seed of the synthetic cohort")
def ehr_synthetic(out: Path, patients: int, seed: int) -> None:
    """A synthetic cohort (visits, codes, labs, vitals; mortality from a known risk model) for trying MedDL."""
    from meddl.modalities import get_modality

    err_console.print(get_modality("ehr").synthetic_store(out, patients, seed), highlight=False)  # type: ignore[attr-defined]


@app.command()
@click.argument("source", type=_PATH)
@click.option("--out", type=_PATH, required=True, help="a new folder (DICOM, event store) or table file to write")
@click.option(
    "--salt-file",
    type=_PATH,
    default=None,
    help="the secret salt (created, mode 0600, if missing); else $MEDDL_DEID_SALT",
)
@click.option("--id-column", "id_columns", multiple=True, help="table: a column of identifiers to replace by keys")
@click.option("--date-column", "date_columns", multiple=True, help="table: a date column to shift per patient")
@click.option("--patient-id", default=None, help="table: the patient column (keyed; sets each row's date shift)")
@click.option("--drop", multiple=True, help="table: a column to leave out of the output")
@click.option(
    "--keep-patient-characteristics", is_flag=True, help="DICOM: keep sex, age, size, weight (profile option)"
)
@click.option(
    "--burned-in",
    type=click.Choice(["warn", "skip"]),
    default="warn",
    show_default=True,
    help="DICOM: images that may show burned-in text are written and warned about, or left out",
)
@click.option(
    "--on-bad-file",
    type=click.Choice(["error", "skip"]),
    default="error",
    show_default=True,
    help="DICOM: stop at an unreadable file, or count it and go on",
)
@click.option("--overwrite", is_flag=True, help="write into a non-empty --out (replacing a previous deid run there)")
def deid(
    source: Path,
    out: Path,
    salt_file: Path | None,
    id_columns: tuple[str, ...],
    date_columns: tuple[str, ...],
    patient_id: str | None,
    drop: tuple[str, ...],
    keep_patient_characteristics: bool,
    burned_in: str,
    on_bad_file: str,
    overwrite: bool,
) -> None:
    """De-identify DICOM (PS3.15 Basic Profile), a table or an EHR event store before MedDL uses it."""
    import json

    from meddl.io.deid import deidentify, load_salt

    salt, created = load_salt(salt_file)
    if created:
        err_console.print(created, highlight=False, soft_wrap=True)
    log = deidentify(
        source,
        out,
        salt,
        id_columns=id_columns,
        date_columns=date_columns,
        patient_id=patient_id,
        drop=drop,
        keep_patient_characteristics=keep_patient_characteristics,
        burned_in=burned_in,  # type: ignore[arg-type]
        on_bad_file=on_bad_file,  # type: ignore[arg-type]
        overwrite=overwrite,
        salt_file=salt_file,
        progress=_log,
    )
    summary = {key: value for key, value in log.items() if key not in ("files_written", "attributes", "method")}
    if isinstance(summary.get("warnings"), list) and len(summary["warnings"]) > 10:
        summary["warnings"] = f"{len(summary['warnings'])} warnings, listed in the log"
    out_console.print_json(json.dumps(summary, default=str))
    err_console.print(f"wrote {out} ({len(log['files_written'])} file(s) and the log)", highlight=False)


def _fmt(entry: dict | None) -> str:
    if entry and entry.get("undefined"):
        return f"undefined: {entry['undefined']}"
    if not entry or entry.get("value") is None:
        return "—"
    lo, hi = entry.get("ci") or [None, None]
    ci = f" ({lo:.3f}–{hi:.3f})" if lo is not None and hi is not None else ""
    return f"{entry['value']:.3f}{ci}"


def _print_metrics(title: str, metrics: dict, path: Path) -> None:
    from rich.table import Table

    test = metrics.get("test", {})
    baselines = metrics.get("baselines", {})
    table = Table(title=f"{title} — 95% CIs")
    table.add_column("metric")
    table.add_column("MedDL")
    for name in baselines:
        table.add_column(name.replace("_", " "))
    for metric, entry in test.items():
        table.add_row(metric, _fmt(entry), *[_fmt(b.get(metric)) for b in baselines.values()])
    out_console.print(table)
    out_console.print(f"report: {path / 'report.html'}", soft_wrap=True, highlight=False)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the app; user errors become one line and a non-zero exit code."""
    try:
        code = app.main(args=argv, prog_name="meddl", standalone_mode=False)
        if isinstance(code, int) and code:
            sys.exit(code)
    except MedDLError as exc:
        err_console.print(f"[bold red]error:[/bold red] {exc}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except (click.exceptions.Abort, KeyboardInterrupt):
        err_console.print("interrupted")
        sys.exit(130)
    except Exception as exc:
        if os.environ.get("MEDDL_DEBUG"):
            raise
        err_console.print(
            f"[bold red]internal error:[/bold red] {type(exc).__name__}: {exc} "
            "(this is a bug in MedDL; rerun with MEDDL_DEBUG=1 for the traceback)",
            highlight=False,
            soft_wrap=True,
        )
        sys.exit(1)


if __name__ == "__main__":
    main()
