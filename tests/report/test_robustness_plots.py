"""The robustness section of the report, from a hand-made result of ``evaluate_robustness``."""

from __future__ import annotations

import base64
from typing import Any

from meddl.report.robustness_plots import robustness_plot, robustness_section


def result(**changes: Any) -> dict[str, Any]:
    figures: dict[str, Any] = {
        "metric": "auroc",
        "higher_is_better": True,
        "n": 120,
        "clean": {"value": 0.9, "ci": [0.85, 0.95]},
        "corruptions": [
            {
                "name": "noise",
                "label": "Gaussian noise",
                "unit": "SD",
                "severities": [
                    {"severity": 0.5, "value": 0.8, "ci": [0.7, 0.88], "drop": 0.1},
                    {"severity": 1.0, "value": 0.6, "ci": [0.5, 0.7], "drop": 0.3},
                ],
                "worst_drop": 0.3,
                "worst_severity": 1.0,
            },
            {
                "name": "blur",
                "label": "Blur",
                "unit": "pixels",
                "severities": [{"severity": 1.0, "value": None, "ci": [None, None], "drop": None}],
                "worst_drop": None,
                "worst_severity": None,
            },
        ],
        "worst": {
            "corruption": "noise",
            "label": "Gaussian noise",
            "severity": 1.0,
            "value": 0.6,
            "drop": 0.3,
            "ci": [0.2, 0.4],
        },
    }
    figures.update(changes)
    return figures


def test_the_section_says_the_worst_case_and_tabulates_every_severity() -> None:
    section = robustness_section(result(), 0.95, "medical image")
    text = " ".join(section["text"])
    assert "Clean: 0.90 (0.85–0.95)" in text
    assert "Worst case: Gaussian noise at 1 (SD): AUROC 0.60, 0.30 lower than clean" in text
    assert "CI of the drop 0.20–0.40" in text
    rows = section["table"]["rows"]
    assert rows[0] == ["Gaussian noise", "0.5 (SD)", "0.80 (0.70–0.88)", "−0.10"]
    assert rows[1][0] == "" and rows[1][3] == "−0.30"
    assert rows[2][2] == "—" and rows[2][3] == "—", "a missing value is shown as missing"
    assert base64.b64decode(section["figures"][0]["png"]).startswith(b"\x89PNG")


def test_a_lower_is_better_metric_rises_and_no_drop_is_said_plainly() -> None:
    worst = {
        "corruption": "noise",
        "label": "Gaussian noise",
        "severity": 1.0,
        "value": 1.4,
        "drop": 0.4,
        "ci": [0.3, 0.5],
    }
    section = robustness_section(result(metric="rmse", higher_is_better=False, worst=worst), 0.9, "gene expression")
    assert "0.40 higher than clean (paired 90% CI" in " ".join(section["text"])
    improved = dict(worst, drop=-0.01)
    assert "No corruption made AUROC worse" in " ".join(robustness_section(result(worst=improved), 0.95, "x")["text"])


def test_no_figure_without_a_value_to_draw() -> None:
    assert robustness_plot(None) is None
    assert robustness_plot(result(corruptions=[result()["corruptions"][1]])) is None
    assert robustness_plot(result(clean={"value": None, "ci": [None, None]})) is None
