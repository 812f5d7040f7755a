"""The clinicians' page in a real browser: the real app under uvicorn, Chromium driven by Playwright.

Skipped where /usr/bin/chromium is absent, except in CI, which must install it.
"""

from __future__ import annotations

import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import fast_config

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    if os.environ.get("CI"):
        pytest.fail(f"{CHROMIUM} is missing: CI must install Chromium for the page tests", pytrace=False)
    pytest.skip(
        f"{CHROMIUM} is not installed: the browser test of the clinicians' page is skipped", allow_module_level=True
    )

import httpx  # noqa: E402
import uvicorn  # noqa: E402
from playwright.sync_api import Browser, Page, expect, sync_playwright  # noqa: E402

from meddl.serve.main import create_app  # noqa: E402
from meddl.serve.settings import Settings  # noqa: E402

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TOKEN = "page-test-token-0123456789"
SCREENSHOT = Path("/tmp/meddl_page.png")
RECORD: dict[str, Any] = {
    "age": 67,
    "sex": "M",
    "bmi": 31.4,
    "glucose": 148,
    "systolic_bp": 152,
    "smoker": "current",
    "noise": 0.2,
}


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A binary bundle on the synthetic clinical table, with units for the form's labels."""
    from meddl import Experiment
    from meddl.data import synthetic_clinical_table
    from meddl.io import write_table

    folder = tmp_path_factory.mktemp("page")
    csv = write_table(synthetic_clinical_table(300, seed=3, visits_per_patient=2), folder / "clinic.csv")
    config = fast_config(csv)
    config["data"]["units"] = {"age": "years", "bmi": "kg/m²", "glucose": "mg/dL", "systolic_bp": "mmHg"}
    Experiment.from_dict(config).run(out=folder / "clinic")
    return folder / "clinic"


@contextmanager
def serving(settings: Settings) -> Iterator[str]:
    """The real app under uvicorn in a background thread on a free loopback port; yields its base URL."""
    app = create_app(settings)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))  # the port is ours from here on: no race with another process
    base = f"http://127.0.0.1:{listener.getsockname()[1]}"
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"the server at {base} did not answer /health within 20 s"
            time.sleep(0.05)
        yield base
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        listener.close()


@pytest.fixture(scope="module")
def server(bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    audit = tmp_path_factory.mktemp("audit") / "audit.jsonl"
    with serving(Settings(bundles=[bundle], audit_log=audit)) as base:
        yield base


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@contextmanager
def open_page(browser: Browser, base: str) -> Iterator[tuple[Page, list[str]]]:
    """A fresh page (own cookies) 1280 px wide; yields it with the list of problems seen while it was open:
    console errors (a CSP refusal shows up there) and requests to anywhere but ``base``."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("request", lambda request: None if request.url.startswith(base) else problems.append(request.url))
    try:
        yield page, problems
    finally:
        context.close()


def fill(page: Page, record: dict[str, Any]) -> None:
    for column, value in record.items():
        field = page.locator(f"#field-{column}")
        if field.evaluate("node => node.tagName") == "SELECT":
            field.select_option(str(value))
        else:
            field.fill(str(value))


def test_page_suggests_explains_and_matches_the_api(server: str, browser: Browser) -> None:
    detail = httpx.get(f"{server}/models/clinic").json()
    expected = httpx.post(f"{server}/models/clinic/predict", json={"records": [RECORD]}).json()["predictions"][0]
    assert {entry["name"] for entry in detail["input_schema"]} == set(RECORD)

    with open_page(browser, server) as (page, problems):
        page.goto(f"{server}/")
        notice = page.locator("#notice")
        expect(notice).to_be_visible()
        expect(notice).to_contain_text("Decision support, not a diagnosis")
        expect(page.locator("label[for='field-age']")).to_contain_text("years")
        expect(page.locator("#field-glucose")).to_have_attribute("placeholder", re.compile(r"\d to \S*\d"))
        options = page.locator("#field-smoker option").all_text_contents()
        assert options == next(e["allowed"] for e in detail["input_schema"] if e["name"] == "smoker")
        expect(page.locator("#link-card")).to_have_attribute("href", "/models/clinic/card")
        expect(page.locator("#link-report")).to_have_attribute("href", "/models/clinic/report")

        fill(page, RECORD)
        page.click("#submit")
        label = page.locator("#result-label")
        expect(label).to_be_visible()

        assert label.text_content() == expected["label"]
        assert expected["label"] in detail["classes"]
        assert page.locator("#result-probability").text_content() == f"{100 * expected['probability']:.1f}%"
        ci = re.compile(r"^\d\.\d\d \(\d\.\d\d–\d\.\d\d\)$")
        expect(page.locator("#result-sensitivity")).to_have_text(ci)
        expect(page.locator("#result-specificity")).to_have_text(ci)
        expect(page.locator("#threshold-meaning")).to_contain_text("sensitivity")
        factors = page.locator("#factors li").all_text_contents()
        assert factors, "no contributing factor is listed"
        assert all(("raises" in f) != ("lowers" in f) for f in factors), factors
        assert any(column in " ".join(factors) for column in RECORD)
        page.screenshot(path=str(SCREENSHOT), full_page=True)
        assert not problems, f"console errors or requests off this server: {problems}"


def test_page_shows_the_servers_error_next_to_the_form(server: str, browser: Browser) -> None:
    with open_page(browser, server) as (page, problems):
        page.goto(f"{server}/")
        fill(page, RECORD)
        page.fill("#field-age", "")  # cleared, and "not measured" left unticked
        page.click("#submit")

        error = page.locator("#form-error")
        expect(error).to_be_visible()
        expect(error).to_contain_text("age")
        expect(page.locator("#error-age")).to_be_visible()
        expect(page.locator("#result-body")).to_be_hidden()

        page.check("#missing-age")  # now "not measured": the model imputes it and says so
        expect(page.locator("#field-age")).to_be_disabled()
        page.click("#submit")
        expect(page.locator("#result-label")).to_be_visible()
        expect(error).to_be_hidden()
        expect(page.locator("#result-note")).to_contain_text("age")
        unexpected = [p for p in problems if "status of 422" not in p]  # Chromium logs the 422 it was sent
        assert not unexpected, unexpected


def test_page_behind_a_token(bundle: Path, browser: Browser, tmp_path: Path) -> None:
    with (
        serving(Settings(bundles=[bundle], audit_log=tmp_path / "audit.jsonl", token=TOKEN)) as base,
        open_page(browser, base) as (page, _),
    ):
        refused = page.goto(f"{base}/")
        assert refused is not None and refused.status == 401

        opened = page.goto(f"{base}/?token={TOKEN}")
        assert opened is not None and opened.status == 200
        assert page.url == f"{base}/", "the token must leave the address bar"
        fill(page, RECORD)
        page.click("#submit")
        expect(page.locator("#result-label")).to_be_visible()
        expect(page.locator("#form-error")).to_be_hidden()


def test_page_shows_the_conformal_set_and_refers_uncertain_cases(browser: Browser, tmp_path: Path) -> None:
    """A model with evaluate.conformal: a case whose set holds one label shows it as the answer with "The 80 %
    prediction set holds only …"; a case whose set holds both labels shows "Uncertain — refer for review" and
    "Could be ‘no’ or ‘yes’" instead of a single answer, as the API says."""
    from meddl import Experiment
    from meddl.data import synthetic_clinical_table
    from meddl.io import write_table

    table = synthetic_clinical_table(300, seed=3, visits_per_patient=2)
    csv = write_table(table, tmp_path / "clinic.csv")
    config = fast_config(csv)
    config["evaluate"]["conformal"] = {"alpha": 0.2}
    Experiment.from_dict(config).run(out=tmp_path / "clinic")
    records = table[list(RECORD)].dropna().head(40).to_dict(orient="records")
    with serving(Settings(bundles=[tmp_path / "clinic"], audit_log=None)) as base:
        answers = httpx.post(f"{base}/models/clinic/predict", json={"records": records}).json()["predictions"]
        sure = next(i for i, a in enumerate(answers) if len(a["prediction_set"]) == 1)
        unsure = next(i for i, a in enumerate(answers) if len(a["prediction_set"]) == 2)
        assert answers[unsure]["uncertain"] and not answers[sure]["uncertain"]
        with open_page(browser, base) as (page, problems):
            page.goto(f"{base}/")
            fill(page, records[sure])
            page.click("#submit")
            expect(page.locator("#result-set")).to_contain_text("The 80 % prediction set holds only")
            assert page.locator("#result-label").text_content() == answers[sure]["label"]
            expect(page.locator("#result-set")).to_contain_text("Held the truth for")

            fill(page, records[unsure])
            page.click("#submit")
            expect(page.locator("#result-label")).to_have_text("Uncertain \u2014 refer for review")
            expect(page.locator("#result-set")).to_contain_text("Could be \u2018no\u2019 or \u2018yes\u2019")
            expect(page.locator("#result-set")).to_have_class(re.compile(r"\brefer\b"))
            assert not problems, problems
