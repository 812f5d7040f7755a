"""The robustness suite of a training run (``evaluate.robustness``): figures for metrics.json and the report's section,
for every registered modality (fitted on its example data; an untrained network is enough to check the wiring)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pytest

from meddl.modalities import kinds
from meddl.run.robustness import robustness_report
from meddl.train import scores_from_outputs
from tests.modalities.test_corruptions import fitted_example


@pytest.mark.parametrize("kind", kinds())
def test_the_report_holds_every_corruption_and_severity_with_cis_and_a_figure(kind: str, tmp_path: Path) -> None:
    fitted = fitted_example(kind, tmp_path)
    config = fitted.modality.config
    assert config.evaluate.robustness, "on by default"
    figures, section = robustness_report(
        config,
        fitted.modality,
        fitted.model,
        fitted.prepared,
        fitted.test,
        lambda outputs: scores_from_outputs(config.task, outputs),
        0.5 if config.task == "binary" else None,
    )
    assert figures is not None and section is not None
    json.dumps(figures, allow_nan=False)  # metrics.json takes it as it is
    corruptions = fitted.modality.corruptions()
    assert [c["name"] for c in figures["corruptions"]] == [c.name for c in corruptions]
    assert figures["n"] == len(fitted.test) and figures["clean"]["value"] is not None
    for entry, corruption in zip(figures["corruptions"], corruptions, strict=True):
        assert [row["severity"] for row in entry["severities"]] == list(corruption.severities)
        for row in entry["severities"]:
            low, high = row["ci"]
            assert low is not None and low <= row["value"] <= high
    assert section["id"] == "robustness" and section["text"]
    assert len(section["table"]["rows"]) == sum(len(c.severities) for c in corruptions)
    assert all(len(row) == len(section["table"]["columns"]) for row in section["table"]["rows"])
    png = base64.b64decode(section["figures"][0]["png"])
    assert png.startswith(b"\x89PNG")


def test_nothing_is_measured_when_robustness_is_off(tmp_path: Path) -> None:
    fitted = fitted_example(kinds()[0], tmp_path)
    config = fitted.modality.config.model_copy(deep=True)
    config.evaluate.robustness = False
    outputs = robustness_report(
        config, fitted.modality, fitted.model, fitted.prepared, fitted.test, lambda o: np.asarray(o), None
    )
    assert outputs == (None, None)
