"""The HTML report: self-contained, escaped, complete, and tolerant of absent sections."""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any

import pytest

from meddl.report import render_report, write_report
from meddl.report._format import fmt_estimate, ordered_metrics

from .conftest import make_binary_run, make_external_run, make_minimal_run, without_figures

IMAGE = re.compile(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"')
EXPECTED_FIGURES = {"binary": 8, "multiclass": 2, "regression": 1, "external": 6, "minimal": 0}


def test_write_report_writes_the_file(tmp_path: Path, binary_run: dict[str, Any]) -> None:
    written = write_report(without_figures(binary_run), tmp_path / "runs" / "sepsis-risk" / "report.html")
    assert written == tmp_path / "runs" / "sepsis-risk" / "report.html"
    text = written.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    assert text.rstrip().endswith("</html>")


def test_write_report_into_a_folder(tmp_path: Path, minimal_run: dict[str, Any]) -> None:
    assert write_report(minimal_run, tmp_path) == tmp_path / "report.html"


@pytest.mark.parametrize("kind", sorted(EXPECTED_FIGURES))
def test_report_is_self_contained(rendered_reports: dict[str, str], kind: str) -> None:
    html = rendered_reports[kind]
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", html, re.IGNORECASE)
    assert "<script" not in html.lower()
    assert "<link" not in html.lower()
    assert "@import" not in html
    assert "url(" not in html
    assert "<style>" in html


@pytest.mark.parametrize("kind", sorted(EXPECTED_FIGURES))
def test_figures_are_embedded_pngs(rendered_reports: dict[str, str], kind: str) -> None:
    images = IMAGE.findall(rendered_reports[kind])
    assert len(images) == EXPECTED_FIGURES[kind]
    for image in images:
        assert base64.b64decode(image, validate=True)[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("kind", ["binary", "multiclass", "regression", "external"])
def test_every_metric_is_shown_with_its_ci(rendered_reports: dict[str, str], kind: str) -> None:
    from .conftest import RUN_BUILDERS

    run = RUN_BUILDERS[kind]()
    html = rendered_reports[kind]
    evaluations = [run["evaluation"]["model"], *run["evaluation"].get("baselines", {}).values()]
    for evaluation in evaluations:
        for name in ordered_metrics(run["task"], evaluation["metrics"]):
            text = fmt_estimate(name, evaluation["metrics"][name])
            assert re.search(r"\(.+(–| to ).+\)", text), text
            assert f'<td class="num">{text}</td>' in html, (kind, name, text)


def test_metric_formatting_examples(rendered_reports: dict[str, str]) -> None:
    binary, regression = rendered_reports["binary"], rendered_reports["regression"]
    assert '<td>AUROC</td><td class="num">0.86 (0.80–0.92)</td>' in binary
    assert "0.132 (0.110–0.155)" in binary  # Brier: three decimals
    assert "0.011 (-0.007 to 0.039)" in binary  # a negative bound is not joined with a dash
    assert "Sensitivity (recall) †" in binary
    assert "<td>Recall" not in binary  # the same number as sensitivity, shown once
    assert "Root mean squared error (lower is better)" in regression
    assert "8.05 (7.18–8.96)" in regression
    assert "AUROC (macro average)" in rendered_reports["multiclass"]


def test_threshold_and_comparisons(rendered_reports: dict[str, str]) -> None:
    binary, regression = rendered_reports["binary"], rendered_reports["regression"]
    assert "0.420, chosen by Youden&#39;s J statistic" in binary
    assert '<td class="num">0.031 (0.004–0.058)</td><td class="num">0.02</td><td>Model better</td>' in binary
    assert "0.012 (-0.021 to 0.044)" in binary
    assert "No clear difference (CI includes 0)" in binary
    # RMSE is lower-is-better: a negative difference with a CI below zero favours the model.
    assert '-1.88 (-2.61 to -1.12)</td><td class="num">&lt;0.001</td><td>Model better' in regression


def test_dropped_rows_are_listed_even_when_zero(rendered_reports: dict[str, str]) -> None:
    html = rendered_reports["binary"]
    assert '<td>missing target</td><td class="num">3</td>' in html
    assert '<td>missing feature values (preprocess.missing=drop)</td><td class="num">0</td>' in html
    assert '<tr class="total"><td>Total dropped</td><td class="num">3</td></tr>' in html
    assert "No rows were dropped." in rendered_reports["multiclass"]
    assert "did not record which rows were dropped" in rendered_reports["minimal"]


def test_dropped_rows_that_do_not_add_up_are_flagged(binary_run: dict[str, Any]) -> None:
    binary_run["data"]["n_rows_read"] = 1010
    html = render_report(without_figures(binary_run))
    assert "Rows read minus rows used is 10, but the reasons listed account for 3." in html


def test_data_section(rendered_reports: dict[str, str]) -> None:
    html = rendered_reports["binary"]
    for text in (
        "<dd>1,003</dd>",
        "<dd>1,000</dd>",
        "<dd>812</dd>",
        '<td>Validation</td><td class="num">150</td><td class="num">15.0%</td>',
        '<td class="num">490 (70.0%)</td><td class="num">210 (30.0%)</td>',
        '<td>lactate</td><td>numeric</td><td class="num">121 (12.1%)</td><td>median 1.9</td>',
        "48-hour horizon: 12 patients discharged before 48 hours were excluded",
    ):
        assert text in html, text


def test_values_are_html_escaped(rendered_reports: dict[str, str]) -> None:
    html = rendered_reports["binary"]
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_header_notice_training_and_configuration(rendered_reports: dict[str, str]) -> None:
    html = rendered_reports["binary"]
    assert "<title>Model report: sepsis-risk</title>" in html
    assert "Clinical decision support — not a diagnosis" in html
    assert "2026-11-24 10:00 UTC" in html
    assert "3f7a9c" + "0" * 58 in html
    assert "<dd>validation AUROC</dd>" in html
    assert "<pre>name: sepsis-risk\ntask: binary" in html
    assert "column &#39;lactate&#39; has 12.1% missing values" in html
    assert '<section id="cross-validation">' in html
    assert '<td class="num">0.873</td>' in html  # a per-fold value


def test_feature_importance_tables(rendered_reports: dict[str, str]) -> None:
    html = rendered_reports["binary"]
    assert '<td class="num">1</td><td>lactate</td><td class="num">0.121 ± 0.018</td>' in html
    assert "Integrated gradients" in html
    assert '<td class="num">0.31</td>' in html


def test_external_validation_report(rendered_reports: dict[str, str]) -> None:
    html = rendered_reports["external"]
    assert "<h1>External validation report: sepsis-risk</h1>" in html
    assert "<h2>Performance on other_site.csv</h2>" in html
    assert '<section id="shift">' in html
    assert "lab_00" in html and "lab_09" in html
    assert "lab_10" not in html  # only the ten columns that moved most
    assert "Small evaluation set: 86 cases" in html
    assert "Wide confidence interval" in html and "0.58–0.83" in html
    assert '<section id="model">' in html  # the model's description is kept
    assert '<section id="importance">' not in html


def test_minimal_run_renders_with_dashes(rendered_reports: dict[str, str]) -> None:
    html = rendered_reports["minimal"]
    assert '<td>AUROC</td><td class="num">0.50 (no CI)</td>' in html
    assert '<td>Brier score (lower is better)</td><td class="num">—</td>' in html
    assert "<dt>Rows read</dt><dd>—</dd>" in html
    for section in ("model", "importance", "cross-validation", "shift", "configuration", "subgroups"):
        assert f'<section id="{section}">' not in html
    assert "Some metrics have no confidence interval" in html


def test_absent_optional_sections_do_not_raise() -> None:
    run = make_binary_run()
    for key in ("data", "model", "training", "explanations", "cross_validation", "warnings", "config_yaml"):
        run[key] = None
    run["evaluation"]["baselines"] = None
    run["evaluation"]["comparisons"] = None
    run["evaluation"]["model"]["curves"] = None
    html = render_report(run)
    assert len(IMAGE.findall(html)) == 1  # only the confusion matrix is left
    assert "0.86 (0.80–0.92)" in html


def test_subgroups_are_reported_when_provided() -> None:
    run = make_external_run()
    run["subgroups"] = [
        {"column": "sex", "group": "F", "n": 40, "metrics": {"auroc": {"value": 0.69, "ci": [0.51, 0.84]}}},
        {"column": "sex", "group": "M", "n": 46, "metrics": {"auroc": {"value": 0.73, "ci": [0.57, 0.87]}}},
    ]
    html = render_report(without_figures(run))
    assert '<section id="subgroups">' in html
    assert '<td>sex</td><td>F</td><td class="num">40</td><td class="num">0.69 (0.51–0.84)</td>' in html


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda run: run.pop("kind"), "'kind' is missing"),
        (lambda run: run.update(kind="deploy"), "'kind' must be one of"),
        (lambda run: run.pop("task"), "'task' is missing"),
        (lambda run: run["evaluation"].pop("model"), "'evaluation.model' is missing"),
    ],
)
def test_missing_required_keys_are_named(change: Any, message: str) -> None:
    run = make_minimal_run()
    change(run)
    with pytest.raises(ValueError, match=message):
        render_report(run)
