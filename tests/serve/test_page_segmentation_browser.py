"""The clinicians' page for a segmentation model in a real browser: upload a scan, see the measured area, the
overlay of the predicted mask and a link that downloads the mask.

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


@pytest.fixture(scope="module")
def segmentation_bundle(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A tiny 2-D U-Net on NIfTI phantoms with masks; returns the bundle and the folder of its images."""
    from meddl import Experiment
    from meddl.data.phantoms import write_phantom_dataset

    folder = tmp_path_factory.mktemp("page_segmentation")
    manifest = write_phantom_dataset(
        folder / "data", 20, size=32, fmt="nifti", prevalence=0.9, seed=5, mask_column="mask"
    )
    config = {
        "name": "lesions",
        "task": "segmentation",
        "data": {"kind": "image", "path": str(manifest), "labels": {1: "lesion"}},
        "model": {"arch": "unet", "channels": [8, 16], "num_res_units": 1},
        "train": {"epochs": 1, "batch_size": 4, "progress": False},
        "evaluate": {"bootstrap": 10, "robustness": False},
    }
    Experiment.from_dict(config).run(out=folder / "run")
    return folder / "run", manifest.parent / "images"


@pytest.fixture(scope="module")
def segmentation_server(
    segmentation_bundle: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    audit = tmp_path_factory.mktemp("audit") / "audit.jsonl"
    with serving(Settings(bundles=[segmentation_bundle[0]], audit_log=audit)) as base:
        yield base


def test_page_shows_the_measured_area_the_overlay_and_the_mask_to_download(
    segmentation_server: str,
    segmentation_bundle: tuple[Path, Path],
    browser: Browser,  # noqa: F811
) -> None:
    scan = sorted(segmentation_bundle[1].glob("*.nii.gz"))[0]
    expected = httpx.post(
        f"{segmentation_server}/models/lesions/predict", files={"file": (scan.name, scan.read_bytes())}
    ).json()["predictions"][0]
    lesion = expected["segmentation"]["lesion"]

    with open_page(browser, segmentation_server) as (page, problems):
        page.goto(f"{segmentation_server}/")
        picker = page.locator("#image-file")
        expect(picker).to_be_visible()
        picker.set_input_files(str(scan))
        page.click("#submit")
        label = page.locator("#result-label")
        expect(label).to_be_visible()
        expect(label).to_contain_text("lesion:")
        expect(label).to_contain_text("mm²")
        expect(label).to_contain_text(f"({lesion['lesions']} lesion")
        expect(page.locator("#result-caption")).to_have_text("Measured from the predicted mask")
        expect(page.locator("#result-probability")).to_be_hidden()
        overlay = page.locator("#heatmap")
        expect(overlay).to_be_visible()
        expect(overlay).to_have_attribute("src", re.compile(r"^data:image/png;base64,[A-Za-z0-9+/]+=*$"))
        assert overlay.evaluate("node => node.naturalWidth") > 0, "the overlay did not load (CSP?)"
        expect(page.locator("#heatmap-title")).to_have_text("Predicted mask")
        link = page.locator("#result-classes a")
        expect(link).to_have_attribute("download", scan.name.replace(".nii.gz", "_mask.nii.gz"))
        with page.expect_download() as download:
            link.click()
        saved = Path(download.value.path())
        assert saved.read_bytes()[:2] == b"\x1f\x8b"  # a gzipped NIfTI
        assert not problems, f"console errors or requests off this server: {problems}"
