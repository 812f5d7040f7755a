"""The modality contract: every registered data kind runs the same path — train a tiny model → bundle → load →
predict → explain → evaluate on external data → export — so registering a modality tests it.

Each modality supplies its own small synthetic data set (``Modality.example``); nothing here names a kind.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from meddl import Experiment, load_bundle
from meddl.errors import MedDLError
from meddl.export import export_onnx
from meddl.modalities import get_modality, kinds
from meddl.run import evaluate_external


@pytest.fixture(scope="module", params=kinds())
def trained(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    kind = request.param
    folder = tmp_path_factory.mktemp(f"contract-{kind}")
    example = get_modality(kind).example(folder / "data")
    result = Experiment.from_dict(example.experiment, base_dir=folder / "data").run(out=folder / "run")
    return {"kind": kind, "folder": folder, "example": example, "result": result}


def test_training_writes_a_self_describing_bundle(trained: dict[str, Any]) -> None:
    result, kind = trained["result"], trained["kind"]
    metrics = json.loads((result.path / "metrics.json").read_text())
    assert metrics["test"], "test metrics are written"
    assert all("ci" in entry for entry in metrics["test"].values() if isinstance(entry, dict))
    info = json.loads((result.path / "model.json").read_text())
    assert info["kind"] == kind
    assert info["data_arguments"] and info["input_spec"]["shape"]
    for name in ("report.html", "model_card.md", "splits.csv", "manifest.json", "run.json"):
        assert (result.path / name).stat().st_size > 0, name


def test_loaded_bundle_predicts_every_case_with_the_threshold_applied_once(trained: dict[str, Any]) -> None:
    bundle = load_bundle(trained["result"].path)
    assert bundle.kind == trained["kind"] and type(bundle.modality) is get_modality(trained["kind"])
    predictions = bundle.predict(trained["example"].predict)
    cases = bundle.read(trained["example"].predict)
    assert len(predictions) == len(cases.ids) > 0
    assert "note" in predictions.columns and "prediction" in predictions.columns
    scored = predictions["note"].fillna("") == ""
    assert scored.any()
    if bundle.task == "binary":
        probability = predictions.loc[scored, f"probability_{bundle.classes[1]}"].to_numpy(dtype=float)
        expected = np.where(probability >= bundle.threshold, bundle.classes[1], bundle.classes[0])
        assert (predictions.loc[scored, "prediction"].to_numpy() == expected).all()


def test_explain_writes_an_explanation(trained: dict[str, Any], tmp_path: Path) -> None:
    bundle = load_bundle(trained["result"].path)
    folder = bundle.modality.explanation_files
    predictions = bundle.predict(
        trained["example"].explain, explain=True, explain_dir=tmp_path / "explained" if folder else None
    )
    column = bundle.modality.explanation_column
    assert (predictions[column].astype(str) != "").any()
    out = tmp_path / f"explained-by-meddl{bundle.modality.explain_suffix}"
    message = bundle.explain(trained["example"].explain, out)
    assert str(out) in message and out.exists()


def test_external_evaluation_reports_metrics_and_shift(trained: dict[str, Any], tmp_path: Path) -> None:
    result = evaluate_external(trained["result"].path, trained["example"].external, tmp_path / "external")
    assert result.metrics["test"] and result.metrics["bundle_hash"]
    assert result.record["shift"], "every modality measures shift from its training data"
    # the same data as in training: nothing moved far
    assert all(row["score"] < 1.0 for row in result.record["shift"] if row["measure"] != "total variation distance")
    assert (tmp_path / "external" / "report.html").exists()


def test_export_writes_a_checked_onnx_model_or_names_why_not(trained: dict[str, Any], tmp_path: Path) -> None:
    try:
        written = export_onnx(trained["result"].path, tmp_path / "model.onnx")
    except MedDLError as exc:
        assert "ONNX cannot express" in str(exc) and trained["kind"] in str(exc)
        return
    sidecar = json.loads(Path(str(written) + ".json").read_text())
    assert sidecar["input"]["kind"] == trained["kind"]
    assert sidecar["verification"]["max_abs_difference"] <= sidecar["verification"]["tolerance"]


def test_the_model_cards_command_runs_as_printed(trained: dict[str, Any], tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The card's "How to use" command, run from the folder the bundle was trained from, with the example's cases
    in place of the card's sample file name; and no absolute local path anywhere in the card."""
    import shlex

    from meddl.cli import main
    from meddl.report import write_model_card

    folder, result = trained["folder"], trained["result"]
    monkeypatch.chdir(folder)
    record = json.loads((result.path / "run.json").read_text())
    card = write_model_card(record, result.path).read_text()
    assert str(folder) not in card and "/tmp/" not in card, "the card carries a local path"
    line = next(row for row in card.splitlines() if row.startswith("meddl predict "))
    args = shlex.split(line)[1:]
    args[args.index("--data") + 1] = str(trained["example"].predict)
    args[args.index("--out") + 1] = str(tmp_path / "predictions.csv")
    try:
        main(args)
    except SystemExit as exc:
        assert not exc.code, line
    assert (tmp_path / "predictions.csv").stat().st_size > 0
