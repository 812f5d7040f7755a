"""Molecules as network inputs: atom and bond features packed into one array per molecule (the layout of
:mod:`meddl.models.graph`), Morgan (ECFP) fingerprints, Bemis–Murcko scaffolds and descriptors.

The atom features follow chemprop's: element, heavy-atom degree, formal charge, hydrogens, hybridisation,
aromaticity, ring membership and mass; bond features: type, conjugation and ring membership. Nothing here is
fitted to data except the graph size the arrays are padded to (the modality takes it from the molecules read).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = [
    "ATOM_FEATURES",
    "ATOM_FEATURE_NAMES",
    "BOND_FEATURES",
    "EDGE_COLUMNS",
    "descriptors",
    "graph_size",
    "morgan_bits",
    "pack_graphs",
    "packed_width",
    "scaffold",
]

# A directed bond's row of the packed layout starts with: present, source atom, target atom, reverse bond; its
# features follow. meddl.models.graph unpacks the same layout (its EDGE_COLUMNS; a test checks they agree).
EDGE_COLUMNS = 4

ELEMENTS = ("B", "C", "N", "O", "F", "Si", "P", "S", "Cl", "Br", "I", "Se")
DEGREES = (0, 1, 2, 3, 4, 5)
CHARGES = (-2, -1, 0, 1, 2)
HYDROGENS = (0, 1, 2, 3, 4)
HYBRIDISATIONS = ("SP", "SP2", "SP3", "SP3D", "SP3D2")


def _names() -> list[str]:
    names = [f"element {e}" for e in (*ELEMENTS, "other")]
    names += [f"degree {d}" for d in (*DEGREES, "other")]
    names += [f"charge {c:+d}" for c in CHARGES] + ["charge other"]
    names += [f"{h} H" for h in HYDROGENS] + ["H other"]
    names += [f"hybridisation {h}" for h in (*HYBRIDISATIONS, "other")]
    return [*names, "aromatic", "in ring", "mass / 100"]


ATOM_FEATURE_NAMES = _names()
ATOM_FEATURES = len(ATOM_FEATURE_NAMES)
BOND_FEATURE_NAMES = ["single", "double", "triple", "aromatic", "conjugated", "in ring"]
BOND_FEATURES = len(BOND_FEATURE_NAMES)


def packed_width() -> int:
    """Columns of a packed graph: the wider of an atom row and a bond row."""
    return max(1 + ATOM_FEATURES, EDGE_COLUMNS + BOND_FEATURES)


def _one_hot(value: Any, choices: Sequence[Any]) -> list[float]:
    row = [0.0] * (len(choices) + 1)
    row[choices.index(value) if value in choices else len(choices)] = 1.0
    return row


def atom_features(atom: Any) -> list[float]:
    """The :data:`ATOM_FEATURE_NAMES` of one RDKit atom."""
    return [
        *_one_hot(atom.GetSymbol(), ELEMENTS),
        *_one_hot(atom.GetDegree(), DEGREES),
        *_one_hot(atom.GetFormalCharge(), CHARGES),
        *_one_hot(atom.GetTotalNumHs(), HYDROGENS),
        *_one_hot(str(atom.GetHybridization()), HYBRIDISATIONS),
        float(atom.GetIsAromatic()),
        float(atom.IsInRing()),
        atom.GetMass() / 100.0,
    ]


def bond_features(bond: Any) -> list[float]:
    """The :data:`BOND_FEATURE_NAMES` of one RDKit bond."""
    kind = str(bond.GetBondType())
    return [
        float(kind == "SINGLE"),
        float(kind == "DOUBLE"),
        float(kind == "TRIPLE"),
        float(kind == "AROMATIC"),
        float(bond.GetIsConjugated()),
        float(bond.IsInRing()),
    ]


def graph_size(mol: Any) -> tuple[int, int]:
    """``(heavy atoms, directed bonds)`` of a molecule (hydrogens are implicit)."""
    return mol.GetNumAtoms(), 2 * mol.GetNumBonds()


def pack_graphs(mols: Sequence[Any], max_atoms: int, max_edges: int) -> np.ndarray:
    """(N, max_atoms + max_edges, :func:`packed_width`) float32: each molecule's packed graph (see
    :mod:`meddl.models.graph`). Every molecule must fit (the caller checks :func:`graph_size`)."""
    out = np.zeros((len(mols), max_atoms + max_edges, packed_width()), dtype=np.float32)
    for i, mol in enumerate(mols):
        n_atoms, n_edges = graph_size(mol)
        if n_atoms > max_atoms or n_edges > max_edges:
            raise ValueError(
                f"molecule {i} has {n_atoms} atoms and {n_edges} directed bonds; the layout holds "
                f"{max_atoms} and {max_edges}"
            )
        for atom in mol.GetAtoms():
            out[i, atom.GetIdx(), 0] = 1.0
            out[i, atom.GetIdx(), 1 : 1 + ATOM_FEATURES] = atom_features(atom)
        for b, bond in enumerate(mol.GetBonds()):
            begin, end = bond.GetBeginAtomIdx(), bond.GetEndAtomIdx()
            features = bond_features(bond)
            forward, backward = max_atoms + 2 * b, max_atoms + 2 * b + 1
            out[i, forward, :EDGE_COLUMNS] = (1.0, begin, end, 2 * b + 1)
            out[i, backward, :EDGE_COLUMNS] = (1.0, end, begin, 2 * b)
            out[i, forward, EDGE_COLUMNS : EDGE_COLUMNS + BOND_FEATURES] = features
            out[i, backward, EDGE_COLUMNS : EDGE_COLUMNS + BOND_FEATURES] = features
    return out


def morgan_bits(mols: Sequence[Any], radius: int = 2, bits: int = 2048) -> np.ndarray:
    """(N, bits) float32 Morgan fingerprints (ECFP4 with radius 2), 0/1."""
    from rdkit.Chem import rdFingerprintGenerator

    generator = rdFingerprintGenerator.GetMorganGenerator(radius=radius, fpSize=bits)
    return (
        np.stack([generator.GetFingerprintAsNumPy(m).astype(np.float32) for m in mols])
        if mols
        else np.zeros((0, bits), dtype=np.float32)
    )


def scaffold(mol: Any) -> str:
    """The Bemis–Murcko scaffold of a molecule as canonical SMILES ("" for an acyclic molecule)."""
    from rdkit import Chem
    from rdkit.Chem.Scaffolds import MurckoScaffold

    try:
        core = MurckoScaffold.GetScaffoldForMol(mol)
    except Exception:  # RDKit raises on unusual valences; such a molecule is its own scaffold
        return Chem.MolToSmiles(mol)
    return Chem.MolToSmiles(core) if core.GetNumAtoms() else ""


def descriptors(mols: Sequence[Any]) -> dict[str, np.ndarray]:
    """Per molecule: heavy atoms, molecular weight, Crippen logP, TPSA, rings, H-bond donors and acceptors —
    what describes a compound set, not its label (the shift report's profile)."""
    from rdkit.Chem import rdMolDescriptors

    columns: dict[str, list[float]] = {
        "heavy atoms": [],
        "molecular weight": [],
        "logP (Crippen)": [],
        "TPSA": [],
        "rings": [],
        "H-bond donors": [],
        "H-bond acceptors": [],
    }
    for m in mols:
        columns["heavy atoms"].append(m.GetNumAtoms())
        columns["molecular weight"].append(rdMolDescriptors.CalcExactMolWt(m))
        columns["logP (Crippen)"].append(rdMolDescriptors.CalcCrippenDescriptors(m)[0])
        columns["TPSA"].append(rdMolDescriptors.CalcTPSA(m))
        columns["rings"].append(rdMolDescriptors.CalcNumRings(m))
        columns["H-bond donors"].append(rdMolDescriptors.CalcNumHBD(m))
        columns["H-bond acceptors"].append(rdMolDescriptors.CalcNumHBA(m))
    return {k: np.asarray(v, dtype=float) for k, v in columns.items()}
