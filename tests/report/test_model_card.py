"""The model card: every TRIPOD+AI section, the numbers with their CIs, and automatic limitations."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from meddl.report import render_model_card, write_model_card

from .conftest import RUN_BUILDERS, make_binary_run

HEADINGS = [
    "## Model details",
    "## Intended use",
    "## Data",
    "## Model development",
    "## Performance",
    "## Explainability",
    "## Limitations",
    "## Ethical considerations and fairness",
    "## How to use",
]


def section(card: str, heading: str) -> str:
    """The text under one ``## heading``, up to the next one."""
    start = card.index(heading + "\n")
    end = card.find("\n## ", start + len(heading))
    return card[start : end if end != -1 else None]


def test_write_model_card(tmp_path: Path, binary_run: dict[str, Any]) -> None:
    written = write_model_card(binary_run, tmp_path / "bundle" / "model_card.md")
    assert written.read_text(encoding="utf-8").startswith("# Model card: sepsis-risk\n")
    assert write_model_card(binary_run, tmp_path) == tmp_path / "model_card.md"


@pytest.mark.parametrize("kind", sorted(RUN_BUILDERS))
def test_every_section_is_present_in_order(rendered_cards: dict[str, str], kind: str) -> None:
    card = rendered_cards[kind]
    positions = [card.index(heading + "\n") for heading in HEADINGS]
    assert positions == sorted(positions)


@pytest.mark.parametrize("kind", sorted(RUN_BUILDERS))
def test_tables_are_well_formed(rendered_cards: dict[str, str], kind: str) -> None:
    for block in re.findall(r"(?:^\|.*\|\n)+", rendered_cards[kind], re.MULTILINE):
        widths = {len(re.findall(r"(?<!\\)\|", line)) for line in block.splitlines()}
        assert len(widths) == 1, block


def test_model_details(rendered_cards: dict[str, str]) -> None:
    details = section(rendered_cards["binary"], "## Model details")
    for text in ("| Architecture | mlp |", "| Trainable parameters | 3,265 |", "2026-11-24 10:00 UTC", "0.1.0"):
        assert text in details, text
    assert "3f7a9c" + "0" * 58 in details


def test_intended_use(rendered_cards: dict[str, str]) -> None:
    intended = section(rendered_cards["binary"], "## Intended use")
    assert "decision support" in intended and "not a diagnosis" in intended
    assert "'sepsis_48h' (positive class: yes)" in intended
    assert "812 patients, 1,000 rows" in intended
    assert "Out of scope" in intended


def test_data_section(rendered_cards: dict[str, str]) -> None:
    data = section(rendered_cards["binary"], "## Data")
    for text in (
        "| Source | icu_admissions.csv |",  # the file's name: the card carries no local folders
        "| Rows read | 1,003 |",
        "| missing target | 3 |",
        "| missing feature values (preprocess.missing=drop) | 0 |",
        "| Test | 150 | 15.0% |",
        "| Train | 490 (70.0%) | 210 (30.0%) | 700 |",
        "column 'sepsis_48h', positive class 'yes' against no.",
        "| lactate | numeric | 121 (12.1%) | median 1.9 |",
        "48-hour horizon",
    ):
        assert text in data, text
    assert "**Predictors (4):**" in data  # the outcome column is not listed as a predictor
    assert "| sepsis_48h | binary" not in data


def test_model_development(rendered_cards: dict[str, str]) -> None:
    development = section(rendered_cards["binary"], "## Model development")
    assert "| Missing values | median, with missing-value indicator columns" in development
    assert "| Class imbalance handling | class_weight |" in development
    assert "learning rate 0.001" in development
    assert "| Best epoch (weights kept) | 22 |" in development
    assert "0.420, chosen by Youden's J statistic" in development


def test_performance_numbers(rendered_cards: dict[str, str]) -> None:
    performance = section(rendered_cards["binary"], "## Performance")
    assert "| AUROC | 0.86 (0.80–0.92) | 0.83 (0.77–0.89) | 0.85 (0.78–0.91) |" in performance
    assert "**Calibration:** Expected calibration error 0.041 (0.023–0.069); Brier score 0.132 (0.110–0.155)." in (
        performance
    )
    assert "| Logistic regression | AUROC | 0.031 (0.004–0.058) | 0.02 | Model better |" in performance
    assert "Mean (SD) across folds: 0.851 (SD 0.017)" in performance
    regression = section(rendered_cards["regression"], "## Performance")
    assert "| Root mean squared error (lower is better) | 8.05 (7.18–8.96) | 9.93 (8.91–11.02) |" in regression
    assert "| <0.001 |" in regression


def test_explainability(rendered_cards: dict[str, str]) -> None:
    explainability = section(rendered_cards["binary"], "## Explainability")
    assert "**Permutation importance** — top features: lactate, age, sex." in explainability
    assert "No feature attributions" in section(rendered_cards["minimal"], "## Explainability")


def test_limitations_of_internal_development(rendered_cards: dict[str, str]) -> None:
    limitations = section(rendered_cards["binary"], "## Limitations")
    assert "Single-source development" in limitations
    assert "`meddl evaluate runs/sepsis-risk --data other_site.csv`" in limitations
    assert "Missing data: 2 column(s) had missing values (most: lactate 12.1%" in limitations
    assert "Calibration drift" in limitations
    assert "Small evaluation set" not in limitations  # 150 cases
    assert "Wide confidence interval" not in limitations  # AUROC CI width 0.11


def test_limitations_of_small_external_validation(rendered_cards: dict[str, str]) -> None:
    card = rendered_cards["external"]
    limitations = section(card, "## Limitations")
    assert "This is an external validation on other_site.csv" in limitations
    assert "Small evaluation set: 86 cases" in limitations
    assert "Wide confidence interval: the 95% CI of the AUROC is 0.58–0.83 (width 0.25)" in limitations
    assert "Data shift: the columns that moved most were lab_00, lab_01" in limitations
    assert "| lab_09 |" in card and "lab_10" not in card


def test_wide_ci_alone_adds_a_limitation() -> None:
    run = make_binary_run()
    run["evaluation"]["model"]["metrics"]["auroc"] = {"value": 0.8, "ci": [0.68, 0.91]}
    limitations = section(render_model_card(run), "## Limitations")
    assert "Wide confidence interval" in limitations
    assert "Small evaluation set" not in limitations


def test_fairness_without_and_with_subgroups(rendered_cards: dict[str, str]) -> None:
    assert "No subgroup analysis was provided" in section(
        rendered_cards["binary"], "## Ethical considerations and fairness"
    )
    run = make_binary_run()
    run["subgroups"] = [
        {"column": "sex", "group": "F", "n": 70, "metrics": {"auroc": {"value": 0.84, "ci": [0.75, 0.91]}}}
    ]
    fairness = section(render_model_card(run), "## Ethical considerations and fairness")
    assert "| sex | F | 70 | 0.84 (0.75–0.91) |" in fairness
    assert "No subgroup analysis" not in fairness


def test_how_to_use(rendered_cards: dict[str, str]) -> None:
    usage = section(rendered_cards["binary"], "## How to use")
    assert "meddl predict runs/sepsis-risk --data cases.csv --out predictions.csv" in usage


def test_markdown_is_escaped(rendered_cards: dict[str, str]) -> None:
    card = rendered_cards["binary"]
    assert "<script>" not in card
    assert "| &lt;script>alert(1)&lt;/script> | categorical |" in card
    run = make_binary_run()
    run["data"]["columns"][0]["summary"] = "a | b\nc"
    assert "| a \\| b c |" in render_model_card(run)


def test_minimal_card_uses_dashes(rendered_cards: dict[str, str]) -> None:
    card = rendered_cards["minimal"]
    assert "| AUROC | 0.50 (no CI) |" in card
    assert "| Trainable parameters | — |" in card
