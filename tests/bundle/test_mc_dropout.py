"""``meddl predict --mc-samples N``: Monte Carlo dropout averages N passes with dropout on and reports each case's
spread; a network without dropout is refused by name."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from meddl import Experiment, load_bundle
from meddl.errors import MedDLError
from tests.conftest import fast_config
from tests.test_cli import run_cli


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from meddl.data import synthetic_clinical_table
    from meddl.io import write_table

    folder = tmp_path_factory.mktemp("mc")
    csv = write_table(synthetic_clinical_table(200, seed=5), folder / "clinic.csv")
    config = fast_config(csv)
    config["model"]["dropout"] = 0.3
    config["evaluate"]["robustness"] = False
    Experiment.from_dict(config).run(folder / "run")
    return folder / "run", csv


def test_mc_dropout_averages_seeded_passes_and_reports_their_spread(trained: tuple[Path, Path]) -> None:
    run, csv = trained
    bundle = load_bundle(run)
    cases = pd.read_csv(csv).head(25)
    read = bundle.read(cases)
    mean, passes = bundle.mc_scores(read.inputs, 30)
    assert passes.shape == (30, int(read.usable.sum()))
    assert np.allclose(mean, passes.mean(axis=0))
    assert (passes.std(axis=0) > 0).all()  # dropout really was on
    assert not np.allclose(mean, bundle.scores(read.inputs))  # and is off again afterwards:
    assert np.array_equal(bundle.scores(read.inputs), bundle.scores(read.inputs))

    predicted = bundle.predict(cases, mc_samples=30)
    again = bundle.predict(cases, mc_samples=30)
    pd.testing.assert_frame_equal(predicted, again)  # seeded: the same call gives the same numbers
    scored = predicted["probability_yes"].notna().to_numpy()
    assert np.allclose(predicted.loc[scored, "probability_yes"], mean)
    assert np.allclose(predicted.loc[scored, "mc_std"], passes.std(axis=0))
    p = mean
    assert np.allclose(predicted.loc[scored, "predictive_entropy"], -(p * np.log(p) + (1 - p) * np.log(1 - p)))


def test_mc_dropout_from_the_command_line_and_its_errors(
    trained: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run, csv = trained
    code, _, err = run_cli(["predict", run, "--data", csv, "--out", tmp_path / "p.csv", "--mc-samples", "10"], capsys)
    assert code == 0, err
    assert {"mc_std", "predictive_entropy"} <= set(pd.read_csv(tmp_path / "p.csv").columns)
    code, _, err = run_cli(["predict", run, "--data", csv, "--out", tmp_path / "q.csv", "--mc-samples", "1"], capsys)
    assert code == 2 and "--mc-samples" in err

    bundle = load_bundle(run)
    for layer in bundle.model.modules():  # as if trained without dropout
        if isinstance(layer, __import__("torch").nn.Dropout):
            layer.p = 0.0
    with pytest.raises(MedDLError, match="has no dropout layer in use; MC dropout needs a model trained with dropout"):
        bundle.predict(pd.read_csv(csv).head(3), mc_samples=5)
