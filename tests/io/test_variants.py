"""VCF reading and variant windows: allele splitting, REF mismatch flags, and errors naming the line."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from meddl.errors import MedDLError
from meddl.io.variants import read_vcf, variant_windows

HEADER = "##fileformat=VCFv4.2\n##contig=<ID=chr1,length=20>\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
# chr1: positions 1..20 (1-based)
GENOME = ">chr1\nACGTACGTAAGGCCTTACGT\n>chr2\nGGGG\n"


def _vcf(tmp_path: Path, records: str, name: str = "v.vcf") -> Path:
    path = tmp_path / name
    path.write_text(HEADER + records)
    return path


@pytest.fixture
def genome(tmp_path: Path) -> Path:
    path = tmp_path / "genome.fa"
    path.write_text(GENOME)
    return path


def test_read_vcf_splits_multiallelic_records(tmp_path: Path) -> None:
    frame = read_vcf(_vcf(tmp_path, "chr1\t3\trs1\tG\tA,t\t.\tPASS\t.\nchr1\t9\t.\tAA\tA\t.\t.\t.\n"))
    assert frame.to_dict("list") == {
        "chrom": ["chr1", "chr1", "chr1"],
        "pos": [3, 3, 9],
        "id": ["rs1", "rs1", "."],
        "ref": ["G", "G", "AA"],
        "alt": ["A", "T", "A"],
        "line": [4, 4, 5],
    }


def test_read_vcf_gz(tmp_path: Path) -> None:
    path = tmp_path / "v.vcf.gz"
    with gzip.open(path, "wt") as handle:
        handle.write(HEADER + "chr1\t3\t.\tG\tC\n")
    assert read_vcf(path)["alt"].tolist() == ["C"]


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        ("chr1\t3\t.\tG\t<DEL>\t.\t.\t.", r"line 4: symbolic ALT allele '<DEL>' is not supported"),
        ("chr1\t3\t.\tG\tG]chr2:5]\t.\t.\t.", r"line 4: symbolic ALT allele"),
        ("chr1\tx\t.\tG\tA", r"line 4: POS must be an integer, got 'x'"),
        ("chr1\t0\t.\tG\tA", r"line 4: POS must be >= 1"),
        ("chr1\t3\t.\tG", r"line 4: expected at least 5 tab-separated fields"),
        ("chr1\t3\t.\tG\t.", r"line 4: ALT is '\.'"),
        ("chr1\t3\t.\tQ\tA", r"line 4: REF must be bases"),
    ],
)
def test_read_vcf_errors_name_the_line(tmp_path: Path, record: str, expected: str) -> None:
    with pytest.raises(MedDLError, match=expected):
        read_vcf(_vcf(tmp_path, record + "\n"))


def test_read_vcf_without_header_or_records(tmp_path: Path) -> None:
    path = tmp_path / "noheader.vcf"
    path.write_text("##fileformat=VCFv4.2\nchr1\t3\t.\tG\tA\n")
    with pytest.raises(MedDLError, match=r"line 2: a variant record before the '#CHROM' header"):
        read_vcf(path)
    with pytest.raises(MedDLError, match="no variant records"):
        read_vcf(_vcf(tmp_path, ""))
    with pytest.raises(MedDLError, match="VCF file not found"):
        read_vcf(tmp_path / "missing.vcf")


def test_variant_windows_snv_and_indels(tmp_path: Path, genome: Path) -> None:
    frame = read_vcf(_vcf(tmp_path, "chr1\t10\tsnv\tA\tT\nchr1\t10\tdel\tAGG\tA\nchr1\t10\tins\tA\tACCC\n"))
    windows = variant_windows(frame, genome, length=6)
    # 0-based position 9; the window starts 3 bases before: genome[6:12] = GTAAGG
    assert windows.ref == ["GTAAGG"] * 3
    assert windows.alt == ["GTATGG", "GTAACC", "GTAACC"]
    assert windows.table["ref_matches"].tolist() == [True, True, True]


def test_variant_windows_flags_ref_mismatch_and_pads_chromosome_ends(tmp_path: Path, genome: Path) -> None:
    frame = read_vcf(_vcf(tmp_path, "chr1\t2\tbad\tT\tG\nchr1\t20\tend\tT\tA\n"))
    windows = variant_windows(frame, genome, length=6)
    table = windows.table
    assert table["ref_matches"].tolist() == [False, True]
    assert table["reference_base"].tolist() == ["C", "T"]
    assert windows.ref[0] == "NNACGT" and windows.alt[0] == "NNAGGT"  # built from the reference, not the VCF REF
    assert windows.ref[1] == "ACGTNN" and windows.alt[1] == "ACGANN"


def test_variant_windows_errors_name_the_line(tmp_path: Path, genome: Path) -> None:
    absent = read_vcf(_vcf(tmp_path, "chr1\t2\t.\tC\tG\nchr9\t2\t.\tC\tG\n"))
    with pytest.raises(MedDLError, match=r"v.vcf, line 5: chromosome 'chr9' is not in the reference .*'chr1', 'chr2'"):
        variant_windows(absent, genome, 6)
    outside = read_vcf(_vcf(tmp_path, "chr2\t4\t.\tGG\tG\n", name="o.vcf"))
    with pytest.raises(MedDLError, match=r"o.vcf, line 4: position chr2:4 .* outside chromosome 'chr2' \(length 4\)"):
        variant_windows(outside, genome, 6)
