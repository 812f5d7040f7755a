"""Whether every figure of a report can be read at the page's width, measured in a real browser (Chromium)."""

from __future__ import annotations

from pathlib import Path

MIN_SCALE = 0.45  # shown at no less than this share of its pixels: matplotlib's 10 pt text stays ≥ 9 px
MIN_HEIGHT = 90  # px on screen


def figure_problems(reports: list[Path], width: int = 1280) -> list[str]:
    """Each figure shown smaller than :data:`MIN_SCALE` of its size or :data:`MIN_HEIGHT` px tall, and each report
    that scrolls sideways, in a window ``width`` px wide."""
    from playwright.sync_api import sync_playwright

    from tests.serve.test_page_browser import CHROMIUM, CHROMIUM_ARGS

    problems = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_context(viewport={"width": width, "height": 900}).new_page()
        for report in reports:
            page.goto(report.resolve().as_uri())
            page.wait_for_load_state("load")
            figures = page.evaluate(
                """() => Array.from(document.images).map(i => { const r = i.getBoundingClientRect();
                   return {alt: i.alt, nw: i.naturalWidth, nh: i.naturalHeight, w: r.width, h: r.height}; })"""
            )
            for f in figures:
                if f["nw"] and (f["w"] / f["nw"] < MIN_SCALE or f["h"] < min(MIN_HEIGHT, f["nh"])):
                    problems.append(
                        f"{report}: {f['alt']!r} shown at {f['w']:.0f}×{f['h']:.0f} px of {f['nw']}×{f['nh']}"
                    )
            scroll = page.evaluate("() => document.documentElement.scrollWidth")
            if scroll > width:
                problems.append(f"{report}: the page scrolls sideways ({scroll} px wide at {width})")
        browser.close()
    return problems
