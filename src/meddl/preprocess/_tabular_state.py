"""The layout of ``preprocess.json`` written by `TabularPreprocessor` (version 1), read back into its steps.

The file keeps the layout of the single-class preprocessor it replaced, so bundles written before and
after the split into steps read the same: one JSON object with the configuration, the output names and one
section per learned piece (``numeric_fill``, ``scaler``, ``binary``, ``categorical``, ...), plus
``preprocess.npz`` for the KNN / iterative imputation arrays. `restore_steps` checks the sections against
each other and rebuilds each step from its own state (`to_state` / `from_state`, see `_state`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from meddl.errors import MedDLError
from meddl.preprocess._state import ARRAYS_KEY
from meddl.preprocess.encode import BinaryEncoder, CategoricalEncoder
from meddl.preprocess.impute import Imputer
from meddl.preprocess.indicators import MissingIndicators
from meddl.preprocess.scale import NumericScaler

__all__ = ["ARRAYS_FILE", "STATE_FILE", "STATE_KEYS", "STATE_VERSION", "RestoredSteps", "check_header", "restore_steps"]

STATE_VERSION = 1
"""Version of the layout written by `TabularPreprocessor.get_state`."""

STATE_FILE = "preprocess.json"
ARRAYS_FILE = "preprocess.npz"

STATE_KEYS = (
    "version",
    "kind",
    "config",
    "input_columns",
    "feature_names_out",
    "source_columns",
    "numeric_fill",
    "scaler",
    "binary",
    "categorical",
    "indicator_columns",
    "iterative_n_iter",
    "arrays",
    "column_profile",
)
"""Top-level keys of the layout, in the order they are written."""


def check_header(state: Any, params: Iterable[str]) -> Mapping[str, Any]:
    """Check a state's version, keys and kind; return its config.

    Args:
        state: The state read from ``preprocess.json``.
        params: The constructor arguments of `TabularPreprocessor` (the config must hold exactly these).

    Returns:
        ``state["config"]``.

    Raises:
        MedDLError: naming what is wrong.
    """
    if not isinstance(state, Mapping):
        raise MedDLError(f"preprocess state must be a JSON object; got {type(state).__name__}")
    version = state.get("version")
    if version != STATE_VERSION:
        raise MedDLError(f"preprocess state has version {version!r}; this MedDL reads version {STATE_VERSION}")
    absent = [k for k in STATE_KEYS if k not in state]
    if absent:
        raise MedDLError("preprocess state is missing key(s): " + ", ".join(repr(k) for k in absent))
    if state["kind"] != "TabularPreprocessor":
        raise MedDLError(f"preprocess state has kind {state['kind']!r}; expected 'TabularPreprocessor'")
    config = state["config"]
    if not isinstance(config, Mapping):
        raise MedDLError("preprocess state: 'config' must be a JSON object")
    known = set(params)
    unknown = sorted(set(config) - known)
    lacking = sorted(known - set(config))
    if lacking:
        raise MedDLError("preprocess state: config is missing key(s): " + ", ".join(repr(k) for k in lacking))
    if unknown:
        raise MedDLError("preprocess state: unknown config key(s): " + ", ".join(repr(k) for k in unknown))
    return config


@dataclass(frozen=True)
class RestoredSteps:
    """The fitted steps and output names of a `TabularPreprocessor`, read from its state."""

    binary_encoder: BinaryEncoder
    category_encoder: CategoricalEncoder
    imputer: Imputer
    numeric_scaler: NumericScaler
    missing_indicator: MissingIndicators | None
    feature_names_out: list[str]
    source_columns: list[str]
    column_profile: dict[str, Any]


def _fill_code(column: str, spec: Mapping[str, Any], missing: str) -> int | None:
    """The code of a categorical column's saved fill category (None with ``missing="drop"``)."""
    if missing == "drop":
        return None  # missing values pass through as NaN whatever the fill
    categories = [str(v) for v in spec["categories"]]
    if spec.get("fill") not in categories:
        raise ValueError(f"each categorical fill must be one of its categories ({column!r})")
    return categories.index(spec["fill"])


def _sections(state: Mapping[str, Any], name: str, columns: list[str]) -> dict[str, dict[str, Any]]:
    """The per-column section `name` (``binary`` / ``categorical``), in config order."""
    specs = {str(c): dict(v) for c, v in dict(state[name]).items()}
    if sorted(specs) != sorted(columns):
        raise ValueError(f"'{name}' does not match config")
    return {c: specs[c] for c in columns}


def restore_steps(state: Mapping[str, Any], config: Mapping[str, Any]) -> RestoredSteps:
    """Rebuild the steps from a state whose ``"arrays"`` holds the arrays, checking that the pieces agree.

    Args:
        state: The state, arrays joined back in (see `_state.join_arrays`).
        config: The validated configuration.

    Returns:
        The fitted steps and the output names.

    Raises:
        ValueError, KeyError, TypeError, IndexError: for an inconsistent or malformed state.
        MedDLError: when a step rejects its part of the state.
    """
    numeric, binary, categorical = config["numeric"], config["binary"], config["categorical"]
    input_columns = [*numeric, *binary, *categorical]
    if list(state["input_columns"]) != input_columns:
        raise ValueError("'input_columns' does not match config")
    binary_specs = _sections(state, "binary", binary)
    category_specs = _sections(state, "categorical", categorical)
    category_encoder = CategoricalEncoder.from_state(
        {"categories": {c: spec["categories"] for c, spec in category_specs.items()}}
    )
    imputer_state: dict[str, Any] = {"strategy": config["missing"], "numeric": numeric, "binary": binary}
    imputer_state.update({k: config[k] for k in ("knn_neighbors", "iterative_max_iter", "random_state")})
    imputer_state.update(
        categorical=categorical,
        numeric_fill=state["numeric_fill"],
        binary_fill=[spec.get("fill") for spec in binary_specs.values()],
        categorical_fill=[_fill_code(c, spec, config["missing"]) for c, spec in category_specs.items()],
        n_iter=state["iterative_n_iter"],
        arrays=state[ARRAYS_KEY],
    )
    flagged = list(state["indicator_columns"])
    names = [str(c) for c in state["feature_names_out"]]
    sources = [str(c) for c in state["source_columns"]]
    n_out = len(numeric) + len(binary) + len(category_encoder.feature_names_out_) + len(flagged)
    if len(names) != n_out or len(sources) != n_out:
        raise ValueError("'feature_names_out' / 'source_columns' do not match the encoders")
    return RestoredSteps(
        binary_encoder=BinaryEncoder.from_state({"levels": binary_specs}),
        category_encoder=category_encoder,
        imputer=Imputer.from_state(imputer_state),
        numeric_scaler=NumericScaler.from_state(
            {"method": config["scale"], "n_features": len(numeric), "statistics": state["scaler"]}
        ),
        missing_indicator=(
            MissingIndicators.from_state({"columns": input_columns, "indicator_columns": flagged}) if flagged else None
        ),
        feature_names_out=names,
        source_columns=sources,
        column_profile=dict(state["column_profile"]),
    )
