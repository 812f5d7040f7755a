"""The clinicians' page for a survival model, in a real browser: median survival, survival at each horizon and
the predicted survival curve drawn from the server's answer."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser, expect, sync_playwright

from meddl.serve.settings import Settings
from tests.serve.test_page_browser import CHROMIUM, open_page, serving  # skips the module without Chromium

RECORD = {
    "horTh": "no",
    "age": 70,
    "menostat": "Post",
    "tsize": 21,
    "tgrade": "II",
    "pnodes": 3,
    "progrec": 48,
    "estrec": 66,
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from meddl import Experiment
    from meddl.data.cohorts import survival_cohort
    from meddl.io import write_table

    folder = tmp_path_factory.mktemp("surv-page")
    csv = write_table(survival_cohort("gbsg2").frame, folder / "gbsg2.csv")
    Experiment.from_dict(
        {
            "name": "gbsg2",
            "task": "survival",
            "data": {"path": str(csv), "time": "time", "event": "event", "patient_id": "patient_id"},
            "model": {"arch": "deepsurv", "hidden": [16]},
            "train": {"epochs": 3, "seed": 0, "progress": False},
            "evaluate": {"bootstrap": 10, "baselines": [], "horizons": [365, 1826], "conformal": {"alpha": 0.1}},
        }
    ).run(out=folder / "run")
    with serving(Settings(bundles=[folder / "run"], audit_log=None)) as base:
        yield base


def test_page_draws_the_predicted_survival_curve(server: str) -> None:
    expected = httpx.post(f"{server}/models/gbsg2/predict", json={"records": [RECORD]}).json()["predictions"][0]
    with sync_playwright() as playwright:
        browser: Browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        with open_page(browser, server) as (page, problems):
            page.goto(f"{server}/")
            for column, value in RECORD.items():
                field = page.locator(f"#field-{column}")
                if field.evaluate("node => node.tagName") == "SELECT":
                    field.select_option(str(value))
                else:
                    field.fill(str(value))
            page.click("#submit")
            expect(page.locator("#result-caption")).to_have_text("Median survival time")
            curve = page.locator("#survival-curve")
            expect(curve).to_be_visible()
            assert curve.locator("path.curve").get_attribute("d").count("V") >= 5
            horizons = page.locator("#result-classes li").all_text_contents()
            assert (
                horizons[0].startswith("Event-free at 365")
                and f"{100 * expected['survival']['365']:.1f}%" in horizons[0]
            )
            expect(page.locator("#factors-caption")).to_contain_text("Effect on the risk of the event")
            bound = expected["survival_lower_bound"]  # evaluate.conformal: a lower bound on the time to the event
            assert bound > 0
            expect(page.locator("#result-set")).to_contain_text("With 90 % confidence the event comes no earlier than")
            expect(page.locator("#result-set")).to_contain_text(f"{float(f'{bound:.4g}'):g}".replace("-", "\u2212"))
            page.screenshot(path="/tmp/meddl_survival_page.png", full_page=True)
            assert not problems, problems
        browser.close()
