"""Tests of meddl.data.tabular: column types, target encoding and counted row drops."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from meddl.data import coerce_numeric, infer_column_types, prepare_table, same_label
from meddl.errors import MedDLError

SOURCE = "cohort.csv"


def rows(n: int) -> pd.RangeIndex:
    """Spreadsheet row numbers of n patients (header is row 1)."""
    return pd.RangeIndex(2, 2 + n, name="row")


def table(**columns: list) -> pd.DataFrame:
    n = len(next(iter(columns.values())))
    return pd.DataFrame(columns, index=rows(n))


def prepare(frame: pd.DataFrame, **kwargs):
    kwargs.setdefault("task", "binary")
    kwargs.setdefault("target", "y")
    return prepare_table(frame, source=SOURCE, **kwargs)


# -- same_label / coerce_numeric --------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "label", "expected"),
    [
        (1, "1", True),
        (1.0, 1, True),
        ("1", 1.0, True),
        (0, 1, False),
        (" yes", "yes", True),
        ("yes", "no", False),
        (True, True, True),
        (np.bool_(True), "true", True),
        (False, True, False),
    ],
)
def test_same_label(value, label, expected):
    assert same_label(value, label) is expected


def test_coerce_numeric_names_column_count_value_and_row():
    values = pd.Series(["1.5", "2", "unknown", "n.d.", "4"], index=rows(5))
    with pytest.raises(MedDLError) as exc:
        coerce_numeric(values, "crp", SOURCE)
    message = str(exc.value)
    assert SOURCE in message
    assert "'crp'" in message
    assert "2 non-numeric" in message
    assert "'unknown'" in message
    assert "(row 4)" in message


def test_coerce_numeric_parses_text_numbers_and_keeps_missing():
    values = pd.Series(["1.5", None, "3"], index=rows(3))
    parsed = coerce_numeric(values, "crp", SOURCE)
    assert parsed.dtype == np.float64
    np.testing.assert_array_equal(parsed.to_numpy(), [1.5, np.nan, 3.0])


# -- infer_column_types ----------------------------------------------------------------------------
def test_infer_column_types_each_kind():
    n = 20
    frame = pd.DataFrame(
        {
            "age": np.linspace(20, 80, n),
            "smoker01": [0, 1] * (n // 2),
            "smoker01_gaps": [0.0, 1.0, np.nan, 1.0] * (n // 4),
            "sex": ["F", "M"] * (n // 2),
            "site": ["north", "south", "east", "west"] * (n // 4),
            "on_statin": [True, False] * (n // 2),
            "count": list(range(n)),
        },
        index=rows(n),
    )
    assert infer_column_types(frame, {}, SOURCE) == {
        "age": "numeric",
        "smoker01": "binary",
        "smoker01_gaps": "binary",
        "sex": "binary",
        "site": "categorical",
        "on_statin": "binary",
        "count": "numeric",
    }


def test_overrides_win():
    frame = table(grade=[1, 2, 3, 1], flag=[0, 1, 0, 1], sex=["F", "M", "F", "M"])
    types = infer_column_types(frame, {"grade": "categorical", "flag": "numeric", "sex": "categorical"}, SOURCE)
    assert types == {"grade": "categorical", "flag": "numeric", "sex": "categorical"}


def test_numeric_override_on_text_column_raises():
    frame = table(crp=["1", "2", "high", "4"])
    with pytest.raises(MedDLError, match=r"'crp' has 1 non-numeric value\(s\), e.g. 'high' \(row 4\)"):
        infer_column_types(frame, {"crp": "numeric"}, SOURCE)


def test_mostly_numeric_column_with_a_word_raises_naming_column_count_value_and_row():
    values = [str(v) for v in range(19)] + ["unknown"]
    frame = table(crp=values)
    with pytest.raises(MedDLError) as exc:
        infer_column_types(frame, {}, SOURCE)
    message = str(exc.value)
    assert "'crp'" in message and "1 non-numeric" in message and "'unknown'" in message
    assert "(row 21)" in message  # 20th patient → spreadsheet row 21


def test_identifier_like_text_column_raises_unless_overridden():
    frame = table(mrn=[f"MRN{i:05d}" for i in range(60)])
    with pytest.raises(MedDLError, match="'mrn' has 60 distinct text values in 60 rows"):
        infer_column_types(frame, {}, SOURCE)
    assert infer_column_types(frame, {"mrn": "categorical"}, SOURCE) == {"mrn": "categorical"}


def test_text_column_of_numbers_is_numeric():
    frame = table(age=[str(v) for v in range(30, 50)])
    assert infer_column_types(frame, {}, SOURCE) == {"age": "numeric"}


# -- prepare_table: target encoding ----------------------------------------------------------------
def test_string_positive_label():
    frame = table(x=[1.0, 2, 3, 4], y=["neg", "pos", "pos", "neg"])
    prepared = prepare(frame, positive_label="pos")
    np.testing.assert_array_equal(prepared.target, [0, 1, 1, 0])
    assert prepared.classes == ["neg", "pos"]


def test_negative_positive_label_is_honoured():
    frame = table(x=[1.0, 2, 3, 4], y=["neg", "pos", "pos", "neg"])
    prepared = prepare(frame, positive_label="neg")
    np.testing.assert_array_equal(prepared.target, [1, 0, 0, 1])
    assert prepared.classes == ["pos", "neg"]


@pytest.mark.parametrize("positive_label", [1, "1", 1.0])
def test_int_label_on_float_column_with_missing_target(positive_label):
    # A 0/1 column with a gap is read as float (0.0 / 1.0 / NaN).
    frame = table(x=[1.0, 2, 3, 4, 5, 6], y=[0.0, 1.0, np.nan, 1.0, 0.0, 1.0])
    prepared = prepare(frame, positive_label=positive_label)
    np.testing.assert_array_equal(prepared.target, [0, 1, 1, 0, 1])
    assert prepared.classes == ["0", "1"]
    assert prepared.dropped["missing target"] == 1
    assert prepared.rows.tolist() == [2, 3, 5, 6, 7]  # row 4 had no target


def test_zero_one_target_defaults_to_one_as_positive():
    frame = table(x=[1.0, 2, 3, 4], y=[1, 0, 0, 1])
    prepared = prepare(frame)
    np.testing.assert_array_equal(prepared.target, [1, 0, 0, 1])


def test_bool_target_with_bool_label():
    frame = table(x=[1.0, 2, 3, 4], y=[True, False, False, True])
    prepared = prepare(frame, positive_label=True)
    np.testing.assert_array_equal(prepared.target, [1, 0, 0, 1])
    assert prepared.classes == ["False", "True"]


def test_text_target_without_positive_label_asks_for_one():
    frame = table(x=[1.0, 2, 3, 4], y=["yes", "no", "yes", "no"])
    with pytest.raises(MedDLError, match=r"set data.positive_label to one of 'no', 'yes'"):
        prepare(frame)


def test_positive_label_absent_from_target():
    frame = table(x=[1.0, 2, 3, 4], y=["yes", "no", "yes", "no"])
    with pytest.raises(MedDLError, match="positive_label 'maybe' does not occur in target 'y'"):
        prepare(frame, positive_label="maybe")


def test_one_class_only():
    frame = table(x=[1.0, 2, 3], y=["no", "no", "no"])
    with pytest.raises(MedDLError, match=r"one class only \('no'\)"):
        prepare(frame, positive_label="yes")


def test_more_than_two_values_in_binary_task():
    frame = table(x=[1.0, 2, 3, 4], y=["a", "b", "c", "a"])
    with pytest.raises(MedDLError, match=r"has 3 values .* but task is binary"):
        prepare(frame, positive_label="a")


def test_multiclass_uses_configured_class_order():
    frame = table(x=[1.0, 2, 3, 4, 5], y=["mild", "severe", "moderate", "mild", "severe"])
    prepared = prepare(frame, task="multiclass", classes=["severe", "moderate", "mild"])
    np.testing.assert_array_equal(prepared.target, [2, 0, 1, 2, 0])
    assert prepared.classes == ["severe", "moderate", "mild"]


def test_multiclass_default_order_is_sorted():
    frame = table(x=[1.0, 2, 3, 4], y=["c", "a", "b", "a"])
    prepared = prepare(frame, task="multiclass")
    assert prepared.classes == ["a", "b", "c"]
    np.testing.assert_array_equal(prepared.target, [2, 0, 1, 0])


def test_multiclass_unknown_value_names_value_and_row():
    frame = table(x=[1.0, 2, 3, 4], y=["mild", "severe", "critical", "mild"])
    with pytest.raises(MedDLError, match=r"value 'critical' \(row 4\) is not in data.classes"):
        prepare(frame, task="multiclass", classes=["mild", "severe"])


def test_multiclass_class_that_never_occurs():
    frame = table(x=[1.0, 2, 3, 4], y=[1, 2, 1, 2])
    with pytest.raises(MedDLError, match=r"data.classes \['3'\] never occur"):
        prepare(frame, task="multiclass", classes=[1, 2, 3])


def test_regression_target_is_float():
    frame = table(x=[1.0, 2, 3], y=[1, 5, 2])
    prepared = prepare(frame, task="regression")
    assert prepared.target.dtype == np.float64
    np.testing.assert_array_equal(prepared.target, [1.0, 5.0, 2.0])
    assert prepared.classes == []


def test_regression_non_numeric_target():
    frame = table(x=[1.0, 2, 3], y=["1.5", "high", "3"])
    with pytest.raises(MedDLError, match=r"'y' has 1 non-numeric value\(s\), e.g. 'high' \(row 3\)"):
        prepare(frame, task="regression")


def test_rows_missing_the_target_are_dropped_and_counted():
    frame = table(x=[1.0, 2, 3, 4, 5, 6], y=["yes", None, "no", np.nan, "yes", "no"])
    prepared = prepare(frame, positive_label="yes")
    assert prepared.dropped["missing target"] == 2
    assert prepared.n_rows_read == 6
    assert prepared.rows.tolist() == [2, 4, 6, 7]
    assert len(prepared.target) == len(prepared.features) == 4


def test_every_target_missing():
    frame = table(x=[1.0, 2], y=[np.nan, np.nan])
    with pytest.raises(MedDLError, match="every row lacks the target"):
        prepare(frame)


# -- prepare_table: column roles -------------------------------------------------------------------
def test_missing_target_column_suggests_close_names():
    frame = table(age=[1.0, 2], diabetes=[0, 1])
    with pytest.raises(MedDLError, match=r"data.target column 'diabetis' not found; did you mean 'diabetes'\?"):
        prepare(frame, target="diabetis")


def test_patient_id_is_kept_apart_and_rows_without_it_are_counted():
    frame = table(pid=["A", "A", None, "B"], x=[1.0, 2, 3, 4], y=[0, 1, 1, 0])
    prepared = prepare(frame, patient_id="pid")
    assert "pid" not in prepared.features.columns
    assert prepared.patient_ids.tolist() == ["A", "A", "B"]
    assert prepared.dropped["missing patient id"] == 1
    assert prepared.n_patients == 2


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"patient_id": "patient"}, "data.patient_id"),
        ({"date_column": "visit"}, "data.split.date_column"),
        ({"exclude": ["nme"]}, "data.exclude"),
        ({"features": ["age", "bpm"]}, "data.features"),
    ],
)
def test_absent_role_columns_name_their_field(kwargs, field):
    frame = table(age=[1.0, 2], y=[0, 1])
    with pytest.raises(MedDLError, match=f"{field} column"):
        prepare(frame, **kwargs)


def test_features_may_not_include_target():
    frame = table(age=[1.0, 2], y=[0, 1])
    with pytest.raises(MedDLError, match=r"data.features lists 'y'"):
        prepare(frame, features=["age", "y"])


def test_features_and_exclude_select_predictors():
    frame = table(pid=["a", "b"], age=[1.0, 2], name=["x", "z"], bmi=[20.0, 30], y=[0, 1])
    assert list(prepare(frame, patient_id="pid", exclude=["name"]).features.columns) == ["age", "bmi"]
    assert list(prepare(frame, features=["bmi"]).features.columns) == ["bmi"]


def test_no_predictor_left():
    frame = table(name=["x", "z"], y=[0, 1])
    with pytest.raises(MedDLError, match="no predictor columns left"):
        prepare(frame, exclude=["name"])


def test_column_types_for_a_non_predictor():
    frame = table(age=[1.0, 2], y=[0, 1])
    with pytest.raises(MedDLError, match="column_types names 'weight'"):
        prepare(frame, column_types={"weight": "numeric"})


def test_dates_are_parsed_and_bad_dates_name_the_row():
    frame = table(x=[1.0, 2, 3], visit=["2020-01-05", "2021-03-01", "2019-12-31"], y=[0, 1, 0])
    prepared = prepare(frame, date_column="visit")
    assert "visit" not in prepared.features.columns
    assert pd.Timestamp(prepared.dates[1]) == pd.Timestamp("2021-03-01")
    frame.loc[3, "visit"] = "not a date"
    with pytest.raises(MedDLError, match=r"'visit' has 1 missing or unparseable date\(s\).*\(row 3\)"):
        prepare(frame, date_column="visit")


def test_drop_incomplete_counts_rows():
    frame = table(age=[1.0, np.nan, 3, 4, 5], sex=["F", "M", None, "F", "M"], y=["yes", "no", "yes", None, "no"])
    prepared = prepare(frame, positive_label="yes", drop_incomplete=True)
    assert prepared.dropped["missing target"] == 1
    assert prepared.dropped["missing predictor values (preprocess.missing: drop)"] == 2
    assert prepared.rows.tolist() == [2, 6]
    np.testing.assert_array_equal(prepared.target, [1, 0])


def test_drop_incomplete_keeps_every_row_when_nothing_is_missing():
    frame = table(age=[1.0, 2], y=[0, 1])
    prepared = prepare(frame, drop_incomplete=True)
    assert prepared.dropped["missing predictor values (preprocess.missing: drop)"] == 0
    assert len(prepared.features) == 2


def test_all_empty_column_is_noted_and_not_used():
    frame = table(age=[1.0, 2, 3], lab=[np.nan, np.nan, np.nan], y=[0, 1, 0])
    prepared = prepare(frame)
    assert "lab" not in prepared.features.columns
    assert any("lab" in note and "no values" in note for note in prepared.notes)


def test_numeric_predictors_are_floats_after_preparation():
    frame = table(age=[30, 40, 50], sex=["F", "M", "F"], y=[0, 1, 0])
    prepared = prepare(frame)
    assert prepared.column_types == {"age": "numeric", "sex": "binary"}
    assert prepared.features["age"].dtype == np.float64


def test_subset_keeps_rows_target_and_ids_aligned():
    frame = table(pid=["a", "b", "c"], age=[1.0, 2, 3], y=[0, 1, 0])
    prepared = prepare(frame, patient_id="pid")
    part = prepared.subset(np.array([False, True, True]))
    assert part.rows.tolist() == [3, 4]
    assert part.patient_ids.tolist() == ["b", "c"]
    np.testing.assert_array_equal(part.target, [1, 0])
