"""Fuzzing the readers: mutated bytes of valid files and generated text, for CSV, DICOM, NIfTI, FASTA/BED/VCF,
WFDB and experiment YAML. Each reader returns a result or raises a MedDLError naming the file — never another
exception, never a hang (see :mod:`tests.fuzz.mutations`)."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from tests.fuzz.mutations import (
    CELL,
    LINES,
    MUTATIONS,
    YAML_VALUE,
    bounded,
    fuzz_settings,
    mutate,
    result_or_error,
    table_text,
)

from meddl.config import load_config
from meddl.errors import MedDLError
from meddl.io.expression import read_expression
from meddl.io.images import ImageVolume, check_readable, image_geometry, read_image
from meddl.io.sequences import cut_intervals, read_bed, read_fasta, read_sequence_table
from meddl.io.signals import Signal, read_dicom_waveform, read_signal, read_signal_array, read_wfdb
from meddl.io.tables import read_table
from meddl.io.variants import read_vcf, variant_windows
from meddl.modalities.kinds import kinds

# pydicom and nibabel warn about every odd value they meet; the property is about what the readers raise.
pytestmark = pytest.mark.filterwarnings("ignore")

# The DICOM seed's header ends where its pixel data starts: edits land there, where the parser works.
DICOM_HEADER_BYTES = 6300


def write(folder: Path, name: str, data: bytes | str) -> Path:
    path = folder / name
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


# -- tables ------------------------------------------------------------------------------------------------------


def check_table(frame: pd.DataFrame | None) -> None:
    if frame is not None:
        assert frame.shape[0] >= 1 and frame.shape[1] >= 1
        assert frame.index[0] == 2 and frame.index.name == "row"
        assert frame.columns.is_unique


@fuzz_settings(120)
@given(mutations=MUTATIONS, suffix=st.sampled_from([".csv", ".tsv"]))
def test_table_from_mutated_csv(seeds: dict[str, bytes], workdir: Path, mutations: list, suffix: str) -> None:
    seed = seeds["csv"] if suffix == ".csv" else seeds["csv"].replace(b",", b"\t")
    check_table(result_or_error(read_table, write(workdir, f"table{suffix}", mutate(seed, mutations))))


@fuzz_settings(120)
@given(text=table_text() | st.text(max_size=60))
def test_table_from_generated_text(workdir: Path, text: str) -> None:
    check_table(result_or_error(read_table, write(workdir, "generated.csv", text)))


@fuzz_settings(80)
@given(mutations=MUTATIONS, genes_in_rows=st.booleans())
def test_expression_matrix_from_mutated_csv(
    seeds: dict[str, bytes], workdir: Path, mutations: list, genes_in_rows: bool
) -> None:
    path = write(workdir, "expression.csv", mutate(seeds["expression"], mutations))
    matrix = result_or_error(read_expression, path, genes_in_rows=genes_in_rows)
    if matrix is not None:
        assert matrix.values.shape == (len(matrix.samples), len(matrix.genes))
        assert np.isfinite(matrix.values).all()


@fuzz_settings(60)
@given(text=table_text(header=["sample", "TP53", "BRCA1"]))
def test_expression_matrix_from_generated_text(workdir: Path, text: str) -> None:
    matrix = result_or_error(read_expression, write(workdir, "expression_generated.csv", text))
    if matrix is not None:
        assert np.isfinite(matrix.values).all()


@fuzz_settings(60)
@given(mutations=MUTATIONS)
def test_sequence_table_from_mutated_csv(seeds: dict[str, bytes], workdir: Path, mutations: list) -> None:
    path = write(workdir, "sequences.csv", mutate(seeds["sequence_csv"], mutations))
    frame = result_or_error(read_sequence_table, path, id_column="id")
    if frame is not None:
        assert frame["id"].is_unique and all(frame["sequence"].str.len() > 0)


@fuzz_settings(80)
@given(mutations=MUTATIONS, text=table_text(header=["time", "I", "II"]), generated=st.booleans())
def test_signal_from_csv(seeds: dict[str, bytes], workdir: Path, mutations: list, text: str, generated: bool) -> None:
    data = text if generated else mutate(seeds["signal_csv"], mutations)
    check_signal(result_or_error(read_signal_array, write(workdir, "signal.csv", data), fs=100.0))


# -- images ------------------------------------------------------------------------------------------------------


def check_image(volume: ImageVolume | None) -> None:
    if volume is not None:
        assert volume.array.dtype == np.float32 and volume.array.ndim in (3, 4)
        assert all(s > 0 for s in volume.spacing)


def read_every_way(path: Path) -> None:
    """The full read, the header check (which may only say why, as a string) and the header geometry."""
    check_image(result_or_error(read_image, path))
    reason = result_or_error(check_readable, path)
    assert reason is None or isinstance(reason, str)
    geometry = result_or_error(image_geometry, path)
    if geometry is not None:
        shape, spacing = geometry
        assert len(shape) == len(spacing) and all(n >= 1 for n in shape), geometry


@fuzz_settings(150)
@given(mutations=MUTATIONS)
def test_dicom_image_mutated(seeds: dict[str, bytes], workdir: Path, mutations: list) -> None:
    read_every_way(write(workdir, "image.dcm", mutate(seeds["dicom"], mutations, focus=DICOM_HEADER_BYTES)))


@fuzz_settings(100)
@given(mutations=MUTATIONS)
def test_dicom_ecg_mutated(seeds: dict[str, bytes], workdir: Path, mutations: list) -> None:
    path = write(workdir, "ecg.dcm", mutate(seeds["ecg"], mutations))
    check_signal(result_or_error(read_dicom_waveform, path))


@fuzz_settings(100)
@given(mutations=MUTATIONS)
def test_nifti_mutated(seeds: dict[str, bytes], workdir: Path, mutations: list) -> None:
    read_every_way(write(workdir, "image.nii", mutate(seeds["nifti"], mutations, focus=348)))  # the header


@fuzz_settings(60)
@given(mutations=MUTATIONS, compressed_bytes=st.booleans())
def test_nifti_gz_mutated(seeds: dict[str, bytes], workdir: Path, mutations: list, compressed_bytes: bool) -> None:
    """A whole gzip stream around a mutated image, or a mutated gzip stream (cut short, corrupt)."""
    if compressed_bytes:
        data = mutate(seeds["nifti_gz"], mutations)
    else:
        data = gzip.compress(mutate(seeds["nifti"], mutations, focus=348), mtime=0)
    read_every_way(write(workdir, "image.nii.gz", data))


# -- sequences and variants --------------------------------------------------------------------------------------


@fuzz_settings(100)
@given(mutations=MUTATIONS, text=LINES, generated=st.booleans(), compressed=st.booleans())
def test_fasta(
    seeds: dict[str, bytes], workdir: Path, mutations: list, text: str, generated: bool, compressed: bool
) -> None:
    data = (">" + text).encode("utf-8") if generated else mutate(seeds["fasta"], mutations)
    path = write(
        workdir, "sequences.fa.gz" if compressed else "sequences.fa", gzip.compress(data) if compressed else data
    )
    records = result_or_error(read_fasta, path)
    if records is not None:
        assert records and all(r.id and r.sequence for r in records)


@fuzz_settings(100)
@given(
    mutations=MUTATIONS, fields=st.lists(st.lists(CELL, max_size=7).map("\t".join), max_size=5), generated=st.booleans()
)
def test_bed(seeds: dict[str, bytes], workdir: Path, mutations: list, fields: list[str], generated: bool) -> None:
    data = "\n".join(fields) if generated else mutate(seeds["bed"], mutations)
    frame = result_or_error(read_bed, write(workdir, "peaks.bed", data))
    if frame is not None:
        assert (frame["start"] >= 0).all() and (frame["start"] < frame["end"]).all()


@fuzz_settings(100)
@given(
    mutations=MUTATIONS, rows=st.lists(st.lists(CELL, max_size=8).map("\t".join), max_size=4), generated=st.booleans()
)
def test_vcf(seeds: dict[str, bytes], workdir: Path, mutations: list, rows: list[str], generated: bool) -> None:
    header = "##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\n"
    data = header + "\n".join(rows) if generated else mutate(seeds["vcf"], mutations)
    frame = result_or_error(read_vcf, write(workdir, "variants.vcf", data))
    if frame is not None:
        assert (frame["pos"] >= 1).all()


@fuzz_settings(40)
@given(mutations=MUTATIONS)
def test_reference_fasta_mutated(seeds: dict[str, bytes], workdir: Path, mutations: list) -> None:
    """Windows cut from a mutated reference genome (pyfaidx indexes it) around valid BED intervals and variants."""
    genome = b">chr1\nACGTACGTACGTACGTACGTAC\nGTACGTAC\n>chr2\nNNNNACGT\n"
    reference = write(workdir, "genome.fa", mutate(genome, mutations))
    bed = read_bed(write(workdir, "windows.bed", "chr1\t2\t10\tpeakA\t0\t-\nchr2\t0\t4\n"))
    vcf = read_vcf(write(workdir, "windows.vcf", seeds["vcf"]))
    for cut in (lambda: cut_intervals(bed, reference, length=6), lambda: variant_windows(vcf, reference, 8)):
        with bounded():
            try:
                cut()
            except MedDLError as exc:  # names the reference, or the BED/VCF line it cannot be cut for
                assert reference.name in str(exc) or "windows." in str(exc), str(exc)


# -- signals -----------------------------------------------------------------------------------------------------


def check_signal(signal: Signal | None) -> None:
    if signal is not None:
        assert signal.data.ndim == 2 and signal.fs > 0 and np.isfinite(signal.fs)
        assert not np.isinf(signal.data).any()


@fuzz_settings(80)
@given(mutations=MUTATIONS, in_header=st.booleans())
def test_wfdb_record_mutated(seeds: dict[str, bytes], workdir: Path, mutations: list, in_header: bool) -> None:
    header, samples = seeds["wfdb_header"], seeds["wfdb_signal"]
    write(workdir, "rec.hea", mutate(header, mutations) if in_header else header)
    write(workdir, "rec.dat", samples if in_header else mutate(samples, mutations))
    check_signal(result_or_error(read_wfdb, workdir / "rec.hea"))
    check_signal(result_or_error(read_signal, workdir / "rec.hea"))


@fuzz_settings(40)
@given(record_line=st.lists(CELL, min_size=1, max_size=5), signal_line=st.lists(CELL, min_size=1, max_size=9))
def test_wfdb_generated_header(
    seeds: dict[str, bytes], workdir: Path, record_line: list[str], signal_line: list[str]
) -> None:
    """Header fields replaced by odd values: ``rec <signals> <fs> <samples>``, ``rec.dat <format> <gain>...``."""
    text = " ".join(["gen", *record_line]) + "\n" + " ".join(["gen.dat", *signal_line]) + "\n"
    write(workdir, "gen.hea", text)
    write(workdir, "gen.dat", seeds["wfdb_signal"])
    check_signal(result_or_error(read_wfdb, workdir / "gen.hea"))


# -- experiment files --------------------------------------------------------------------------------------------


@fuzz_settings(100)
@given(mutations=MUTATIONS, kind=st.sampled_from(kinds()))
def test_experiment_yaml_mutated(seeds: dict[str, bytes], workdir: Path, mutations: list, kind: str) -> None:
    result_or_error(load_config, write(workdir, "experiment.yaml", mutate(seeds[f"yaml_{kind}"], mutations)))


def _paths(tree: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every key path of a parsed template (sections, fields, nested fields)."""
    found = [prefix] if prefix else []
    if isinstance(tree, dict):
        for key, value in tree.items():
            found += _paths(value, (*prefix, str(key)))
    return found


@fuzz_settings(150)
@given(data=st.data(), kind=st.sampled_from(kinds()))
def test_experiment_yaml_with_generated_values(seeds: dict[str, bytes], workdir: Path, data: Any, kind: str) -> None:
    """A template whose fields (one to three) hold generated values of any type, or are removed."""
    config = yaml.safe_load(seeds[f"yaml_{kind}"])
    for _ in range(data.draw(st.integers(1, 3), label="edits")):
        path = data.draw(st.sampled_from(_paths(config)), label="field")
        parent = config
        for key in path[:-1]:
            parent = parent.get(key) if isinstance(parent, dict) else None
        if not isinstance(parent, dict):
            continue
        if data.draw(st.booleans(), label="remove"):
            parent.pop(path[-1], None)
        else:
            parent[path[-1]] = data.draw(YAML_VALUE, label="value")
    text = yaml.safe_dump(config, allow_unicode=True)
    result_or_error(load_config, write(workdir, "experiment_generated.yaml", text))
