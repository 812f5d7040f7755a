"""What a newcomer trips on first: a config mistake answered at once and in full, kind aliases, plain values in
notes and 422 texts, validation metrics in the target's units."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml


def test_a_config_mistake_is_reported_before_torch_is_imported(tmp_path: Path) -> None:
    bad = {"task": "regression", "data": {"path": "x.csv", "target": "y"}, "train": {"epoch": 3}}
    (tmp_path / "exp.yaml").write_text(yaml.safe_dump(bad))
    probe = (
        "import sys\nfrom meddl.cli import main\ntry:\n    main(['train', 'exp.yaml'])\nexcept SystemExit as e:\n"
        "    print('exit', e.code, 'torch' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert "train.epoch: unknown field" in done.stderr
    assert done.stdout.split() == ["exit", "2", "False"], done.stdout  # refused, and torch was never imported


def test_init_and_data_kind_take_the_names_people_use(tmp_path: Path) -> None:
    from meddl.config import parse_config
    from meddl.modalities.kinds import template

    assert template("tables") == template("tabular")
    config = parse_config({"data": {"kind": "tables", "path": "x.csv", "target": "y"}})
    assert config.data.kind == "tabular"


def test_unseen_level_notes_read_as_a_person_writes_them(tmp_path: Path) -> None:
    import pandas as pd

    from meddl import Experiment, load_bundle
    from meddl.data import synthetic_clinical_table
    from meddl.io import write_table
    from tests.conftest import fast_config

    frame = synthetic_clinical_table(200, seed=1)
    frame["stage"] = (frame.index % 2 + 1).astype(float)  # a categorical column of numbers: 1.0 and 2.0
    csv = write_table(frame, tmp_path / "t.csv")
    config = fast_config(csv)
    config["data"]["column_types"] = {"stage": "categorical"}
    Experiment.from_dict(config).run(out=tmp_path / "run")
    new = frame.head(1).copy()
    new["stage"] = 3.0
    note = load_bundle(tmp_path / "run").predict(pd.DataFrame(new))["note"].iloc[0]
    assert "stage=3.0 not seen in training" in note and "np." not in note


def test_validation_rmse_is_in_the_targets_units(tmp_path: Path) -> None:
    from meddl import Experiment
    from meddl.data import synthetic_clinical_table
    from meddl.io import write_table
    from tests.conftest import fast_config

    frame = synthetic_clinical_table(300, seed=2)
    frame["glucose"] = frame["glucose"] * 10  # a target far from unit scale
    config = fast_config(write_table(frame, tmp_path / "t.csv"))
    config.update(task="regression")
    config["data"] = {**config["data"], "target": "glucose", "positive_label": None}
    config["preprocess"] = {**config.get("preprocess", {}), "imbalance": "none"}
    config["train"] = {**config["train"], "early_stopping": {"monitor": "rmse"}}
    config["evaluate"] = {"bootstrap": 10}
    result = Experiment.from_dict(config).run(out=tmp_path / "run")
    validation, test = result.metrics["training"]["best_score"], result.metrics["test"]["rmse"]["value"]
    assert 0.3 < validation / test < 3.0, (validation, test)  # standardised units would be ~100× smaller


def test_training_progress_reaches_a_log_file(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    from meddl import Experiment
    from meddl.modalities import get_modality

    example = get_modality("tabular").example(tmp_path / "data")
    experiment = {**example.experiment, "train": {"epochs": 3, "seed": 0, "progress": True}}
    Experiment.from_dict(experiment, base_dir=tmp_path / "data").run(out=tmp_path / "run")
    err = capsys.readouterr().err  # not a terminal: plain lines, not a bar
    assert "epoch 1/3" in err and "epoch 3/3" in err and "train loss" in err


def test_the_tabular_template_lists_every_field_it_can_take() -> None:
    from meddl.modalities.kinds import template
    from meddl.modalities.sections.tabular import DataConfig, PreprocessConfig
    from meddl.sections import EarlyStoppingConfig, EvaluateConfig, ExplainConfig, SplitConfig, TrainConfig

    text = template("tabular")
    sections = (DataConfig, PreprocessConfig, SplitConfig, TrainConfig, EarlyStoppingConfig, EvaluateConfig)
    missing = [
        f"{section.__name__}.{name}"
        for section in (*sections, ExplainConfig)
        for name in section.model_fields
        if f"{name}:" not in text and name != "kind"
    ]
    assert not missing, missing
