"""EHR cohorts and leakage-free sequence features, computed by SQL inside the DuckDB event store.

A cohort is a set of *index stays* (one hospital admission each), with a prediction time and a label:

=========================  ==========================================  =============================================
outcome                    observation window (features)               label
=========================  ==========================================  =============================================
``mortality``              ``[admit, admit + observation_hours)``      died in hospital (after the window)
``long_stay``              ``[admit, admit + observation_hours)``      length of stay > ``horizon_days`` days
``readmission``            the whole stay ``[admit, discharge)``       next admission ≤ ``horizon_days`` days after
                                                                       DISCHARGE
``next_visit_diagnoses``   the whole stay ``[admit, discharge)``       diagnosis categories (code prefixes) of the
                                                                       next visit (multilabel)
=========================  ==========================================  =============================================

Every feature is computed from events strictly before ``window_end`` (half-open window), so a lab at exactly
``window_end`` or later never reaches the features. A code's *known time* is its own time when recorded, else
its visit's ``discharge_time`` (diagnoses, procedures) and a medication's ``start_time`` else the discharge —
so the index stay's discharge diagnoses are never features of a prediction made during (or at the end of) it —
unless ``FeatureSpec.include_discharge_codes`` asks for them when the prediction is made at discharge.

Feature layouts (``x``: float32, (N, T, F); channel 0 is the step mask, real steps left-aligned, in time order):

* ``grid``: T time bins of ``bin_hours`` over the window (or the last ``max_steps`` bins before discharge when
  the window is the whole stay). Per lab/vital item: the last value in the bin forward-filled within the window
  (0 before the first measurement), observed-in-bin (0/1) and hours since the last measurement / window hours
  (capped at 1; 1 before the first measurement). Then a multi-hot block of codes known before ``window_end``
  (previous visits' diagnoses, procedures and medications, plus procedures / medications timed inside the
  window) repeated on every real step, then static demographics (age / 100, sex) on every real step.
* ``visits``: one step per previous visit discharged before ``window_end`` (the last ``max_visits``): the
  multi-hot codes of that visit, years from its discharge to ``window_end`` and static demographics. A stay
  with no previous visit has length 0: all steps are padding, except that step 0 carries the demographics (the
  sequence models read an all-padding row as length 1, so they still see age and sex).

Extraction runs one set-based query per chunk of index stays; DuckDB bins, picks the last value per bin
(``arg_max``) and returns (row, step, channel, value) rows that NumPy scatters into a dense chunk, written to
``out/features.npy`` chunk by chunk, so peak memory depends on the chunk size, not on the number of events.

The data types live in :mod:`meddl.data.ehr_cohort_spec`, the shared SQL helpers in :mod:`meddl.data.ehr_cohort_sql`,
the cohort definition in :mod:`meddl.data.ehr_cohort_define`, the vocabulary in :mod:`meddl.data.ehr_cohort_vocab`
and the feature extraction in :mod:`meddl.data.ehr_cohort_features`; every public name is importable from here.
"""

from __future__ import annotations

from meddl.data.ehr_cohort_define import define_cohort, index_stays
from meddl.data.ehr_cohort_features import extract_features
from meddl.data.ehr_cohort_spec import (
    COHORT_TABLE,
    OUTCOMES,
    Cohort,
    CohortSpec,
    Connection,
    EHRCohort,
    EHRFeatures,
    FeatureSpec,
    StoreLike,
    Vocabulary,
    format_flow,
)
from meddl.data.ehr_cohort_vocab import build_vocabulary

__all__ = [
    "COHORT_TABLE",
    "OUTCOMES",
    "Cohort",
    "CohortSpec",
    "Connection",
    "EHRCohort",
    "EHRFeatures",
    "FeatureSpec",
    "StoreLike",
    "Vocabulary",
    "build_vocabulary",
    "define_cohort",
    "extract_features",
    "format_flow",
    "index_stays",
]
