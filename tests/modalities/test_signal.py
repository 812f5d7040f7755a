"""The signal pipeline end to end: WFDB / DICOM waveform / .npy ECGs in, a bundle with attribution traces out."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from meddl import Experiment, load_bundle
from meddl.cli import main
from meddl.data.ecg import write_ecg_dataset
from meddl.run.privacy import local_ids_path

SKIPPED = "unreadable records (data.on_bad_file: skip)"


def signal_config(manifest: str, task: str, target: str, arch: dict[str, Any], **data: Any) -> dict[str, Any]:
    """A tiny experiment: 2-s records at 50 Hz, two epochs, 20 bootstrap resamples."""
    return {
        "name": f"ecg-{arch['arch']}",
        "task": task,
        "data": {"kind": "signal", "path": manifest, "target": target, "patient_id": "patient_id", **data},
        "preprocess": {"sampling_rate": 50, "bandpass": [0.5, 20.0], "length_seconds": 2},
        "model": arch,
        "train": {"epochs": 2, "batch_size": 16, "learning_rate": 0.003, "seed": 0, "progress": False},
        "evaluate": {"bootstrap": 20},
    }


def with_bad_records(manifest: Path) -> Path:
    """A copy of ``manifest`` plus a row naming a missing file and a WFDB header whose .dat is gone."""
    frame = pd.read_csv(manifest)
    records = manifest.parent / "records"
    header = (records / "ecg00001.hea").read_text()
    (records / "orphan.hea").write_text(header.replace("ecg00001", "orphan"))
    bad = frame.iloc[:2].copy()
    bad["path"] = ["records/missing.hea", "records/orphan.hea"]
    bad["patient_id"] = ["PX1", "PX2"]
    path = manifest.parent / "with_bad.csv"
    pd.concat([frame, bad]).to_csv(path, index=False)
    return path


def cli(args: list[Any], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """Run ``meddl`` and return its exit code and stderr."""
    capsys.readouterr()
    try:
        main([str(a) for a in args])
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    return code, capsys.readouterr().err


@pytest.fixture(scope="module")
def wfdb_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Heart-rate regression (seed_lstm with downsample) on WFDB records, trained through the Python API from a
    manifest that also names a missing file and a header without its .dat (``on_bad_file: skip``)."""
    folder = tmp_path_factory.mktemp("wfdb")
    manifest = write_ecg_dataset(folder, 30, task="heart_rate", fmt="wfdb", fs=100, duration=2, seed=0, patients=20)
    with_bad_records(manifest)
    config = signal_config(
        "with_bad.csv",
        "regression",
        "heart_rate",
        {"arch": "seed_lstm", "units": 8, "downsample": 2},
        on_bad_file="skip",
    )
    Experiment.from_dict(config, base_dir=folder).run(out=folder / "run")
    return manifest, folder / "run"


def test_wfdb_regression_writes_bundle_report_and_traces(wfdb_run: tuple[Path, Path]) -> None:
    manifest, run = wfdb_run
    for name in ("config.yaml", "model.json", "model.safetensors", "preprocess.json", "metrics.json", "report.html"):
        assert (run / name).is_file(), name
    assert json.loads((run / "model.json").read_text())["params"] == {"units": 8, "downsample": 2}
    splits = pd.read_csv(local_ids_path(run))
    assert len(splits) == 30 and splits.groupby("patient_id")["split"].nunique().max() == 1
    test_ids = splits.loc[splits["split"] == "test", "id"].tolist()
    assert len(list((run / "traces").glob("case_*.png"))) == len(test_ids) > 0
    report = (run / "report.html").read_text()
    assert "Attribution over time" in report and "data:image/png;base64" in report

    # The reloaded bundle reproduces the reported test error: same preprocessing, weights and target scale.
    metrics = json.loads((run / "metrics.json").read_text())
    predictions = load_bundle(run).predict(manifest).set_index("id")
    truth = pd.read_csv(manifest).assign(id=lambda f: [str((manifest.parent / p).resolve()) for p in f["path"]])
    truth = truth.set_index("id").loc[test_ids, "heart_rate"]
    mae = float(np.mean(np.abs(predictions.loc[test_ids, "prediction"].astype(float) - truth)))
    assert mae == pytest.approx(metrics["test"]["mae"]["value"], rel=1e-4)


def test_skipped_records_are_listed_and_counted(wfdb_run: tuple[Path, Path]) -> None:
    _, run = wfdb_run
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["data"]["n_rows_read"] == 32 and metrics["data"]["n_rows_used"] == 30
    assert metrics["data"]["dropped"] == {SKIPPED: 2}
    report = (run / "report.html").read_text()
    assert "missing.hea" in report and "orphan.hea" in report


def test_unreadable_records_are_notes_at_prediction(wfdb_run: tuple[Path, Path]) -> None:
    manifest, run = wfdb_run
    predictions = load_bundle(run).predict(manifest.parent / "with_bad.csv")
    assert len(predictions) == 32 and predictions["prediction"].iloc[:30].notna().all()
    notes = predictions["note"].iloc[30:].tolist()
    assert notes[0].startswith("not scored:") and "missing.hea" in notes[0]
    assert notes[1].startswith("not scored:") and "orphan.dat" in notes[1]
    assert predictions["prediction"].iloc[30:].isna().all()


def test_bad_record_is_one_line_naming_the_file(
    wfdb_run: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest, _ = wfdb_run
    frame = pd.read_csv(manifest)
    for bad, named in (("records/missing.hea", "missing.hea"), ("records/orphan.hea", "orphan.dat")):
        path = manifest.parent / f"bad_{named}.csv"
        pd.concat([frame.iloc[:6], frame.iloc[:1].assign(path=bad)]).to_csv(path, index=False)
        config = signal_config(path.name, "regression", "heart_rate", {"arch": "seed_lstm", "units": 8})
        experiment = tmp_path / f"{named}.yaml"
        experiment.write_text(yaml.safe_dump({**config, "data": {**config["data"], "path": str(path)}}))
        code, err = cli(["train", experiment, "--out", tmp_path / named, "--quiet"], capsys)
        assert code == 2, err
        lines = err.strip().splitlines()
        assert len(lines) == 1 and named in lines[0] and "Traceback" not in err, err


def test_band_pass_above_nyquist_is_one_configuration_error(
    wfdb_run: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest, _ = wfdb_run
    config = signal_config(str(manifest), "regression", "heart_rate", {"arch": "cnn1d"}, on_bad_file="skip")
    config["preprocess"]["bandpass"] = [0.5, 40.0]  # at 50 Hz the Nyquist frequency is 25 Hz
    experiment = tmp_path / "nyquist.yaml"
    experiment.write_text(yaml.safe_dump(config))
    code, err = cli(["train", experiment, "--out", tmp_path / "run", "--quiet"], capsys)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1, err
    assert "preprocess.sampling_rate 50 Hz" in lines[0] and "on_bad_file" not in lines[0]


def test_cli_predict_manifest_and_one_record_with_explanations(
    wfdb_run: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest, run = wfdb_run
    code, err = cli(["predict", run, "--data", manifest, "--out", tmp_path / "all.csv", "--explain"], capsys)
    assert code == 0, err
    everything = pd.read_csv(tmp_path / "all.csv", keep_default_na=False)
    assert len(everything) == 30 and (everything["note"] == "").all()
    assert all(Path(p).is_file() and Path(p).read_bytes().startswith(b"\x89PNG") for p in everything["explanation"])
    assert len({Path(p).name for p in everything["explanation"]}) == 30

    record = manifest.parent / "records" / "ecg00007.hea"
    code, err = cli(["predict", run, "--data", record, "--out", tmp_path / "one.csv", "--explain"], capsys)
    assert code == 0, err
    one = pd.read_csv(tmp_path / "one.csv", keep_default_na=False)
    assert len(one) == 1 and Path(one["explanation"].iloc[0]).is_file()
    same = everything.loc[everything["id"] == str(record.resolve()), "prediction"]
    assert float(one["prediction"].iloc[0]) == pytest.approx(float(same.iloc[0]), rel=1e-5)


def test_cli_evaluate_on_another_manifest(
    wfdb_run: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, run = wfdb_run
    other = write_ecg_dataset(tmp_path / "site_b", 10, task="heart_rate", fmt="wfdb", fs=100, duration=2, seed=7)
    code, err = cli(["evaluate", run, "--data", other, "--out", tmp_path / "external", "--bootstrap", 10], capsys)
    assert code == 0, err
    metrics = json.loads((tmp_path / "external" / "metrics.json").read_text())
    assert metrics["data"]["n_rows_used"] == 10 and (tmp_path / "external" / "report.html").is_file()
    predictions = load_bundle(run).predict(other)["prediction"].astype(float).to_numpy()
    truth = pd.read_csv(other)["heart_rate"].to_numpy()
    assert metrics["test"]["mae"]["value"] == pytest.approx(float(np.mean(np.abs(predictions - truth))), rel=1e-4)


def test_dicom_rhythm_classification_from_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    manifest = write_ecg_dataset(tmp_path / "dicom", 30, task="rhythm", fmt="dicom", fs=100, duration=2, seed=3)
    config = signal_config(
        "manifest.csv", "binary", "rhythm", {"arch": "cnn1d", "channels": [8, 8]}, positive_label="irregular"
    )
    experiment = manifest.parent / "cnn1d.yaml"
    experiment.write_text(yaml.safe_dump(config))
    code, err = cli(["train", experiment, "--out", tmp_path / "run", "--quiet"], capsys)
    assert code == 0, err
    run = tmp_path / "run"
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["test"]["auroc"]["value"] is not None and metrics["data"]["classes"] == ["sinus", "irregular"]
    report = (run / "report.html").read_text()
    assert "Attribution over time" in report and "data:image/png;base64" in report
    n_test = int((pd.read_csv(local_ids_path(run))["split"] == "test").sum())
    assert len(list((run / "traces").glob("case_*.png"))) == n_test
    bundle = load_bundle(run)
    predictions = bundle.predict(manifest)
    probability = predictions["probability_irregular"]
    assert len(predictions) == 30 and probability.between(0, 1).all()
    expected = np.where(probability >= bundle.threshold, "irregular", "sinus")
    assert (predictions["prediction"] == expected).all()


def test_npy_records_need_the_sampling_rate_and_train_cnn_lstm(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = write_ecg_dataset(tmp_path / "npy", 30, task="rhythm", fmt="npy", fs=100, duration=2, seed=4)
    arch = {"arch": "cnn_lstm", "channels": [8], "units": 8, "pool": 2}
    config = signal_config("manifest.csv", "binary", "rhythm", arch, positive_label="irregular")
    experiment = manifest.parent / "no_rate.yaml"
    experiment.write_text(yaml.safe_dump(config))
    code, err = cli(["train", experiment, "--out", tmp_path / "no_rate", "--quiet"], capsys)
    assert code == 2 and "sampling rate" in err and "ecg00001.npy" in err and len(err.strip().splitlines()) == 1

    config["data"]["sampling_rate"] = 100
    result = Experiment.from_dict(config, base_dir=manifest.parent).run(out=tmp_path / "run")
    assert result.metrics["test"]["auroc"]["value"] is not None
    bundle = load_bundle(tmp_path / "run")
    all_records = bundle.predict(manifest)
    one = bundle.predict(manifest.parent / "records" / "ecg00003.npy")
    assert len(one) == 1 and one["note"].iloc[0] == ""
    assert one["probability_irregular"].iloc[0] == pytest.approx(all_records["probability_irregular"].iloc[2], rel=1e-5)
