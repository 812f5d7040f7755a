"""Signal readers: WFDB, DICOM waveforms, NumPy/CSV arrays, dispatch and manifests — and every bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

from meddl.errors import MedDLError
from meddl.io.signals import (
    ECG_12_LEADS,
    Signal,
    read_dicom_waveform,
    read_signal,
    read_signal_array,
    read_wfdb,
    signal_manifest,
    write_dicom_ecg,
    write_wfdb,
)


def _twelve_lead(fs: float = 500.0, seconds: float = 2.0) -> Signal:
    time = np.arange(int(fs * seconds)) / fs
    data = np.stack([(i + 1) * 0.2 * np.sin(2 * np.pi * (1 + i / 4) * time) - 0.1 * i for i in range(12)])
    return Signal(data, fs, list(ECG_12_LEADS), ["mV"] * 12, "")


def test_wfdb_round_trip_keeps_values_rate_names_and_units(tmp_path: Path) -> None:
    signal = _twelve_lead()
    header = write_wfdb(signal, tmp_path, "rec1")
    assert header == tmp_path / "rec1.hea" and (tmp_path / "rec1.dat").exists()
    for path in (tmp_path / "rec1", header, tmp_path):  # record name, header, folder of one record
        back = read_wfdb(path)
        assert back.data.dtype == np.float32 and back.data.shape == (12, 1000)
        assert back.fs == 500.0
        assert back.channels == list(ECG_12_LEADS)
        assert back.units == ["mV"] * 12
        # 16-bit storage over each channel's range: error well below a microvolt per unit of range.
        np.testing.assert_allclose(back.data, signal.data, atol=1e-3)


def test_wfdb_header_without_its_dat_file_names_the_missing_file(tmp_path: Path) -> None:
    write_wfdb(_twelve_lead(), tmp_path, "rec1")
    (tmp_path / "rec1.dat").unlink()
    with pytest.raises(MedDLError, match=r"rec1\.hea.*signal file\(s\) \['rec1\.dat'\] that do not exist"):
        read_signal(tmp_path / "rec1.hea")


def test_wfdb_missing_header_and_truncated_dat_are_named(tmp_path: Path) -> None:
    with pytest.raises(MedDLError, match=r"WFDB header not found: .*nothing\.hea"):
        read_wfdb(tmp_path / "nothing")
    write_wfdb(_twelve_lead(), tmp_path, "rec2")
    dat = tmp_path / "rec2.dat"
    dat.write_bytes(dat.read_bytes()[:1001])  # half a sample frame left
    with pytest.raises(MedDLError, match=r"rec2: the WFDB record is unreadable or corrupt"):
        read_wfdb(tmp_path / "rec2")


def test_wfdb_channel_of_only_nan_is_an_error(tmp_path: Path) -> None:
    signal = _twelve_lead()
    signal.data[3] = np.nan
    write_wfdb(signal, tmp_path, "gap")
    with pytest.raises(MedDLError, match=r"channel\(s\) \['aVR'\] hold no valid sample"):
        read_wfdb(tmp_path / "gap")


def test_dicom_ecg_round_trip_is_a_real_12_lead_waveform(tmp_path: Path) -> None:
    signal = _twelve_lead()
    path = write_dicom_ecg(signal, tmp_path / "ecg.dcm", patient_id="P7")
    dataset = pydicom.dcmread(path)
    assert dataset.SOPClassUID.name == "12-lead ECG Waveform Storage"
    group = dataset.WaveformSequence[0]
    assert (group.NumberOfWaveformChannels, group.NumberOfWaveformSamples) == (12, 1000)
    assert group.WaveformBitsAllocated == 16 and group.WaveformSampleInterpretation == "SS"
    assert group.ChannelDefinitionSequence[1].ChannelSourceSequence[0].CodeValue == "5.6.3-9-2"  # lead II
    assert dataset.PatientID == "P7"
    back = read_dicom_waveform(path)
    assert back.channels == list(ECG_12_LEADS)
    assert back.units == ["mV"] * 12  # stored in µV, read back in mV
    assert back.fs == 500.0 and back.data.shape == (12, 1000) and back.data.dtype == np.float32
    step = np.abs(signal.data).max(axis=1, keepdims=True) / 32767  # one quantisation step per channel
    assert np.all(np.abs(back.data - signal.data) <= step)
    assert read_signal(path).channels == list(ECG_12_LEADS)  # dispatch by suffix


def test_dicom_without_waveform_names_its_sop_class(tmp_path: Path) -> None:
    dataset = Dataset()
    dataset.file_meta = FileMetaDataset()
    dataset.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dataset.file_meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    dataset.SOPClassUID = SecondaryCaptureImageStorage
    dataset.SOPInstanceUID = generate_uid()
    dataset.file_meta.MediaStorageSOPInstanceUID = dataset.SOPInstanceUID
    dataset.Modality = "OT"
    path = tmp_path / "image.dcm"
    dataset.save_as(path, enforce_file_format=True)
    with pytest.raises(MedDLError, match=r"image\.dcm: .*no WaveformSequence.*'Secondary Capture Image Storage'"):
        read_dicom_waveform(path)


def test_not_a_dicom_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "notes.dcm"
    path.write_text("this is a text file, not DICOM\n" * 10)
    with pytest.raises(MedDLError, match=r"notes\.dcm: not a DICOM file"):
        read_signal(path)


def test_npy_one_and_two_dimensional_arrays(tmp_path: Path) -> None:
    np.save(tmp_path / "one.npy", np.arange(100, dtype=np.float64))
    np.save(tmp_path / "two.npy", np.ones((3, 50), dtype=np.int16))
    one = read_signal(tmp_path / "one.npy", fs=100)
    assert one.data.shape == (1, 100) and one.data[0, 99] == 99.0 and one.fs == 100.0
    two = read_signal_array(tmp_path / "two.npy", fs=50)
    assert two.data.shape == (3, 50) and two.data.dtype == np.float32 and two.channels == ["ch0", "ch1", "ch2"]
    with pytest.raises(MedDLError, match=r"one\.npy: a \.npy signal does not store its sampling rate"):
        read_signal(tmp_path / "one.npy")
    np.save(tmp_path / "samples_first.npy", np.ones((500, 12)))
    with pytest.raises(MedDLError, match=r"samples_first\.npy: array of shape \(500, 12\) has more channels"):
        read_signal(tmp_path / "samples_first.npy", fs=250)


def test_csv_with_time_column_gives_fs_and_channels(tmp_path: Path) -> None:
    time = np.arange(200) / 250
    frame = pd.DataFrame({"time": time, "I": np.sin(time), "II": np.cos(time)})
    frame.to_csv(tmp_path / "ecg.csv", index=False)
    signal = read_signal(tmp_path / "ecg.csv")
    assert signal.fs == pytest.approx(250.0)
    assert signal.channels == ["I", "II"] and signal.data.shape == (2, 200)
    np.testing.assert_allclose(signal.data[1], np.cos(time), atol=1e-6)
    with pytest.raises(MedDLError, match=r"fs=100 Hz disagrees with the time column \(250 Hz\)"):
        read_signal(tmp_path / "ecg.csv", fs=100)
    frame.drop(columns="time").to_csv(tmp_path / "no_time.csv", index=False)
    assert read_signal(tmp_path / "no_time.csv", fs=500).fs == 500.0
    with pytest.raises(MedDLError, match=r"no_time\.csv: no 'time' column; pass fs"):
        read_signal(tmp_path / "no_time.csv")


def test_csv_non_numeric_cell_names_row_column_value_and_count(tmp_path: Path) -> None:
    frame = pd.DataFrame({"I": [0.1, 0.2, 0.3, 0.4], "II": ["0.5", "lead off", "0.7", "x"]})
    frame.to_csv(tmp_path / "bad.csv", index=False)
    # Header is row 1, so the second data row is row 3.
    with pytest.raises(MedDLError, match=r"bad\.csv: 2 non-numeric cell\(s\), e\.g\. row 3, column 'II': 'lead off'"):
        read_signal(tmp_path / "bad.csv", fs=100)


def test_unsupported_format_and_missing_file(tmp_path: Path) -> None:
    (tmp_path / "trace.edf").write_bytes(b"0" * 300)
    with pytest.raises(MedDLError, match=r"trace\.edf: unsupported signal format '\.edf'"):
        read_signal(tmp_path / "trace.edf")
    with pytest.raises(MedDLError, match=r"signal file not found: .*absent\.npy"):
        read_signal(tmp_path / "absent.npy", fs=100)


def test_manifest_resolves_paths_and_names_rows_with_missing_files(tmp_path: Path) -> None:
    records = tmp_path / "records"
    write_wfdb(_twelve_lead(), records, "a")
    np.save(records / "b.npy", np.zeros((1, 100)))
    pd.DataFrame(
        {"file": ["records/a", "records/b.npy"], "rhythm": ["sinus", "irregular"], "patient": ["P1", "P1"]}
    ).to_csv(tmp_path / "manifest.csv", index=False)
    manifest = signal_manifest(tmp_path / "manifest.csv", path_column="file", target="rhythm", patient_id="patient")
    assert list(manifest.columns) == ["path", "label", "patient_id", "row"]
    assert manifest["path"].tolist() == [str((records / "a").resolve()), str((records / "b.npy").resolve())]
    assert manifest["label"].tolist() == ["sinus", "irregular"]
    assert manifest["patient_id"].tolist() == ["P1", "P1"] and manifest["row"].tolist() == [2, 3]
    assert read_signal(manifest["path"][0]).data.shape == (12, 1000)  # a record name without .hea reads as WFDB

    pd.DataFrame({"path": ["records/a.hea", "records/gone.hea", "records/b.npy"], "label": [1, 0, 1]}).to_csv(
        tmp_path / "broken.csv", index=False
    )
    with pytest.raises(MedDLError, match=r"broken\.csv: 1 signal file\(s\) listed in 'path' do not exist \(row 3: "):
        signal_manifest(tmp_path / "broken.csv")
    with pytest.raises(MedDLError, match=r"target column 'outcome' not found"):
        signal_manifest(tmp_path / "broken.csv", target="outcome")


def test_manifest_without_patient_column_makes_each_record_its_own_patient(tmp_path: Path) -> None:
    np.save(tmp_path / "x.npy", np.zeros(10))
    np.save(tmp_path / "y.npy", np.zeros(10))
    pd.DataFrame({"path": ["x.npy", "y.npy"], "label": [1.5, None]}).to_csv(tmp_path / "m.csv", index=False)
    manifest = signal_manifest(tmp_path / "m.csv")
    assert manifest["patient_id"].nunique() == 2
    assert manifest["label"].isna().tolist() == [False, True]  # a blank label is kept for the pipeline to count
