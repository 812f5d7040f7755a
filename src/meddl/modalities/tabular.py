"""Clinical tables (``data.kind: tabular``): one row per patient visit, CSV/TSV/Parquet.

Columns are typed (numeric, binary, categorical) from the data unless declared; imputation, missing indicators,
scaling and one-hot encoding are fitted on the training split (:class:`~meddl.preprocess.TabularPreprocessor`), and
resampling (SMOTE and friends) touches the training split only. Explanations are permutation importance on the
test split and integrated gradients per clinical variable; external evaluation measures each variable's shift.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset, TensorDataset

from meddl._json import clean_json
from meddl.data import PreparedTable, prepare_table, splits_frame
from meddl.data.tabular import coerce_numeric, encode_known_labels, encode_survival
from meddl.errors import MedDLError
from meddl.evaluate import higher_is_better, main_metric
from meddl.evaluate.evaluation import main_metric_value
from meddl.evaluate.robustness import Corruption, gaussian_noise
from meddl.evaluate.shift import far_outside, table_shift
from meddl.explain import group_attributions, integrated_gradients, permutation_importance_table
from meddl.explain.tabular import format_top_features, highest_risk_section
from meddl.io import read_table
from meddl.modalities.base import BaselineData, Log, Modality, ModalityExample, PredictionInputs, Prepared
from meddl.modalities.registry import register
from meddl.modalities.requests import level_text, records_request
from meddl.modalities.schema import ExperimentConfig
from meddl.modalities.sections.tabular import DataConfig, PreprocessConfig
from meddl.preprocess import TabularPreprocessor, class_weights, resample
from meddl.train import target_tensor

__all__ = ["TabularModality"]


@register
class TabularModality(Modality):
    """A table of patients: typed columns in, a matrix out; per-variable explanations and shift."""

    kind = "tabular"
    title = "clinical table"
    request_style = "records"
    explanation_files = None
    explain_suffix = ".csv"
    explanation_column = "top_features"

    def __init__(self, config: ExperimentConfig) -> None:
        super().__init__(config)
        assert isinstance(config.data, DataConfig) and isinstance(config.preprocess, PreprocessConfig), (
            "the tabular modality needs data.kind: tabular"
        )
        self.data: DataConfig = config.data
        self.prep: PreprocessConfig = config.preprocess
        self.preprocessor: TabularPreprocessor | None = None
        self._repeated_id: str | None = None  # a patient-id-like column that repeats, data.patient_id unset

    @classmethod
    def example(cls, folder: Path) -> ModalityExample:
        from meddl.data import synthetic_clinical_table
        from meddl.io import write_table

        folder.mkdir(parents=True, exist_ok=True)
        write_table(synthetic_clinical_table(240, seed=0), folder / "clinic.csv")
        experiment = {
            "name": "example-tabular",
            "task": "binary",
            "data": {
                "kind": "tabular",
                "path": "clinic.csv",
                "target": "outcome",
                "positive_label": "yes",
                "patient_id": "patient_id",
                "exclude": ["visit_date"],
            },
            "model": {"arch": "mlp", "hidden": [16]},
            "train": {"epochs": 3, "batch_size": 32, "seed": 0, "progress": False},
            "evaluate": {"bootstrap": 20},
            "explain": {"permutation_repeats": 1},
        }
        return ModalityExample(experiment, folder / "clinic.csv", folder / "clinic.csv", folder / "clinic.csv")

    @property
    def fitted(self) -> TabularPreprocessor:
        assert self.preprocessor is not None, "the tabular preprocessing is fitted (fit or a bundle) first"
        return self.preprocessor

    # -- training -----------------------------------------------------------------------------------
    def load(self, log: Log) -> Prepared:
        source = self.data.path.name
        raw = read_table(self.data.path, na_values=self.data.na_values)
        for column in self.config.evaluate.subgroups:  # checked before training, not after
            if column not in raw.columns:
                raise MedDLError(f"{source}: evaluate.subgroups names {column!r}, which is not a column of the file")
        conformal = self.config.evaluate.conformal
        if conformal is not None and conformal.mondrian not in (None, "class") and conformal.mondrian not in raw:
            raise MedDLError(
                f"{source}: evaluate.conformal.mondrian names {conformal.mondrian!r}, which is not a column of the file"
            )
        self._repeated_id = self._repeated_id_column(raw)  # once: the split note and the warnings both say it
        table = self._prepare(raw, source)
        if conformal is not None and conformal.mondrian not in (None, "class", *table.features.columns):
            raise MedDLError(
                f"{source}: evaluate.conformal.mondrian: {conformal.mondrian!r} is not one of the model's input "
                "columns (excluded, the patient id or the target), so a case sent to the server could not say its "
                "group; choose an input column or remove it from data.exclude"
            )
        return Prepared(
            inputs=table.features,
            target=table.target,
            classes=table.classes,
            sample_ids=[str(r) for r in table.rows],
            patient_ids=table.patient_ids,
            n_read=table.n_rows_read,
            dropped=dict(table.dropped),
            repairs=self._imputed(table.features),
            notes=[*table.notes, self._split_note(table)],
            dates=table.dates if self.data.split.method == "temporal" else None,
            extra={"raw": raw, "table": table},
        )

    def _imputed(self, features: pd.DataFrame) -> dict[str, int]:
        """The missing predictor values the model fills in (``preprocess.missing``), counted."""
        n_missing = int(features.isna().to_numpy().sum())
        if self.prep.missing == "drop" or not n_missing:
            return {}
        return {f"missing predictor values imputed ({self.prep.missing})": n_missing}

    def _prepare(self, raw: pd.DataFrame, source: str) -> PreparedTable:
        d = self.data
        return prepare_table(
            raw,
            task=self.config.task,
            target=d.target,
            source=source,
            survival=(d.time, d.event, d.event_value) if self.config.task == "survival" else None,  # type: ignore[arg-type]
            positive_label=d.positive_label,
            classes=d.classes,
            patient_id=d.patient_id,
            date_column=d.split.date_column,
            features=d.features,
            exclude=d.exclude,
            column_types=d.column_types,
            drop_incomplete=self.prep.missing == "drop",
        )

    def fit(self, prepared: Prepared, train_index: np.ndarray) -> None:
        table: PreparedTable = prepared.extra["table"]
        p, cfg = self.prep, self.config
        types = table.column_types
        train_rows = table.features.iloc[train_index]
        self.preprocessor = TabularPreprocessor(
            numeric=[c for c, t in types.items() if t == "numeric"],
            binary=[c for c, t in types.items() if t == "binary"],
            categorical=[c for c, t in types.items() if t == "categorical"],
            missing=p.missing,
            missing_indicators=p.missing_indicators,
            scale=p.scale,
            knn_neighbors=p.knn_neighbors,
            random_state=cfg.train.seed,
        ).fit(train_rows)  # fitted on the training split only
        self.forget_features()
        X_train, y_train = self.fitted.transform(train_rows), prepared.target[train_index]
        self.sample_weight_classes_ = None
        if cfg.task not in {"regression", "survival"}:
            if p.imbalance == "class_weight":
                self.sample_weight_classes_ = class_weights(y_train, len(prepared.classes))
            X_train, y_train = resample(X_train, y_train, p.imbalance, seed=cfg.train.seed)
        self.X_train_, self.y_train_ = X_train, y_train
        self.explain_baseline_ = X_train.mean(axis=0)

    def transform(self, inputs: pd.DataFrame) -> np.ndarray:
        return self.fitted.transform(inputs)

    def model_arguments(self, inputs: np.ndarray) -> dict[str, Any]:
        return {"in_features": int(inputs.shape[1])}

    def training_dataset(self, prepared: Prepared, index: np.ndarray, target: np.ndarray, *, train: bool) -> Dataset:
        if train:  # the (possibly resampled) training rows of fit()
            y = target if self.config.task in {"regression", "survival"} else self.y_train_
            return TensorDataset(torch.as_tensor(self.X_train_), target_tensor(self.config.task, y))
        return TensorDataset(torch.as_tensor(self.features(prepared)[index]), target_tensor(self.config.task, target))

    @torch.inference_mode()
    def outputs(self, model: torch.nn.Module, inputs: np.ndarray) -> np.ndarray:
        if model.training:
            model.eval()
        device = next(model.parameters()).device
        out = [
            model(torch.as_tensor(inputs[i : i + 4096]).to(device)).float().cpu() for i in range(0, len(inputs), 4096)
        ]
        return torch.cat(out).numpy() if out else np.zeros((0, 1), dtype=np.float32)

    # -- evaluation ---------------------------------------------------------------------------------
    def baseline_data(self, prepared: Prepared, index: dict[str, np.ndarray]) -> BaselineData | None:
        matrix = self.features(prepared)
        weights = self.sample_weight_classes_
        sample_weight = weights[self.y_train_.astype(int)] if weights is not None else None
        return self.X_train_, self.y_train_, matrix[index["validation"]], matrix[index["test"]], sample_weight

    def corruptions(self) -> list[Corruption]:
        """On the encoded matrix: noise on the numeric variables (in their training SDs), values missing at random and
        whole variables not recorded — a missing value becomes what the fitted preprocessing gives a missing value
        (the imputer's fill, its missing indicator set). Under ``preprocess.missing: drop`` a case with a missing
        value cannot be scored, so only the noise is declared. (knn / iterative imputation fills a missing value
        from the case's other values; here it takes the fill of a case with nothing recorded.)"""
        prep = self.fitted
        numeric = [c for c, profile in prep.column_profile_.items() if profile.get("kind") == "numeric"]
        found: list[Corruption] = []
        if numeric:
            mean = np.array([prep.column_profile_[c]["mean"] for c in numeric])
            sd = np.array([prep.column_profile_[c]["std"] for c in numeric])
            encoded = prep.numeric_scaler_.transform(np.vstack([mean, mean + sd]))  # (2, n_numeric)
            unit_sd = np.zeros(prep.n_features_out_)
            unit_sd[: len(numeric)] = np.abs(encoded[1] - encoded[0])  # one training SD, in the model's units
            found.append(
                Corruption(
                    "noise",
                    "Measurement noise on the numeric variables",
                    "SD of each variable in the training split",
                    (0.25, 0.5, 1.0),
                    lambda x, k, rng: gaussian_noise(x, k * unit_sd, rng),
                )
            )
        if self.prep.missing == "drop":
            return found
        columns = list(prep.input_columns_)
        fill = prep.transform(pd.DataFrame({c: [np.nan] for c in columns}))[0]  # (F,) every column missing
        column_of = np.array([columns.index(c) for c in prep.source_columns_])  # feature → its input column

        def blank(x: np.ndarray, missing: np.ndarray) -> np.ndarray:  # missing: (N, n_columns) bool
            return np.where(missing[:, column_of], fill, x).astype(x.dtype)

        def missing_values(x: np.ndarray, share: float, rng: np.random.Generator) -> np.ndarray:
            return blank(x, rng.random((len(x), len(columns))) < share)

        def dropped_variables(x: np.ndarray, count: float, rng: np.random.Generator) -> np.ndarray:
            missing = np.zeros((len(x), len(columns)), dtype=bool)
            missing[:, rng.permutation(len(columns))[: int(count)]] = True  # nested as the count rises
            return blank(x, missing)

        imputed = f"filled in by the fitted imputer (preprocess.missing: {self.prep.missing})"
        found.append(
            Corruption(
                "missingness",
                f"Values missing at random, {imputed}",
                "share of each case's values",
                (0.1, 0.25, 0.5),
                missing_values,
            )
        )
        found.append(
            Corruption(
                "dropped_variable",
                f"Variables not recorded at all (chosen at random), {imputed}",
                "variables missing in every case",
                tuple(float(k) for k in (1, 2, 3) if k <= len(columns)),
                dropped_variables,
            )
        )
        return found

    def subgroup_labels(self, prepared: Prepared, column: str, index: np.ndarray) -> pd.Series:
        """Group labels of the rows ``index`` by ``column`` (numeric columns by quartile of those rows)."""
        table: PreparedTable = prepared.extra["table"]
        values = prepared.extra["raw"].loc[table.rows[index], column]
        if table.column_types.get(column) == "numeric" or (
            column not in table.column_types and pd.api.types.is_numeric_dtype(values) and values.nunique() > 8
        ):
            numbers = pd.to_numeric(values, errors="coerce")
            return pd.qcut(numbers, q=4, duplicates="drop").astype(str).where(numbers.notna(), "missing")
        return values.astype(str).where(values.notna(), "missing")

    def group_values(self, prepared: Prepared, column: str, index: np.ndarray) -> np.ndarray:
        table: PreparedTable = prepared.extra["table"]
        return _as_groups(prepared.extra["raw"].loc[table.rows[index], column])

    def case_group_values(self, cases: PredictionInputs, column: str) -> np.ndarray:
        if "records" in cases.extra:  # a JSON request: the column is there when it is one of the model's inputs
            records = [r for r, ok in zip(cases.extra["records"], cases.usable, strict=True) if ok]
            return _as_groups(pd.Series([r.get(column) for r in records], dtype=object))
        frame: pd.DataFrame = cases.extra["frame"]
        if column not in frame.columns:
            raise MedDLError(
                f"{cases.extra.get('source', 'input')}: the model's prediction sets are calibrated per {column!r} "
                f"(evaluate.conformal.mondrian); the input needs that column"
            )
        return _as_groups(frame.loc[cases.usable, column])

    def explain(
        self,
        model: torch.nn.Module,
        prepared: Prepared,
        inputs: np.ndarray,
        test_index: np.ndarray,
        scores: np.ndarray,
        out: Path,
    ) -> dict[str, Any]:
        cfg = self.config
        x = cfg.explain
        frame = prepared.inputs.iloc[test_index]
        y = prepared.target[test_index]
        metric = main_metric(cfg.task)
        sign = 1.0 if higher_is_better(metric) else -1.0
        target_scale = getattr(self, "target_scale_", None)

        def score_frame(features: pd.DataFrame) -> np.ndarray:
            from meddl.train import scores_from_outputs

            return scores_from_outputs(cfg.task, self.outputs(model, self.transform(features)), target_scale)

        def score_fn(target: np.ndarray, predicted: np.ndarray) -> float:
            value = main_metric_value(cfg.task, target, predicted)
            return sign * value if np.isfinite(value) else 0.0

        explanations: dict[str, Any] = {
            "permutation_importance": permutation_importance_table(
                score_frame, frame, y, score_fn, n_repeats=x.permutation_repeats, seed=cfg.train.seed
            )
        }
        if x.integrated_gradients:
            matrix = inputs[test_index]
            grouped, names = self.attributions(model, matrix)
            mean_abs = np.abs(grouped).mean(axis=0)
            explanations["integrated_gradients"] = sorted(
                ({"feature": n, "mean_abs_attribution": float(v)} for n, v in zip(names, mean_abs, strict=True)),
                key=lambda r: -r["mean_abs_attribution"],
            )
            if cfg.task == "survival":
                ids = [prepared.sample_ids[i] for i in test_index]
                section = highest_risk_section(ids, scores[:, 0], grouped, names, frame)
                return {"explanations": explanations, "sections": [section]}
        return {"explanations": explanations}

    def data_summary(self, prepared: Prepared, splits: np.ndarray) -> dict[str, Any]:
        table: PreparedTable = prepared.extra["table"]
        columns = []
        for name, kind in table.column_types.items():
            values = table.features[name]
            n_missing = int(values.isna().sum())
            if kind == "numeric":
                described = (
                    f"median {values.median():.4g} (IQR {values.quantile(0.25):.4g}–{values.quantile(0.75):.4g})"
                )
            else:
                counts = values.astype(str).where(values.notna()).value_counts()
                described = ", ".join(f"{k}: {v}" for k, v in counts.head(4).items()) + (
                    " …" if len(counts) > 4 else ""
                )
            columns.append(
                {
                    "name": name,
                    "type": kind,
                    "n_missing": n_missing,
                    "pct_missing": round(100 * n_missing / max(len(values), 1), 2),
                    "summary": described,
                }
            )
        return {"n_patients": table.n_patients if table.patient_ids is not None else None, "columns": columns}

    def _split_note(self, table: PreparedTable) -> str:
        split = self.data.split
        how = (
            f"temporal split on {split.date_column!r} (earliest patients train, latest test)"
            if split.method == "temporal"
            else f"stratified split (seed {self.config.train.seed})"
        )
        if table.patient_ids is not None:
            return (
                f"{how}, by patient ({self.data.patient_id!r}): all rows of a patient are in one split, "
                "checked after splitting; bootstrap CIs resample patients; see splits.csv"
            )
        note = f"{how}, one row per patient assumed (no data.patient_id set); see splits.csv"
        return f"{note}. {self._repeated_id}" if self._repeated_id else note

    def _repeated_id_column(self, raw: pd.DataFrame) -> str | None:
        """With no ``data.patient_id``, a column named like a patient identifier whose values repeat: a patient's
        rows may then land in different splits (leakage) — said in the notes and the report's warnings."""
        if self.data.patient_id is not None:
            return None
        for column in raw.columns:
            if not _ID_NAME.search(str(column)):
                continue
            values = raw[column].dropna()
            repeats = int(values.duplicated().sum())
            if len(values) and repeats:
                return (
                    f"column {column!r} looks like a patient identifier and repeats ({repeats} rows share an id "
                    f"with an earlier row), but data.patient_id is not set: one patient's rows can land in "
                    f"different splits, which inflates the test metrics — set data.patient_id: {column}"
                )
        return None

    def warnings(self, prepared: Prepared, test_index: np.ndarray) -> list[str]:
        warnings = []
        if self._repeated_id:
            warnings.append(self._repeated_id)
        imbalance = self.prep.imbalance
        if imbalance not in {"none"} and self.config.task != "regression":
            warnings.append(
                f"preprocess.imbalance: {imbalance} trains as if the classes were balanced, so predicted "
                "probabilities are pushed away from the true prevalence (see the calibration plot); use the "
                "threshold, not the raw probability, or set imbalance: none when calibrated risks matter."
            )
        if self.prep.missing == "knn":
            warnings.append(
                "preprocess.missing: knn stores the training rows' numeric values in preprocess.npz (KNN imputation "
                "needs them at prediction time): treat the bundle as patient data."
            )
        n_test = len(test_index)
        if n_test < 100:
            warnings.append(f"The test split has only {n_test} rows; confidence intervals are wide.")
        if self.config.task != "regression":
            for k, label in enumerate(prepared.classes):
                count = int((prepared.target[test_index] == k).sum())
                if count < 10:
                    warnings.append(f"Class {label!r} has only {count} rows in the test split.")
        return warnings

    def splits_table(self, prepared: Prepared, splits: np.ndarray) -> pd.DataFrame:
        table: PreparedTable = prepared.extra["table"]
        return splits_frame(table.rows, splits, table.patient_ids)

    # -- bundle -------------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        state, _ = self.fitted.get_state()
        return state

    def save_state(self, folder: Path) -> list[str]:
        return [p.name for p in self.fitted.save(folder)]

    def bundle_info(self, prepared: Prepared) -> dict[str, Any]:
        table: PreparedTable = prepared.extra["table"]
        known_levels = {
            column: sorted({level_text(v) for v in table.features[column].dropna()})
            for column, kind in table.column_types.items()
            if kind != "numeric"
        }
        return {
            "patient_id": self.data.patient_id,
            "feature_columns": list(table.column_types),
            "column_types": table.column_types,
            "known_levels": known_levels,
            "column_profile": self.fitted.column_profile_,
            "explain_baseline": self.explain_baseline_.tolist(),
        }

    @classmethod
    def load_state(cls, config: ExperimentConfig, folder: Path, info: dict[str, Any]) -> TabularModality:
        modality = cls(config)
        modality.preprocessor = TabularPreprocessor.load(folder)
        modality.info = info
        modality.explain_baseline_ = np.asarray(info["explain_baseline"], dtype=np.float32)
        return modality

    @classmethod
    def from_state(cls, config: ExperimentConfig, state: dict[str, Any]) -> TabularModality:
        raise MedDLError("a tabular bundle is loaded from its folder (preprocess.json + preprocess.npz)")

    def export_description(self) -> dict[str, Any]:
        preprocessor = self.fitted
        note = (
            "The inputs are the bundle's encoded features, not the raw table: numeric columns imputed and scaled, "
            "binary columns coded 0/1, categorical columns one-hot encoded, and missing-value indicators appended, "
            "all by MedDL's fitted preprocessing state (preprocess.json in the bundle). Encode raw rows with "
            "meddl.load_bundle(path).modality.model_inputs(frame) before calling the graph."
        )
        if preprocessor.missing == "drop":
            note += (
                " This bundle was trained with preprocess.missing: drop, so a row with a missing value encodes to "
                "NaN and cannot be scored."
            )
        return {
            "feature_names": list(preprocessor.feature_names_out_),
            "source_columns": list(preprocessor.source_columns_),
            "raw_columns": self.feature_columns,
            "note": note,
        }

    # -- prediction ---------------------------------------------------------------------------------
    @property
    def feature_columns(self) -> list[str]:
        return list(self.info["feature_columns"])

    def features_of(self, frame: pd.DataFrame, source: str = "input") -> pd.DataFrame:
        """The predictor columns of ``frame``, typed as in training; absent columns are an error."""
        missing = [c for c in self.feature_columns if c not in frame.columns]
        if missing:
            raise MedDLError(f"{source}: missing column(s) the model needs: {', '.join(repr(c) for c in missing)}")
        features = frame[self.feature_columns].copy()
        for column, kind in self.info["column_types"].items():
            if kind == "numeric":
                features[column] = coerce_numeric(features[column], column, source)
        return features

    def encode(self, features: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Encoded matrix and a mask of rows that can be scored (no NaN left after preprocessing)."""
        matrix = self.fitted.transform(features)
        return matrix, np.isfinite(matrix).all(axis=1)

    # -- records sent as JSON (the server) ----------------------------------------------------------------------
    json_route = "predict"
    request_items = "records"
    quick_requests = True

    def request_model(self) -> Any:
        """``{"records": [...]}`` typed by :meth:`input_schema` (see :mod:`meddl.modalities.requests`)."""
        return records_request(self.config.name, self.input_schema())

    def read_request(self, body: Any) -> PredictionInputs:
        """Validated records (numbers as numbers, levels as text, None for missing) encoded directly, without a
        DataFrame: a few records per request, where pandas would cost more than the model. The schema already
        refused unseen categories and (for models trained with ``missing: drop``) nulls; a null sent to an
        imputing model is noted."""
        records = [record.model_dump(by_alias=True) for record in body.records]
        case_ids = [record.pop("case_id", None) for record in records]
        matrix = self.fitted.transform_records(records)
        usable = np.isfinite(matrix).all(axis=1)
        notes = []
        for record, ok in zip(records, usable, strict=True):
            imputed = [column for column in self.info["column_types"] if record.get(column) is None]
            note = f"imputed (not measured): {', '.join(imputed)}" if imputed else ""
            notes.append(note if ok else "not scored: " + (note or "missing values"))
        return PredictionInputs(matrix[usable], case_ids, notes, usable, extra={"records": records, "matrix": matrix})

    def explain_request(self, model: torch.nn.Module, cases: PredictionInputs, scores: np.ndarray) -> list[dict]:
        contributions = self.contributions(model, cases.extra["records"], cases.extra["matrix"], cases.usable)
        return [{"contributions": case} for case in contributions]

    def read_for_prediction(self, source: Any, name: str | None = None) -> PredictionInputs:
        """Rows of a table file or a DataFrame; every row gets an output row, unscorable ones a note."""
        if isinstance(source, pd.DataFrame):
            frame, name = source, name or "input"
        else:
            frame = read_table(Path(source), na_values=self.data.na_values)
            name = name or Path(source).name
        features = self.features_of(frame, name)
        matrix, usable = self.encode(features)
        columns: dict[str, list[Any]] = {"row": frame.index.to_list()}
        patient_id = self.info.get("patient_id")
        if patient_id and patient_id in frame.columns:
            columns["patient_id"] = frame[patient_id].to_list()
        return PredictionInputs(
            inputs=matrix[usable],
            ids=[str(r) for r in frame.index],
            notes=self._notes(features, usable),
            usable=usable,
            extra={"features": features, "frame": frame, "source": name},
            columns=columns,
        )

    def model_inputs(self, inputs: Any) -> np.ndarray:
        """An encoded matrix as is; a DataFrame of raw rows is typed and encoded (unscorable rows give NaN)."""
        if isinstance(inputs, pd.DataFrame):
            return self.fitted.transform(self.features_of(inputs))
        return np.asarray(inputs, dtype=np.float32)

    def explain_cases(
        self, model: torch.nn.Module, cases: PredictionInputs, scores: np.ndarray, out: Path | None
    ) -> list[Any]:
        """One line per case: the variables that contributed most, with their values and sign (logit units)."""
        if not len(cases.inputs):
            return []
        grouped, names = self.attributions(model, cases.inputs)
        top_k = cases.extra.get("top_k") or self.config.explain.top_k
        usable_features = cases.extra["features"].loc[cases.usable]
        return list(format_top_features(grouped, names, usable_features, top_k))

    def explain_file(self, model: torch.nn.Module, cases: PredictionInputs, scores: np.ndarray, out: Path) -> str:
        """``meddl explain``: a CSV with each row's contribution per clinical variable (logit units)."""
        from meddl.io import write_table

        usable = cases.usable
        grouped, names = self.attributions(model, cases.inputs) if usable.any() else (np.zeros((0, 0)), [])
        table = pd.DataFrame(np.nan, index=range(len(usable)), columns=names)
        table.loc[np.flatnonzero(usable)] = grouped
        table.insert(0, "row", cases.columns["row"])
        write_table(table, out)
        return f"wrote contributions for {int(usable.sum())} of {len(usable)} cases to {out}"

    def case_contributions(
        self, model: torch.nn.Module, cases: PredictionInputs, *, top_k: int | None = None
    ) -> list[list[dict[str, Any]]]:
        features: pd.DataFrame = cases.extra["features"]
        result: list[list[dict[str, Any]]] = [[] for _ in range(len(features))]
        if not cases.usable.any():
            return result
        grouped, names = self.attributions(model, cases.inputs)
        k = top_k or self.config.explain.top_k
        for row, i in zip(grouped, np.flatnonzero(cases.usable), strict=True):
            order = np.argsort(-np.abs(row))[:k]
            result[i] = [
                {"feature": names[j], "value": clean_json(features.iloc[i][names[j]]), "contribution": float(row[j])}
                for j in order
            ]
        return result

    def attributions(self, model: torch.nn.Module, matrix: np.ndarray) -> tuple[np.ndarray, list[str]]:
        """Integrated-gradient contributions per clinical variable for encoded rows (logit units; survival: to the
        risk the model ranks patients by)."""
        target: np.ndarray | int = 0
        if self.config.task == "survival":
            model = self.target_scale_.risk_model(model)
        if self.config.task == "multiclass":
            target = self.outputs(model, matrix).argmax(axis=1)
        baseline = np.asarray(self.explain_baseline_, dtype=np.float32)
        raw = integrated_gradients(model, matrix.astype(np.float32), baseline, target_index=target)
        return group_attributions(raw, self.fitted.source_columns_)

    def contributions(
        self,
        model: torch.nn.Module,
        values: list[dict[str, Any]],
        matrix: np.ndarray,
        usable: np.ndarray,
        *,
        top_k: int | None = None,
    ) -> list[list[dict]]:
        """Per case, the ``top_k`` ``{"feature", "value", "contribution"}`` by absolute contribution; an empty list
        for a case that cannot be scored. ``values`` holds each case's raw values by column."""
        result: list[list[dict]] = [[] for _ in range(len(values))]
        if not usable.any():
            return result
        grouped, names = self.attributions(model, matrix[usable])
        k = top_k or self.config.explain.top_k
        for row, i in zip(grouped, np.flatnonzero(usable), strict=True):
            order = np.argsort(-np.abs(row))[:k]
            result[i] = [
                {"feature": names[j], "value": clean_json(values[i].get(names[j])), "contribution": float(row[j])}
                for j in order
            ]
        return result

    def input_schema(self) -> list[dict[str, Any]]:
        """One entry per input column: type, whether it may be missing, allowed values or training range, unit.

        ``nullable`` is True when the model imputes missing values (any ``preprocess.missing`` but ``drop``).
        """
        nullable = self.prep.missing != "drop"
        units = self.data.units
        fields = []
        for column, kind in self.info["column_types"].items():
            profile = self.info["column_profile"].get(column, {})
            entry: dict[str, Any] = {"name": column, "type": kind, "nullable": nullable, "unit": units.get(column)}
            if kind == "numeric":
                quantiles = profile.get("quantiles") or [None] * 5
                entry["typical_range"] = [quantiles[0], quantiles[4]]  # 5th–95th percentile in training
                entry["median"] = quantiles[2]
            else:
                entry["allowed"] = list(self.info["known_levels"].get(column, []))
            fields.append(entry)
        return fields

    def request_schema(self) -> list[dict[str, Any]]:
        return self.input_schema()

    def _notes(self, features: pd.DataFrame, usable: np.ndarray) -> list[str]:
        notes = [""] * len(features)
        missing_columns = features.columns[features.isna().any()].tolist() if not usable.all() else []
        for i in np.flatnonzero(~usable):
            absent = [c for c in missing_columns if pd.isna(features.iloc[i][c])]
            notes[i] = f"not scored: missing {', '.join(absent)} (the model was trained with preprocess.missing: drop)"
        if usable.all() or self.prep.missing != "drop":  # as the server says it: what the model filled in
            predictors = [c for c in self.info["column_types"] if c in features.columns]
            blank = features[predictors].isna().to_numpy()
            for i in np.flatnonzero(usable & blank.any(axis=1)):
                imputed = [c for c, b in zip(predictors, blank[i], strict=True) if b]
                notes[i] = f"imputed (not measured): {', '.join(imputed)}"
        for column, kind in self.info["column_types"].items():
            if kind == "numeric":
                profile = self.info["column_profile"].get(column)
                for row, far in far_outside_training(column, features[column], profile):
                    notes[row] = f"{notes[row]}; {far}" if notes[row] else far
                continue
            known = {str(v) for v in self.info["known_levels"].get(column, [])}
            text = features[column].map(lambda v: None if pd.isna(v) else level_text(v))
            for i in np.flatnonzero((text.notna() & ~text.isin(known)).to_numpy()):
                extra = f"{column}={clean_json(features.iloc[i][column])!r} not seen in training"
                notes[i] = f"{notes[i]}; {extra}" if notes[i] else extra
        return notes

    # -- external evaluation -----------------------------------------------------------------------------
    def load_external(self, path: Path, log: Log) -> Prepared:
        """Another site's table: rows without the outcome are dropped and counted; rows the model cannot score
        (a missing value under ``missing: drop``) likewise."""
        raw = read_table(Path(path), na_values=self.data.na_values)
        source = Path(path).name
        d, classes = self.data, list(self.info.get("classes") or [])
        outcome = [d.time, d.event] if self.config.task == "survival" else [self.info["target"]]
        for column in outcome:
            if column not in raw.columns:
                raise MedDLError(f"{source}: column {column!r} not found; external evaluation needs the outcome")
        labelled = raw[raw[outcome].notna().all(axis=1)]
        dropped = {"missing target": int(len(raw) - len(labelled))}
        if labelled.empty:
            raise MedDLError(f"{source}: every row lacks the outcome {' / '.join(map(str, outcome))}")
        if self.config.task == "survival":
            y, _ = encode_survival(labelled[d.time], labelled[d.event], d.event_value, source, causes=classes)
        else:
            y = encode_known_labels(labelled[outcome[0]], self.config.task, classes, str(outcome[0]), source)
        features = self.features_of(labelled, source)
        _, usable = self.encode(features)
        dropped["missing predictor values (model trained with preprocess.missing: drop)"] = int((~usable).sum())
        patient_column = self.info.get("patient_id")
        groups = labelled[patient_column].astype(str).to_numpy()[usable] if patient_column in labelled.columns else None
        unseen = self.fitted.count_unseen(features)
        return Prepared(
            inputs=features.loc[usable],
            target=y[usable],
            classes=list(self.info.get("classes") or []),
            sample_ids=[str(r) for r in features.index[usable]],
            patient_ids=groups,
            n_read=len(raw),
            dropped=dropped,
            repairs=self._imputed(features.loc[usable]),
            extra={
                "shift_of": features,
                "warnings": [f"column {c!r}: {n} value(s) not seen in training" for c, n in unseen.items() if n],
            },
        )

    def shift(self, prepared: Prepared) -> list[dict[str, Any]]:
        return table_shift(self.info["column_profile"], prepared.extra.get("shift_of", prepared.inputs))


_ID_NAME = re.compile(r"(^|_|\b)(patient|subject|person|mrn|participant)(_?id|_?no|_?number)?($|_|\b)", re.I)


def far_outside_training(column: str, values: pd.Series, profile: Mapping[str, Any] | None) -> list[tuple[int, str]]:
    """Cases whose value lies far outside what the model saw in training (:func:`meddl.evaluate.shift.far_outside`
    of the training 5th–95th percentiles): ``(position, note)`` pairs. Only percentiles are kept in a bundle, never
    a patient's extreme value."""
    quantiles = (profile or {}).get("quantiles")
    if not quantiles:
        return []
    low, high = float(quantiles[0]), float(quantiles[-1])
    numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64)
    return [
        (
            int(i),
            f"{column}={numbers[i]:.4g} is far outside the training range (5th–95th percentile "
            f"{low:.4g}–{high:.4g}); check the value and its unit",
        )
        for i in np.flatnonzero(far_outside(numbers, low, high, float(quantiles[2])))
    ]


def _as_groups(values: pd.Series) -> np.ndarray:
    """Group labels as text: ``1`` and ``1.0`` are one group (numbers read either way), missing is "missing"."""

    def text(value: Any) -> str:
        if value is None or (isinstance(value, float) and np.isnan(value)):
            return "missing"
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        return str(value)

    return np.array([text(v) for v in values.to_list()], dtype=object)
