"""EHR event sequences (``data.kind: ehr``): a DuckDB event store, a cohort and an outcome, sequence models.

The cohort (index stays, labels, exclusions counted in a flow table) is defined by SQL in the store. Features are
extracted *after* the split, because the lab items and the code vocabulary are chosen on training patients only;
the extraction runs inside DuckDB, chunk by chunk, into a memory-mapped array in the run folder. Nothing after
each stay's observation window reaches its features.
"""

from __future__ import annotations

import base64
import shutil
from pathlib import Path
from typing import Any, ClassVar

import duckdb
import numpy as np
import torch

from meddl.data.ehr_cohort import (
    CohortSpec,
    EHRCohort,
    EHRFeatures,
    FeatureSpec,
    Vocabulary,
    build_vocabulary,
    define_cohort,
    extract_features,
)
from meddl.errors import MedDLError
from meddl.evaluate.robustness import Corruption
from meddl.explain.ehr import integrated_gradients_sequence, retain_explanations, summarise_attributions
from meddl.io.ehr import EventStore
from meddl.modalities.base import Log, Modality, ModalityExample, PredictionInputs, Prepared
from meddl.modalities.registry import register
from meddl.modalities.requests import event_rows_errors, event_rows_request
from meddl.modalities.schema import ExperimentConfig
from meddl.modalities.sections.ehr import EHRDataConfig, EHRPreprocessConfig
from meddl.preprocess.ehr import SequenceScaler

__all__ = ["EHRModality"]

MAX_EXPLAINED = 500
TOP_CONTRIBUTIONS = 5  # (channel, step) entries per stay in the server's explain answer
MEMORY_LIMIT = "1GB"  # DuckDB keeps blocks it has read up to its limit; capping it keeps extraction's RSS flat
CLASSES = {
    "mortality": ["survived", "died in hospital"],
    "readmission": ["not readmitted", "readmitted"],
    "long_stay": ["short stay", "long stay"],
}


def _connect(path: Path) -> duckdb.DuckDBPyConnection:
    """The store's connection, opened once (``EventStore.open`` gives a clear error for anything but a MedDL
    event store); the caller closes it (``with _connect(path) as con``)."""
    con = EventStore.open(path, read_only=True).connection
    con.execute(f"SET memory_limit = '{MEMORY_LIMIT}'")
    return con


@register
class EHRModality(Modality):
    """Stays in an EHR event store in, a risk out, with the events and hours that drove it."""

    kind = "ehr"
    usage: ClassVar[dict[str, str]] = {
        "data": "events.duckdb",
        "input": ("Give an EHR event store written by `meddl ehr import`; every stay in it is scored."),
        "python": '"events.duckdb"',
    }
    title = "EHR event store"
    explain_title = "What drove the risk"
    request_style = "events"
    json_route = "predict"
    request_items = "visits"
    explanation_files = None  # the largest contributions, as text

    # -- the event store itself (``meddl ehr import`` / ``meddl ehr synthetic``) ------------------------------
    @staticmethod
    def import_store(source: Path, fmt: str, out: Path, *, overwrite: bool = False) -> dict[str, Any]:
        """Import a MIMIC-IV, OMOP CDM or FHIR R4 extract (a folder of CSV / NDJSON files) into an event store;
        returns the import report (rows per table, what was left out and why)."""
        from meddl.io import ehr as ehr_io

        importers = {"mimic": ehr_io.import_mimic, "omop": ehr_io.import_omop, "fhir": ehr_io.import_fhir}
        if fmt not in importers:
            raise MedDLError(f"unknown EHR source format {fmt!r}; choose one of {', '.join(importers)}")
        return dict(importers[fmt](source, out, overwrite=overwrite).as_dict())

    @staticmethod
    def synthetic_store(out: Path, n_patients: int, seed: int = 0) -> str:
        """Write a synthetic cohort (visits, codes, labs, vitals; mortality from a known risk model); returns what
        was written, in one line."""
        from meddl.data.ehr_synth import synthetic_ehr

        made = synthetic_ehr(out, n_patients=n_patients, seed=seed)
        return f"wrote {out}: {made.n_patients} patients, {made.n_visits} visits, {made.n_events} events"

    def request_schema(self) -> dict[str, Any]:
        from meddl.io.ehr_schema import REQUIRED_TABLES, TABLE_COLUMNS

        return {
            "upload": None,
            "json": "application/json: one list of rows per event-store table, times ISO 8601",
            "tables": {table: dict(columns) for table, columns in TABLE_COLUMNS.items()},
            "required_tables": list(REQUIRED_TABLES),
        }

    def __init__(self, config: ExperimentConfig) -> None:
        super().__init__(config)
        assert isinstance(config.data, EHRDataConfig) and isinstance(config.preprocess, EHRPreprocessConfig)
        self.data: EHRDataConfig = config.data
        self.prep: EHRPreprocessConfig = config.preprocess
        c = self.data.cohort
        self.cohort_spec = CohortSpec(
            outcome=c.outcome,
            observation_hours=c.observation_hours,
            horizon_days=c.horizon_days,
            min_age=c.min_age,
            min_stay_hours=c.min_stay_hours,
            first_stay_only=c.first_stay_only,
            stay_selection=c.stay_selection,
            seed=config.train.seed,
            label_codes_top=c.label_codes_top,
        )
        p = self.prep
        self.feature_spec = FeatureSpec(
            mode=p.mode,
            bin_hours=p.bin_hours,
            max_visits=p.max_visits,
            labs=p.labs,
            top_labs=p.top_labs,
            codes_top=p.codes_top,
            include_static=p.include_static,
            include_discharge_codes=p.include_discharge_codes,
        )
        self.vocabulary: Vocabulary | None = None
        self.scaler: SequenceScaler | None = None
        self.feature_names: list[str] = []
        self.groups: dict[str, list[int]] = {}
        self.cohort: EHRCohort | None = None

    @classmethod
    def example(cls, folder: Path) -> ModalityExample:
        from meddl.data.ehr_synth import synthetic_ehr

        folder.mkdir(parents=True, exist_ok=True)
        synthetic_ehr(folder / "events.duckdb", n_patients=300, seed=0)
        experiment = {
            "name": "example-ehr",
            "task": "binary",
            "data": {
                "kind": "ehr",
                "path": "events.duckdb",
                "cohort": {"outcome": "mortality", "observation_hours": 24},
            },
            "preprocess": {"mode": "grid", "bin_hours": 6},
            "model": {"arch": "gru", "hidden": 16},
            "train": {"epochs": 3, "batch_size": 32, "seed": 0, "progress": False},
            "evaluate": {"bootstrap": 20},
        }
        store = folder / "events.duckdb"
        return ModalityExample(experiment, store, store, store)

    # -- reading: the cohort ------------------------------------------------------------------------
    def load(self, log: Log) -> Prepared:
        path = self.data.path
        if not path.exists():
            raise MedDLError(f"EHR event store not found: {path} (build one with `meddl ehr import`)")
        with _connect(path) as con:
            cohort = define_cohort(con, self.cohort_spec)
        self.cohort = cohort
        log(f"cohort: {cohort.n} index stays of {len(np.unique(cohort.patient_ids))} patients")
        target: np.ndarray
        if self.config.task == "survival":  # [time, event code]; the causes are the label names
            classes = list(cohort.label_names)
            target = np.asarray(cohort.labels, dtype=np.float64)
        elif self.config.task == "multilabel":
            classes = list(cohort.label_names)
            target = np.asarray(cohort.labels, dtype=np.int64)
        else:
            classes = CLASSES[self.cohort_spec.outcome]
            target = np.asarray(cohort.labels, dtype=np.int64).reshape(-1)
        flow_rows = []
        previous = None
        for step, remaining in cohort.flow:
            flow_rows.append([step, remaining, "" if previous is None else previous - remaining])
            previous = remaining
        flow = {
            "id": "cohort-flow",
            "title": "Cohort flow",
            "text": [
                f"Index stays left after each step of the cohort definition ({self.cohort_spec.outcome}); "
                "the excluded column counts the stays each step removed."
            ],
            "table": {"columns": ["Step", "Stays", "Excluded"], "rows": flow_rows},
        }
        c = self.data.cohort
        window = (
            "the whole stay (prediction at discharge)"
            if c.outcome in {"readmission", "next_visit_diagnoses", "time_to_readmission"}
            else f"the first {c.observation_hours:g} h of the stay"
        )
        notes = [
            f"features from {window}; vocabulary and lab items chosen on training patients only; "
            f"{self.prep.mode} features" + (f" on {self.prep.bin_hours:g}-h bins" if self.prep.mode == "grid" else "")
        ]
        first = cohort.flow[0][1] if cohort.flow else cohort.n
        return Prepared(
            inputs=np.zeros((cohort.n, 0), dtype=np.float32),  # filled by fit() or prepare_external()
            target=target,
            classes=classes,
            sample_ids=[str(v) for v in cohort.visit_ids],
            patient_ids=np.asarray(cohort.patient_ids).astype(str),
            n_read=int(first),
            dropped={"excluded by the cohort definition (see Cohort flow)": int(first - cohort.n)}
            if first > cohort.n
            else {},
            notes=notes,
            sections=[flow],
        )

    def prepare_external(self, prepared: Prepared) -> None:
        """External validation: the loaded cohort's features with the bundle's vocabulary (nothing is fitted)."""
        assert self.cohort is not None, "load() first"
        if self.vocabulary is None:
            raise MedDLError("prepare_external needs an adapter restored from a bundle (from_state)")
        path = self.data.path
        with _connect(path) as con:
            features = extract_features(con, self.cohort, self.feature_spec, self.vocabulary, out=self.workdir)
        if list(features.feature_names) != self.feature_names:
            raise MedDLError(
                f"{path}: the features extracted with the bundle's vocabulary have {len(features.feature_names)} "
                f"channels; the model was trained on {len(self.feature_names)}"
            )
        prepared.inputs = features.x

    # -- training -----------------------------------------------------------------------------------
    def fit(self, prepared: Prepared, train_index: np.ndarray) -> None:
        """Vocabulary on the training stays, features for every stay (inside DuckDB), scaler on training rows."""
        assert self.cohort is not None, "load() first"
        train_mask = np.zeros(self.cohort.n, dtype=bool)
        train_mask[train_index] = True
        out = None
        if self.workdir is not None:
            out = self.workdir
            out.mkdir(parents=True, exist_ok=True)
        with _connect(self.data.path) as con:
            self.vocabulary = build_vocabulary(con, self.cohort, self.feature_spec, train_mask)
            features = extract_features(con, self.cohort, self.feature_spec, self.vocabulary, out=out)
        self._remember(features)
        self.scaler = None
        if self.prep.scale == "standard" and features.value_channels:
            self.scaler = SequenceScaler(
                value_channels=features.value_channels, observed_channels=features.observed_channels or None
            ).fit(features.x[train_index])
        prepared.inputs = features.x
        for reason, count in features.dropped.items():
            if count:
                prepared.notes.append(f"{count} {reason.replace('_', ' ')} (left out of the features)")
        layout = ", ".join(f"{name} {len(channels)}" for name, channels in self.groups.items())
        prepared.notes.append(f"{len(self.feature_names)} channels per step ({layout})")

    def _remember(self, features: EHRFeatures) -> None:
        self.feature_names = list(features.feature_names)
        self.groups = {k: list(v) for k, v in features.groups.items()}

    def transform(self, inputs: np.ndarray) -> np.ndarray:
        if self.scaler is None:
            return np.asarray(inputs, dtype=np.float32)
        return np.asarray(self.scaler.transform(inputs), dtype=np.float32)

    def model_arguments(self, inputs: np.ndarray) -> dict[str, int]:
        return {"in_features": int(inputs.shape[2])}

    def profile(self, prepared: Prepared, index: np.ndarray) -> dict[str, np.ndarray]:
        """Per stay: how often each lab is measured (share of time steps observed: the event rate) and its mean
        value where observed (the lab distribution), on the values as extracted (before scaling)."""
        return self._stay_measures(np.asarray(prepared.inputs[index], dtype=np.float64))

    def case_profile(self, cases: PredictionInputs) -> dict[str, np.ndarray]:
        """Each lab's mean value over a new stay (a value in another unit, a device fault): the measures of
        :meth:`profile` that say something is wrong when far outside training."""
        if not len(cases.inputs):
            return {}
        measures = self._stay_measures(np.asarray(cases.inputs, dtype=np.float64))
        return {name: values for name, values in measures.items() if name.endswith(": mean value")}

    def _stay_measures(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """:meth:`profile`'s measures of stays ``x`` (N, T, F), as extracted."""
        measures: dict[str, np.ndarray] = {}
        observed = self.groups.get("lab_observed", [])
        for value_channel, observed_channel in zip(self.groups.get("lab_value", []), observed, strict=False):
            name = self.feature_names[value_channel].removeprefix("lab:").removesuffix(":value")
            seen = x[:, :, observed_channel] > 0  # (N, T)
            measures[f"{name}: share of hours measured"] = seen.mean(axis=1)
            with np.errstate(invalid="ignore", divide="ignore"):
                measures[f"{name}: mean value"] = (x[:, :, value_channel] * seen).sum(axis=1) / seen.sum(axis=1)
        codes = self.groups.get("codes", [])
        if codes:
            measures["codes per stay"] = x[:, :, codes].sum(axis=(1, 2))
        return measures

    def baseline_features(self, prepared: Prepared, inputs: np.ndarray) -> np.ndarray:
        """Each channel's mean over a stay's real steps and its value at the last real step: the sequence
        flattened for logistic regression and gradient boosting, which see no order in time."""
        n, _, f = inputs.shape
        flat = np.zeros((n, 2 * f), dtype=np.float32)
        for start in range(0, n, 4096):  # chunks: inputs may be a memory-mapped file larger than RAM
            x = np.asarray(inputs[start : start + 4096], dtype=np.float32)  # (B, T, F)
            mask = x[:, :, 0:1]  # (B, T, 1)
            steps = np.maximum(mask.sum(axis=1), 1.0)  # (B, 1)
            last = np.maximum(mask[:, :, 0].sum(axis=1).astype(int) - 1, 0)  # (B,)
            flat[start : start + len(x), :f] = (x * mask).sum(axis=1) / steps
            flat[start : start + len(x), f:] = x[np.arange(len(x)), last]
        return flat

    # -- robustness -----------------------------------------------------------------------------------
    def corruptions(self) -> list[Corruption]:
        """On the (scaled) event sequences: events lost at random (lab measurements — the last kept value is then
        carried forward — and codes), lab times jittered across time steps, and lab tests missing altogether (as if
        never measured); in visits mode the visit dates are jittered instead."""
        labs, codes = self.groups.get("lab_value", []), self.groups.get("codes", [])
        grid = self.feature_spec.mode == "grid"
        found = []
        if labs or codes:
            found.append(
                Corruption(
                    "dropped_events",
                    "Recorded events lost at random (lab measurements, diagnosis and procedure codes)",
                    "share of events",
                    (0.1, 0.25, 0.5),
                    lambda x, share, rng: self._corrupted(x, rng, drop=share),
                )
            )
        if grid and labs:
            hours = float(self.feature_spec.bin_hours)
            found.append(
                Corruption(
                    "time_jitter",
                    f"Lab times shifted at random (charting delays), moved between {hours:g}-h time steps",
                    "SD of the shift in hours",
                    (hours / 2, hours, 2 * hours),
                    lambda x, sd, rng: self._corrupted(x, rng, jitter_steps=sd / hours),
                )
            )
            found.append(
                Corruption(
                    "missing_lab",
                    "Lab tests not available at all (chosen at random), as if never measured",
                    f"lab tests missing of {len(labs)}",
                    tuple(float(k) for k in (1, 2, 3) if k <= len(labs)),
                    lambda x, k, rng: self._corrupted(x, rng, missing_labs=int(k)),
                )
            )
        if not grid and self.groups.get("time"):
            channel = self.groups["time"][0]

            def jitter_dates(x: np.ndarray, days: float, rng: np.random.Generator) -> np.ndarray:
                out = x.copy()
                real = x[:, :, 0] > 0.5  # (N, T)
                shifted = x[:, :, channel] + rng.normal(0.0, days / 365.25, size=real.shape)  # years
                out[:, :, channel] = np.where(real, np.maximum(shifted, 0.0), x[:, :, channel])
                return out

            found.append(
                Corruption(
                    "time_jitter", "Visit dates shifted at random", "SD of the shift in days", (7, 30, 90), jitter_dates
                )
            )
        return found

    def _corrupted(
        self,
        x: np.ndarray,
        rng: np.random.Generator,
        *,
        drop: float = 0.0,
        jitter_steps: float = 0.0,
        missing_labs: int = 0,
    ) -> np.ndarray:
        """A copy of scaled sequences ``x`` (N, T, F) with a share ``drop`` of events lost, lab measurements moved by
        a normal number of time steps (SD ``jitter_steps``; one leaving the stay's steps is lost), and
        ``missing_labs`` lab items removed; the lab channels are then rebuilt as feature extraction builds them."""
        out = x.copy()
        g = self.groups
        grid = self.feature_spec.mode == "grid"
        real = x[:, :, 0] > 0.5  # (N, T): the stay's steps (the step mask)
        codes = g.get("codes", [])
        if drop and codes:  # grid mode: a stay's codes are repeated at every step, so one draw per stay and code
            draws = (len(x), 1 if grid else x.shape[1], len(codes))
            out[:, :, codes] = x[:, :, codes] * (rng.random(draws) >= drop)
        labs = g.get("lab_value", [])
        if not grid or not labs:
            return out
        measured = (x[:, :, g["lab_observed"]] > 0.5) & real[:, :, None]  # (N, T, K)
        values, since = x[:, :, labs], x[:, :, g["lab_hours_since"]]
        if drop:
            measured &= rng.random(measured.shape) >= drop
        if missing_labs:
            measured[:, :, rng.permutation(len(labs))[:missing_labs]] = False  # nested as the count rises
        if jitter_steps:
            stay, step, lab = np.nonzero(measured)
            target = step + np.rint(rng.normal(0.0, jitter_steps, size=step.shape)).astype(np.int64)
            inside = (target >= 0) & (target < x.shape[1])
            inside[inside] = real[stay[inside], target[inside]]
            moved = (stay[inside], target[inside], lab[inside])
            kept = (stay[inside], step[inside], lab[inside])
            measured = np.zeros_like(measured)
            measured[moved] = True
            values, since = np.zeros_like(values), np.zeros_like(since)
            values[moved], since[moved] = x[:, :, labs][kept], x[:, :, g["lab_hours_since"]][kept]
        never = np.zeros(len(labs), dtype=np.float32)  # a lab not yet measured: raw value 0, as extracted
        if self.scaler is not None:
            never = ((0.0 - self.scaler.mean_) / self.scaler.scale_).astype(np.float32)
        value_out, observed_out, since_out = _lab_channels(measured, values, since, real, never)
        out[:, :, labs], out[:, :, g["lab_observed"]], out[:, :, g["lab_hours_since"]] = (
            value_out,
            observed_out,
            since_out,
        )
        return out

    # -- explanations ---------------------------------------------------------------------------------
    def explain(
        self,
        model: torch.nn.Module,
        prepared: Prepared,
        inputs: np.ndarray,
        test_index: np.ndarray,
        scores: np.ndarray,
        out: Path,
    ) -> dict[str, Any]:
        model = model.cpu().eval()
        if self.config.task == "survival":  # explain the risk the model ranks stays by
            model, predicted = self.target_scale_.risk_model(model), scores[:, 0]
            scores = predicted
        else:
            predicted = scores if scores.ndim == 1 else scores.max(axis=1)
        order = np.argsort(-predicted)[:MAX_EXPLAINED]
        rows = test_index[order]
        x = np.ascontiguousarray(inputs[rows])
        labels = self._explained_outputs(scores[order])
        attributions = _attributions(model, x, labels)  # (N, T, F)
        summary = summarise_attributions(attributions, self.feature_names, self.groups)
        ranking = [
            {"feature": row["feature"], "mean_abs_attribution": float(row["importance"])} for row in summary["features"]
        ]
        step_hours = self.prep.bin_hours if self.prep.mode == "grid" else None
        step_rows = [
            [f"{k * step_hours:g}–{(k + 1) * step_hours:g} h" if step_hours else f"step {k + 1}", f"{value:.4f}"]
            for k, value in enumerate(summary["steps"])
        ]
        group_rows = [[name, f"{value:.4f}"] for name, value in summary["groups"].items() if name != "mask"]
        case_rows = []
        for j, case in enumerate(summary["cases"][:10]):
            parts = "; ".join(self.describe_contribution(e) for e in case)
            risk = f"{float(predicted[order[j]]):.2f}"
            if self.config.task == "multilabel":
                risk = f"{prepared.classes[int(labels[j])]} {risk}"
            case_rows.append([prepared.sample_ids[rows[j]], risk, parts])
        sections: list[dict[str, Any]] = [
            {
                "id": "ehr-attributions",
                "title": "What drove the risk",
                "text": [
                    f"Integrated gradients on the {len(rows)} highest-risk test stays: the contribution of each "
                    "channel (lab value, observed flag, time since measurement, code, demographic) at each step. "
                    + (
                        "Each stay is explained for its most probable label (named in the table of stays). "
                        if self.config.task == "multilabel"
                        else ""
                    )
                    + "By group and by time step (mean over stays of the summed absolute contribution):",
                ],
                "table": {"columns": ["Group or time step", "Mean |attribution|"], "rows": group_rows + step_rows},
            },
            {
                "id": "ehr-cases",
                "title": "Largest contributions per stay",
                "text": ["The five largest (signed) contributions for the ten highest-risk test stays."],
                "table": {"columns": ["Stay", "Risk", "Largest contributions"], "rows": case_rows},
            },
        ]
        if type(model).__name__ == "Retain" and self.config.task == "binary":
            retained = retain_explanations(model, x[:10], self.feature_names, top=5)
            sections.append(
                {
                    "id": "retain",
                    "title": "RETAIN attention",
                    "text": [
                        "RETAIN's own decomposition of each logit: α weighs the time steps (visits or bins), and each "
                        "code's contribution is exact (they add up to the logit with the baseline)."
                    ],
                    "table": {
                        "columns": ["Stay", "Step weights α", "Top contributions"],
                        "rows": [
                            [
                                prepared.sample_ids[rows[j]],
                                " ".join(f"{a:.2f}" for a in case["alpha"]),
                                "; ".join(
                                    f"{c['feature']} @ {c['step'] + 1} ({c['value']:+.3f})"
                                    for c in case["contributions"]
                                ),
                            ]
                            for j, case in enumerate(retained)
                        ],
                    },
                }
            )
        figure = _step_importance_png(summary["steps"], step_hours)
        if figure is not None:
            sections[0]["figures"] = [
                {
                    "title": "Attribution over the observation window",
                    "caption": "mean summed |integrated gradients| per time step",
                    "png": base64.b64encode(figure).decode("ascii"),
                }
            ]
        return {"sections": sections, "explanations": {"integrated_gradients": ranking}}

    # -- bundle ---------------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        assert self.vocabulary is not None
        return {
            "cohort": self.cohort_spec.to_state(),
            "features": self.feature_spec.to_state(),
            "vocabulary": self.vocabulary.to_state(),
            "scaler": self.scaler.to_state() if self.scaler is not None else None,
            "feature_names": self.feature_names,
            "groups": self.groups,
        }

    @classmethod
    def from_state(cls, config: ExperimentConfig, state: dict[str, Any]) -> EHRModality:
        adapter = cls(config)
        adapter.cohort_spec = CohortSpec.from_state(state["cohort"])
        adapter.feature_spec = FeatureSpec.from_state(state["features"])
        adapter.vocabulary = Vocabulary.from_state(state["vocabulary"])
        adapter.scaler = SequenceScaler.from_state(state["scaler"]) if state.get("scaler") else None
        adapter.feature_names = list(state["feature_names"])
        adapter.groups = {k: list(v) for k, v in state["groups"].items()}
        return adapter

    def read_for_prediction(self, path: Path) -> PredictionInputs:
        """Every stay of an event store, featurised with the training vocabulary (no label, no exclusion)."""
        if not path.exists():
            raise MedDLError(f"EHR event store not found: {path}")
        assert self.vocabulary is not None
        with _connect(path) as con:
            visits = [str(r[0]) for r in con.execute("SELECT visit_id FROM visits ORDER BY visit_id").fetchall()]
            if not visits:
                raise MedDLError(f"{path}: the store has no visits")
            features = extract_features(con, self.cohort_spec, self.feature_spec, self.vocabulary, visit_ids=visits)
        notes = ["" if n > 0 else "no event in the observation window" for n in features.lengths]
        return PredictionInputs(
            np.asarray(features.x, dtype=np.float32), visits, notes, np.ones(len(visits), dtype=bool)
        )

    def explain_cases(
        self, model: torch.nn.Module, cases: PredictionInputs, scores: np.ndarray, out: Path | None
    ) -> list[str]:
        """The five largest contributions (channel @ step) of each stay."""
        x = self.transform(cases.inputs)
        attributions = self.attributions(model.cpu().eval(), x, scores)
        summary = summarise_attributions(attributions, self.feature_names, self.groups)
        return ["; ".join(self.describe_contribution(e) for e in case) for case in summary["cases"]]

    # -- stays sent as event-store rows (the server) -------------------------------------------------------
    def request_model(self) -> Any:
        """One list of rows per event-store table (:mod:`meddl.io.ehr_schema`), the required tables at least one
        row each (see :func:`~meddl.modalities.requests.event_rows_request`)."""
        schema = self.request_schema()
        return event_rows_request(schema["tables"], schema["required_tables"])

    def request_errors(self, body: Any) -> list[dict[str, Any]]:
        return event_rows_errors(body)

    def read_request(self, body: Any) -> PredictionInputs:
        """Stays given as rows of the event-store tables (validated and consistent), written to a temporary store
        with the schema's SQL and featurised as :meth:`read_for_prediction` featurises a store; one case per
        visit, in the request's order of visits."""
        import tempfile

        from meddl.io.ehr import EventStore
        from meddl.io.ehr_schema import TABLE_COLUMNS

        rows = {table: [row.model_dump() for row in getattr(body, table)] for table in type(body).model_fields}
        with tempfile.TemporaryDirectory(prefix="meddl-ehr-") as folder:
            path = Path(folder) / "request.duckdb"
            store = EventStore.create(path)
            try:
                for table, columns in TABLE_COLUMNS.items():
                    values = [tuple(row.get(c) for c in columns) for row in rows.get(table, [])]
                    if values:
                        placeholders = ", ".join("?" for _ in columns)
                        store.connection.executemany(
                            f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders})", values
                        )
            finally:
                store.close()
            cases = self.read_for_prediction(path)  # ordered by visit id
        position = {visit: i for i, visit in enumerate(cases.ids)}
        order = np.array([position[row["visit_id"]] for row in rows["visits"]], dtype=np.int64)
        return PredictionInputs(
            cases.inputs[order], [cases.ids[i] for i in order], [cases.notes[i] for i in order], cases.usable[order]
        )

    def explain_request(self, model: torch.nn.Module, cases: PredictionInputs, scores: np.ndarray) -> list[dict]:
        """Per stay, the :data:`TOP_CONTRIBUTIONS` (channel, time step) entries with the largest integrated-gradient
        attribution to its explained output (a multilabel model: its most probable label): ``{"feature", "step",
        "hours_from_start" (grid mode), "contribution"}`` in logit units."""
        x = self.transform(cases.inputs)  # (N, T, F)
        attributions = self.attributions(model.cpu().eval(), x, scores)
        summary = summarise_attributions(attributions, self.feature_names, self.groups, top_per_case=TOP_CONTRIBUTIONS)
        grid_hours = self.feature_spec.bin_hours if self.feature_spec.mode == "grid" else None
        return [
            {
                "contributions": [
                    {
                        "feature": entry["feature"],
                        "step": int(entry["step"]),
                        "hours_from_start": float(entry["step"] * grid_hours) if grid_hours else None,
                        "contribution": float(entry["value"]),
                    }
                    for entry in case
                ]
            }
            for case in summary["cases"]
        ]

    def describe_contribution(self, entry: dict[str, Any]) -> str:
        """One contribution as a clinician reads it: ``lactate (value) 4–8 h before the prediction (+0.210)``
        (grid mode: hours before the prediction time; visits mode: the visit counted back from the latest)."""
        name = _readable_feature(str(entry["feature"]))
        step = int(entry["step"])
        hours = self.feature_spec.bin_hours
        if self.feature_spec.mode == "grid" and self.cohort_spec.observation == "window":
            end = float(self.data.cohort.observation_hours)
            when = f"{max(end - (step + 1) * hours, 0):g}–{end - step * hours:g} h before the prediction"
        elif self.feature_spec.mode == "grid":  # the whole stay: the prediction is made at discharge
            when = f"{step * hours:g}–{(step + 1) * hours:g} h after admission"
        else:
            when = f"visit {step + 1}"
        return f"{name} {when} ({float(entry['value']):+.3f})"

    def attributions(self, model: torch.nn.Module, x: np.ndarray, scores: np.ndarray) -> np.ndarray:
        """Integrated gradients, float32 (N, T, F), of each stay's explained output: for a multilabel model its
        most probable label (``argmax`` of ``scores``, (N, K)), a survival model's risk, else the single logit. ``x``
        is transformed."""
        if self.config.task == "survival":
            return _attributions(self.target_scale_.risk_model(model), x, np.zeros(len(x), dtype=np.int64))
        return _attributions(model, x, self._explained_outputs(scores))

    def _explained_outputs(self, scores: np.ndarray) -> np.ndarray:
        """The output explained for each stay: its most probable label (multilabel), else the one logit."""
        if self.config.task == "multilabel" and scores.ndim == 2:
            return np.argmax(scores, axis=1)
        return np.zeros(len(scores), dtype=np.int64)

    def cleanup(self) -> None:
        """Remove the memory-mapped feature file (it is rebuilt from the store when needed)."""
        if self.workdir is not None and self.workdir.exists():
            shutil.rmtree(self.workdir, ignore_errors=True)


def _attributions(model: torch.nn.Module, x: np.ndarray, outputs: np.ndarray) -> np.ndarray:
    """Integrated gradients (N, T, F) of each stay's own output ``outputs[i]``, one call per distinct output."""
    attributions = np.zeros(x.shape, dtype=np.float32)
    for output in np.unique(outputs):
        rows = np.flatnonzero(outputs == output)
        attributions[rows] = integrated_gradients_sequence(model, x[rows], target=int(output))
    return attributions


def _lab_channels(
    measured: np.ndarray, values: np.ndarray, since: np.ndarray, real: np.ndarray, never: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lab value (forward-filled), observed and hours-since channels (N, T, K) from the steps where each lab was
    measured (``measured``), its value and hours-since there, as feature extraction fills them: before a first
    measurement the value is ``never`` and hours-since 1; after one, hours-since grows by 1/T a step (it is the
    time since the last measurement as a share of the window of T steps), up to 1; steps past the stay are 0."""
    n, steps, k = measured.shape
    value_out = np.zeros((n, steps, k), dtype=np.float32)
    since_out = np.zeros((n, steps, k), dtype=np.float32)
    last_value = np.broadcast_to(never.astype(np.float32), (n, k)).copy()
    last_since = np.ones((n, k), dtype=np.float32)
    seen = np.zeros((n, k), dtype=bool)
    for t in range(steps):  # T is small; each step is an (N, K) operation, as in extraction
        now = measured[:, t]
        last_value = np.where(now, values[:, t], last_value)
        last_since = np.where(now, since[:, t], np.where(seen, np.minimum(last_since + 1.0 / steps, 1.0), 1.0))
        seen |= now
        on = real[:, t, None]  # (N, 1)
        value_out[:, t] = np.where(on, last_value, 0.0)
        since_out[:, t] = np.where(on, last_since, 0.0)
    return value_out, (measured & real[:, :, None]).astype(np.float32), since_out


_CHANNELS = {"value": "value", "observed": "measured", "hours_since": "hours since measured"}


def _readable_feature(name: str) -> str:
    """``lab:lactate:observed`` → ``lactate (measured)``; ``code:ICD10:I50`` → ``code ICD10:I50``."""
    if name.startswith("lab:"):
        item, _, channel = name[4:].rpartition(":")
        return f"{item} ({_CHANNELS.get(channel, channel)})"
    if name.startswith("code:"):
        return f"code {name[5:]}"
    return {"age/100": "age", "sex_female": "sex: female", "sex_male": "sex: male"}.get(name, name)


def _step_importance_png(steps: list[float], step_hours: float | None) -> bytes | None:
    if not steps:
        return None
    import io

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6.0, 2.6), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot(1, 1, 1)
    x = np.arange(len(steps)) * (step_hours or 1.0)
    axes.bar(x, steps, width=(step_hours or 1.0) * 0.85, align="edge", color="#3b6ea8")
    axes.set_xlabel("hours from admission" if step_hours else "step")
    axes.set_ylabel("mean |attribution|")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
