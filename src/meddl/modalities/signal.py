"""Physiological signals (``data.kind: signal``): WFDB records, DICOM waveforms and arrays named by a manifest.

Each record is resampled, band-pass filtered, cut or padded to a fixed length and normalised per channel (scipy);
explanations are integrated gradients over time, drawn on the trace.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch

from meddl.errors import MedDLError
from meddl.evaluate.robustness import (
    Corruption,
    baseline_wander,
    drop_channels,
    gaussian_noise,
    powerline_hum,
)
from meddl.explain.signals import integrated_gradients_signal, trace_png
from meddl.io.signals import read_signal, signal_manifest
from meddl.modalities.base import Log, Modality, ModalityExample, PredictionInputs, Prepared, encode_labels
from meddl.modalities.registry import register
from meddl.modalities.schema import ExperimentConfig
from meddl.modalities.sections.signal import SignalDataConfig, SignalPreprocessConfig
from meddl.preprocess.signals import SignalPipeline

__all__ = ["SignalModality", "signal_features"]

N_TRACES = 6
SIGNAL_SUFFIXES = (".hea", ".dcm", ".npy", ".csv", ".tsv")


def signal_features(inputs: np.ndarray, sampling_rate: float) -> np.ndarray:
    """Classical per-channel summary features of (N, C, L) traces: distribution statistics, the dominant
    frequency and the share of power in four bands — what a baseline model can use without deep learning."""
    n, _, length = inputs.shape
    quantiles = np.percentile(inputs, [5, 25, 50, 75, 95], axis=2).transpose(1, 2, 0)  # (N, C, 5)
    spectrum = np.abs(np.fft.rfft(inputs, axis=2)) ** 2  # (N, C, F)
    freqs = np.fft.rfftfreq(length, d=1.0 / sampling_rate)
    spectrum[:, :, 0] = 0.0
    total = spectrum.sum(axis=2, keepdims=True) + 1e-12
    bands = [(0.5, 3.0), (3.0, 8.0), (8.0, 15.0), (15.0, 40.0)]
    band_power = np.stack([spectrum[:, :, (freqs >= lo) & (freqs < hi)].sum(axis=2) for lo, hi in bands], axis=2)
    dominant = freqs[np.argmax(spectrum, axis=2)][..., None]  # (N, C, 1)
    parts = [
        inputs.mean(axis=2, keepdims=True),
        inputs.std(axis=2, keepdims=True),
        quantiles,
        dominant,
        band_power / total,
    ]
    return np.concatenate(parts, axis=2).reshape(n, -1).astype(np.float32)


@register
class SignalModality(Modality):
    """Physiological signals (ECG) in, a finding out, with the stretch of the trace that drove it.

    One upload is one file: WFDB needs two files, so signals are uploaded as DICOM waveforms, .npy or CSV.
    """

    kind = "signal"
    usage: ClassVar[dict[str, str]] = {
        "data": "records.csv",
        "input": ("Give a manifest CSV with a path column naming WFDB records, DICOM waveforms, .npy or CSV arrays."),
        "python": '"records.csv"',
    }
    title = "physiological signal"
    explain_title = "Attribution over time"
    upload_suffixes = (".dcm", ".npy", ".csv")

    def __init__(self, config: ExperimentConfig) -> None:
        super().__init__(config)
        assert isinstance(config.data, SignalDataConfig) and isinstance(config.preprocess, SignalPreprocessConfig)
        self.data: SignalDataConfig = config.data
        self.prep: SignalPreprocessConfig = config.preprocess
        self.pipeline = SignalPipeline(
            fs=self.prep.sampling_rate,
            bandpass=tuple(self.prep.bandpass) if self.prep.bandpass else None,
            length_seconds=self.prep.length_seconds,
            channels=self.prep.channels,
            normalize=self.prep.normalize,
        )
        self.channel_names: list[str] = []
        self.last_filled_ = 0  # NaN samples interpolated in the last record read

    @classmethod
    def example(cls, folder: Path) -> ModalityExample:
        from meddl.data.ecg import write_ecg_dataset

        manifest = write_ecg_dataset(folder / "records", 60, task="heart_rate", fmt="wfdb", fs=100, duration=4, seed=0)
        experiment = {
            "name": "example-signal",
            "task": "regression",
            "data": {"kind": "signal", "path": str(Path(manifest).relative_to(folder)), "target": "heart_rate"},
            "preprocess": {"sampling_rate": 50, "bandpass": [0.5, 20.0], "length_seconds": 4},
            "model": {"arch": "cnn1d"},
            "train": {"epochs": 3, "batch_size": 32, "seed": 0, "progress": False},
            "evaluate": {"bootstrap": 20},
        }
        one_record = sorted(Path(manifest).parent.rglob("*.hea"))[0]  # one record: one trace with its attribution
        return ModalityExample(experiment, manifest, one_record, manifest)

    def _read(self, path: Path) -> np.ndarray:
        signal = read_signal(path, fs=self.data.sampling_rate)
        if not self.channel_names:  # the first record fixes the channels every later record must have
            self.pipeline.fit(signal)
            self.channel_names = _selected_channels(signal.channels, self.prep.channels)
        array = self.pipeline.transform(signal)
        self.last_filled_ = int(self.pipeline.last_filled_)  # NaN samples interpolated in this record
        return array

    def _manifest(self) -> pd.DataFrame:
        """The manifest's rows (absolute ``path``, ``label``, ``patient_id``), indexed by their spreadsheet row
        (header = row 1), so that a label error names the row a spreadsheet shows.

        With ``on_bad_file: error`` a row naming a missing file stops the run with one error naming the rows and
        files; with ``skip`` such rows are kept here, fail to read in :meth:`load` and are skipped and counted
        there like any other unreadable record.
        """
        d = self.data
        manifest = signal_manifest(
            d.path,
            path_column=d.path_column,
            target=d.target,
            patient_id=d.patient_id,
            missing_files="error" if d.on_bad_file == "error" else "keep",
        )
        manifest.index = pd.Index(manifest["row"].to_numpy())  # unnamed: a "row" index would clash with the column
        return manifest

    def _check_settings(self) -> None:
        """Settings that would fail on every record are one configuration error, not a bad record each."""
        p = self.prep
        nyquist = p.sampling_rate / 2
        if p.bandpass and max(p.bandpass) >= nyquist:
            raise MedDLError(
                f"preprocess.bandpass {list(p.bandpass)} reaches the Nyquist frequency {nyquist:g} Hz of "
                f"preprocess.sampling_rate {p.sampling_rate:g} Hz; lower the high cut-off below {nyquist:g} Hz "
                "or raise preprocess.sampling_rate"
            )

    def _check_sampling_rate(self, manifest: pd.DataFrame) -> None:
        """A ``.npy`` array does not store its sampling rate: without ``data.sampling_rate`` every such record
        would fail, so it is one settings error (no per-record advice), reported before any record is read."""
        if self.data.sampling_rate is not None:
            return
        paths = manifest["path"]
        arrays = [(row, path) for row, path in zip(manifest.index, paths, strict=True) if path.lower().endswith(".npy")]
        if arrays:
            row, path = arrays[0]
            raise MedDLError(
                f"{self.data.path}: {len(arrays)} record(s) are .npy arrays, which do not store their sampling rate "
                f"(e.g. row {row}: {Path(path).name}); set data.sampling_rate (Hz) in the experiment file"
            )

    def load(self, log: Log) -> Prepared:
        self._check_settings()
        manifest = self._manifest()
        self._check_sampling_rate(manifest)
        n_read = len(manifest)
        log(f"reading and filtering {n_read} record(s)")
        arrays: list[np.ndarray] = []
        keep = np.zeros(n_read, dtype=bool)
        skipped: list[str] = []
        filled = np.zeros(n_read, dtype=np.int64)
        for i, path in enumerate(manifest["path"]):
            try:
                arrays.append(self._read(Path(path)))
                keep[i] = True
                filled[i] = self.last_filled_
            except MedDLError as exc:
                if self.data.on_bad_file == "error":
                    raise MedDLError(f"{exc} (set data.on_bad_file: skip to leave such records out)") from None
                skipped.append(f"skipped {path}: {exc}")
        if not arrays:
            raise MedDLError(f"{self.data.path}: no readable record")
        manifest = manifest.loc[keep]  # the index stays the manifest's row number, for messages
        target, classes, has_label = encode_labels(manifest["label"], self.config, self.data.path.name)
        inputs = np.stack(arrays)[has_label]
        manifest = manifest.loc[has_label]
        gaps = filled[keep][has_label]
        repairs = {
            "missing (NaN) samples interpolated": int(gaps.sum()),
            "records with interpolated samples": int((gaps > 0).sum()),
        }
        dropped = {
            "unreadable records (data.on_bad_file: skip)": len(skipped),
            "missing label": int((~has_label).sum()),
        }
        p = self.prep
        notes = [
            f"{n_read} records; resampled to {p.sampling_rate:g} Hz"
            + (f", band-pass {p.bandpass[0]:g}–{p.bandpass[1]:g} Hz" if p.bandpass else "")
            + f", {p.length_seconds:g} s (centre-cropped or zero-padded), normalisation {p.normalize}; "
            f"channels {', '.join(self.channel_names)}",
            *skipped[:20],
        ]
        return Prepared(
            inputs=inputs.astype(np.float32),
            target=target,
            classes=classes,
            sample_ids=[str(p) for p in manifest["path"]],
            patient_ids=manifest["patient_id"].astype(str).to_numpy() if "patient_id" in manifest.columns else None,
            n_read=n_read,
            dropped={k: v for k, v in dropped.items() if v},
            repairs={k: v for k, v in repairs.items() if v},
            notes=notes,
        )

    def model_arguments(self, inputs: np.ndarray) -> dict[str, int]:
        return {"in_channels": int(inputs.shape[1])}

    def profile(self, prepared: Prepared, index: np.ndarray) -> dict[str, np.ndarray]:
        """Amplitude and spectrum of each record (see :func:`signal_profile`)."""
        return signal_profile(np.asarray(prepared.inputs)[index], self.prep.sampling_rate)

    def case_profile(self, cases: PredictionInputs) -> dict[str, np.ndarray]:
        return signal_profile(np.asarray(cases.inputs), self.prep.sampling_rate) if len(cases.inputs) else {}

    def baseline_features(self, prepared: Prepared, inputs: np.ndarray) -> np.ndarray:
        return signal_features(inputs, self.prep.sampling_rate)

    def corruptions(self) -> list[Corruption]:
        """On the filtered, normalised traces the model takes (so after the band-pass filter: a worst case for
        wander and hum, which the filter would partly remove): noise, baseline wander at 0.3 Hz, 50 Hz mains hum
        (declared when the sampling rate is above 100 Hz, else the hum cannot be represented) and detached leads
        (records of several leads). Amplitudes are in SDs of each lead's own signal (noise of 0.25 SD: a
        signal-to-noise ratio of 4)."""
        fs = float(self.prep.sampling_rate)

        def lead_sd(x: np.ndarray) -> np.ndarray:  # (N, C, 1)
            return x.std(axis=-1, keepdims=True)

        found = [
            Corruption(
                "noise",
                "Gaussian noise (muscle artefact, electrode noise)",
                "noise SD in SDs of each lead's signal",
                (0.1, 0.25, 0.5),
                lambda x, k, rng: gaussian_noise(x, k * lead_sd(x), rng),
            ),
            Corruption(
                "baseline_wander",
                "Baseline wander at 0.3 Hz (breathing, electrode motion)",
                "amplitude in SDs of each lead's signal",
                (0.25, 0.5, 1.0),
                lambda x, k, rng: baseline_wander(x, k * lead_sd(x), rng, sampling_rate=fs),
            ),
        ]
        if fs > 100.0:
            found.append(
                Corruption(
                    "powerline_hum",
                    "50 Hz mains hum",
                    "amplitude in SDs of each lead's signal",
                    (0.1, 0.25, 0.5),
                    lambda x, k, rng: powerline_hum(x, k * lead_sd(x), rng, sampling_rate=fs),
                )
            )
        n_leads = len(self.channel_names)
        if n_leads > 1:
            found.append(
                Corruption(
                    "dropped_lead",
                    "Detached leads (a flat line), chosen at random per record",
                    f"leads lost of {n_leads}",
                    tuple(float(k) for k in range(1, min(3, n_leads - 1) + 1)),
                    lambda x, k, rng: drop_channels(x, int(k), rng),
                )
            )
        return found

    # -- explanations -----------------------------------------------------------------------------------
    def _target(self, scores: np.ndarray) -> np.ndarray | int:
        return np.argmax(scores, axis=1) if scores.ndim == 2 and self.config.task == "multiclass" else 0

    def explain(
        self,
        model: torch.nn.Module,
        prepared: Prepared,
        inputs: np.ndarray,
        test_index: np.ndarray,
        scores: np.ndarray,
        out: Path,
    ) -> dict[str, Any]:
        model = model.cpu().eval()
        x = inputs[test_index]
        attributions = integrated_gradients_signal(model, x, target=self._target(scores))  # (N, C, L)
        per_channel = np.abs(attributions).mean(axis=(0, 2))
        ranking = [
            {"feature": name, "mean_abs_attribution": float(v)}
            for name, v in zip(self.channel_names, per_channel, strict=False)
        ]
        ranking.sort(key=lambda r: -float(r["mean_abs_attribution"]))  # type: ignore[arg-type]
        figures = []
        traces = out / "traces"
        traces.mkdir(exist_ok=True)
        for position in range(len(test_index)):
            png = trace_png(
                x[position],
                attributions[position],
                self.prep.sampling_rate,
                channels=self.channel_names,
                title=f"test record {position + 1}",
            )
            (traces / f"case_{position:04d}.png").write_bytes(png)
            if position < N_TRACES:
                score = scores[position]
                truth = prepared.target[test_index[position]]
                described = (
                    f"true {float(truth):.1f}, predicted {float(score):.1f}"
                    if self.config.task == "regression"
                    else f"true {prepared.classes[int(truth)]}, score {float(np.max(score)):.2f}"
                )
                figures.append(
                    {
                        "title": f"Test record {position + 1}",
                        "caption": f"{described}; integrated gradients over time (warm = raised the output)",
                        "png": base64.b64encode(png).decode("ascii"),
                    }
                )
        return {
            "sections": [
                {
                    "id": "traces",
                    "title": "Attribution over time",
                    "text": "Integrated gradients (zero baseline) of every test record, drawn on its trace; "
                    f"all {len(test_index)} are in the bundle's traces/ folder.",
                    "figures": figures,
                }
            ],
            "explanations": {"integrated_gradients": ranking} if len(ranking) > 1 else {},
        }

    # -- bundle ---------------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {"pipeline": self.pipeline.to_state(), "channels": self.channel_names}

    @classmethod
    def from_state(cls, config: ExperimentConfig, state: dict[str, Any]) -> SignalModality:
        adapter = cls(config)
        adapter.pipeline = SignalPipeline.from_state(state["pipeline"])
        adapter.channel_names = list(state["channels"])
        return adapter

    def read_for_prediction(self, path: Path) -> PredictionInputs:
        """One record file, a folder of records, or a manifest CSV with a path column."""
        if path.is_file() and path.suffix.lower() in {".csv", ".tsv"} and _is_manifest(path, self.data.path_column):
            from meddl.io.tables import read_table

            table = read_table(path)
            sources = [Path(p) if Path(p).is_absolute() else (path.parent / p) for p in table[self.data.path_column]]
        elif path.is_dir():
            sources = sorted(
                p for p in path.iterdir() if p.suffix.lower() in SIGNAL_SUFFIXES and not p.name.startswith(".")
            )
            if not sources:
                raise MedDLError(f"{path}: no signal records (.hea, .dcm, .npy, .csv)")
        elif path.exists():
            sources = [path]
        else:
            raise MedDLError(f"not found: {path}")
        arrays, notes, usable = [], [], []
        for source in sources:
            try:
                arrays.append(self._read(source))
                gaps = self.last_filled_
                notes.append(f"{gaps} missing (NaN) sample(s) interpolated" if gaps else "")
                usable.append(True)
            except MedDLError as exc:
                notes.append(f"not scored: {exc}")
                usable.append(False)
        inputs = np.stack(arrays).astype(np.float32) if arrays else np.zeros((0, 1, 1), dtype=np.float32)
        return PredictionInputs(inputs, [str(s) for s in sources], notes, np.array(usable, dtype=bool))

    def explain_cases(
        self, model: torch.nn.Module, cases: PredictionInputs, scores: np.ndarray, out: Path | None
    ) -> list[str]:
        """The trace of each record with its attribution over time, as a PNG."""
        assert out is not None, "explanation files need a folder (Bundle.predict_cases checks it)"
        attributions = integrated_gradients_signal(model.cpu().eval(), cases.inputs, target=self._target(scores))
        written = []
        for j, case_id in enumerate(np.asarray(cases.ids)[cases.usable]):
            target = out / f"{j:05d}_{Path(str(case_id)).stem}.png"
            target.write_bytes(
                trace_png(cases.inputs[j], attributions[j], self.prep.sampling_rate, channels=self.channel_names)
            )
            written.append(str(target))
        return written


def signal_profile(inputs: np.ndarray, sampling_rate: float) -> dict[str, np.ndarray]:
    """Per record (averaged over channels): amplitude (SD, 5th–95th percentile range), dominant frequency and the
    share of power in four bands — the amplitude and spectrum a shift report compares."""
    features = signal_features(np.asarray(inputs, dtype=np.float32), sampling_rate)
    per_channel = features.reshape(len(inputs), -1, 12)  # (N, C, 12): mean, SD, 5 quantiles, dominant, 4 bands
    mean = per_channel.mean(axis=1)  # (N, 12)
    return {
        "amplitude SD": mean[:, 1],
        "amplitude 5th–95th percentile range": mean[:, 6] - mean[:, 2],
        "dominant frequency (Hz)": mean[:, 7],
        "power share 0.5–3 Hz": mean[:, 8],
        "power share 3–8 Hz": mean[:, 9],
        "power share 8–15 Hz": mean[:, 10],
        "power share 15–40 Hz": mean[:, 11],
    }


def _selected_channels(available: list[str], wanted: list[str] | int | None) -> list[str]:
    if wanted is None:
        return list(available)
    if isinstance(wanted, int):
        return list(available[:wanted])
    return list(wanted)


def _is_manifest(path: Path, path_column: str) -> bool:
    with path.open(encoding="utf-8", errors="replace") as handle:
        header = handle.readline()
    return path_column in [c.strip().strip('"') for c in header.replace("\t", ",").split(",")]
