"""Atom attributions of molecule models, drawn on the 2-D structure (RDKit).

Graph networks: integrated gradients on the atom features, from a baseline that keeps the molecule's bonds and
zeroes every atom's features (:func:`atom_baseline`); an atom's attribution is the sum
over its features, so the atoms' scores add up to the prediction's difference from that baseline. Fingerprint
networks: integrated gradients on the bits, each bit's score shared among the atoms of the circular environments
that set it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from meddl.explain.attribution import Target, compute_integrated_gradients

__all__ = [
    "atom_attributions_from_bits",
    "atom_baseline",
    "atom_integrated_gradients",
    "fingerprint_atom_attributions",
    "molecule_png",
]


def atom_baseline(packed: np.ndarray, max_atoms: int) -> np.ndarray:
    """The integrated-gradients baseline of packed graphs: the same molecules with every atom feature zero (the
    bonds, their features and the masks kept), so the attributions fall on atom features only."""
    baseline = np.array(packed, dtype=np.float32, copy=True)
    baseline[:, :max_atoms, 1:] = 0.0
    return baseline


def atom_attributions_from_bits(mol: Any, bit_scores: np.ndarray, radius: int = 2) -> np.ndarray:
    """Per-atom attribution of a fingerprint model: each set bit's score shared equally among the atoms of the
    circular environments that set it (every environment of the bit counted once)."""
    from rdkit import Chem
    from rdkit.Chem import rdFingerprintGenerator

    generator = rdFingerprintGenerator.GetMorganGenerator(radius=radius, fpSize=len(bit_scores))
    info = rdFingerprintGenerator.AdditionalOutput()
    info.AllocateBitInfoMap()
    generator.GetFingerprint(mol, additionalOutput=info)
    scores = np.zeros(mol.GetNumAtoms(), dtype=np.float64)
    for bit, environments in info.GetBitInfoMap().items():
        share = float(bit_scores[bit]) / len(environments)
        for centre, r in environments:
            atoms = {centre}
            if r > 0:
                for bond in Chem.FindAtomEnvironmentOfRadiusN(mol, r, centre):
                    b = mol.GetBondWithIdx(bond)
                    atoms.update((b.GetBeginAtomIdx(), b.GetEndAtomIdx()))
            for atom in atoms:
                scores[atom] += share / len(atoms)
    return scores


def atom_integrated_gradients(
    model: torch.nn.Module, packed: np.ndarray, max_atoms: int, target: Target = None, n_steps: int = 32
) -> np.ndarray:
    """(N, max_atoms) attribution of each atom (padding atoms: 0) to output ``target`` of a graph network."""
    # 8 molecules per call, 64 path points per forward pass: a batch of packed graphs times the path's steps
    # would otherwise hold thousands of graphs' activations at once (a GAT on 72-atom layouts ran out of 24 GB)
    attributions = compute_integrated_gradients(
        model,
        packed,
        atom_baseline(packed, max_atoms),
        target=target,
        n_steps=n_steps,
        batch_size=8,
        internal_batch_size=64,
    )
    return attributions[:, :max_atoms, 1:].sum(axis=-1)


def fingerprint_atom_attributions(
    model: torch.nn.Module, bits: np.ndarray, mols: list[Any], radius: int, target: Target = None
) -> list[np.ndarray]:
    """Per molecule, the attribution of each atom to output ``target`` of a fingerprint network."""
    scores = compute_integrated_gradients(model, bits, None, target=target, batch_size=16, internal_batch_size=128)
    return [atom_attributions_from_bits(mol, row, radius) for mol, row in zip(mols, scores, strict=True)]


def molecule_png(mol: Any, weights: np.ndarray, *, legend: str = "", size: int = 320) -> bytes:
    """The molecule drawn with each atom's attribution as a coloured contour (green: raises the output, pink:
    lowers it; RDKit's similarity-map drawing), ``legend`` written in a strip below it."""
    import io

    from PIL import Image, ImageDraw, ImageFont
    from rdkit.Chem.Draw import SimilarityMaps, rdMolDraw2D

    drawer = rdMolDraw2D.MolDraw2DCairo(size, size)
    values = [float(w) for w in np.asarray(weights, dtype=float)[: mol.GetNumAtoms()]]
    scale = max((abs(v) for v in values), default=0.0)
    if mol.GetNumAtoms() < 2 or scale == 0:
        drawer.DrawMolecule(mol)
    else:  # contours on one scale per molecule: the drawing shows where, the numbers say how much
        SimilarityMaps.GetSimilarityMapFromWeights(mol, [v / scale for v in values], draw2d=drawer, contourLines=4)
    drawer.FinishDrawing()
    picture = Image.open(io.BytesIO(bytes(drawer.GetDrawingText()))).convert("RGB")
    if legend:  # RDKit scales text with the molecule (huge under a small one): Pillow writes the legend
        strip = 24
        framed = Image.new("RGB", (picture.width, picture.height + strip), "white")
        framed.paste(picture, (0, 0))
        pen = ImageDraw.Draw(framed)
        font = ImageFont.load_default(size=14)
        width = pen.textlength(legend, font=font)
        pen.text(((picture.width - width) / 2, picture.height + 4), legend, fill="black", font=font)
        picture = framed
    # 96 colours keep the contours and cut the file to a third: a report draws up to 120 of them
    out = io.BytesIO()
    picture.quantize(colors=96, method=Image.Quantize.MEDIANCUT).save(out, format="PNG", optimize=True)
    return out.getvalue()
