"""The bad-input corpus: every case of ``cases/*.yaml`` run through the real command line, in process.

The promise checked for each case: the exit code (2 with one clear line for refused input, 0 for input that is
handled with a note), no traceback and no "internal error … bug in MedDL", a message that names the file, row,
column or field at fault, and every file that existed before the command still there with the same bytes.

Cases that fail on today's code carry ``known_failure: <what happens>``; they run as strict xfails, so a fix
makes them fail until the marker is removed. Server cases send one request to a ``TestClient`` over a tiny
bundle and must get a 4xx naming the field — never a 5xx.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import traceback
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.corpus.make import MAKERS, Bundles, Env

CASES_DIR = Path(__file__).parent / "cases"
FLAGS = re.IGNORECASE | re.DOTALL
CASE_KEYS = {
    "id",
    "fault",
    "command",
    "exit",
    "message",
    "absent",
    "files",
    "no_files",
    "known_failure",
    "request",
    "status",
}


def load_cases() -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = []
    for path in sorted(CASES_DIR.glob("*.yaml")):
        for case in yaml.safe_load(path.read_text(encoding="utf-8")):
            case["kind"] = path.stem
            cases.append(case)
    return cases


CASES = load_cases()


def _param(case: dict[str, Any]) -> Any:
    marks = []
    if case.get("known_failure"):
        marks.append(pytest.mark.xfail(strict=True, reason=str(case["known_failure"])))
    return pytest.param(case, id=case["id"], marks=marks)


def test_the_corpus_is_complete_and_well_formed() -> None:
    ids = [case["id"] for case in CASES]
    assert len(ids) == len(set(ids)), "case ids are unique"
    assert len(CASES) >= 150
    for case in CASES:
        assert set(case) - {"kind"} <= CASE_KEYS, (case["id"], set(case) - CASE_KEYS - {"kind"})
        assert case["id"] in MAKERS, f"{case['id']}: no generator in make.py"
        assert case.get("fault") and case.get("message"), case["id"]
        assert ("status" in case) == (case["command"][0] == "serve"), case["id"]
    assert set(MAKERS) == set(ids), f"generators without a case: {sorted(set(MAKERS) - set(ids))}"


@pytest.fixture(scope="session")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> Bundles:
    return Bundles(tmp_path_factory.mktemp("corpus-bundles"))


def _fill(value: Any, places: dict[str, Any]) -> Any:
    if isinstance(value, str):
        return value.format(**{k: str(v) for k, v in places.items()})
    if isinstance(value, list):
        return [_fill(v, places) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, places) for k, v in value.items()}
    return value


def _snapshot(paths: list[Path]) -> dict[Path, str]:
    """sha256 of every file under ``paths`` (files and folders)."""
    hashes: dict[Path, str] = {}
    for root in paths:
        files = [root] if root.is_file() else [p for p in root.rglob("*") if p.is_file()] if root.is_dir() else []
        for file in files:
            hashes[file] = hashlib.sha256(file.read_bytes()).hexdigest()
    return hashes


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int | str, str]:
    """``meddl <args>`` in process: its exit code and everything it printed (an escaped exception is a failure)."""
    from meddl.cli import main

    capsys.readouterr()
    try:
        main(args)
        code: int | str = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:
        code = "exception escaped main()"
        captured = capsys.readouterr()
        return code, captured.out + captured.err + traceback.format_exc()
    captured = capsys.readouterr()
    return code, captured.out + captured.err


_APPS: dict[Path, Any] = {}


def run_request(bundle: Path, request: dict[str, Any], audit: Path, *, shared: bool) -> tuple[int | str, str]:
    """One request to the app serving ``bundle`` (built once per shared bundle, afresh for a case's own)."""
    from fastapi.testclient import TestClient

    from meddl.errors import MedDLError
    from meddl.serve import Settings, create_app

    if bundle not in _APPS:
        try:
            app = create_app(Settings(bundles=[bundle], audit_log=audit))
        except MedDLError as exc:  # a bundle that must not be served: refused at start-up, with the reason
            return "refused", str(exc)
        client = TestClient(app, raise_server_exceptions=False)
        if not shared:
            return _send(client, bundle, request)
        _APPS[bundle] = client
    return _send(_APPS[bundle], bundle, request)


def _send(client: Any, bundle: Path, request: dict[str, Any]) -> tuple[int | str, str]:
    name = json.loads((bundle / "model.json").read_text())["name"]
    request = dict(request)
    method = request.pop("method", "POST")
    path = request.pop("path", "/models/{name}/predict").format(name=name)
    response = client.request(method, path, **request)
    return response.status_code, response.text


def _log(case: dict[str, Any], code: int | str, output: str) -> None:
    """With ``MEDDL_CORPUS_LOG=<file>``, one JSON line per case: what the command answered today."""
    if os.environ.get("MEDDL_CORPUS_LOG"):
        with open(os.environ["MEDDL_CORPUS_LOG"], "a", encoding="utf-8") as log:
            log.write(json.dumps({"id": case["id"], "code": code, "output": output}) + "\n")


@pytest.mark.parametrize("case", [_param(c) for c in CASES])
def test_bad_input(
    case: dict[str, Any],
    bundles: Bundles,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if not os.environ.get("MEDDL_CORPUS_DEBUG"):  # set it to get the traceback of an internal error instead
        monkeypatch.delenv("MEDDL_DEBUG", raising=False)  # an unexpected error must show as the user sees it
    monkeypatch.chdir(tmp_path)
    env = Env(tmp_path, bundles)
    places: dict[str, Any] = {"tmp": tmp_path, "out": tmp_path / "out"}
    places.update(MAKERS[case["id"]](env))
    before = _snapshot([tmp_path, *env.uses])

    if case["command"][0] == "serve":
        request = {**(case.get("request") or {}), **places.get("request", {})}
        bundle = Path(places["bundle"])
        shared = not bundle.is_relative_to(tmp_path)
        code, output = run_request(bundle, request, bundles.root / "audit.jsonl", shared=shared)
        expected = case["status"]
        allowed = expected if isinstance(expected, list) else [expected]
        _log(case, code, output)
        assert code in allowed, f"status {code}, expected {expected}: {output[:2000]}"
        assert code == "refused" or int(code) < 500, output[:2000]
    else:
        code, output = run_cli([str(a) for a in _fill(case["command"], places)], capsys)
        _log(case, code, output)
        assert code == case["exit"], f"exit code {code}, expected {case['exit']}; output:\n{output[-3000:]}"

    assert "Traceback" not in output, output[-3000:]
    assert "bug in MedDL" not in output, output[-3000:]
    assert re.search(_fill(case["message"], places), output, FLAGS), (
        f"expected /{case['message']}/ in the output:\n{output[-3000:]}"
    )
    if case.get("absent"):
        assert not re.search(case["absent"], output, FLAGS), f"/{case['absent']}/ must not be in:\n{output[-3000:]}"
    for template, pattern in (case.get("files") or {}).items():
        path = Path(_fill(template, places))
        assert path.is_file(), f"{path} was not written"
        assert re.search(pattern, path.read_text(errors="replace"), FLAGS), f"/{pattern}/ not in {path}"
    for template in case.get("no_files") or []:
        assert not Path(_fill(template, places)).exists(), f"{_fill(template, places)} must not exist"

    after = _snapshot([tmp_path, *env.uses])
    lost = sorted(str(p) for p in before if p not in after)
    changed = sorted(str(p) for p in before if p in after and after[p] != before[p])
    assert not lost, f"user files deleted: {lost}"
    assert not changed, f"user files changed: {changed}"
