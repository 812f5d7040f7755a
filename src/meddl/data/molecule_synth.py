"""Small molecule sets with a known answer, for tests and examples: real, valid compounds built from ring
scaffolds and substituents, labelled with their Crippen logP (Wildman & Crippen 1999).

Crippen logP is a sum of per-atom contributions, so it is also a known answer for explanations: a model that
learned it should attribute its prediction to the atoms that carry large contributions (halogens and carbons up,
hydroxyl, amine and carboxyl groups down).
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

__all__ = ["crippen_contributions", "synthetic_molecules"]

# ring scaffolds with the atoms substituents attach to ("[*:n]" placeholders)
_SCAFFOLDS = (
    "c1cc([*:1])ccc1[*:2]",
    "c1cc([*:1])cc([*:2])c1",
    "c1ccc([*:1])nc1[*:2]",
    "C1CC([*:1])CCC1[*:2]",
    "c1cc([*:1])sc1[*:2]",
    "c1cc([*:1])oc1[*:2]",
    "C1CN([*:1])CCC1[*:2]",
    "c1ccc2cc([*:1])ccc2c1[*:2]",
    "[*:1]CCC[*:2]",
    "[*:1]C(C)C[*:2]",
)
_SUBSTITUENTS = ("[H]", "F", "Cl", "Br", "O", "N", "C", "CC", "OC", "C(=O)O", "C#N", "C(F)(F)F", "C(=O)N", "CCCC")


def synthetic_molecules(n: int = 300, *, seed: int = 0) -> pd.DataFrame:
    """``n`` distinct compounds (``id``, ``smiles``, ``logp``, ``lipophilic`` = logP above the median)."""
    from rdkit import Chem, rdBase
    from rdkit.Chem import rdMolDescriptors

    rng = np.random.default_rng(seed)
    combos = list(itertools.product(_SCAFFOLDS, _SUBSTITUENTS, _SUBSTITUENTS))
    rows: list[dict[str, object]] = []
    seen: set[str] = set()
    for k in rng.permutation(len(combos)):
        scaffold, first, second = combos[k]
        smiles = scaffold.replace("[*:1]", first).replace("[*:2]", second)
        with rdBase.BlockLogs():  # a few combinations break valence rules: skipped
            mol = Chem.MolFromSmiles(smiles)
        if mol is None:
            continue
        canonical = Chem.MolToSmiles(mol)
        if canonical in seen:
            continue
        seen.add(canonical)
        rows.append(
            {
                "id": f"mol{len(rows):04d}",
                "smiles": canonical,
                "logp": round(rdMolDescriptors.CalcCrippenDescriptors(mol)[0], 4),
            }
        )
        if len(rows) == n:
            break
    frame = pd.DataFrame(rows)
    frame["lipophilic"] = (frame["logp"] > frame["logp"].median()).astype(int)
    return frame


def crippen_contributions(smiles: str) -> np.ndarray:
    """Each heavy atom's Crippen logP contribution (hydrogens' added to the atom they sit on)."""
    from rdkit import Chem
    from rdkit.Chem import rdMolDescriptors

    mol = Chem.AddHs(Chem.MolFromSmiles(smiles))
    contributions = [c[0] for c in rdMolDescriptors._CalcCrippenContribs(mol)]
    heavy = np.zeros(sum(1 for a in mol.GetAtoms() if a.GetAtomicNum() > 1))
    for atom, value in zip(mol.GetAtoms(), contributions, strict=True):
        index = atom.GetIdx() if atom.GetAtomicNum() > 1 else atom.GetNeighbors()[0].GetIdx()
        heavy[index] += value
    return heavy
