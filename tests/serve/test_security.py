"""Safe by default: loopback unless a token is set, no input values in logs, an audit trail, verified bundles."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from meddl.cli import main
from meddl.serve import Settings, create_app

TOKEN = "s3cret-token-for-tests-0123456789"


def test_token_is_checked_on_every_request_but_health(served_bundle: Path, valid_record: dict) -> None:
    client = TestClient(create_app(Settings(bundles=[served_bundle], token=TOKEN, audit_log=None)))
    assert client.get("/health").status_code == 200
    for method, path in [("get", "/models"), ("get", "/models/clinic"), ("get", "/"), ("get", "/docs")]:
        assert getattr(client, method)(path).status_code == 401, path
    assert client.post("/models/clinic/predict", json={"records": [valid_record]}).status_code == 401
    wrong = {"authorization": "Bearer not-the-token-at-all-000000"}
    assert client.get("/models", headers=wrong).status_code == 401
    right = {"authorization": f"Bearer {TOKEN}"}
    assert client.post("/models/clinic/predict", json={"records": [valid_record]}, headers=right).status_code == 200


def test_page_login_sets_a_cookie_and_keeps_the_token_off_the_url(served_bundle: Path) -> None:
    client = TestClient(create_app(Settings(bundles=[served_bundle], token=TOKEN, audit_log=None)))
    response = client.get(f"/?token={TOKEN}", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/"
    assert "httponly" in response.headers["set-cookie"].lower()
    assert client.get("/models").status_code == 200  # the cookie now authenticates
    stranger = TestClient(client.app)
    assert stranger.get("/?token=wrong-token-wrong-token", follow_redirects=False).status_code == 401
    assert "set-cookie" not in stranger.get("/?token=wrong-token-wrong-token").headers


def test_cli_refuses_a_public_address_without_token(
    served_bundle: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MEDDL_TOKEN", raising=False)
    with pytest.raises(SystemExit) as exit_info:
        main(["serve", str(served_bundle), "--host", "0.0.0.0"])
    assert exit_info.value.code == 2
    assert "without authentication; set MEDDL_TOKEN or pass --token-file" in " ".join(capsys.readouterr().err.split())


def test_short_token_is_refused(tmp_path: Path, served_bundle: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "token").write_text("short\n")
    with pytest.raises(SystemExit):
        main(["serve", str(served_bundle), "--host", "0.0.0.0", "--token-file", str(tmp_path / "token")])
    assert "at least 16 characters" in capsys.readouterr().err


def test_tampered_bundle_is_not_served(served_bundle: Path, tmp_path: Path) -> None:
    from meddl.errors import MedDLError

    copy = tmp_path / "copy"
    shutil.copytree(served_bundle, copy)
    with (copy / "model.safetensors").open("r+b") as handle:
        handle.seek(-4, os.SEEK_END)
        handle.write(b"\x00\x01\x02\x03")
    with pytest.raises(MedDLError, match="sha256 does not match"):
        create_app(Settings(bundles=[copy], audit_log=None))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow
def test_planted_values_never_reach_the_logs_and_the_audit_trail_records_predictions(
    served_bundle: Path, tmp_path: Path, valid_record: dict
) -> None:
    """A real `meddl serve` process: its log output and audit file must not contain any input value."""
    port = _free_port()
    audit = tmp_path / "audit.jsonl"
    command = [
        sys.executable,
        "-m",
        "meddl",
        "serve",
        str(served_bundle),
        "--port",
        str(port),
        "--audit-log",
        str(audit),
    ]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        planted_number, planted_text = 987.654321, "PLANTED-VALUE-7f3a"
        ok = httpx.post(
            f"{base}/models/clinic/predict",
            json={"records": [{**valid_record, "glucose": planted_number, "case_id": "case-17"}]},
        )
        assert ok.status_code == 200
        bad = httpx.post(f"{base}/models/clinic/predict", json={"records": [{**valid_record, "smoker": planted_text}]})
        assert bad.status_code == 422
        explained = httpx.post(f"{base}/models/clinic/explain", json={"records": [{**valid_record, "bmi": 44.4444}]})
        assert explained.status_code == 200
        httpx.get(f"{base}/?age=55555")
    finally:
        server.terminate()
        output, _ = server.communicate(timeout=30)
    assert "request_id=" in output and "model=clinic" in output and "status=422" in output
    for planted in ("987.654321", planted_text, "44.4444", "55555"):
        assert planted not in output
    lines = [json.loads(line) for line in audit.read_text().splitlines()]
    assert [line["endpoint"] for line in lines] == ["predict", "explain"]
    first = lines[0]
    assert first["model"] == "clinic" and len(first["bundle_hash"]) == 64
    assert first["request_id"] == ok.json()["request_id"]
    assert first["predictions"][0]["case_id"] == "case-17"
    assert first["predictions"][0]["probability"] == pytest.approx(ok.json()["predictions"][0]["probability"])
    assert "987.654321" not in audit.read_text() and "44.4444" not in audit.read_text()
