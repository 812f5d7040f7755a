"""``/models/{name}/predict`` and ``/explain`` for EHR bundles: stays sent as JSON event-store rows."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pytest
from fastapi.testclient import TestClient

from meddl.io.ehr import EventStore
from meddl.io.ehr_schema import TABLE_COLUMNS
from meddl.serve.main import create_app
from meddl.serve.settings import Settings

NAME = "ehr-tiny"


@pytest.fixture(scope="module")
def ehr_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A tiny GRU bundle on a synthetic event store (grid mode, 4-hour bins of the first 24 h) and the store."""
    from meddl import Experiment
    from meddl.data.ehr_synth import synthetic_ehr

    folder = tmp_path_factory.mktemp("ehr")
    synthetic_ehr(folder / "events.duckdb", n_patients=300, seed=0)
    config: dict[str, Any] = {
        "name": NAME,
        "task": "binary",
        "data": {"kind": "ehr", "path": "events.duckdb", "cohort": {"outcome": "mortality", "observation_hours": 24}},
        "preprocess": {"mode": "grid", "bin_hours": 4, "top_labs": 5, "codes_top": 20},
        "model": {"arch": "gru", "hidden": 8},
        "train": {"epochs": 2, "batch_size": 64, "seed": 0, "progress": False},
        "evaluate": {"bootstrap": 10},
    }
    Experiment.from_dict(config, base_dir=folder).run(out=folder / "run")
    return folder / "run", folder / "events.duckdb"


@pytest.fixture(scope="module")
def client(ehr_run: tuple[Path, Path]) -> TestClient:
    return TestClient(create_app(Settings(bundles=[ehr_run[0]], audit_log=None)))


def _json(value: Any) -> Any:
    return value.isoformat() if isinstance(value, dt.date | dt.datetime) else value


@pytest.fixture(scope="module")
def stays(ehr_run: tuple[Path, Path]) -> tuple[dict[str, list[dict[str, Any]]], list[str]]:
    """Every row of two patients of the store as a JSON body, and those patients' ids."""
    con = duckdb.connect(str(ehr_run[1]), read_only=True)
    patients = [r[0] for r in con.execute("SELECT patient_id FROM patients ORDER BY patient_id LIMIT 2").fetchall()]
    body: dict[str, list[dict[str, Any]]] = {}
    for table, columns in TABLE_COLUMNS.items():
        rows = con.execute(
            f"SELECT {', '.join(columns)} FROM {table} WHERE patient_id IN (?, ?) ORDER BY ALL", patients
        ).fetchall()
        body[table] = [{c: _json(v) for c, v in zip(columns, row, strict=True)} for row in rows]
    con.close()
    return body, patients


def test_predict_scores_every_visit_as_the_bundle_scores_a_store(
    client: TestClient, ehr_run: tuple[Path, Path], stays: tuple[dict, list[str]], tmp_path: Path
) -> None:
    from meddl.bundle import load_bundle

    body, patients = stays
    assert body["visits"] and body["measurements"]
    answer = client.post(f"/models/{NAME}/predict", json=body)
    assert answer.status_code == 200, answer.text
    items = answer.json()["predictions"]
    assert [p["case_id"] for p in items] == [v["visit_id"] for v in body["visits"]]
    # The same two patients copied store to store with SQL: the reference the JSON route must reproduce.
    store = EventStore.create(tmp_path / "copy.duckdb")
    store.connection.execute(f"ATTACH '{ehr_run[1]}' AS source (READ_ONLY)")
    for table in TABLE_COLUMNS:
        store.connection.execute(
            f"INSERT INTO {table} SELECT * FROM source.{table} WHERE patient_id IN (?, ?)", patients
        )
    store.close()
    frame = load_bundle(ehr_run[0]).predict(tmp_path / "copy.duckdb")
    column = next(c for c in frame.columns if c.startswith("probability_"))
    expected = dict(zip(frame["id"], frame[column], strict=True))
    np.testing.assert_allclose([p["probability"] for p in items], [expected[p["case_id"]] for p in items], rtol=1e-5)


def test_explain_adds_each_stays_top_contributions(client: TestClient, stays: tuple[dict, list[str]]) -> None:
    body, _ = stays
    answer = client.post(f"/models/{NAME}/explain", json=body)
    assert answer.status_code == 200, answer.text
    for item in answer.json()["predictions"]:
        contributions = item["contributions"]
        assert 1 <= len(contributions) <= 5
        sizes = [abs(c["contribution"]) for c in contributions]
        assert sizes == sorted(sizes, reverse=True)
        assert all(c["hours_from_start"] == 4.0 * c["step"] for c in contributions)


def _broken(body: dict, table: str, index: int, **changes: Any) -> dict:
    copy = {t: [dict(r) for r in rows] for t, rows in body.items()}
    row = copy[table][index]
    for key, value in changes.items():
        if value is None:
            row.pop(key)
        else:
            row[key] = value
    return copy


@pytest.mark.parametrize(
    ("table", "changes", "field", "text"),
    [
        ("visits", {"visit_id": None}, "visits[0].visit_id", "Field required"),
        ("visits", {"admit_time": "yesterday noon"}, "visits[0].admit_time", "datetime"),
        ("visits", {"discharge_time": "1990-01-01T00:00:00"}, "visits[0].discharge_time", "is before admission"),
        ("measurements", {"visit_id": "no-such-visit"}, "measurements[0].visit_id", "not among the request's visits"),
        ("visits", {"patient_id": "nobody"}, "visits[0].patient_id", "not among the request's patients"),
        ("measurements", {"value": "high"}, "measurements[0].value", "number"),
        ("patients", {"height": 180}, "patients[0].height", "Extra inputs are not permitted"),
    ],
)
def test_bad_stays_get_422_naming_the_field(
    client: TestClient, stays: tuple[dict, list[str]], table: str, changes: dict, field: str, text: str
) -> None:
    body, _ = stays
    answer = client.post(f"/models/{NAME}/predict", json=_broken(body, table, 0, **changes))
    assert answer.status_code == 422, answer.text
    detail = answer.json()["detail"]
    assert any(d["field"] == field and text in d["message"] for d in detail), detail


def test_times_with_an_offset_are_stored_in_utc(client: TestClient, stays: tuple[dict, list[str]]) -> None:
    body, _ = stays
    plain = client.post(f"/models/{NAME}/predict", json=body).json()["predictions"]
    shifted = {t: [dict(r) for r in rows] for t, rows in body.items()}
    for rows in shifted.values():
        for row in rows:
            for key, value in row.items():
                if (key.endswith("_time") or key == "time") and value is not None:
                    moved = dt.datetime.fromisoformat(value) + dt.timedelta(hours=2)
                    row[key] = moved.isoformat() + "+02:00"
    answer = client.post(f"/models/{NAME}/predict", json=shifted)
    assert answer.status_code == 200, answer.text
    np.testing.assert_allclose(
        [p["probability"] for p in answer.json()["predictions"]], [p["probability"] for p in plain], rtol=1e-6
    )


def test_model_detail_documents_the_tables(client: TestClient) -> None:
    schema = client.get(f"/models/{NAME}").json()["input_schema"]
    assert schema["required_tables"] == ["patients", "visits"]
    assert schema["tables"]["visits"]["admit_time"] == "TIMESTAMP NOT NULL"
