"""DNA sequences as network inputs: one-hot (N, 4, L) or k-mer tokens (N, L − k + 1), and augmentation.

* Channel order is A, C, G, T everywhere, so reversing both the channel and the position axis of a one-hot
  array gives its reverse complement.
* Sequences of another length are centre-cropped or padded symmetrically with ``N`` (``fit_length``).
* Ambiguous bases: with ``ambiguous="uniform"`` an IUPAC code spreads its weight over the bases it stands for
  (R = A/G → 0.5, 0.5; B = C/G/T → ⅓ each; N → 0.25 each); with ``"zeros"`` its column is all zeros.
* ``KmerTokenizer``: a fixed vocabulary — ``[PAD]`` = 0, ``[UNK]`` = 1 (a k-mer with an ambiguity code), then
  the 4**k k-mers in lexicographic ACGT order (``AAA`` = 2, ``AAC`` = 3, …). Longer sequences are centre-cropped;
  shorter ones are left-aligned and padded with ``[PAD]`` at the right end (token models mask token 0).
* Defaults taken from the training data (``sequence_length_default``, ``batch_size_default``,
  ``sequence_defaults``): the window fits the sequences as they are instead of a fixed 200 bases, so 60-base
  sequences are not two-thirds ``N``.
* Baseline features (``kmer_spectrum``, ``positional_composition``, ``baseline_sequence_features``): k-mer
  frequencies over real bases only (windows touching ``N``, an IUPAC code or padding are skipped) and the base at
  each position of the window, for the classical baselines the deep model is compared with.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np
import torch
from torch.utils.data import Dataset

from meddl.errors import MedDLError

__all__ = [
    "AugmentedSequences",
    "KmerTokenizer",
    "SequenceEncoder",
    "baseline_sequence_features",
    "fit_length",
    "kmer_spectrum",
    "one_hot",
    "positional_composition",
    "rc_average",
    "reverse_complement_one_hot",
    "sequence_length_choice",
    "sequence_length_default",
]

BASES = "ACGT"
# Which of A, C, G, T each IUPAC code stands for.
_IUPAC: dict[str, str] = {
    "A": "A",
    "C": "C",
    "G": "G",
    "T": "T",
    "R": "AG",
    "Y": "CT",
    "S": "CG",
    "W": "AT",
    "K": "GT",
    "M": "AC",
    "B": "CGT",
    "D": "AGT",
    "H": "ACT",
    "V": "ACG",
    "N": "ACGT",
}


def _one_hot_table(ambiguous: str) -> tuple[np.ndarray, np.ndarray]:
    """(256, 4) float32 rows per byte, and a (256,) bool of which bytes are valid bases."""
    table = np.zeros((256, 4), dtype=np.float32)
    valid = np.zeros(256, dtype=bool)
    for code, bases in _IUPAC.items():
        row = np.zeros(4, dtype=np.float32)
        if len(bases) == 1 or ambiguous == "uniform":
            for base in bases:
                row[BASES.index(base)] = 1.0 / len(bases)
        for byte in (ord(code), ord(code.lower())):
            table[byte] = row
            valid[byte] = True
    return table, valid


_TABLES = {mode: _one_hot_table(mode) for mode in ("uniform", "zeros")}


def fit_length(sequence: str, length: int, pad_char: str = "N") -> str:
    """Centre-crop a longer sequence or pad a shorter one symmetrically (the extra base goes right)."""
    if length < 1:
        raise ValueError(f"length must be positive, got {length}")
    size = len(sequence)
    if size > length:
        start = (size - length) // 2
        return sequence[start : start + length]
    if size < length:
        left = (length - size) // 2
        return pad_char * left + sequence + pad_char * (length - size - left)
    return sequence


def _as_bytes(sequences: Sequence[str], length: int) -> np.ndarray:
    """(N, L) uint8 of the fitted sequences."""
    joined = "".join(fit_length(s, length) for s in sequences)
    try:
        data = joined.encode("ascii")
    except UnicodeEncodeError:
        data = joined.encode("ascii", errors="replace")  # a non-ASCII character becomes '?', reported as invalid
    return np.frombuffer(data, dtype=np.uint8).reshape(len(sequences), length)  # (N, L)


def _check_bases(codes: np.ndarray, valid: np.ndarray, sequences: Sequence[str], length: int) -> None:
    bad = ~valid[codes]
    if bad.any():
        index, position = (int(v) for v in np.argwhere(bad)[0])
        fitted = fit_length(sequences[index], length)
        raise MedDLError(
            f"sequence {index}: invalid base {fitted[position]!r} at position {position + 1} of the "
            f"{length}-base window; allowed are ACGT, N and IUPAC codes RYSWKMBDHV"
        )


def one_hot(sequences: Sequence[str], length: int, ambiguous: Literal["uniform", "zeros"] = "uniform") -> np.ndarray:
    """One-hot encode DNA.

    Args:
        sequences: N strings of bases (any case); each is centre-cropped or N-padded to ``length``.
        length: L, the window length.
        ambiguous: ``"uniform"`` spreads an IUPAC code over its bases (N → 0.25 each, R → A/G 0.5 each);
            ``"zeros"`` leaves its column zero.

    Returns:
        (N, 4, L) float32, channels A, C, G, T.

    Raises:
        MedDLError: a character is not a base (sequence index, position and character named).
    """
    if ambiguous not in _TABLES:
        raise ValueError(f"ambiguous must be 'uniform' or 'zeros', got {ambiguous!r}")
    table, valid = _TABLES[ambiguous]
    if len(sequences) == 0:
        return np.zeros((0, 4, length), dtype=np.float32)
    codes = _as_bytes(sequences, length)
    _check_bases(codes, valid, sequences, length)
    return np.ascontiguousarray(table[codes].transpose(0, 2, 1))  # (N, 4, L)


def reverse_complement_one_hot(x: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
    """Reverse complement of (N, 4, L) one-hot DNA (ACGT order): flip channels and positions."""
    if isinstance(x, torch.Tensor):
        return torch.flip(x, dims=(-2, -1))
    return np.ascontiguousarray(np.asarray(x)[..., ::-1, ::-1])


class KmerTokenizer:
    """Overlapping k-mers as integer tokens: ``[PAD]`` = 0, ``[UNK]`` = 1, k-mers from 2 in ACGT order.

    The vocabulary is fixed by ``k``, so nothing is learned; ``fit`` only validates ``k``.

    Args:
        k: k-mer length (1 to 8).
    """

    PAD = 0
    UNK = 1

    def __init__(self, *, k: int = 3) -> None:
        self.k = k

    def _check(self) -> None:
        if not isinstance(self.k, int) or not 1 <= self.k <= 8:
            raise MedDLError(f"k-mer length k must be an integer from 1 to 8, got {self.k!r}")

    def fit(self, sequences: Sequence[str] | None = None) -> KmerTokenizer:
        """Validate ``k`` (the vocabulary depends on nothing else); returns self."""
        self._check()
        return self

    @property
    def vocab_size(self) -> int:
        """4**k k-mers + [PAD] + [UNK]."""
        return 4**self.k + 2

    @property
    def vocabulary(self) -> list[str]:
        """Token strings by id: ``["[PAD]", "[UNK]", "AAA", "AAC", …]``."""
        kmers = [""]
        for _ in range(self.k):
            kmers = [prefix + base for prefix in kmers for base in BASES]
        return ["[PAD]", "[UNK]", *kmers]

    def encode(self, sequences: Sequence[str], length: int) -> np.ndarray:
        """Tokens of each sequence's centre ``length`` bases.

        Args:
            sequences: N strings of bases (any case).
            length: L, bases per window; a longer sequence is centre-cropped, a shorter one is left-aligned and its
                missing k-mers are ``[PAD]`` (0).

        Returns:
            (N, L − k + 1) int64.

        Raises:
            MedDLError: a character is not a base, or ``length < k``.
        """
        self._check()
        if length < self.k:
            raise MedDLError(f"length ({length}) must be at least k ({self.k})")
        n_tokens = length - self.k + 1
        if len(sequences) == 0:
            return np.zeros((0, n_tokens), dtype=np.int64)
        _, valid = _TABLES["uniform"]
        # 0..3 for ACGT, 4 for an ambiguity code, 5 for padding past the end of a short sequence.
        lookup = np.full(256, 4, dtype=np.int64)
        for i, base in enumerate(BASES):
            lookup[ord(base)] = lookup[ord(base.lower())] = i
        lookup[0] = 5
        cropped = [s if len(s) <= length else fit_length(s, length) for s in sequences]
        padded = "".join(s + "\0" * (length - len(s)) for s in cropped)
        codes = np.frombuffer(padded.encode("ascii", errors="replace"), dtype=np.uint8).reshape(-1, length)
        valid_or_pad = valid.copy()
        valid_or_pad[0] = True
        _check_bases(codes, valid_or_pad, cropped, length)
        digits = lookup[codes]  # (N, L)
        windows = np.lib.stride_tricks.sliding_window_view(digits, self.k, axis=1)  # (N, L-k+1, k)
        powers = 4 ** np.arange(self.k - 1, -1, -1, dtype=np.int64)
        tokens = (np.minimum(windows, 3) * powers).sum(axis=-1) + 2
        tokens = np.where((windows == 4).any(axis=-1), self.UNK, tokens)
        tokens = np.where((windows == 5).any(axis=-1), self.PAD, tokens)
        return tokens.astype(np.int64)

    def to_state(self) -> dict[str, Any]:
        """JSON-able state."""
        return {"k": self.k}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> KmerTokenizer:
        """Rebuild from ``to_state``."""
        return cls(k=int(state["k"])).fit()


class SequenceEncoder:
    """Sequences → model inputs, scikit-learn style (nothing is learned; ``fit`` validates the settings).

    Args:
        encoding: ``"onehot"`` → (N, 4, L) float32 for one-hot models (``sequence_cnn``, ``danq``);
            ``"kmer"`` → (N, L − k + 1) int64 tokens for token models (``sequence_transformer``,
            ``seed_attention``).
        length: L, bases per window (centre-cropped / padded).
        k: k-mer length for ``"kmer"``.
        ambiguous: how one-hot encodes IUPAC codes, ``"uniform"`` or ``"zeros"``.
    """

    def __init__(
        self,
        *,
        encoding: Literal["onehot", "kmer"] = "onehot",
        length: int = 200,
        k: int = 3,
        ambiguous: Literal["uniform", "zeros"] = "uniform",
    ) -> None:
        self.encoding = encoding
        self.length = length
        self.k = k
        self.ambiguous = ambiguous

    def _check(self) -> None:
        if self.encoding not in ("onehot", "kmer"):
            raise MedDLError(f"preprocess.encoding must be 'onehot' or 'kmer', got {self.encoding!r}")
        if not isinstance(self.length, int) or self.length < 1:
            raise MedDLError(f"preprocess.length must be a positive integer, got {self.length!r}")
        if self.ambiguous not in ("uniform", "zeros"):
            raise MedDLError(f"preprocess.ambiguous must be 'uniform' or 'zeros', got {self.ambiguous!r}")
        if self.encoding == "kmer":
            KmerTokenizer(k=self.k).fit()
            if self.length < self.k:
                raise MedDLError(f"preprocess.length ({self.length}) must be at least k ({self.k})")

    def fit(self, sequences: Sequence[str] | None = None, y: Any = None) -> SequenceEncoder:
        """Validate the settings; returns self."""
        self._check()
        return self

    @property
    def input_kind(self) -> str:
        """``"onehot"`` or ``"tokens"``: what the model takes."""
        return "onehot" if self.encoding == "onehot" else "tokens"

    @property
    def in_channels(self) -> int | None:
        """4 for one-hot, None for tokens."""
        return 4 if self.encoding == "onehot" else None

    @property
    def vocab_size(self) -> int | None:
        """4**k + 2 for k-mer tokens, None for one-hot."""
        return KmerTokenizer(k=self.k).vocab_size if self.encoding == "kmer" else None

    def model_arguments(self) -> dict[str, int]:
        """The data-derived model argument: ``{"in_channels": 4}`` or ``{"vocab_size": 4**k + 2}``."""
        if self.encoding == "onehot":
            return {"in_channels": 4}
        return {"vocab_size": KmerTokenizer(k=self.k).vocab_size}

    def transform(self, sequences: Sequence[str]) -> np.ndarray:
        """(N, 4, L) float32 one-hot or (N, L − k + 1) int64 tokens."""
        self._check()
        if isinstance(sequences, str):
            raise MedDLError("transform expects a list of sequences, got one string")
        if self.encoding == "onehot":
            return one_hot(list(sequences), self.length, self.ambiguous)
        return KmerTokenizer(k=self.k).encode(list(sequences), self.length)

    def fit_transform(self, sequences: Sequence[str], y: Any = None) -> np.ndarray:
        """``fit`` then ``transform``."""
        return self.fit(sequences).transform(sequences)

    def to_state(self) -> dict[str, Any]:
        """JSON-able state."""
        return {"encoding": self.encoding, "length": self.length, "k": self.k, "ambiguous": self.ambiguous}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> SequenceEncoder:
        """Rebuild from ``to_state``."""
        return cls(
            encoding=state["encoding"], length=int(state["length"]), k=int(state["k"]), ambiguous=state["ambiguous"]
        ).fit()


class AugmentedSequences(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """One-hot sequences with reproducible random reverse complement and shift jitter, for training.

    The randomness of item ``i`` in epoch ``e`` is drawn from ``numpy.random.default_rng([seed, e, i])``, so
    the same seed gives the same augmented batches whatever the worker or batch order.

    Args:
        x: (N, 4, L) one-hot.
        y: (N, …) targets (kept as given; a reverse-complemented sequence keeps its label).
        max_shift: the window moves by up to this many bases left or right; bases shifted in are ``pad_value``.
        rc_probability: chance of reverse-complementing an item.
        pad_value: value of the 4 channels of a shifted-in position (0.25 = N with ``ambiguous="uniform"``).
        seed: base seed.
    """

    def __init__(
        self,
        x: np.ndarray | torch.Tensor,
        y: np.ndarray | torch.Tensor,
        *,
        max_shift: int = 3,
        rc_probability: float = 0.5,
        pad_value: float = 0.25,
        seed: int = 0,
    ) -> None:
        self.x = torch.as_tensor(x, dtype=torch.float32)
        self.y = torch.as_tensor(y)
        if self.x.ndim != 3 or self.x.shape[1] != 4:
            raise ValueError(f"x must be one-hot (N, 4, L), got shape {tuple(self.x.shape)}")
        if len(self.y) != len(self.x):
            raise ValueError(f"x has {len(self.x)} sequences but y has {len(self.y)} targets")
        if max_shift < 0 or max_shift >= self.x.shape[2]:
            raise ValueError(f"max_shift must be in [0, L), got {max_shift}")
        if not 0 <= rc_probability <= 1:
            raise ValueError(f"rc_probability must be in [0, 1], got {rc_probability}")
        self.max_shift = max_shift
        self.rc_probability = rc_probability
        self.pad_value = pad_value
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Draw the next epoch's augmentations (the trainer calls this at the start of each epoch)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng([self.seed, self.epoch, int(index)])
        item = self.x[index]  # (4, L)
        shift = int(rng.integers(-self.max_shift, self.max_shift + 1)) if self.max_shift else 0
        flip = bool(rng.random() < self.rc_probability)
        if shift:
            shifted = torch.full_like(item, self.pad_value)
            if shift > 0:  # content moves right; pad enters at the left
                shifted[:, shift:] = item[:, :-shift]
            else:
                shifted[:, :shift] = item[:, -shift:]
            item = shifted
        if flip:
            item = torch.flip(item, dims=(0, 1))
        return item.contiguous(), self.y[index]


def rc_average(predict_fn: Callable[[np.ndarray], np.ndarray], x: np.ndarray | torch.Tensor) -> np.ndarray:
    """Predictions averaged over each sequence and its reverse complement.

    Args:
        predict_fn: maps (N, 4, L) float32 NumPy one-hot to (N, C) NumPy predictions.
        x: (N, 4, L) one-hot.

    Returns:
        (N, C) NumPy: (predict_fn(x) + predict_fn(rc(x))) / 2.
    """
    array = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    array = array.astype(np.float32, copy=False)
    forward = np.asarray(predict_fn(array))
    backward = np.asarray(predict_fn(np.ascontiguousarray(array[:, ::-1, ::-1])))
    return (forward + backward) / 2


# -- defaults taken from the training data ----------------------------------------------------------------------
MIN_LENGTH = 8  # the config's floor for preprocess.length
MAX_DEFAULT_LENGTH = 2048  # (N, 4, L) float32 grows with L: longer windows must be asked for
LENGTH_QUANTILE = 95.0
OUTLIER_MARGIN = 1.1  # the longest 5 % may be up to 10 % longer than the 95th percentile and still fit whole
MIN_BATCH, MAX_BATCH = 16, 256


def _lengths(lengths: Sequence[int] | np.ndarray) -> np.ndarray:
    values = np.asarray(lengths, dtype=np.float64).reshape(-1)
    if values.size == 0:
        raise MedDLError("no sequence to take a default length from")
    if not np.all(np.isfinite(values)) or np.any(values < 0):
        raise MedDLError("sequence lengths must be finite and non-negative")
    return values


def sequence_length_choice(lengths: Sequence[int] | np.ndarray) -> tuple[int, str]:
    """:func:`sequence_length_default` and the reason for it, in words, for the run record."""
    values = _lengths(lengths)
    longest = int(values.max())
    upper = float(np.percentile(values, LENGTH_QUANTILE, method="inverted_cdf"))  # 95 % of sequences fit whole
    if values.min() == longest:
        length, why = longest, f"every sequence has {longest} bases"
    elif longest <= OUTLIER_MARGIN * upper:
        length, why = longest, f"the longest sequence ({longest} bases; lengths {int(values.min())}–{longest})"
    else:
        length = int(np.ceil(upper))
        why = (
            f"the {LENGTH_QUANTILE:.0f}th percentile of the lengths ({int(values.min())}–{longest}): the few longer "
            "sequences are centre-cropped rather than padding all others with N"
        )
    if length > MAX_DEFAULT_LENGTH:
        return MAX_DEFAULT_LENGTH, f"{why}, capped at {MAX_DEFAULT_LENGTH} (set preprocess.length to keep more)"
    if length < MIN_LENGTH:
        return MIN_LENGTH, f"{why}, raised to the minimum of {MIN_LENGTH}"
    return length, why


def sequence_length_default(lengths: Sequence[int] | np.ndarray) -> int:
    """The window length L when ``preprocess.length`` is not given: the training sequences fit whole.

    The window is the longest sequence when all have one length (fixed windows: splice junctions, peaks cut to a
    width) or when the longest 5 % are at most 10 % longer than the 95th percentile; otherwise the 95th percentile,
    so a few outliers do not pad every other sequence with ``N``. Never below 8 (the config's minimum) nor above
    ``MAX_DEFAULT_LENGTH`` (2,048; memory grows with L). A fixed 200 turned 60-base sequences into 70 % ``N``:
    the k-mer baseline's features were mostly padding, and the network spent most of its input on it.

    Args:
        lengths: (N,) base counts of the training sequences, before cropping or padding.

    Returns:
        L, in bases.

    Raises:
        MedDLError: no lengths, or a negative or non-finite one.
    """
    return sequence_length_choice(lengths)[0]


# -- features of the classical baselines ----------------------------------------------------------------------
BASELINE_K = 4
MAX_POSITIONS = 100  # exact positions for windows up to 100 bases (splice junctions, short sites); bins beyond


def kmer_spectrum(sequences: Sequence[str], k: int = BASELINE_K) -> np.ndarray:
    """Frequencies of the 4**k k-mers of each sequence, over k-mers of real bases only.

    A window that touches ``N``, another IUPAC code or padding counts for nothing, so a sequence padded with ``N``
    has the same spectrum as the sequence itself. Rows sum to 1 (0 for a sequence without a whole k-mer). Only the
    given strand is counted: the labels of strand-specific sets (splice junctions, promoters) depend on it.

    Args:
        sequences: N strings of bases (any case), of any lengths.
        k: k-mer length (1 to 8).

    Returns:
        (N, 4**k) float32, columns in lexicographic ACGT order (``AAAA``, ``AAAC``, …).

    Raises:
        MedDLError: a character is not a base, or ``k`` is out of range.
    """
    tokenizer = KmerTokenizer(k=k).fit()
    n_kmers = 4**k
    if len(sequences) == 0:
        return np.zeros((0, n_kmers), dtype=np.float32)
    longest = max(max(len(s) for s in sequences), k)
    tokens = tokenizer.encode(list(sequences), longest)  # (N, T): 0 padding, 1 ambiguous, 2… k-mers
    rows = np.broadcast_to(np.arange(len(sequences))[:, None], tokens.shape)
    real = tokens >= 2
    flat = rows[real] * n_kmers + (tokens[real] - 2)
    counts = np.bincount(flat, minlength=len(sequences) * n_kmers).reshape(len(sequences), n_kmers)
    totals = counts.sum(axis=1, keepdims=True)
    return (counts / np.maximum(totals, 1)).astype(np.float32)


def positional_composition(sequences: Sequence[str], length: int, max_positions: int = MAX_POSITIONS) -> np.ndarray:
    """The base at each position of the centred window (one-hot, ``N`` and padding all zero), flattened.

    Signals at a fixed place in the window (a splice junction's GT/AG, a promoter's box, a peak's centre) are what
    a k-mer spectrum cannot see. Windows longer than ``max_positions`` are averaged over that many equal bins, so
    the feature count stays at most ``4 * max_positions``.

    Args:
        sequences: N strings of bases; each is centre-cropped or ``N``-padded to ``length`` (``fit_length``).
        length: L, the window.
        max_positions: most positions (bins) kept.

    Returns:
        (N, 4 * min(L, max_positions)) float32, position-major (A, C, G, T of position 1, then position 2, …).
    """
    if max_positions < 1:
        raise ValueError(f"max_positions must be positive, got {max_positions}")
    bases = one_hot(list(sequences), length, ambiguous="zeros")  # (N, 4, L)
    if length > max_positions:
        edges = np.linspace(0, length, max_positions + 1).round().astype(np.int64)
        widths = np.diff(edges).astype(np.float32)  # (P,)
        bases = np.add.reduceat(bases, edges[:-1], axis=2) / widths  # (N, 4, P)
    return np.ascontiguousarray(bases.transpose(0, 2, 1)).reshape(len(sequences), -1).astype(np.float32)


def baseline_sequence_features(
    sequences: Sequence[str], length: int, *, k: int = BASELINE_K, max_positions: int = MAX_POSITIONS
) -> np.ndarray:
    """Flat features of the sequence baselines: the k-mer spectrum (``kmer_spectrum``) beside the base at each
    position of the window (``positional_composition``).

    Unscaled: the logistic-regression baseline standardises each column on the training rows
    (:func:`meddl.evaluate.fit_baseline`), as an L2 penalty needs.

    Args:
        sequences: N strings of bases (raw or already fitted to ``length``).
        length: L, the window the network sees.
        k: k-mer length of the spectrum.
        max_positions: most positions (bins) of the positional block.

    Returns:
        (N, 4**k + 4 * min(L, max_positions)) float32.
    """
    windows = [fit_length(s, length) for s in sequences]
    return np.hstack([kmer_spectrum(windows, k), positional_composition(windows, length, max_positions)])
