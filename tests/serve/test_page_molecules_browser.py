"""The clinicians' page for a molecule model in a real browser: type a SMILES, see the prediction and the structure
with its atom attributions; an empty box and an unreadable SMILES are marked at the box.

Skipped where /usr/bin/chromium is absent, except in CI, which must install it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    if os.environ.get("CI"):
        pytest.fail(f"{CHROMIUM} is missing: CI must install Chromium for the page tests", pytrace=False)
    pytest.skip(
        f"{CHROMIUM} is not installed: the browser test of the clinicians' page is skipped", allow_module_level=True
    )

import httpx  # noqa: E402
from playwright.sync_api import Browser, expect  # noqa: E402

from meddl.serve.settings import Settings  # noqa: E402
from tests.serve.test_molecules_json import NAME, SALT, molecule_bundle  # noqa: E402, F401
from tests.serve.test_page_browser import browser, open_page, serving  # noqa: E402, F401

SCREENSHOT = Path("/tmp/meddl_page_molecule.png")


@pytest.fixture(scope="module")
def molecule_server(
    molecule_bundle: tuple[Path, list[str]],  # noqa: F811
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[str]:
    audit = tmp_path_factory.mktemp("audit") / "audit.jsonl"
    with serving(Settings(bundles=[molecule_bundle[0]], audit_log=audit)) as base:
        yield base


def shown(value: float) -> str:
    """A number as the page writes it: four significant digits, no trailing zeros, a true minus sign."""
    text = repr(float(f"{value:.4g}"))
    return text.removesuffix(".0").replace("-", "\u2212")


def test_page_scores_a_typed_smiles_and_draws_its_atom_attributions(
    molecule_server: str,
    molecule_bundle: tuple[Path, list[str]],  # noqa: F811
    browser: Browser,  # noqa: F811
) -> None:
    smiles = molecule_bundle[1][0]
    detail = httpx.get(f"{molecule_server}/models/{NAME}").json()
    assert detail["request_style"] == "text" and detail["json_routes"]["explain"] == "explain_molecules"
    expected = httpx.post(
        f"{molecule_server}/models/{NAME}/explain_molecules", json={"molecules": [{"id": "x", "smiles": smiles}]}
    ).json()["predictions"][0]

    with open_page(browser, molecule_server) as (page, problems):
        page.goto(f"{molecule_server}/")
        box = page.locator("#field-smiles")
        expect(box).to_be_visible()
        expect(box).to_have_attribute("placeholder", detail["input_schema"]["text_field"]["example"])
        expect(page.locator("label[for='field-smiles']")).to_have_text("SMILES")
        expect(page.locator("#form-title")).to_have_text("Molecule")
        expect(page.locator("#result-empty")).to_contain_text("Type the molecule's SMILES")
        expect(page.locator("#unsupported")).to_be_hidden()

        box.fill(smiles)
        page.click("#submit")
        label = page.locator("#result-label")
        expect(label).to_have_text(shown(expected["prediction"]))
        expect(page.locator("#result-caption")).to_have_text("Predicted logp")
        picture = page.locator("#heatmap")
        expect(picture).to_be_visible()
        expect(picture).to_have_attribute("src", re.compile(r"^data:image/png;base64,[A-Za-z0-9+/]+=*$"))
        expect(picture).to_have_attribute("alt", re.compile("atom attributions"))
        assert picture.evaluate("node => node.naturalWidth") > 0, "the structure did not load (CSP?)"
        expect(page.locator("#heatmap-title")).to_have_text("Atoms that drove the suggestion")
        expect(page.locator("#result-read")).to_have_text(f"SMILES as the model read it: {expected['smiles']}")
        expect(page.locator("#form-error")).to_be_hidden()
        expect(page.locator("#result-note")).to_be_hidden()
        page.screenshot(path=str(SCREENSHOT), full_page=True)

        box.fill(SALT)  # the salt is removed before scoring: the note says so, the standard form is shown
        page.click("#submit")
        expect(page.locator("#result-note")).to_contain_text("salt or solvent removed")
        expect(page.locator("#result-read")).to_contain_text("O=C(O)c1ccccc1")
        assert not problems, f"console errors or requests off this server: {problems}"


def test_page_marks_an_empty_box_and_an_unreadable_smiles_at_the_box(
    molecule_server: str,
    browser: Browser,  # noqa: F811
) -> None:
    with open_page(browser, molecule_server) as (page, problems):
        page.goto(f"{molecule_server}/")
        box = page.locator("#field-smiles")
        expect(box).to_be_visible()
        error = page.locator("#error-smiles")

        page.click("#submit")  # nothing typed: no request, the box says what is missing
        expect(error).to_be_visible()
        expect(error).to_have_text("Enter a SMILES first.")
        expect(page.locator("#form-error")).to_contain_text("No SMILES to score.")
        expect(page.locator(".text-field")).to_have_class(re.compile(r"\binvalid\b"))
        expect(page.locator("#result-body")).to_be_hidden()

        box.fill("C1CC")
        page.click("#submit")
        expect(error).to_contain_text("unclosed ring")
        expect(error).to_contain_text("RDKit cannot parse 'C1CC'")
        form_error = page.locator("#form-error")
        expect(form_error).to_contain_text("The SMILES could not be scored:")
        expect(form_error).to_contain_text("SMILES: RDKit cannot parse")
        expect(page.locator("#result-body")).to_be_hidden()

        box.fill("CCO")  # a readable one clears the marks
        page.click("#submit")
        expect(page.locator("#result-label")).to_be_visible()
        expect(error).to_be_hidden()
        expect(page.locator("#form-error")).to_be_hidden()
        unexpected = [p for p in problems if "status of 422" not in p]  # Chromium logs the 422 it was sent
        assert not unexpected, f"console errors or requests off this server: {unexpected}"
