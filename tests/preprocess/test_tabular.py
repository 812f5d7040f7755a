"""Tests of meddl.preprocess.tabular, each strategy checked against its scikit-learn equivalent."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.experimental import enable_iterative_imputer  # noqa: F401
from sklearn.impute import IterativeImputer, KNNImputer, MissingIndicator, SimpleImputer
from sklearn.linear_model import BayesianRidge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler, OneHotEncoder, RobustScaler, StandardScaler

from meddl.errors import MedDLError
from meddl.preprocess import MISSING_STRATEGIES, SCALERS, TabularPreprocessor
from meddl.preprocess.tabular import _replay_iterative

NUMERIC = ["age", "crp", "sbp"]
BINARY = ["sex", "smoker"]
CATEGORICAL = ["site"]
SCALER_CLASSES = {"standard": StandardScaler, "minmax": MinMaxScaler, "robust": RobustScaler}


def make_cohort(n: int, seed: int, start: int = 0) -> pd.DataFrame:
    """A small clinical table with ~15 % missing cells; the index is the original row number."""
    rng = np.random.default_rng(seed)
    age = rng.normal(62, 12, n)
    frame = pd.DataFrame(
        {
            "age": age,
            "crp": rng.gamma(2.0, 4.0, n) + 0.05 * age,
            "sbp": 100 + 0.6 * age + rng.normal(0, 8, n),
            "sex": rng.choice(["F", "M"], n).astype(object),
            "smoker": rng.integers(0, 2, n).astype(float),
            "site": rng.choice(["north", "south", "east"], n).astype(object),
        },
        index=pd.RangeIndex(start, start + n),
    )
    for column in frame.columns:
        frame.loc[rng.random(n) < 0.15, column] = np.nan
    return frame


@pytest.fixture(scope="module")
def train() -> pd.DataFrame:
    return make_cohort(80, seed=1)


@pytest.fixture(scope="module")
def test() -> pd.DataFrame:
    frame = make_cohort(30, seed=2, start=1000)
    frame.loc[1001, "site"] = "west"  # a category never seen in training
    return frame


def binary_codes(frame: pd.DataFrame) -> np.ndarray:
    """Reference 0/1 coding of the fixture's binary columns: 'M' and 1.0 are the second sorted levels."""
    sex = frame["sex"].map({"F": 0.0, "M": 1.0}).to_numpy(dtype=float)
    smoker = frame["smoker"].to_numpy(dtype=float)
    return np.column_stack([sex, smoker])


def numeric_only(missing: str, scale: str, **kwargs: object) -> TabularPreprocessor:
    return TabularPreprocessor(numeric=NUMERIC, missing=missing, scale=scale, missing_indicators=False, **kwargs)


# ---------------------------------------------------------------- configuration


def test_init_only_stores_arguments_and_clones() -> None:
    prep = TabularPreprocessor(numeric=["age"], missing="not-a-strategy", scale="bogus")
    assert prep.missing == "not-a-strategy"  # validation happens in fit, not __init__
    copy = clone(TabularPreprocessor(numeric=["age"], missing="knn", knn_neighbors=3))
    assert copy.get_params()["knn_neighbors"] == 3
    assert not hasattr(copy, "feature_names_out_")


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"missing": "zero"}, "preprocess.missing"),
        ({"scale": "log"}, "preprocess.scale"),
        ({"knn_neighbors": 0}, "preprocess.knn_neighbors"),
        ({"numeric": ["age"], "categorical": ["age"]}, "'age'"),
    ],
)
def test_invalid_config_names_the_field(train: pd.DataFrame, kwargs: dict, field: str) -> None:
    params = {"numeric": ["age"], **kwargs}
    with pytest.raises(MedDLError, match=field.replace(".", r"\.")) as info:
        TabularPreprocessor(**params).fit(train)
    if "missing" in kwargs:
        assert "'zero'" in str(info.value)


def test_transform_before_fit_is_a_clear_error(train: pd.DataFrame) -> None:
    with pytest.raises(NotFittedError, match="not fitted"):
        TabularPreprocessor(numeric=NUMERIC).transform(train)


# ---------------------------------------------------------------- numeric vs scikit-learn


@pytest.mark.parametrize("scale", ["standard", "minmax", "robust", "none"])
@pytest.mark.parametrize("missing", ["mean", "median", "most_frequent"])
def test_simple_imputation_and_scaling_match_sklearn(
    train: pd.DataFrame, test: pd.DataFrame, missing: str, scale: str
) -> None:
    prep = numeric_only(missing, scale).fit(train)
    steps = [SimpleImputer(strategy=missing)]
    if scale != "none":
        steps.append(SCALER_CLASSES[scale]())
    reference = make_pipeline(*steps).fit(train[NUMERIC].to_numpy(float))
    expected = reference.transform(test[NUMERIC].to_numpy(float))
    out = prep.transform(test)
    assert out.dtype == np.float32 and out.shape == (len(test), len(NUMERIC))
    np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("scale", ["standard", "minmax", "robust"])
def test_constant_column_does_not_divide_by_zero(scale: str) -> None:
    frame = pd.DataFrame({"age": [50.0, 60.0, 70.0, 80.0], "flag": [3.0, 3.0, 3.0, 3.0]})
    out = TabularPreprocessor(numeric=["age", "flag"], scale=scale).fit_transform(frame)
    expected = SCALER_CLASSES[scale]().fit_transform(frame.to_numpy())
    assert np.all(np.isfinite(out))
    np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-6)


def test_knn_matches_sklearn_on_numeric_and_binary_block(train: pd.DataFrame, test: pd.DataFrame) -> None:
    prep = TabularPreprocessor(
        numeric=NUMERIC,
        binary=BINARY,
        missing="knn",
        knn_neighbors=3,
        scale="standard",
        missing_indicators=False,
    ).fit(train)
    block_train = np.hstack([train[NUMERIC].to_numpy(float), binary_codes(train)])
    block_test = np.hstack([test[NUMERIC].to_numpy(float), binary_codes(test)])
    knn = KNNImputer(n_neighbors=3).fit(block_train)
    imputed_train, imputed_test = knn.transform(block_train), knn.transform(block_test)
    scaler = StandardScaler().fit(imputed_train[:, :3])
    expected = np.hstack([scaler.transform(imputed_test[:, :3]), imputed_test[:, 3:]])
    np.testing.assert_allclose(prep.transform(test), expected, rtol=1e-6, atol=1e-6)


def sklearn_iterative(block_train: np.ndarray, max_iter: int, n_numeric: int) -> IterativeImputer:
    n_features = block_train.shape[1]
    min_value = np.r_[np.full(n_numeric, -np.inf), np.zeros(n_features - n_numeric)]
    max_value = np.r_[np.full(n_numeric, np.inf), np.ones(n_features - n_numeric)]
    imputer = IterativeImputer(
        estimator=BayesianRidge(),
        sample_posterior=False,
        max_iter=max_iter,
        random_state=0,
        min_value=min_value,
        max_value=max_value,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return imputer.fit(block_train)


def test_iterative_replay_equals_sklearn_transform(train: pd.DataFrame, test: pd.DataFrame) -> None:
    prep = TabularPreprocessor(
        numeric=NUMERIC, binary=BINARY, missing="iterative", scale="none", missing_indicators=False
    ).fit(train)
    block_train = np.hstack([train[NUMERIC].to_numpy(float), binary_codes(train)])
    block_test = np.hstack([test[NUMERIC].to_numpy(float), binary_codes(test)])
    reference = sklearn_iterative(block_train, max_iter=10, n_numeric=3)
    assert prep.iterative_n_iter_ == reference.n_iter_
    _, arrays = prep.get_state()
    replayed = _replay_iterative(
        block_test,
        initial_statistics=arrays["iterative_initial_statistics"],
        min_value=arrays["iterative_min_value"],
        max_value=arrays["iterative_max_value"],
        feat_idx=arrays["iterative_feat_idx"],
        neighbor_feat_idx=arrays["iterative_neighbor_feat_idx"],
        coef=arrays["iterative_coef"],
        intercept=arrays["iterative_intercept"],
    )
    expected = reference.transform(block_test)
    assert np.isnan(block_test).any()  # the comparison exercises imputation
    np.testing.assert_allclose(replayed, expected, rtol=0, atol=1e-6)
    np.testing.assert_allclose(prep.transform(test), expected, rtol=1e-6, atol=1e-6)
    assert np.all((expected[:, 3:] >= 0) & (expected[:, 3:] <= 1))


def test_iterative_with_standard_scaling_matches_sklearn_pipeline(train: pd.DataFrame, test: pd.DataFrame) -> None:
    prep = numeric_only("iterative", "standard", iterative_max_iter=5).fit(train)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reference = make_pipeline(
            IterativeImputer(estimator=BayesianRidge(), max_iter=5, random_state=0), StandardScaler()
        ).fit(train[NUMERIC].to_numpy(float))
    expected = reference.transform(test[NUMERIC].to_numpy(float))
    np.testing.assert_allclose(prep.transform(test), expected, rtol=1e-5, atol=1e-5)


def test_drop_passes_nan_through(train: pd.DataFrame, test: pd.DataFrame) -> None:
    prep = TabularPreprocessor(
        numeric=NUMERIC, binary=BINARY, categorical=CATEGORICAL, missing="drop", missing_indicators=False
    ).fit(train.dropna())
    out = prep.transform(test)
    numeric_nan = test[NUMERIC].isna().to_numpy()
    np.testing.assert_array_equal(np.isnan(out[:, :3]), numeric_nan)
    np.testing.assert_array_equal(np.isnan(out[:, 3:5]), test[BINARY].isna().to_numpy())
    site_missing = test["site"].isna().to_numpy()
    assert np.isnan(out[site_missing, 5:]).all() and not np.isnan(out[~site_missing, 5:]).any()
    expected = StandardScaler().fit(train.dropna()[NUMERIC].to_numpy(float)).transform(test[NUMERIC].to_numpy(float))
    np.testing.assert_allclose(out[:, :3], expected, rtol=1e-6, atol=1e-6)


# ---------------------------------------------------------------- binary, categorical, indicators


def test_binary_coding_rules() -> None:
    frame = pd.DataFrame(
        {
            "smoker": [0, 1, 1, 0],
            "diabetic": [True, False, True, True],
            "sex": ["M", "F", "F", "M"],
            "arm": [2.0, 7.0, 7.0, 2.0],
        }
    )
    prep = TabularPreprocessor(binary=["smoker", "diabetic", "sex", "arm"], missing_indicators=False).fit(frame)
    out = prep.transform(frame)
    np.testing.assert_array_equal(out[:, 0], [0, 1, 1, 0])  # 1 stays 1
    np.testing.assert_array_equal(out[:, 1], [1, 0, 1, 1])  # True is 1
    np.testing.assert_array_equal(out[:, 2], [1, 0, 0, 1])  # 'M' is the second sorted level
    np.testing.assert_array_equal(out[:, 3], [0, 1, 1, 0])
    state, _ = prep.get_state()
    assert state["binary"]["sex"]["levels"] == ["F", "M"]
    assert state["binary"]["diabetic"]["levels"] == [False, True]
    # Read back from CSV, with a missing value, the integer column becomes float: it still matches.
    later = pd.DataFrame({"smoker": [1.0, np.nan], "diabetic": [1, 0], "sex": ["F", "M"], "arm": [7, 2]})
    np.testing.assert_array_equal(prep.transform(later)[:, :4], [[1, 1, 0, 1], [0, 0, 1, 0]])


def test_binary_needs_exactly_two_levels() -> None:
    frame = pd.DataFrame({"grade": ["a", "b", "c", "a"]})
    with pytest.raises(MedDLError, match=r"binary column 'grade' has 3 distinct"):
        TabularPreprocessor(binary=["grade"]).fit(frame)


def test_binary_unseen_value_is_imputed_as_missing_and_counted(train: pd.DataFrame) -> None:
    prep = TabularPreprocessor(binary=["sex"], missing="most_frequent").fit(train)
    mode = train["sex"].mode()[0]
    frame = pd.DataFrame({"sex": ["M", "unknown", np.nan, "F"]})
    out = prep.transform(frame)
    np.testing.assert_array_equal(out[:, 0], [1.0, float(mode == "M"), float(mode == "M"), 0.0])
    np.testing.assert_array_equal(out[:, 1], [0, 1, 1, 0])  # sex__missing
    assert prep.count_unseen(frame) == {"sex": 1}


def test_one_hot_matches_sklearn_and_unseen_gives_zeros(train: pd.DataFrame, test: pd.DataFrame) -> None:
    prep = TabularPreprocessor(categorical=CATEGORICAL, missing="most_frequent", missing_indicators=False).fit(train)
    reference = make_pipeline(
        SimpleImputer(strategy="most_frequent"),
        OneHotEncoder(handle_unknown="ignore", sparse_output=False),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # OneHotEncoder warns about the unknown 'west'
        reference.fit(train[CATEGORICAL].to_numpy(object))
        expected = reference.transform(test[CATEGORICAL].to_numpy(object))
    out = prep.transform(test)
    np.testing.assert_array_equal(out, expected)
    assert prep.feature_names_out_ == ["site=east", "site=north", "site=south"]
    row_west = test.index.get_loc(1001)
    np.testing.assert_array_equal(out[row_west], [0, 0, 0])
    assert prep.count_unseen(test) == {"site": 1}
    assert prep.count_unseen(train) == {"site": 0}


def test_missing_indicators_match_sklearn(train: pd.DataFrame, test: pd.DataFrame) -> None:
    columns = [*NUMERIC, *BINARY, *CATEGORICAL]
    train_part = train[columns].copy()
    train_part["sbp"] = train_part["sbp"].fillna(120.0)  # no missing value in training: no indicator
    prep = TabularPreprocessor(numeric=NUMERIC, binary=BINARY, categorical=CATEGORICAL).fit(train_part)
    reference = MissingIndicator(features="missing-only", error_on_new=False).fit(train_part.to_numpy(object))
    expected = reference.transform(test[columns].to_numpy(object))
    n_indicators = len(reference.features_)
    np.testing.assert_array_equal(prep.transform(test)[:, -n_indicators:], expected)
    assert prep.indicator_columns_ == [columns[i] for i in reference.features_]
    assert "sbp__missing" not in prep.feature_names_out_
    assert prep.feature_names_out_[-n_indicators:] == [f"{columns[i]}__missing" for i in reference.features_]


def test_feature_names_and_sources(train: pd.DataFrame) -> None:
    prep = TabularPreprocessor(numeric=NUMERIC, binary=BINARY, categorical=CATEGORICAL).fit(train)
    assert prep.input_columns_ == [*NUMERIC, *BINARY, *CATEGORICAL]
    assert prep.feature_names_out_ == [
        *NUMERIC,
        *BINARY,
        "site=east",
        "site=north",
        "site=south",
        *(f"{c}__missing" for c in [*NUMERIC, *BINARY, *CATEGORICAL]),
    ]
    assert prep.source_columns_ == [*NUMERIC, *BINARY, "site", "site", "site", *NUMERIC, *BINARY, "site"]
    assert prep.n_features_out_ == len(prep.feature_names_out_) == prep.transform(train).shape[1]


# ---------------------------------------------------------------- leakage


def test_statistics_come_from_the_training_split_only(train: pd.DataFrame, test: pd.DataFrame) -> None:
    prep = TabularPreprocessor(numeric=NUMERIC, missing="median", scale="standard").fit(train)
    np.testing.assert_allclose(prep.numeric_fill_, train[NUMERIC].median())
    assert not np.allclose(prep.numeric_fill_, test[NUMERIC].median())
    imputed_train = train[NUMERIC].fillna(train[NUMERIC].median())
    np.testing.assert_allclose(prep.scaler_["mean"], imputed_train.mean())
    np.testing.assert_allclose(prep.scaler_["scale"], imputed_train.std(ddof=0))
    # A missing test value becomes the training median, scaled with the training mean and std.
    row = int(np.flatnonzero(test["age"].isna().to_numpy())[0])
    expected = (train["age"].median() - imputed_train["age"].mean()) / imputed_train["age"].std(ddof=0)
    assert prep.transform(test)[row, 0] == pytest.approx(expected, rel=1e-6)
    # Transforming other data never changes what was learned.
    before = prep.get_state()[0]
    prep.transform(test)
    assert prep.get_state()[0] == before


def test_column_profile(train: pd.DataFrame) -> None:
    prep = TabularPreprocessor(numeric=NUMERIC, binary=BINARY, categorical=CATEGORICAL).fit(train)
    age = prep.column_profile_["age"]
    observed = train["age"].dropna()
    assert age["kind"] == "numeric"
    assert age["mean"] == pytest.approx(observed.mean())
    assert age["std"] == pytest.approx(observed.std(ddof=0))
    np.testing.assert_allclose(age["quantiles"], np.percentile(observed, [5, 25, 50, 75, 95]))
    assert age["missing_rate"] == pytest.approx(train["age"].isna().mean())
    site = prep.column_profile_["site"]
    assert site["kind"] == "categorical"
    assert site["frequencies"] == pytest.approx(train["site"].value_counts(normalize=True).to_dict())
    assert prep.column_profile_["smoker"]["frequencies"].keys() == {"0", "1"}


# ---------------------------------------------------------------- bad input


def test_absent_columns_are_all_named_and_extra_columns_ignored(train: pd.DataFrame) -> None:
    prep = TabularPreprocessor(numeric=NUMERIC, binary=BINARY, categorical=CATEGORICAL).fit(train)
    with pytest.raises(MedDLError, match=r"'crp', 'site'"):
        prep.transform(train.drop(columns=["crp", "site"]))
    extra = train.assign(notes="free text", patient_id=range(len(train)))
    np.testing.assert_array_equal(prep.transform(extra), prep.transform(train))


@pytest.mark.parametrize("stage", ["fit", "transform"])
def test_non_numeric_values_name_column_count_value_and_row(train: pd.DataFrame, stage: str) -> None:
    bad = train.copy()
    bad.index = pd.RangeIndex(100, 100 + len(bad))
    bad["age"] = bad["age"].astype(object)
    bad.loc[137, "age"] = "unknown"
    bad.loc[150, "age"] = ">90"
    bad.loc[160, "age"] = "  "  # blank counts as missing, not as text
    prep = TabularPreprocessor(numeric=NUMERIC)
    if stage == "transform":
        prep.fit(train)
    with pytest.raises(MedDLError, match=r"column 'age' has 2 non-numeric values, e.g. 'unknown' \(row 137\)"):
        getattr(prep, stage)(bad)


def test_numeric_strings_are_coerced() -> None:
    frame = pd.DataFrame({"age": ["61", " 70.5 ", "", None]}, dtype=object)
    out = TabularPreprocessor(numeric=["age"], missing="mean", scale="none").fit_transform(frame)
    np.testing.assert_allclose(out[:, 0], [61.0, 70.5, 65.75, 65.75])
    np.testing.assert_array_equal(out[:, 1], [0, 0, 1, 1])


def test_column_without_observed_values_is_rejected() -> None:
    frame = pd.DataFrame({"age": [50.0, 60.0], "lactate": [np.nan, np.nan]})
    with pytest.raises(MedDLError, match="column 'lactate' has no non-missing values"):
        TabularPreprocessor(numeric=["age", "lactate"]).fit(frame)


# ---------------------------------------------------------------- state


@pytest.mark.parametrize("missing", MISSING_STRATEGIES)
def test_save_load_gives_identical_transform_without_pickle(
    train: pd.DataFrame, test: pd.DataFrame, tmp_path: Path, missing: str
) -> None:
    fit_frame = train.dropna() if missing == "drop" else train
    prep = TabularPreprocessor(
        numeric=NUMERIC, binary=BINARY, categorical=CATEGORICAL, missing=missing, scale="robust"
    ).fit(fit_frame)
    written = prep.save(tmp_path)
    joint = missing in ("knn", "iterative")
    assert sorted(p.name for p in written) == (["preprocess.json", "preprocess.npz"] if joint else ["preprocess.json"])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in written)

    state = json.loads((tmp_path / "preprocess.json").read_text())
    assert state["version"] == 1 and state["config"]["missing"] == missing
    assert "column_profile" in state
    if joint:
        with np.load(tmp_path / "preprocess.npz", allow_pickle=False) as archive:
            assert all(archive[name].dtype != object for name in archive.files)
            assert sorted(archive.files) == state["arrays"]

    loaded = TabularPreprocessor.load(tmp_path)
    np.testing.assert_array_equal(loaded.transform(test), prep.transform(test))
    assert loaded.feature_names_out_ == prep.feature_names_out_
    assert loaded.source_columns_ == prep.source_columns_
    assert loaded.column_profile_ == prep.column_profile_
    assert loaded.count_unseen(test) == prep.count_unseen(test)
    # The in-memory state round-trips too, and is strict JSON.
    state, arrays = prep.get_state()
    json.dumps(state, allow_nan=False)
    again = TabularPreprocessor.from_state(json.loads(json.dumps(state)), arrays)
    np.testing.assert_array_equal(again.transform(test), prep.transform(test))


def test_load_rejects_bad_files_naming_them(train: pd.DataFrame, tmp_path: Path) -> None:
    with pytest.raises(MedDLError, match=r"preprocess\.json: file not found"):
        TabularPreprocessor.load(tmp_path)
    prep = TabularPreprocessor(numeric=NUMERIC, missing="knn").fit(train)
    prep.save(tmp_path)
    state_path = tmp_path / "preprocess.json"
    state = json.loads(state_path.read_text())

    state_path.write_text(json.dumps({**state, "version": 2}))
    with pytest.raises(MedDLError, match=r"preprocess\.json: .*version 2"):
        TabularPreprocessor.load(tmp_path)

    state_path.write_text(json.dumps({k: v for k, v in state.items() if k != "scaler"}))
    with pytest.raises(MedDLError, match=r"preprocess\.json: .*missing key.*'scaler'"):
        TabularPreprocessor.load(tmp_path)

    state_path.write_text(json.dumps({**state, "config": {**state["config"], "scale": "log"}}))
    with pytest.raises(MedDLError, match=r"preprocess\.json: preprocess\.scale"):
        TabularPreprocessor.load(tmp_path)

    state_path.write_text("{not json")
    with pytest.raises(MedDLError, match=r"preprocess\.json: not a valid"):
        TabularPreprocessor.load(tmp_path)

    state_path.write_text(json.dumps(state))
    np.savez(tmp_path / "preprocess.npz", knn_fit_X=np.array([{"a": 1}], dtype=object))
    with pytest.raises(MedDLError, match=r"preprocess\.npz"):
        TabularPreprocessor.load(tmp_path)

    (tmp_path / "preprocess.npz").unlink()
    with pytest.raises(MedDLError, match=r"preprocess\.npz: file not found"):
        TabularPreprocessor.load(tmp_path)


def test_scalers_constant_is_complete() -> None:
    assert set(SCALERS) == {"standard", "minmax", "robust", "none"}
    assert set(MISSING_STRATEGIES) == {"drop", "mean", "median", "most_frequent", "knn", "iterative"}


@pytest.mark.parametrize("missing", ["median", "knn", "iterative", "drop"])
def test_nullable_dtypes_and_empty_frames(missing: str) -> None:
    frame = pd.DataFrame(
        {
            "age": pd.array([50, None, 70, 80], dtype="Int64"),
            "flag": pd.array([True, None, False, True], dtype="boolean"),
            "site": pd.Series(["a", "b", None, "a"], dtype="category"),
        }
    )
    prep = TabularPreprocessor(numeric=["age"], binary=["flag"], categorical=["site"], missing=missing)
    out = prep.fit_transform(frame)
    assert out.shape == (4, prep.n_features_out_)
    assert np.isnan(out).any() == (missing == "drop")
    np.testing.assert_array_equal(out[:, -3:], frame.isna().to_numpy(dtype=float))
    assert prep.transform(frame.iloc[:0]).shape == (0, prep.n_features_out_)


def test_from_state_requires_the_full_config(train: pd.DataFrame) -> None:
    state, arrays = TabularPreprocessor(numeric=NUMERIC).fit(train).get_state()
    del state["config"]["scale"]
    with pytest.raises(MedDLError, match=r"config is missing key\(s\): 'scale'"):
        TabularPreprocessor.from_state(state, arrays)


# ---------------------------------------------------------------- transform_records (the serving fast path)


def random_record(rng: np.random.Generator) -> dict:
    """One JSON-like record mixing every cell form a client may send: numbers as int or float, None, absent
    keys, blank strings, NaN, numeric text, booleans, unseen categories and binary levels as text."""
    numeric_cells = [lambda: float(rng.normal(60, 10)), lambda: int(rng.integers(20, 90)), lambda: None]
    numeric_cells += [lambda: float("nan"), lambda: " ", lambda: "absent"]
    record: dict = {}
    for column in NUMERIC:
        value = numeric_cells[int(rng.integers(len(numeric_cells)))]()
        if value != "absent":
            record[column] = value
    record["sex"] = [" F", "M", None, "X", "", 1][int(rng.integers(6))]
    record["smoker"] = [0, 1, 0.0, 1.0, "1", "0", None, 2, "yes", float("nan")][int(rng.integers(10))]
    record["site"] = ["north", "south ", "east", "west", None, "", 3, 2.0][int(rng.integers(8))]
    record["flag"] = [True, False, None, 1, 0.0, "True", "nope"][int(rng.integers(7))]
    return record


@pytest.mark.parametrize("missing", ["median", "drop", "knn", "iterative", "most_frequent"])
def test_transform_records_equals_the_dataframe_path(train: pd.DataFrame, missing: str) -> None:
    rng = np.random.default_rng(5)
    fit_frame = train.assign(flag=rng.choice([True, False], len(train)).astype(object))
    columns = {"numeric": NUMERIC, "binary": [*BINARY, "flag"], "categorical": CATEGORICAL}
    prep = TabularPreprocessor(**columns, missing=missing, random_state=0).fit(fit_frame)
    records = [random_record(rng) for _ in range(400)]
    for start in range(0, 400, 8):  # the API sends a handful of records at a time
        batch = records[start : start + 8]
        expected = prep.transform(pd.DataFrame.from_records(batch, columns=prep.input_columns_))
        np.testing.assert_array_equal(prep.transform_records(batch), expected)
    single = [{"age": 61, "crp": 4.5, "sbp": 130.0, "sex": "M", "smoker": 1, "site": "south", "flag": True}]
    assert prep.transform_records(single).dtype == np.float32
    np.testing.assert_array_equal(
        prep.transform_records(single), prep.transform(pd.DataFrame.from_records(single, columns=prep.input_columns_))
    )


def test_transform_records_codes_plain_cells_without_a_dataframe(
    train: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    prep = TabularPreprocessor(numeric=NUMERIC, binary=BINARY, categorical=CATEGORICAL).fit(train)
    record = {"age": 61, "crp": None, "sbp": 130.5, "sex": "F", "smoker": "1", "site": "mars"}
    expected = prep.transform(pd.DataFrame.from_records([record], columns=prep.input_columns_))

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the fast path built a DataFrame")

    monkeypatch.setattr(pd.DataFrame, "from_records", refuse)
    np.testing.assert_array_equal(prep.transform_records([record]), expected)
    assert prep.transform_records([]).shape == (0, prep.n_features_out_)


def test_transform_records_falls_back_to_the_dataframe_errors(train: pd.DataFrame) -> None:
    prep = TabularPreprocessor(numeric=NUMERIC, binary=BINARY, categorical=CATEGORICAL).fit(train)
    good = {"age": 61, "crp": 3.0, "sbp": 130.5, "sex": "F", "smoker": 1, "site": "north"}
    with pytest.raises(MedDLError, match=r"column 'crp' has 1 non-numeric values, e.g. 'high' \(row 1\)"):
        prep.transform_records([good, {**good, "crp": "high"}])
    with pytest.raises(MedDLError, match="column 'age' has 1 infinite values"):
        prep.transform_records([{**good, "age": float("inf")}])
    coerced = prep.transform_records([{**good, "age": " 61.0 "}])  # numeric text is coerced, as in transform
    np.testing.assert_array_equal(coerced, prep.transform_records([good]))
