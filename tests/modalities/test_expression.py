"""The expression pipeline end to end: a samples × genes matrix and a label table (or a censored survival
outcome with a horizon) in; a bundle with baselines, top genes per class, and predictions matched by gene name."""

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
from meddl.data.expression import gse7390_cohort, synthetic_expression
from meddl.modalities.expression import ExpressionModality
from meddl.run.privacy import local_ids_path

CENSORED = "censored before the horizon (outcome unknown)"


def expression_config(**sections: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "name": "response",
        "task": "binary",
        "data": {
            "kind": "expression",
            "path": "counts.csv",
            "labels": "labels.csv",
            "target": "response",
            "positive_label": "yes",
        },
        "preprocess": {"log": "auto", "select": "variance", "n_genes": 60, "scale": "standard"},
        "model": {"arch": "mlp", "hidden": [16]},
        "train": {"epochs": 10, "batch_size": 32, "learning_rate": 0.003, "seed": 0, "progress": False},
        "evaluate": {"bootstrap": 20},
    }
    for section, values in sections.items():
        config[section] = {**config.get(section, {}), **values}
    return config


def run_cli(args: list[Any], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        main([str(a) for a in args])
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame, list[str]]:
    """200 samples × 120 genes of raw counts; 10 genes separate responders."""
    folder = tmp_path_factory.mktemp("expression")
    counts, labels, informative = synthetic_expression(200, 120, 10, seed=0)
    counts.reset_index().to_csv(folder / "counts.csv", index=False)
    labels.to_csv(folder / "labels.csv", index=False)
    return folder, counts, informative


@pytest.fixture(scope="module")
def mlp_run(cohort: tuple[Path, pd.DataFrame, list[str]]) -> tuple[Path, dict[str, Any]]:
    folder, _, _ = cohort
    result = Experiment.from_dict(expression_config(), base_dir=folder).run(out=folder / "run")
    return folder / "run", result.record


def test_matrix_and_labels_train_with_baselines_and_top_genes(
    cohort: tuple[Path, pd.DataFrame, list[str]], mlp_run: tuple[Path, dict[str, Any]]
) -> None:
    _, _, informative = cohort
    run, record = mlp_run
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["data"]["n_rows_used"] == 200 and metrics["data"]["classes"] == ["no", "yes"]
    assert metrics["test"]["auroc"]["value"] > 0.8 and metrics["test"]["auroc"]["ci"][0] is not None
    assert set(metrics["baselines"]) == {"logistic_regression", "gradient_boosting"}
    for baseline in metrics["baselines"].values():
        assert 0 <= baseline["auroc"]["value"] <= 1
    report = (run / "report.html").read_text()
    assert "Top genes per predicted class" in report and "predicted yes" in report
    ranking = [r["feature"] for r in record["explanations"]["integrated_gradients"]]
    assert len(set(ranking[:10]) & set(informative)) >= 5  # the planted signature drives the predictions


def test_preprocessing_is_fitted_on_the_training_rows_only(
    cohort: tuple[Path, pd.DataFrame, list[str]], mlp_run: tuple[Path, dict[str, Any]]
) -> None:
    _, counts, _ = cohort
    run, _ = mlp_run
    state = json.loads((run / "preprocess.json").read_text())["transform"]
    assert state["log_"] == "log2" and len(state["selected_index"]) == 60
    splits = pd.read_csv(local_ids_path(run))
    train = splits.loc[splits["split"] == "train", "id"]
    logged = np.log2(counts.loc[train].to_numpy(dtype=np.float64) + 1.0)
    selected = np.asarray(state["selected_index"])
    np.testing.assert_allclose(state["mean"], logged[:, selected].mean(axis=0), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(state["variances"], logged.var(axis=0), rtol=1e-4, atol=1e-5)
    everything = np.log2(counts.to_numpy(dtype=np.float64) + 1.0)[:, selected].mean(axis=0)
    assert not np.allclose(state["mean"], everything, rtol=1e-5, atol=1e-5)  # not fitted on every row


def test_predict_matches_genes_by_name(
    cohort: tuple[Path, pd.DataFrame, list[str]], mlp_run: tuple[Path, dict[str, Any]], tmp_path: Path, capsys: Any
) -> None:
    folder, counts, _ = cohort
    run, _ = mlp_run
    expected = load_bundle(run).predict(folder / "counts.csv")
    shuffled = counts.iloc[:40, np.random.default_rng(1).permutation(counts.shape[1])]
    shuffled = shuffled.assign(EXTRA_GENE=7)  # a gene the model never saw is ignored
    shuffled.reset_index().to_csv(tmp_path / "new.csv", index=False)
    code, _, err = run_cli(["predict", run, "--data", tmp_path / "new.csv", "--out", tmp_path / "p.csv"], capsys)
    assert code == 0, err
    predictions = pd.read_csv(tmp_path / "p.csv")
    assert predictions["id"].tolist() == counts.index[:40].tolist()
    np.testing.assert_allclose(predictions["probability_yes"], expected["probability_yes"][:40], atol=1e-6)
    assert (predictions["prediction"] == expected["prediction"][:40]).all()

    # A gene the variance selection dropped may be absent: no prediction depends on it.
    state = json.loads((run / "preprocess.json").read_text())["transform"]
    unused = sorted(set(state["genes_in"]) - {state["genes_in"][i] for i in state["selected_index"]})[0]
    shuffled.drop(columns=[unused]).reset_index().to_csv(tmp_path / "fewer.csv", index=False)
    fewer = load_bundle(run).predict(tmp_path / "fewer.csv")
    np.testing.assert_allclose(fewer["probability_yes"], expected["probability_yes"][:40], atol=1e-6)

    code, _, err = run_cli(
        ["predict", run, "--data", tmp_path / "new.csv", "--out", tmp_path / "e.csv", "--explain"], capsys
    )
    assert code == 0, err
    explained = pd.read_csv(tmp_path / "e.csv")
    assert explained["explanation"].str.count(r"GENE\d{4} \([+-]").eq(5).all()  # five genes with signed values


def test_bad_prediction_matrices_exit_2_naming_the_gene(
    cohort: tuple[Path, pd.DataFrame, list[str]], mlp_run: tuple[Path, dict[str, Any]], tmp_path: Path, capsys: Any
) -> None:
    _, counts, _ = cohort
    run, _ = mlp_run
    state = json.loads((run / "preprocess.json").read_text())["transform"]
    used = state["genes_in"][state["selected_index"][0]]
    table = counts.head(5).reset_index()
    cases = {
        "missing.csv": (table.drop(columns=[used]), [repr(used), "the model uses are missing"]),
        "duplicated.csv": (table.rename(columns={"GENE0002": "GENE0001"}), ["'GENE0001'", "duplicated"]),
        "text.csv": (
            table.astype({"GENE0003": object}).assign(GENE0003=[1, 2, "high", 4, 5]),
            ["'GENE0003'", "'high'", "row 4"],
        ),
    }
    for name, (frame, words) in cases.items():
        frame.to_csv(tmp_path / name, index=False)
        code, _, err = run_cli(["predict", run, "--data", tmp_path / name, "--out", tmp_path / "p.csv"], capsys)
        assert code == 2, (name, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1 and name in lines[0], (name, err)
        for word in words:
            assert word in lines[0], (name, word, lines[0])
        assert not (tmp_path / "p.csv").exists()


def test_duplicated_gene_in_the_training_matrix_exits_2(
    cohort: tuple[Path, pd.DataFrame, list[str]], tmp_path: Path, capsys: Any
) -> None:
    folder, counts, _ = cohort
    counts.reset_index().rename(columns={"GENE0009": "GENE0010"}).to_csv(tmp_path / "counts.csv", index=False)
    config = expression_config(data={"labels": str(folder / "labels.csv")})
    (tmp_path / "exp.yaml").write_text(yaml.safe_dump(config))
    code, _, err = run_cli(["train", tmp_path / "exp.yaml", "--out", tmp_path / "run", "--quiet"], capsys)
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "'GENE0010'" in err and "counts.csv" in err


@pytest.fixture(scope="module")
def survival_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame, int]:
    """GSE7390 with its censored time to distant metastasis; the label is 'event within 5 years'."""
    folder = tmp_path_factory.mktemp("gse7390")
    matrix, labels = gse7390_cohort(5.0)
    matrix.reset_index().to_csv(folder / "expression.csv", index=False)
    table = labels[["sample_id", "time_days", "distant_metastasis"]].copy()
    # A label row for a sample absent from the matrix, censored early: not a sample of this data set.
    table.loc[len(table)] = ["NOT-PROFILED", 100.0, False]
    table.to_csv(folder / "outcome.csv", index=False)
    config = expression_config(
        data={
            "path": "expression.csv",
            "labels": "outcome.csv",
            "target": "metastasis",
            "positive_label": 1,
            "survival_time": "time_days",
            "survival_event": "distant_metastasis",
            "horizon": 5 * 365.25,
        },
        preprocess={"log": "auto", "select": "none"},
        train={"epochs": 3},
        evaluate={"baselines": ["logistic_regression"]},
    )
    config["model"] = {"arch": "ft_transformer", "d_token": 8, "n_blocks": 1}
    Experiment.from_dict(config, base_dir=folder).run(out=folder / "run")
    return folder / "run", labels, int(labels.attrs["censored_before_horizon"])


def test_survival_horizon_excludes_and_counts_censored_samples(
    survival_run: tuple[Path, pd.DataFrame, int],
) -> None:
    run, labels, censored = survival_run
    assert censored > 0
    metrics = json.loads((run / "metrics.json").read_text())
    data = metrics["data"]
    assert data["n_rows_read"] == 198 and data["n_rows_used"] == 198 - censored
    assert data["dropped"] == {CENSORED: censored}  # the unprofiled label row is not a dropped sample
    known = labels.dropna(subset=["metastasis_5y"])
    assert data["classes"] == ["0", "1"]
    splits = pd.read_csv(local_ids_path(run))
    assert set(splits["id"]) == set(known["sample_id"])
    balance = {k: sum(v[c] for v in data["class_balance"].values()) for k, c in (("no", "0"), ("yes", "1"))}
    assert balance == {
        "no": int((known["metastasis_5y"] == "no").sum()),
        "yes": int((known["metastasis_5y"] == "yes").sum()),
    }
    # Each sample keeps its own outcome (labels aligned by sample, not shifted by the table's row numbers).
    prepared = ExpressionModality(load_bundle(run).config).load(lambda message: None)
    expected = known.set_index("sample_id").loc[prepared.sample_ids, "metastasis_5y"].eq("yes").astype(int)
    np.testing.assert_array_equal(prepared.target, expected.to_numpy())
    assert "logistic_regression" in metrics["baselines"]
    assert json.loads((run / "model.json").read_text())["arch"] == "ft_transformer"
    state = json.loads((run / "preprocess.json").read_text())["transform"]
    assert state["log_"] == "none"  # GSE7390 is already log2-scaled
    report = (run / "report.html").read_text()
    assert CENSORED in report and "Top genes per predicted class" in report
