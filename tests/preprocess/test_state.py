"""Tests of the persistence protocol shared by the preprocessors (meddl.preprocess._state)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from meddl.errors import MedDLError
from meddl.preprocess import (
    BinaryEncoder,
    CategoricalEncoder,
    Imputer,
    MissingIndicators,
    NumericScaler,
    TabularPreprocessor,
)
from meddl.preprocess._state import StateProtocol, join_arrays, read_state, split_arrays, write_state
from meddl.preprocess.ehr import SequenceScaler
from meddl.preprocess.expression import ExpressionTransform
from meddl.preprocess.sequences import KmerTokenizer, SequenceEncoder
from meddl.preprocess.signals import SignalPipeline
from tests.preprocess.test_tabular import BINARY, CATEGORICAL, NUMERIC, make_cohort

SMALL = pd.DataFrame(
    {
        "age": [50.0, 60.0, np.nan, 80.0, 70.0, 60.0],
        "sex": ["F", "M", "M", None, "F", "M"],
        "site": ["north", "south", "north", "east", None, "north"],
    }
)

# preprocess.json of TabularPreprocessor(numeric=["age"], binary=["sex"], categorical=["site"]).fit(SMALL), as
# written before the preprocessor was split into steps: bundles saved then must keep loading, and new ones
# keep the same bytes.
SMALL_STATE = {
    "version": 1,
    "kind": "TabularPreprocessor",
    "config": {
        "numeric": ["age"],
        "binary": ["sex"],
        "categorical": ["site"],
        "missing": "median",
        "missing_indicators": True,
        "scale": "standard",
        "knn_neighbors": 5,
        "iterative_max_iter": 10,
        "random_state": 0,
    },
    "input_columns": ["age", "sex", "site"],
    "feature_names_out": [
        *("age", "sex", "site=east", "site=north", "site=south"),
        *("age__missing", "sex__missing", "site__missing"),
    ],
    "source_columns": ["age", "sex", "site", "site", "site", "age", "sex", "site"],
    "numeric_fill": [60.0],
    "scaler": {"mean": [63.333333333333336], "scale": [9.428090415820632]},
    "binary": {"sex": {"kind": "string", "levels": ["F", "M"], "fill": 1}},
    "categorical": {"site": {"categories": ["east", "north", "south"], "fill": "north"}},
    "indicator_columns": ["age", "sex", "site"],
    "iterative_n_iter": None,
    "arrays": [],
    "column_profile": {
        "age": {
            "kind": "numeric",
            "mean": 64.0,
            "std": 10.198039027185569,
            "quantiles": [52.0, 60.0, 60.0, 70.0, 78.0],
            "missing_rate": 0.16666666666666666,
        },
        "sex": {"kind": "categorical", "frequencies": {"F": 0.4, "M": 0.6}, "missing_rate": 0.16666666666666666},
        "site": {
            "kind": "categorical",
            "frequencies": {"east": 0.2, "north": 0.6, "south": 0.2},
            "missing_rate": 0.16666666666666666,
        },
    },
}


@pytest.mark.parametrize(
    "cls",
    [
        TabularPreprocessor,
        BinaryEncoder,
        CategoricalEncoder,
        Imputer,
        MissingIndicators,
        NumericScaler,
        SequenceScaler,
        ExpressionTransform,
        SignalPipeline,
        SequenceEncoder,
        KmerTokenizer,
    ],
)
def test_every_preprocessor_follows_the_protocol(cls: type) -> None:
    assert issubclass(cls, StateProtocol)
    assert isinstance(cls.__dict__["from_state"], classmethod)


def test_split_and_join_keep_key_order_and_arrays() -> None:
    coef = np.arange(6.0).reshape(2, 3)
    state = {"version": 1, "arrays": {"coef": coef, "a": np.array([1, 2])}, "tail": None}
    json_state, arrays = split_arrays(state)
    assert list(json_state) == ["version", "arrays", "tail"] and json_state["arrays"] == ["a", "coef"]
    assert list(arrays) == ["coef", "a"] and arrays["coef"] is not coef  # copies, in their order
    joined = join_arrays(json.loads(json.dumps(json_state)), arrays)
    np.testing.assert_array_equal(joined["arrays"]["coef"], coef)
    assert split_arrays({"k": 1}) == ({"k": 1}, {})
    with pytest.raises(ValueError, match=r"do not match the listed \['a', 'coef'\]"):
        join_arrays(json_state, {"coef": coef})


def test_write_and_read_state(tmp_path: Path) -> None:
    written = write_state(tmp_path, {"x": 1.5, "arrays": []}, {}, state_file="s.json", arrays_file="s.npz")
    assert written == [tmp_path / "s.json"]
    assert (tmp_path / "s.json").read_text() == '{\n  "x": 1.5,\n  "arrays": []\n}\n'
    arrays = {"w": np.eye(2)}
    write_state(tmp_path / "sub", {"arrays": ["w"]}, arrays, state_file="s.json", arrays_file="s.npz")
    state, read = read_state(tmp_path / "sub", state_file="s.json", arrays_file="s.npz")
    assert state == {"arrays": ["w"]} and np.array_equal(read["w"], np.eye(2))
    (tmp_path / "sub" / "s.npz").unlink()
    with pytest.raises(MedDLError, match=r"s\.npz: file not found \(listed in s\.json\)"):
        read_state(tmp_path / "sub", state_file="s.json", arrays_file="s.npz")
    with pytest.raises(ValueError, match="not JSON compliant"):  # strict JSON: never NaN
        write_state(tmp_path, {"x": float("nan")}, {}, state_file="t.json", arrays_file="t.npz")


def test_tabular_files_keep_the_layout_written_before_the_split(tmp_path: Path) -> None:
    prep = TabularPreprocessor(numeric=["age"], binary=["sex"], categorical=["site"]).fit(SMALL)
    prep.save(tmp_path / "new")
    expected = json.dumps(SMALL_STATE, indent=2) + "\n"
    assert (tmp_path / "new" / "preprocess.json").read_text(encoding="utf-8") == expected
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "preprocess.json").write_text(expected, encoding="utf-8")
    loaded = TabularPreprocessor.load(tmp_path / "old")
    np.testing.assert_array_equal(loaded.transform(SMALL), prep.transform(SMALL))


@pytest.mark.parametrize("missing", ["median", "knn", "iterative"])
def test_tabular_to_state_round_trip_with_arrays_inside(missing: str) -> None:
    train, test = make_cohort(60, seed=1), make_cohort(20, seed=2, start=500)
    prep = TabularPreprocessor(numeric=NUMERIC, binary=BINARY, categorical=CATEGORICAL, missing=missing).fit(train)
    state = prep.to_state()
    assert isinstance(state["arrays"], dict) and bool(state["arrays"]) == (missing != "median")
    assert split_arrays(state)[0] == prep.get_state()[0]
    again = TabularPreprocessor.from_state(state)
    np.testing.assert_array_equal(again.transform(test), prep.transform(test))
    assert [name for name, _ in prep.steps_] == ["binary", "categorical", "indicators", "impute", "scale"]
