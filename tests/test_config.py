"""Tests of meddl.config: the experiment file, its defaults and errors that name the field."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
import yaml

from meddl.config import ExperimentConfig, load_config, parse_config
from meddl.errors import MedDLError

PIMA_YAML = """\
name: pima
task: binary
data:
  kind: tabular
  path: pima.csv
  target: diabetes
  positive_label: pos
  patient_id: null
preprocess:
  missing: median
  missing_indicators: true
  scale: standard
  imbalance: class_weight
model:
  arch: mlp
train:
  epochs: 100
  early_stopping: {monitor: auroc, patience: 10}
  seed: 0
evaluate:
  bootstrap: 1000
  baselines: [logistic_regression, gradient_boosting]
"""


@pytest.fixture
def experiment_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "exp"
    folder.mkdir()
    (folder / "pima.yaml").write_text(PIMA_YAML, encoding="utf-8")
    (folder / "pima.csv").write_text("glucose,bmi,diabetes\n148,33.6,pos\n85,26.6,neg\n", encoding="utf-8")
    return folder


def raw_pima() -> dict:
    return yaml.safe_load(PIMA_YAML)


def error_of(raw: dict) -> str:
    with pytest.raises(MedDLError) as exc:
        parse_config(raw, source="exp.yaml")
    return str(exc.value)


def test_example_loads_with_defaults(experiment_dir: Path):
    config, base = load_config(experiment_dir / "pima.yaml")
    assert base == experiment_dir.resolve()
    assert config.name == "pima" and config.task == "binary"
    assert config.data.path == (experiment_dir / "pima.csv").resolve()
    assert config.data.path.exists()
    assert config.data.target == "diabetes" and config.data.positive_label == "pos"
    assert config.data.patient_id is None
    assert config.preprocess.imbalance == "class_weight"
    assert config.model.arch == "mlp" and config.model.params == {}
    assert config.train.epochs == 100 and config.train.early_stopping.patience == 10
    assert config.monitor == "auroc"
    assert config.baselines == ["logistic_regression", "gradient_boosting"]
    # defaults for what the file leaves out
    assert (config.data.split.train, config.data.split.validation, config.data.split.test) == (0.7, 0.15, 0.15)
    assert config.data.split.method == "stratified"
    assert "?" in config.data.na_values
    assert config.train.batch_size == 64 and config.train.device == "auto"
    assert config.evaluate.threshold == "youden" and config.evaluate.confidence_level == 0.95
    assert config.explain.top_k == 5


def test_data_path_is_relative_to_the_yaml_not_the_working_directory(
    experiment_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    config, _ = load_config(Path("..") / "exp" / "pima.yaml")
    assert config.data.path == (experiment_dir / "pima.csv").resolve()


def test_absolute_data_path_is_kept(experiment_dir: Path, tmp_path: Path):
    raw = raw_pima()
    raw["data"]["path"] = str(tmp_path / "other.csv")
    (experiment_dir / "abs.yaml").write_text(yaml.safe_dump(raw), encoding="utf-8")
    config, _ = load_config(experiment_dir / "abs.yaml")
    assert config.data.path == tmp_path / "other.csv"


@pytest.mark.parametrize(
    ("section", "key", "dotted"),
    [
        (("preprocess",), "scael", "preprocess.scael"),
        (("train", "early_stopping"), "patiense", "train.early_stopping.patiense"),
        (("data",), "taget", "data.taget"),
        ((), "trian", "trian"),
        (("evaluate",), "bootstraps", "evaluate.bootstraps"),
    ],
)
def test_unknown_fields_name_the_dotted_field(section, key, dotted):
    raw = raw_pima()
    node = raw
    for part in section:
        node = node[part]
    node[key] = 1
    message = error_of(raw)
    assert message.startswith("exp.yaml: ")
    assert f"{dotted}: unknown field" in message


def test_unknown_split_field():
    raw = raw_pima()
    raw["data"]["split"] = {"tran": 0.7}
    assert "data.split.tran: unknown field" in error_of(raw)


@pytest.mark.parametrize(
    ("path", "value", "dotted"),
    [
        (("preprocess", "scale"), "zscore", "preprocess.scale"),
        (("preprocess", "missing"), "zero", "preprocess.missing"),
        (("task",), "ranking", "task"),
        (("train", "precision"), "fp8", "train.precision"),
        (("train", "device"), "gpu", "train.device"),
        (("train", "num_workers"), "many", "train.num_workers"),
        (("train", "num_workers"), -1, "train.num_workers"),
    ],
)
def test_wrong_enum_values_name_field_and_value(path, value, dotted):
    raw = raw_pima()
    node = raw
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    message = error_of(raw)
    assert f"{dotted}:" in message
    assert repr(value) in message


def test_fractions_must_sum_to_one():
    raw = raw_pima()
    raw["data"]["split"] = {"train": 0.6, "validation": 0.15, "test": 0.15}
    message = error_of(raw)
    assert "data.split" in message and "must be 1.0" in message and "0.9" in message


def test_temporal_split_needs_a_date_column():
    raw = raw_pima()
    raw["data"]["split"] = {"method": "temporal"}
    assert "date_column" in error_of(raw)
    raw["data"]["split"]["date_column"] = "visit_date"
    assert parse_config(raw).data.split.date_column == "visit_date"


def test_regression_refuses_imbalance_handling():
    raw = raw_pima()
    raw["task"] = "regression"
    raw["data"]["positive_label"] = None
    message = error_of(raw)
    assert "preprocess.imbalance" in message and "'class_weight'" in message
    raw["preprocess"]["imbalance"] = "none"
    # the classification baseline the file still names is refused now, not after training
    assert "evaluate.baselines: 'logistic_regression' does not fit a regression task" in error_of(raw)
    raw["evaluate"].pop("baselines")
    raw["train"]["early_stopping"].pop("monitor")  # 'auroc' is no regression metric either
    assert parse_config(raw).baselines == ["linear_regression", "gradient_boosting"]


def test_every_cross_field_problem_is_reported_at_once():
    raw = raw_pima()
    raw["task"] = "regression"
    raw["train"] = {"early_stopping": {"monitor": "auroc"}}
    message = error_of(raw)
    for field in (
        "train.early_stopping.monitor:",
        "evaluate.baselines:",
        "preprocess.imbalance:",
        "data.positive_label:",
    ):
        assert field in message, (field, message)
    assert "(top level)" not in message


def test_positive_label_is_for_binary_tasks_only():
    raw = raw_pima()
    raw["task"] = "multiclass"
    assert "data.positive_label" in error_of(raw)


def test_missing_required_field():
    raw = raw_pima()
    del raw["data"]["target"]
    assert "data.target: required field is missing" in error_of(raw)


def test_model_extra_fields_are_params():
    raw = raw_pima()
    raw["model"] = {"arch": "ft_transformer", "d_token": 16, "n_heads": 2}
    config = parse_config(raw)
    assert config.model.arch == "ft_transformer"
    assert config.model.params == {"d_token": 16, "n_heads": 2}


def test_default_monitor_per_task():
    raw = raw_pima()
    raw["train"]["early_stopping"].pop("monitor")
    assert parse_config(raw).monitor == "auroc"
    raw["task"], raw["data"]["positive_label"] = "multiclass", None
    assert parse_config(raw).monitor == "auroc_macro"


def test_to_yaml_round_trips():
    config = parse_config(raw_pima())
    again = ExperimentConfig.model_validate(yaml.safe_load(config.to_yaml()))
    assert again == config


def test_invalid_yaml_reports_the_line(tmp_path: Path):
    path = tmp_path / "broken.yaml"
    path.write_text("name: pima\ndata:\n  path: a.csv\n  target: [unclosed\n", encoding="utf-8")
    with pytest.raises(MedDLError, match=r"broken.yaml: not valid YAML \(line \d+, column \d+\)"):
        load_config(path)
    path.write_text("name: pima\ndata:\n  path: a.csv\n   target: y\n", encoding="utf-8")
    with pytest.raises(MedDLError, match=r"not valid YAML \(line 4, column"):
        load_config(path)


@pytest.mark.parametrize("content", ["", "# only a comment\n"])
def test_empty_file(tmp_path: Path, content: str):
    path = tmp_path / "empty.yaml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(MedDLError, match=r"empty.yaml: the experiment file is empty"):
        load_config(path)


@pytest.mark.parametrize(("content", "kind"), [("- a\n- b\n", "list"), ("just text\n", "str")])
def test_non_mapping(tmp_path: Path, content: str, kind: str):
    path = tmp_path / "list.yaml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(MedDLError, match=f"expected a mapping of sections .* got {kind}"):
        load_config(path)


def test_wrong_extension(tmp_path: Path):
    path = tmp_path / "pima.json"
    path.write_text(PIMA_YAML, encoding="utf-8")
    with pytest.raises(MedDLError, match=r"pima.json: an experiment file must be .yaml or .yml, got '.json'"):
        load_config(path)


def test_yml_extension_is_accepted(experiment_dir: Path):
    (experiment_dir / "pima.yml").write_text(PIMA_YAML, encoding="utf-8")
    assert load_config(experiment_dir / "pima.yml")[0].name == "pima"


def test_missing_file(tmp_path: Path):
    with pytest.raises(MedDLError, match=r"experiment file not found: .*absent.yaml"):
        load_config(tmp_path / "absent.yaml")


def test_yes_as_positive_label_matches_a_yes_no_column(tmp_path: Path):
    from meddl.data import prepare_table

    raw = raw_pima()
    raw["data"]["positive_label"] = "PLACEHOLDER"
    text = yaml.safe_dump(raw).replace("PLACEHOLDER", "yes")
    path = tmp_path / "exp.yaml"
    path.write_text(text, encoding="utf-8")
    config, _ = load_config(path)
    frame = pd.DataFrame({"glucose": [148.0, 85.0, 183.0], "diabetes": ["yes", "no", "yes"]}, index=[2, 3, 4])
    prepared = prepare_table(
        frame, task="binary", target="diabetes", source="pima.csv", positive_label=config.data.positive_label
    )
    assert prepared.target.tolist() == [1, 0, 1]


def test_new_kinds_validate_their_own_sections() -> None:
    from meddl.modalities.sections.ehr import EHRDataConfig
    from meddl.modalities.sections.sequence import SequencePreprocessConfig

    config = parse_config(
        {
            "task": "binary",
            "data": {"kind": "sequence", "path": "seqs.fa"},
            "preprocess": {"length": 120, "encoding": "kmer", "k": 4},
        }
    )
    assert isinstance(config.preprocess, SequencePreprocessConfig) and config.preprocess.k == 4
    ehr = parse_config(
        {
            "task": "multilabel",
            "data": {"kind": "ehr", "path": "e.duckdb", "cohort": {"outcome": "next_visit_diagnoses"}},
        }
    )
    assert isinstance(ehr.data, EHRDataConfig)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (
            {"task": "binary", "data": {"kind": "sequence", "path": "s.fa"}, "preprocess": {"windo": 3}},
            "preprocess.windo",
        ),
        (
            {
                "task": "binary",
                "data": {"kind": "ehr", "path": "e.duckdb", "cohort": {"outcome": "next_visit_diagnoses"}},
            },
            "set task: multilabel",
        ),
        (
            {"task": "binary", "data": {"kind": "ehr", "path": "e.duckdb", "cohort": {"outcom": "mortality"}}},
            "data.cohort.outcom",
        ),
        (
            {"task": "multilabel", "data": {"kind": "signal", "path": "m.csv"}},
            "task multilabel is not available for data.kind 'signal'; use binary, multiclass or regression",
        ),
        (
            {"task": "binary", "data": {"kind": "expression", "path": "x.csv", "labels": "y.csv", "horizon": 5}},
            "survival_time",
        ),
    ],
)
def test_new_kinds_errors_name_the_field(raw: dict, message: str) -> None:
    with pytest.raises(MedDLError, match=re.escape(message)):
        parse_config(raw)
