"""Extracting leakage-free (N, T, F) sequence features for EHR index stays, chunk by chunk, inside DuckDB.

:func:`extract_features` is importable from :mod:`meddl.data.ehr_cohort`, whose docstring describes the ``grid``
and ``visits`` feature layouts.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa

from meddl.data.ehr_cohort_define import index_stays
from meddl.data.ehr_cohort_spec import (
    _CODE_TABLES,
    _US_PER_HOUR,
    _US_PER_YEAR,
    CohortSpec,
    Connection,
    EHRCohort,
    EHRFeatures,
    FeatureSpec,
    StoreLike,
    Vocabulary,
)
from meddl.data.ehr_cohort_sql import _check_schema, _codes_sql, _cohort_columns, _connect, _interval_us, _register
from meddl.data.ehr_cohort_vocab import _code_cutoff
from meddl.errors import MedDLError

__all__ = ["extract_features"]

# --------------------------------------------------------------------------------------------------------------
# Features


def _layout(spec: FeatureSpec, vocabulary: Vocabulary) -> tuple[list[str], dict[str, list[int]]]:
    names = ["step_mask"]
    groups: dict[str, list[int]] = {"mask": [0]}

    def add(group: str, new: list[str]) -> None:
        groups[group] = list(range(len(names), len(names) + len(new)))
        names.extend(new)

    use_codes = spec.mode == "visits" or spec.include_codes
    if spec.mode == "grid":
        add("lab_value", [f"lab:{item}:value" for item in vocabulary.labs])
        add("lab_observed", [f"lab:{item}:observed" for item in vocabulary.labs])
        add("lab_hours_since", [f"lab:{item}:hours_since" for item in vocabulary.labs])
    if use_codes:
        add("codes", [f"code:{token}" for token in vocabulary.codes] + ["code:other"])
    if spec.mode == "visits":
        add("time", ["years_before_window_end"])
    if spec.include_static:
        add("static", ["age/100", "sex_female", "sex_male"])
    return names, groups


def extract_features(
    con_or_path: StoreLike,
    cohort: EHRCohort | CohortSpec,
    spec: FeatureSpec,
    vocabulary: Vocabulary,
    *,
    out: str | Path | None = None,
    chunk_patients: int = 20000,
    visit_ids: Sequence[str] | None = None,
) -> EHRFeatures:
    """Compute (N, T, F) float32 features for the cohort's index stays, chunk by chunk, inside DuckDB.

    Args:
        con_or_path: DuckDB connection or store path.
        cohort: the cohort; or a `CohortSpec` together with ``visit_ids`` to featurise new stays (prediction):
            their windows come from the spec, with no label and no exclusion.
        spec: the feature specification (mode, bins, …).
        vocabulary: lab items and codes from `build_vocabulary` (or `Vocabulary.from_state`).
        out: folder; when given, ``x`` is written to ``out/features.npy`` and returned as a memmap.
        chunk_patients: index stays per query (cohort rows are ordered by patient); bounds peak memory.
        visit_ids: restrict to these index stays (in the cohort's order).

    Returns:
        The features; see the :mod:`meddl.data.ehr_cohort` docstring for the channel layout.

    Raises:
        MedDLError: a needed table/column is missing, a visit id is not in the cohort, or a patient of a
            requested stay has no birth date while static features are on.
    """
    if chunk_patients < 1:
        raise MedDLError(f"chunk_patients must be positive, got {chunk_patients}")
    if vocabulary.mode != spec.mode:
        raise MedDLError(f"vocabulary was built for mode {vocabulary.mode!r}, features.mode is {spec.mode!r}")
    with _connect(con_or_path) as con:
        if isinstance(cohort, CohortSpec):
            if visit_ids is None:
                raise MedDLError("extract_features: pass visit_ids=[...] with a CohortSpec (or pass a cohort)")
            cohort = index_stays(con, cohort, visit_ids)
        elif visit_ids is not None:
            position = {str(v): i for i, v in enumerate(cohort.visit_ids)}
            missing = [str(v) for v in visit_ids if str(v) not in position]
            if missing:
                raise MedDLError(
                    f"extract_features: visit_id(s) {missing[:10]} are not index stays of the cohort; "
                    "pass the CohortSpec instead to featurise stays outside it"
                )
            cohort = cohort.subset(np.array(sorted(position[str(v)] for v in visit_ids), dtype=np.int64))
        needed = ["patients", "visits"]
        if spec.mode == "grid" and vocabulary.labs:
            needed.append("measurements")
        if spec.mode == "visits" or spec.include_codes:
            needed.extend(_CODE_TABLES)
        _check_schema(con, needed)
        return _Extractor(con, cohort, spec, vocabulary).run(out, chunk_patients)


class _Extractor:
    """One extraction: the layout, the per-row grid and the chunk loop."""

    def __init__(self, con: Connection, cohort: EHRCohort, spec: FeatureSpec, vocabulary: Vocabulary) -> None:
        self.con, self.cohort, self.spec, self.vocabulary = con, cohort, spec, vocabulary
        self.names, self.groups = _layout(spec, vocabulary)
        self.n_features = len(self.names)
        self.bin_us = _interval_us(spec.bin_hours)
        self.cutoff = _code_cutoff(cohort, spec)
        self.dropped = {"measurement_values_missing": 0, "codes_without_time": 0}
        index_us = cohort.index_times.astype("datetime64[us]").astype(np.int64)
        end_us = cohort.window_ends.astype("datetime64[us]").astype(np.int64)
        if np.any(end_us <= index_us):
            bad = int(np.flatnonzero(end_us <= index_us)[0])
            raise MedDLError(
                f"extract_features: index stay {cohort.visit_ids[bad]!r} has an empty observation window "
                f"(window_end {cohort.window_ends[bad]} ≤ index_time {cohort.index_times[bad]})"
            )
        self.index_us, self.end_us = index_us, end_us
        self.discharge_us, self.age, self.sex = self._stay_facts()
        if spec.mode == "grid":
            if cohort.spec.observation == "window":
                self.n_steps = max(1, math.ceil(cohort.spec.observation_hours / spec.bin_hours - 1e-9))
                grid_end = np.minimum(end_us, np.where(self.discharge_us > index_us, self.discharge_us, end_us))
                self.lengths = np.clip(np.ceil((grid_end - index_us) / self.bin_us), 1, self.n_steps).astype(np.int64)
                self.origin_us = index_us
            else:
                self.n_steps = spec.max_steps
                self.lengths = np.clip(np.ceil((end_us - index_us) / self.bin_us), 1, self.n_steps).astype(np.int64)
                self.origin_us = end_us - self.lengths * self.bin_us
            self.window_hours = self.n_steps * spec.bin_hours
        else:
            self.n_steps = spec.max_visits
            self.lengths = np.zeros(cohort.n, dtype=np.int64)

    def _stay_facts(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Discharge time (µs; int64 min when unknown), age in years at index and sex per cohort row."""
        n = self.cohort.n
        _register(self.con, "_meddl_rows", _cohort_columns(self.cohort, np.arange(n)))
        try:
            facts = self.con.execute(
                """
                SELECT r.rid, epoch_us(v.discharge_time) AS discharge_us,
                       (epoch_us(r.index_time) - epoch_us(CAST(p.birth_date AS TIMESTAMP))) AS age_us, p.sex
                FROM _meddl_rows r LEFT JOIN visits v ON v.visit_id = r.visit_id
                LEFT JOIN patients p ON p.patient_id = r.patient_id
                ORDER BY r.rid
                """
            ).fetchnumpy()
        finally:
            self.con.unregister("_meddl_rows")
        discharge = np.ma.filled(np.ma.asarray(facts["discharge_us"]).astype(np.int64), np.iinfo(np.int64).min)
        age_us = np.ma.asarray(facts["age_us"]).astype(np.float64)
        if self.spec.include_static and np.ma.getmaskarray(age_us).any():
            bad = int(np.flatnonzero(np.ma.getmaskarray(age_us))[0])
            raise MedDLError(
                f"extract_features: patient {self.cohort.patient_ids[bad]!r} has no birth_date in table 'patients' "
                "(age is a static feature)"
            )
        age = np.ma.filled(age_us, 0.0) / _US_PER_YEAR
        sex = np.array(["" if s is None or s is np.ma.masked else str(s) for s in facts["sex"]], dtype=object)
        return np.asarray(discharge), np.asarray(age), sex

    # ----------------------------------------------------------------------------------------------------------

    def run(self, out: str | Path | None, chunk_rows: int) -> EHRFeatures:
        n, shape = self.cohort.n, (self.cohort.n, self.n_steps, self.n_features)
        path: Path | None = None
        offset = 0
        x: np.ndarray
        if out is not None:
            folder = Path(out)
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / "features.npy"
            header = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=shape)
            offset = int(header.offset)
            del header
        else:
            x = np.zeros(shape, dtype=np.float32)
        row_bytes = self.n_steps * self.n_features * 4
        for start in range(0, n, chunk_rows):
            rows = np.arange(start, min(n, start + chunk_rows))
            chunk = self._chunk(rows)
            if path is not None:
                # Plain file writes, not a writable memmap: written pages do not stay resident in this process.
                with open(path, "r+b") as handle:
                    handle.seek(offset + start * row_bytes)
                    chunk.tofile(handle)
            else:
                x[rows] = chunk
            del chunk
        if path is not None:
            x = np.load(path, mmap_mode="r+")
        value_channels = self.groups.get("lab_value", [])
        return EHRFeatures(
            x=x,
            lengths=self.lengths.copy(),
            patient_ids=self.cohort.patient_ids.copy(),
            visit_ids=self.cohort.visit_ids.copy(),
            feature_names=list(self.names),
            groups={k: list(v) for k, v in self.groups.items()},
            value_channels=list(value_channels),
            observed_channels=list(self.groups.get("lab_observed", [])),
            dropped=dict(self.dropped),
            path=path,
        )

    def _chunk(self, rows: np.ndarray) -> np.ndarray:
        columns = _cohort_columns(self.cohort, rows)
        if self.spec.mode == "grid":
            columns["origin"] = pa.array(self.origin_us[rows].astype("datetime64[us]"))
            columns["n_steps"] = pa.array(self.lengths[rows])
        _register(self.con, "_meddl_chunk", columns)
        try:
            x = np.zeros((len(rows), self.n_steps, self.n_features), dtype=np.float32)
            if self.spec.mode == "grid":
                self._grid_chunk(x, rows)
            else:
                self._visits_chunk(x, rows)
            return x
        finally:
            self.con.unregister("_meddl_chunk")

    def _block(self, group: str) -> slice:
        """The channels of ``group`` as a slice (groups are contiguous), so writes are views, not scatters."""
        channels = self.groups[group]
        return slice(channels[0], channels[-1] + 1) if channels else slice(0, 0)

    def _static(self, x: np.ndarray, rows: np.ndarray, lengths: np.ndarray) -> None:
        """Age / 100 and sex on every real step (step 0 too when a row has none)."""
        if not self.spec.include_static:
            return
        steps = (np.arange(self.n_steps)[None, :] < np.maximum(lengths, 1)[:, None]).astype(np.float32)  # (b, T)
        static = np.stack([self.age[rows] / 100.0, self.sex[rows] == "F", self.sex[rows] == "M"], axis=1).astype(
            np.float32
        )  # (b, 3)
        np.multiply(steps[:, :, None], static[:, None, :], out=x[:, :, self._block("static")])

    def _grid_chunk(self, x: np.ndarray, rows: np.ndarray) -> None:
        b, steps = len(rows), self.n_steps
        lengths = self.lengths[rows]
        real = (np.arange(steps)[None, :] < lengths[:, None]).astype(np.float32)  # (b, T)
        x[:, :, 0] = real
        if self.vocabulary.labs:
            self._labs(x, rows, real)
        if self.spec.include_codes:
            codes = self._codes_known_before_end()
            block = np.zeros((b, len(self.groups["codes"])), dtype=np.float32)
            block[codes[0] - rows[0], codes[1]] = 1.0
            np.multiply(real[:, :, None], block[:, None, :], out=x[:, :, self._block("codes")])
        self._static(x, rows, lengths)

    def _labs(self, x: np.ndarray, rows: np.ndarray, real: np.ndarray) -> None:
        """Last value (forward-filled), observed-in-bin and hours since last measurement per lab item."""
        labs = self.vocabulary.labs
        b, steps, k = len(rows), self.n_steps, len(labs)
        _register(self.con, "_meddl_labs", {"item": pa.array(labs, type=pa.string()), "idx": pa.array(np.arange(k))})
        try:
            result = self.con.execute(
                f"""
                WITH m AS (
                    SELECT c.rid, l.idx, m.time, m.value,
                           CAST(floor((epoch_us(m.time) - epoch_us(c.origin)) / {self.bin_us}) AS BIGINT) AS step
                    FROM measurements m
                    JOIN _meddl_labs l ON l.item = m.item
                    JOIN _meddl_chunk c ON c.patient_id = m.patient_id
                     AND m.time >= c.index_time AND m.time < c.window_end AND m.time >= c.origin
                )
                SELECT rid, step, idx,
                       arg_max(value, (time, value)) FILTER (WHERE isfinite(value)) AS value,
                       epoch_us(max(time) FILTER (WHERE isfinite(value))) AS last_us,
                       count(*) FILTER (WHERE value IS NULL OR NOT isfinite(value)) AS n_missing
                FROM m GROUP BY rid, step, idx
                """
            ).fetchnumpy()
        finally:
            self.con.unregister("_meddl_labs")
        rid = np.asarray(result["rid"], dtype=np.int64) - rows[0]  # chunk rows are contiguous
        step = np.asarray(result["step"], dtype=np.int64)
        idx = np.asarray(result["idx"], dtype=np.int64)
        value_ma = np.ma.asarray(result["value"])
        self.dropped["measurement_values_missing"] += int(np.asarray(result["n_missing"], dtype=np.int64).sum())
        inside = (~np.ma.getmaskarray(value_ma)) & (step >= 0) & (step < self.lengths[rows][rid])
        rid, step, idx = rid[inside], step[inside], idx[inside]
        values = np.asarray(np.ma.filled(value_ma, 0.0), dtype=np.float32)[inside]
        last_us = np.asarray(np.ma.filled(np.ma.asarray(result["last_us"]), 0), dtype=np.int64)[inside]
        value_grid = np.zeros((b, steps, k), dtype=np.float32)
        last_grid = np.zeros((b, steps, k), dtype=np.int64)
        observed = np.zeros((b, steps, k), dtype=bool)
        value_grid[rid, step, idx] = values
        last_grid[rid, step, idx] = last_us
        observed[rid, step, idx] = True
        value_out, observed_out = x[:, :, self._block("lab_value")], x[:, :, self._block("lab_observed")]
        since_out = x[:, :, self._block("lab_hours_since")]
        seen = np.zeros((b, k), dtype=bool)
        value = np.zeros((b, k), dtype=np.float32)
        last = np.zeros((b, k), dtype=np.int64)
        scale = _US_PER_HOUR * self.window_hours
        origin = self.origin_us[rows]
        # Forward fill within the window, one step at a time (T is small; each step is a (b, K) operation).
        for t in range(steps):
            now = observed[:, t]
            seen |= now
            np.copyto(value, value_grid[:, t], where=now)
            np.copyto(last, last_grid[:, t], where=now)
            on = real[:, t, None]  # (b, 1)
            step_end = origin + (t + 1) * self.bin_us  # (b,)
            since = np.where(seen, np.clip((step_end[:, None] - last) / scale, 0.0, 1.0), 1.0)
            value_out[:, t] = value * on
            observed_out[:, t] = now * on
            since_out[:, t] = since * on

    def _codes_known_before_end(self) -> tuple[np.ndarray, np.ndarray]:
        """(rid, position in the codes block) of codes known before each window end; counts timeless codes."""
        other = len(self.vocabulary.codes)
        tokens = {"token": pa.array(self.vocabulary.codes, type=pa.string()), "idx": pa.array(np.arange(other))}
        _register(self.con, "_meddl_tokens", tokens)
        try:
            result = self.con.execute(
                f"""
                SELECT c.rid, CASE WHEN k.known_time IS NULL THEN -1 ELSE coalesce(t.idx, {other}) END AS channel,
                       count(*) AS n
                FROM ({_codes_sql(self.con)}) k
                JOIN _meddl_chunk c ON c.patient_id = k.patient_id
                 AND (k.known_time {self.cutoff} c.window_end OR k.known_time IS NULL)
                LEFT JOIN _meddl_tokens t ON t.token = k.token
                GROUP BY ALL
                """
            ).fetchnumpy()
        finally:
            self.con.unregister("_meddl_tokens")
        rid = np.asarray(result["rid"], dtype=np.int64)
        channel = np.asarray(result["channel"], dtype=np.int64)
        timeless = channel < 0
        self.dropped["codes_without_time"] += int(np.asarray(result["n"], dtype=np.int64)[timeless].sum())
        return rid[~timeless], channel[~timeless]

    def _visits_chunk(self, x: np.ndarray, rows: np.ndarray) -> None:
        other = len(self.vocabulary.codes)
        tokens = {"token": pa.array(self.vocabulary.codes, type=pa.string()), "idx": pa.array(np.arange(other))}
        self.con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE _meddl_prev AS
            SELECT * FROM (
                SELECT c.rid, v.visit_id, v.discharge_time, c.window_end,
                       row_number() OVER (
                           PARTITION BY c.rid ORDER BY v.discharge_time DESC, v.admit_time DESC, v.visit_id DESC
                       ) AS recency,
                       count(*) OVER (PARTITION BY c.rid) AS n_prev
                FROM _meddl_chunk c JOIN visits v ON v.patient_id = c.patient_id
                WHERE v.discharge_time {self.cutoff} c.window_end
                  AND (v.visit_id <> c.visit_id OR {"true" if self.cutoff == "<=" else "false"})
            ) WHERE recency <= {int(self.spec.max_visits)}
            """
        )
        _register(self.con, "_meddl_tokens", tokens)
        try:
            visits = self.con.execute(
                "SELECT rid, recency, least(n_prev, ?) AS n_steps, "
                "epoch_us(window_end) - epoch_us(discharge_time) AS before_us FROM _meddl_prev",
                [int(self.spec.max_visits)],
            ).fetchnumpy()
            codes = self.con.execute(
                f"""
                SELECT p.rid, p.recency, least(p.n_prev, {int(self.spec.max_visits)}) AS n_steps,
                       coalesce(t.idx, {other}) AS channel
                FROM ({_codes_sql(self.con)}) k
                JOIN _meddl_prev p ON p.visit_id = k.visit_id AND k.known_time {self.cutoff} p.window_end
                LEFT JOIN _meddl_tokens t ON t.token = k.token
                GROUP BY ALL
                """
            ).fetchnumpy()
        finally:
            self.con.unregister("_meddl_tokens")
            self.con.execute("DROP TABLE IF EXISTS _meddl_prev")
        rid = np.asarray(visits["rid"], dtype=np.int64)
        n_steps = np.asarray(visits["n_steps"], dtype=np.int64)
        lengths = np.zeros(len(rows), dtype=np.int64)
        lengths[rid - rows[0]] = n_steps
        self.lengths[rows] = lengths
        step = n_steps - np.asarray(visits["recency"], dtype=np.int64)  # oldest kept visit → step 0
        x[rid - rows[0], step, 0] = 1.0
        years = np.asarray(visits["before_us"], dtype=np.float64) / _US_PER_YEAR
        x[rid - rows[0], step, self.groups["time"][0]] = years
        code_rid = np.asarray(codes["rid"], dtype=np.int64) - rows[0]
        code_step = np.asarray(codes["n_steps"], dtype=np.int64) - np.asarray(codes["recency"], dtype=np.int64)
        channel = np.asarray(self.groups["codes"], dtype=np.int64)[np.asarray(codes["channel"], dtype=np.int64)]
        x[code_rid, code_step, channel] = 1.0
        self._static(x, rows, lengths)
