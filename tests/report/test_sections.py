"""A data kind's own findings (``run["sections"]``): motifs, cohort flow, top genes — text, table and figures."""

from __future__ import annotations

import base64
import copy
from typing import Any

from meddl.report import render_model_card, render_report

PNG = base64.b64encode(b"\x89PNG\r\n\x1a\nnot-a-real-image").decode("ascii")


def _with_sections(run: dict[str, Any]) -> dict[str, Any]:
    run = copy.deepcopy(run)
    run["sections"] = [
        {
            "id": "cohort-flow",
            "title": "Cohort flow",
            "text": ["Stays excluded at each step, in order."],
            "table": {"columns": ["Step", "Stays"], "rows": [["stays in the store", 5120], ["age ≥ 18", 5003]]},
        },
        {
            "id": "motifs",
            "title": "Motifs the model learned",
            "text": "Seqlets clustered into motifs.",
            "table": {"columns": ["Motif", "Best JASPAR match"], "rows": [[1, "CTCF (MA0139.1)"]]},
            "figures": [{"title": "Motif 1", "caption": "12 seqlets", "png": PNG}],
        },
    ]
    return run


def test_sections_render_in_report_with_anchor_table_and_figure(binary_run: dict[str, Any]) -> None:
    html = render_report(_with_sections(binary_run))
    assert '<section id="cohort-flow">' in html and '<a href="#cohort-flow">Cohort flow</a>' in html
    assert "<td>stays in the store</td>" in html and ">5003</td>" in html
    assert "CTCF (MA0139.1)" in html
    assert f"data:image/png;base64,{PNG}" in html
    assert "<figcaption><strong>Motif 1.</strong> 12 seqlets</figcaption>" in html


def test_sections_reach_the_model_card_as_text_and_tables(binary_run: dict[str, Any]) -> None:
    card = render_model_card(_with_sections(binary_run))
    assert "**Cohort flow.** Stays excluded at each step, in order." in card
    assert "| age ≥ 18 | 5003 |" in card
    assert PNG not in card  # figures stay in the HTML report


def test_no_sections_no_extra_markup(binary_run: dict[str, Any]) -> None:
    html = render_report(binary_run)
    assert 'id="motifs"' not in html and 'id="cohort-flow"' not in html
