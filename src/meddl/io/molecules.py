"""Reading molecules (RDKit): a table with a SMILES column, an SDF file, or a ``.smi`` list; standardisation.

Every record keeps where it came from — the spreadsheet row of a table (header = row 1), the record number of an
SDF — so a SMILES RDKit cannot parse is an error naming the file, the row and the string. Standardisation is
RDKit's ``rdMolStandardize``: the largest organic fragment is kept (salts and solvents dropped), charges are
neutralised where a neutral form exists, and the molecule is written as canonical SMILES, so one compound written
two ways is recognised as one.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from meddl.errors import MedDLError
from meddl.io.tables import TABLE_SUFFIXES, read_table

__all__ = [
    "MOLECULE_SUFFIXES",
    "MoleculeRecord",
    "molecule_format",
    "parse_smiles",
    "read_molecules",
    "standardise",
]

SDF_SUFFIXES = (".sdf", ".sd", ".mol")
SMI_SUFFIXES = (".smi", ".smiles")
MOLECULE_SUFFIXES = (*TABLE_SUFFIXES, *SDF_SUFFIXES, *SMI_SUFFIXES)
MAX_SMILES_LENGTH = 2000  # longer text is not a small molecule (and would make RDKit slow)
_RDKIT_LOG = threading.Lock()


@dataclass
class MoleculeRecord:
    """One molecule as read: its id, the SMILES as written (or RDKit's for an SDF record), where it was read
    (``where``: "row 5", "record 3"), the parsed RDKit molecule (None: unparsable, ``problem`` says why) and the
    other fields of its row or SDF record (labels, ids)."""

    id: str
    smiles: str
    where: str
    mol: Any = None
    problem: str = ""
    fields: dict[str, Any] = field(default_factory=dict)


def molecule_format(path: Path) -> str:
    """``table``, ``sdf`` or ``smi`` from the file name."""
    name = path.name.lower()
    if name.endswith(SDF_SUFFIXES) or name.endswith(tuple(s + ".gz" for s in SDF_SUFFIXES)):
        return "sdf"
    if name.endswith(SMI_SUFFIXES):
        return "smi"
    if name.endswith(TABLE_SUFFIXES):
        return "table"
    raise MedDLError(
        f"{path}: unsupported file type; molecules are read from a table with a SMILES column "
        f"({', '.join(TABLE_SUFFIXES)}), an SDF ({', '.join(SDF_SUFFIXES)}) or a SMILES list (.smi)"
    )


def parse_smiles(text: Any) -> tuple[Any, str]:
    """``(mol, "")`` for a SMILES RDKit reads, else ``(None, reason)`` with RDKit's own message."""
    from rdkit import Chem, rdBase

    if text is None or (isinstance(text, float) and text != text):
        return None, "the SMILES is missing"
    smiles = str(text).strip()
    if not smiles:
        return None, "the SMILES is empty"
    if len(smiles) > MAX_SMILES_LENGTH:
        return None, f"the SMILES is {len(smiles)} characters long (at most {MAX_SMILES_LENGTH})"
    with rdBase.BlockLogs():
        mol = Chem.MolFromSmiles(smiles)
    if mol is None:
        return None, f"RDKit cannot parse {smiles!r} ({_rdkit_reason(smiles)})"
    if mol.GetNumAtoms() == 0:
        return None, f"{smiles!r} has no atoms"
    return mol, ""


def _rdkit_reason(smiles: str) -> str:
    """RDKit's reason for rejecting ``smiles`` (valence, ring closure, syntax), from its error log.

    RDKit says why only in its log, so the log is routed to a buffer for one more parse; the lock keeps two
    server threads from swapping ``sys.stderr`` under each other."""
    import io
    import sys

    from rdkit import Chem, rdBase

    capture = io.StringIO()
    with _RDKIT_LOG:
        rdBase.LogToPythonStderr()
        previous, sys.stderr = sys.stderr, capture
        try:
            rdBase.EnableLog("rdApp.error")
            Chem.MolFromSmiles(smiles)
        finally:
            sys.stderr = previous
            rdBase.LogToCppStreams()
    lines = [line.split("] ", 1)[-1].strip() for line in capture.getvalue().splitlines() if line.strip()]
    reasons = [line for line in lines if not line.startswith("SMILES Parse Error: Failed parsing SMILES")]
    return (reasons or lines or ["syntax error"])[0].removeprefix("SMILES Parse Error: ")


def standardise(mol: Any) -> tuple[Any, str, list[str]]:
    """The standard form of ``mol``: largest fragment, neutralised, canonical SMILES.

    Returns:
        ``(mol, canonical_smiles, changes)``; ``changes`` names what was changed ("salt or solvent removed",
        "charges neutralised"), empty when the molecule was already standard.
    """
    from rdkit import Chem, rdBase
    from rdkit.Chem.MolStandardize import rdMolStandardize

    changes = []
    with rdBase.BlockLogs():
        if len(Chem.GetMolFrags(mol)) > 1:
            mol = rdMolStandardize.LargestFragmentChooser(preferOrganic=True).choose(mol)
            changes.append("salt or solvent removed")
        charged = any(atom.GetFormalCharge() for atom in mol.GetAtoms())
        if charged:
            neutral = rdMolStandardize.Uncharger().uncharge(mol)
            if Chem.MolToSmiles(neutral) != Chem.MolToSmiles(mol):
                changes.append("charges neutralised")
            mol = neutral
    return mol, Chem.MolToSmiles(mol), changes


def read_molecules(
    path: str | Path,
    *,
    smiles_column: str = "smiles",
    id_column: str | None = None,
    needed: tuple[str, ...] = (),
) -> list[MoleculeRecord]:
    """Every record of a molecule file, parsed (an unparsable one keeps ``mol=None`` and its ``problem``).

    Args:
        path: a table (CSV/TSV/Parquet) with a SMILES column, an SDF, or a ``.smi`` file ("SMILES [id]" lines).
        smiles_column: the table's SMILES column (an SDF may also hold one; its structure is used).
        id_column: the column (SDF: property) naming each molecule; default: the row or record number.
        needed: columns (SDF: properties) that must exist, e.g. the target — checked before any parsing.

    Raises:
        MedDLError: the file is missing or of an unknown type, a needed column is absent, or it holds no record.
    """
    path = Path(path)
    if not path.exists():
        raise MedDLError(f"molecule file not found: {path}")
    fmt = molecule_format(path)
    if fmt == "table":
        records = _read_table(path, smiles_column, id_column, needed)
    elif fmt == "sdf":
        records = _read_sdf(path, id_column, needed)
    else:
        records = _read_smi(path)
    if not records:
        raise MedDLError(f"{path}: no molecule in the file")
    return records


def _read_table(path: Path, smiles_column: str, id_column: str | None, needed: tuple[str, ...]) -> list[MoleculeRecord]:
    frame = read_table(path)
    for column, what in [(smiles_column, "data.smiles"), *((c, "data.target") for c in needed)]:
        if column not in frame.columns:
            raise MedDLError(f"{path}: no column {column!r} ({what}); columns are {list(frame.columns)}")
    if id_column is not None and id_column not in frame.columns:
        raise MedDLError(f"{path}: no column {id_column!r} (data.id_column); columns are {list(frame.columns)}")
    records = []
    for row, values in zip(frame.index, frame.to_dict("records"), strict=True):
        smiles = values[smiles_column]
        mol, problem = parse_smiles(smiles)
        ident = str(values[id_column]) if id_column is not None else f"row{row}"
        text = "" if smiles is None or (isinstance(smiles, float) and smiles != smiles) else str(smiles).strip()
        records.append(MoleculeRecord(ident, text, f"row {row}", mol, problem, values))
    return records


def _read_sdf(path: Path, id_column: str | None, needed: tuple[str, ...]) -> list[MoleculeRecord]:
    import gzip

    from rdkit import Chem, rdBase

    opener = gzip.open if path.name.lower().endswith(".gz") else open
    records = []
    try:
        with opener(path, "rb") as handle, rdBase.BlockLogs():
            supplier = Chem.ForwardSDMolSupplier(handle, sanitize=True, removeHs=True)
            for number, mol in enumerate(supplier, start=1):
                where = f"record {number}"
                if mol is None:
                    records.append(
                        MoleculeRecord(f"record{number}", "", where, None, "RDKit cannot read its structure")
                    )
                    continue
                fields = mol.GetPropsAsDict(includePrivate=False, includeComputed=False)
                title = mol.GetProp("_Name").strip() if mol.HasProp("_Name") else ""
                if id_column is not None and id_column in fields:
                    ident = str(fields[id_column])
                else:
                    ident = title or f"record{number}"
                problem = "" if mol.GetNumAtoms() else "the record has no atoms"
                records.append(MoleculeRecord(ident, Chem.MolToSmiles(mol), where, mol, problem, fields))
    except OSError as exc:
        raise MedDLError(f"{path}: cannot read the SDF ({exc})") from None
    present = set().union(*(r.fields for r in records)) if records else set()
    for column in needed:
        if records and column not in present:
            raise MedDLError(f"{path}: no SDF property {column!r} (data.target); properties are {sorted(present)}")
    if id_column is not None and records and id_column not in present:
        raise MedDLError(f"{path}: no SDF property {id_column!r} (data.id_column); properties are {sorted(present)}")
    return records


def _read_smi(path: Path) -> list[MoleculeRecord]:
    records = []
    for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
        parts = line.split()
        if not parts or parts[0].startswith("#") or parts[0].lower() in {"smiles", "canonical_smiles"}:
            continue
        mol, problem = parse_smiles(parts[0])
        ident = " ".join(parts[1:]) or f"line{number}"
        records.append(MoleculeRecord(ident, parts[0], f"line {number}", mol, problem))
    return records
