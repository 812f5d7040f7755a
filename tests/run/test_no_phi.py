"""No PHI in any bundle, log or report: identifiers planted in the data never appear in what a run writes or says
(only in the clearly named local ids file beside the run folder)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from meddl.run.privacy import local_ids_path
from tests.conftest import fast_config
from tests.test_cli import run_cli, write_experiment

PLANTED = "MRN-PLANTED-"


def outputs_holding(folder: Path, needle: str) -> list[str]:
    found = []
    for path in sorted(folder.rglob("*")):
        if path.is_file() and needle.encode() in path.read_bytes():
            found.append(str(path.relative_to(folder)))
    return found


@pytest.mark.slow
def test_planted_patient_ids_appear_in_no_bundle_file_or_log(
    clinical_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    table = pd.read_csv(clinical_csv)
    table["patient_id"] = [f"{PLANTED}{i:05d}" for i in pd.factorize(table["patient_id"])[0]]
    table.to_csv(clinical_csv, index=False)
    config = fast_config(clinical_csv)
    config["evaluate"]["subgroups"] = ["sex"]
    experiment = write_experiment(tmp_path, config)
    run = tmp_path / "runs" / "clinic"
    code, out, err = run_cli(["train", experiment, "--out", run], capsys)
    assert code == 0, err
    assert PLANTED not in out + err
    assert outputs_holding(run, PLANTED) == []
    ids = pd.read_csv(local_ids_path(run))
    assert ids["patient_id"].str.startswith(PLANTED).all()  # the local file keeps them, to map keys back
    splits = pd.read_csv(run / "splits.csv")
    assert list(splits.columns) == ["row", "patient_key", "split"]
    assert splits.groupby("patient_key")["split"].nunique().max() == 1  # keys still group a patient's rows

    code, out, err = run_cli(["evaluate", run, "--data", clinical_csv, "--out", tmp_path / "external"], capsys)
    assert code == 0, err
    assert PLANTED not in out + err
    assert outputs_holding(tmp_path / "external", PLANTED) == []


@pytest.mark.slow
def test_planted_patient_ids_of_an_image_data_set_stay_out_of_the_bundle(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from meddl.data.phantoms import write_phantom_dataset

    manifest = write_phantom_dataset(tmp_path / "scans", 40, spatial_dims=2, size=24, fmt="dicom", seed=0)
    table = pd.read_csv(manifest)
    table["patient_id"] = [f"{PLANTED}{i:05d}" for i in pd.factorize(table["patient_id"])[0]]
    table.to_csv(manifest, index=False)
    config = {
        "name": "scans",
        "task": "binary",
        "data": {
            "kind": "image",
            "path": str(manifest),
            "target": "label",
            "positive_label": "lesion",
            "patient_id": "patient_id",
        },
        "preprocess": {"size": [24, 24]},
        "train": {"epochs": 1, "progress": False},
        "evaluate": {"bootstrap": 20},
    }
    experiment = write_experiment(tmp_path, config)
    run = tmp_path / "run"
    code, out, err = run_cli(["train", experiment, "--out", run], capsys)
    assert code == 0, err
    assert PLANTED not in out + err
    assert outputs_holding(run, PLANTED) == []
    assert pd.read_csv(local_ids_path(run))["patient_id"].str.startswith(PLANTED).all()
