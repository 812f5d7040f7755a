"""The tabular pipeline end to end through the Python API."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from meddl import Experiment, load_bundle
from meddl.io import read_table, write_table
from meddl.preprocess import TabularPreprocessor
from meddl.run.privacy import local_ids_path
from tests.conftest import fast_config


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from meddl.data import synthetic_clinical_table

    folder = tmp_path_factory.mktemp("run")
    csv = write_table(synthetic_clinical_table(300, seed=3, visits_per_patient=2), folder / "clinic.csv")
    Experiment.from_dict(fast_config(csv)).run(out=folder / "bundle")
    return csv, folder / "bundle"


def test_run_folder_is_a_complete_bundle(trained: tuple[Path, Path]) -> None:
    _, out = trained
    for name in (
        "config.yaml",
        "model.json",
        "model.safetensors",
        "preprocess.json",
        "metrics.json",
        "model_card.md",
        "report.html",
        "splits.csv",
        "manifest.json",
    ):
        assert (out / name).is_file(), name
    metrics = json.loads((out / "metrics.json").read_text())
    auroc = metrics["test"]["auroc"]
    assert 0.5 < auroc["value"] <= 1.0
    assert auroc["ci"][0] <= auroc["value"] <= auroc["ci"][1]
    assert set(metrics["baselines"]) == {"logistic_regression", "gradient_boosting"}
    assert "value" in metrics["baselines"]["logistic_regression"]["auroc"]
    assert metrics["data"]["n_rows_read"] == 600
    assert 0 < metrics["threshold"] < 1


def test_splits_keep_each_patient_in_one_split_and_point_back_to_file_rows(trained: tuple[Path, Path]) -> None:
    csv, out = trained
    assert list(pd.read_csv(out / "splits.csv").columns) == ["row", "patient_key", "split"]  # no raw id in a bundle
    splits = pd.read_csv(local_ids_path(out))
    assert splits.groupby("patient_id")["split"].nunique().max() == 1
    raw = read_table(csv)
    assert (raw.loc[splits["row"], "patient_id"].to_numpy() == splits["patient_id"].to_numpy()).all()
    assert set(splits["split"]) == {"train", "validation", "test"}


def test_preprocessing_is_fitted_on_the_training_split_only(trained: tuple[Path, Path]) -> None:
    csv, out = trained
    raw = read_table(csv)
    splits = pd.read_csv(out / "splits.csv").set_index("row")
    train_rows = splits.index[splits["split"] == "train"]
    state = TabularPreprocessor.load(out)
    glucose = state.column_profile_["glucose"]
    assert glucose["mean"] == pytest.approx(raw.loc[train_rows, "glucose"].mean(), rel=1e-9)
    assert glucose["mean"] != pytest.approx(raw["glucose"].mean(), rel=1e-9)


def test_bundle_predicts_every_row_with_threshold_labels(trained: tuple[Path, Path]) -> None:
    csv, out = trained
    bundle = load_bundle(out)
    frame = read_table(csv).head(20)
    predictions = bundle.predict(frame, explain=True)
    assert len(predictions) == 20
    assert predictions["row"].tolist() == frame.index.tolist()
    probability = predictions["probability_yes"].to_numpy()
    assert ((probability >= 0) & (probability <= 1)).all()
    expected = np.where(probability >= bundle.threshold, "yes", "no")
    assert (predictions["prediction"].to_numpy() == expected).all()
    assert predictions["top_features"].str.contains(r"\([+-]\d").all()


def test_unseen_category_is_scored_and_flagged(trained: tuple[Path, Path]) -> None:
    csv, out = trained
    bundle = load_bundle(out)
    frame = read_table(csv).head(3).copy()
    frame.loc[frame.index[0], "smoker"] = "vaper"
    predictions = bundle.predict(frame)
    assert np.isfinite(predictions["probability_yes"]).all()
    assert "smoker='vaper' not seen in training" in predictions["note"].iloc[0]
    assert "not seen in training" not in predictions["note"].iloc[1]  # (it may say which values were imputed)


def test_same_seed_same_numbers(trained: tuple[Path, Path], tmp_path: Path) -> None:
    csv, out = trained
    Experiment.from_dict(fast_config(csv)).run(out=tmp_path / "again")
    first = json.loads((out / "metrics.json").read_text())["test"]
    second = json.loads((tmp_path / "again" / "metrics.json").read_text())["test"]
    assert first == second


@pytest.mark.parametrize(
    ("task", "target", "extra"),
    [
        ("multiclass", "smoker", {}),
        ("regression", "glucose", {}),
    ],
)
def test_multiclass_and_regression_heads(
    clinical_csv: Path, tmp_path: Path, task: str, target: str, extra: dict
) -> None:
    config = fast_config(clinical_csv, task=task)
    config["data"]["target"] = target
    config["data"]["positive_label"] = None
    config["model"] = {"arch": "ft_transformer", "d_token": 16, "n_blocks": 1, "n_heads": 2}
    result = Experiment.from_dict(config).run(out=tmp_path / task)
    metrics = result.metrics
    raw = read_table(clinical_csv)
    assert metrics["data"]["dropped"]["missing target"] == int(raw[target].isna().sum()) > 0
    if task == "multiclass":
        assert metrics["test"]["auroc_macro"]["value"] is not None
        predictions = result.bundle().predict(raw.head(5))
        assert {"probability_current", "probability_former", "probability_never"} <= set(predictions.columns)
    else:
        assert {"mae", "rmse", "r2"} <= set(metrics["test"])
        assert set(metrics["baselines"]) == {"linear_regression", "gradient_boosting"}
        predictions = result.bundle().predict(raw.head(5))
        assert predictions["prediction"].between(30, 300).all()  # back on the glucose scale, not standardised


@pytest.mark.parametrize("imbalance", ["oversample", "undersample", "smote"])
def test_resampling_methods_run(clinical_csv: Path, tmp_path: Path, imbalance: str) -> None:
    config = fast_config(clinical_csv, preprocess={"imbalance": imbalance})
    config["train"]["epochs"] = 2
    result = Experiment.from_dict(config).run(out=tmp_path / imbalance)
    assert result.metrics["test"]["auroc"]["value"] is not None


def test_missing_drop_counts_rows_and_marks_unscorable_predictions(clinical_csv: Path, tmp_path: Path) -> None:
    config = fast_config(clinical_csv, preprocess={"missing": "drop", "missing_indicators": False})
    result = Experiment.from_dict(config).run(out=tmp_path / "drop")
    raw = read_table(clinical_csv)
    incomplete = int(raw.drop(columns=["patient_id", "visit_date", "outcome"]).isna().any(axis=1).sum())
    assert result.metrics["data"]["dropped"]["missing predictor values (preprocess.missing: drop)"] == incomplete
    predictions = result.bundle().predict(raw)
    unscored = predictions["probability_yes"].isna()
    assert int(unscored.sum()) == incomplete
    assert predictions.loc[unscored, "note"].str.startswith("not scored: missing").all()


def test_temporal_split_and_cross_validation(clinical_csv: Path, tmp_path: Path) -> None:
    config = fast_config(clinical_csv)
    config["data"]["exclude"] = []
    config["data"]["features"] = ["age", "sex", "bmi", "glucose", "smoker"]
    config["data"]["split"] = {"method": "temporal", "date_column": "visit_date", "folds": 3}
    result = Experiment.from_dict(config).run(out=tmp_path / "temporal")
    cv = result.metrics["cross_validation"]
    assert cv["folds"] == 3 and len(cv["per_fold"]) == 3
    raw = read_table(clinical_csv)
    splits = pd.read_csv(local_ids_path(tmp_path / "temporal"))
    first_visit = pd.to_datetime(raw["visit_date"]).groupby(raw["patient_id"]).min()
    by_split = splits.drop_duplicates("patient_id").set_index("patient_id")["split"]
    latest_train = first_visit[by_split[by_split == "train"].index].max()
    earliest_test = first_visit[by_split[by_split == "test"].index].min()
    assert latest_train <= earliest_test


def test_external_evaluation_reports_shift(trained: tuple[Path, Path], tmp_path: Path) -> None:
    from meddl import evaluate_external

    csv, out = trained
    other = read_table(csv)
    other["age"] = other["age"] + 15  # an older population at the other hospital
    path = write_table(other, tmp_path / "other_site.csv")
    result = evaluate_external(out, path, tmp_path / "external", n_bootstrap=30)
    assert result.record["shift"][0]["column"] == "age"
    assert result.metrics["test"]["auroc"]["value"] is not None
    assert (tmp_path / "external" / "report.html").is_file()
    assert (tmp_path / "external" / "shift.csv").is_file()


def test_subgroup_metrics_per_level_and_quartile(clinical_csv: Path, tmp_path: Path) -> None:
    config = fast_config(clinical_csv, evaluate={"bootstrap": 20, "subgroups": ["sex", "age"], "min_subgroup_size": 5})
    result = Experiment.from_dict(config).run(out=tmp_path / "subgroups")
    groups = result.metrics["subgroups"]
    sexes = [g for g in groups if g["column"] == "sex"]
    ages = [g for g in groups if g["column"] == "age"]
    splits = pd.read_csv(tmp_path / "subgroups" / "splits.csv")
    n_test = int((splits["split"] == "test").sum())
    assert {g["group"] for g in sexes} == {"F", "M"}
    assert sum(g["n"] for g in sexes) == n_test
    assert len(ages) == 4 and sum(g["n"] for g in ages) == n_test
    assert all("auroc" in g["metrics"] for g in sexes)
    assert "Subgroups" in (tmp_path / "subgroups" / "report.html").read_text()


def test_unknown_subgroup_column_fails_before_training(clinical_csv: Path, tmp_path: Path) -> None:
    from meddl.errors import MedDLError

    config = fast_config(clinical_csv, evaluate={"subgroups": ["ethnicity"]})
    with pytest.raises(MedDLError, match=r"evaluate\.subgroups names 'ethnicity'"):
        Experiment.from_dict(config).run(out=tmp_path / "x")
    assert not (tmp_path / "x" / "checkpoints").exists()
