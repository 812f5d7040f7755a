"""Generators of the corpus's bad inputs, one per case id (``cases/*.yaml``).

Each generator starts from a small valid input (a synthetic table, phantom images, ECG records, planted DNA, an
expression matrix, an EHR store, a trained bundle) written into the case's own folder, breaks it the way a user's
file breaks, and returns the placeholders its command uses (``{exp}``, ``{data}``, ``{bundle}``…). Shared trained
bundles come from :class:`Bundles` and are never written to: a case that corrupts a bundle corrupts a copy.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

__all__ = ["MAKERS", "Bundles", "Env"]

Placeholders = dict[str, Any]
MAKERS: dict[str, Callable[[Env], Placeholders]] = {}


def maker(*case_ids: str) -> Callable[[Callable[[Env], Placeholders]], Callable[[Env], Placeholders]]:
    """Register a generator under one or more case ids."""

    def register(function: Callable[[Env], Placeholders]) -> Callable[[Env], Placeholders]:
        for case_id in case_ids:
            assert case_id not in MAKERS, f"two generators for {case_id}"
            MAKERS[case_id] = function
        return function

    return register


# -- trained bundles, shared by the session ------------------------------------------------------------------
class Bundles:
    """Tiny bundles of every kind, trained once on first use (each kind's ``Modality.example``)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._trained: dict[str, tuple[Path, Any]] = {}

    def path(self, kind: str) -> Path:
        return self._train(kind)[0]

    def example(self, kind: str) -> Any:
        return self._train(kind)[1]

    def data(self, kind: str) -> Path:
        """The folder of the data the bundle of ``kind`` was trained on (read-only for cases)."""
        self._train(kind)
        return self.root / kind / "data"

    def _train(self, kind: str) -> tuple[Path, Any]:
        if kind not in self._trained:
            from meddl import Experiment
            from meddl.modalities import get_modality

            folder = self.root / kind
            example = get_modality(kind).example(folder / "data")
            experiment = dict(example.experiment)
            experiment["train"] = {**experiment["train"], "epochs": 2}
            experiment["evaluate"] = {**experiment.get("evaluate", {}), "bootstrap": 10}
            if kind == "sequence":  # a genome, intervals and variants beside the FASTA the model learns from
                from meddl.data.motifs import planted_motif_dataset, write_planted_dataset

                write_planted_dataset(folder / "genome", planted_motif_dataset(20, length=60, seed=1), ("vcf",))
            Experiment.from_dict(experiment, base_dir=folder / "data").run(out=folder / "bundle")
            self._trained[kind] = (folder / "bundle", example)
        return self._trained[kind]


@dataclass
class Env:
    """What a generator gets: its own empty folder and the shared bundles."""

    tmp: Path
    bundles: Bundles
    uses: list[Path] = field(default_factory=list)  # shared files the case reads (checked unchanged afterwards)

    def bundle(self, kind: str) -> Path:
        path = self.bundles.path(kind)
        self.uses.append(path)
        return path

    def bundle_copy(self, kind: str, name: str = "bundle") -> Path:
        target = self.tmp / name
        shutil.copytree(self.bundles.path(kind), target)
        return target

    def example(self, kind: str) -> Any:
        self.bundles.path(kind)
        return self.bundles.example(kind)


# -- small helpers --------------------------------------------------------------------------------------------
def write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_bytes(content.encode("utf-8"))
    return path


def experiment(env: Env, config: dict[str, Any], name: str = "exp.yaml") -> Path:
    return write(env.tmp / name, yaml.safe_dump(config, sort_keys=False))


def merge(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``changes`` merged section by section (a None value removes the key)."""
    out = dict(base)
    for key, value in changes.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def rehash(bundle: Path) -> None:
    """Rewrite a bundle's manifest so that its hashes match the files as they are now (only the content is bad)."""
    manifest = json.loads((bundle / "manifest.json").read_text())
    files = {}
    for name in sorted(manifest["files"]):
        if (bundle / name).exists():
            files[name] = hashlib.sha256((bundle / name).read_bytes()).hexdigest()
    manifest["files"] = files
    manifest["bundle_hash"] = hashlib.sha256("\n".join(f"{k}:{v}" for k, v in files.items()).encode()).hexdigest()
    (bundle / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")


# -- tables ---------------------------------------------------------------------------------------------------
def clinic_frame(n: int = 120, seed: int = 0) -> pd.DataFrame:
    """A valid patient table: patient_id, visit_date, age, sex, bmi, glucose, systolic_bp, smoker, noise, outcome."""
    from meddl.data import synthetic_clinical_table

    return synthetic_clinical_table(n, seed=seed)


def table_lines(frame: pd.DataFrame) -> list[str]:
    """The CSV lines of ``frame``; ``lines[0]`` is the header (spreadsheet row 1), ``lines[k]`` row k + 1."""
    return frame.to_csv(index=False, lineterminator="\n").splitlines()


def set_cell(lines: list[str], row: int, column: str, value: str) -> list[str]:
    """Put ``value`` in spreadsheet row ``row`` (header = 1) of ``column`` (no commas or quotes in the lines)."""
    header = lines[0].split(",")
    cells = lines[row - 1].split(",")
    cells[header.index(column)] = value
    lines = list(lines)
    lines[row - 1] = ",".join(cells)
    return lines


def write_lines(path: Path, lines: list[str], end: str = "\n") -> Path:
    return write(path, end.join(lines) + end)


def tab_config(path: str = "clinic.csv", **changes: Any) -> dict[str, Any]:
    """A tabular experiment that trains in about a second on :func:`clinic_frame`."""
    base: dict[str, Any] = {
        "name": "clinic",
        "task": "binary",
        "data": {
            "kind": "tabular",
            "path": path,
            "target": "outcome",
            "positive_label": "yes",
            "patient_id": "patient_id",
            "exclude": ["visit_date"],
        },
        "model": {"arch": "mlp", "hidden": [8]},
        "train": {"epochs": 2, "batch_size": 32, "progress": False},
        "evaluate": {"bootstrap": 10, "baselines": []},
        "explain": {"permutation_repeats": 0, "integrated_gradients": False},
    }
    return merge(base, changes)


def tab_case(env: Env, lines: list[str] | None = None, *, name: str = "clinic.csv", **changes: Any) -> Placeholders:
    """Write ``lines`` (default: a valid table) as ``name`` and an experiment reading it."""
    data = write_lines(env.tmp / name, lines if lines is not None else table_lines(clinic_frame()))
    return {"exp": experiment(env, tab_config(name, **changes)), "data": data}


def new_cases(env: Env, lines: list[str] | None = None, name: str = "new.csv", *, target: bool = False) -> Path:
    """A table of new patients for a tabular bundle (no outcome column unless ``target``)."""
    frame = clinic_frame(40, seed=5)
    if not target:
        frame = frame.drop(columns=["outcome"])
    return write_lines(env.tmp / name, lines if lines is not None else table_lines(frame))


# ============================================================================================================
# experiment files
# ============================================================================================================
def _valid_table(env: Env) -> Path:
    return write_lines(env.tmp / "clinic.csv", table_lines(clinic_frame()))


def _config_text(env: Env, text: str, name: str = "exp.yaml") -> Placeholders:
    _valid_table(env)
    return {"exp": write(env.tmp / name, text)}


def _config_change(env: Env, **changes: Any) -> Placeholders:
    _valid_table(env)
    return {"exp": experiment(env, tab_config(**changes))}


GOOD_YAML = yaml.safe_dump(tab_config(), sort_keys=False)


@maker("cfg-yaml-unclosed-bracket")
def _(env: Env) -> Placeholders:
    return _config_text(env, GOOD_YAML.replace("exclude:\n  - visit_date", "exclude: [visit_date"))


@maker("cfg-yaml-bad-indent")
def _(env: Env) -> Placeholders:
    return _config_text(env, GOOD_YAML.replace("  target: outcome", "   target: outcome"))


@maker("cfg-yaml-tab-indent")
def _(env: Env) -> Placeholders:
    return _config_text(env, GOOD_YAML.replace("  target: outcome", "\ttarget: outcome"))


@maker("cfg-yaml-duplicate-section")
def _(env: Env) -> Placeholders:
    return _config_text(env, GOOD_YAML + "train:\n  epochs: 3\n")


@maker("cfg-yaml-duplicate-key")
def _(env: Env) -> Placeholders:
    return _config_text(env, GOOD_YAML.replace("  target: outcome\n", "  target: outcome\n  target: glucose\n"))


@maker("cfg-epochs-text")
def _(env: Env) -> Placeholders:
    return _config_change(env, train={"epochs": "many"})


@maker("cfg-epochs-negative")
def _(env: Env) -> Placeholders:
    return _config_change(env, train={"epochs": -3})


@maker("cfg-epochs-float")
def _(env: Env) -> Placeholders:
    return _config_change(env, train={"epochs": 2.5})


@maker("cfg-learning-rate-text")
def _(env: Env) -> Placeholders:
    return _config_change(env, train={"learning_rate": "fast"})


@maker("cfg-batch-size-zero")
def _(env: Env) -> Placeholders:
    return _config_change(env, train={"batch_size": 0})


@maker("cfg-bootstrap-negative")
def _(env: Env) -> Placeholders:
    return _config_change(env, evaluate={"bootstrap": -5})


@maker("cfg-unknown-field")
def _(env: Env) -> Placeholders:
    return _config_change(env, preprocess={"scael": "standard"})


@maker("cfg-unknown-section")
def _(env: Env) -> Placeholders:
    return _config_change(env, trian={"epochs": 3})


@maker("cfg-unknown-arch")
def _(env: Env) -> Placeholders:
    return _config_change(env, model={"arch": "resnet999", "hidden": None})


@maker("cfg-arch-of-another-kind")
def _(env: Env) -> Placeholders:
    return _config_change(env, model={"arch": "small_cnn", "hidden": None})


@maker("cfg-unknown-model-argument")
def _(env: Env) -> Placeholders:
    return _config_change(env, model={"hiden": [8], "hidden": None})


@maker("cfg-model-argument-wrong-type")
def _(env: Env) -> Placeholders:
    return _config_change(env, model={"hidden": "wide"})


@maker("cfg-model-argument-digits-as-text")
def _(env: Env) -> Placeholders:
    return _config_change(env, model={"hidden": "64"})


@maker("cfg-latin1")
def _(env: Env) -> Placeholders:
    _valid_table(env)
    text = "# Étude pilote, données de l'hôpital\n" + GOOD_YAML
    return {"exp": write(env.tmp / "exp.yaml", text.encode("latin-1"))}


@maker("cfg-utf16")
def _(env: Env) -> Placeholders:
    _valid_table(env)
    return {"exp": write(env.tmp / "exp.yaml", GOOD_YAML.encode("utf-16"))}


@maker("cfg-python-tag")
def _(env: Env) -> Placeholders:
    marker = env.tmp / "pwned"
    text = GOOD_YAML + f"description: !!python/object/apply:os.system ['touch {marker}']\n"
    return {**_config_text(env, text), "marker": marker}


@maker("cfg-python-name-tag")
def _(env: Env) -> Placeholders:
    return _config_text(env, GOOD_YAML.replace("name: clinic", "name: !!python/name:os.system"))


@maker("cfg-empty-file")
def _(env: Env) -> Placeholders:
    return _config_text(env, "")


@maker("cfg-comments-only")
def _(env: Env) -> Placeholders:
    return _config_text(env, "# my experiment\n# todo\n")


@maker("cfg-folder")
def _(env: Env) -> Placeholders:
    (env.tmp / "exp.yaml").mkdir()
    return {"exp": env.tmp / "exp.yaml"}


@maker("cfg-missing-file")
def _(env: Env) -> Placeholders:
    return {"exp": env.tmp / "exp.yaml"}


@maker("cfg-wrong-extension")
def _(env: Env) -> Placeholders:
    return _config_text(env, GOOD_YAML, name="exp.txt")


@maker("cfg-top-level-list")
def _(env: Env) -> Placeholders:
    return _config_text(env, "- name: clinic\n- task: binary\n")


@maker("cfg-top-level-scalar")
def _(env: Env) -> Placeholders:
    return _config_text(env, "clinic\n")


@maker("cfg-binary-file")
def _(env: Env) -> Placeholders:
    _valid_table(env)
    return {"exp": write(env.tmp / "exp.yaml", bytes(range(256)) * 4)}


@maker("cfg-missing-data-path")
def _(env: Env) -> Placeholders:
    return {"exp": experiment(env, tab_config("clinic_2024.csv"))}


@maker("cfg-data-section-missing")
def _(env: Env) -> Placeholders:
    return _config_change(env, data=None)


@maker("cfg-data-section-null")
def _(env: Env) -> Placeholders:
    return _config_text(env, GOOD_YAML.split("data:")[0] + "data:\nmodel:\n  arch: mlp\n")


@maker("cfg-data-path-field-missing")
def _(env: Env) -> Placeholders:
    config = tab_config()
    del config["data"]["path"]
    _valid_table(env)
    return {"exp": experiment(env, config)}


@maker("cfg-unknown-kind")
def _(env: Env) -> Placeholders:
    return _config_change(env, data={"kind": "xray"})


@maker("cfg-unknown-task")
def _(env: Env) -> Placeholders:
    return _config_change(env, task="clustering")


@maker("cfg-bad-name")
def _(env: Env) -> Placeholders:
    return _config_change(env, name="../../etc/clinic")


@maker("cfg-monitor-of-other-task")
def _(env: Env) -> Placeholders:
    return _config_change(
        env,
        task="regression",
        data={"target": "glucose", "positive_label": None},
        train={"early_stopping": {"monitor": "auroc"}},
    )


@maker("cfg-positive-label-regression")
def _(env: Env) -> Placeholders:
    return _config_change(env, task="regression", data={"target": "glucose"})


@maker("cfg-split-sum")
def _(env: Env) -> Placeholders:
    return _config_change(env, data={"split": {"train": 0.8, "validation": 0.2, "test": 0.2}})


@maker("cfg-temporal-without-date")
def _(env: Env) -> Placeholders:
    return _config_change(env, data={"split": {"method": "temporal"}})


@maker("cfg-unknown-device")
def _(env: Env) -> Placeholders:
    return _config_change(env, train={"device": "tpu"})


@maker("cfg-unknown-metric")
def _(env: Env) -> Placeholders:
    return _config_change(env, train={"early_stopping": {"monitor": "acuracy"}})


@maker("cfg-baseline-wrong-task")
def _(env: Env) -> Placeholders:
    return _config_change(env, evaluate={"baselines": ["linear_regression"]})


@maker("cfg-out-user-folder")
def _(env: Env) -> Placeholders:
    _valid_table(env)
    out = env.tmp / "results"
    write(out / "my_notes.txt", "do not delete\n")
    return {"exp": experiment(env, tab_config()), "out": out}


@maker("cfg-out-is-file")
def _(env: Env) -> Placeholders:
    _valid_table(env)
    out = write(env.tmp / "results.csv", "keep,me\n1,2\n")
    return {"exp": experiment(env, tab_config()), "out": out}


@maker("cfg-out-overwrite-keeps-user-files")
def _(env: Env) -> Placeholders:
    _valid_table(env)
    out = env.tmp / "results"
    write(out / "my_notes.txt", "do not delete\n")
    return {"exp": experiment(env, tab_config()), "out": out}


@maker("cfg-init-unknown-kind")
def _(env: Env) -> Placeholders:
    return {}


# ============================================================================================================
# tables: training
# ============================================================================================================
@maker("tab-missing-target-column")
def _(env: Env) -> Placeholders:
    return tab_case(env, table_lines(clinic_frame().drop(columns=["outcome"])))


@maker("tab-target-typo")
def _(env: Env) -> Placeholders:
    return tab_case(env, data={"target": "outcom"})


@maker("tab-all-missing-column")
def _(env: Env) -> Placeholders:
    frame = clinic_frame()
    frame["glucose"] = np.nan
    return tab_case(env, table_lines(frame))


@maker("tab-one-class")
def _(env: Env) -> Placeholders:
    frame = clinic_frame()
    frame["outcome"] = "no"
    return tab_case(env, table_lines(frame))


@maker("tab-non-numeric-cell")
def _(env: Env) -> Placeholders:
    return tab_case(env, set_cell(table_lines(clinic_frame()), 38, "age", "unknown"))


@maker("tab-decimal-comma")
def _(env: Env) -> Placeholders:
    return tab_case(env, set_cell(table_lines(clinic_frame()), 11, "bmi", '"28,6"'))


@maker("tab-duplicate-header")
def _(env: Env) -> Placeholders:
    lines = table_lines(clinic_frame())
    lines[0] = lines[0].replace("bmi", "age")
    return tab_case(env, lines)


@maker("tab-unnamed-column")
def _(env: Env) -> Placeholders:
    lines = table_lines(clinic_frame())
    lines[0] = lines[0].replace("noise", "")
    return tab_case(env, lines)


@maker("tab-empty-file")
def _(env: Env) -> Placeholders:
    write(env.tmp / "clinic.csv", b"")
    return {"exp": experiment(env, tab_config()), "data": env.tmp / "clinic.csv"}


@maker("tab-blank-lines-only")
def _(env: Env) -> Placeholders:
    write(env.tmp / "clinic.csv", "\n\n\n")
    return {"exp": experiment(env, tab_config())}


@maker("tab-header-only")
def _(env: Env) -> Placeholders:
    return tab_case(env, table_lines(clinic_frame())[:1])


@maker("tab-short-row-mid-file")
def _(env: Env) -> Placeholders:
    lines = table_lines(clinic_frame())
    cells = lines[9].split(",")  # row 10
    del cells[4]  # the sex field forgotten: every later value would shift left
    lines[9] = ",".join(cells)
    return tab_case(env, lines)


@maker("tab-long-row-mid-file")
def _(env: Env) -> Placeholders:
    lines = table_lines(clinic_frame())
    lines[9] = lines[9].replace(",F,", ",F,F,", 1).replace(",M,", ",M,M,", 1)  # row 10 gets one field too many
    return tab_case(env, lines)


@maker("tab-truncated-last-line")
def _(env: Env) -> Placeholders:
    lines = table_lines(clinic_frame())
    lines[-1] = ",".join(lines[-1].split(",")[:4])  # the copy stopped mid-row, with no line end
    write(env.tmp / "clinic.csv", "\n".join(lines))
    return {"exp": experiment(env, tab_config()), "data": env.tmp / "clinic.csv"}


@maker("tab-not-utf8")
def _(env: Env) -> Placeholders:
    lines = set_cell(table_lines(clinic_frame()), 7, "smoker", "ancien fumeur é")
    data = "\n".join(lines).encode("utf-8").replace("é".encode(), "é".encode("latin-1"))
    write(env.tmp / "clinic.csv", data + b"\n")
    return {"exp": experiment(env, tab_config()), "data": env.tmp / "clinic.csv"}


@maker("tab-utf8-bom-crlf")
def _(env: Env) -> Placeholders:
    text = "\r\n".join(table_lines(clinic_frame())) + "\r\n"
    write(env.tmp / "clinic.csv", b"\xef\xbb\xbf" + text.encode("utf-8"))
    return {"exp": experiment(env, tab_config())}


@maker("tab-nul-byte")
def _(env: Env) -> Placeholders:
    return tab_case(env, set_cell(table_lines(clinic_frame()), 5, "smoker", "nev\x00er"))


@maker("tab-semicolon-separated")
def _(env: Env) -> Placeholders:
    return tab_case(env, [line.replace(",", ";") for line in table_lines(clinic_frame())])


@maker("tab-tsv-named-csv")
def _(env: Env) -> Placeholders:
    return tab_case(env, [line.replace(",", "\t") for line in table_lines(clinic_frame())])


@maker("tab-inf-regression-target")
def _(env: Env) -> Placeholders:
    lines = set_cell(table_lines(clinic_frame()), 12, "age", "inf")
    return tab_case(env, lines, task="regression", data={"target": "age", "positive_label": None})


@maker("tab-nan-regression-target")
def _(env: Env) -> Placeholders:
    lines = set_cell(table_lines(clinic_frame()), 12, "age", "NaN")
    return tab_case(env, lines, task="regression", data={"target": "age", "positive_label": None})


@maker("tab-missing-labels-counted")
def _(env: Env) -> Placeholders:
    lines = table_lines(clinic_frame())
    for row in (5, 17, 40):
        lines = set_cell(lines, row, "outcome", "")
    return tab_case(env, lines)


@maker("tab-all-labels-missing")
def _(env: Env) -> Placeholders:
    frame = clinic_frame()
    frame["outcome"] = np.nan
    return tab_case(env, table_lines(frame))


@maker("tab-third-label-in-binary")
def _(env: Env) -> Placeholders:
    return tab_case(env, set_cell(table_lines(clinic_frame()), 20, "outcome", "maybe"))


@maker("tab-positive-label-absent")
def _(env: Env) -> Placeholders:
    return tab_case(env, data={"positive_label": "pos"})


@maker("tab-patient-ids-repeat-unset")
def _(env: Env) -> Placeholders:
    frame = clinic_frame(120)
    frame["patient_id"] = [f"P{i // 3:04d}" for i in range(len(frame))]  # three visits per patient
    return tab_case(env, table_lines(frame), data={"patient_id": None})


@maker("tab-patient-id-missing-cells")
def _(env: Env) -> Placeholders:
    lines = table_lines(clinic_frame())
    for row in (8, 9):
        lines = set_cell(lines, row, "patient_id", "")
    return tab_case(env, lines)


@maker("tab-parquet-corrupt")
def _(env: Env) -> Placeholders:
    write(env.tmp / "clinic.parquet", b"PAR1" + b"\x00garbage" * 40)
    return {"exp": experiment(env, tab_config("clinic.parquet"))}


@maker("tab-parquet-truncated")
def _(env: Env) -> Placeholders:
    clinic_frame().to_parquet(env.tmp / "full.parquet", index=False)
    data = (env.tmp / "full.parquet").read_bytes()
    (env.tmp / "full.parquet").unlink()
    write(env.tmp / "clinic.parquet", data[: len(data) // 2])
    return {"exp": experiment(env, tab_config("clinic.parquet"))}


@maker("tab-unsupported-extension")
def _(env: Env) -> Placeholders:
    write(env.tmp / "clinic.xlsx", b"PK\x03\x04" + b"\x00" * 60)
    return {"exp": experiment(env, tab_config("clinic.xlsx"))}


@maker("tab-data-path-folder")
def _(env: Env) -> Placeholders:
    (env.tmp / "clinic.csv").mkdir()
    return {"exp": experiment(env, tab_config())}


@maker("tab-too-few-rows")
def _(env: Env) -> Placeholders:
    return tab_case(env, table_lines(clinic_frame())[:7])


@maker("tab-temporal-bad-date")
def _(env: Env) -> Placeholders:
    lines = set_cell(table_lines(clinic_frame()), 15, "visit_date", "yesterday")
    return tab_case(env, lines, data={"split": {"method": "temporal", "date_column": "visit_date"}})


@maker("tab-survival-negative-time")
def _(env: Env) -> Placeholders:
    frame = clinic_frame()
    frame["time"] = np.linspace(10, 500, len(frame)).round(1)
    frame["event"] = (np.arange(len(frame)) % 3 == 0).astype(int)
    lines = set_cell(table_lines(frame.drop(columns=["outcome"])), 9, "time", "-5")
    return tab_case(
        env,
        lines,
        task="survival",
        data={"target": None, "positive_label": None, "time": "time", "event": "event"},
        evaluate={"baselines": []},
    )


@maker("tab-survival-text-event")
def _(env: Env) -> Placeholders:
    frame = clinic_frame()
    frame["time"] = np.linspace(10, 500, len(frame)).round(1)
    frame["event"] = np.where(np.arange(len(frame)) % 3 == 0, "dead", "alive")
    return tab_case(
        env,
        table_lines(frame.drop(columns=["outcome"])),
        task="survival",
        data={"target": None, "positive_label": None, "time": "time", "event": "event"},
    )


@maker("tab-missing-drop-leaves-nothing")
def _(env: Env) -> Placeholders:
    frame = clinic_frame()
    frame.loc[frame.index % 2 == 0, "bmi"] = np.nan
    frame.loc[frame.index % 2 == 1, "glucose"] = np.nan
    return tab_case(env, table_lines(frame), preprocess={"missing": "drop"})


@maker("tab-inf-feature")
def _(env: Env) -> Placeholders:
    return tab_case(env, set_cell(table_lines(clinic_frame()), 14, "glucose", "inf"))


@maker("tab-forced-numeric-text")
def _(env: Env) -> Placeholders:
    return tab_case(env, data={"column_types": {"smoker": "numeric"}})


@maker("tab-features-unknown-column")
def _(env: Env) -> Placeholders:
    return tab_case(env, data={"features": ["age", "cholesterol"]})


@maker("tab-exclude-unknown-column")
def _(env: Env) -> Placeholders:
    return tab_case(env, data={"exclude": ["visit_date", "weight"]})


@maker("tab-patient-id-column-absent")
def _(env: Env) -> Placeholders:
    return tab_case(env, data={"patient_id": "pid"})


@maker("tab-subgroup-column-absent")
def _(env: Env) -> Placeholders:
    return tab_case(env, evaluate={"subgroups": ["ethnicity"]})


@maker("tab-column-types-unknown-column")
def _(env: Env) -> Placeholders:
    return tab_case(env, data={"column_types": {"cholesterol": "numeric"}})


@maker("tab-identifier-column")
def _(env: Env) -> Placeholders:
    frame = clinic_frame()
    frame.insert(1, "mrn", [f"MRN-{i:06d}-X" for i in range(len(frame))])
    return tab_case(env, table_lines(frame))


@maker("tab-no-predictors")
def _(env: Env) -> Placeholders:
    frame = clinic_frame()[["patient_id", "visit_date", "outcome"]]
    return tab_case(env, table_lines(frame))


@maker("tab-unclosed-quote")
def _(env: Env) -> Placeholders:
    return tab_case(env, set_cell(table_lines(clinic_frame()), 30, "smoker", '"never'))


# ============================================================================================================
# tables: predict / evaluate / explain with a trained bundle
# ============================================================================================================
def _pred(env: Env, lines: list[str] | None = None, name: str = "new.csv", *, target: bool = False) -> Placeholders:
    return {"bundle": env.bundle("tabular"), "data": new_cases(env, lines, name, target=target)}


def _new_lines(target: bool = False) -> list[str]:
    frame = clinic_frame(40, seed=5)
    return table_lines(frame if target else frame.drop(columns=["outcome"]))


@maker("pred-missing-column")
def _(env: Env) -> Placeholders:
    return _pred(env, table_lines(clinic_frame(40, seed=5).drop(columns=["outcome", "glucose"])))


@maker("pred-unseen-category")
def _(env: Env) -> Placeholders:
    return _pred(env, set_cell(_new_lines(), 4, "smoker", "vaper"))


@maker("pred-out-of-range")
def _(env: Env) -> Placeholders:
    return _pred(env, set_cell(_new_lines(), 3, "age", "400"))


@maker("pred-non-numeric")
def _(env: Env) -> Placeholders:
    return _pred(env, set_cell(_new_lines(), 5, "glucose", "high"))


@maker("pred-inf-value")
def _(env: Env) -> Placeholders:
    return _pred(env, set_cell(_new_lines(), 6, "glucose", "inf"))


@maker("pred-all-features-missing-row")
def _(env: Env) -> Placeholders:
    lines = _new_lines()
    for column in ("age", "sex", "bmi", "glucose", "systolic_bp", "smoker", "noise"):
        lines = set_cell(lines, 7, column, "")
    return _pred(env, lines)


@maker("pred-extra-column")
def _(env: Env) -> Placeholders:
    frame = clinic_frame(40, seed=5).drop(columns=["outcome"])
    frame["cholesterol"] = 5.2
    return _pred(env, table_lines(frame))


@maker("pred-empty-file")
def _(env: Env) -> Placeholders:
    return {"bundle": env.bundle("tabular"), "data": write(env.tmp / "new.csv", b"")}


@maker("pred-header-only")
def _(env: Env) -> Placeholders:
    return _pred(env, _new_lines()[:1])


@maker("pred-not-utf8")
def _(env: Env) -> Placeholders:
    data = "\n".join(set_cell(_new_lines(), 4, "smoker", "jamais")).encode() + b"\n"
    data = data.replace(b"jamais", "jamais fumé".encode("latin-1"))
    return {"bundle": env.bundle("tabular"), "data": write(env.tmp / "new.csv", data)}


@maker("pred-short-row")
def _(env: Env) -> Placeholders:
    lines = _new_lines()
    lines[3] = lines[3].rsplit(",", 2)[0]  # row 4 lost its last two fields
    return _pred(env, lines)


@maker("pred-duplicate-header")
def _(env: Env) -> Placeholders:
    lines = _new_lines()
    lines[0] = lines[0].replace("bmi", "age")
    return _pred(env, lines)


@maker("pred-parquet-corrupt")
def _(env: Env) -> Placeholders:
    return {"bundle": env.bundle("tabular"), "data": write(env.tmp / "new.parquet", b"PAR1 not really parquet")}


@maker("pred-data-missing")
def _(env: Env) -> Placeholders:
    return {"bundle": env.bundle("tabular"), "data": env.tmp / "new.csv"}


@maker("pred-no-data-argument")
def _(env: Env) -> Placeholders:
    return {"bundle": env.bundle("tabular")}


@maker("pred-bundle-not-found")
def _(env: Env) -> Placeholders:
    return {"bundle": env.tmp / "runs" / "pima", "data": new_cases(env)}


@maker("pred-bundle-is-a-table")
def _(env: Env) -> Placeholders:
    return {"bundle": new_cases(env, name="cases.csv"), "data": new_cases(env)}


@maker("pred-bundle-plain-folder")
def _(env: Env) -> Placeholders:
    write(env.tmp / "runs" / "pima" / "notes.txt", "a folder, not a bundle\n")
    return {"bundle": env.tmp / "runs" / "pima", "data": new_cases(env)}


@maker("pred-out-unsupported-extension")
def _(env: Env) -> Placeholders:
    return _pred(env)


@maker("pred-out-is-the-input")
def _(env: Env) -> Placeholders:
    return _pred(env)


@maker("pred-out-inside-bundle")
def _(env: Env) -> Placeholders:
    return {"bundle": env.bundle_copy("tabular"), "data": new_cases(env)}


@maker("pred-out-is-folder")
def _(env: Env) -> Placeholders:
    (env.tmp / "predictions").mkdir()
    write(env.tmp / "predictions" / "keep.txt", "mine\n")
    return _pred(env)


@maker("pred-top-k-zero")
def _(env: Env) -> Placeholders:
    return _pred(env)


@maker("eval-unseen-label")
def _(env: Env) -> Placeholders:
    return _pred(env, set_cell(_new_lines(target=True), 6, "outcome", "maybe"), name="ext.csv", target=True)


@maker("eval-missing-target-column")
def _(env: Env) -> Placeholders:
    return _pred(env, name="ext.csv")


@maker("eval-no-positive-cases")
def _(env: Env) -> Placeholders:
    frame = clinic_frame(60, seed=6)
    frame["outcome"] = "no"
    return _pred(env, table_lines(frame), name="ext.csv", target=True)


@maker("eval-no-negative-cases")
def _(env: Env) -> Placeholders:
    frame = clinic_frame(60, seed=6)
    frame["outcome"] = "yes"
    return _pred(env, table_lines(frame), name="ext.csv", target=True)


@maker("eval-some-labels-missing")
def _(env: Env) -> Placeholders:
    lines = _new_lines(target=True)
    for row in (3, 9):
        lines = set_cell(lines, row, "outcome", "")
    return _pred(env, lines, name="ext.csv", target=True)


@maker("eval-all-labels-missing")
def _(env: Env) -> Placeholders:
    frame = clinic_frame(40, seed=5)
    frame["outcome"] = np.nan
    return _pred(env, table_lines(frame), name="ext.csv", target=True)


@maker("eval-non-numeric")
def _(env: Env) -> Placeholders:
    return _pred(env, set_cell(_new_lines(target=True), 8, "bmi", "obese"), name="ext.csv", target=True)


@maker("eval-out-is-bundle")
def _(env: Env) -> Placeholders:
    bundle = env.bundle_copy("tabular")
    return {"bundle": bundle, "data": new_cases(env, name="ext.csv", target=True)}


@maker("eval-out-user-folder")
def _(env: Env) -> Placeholders:
    write(env.tmp / "external" / "my_analysis.R", "# mine\n")
    return _pred(env, name="ext.csv", target=True)


@maker("eval-bootstrap-negative")
def _(env: Env) -> Placeholders:
    return _pred(env, name="ext.csv", target=True)


@maker("expl-input-missing")
def _(env: Env) -> Placeholders:
    return {"bundle": env.bundle("tabular"), "data": env.tmp / "cases.csv"}


@maker("expl-non-numeric")
def _(env: Env) -> Placeholders:
    return _pred(env, set_cell(_new_lines(), 5, "age", "sixty"), name="cases.csv")


@maker("expl-empty-file")
def _(env: Env) -> Placeholders:
    return {"bundle": env.bundle("tabular"), "data": write(env.tmp / "cases.csv", b"")}


@maker("expl-out-is-input")
def _(env: Env) -> Placeholders:
    return _pred(env, name="cases.csv")


# ============================================================================================================
# bundles
# ============================================================================================================
def _broken_bundle(env: Env, damage: Callable[[Path], None], *, rehashed: bool) -> Placeholders:
    bundle = env.bundle_copy("tabular")
    damage(bundle)
    if rehashed:
        rehash(bundle)
    return {"bundle": bundle, "data": new_cases(env)}


def _safetensors_header(bundle: Path) -> None:
    path = bundle / "model.safetensors"
    data = path.read_bytes()
    (size,) = struct.unpack("<Q", data[:8])
    header = data[8 : 8 + size]
    broken = header.replace(b'"dtype"', b'"dtyp\x00', 1)  # same length: offsets stay, the JSON header does not
    path.write_bytes(data[:8] + broken + data[8 + size :])


def _safetensors_offsets(bundle: Path) -> None:
    path = bundle / "model.safetensors"
    data = path.read_bytes()
    (size,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + size])
    first = next(k for k in header if k != "__metadata__")
    begin, end = header[first]["data_offsets"]
    header[first]["data_offsets"] = [begin, end + 10_000_000]  # points past the end of the file
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    path.write_bytes(struct.pack("<Q", len(text)) + text + data[8 + size :])


def _safetensors_wrong_shape(bundle: Path) -> None:
    from safetensors.numpy import load_file, save_file

    state = load_file(str(bundle / "model.safetensors"))
    name = next(k for k in state if k.endswith("weight"))
    state[name] = np.zeros((3, 3), dtype=state[name].dtype)
    save_file(state, str(bundle / "model.safetensors"))


def _config_python_tag(bundle: Path) -> None:
    path = bundle / "config.yaml"
    path.write_text(path.read_text() + "description: !!python/object/apply:os.getcwd []\n")


def _edit_json(name: str, change: Callable[[dict[str, Any]], None]) -> Callable[[Path], None]:
    def damage(bundle: Path) -> None:
        content = json.loads((bundle / name).read_text())
        change(content)
        (bundle / name).write_text(json.dumps(content, indent=2))

    return damage


@maker("bun-safetensors-header")
def _(env: Env) -> Placeholders:
    return _broken_bundle(env, _safetensors_header, rehashed=True)


@maker("bun-safetensors-offsets")
def _(env: Env) -> Placeholders:
    return _broken_bundle(env, _safetensors_offsets, rehashed=True)


@maker("bun-safetensors-truncated")
def _(env: Env) -> Placeholders:
    def damage(bundle: Path) -> None:
        path = bundle / "model.safetensors"
        path.write_bytes(path.read_bytes()[:100])

    return _broken_bundle(env, damage, rehashed=False)


@maker("bun-safetensors-truncated-rehashed")
def _(env: Env) -> Placeholders:
    def damage(bundle: Path) -> None:
        path = bundle / "model.safetensors"
        path.write_bytes(path.read_bytes()[:100])

    return _broken_bundle(env, damage, rehashed=True)


@maker("bun-weights-wrong-shape")
def _(env: Env) -> Placeholders:
    return _broken_bundle(env, _safetensors_wrong_shape, rehashed=True)


@maker("bun-weights-missing")
def _(env: Env) -> Placeholders:
    return _broken_bundle(env, lambda b: (b / "model.safetensors").unlink(), rehashed=False)


@maker("bun-config-python-tag")
def _(env: Env) -> Placeholders:
    return _broken_bundle(env, _config_python_tag, rehashed=True)


@maker("bun-config-not-yaml")
def _(env: Env) -> Placeholders:
    return _broken_bundle(env, lambda b: (b / "config.yaml").write_text("name: [clinic\n"), rehashed=True)


@maker("bun-config-unknown-field")
def _(env: Env) -> Placeholders:
    def damage(bundle: Path) -> None:
        path = bundle / "config.yaml"
        path.write_text(path.read_text() + "trian:\n  epochs: 3\n")

    return _broken_bundle(env, damage, rehashed=True)


@maker("bun-report-empty")
def _(env: Env) -> Placeholders:
    return _broken_bundle(env, lambda b: (b / "report.html").write_bytes(b""), rehashed=False)


@maker("bun-report-empty-rehashed")
def _(env: Env) -> Placeholders:
    return _broken_bundle(env, lambda b: (b / "report.html").write_bytes(b""), rehashed=True)


@maker("bun-manifest-not-json")
def _(env: Env) -> Placeholders:
    return _broken_bundle(env, lambda b: (b / "manifest.json").write_text('{"files": {'), rehashed=False)


@maker("bun-manifest-missing")
def _(env: Env) -> Placeholders:
    return _broken_bundle(env, lambda b: (b / "manifest.json").unlink(), rehashed=False)


@maker("bun-manifest-drops-a-file")
def _(env: Env) -> Placeholders:
    return _broken_bundle(env, _edit_json("manifest.json", lambda m: m["files"].pop("model.json")), rehashed=False)


@maker("bun-manifest-files-not-a-mapping")
def _(env: Env) -> Placeholders:
    return _broken_bundle(env, _edit_json("manifest.json", lambda m: m.update(files=["model.json"])), rehashed=False)


@maker("bun-model-json-not-json")
def _(env: Env) -> Placeholders:
    return _broken_bundle(env, lambda b: (b / "model.json").write_text('{"kind": "tabular",'), rehashed=True)


@maker("bun-model-json-unknown-kind")
def _(env: Env) -> Placeholders:
    return _broken_bundle(env, _edit_json("model.json", lambda m: m.update(kind="xray")), rehashed=True)


@maker("bun-model-json-unknown-arch")
def _(env: Env) -> Placeholders:
    return _broken_bundle(env, _edit_json("model.json", lambda m: m.update(arch="resnet999")), rehashed=True)


@maker("bun-model-json-no-arch")
def _(env: Env) -> Placeholders:
    return _broken_bundle(env, _edit_json("model.json", lambda m: m.pop("arch", None)), rehashed=True)


@maker("bun-model-json-threshold-text")
def _(env: Env) -> Placeholders:
    return _broken_bundle(env, _edit_json("model.json", lambda m: m.update(threshold="high")), rehashed=True)


@maker("bun-preprocess-json-truncated")
def _(env: Env) -> Placeholders:
    def damage(bundle: Path) -> None:
        path = bundle / "preprocess.json"
        path.write_text(path.read_text()[:50])

    return _broken_bundle(env, damage, rehashed=True)


@maker("bun-preprocess-json-wrong-shape")
def _(env: Env) -> Placeholders:
    return _broken_bundle(env, lambda b: (b / "preprocess.json").write_text("[1, 2, 3]\n"), rehashed=True)


@maker("bun-metrics-json-empty")
def _(env: Env) -> Placeholders:
    return _broken_bundle(env, lambda b: (b / "metrics.json").write_bytes(b""), rehashed=True)


@maker("bun-evaluate-corrupt-weights")
def _(env: Env) -> Placeholders:
    placeholders = _broken_bundle(env, _safetensors_header, rehashed=True)
    return {**placeholders, "data": new_cases(env, name="ext.csv", target=True)}


@maker("bun-explain-corrupt-weights")
def _(env: Env) -> Placeholders:
    return _broken_bundle(env, _safetensors_header, rehashed=True)


@maker("bun-export-corrupt-weights")
def _(env: Env) -> Placeholders:
    return _broken_bundle(env, _safetensors_header, rehashed=True)


@maker("bun-export-out-is-folder")
def _(env: Env) -> Placeholders:
    (env.tmp / "model.onnx").mkdir()
    return {"bundle": env.bundle("tabular")}


# ============================================================================================================
# images
# ============================================================================================================
def image_config(path: str = "scans/manifest.csv", **changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "scans",
        "task": "binary",
        "data": {
            "kind": "image",
            "path": path,
            "target": "label",
            "positive_label": "lesion",
            "patient_id": "patient_id",
        },
        "preprocess": {"size": [16, 16], "augment": {"flip": False, "rotate_degrees": 0}, "cache": False},
        "model": {"arch": "small_cnn", "channels": [4, 8]},
        "train": {"epochs": 1, "batch_size": 8, "progress": False},
        "evaluate": {"bootstrap": 10},
    }
    return merge(base, changes)


def phantoms(env: Env, fmt: str = "png", n: int = 16, size: int = 16, spatial_dims: int = 2) -> Path:
    from meddl.data.phantoms import write_phantom_dataset

    return write_phantom_dataset(env.tmp / "scans", n, size=size, fmt=fmt, seed=0, spatial_dims=spatial_dims)  # type: ignore[arg-type]


def image_case(env: Env, fmt: str = "png", damage: Callable[[Path], Any] | None = None, **changes: Any) -> Placeholders:
    manifest = phantoms(env, fmt)
    if damage is not None:
        damage(manifest.parent)
    return {"exp": experiment(env, image_config(**changes)), "data": manifest}


def _replace(path: Path, content: bytes) -> None:
    path.write_bytes(content)


def _png(array: np.ndarray, path: Path) -> Path:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


def _rgb(scans: Path, index: int) -> None:
    path = scans / "images" / f"case_{index:04d}.png"
    from PIL import Image

    Image.open(path).convert("RGB").save(path)


def _rgba(scans: Path, index: int) -> None:
    path = scans / "images" / f"case_{index:04d}.png"
    from PIL import Image

    image = Image.open(path).convert("RGBA")
    alpha = np.array(image)
    alpha[..., 3] = 128  # half transparent: what a screenshot tool or an export with transparency writes
    Image.fromarray(alpha).save(path)


def _nifti(array: np.ndarray, path: Path) -> Path:
    import nibabel as nib

    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(array, np.eye(4)), str(path))
    return path


@maker("img-corrupt-png")
def _(env: Env) -> Placeholders:
    return image_case(
        env, damage=lambda s: _replace(s / "images" / "case_0003.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 64)
    )


@maker("img-truncated-png")
def _(env: Env) -> Placeholders:
    def damage(scans: Path) -> None:
        path = scans / "images" / "case_0003.png"
        path.write_bytes(path.read_bytes()[:60])

    return image_case(env, damage=damage)


@maker("img-zero-byte-png")
def _(env: Env) -> Placeholders:
    return image_case(env, damage=lambda s: _replace(s / "images" / "case_0003.png", b""))


@maker("img-text-as-png")
def _(env: Env) -> Placeholders:
    return image_case(env, damage=lambda s: _replace(s / "images" / "case_0003.png", b"see attached scan\n"))


@maker("img-dicom-as-png")
def _(env: Env) -> Placeholders:
    from meddl.data.phantoms import write_phantom_dataset

    other = write_phantom_dataset(env.tmp / "dicoms", 1, size=16, fmt="dicom", seed=3)
    dicom = next((other.parent / "images").glob("*.dcm"))

    def damage(scans: Path) -> None:
        shutil.copyfile(dicom, scans / "images" / "case_0003.png")

    return image_case(env, damage=damage)


@maker("img-corrupt-dicom")
def _(env: Env) -> Placeholders:
    def damage(scans: Path) -> None:
        path = scans / "images" / "case_0003.dcm"
        path.write_bytes(path.read_bytes()[:400])

    return image_case(env, fmt="dicom", damage=damage)


@maker("img-text-as-dicom")
def _(env: Env) -> Placeholders:
    return image_case(env, fmt="dicom", damage=lambda s: _replace(s / "images" / "case_0003.dcm", b"not a scan\n" * 20))


@maker("img-dicom-without-pixels")
def _(env: Env) -> Placeholders:
    def damage(scans: Path) -> None:
        import pydicom

        path = scans / "images" / "case_0003.dcm"
        dataset = pydicom.dcmread(path)
        del dataset.PixelData
        dataset.save_as(path)

    return image_case(env, fmt="dicom", damage=damage)


@maker("img-corrupt-nifti")
def _(env: Env) -> Placeholders:
    return image_case(
        env, fmt="nifti", damage=lambda s: _replace(s / "images" / "case_0003.nii.gz", gzip.compress(b"\x00" * 100))
    )


@maker("img-not-gzip-nifti")
def _(env: Env) -> Placeholders:
    return image_case(env, fmt="nifti", damage=lambda s: _replace(s / "images" / "case_0003.nii.gz", b"plain text"))


@maker("img-nifti-nan-voxels")
def _(env: Env) -> Placeholders:
    def damage(scans: Path) -> None:
        import nibabel as nib

        path = scans / "images" / "case_0003.nii.gz"
        image = nib.load(str(path))
        array = np.asarray(image.dataobj, dtype=np.float32)
        array[4:8, 4:8] = np.nan
        nib.save(nib.Nifti1Image(array, image.affine), str(path))

    return image_case(env, fmt="nifti", damage=damage)


@maker("img-nifti-all-nan")
def _(env: Env) -> Placeholders:
    def damage(scans: Path) -> None:
        import nibabel as nib

        path = scans / "images" / "case_0003.nii.gz"
        image = nib.load(str(path))
        array = np.full(image.shape, np.nan, dtype=np.float32)
        nib.save(nib.Nifti1Image(array, image.affine), str(path))

    return image_case(env, fmt="nifti", damage=damage)


@maker("img-grey-and-rgb-mixed")
def _(env: Env) -> Placeholders:
    return image_case(env, damage=lambda s: _rgb(s, 3))


@maker("img-rgba-png")
def _(env: Env) -> Placeholders:
    def damage(scans: Path) -> None:
        for index in range(16):
            _rgba(scans, index)

    return image_case(env, damage=damage)


@maker("img-mismatched-sizes")
def _(env: Env) -> Placeholders:
    def damage(scans: Path) -> None:
        from PIL import Image

        for index in (2, 5, 9):
            path = scans / "images" / f"case_{index:04d}.png"
            Image.open(path).resize((24, 20)).save(path)

    return image_case(env, damage=damage)


@maker("img-manifest-missing-file")
def _(env: Env) -> Placeholders:
    return image_case(env, damage=lambda s: (s / "images" / "case_0003.png").unlink())


@maker("img-manifest-missing-file-skip")
def _(env: Env) -> Placeholders:
    return image_case(env, damage=lambda s: (s / "images" / "case_0003.png").unlink(), data={"on_bad_file": "skip"})


@maker("img-corrupt-png-skip")
def _(env: Env) -> Placeholders:
    return image_case(
        env,
        damage=lambda s: _replace(s / "images" / "case_0003.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 64),
        data={"on_bad_file": "skip"},
    )


@maker("img-manifest-no-path-column")
def _(env: Env) -> Placeholders:
    def damage(scans: Path) -> None:
        frame = pd.read_csv(scans / "manifest.csv").rename(columns={"path": "file"})
        frame.to_csv(scans / "manifest.csv", index=False)

    return image_case(env, damage=damage)


@maker("img-manifest-no-label-column")
def _(env: Env) -> Placeholders:
    def damage(scans: Path) -> None:
        frame = pd.read_csv(scans / "manifest.csv").rename(columns={"label": "diagnosis"})
        frame.to_csv(scans / "manifest.csv", index=False)

    return image_case(env, damage=damage)


@maker("img-manifest-empty-path-cell")
def _(env: Env) -> Placeholders:
    def damage(scans: Path) -> None:
        lines = (scans / "manifest.csv").read_text().splitlines()
        lines = set_cell(lines, 6, "path", "")
        write_lines(scans / "manifest.csv", lines)

    return image_case(env, damage=damage)


@maker("img-manifest-empty-label")
def _(env: Env) -> Placeholders:
    def damage(scans: Path) -> None:
        lines = (scans / "manifest.csv").read_text().splitlines()
        lines = set_cell(lines, 6, "label", "")
        write_lines(scans / "manifest.csv", lines)

    return image_case(env, damage=damage)


@maker("img-manifest-short-row")
def _(env: Env) -> Placeholders:
    def damage(scans: Path) -> None:
        lines = (scans / "manifest.csv").read_text().splitlines()
        lines[6] = lines[6].rsplit(",", 2)[0]  # row 7
        write_lines(scans / "manifest.csv", lines)

    return image_case(env, damage=damage)


@maker("img-manifest-path-escapes")
def _(env: Env) -> Placeholders:
    def damage(scans: Path) -> None:
        lines = (scans / "manifest.csv").read_text().splitlines()
        lines = set_cell(lines, 4, "path", "../" * 40 + "etc/passwd")  # resolves to /etc/passwd from any depth
        write_lines(scans / "manifest.csv", lines)

    return image_case(env, damage=damage)


@maker("img-mask-missing")
def _(env: Env) -> Placeholders:
    return image_case(env, damage=lambda s: (s / "masks" / "case_0002.png").unlink())


@maker("img-positive-label-absent")
def _(env: Env) -> Placeholders:
    return image_case(env, data={"positive_label": "tumour"})


@maker("img-volume-in-2d-run")
def _(env: Env) -> Placeholders:
    def damage(scans: Path) -> None:
        (scans / "images" / "case_0003.nii.gz").unlink()
        _nifti(
            np.random.default_rng(0).normal(size=(16, 16, 12)).astype(np.float32), scans / "images" / "case_0003.nii.gz"
        )

    return image_case(env, fmt="nifti", damage=damage)


@maker("img-folder-one-class")
def _(env: Env) -> Placeholders:
    for index in range(6):
        _png(np.full((16, 16), 40 * index, dtype=np.uint8), env.tmp / "scans" / "normal" / f"n{index}.png")
    return {"exp": experiment(env, image_config("scans", data={"positive_label": None, "patient_id": None}))}


@maker("img-folder-empty")
def _(env: Env) -> Placeholders:
    (env.tmp / "scans" / "normal").mkdir(parents=True)
    (env.tmp / "scans" / "lesion").mkdir(parents=True)
    return {"exp": experiment(env, image_config("scans", data={"patient_id": None}))}


@maker("img-npz-missing-keys")
def _(env: Env) -> Placeholders:
    path = env.tmp / "organs.npz"
    np.savez(path, train_images=np.zeros((10, 16, 16), dtype=np.uint8), train_labels=np.zeros((10, 1)))
    return {"exp": experiment(env, image_config("organs.npz", data={"positive_label": None, "patient_id": None}))}


@maker("img-npz-corrupt")
def _(env: Env) -> Placeholders:
    write(env.tmp / "organs.npz", b"PK\x03\x04 broken zip")
    return {"exp": experiment(env, image_config("organs.npz", data={"positive_label": None, "patient_id": None}))}


@maker("img-npz-pickled-objects")
def _(env: Env) -> Placeholders:
    path = env.tmp / "organs.npz"
    images = np.empty(10, dtype=object)
    for i in range(10):
        images[i] = np.zeros((16, 16))
    arrays = {}
    for split in ("train", "val", "test"):
        arrays[f"{split}_images"] = images
        arrays[f"{split}_labels"] = np.arange(10)[:, None] % 2
    np.savez(path, **arrays)
    return {"exp": experiment(env, image_config("organs.npz", data={"positive_label": None, "patient_id": None}))}


@maker("img-npz-label-count-mismatch")
def _(env: Env) -> Placeholders:
    path = env.tmp / "organs.npz"
    arrays = {}
    for split in ("train", "val", "test"):
        arrays[f"{split}_images"] = np.zeros((10, 16, 16), dtype=np.uint8)
        arrays[f"{split}_labels"] = (np.arange(8 if split == "val" else 10) % 2)[:, None]
    np.savez(path, **arrays)
    return {"exp": experiment(env, image_config("organs.npz", data={"positive_label": None, "patient_id": None}))}


def _image_bundle_case(env: Env, files: dict[str, bytes | Callable[[Path], Any]]) -> Placeholders:
    folder = env.tmp / "new_scans"
    folder.mkdir()
    source = sorted((env.bundles.data("image") / "scans" / "images").glob("*.dcm"))
    for name, content in files.items():
        if callable(content):
            content(folder / name)
        else:
            write(folder / name, content)
    for index, path in enumerate(source[:2]):
        shutil.copyfile(path, folder / f"good_{index}.dcm")
    return {"bundle": env.bundle("image"), "data": folder}


def _grey_png_bytes(mode: str) -> Callable[[Path], Any]:
    def save(path: Path) -> None:
        from PIL import Image

        values = (np.random.default_rng(1).random((32, 32)) * 255).astype(np.uint8)
        image = Image.fromarray(values).convert(mode)
        if mode == "RGBA":
            array = np.array(image)
            array[..., 3] = 200
            image = Image.fromarray(array)
        image.save(path)

    return save


@maker("img-pred-rgba-on-grey-model")
def _(env: Env) -> Placeholders:
    placeholders = _image_bundle_case(env, {})
    path = env.tmp / "photo.png"
    _grey_png_bytes("RGBA")(path)
    return {**placeholders, "data": path}


@maker("img-pred-rgb-on-grey-model")
def _(env: Env) -> Placeholders:
    placeholders = _image_bundle_case(env, {})
    path = env.tmp / "photo.png"
    _grey_png_bytes("RGB")(path)
    return {**placeholders, "data": path}


@maker("img-pred-corrupt-in-folder")
def _(env: Env) -> Placeholders:
    return _image_bundle_case(env, {"broken.dcm": b"DICM but not really" * 10})


@maker("img-pred-zero-byte-file")
def _(env: Env) -> Placeholders:
    placeholders = _image_bundle_case(env, {})
    return {**placeholders, "data": write(env.tmp / "empty.dcm", b"")}


@maker("img-pred-folder-without-images")
def _(env: Env) -> Placeholders:
    write(env.tmp / "new_scans" / "README.txt", "scans to follow\n")
    return {"bundle": env.bundle("image"), "data": env.tmp / "new_scans"}


@maker("img-pred-missing")
def _(env: Env) -> Placeholders:
    return {"bundle": env.bundle("image"), "data": env.tmp / "new_scans"}


@maker("img-pred-volume-on-2d-model")
def _(env: Env) -> Placeholders:
    path = _nifti(np.random.default_rng(0).normal(size=(32, 32, 20)).astype(np.float32), env.tmp / "volume.nii.gz")
    return {"bundle": env.bundle("image"), "data": path}


@maker("img-pred-nan-nifti")
def _(env: Env) -> Placeholders:
    array = np.random.default_rng(0).normal(size=(32, 32, 1)).astype(np.float32)
    array[3:9, 3:9] = np.nan
    return {"bundle": env.bundle("image"), "data": _nifti(array, env.tmp / "scan.nii.gz")}


@maker("img-pred-manifest-missing-file")
def _(env: Env) -> Placeholders:
    source = sorted((env.bundles.data("image") / "scans" / "images").glob("*.dcm"))[:3]
    folder = env.tmp / "site2"
    for path in source:
        (folder / "images").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, folder / "images" / path.name)
    rows = [f"images/{p.name},lesion" for p in source] + ["images/lost.dcm,normal"]
    manifest = write_lines(folder / "manifest.csv", ["path,label", *rows])
    return {"bundle": env.bundle("image"), "data": manifest}


@maker("img-eval-unseen-label")
def _(env: Env) -> Placeholders:
    source = sorted((env.bundles.data("image") / "scans" / "images").glob("*.dcm"))[:6]
    folder = env.tmp / "site2"
    (folder / "images").mkdir(parents=True)
    for path in source:
        shutil.copyfile(path, folder / "images" / path.name)
    labels = ["lesion", "normal", "lesion", "tumour", "normal", "lesion"]
    rows = [f"images/{p.name},{label}" for p, label in zip(source, labels, strict=True)]
    manifest = write_lines(folder / "manifest.csv", ["path,label", *rows])
    return {"bundle": env.bundle("image"), "data": manifest}


@maker("img-eval-manifest-missing-file")
def _(env: Env) -> Placeholders:
    placeholders = MAKERS["img-pred-manifest-missing-file"](env)
    return placeholders


@maker("img-expl-corrupt-input")
def _(env: Env) -> Placeholders:
    return {"bundle": env.bundle("image"), "data": write(env.tmp / "scan.dcm", b"\x00" * 128 + b"DICM" + b"\x01" * 50)}


@maker("img-expl-missing-input")
def _(env: Env) -> Placeholders:
    return {"bundle": env.bundle("image"), "data": env.tmp / "scan.dcm"}


@maker("img-expl-out-not-an-image")
def _(env: Env) -> Placeholders:
    source = sorted((env.bundles.data("image") / "scans" / "images").glob("*.dcm"))[0]
    shutil.copyfile(source, env.tmp / "scan.dcm")
    return {"bundle": env.bundle("image"), "data": env.tmp / "scan.dcm"}


# ============================================================================================================
# signals
# ============================================================================================================
def signal_config(path: str = "ecg/manifest.csv", **changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "ecg",
        "task": "regression",
        "data": {"kind": "signal", "path": path, "target": "heart_rate", "patient_id": "patient_id"},
        "preprocess": {"sampling_rate": 50, "bandpass": [0.5, 20.0], "length_seconds": 2},
        "model": {"arch": "cnn1d"},
        "train": {"epochs": 1, "batch_size": 8, "progress": False},
        "evaluate": {"bootstrap": 10},
    }
    return merge(base, changes)


def ecg_records(env: Env, fmt: str = "wfdb", n: int = 12, task: str = "heart_rate") -> Path:
    from meddl.data.ecg import write_ecg_dataset

    return write_ecg_dataset(env.tmp / "ecg", n, task=task, fmt=fmt, fs=100, duration=2, seed=0)


def signal_case(
    env: Env, fmt: str = "wfdb", damage: Callable[[Path], Any] | None = None, **changes: Any
) -> Placeholders:
    manifest = ecg_records(env, fmt)
    if damage is not None:
        damage(manifest.parent)
    if fmt in {"npy", "csv"}:
        changes = merge({"data": {"sampling_rate": 100}}, changes)
    return {"exp": experiment(env, signal_config(**changes)), "data": manifest}


def _manifest_cell(row: int, column: str, value: str) -> Callable[[Path], None]:
    def damage(folder: Path) -> None:
        lines = (folder / "manifest.csv").read_text().splitlines()
        write_lines(folder / "manifest.csv", set_cell(lines, row, column, value))

    return damage


@maker("sig-header-without-dat")
def _(env: Env) -> Placeholders:
    return signal_case(env, damage=lambda f: (f / "records" / "ecg00003.dat").unlink())


@maker("sig-dat-truncated")
def _(env: Env) -> Placeholders:
    def damage(folder: Path) -> None:
        path = folder / "records" / "ecg00003.dat"
        path.write_bytes(path.read_bytes()[:37])

    return signal_case(env, damage=damage)


@maker("sig-header-garbage")
def _(env: Env) -> Placeholders:
    return signal_case(env, damage=lambda f: write(f / "records" / "ecg00003.hea", "hello there\n"))


@maker("sig-header-zero-sampling-rate")
def _(env: Env) -> Placeholders:
    def damage(folder: Path) -> None:
        path = folder / "records" / "ecg00003.hea"
        lines = path.read_text().splitlines()
        lines[0] = lines[0].replace(" 100 ", " 0 ")
        write_lines(path, lines)

    return signal_case(env, damage=damage)


@maker("sig-header-other-sampling-rate")
def _(env: Env) -> Placeholders:
    def damage(folder: Path) -> None:
        path = folder / "records" / "ecg00003.hea"
        lines = path.read_text().splitlines()
        lines[0] = lines[0].replace(" 100 200", " 1000 200")  # claims 1000 Hz: a 0.2-s record
        write_lines(path, lines)

    return signal_case(env, damage=damage)


@maker("sig-npy-nan-samples")
def _(env: Env) -> Placeholders:
    def damage(folder: Path) -> None:
        path = folder / "records" / "ecg00003.npy"
        array = np.load(path)
        array[..., 50:70] = np.nan
        np.save(path, array)

    return signal_case(env, fmt="npy", damage=damage)


@maker("sig-npy-all-nan")
def _(env: Env) -> Placeholders:
    def damage(folder: Path) -> None:
        path = folder / "records" / "ecg00003.npy"
        np.save(path, np.full(np.load(path).shape, np.nan))

    return signal_case(env, fmt="npy", damage=damage)


@maker("sig-npy-inf-samples")
def _(env: Env) -> Placeholders:
    def damage(folder: Path) -> None:
        path = folder / "records" / "ecg00003.npy"
        array = np.load(path).astype(np.float64)
        array[..., 10] = np.inf
        np.save(path, array)

    return signal_case(env, fmt="npy", damage=damage)


@maker("sig-npy-without-sampling-rate")
def _(env: Env) -> Placeholders:
    manifest = ecg_records(env, "npy")
    return {"exp": experiment(env, signal_config()), "data": manifest}


@maker("sig-npy-pickled-object")
def _(env: Env) -> Placeholders:
    def damage(folder: Path) -> None:
        array = np.empty(2, dtype=object)
        array[0], array[1] = np.zeros(200), "lead II"
        np.save(folder / "records" / "ecg00003.npy", array, allow_pickle=True)

    return signal_case(env, fmt="npy", damage=damage)


@maker("sig-npy-3d-array")
def _(env: Env) -> Placeholders:
    return signal_case(env, fmt="npy", damage=lambda f: np.save(f / "records" / "ecg00003.npy", np.zeros((2, 3, 200))))


@maker("sig-npy-truncated")
def _(env: Env) -> Placeholders:
    def damage(folder: Path) -> None:
        path = folder / "records" / "ecg00003.npy"
        path.write_bytes(path.read_bytes()[:90])

    return signal_case(env, fmt="npy", damage=damage)


@maker("sig-extra-channel")
def _(env: Env) -> Placeholders:
    def damage(folder: Path) -> None:
        path = folder / "records" / "ecg00003.npy"
        array = np.load(path).reshape(1, -1)
        np.save(path, np.vstack([array, array]))

    return signal_case(env, fmt="npy", damage=damage)


@maker("sig-csv-non-numeric-cell")
def _(env: Env) -> Placeholders:
    def damage(folder: Path) -> None:
        records = folder / "records"
        for npy in sorted(records.glob("*.npy")):
            values = np.load(npy).reshape(-1)
            lines = ["II"] + [f"{v:.5f}" for v in values]
            if npy.stem == "ecg00003":
                lines[9] = "lead-off"  # row 10 of the file
            write_lines(records / f"{npy.stem}.csv", lines)
            npy.unlink()
        manifest = (folder / "manifest.csv").read_text().replace(".npy", ".csv")
        write(folder / "manifest.csv", manifest)

    return signal_case(env, fmt="npy", damage=damage)


@maker("sig-unsupported-record-type")
def _(env: Env) -> Placeholders:
    def damage(folder: Path) -> None:
        write(folder / "records" / "ecg00003.edf", b"0       patient x" + b" " * 200)
        text = (folder / "manifest.csv").read_text().replace("records/ecg00003.hea", "records/ecg00003.edf")
        write(folder / "manifest.csv", text)

    return signal_case(env, damage=damage)


@maker("sig-manifest-missing-file")
def _(env: Env) -> Placeholders:
    return signal_case(env, damage=lambda f: [(f / "records" / f"ecg00004.{s}").unlink() for s in ("hea", "dat")])


@maker("sig-manifest-no-target-column")
def _(env: Env) -> Placeholders:
    return signal_case(env, data={"target": "hr_bpm"})


@maker("sig-manifest-non-numeric-target")
def _(env: Env) -> Placeholders:
    return signal_case(env, damage=_manifest_cell(6, "heart_rate", "fast"))


@maker("sig-manifest-inf-target")
def _(env: Env) -> Placeholders:
    return signal_case(env, damage=_manifest_cell(7, "heart_rate", "inf"))


@maker("sig-manifest-empty-path")
def _(env: Env) -> Placeholders:
    return signal_case(env, damage=_manifest_cell(4, "path", ""))


@maker("sig-manifest-missing-targets-counted")
def _(env: Env) -> Placeholders:
    def damage(folder: Path) -> None:
        _manifest_cell(5, "heart_rate", "")(folder)
        _manifest_cell(9, "heart_rate", "")(folder)

    return signal_case(env, damage=damage)


@maker("sig-manifest-short-row")
def _(env: Env) -> Placeholders:
    def damage(folder: Path) -> None:
        lines = (folder / "manifest.csv").read_text().splitlines()
        lines[7] = lines[7].rsplit(",", 2)[0]  # row 8
        write_lines(folder / "manifest.csv", lines)

    return signal_case(env, damage=damage)


@maker("sig-manifest-duplicate-header")
def _(env: Env) -> Placeholders:
    def damage(folder: Path) -> None:
        lines = (folder / "manifest.csv").read_text().splitlines()
        lines[0] = lines[0].replace("rhythm", "label")
        write_lines(folder / "manifest.csv", lines)

    return signal_case(env, damage=damage)


@maker("sig-bandpass-above-nyquist")
def _(env: Env) -> Placeholders:
    return signal_case(env, preprocess={"bandpass": [0.5, 40.0]})


@maker("sig-bandpass-reversed")
def _(env: Env) -> Placeholders:
    return signal_case(env, preprocess={"bandpass": [20.0, 0.5]})


@maker("sig-pred-missing-record")
def _(env: Env) -> Placeholders:
    data = env.bundles.data("signal") / "records"
    lines = [
        "path",
        str(sorted(data.rglob("*.hea"))[0]),
        str(env.tmp / "gone.hea"),
        str(sorted(data.rglob("*.hea"))[1]),
    ]
    return {"bundle": env.bundle("signal"), "data": write_lines(env.tmp / "new.csv", lines)}


@maker("sig-pred-nan-record")
def _(env: Env) -> Placeholders:
    import wfdb

    samples = np.sin(np.linspace(0, 40, 400))[:, None]
    samples[100:120] = np.nan  # stored as WFDB's "no sample" value, read back as NaN
    wfdb.wrsamp("rec", fs=100, units=["mV"], sig_name=["II"], p_signal=samples, fmt=["16"], write_dir=str(env.tmp))
    return {"bundle": env.bundle("signal"), "data": env.tmp / "rec.hea"}


@maker("sig-pred-header-without-dat")
def _(env: Env) -> Placeholders:
    header = sorted((env.bundles.data("signal") / "records").rglob("*.hea"))[0]
    write(env.tmp / "rec.hea", header.read_text().replace(header.stem, "rec"))
    return {"bundle": env.bundle("signal"), "data": env.tmp / "rec.hea"}


@maker("sig-eval-non-numeric-target")
def _(env: Env) -> Placeholders:
    manifest = next((env.bundles.data("signal") / "records").glob("manifest.csv"))
    lines = manifest.read_text().splitlines()
    lines = [lines[0]] + [line.replace("records/", str(manifest.parent / "records") + "/", 1) for line in lines[1:13]]
    lines = set_cell(lines, 5, "heart_rate", "n/a-ish")
    return {"bundle": env.bundle("signal"), "data": write_lines(env.tmp / "ext.csv", lines)}


# ============================================================================================================
# sequences
# ============================================================================================================
def sequence_config(path: str = "dna/sequences.fa", **changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "dna",
        "task": "binary",
        "data": {"kind": "sequence", "path": path, "target": "label", "positive_label": 1},
        "preprocess": {"length": 60},
        "model": {"arch": "sequence_cnn", "filters": [4], "kernel_sizes": [5], "hidden": 4},
        "train": {"epochs": 1, "batch_size": 16, "progress": False},
        "evaluate": {"bootstrap": 10},
    }
    return merge(base, changes)


def planted(env: Env, formats: tuple[str, ...] = ("fasta",), n: int = 40) -> dict[str, Path]:
    from meddl.data.motifs import planted_motif_dataset, write_planted_dataset

    return write_planted_dataset(env.tmp / "dna", planted_motif_dataset(n, length=60, seed=0), formats)


def fasta_case(
    env: Env, damage: Callable[[str], str | bytes], name: str = "sequences.fa", **changes: Any
) -> Placeholders:
    paths = planted(env)
    text = paths["fasta"].read_text()
    broken = damage(text)
    paths["fasta"].unlink()
    write(env.tmp / "dna" / name, broken)
    return {"exp": experiment(env, sequence_config(f"dna/{name}", **changes))}


def _record(text: str, record: str, change: Callable[[str], str]) -> str:
    """Change the sequence lines of ``record`` (``seq5``) in a FASTA text."""
    out, inside = [], False
    for line in text.splitlines():
        if line.startswith(">"):
            inside = line[1:].split()[0] == record
            out.append(line)
        else:
            out.append(change(line) if inside else line)
    return "\n".join(out) + "\n"


@maker("seq-fasta-invalid-character")
def _(env: Env) -> Placeholders:
    return fasta_case(env, lambda t: _record(t, "seq5", lambda s: s[:16] + "X" + s[17:] if len(s) > 17 else s))


@maker("seq-fasta-protein")
def _(env: Env) -> Placeholders:
    return fasta_case(env, lambda t: _record(t, "seq2", lambda s: "MKVLAAGIVQRSTWEEPLF" + s[19:]))


@maker("seq-fasta-empty-file")
def _(env: Env) -> Placeholders:
    return fasta_case(env, lambda t: "")


@maker("seq-fasta-no-header")
def _(env: Env) -> Placeholders:
    return fasta_case(env, lambda t: "\n".join(line for line in t.splitlines() if not line.startswith(">")) + "\n")


@maker("seq-fasta-duplicate-ids")
def _(env: Env) -> Placeholders:
    return fasta_case(env, lambda t: t.replace(">seq7 ", ">seq3 ", 1))


@maker("seq-fasta-missing-label")
def _(env: Env) -> Placeholders:
    return fasta_case(env, lambda t: t.replace(">seq4 label=0", ">seq4").replace(">seq4 label=1", ">seq4"))


@maker("seq-fasta-empty-record")
def _(env: Env) -> Placeholders:
    def empty(text: str) -> str:
        out, inside = [], False
        for line in text.splitlines():
            if line.startswith(">"):
                inside = line[1:].split()[0] == "seq7"
            if not inside or line.startswith(">"):
                out.append(line)
        return "\n".join(out) + "\n"

    return fasta_case(env, empty)


@maker("seq-fasta-not-utf8")
def _(env: Env) -> Placeholders:
    return fasta_case(env, lambda t: t.replace(">seq6 ", ">séq6 ").encode("latin-1"))


@maker("seq-fasta-gz-corrupt")
def _(env: Env) -> Placeholders:
    return fasta_case(env, lambda t: gzip.compress(t.encode())[:120], name="sequences.fa.gz")


@maker("seq-fasta-binary")
def _(env: Env) -> Placeholders:
    return fasta_case(env, lambda t: b">seq0 label=1\n" + bytes(range(1, 256)))


@maker("seq-fasta-single-class")
def _(env: Env) -> Placeholders:
    return fasta_case(env, lambda t: t.replace("label=0", "label=1"))


@maker("seq-labels-table-missing-ids")
def _(env: Env) -> Placeholders:
    paths = planted(env)
    text = paths["fasta"].read_text()
    labels = [line[1:].split() for line in text.splitlines() if line.startswith(">")]
    write(paths["fasta"], "\n".join(line.split()[0] for line in text.splitlines()) + "\n")
    rows = [f"{ident},{label.split('=')[1]}" for ident, label in labels if ident not in {"seq3", "seq11"}]
    write_lines(env.tmp / "dna" / "labels.csv", ["id,label", *rows])
    return {"exp": experiment(env, sequence_config(data={"labels": "labels.csv"}))}


@maker("seq-labels-table-missing-file")
def _(env: Env) -> Placeholders:
    planted(env)
    return {"exp": experiment(env, sequence_config(data={"labels": "labels.csv"}))}


def _bed_case(env: Env, change: Callable[[list[str]], list[str]], **changes: Any) -> Placeholders:
    paths = planted(env, ("bed",))
    lines = paths["bed"].read_text().splitlines()
    write_lines(paths["bed"], change(lines))
    data = {"path": "dna/intervals.bed", "reference": "genome.fa", **changes.pop("data", {})}
    return {"exp": experiment(env, sequence_config("dna/intervals.bed", data=data, **changes))}


def _bed_field(lines: list[str], line: int, field_index: int, value: str) -> list[str]:
    lines = list(lines)
    fields = lines[line - 1].split("\t")
    fields[field_index] = value
    lines[line - 1] = "\t".join(fields)
    return lines


@maker("seq-bed-outside-chromosome")
def _(env: Env) -> Placeholders:
    return _bed_case(env, lambda lines: _bed_field(_bed_field(lines, 6, 1, "999000"), 6, 2, "999060"))


@maker("seq-bed-unknown-chromosome")
def _(env: Env) -> Placeholders:
    return _bed_case(env, lambda lines: _bed_field(lines, 6, 0, "chr9"))


@maker("seq-bed-start-after-end")
def _(env: Env) -> Placeholders:
    return _bed_case(env, lambda lines: _bed_field(lines, 5, 1, "5000"))


@maker("seq-bed-non-integer")
def _(env: Env) -> Placeholders:
    return _bed_case(env, lambda lines: _bed_field(lines, 4, 2, "12k"))


@maker("seq-bed-negative-start")
def _(env: Env) -> Placeholders:
    return _bed_case(env, lambda lines: _bed_field(lines, 3, 1, "-4"))


@maker("seq-bed-too-few-fields")
def _(env: Env) -> Placeholders:
    return _bed_case(env, lambda lines: [*lines[:6], "chr1\t100", *lines[7:]])


@maker("seq-bed-bad-strand")
def _(env: Env) -> Placeholders:
    return _bed_case(env, lambda lines: _bed_field(lines, 8, 5, "forward"))


@maker("seq-bed-no-reference")
def _(env: Env) -> Placeholders:
    placeholders = _bed_case(env, lambda lines: lines)
    config = yaml.safe_load((env.tmp / "exp.yaml").read_text())
    del config["data"]["reference"]
    experiment(env, config)
    return placeholders


@maker("seq-bed-reference-missing")
def _(env: Env) -> Placeholders:
    placeholders = _bed_case(env, lambda lines: lines)
    (env.tmp / "dna" / "genome.fa").unlink()
    return placeholders


@maker("seq-bed-reference-not-fasta")
def _(env: Env) -> Placeholders:
    placeholders = _bed_case(env, lambda lines: lines)
    write(env.tmp / "dna" / "genome.fa", "chrom\tsize\nchr1\t4000\n")
    return placeholders


def _table_case(env: Env, change: Callable[[pd.DataFrame], pd.DataFrame], **changes: Any) -> Placeholders:
    paths = planted(env, ("csv",))
    frame = change(pd.read_csv(paths["csv"]))
    frame.to_csv(paths["csv"], index=False)
    return {"exp": experiment(env, sequence_config("dna/sequences.csv", **changes))}


@maker("seq-table-no-sequence-column")
def _(env: Env) -> Placeholders:
    return _table_case(env, lambda f: f.rename(columns={"sequence": "seq"}))


@maker("seq-table-empty-sequence")
def _(env: Env) -> Placeholders:
    def change(frame: pd.DataFrame) -> pd.DataFrame:
        frame.loc[6, "sequence"] = np.nan  # row 8
        return frame

    return _table_case(env, change)


@maker("seq-table-invalid-character")
def _(env: Env) -> Placeholders:
    def change(frame: pd.DataFrame) -> pd.DataFrame:
        frame.loc[9, "sequence"] = frame.loc[9, "sequence"][:30] + "!" + frame.loc[9, "sequence"][31:]  # row 11
        return frame

    return _table_case(env, change)


@maker("seq-table-duplicate-ids")
def _(env: Env) -> Placeholders:
    def change(frame: pd.DataFrame) -> pd.DataFrame:
        frame.loc[12, "id"] = frame.loc[2, "id"]  # row 14 repeats row 4
        return frame

    return _table_case(env, change)


def _vcf(env: Env, change: Callable[[list[str]], list[str]] | None = None) -> Placeholders:
    genome = env.bundles.data("sequence").parent / "genome"
    env.uses.append(genome)
    lines = (genome / "variants.vcf").read_text().splitlines()
    if change is not None:
        lines = change(lines)
    shutil.copyfile(genome / "genome.fa", env.tmp / "genome.fa")
    return {
        "bundle": env.bundle("sequence"),
        "vcf": write_lines(env.tmp / "cohort.vcf", lines),
        "reference": env.tmp / "genome.fa",
    }


def _vcf_record(lines: list[str], k: int, field_index: int, value: str) -> list[str]:
    """Set field ``field_index`` of the ``k``-th record (0-based) of a VCF's lines."""
    lines = list(lines)
    index = [i for i, line in enumerate(lines) if not line.startswith("#")][k]
    fields = lines[index].split("\t")
    fields[field_index] = value
    lines[index] = "\t".join(fields)
    return lines


def _vcf_line(lines: list[str], k: int) -> int:
    return [i for i, line in enumerate(lines) if not line.startswith("#")][k] + 1


@maker("seq-vcf-too-few-fields")
def _(env: Env) -> Placeholders:
    def change(lines: list[str]) -> list[str]:
        index = _vcf_line(lines, 1) - 1
        lines[index] = "\t".join(lines[index].split("\t")[:3])
        return lines

    return _vcf(env, change)


@maker("seq-vcf-non-integer-pos")
def _(env: Env) -> Placeholders:
    return _vcf(env, lambda lines: _vcf_record(lines, 1, 1, "12,345"))


@maker("seq-vcf-no-header")
def _(env: Env) -> Placeholders:
    return _vcf(env, lambda lines: [line for line in lines if not line.startswith("#")])


@maker("seq-vcf-ref-mismatch")
def _(env: Env) -> Placeholders:
    def change(lines: list[str]) -> list[str]:
        index = _vcf_line(lines, 0) - 1
        fields = lines[index].split("\t")
        fields[3] = next(b for b in "ACGT" if b not in (fields[3], fields[4]))
        lines[index] = "\t".join(fields)
        return lines

    return _vcf(env, change)


@maker("seq-vcf-alt-dot")
def _(env: Env) -> Placeholders:
    return _vcf(env, lambda lines: _vcf_record(lines, 2, 4, "."))


@maker("seq-vcf-symbolic-alt")
def _(env: Env) -> Placeholders:
    return _vcf(env, lambda lines: _vcf_record(lines, 0, 4, "<DEL>"))


@maker("seq-vcf-unknown-chromosome")
def _(env: Env) -> Placeholders:
    return _vcf(env, lambda lines: _vcf_record(lines, 1, 0, "chr9"))


@maker("seq-vcf-pos-beyond-chromosome")
def _(env: Env) -> Placeholders:
    return _vcf(env, lambda lines: _vcf_record(lines, 1, 1, "9999999"))


@maker("seq-vcf-no-records")
def _(env: Env) -> Placeholders:
    return _vcf(env, lambda lines: [line for line in lines if line.startswith("#")])


@maker("seq-vcf-missing-reference")
def _(env: Env) -> Placeholders:
    placeholders = _vcf(env)
    (env.tmp / "genome.fa").unlink()
    return placeholders


@maker("seq-vcf-no-reference-argument")
def _(env: Env) -> Placeholders:
    return _vcf(env)


@maker("seq-pred-invalid-character")
def _(env: Env) -> Placeholders:
    source = env.bundles.data("sequence") / "explain.fa"
    text = _record(source.read_text(), source.read_text().split()[0][1:], lambda s: s[:10] + "Z" + s[11:])
    return {"bundle": env.bundle("sequence"), "data": write(env.tmp / "new.fa", text)}


@maker("seq-pred-empty-fasta")
def _(env: Env) -> Placeholders:
    return {"bundle": env.bundle("sequence"), "data": write(env.tmp / "new.fa", "")}


@maker("seq-eval-missing-labels")
def _(env: Env) -> Placeholders:
    source = env.bundles.data("sequence") / "explain.fa"
    text = "\n".join(line.split()[0] if line.startswith(">") else line for line in source.read_text().splitlines())
    return {"bundle": env.bundle("sequence"), "data": write(env.tmp / "ext.fa", text + "\n")}


# ============================================================================================================
# gene expression
# ============================================================================================================
def expression_config(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "expr",
        "task": "binary",
        "data": {
            "kind": "expression",
            "path": "counts.csv",
            "labels": "labels.csv",
            "target": "response",
            "positive_label": "yes",
        },
        "preprocess": {"log": "auto", "select": "variance", "n_genes": 10},
        "model": {"arch": "mlp", "hidden": [8]},
        "train": {"epochs": 1, "batch_size": 16, "progress": False},
        "evaluate": {"bootstrap": 10, "baselines": []},
        "explain": {"permutation_repeats": 0},
    }
    return merge(base, changes)


def expression_case(
    env: Env,
    counts: Callable[[list[str]], list[str]] | None = None,
    labels: Callable[[list[str]], list[str]] | None = None,
    **changes: Any,
) -> Placeholders:
    from meddl.data.expression import synthetic_expression

    matrix, label_table, _ = synthetic_expression(60, 20, 4, seed=0)
    count_lines = matrix.reset_index().to_csv(index=False, lineterminator="\n").splitlines()
    label_lines = label_table.to_csv(index=False, lineterminator="\n").splitlines()
    write_lines(env.tmp / "counts.csv", counts(count_lines) if counts else count_lines)
    write_lines(env.tmp / "labels.csv", labels(label_lines) if labels else label_lines)
    return {"exp": experiment(env, expression_config(**changes)), "data": env.tmp / "counts.csv"}


@maker("expr-non-numeric-value")
def _(env: Env) -> Placeholders:
    return expression_case(env, counts=lambda lines: set_cell(lines, 6, "GENE0003", "high"))


@maker("expr-nan-value")
def _(env: Env) -> Placeholders:
    return expression_case(env, counts=lambda lines: set_cell(lines, 9, "GENE0007", ""))


@maker("expr-inf-value")
def _(env: Env) -> Placeholders:
    return expression_case(env, counts=lambda lines: set_cell(lines, 9, "GENE0007", "inf"))


@maker("expr-negative-counts-log2")
def _(env: Env) -> Placeholders:
    return expression_case(env, counts=lambda lines: set_cell(lines, 4, "GENE0002", "-35"), preprocess={"log": "log2"})


@maker("expr-duplicated-genes")
def _(env: Env) -> Placeholders:
    def change(lines: list[str]) -> list[str]:
        lines = list(lines)
        lines[0] = lines[0].replace("GENE0005", "GENE0002")
        return lines

    return expression_case(env, counts=change)


@maker("expr-duplicated-samples")
def _(env: Env) -> Placeholders:
    return expression_case(env, counts=lambda lines: set_cell(lines, 10, "sample_id", "S0004"))


@maker("expr-empty-matrix")
def _(env: Env) -> Placeholders:
    placeholders = expression_case(env)
    write(env.tmp / "counts.csv", b"")
    return placeholders


@maker("expr-header-only")
def _(env: Env) -> Placeholders:
    return expression_case(env, counts=lambda lines: lines[:1])


@maker("expr-labels-file-missing")
def _(env: Env) -> Placeholders:
    placeholders = expression_case(env)
    (env.tmp / "labels.csv").unlink()
    return placeholders


@maker("expr-labels-no-overlap")
def _(env: Env) -> Placeholders:
    return expression_case(env, labels=lambda lines: [lines[0]] + [line.replace("S0", "X0", 1) for line in lines[1:]])


@maker("expr-labels-no-target-column")
def _(env: Env) -> Placeholders:
    return expression_case(env, data={"target": "outcome"})


@maker("expr-labels-no-sample-column")
def _(env: Env) -> Placeholders:
    return expression_case(env, labels=lambda lines: [lines[0].replace("sample_id", "sample"), *lines[1:]])


@maker("expr-labels-duplicate-sample")
def _(env: Env) -> Placeholders:
    return expression_case(env, labels=lambda lines: set_cell(lines, 8, "sample_id", "S0003"))


@maker("expr-unlabelled-samples-counted")
def _(env: Env) -> Placeholders:
    return expression_case(env, labels=lambda lines: lines[:-5])


@maker("expr-genes-in-rows-wrong")
def _(env: Env) -> Placeholders:
    return expression_case(env, data={"genes_in_rows": True})


@maker("expr-pred-missing-genes")
def _(env: Env) -> Placeholders:
    source = env.bundles.data("expression") / "counts.csv"
    frame = pd.read_csv(source).head(10)
    frame = frame.drop(columns=list(frame.columns[1:6]))
    frame.to_csv(env.tmp / "new.csv", index=False)
    return {"bundle": env.bundle("expression"), "data": env.tmp / "new.csv", "dropped": ", ".join(frame.columns[1:3])}


@maker("expr-pred-non-numeric")
def _(env: Env) -> Placeholders:
    source = env.bundles.data("expression") / "counts.csv"
    lines = source.read_text().splitlines()[:11]
    gene = lines[0].split(",")[4]
    write_lines(env.tmp / "new.csv", set_cell(lines, 4, gene, "n.d."))
    return {"bundle": env.bundle("expression"), "data": env.tmp / "new.csv", "gene": gene}


# ============================================================================================================
# EHR event stores
# ============================================================================================================
def ehr_config(path: str = "events.duckdb", **changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "icu",
        "task": "binary",
        "data": {"kind": "ehr", "path": path, "cohort": {"outcome": "mortality", "observation_hours": 24}},
        "preprocess": {"mode": "grid", "bin_hours": 6, "top_labs": 4, "codes_top": 10},
        "model": {"arch": "gru", "hidden": 8},
        "train": {"epochs": 1, "batch_size": 32, "progress": False},
        "evaluate": {"bootstrap": 10},
    }
    return merge(base, changes)


def ehr_store(env: Env, name: str = "events.duckdb") -> Path:
    source = env.bundles.data("ehr") / "events.duckdb"
    env.bundles.path("ehr")
    shutil.copyfile(source, env.tmp / name)
    return env.tmp / name


def _ehr_exp(env: Env, **changes: Any) -> Placeholders:
    return {"exp": experiment(env, ehr_config(**changes))}


@maker("ehr-store-missing")
def _(env: Env) -> Placeholders:
    return _ehr_exp(env)


@maker("ehr-store-not-duckdb")
def _(env: Env) -> Placeholders:
    write(env.tmp / "events.duckdb", "patient_id,visit_id\n1,2\n")
    return _ehr_exp(env)


@maker("ehr-store-is-folder")
def _(env: Env) -> Placeholders:
    (env.tmp / "events.duckdb").mkdir()
    return _ehr_exp(env)


@maker("ehr-store-missing-table")
def _(env: Env) -> Placeholders:
    import duckdb

    con = duckdb.connect(str(env.tmp / "events.duckdb"))
    con.execute("CREATE TABLE patients (patient_id VARCHAR, sex VARCHAR, birth_date DATE)")
    con.close()
    return _ehr_exp(env)


@maker("ehr-store-missing-column")
def _(env: Env) -> Placeholders:
    import duckdb

    store = ehr_store(env)
    con = duckdb.connect(str(store))
    con.execute("ALTER TABLE visits DROP COLUMN discharge_time")
    con.close()
    return _ehr_exp(env)


@maker("ehr-store-truncated")
def _(env: Env) -> Placeholders:
    store = ehr_store(env)
    store.write_bytes(store.read_bytes()[:8192])
    return _ehr_exp(env)


@maker("ehr-cohort-unknown-outcome")
def _(env: Env) -> Placeholders:
    ehr_store(env)
    return _ehr_exp(env, data={"cohort": {"outcome": "sepsis"}})


@maker("ehr-cohort-negative-hours")
def _(env: Env) -> Placeholders:
    ehr_store(env)
    return _ehr_exp(env, data={"cohort": {"observation_hours": -24}})


@maker("ehr-cohort-task-mismatch")
def _(env: Env) -> Placeholders:
    ehr_store(env)
    return _ehr_exp(env, task="regression")


@maker("ehr-cohort-empty")
def _(env: Env) -> Placeholders:
    ehr_store(env)
    return _ehr_exp(env, data={"cohort": {"min_age": 130}})


@maker("ehr-cohort-window-longer-than-stays")
def _(env: Env) -> Placeholders:
    ehr_store(env)
    return _ehr_exp(env, data={"cohort": {"observation_hours": 24 * 400}})


@maker("ehr-unknown-lab")
def _(env: Env) -> Placeholders:
    ehr_store(env)
    return _ehr_exp(env, preprocess={"labs": ["troponin_z"]})


@maker("ehr-import-missing-folder")
def _(env: Env) -> Placeholders:
    return {"source": env.tmp / "mimic"}


@maker("ehr-import-missing-required-file")
def _(env: Env) -> Placeholders:
    write_lines(env.tmp / "mimic" / "patients.csv", ["subject_id,gender,anchor_age,anchor_year", "1,F,60,2150"])
    return {"source": env.tmp / "mimic"}


def _mimic(env: Env) -> Path:
    folder = env.tmp / "mimic"
    write_lines(
        folder / "patients.csv",
        ["subject_id,gender,anchor_age,anchor_year,dod", "1,F,60,2150,", "2,M,71,2151,", "3,F,45,2149,"],
    )
    write_lines(
        folder / "admissions.csv",
        [
            "subject_id,hadm_id,admittime,dischtime,deathtime,hospital_expire_flag",
            "1,11,2150-01-02 10:00:00,2150-01-09 12:00:00,,0",
            "2,21,2151-03-01 08:00:00,2151-03-05 09:00:00,,0",
            "3,31,2149-06-10 22:00:00,2149-06-20 10:00:00,,0",
        ],
    )
    write_lines(
        folder / "diagnoses_icd.csv", ["subject_id,hadm_id,icd_code,icd_version", "1,11,I10,10", "2,21,E119,10"]
    )
    write_lines(
        folder / "labevents.csv",
        [
            "subject_id,hadm_id,itemid,charttime,valuenum,valueuom",
            "1,11,50912,2150-01-02 12:00:00,1.1,mg/dL",
            "2,21,50912,2151-03-01 10:00:00,0.9,mg/dL",
        ],
    )
    return folder


@maker("ehr-import-bad-time")
def _(env: Env) -> Placeholders:
    folder = _mimic(env)
    lines = (folder / "admissions.csv").read_text().splitlines()
    lines[2] = lines[2].replace("2151-03-05 09:00:00", "next tuesday")  # row 3
    write_lines(folder / "admissions.csv", lines)
    return {"source": folder}


@maker("ehr-import-discharge-before-admission")
def _(env: Env) -> Placeholders:
    folder = _mimic(env)
    lines = (folder / "admissions.csv").read_text().splitlines()
    lines[3] = lines[3].replace("2149-06-20 10:00:00", "2149-06-01 10:00:00")  # row 4
    write_lines(folder / "admissions.csv", lines)
    return {"source": folder}


@maker("ehr-import-short-row")
def _(env: Env) -> Placeholders:
    folder = _mimic(env)
    lines = (folder / "labevents.csv").read_text().splitlines()
    lines[2] = "2,21,50912"  # row 3
    write_lines(folder / "labevents.csv", lines)
    return {"source": folder}


@maker("ehr-import-out-exists")
def _(env: Env) -> Placeholders:
    folder = _mimic(env)
    write(env.tmp / "events.duckdb", b"my previous store")
    return {"source": folder}


@maker("ehr-import-fhir-bad-json")
def _(env: Env) -> Placeholders:
    folder = env.tmp / "fhir"
    write_lines(
        folder / "Patient.ndjson",
        [
            json.dumps({"resourceType": "Patient", "id": "p1", "gender": "female", "birthDate": "1960-01-01"}),
            '{"resourceType": "Patient", "id": "p2", "gender": ',
            json.dumps({"resourceType": "Patient", "id": "p3", "gender": "male", "birthDate": "1950-05-05"}),
        ],
    )
    write_lines(
        folder / "Encounter.ndjson",
        [
            json.dumps(
                {
                    "resourceType": "Encounter",
                    "id": "e1",
                    "subject": {"reference": "Patient/p1"},
                    "period": {"start": "2020-01-01T10:00:00Z", "end": "2020-01-05T10:00:00Z"},
                }
            )
        ],
    )
    return {"source": folder}


@maker("ehr-pred-store-missing")
def _(env: Env) -> Placeholders:
    return {"bundle": env.bundle("ehr"), "data": env.tmp / "new.duckdb"}


@maker("ehr-pred-not-duckdb")
def _(env: Env) -> Placeholders:
    return {"bundle": env.bundle("ehr"), "data": write(env.tmp / "new.duckdb", b"SQLite format 3\x00" + b"\x00" * 200)}


@maker("ehr-pred-csv-instead-of-store")
def _(env: Env) -> Placeholders:
    return {"bundle": env.bundle("ehr"), "data": new_cases(env)}


# ============================================================================================================
# the server (requests to a TestClient over a tiny bundle)
# ============================================================================================================
def _patient() -> dict[str, Any]:
    return {"age": 61, "sex": "F", "bmi": 31.2, "glucose": 142, "systolic_bp": 135, "smoker": "current", "noise": 0.1}


def _records(**change: Any) -> dict[str, Any]:
    record = _patient()
    for key, value in change.items():
        if value is ...:
            record.pop(key)
        else:
            record[key] = value
    return {"records": [record]}


def _server(env: Env, kind: str = "tabular", **request: Any) -> Placeholders:
    return {"bundle": env.bundle(kind), "request": request}


@maker("srv-malformed-json")
def _(env: Env) -> Placeholders:
    return _server(env, content='{"records": [{"age": 61, ', headers={"content-type": "application/json"})


@maker("srv-not-json-content-type")
def _(env: Env) -> Placeholders:
    return _server(env, content="age=61&sex=F", headers={"content-type": "application/x-www-form-urlencoded"})


@maker("srv-wrong-type")
def _(env: Env) -> Placeholders:
    return _server(env, json=_records(glucose="high"))


@maker("srv-missing-field")
def _(env: Env) -> Placeholders:
    return _server(env, json=_records(age=...))


@maker("srv-huge-float")
def _(env: Env) -> Placeholders:
    body = json.dumps(_records(age=61)).replace('"age": 61', '"age": 1e999')
    return _server(env, content=body, headers={"content-type": "application/json"})


@maker("srv-huge-integer")
def _(env: Env) -> Placeholders:
    body = json.dumps(_records(age=61)).replace('"age": 61', '"age": ' + "9" * 400)
    return _server(env, content=body, headers={"content-type": "application/json"})


@maker("srv-implausible-value")
def _(env: Env) -> Placeholders:
    return _server(env, json=_records(age=1e300))


@maker("srv-nan-literal")
def _(env: Env) -> Placeholders:
    body = json.dumps(_records(age=61)).replace('"age": 61', '"age": NaN')
    return _server(env, content=body, headers={"content-type": "application/json"})


@maker("srv-boolean-for-number")
def _(env: Env) -> Placeholders:
    return _server(env, json=_records(age=True))


@maker("srv-object-for-number")
def _(env: Env) -> Placeholders:
    return _server(env, json=_records(glucose={"value": 142, "unit": "mg/dL"}))


@maker("srv-extra-field")
def _(env: Env) -> Placeholders:
    return _server(env, json=_records(creatinine=1.2))


@maker("srv-unseen-category")
def _(env: Env) -> Placeholders:
    return _server(env, json=_records(smoker="vaper"))


@maker("srv-empty-records")
def _(env: Env) -> Placeholders:
    return _server(env, json={"records": []})


@maker("srv-records-not-a-list")
def _(env: Env) -> Placeholders:
    return _server(env, json={"records": _patient()})


@maker("srv-top-level-list")
def _(env: Env) -> Placeholders:
    return _server(env, json=[_patient()])


@maker("srv-empty-body")
def _(env: Env) -> Placeholders:
    return _server(env, content="", headers={"content-type": "application/json"})


@maker("srv-batch-too-large")
def _(env: Env) -> Placeholders:
    return _server(env, json={"records": [_patient()] * 1500})


@maker("srv-body-too-large")
def _(env: Env) -> Placeholders:
    return _server(env, json={"records": [{**_patient(), "case_id": "x" * 2_000_000}]})


@maker("srv-unknown-model")
def _(env: Env) -> Placeholders:
    return _server(env, json=_records())


@maker("srv-upload-to-table-model")
def _(env: Env) -> Placeholders:
    return _server(env, files={"file": ("cases.csv", b"age,sex\n61,F\n", "text/csv")})


@maker("srv-not-utf8-json")
def _(env: Env) -> Placeholders:
    body = json.dumps(_records(smoker="current")).replace("current", "curr\u00e9nt").encode("latin-1")
    return _server(env, content=body, headers={"content-type": "application/json"})


def _dicom_bytes(env: Env) -> bytes:
    return sorted((env.bundles.data("image") / "scans" / "images").glob("*.dcm"))[0].read_bytes()


@maker("srv-img-upload-text")
def _(env: Env) -> Placeholders:
    return _server(env, "image", files={"file": ("notes.txt", b"patient is fine\n", "text/plain")})


@maker("srv-img-upload-corrupt-png")
def _(env: Env) -> Placeholders:
    return _server(env, "image", files={"file": ("scan.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "image/png")})


@maker("srv-img-upload-zero-bytes")
def _(env: Env) -> Placeholders:
    return _server(env, "image", files={"file": ("scan.dcm", b"", "application/dicom")})


@maker("srv-img-upload-truncated-dicom")
def _(env: Env) -> Placeholders:
    return _server(env, "image", files={"file": ("scan.dcm", _dicom_bytes(env)[:500], "application/dicom")})


@maker("srv-img-no-file")
def _(env: Env) -> Placeholders:
    return _server(env, "image", files={"image": ("scan.dcm", b"x", "application/dicom")})


@maker("srv-img-json-body")
def _(env: Env) -> Placeholders:
    return _server(env, "image", json={"records": [{"pixels": [1, 2, 3]}]})


@maker("srv-img-rgba-png")
def _(env: Env) -> Placeholders:
    path = env.tmp / "photo.png"
    _grey_png_bytes("RGBA")(path)
    return _server(env, "image", files={"file": ("photo.png", path.read_bytes(), "image/png")})


@maker("srv-img-volume-to-2d-model")
def _(env: Env) -> Placeholders:
    path = _nifti(np.random.default_rng(0).normal(size=(32, 32, 20)).astype(np.float32), env.tmp / "volume.nii.gz")
    return _server(env, "image", files={"file": ("volume.nii.gz", path.read_bytes(), "application/gzip")})


@maker("srv-seq-invalid-character")
def _(env: Env) -> Placeholders:
    return _server(env, "sequence", json={"sequences": [{"id": "s1", "sequence": "ACGT" * 5 + "X" + "ACGT" * 5}]})


@maker("srv-seq-empty-sequence")
def _(env: Env) -> Placeholders:
    return _server(env, "sequence", json={"sequences": [{"id": "s1", "sequence": ""}]})


@maker("srv-seq-missing-id")
def _(env: Env) -> Placeholders:
    return _server(env, "sequence", json={"sequences": [{"sequence": "ACGT" * 10}]})


@maker("srv-seq-upload-not-fasta")
def _(env: Env) -> Placeholders:
    return _server(env, "sequence", files={"file": ("new.fa", b"just some words\n", "text/plain")})


def _stays(env: Env) -> dict[str, list[dict[str, Any]]]:
    import datetime as dt

    import duckdb

    from meddl.io.ehr_schema import TABLE_COLUMNS

    env.bundle("ehr")
    con = duckdb.connect(str(env.bundles.data("ehr") / "events.duckdb"), read_only=True)
    patient = con.execute("SELECT patient_id FROM visits ORDER BY patient_id LIMIT 1").fetchone()[0]  # type: ignore[index]
    body: dict[str, list[dict[str, Any]]] = {}
    for table, columns in TABLE_COLUMNS.items():
        rows = con.execute(f"SELECT {', '.join(columns)} FROM {table} WHERE patient_id = ? ORDER BY ALL", [patient])
        body[table] = [
            {c: v.isoformat() if isinstance(v, dt.date | dt.datetime) else v for c, v in zip(columns, row, strict=True)}
            for row in rows.fetchall()
        ]
    con.close()
    return body


@maker("srv-ehr-discharge-before-admission")
def _(env: Env) -> Placeholders:
    body = _stays(env)
    visit = body["visits"][0]
    visit["discharge_time"] = "1999-01-01T00:00:00"
    return _server(env, "ehr", json=body)


@maker("srv-ehr-unparseable-time")
def _(env: Env) -> Placeholders:
    body = _stays(env)
    body["visits"][0]["admit_time"] = "last monday"
    return _server(env, "ehr", json=body)


@maker("srv-ehr-measurement-unknown-visit")
def _(env: Env) -> Placeholders:
    body = _stays(env)
    body["measurements"][0]["visit_id"] = "V-does-not-exist"
    return _server(env, "ehr", json=body)


@maker("srv-report-empty-rehashed")
def _(env: Env) -> Placeholders:
    bundle = env.bundle_copy("tabular")
    (bundle / "report.html").write_bytes(b"")
    rehash(bundle)
    return {"bundle": bundle, "request": {}}


@maker("srv-corrupt-bundle")
def _(env: Env) -> Placeholders:
    bundle = env.bundle_copy("tabular")
    _safetensors_header(bundle)
    rehash(bundle)
    return {"bundle": bundle, "request": {}}
