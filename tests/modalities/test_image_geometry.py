"""Image size and spacing the experiment leaves out are taken from the images and written down."""

from __future__ import annotations

from pathlib import Path

import yaml

from meddl import Experiment, load_bundle
from meddl.data.phantoms import write_phantom_dataset


def _experiment(manifest: Path, preprocess: dict) -> dict:
    return {
        "name": "geometry",
        "task": "binary",
        "data": {"kind": "image", "path": str(manifest), "positive_label": "lesion"},
        "preprocess": preprocess,
        "model": {"arch": "small_cnn", "channels": [8, 16]},
        "train": {"epochs": 1, "batch_size": 16, "seed": 0, "progress": False},
        "evaluate": {"bootstrap": 10},
    }


def test_size_left_out_is_the_images_median_size_and_is_recorded(tmp_path: Path) -> None:
    manifest = write_phantom_dataset(tmp_path / "data", 40, size=48, fmt="png", seed=1)
    result = Experiment.from_dict(_experiment(manifest, {"normalize": "zscore"})).run(out=tmp_path / "run")
    derived = result.metrics["derived_defaults"]
    assert derived["preprocess.size"]["value"] == [48, 48] and "median size" in derived["preprocess.size"]["why"]
    assert "preprocess.spacing" not in derived, "every image has the same spacing: nothing to resample"
    assert yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())["preprocess"]["size"] == [48, 48]
    bundle = load_bundle(tmp_path / "run")
    assert bundle.info["input_spec"]["shape"][1:] == [48, 48]
    first = sorted((manifest.parent / "images").glob("*.png"))[0]
    assert tuple(bundle.modality.tensor(first).shape[1:]) == (48, 48)


def test_size_given_is_kept(tmp_path: Path) -> None:
    manifest = write_phantom_dataset(tmp_path / "data", 40, size=48, fmt="png", seed=1)
    result = Experiment.from_dict(_experiment(manifest, {"size": [32, 32]})).run(out=tmp_path / "run")
    assert "preprocess.size" not in (result.metrics.get("derived_defaults") or {})
    assert load_bundle(tmp_path / "run").info["input_spec"]["shape"][1:] == [32, 32]
