"""The ``meddl`` command: the user's journey, and one clear line (never a traceback) for bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from meddl.cli import main
from meddl.io import read_table, write_table
from tests.conftest import fast_config


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        main([str(a) for a in args])
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def write_experiment(tmp_path: Path, config: dict, name: str = "exp.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def test_init_prints_the_annotated_experiment_that_validates(capsys: pytest.CaptureFixture[str]) -> None:
    from meddl.config import parse_config

    code, out, _ = run_cli(["init", "tabular"], capsys)
    assert code == 0
    assert "# binary | multiclass | regression" in out
    config = parse_config(yaml.safe_load(out))
    assert config.data.target == "diabetes" and config.data.positive_label == "pos"
    assert config.preprocess.imbalance == "class_weight"


def test_user_journey_train_predict_evaluate_explain(
    clinical_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    experiment = write_experiment(tmp_path, fast_config("clinic.csv"))
    code, out, err = run_cli(["train", experiment, "--out", tmp_path / "runs" / "clinic", "--quiet"], capsys)
    assert code == 0, err
    assert "auroc" in out and "report.html" in out

    new = read_table(clinical_csv).drop(columns=["outcome"]).head(25)
    write_table(new, tmp_path / "new_patients.csv")
    code, _, err = run_cli(
        [
            "predict",
            tmp_path / "runs" / "clinic",
            "--data",
            tmp_path / "new_patients.csv",
            "--out",
            tmp_path / "predictions.csv",
            "--explain",
        ],
        capsys,
    )
    assert code == 0, err
    predictions = pd.read_csv(tmp_path / "predictions.csv", keep_default_na=False)
    assert len(predictions) == 25
    assert {"row", "patient_id", "probability_yes", "prediction", "top_features"} <= set(predictions.columns)
    assert predictions["row"].tolist() == list(range(2, 27))

    code, out, err = run_cli(
        [
            "evaluate",
            tmp_path / "runs" / "clinic",
            "--data",
            clinical_csv,
            "--out",
            tmp_path / "external",
            "--bootstrap",
            "20",
        ],
        capsys,
    )
    assert code == 0, err
    assert json.loads((tmp_path / "external" / "metrics.json").read_text())["test"]["auroc"]["value"] > 0.5

    code, _, err = run_cli(
        [
            "explain",
            tmp_path / "runs" / "clinic",
            "--input",
            tmp_path / "new_patients.csv",
            "--out",
            tmp_path / "contributions.csv",
        ],
        capsys,
    )
    assert code == 0, err
    contributions = pd.read_csv(tmp_path / "contributions.csv")
    assert {"row", "age", "glucose", "smoker"} <= set(contributions.columns)


def _bad_input_cases(tmp_path: Path, clinical_csv: Path) -> dict[str, tuple[list, str]]:
    raw = read_table(clinical_csv)
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "notes.xlsx").write_bytes(b"PK\x03\x04")
    one_class = raw.assign(outcome="no")
    write_table(one_class, tmp_path / "one_class.csv")
    text_in_numbers = raw.astype({"age": object})
    text_in_numbers.loc[text_in_numbers.index[36], "age"] = "unknown"
    write_table(text_in_numbers, tmp_path / "text_in_numbers.csv")

    def exp(name: str, **changes: object) -> Path:
        config = fast_config(tmp_path / name)
        config["data"].update(changes)
        return write_experiment(tmp_path, config, f"{Path(name).stem}.yaml")

    typo = fast_config(clinical_csv)
    typo["preprocess"] = {"scael": "standard"}
    no_target = fast_config(clinical_csv)
    no_target["data"]["target"] = "outcom"
    return {
        "missing data file": (["train", exp("absent.csv")], "data file not found"),
        "wrong extension": (["train", exp("notes.xlsx")], "unsupported file type '.xlsx'"),
        "empty file": (["train", exp("empty.csv")], "empty.csv: the file is empty"),
        "one class only": (["train", exp("one_class.csv")], "has one class only ('no')"),
        "text in a numeric column": (
            ["train", exp("text_in_numbers.csv")],
            "column 'age' has 1 non-numeric value(s), e.g. 'unknown' (row 38)",
        ),
        "config typo": (["train", write_experiment(tmp_path, typo, "typo.yaml")], "preprocess.scael: unknown field"),
        "target column absent": (
            ["train", write_experiment(tmp_path, no_target, "no_target.yaml")],
            "data.target column 'outcom' not found; did you mean 'outcome'",
        ),
        "missing experiment file": (["train", tmp_path / "nope.yaml"], "experiment file not found"),
        "not a bundle": (
            ["predict", tmp_path, "--data", clinical_csv, "--out", tmp_path / "p.csv"],
            "not a MedDL bundle",
        ),
    }


@pytest.mark.parametrize(
    "case",
    [
        "missing data file",
        "wrong extension",
        "empty file",
        "one class only",
        "text in a numeric column",
        "config typo",
        "target column absent",
        "missing experiment file",
        "not a bundle",
    ],
)
def test_bad_input_is_one_clear_line(
    case: str, clinical_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args, expected = _bad_input_cases(tmp_path, clinical_csv)[case]
    code, out, err = run_cli(args, capsys)
    assert code == 2
    assert expected in " ".join(err.split()), err
    assert "Traceback" not in err + out


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from meddl import Experiment
    from meddl.data import synthetic_clinical_table

    folder = tmp_path_factory.mktemp("cli_bundle")
    csv = write_table(synthetic_clinical_table(200, seed=5), folder / "clinic.csv")
    Experiment.from_dict(fast_config(csv)).run(out=folder / "run")
    return folder / "run"


def test_predict_with_missing_columns_names_them(
    bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    frame = pd.DataFrame({"age": [50, 60], "sex": ["F", "M"]})
    write_table(frame, tmp_path / "partial.csv")
    code, _, err = run_cli(["predict", bundle, "--data", tmp_path / "partial.csv", "--out", tmp_path / "p.csv"], capsys)
    assert code == 2
    assert "missing column(s) the model needs: 'bmi', 'glucose'" in " ".join(err.split())


def test_tampered_bundle_refuses_to_load(bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(bundle, copy)
    info = json.loads((copy / "model.json").read_text())
    info["threshold"] = 0.01
    (copy / "model.json").write_text(json.dumps(info))
    code, _, err = run_cli(["predict", copy, "--data", bundle / "splits.csv", "--out", tmp_path / "p.csv"], capsys)
    assert code == 2
    assert "sha256 does not match the manifest" in " ".join(err.split())


def test_external_data_with_unknown_class_names_the_row(
    bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from meddl.data import synthetic_clinical_table

    frame = synthetic_clinical_table(30, seed=9)
    frame.loc[4, "outcome"] = "maybe"
    write_table(frame, tmp_path / "site.csv")
    code, _, err = run_cli(["evaluate", bundle, "--data", tmp_path / "site.csv", "--out", tmp_path / "e"], capsys)
    assert code == 2
    assert "target value 'maybe' (row 6)" in " ".join(err.split())


@pytest.mark.slow
def test_resume_after_kill_matches_uninterrupted_run(tmp_path: Path) -> None:
    """Kill `meddl train` (SIGKILL) mid-training, resume, and get bit-identical weights."""
    from safetensors.torch import load_file

    from meddl.data import synthetic_clinical_table

    csv = write_table(synthetic_clinical_table(1500, seed=2), tmp_path / "clinic.csv")
    config = fast_config(csv)
    config["train"].update({"epochs": 60, "early_stopping": {"patience": 100}})
    config["evaluate"]["bootstrap"] = 0
    config["explain"] = {"permutation_repeats": 0, "integrated_gradients": False}
    experiment = write_experiment(tmp_path, config)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "meddl", "train", str(experiment), "--quiet"]

    subprocess.run([*command, "--out", str(tmp_path / "full")], check=True, env=env, capture_output=True)

    killed = subprocess.Popen([*command, "--out", str(tmp_path / "killed")], env=env, stderr=subprocess.PIPE)
    checkpoint = tmp_path / "killed.partial" / "checkpoints" / "checkpoint.pt"  # staged beside --out
    deadline = time.time() + 120
    while not checkpoint.exists() and time.time() < deadline:
        time.sleep(0.02)
    time.sleep(0.3)
    assert killed.poll() is None, "training finished before it could be killed; make the run longer"
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    assert not (tmp_path / "killed").exists()  # nothing appears at --out until the run is complete

    result = subprocess.run(
        [*command, "--out", str(tmp_path / "killed"), "--resume"], env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    full = load_file(str(tmp_path / "full" / "model.safetensors"))
    resumed = load_file(str(tmp_path / "killed" / "model.safetensors"))
    assert full.keys() == resumed.keys()
    for name in full:
        assert (full[name] == resumed[name]).all(), name
    history = json.loads((tmp_path / "killed" / "run.json").read_text())["training"]
    assert history["resumed_from_epoch"] is not None and history["resumed_from_epoch"] >= 1


def test_export_onnx_from_the_command_line(bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(["export", bundle, "--onnx", tmp_path / "model.onnx"], capsys)
    assert code == 0, err
    sidecar = json.loads((tmp_path / "model.onnx.json").read_text())
    assert (tmp_path / "model.onnx").stat().st_size > 0
    assert sidecar["task"] == "binary"


def test_init_image_prints_an_experiment_that_validates(capsys: pytest.CaptureFixture[str]) -> None:
    from meddl.config import parse_config
    from meddl.modalities.sections.image import ImageDataConfig

    code, out, _ = run_cli(["init", "image"], capsys)
    assert code == 0
    config = parse_config(yaml.safe_load(out))
    assert isinstance(config.data, ImageDataConfig) and config.model.arch == "small_cnn"
    code, _, err = run_cli(["init", "genome"], capsys)
    assert code == 2 and "unknown data kind 'genome'" in err


@pytest.mark.parametrize(
    ("kind", "arch"),
    [("sequence", "sequence_cnn"), ("expression", "mlp"), ("signal", "seed_lstm"), ("ehr", "gru")],
)
def test_init_prints_a_valid_experiment_for_every_kind(
    kind: str, arch: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from meddl.config import parse_config
    from meddl.models import check_model_params

    code, out, _ = run_cli(["init", kind], capsys)
    assert code == 0
    config = parse_config(yaml.safe_load(out))
    assert config.data.kind == kind and config.model.arch == arch
    check_model_params(config.model.arch, config.model.params)  # the template's model arguments exist
