"""Synthetic ECGs with a known heart rate and rhythm, and datasets of them written in real formats.

How a record is made (fast: about 1 ms for 10 s at 250 Hz, so 600 records take about a second):

* **Beat shape** — one cardiac cycle from neurokit2's ``ecg_simulate(method="simple")`` (a Daubechies-wavelet
  beat), computed once at 1 kHz and scaled so the R peak is 1 mV. ``method="ecgsyn"`` is more realistic but
  takes about 0.16 s per 10-s record (100 s for 600), and ``"simple"`` on its own rounds the number of beats
  in the record down to an integer (10 s at 70 bpm gives 11 beats, i.e. 66 bpm), so the beat is taken from
  it and laid out here.
* **Rhythm** — beat onsets are the cumulative sum of RR intervals, and each sample reads the beat shape at its
  phase within its beat (the whole cycle stretches with RR, as QT shortens at faster rates). ``"sinus"``: RR
  varies by 2 % (normal heart-rate variability). ``"irregular"``: an atrial-fibrillation-like rhythm — RR
  intervals drawn independently per beat, log-normal with a coefficient of variation of about 25 %, plus
  low-amplitude 4–8 Hz fibrillatory waves (0.05 mV). In both, the RR intervals are rescaled so their mean is
  exactly ``60 / heart_rate`` s, and the first beat starts at a random phase.
* **Leads** — 1 lead (named ``"II"``) or 12. The 12 leads are projections of two source signals (the beat and
  the beat 30 ms later, a crude stand-in for two orthogonal heart vectors) with fixed gains for I and II, the
  other limb leads from Einthoven's and Goldberger's relations (III = II − I, aVR = −(I + II)/2,
  aVL = I − II/2, aVF = II − I/2) and fixed gains for V1–V6 (V1 mostly negative, V4–V5 largest). They are
  not anatomically exact.
* **Noise** — Laplace noise of scale ``noise`` mV per sample and lead.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pandas as pd

from meddl.errors import MedDLError
from meddl.io.signals import ECG_12_LEADS, Signal, write_dicom_ecg, write_wfdb

__all__ = ["RHYTHMS", "synthetic_ecg", "write_ecg_dataset"]

RHYTHMS = ("sinus", "irregular")
_TEMPLATE_RATE = 1000  # samples per beat of the stored beat shape
_SECOND_SOURCE_DELAY = 0.03  # seconds: the second source signal is the beat this much later
_SINUS_RR_CV = 0.02
_IRREGULAR_RR_SIGMA = 0.25
_FIBRILLATION_AMPLITUDE = 0.05  # mV
# Gains of (source 1, source 2) for the leads not derived from I and II.
_LIMB_GAINS = {"I": (0.6, 0.25), "II": (1.0, 0.0)}
_PRECORDIAL_GAINS = {
    "V1": (-0.5, 0.3),
    "V2": (-0.3, 0.7),
    "V3": (0.3, 0.6),
    "V4": (1.1, 0.3),
    "V5": (1.0, 0.1),
    "V6": (0.7, 0.0),
}
HEART_RATE_RANGE = (45.0, 150.0)


@functools.lru_cache(maxsize=1)
def _beat_template() -> np.ndarray:
    """One cardiac cycle (1000 samples over the RR interval) with a 1 mV R peak, from neurokit2."""
    import neurokit2 as nk

    beat = np.asarray(
        nk.ecg_simulate(duration=1, sampling_rate=_TEMPLATE_RATE, heart_rate=60, method="simple", noise=0),
        dtype=np.float64,
    )
    assert beat.shape == (_TEMPLATE_RATE,), f"expected one beat of {_TEMPLATE_RATE} samples, got {beat.shape}"
    return beat / np.max(np.abs(beat))


def _rr_intervals(n_beats: int, heart_rate: float, rhythm: str, rng: np.random.Generator) -> np.ndarray:
    if rhythm == "sinus":
        factors = 1.0 + _SINUS_RR_CV * rng.standard_normal(n_beats)
    else:
        factors = np.exp(_IRREGULAR_RR_SIGMA * rng.standard_normal(n_beats))
    factors = np.clip(factors, 0.3, 3.0)
    return factors / factors.mean() * (60.0 / heart_rate)


def synthetic_ecg(
    duration: float = 10,
    fs: float = 250,
    heart_rate: float = 70,
    rhythm: str = "sinus",
    noise: float = 0.01,
    seed: int = 0,
    *,
    leads: int = 1,
) -> Signal:
    """A synthetic ECG with a known mean heart rate and rhythm.

    Args:
        duration: seconds.
        fs: sampling rate in Hz.
        heart_rate: mean heart rate in beats per minute (the mean RR interval is exactly 60 / heart_rate s).
        rhythm: ``"sinus"`` (regular, 2 % RR variability) or ``"irregular"`` (AF-like, ~25 % RR variability).
        noise: scale of the Laplace noise in mV (0 for none).
        seed: random seed (RR intervals, starting phase, fibrillatory waves, noise).
        leads: 1 (lead II) or 12 (I, II, III, aVR, aVL, aVF, V1–V6).

    Returns:
        A :class:`Signal` ``(leads, round(duration · fs))`` float32 in mV.

    Raises:
        MedDLError: an argument is out of range.
    """
    if rhythm not in RHYTHMS:
        raise MedDLError(f"rhythm must be one of {list(RHYTHMS)}, got {rhythm!r}")
    if leads not in (1, 12):
        raise MedDLError(f"leads must be 1 or 12, got {leads!r}")
    if not duration > 0 or not fs > 0:
        raise MedDLError(f"duration and fs must be positive, got duration={duration!r}, fs={fs!r}")
    if not 10 <= heart_rate <= 300:
        raise MedDLError(f"heart_rate must be between 10 and 300 bpm, got {heart_rate!r}")
    if noise < 0:
        raise MedDLError(f"noise must be >= 0, got {noise!r}")
    rng = np.random.default_rng(seed)
    template = _beat_template()
    n_samples = round(duration * fs)
    time = np.arange(n_samples) / fs
    n_beats = int(np.ceil(duration * heart_rate / 60.0)) + 2
    rr = _rr_intervals(n_beats, heart_rate, rhythm, rng)
    onsets = np.concatenate([[0.0], np.cumsum(rr)]) - rng.uniform(0.0, rr[0])  # first beat at a random phase

    def source(delay: float) -> np.ndarray:
        beat = np.clip(np.searchsorted(onsets, time - delay, side="right") - 1, 0, n_beats - 1)
        phase = np.clip((time - delay - onsets[beat]) / rr[beat], 0.0, 1.0)
        return np.interp(phase * (_TEMPLATE_RATE - 1), np.arange(_TEMPLATE_RATE), template)

    first, second = source(0.0), source(_SECOND_SOURCE_DELAY)
    if rhythm == "irregular":
        frequency = rng.uniform(4.0, 8.0)
        wobble = np.cumsum(rng.normal(0.0, 0.05, n_samples))  # slowly drifting phase
        fibrillation = _FIBRILLATION_AMPLITUDE * np.sin(
            2 * np.pi * frequency * time + rng.uniform(0, 2 * np.pi) + wobble
        )
        first, second = first + fibrillation, second + 0.5 * fibrillation
    if leads == 1:
        data = first[None]  # (1, L)
        names = ["II"]
    else:
        lead_i = _LIMB_GAINS["I"][0] * first + _LIMB_GAINS["I"][1] * second
        lead_ii = _LIMB_GAINS["II"][0] * first + _LIMB_GAINS["II"][1] * second
        limb = [lead_i, lead_ii, lead_ii - lead_i, -(lead_i + lead_ii) / 2, lead_i - lead_ii / 2, lead_ii - lead_i / 2]
        precordial = [a * first + b * second for a, b in _PRECORDIAL_GAINS.values()]
        data = np.stack(limb + precordial)  # (12, L)
        names = list(ECG_12_LEADS)
    if noise > 0:
        data = data + rng.laplace(0.0, noise, data.shape)
    return Signal(data.astype(np.float32), float(fs), names, ["mV"] * len(names), "")


def write_ecg_dataset(
    folder: str | Path,
    n: int,
    *,
    task: str = "heart_rate",
    fmt: str = "wfdb",
    fs: float = 250,
    duration: float = 10,
    seed: int = 0,
    patients: int | None = None,
    leads: int = 1,
    noise: float = 0.01,
) -> Path:
    """Write ``n`` synthetic ECG records and a manifest ``manifest.csv`` listing them.

    ``task="heart_rate"``: sinus rhythm, heart rate uniform in [45, 150] bpm, label = the heart rate (bpm,
    a regression target). ``task="rhythm"``: rhythm ``"sinus"`` or ``"irregular"`` with probability ½ each,
    heart rate uniform in [60, 110] bpm, label = the rhythm (classification).

    Records go to ``folder/records/ecg00001.<ext>``: a WFDB header ``.hea`` (and its ``.dat``), a DICOM
    12-lead ECG ``.dcm``, or ``.npy`` (which does not store ``fs``: read it with ``read_signal(path, fs=fs)``).

    Args:
        folder: output folder (created).
        n: number of records.
        task: ``"heart_rate"`` or ``"rhythm"``.
        fmt: ``"wfdb"``, ``"dicom"`` or ``"npy"``.
        fs: sampling rate in Hz.
        duration: seconds per record.
        seed: seed for the labels and every record (record i uses seed ``[seed, i]``).
        patients: number of patients the records belong to (record i → patient i mod patients, so a
            patient has several records); None: one patient per record.
        leads: 1 or 12.
        noise: Laplace noise scale in mV.

    Returns:
        The manifest's path; its columns are ``path`` (relative to the manifest), ``label``, ``heart_rate``,
        ``rhythm`` and ``patient_id``.
    """
    if task not in ("heart_rate", "rhythm"):
        raise MedDLError(f"task must be 'heart_rate' or 'rhythm', got {task!r}")
    if fmt not in ("wfdb", "dicom", "npy"):
        raise MedDLError(f"fmt must be 'wfdb', 'dicom' or 'npy', got {fmt!r}")
    if n < 1:
        raise MedDLError(f"n must be a positive number of records, got {n!r}")
    if patients is not None and patients < 1:
        raise MedDLError(f"patients must be a positive number, got {patients!r}")
    folder = Path(folder)
    records = folder / "records"
    records.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    if task == "heart_rate":
        rates = rng.uniform(*HEART_RATE_RANGE, n)
        rhythms = np.full(n, "sinus", dtype=object)
    else:
        rates = rng.uniform(60.0, 110.0, n)
        rhythms = np.where(rng.random(n) < 0.5, "sinus", "irregular").astype(object)
    rows = []
    for i in range(n):
        name = f"ecg{i + 1:05d}"
        record_seed = int(np.random.SeedSequence([seed, i]).generate_state(1)[0])
        rate = round(float(rates[i]), 2)
        signal = synthetic_ecg(duration, fs, rate, str(rhythms[i]), noise, record_seed, leads=leads)
        patient = f"P{(i % patients if patients else i) + 1:05d}"
        if fmt == "wfdb":
            write_wfdb(signal, records, name)
            relative = f"records/{name}.hea"
        elif fmt == "dicom":
            write_dicom_ecg(signal, records / f"{name}.dcm", patient_id=patient)
            relative = f"records/{name}.dcm"
        else:
            np.save(records / f"{name}.npy", signal.data)
            relative = f"records/{name}.npy"
        label: float | str = rate if task == "heart_rate" else str(rhythms[i])
        rows.append({"path": relative, "label": label, "heart_rate": rate, "rhythm": rhythms[i], "patient_id": patient})
    manifest = folder / "manifest.csv"
    pd.DataFrame(rows).to_csv(manifest, index=False)
    return manifest
