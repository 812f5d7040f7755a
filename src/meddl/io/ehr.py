"""The EHR event store (one DuckDB file, schema in :mod:`meddl.io.ehr_schema`) and its importers.

Importers read a MIMIC-IV-style folder of CSVs (:func:`import_mimic`), OMOP CDM tables (:func:`import_omop`) or
FHIR R4 NDJSON files (:func:`import_fhir`) with DuckDB's own readers, stage them as temporary tables (spilled to
disk by DuckDB when larger than memory), and write the six store tables with SQL. Nothing passes through pandas.

The store is built at ``<store>.partial`` and moved into place only when the import succeeded, so a failed
import never leaves a half-written store (nor destroys the one it would have replaced).

Bad input, by rule (the same for every importer):

* A required file or column missing → :class:`MedDLError` naming the file, the column(s) and what was found.
* A CSV row with too few or too many fields → :class:`MedDLError` naming the file and the row.
* A value that cannot be read as a timestamp or number → :class:`MedDLError` naming the file, the row (as a
  spreadsheet shows it, header = row 1; the 1-based line of an NDJSON file), the column or field, the value and
  how many such values the column has. Timestamps with a UTC offset are converted to UTC; those without one
  are kept as written.
* Discharge before admission → :class:`MedDLError` naming the file, the visit id and both times
  (``on_bad_visit="error"``, the default), or the visit dropped and counted (``on_bad_visit="drop"``).
* Exact duplicates (identical in every stored column) → removed, counted per table.
* Events of a patient not in the patients table → dropped, counted. Visits likewise.
* Events whose visit id is not among the visits of their patient → kept with ``visit_id`` NULL, counted (they
  still belong to the patient's timeline). Events of a dropped visit fall under this rule.
* Visits without an admission time, measurements without a time, item or numeric value, diagnoses,
  procedures and medications without a code → dropped, counted.
* Measurements earlier than their visit's admission - 24 h or later than its discharge + 24 h → kept, counted
  as ``"out-of-window measurements (kept)"``.
* Medications whose end is before their start → end set to NULL, counted.
* Units that disagree within one measurement item: the item's majority unit wins; other units are converted
  when a conversion is known (glucose mg/dL↔mmol/L ×0.0555, creatinine mg/dL↔µmol/L ×88.4, g/dL↔g/L,
  mg/dL↔mg/L, mEq/L↔mmol/L for sodium, potassium, chloride and bicarbonate), counted per conversion;
  otherwise :class:`MedDLError` naming the item and its units with their row counts
  (``on_unit_conflict="error"``, the default), or the rows in other units dropped and counted
  (``on_unit_conflict="majority"``). Rows without a unit in an item that has one unit get that unit, counted.
* Diagnosis codes whose system is not one of :data:`KNOWN_CODE_SYSTEMS` (or is missing) → kept, counted.
  ICD codes are stored upper case without the dot (``E119``), as MIMIC writes them.

The counts land in :attr:`ImportReport.handled` (only the rules that fired) and, as JSON, in the store's
``meddl_meta`` table under ``import_report``.

The store lives in :mod:`meddl.io._ehr_store`, the machinery the importers share in :mod:`meddl.io._ehr_import`
(with SQL helpers in :mod:`meddl.io._ehr_sql`) and one importer per source format in :mod:`meddl.io._ehr_mimic`,
:mod:`meddl.io._ehr_omop` and :mod:`meddl.io._ehr_fhir`; every public name is importable from here.
"""

from __future__ import annotations

from meddl.io._ehr_fhir import import_fhir
from meddl.io._ehr_import import ImportReport, OnBadVisit, OnUnitConflict
from meddl.io._ehr_mimic import import_mimic
from meddl.io._ehr_omop import import_omop
from meddl.io._ehr_store import EVENT_TABLES, KNOWN_CODE_SYSTEMS, OUT_OF_WINDOW_HOURS, EventStore

__all__ = [
    "EVENT_TABLES",
    "KNOWN_CODE_SYSTEMS",
    "OUT_OF_WINDOW_HOURS",
    "EventStore",
    "ImportReport",
    "OnBadVisit",
    "OnUnitConflict",
    "import_fhir",
    "import_mimic",
    "import_omop",
]
