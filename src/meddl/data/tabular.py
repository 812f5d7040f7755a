"""From a raw patient table to features, a target and patient ids — with every dropped row counted.

Column types are inferred (numeric, binary, categorical) and can be overridden per column in
``data.column_types``. A column that is mostly numbers but holds a few words (``'unknown'``) is an error,
not a silent switch to a categorical column.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from meddl.errors import MedDLError

__all__ = [
    "PreparedTable",
    "coerce_numeric",
    "encode_known_labels",
    "encode_survival",
    "encode_target",
    "infer_column_types",
    "prepare_table",
    "same_label",
]

ColumnType = Literal["numeric", "categorical", "binary"]
_NUMERIC_SHARE = 0.9  # a text column whose values parse as numbers this often is meant to be numeric
_MAX_CATEGORIES = 50


@dataclass
class PreparedTable:
    """Features and target of one table, row numbers kept in the index."""

    features: pd.DataFrame
    target: np.ndarray
    classes: list[str]
    column_types: dict[str, ColumnType]
    patient_ids: np.ndarray | None
    dates: np.ndarray | None
    n_rows_read: int
    dropped: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def rows(self) -> np.ndarray:
        return self.features.index.to_numpy()

    @property
    def n_patients(self) -> int:
        return len(pd.unique(self.patient_ids)) if self.patient_ids is not None else len(self.features)

    def subset(self, mask: np.ndarray) -> PreparedTable:
        return PreparedTable(
            features=self.features.loc[mask],
            target=self.target[mask],
            classes=self.classes,
            column_types=self.column_types,
            patient_ids=None if self.patient_ids is None else self.patient_ids[mask],
            dates=None if self.dates is None else self.dates[mask],
            n_rows_read=self.n_rows_read,
            dropped=dict(self.dropped),
            notes=list(self.notes),
        )


_TRUE_WORDS = {"true", "yes", "y", "t", "1", "1.0"}
_FALSE_WORDS = {"false", "no", "n", "f", "0", "0.0"}


def same_label(value: Any, label: Any) -> bool:
    """Compare a cell with a configured label: ``1``, ``1.0`` and ``'1'`` are the same label.

    YAML reads an unquoted ``positive_label: yes`` as ``True``; a boolean label therefore matches the
    words a table uses for it (yes/no, y/n, true/false, 1/0).
    """
    if isinstance(value, bool | np.bool_) or isinstance(label, bool | np.bool_):
        words = _TRUE_WORDS if str(label).strip().lower() in _TRUE_WORDS else _FALSE_WORDS
        return str(value).strip().lower() in words
    try:
        return float(value) == float(label)
    except (TypeError, ValueError):
        return str(value).strip() == str(label).strip()


def _label_text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def coerce_numeric(values: pd.Series, column: str, source: str, *, predictor: bool = True) -> pd.Series:
    """Parse a column as numbers; any cell that is not a number — or is infinite — is an error naming the first
    one (its row)."""
    if pd.api.types.is_bool_dtype(values):
        return values.astype(float)
    if pd.api.types.is_numeric_dtype(values):
        parsed = values.astype(float)
    else:
        parsed = pd.to_numeric(values, errors="coerce")
        bad = parsed.isna() & values.notna()
        if bad.any():
            first = bad.idxmax()
            raise MedDLError(
                f"{source}: column {column!r} has {int(bad.sum())} non-numeric value(s), e.g. {values[first]!r} "
                f"(row {first}); fix the file"
                + (
                    f", list such codes in data.na_values, or set data.column_types.{column}: categorical"
                    if predictor
                    else " (a numeric outcome takes numbers only; leave the cell empty if it is unknown)"
                )
            )
        parsed = parsed.astype(float)
    infinite = np.isinf(parsed.to_numpy())
    if infinite.any():
        first = parsed.index[int(np.argmax(infinite))]
        raise MedDLError(
            f"{source}: column {column!r} has {int(infinite.sum())} infinite value(s), e.g. {str(values[first])!r} "
            f"(row {first}); a model cannot use them — fix the file or list such codes in data.na_values"
        )
    return parsed


def infer_column_types(frame: pd.DataFrame, overrides: Mapping[str, ColumnType], source: str) -> dict[str, ColumnType]:
    """Decide numeric / binary / categorical for each column; ``overrides`` win.

    Raises:
        MedDLError: a numeric-looking column holds text, or a text column looks like an identifier.
    """
    types: dict[str, ColumnType] = {}
    for column in frame.columns:
        values = frame[column]
        if column in overrides:
            types[column] = overrides[column]
            if overrides[column] == "numeric":
                coerce_numeric(values, column, source)
            continue
        present = values.dropna()
        if pd.api.types.is_bool_dtype(values) or (
            pd.api.types.is_numeric_dtype(values) and set(present.unique()) <= {0, 1} and len(present)
        ):
            types[column] = "binary"
        elif pd.api.types.is_numeric_dtype(values):
            types[column] = "numeric"
        else:
            parsed = pd.to_numeric(present, errors="coerce")
            share = float(parsed.notna().mean()) if len(present) else 0.0
            if share >= _NUMERIC_SHARE:
                parsed_all = coerce_numeric(values, column, source)  # raises, naming the first non-numeric cell
                types[column] = "binary" if set(parsed_all.dropna().unique()) <= {0, 1} else "numeric"
                continue
            n_levels = present.astype(str).nunique()
            if n_levels == 2:
                types[column] = "binary"
            elif n_levels > _MAX_CATEGORIES and n_levels > 0.5 * len(present):
                raise MedDLError(
                    f"{source}: column {column!r} has {n_levels} distinct text values in {len(present)} rows, "
                    f"e.g. {present.iloc[0]!r}; it looks like an identifier or free text. Add it to data.exclude, "
                    "use it as data.patient_id, or set data.column_types."
                    f"{column}: categorical to keep it"
                )
            else:
                types[column] = "categorical"
    return types


def _missing_column(column: str, available: Sequence[str], field_name: str, source: str) -> MedDLError:
    close = difflib.get_close_matches(column, list(available), n=3)
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    shown = ", ".join(repr(c) for c in list(available)[:12]) + (" ..." if len(available) > 12 else "")
    return MedDLError(f"{source}: {field_name} column {column!r} not found{hint} (columns: {shown})")


def encode_target(
    values: pd.Series,
    task: str,
    positive_label: Any,
    classes: Sequence[Any] | None,
    target: str,
    source: str,
) -> tuple[np.ndarray, list[str]]:
    if task == "regression":
        return coerce_numeric(values, target, source, predictor=False).to_numpy(dtype=np.float64), []
    levels = list(pd.unique(values))
    if task == "binary":
        if len(levels) < 2:
            raise MedDLError(
                f"{source}: target {target!r} has one class only ({_label_text(levels[0])!r}); "
                "a binary model needs both classes"
            )
        if len(levels) > 2:
            shown = ", ".join(repr(_label_text(v)) for v in sorted(levels, key=str)[:8])
            raise MedDLError(
                f"{source}: target {target!r} has {len(levels)} values ({shown}) but task is binary; "
                "use task: multiclass or recode the column"
            )
        if positive_label is None:
            if all(isinstance(v, bool | np.bool_) for v in levels):
                positive_label = True
            elif all(same_label(v, 1) or same_label(v, 0) for v in levels):
                positive_label = 1
            else:
                raise MedDLError(
                    f"{source}: set data.positive_label to one of "
                    f"{', '.join(repr(_label_text(v)) for v in sorted(levels, key=str))} (target {target!r})"
                )
        matches = [v for v in levels if same_label(v, positive_label)]
        if not matches:
            raise MedDLError(
                f"{source}: data.positive_label {positive_label!r} does not occur in target {target!r}; "
                f"values are {', '.join(repr(_label_text(v)) for v in levels)}"
            )
        positive = matches[0]
        negative = next(v for v in levels if v is not positive and not same_label(v, positive_label))
        encoded = np.array([1 if same_label(v, positive) else 0 for v in values], dtype=np.int64)
        return encoded, [_label_text(negative), _label_text(positive)]
    # multiclass
    wanted = list(classes) if classes else sorted(levels, key=lambda v: (str(type(v)), v))
    if len(wanted) < 2 or len(levels) < 2:
        raise MedDLError(f"{source}: target {target!r} has {len(levels)} class(es); multiclass needs at least 2")
    codes = np.full(len(values), -1, dtype=np.int64)
    for code, label in enumerate(wanted):
        codes[[same_label(v, label) for v in values]] = code
    if (codes < 0).any():
        first = int(np.argmax(codes < 0))
        unknown = values.iloc[first]
        raise MedDLError(
            f"{source}: target {target!r} value {unknown!r} (row {values.index[first]}) is not in data.classes "
            f"{[_label_text(c) for c in wanted]}; {int((codes < 0).sum())} row(s) affected"
        )
    absent = [_label_text(c) for i, c in enumerate(wanted) if not (codes == i).any()]
    if absent:
        raise MedDLError(f"{source}: data.classes {absent} never occur in target {target!r}")
    return codes, [_label_text(c) for c in wanted]


def encode_known_labels(values: pd.Series, task: str, classes: list[Any], target: str, source: str) -> np.ndarray:
    """Labels of new data (an external site's) as the model's class indices, or values for regression; a label
    that is not one of ``classes`` is an error naming the row, never a new class."""
    if task == "regression":
        return coerce_numeric(values, target, source, predictor=False).to_numpy()
    codes = np.full(len(values), -1, dtype=np.int64)
    for k, label in enumerate(classes):
        codes[[same_label(v, label) for v in values]] = k
    if (codes < 0).any():
        first = int(np.argmax(codes < 0))
        raise MedDLError(
            f"{source}: target value {values.iloc[first]!r} (row {values.index[first]}) is not one of the "
            f"model's classes {classes}"
        )
    return codes


def _plain(value: Any) -> Any:
    """A cell as a person writes it: ``-3.0``, not ``np.float64(-3.0)``."""
    return value.item() if isinstance(value, np.generic) else value


def encode_survival(
    time: pd.Series, event: pd.Series, event_value: Any, source: str, causes: Sequence[str] | None = None
) -> tuple[np.ndarray, list[str]]:
    """A time-to-event outcome as an (N, 2) float array ``[time, event code]`` and the names of the event causes.

    Args:
        time: follow-up times (any unit); every value must be a number > 0.
        event: 1 = event, 0 = censored (0..K: competing causes 1..K; booleans allowed); or any values with
            ``event_value`` naming the one that means the event happened.
        event_value: see ``event``; None when the column holds codes.
        source: the file name, used in messages.
        causes: the causes of a trained model (external data): codes above their number are an error.

    Raises:
        MedDLError: naming the row, for a time that is not a positive number or an event code that is not
            0..K (or text without ``event_value``).
    """
    times = coerce_numeric(time, str(time.name), source, predictor=False).to_numpy(dtype=np.float64)
    bad = ~(times > 0)
    if bad.any():
        first = int(np.argmax(bad))
        raise MedDLError(
            f"{source}: follow-up time {time.name!r} must be a number > 0; row {time.index[first]} has "
            f"{_plain(time.iloc[first])!r} ({int(bad.sum())} such row(s))"
        )
    if event_value is not None:
        codes = np.array([1 if same_label(v, event_value) else 0 for v in event], dtype=np.int64)
        names = [_label_text(event_value)]
        if not codes.any():
            raise MedDLError(f"{source}: no row of {event.name!r} equals data.event_value {event_value!r}")
    else:
        numbers = pd.to_numeric(event.map(lambda v: int(v) if isinstance(v, bool) else v), errors="coerce")
        invalid = (
            numbers.isna().to_numpy()
            | ~np.isin(np.mod(numbers.fillna(-1).to_numpy(), 1), [0])
            | (numbers.fillna(-1).to_numpy() < 0)
        )
        if invalid.any():
            first = int(np.argmax(invalid))
            raise MedDLError(
                f"{source}: event column {event.name!r} must hold 0 (censored) or 1..K (the event, or its cause); "
                f"row {event.index[first]} has {_plain(event.iloc[first])!r} — for text values set data.event_value to "
                "the one meaning the event happened"
            )
        codes = numbers.to_numpy(dtype=np.int64)
        n_causes = max(int(codes.max()), 1)
        names = ["event"] if n_causes == 1 else [f"cause {k}" for k in range(1, n_causes + 1)]
    if causes is not None and int(codes.max()) > len(causes):
        first = int(np.argmax(codes > len(causes)))
        raise MedDLError(
            f"{source}: event code {codes[first]} (row {event.index[first]}) is not one the model knows "
            f"(0 = censored, 1..{len(causes)})"
        )
    return np.column_stack([times, codes.astype(np.float64)]), list(causes) if causes is not None else names


def prepare_table(
    frame: pd.DataFrame,
    *,
    task: str,
    target: str | None,
    source: str,
    survival: tuple[str, str, Any] | None = None,
    positive_label: Any = None,
    classes: Sequence[Any] | None = None,
    patient_id: str | None = None,
    date_column: str | None = None,
    features: Sequence[str] | None = None,
    exclude: Sequence[str] = (),
    column_types: Mapping[str, ColumnType] | None = None,
    drop_incomplete: bool = False,
) -> PreparedTable:
    """Select features, encode the target and drop (and count) unusable rows.

    Args:
        frame: the table as read by :func:`meddl.io.read_table`.
        task: binary, multiclass, regression or survival.
        target: the outcome column (None for survival).
        survival: ``(time column, event column, event_value)`` of a survival task (see :func:`encode_survival`).
        source: the file name, used in messages.
        positive_label: the value of ``target`` that means "has the condition" (binary).
        classes: the class order (multiclass); default sorted.
        patient_id: a column identifying patients (rows of one patient stay together).
        date_column: a column of dates for temporal splits.
        features: the predictor columns; default every other column.
        exclude: columns never used as predictors.
        column_types: per-column type overrides.
        drop_incomplete: drop rows with any missing predictor (``preprocess.missing: drop``), counted.

    Raises:
        MedDLError: a named column is absent, the target cannot be encoded, or a column is malformed.
    """
    available = list(frame.columns)
    n_rows_read = len(frame)
    outcome = [(c, f"data.{n}") for c, n in zip(survival[:2], ("time", "event"), strict=True)] if survival else []
    if not survival:
        if target is None:
            raise MedDLError(f"{source}: data.target is required (the outcome column)")
        outcome = [(target, "data.target")]
    for column, field_name in outcome:
        if column not in frame.columns:
            raise _missing_column(column, available, field_name, source)
    for name, optional in (("data.patient_id", patient_id), ("data.split.date_column", date_column)):
        if optional is not None and optional not in frame.columns:
            raise _missing_column(optional, available, name, source)
    for column in exclude:
        if column not in frame.columns:
            raise _missing_column(column, available, "data.exclude", source)
    outcome_columns = [column for column, _ in outcome]
    reserved = {*outcome_columns, patient_id, date_column, *exclude}
    if features is None:
        features = [c for c in available if c not in reserved]
    else:
        for column in features:
            if column not in frame.columns:
                raise _missing_column(column, available, "data.features", source)
            if column in {*outcome_columns, patient_id}:
                raise MedDLError(f"{source}: data.features lists {column!r}, which is the outcome or patient id")
    if not features:
        raise MedDLError(f"{source}: no predictor columns left after removing target, patient id and exclusions")
    for column in column_types or {}:
        if column not in features:
            raise MedDLError(f"{source}: data.column_types names {column!r}, which is not a predictor column")

    dropped: dict[str, int] = {}
    notes: list[str] = []
    keep = frame[outcome_columns].notna().all(axis=1).to_numpy(copy=True)  # mutated below; pandas 3: read-only
    dropped["missing follow-up (time or event)" if survival else "missing target"] = int((~keep).sum())
    if patient_id is not None:
        no_id = frame[patient_id].isna().to_numpy() & keep
        dropped["missing patient id"] = int(no_id.sum())
        keep &= ~no_id
    frame = frame.loc[keep]
    if frame.empty:
        what = f"the follow-up {' / '.join(outcome_columns)}" if survival else f"the target {target!r}"
        raise MedDLError(f"{source}: every row lacks {what}; nothing to learn from")

    predictors = frame[list(features)].copy()
    all_missing = [c for c in predictors.columns if predictors[c].isna().all()]
    if all_missing:
        predictors = predictors.drop(columns=all_missing)
        notes.append(f"column(s) with no values were not used: {', '.join(all_missing)}")
        if predictors.shape[1] == 0:
            raise MedDLError(f"{source}: every predictor column is empty")
    types = infer_column_types(predictors, column_types or {}, source)
    for column, kind in types.items():
        if kind == "numeric":
            predictors[column] = coerce_numeric(predictors[column], column, source)

    if drop_incomplete:
        complete = predictors.notna().all(axis=1).to_numpy()
        dropped["missing predictor values (preprocess.missing: drop)"] = int((~complete).sum())
        frame, predictors = frame.loc[complete], predictors.loc[complete]
        if frame.empty:
            raise MedDLError(
                f"{source}: every row has a missing predictor value, so preprocess.missing: drop leaves nothing; "
                "choose an imputation such as median"
            )

    if survival:
        encoded, class_names = encode_survival(frame[survival[0]], frame[survival[1]], survival[2], source)
    else:
        assert target is not None
        encoded, class_names = encode_target(frame[target], task, positive_label, classes, target, source)
    dates = None
    if date_column is not None:
        parsed = pd.to_datetime(frame[date_column], errors="coerce")
        bad = parsed.isna()
        if bad.any():
            first = bad.idxmax()
            raise MedDLError(
                f"{source}: column {date_column!r} has {int(bad.sum())} missing or unparseable date(s), "
                f"e.g. {frame[date_column][first]!r} (row {first})"
            )
        dates = parsed.to_numpy()
    ids = frame[patient_id].astype(str).to_numpy() if patient_id is not None else None
    return PreparedTable(
        features=predictors,
        target=encoded,
        classes=class_names,
        column_types=types,
        patient_ids=ids,
        dates=dates,
        n_rows_read=n_rows_read,
        dropped=dropped,
        notes=notes,
    )
