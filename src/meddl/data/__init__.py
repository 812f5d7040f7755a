"""Tables turned into targets and features, patient-level splits, and the cohorts used by the demo."""

from meddl.data.cohorts import (
    Cohort,
    fixed_horizon_labels,
    gbsg2_cohort,
    synthetic_clinical_table,
    wdbc_cohort,
)
from meddl.data.split import (
    SPLITS,
    assert_patient_level,
    carve_calibration,
    kfold_assignments,
    split_assignments,
    splits_frame,
)
from meddl.data.tabular import (
    PreparedTable,
    coerce_numeric,
    encode_target,
    infer_column_types,
    prepare_table,
    same_label,
)

__all__ = [
    "SPLITS",
    "Cohort",
    "PreparedTable",
    "assert_patient_level",
    "carve_calibration",
    "coerce_numeric",
    "encode_target",
    "fixed_horizon_labels",
    "gbsg2_cohort",
    "infer_column_types",
    "kfold_assignments",
    "prepare_table",
    "same_label",
    "split_assignments",
    "splits_frame",
    "synthetic_clinical_table",
    "wdbc_cohort",
]
