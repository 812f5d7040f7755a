"""Molecule files: a SMILES table, an SDF with properties, a .smi list; unparsable SMILES named by file, row, string
and RDKit's reason (or skipped and counted); missing columns named; standardisation merging one compound written
two ways; unsupported file types."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from rdkit import Chem

from meddl.data.molecule_synth import synthetic_molecules
from meddl.errors import MedDLError
from meddl.io.molecules import molecule_format, parse_smiles, read_molecules, standardise
from meddl.modalities.molecule import MoleculeModality
from meddl.modalities.schema import parse_config

SALT = "[Na+].[O-]C(=O)c1ccccc1"  # sodium benzoate
ACID = "OC(=O)c1ccccc1"  # benzoic acid, written non-canonically
CANONICAL_ACID = "O=C(O)c1ccccc1"


def _quiet(message: str) -> None:
    pass


def _modality(path: Path, **data: Any) -> MoleculeModality:
    """A regression on ``logp`` of the table at ``path`` (random split: any few dozen compounds can be split)."""
    config = parse_config(
        {
            "name": "molecules",
            "task": "regression",
            "data": {"kind": "molecule", "path": str(path), "target": "logp", "split": {"method": "random"}, **data},
        }
    )
    return MoleculeModality(config)


def _table_with(tmp_path: Path, bad: dict[int, str], n: int = 40) -> Path:
    """``n`` synthetic compounds with the SMILES of some data rows (0-based) replaced."""
    frame = synthetic_molecules(n, seed=0)
    for position, smiles in bad.items():
        frame.loc[position, "smiles"] = smiles
    path = tmp_path / "molecules.csv"
    frame.to_csv(path, index=False)
    return path


# -- parsing and reading a table ---------------------------------------------------------------------------


def test_parse_smiles_returns_rdkit_reason() -> None:
    mol, problem = parse_smiles("CCO")
    assert mol is not None and mol.GetNumAtoms() == 3 and problem == ""
    assert parse_smiles("C1CC") == (None, "RDKit cannot parse 'C1CC' (unclosed ring for input: 'C1CC')")
    mol, problem = parse_smiles("C(C)(C)(C)(C)C")
    assert mol is None and "Explicit valence for atom # 0 C, 5, is greater than permitted" in problem
    assert parse_smiles("  ") == (None, "the SMILES is empty")
    assert parse_smiles(float("nan")) == (None, "the SMILES is missing")


def test_read_table_keeps_rows_fields_and_the_problem_of_a_bad_smiles(tmp_path: Path) -> None:
    path = _table_with(tmp_path, {1: "C1CC"}, n=5)
    records = read_molecules(path, id_column="id", needed=("logp",))
    assert [r.where for r in records] == ["row 2", "row 3", "row 4", "row 5", "row 6"]  # header is row 1
    assert [r.id for r in records] == [f"mol000{i}" for i in range(5)]
    bad = records[1]
    assert bad.mol is None and bad.smiles == "C1CC" and "unclosed ring" in bad.problem
    good = records[0]
    assert good.problem == "" and Chem.MolToSmiles(good.mol) == "CCCO"
    assert good.fields["logp"] == pytest.approx(0.3887) and good.fields["lipophilic"] == 0
    assert read_molecules(path)[2].id == "row4"  # no id column: the row names the record


def test_bad_smiles_is_an_error_naming_file_row_string_and_reason(tmp_path: Path) -> None:
    path = _table_with(tmp_path, {1: "C1CC"})
    with pytest.raises(MedDLError) as error:
        _modality(path).load(_quiet)
    message = str(error.value)
    assert message.startswith("molecules.csv, row 3: RDKit cannot parse 'C1CC' (unclosed ring")
    assert "data.on_bad_record: skip" in message


def test_skipped_bad_records_are_counted_and_named(tmp_path: Path) -> None:
    path = _table_with(tmp_path, {1: "C1CC", 4: "c1cccc1", 6: ""})
    prepared = _modality(path, on_bad_record="skip").load(_quiet)
    assert prepared.n_read == 40
    assert prepared.dropped["unreadable SMILES or structure"] == 3
    assert len(prepared.target) == len(prepared.sample_ids) == 37 == len(prepared.inputs)
    assert {"row3", "row6", "row8"}.isdisjoint(prepared.sample_ids) and "row4" in prepared.sample_ids
    notes = "\n".join(prepared.notes)
    assert "molecules.csv, row 3: RDKit cannot parse 'C1CC' (unclosed ring" in notes
    assert "molecules.csv, row 6: RDKit cannot parse 'c1cccc1' (Can't kekulize" in notes
    assert "molecules.csv, row 8: the SMILES is missing" in notes  # an empty CSV cell


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ({"smiles_column": "structure"}, r"no column 'structure' \(data\.smiles\); columns are \['id', 'smiles'"),
        ({"needed": ("pIC50",)}, r"no column 'pIC50' \(data\.target\); columns are"),
        ({"id_column": "name"}, r"no column 'name' \(data\.id_column\)"),
    ],
)
def test_missing_column_is_named(tmp_path: Path, arguments: dict[str, Any], expected: str) -> None:
    path = _table_with(tmp_path, {}, n=3)
    with pytest.raises(MedDLError, match=rf"molecules\.csv: {expected}"):
        read_molecules(path, **arguments)


def test_missing_target_column_stops_the_modality_before_parsing(tmp_path: Path) -> None:
    path = _table_with(tmp_path, {1: "C1CC"}, n=3)  # the bad SMILES is never reached: the column is checked first
    config = parse_config(
        {"name": "m", "task": "regression", "data": {"kind": "molecule", "path": str(path), "target": "pIC50"}}
    )
    with pytest.raises(MedDLError, match=r"no column 'pIC50' \(data\.target\)"):
        MoleculeModality(config).load(_quiet)


# -- SDF and .smi ------------------------------------------------------------------------------------------


def _write_sdf(path: Path) -> list[str]:
    smiles = ["CCO", "c1ccccc1O", "CC(=O)Nc1ccc(O)cc1"]
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "wt") as handle:
        writer = Chem.SDWriter(handle)
        for i, s in enumerate(smiles):
            mol = Chem.MolFromSmiles(s)
            mol.SetProp("_Name", f"title{i}")
            mol.SetProp("compound", f"CPD-{i}")
            mol.SetProp("solubility", str(-0.5 * i))
            mol.SetProp("active", str(i % 2))
            writer.write(mol)
        writer.close()
    return smiles


@pytest.mark.parametrize("name", ["compounds.sdf", "compounds.sdf.gz"])
def test_sdf_records_keep_their_properties_and_ids(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    smiles = _write_sdf(path)
    assert molecule_format(path) == "sdf"
    records = read_molecules(path, id_column="compound", needed=("solubility", "active"))
    assert [r.id for r in records] == ["CPD-0", "CPD-1", "CPD-2"]
    assert [r.where for r in records] == ["record 1", "record 2", "record 3"]
    assert [r.smiles for r in records] == [Chem.CanonSmiles(s) for s in smiles]
    assert [r.fields["solubility"] for r in records] == pytest.approx([0.0, -0.5, -1.0])
    assert [r.fields["active"] for r in records] == [0, 1, 0]
    assert all(r.problem == "" and r.mol.GetNumAtoms() > 0 for r in records)
    assert [r.id for r in read_molecules(path)] == ["title0", "title1", "title2"]  # default: the record's title


def test_sdf_missing_property_is_named(tmp_path: Path) -> None:
    path = tmp_path / "compounds.sdf"
    _write_sdf(path)
    with pytest.raises(MedDLError, match=r"no SDF property 'logS' \(data\.target\); properties are \['active', "):
        read_molecules(path, needed=("logS",))
    with pytest.raises(MedDLError, match=r"no SDF property 'name' \(data\.id_column\)"):
        read_molecules(path, id_column="name")


def test_smi_list_with_ids_header_comment_and_a_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "compounds.smi"
    path.write_text("smiles id\n# a comment\nCCO ethanol\n\nC1CC broken ring\nc1ccccc1\n")
    records = read_molecules(path)
    assert [(r.id, r.smiles, r.where) for r in records] == [
        ("ethanol", "CCO", "line 3"),
        ("broken ring", "C1CC", "line 5"),
        ("line6", "c1ccccc1", "line 6"),
    ]
    assert records[1].mol is None and "unclosed ring" in records[1].problem
    assert records[0].mol is not None and records[2].mol.GetNumAtoms() == 6


# -- standardisation ---------------------------------------------------------------------------------------


def test_standardise_merges_a_salt_and_its_neutral_acid() -> None:
    salt, _ = parse_smiles(SALT)
    acid, _ = parse_smiles(ACID)
    mol, canonical, changes = standardise(salt)
    assert canonical == CANONICAL_ACID and mol.GetNumAtoms() == 9
    assert changes == ["salt or solvent removed", "charges neutralised"]
    assert standardise(acid)[1:] == (CANONICAL_ACID, [])
    # a quaternary ammonium has no neutral form: only its counter-ion goes
    assert standardise(parse_smiles("C[N+](C)(C)C.[Cl-]")[0])[1:] == ("C[N+](C)(C)C", ["salt or solvent removed"])


def test_modality_counts_standardisation_and_keeps_duplicates_together(tmp_path: Path) -> None:
    frame = synthetic_molecules(40, seed=1)
    extra = pd.DataFrame({"id": ["salt", "acid"], "smiles": [SALT, ACID], "logp": [1.38, 1.38], "lipophilic": 0})
    path = tmp_path / "molecules.csv"
    pd.concat([extra, frame], ignore_index=True).to_csv(path, index=False)
    prepared = _modality(path, id_column="id").load(_quiet)
    assert prepared.repairs == {"salt or solvent removed": 1, "charges neutralised": 1}
    smiles = prepared.extra["smiles"]
    assert smiles[:2] == [CANONICAL_ACID, CANONICAL_ACID]
    assert prepared.patient_ids is not None and prepared.patient_ids[0] == prepared.patient_ids[1]
    assert prepared.given_splits is not None and prepared.given_splits[0] == prepared.given_splits[1]
    assert any("1 record(s) repeat an earlier compound" in note for note in prepared.notes)


# -- file types --------------------------------------------------------------------------------------------


def test_unsupported_suffix_and_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "compounds.json"
    path.write_text('[{"smiles": "CCO"}]')
    with pytest.raises(MedDLError, match=r"compounds\.json: unsupported file type; molecules are read from a table"):
        read_molecules(path)
    with pytest.raises(MedDLError, match=r"molecule file not found: .*absent\.csv"):
        read_molecules(tmp_path / "absent.csv")
    assert [molecule_format(Path(n)) for n in ("a.csv", "a.tsv", "a.parquet", "a.SDF", "a.mol", "a.smiles")] == [
        "table",
        "table",
        "table",
        "sdf",
        "sdf",
        "smi",
    ]


def test_empty_smi_file_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "empty.smi"
    path.write_text("# nothing here\n")
    with pytest.raises(MedDLError, match=r"empty\.smi: no molecule in the file"):
        read_molecules(path)
