"""Modalities turn bad inputs and settings into one error naming the file, the place and the field to change: a
log of x + 1 over values at or below -1 (expression), a label file's name (expression), a FASTA without labels
(sequence), a manifest's spreadsheet row (signal), .npy records without data.sampling_rate and a reversed band-pass
(signal settings, reported before any record is read)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from meddl.data.ecg import write_ecg_dataset
from meddl.errors import MedDLError
from meddl.modalities.expression import ExpressionModality
from meddl.modalities.schema import parse_config
from meddl.modalities.sequence import SequenceModality
from meddl.modalities.signal import SignalModality


def _quiet(message: str) -> None:
    pass


def _config(data: dict[str, Any], task: str = "binary", **sections: Any) -> Any:
    return parse_config({"name": "bad-input", "task": task, "data": data, **sections})


def _expression(folder: Path, log: str, labels: str = "sample_id,response\n") -> ExpressionModality:
    """Six samples of raw counts (above 100, so ``log: auto`` chooses log2); S3 has -35 for G2."""
    rows = [f"S{i},{200 + i},{300 + i},{400 + 7 * i}" for i in range(1, 7)]
    rows[2] = "S3,203,-35,421"
    (folder / "counts.csv").write_text("sample_id,G1,G2,G3\n" + "\n".join(rows) + "\n")
    if labels == "sample_id,response\n":
        labels += "".join(f"S{i},{'yes' if i % 2 else 'no'}\n" for i in range(1, 7))
    (folder / "labels.csv").write_text(labels)
    data = {"kind": "expression", "path": str(folder / "counts.csv"), "labels": "labels.csv", "target": "response"}
    config = _config({**data, "positive_label": "yes"}, preprocess={"log": log, "select": "none"})
    return ExpressionModality(config)


@pytest.mark.parametrize("log", ["log2", "log1p"])
def test_forced_log_over_negative_values_names_file_gene_sample_row_and_field(tmp_path: Path, log: str) -> None:
    with pytest.raises(MedDLError) as error:
        _expression(tmp_path, log).load(_quiet)
    message = str(error.value)
    assert message.startswith(f"{tmp_path / 'counts.csv'}: gene 'G2', sample 'S3' (row 4) is -35; ")
    assert f"preprocess.log: {log}" in message and "'none'" in message and "fit:" not in message


def test_auto_log_chosen_on_training_rows_names_a_negative_value_in_another_row(tmp_path: Path) -> None:
    modality = _expression(tmp_path, "auto")
    prepared = modality.load(_quiet)  # nothing forces a log yet
    train = np.array([i for i, s in enumerate(prepared.sample_ids) if s != "S3"])
    with pytest.raises(
        MedDLError, match=r"counts\.csv: gene 'G2', sample 'S3' \(row 4\) is -35; preprocess\.log: auto"
    ):
        modality.fit(prepared, train)


def test_label_table_problems_name_the_label_file(tmp_path: Path) -> None:
    labels = tmp_path / "labels.csv"
    with pytest.raises(MedDLError, match=f"^{labels}: target column 'response' not found"):
        _expression(tmp_path, "none", "sample_id,outcome\nS1,yes\n").load(_quiet)
    with pytest.raises(MedDLError, match=f"^{labels}: duplicated sample id.*'S1' \\(rows 2, 3\\)"):
        _expression(tmp_path, "none", "sample_id,response\nS1,yes\nS1,no\n").load(_quiet)


def test_fasta_without_labels_names_the_file(tmp_path: Path) -> None:
    fasta = tmp_path / "sequences.fa"
    fasta.write_text(">a label=1\nACGTACGT\n>b\nACGTACGT\n")
    modality = SequenceModality(_config({"kind": "sequence", "path": str(fasta), "positive_label": "1"}))
    with pytest.raises(MedDLError, match=f"^{fasta}: 1 FASTA record\\(s\\) have no 'label=' .*'b' \\(line 3\\)"):
        modality.load(_quiet)


def _signals(folder: Path, **data: Any) -> tuple[Path, pd.DataFrame, dict[str, Any]]:
    manifest = write_ecg_dataset(folder, 8, task="heart_rate", fmt="npy", fs=100, duration=2, seed=0)
    settings = {"kind": "signal", "path": str(manifest), "target": "heart_rate", **data}
    return manifest, pd.read_csv(manifest), settings


@pytest.mark.parametrize("on_bad_file", ["error", "skip"])
def test_signal_label_errors_name_the_spreadsheet_row(tmp_path: Path, on_bad_file: str) -> None:
    manifest, frame, data = _signals(tmp_path, sampling_rate=100, on_bad_file=on_bad_file)
    frame["heart_rate"] = frame["heart_rate"].astype(object)
    frame.loc[4, "heart_rate"] = "fast"  # 0-based position 4: spreadsheet row 6
    frame.to_csv(manifest, index=False)
    if on_bad_file == "skip":  # a skipped record above it must not shift the row named
        (manifest.parent / frame["path"].iloc[1]).write_bytes(b"not an array")
    preprocess = {"sampling_rate": 50, "bandpass": [0.5, 20.0], "length_seconds": 2}
    modality = SignalModality(_config(data, "regression", preprocess=preprocess))
    with pytest.raises(MedDLError, match=r"manifest\.csv: column 'heart_rate' .*'fast' \(row 6\)"):
        modality.load(_quiet)


def test_npy_records_without_sampling_rate_are_one_settings_error_before_reading(tmp_path: Path) -> None:
    manifest, frame, data = _signals(tmp_path, on_bad_file="error")
    (manifest.parent / frame["path"].iloc[0]).write_bytes(b"not an array")  # never read: the settings come first
    modality = SignalModality(_config(data, "regression", preprocess={"sampling_rate": 50, "bandpass": [0.5, 20.0]}))
    with pytest.raises(MedDLError) as error:
        modality.load(_quiet)
    message = str(error.value)
    assert message.startswith(f"{manifest}: 8 record(s) are .npy arrays") and "row 2: ecg00001.npy" in message
    assert "data.sampling_rate" in message and "on_bad_file" not in message and "pass fs" not in message


@pytest.mark.parametrize(
    ("bandpass", "shown"),
    [([20.0, 0.5], r"got \[20\.0, 0\.5\]; write \[0\.5, 20\]"), ([5.0, 5.0], r"got \[5\.0, 5\.0\]$")],
)
def test_reversed_bandpass_is_a_configuration_error(tmp_path: Path, bandpass: list[float], shown: str) -> None:
    data = {"kind": "signal", "path": str(tmp_path / "manifest.csv"), "target": "heart_rate"}  # never read
    with pytest.raises(
        MedDLError, match=f"^experiment: preprocess\\.bandpass: the low cut-off must be below the high one, {shown}"
    ):
        _config(data, "regression", preprocess={"bandpass": bandpass})


def test_valid_bandpasses_are_accepted(tmp_path: Path) -> None:
    data = {"kind": "signal", "path": str(tmp_path / "manifest.csv"), "target": "heart_rate"}
    assert _config(data, "regression", preprocess={"bandpass": [0, 40]}).preprocess.bandpass == [0, 40]
    assert _config(data, "regression", preprocess={"bandpass": None}).preprocess.bandpass is None
    with pytest.raises(MedDLError, match=r"^experiment: preprocess\.bandpass: expected \[low, high\]"):
        _config(data, "regression", preprocess={"bandpass": [0.5]})
