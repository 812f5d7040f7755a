"""Every registered modality declares corruptions of its model inputs for the robustness suite, and each one, applied
to the modality's own example data, gives inputs the (untrained) model accepts and changes them.

The modalities are read and fitted from ``Modality.example`` as the training run does, without training a model.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from meddl import Experiment
from meddl.evaluate.robustness import Corruption, corruption_rng
from meddl.modalities import Modality, Prepared, get_modality, kinds
from meddl.models import build_model
from meddl.models.registry import output_argument
from meddl.train import output_size


@dataclass
class FittedExample:
    """A modality fitted on the first 70 % of its example's rows, an untrained model, and the other rows."""

    modality: Modality
    prepared: Prepared
    model: torch.nn.Module
    test: np.ndarray
    inputs: Any


def fitted_example(kind: str, folder: Path, **sections: dict[str, Any]) -> FittedExample:
    """Read and fit ``kind``'s example data as a training run does, and build its (untrained) network; ``sections``
    replace sections of the example experiment (e.g. ``preprocess={"mode": "visits"}``)."""
    cls = get_modality(kind)
    example = cls.example(folder / "data")
    experiment = {**example.experiment, **sections}
    config = Experiment.from_dict(experiment, base_dir=folder / "data").config
    modality = cls(config)
    modality.workdir = folder / "work"
    prepared = modality.load(lambda message: None)
    n = len(prepared.target)
    train, test = np.arange(int(0.7 * n)), np.arange(int(0.7 * n), n)
    modality.fit(prepared, train)
    modality.forget_features()
    torch.manual_seed(0)
    arguments = modality.model_arguments(modality.features(prepared))
    arguments[output_argument(config.model.arch)] = output_size(config.task, len(prepared.classes))
    model = build_model(config.model.arch, dict(config.model.params), **arguments).eval()
    return FittedExample(modality, prepared, model, test, modality.robustness_inputs(prepared, test))


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """``example(kind)``: the fitted example of a kind, built once per module."""
    built: dict[str, FittedExample] = {}

    def get(kind: str) -> FittedExample:
        if kind not in built:
            built[kind] = fitted_example(kind, tmp_path_factory.mktemp(f"corruptions-{kind}"))
        return built[kind]

    return get


@pytest.mark.parametrize("kind", kinds())
def test_every_modality_declares_corruptions_with_rising_positive_severities(kind: str, example: Any) -> None:
    corruptions = example(kind).modality.corruptions()
    assert corruptions, f"{kind} declares no corruption"
    assert all(isinstance(c, Corruption) for c in corruptions)
    names = [c.name for c in corruptions]
    assert len(set(names)) == len(names), names
    for corruption in corruptions:
        assert corruption.label and corruption.unit, corruption.name
        assert all(s > 0 for s in corruption.severities) and list(corruption.severities) == sorted(
            set(corruption.severities)
        )


@pytest.mark.parametrize("kind", kinds())
def test_each_corruption_gives_inputs_the_model_scores_and_changes_them(kind: str, example: Any) -> None:
    fitted = example(kind)
    inputs = fitted.inputs
    before = np.array(inputs, copy=True)
    clean = fitted.modality.outputs(fitted.model, inputs)
    assert len(clean) == len(fitted.test)
    for corruption in fitted.modality.corruptions():
        for position, severity in enumerate(corruption.severities):
            corrupted = corruption.apply(inputs, severity, corruption_rng(0, corruption.name, position))
            where = f"{kind} {corruption.name} at {severity:g}"
            assert isinstance(corrupted, np.ndarray) and corrupted.shape == inputs.shape, where
            assert corrupted.dtype == inputs.dtype, where
            assert np.isfinite(corrupted).all(), where
            outputs = fitted.modality.outputs(fitted.model, corrupted)
            assert outputs.shape == clean.shape and np.isfinite(outputs).all(), where
        # the strongest severity changes the inputs (and so, for an untrained network too, its outputs)
        assert not np.array_equal(corrupted, inputs), f"{kind} {corruption.name} left the inputs as they were"
        assert not np.allclose(outputs, clean), f"{kind} {corruption.name} left the outputs as they were"
    np.testing.assert_array_equal(inputs, before, err_msg=f"{kind}: a corruption changed its argument")


@pytest.mark.parametrize("kind", kinds())
def test_corruptions_are_reproducible_per_seed(kind: str, example: Any) -> None:
    fitted = example(kind)
    for corruption in fitted.modality.corruptions():
        severity = corruption.severities[-1]
        first = corruption.apply(fitted.inputs, severity, corruption_rng(3, corruption.name, 0))
        again = corruption.apply(fitted.inputs, severity, corruption_rng(3, corruption.name, 0))
        np.testing.assert_array_equal(first, again, err_msg=f"{kind} {corruption.name}")


@pytest.mark.parametrize(
    ("kind", "sections"),
    [
        (
            "sequence",
            {"preprocess": {"length": 60, "encoding": "kmer"}, "model": {"arch": "seed_attention", "units": 8}},
        ),
        ("ehr", {"preprocess": {"mode": "visits"}}),
    ],
)
def test_corruptions_of_other_encodings_are_scored_and_change_the_inputs(
    kind: str, sections: dict[str, Any], tmp_path: Path
) -> None:
    """k-mer tokens (mutations re-encode the k-mers they touch) and EHR visits (codes dropped, dates jittered)."""
    fitted = fitted_example(kind, tmp_path, **sections)
    clean = fitted.modality.outputs(fitted.model, fitted.inputs)
    corruptions = fitted.modality.corruptions()
    assert corruptions
    for corruption in corruptions:
        corrupted = corruption.apply(fitted.inputs, corruption.severities[-1], np.random.default_rng(0))
        assert corrupted.shape == fitted.inputs.shape and corrupted.dtype == fitted.inputs.dtype
        assert not np.array_equal(corrupted, fitted.inputs), corruption.name
        assert fitted.modality.outputs(fitted.model, corrupted).shape == clean.shape


def test_a_missing_table_value_becomes_what_the_fitted_preprocessing_gives_a_missing_value(example: Any) -> None:
    """Dropping a variable in the encoded matrix equals encoding the raw rows with that variable blank (the imputer's
    fill, its missing indicator set)."""
    fitted = example("tabular")
    modality = fitted.modality
    dropped = next(c for c in modality.corruptions() if c.name == "dropped_variable")
    corrupted = dropped.apply(fitted.inputs, 1.0, np.random.default_rng(0))
    changed = np.flatnonzero((corrupted != fitted.inputs).any(axis=0))
    columns = {modality.fitted.source_columns_[j] for j in changed}
    assert len(columns) == 1, columns
    raw = fitted.prepared.inputs.iloc[fitted.test].copy()
    raw[columns.pop()] = np.nan
    np.testing.assert_allclose(corrupted, modality.transform(raw), rtol=1e-6, atol=1e-6)


def test_table_noise_is_in_training_sds_of_each_variable(example: Any) -> None:
    """Noise of 0.5 on the standardised matrix is, back in each variable's own unit, half its training SD."""
    fitted = example("tabular")
    modality = fitted.modality
    prep = modality.fitted
    assert prep.scale == "standard", "the example table is standardised"
    noise = next(c for c in modality.corruptions() if c.name == "noise")
    x = np.repeat(fitted.inputs[:1], 4000, axis=0)
    spread = noise.apply(x, 0.5, np.random.default_rng(0)).std(axis=0)
    numeric = [c for c, profile in prep.column_profile_.items() if profile["kind"] == "numeric"]
    assert numeric, "the example table has numeric variables"
    for j, column in enumerate(numeric):
        in_units = spread[j] * prep.scaler_["scale"][j]
        assert in_units == pytest.approx(0.5 * prep.column_profile_[column]["std"], rel=0.05), column
    assert np.all(spread[len(numeric) :] == 0), "only the numeric features get noise"


def test_a_smaller_expression_library_is_the_raw_values_divided_before_the_log(example: Any) -> None:
    fitted = example("expression")
    library = next(c for c in fitted.modality.corruptions() if c.name == "library_size")
    raw = np.asarray(fitted.prepared.inputs, dtype=np.float64)[fitted.test]
    corrupted = library.apply(fitted.inputs, 4.0, np.random.default_rng(0))
    np.testing.assert_allclose(corrupted, fitted.modality.transform(raw / 4.0), rtol=1e-4, atol=1e-4)


def test_ehr_lab_channels_are_rebuilt_as_extraction_builds_them(example: Any) -> None:
    """With nothing corrupted, rebuilding the lab channels (forward-filled value, observed, hours since) from the
    measurements gives the extracted sequences back; a lab removed is never measured and shows the never-measured
    value at every step."""
    fitted = example("ehr")
    modality, x = fitted.modality, fitted.inputs
    rebuilt = modality._corrupted(x, np.random.default_rng(0))  # type: ignore[attr-defined]
    np.testing.assert_allclose(rebuilt, x, atol=1e-5)
    groups = modality.groups  # type: ignore[attr-defined]
    missing = next(c for c in modality.corruptions() if c.name == "missing_lab")
    corrupted = missing.apply(x, 1.0, np.random.default_rng(0))
    observed = corrupted[:, :, groups["lab_observed"]]
    lost = [k for k in range(len(groups["lab_observed"])) if observed[:, :, k].sum() == 0]
    assert lost, "one lab item is never measured after the corruption"
    real = x[:, :, 0] > 0.5
    since = corrupted[:, :, groups["lab_hours_since"][lost[0]]]
    assert np.all(since[real] == 1.0) and np.all(since[~real] == 0.0)


@pytest.mark.parametrize(
    ("kind", "name"),
    # (EHR dropped events nest too, but the channels rebuilt from them, last value and hours since, need not)
    [("tabular", "missingness"), ("tabular", "dropped_variable"), ("ehr", "missing_lab")],
)
def test_stronger_severities_corrupt_a_superset(kind: str, name: str, example: Any) -> None:
    """Every severity of a corruption draws the same random numbers (as the suite applies them), so what a milder
    severity removed is removed at the stronger ones too: the curve's steps come from the severity, not from luck."""
    fitted = example(kind)
    corruption = next(c for c in fitted.modality.corruptions() if c.name == name)
    changed = [
        corruption.apply(fitted.inputs, severity, corruption_rng(0, name, 0)) != fitted.inputs
        for severity in corruption.severities
    ]
    for milder, stronger in itertools.pairwise(changed):
        assert milder.any() and not (milder & ~stronger).any(), f"{kind} {name}"
