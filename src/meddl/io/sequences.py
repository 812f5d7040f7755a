"""Reading DNA sequences: FASTA, a table of sequences, BED intervals cut from a reference genome.

* Bases are upper-cased. Allowed: ``ACGT``, ``N`` and the IUPAC ambiguity codes ``RYSWKMBDHV``
  (case-insensitive). A gap ``-`` or any other character is an error naming the record, the 1-based position
  in the sequence and the character.
* FASTA (plain or ``.gz``): the record id is the first word of the header, the description the rest
  (``>seq1 label=1 cell=K562`` → id ``seq1``, description ``label=1 cell=K562``); ``header_labels`` reads
  ``key=value`` pairs from descriptions. Each record keeps the 1-based file line of its header.
* BED is 0-based and half-open (``chr1 10 20`` is bases 11..20 of a genome browser). ``track``, ``browser``
  and ``#`` lines are skipped; each interval keeps its 1-based file line.
* ``cut_intervals`` reads the interval's bases from a reference FASTA with pyfaidx, reverse-complemented on the
  ``-`` strand, optionally re-centred to a fixed length.
"""

from __future__ import annotations

import gzip
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pandas as pd

from meddl.errors import MedDLError
from meddl.io.tables import read_table

__all__ = [
    "ALLOWED_BASES",
    "SequenceRecord",
    "chromosome_lengths",
    "cut_intervals",
    "fetch_bases",
    "first_invalid_base",
    "header_labels",
    "open_reference",
    "read_bed",
    "read_fasta",
    "read_sequence_table",
    "reverse_complement",
]

ALLOWED_BASES = "ACGTNRYSWKMBDHV"
_INVALID = re.compile(f"[^{ALLOWED_BASES}]")
_COMPLEMENT = str.maketrans("ACGTNRYSWKMBDHVacgtnryswkmbdhv", "TGCANYRSWMKVHDBtgcanyrswmkvhdb")
_BED_COLUMNS = ["chrom", "start", "end", "name", "score", "strand", "line"]


@dataclass
class SequenceRecord:
    """One DNA sequence with where it came from.

    Attributes:
        id: record id (first word of a FASTA header, a table's id, a BED name or ``chrom:start-end(strand)``).
        sequence: upper-case bases.
        description: the rest of the FASTA header ("" when absent).
        line: 1-based file line of the header (FASTA) or of the interval (BED).
    """

    id: str
    sequence: str
    description: str = ""
    line: int = 0


def first_invalid_base(sequence: str) -> tuple[int, str] | None:
    """The first character of an upper-case ``sequence`` that is not a base: (1-based position, character)."""
    match = _INVALID.search(sequence)
    if match is None:
        return None
    return match.start() + 1, match.group()


def reverse_complement(sequence: str) -> str:
    """Reverse complement, IUPAC-aware (R↔Y, K↔M, B↔V, D↔H; S, W, N unchanged); the case is kept."""
    return sequence.translate(_COMPLEMENT)[::-1]


def _open_text(path: Path) -> IO[str]:
    if path.suffix.lower() == ".gz":
        return gzip.open(path, "rt", encoding="utf-8")
    return path.open(encoding="utf-8")


def _check_file(path: Path, what: str) -> None:
    if not path.exists():
        raise MedDLError(f"{what} file not found: {path}")
    if path.is_dir():
        raise MedDLError(f"{path}: expected a {what} file, got a folder")


def read_fasta(path: str | Path) -> list[SequenceRecord]:
    """Read a FASTA file (plain or ``.gz``) into records, in file order.

    Args:
        path: the FASTA file.

    Returns:
        One ``SequenceRecord`` per ``>`` header; sequence lines are joined and upper-cased.

    Raises:
        MedDLError: the file is missing or not UTF-8 text, has no records, has sequence lines before the first
            header, a header without an id, a record with an empty sequence, a duplicate record id (both lines
            named) or an invalid base (record id, position and character named).
    """
    path = Path(path)
    _check_file(path, "FASTA")
    records: list[SequenceRecord] = []
    first_line: dict[str, int] = {}
    current: tuple[str, str, int] | None = None
    chunks: list[str] = []

    def finish() -> None:
        if current is None:
            return
        record_id, description, line = current
        sequence = "".join(chunks).upper()
        if not sequence:
            raise MedDLError(f"{path}: record {record_id!r} (line {line}) has an empty sequence")
        invalid = first_invalid_base(sequence)
        if invalid is not None:
            position, char = invalid
            raise MedDLError(
                f"{path}: record {record_id!r} (line {line}): invalid base {char!r} at position {position}; "
                f"allowed are {ALLOWED_BASES} (IUPAC codes, case-insensitive)"
            )
        records.append(SequenceRecord(record_id, sequence, description, line))

    try:
        with _open_text(path) as handle:
            for number, raw in enumerate(handle, start=1):
                text = raw.strip()
                if not text:
                    continue
                if text.startswith(">"):
                    finish()
                    words = text[1:].strip().split(maxsplit=1)
                    if not words:
                        raise MedDLError(f"{path}, line {number}: FASTA header has no record id")
                    record_id = words[0]
                    if record_id in first_line:
                        raise MedDLError(
                            f"{path}: record id {record_id!r} appears twice "
                            f"(lines {first_line[record_id]} and {number})"
                        )
                    first_line[record_id] = number
                    current = (record_id, words[1] if len(words) > 1 else "", number)
                    chunks = []
                elif text.startswith(";"):  # old-style FASTA comment
                    continue
                elif current is None:
                    raise MedDLError(f"{path}, line {number}: sequence data before the first '>' header: {text[:30]!r}")
                else:
                    chunks.append(text)
            finish()
    except UnicodeDecodeError:
        raise MedDLError(f"{path}: not UTF-8 text; is it a FASTA file?") from None
    except (OSError, EOFError) as exc:  # a broken .gz
        raise MedDLError(f"{path}: cannot be read: {exc}") from None
    if not records:
        raise MedDLError(f"{path}: no FASTA records (no line starts with '>')")
    return records


def header_labels(
    records: Sequence[SequenceRecord], key: str = "label", *, source: str | Path | None = None
) -> dict[str, str]:
    """``key=value`` from each record's description (``>seq1 label=1`` → ``{"seq1": "1"}``).

    Args:
        records: FASTA records.
        key: the header key holding the label.
        source: the FASTA file the records come from, named in the error.

    Raises:
        MedDLError: naming the file and the records (id and line) whose header has no ``key=``.
    """
    labels: dict[str, str] = {}
    missing: list[SequenceRecord] = []
    prefix = f"{key}="
    for record in records:
        value = next((word[len(prefix) :] for word in record.description.split() if word.startswith(prefix)), None)
        if value is None or value == "":
            missing.append(record)
        else:
            labels[record.id] = value
    if missing:
        shown = ", ".join(f"{r.id!r} (line {r.line})" for r in missing[:5])
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        where = f"{source}: " if source is not None else ""
        raise MedDLError(f"{where}{len(missing)} FASTA record(s) have no '{prefix}' in their header: {shown}{more}")
    return labels


def read_sequence_table(
    path: str | Path,
    sequence_column: str = "sequence",
    label_column: str | None = "label",
    id_column: str | None = None,
    *,
    table: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Read a CSV/TSV/Parquet table of sequences.

    Args:
        path: the table (read with ``meddl.io.tables.read_table``).
        sequence_column: column holding the bases.
        label_column: column holding the label, kept as read (missing labels stay missing; the pipeline counts
            them); ``None`` for a table without labels (prediction).
        id_column: column of unique record ids; ``None`` names records ``row<N>`` after their spreadsheet row.
        table: the file as ``read_table`` already returned it (the caller read it for other columns); ``path``
            then only names the file in messages.

    Returns:
        A frame with columns ``id`` (str), ``sequence`` (upper-case str), ``label`` (absent when
        ``label_column`` is None) and ``row`` (spreadsheet row number, header = row 1), in file order.

    Raises:
        MedDLError: a column is missing, a sequence is empty or has an invalid base (row, position and character
            named), or an id is empty or repeated (both rows named).
    """
    if table is None:
        table = read_table(path)
    wanted = [c for c in (sequence_column, label_column, id_column) if c is not None]
    for column in wanted:
        if column not in table.columns:
            raise MedDLError(f"{path}: no column {column!r}; the columns are {list(table.columns)}")
    rows = [int(r) for r in table.index]
    sequences: list[str] = []
    for row, value in zip(rows, table[sequence_column].tolist(), strict=True):
        if value is None or (isinstance(value, float) and pd.isna(value)) or not str(value).strip():
            raise MedDLError(f"{path}, row {row}: column {sequence_column!r} is empty")
        sequence = str(value).strip().upper()
        invalid = first_invalid_base(sequence)
        if invalid is not None:
            position, char = invalid
            raise MedDLError(
                f"{path}, row {row}: column {sequence_column!r}: invalid base {char!r} at position {position}; "
                f"allowed are {ALLOWED_BASES} (IUPAC codes, case-insensitive)"
            )
        sequences.append(sequence)
    if id_column is None:
        ids = [f"row{row}" for row in rows]
    else:
        ids = []
        seen: dict[str, int] = {}
        for row, value in zip(rows, table[id_column].tolist(), strict=True):
            if value is None or (isinstance(value, float) and pd.isna(value)) or not str(value).strip():
                raise MedDLError(f"{path}, row {row}: column {id_column!r} (the record id) is empty")
            record_id = str(value).strip()
            if record_id in seen:
                raise MedDLError(
                    f"{path}: id {record_id!r} in column {id_column!r} appears twice (rows {seen[record_id]} and {row})"
                )
            seen[record_id] = row
            ids.append(record_id)
    frame = pd.DataFrame({"id": ids, "sequence": sequences})
    if label_column is not None:
        frame["label"] = table[label_column].to_numpy()
    frame["row"] = rows
    return frame


def read_bed(path: str | Path) -> pd.DataFrame:
    """Read a BED file (3 to 6+ columns; 0-based, half-open intervals).

    Returns:
        A frame with columns ``chrom`` (str), ``start``, ``end`` (int, 0-based half-open), ``name`` (str, "" when
        absent or "."), ``score`` (float, NaN when absent or "."), ``strand`` ("+", "-" or "." when absent) and
        ``line`` (1-based file line), in file order.

    Raises:
        MedDLError: missing file, no intervals, fewer than 3 fields, a non-integer or negative coordinate,
            start >= end, a non-numeric score or a strand other than +, - or . — each naming the line.
    """
    path = Path(path)
    _check_file(path, "BED")
    rows: list[tuple[str, int, int, str, float, str, int]] = []
    try:
        with _open_text(path) as handle:
            for number, raw in enumerate(handle, start=1):
                text = raw.rstrip("\r\n")
                if not text.strip() or text.startswith(("track", "browser", "#")):
                    continue
                fields = text.split("\t") if "\t" in text else text.split()
                where = f"{path}, line {number}"
                if len(fields) < 3:
                    raise MedDLError(f"{where}: expected at least 3 fields (chrom, start, end), got {len(fields)}")
                chrom = fields[0].strip()
                try:
                    start, end = int(fields[1]), int(fields[2])
                except ValueError:
                    raise MedDLError(
                        f"{where}: start and end must be integers, got {fields[1]!r} and {fields[2]!r}"
                    ) from None
                if start < 0:
                    raise MedDLError(f"{where}: start must be >= 0 (BED is 0-based), got {start}")
                if start >= end:
                    raise MedDLError(f"{where}: start ({start}) must be smaller than end ({end})")
                name = fields[3].strip() if len(fields) > 3 and fields[3].strip() != "." else ""
                score = float("nan")
                if len(fields) > 4 and fields[4].strip() not in ("", "."):
                    try:
                        score = float(fields[4])
                    except ValueError:
                        raise MedDLError(f"{where}: score must be a number, got {fields[4]!r}") from None
                strand = fields[5].strip() if len(fields) > 5 else "."
                if strand not in ("+", "-", "."):
                    raise MedDLError(f"{where}: strand must be '+', '-' or '.', got {strand!r}")
                rows.append((chrom, start, end, name, score, strand, number))
    except UnicodeDecodeError:
        raise MedDLError(f"{path}: not UTF-8 text; is it a BED file?") from None
    if not rows:
        raise MedDLError(f"{path}: no intervals (only empty, track, browser or comment lines)")
    frame = pd.DataFrame(rows, columns=_BED_COLUMNS)
    frame["chrom"] = frame["chrom"].astype(str)
    frame["name"] = frame["name"].astype(str)
    frame["strand"] = frame["strand"].astype(str)
    frame.attrs["source"] = str(path)
    return frame


def open_reference(reference_fasta: str | Path) -> Any:
    """Open (and index, writing ``<file>.fai`` beside it) a reference FASTA as a ``pyfaidx.Fasta``.

    Raises:
        MedDLError: the file is missing or cannot be indexed (e.g. a plain-gzip rather than bgzip ``.gz``).
    """
    import pyfaidx

    path = Path(reference_fasta)
    _check_file(path, "reference FASTA")
    try:
        return pyfaidx.Fasta(str(path), sequence_always_upper=True, rebuild=True, build_index=True)
    except (pyfaidx.FastaIndexingError, pyfaidx.UnsupportedCompressionFormat, OSError, ValueError) as exc:
        raise MedDLError(f"{path}: cannot index the reference FASTA: {exc}") from None


def chromosome_lengths(reference: Any) -> dict[str, int]:
    """{chromosome name: length} of an open ``pyfaidx.Fasta``."""
    return {name: len(reference[name]) for name in reference.keys()}  # noqa: SIM118 - iterating a Fasta yields records


def fetch_bases(reference: Any, chrom: str, start: int, end: int) -> str:
    """Upper-case bases ``[start, end)`` (0-based) of ``chrom`` from an open ``pyfaidx.Fasta``."""
    return str(reference[chrom][start:end]).upper()


def unknown_chromosome(source: str, chrom: str, lengths: dict[str, int], reference: Path | str) -> MedDLError:
    """The error for a chromosome absent from the reference, listing a few names it has."""
    names = list(lengths)
    shown = ", ".join(repr(n) for n in names[:5]) + (f" … ({len(names)} in all)" if len(names) > 5 else "")
    return MedDLError(f"{source}: chromosome {chrom!r} is not in the reference FASTA {reference}; it has {shown}")


def cut_intervals(bed: pd.DataFrame, reference_fasta: str | Path, length: int | None = None) -> list[SequenceRecord]:
    """Cut the bases of each BED interval from a reference genome.

    Args:
        bed: a frame from ``read_bed`` (chrom, start, end, name, strand, line).
        reference_fasta: the genome FASTA (pyfaidx writes a ``.fai`` index next to it).
        length: if given, every window is re-centred on its interval's centre (``(start + end) // 2``) with
            this many bases; otherwise the interval itself is cut.

    Returns:
        One record per interval, in BED order: the bases (reverse complement on ``-``; ``.`` reads as ``+``),
        id = the BED name if present and unique in the file, else ``chrom:start-end(strand)`` of the BED
        interval; description is ``chrom:start-end(strand)`` of the window cut; ``line`` is the BED line.

    Raises:
        MedDLError: naming the BED line when the chromosome is absent from the FASTA (a few available names
            listed) or the window falls outside the chromosome (its length given), or the reference has invalid
            bases there.
    """
    if length is not None and int(length) < 1:
        raise MedDLError(f"length must be a positive number of bases, got {length}")
    source = str(bed.attrs.get("source", "BED"))
    reference = open_reference(reference_fasta)
    lengths = chromosome_lengths(reference)
    name_counts = Counter(str(n) for n in bed["name"] if str(n))
    records: list[SequenceRecord] = []
    for chrom, start, end, name, strand, line in zip(
        bed["chrom"], bed["start"], bed["end"], bed["name"], bed["strand"], bed["line"], strict=True
    ):
        chrom, start, end, line = str(chrom), int(start), int(end), int(line)
        where = f"{source}, line {line}"
        if chrom not in lengths:
            raise unknown_chromosome(where, chrom, lengths, reference_fasta)
        interval = f"{chrom}:{start}-{end}({strand})"
        if length is not None:
            centre = (start + end) // 2
            start = centre - int(length) // 2
            end = start + int(length)
        if start < 0 or end > lengths[chrom]:
            window = "re-centred window" if length is not None else "interval"
            raise MedDLError(
                f"{where}: {window} {chrom}:{start}-{end} falls outside chromosome {chrom!r} (length {lengths[chrom]})"
            )
        bases = fetch_bases(reference, chrom, start, end)
        invalid = first_invalid_base(bases)
        if invalid is not None:
            raise MedDLError(
                f"{where}: the reference has invalid base {invalid[1]!r} at {chrom}:{start + invalid[0]} (1-based)"
            )
        if strand == "-":
            bases = reverse_complement(bases)
        name = str(name)
        record_id = name if name and name_counts[name] == 1 else interval
        records.append(SequenceRecord(record_id, bases, f"{chrom}:{start}-{end}({strand})", line))
    return records
