"""Tests of meddl.preprocess.encode: BinaryEncoder (0/1) and CategoricalEncoder (one-hot)."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import NotFittedError
from sklearn.preprocessing import OneHotEncoder

from meddl.errors import MedDLError
from meddl.preprocess import BinaryEncoder, CategoricalEncoder


@pytest.fixture(scope="module")
def train() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "sex": ["M", "F", None, "F", "M", "F"],
            "smoker": [0, 1, 1, 0, 0, 1],
            "diabetic": [True, False, True, True, False, False],
            "site": ["north", "south", "east", None, "south", "south"],
            "grade": [1, 2, 2.0, 3, None, 1],
        }
    )


@pytest.fixture(scope="module")
def test() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "sex": ["F", "X", "", "M"],
            "smoker": [1.0, np.nan, 0.0, 2.0],
            "diabetic": [1, 0, True, None],
            "site": ["west", "north", None, " south "],
            "grade": ["2", 3.0, 4, None],
        }
    )


BINARY = ["sex", "smoker", "diabetic"]
CATEGORICAL = ["site", "grade"]


def test_binary_levels_are_learned_from_train_and_sorted(train: pd.DataFrame, test: pd.DataFrame) -> None:
    encoder = BinaryEncoder(columns=BINARY).fit(train)
    assert encoder.levels_["sex"] == {"kind": "string", "levels": ["F", "M"]}
    assert encoder.levels_["smoker"] == {"kind": "numeric", "levels": [0.0, 1.0]}
    assert encoder.levels_["diabetic"] == {"kind": "bool", "levels": [False, True]}
    codes = encoder.transform(test)
    expected = [[0, 1, 1], [np.nan, np.nan, 0], [np.nan, 0, 1], [1, np.nan, np.nan]]
    np.testing.assert_array_equal(codes, expected)  # 'X' and 2.0 were never seen: NaN, like a missing value
    assert encoder.count_unseen(test) == {"sex": 1, "smoker": 1, "diabetic": 0}
    np.testing.assert_array_equal(
        encoder.fit_transform(train), BinaryEncoder(columns=BINARY).fit(train).transform(train)
    )


def test_binary_column_needs_two_levels(train: pd.DataFrame) -> None:
    with pytest.raises(MedDLError, match="binary column 'site' has 3 distinct"):
        BinaryEncoder(columns=["site"]).fit(train)


def test_binary_records_equal_the_frame_path(train: pd.DataFrame, test: pd.DataFrame) -> None:
    encoder = BinaryEncoder(columns=BINARY).fit(train)
    records = [{k: (None if pd.isna(v) else v) for k, v in row.items()} for row in test.to_dict("records")]
    records.append({})  # every key absent: all missing
    frame = pd.DataFrame.from_records(records, columns=BINARY)
    np.testing.assert_array_equal(encoder.encode_records(records), encoder.transform(frame))
    assert encoder.encode_records([{"smoker": "yes"}]) is None  # text in a numeric column: the frame path decides


def test_binary_state_round_trip_and_fitted_check(train: pd.DataFrame, test: pd.DataFrame) -> None:
    with pytest.raises(NotFittedError, match="not fitted"):
        BinaryEncoder(columns=BINARY).transform(test)
    encoder = BinaryEncoder(columns=BINARY).fit(train)
    again = BinaryEncoder.from_state(json.loads(json.dumps(encoder.to_state())))
    assert again.levels_ == encoder.levels_
    np.testing.assert_array_equal(again.transform(test), encoder.transform(test))
    with pytest.raises(MedDLError, match="kind and 2 levels"):
        BinaryEncoder.from_state({"levels": {"sex": {"kind": "string", "levels": ["F"]}}})


def test_one_hot_matches_sklearn_with_unseen_as_zeros(train: pd.DataFrame, test: pd.DataFrame) -> None:
    encoder = CategoricalEncoder(columns=CATEGORICAL).fit(train)
    assert encoder.categories_ == {"site": ["east", "north", "south"], "grade": ["1", "2", "3"]}
    assert encoder.feature_names_out_ == ["site=east", "site=north", "site=south", "grade=1", "grade=2", "grade=3"]
    codes = encoder.codes(test)
    np.testing.assert_array_equal(codes, [[-1, 1], [1, 2], [np.nan, -1], [2, np.nan]])
    out = encoder.one_hot(codes)
    labels = np.array([["west", "2"], ["north", "3"], ["east", "4"], ["south", "1"]], dtype=object)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # OneHotEncoder warns about the unknown values
        reference = OneHotEncoder(categories=[["east", "north", "south"], ["1", "2", "3"]], handle_unknown="ignore")
        expected = reference.fit(labels).transform(labels).toarray()
    complete = ~np.isnan(codes)  # cells present in `test`; a missing cell gives NaN columns instead
    np.testing.assert_array_equal(out[:, :3][complete[:, 0]], expected[:, :3][complete[:, 0]])
    np.testing.assert_array_equal(out[:, 3:][complete[:, 1]], expected[:, 3:][complete[:, 1]])
    assert np.isnan(out[2, :3]).all() and np.isnan(out[3, 3:]).all()
    assert encoder.count_unseen(test) == {"site": 1, "grade": 1}
    np.testing.assert_array_equal(encoder.transform(test), out)


def test_categorical_records_state_and_fitted_check(train: pd.DataFrame, test: pd.DataFrame) -> None:
    with pytest.raises(NotFittedError, match="not fitted"):
        CategoricalEncoder(columns=CATEGORICAL).codes(test)
    with pytest.raises(MedDLError, match="column 'site' has no non-missing values"):
        CategoricalEncoder(columns=["site"]).fit(pd.DataFrame({"site": [None, " "]}))
    encoder = CategoricalEncoder(columns=CATEGORICAL).fit(train)
    records = [{"site": "west", "grade": "2"}, {"site": " north", "grade": 3}, {"grade": 1.0}]
    frame = pd.DataFrame.from_records(records, columns=CATEGORICAL)
    np.testing.assert_array_equal(encoder.encode_records(records), encoder.codes(frame))
    again = CategoricalEncoder.from_state(json.loads(json.dumps(encoder.to_state())))
    assert again.feature_names_out_ == encoder.feature_names_out_
    np.testing.assert_array_equal(again.transform(test), encoder.transform(test))
