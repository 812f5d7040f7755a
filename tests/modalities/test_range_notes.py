"""predict notes a case far outside what the model saw in training, for every kind that measures its cases: a
table's value (tests/test_cli.py), an image's intensity, a signal's amplitude, an expression profile."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from meddl import Experiment, load_bundle
from meddl.evaluate.shift import describe, far_outside


def test_far_outside_is_beyond_the_5_95_range_by_three_widths() -> None:
    assert far_outside(np.array([-31.0, -29.0, 5.0, 39.0, 41.0]), 0.0, 10.0).tolist() == [
        True,
        False,
        False,
        False,
        True,
    ]
    assert far_outside(np.array([3.0, 13.0]), 3.0, 3.0, centre=3.0).tolist() == [False, True]  # constant training
    described = describe({"x": np.arange(101.0)})["x"]
    assert described["q05"] == 5.0 and described["q95"] == 95.0


@pytest.mark.slow
def test_an_image_far_brighter_than_training_gets_a_note(tmp_path: Path) -> None:
    from meddl.data.phantoms import write_phantom_dataset

    manifest = write_phantom_dataset(tmp_path / "scans", 40, spatial_dims=2, size=24, fmt="nifti", seed=0)
    experiment = {
        "name": "bright",
        "task": "binary",
        "data": {"kind": "image", "path": str(manifest), "target": "label", "positive_label": "lesion"},
        "preprocess": {"size": [24, 24]},
        "train": {"epochs": 1, "progress": False},
        "evaluate": {"bootstrap": 0},
    }
    Experiment.from_dict(experiment).run(tmp_path / "run")
    first = manifest.parent / pd.read_csv(manifest)["path"][0]
    image = nib.load(first)
    data = np.asarray(image.dataobj, dtype=np.float32)
    nib.save(nib.Nifti1Image(data * 1000.0 + 5e4, image.affine), tmp_path / "bright.nii.gz")
    nib.save(nib.Nifti1Image(data, image.affine), tmp_path / "usual.nii.gz")
    bundle = load_bundle(tmp_path / "run")
    notes = bundle.predict([tmp_path / "bright.nii.gz", tmp_path / "usual.nii.gz"])["note"].tolist()
    assert notes[0].startswith("intensity mean ") and "is far outside the training range" in notes[0]
    assert notes[1] == ""


@pytest.mark.slow
def test_a_table_value_far_outside_training_gets_a_note(clinical_csv: Path, tmp_path: Path) -> None:
    from tests.conftest import fast_config

    Experiment.from_dict(fast_config(clinical_csv)).run(tmp_path / "run")
    cases = pd.read_csv(clinical_csv).drop(columns=["outcome"]).head(3)
    cases.loc[0, "glucose"] = 1e6
    predictions = load_bundle(tmp_path / "run").predict(cases)
    assert predictions["note"][0].startswith("glucose=1e+06 is far outside the training range (5th–95th percentile ")
    assert not any("far outside" in note for note in predictions["note"][1:])
    assert predictions["probability_yes"].notna().all()  # noted, still scored
