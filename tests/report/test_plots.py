"""Each figure is a real PNG when its data is present, None when it is absent, and an error when malformed."""

from __future__ import annotations

import base64
import struct
from collections.abc import Callable

import pytest

from meddl.report import plots

from .conftest import make_binary_run, make_regression_run

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(image: str) -> tuple[int, int]:
    """Width and height of a base64 PNG, read from its IHDR chunk; fails if it is not a PNG."""
    raw = base64.b64decode(image, validate=True)
    assert raw[:8] == PNG_SIGNATURE, "not a PNG"
    assert raw[12:16] == b"IHDR", "PNG without an IHDR chunk first"
    width, height = struct.unpack(">II", raw[16:24])
    return width, height


@pytest.fixture(scope="module")
def model_eval() -> dict:
    return make_binary_run()["evaluation"]["model"]


@pytest.fixture(scope="module")
def baseline_eval() -> dict:
    return make_binary_run()["evaluation"]["baselines"]["logistic_regression"]


def test_every_figure_is_a_png(model_eval: dict, baseline_eval: dict) -> None:
    curves, other = model_eval["curves"], baseline_eval["curves"]
    run = make_binary_run()
    scatter = make_regression_run()["evaluation"]["model"]["curves"]["scatter"]
    images = {
        "roc": plots.roc_plot(curves["roc"], {"Logistic regression": other["roc"]}),
        "pr": plots.pr_plot(curves["pr"], {"Logistic regression": other["pr"]}, prevalence=0.3),
        "calibration": plots.calibration_plot(curves["calibration"], {"LR": other["calibration"]}),
        "decision": plots.decision_curve_plot(curves["decision"], {"LR": other["decision"]}),
        "confusion": plots.confusion_plot(model_eval["confusion_matrix"]),
        "importance": plots.importance_plot(
            run["explanations"]["permutation_importance"], "importance", "Permutation importance", error_key="std"
        ),
        "history": plots.history_plot(run["training"]["history"], "auroc", best_epoch=22),
        "scatter": plots.regression_scatter_plot(scatter, target="sbp"),
        "shift": plots.shift_plot(
            [{"column": "age", "score": 0.5, "measure": "smd"}, {"column": "bmi", "score": -0.2}]
        ),
    }
    for name, image in images.items():
        assert image is not None, name
        width, height = png_size(image)
        assert width > 200 and height > 100, (name, width, height)


@pytest.mark.parametrize(
    "draw",
    [
        lambda: plots.roc_plot(None, None),
        lambda: plots.roc_plot({"fpr": [], "tpr": []}),
        lambda: plots.pr_plot({"recall": [None, None], "precision": [None, None]}),
        lambda: plots.calibration_plot(None),
        lambda: plots.decision_curve_plot({}),
        lambda: plots.confusion_plot(None),
        lambda: plots.confusion_plot({"labels": [], "matrix": []}),
        lambda: plots.importance_plot([], "importance", "Permutation importance"),
        lambda: plots.importance_plot([{"feature": "age", "importance": None}], "importance", "PI"),
        lambda: plots.history_plot([], "auroc"),
        lambda: plots.history_plot(None, None),
        lambda: plots.regression_scatter_plot(None),
        lambda: plots.shift_plot(None),
        lambda: plots.shift_plot([{"column": "age", "score": None}]),
    ],
)
def test_absent_data_gives_no_figure(draw: Callable[[], str | None]) -> None:
    assert draw() is None


def test_missing_points_are_skipped_not_fatal() -> None:
    image = plots.pr_plot({"recall": [0.0, 0.5, None, 1.0], "precision": [1.0, None, 0.7, 0.4]})
    assert image is not None
    png_size(image)


def test_curve_with_lists_of_different_length_is_an_error() -> None:
    with pytest.raises(ValueError, match=r"roc \(model\): fpr has 3 values but tpr has 2"):
        plots.roc_plot({"fpr": [0.0, 0.5, 1.0], "tpr": [0.0, 1.0]})


def test_curve_with_text_values_is_an_error() -> None:
    with pytest.raises(ValueError, match=r"scatter\.y_pred"):
        plots.regression_scatter_plot({"y_true": [1.0, 2.0], "y_pred": ["a", "b"]})


def test_confusion_matrix_must_match_labels() -> None:
    with pytest.raises(ValueError, match="square matrix with one row per label"):
        plots.confusion_plot({"labels": ["no", "yes", "maybe"], "matrix": [[1, 2], [3, 4]]})


def test_multiclass_one_vs_rest_curves_are_drawn() -> None:
    per_class = {
        "benign": {"fpr": [0.0, 0.2, 1.0], "tpr": [0.0, 0.8, 1.0]},
        "malignant": {"fpr": [0.0, 0.1, 1.0], "tpr": [0.0, 0.9, 1.0]},
    }
    assert plots.roc_plot(per_class) is not None


def test_same_data_gives_the_same_bytes(model_eval: dict) -> None:
    first = plots.roc_plot(model_eval["curves"]["roc"])
    assert first == plots.roc_plot(model_eval["curves"]["roc"])


def test_figures_are_not_left_open_in_pyplot(model_eval: dict) -> None:
    import matplotlib.pyplot as plt

    before = len(plt.get_fignums())
    plots.confusion_plot(model_eval["confusion_matrix"])
    plots.decision_curve_plot(model_eval["curves"]["decision"])
    assert len(plt.get_fignums()) == before


def test_larger_confusion_matrix_gives_a_larger_figure() -> None:
    small = plots.confusion_plot({"labels": ["a", "b"], "matrix": [[5, 1], [2, 6]]})
    labels = [f"class {index}" for index in range(8)]
    matrix = [[10 if row == column else 1 for column in range(8)] for row in range(8)]
    large = plots.confusion_plot({"labels": labels, "matrix": matrix})
    assert small is not None and large is not None
    assert png_size(large)[1] > png_size(small)[1]


def test_importance_plot_shows_top_k_rows_only() -> None:
    rows = [{"feature": f"gene_{index}", "importance": 1.0 / (index + 1)} for index in range(40)]
    five = plots.importance_plot(rows, "importance", "Top genes", top_k=5)
    thirty = plots.importance_plot(rows, "importance", "Top genes", top_k=30)
    assert five is not None and thirty is not None
    assert png_size(thirty)[1] > png_size(five)[1]
