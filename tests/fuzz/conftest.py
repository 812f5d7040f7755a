"""Seed files for the fuzz tests: one small valid file per format, made here (no network, no shipped data)."""

from __future__ import annotations

import gzip
import os
import tempfile
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tests.conftest import fast_config

# Hypothesis keeps caches (constants it saw, Unicode tables) in ./.hypothesis; the fuzz tests write nothing into the
# repository (their example database is off: see tests/fuzz/mutations.py), so the caches go to the temp folder.
os.environ.setdefault("HYPOTHESIS_STORAGE_DIRECTORY", str(Path(tempfile.gettempdir()) / "meddl-hypothesis"))

# The property tests need hypothesis (and schemathesis for the server); test_regressions.py runs without either.
collect_ignore = [
    name
    for name, needs in (("test_readers.py", ("hypothesis",)), ("test_server.py", ("hypothesis", "schemathesis")))
    if not all(find_spec(module) for module in needs)
]


@pytest.fixture(scope="session")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the mutated files are written, one name per format, overwritten by each example."""
    return tmp_path_factory.mktemp("fuzz")


@pytest.fixture(scope="session")
def seeds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """Valid files, as bytes: CSV tables, DICOM image and ECG, NIfTI, FASTA, BED, VCF, WFDB, experiment YAMLs."""
    import nibabel as nib
    import wfdb
    from pydicom.data import get_testdata_file

    from meddl.io.signals import Signal, write_dicom_ecg
    from meddl.modalities.kinds import kinds, template

    folder = tmp_path_factory.mktemp("seeds")
    seeds: dict[str, bytes] = {
        "csv": b"patient_id,age,sex,glucose,outcome\nP1,61,F,142,yes\nP2,45,M,,no\nP3,70,F,99.5,yes\n",
        "expression": b"sample,TP53,BRCA1,EGFR\nS1,1.5,2,0\nS2,3,4.25,7\nS3,0,1,12\n",
        "sequence_csv": b"id,sequence,label\na,ACGTN,1\nb,ggccaRY,0\n",
        "signal_csv": b"time,I,II\n0.00,0.1,-0.2\n0.01,0.15,-0.1\n0.02,0.2,0.0\n0.03,0.1,0.1\n",
        "fasta": b">seq1 label=1 cell=K562\nACGTACGTNN\nacgt\n;comment\n>seq2 label=0\nRYSWKMACGT\n",
        "bed": b"track name=peaks\n# comment\nchr1\t2\t10\tpeakA\t5.0\t+\nchr1\t12\t20\tpeakB\t.\t-\nchr2 0 4\n",
        "vcf": (
            b"##fileformat=VCFv4.2\n##contig=<ID=chr1>\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
            b"chr1\t5\trs1\tA\tG,T\t.\tPASS\t.\nchr1\t9\t.\tAC\tA\t.\tPASS\tDP=3\n"
        ),
    }
    seeds["dicom"] = Path(get_testdata_file("CT_small.dcm")).read_bytes()
    time = np.arange(300) / 100.0
    ecg = Signal(np.stack([np.sin(2 * np.pi * time), np.cos(2 * np.pi * time), 0.5 * time]), 100.0, ["I", "II", "V1"],
                 ["mV"] * 3, "")  # fmt: skip
    seeds["ecg"] = write_dicom_ecg(ecg, folder / "ecg.dcm").read_bytes()
    affine = np.diag([1.5, 1.5, 3.0, 1.0])
    nib.save(nib.Nifti1Image(np.arange(60, dtype=np.int16).reshape(4, 5, 3), affine), folder / "image.nii")
    seeds["nifti"] = (folder / "image.nii").read_bytes()
    seeds["nifti_gz"] = gzip.compress(seeds["nifti"], mtime=0)
    samples = np.stack([np.sin(np.linspace(0, 6, 120)), np.cos(np.linspace(0, 6, 120))], axis=1)  # (L, C)
    wfdb.wrsamp("rec", fs=250, units=["mV", "mV"], sig_name=["I", "II"], p_signal=samples, fmt=["16", "16"],
                write_dir=str(folder))  # fmt: skip
    seeds["wfdb_header"] = (folder / "rec.hea").read_bytes()
    seeds["wfdb_signal"] = (folder / "rec.dat").read_bytes()
    for kind in kinds():
        seeds[f"yaml_{kind}"] = template(kind).encode("utf-8")
    return seeds


@pytest.fixture(scope="session")
def served_app(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """One server over two tiny bundles: a table model (JSON records) and a DNA model (JSON sequences and file
    uploads), each trained for one epoch."""
    from meddl import Experiment
    from meddl.data import synthetic_clinical_table
    from meddl.data.motifs import planted_motif_dataset, write_planted_dataset
    from meddl.io import write_table
    from meddl.serve import Settings, create_app

    folder = tmp_path_factory.mktemp("fuzz_server")
    table = write_table(synthetic_clinical_table(120, seed=5), folder / "clinic.csv")
    clinic = fast_config(table, model={"arch": "mlp", "hidden": [8]})
    clinic["train"]["epochs"] = 1
    clinic["evaluate"] = {"bootstrap": 10, "baselines": []}
    Experiment.from_dict(clinic).run(out=folder / "clinic")
    motifs = planted_motif_dataset(60, length=40, motifs=("MA0139.2",), max_sites=1, seed=0)
    write_planted_dataset(folder / "motifs", motifs, formats=("fasta",))
    sequence = {
        "name": "motifs",
        "task": "binary",
        "data": {"kind": "sequence", "path": "motifs/sequences.fa", "positive_label": 1},
        "preprocess": {"length": 40},
        "model": {"arch": "sequence_cnn", "filters": [4], "kernel_sizes": [7], "hidden": 4},
        "train": {"epochs": 1, "batch_size": 32, "seed": 0, "progress": False},
        "evaluate": {"bootstrap": 10, "baselines": []},
    }
    Experiment.from_dict(sequence, base_dir=folder).run(out=folder / "motifs_run")
    settings = Settings(bundles=[folder / "clinic", folder / "motifs_run"], audit_log=folder / "audit.jsonl")
    return create_app(settings)
