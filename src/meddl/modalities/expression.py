"""Gene-expression profiles (``data.kind: expression``): a samples × genes matrix and a label table.

Log transform, gene selection by variance and standardisation are fitted on the training split only. A censored
survival outcome becomes "event by the horizon"; samples censored before it are left out and counted. The
explanations are integrated gradients per gene: the top genes overall, per predicted class and per case.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch

from meddl.data.cohorts import fixed_horizon_labels
from meddl.data.tabular import encode_survival
from meddl.errors import MedDLError
from meddl.evaluate.robustness import Corruption, gaussian_noise, mask_values
from meddl.explain.tabular import integrated_gradients
from meddl.io.expression import ExpressionMatrix, join_labels, read_expression
from meddl.io.tables import read_table
from meddl.modalities.base import Log, Modality, ModalityExample, PredictionInputs, Prepared, encode_labels
from meddl.modalities.registry import register
from meddl.modalities.schema import ExperimentConfig
from meddl.modalities.sections.expression import ExpressionDataConfig, ExpressionPreprocessConfig
from meddl.preprocess.expression import ExpressionTransform

__all__ = ["ExpressionModality"]

TOP_GENES = 15
CENSORED = "censored before the horizon (outcome unknown)"
N_CASES = 10


@register
class ExpressionModality(Modality):
    """A gene-expression profile per sample in, a call out, with the genes that drove it."""

    kind = "expression"
    usage: ClassVar[dict[str, str]] = {
        "data": "expression.csv",
        "input": (
            "Give a samples × genes matrix (CSV/TSV/Parquet); genes are matched by name, in any order, extra "
            "genes ignored."
        ),
        "python": '"expression.csv"',
    }
    title = "gene expression"
    explain_title = "Genes"
    upload_suffixes = (".csv", ".tsv", ".parquet")
    explanation_files = None  # the top genes, as text

    def __init__(self, config: ExperimentConfig) -> None:
        super().__init__(config)
        assert isinstance(config.data, ExpressionDataConfig)
        assert isinstance(config.preprocess, ExpressionPreprocessConfig)
        self.data: ExpressionDataConfig = config.data
        self.prep: ExpressionPreprocessConfig = config.preprocess
        self.genes: list[str] = []
        self.gene_labels: dict[str, str] = {}
        self.transformer: ExpressionTransform | None = None
        self.classes: list[str] = []
        self.sample_rows_: dict[str, int] = {}  # sample id → its spreadsheet row (column with genes in rows)

    @classmethod
    def example(cls, folder: Path) -> ModalityExample:
        from meddl.data.expression import synthetic_expression

        folder.mkdir(parents=True, exist_ok=True)
        counts, labels, _ = synthetic_expression(120, 60, 8, seed=0)
        counts.reset_index().to_csv(folder / "counts.csv", index=False)
        labels.to_csv(folder / "labels.csv", index=False)
        experiment = {
            "name": "example-expression",
            "task": "binary",
            "data": {
                "kind": "expression",
                "path": "counts.csv",
                "labels": "labels.csv",
                "target": "response",
                "positive_label": "yes",
            },
            "preprocess": {"log": "auto", "select": "variance", "n_genes": 30},
            "model": {"arch": "mlp", "hidden": [16]},
            "train": {"epochs": 3, "batch_size": 32, "seed": 0, "progress": False},
            "evaluate": {"bootstrap": 20},
        }
        return ModalityExample(experiment, folder / "counts.csv", folder / "counts.csv", folder / "counts.csv")

    def _matrix(self, path: Path) -> ExpressionMatrix:
        return read_expression(path, genes_in_rows=self.data.genes_in_rows)

    def _labels_path(self) -> Path:
        """``data.labels``, relative to the matrix's folder unless absolute."""
        path = self.data.labels
        return path if path.is_absolute() else (self.data.path.parent / path).resolve()

    def _check_log_domain(self, values: np.ndarray, samples: list[str], log: str, setting: str) -> None:
        """A log of ``x + 1`` needs every value above -1: name the file, gene, sample and row of the smallest.

        Args:
            values: (N, G) the matrix's values for ``samples``, in the columns of ``self.genes``.
            samples: the N sample ids.
            log: the log to be applied (``"log2"``, ``"log1p"`` or ``"none"``).
            setting: how the experiment file chose it, e.g. ``preprocess.log: log2``.
        """
        if log not in {"log2", "log1p"} or not values.size:
            return
        i, j = (int(k) for k in np.unravel_index(int(np.argmin(values)), values.shape))
        lowest = float(values[i, j])
        if lowest > -1:
            return
        row = self.sample_rows_.get(samples[i])
        place = "" if row is None else f" ({'column' if self.data.genes_in_rows else 'row'} {row})"
        raise MedDLError(
            f"{self.data.path}: gene {self.genes[j]!r}, sample {samples[i]!r}{place} is {lowest:g}; {setting} "
            f"computes {log}(x + 1), which needs every value above -1 — negative values look already log-scaled: "
            "set preprocess.log to 'none'"
        )

    def _label_table(self) -> tuple[pd.DataFrame, set[str], list[str]]:
        """The label table, with the label derived from a censored outcome where configured, and the sample ids
        whose outcome is unknown because they were censored before the horizon."""
        path = self._labels_path()
        frame = read_table(path)
        censored: set[str] = set()
        notes: list[str] = []
        if self.data.survival_time is not None and self.config.task == "survival":
            for column in (self.data.survival_time, str(self.data.survival_event)):
                if column not in frame.columns:
                    raise MedDLError(f"{path}: no column {column!r}; columns are {list(frame.columns)}")
        elif self.data.survival_time is not None:
            time_column, event_column = self.data.survival_time, str(self.data.survival_event)
            for column in (time_column, event_column):
                if column not in frame.columns:
                    raise MedDLError(f"{path}: no column {column!r}; columns are {list(frame.columns)}")
            if self.data.target in frame.columns:
                raise MedDLError(
                    f"{path}: column {self.data.target!r} already exists, but data.target names the label computed "
                    f"from {time_column!r}/{event_column!r}; choose another data.target"
                )
            time = pd.to_numeric(frame[time_column], errors="coerce").to_numpy(dtype=float)
            event = frame[event_column].map(_as_event).to_numpy()
            bad = np.flatnonzero(np.isnan(time) | pd.isna(event))
            if len(bad):
                row = int(bad[0])
                raise MedDLError(
                    f"{path}: row {row + 2}: {time_column!r} = {frame[time_column].iloc[row]!r}, "
                    f"{event_column!r} = {frame[event_column].iloc[row]!r} — need a number and 0/1 (true/false)"
                )
            horizon = float(self.data.horizon or 0.0)
            label, known = fixed_horizon_labels(time, event.astype(bool), horizon)
            # read_table indexes rows by their spreadsheet row: align the labels by position, not by index.
            frame[self.data.target] = pd.Series(label, index=frame.index, dtype="Int64").where(known)
            if self.data.sample_column in frame.columns:
                censored = set(frame.loc[~known, self.data.sample_column].astype(str).str.strip())
            notes.append(
                f"label: {event_column} by {horizon:g} ({time_column} units); samples censored before the horizon "
                "have an unknown outcome and are left out"
            )
        return frame, censored, notes

    def load(self, log: Log) -> Prepared:
        matrix = self._matrix(self.data.path)
        labels, censored_ids, notes = self._label_table()
        survival = self.config.task == "survival"
        label_column = str(self.data.survival_time) if survival else self.data.target
        matrix, values, joined = join_labels(
            matrix, labels, self.data.sample_column, label_column, source=self._labels_path()
        )
        dropped: dict[str, int] = {}
        if self.data.survival_time is not None and not survival:
            # Counted among the matrix's samples: a censored label row without a profile is no dropped sample.
            dropped[CENSORED] = sum(sample in censored_ids for sample in matrix.samples)
        dropped["samples without a label row"] = int(joined.get("samples_without_label", 0))  # type: ignore[call-overload]
        unmatched = int(joined.get("labels_without_sample", 0))  # type: ignore[call-overload]
        if unmatched:
            notes.append(f"{unmatched} label row(s) name a sample absent from the matrix: {joined.get('examples')}")
        if survival:
            target, classes, has_label = self._follow_up(labels, values)
            dropped["missing follow-up (time or event)"] = int((~has_label).sum())
        else:
            target, classes, has_label = encode_labels(values.reset_index(drop=True), self.config, self.data.path.name)
            dropped["missing label"] = int((~has_label).sum()) - dropped.get(CENSORED, 0)
        self.genes = list(matrix.genes)
        self.sample_rows_ = dict(zip(matrix.samples, matrix.rows, strict=True))
        inputs = np.asarray(matrix.values, dtype=np.float32)[has_label]
        samples = np.asarray(matrix.samples)[has_label]
        self._check_log_domain(inputs, [str(s) for s in samples], self.prep.log, f"preprocess.log: {self.prep.log}")
        self.gene_labels = self._gene_labels()
        self.classes = classes
        patients = None
        if self.data.patient_id:
            if self.data.patient_id not in labels.columns:
                raise MedDLError(f"{self.data.labels}: no column {self.data.patient_id!r} (data.patient_id)")
            by_sample = labels.set_index(labels[self.data.sample_column].astype(str).str.strip())[self.data.patient_id]
            patients = by_sample.reindex(samples).astype(str).to_numpy()
        log(f"{len(samples)} labelled samples × {len(self.genes)} genes")
        notes.insert(0, f"{len(matrix.samples)} samples × {len(self.genes)} genes read from {self.data.path.name}")
        return Prepared(
            inputs=inputs,
            target=target,
            classes=classes,
            sample_ids=[str(s) for s in samples],
            patient_ids=patients,
            n_read=len(matrix.samples),
            dropped={k: v for k, v in dropped.items() if v},
            notes=notes,
        )

    def _follow_up(self, labels: pd.DataFrame, times: pd.Series) -> tuple[np.ndarray, list[str], np.ndarray]:
        """``[time, event]`` of each matrix sample (``times``: its time, indexed by sample id), the event causes,
        and which samples have both (the others are counted as dropped)."""
        ids = labels[self.data.sample_column].astype(str).str.strip()
        events = pd.Series(labels[str(self.data.survival_event)].to_numpy(), index=ids).reindex(times.index)
        has = (times.notna() & events.notna()).to_numpy()
        info = getattr(self, "info", None) or {}
        known = list(info["classes"]) if info.get("classes") else None  # external data: the model's causes
        time_values = pd.Series(times.to_numpy()[has], index=times.index[has], name=self.data.survival_time)
        event_values = pd.Series(events.to_numpy()[has], index=times.index[has], name=self.data.survival_event)
        target, causes = encode_survival(time_values, event_values, None, str(self.data.labels), causes=known)
        return target, causes, has

    # -- training -----------------------------------------------------------------------------------
    def fit(self, prepared: Prepared, train_index: np.ndarray) -> None:
        transformer = ExpressionTransform(
            log=self.prep.log, select=self.prep.select, n_genes=self.prep.n_genes, scale=self.prep.scale
        )
        self.transformer = transformer.fit(prepared.inputs[train_index], genes=self.genes)
        if self.prep.log == "auto":  # the rule reads the training rows only, but every row is transformed
            setting = f"preprocess.log: auto (it chose {self.transformer.log_} from the training samples)"
            self._check_log_domain(prepared.inputs, prepared.sample_ids, self.transformer.log_, setting)
        prepared.notes.append(
            f"preprocessing fitted on the training split: log {self.transformer.log_!r}, "
            f"{len(self.transformer.selected_genes_)} genes kept ({self.prep.select}), scale {self.prep.scale}"
        )

    def transform(self, inputs: np.ndarray) -> np.ndarray:
        if self.transformer is None:
            raise MedDLError("expression preprocessing is used before it was fitted")
        return np.asarray(self.transformer.transform(inputs), dtype=np.float32)

    def model_arguments(self, inputs: np.ndarray) -> dict[str, int]:
        return {"in_features": int(inputs.shape[1])}

    def case_profile(self, cases: PredictionInputs) -> dict[str, np.ndarray]:
        """The model's genes after its transform (prediction reads only those; the others are left at zero)."""
        if not len(cases.inputs):
            return {}
        return {"mean of the model's genes (transformed)": np.asarray(self.transform(cases.inputs)).mean(axis=1)}

    def profile(self, prepared: Prepared, index: np.ndarray) -> dict[str, np.ndarray]:
        """Per sample, on the values as read: mean, SD and the share of genes above zero (library size and
        depth shift across sites), and the mean of the genes the model uses after its transform."""
        raw = np.asarray(prepared.inputs, dtype=np.float64)[index]
        return {
            "mean expression (as read)": raw.mean(axis=1),
            "SD of expression (as read)": raw.std(axis=1),
            "share of genes above zero": (raw > 0).mean(axis=1),
            "mean of the model's genes (transformed)": np.asarray(self.transform(prepared.inputs[index])).mean(axis=1),
        }

    def baseline_features(self, prepared: Prepared, inputs: np.ndarray) -> np.ndarray:
        return inputs  # the same preprocessed genes the network sees

    def corruptions(self) -> list[Corruption]:
        """On the model's genes after the fitted log, selection and scaling: technical noise (in each gene's
        training SD), dropout (genes read as zero: the zero-inflation of shallow or single-cell sequencing) and a
        smaller library (every value divided by the factor before the log; values the model takes unlogged are
        taken as log2-scaled, so the factor is subtracted as log2)."""
        fitted = self.transformer
        if fitted is None:
            raise MedDLError("expression preprocessing is used before it was fitted")
        mean, scale = np.asarray(fitted.mean_, dtype=np.float64), np.asarray(fitted.scale_, dtype=np.float64)
        gene_sd = np.sqrt(np.asarray(fitted.variances_, dtype=np.float64)[fitted.selected_index_]) / scale
        zero = (0.0 - mean) / scale  # every log used maps 0 to 0
        log = fitted.log_

        def smaller_library(x: np.ndarray, factor: float, rng: np.random.Generator) -> np.ndarray:
            logged = x.astype(np.float64) * scale + mean  # the values after the log, before scaling
            if log == "log2":
                logged = np.log2((np.exp2(logged) - 1.0) / factor + 1.0)
            elif log == "log1p":
                logged = np.log1p(np.expm1(logged) / factor)
            else:
                logged = logged - np.log2(factor)
            return ((logged - mean) / scale).astype(x.dtype)

        return [
            Corruption(
                "noise",
                "Technical noise on every gene",
                "noise SD in SDs of each gene in the training split",
                (0.25, 0.5, 1.0),
                lambda x, k, rng: gaussian_noise(x, k * gene_sd, rng),
            ),
            Corruption(
                "dropout",
                "Genes read as zero at random (dropout, zero-inflation)",
                "share of each sample's genes",
                (0.05, 0.1, 0.25),
                lambda x, k, rng: mask_values(x, k, rng, fill=zero),
            ),
            Corruption(
                "library_size",
                "A smaller library (fewer reads: sequencing depth divided by the factor)",
                "depth divided by",
                (2.0, 4.0, 10.0),
                smaller_library,
            ),
        ]

    # -- explanations -----------------------------------------------------------------------------------
    def _attributions(self, model: torch.nn.Module, inputs: np.ndarray, scores: np.ndarray) -> np.ndarray:
        target: np.ndarray | int = 0 if scores.ndim == 1 else np.argmax(scores, axis=1)
        if self.config.task == "survival":  # attributions to the risk the model ranks patients by
            model, target = self.target_scale_.risk_model(model), 0
        model = model.cpu().eval()
        return integrated_gradients(model, inputs, np.zeros(inputs.shape[1], dtype=np.float32), target_index=target)

    def _gene_labels(self) -> dict[str, str]:
        """``data.gene_names`` read as {gene id: name}; an id absent from the matrix is ignored, a repeated id is an
        error naming it."""
        if self.data.gene_names is None:
            return {}
        path = self.data.gene_names
        if not path.is_absolute():
            path = (self.data.path.parent / path).resolve()
        table = read_table(path)
        if table.shape[1] < 2:
            raise MedDLError(f"{path}: data.gene_names needs two columns, the gene id and its name")
        ids, names = table.iloc[:, 0].astype(str).str.strip(), table.iloc[:, 1]
        repeated = ids[ids.duplicated()]
        if len(repeated):
            raise MedDLError(f"{path}: gene id {repeated.iloc[0]!r} is named twice (row {repeated.index[0]})")
        known = set(self.genes)
        return {g: str(n).strip() for g, n in zip(ids, names, strict=True) if g in known and pd.notna(n)}

    def gene_label(self, gene: str) -> str:
        """``219510_at (POLQ)`` when ``data.gene_names`` names the gene, else the id."""
        name = getattr(self, "gene_labels", {}).get(gene)
        return f"{gene} ({name})" if name and name != gene else gene

    @property
    def selected_genes(self) -> list[str]:
        assert self.transformer is not None
        return list(self.transformer.selected_genes_)

    def explain(
        self,
        model: torch.nn.Module,
        prepared: Prepared,
        inputs: np.ndarray,
        test_index: np.ndarray,
        scores: np.ndarray,
        out: Path,
    ) -> dict[str, Any]:
        if self.config.task == "multilabel":
            return {}
        genes = [self.gene_label(g) for g in self.selected_genes]
        attributions = self._attributions(model, inputs[test_index], scores)  # (N, G)
        overall = np.abs(attributions).mean(axis=0)
        ranking = [{"feature": g, "mean_abs_attribution": float(v)} for g, v in zip(genes, overall, strict=True)]
        ranking.sort(key=lambda r: -float(r["mean_abs_attribution"]))  # type: ignore[arg-type]
        if self.config.task == "survival":
            risk = scores[:, 0]
            groups = {
                "higher predicted risk (upper half)": risk >= np.median(risk),
                "lower predicted risk (lower half)": risk < np.median(risk),
            }
            scores = risk
        elif self.config.task == "regression":
            groups = {"predicted value": np.ones(len(test_index), dtype=bool)}
        elif scores.ndim == 1:
            threshold = 0.5
            groups = {
                f"predicted {self.class_name(1)}": scores >= threshold,
                f"predicted {self.class_name(0)}": scores < threshold,
            }
        else:
            predicted = np.argmax(scores, axis=1)
            groups = {f"predicted {self.class_name(k)}": predicted == k for k in range(scores.shape[1])}
        class_rows = []
        for name, members in groups.items():
            if not members.any():
                continue
            mean = attributions[members].mean(axis=0)
            top = np.argsort(-np.abs(mean))[:5]
            class_rows.append([name, int(members.sum()), "; ".join(f"{genes[j]} ({mean[j]:+.3f})" for j in top)])
        case_rows = []
        for position in range(min(N_CASES, len(test_index))):
            row = attributions[position]
            top = np.argsort(-np.abs(row))[:5]
            score = scores[position] if scores.ndim == 1 else scores[position].max()
            case_rows.append(
                [
                    prepared.sample_ids[test_index[position]],
                    f"{float(score):.2f}",
                    "; ".join(f"{genes[j]} ({row[j]:+.3f})" for j in top),
                ]
            )
        sections = [
            {
                "id": "genes-by-class",
                "title": "Top genes per predicted class",
                "text": "Mean integrated-gradient contribution of each gene among the test samples predicted in "
                "each class (positive: pushes towards the positive class / higher value).",
                "table": {"columns": ["Group", "Samples", "Top genes (mean contribution)"], "rows": class_rows},
            },
            {
                "id": "genes-by-case",
                "title": "Top genes per test sample",
                "text": f"The five largest contributions for the first {len(case_rows)} test samples.",
                "table": {"columns": ["Sample", "Score", "Top genes (contribution)"], "rows": case_rows},
            },
        ]
        return {"sections": sections, "explanations": {"integrated_gradients": ranking[: max(TOP_GENES, 20)]}}

    def class_name(self, k: int) -> str:
        return self.classes[k] if k < len(self.classes) else str(k)

    # -- bundle ---------------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        assert self.transformer is not None
        return {"genes": self.genes, "transform": self.transformer.to_state(), "gene_labels": self.gene_labels}

    @classmethod
    def from_state(cls, config: ExperimentConfig, state: dict[str, Any]) -> ExpressionModality:
        adapter = cls(config)
        adapter.genes = list(state["genes"])
        adapter.gene_labels = dict(state.get("gene_labels") or {})
        adapter.transformer = ExpressionTransform.from_state(state["transform"])
        return adapter

    def read_for_prediction(self, path: Path) -> PredictionInputs:
        """A matrix of new samples; genes are matched by name, in any column order, extra genes ignored.

        Only the genes the model uses (those kept by the fitted gene selection) must be present: a training
        gene that the selection dropped may be missing, since no prediction depends on it.

        Raises:
            MedDLError: naming the file and the genes the model uses that the matrix lacks.
        """
        matrix = self._matrix(path)
        position = {g: j for j, g in enumerate(matrix.genes)}
        used = set(self.selected_genes)
        missing = [g for g in self.genes if g in used and g not in position]
        if missing:
            raise MedDLError(
                f"{path}: {len(missing)} gene(s) the model uses are missing, e.g. {missing[:5]}; the model needs "
                f"the {len(used)} genes listed under 'transform' in the bundle's preprocess.json"
            )
        given = np.asarray(matrix.values, dtype=np.float32)
        values = np.zeros((len(matrix.samples), len(self.genes)), dtype=np.float32)  # (N, training genes)
        for j, gene in enumerate(self.genes):
            if gene in position:  # an absent gene is one the selection dropped: its column is never read
                values[:, j] = given[:, position[gene]]
        n = len(matrix.samples)
        return PredictionInputs(values, [str(s) for s in matrix.samples], [""] * n, np.ones(n, dtype=bool))

    def explain_cases(
        self, model: torch.nn.Module, cases: PredictionInputs, scores: np.ndarray, out: Path | None
    ) -> list[str]:
        """The five genes that contributed most to each sample's prediction."""
        genes = [self.gene_label(g) for g in self.selected_genes]
        attributions = self._attributions(model, self.transform(cases.inputs), scores)
        lines = []
        for row in attributions:
            top = np.argsort(-np.abs(row))[:5]
            lines.append("; ".join(f"{genes[j]} ({row[j]:+.3f})" for j in top))
        return lines


def _as_event(value: Any) -> float | None:
    """0/1, true/false, yes/no → 1.0 / 0.0; anything else → None."""
    text = str(value).strip().lower()
    if text in {"1", "1.0", "true", "yes", "y", "t"}:
        return 1.0
    if text in {"0", "0.0", "false", "no", "n", "f"}:
        return 0.0
    return None
