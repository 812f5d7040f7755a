"""The clinicians' page for an image model in a real browser: upload one file, see the suggestion and heat map.

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
from tests.serve.test_page_browser import browser, open_page, serving  # noqa: E402, F401

SCREENSHOT = Path("/tmp/meddl_page_image.png")


@pytest.fixture(scope="module")
def image_bundle(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A tiny binary image bundle on DICOM phantoms; returns the bundle and the folder of its images."""
    from meddl import Experiment
    from meddl.data.phantoms import write_phantom_dataset

    folder = tmp_path_factory.mktemp("page_images")
    manifest = write_phantom_dataset(folder / "data", 40, size=32, fmt="dicom", seed=4)
    config = {
        "name": "scans",
        "task": "binary",
        "data": {"kind": "image", "path": str(manifest), "positive_label": "lesion"},
        "preprocess": {"size": [32, 32]},
        "model": {"arch": "small_cnn", "channels": [8, 16]},
        "train": {"epochs": 1, "batch_size": 8, "progress": False},
        "evaluate": {"bootstrap": 10},
    }
    Experiment.from_dict(config).run(out=folder / "run")
    return folder / "run", manifest.parent / "images"


@pytest.fixture(scope="module")
def image_server(image_bundle: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    audit = tmp_path_factory.mktemp("audit") / "audit.jsonl"
    with serving(Settings(bundles=[image_bundle[0]], audit_log=audit)) as base:
        yield base


def test_page_scores_an_uploaded_scan_and_shows_the_heat_map(
    image_server: str,
    image_bundle: tuple[Path, Path],
    browser: Browser,  # noqa: F811
    tmp_path: Path,
) -> None:
    scan = sorted(image_bundle[1].glob("*.dcm"))[0]
    detail = httpx.get(f"{image_server}/models/scans").json()
    assert detail["kind"] == "image"
    expected = httpx.post(
        f"{image_server}/models/scans/predict", files={"file": (scan.name, scan.read_bytes(), "application/dicom")}
    ).json()["predictions"][0]
    broken = tmp_path / "notes.dcm"
    broken.write_text("these are notes, not a DICOM file\n")

    with open_page(browser, image_server) as (page, problems):
        page.goto(f"{image_server}/")
        picker = page.locator("#image-file")
        expect(picker).to_be_visible()
        expect(picker).to_have_attribute("accept", ".dcm,.nii,.nii.gz,.png,.jpg,.jpeg")
        expect(page.locator("#unsupported")).to_be_hidden()

        picker.set_input_files(str(scan))
        page.click("#submit")
        label = page.locator("#result-label")
        expect(label).to_be_visible()
        assert label.text_content() in detail["classes"]
        assert label.text_content() == expected["label"]
        expect(page.locator("#result-probability")).to_have_text(f"{100 * expected['probability']:.1f}%")
        expect(page.locator("#threshold-meaning")).to_contain_text("sensitivity")
        heatmap = page.locator("#heatmap")
        expect(heatmap).to_be_visible()
        expect(heatmap).to_have_attribute("src", re.compile(r"^data:image/png;base64,[A-Za-z0-9+/]+=*$"))
        assert heatmap.evaluate("node => node.naturalWidth") > 0, "the heat map did not load (CSP?)"
        expect(page.locator("#form-error")).to_be_hidden()
        page.screenshot(path=str(SCREENSHOT), full_page=True)

        picker.set_input_files(str(broken))
        page.click("#submit")
        error = page.locator("#form-error")
        expect(error).to_be_visible()
        expect(error).to_contain_text("notes.dcm: cannot be used")
        expect(page.locator("#result-body")).to_be_hidden()
        unexpected = [p for p in problems if "status of 422" not in p]  # Chromium logs the 422 it was sent
        assert not unexpected, f"console errors or requests off this server: {unexpected}"
