"""Reading and writing DICOM ECG waveforms (e.g. *12-Lead ECG Waveform Storage*) with pydicom.

:func:`read_dicom_waveform` and :func:`write_dicom_ecg` are importable from :mod:`meddl.io.signals` as well,
where the other signal readers are.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from meddl.errors import MedDLError
from meddl.io._dicom_tags import _parse_elements
from meddl.io._signal_types import Signal, _check_not_all_nan, _first_line

__all__ = ["read_dicom_waveform", "write_dicom_ecg"]

# SCP-ECG lead codes (DICOM PS3.16 CID 3001 "ECG Leads"), used by the writer's Channel Source Sequence.
_SCPECG_LEAD_CODES = {
    "I": "5.6.3-9-1",
    "II": "5.6.3-9-2",
    "V1": "5.6.3-9-3",
    "V2": "5.6.3-9-4",
    "V3": "5.6.3-9-5",
    "V4": "5.6.3-9-6",
    "V5": "5.6.3-9-7",
    "V6": "5.6.3-9-8",
    "III": "5.6.3-9-61",
    "aVR": "5.6.3-9-62",
    "aVL": "5.6.3-9-63",
    "aVF": "5.6.3-9-64",
}
_TWELVE_LEAD_ECG_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.9.1.1"
_GENERAL_ECG_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.9.1.2"
_TO_MILLIVOLT = {"uv": 1e-3, "µv": 1e-3, "μv": 1e-3, "mv": 1.0, "v": 1e3}
_INT16_MAX = 32767


def read_dicom_waveform(path: str | Path) -> Signal:
    """Read the first waveform multiplex group of a DICOM file (e.g. a 12-lead ECG).

    Args:
        path: a DICOM waveform file.

    Returns:
        The waveform as a :class:`Signal`; µV/mV/V are converted to mV, channel names from each channel's
        *Channel Source Sequence* (``"Lead II"`` → ``"II"``).

    Raises:
        MedDLError: the file is missing, not DICOM, corrupt, has no *Waveform Sequence* (the SOP class is
            named), or its waveform data cannot be decoded.
    """
    import pydicom
    from pydicom.errors import InvalidDicomError

    path = Path(path)
    if not path.exists():
        raise MedDLError(f"DICOM waveform file not found: {path}")
    if path.is_dir():
        raise MedDLError(f"{path}: expected a DICOM waveform file, got a folder")
    try:
        dataset = pydicom.dcmread(path)
        _parse_elements(dataset, path)  # pydicom converts values lazily: all of them now, in this try
    except InvalidDicomError:
        raise MedDLError(f"{path}: not a DICOM file (no 'DICM' marker after the 128-byte preamble)") from None
    except MedDLError:
        raise
    except Exception as exc:  # pydicom's parser raises many types on bad bytes
        raise MedDLError(f"{path}: the DICOM file is truncated or corrupt: {_first_line(exc)}") from None
    groups = dataset.get("WaveformSequence")
    if not groups:
        sop_class = dataset.get("SOPClassUID")
        sop_name = getattr(sop_class, "name", None) or str(sop_class or "unknown")
        modality = dataset.get("Modality", "unknown")
        raise MedDLError(
            f"{path}: the DICOM file has no waveform (no WaveformSequence); its SOP class is {sop_name!r} "
            f"(modality {modality}) — expected an ECG waveform such as '12-lead ECG Waveform Storage'"
        )
    group = groups[0]
    try:
        samples = np.asarray(dataset.waveform_array(0), dtype=np.float64)  # (L, C), sensitivity applied
    except Exception as exc:  # missing elements raise AttributeError, bad sizes ValueError, unknown types KeyError
        raise MedDLError(f"{path}: the waveform data cannot be decoded: {_first_line(exc)}") from None
    if "SamplingFrequency" not in group:
        raise MedDLError(f"{path}: the waveform has no SamplingFrequency (003A,001A)")
    fs = float(group.SamplingFrequency)
    if not fs > 0:
        raise MedDLError(f"{path}: the waveform's SamplingFrequency (003A,001A) must be positive, got {fs:g} Hz")
    definitions = list(group.get("ChannelDefinitionSequence") or [])
    data = samples.T  # (C, L)
    names: list[str] = []
    units: list[str] = []
    for i in range(data.shape[0]):
        definition = definitions[i] if i < len(definitions) else None
        names.append(_channel_label(definition, i))
        unit = _channel_unit(definition)
        scale = _TO_MILLIVOLT.get(unit.lower())
        if scale is not None:
            data[i] *= scale
            unit = "mV"
        units.append(unit)
    _check_not_all_nan(data, names, path)
    return Signal(data.astype(np.float32), fs, names, units, str(path))


def _channel_label(definition: Any, index: int) -> str:
    if definition is not None:
        source = definition.get("ChannelSourceSequence")
        if source:
            meaning = str(source[0].get("CodeMeaning", "")).strip()
            if meaning:
                label = meaning[5:] if meaning.lower().startswith("lead ") else meaning
                return label.split("(")[0].strip() or meaning
        label = str(definition.get("ChannelLabel", "")).strip()
        if label:
            return label
    return f"ch{index}"


def _channel_unit(definition: Any) -> str:
    if definition is None or "ChannelSensitivity" not in definition:
        return ""  # no sensitivity: pydicom returns the raw stored values
    units = definition.get("ChannelSensitivityUnitsSequence")
    return str(units[0].get("CodeValue", "")).strip() if units else ""


def write_dicom_ecg(signal: Signal, path: str | Path, *, patient_id: str = "ANONYMOUS") -> Path:
    """Write a :class:`Signal` as a DICOM ECG waveform file.

    The file is a *12-Lead ECG Waveform Storage* object (or *General ECG Waveform Storage* when the signal has
    more than 13 channels, a rate outside 200–1000 Hz or more than 16,384 samples, the 12-lead IOD's limits):
    one multiplex group of signed 16-bit samples (``SS``), interleaved channel by channel, with a *Channel
    Definition Sequence* giving each lead's SCP-ECG code, its sensitivity in µV per stored unit (chosen per
    channel so its peak uses the 16-bit range), a correction factor of 1 and a baseline of 0. The
    quantisation error is at most half a sensitivity step.

    Args:
        signal: the signal; values in mV unless its units say µV or V (converted to µV).
        path: the file to write (parent folders are created).
        patient_id: the *Patient ID* to store.

    Returns:
        ``path``.
    """
    import pydicom
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.sequence import Sequence as DicomSequence
    from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid

    path = Path(path)
    channels, length = signal.data.shape
    microvolts = np.empty((channels, length), dtype=np.float64)
    for i, unit in enumerate(signal.units):
        microvolts[i] = signal.data[i].astype(np.float64) * _TO_MILLIVOLT.get(unit.lower(), 1.0) * 1e3
    if not np.all(np.isfinite(microvolts)):
        raise MedDLError(f"{path}: cannot write a DICOM ECG with NaN or infinite samples")
    twelve_lead = channels <= 13 and 200 <= signal.fs <= 1000 and length <= 16384
    sop_class = UID(_TWELVE_LEAD_ECG_SOP_CLASS if twelve_lead else _GENERAL_ECG_SOP_CLASS)
    digest = hashlib.sha256(signal.data.tobytes() + str(path.name).encode()).hexdigest()
    study_uid = generate_uid(entropy_srcs=[digest, "study"])
    instance_uid = generate_uid(entropy_srcs=[digest, "instance"])

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = instance_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dataset = Dataset()
    dataset.file_meta = meta
    dataset.SOPClassUID = sop_class
    dataset.SOPInstanceUID = instance_uid
    dataset.StudyInstanceUID = study_uid
    dataset.SeriesInstanceUID = generate_uid(entropy_srcs=[digest, "series"])
    dataset.Modality = "ECG"
    dataset.PatientID = patient_id
    dataset.PatientName = patient_id
    dataset.SeriesNumber = 1
    dataset.InstanceNumber = 1

    definitions = []
    stored = np.empty((channels, length), dtype=np.int16)
    for i, name in enumerate(signal.channels):
        peak = float(np.max(np.abs(microvolts[i]))) if length else 0.0
        sensitivity = float(f"{max(peak / _INT16_MAX, 1e-3) * 1.0001:.6g}")  # µV per stored unit; fits DS
        stored[i] = np.clip(np.round(microvolts[i] / sensitivity), -_INT16_MAX, _INT16_MAX).astype(np.int16)
        source = Dataset()
        code = _SCPECG_LEAD_CODES.get(name)
        source.CodeValue = code or name[:16]
        source.CodingSchemeDesignator = "SCPECG" if code else "99MEDDL"
        source.CodeMeaning = f"Lead {name}" if code else name
        microvolt = Dataset()
        microvolt.CodeValue = "uV"
        microvolt.CodingSchemeDesignator = "UCUM"
        microvolt.CodeMeaning = "microvolt"
        definition = Dataset()
        definition.ChannelSourceSequence = DicomSequence([source])
        definition.ChannelSensitivity = f"{sensitivity:.6g}"
        definition.ChannelSensitivityUnitsSequence = DicomSequence([microvolt])
        definition.ChannelSensitivityCorrectionFactor = "1"
        definition.ChannelBaseline = "0"
        definition.ChannelSampleSkew = "0"
        definition.WaveformBitsStored = 16
        definitions.append(definition)
    group = Dataset()
    group.MultiplexGroupTimeOffset = "0"
    group.WaveformOriginality = "ORIGINAL"
    group.NumberOfWaveformChannels = channels
    group.NumberOfWaveformSamples = length
    group.SamplingFrequency = f"{signal.fs:.6g}"
    group.MultiplexGroupLabel = "RHYTHM"
    group.ChannelDefinitionSequence = DicomSequence(definitions)
    group.WaveformBitsAllocated = 16
    group.WaveformSampleInterpretation = "SS"
    group.WaveformData = stored.T.astype("<i2").tobytes()  # (L, C): C1S1, C2S1, …, CnS1, C1S2, …
    dataset.WaveformSequence = DicomSequence([group])

    path.parent.mkdir(parents=True, exist_ok=True)
    pydicom.dcmwrite(path, dataset, enforce_file_format=True)
    return path
