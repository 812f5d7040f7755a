"""Reading VCF variants and building the reference / alternate sequence windows around them.

* ``read_vcf`` reads VCF 4.x (plain or ``.gz``): one row per ALT allele (multi-allelic records are split), the
  1-based ``POS`` kept as in the file, and each row's 1-based file line. Symbolic alleles (``<DEL>``),
  breakends and the spanning deletion ``*`` are refused with the line named: they carry no bases to score.
* ``variant_windows`` cuts a window of ``length`` bases centred on each variant from the reference FASTA and
  the same window with the ALT allele in place. A VCF REF that disagrees with the reference is *flagged*
  (``ref_matches`` False, ``reference_base`` holds what the FASTA has), never raised and never silently used:
  both windows are built from the reference bases; the pipeline reports or refuses flagged variants.
"""

from __future__ import annotations

import gzip
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from meddl.errors import MedDLError
from meddl.io.sequences import chromosome_lengths, fetch_bases, open_reference, unknown_chromosome

__all__ = ["VariantWindows", "read_vcf", "variant_windows"]

_ALLELE = re.compile(r"^[ACGTNacgtn]+$")
_COLUMNS = ["chrom", "pos", "id", "ref", "alt", "line"]


def read_vcf(path: str | Path) -> pd.DataFrame:
    """Read the variants of a VCF file.

    Args:
        path: a ``.vcf`` or ``.vcf.gz`` (gzip or bgzip) file.

    Returns:
        A frame with columns ``chrom`` (str), ``pos`` (int, 1-based), ``id`` (str, "." when absent), ``ref`` and
        ``alt`` (upper-case bases) and ``line`` (1-based file line), one row per ALT allele, in file order.

    Raises:
        MedDLError: the file is missing, has no ``#CHROM`` header before the records or no records, or a record
            (line named) has fewer than 5 fields, a non-integer or non-positive POS, a REF or ALT that is not
            bases (symbolic ``<DEL>``, breakend, ``*``, or ``.`` for no alternate allele).
    """
    path = Path(path)
    if not path.exists():
        raise MedDLError(f"VCF file not found: {path}")
    rows: list[tuple[str, int, str, str, str, int]] = []
    header_seen = False
    opener = gzip.open if path.suffix.lower() in (".gz", ".bgz") else open
    try:
        with opener(path, "rt", encoding="utf-8") as handle:
            for number, raw in enumerate(handle, start=1):
                text = raw.rstrip("\r\n")
                if not text.strip() or text.startswith("##"):
                    continue
                if text.startswith("#"):
                    header_seen = text.upper().startswith("#CHROM")
                    if not header_seen:
                        raise MedDLError(f"{path}, line {number}: expected the '#CHROM' header line, got {text[:40]!r}")
                    continue
                where = f"{path}, line {number}"
                if not header_seen:
                    raise MedDLError(f"{where}: a variant record before the '#CHROM' header line")
                fields = text.split("\t")
                if len(fields) < 5:
                    raise MedDLError(
                        f"{where}: expected at least 5 tab-separated fields (CHROM POS ID REF ALT), got {len(fields)}"
                    )
                chrom, position_text, variant_id, ref, alts = (f.strip() for f in fields[:5])
                try:
                    position = int(position_text)
                except ValueError:
                    raise MedDLError(f"{where}: POS must be an integer, got {position_text!r}") from None
                if position < 1:
                    raise MedDLError(f"{where}: POS must be >= 1 (VCF is 1-based), got {position}")
                if not _ALLELE.match(ref):
                    raise MedDLError(f"{where}: REF must be bases (A, C, G, T, N), got {ref!r}")
                for alt in alts.split(","):
                    if alt.startswith("<") or "[" in alt or "]" in alt or alt == "*":
                        raise MedDLError(
                            f"{where}: symbolic ALT allele {alt!r} is not supported; only sequence alleles "
                            "(SNVs, indels written as bases) can be scored"
                        )
                    if alt == ".":
                        raise MedDLError(f"{where}: ALT is '.' (no alternate allele); remove the record")
                    if not _ALLELE.match(alt):
                        raise MedDLError(f"{where}: ALT must be bases (A, C, G, T, N), got {alt!r}")
                    rows.append((chrom, position, variant_id or ".", ref.upper(), alt.upper(), number))
    except UnicodeDecodeError:
        raise MedDLError(f"{path}: not UTF-8 text; is it a VCF file?") from None
    except (OSError, EOFError) as exc:
        raise MedDLError(f"{path}: cannot be read: {exc}") from None
    if not rows:
        raise MedDLError(f"{path}: no variant records")
    frame = pd.DataFrame(rows, columns=_COLUMNS)
    frame.attrs["source"] = str(path)
    return frame


@dataclass
class VariantWindows:
    """Reference and alternate windows around variants.

    Attributes:
        ref: one ``length``-base window per variant, the variant's first base at index ``length // 2``.
        alt: the same window with the REF bases replaced by the ALT allele; indels keep the length by taking more
            right flank (deletions) or cutting the right end (insertions).
        table: the variants (chrom, pos, id, ref, alt, line) with ``ref_matches`` (bool: the VCF REF equals the
            reference at that position) and ``reference_base`` (the reference's bases there, as long as REF).
    """

    ref: list[str]
    alt: list[str]
    table: pd.DataFrame


def variant_windows(vcf_frame: pd.DataFrame, reference_fasta: str | Path, length: int) -> VariantWindows:
    """Cut reference and alternate windows of ``length`` bases centred on each variant.

    The window starts ``length // 2`` bases before the variant (0-based ``pos - 1 - length // 2``); parts beyond
    the chromosome ends are filled with ``N``. The ALT window is built from the reference bases (not the VCF REF),
    so a REF mismatch is flagged in ``table.ref_matches`` and does not change the windows.

    Args:
        vcf_frame: from ``read_vcf``.
        reference_fasta: the genome FASTA the VCF was called on.
        length: window length.

    Returns:
        ``VariantWindows`` in the order of ``vcf_frame``.

    Raises:
        MedDLError: naming the VCF line when the chromosome is absent from the reference or REF extends past the
            chromosome end.
    """
    if int(length) < 1:
        raise MedDLError(f"length must be a positive number of bases, got {length}")
    source = str(vcf_frame.attrs.get("source", "VCF"))
    reference = open_reference(reference_fasta)
    lengths = chromosome_lengths(reference)
    ref_windows: list[str] = []
    alt_windows: list[str] = []
    matches: list[bool] = []
    reference_bases: list[str] = []
    for chrom, position, ref, alt, line in zip(
        vcf_frame["chrom"], vcf_frame["pos"], vcf_frame["ref"], vcf_frame["alt"], vcf_frame["line"], strict=True
    ):
        chrom, start, where = str(chrom), int(position) - 1, f"{source}, line {int(line)}"
        if chrom not in lengths:
            raise unknown_chromosome(where, chrom, lengths, reference_fasta)
        size = lengths[chrom]
        if start + len(ref) > size:
            raise MedDLError(
                f"{where}: position {chrom}:{int(position)} (REF {ref!r}) falls outside chromosome {chrom!r} "
                f"(length {size})"
            )

        def bases(lo: int, hi: int, chrom: str = chrom, size: int = size) -> str:
            """Reference bases [lo, hi), N beyond the chromosome ends."""
            inside = fetch_bases(reference, chrom, max(lo, 0), min(hi, size)) if min(hi, size) > max(lo, 0) else ""
            return "N" * max(0, min(hi, 0) - lo) + inside + "N" * max(0, hi - max(size, lo))

        observed = bases(start, start + len(ref))
        window_start = start - int(length) // 2
        left = bases(window_start, start)
        ref_windows.append((left + bases(start, window_start + int(length)))[: int(length)])
        right = bases(start + len(ref), start + len(ref) + int(length))
        alt_windows.append((left + str(alt) + right)[: int(length)])
        matches.append(observed == str(ref).upper())
        reference_bases.append(observed)
    table = vcf_frame[_COLUMNS].reset_index(drop=True).copy()
    table["ref_matches"] = matches
    table["reference_base"] = reference_bases
    return VariantWindows(ref_windows, alt_windows, table)
