"""Molecules (``data.kind: molecule``): SMILES tables, SDF files and SMILES lists, for drug research.

Compounds are read and standardised with RDKit (largest fragment, neutralised, canonical SMILES), split by
Bemis–Murcko scaffold by default (duplicates of a compound always in one split), and given to the network as
packed graphs (atoms and bonds; :mod:`meddl.models.graph`) or Morgan fingerprints (``fingerprint_mlp``). The
classical baselines — a random forest and a linear model — see Morgan fingerprints (ECFP4, 2,048 bits).
Explanations are integrated gradients per atom, drawn on the 2-D structure.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch

from meddl.data.split import SPLITS, group_assignments, split_assignments
from meddl.errors import MedDLError
from meddl.evaluate.robustness import Corruption
from meddl.explain.molecules import atom_integrated_gradients, fingerprint_atom_attributions, molecule_png
from meddl.io.molecules import MOLECULE_SUFFIXES, MoleculeRecord, parse_smiles, read_molecules, standardise
from meddl.modalities.base import Log, Modality, ModalityExample, PredictionInputs, Prepared, encode_labels
from meddl.modalities.registry import register
from meddl.modalities.requests import molecules_request
from meddl.modalities.schema import ExperimentConfig
from meddl.modalities.sections.molecule import MoleculeDataConfig, MoleculePreprocessConfig
from meddl.preprocess.molecules import (
    ATOM_FEATURES,
    BOND_FEATURES,
    EDGE_COLUMNS,
    descriptors,
    graph_size,
    morgan_bits,
    pack_graphs,
    packed_width,
    scaffold,
)

__all__ = ["MoleculeModality"]

MAX_DRAWN = 120  # test molecules drawn with their atom attributions in the report (FreeSolv: all 65)
EDGES_PER_ATOM = 3  # directed bonds the layout holds per atom: 2 × bonds ≤ 3 × atoms for every ring system


@register
class MoleculeModality(Modality):
    """Compounds in, a property or activity out, with the atoms that drove it."""

    kind = "molecule"
    title = "Molecule"
    explain_title = "Atom attributions"
    usage: ClassVar[dict[str, str]] = {
        "data": "compounds.csv",
        "input": (
            "Give compounds as a CSV/TSV with the SMILES column the model was trained with, an SDF, or a .smi list; "
            "each is standardised (largest fragment, neutralised) as in training."
        ),
        "python": '"compounds.csv"',
    }
    upload_suffixes = (".csv", ".tsv", ".sdf", ".smi")
    request_style = "text"  # the clinicians' page: one text box (input_schema.text_field), sent as JSON
    json_route = "predict_molecules"  # /predict takes a file of compounds; these take SMILES as text
    request_items = "molecules"

    def __init__(self, config: ExperimentConfig) -> None:
        super().__init__(config)
        assert isinstance(config.data, MoleculeDataConfig) and isinstance(config.preprocess, MoleculePreprocessConfig)
        self.data: MoleculeDataConfig = config.data
        self.prep: MoleculePreprocessConfig = config.preprocess
        self.derived_: dict[str, dict[str, Any]] = {}
        self.fitted = False  # rebuilt from a bundle: data is read to be scored (external evaluation), not split

    @property
    def graph(self) -> bool:
        """Whether the network takes packed graphs (``mpnn``, ``gat``) rather than fingerprints."""
        return self.config.model.arch != "fingerprint_mlp"

    @property
    def max_atoms(self) -> int:
        assert self.prep.max_atoms is not None, "the graph size is known once the molecules are read"
        return self.prep.max_atoms

    @property
    def max_edges(self) -> int:
        return EDGES_PER_ATOM * self.max_atoms

    @property
    def targets(self) -> list[str]:
        return list(self.data.target) if isinstance(self.data.target, list) else [self.data.target]

    @classmethod
    def example(cls, folder: Path) -> ModalityExample:
        from meddl.data.molecule_synth import synthetic_molecules

        folder.mkdir(parents=True, exist_ok=True)
        frame = synthetic_molecules(240, seed=0)
        frame.iloc[:200].to_csv(folder / "molecules.csv", index=False)
        frame.iloc[200:].to_csv(folder / "external.csv", index=False)
        frame.iloc[200:206][["id", "smiles"]].to_csv(folder / "new.csv", index=False)
        frame.iloc[206:209][["id", "smiles"]].to_csv(folder / "explain.csv", index=False)
        experiment = {
            "name": "example-molecule",
            "task": "regression",
            "data": {"kind": "molecule", "path": "molecules.csv", "smiles": "smiles", "target": "logp"},
            "model": {"arch": "mpnn", "hidden": 32, "depth": 2},
            "train": {"epochs": 3, "batch_size": 32, "seed": 0, "progress": False},
            "evaluate": {"bootstrap": 20},
        }
        return ModalityExample(experiment, folder / "new.csv", folder / "explain.csv", folder / "external.csv")

    # -- reading --------------------------------------------------------------------------------------
    def _read(self, path: Path, *, labelled: bool) -> tuple[list[MoleculeRecord], dict[str, int], list[str]]:
        """The readable records of ``path``, standardised (``record.mol``, ``record.smiles`` canonical), what
        standardisation changed, and a note per skipped record (``on_bad_record: skip``)."""
        records = read_molecules(
            path,
            smiles_column=self.data.smiles,
            id_column=self.data.id_column if labelled else None,
            needed=tuple(self.targets) if labelled else (),
        )
        kept, skipped, repairs = [], [], {"salt or solvent removed": 0, "charges neutralised": 0}
        for record in records:
            problem = record.problem or self._too_big(record.mol)
            if problem:
                message = f"{path.name}, {record.where}: {problem}"
                if self.data.on_bad_record == "error":
                    raise MedDLError(f"{message}; correct the record or set data.on_bad_record: skip")
                skipped.append(message)
                continue
            record.mol, record.smiles, changes = standardise(record.mol)
            for change in changes:
                repairs[change] += 1
            kept.append(record)
        return kept, repairs, skipped

    def _too_big(self, mol: Any) -> str:
        """Why ``mol`` does not fit the graph layout ("" when it does, or when the model reads fingerprints)."""
        if self.prep.max_atoms is None or mol is None or not self.graph:
            return ""
        atoms, edges = graph_size(mol)
        if atoms > self.max_atoms or edges > self.max_edges:
            return (
                f"{atoms} heavy atoms and {edges // 2} bonds; this model holds at most {self.max_atoms} atoms "
                f"(preprocess.max_atoms) and {self.max_edges // 2} bonds"
            )
        return ""

    def _size_from(self, mols: list[Any]) -> None:
        """``preprocess.max_atoms`` from the molecules read: 1.5 × the largest, rounded up to a multiple of 8."""
        if self.prep.max_atoms is not None:
            return
        largest = max(graph_size(m)[0] for m in mols)
        size = int(np.ceil(1.5 * largest / 8) * 8)
        self.prep.max_atoms = size  # into the config, so the bundle's config.yaml reproduces the run
        self.derived_["preprocess.max_atoms"] = {
            "value": size,
            "why": f"the largest molecule read has {largest} heavy atoms; 1.5 × that leaves room for new compounds",
        }

    def _labels(self, records: list[MoleculeRecord], source: str) -> tuple[np.ndarray, list[str], np.ndarray]:
        """Encoded targets and which records have them. Multilabel: each column 0/1, or empty where that assay was
        not run on the compound (kept as NaN: the loss and every metric leave it out); a compound with no result
        at all is left out and counted."""
        if self.config.task != "multilabel":
            values = pd.Series([r.fields.get(self.targets[0]) for r in records], dtype=object)
            return encode_labels(values, self.config, source)
        target = np.full((len(records), len(self.targets)), np.nan, dtype=np.float32)
        for j, column in enumerate(self.targets):
            for i, record in enumerate(records):
                raw = record.fields.get(column)
                if raw is None or (isinstance(raw, float) and np.isnan(raw)) or str(raw).strip() == "":
                    continue  # not measured
                value = pd.to_numeric(pd.Series([raw]), errors="coerce").iloc[0]
                if value not in (0, 1):
                    raise MedDLError(
                        f"{source}, {record.where}: label {column!r} is {raw!r}; multilabel columns hold 0 or 1, "
                        "or nothing where the assay was not run"
                    )
                target[i, j] = float(value)
        for j, column in enumerate(self.targets):
            seen = target[:, j][~np.isnan(target[:, j])]
            if len(np.unique(seen)) < 2:
                raise MedDLError(
                    f"{source}: label {column!r} has {len(seen)} result(s), all {int(seen[0]) if len(seen) else '-'}; "
                    "each assay needs both outcomes among its compounds"
                )
        has_label = np.asarray(~np.isnan(target).all(axis=1), dtype=bool)
        return target[has_label], list(self.targets), has_label

    def load(self, log: Log) -> Prepared:
        path = self.data.path
        records, repairs, skipped = self._read(path, labelled=True)
        if not records:
            raise MedDLError(f"{path}: no compound could be read")
        target, classes, has_label = self._labels(records, path.name)
        records = [r for r, keep in zip(records, has_label, strict=True) if keep]
        mols = [r.mol for r in records]
        self._size_from(mols)
        smiles = [r.smiles for r in records]
        scaffolds = [scaffold(m) for m in mols]
        duplicates, conflicting = _duplicates(smiles, target)
        method = self.data.split.method
        groups = np.array(scaffolds if method == "scaffold" else smiles, dtype=object)
        groups = np.where(groups == "", "(acyclic)", groups) if method == "scaffold" else groups
        splits = None if self.fitted else self._split(target, classes, groups, path.name)
        log(
            f"{len(records)} compounds ({len(set(scaffolds))} scaffolds, {duplicates} duplicate(s)); "
            f"{method} split; graphs of up to {self.max_atoms} atoms"
        )
        notes = [
            f"{len(records) + len(skipped) + int((~has_label).sum())} records read from {path.name}; standardised "
            "with RDKit (largest fragment, neutralised, canonical SMILES)",
            f"split by {_SPLIT_WORDS[method]}; duplicates of a compound after standardisation stay in one split",
        ]
        if duplicates:
            notes.append(
                f"{duplicates} record(s) repeat an earlier compound after standardisation"
                + (f"; {conflicting} of these compounds carry different labels" if conflicting else "")
            )
        if self.config.task == "multilabel" and np.isnan(target).any():
            notes.append(
                f"{int(np.isnan(target).sum())} of {target.size} assay results not measured: left out of the loss, "
                "the metrics and the conformal calibration, never guessed"
            )
        notes += skipped[:20] + ([f"… and {len(skipped) - 20} more skipped records"] if len(skipped) > 20 else [])
        inputs = self._inputs(mols)
        return Prepared(
            inputs=inputs,
            target=target,
            classes=classes,
            sample_ids=[r.id for r in records],
            # the unit of resampling and of the calibration split is the compound (its duplicates together); the
            # scaffold grouping only shapes the split itself
            patient_ids=np.asarray(smiles, dtype=str),
            n_read=len(records) + len(skipped) + int((~has_label).sum()),
            dropped={"unreadable SMILES or structure": len(skipped), "missing label": int((~has_label).sum())},
            repairs=repairs,
            notes=notes,
            given_splits=splits,
            sections=[_scaffold_section(scaffolds, splits, method)] if splits is not None else [],
            extra={
                "mols": mols,
                "smiles": smiles,
                "scaffolds": scaffolds,
            },
        )

    def _split(self, target: np.ndarray, classes: list[str], groups: np.ndarray, source: str) -> np.ndarray:
        """Train / validation / test by scaffold, by compound at random, or stratified by label (by compound)."""
        split, task, seed = self.data.split, self.config.task, self.config.train.seed
        fractions = (split.train, split.validation, split.test)
        if split.method == "stratified":
            # multilabel: by whether any assay is positive (a missing result counts as not positive)
            strata = (np.nan_to_num(target) > 0).any(axis=1).astype(np.int64) if task == "multilabel" else target
            splits = split_assignments(
                strata,
                task="binary" if task == "multilabel" else task,
                fractions=fractions,
                patient_ids=groups,
                seed=seed,
                source=source,
            )
        else:
            splits = group_assignments(
                groups, fractions=fractions, seed=seed, balanced=split.method == "scaffold", source=source
            )
        if task in {"binary", "multiclass"}:
            for code in np.unique(target):
                absent = [name for name in SPLITS if not ((splits == name) & (target == code)).any()]
                if absent:
                    raise MedDLError(
                        f"{source}: class {classes[int(code)]!r} would be absent from the {' and '.join(absent)} "
                        f"split of the {split.method} split; use data.split.method: stratified, or another train.seed"
                    )
        return splits

    def _inputs(self, mols: list[Any]) -> np.ndarray:
        if self.graph:
            return pack_graphs(mols, self.max_atoms, self.max_edges)
        return self._fingerprints(mols)

    def _fingerprints(self, mols: list[Any]) -> np.ndarray:
        return morgan_bits(mols, self.prep.fingerprint_radius, self.prep.fingerprint_bits)

    # -- training ----------------------------------------------------------------------------------
    def model_arguments(self, inputs: Any) -> dict[str, int]:
        if self.graph:
            return {"max_atoms": self.max_atoms, "atom_features": ATOM_FEATURES, "bond_features": BOND_FEATURES}
        return {"in_features": int(self.prep.fingerprint_bits)}

    def baseline_features(self, prepared: Prepared, inputs: Any) -> np.ndarray:
        """Morgan fingerprints (ECFP4 as configured): the features of MoleculeNet's random forest (a fingerprint
        network's own inputs; computed here, only when baselines run, for a graph network)."""
        return np.asarray(inputs) if not self.graph else self._fingerprints(prepared.extra["mols"])

    def corruptions(self) -> list[Corruption]:
        """Graph models: bonds missing from the structure (a drawing or a conversion that lost bonds); fingerprint
        models: set bits cleared (substructures lost)."""
        if not self.graph:
            return [
                Corruption(
                    "bits_cleared",
                    "Set fingerprint bits cleared at random (substructures missing from the record)",
                    "share of set bits cleared",
                    (0.05, 0.1, 0.2),
                    _clear_bits,
                )
            ]
        max_atoms = self.max_atoms
        return [
            Corruption(
                "bonds_lost",
                "Bonds missing from the structure at random (a drawing or a file conversion that lost them)",
                "share of bonds removed",
                (0.05, 0.1, 0.2),
                lambda x, rate, rng: _drop_bonds(x, rate, rng, max_atoms),
            )
        ]

    # -- shift -----------------------------------------------------------------------------------------
    def profile(self, prepared: Prepared, index: np.ndarray) -> dict[str, np.ndarray]:
        """Per compound: heavy atoms, weight, logP, TPSA, rings, H-bond donors and acceptors."""
        return descriptors([prepared.extra["mols"][i] for i in index])

    def case_profile(self, cases: PredictionInputs) -> dict[str, np.ndarray]:
        return descriptors(cases.extra["mols"])

    def data_summary(self, prepared: Prepared, splits: np.ndarray) -> dict[str, Any]:
        scaffolds = np.asarray(prepared.extra["scaffolds"], dtype=object)
        return {
            "split_method": self.data.split.method,
            "scaffolds": {str(name): len(set(scaffolds[splits == name])) for name in np.unique(splits)},
        }

    # -- explanations -------------------------------------------------------------------------------
    def _logits(self, scores: np.ndarray) -> np.ndarray | None:
        """The output explained per case: the predicted class (multiclass), the first label (multilabel), the
        only output otherwise."""
        if self.config.task == "multiclass" and scores.ndim == 2:
            return np.argmax(scores, axis=1).astype(np.int64)
        if self.config.task == "multilabel":
            return np.zeros(len(scores), dtype=np.int64)
        return None

    def atom_scores(self, model: torch.nn.Module, inputs: np.ndarray, mols: list[Any], scores: np.ndarray) -> list:
        """Per molecule, each heavy atom's attribution to its explained output (see :meth:`_logits`)."""
        model = model.cpu().eval()
        target = self._logits(scores)
        if self.graph:
            per_atom = atom_integrated_gradients(model, inputs, self.max_atoms, target=target)
            return [per_atom[i, : m.GetNumAtoms()] for i, m in enumerate(mols)]
        return fingerprint_atom_attributions(model, inputs, mols, self.prep.fingerprint_radius, target=target)

    def _legend(self, score: Any, classes: list[str] | None = None) -> str:
        """What a drawing says about its prediction: the value, or the explained class and its probability."""
        if self.config.task == "regression":
            return f"predicted {float(score):.3g}"
        classes = classes if classes is not None else list(self.info.get("classes") or [])
        if self.config.task == "multiclass":
            k = int(np.argmax(score))
            name = classes[k] if k < len(classes) else f"class {k}"
            return f"p({name}) = {float(np.max(score)):.2f}"
        name = classes[1] if self.config.task == "binary" and len(classes) == 2 else (classes[:1] or ["yes"])[0]
        return f"p({name}) = {float(np.ravel(score)[0]):.2f}"

    def explain(
        self,
        model: torch.nn.Module,
        prepared: Prepared,
        inputs: Any,
        test_index: np.ndarray,
        scores: np.ndarray,
        out: Path,
    ) -> dict[str, Any]:
        rows = test_index[:MAX_DRAWN]
        mols = [prepared.extra["mols"][i] for i in rows]
        per_atom = self.atom_scores(model, np.asarray(inputs)[rows], mols, scores[: len(rows)])
        figures = []
        for j, i in enumerate(rows):
            legend = self._legend(scores[j], prepared.classes)
            png = molecule_png(mols[j], per_atom[j], legend=legend, size=260)
            truth = prepared.target[i]
            figures.append(
                {
                    "title": f"{prepared.sample_ids[i]}: {prepared.extra['smiles'][i]}",
                    "caption": f"{legend}; observed {_label_text(truth, prepared.classes)}",
                    "png": base64.b64encode(png).decode("ascii"),
                }
            )
        shown = f"all {len(rows)}" if len(rows) == len(test_index) else f"the first {len(rows)} of {len(test_index)}"
        what = "atom features" if self.graph else "Morgan fingerprint bits, each bit shared among its atoms"
        section = {
            "id": "atom-attributions",
            "title": "Atom attributions",
            "text": [
                f"Integrated gradients on the {what}, for {shown} test compounds. Green contours mark atoms that "
                "raise the model's output, pink ones atoms that lower it (drawn on one scale per molecule)."
            ],
            "figures": figures,
        }
        return {"sections": [section], "explanations": {"atoms_drawn": len(rows)}}

    # -- bundle ---------------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {
            "max_atoms": self.prep.max_atoms,
            "max_edges": self.max_edges,
            "atom_features": ATOM_FEATURES,
            "bond_features": BOND_FEATURES,
            "edge_columns": EDGE_COLUMNS,
            "preprocess": self.prep.model_dump(mode="json"),
        }

    @classmethod
    def from_state(cls, config: ExperimentConfig, state: dict[str, Any]) -> MoleculeModality:
        modality = cls(config)
        if (state.get("atom_features"), state.get("bond_features")) != (ATOM_FEATURES, BOND_FEATURES):
            raise MedDLError(
                f"this bundle's molecules have {state.get('atom_features')} atom and {state.get('bond_features')} "
                f"bond features; this MedDL computes {ATOM_FEATURES} and {BOND_FEATURES}: retrain the model"
            )
        modality.prep.max_atoms = int(state["max_atoms"])
        modality.fitted = True
        return modality

    # -- prediction ---------------------------------------------------------------------------------
    def _cases(self, ids: list[str], wheres: list[str], given: list[str], mols: list[Any], problems: list[str]):
        """PredictionInputs of parsed compounds (``mols[i]`` None where ``problems[i]`` says why)."""
        usable = np.zeros(len(ids), dtype=bool)
        notes, smiles, kept = [], [], []
        for i, mol in enumerate(mols):
            problem = problems[i] or self._too_big(mol)
            if problem:
                notes.append(problem)
                smiles.append(given[i])
                continue
            mol, canonical, changes = standardise(mol)
            usable[i] = True
            notes.append("; ".join(changes))
            smiles.append(canonical)
            kept.append(mol)
        return PredictionInputs(
            inputs=self._inputs(kept) if kept else np.zeros((0, *self._input_shape()), dtype=np.float32),
            ids=ids,
            notes=notes,
            usable=usable,
            extra={"mols": kept},
            columns={"id": ids, "record": wheres, "smiles": smiles},
        )

    def _input_shape(self) -> tuple[int, ...]:
        if self.graph:
            return (self.max_atoms + self.max_edges, packed_width())
        return (int(self.prep.fingerprint_bits),)

    def read_for_prediction(self, source: Any) -> PredictionInputs:
        path = Path(source)
        records = read_molecules(path, smiles_column=self.data.smiles)
        id_column = self.data.id_column
        ids = [str(r.fields[id_column]) if id_column and id_column in r.fields else r.id for r in records]
        return self._cases(
            ids,
            [r.where for r in records],
            [r.smiles for r in records],
            [r.mol if not r.problem else None for r in records],
            [r.problem for r in records],
        )

    def request_schema(self) -> dict[str, Any]:
        return {
            **super().request_schema(),
            "formats": list(MOLECULE_SUFFIXES),
            "json": (
                'application/json to predict_molecules / explain_molecules: {"molecules": [{"id": …, "smiles": …}]}'
            ),
            "text_field": {
                "items": "molecules",
                "field": "smiles",
                "label": "SMILES",
                "example": "CC(=O)Oc1ccccc1C(=O)O",
            },
        }

    @staticmethod
    def clean_smiles(value: str) -> str:
        """A SMILES as given, stripped; ``ValueError`` with RDKit's reason when it cannot be read."""
        mol, problem = parse_smiles(value)
        if mol is None:
            raise ValueError(problem)
        return str(value).strip()

    def request_model(self) -> Any:
        return molecules_request(self.clean_smiles)

    def read_request(self, body: Any) -> PredictionInputs:
        ids = [case.id for case in body.molecules]
        given = [case.smiles for case in body.molecules]
        parsed = [parse_smiles(s) for s in given]
        return self._cases(
            ids, [f"molecules[{i}]" for i in range(len(ids))], given, [m for m, _ in parsed], [p for _, p in parsed]
        )

    def explain_request(self, model: torch.nn.Module, cases: PredictionInputs, scores: np.ndarray) -> list[dict]:
        """Per case, in the request's order: its standardised SMILES, each heavy atom's attribution (RDKit atom
        order) and the drawing; nothing for a case that could not be scored (its note says why)."""
        mols = cases.extra["mols"]
        per_atom = self.atom_scores(model, cases.inputs, mols, scores) if mols else []
        smiles = np.asarray(cases.columns["smiles"], dtype=object)[cases.usable]
        drawn = iter(
            {
                "smiles": str(smiles[j]),
                "atom_attributions": [float(v) for v in per_atom[j]],
                "molecule_png": base64.b64encode(
                    molecule_png(mols[j], per_atom[j], legend=self._legend(scores[j]))
                ).decode("ascii"),
            }
            for j in range(len(mols))
        )
        return [next(drawn) if usable else {} for usable in cases.usable]

    def explain_cases(
        self, model: torch.nn.Module, cases: PredictionInputs, scores: np.ndarray, out: Path | None
    ) -> list[str]:
        """A PNG per compound: the structure with each atom's attribution."""
        assert out is not None, "explanation files need a folder (Bundle.predict_cases checks it)"
        mols = cases.extra["mols"]
        per_atom = self.atom_scores(model, cases.inputs, mols, scores)
        written = []
        for j, case_id in enumerate(np.asarray(cases.ids)[cases.usable]):
            target = out / f"{j:05d}_{_safe(str(case_id))}.png"
            target.write_bytes(molecule_png(mols[j], per_atom[j], legend=f"{case_id}: {self._legend(scores[j])}"))
            written.append(str(target))
        return written


_SPLIT_WORDS = {
    "scaffold": "Bemis–Murcko scaffold (every scaffold in one split; large scaffold groups in training)",
    "random": "compound, at random",
    "stratified": "compound, stratified by the label",
}


def _duplicates(smiles: list[str], target: np.ndarray) -> tuple[int, int]:
    """Records that repeat an earlier compound, and compounds whose repeats carry different labels."""
    frame = pd.DataFrame({"smiles": smiles, "label": [str(t) for t in target]})
    repeated = int(frame["smiles"].duplicated().sum())
    conflicting = int((frame.groupby("smiles")["label"].nunique() > 1).sum())
    return repeated, conflicting


def _scaffold_section(scaffolds: list[str], splits: np.ndarray, method: str) -> dict[str, Any]:
    """The report's table of compounds and distinct scaffolds per split, and how many test scaffolds training saw."""
    values = np.asarray(scaffolds, dtype=object)
    train = set(values[splits == "train"])
    rows = []
    for name in SPLITS:
        here = set(values[splits == name])
        seen = "—" if name == "train" else f"{len(here & train)} of {len(here)}"
        rows.append([name, int((splits == name).sum()), len(here), seen])
    return {
        "id": "scaffolds",
        "title": "Scaffolds per split",
        "text": [
            f"Split by {_SPLIT_WORDS[method]}. A Bemis–Murcko scaffold is a compound's ring systems and the chains "
            "linking them; a test compound whose scaffold training never saw is the harder, more honest test "
            "of a model meant for new chemistry. Acyclic compounds share one empty scaffold."
        ],
        "table": {"columns": ["Split", "Compounds", "Scaffolds", "Scaffolds also in training"], "rows": rows},
    }


def _label_text(truth: Any, classes: list[str]) -> str:
    if classes and np.ndim(truth) == 0:
        return str(classes[int(truth)])
    if np.ndim(truth):
        values = np.ravel(truth)
        shown = [c for c, v in zip(classes, values, strict=False) if v == 1] or ["none"]
        missing = [c for c, v in zip(classes, values, strict=False) if np.isnan(v)]
        return ", ".join(shown) + (f" (not measured: {', '.join(missing)})" if missing else "")
    return f"{float(truth):.3g}"


def _drop_bonds(x: np.ndarray, rate: float, rng: np.random.Generator, max_atoms: int) -> np.ndarray:
    """Packed graphs with a share ``rate`` of their bonds removed (both directions)."""
    out = np.array(x, copy=True)
    edges = out[:, max_atoms:]
    pairs = edges[:, 0::2, 0] > 0  # directed bonds come in pairs: 2b and 2b + 1
    drop = pairs & (rng.random(pairs.shape) < rate)
    edges[:, 0::2][drop] = 0.0
    edges[:, 1::2][drop] = 0.0
    return out


def _clear_bits(x: np.ndarray, rate: float, rng: np.random.Generator) -> np.ndarray:
    out = np.array(x, copy=True)
    out[(out > 0) & (rng.random(out.shape) < rate)] = 0.0
    return out


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:60]
