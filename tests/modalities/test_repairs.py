"""Every change MedDL makes to the data is counted in the run record and the report, and noted per case at
prediction: grey/RGB images converted to one declared rule, alpha channels dropped, NaN signal samples
interpolated."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from meddl import Experiment, load_bundle


@pytest.mark.slow
def test_mixed_grey_rgb_and_rgba_images_are_converted_counted_and_noted(tmp_path: Path) -> None:
    from meddl.data.phantoms import write_phantom_dataset

    manifest = write_phantom_dataset(tmp_path / "scans", 40, spatial_dims=2, size=24, fmt="png", seed=0)
    paths = [manifest.parent / p for p in pd.read_csv(manifest)["path"]]
    for i, path in enumerate(paths):
        if i % 4 == 0:
            Image.open(path).convert("RGB").save(path)
        elif i % 9 == 0:
            Image.open(path).convert("RGBA").save(path)
    experiment = {
        "name": "mixed",
        "task": "binary",
        "data": {"kind": "image", "path": str(manifest), "target": "label", "positive_label": "lesion"},
        "preprocess": {"size": [24, 24]},
        "model": {"arch": "small_cnn"},
        "train": {"epochs": 1, "progress": False},
        "evaluate": {"bootstrap": 0},
    }
    result = Experiment.from_dict(experiment).run(tmp_path / "run")
    repairs = result.record["data"]["repairs"]
    n_rgb, n_rgba = sum(i % 4 == 0 for i in range(40)), sum(i % 9 == 0 and i % 4 != 0 for i in range(40))
    assert repairs == {"alpha (transparency) channels dropped": n_rgba, "RGB images converted to grey": n_rgb + n_rgba}
    assert result.record["derived_defaults"]["preprocess.channels"]["value"] == 1
    assert "Changes made to the data" in (tmp_path / "run" / "report.html").read_text()

    Image.open(paths[1]).convert("RGBA").save(tmp_path / "sent.png")  # an RGBA upload to a grey model
    predictions = load_bundle(tmp_path / "run").predict(tmp_path / "sent.png")
    assert predictions["note"].tolist() == ["alpha channel dropped; converted RGB → grey"]
    assert predictions["probability_lesion"].notna().all()


@pytest.mark.slow
def test_nan_samples_in_wfdb_records_are_counted(tmp_path: Path) -> None:
    import wfdb

    from meddl.data.ecg import write_ecg_dataset

    manifest = write_ecg_dataset(tmp_path / "ecg", 24, task="heart_rate", fmt="wfdb", fs=100, duration=4, seed=0)
    table = pd.read_csv(manifest)
    first = manifest.parent / Path(table["path"][0]).with_suffix("")
    record = wfdb.rdrecord(str(first))
    signal = record.p_signal.copy()
    signal[10:17, 0] = np.nan
    wfdb.wrsamp(
        first.name,
        fs=record.fs,
        units=record.units,
        sig_name=record.sig_name,
        p_signal=signal,
        fmt=record.fmt,
        write_dir=str(first.parent),
    )
    experiment = {
        "name": "gaps",
        "task": "regression",
        "data": {"kind": "signal", "path": str(manifest), "target": "heart_rate"},
        "train": {"epochs": 1, "progress": False},
        "evaluate": {"bootstrap": 0},
    }
    result = Experiment.from_dict(experiment).run(tmp_path / "run")
    assert result.record["data"]["repairs"] == {
        "missing (NaN) samples interpolated": 7,
        "records with interpolated samples": 1,
    }
    assert (
        json.loads((tmp_path / "run" / "metrics.json").read_text())["data"]["repairs"][
            "records with interpolated samples"
        ]
        == 1
    )
    predictions = load_bundle(tmp_path / "run").predict(first.with_suffix(".hea"))
    assert predictions["note"].tolist() == ["7 missing (NaN) sample(s) interpolated"]
