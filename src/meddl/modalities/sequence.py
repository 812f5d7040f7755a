"""DNA sequences (``data.kind: sequence``): FASTA, a sequence table, or BED intervals cut from a reference.

Bases become one-hot (4 × L) or k-mer tokens; training sees random reverse complements and shifts; prediction
averages both strands. Explanations are integrated gradients per base, high-attribution segments clustered into
motifs, and each motif's best JASPAR matches; ``meddl predict --variants`` scores REF and ALT alleles of a VCF.
"""

from __future__ import annotations

import base64
import itertools
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from meddl.errors import MedDLError
from meddl.evaluate.robustness import Corruption, mutate_kmer_tokens, mutate_one_hot, shift_along_axis
from meddl.evaluate.shift import describe
from meddl.explain.sequences import (
    discover_motifs,
    find_seqlets,
    focus_window,
    integrated_gradients_sequence,
    logo_png,
    match_jaspar,
    per_base_contributions,
    token_attributions,
)
from meddl.io.sequences import (
    ALLOWED_BASES,
    SequenceRecord,
    cut_intervals,
    first_invalid_base,
    header_labels,
    read_bed,
    read_fasta,
    read_sequence_table,
)
from meddl.io.tables import read_table
from meddl.modalities.base import (
    Log,
    Modality,
    ModalityExample,
    PredictionInputs,
    Prepared,
    batched_outputs,
    encode_labels,
)
from meddl.modalities.registry import register
from meddl.modalities.requests import sequences_request
from meddl.modalities.schema import ExperimentConfig
from meddl.modalities.sections.sequence import SequenceDataConfig, SequencePreprocessConfig
from meddl.preprocess.sequences import (
    AugmentedSequences,
    KmerTokenizer,
    SequenceEncoder,
    baseline_sequence_features,
    fit_length,
    kmer_spectrum,
    one_hot,
    reverse_complement_one_hot,
    sequence_length_choice,
)

__all__ = ["SequenceModality", "sequence_format"]

FASTA_SUFFIXES = (".fa", ".fasta", ".fna", ".fa.gz", ".fasta.gz", ".fna.gz")
MAX_EXPLAINED = 400  # test sequences attributed for motif discovery
N_LOGOS = 6
MIN_SUPPORT_SHARE = 0.02  # a motif must gather at least 2 % of the seqlets to be reported


def sequence_format(path: Path, declared: str = "auto") -> str:
    """``fasta``, ``bed`` or ``table`` from the declared format or the file name."""
    if declared != "auto":
        return declared
    name = path.name.lower()
    if name.endswith(FASTA_SUFFIXES):
        return "fasta"
    if name.endswith((".bed", ".bed.gz")):
        return "bed"
    return "table"


@register
class SequenceModality(Modality):
    """DNA sequences in, a call out, with the bases and motifs that drove it."""

    kind = "sequence"
    usage: ClassVar[dict[str, str]] = {
        "data": "sequences.fa",
        "input": (
            "Give DNA sequences as FASTA, a CSV/TSV with id and sequence columns, or BED intervals with the "
            "reference genome; each sequence is fitted to the model's window."
        ),
        "python": '"sequences.fa"',
    }
    title = "DNA sequence"
    explain_title = "Motifs"
    upload_suffixes = (*FASTA_SUFFIXES[:5], ".csv", ".tsv", ".bed")
    json_route = "predict_sequences"  # /predict takes a FASTA or table upload; these take sequences as text
    request_items = "sequences"

    def __init__(self, config: ExperimentConfig) -> None:
        super().__init__(config)
        assert isinstance(config.data, SequenceDataConfig) and isinstance(config.preprocess, SequencePreprocessConfig)
        self.data: SequenceDataConfig = config.data
        self.prep: SequencePreprocessConfig = config.preprocess
        self.derived_: dict[str, dict[str, Any]] = {}
        if self.prep.length is not None:
            self._window(self.window)

    @property
    def window(self) -> int:
        """The window every sequence is fitted to (bases): given, or taken from the data by :meth:`load`."""
        assert self.prep.length is not None, "the window is known once the sequences are read"
        return self.prep.length

    def _window(self, length: int, why: str | None = None) -> None:
        """Fix the window every sequence is fitted to (``why``: it came from the data, not the experiment file)."""
        self.prep.length = int(length)  # into the config, so the bundle's config.yaml reproduces the run
        self.encoder = SequenceEncoder(
            encoding=self.prep.encoding, length=self.prep.length, k=self.prep.k, ambiguous=self.prep.ambiguous
        )
        if why is not None:
            self.derived_["preprocess.length"] = {"value": int(length), "why": why}

    @classmethod
    def example(cls, folder: Path) -> ModalityExample:
        from meddl.data.motifs import planted_motif_dataset, write_planted_dataset

        paths = write_planted_dataset(folder, planted_motif_dataset(160, length=60, seed=0), formats=("fasta",))
        experiment = {
            "name": "example-sequence",
            "task": "binary",
            "data": {
                "kind": "sequence",
                "path": str(Path(paths["fasta"]).relative_to(folder)),
                "target": "label",
                "positive_label": 1,
            },
            "preprocess": {"length": 60},
            "model": {"arch": "sequence_cnn", "filters": [8], "kernel_sizes": [9], "hidden": 8},
            "train": {"epochs": 3, "batch_size": 32, "seed": 0, "progress": False},
            "evaluate": {"bootstrap": 20},
        }
        few = folder / "explain.fa"  # a few sequences: each gets an attribution logo
        records = Path(paths["fasta"]).read_text().split(">")[1:5]
        few.write_text("".join(">" + record for record in records))
        return ModalityExample(experiment, paths["fasta"], few, paths["fasta"])

    # -- reading ------------------------------------------------------------------------------------
    def _records(self, path: Path) -> tuple[list[SequenceRecord], pd.DataFrame | None]:
        """The sequences of ``path`` and, for a sequence table, the table itself (labels live in it)."""
        fmt = sequence_format(path, self.data.format)
        if fmt == "fasta":
            return read_fasta(path), None
        if fmt == "bed":
            if self.data.reference is None:
                raise MedDLError(f"{path}: BED intervals need data.reference (the genome FASTA to cut them from)")
            reference = self.data.reference
            if not reference.is_absolute():
                reference = (self.data.path.parent / reference).resolve()
            intervals = read_bed(path)
            if self.prep.length is None:  # the window from the intervals' widths, before they are cut
                self._window(*sequence_length_choice((intervals["end"] - intervals["start"]).to_numpy()))
            return cut_intervals(intervals, reference, self.window), None
        id_column = self.data.id_column
        table = read_table(path)
        id_given = id_column in table.columns
        label_column = self.data.target if self.data.target in table.columns else None
        frame = read_sequence_table(
            path,
            sequence_column=self.data.sequence_column,
            label_column=label_column,
            id_column=id_column if id_given else None,
            table=table,
        )
        if self.data.patient_id and self.data.patient_id in table.columns:
            frame["patient_id"] = table[self.data.patient_id].astype(str).to_numpy()
        records = [
            SequenceRecord(str(row.id), str(row.sequence), "", int(row.row)) for row in frame.itertuples(index=False)
        ]
        return records, frame

    def _labels(self, records: list[SequenceRecord], table: pd.DataFrame | None) -> tuple[pd.Series, pd.Series | None]:
        """Each record's label (index = record id) and patient id where given."""
        ids = [r.id for r in records]
        if table is not None and "label" in table.columns:
            patients = pd.Series(table["patient_id"].to_numpy(), index=ids) if "patient_id" in table else None
            return pd.Series(table["label"].to_numpy(), index=ids), patients
        if self.data.labels is None:
            labels = header_labels(records, key=self.data.target, source=self.data.path)
            return pd.Series([labels.get(i) for i in ids], index=ids, dtype=object), None
        labels_path = self.data.labels
        if not labels_path.is_absolute():
            labels_path = (self.data.path.parent / labels_path).resolve()
        frame = read_table(labels_path)
        for column in (self.data.id_column, self.data.target):
            if column not in frame.columns:
                raise MedDLError(f"{labels_path}: no column {column!r}; columns are {list(frame.columns)}")
        keys = frame[self.data.id_column].astype(str)
        duplicated = keys[keys.duplicated()]
        if not duplicated.empty:
            raise MedDLError(f"{labels_path}: record id {duplicated.iloc[0]!r} is listed twice")
        by_id = pd.Series(frame[self.data.target].to_numpy(), index=keys.to_numpy())
        patients = None
        if self.data.patient_id:
            if self.data.patient_id not in frame.columns:
                raise MedDLError(f"{labels_path}: no column {self.data.patient_id!r} (data.patient_id)")
            patients = pd.Series(frame[self.data.patient_id].astype(str).to_numpy(), index=keys.to_numpy())
            patients = patients.reindex(ids)
        return by_id.reindex(ids), patients

    def load(self, log: Log) -> Prepared:
        path = self.data.path
        records, table = self._records(path)
        labels, patients = self._labels(records, table)
        target, classes, has_label = encode_labels(labels, self.config, path.name)
        kept = [r for r, keep in zip(records, has_label, strict=True) if keep]
        lengths = np.array([len(r.sequence) for r in kept])
        if self.prep.length is None:  # lengths carry no label: all labelled sequences may set the window
            self._window(*sequence_length_choice(lengths))
        sequences = [fit_length(r.sequence, self.window) for r in kept]
        log(f"{len(kept)} labelled sequences (length {int(lengths.min())}–{int(lengths.max())} → {self.window})")
        notes = [
            f"{len(records)} sequences read from {path.name}; centre-cropped or N-padded to {self.window} bases; "
            f"encoding {self.prep.encoding}" + (f" (k = {self.prep.k})" if self.prep.encoding == "kmer" else ""),
        ]
        if self._one_hot and self.prep.reverse_complement:
            notes.append("reverse-complement augmentation in training; predictions average both strands")
        if self._one_hot and self.prep.max_shift:
            notes.append(f"random shifts of up to {self.prep.max_shift} bases in training")
        if not self._one_hot and (self.prep.reverse_complement or self.prep.max_shift):
            notes.append(
                "k-mer tokens: reverse-complement and shift augmentation apply to one-hot encodings only, so this "
                "model was trained and predicts on the given strand as is"
            )
        return Prepared(
            inputs=self.encoder.transform(sequences),
            target=target,
            classes=classes,
            sample_ids=[r.id for r in kept],
            patient_ids=patients[has_label].astype(str).to_numpy() if patients is not None else None,
            n_read=len(records),
            dropped={"missing label": int((~has_label).sum())},
            notes=notes,
            extra={"sequences": sequences, "lengths": lengths},
        )

    # -- training -------------------------------------------------------------------------------
    @property
    def _one_hot(self) -> bool:
        return self.prep.encoding == "onehot"

    def model_arguments(self, inputs: np.ndarray) -> dict[str, int]:
        if self._one_hot:
            return {"in_channels": 4}
        vocab_size = self.encoder.vocab_size
        assert vocab_size is not None, "a k-mer encoder knows its vocabulary"
        return {"vocab_size": int(vocab_size)}

    def dataset(self, inputs: np.ndarray, target: np.ndarray, *, train: bool) -> Dataset:
        if train and self._one_hot and (self.prep.reverse_complement or self.prep.max_shift):
            y = torch.from_numpy(np.asarray(target, dtype=np.float32 if self._float_target else np.int64))
            return AugmentedSequences(
                torch.from_numpy(np.ascontiguousarray(inputs)),
                y,
                rc_probability=0.5 if self.prep.reverse_complement else 0.0,
                max_shift=self.prep.max_shift,
                seed=self.config.train.seed,
            )
        return super().dataset(inputs, target, train=train)

    def outputs(self, model: torch.nn.Module, inputs: np.ndarray) -> np.ndarray:
        forward = batched_outputs(model, inputs)
        if not (self._one_hot and self.prep.reverse_complement):
            return forward
        reverse = batched_outputs(model, np.ascontiguousarray(reverse_complement_one_hot(inputs)))
        return (forward + reverse) / 2.0

    def corruptions(self) -> list[Corruption]:
        """On the encoded window (one-hot or k-mer tokens): point mutations of known bases (sequencing errors,
        variants) and a shift of the window (an imprecise interval), filled with unknown bases (N)."""
        if self._one_hot:
            unknown = 0.25 if self.prep.ambiguous == "uniform" else 0.0  # the encoding of N
            mutate = mutate_one_hot
        else:
            unknown = float(KmerTokenizer.UNK)  # a k-mer with an unknown base
            k = self.prep.k

            def mutate(x: np.ndarray, rate: float, rng: np.random.Generator) -> np.ndarray:
                return mutate_kmer_tokens(x, rate, rng, k=k)

        return [
            Corruption(
                "mutations",
                "Random point mutations of known bases (sequencing errors, variants)",
                "mutation rate per base",
                (0.01, 0.05, 0.1),
                mutate,
            ),
            Corruption(
                "shift",
                "The window shifted left or right at random (an imprecise interval); the bases shifted in are N",
                "shift in bases",
                tuple(float(b) for b in (2, 5, 10) if b < self.window),
                lambda x, b, rng: shift_along_axis(x, int(b), rng, fill=unknown),
            ),
        ]

    def baseline_features(self, prepared: Prepared, inputs: np.ndarray) -> np.ndarray:
        """The classical baseline's features: the 4-mer spectrum over real bases (padding and N count for nothing)
        beside the base at each position of the window (splice sites and other fixed-position signals)."""
        return baseline_sequence_features(prepared.extra["sequences"], self.window)

    # -- shift -----------------------------------------------------------------------------------------
    def profile(self, prepared: Prepared, index: np.ndarray) -> dict[str, np.ndarray]:
        """Per sequence: its length as read, GC content and 3-mer frequencies (the k-mer spectrum)."""
        sequences = [prepared.extra["sequences"][i] for i in index]
        measures = {"sequence length (bases)": np.asarray(prepared.extra["lengths"], dtype=float)[index]}
        measures["GC content"] = np.array([_gc_content(s) for s in sequences])
        spectrum = kmer_spectrum(sequences, k=3)  # (N, 64), real bases only
        for j, kmer in enumerate(KMER3):
            measures[f"3-mer {kmer}"] = spectrum[:, j]
        return measures

    def shift(self, prepared: Prepared) -> list[dict[str, Any]]:
        """Length and GC content (standardised mean difference) and the 3-mer spectrum (total variation distance
        between the mean spectra; its three most shifted 3-mers follow)."""
        rows = super().shift(prepared)
        kmers = [r for r in rows if r["column"].startswith("3-mer ")]
        rest = [r for r in rows if not r["column"].startswith("3-mer ")]
        train = self.info.get("training_profile") or self.training_profile_ or {}
        if kmers and train:
            new = describe(self.profile(prepared, np.arange(len(prepared.target))))
            names = [f"3-mer {k}" for k in KMER3 if f"3-mer {k}" in train and f"3-mer {k}" in new]
            p = np.array([train[n]["mean"] for n in names])
            q = np.array([new[n]["mean"] for n in names])
            tvd = 0.5 * float(np.abs(p / max(p.sum(), 1e-12) - q / max(q.sum(), 1e-12)).sum())
            rest.append(
                {
                    "column": "3-mer spectrum",
                    "kind": "distribution",
                    "train": f"{len(names)} 3-mers",
                    "new": f"{len(names)} 3-mers",
                    "score": tvd,
                    "measure": "total variation distance",
                }
            )
        return sorted(rest, key=lambda r: -r["score"]) + kmers[:3]

    # -- explanations -------------------------------------------------------------------------------
    def explained_logits(self, scores: np.ndarray) -> np.ndarray:
        """The logit each case's explanation is taken for: its predicted class (multiclass), else logit 0.

        Args:
            scores: (N,) positive-class probabilities or values, or (N, K) class probabilities.

        Returns:
            (N,) int64 logit indices.
        """
        if self.config.task == "multiclass" and scores.ndim == 2:
            return np.argmax(scores, axis=1).astype(np.int64)
        return np.zeros(len(scores), dtype=np.int64)

    def _contributions(
        self, model: torch.nn.Module, inputs: np.ndarray, sequences: list[str], logits: np.ndarray | None = None
    ) -> np.ndarray:
        """Per-base contribution (N, L) to each sequence's logit ``logits[i]`` (default: logit 0 for all, the
        positive class of a binary model): integrated gradients, summed over the one-hot channels (one-hot
        models) or spread from each k-mer token over the bases it covers (token models)."""
        model = model.cpu().eval()
        if logits is None:
            logits = np.zeros(len(inputs), dtype=np.int64)
        per_base = np.zeros((len(inputs), self.window), dtype=np.float32)
        for logit in np.unique(logits):
            rows = np.flatnonzero(logits == logit)
            if self._one_hot:
                # (n, 4, L), × (input − baseline)
                attributions = integrated_gradients_sequence(model, inputs[rows], target=int(logit))
                per_base[rows] = per_base_contributions(attributions)
                continue
            token_scores = token_attributions(model, inputs[rows], target=int(logit))  # (n, L - k + 1)
            k = self.prep.k
            for offset in range(k):
                per_base[rows, offset : offset + token_scores.shape[1]] += token_scores / k
        return per_base

    def explain(
        self,
        model: torch.nn.Module,
        prepared: Prepared,
        inputs: np.ndarray,
        test_index: np.ndarray,
        scores: np.ndarray,
        out: Path,
    ) -> dict[str, Any]:
        if self.config.task not in {"binary", "multiclass"}:
            return {}
        # Binary: the most confidently positive test sequences; multiclass: the most confident predictions, each
        # explained towards the class it was predicted.
        predicted = scores if scores.ndim == 1 else scores.max(axis=1)
        order = np.argsort(-predicted, kind="stable")[:MAX_EXPLAINED]
        rows = test_index[order]
        sequences = [prepared.extra["sequences"][i] for i in rows]
        bases = one_hot(sequences, self.window, ambiguous="zeros")
        contributions = self._contributions(model, inputs[rows], sequences, self.explained_logits(scores[order]))
        seqlets = find_seqlets(contributions, bases)
        clusters = discover_motifs(seqlets, seed=self.config.train.seed)
        # Clusters of a handful of seqlets are noise (chance high-attribution windows), not learned motifs.
        min_support = max(5, int(np.ceil(MIN_SUPPORT_SHARE * len(seqlets))))
        motifs = [m for m in clusters if m.support >= min_support]
        table_rows: list[list[Any]] = []
        found: list[dict[str, Any]] = []
        figures: list[dict[str, str]] = []
        for number, motif in enumerate(motifs, start=1):
            matches = match_jaspar(motif.pfm, top=3)
            best = matches[0] if matches else None
            found.append(
                {
                    "motif": number,
                    "support": int(motif.support),
                    "width": int(motif.pfm.shape[1]),
                    "matches": [
                        {"matrix_id": m.matrix_id, "name": m.name, "score": float(m.score), "strand": m.strand}
                        for m in matches
                    ],
                }
            )
            table_rows.append(
                [
                    number,
                    int(motif.support),
                    f"{best.name} ({best.matrix_id})" if best else "—",
                    f"{best.score:.2f}" if best else "—",
                    ", ".join(f"{m.name} ({m.score:.2f})" for m in matches[1:]) or "—",
                ]
            )
            if number <= N_LOGOS:
                png = logo_png(motif.pfm, title=f"motif {number}")
                label = f"best JASPAR match {best.name} ({best.matrix_id}), similarity {best.score:.2f}" if best else ""
                figures.append(
                    {
                        "title": f"Motif {number}",
                        "caption": f"{motif.support} seqlets; {label}",
                        "png": base64.b64encode(png).decode("ascii"),
                    }
                )
        examples = []
        for j in range(min(2, len(rows))):
            matrix = bases[j] * contributions[j][None, :]  # (4, L): the contribution drawn on each base
            window, start = focus_window(matrix)
            png = logo_png(
                window,
                title=f"test sequence {prepared.sample_ids[rows[j]]}, bases {start + 1}–{start + window.shape[1]}",
                kind="weight",
                first_position=start + 1,
            )
            examples.append(
                {
                    "title": f"Attribution logo: {prepared.sample_ids[rows[j]]}",
                    "caption": f"score {float(predicted[order[j]]):.2f}; integrated gradients per base",
                    "png": base64.b64encode(png).decode("ascii"),
                }
            )
        text = [
            f"Integrated gradients on the {len(rows)} test sequences the model scored highest; "
            f"{len(seqlets)} high-attribution segments (seqlets) clustered into {len(motifs)} motif(s) with at "
            f"least {min_support} seqlets each ({len(clusters) - len(motifs)} smaller cluster(s) not shown), each "
            "compared with every JASPAR CORE vertebrate matrix on both strands and all offsets (column "
            "correlation summed over the overlap, normalised by both widths: 1 = identical)."
        ]
        sections = [
            {
                "id": "motifs",
                "title": "Motifs the model learned",
                "text": text,
                "table": {
                    "columns": ["Motif", "Seqlets", "Best JASPAR match", "Similarity", "Next matches"],
                    "rows": table_rows,
                },
                "figures": figures + examples,
            }
        ]
        mean_abs = np.abs(contributions).mean(axis=0)
        return {
            "sections": sections,
            "metrics": {"n_seqlets": len(seqlets), "n_motifs": len(motifs), "motifs": found},
            "explanations": {},
            "position_importance": mean_abs.tolist(),
        }

    # -- bundle ---------------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {"encoder": self.encoder.to_state(), "preprocess": self.prep.model_dump(mode="json")}

    @classmethod
    def from_state(cls, config: ExperimentConfig, state: dict[str, Any]) -> SequenceModality:
        adapter = cls(config)
        adapter.encoder = SequenceEncoder.from_state(state["encoder"])
        return adapter

    def read_for_prediction(self, path: Path) -> PredictionInputs:
        records, _ = self._records(path)
        sequences = [fit_length(r.sequence, self.window) for r in records]
        notes = [
            "" if len(r.sequence) == self.window else f"length {len(r.sequence)} fitted to {self.window}"
            for r in records
        ]
        return PredictionInputs(
            inputs=self.encoder.transform(sequences),
            ids=[r.id for r in records],
            notes=notes,
            usable=np.ones(len(records), dtype=bool),
            extra={"sequences": sequences},
        )

    def request_schema(self) -> dict[str, Any]:
        return {
            **super().request_schema(),
            "json": (
                'application/json to predict_sequences / explain_sequences: {"sequences": [{"id": …, "sequence": …}]}'
            ),
        }

    # -- sequences sent as text (the server's predict_sequences) ------------------------------------------
    allowed_bases = ALLOWED_BASES

    @staticmethod
    def clean_sequence(value: str) -> str:
        """A pasted sequence as bases: whitespace removed, upper case; ``ValueError`` naming the first invalid base."""
        sequence = "".join(value.split()).upper()  # line breaks and spaces of a pasted sequence are not bases
        if not sequence:
            raise ValueError("the sequence is empty")
        invalid = first_invalid_base(sequence)
        if invalid is not None:
            position, character = invalid
            raise ValueError(
                f"invalid base {character!r} at position {position}; allowed are {ALLOWED_BASES} "
                "(IUPAC codes, case-insensitive)"
            )
        return sequence

    def request_model(self) -> Any:
        """``{"sequences": [{"id", "sequence"}]}`` accepting this model's bases (see
        :func:`~meddl.modalities.requests.sequences_request`)."""
        return sequences_request(self.allowed_bases, self.clean_sequence)

    def read_request(self, body: Any) -> PredictionInputs:
        """Sequences given as text, each fitted to the model's window (a note says when its length differed)."""
        ids, sequences = [case.id for case in body.sequences], [case.sequence for case in body.sequences]
        length = self.window
        windows = [fit_length(sequence, length) for sequence in sequences]
        notes = [
            "" if len(s) == length else f"length {len(s)} fitted to the model's {length}-base window" for s in sequences
        ]
        return PredictionInputs(
            inputs=self.encoder.transform(windows),  # (N, 4, L) one-hot or (N, L - k + 1) tokens
            ids=list(ids),
            notes=notes,
            usable=np.ones(len(windows), dtype=bool),
            extra={"sequences": windows},
        )

    def explain_request(self, model: torch.nn.Module, cases: PredictionInputs, scores: np.ndarray) -> list[dict]:
        """Per case: the ``window`` the model saw, integrated gradients per base of it (``attributions``, logit
        units, towards the predicted class of a multiclass model) and the attribution logo (``logo_png``)."""
        windows = cases.extra["sequences"]
        contributions = self._contributions(model, cases.inputs, windows, self.explained_logits(scores))
        bases = one_hot(windows, self.window, ambiguous="zeros")  # (N, 4, L)
        out = []
        for j, case_id in enumerate(cases.ids):
            drawn = bases[j] * contributions[j][None, :]  # (4, L): each base's contribution drawn on it
            out.append(
                {
                    "window": windows[j],
                    "attributions": [float(v) for v in contributions[j]],
                    "logo_png": base64.b64encode(_window_logo(drawn, str(case_id))).decode("ascii"),
                }
            )
        return out

    def score_variants(self, bundle: Any, vcf: Path, reference: Path | None = None) -> pd.DataFrame:
        from meddl.modalities.sequence_variants import score_variants

        return score_variants(bundle, vcf, reference)

    def explain_cases(
        self, model: torch.nn.Module, cases: PredictionInputs, scores: np.ndarray, out: Path | None
    ) -> list[str]:
        """An attribution logo PNG per sequence (integrated gradients per base)."""
        assert out is not None, "explanation files need a folder (Bundle.predict_cases checks it)"
        sequences = cases.extra["sequences"]
        contributions = self._contributions(model, cases.inputs, sequences, self.explained_logits(scores))
        bases = one_hot(sequences, self.window, ambiguous="zeros")
        written = []
        for j, case_id in enumerate(np.asarray(cases.ids)[cases.usable]):
            target = out / f"{j:05d}_{_safe(str(case_id))}.png"
            window, start = focus_window(bases[j] * contributions[j][None, :])
            title = f"{case_id}, bases {start + 1}–{start + window.shape[1]}"
            target.write_bytes(logo_png(window, title=title, kind="weight", first_position=start + 1))
            written.append(str(target))
        return written


KMER3 = ["".join(p) for p in itertools.product("ACGT", repeat=3)]  # kmer_spectrum's column order


def _gc_content(sequence: str) -> float:
    """The share of G and C among the A, C, G and T bases of ``sequence`` (NaN when it has none)."""
    upper = sequence.upper()
    acgt = sum(upper.count(b) for b in "ACGT")
    return (upper.count("G") + upper.count("C")) / acgt if acgt else float("nan")


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:60]


def _window_logo(matrix: np.ndarray, name: str) -> bytes:
    """The attribution logo of one sequence around its strongest region, positions on the axis."""
    window, start = focus_window(matrix)
    return logo_png(
        window, title=f"{name}, bases {start + 1}–{start + window.shape[1]}", kind="weight", first_position=start + 1
    )
