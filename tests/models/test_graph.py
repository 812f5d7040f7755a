"""Graph networks on packed molecules: output shapes, the same output however much padding and whatever the atom
order, gradients reaching every weight and the atom features, the fingerprint MLP, and a packed layout that a bad
input cannot index out of."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from rdkit import Chem

from meddl.models.graph import EDGE_COLUMNS, DirectedMPNN, FingerprintMLP, GraphAttentionNetwork, unpack
from meddl.models.registry import build_model
from meddl.preprocess.molecules import (
    ATOM_FEATURES,
    BOND_FEATURES,
    graph_size,
    morgan_bits,
    pack_graphs,
    packed_width,
)

SMILES = ["CCO", "c1ccccc1O", "CC(=O)Nc1ccc(O)cc1", "O=C(O)c1ccc(Cl)s1", "C1CCN(C(=O)C(F)(F)F)CC1", "N#CCCBr"]
GRAPH_ARCHS = {"mpnn": {"hidden": 24, "depth": 3}, "gat": {"hidden": 24, "layers": 2, "heads": 4}}


def _mols(smiles: list[str] = SMILES) -> list[Chem.Mol]:
    return [Chem.MolFromSmiles(s) for s in smiles]


def _packed(mols: list[Chem.Mol], max_atoms: int) -> torch.Tensor:
    return torch.from_numpy(pack_graphs(mols, max_atoms, 3 * max_atoms))


def _network(arch: str, max_atoms: int, out_features: int = 2, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    arguments = {"max_atoms": max_atoms, "atom_features": ATOM_FEATURES, "bond_features": BOND_FEATURES}
    return build_model(arch, GRAPH_ARCHS[arch], out_features=out_features, **arguments).eval()


def test_the_archs_are_registered() -> None:
    assert isinstance(_network("mpnn", 16), DirectedMPNN)
    assert isinstance(_network("gat", 16), GraphAttentionNetwork)
    fingerprint = build_model("fingerprint_mlp", {"hidden": [32]}, in_features=256, out_features=1)
    assert isinstance(fingerprint, FingerprintMLP)


def test_pack_graphs_layout() -> None:
    from meddl.preprocess import molecules

    assert molecules.EDGE_COLUMNS == EDGE_COLUMNS  # the packer and the networks read one layout
    mol = Chem.MolFromSmiles("CCO")
    packed = pack_graphs([mol], 4, 12)
    assert packed.shape == (1, 16, packed_width()) and packed.dtype == np.float32
    assert packed[0, :4, 0].tolist() == [1, 1, 1, 0]  # three atoms, one padding row
    edges = packed[0, 4:, :EDGE_COLUMNS]
    assert edges[:, 0].tolist() == [1, 1, 1, 1] + [0] * 8  # two bonds, both directions
    # (present, source, target, reverse): bond 0 is C0–C1, bond 1 is C1–O2
    assert edges[:4].tolist() == [[1, 0, 1, 1], [1, 1, 0, 0], [1, 1, 2, 3], [1, 2, 1, 2]]
    assert graph_size(mol) == (3, 4)
    with pytest.raises(ValueError, match="molecule 0 has 3 atoms and 4 directed bonds; the layout holds 2 and 12"):
        pack_graphs([mol], 2, 12)


@pytest.mark.parametrize("arch", sorted(GRAPH_ARCHS))
def test_output_shape_and_distinct_molecules_score_differently(arch: str) -> None:
    model = _network(arch, 24, out_features=3)
    with torch.no_grad():
        out = model(_packed(_mols(), 24))
    assert out.shape == (len(SMILES), 3) and torch.isfinite(out).all()
    # not a constant function (the invariance tests below would pass trivially for one)
    assert torch.cdist(out, out)[~torch.eye(len(SMILES), dtype=torch.bool)].min() > 1e-4


@pytest.mark.parametrize("arch", sorted(GRAPH_ARCHS))
def test_padding_does_not_change_the_output(arch: str) -> None:
    small, large = _network(arch, 16), _network(arch, 48, seed=1)
    large.load_state_dict(small.state_dict())  # the weights do not depend on the graph size
    mols = _mols()
    with torch.no_grad():
        tight, padded = small(_packed(mols, 16)), large(_packed(mols, 48))
    torch.testing.assert_close(tight, padded, atol=1e-5, rtol=1e-5)
    # one molecule alone or among others: the same output
    with torch.no_grad():
        alone = small(_packed(mols[2:3], 16))
    torch.testing.assert_close(alone, tight[2:3], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("arch", sorted(GRAPH_ARCHS))
def test_atom_order_does_not_change_the_output(arch: str) -> None:
    model = _network(arch, 24)
    mols = _mols()
    rng = np.random.default_rng(0)
    shuffled = [Chem.RenumberAtoms(m, [int(i) for i in rng.permutation(m.GetNumAtoms())]) for m in mols]
    assert any(  # the renumbering did reorder the atoms
        [a.GetSymbol() for a in m.GetAtoms()] != [a.GetSymbol() for a in s.GetAtoms()]
        for m, s in zip(mols, shuffled, strict=True)
    )
    with torch.no_grad():
        original, permuted = model(_packed(mols, 24)), model(_packed(shuffled, 24))
    torch.testing.assert_close(original, permuted, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("arch", sorted(GRAPH_ARCHS))
def test_gradients_reach_every_weight_and_only_real_atoms(arch: str) -> None:
    model = _network(arch, 24).train()
    x = _packed(_mols(), 24).requires_grad_(True)
    model(x).square().sum().backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None, name
        assert torch.isfinite(parameter.grad).all() and parameter.grad.abs().sum() > 0, name
    assert x.grad is not None
    atom_grad = x.grad[:, :24, 1 : 1 + ATOM_FEATURES]
    present = x[:, :24, 0].detach() > 0
    assert atom_grad[present].abs().sum(-1).min() > 0  # every real atom's features matter
    assert atom_grad[~present].abs().max() == 0  # padding atoms do not


def test_fingerprint_mlp_shape() -> None:
    bits = torch.from_numpy(morgan_bits(_mols(), radius=2, bits=512))
    assert bits.shape == (len(SMILES), 512) and set(bits.unique().tolist()) == {0.0, 1.0}
    torch.manual_seed(0)
    model = FingerprintMLP(512, 3, hidden=(32, 16), dropout=0.0).eval()
    with torch.no_grad():
        out = model(bits)
    assert out.shape == (len(SMILES), 3) and torch.isfinite(out).all()


def test_unpack_clamps_indices_out_of_range() -> None:
    max_atoms, max_edges = 8, 24
    torch.manual_seed(0)
    x = torch.randn(5, max_atoms + max_edges, packed_width()) * 1000  # indices far outside the molecule, negative
    _, _, _, _, source, target, reverse = unpack(x, max_atoms, ATOM_FEATURES, BOND_FEATURES)
    assert source.dtype == torch.int64 and source.shape == (5, max_edges)
    for index, top in ((source, max_atoms - 1), (target, max_atoms - 1), (reverse, max_edges - 1)):
        assert index.min() == 0 and index.max() == top  # the random values do cross both ends
    for arch in GRAPH_ARCHS:
        with torch.no_grad():
            out = _network(arch, max_atoms)(torch.randn(5, max_atoms + max_edges, packed_width()) * 50)
        assert out.shape == (5, 2) and torch.isfinite(out).all()
