"""The one training run: settings the experiment leaves out are taken from the data and written down."""

from __future__ import annotations

from pathlib import Path

import yaml

from meddl import Experiment
from meddl.modalities import get_modality


def test_batch_size_left_out_is_taken_from_the_data_and_recorded(tmp_path: Path) -> None:
    example = get_modality("tabular").example(tmp_path / "data")
    experiment = {**example.experiment, "train": {"epochs": 2, "seed": 0, "progress": False}}
    result = Experiment.from_dict(experiment, base_dir=tmp_path / "data").run(out=tmp_path / "run")
    derived = result.metrics["derived_defaults"]["train.batch_size"]
    n_train = result.metrics["data"]["splits"]["train"]
    assert derived["value"] == 16 and f"{n_train} training samples" in derived["why"]
    assert yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())["train"]["batch_size"] == 16
    assert any("train.batch_size: 16 taken from the data" in note for note in result.metrics["data"]["notes"])


def test_batch_size_given_in_the_file_is_kept(tmp_path: Path) -> None:
    example = get_modality("tabular").example(tmp_path / "data")
    result = Experiment.from_dict(example.experiment, base_dir=tmp_path / "data").run(out=tmp_path / "run")
    assert "derived_defaults" not in result.metrics
    assert yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())["train"]["batch_size"] == 32


def test_a_k_fold_estimate_leaves_the_bundle_as_the_run_without_it(tmp_path: Path) -> None:
    example = get_modality("tabular").example(tmp_path / "data")
    Experiment.from_dict(example.experiment, base_dir=tmp_path / "data").run(out=tmp_path / "plain")
    with_folds = {**example.experiment, "data": {**example.experiment["data"], "split": {"folds": 3}}}
    folded = Experiment.from_dict(with_folds, base_dir=tmp_path / "data").run(out=tmp_path / "folded")
    assert len(folded.metrics["cross_validation"]["per_fold"]) == 3
    # the preprocessing and weights kept are those of the run's own training split, not the last fold's
    assert (tmp_path / "plain" / "preprocess.json").read_text() == (tmp_path / "folded" / "preprocess.json").read_text()
    assert (tmp_path / "plain" / "model.safetensors").read_bytes() == (
        tmp_path / "folded" / "model.safetensors"
    ).read_bytes()
