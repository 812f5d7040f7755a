"""De-identification: the PS3.15 Basic Profile on pydicom's own DICOM files, tables and EHR stores, and the CLI."""

from __future__ import annotations

import json
import shutil
import stat
from datetime import date, datetime, timedelta
from pathlib import Path

import pandas as pd
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import UID

from meddl.errors import MedDLError
from meddl.io._deid_common import MAX_SHIFT_DAYS, date_offset_days, new_uid, pseudonym
from meddl.io._deid_dicom import DicomDeidentifier
from meddl.io._deid_dicom_profile import BASIC_PROFILE, KEPT_UIDS, PATIENT_CHARACTERISTICS, resolve_action
from meddl.io.deid import (
    STORE_NAME,
    deidentify,
    deidentify_dicom,
    deidentify_event_store,
    deidentify_table,
    load_salt,
)
from meddl.io.ehr import EventStore
from meddl.io.tables import read_table, write_table
from tests.test_cli import run_cli

SALT = "test-salt-7f3a9c1e5b2d8f4a6c0e"
STUDY = Path(get_testdata_file("DICOMDIR")).parent / "77654033"  # 1 patient: 3 CR series and a 4-slice CT series
ORIGINAL_IDENTIFIERS = [
    b"Doe^Archibald",
    b"77654033",
    b"CompressedSamples",
    b"Lestrade",
    b"JFK IMAGING",
    b"ABCD1234",
    b"Dr^Who",
    b"Main Street",
    b"SN-99812",
]


def _date(value: str) -> date:
    return datetime.strptime(value, "%Y%m%d").date()


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


def _private_tags(dataset: pydicom.Dataset) -> list[str]:
    found: list[str] = []
    dataset.walk(lambda _, element: found.append(str(element.tag)) if element.tag.is_private else None)
    return found


def _output_of(out: Path, original: Path, salt: str = SALT) -> pydicom.Dataset:
    sop = str(pydicom.dcmread(original, stop_before_pixels=True).SOPInstanceUID)
    (found,) = out.rglob(f"{new_uid(salt.encode(), sop)}.dcm")
    return pydicom.dcmread(found)


@pytest.fixture
def rich_ct(tmp_path: Path) -> Path:
    """CT_small with many more identifying attributes, nested ones, a private tag in an item, an overlay, a DT."""
    dataset = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    mr = pydicom.dcmread(get_testdata_file("MR_small.dcm"), stop_before_pixels=True)
    dataset.PatientBirthDate = "19600704"
    dataset.PatientAddress = "1 Main Street"
    dataset.AccessionNumber = "ACC778"
    dataset.StudyID = "ST1"
    dataset.ReferringPhysicianName = "Dr^Who"
    dataset.PerformingPhysicianName = "Dr^Who"
    dataset.OperatorsName = "Tech^Tina"
    dataset.DeviceSerialNumber = "SN-99812"
    dataset.InstitutionAddress = "2 Main Street"
    dataset.ImageComments = "patient Doe^Archibald"
    dataset.AcquisitionDateTime = "19970430112936.5+0100"
    dataset.BurnedInAnnotation = "YES"
    request = Dataset()
    request.RequestedProcedureID = "RQ1"
    request.ScheduledProcedureStepStartDate = "19970429"
    dataset.RequestAttributesSequence = Sequence([request])
    reference = Dataset()
    reference.ReferencedSOPClassUID = mr.SOPClassUID
    reference.ReferencedSOPInstanceUID = mr.SOPInstanceUID
    reference.add_new(0x00291010, "LO", "private in an item")
    reference.add_new(0x00290010, "LO", "ACME")
    context = Dataset()
    context.InstanceCreationDate = "19970401"
    reference.ReferencedFrameNumber = "1"
    dataset.ReferencedImageSequence = Sequence([reference])
    dataset.SourceImageSequence = Sequence([context])
    dataset.add_new(0x60003000, "OW", b"\x00\x01" * 8)
    path = tmp_path / "rich" / "ct.dcm"
    path.parent.mkdir()
    dataset.save_as(path)
    return path


@pytest.fixture
def dicom_folder(tmp_path: Path, rich_ct: Path) -> Path:
    folder = tmp_path / "in"
    shutil.copytree(STUDY, folder / "77654033")
    for name in ("MR_small.dcm", "examples_ybr_color.dcm", "SC_rgb_small_odd.dcm"):
        shutil.copy(get_testdata_file(name), folder / name)
    shutil.copy(rich_ct, folder / "ct.dcm")
    shutil.copy(get_testdata_file("DICOMDIR"), folder / "DICOMDIR")
    return folder


def test_every_profile_attribute_is_removed_emptied_or_replaced_and_no_private_tag_is_left(
    dicom_folder: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    log = deidentify_dicom(dicom_folder, out, SALT)
    checked = 0
    for original_path in _files(dicom_folder):
        if original_path.name == "DICOMDIR":
            continue
        original, result = pydicom.dcmread(original_path), _output_of(out, original_path)
        for element in original:
            code = BASIC_PROFILE.get(element.keyword)
            if code is None or element.keyword == "PatientID":
                continue
            action, present = resolve_action(code), element.keyword in result
            checked += 1
            if action == "X":
                assert not present, element.keyword
            elif action == "Z" or (action == "D" and element.VR == "SQ"):
                assert present and result[element.tag].is_empty, element.keyword
            elif action == "D":
                assert result[element.tag].value in ("ANONYMIZED", "0"), element.keyword
        assert result.PatientID == pseudonym(SALT.encode(), str(original.PatientID))
        assert result.PatientIdentityRemoved == "YES" and result.LongitudinalTemporalInformationModified == "MODIFIED"
        codes = [item.CodeValue for item in result.DeidentificationMethodCodeSequence]
        assert codes == ["113100", "113107"]
        assert _private_tags(result) == [], original_path.name
        assert not any(0x6000 <= element.tag.group <= 0x60FF for element in result)
        assert result.preamble == b"\x00" * 128
        assert "SourceApplicationEntityTitle" not in result.file_meta
    assert checked > 40
    ct = _output_of(out, dicom_folder / "ct.dcm")
    assert "PatientAddress" not in ct and "OtherPatientIDsSequence" not in ct and "RequestAttributesSequence" not in ct
    assert ct.PatientBirthDate == "" and ct.AccessionNumber == "" and ct.StudyID == ""
    assert ct.InstitutionName == "ANONYMIZED" and ct.DeviceSerialNumber == "ANONYMIZED"
    assert "PerformingPhysicianName" not in ct and "ImageComments" not in ct and "StudyDescription" not in ct
    assert ct.Manufacturer == "GE MEDICAL SYSTEMS" and ct.KVP == 120  # not identifying: kept
    assert log["actions"]["private_removed"] > 0 and log["actions"]["overlay_or_curve_removed"] == 1
    assert log["attributes"]["PatientName"] == {"emptied": 11}
    assert log["skipped"] == {"dicomdir": 1} and log["files_written_count"] == 11 == log["files_read"] - 1


def test_the_profile_table_names_real_attributes_with_known_actions() -> None:
    from pydicom.datadict import dictionary_VR, tag_for_keyword

    assert len(BASIC_PROFILE) > 150
    for keyword, code in BASIC_PROFILE.items():
        assert tag_for_keyword(keyword) is not None, keyword
        assert resolve_action(code) in {"X", "Z", "D", "K"}, (keyword, code)
    assert set(BASIC_PROFILE) >= PATIENT_CHARACTERISTICS
    assert all(dictionary_VR(tag_for_keyword(k)) == "UI" for k in KEPT_UIDS)  # type: ignore[arg-type]


@pytest.mark.filterwarnings("ignore:Invalid value for VR")
def test_unreadable_or_imprecise_dates_are_emptied_and_counted() -> None:
    dataset = Dataset()
    dataset.PatientID = "P1"
    dataset.StudyDate = "1997.04.30"  # the old ACR-NEMA form: read and shifted
    dataset.SeriesDate = "19970231"  # no such day
    dataset.AcquisitionDateTime = "1997"  # a year alone cannot move by days
    dataset.ContentDate = ["19970430", "19970501"]
    deidentifier = DicomDeidentifier(SALT.encode())
    deidentifier.deidentify(dataset)
    moved = _date("19970430") + timedelta(days=date_offset_days(SALT.encode(), "P1"))
    assert dataset.StudyDate == moved.strftime("%Y%m%d")
    assert list(dataset.ContentDate) == [moved.strftime("%Y%m%d"), (moved + timedelta(days=1)).strftime("%Y%m%d")]
    assert dataset.SeriesDate == "" and dataset.AcquisitionDateTime == ""
    assert deidentifier.actions["date_emptied_unreadable"] == 2 and deidentifier.actions["date_shifted"] == 2


def test_uids_map_consistently_within_a_study_and_differ_under_another_salt(dicom_folder: Path, tmp_path: Path) -> None:
    deidentify_dicom(dicom_folder, tmp_path / "a", SALT)
    deidentify_dicom(dicom_folder, tmp_path / "b", "another-salt-of-enough-length")
    ct_slices = sorted((dicom_folder / "77654033" / "CT2").iterdir())
    outputs = [_output_of(tmp_path / "a", path) for path in ct_slices]
    originals = [pydicom.dcmread(path, stop_before_pixels=True) for path in ct_slices]
    assert len({d.StudyInstanceUID for d in outputs}) == len({d.SeriesInstanceUID for d in outputs}) == 1
    assert len({d.SOPInstanceUID for d in outputs}) == 4
    assert len({d.FrameOfReferenceUID for d in outputs}) == len({d.FrameOfReferenceUID for d in originals})
    for original, result in zip(originals, outputs, strict=True):
        assert result.SOPInstanceUID == new_uid(SALT.encode(), str(original.SOPInstanceUID))
        assert result.file_meta.MediaStorageSOPInstanceUID == result.SOPInstanceUID
        assert result.SOPClassUID == original.SOPClassUID  # a class, not an instance: kept
        for uid in (result.StudyInstanceUID, result.SeriesInstanceUID, result.SOPInstanceUID):
            assert uid.startswith("2.25.") and UID(uid).is_valid and len(uid) <= 64
    cr_studies = {_output_of(tmp_path / "a", p).StudyInstanceUID for p in (dicom_folder / "77654033").glob("CR*/*")}
    assert len(cr_studies) == 1
    ct = _output_of(tmp_path / "a", dicom_folder / "ct.dcm")
    mr = _output_of(tmp_path / "a", dicom_folder / "MR_small.dcm")
    assert ct.ReferencedImageSequence[0].ReferencedSOPInstanceUID == mr.SOPInstanceUID  # the link survives
    other = _output_of(tmp_path / "b", ct_slices[0], salt="another-salt-of-enough-length")
    assert other.StudyInstanceUID != outputs[0].StudyInstanceUID and other.PatientID != outputs[0].PatientID


def test_dates_move_by_one_offset_per_patient_so_intervals_are_kept(dicom_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    deidentify_dicom(dicom_folder, out, SALT)
    original, result = pydicom.dcmread(dicom_folder / "ct.dcm"), _output_of(out, dicom_folder / "ct.dcm")
    shift = _date(result.StudyDate) - _date(original.StudyDate)
    assert timedelta(days=-MAX_SHIFT_DAYS) <= shift <= timedelta(days=-1)
    assert shift.days == date_offset_days(SALT.encode(), "1CT1")
    assert _date(result.SeriesDate) - _date(result.StudyDate) == _date(original.SeriesDate) - _date(original.StudyDate)
    assert result.AcquisitionDateTime == (_date("19970430") + shift).strftime("%Y%m%d") + "112936.5+0100"
    assert _date(result.SourceImageSequence[0].InstanceCreationDate) == _date("19970401") + shift  # nested
    assert result.StudyTime == original.StudyTime  # whole days move: times of day are kept
    # one patient, two studies six years apart (CR 2001, CT 1995): the interval between them is kept
    cr, ct = STUDY / "CR1" / "6154", STUDY / "CT2" / "17106"
    gap = _date(pydicom.dcmread(cr).StudyDate) - _date(pydicom.dcmread(ct).StudyDate)
    assert _date(_output_of(out, cr).StudyDate) - _date(_output_of(out, ct).StudyDate) == gap


def test_images_that_may_show_burned_in_text_are_warned_counted_or_left_out(dicom_folder: Path, tmp_path: Path) -> None:
    messages: list[str] = []
    log = deidentify_dicom(dicom_folder, tmp_path / "warn", SALT, progress=messages.append)
    reasons = " | ".join(w["warning"] for w in log["warnings"])
    assert log["burned_in_flagged"] == 3 == len(log["warnings"])  # US, secondary capture, BurnedInAnnotation YES
    assert "modality US" in reasons and "secondary capture" in reasons and "BurnedInAnnotation is YES" in reasons
    assert all((tmp_path / "warn" / w["file"]).is_file() for w in log["warnings"])
    assert sum("burned-in" in m for m in messages) == 3
    skipped = deidentify_dicom(dicom_folder, tmp_path / "skip", SALT, burned_in="skip")
    assert skipped["skipped"]["burned_in"] == 3 and skipped["files_written_count"] == 8
    assert not any((tmp_path / "skip" / w["file"]).exists() for w in skipped["warnings"])


def test_patient_characteristics_option_keeps_sex_and_age(tmp_path: Path) -> None:
    source = Path(get_testdata_file("CT_small.dcm"))
    deidentify_dicom(source, tmp_path / "plain", SALT)
    deidentify_dicom(source, tmp_path / "kept", SALT, keep_patient_characteristics=True)
    plain, kept = _output_of(tmp_path / "plain", source), _output_of(tmp_path / "kept", source)
    assert plain.PatientSex == "" and "PatientAge" not in plain
    assert kept.PatientSex == "O" and kept.PatientAge == "000Y"
    assert [item.CodeValue for item in kept.DeidentificationMethodCodeSequence] == ["113100", "113107", "113108"]


def test_a_table_gets_the_same_keys_and_offsets_as_the_dicom_files(dicom_folder: Path, tmp_path: Path) -> None:
    deidentify_dicom(dicom_folder, tmp_path / "dicom", SALT)
    table = pd.DataFrame(
        {
            "mrn": [77654033, 77654033, 12, None],
            "name": ["Doe^Archibald", "Doe^Archibald", "Lestrade^G", "x"],
            "admitted": ["1995-09-03", "2001-01-01", "2020-02-29 08:30", "2020-01-01"],
            "ward": ["A", "A", "B", "C"],
        }
    )
    write_table(table, tmp_path / "visits.csv")
    log = deidentify_table(
        tmp_path / "visits.csv",
        tmp_path / "clean.csv",
        SALT,
        patient_id="mrn",
        date_columns=["admitted"],
        drop=["name"],
    )
    clean = read_table(tmp_path / "clean.csv")
    ct = _output_of(tmp_path / "dicom", STUDY / "CT2" / "17106")
    assert clean["mrn"].iloc[0] == clean["mrn"].iloc[1] == ct.PatientID  # joins across files still work
    assert pd.isna(clean["mrn"].iloc[3]) and "name" not in clean.columns
    assert clean["admitted"].iloc[0] == (_date(ct.StudyDate)).isoformat()  # the same offset as the DICOM study
    assert pd.Timestamp(clean["admitted"].iloc[1]) - pd.Timestamp(clean["admitted"].iloc[0]) == pd.Timedelta(
        days=(date(2001, 1, 1) - date(1995, 9, 3)).days
    )
    assert clean["admitted"].iloc[2].endswith("T08:30:00") or clean["admitted"].iloc[2].endswith(" 08:30:00")
    assert pd.isna(clean["admitted"].iloc[3])  # no patient, no offset: emptied and counted
    assert log["dates_emptied_without_patient_id"] == 1 and log["unchanged"] == ["ward"]
    assert log["pseudonymised"] == {"mrn": 3} and log["patients"] == 2
    assert (tmp_path / "clean.deid_log.json").is_file()


def test_parquet_date_and_datetime_columns_keep_their_types(tmp_path: Path) -> None:
    table = pd.DataFrame(
        {
            "pid": ["a", "a", "b"],
            "born": [date(1950, 1, 1), date(1950, 1, 1), date(1970, 6, 1)],
            "seen": pd.to_datetime(["2020-01-01 10:00", "2020-03-01 12:00", "2020-01-01 10:00"]),
        }
    )
    table.to_parquet(tmp_path / "p.parquet")
    deidentify_table(
        tmp_path / "p.parquet", tmp_path / "o.parquet", SALT, patient_id="pid", date_columns=["born", "seen"]
    )
    clean = pd.read_parquet(tmp_path / "o.parquet")
    assert pd.api.types.is_datetime64_any_dtype(clean["seen"]) and isinstance(clean["born"].iloc[0], date)
    assert clean["seen"].iloc[1] - clean["seen"].iloc[0] == pd.Timedelta(days=60, hours=2)
    days = date_offset_days(SALT.encode(), "a")
    assert clean["born"].iloc[0] == date(1950, 1, 1) + timedelta(days=days)
    assert clean["pid"].iloc[2] == pseudonym(SALT.encode(), "b")


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from meddl.data.ehr_synth import synthetic_ehr

    return synthetic_ehr(tmp_path_factory.mktemp("ehr") / "ehr.duckdb", 40, seed=3).path


def test_an_event_store_keeps_its_rows_links_and_intervals(store: Path, tmp_path: Path) -> None:
    log = deidentify_event_store(store, tmp_path / "out", SALT)
    query = (
        "SELECT v.patient_id, v.visit_id, p.birth_date, v.admit_time, v.discharge_time FROM visits v "
        "JOIN patients p USING (patient_id) ORDER BY v.admit_time - p.birth_date, v.discharge_time - v.admit_time"
    )
    with EventStore.open(store) as before, EventStore.open(tmp_path / "out" / STORE_NAME) as after:
        assert after.counts() == before.counts() == log["rows"] and after.validate() == []
        old, new = before.connection.execute(query).fetchall(), after.connection.execute(query).fetchall()
        assert after.meta()["source_format"] == "synthetic" and "import_report" not in after.meta()
        events = after.connection.execute("SELECT count(*) FROM measurements JOIN visits USING (visit_id)").fetchone()
        assert (
            events
            == before.connection.execute("SELECT count(*) FROM measurements WHERE visit_id IS NOT NULL").fetchone()
        )
    for (pid, vid, born, admit, discharge), (new_pid, new_vid, new_born, new_admit, new_discharge) in zip(
        old, new, strict=True
    ):
        assert new_pid == pseudonym(SALT.encode(), pid) and new_vid == pseudonym(SALT.encode(), vid)
        days = date_offset_days(SALT.encode(), pid)
        assert new_admit - admit == timedelta(days=days) == new_born - born
        assert new_discharge - new_admit == discharge - admit
    assert log["patients"] == 40 and log["date_shifted"]["measurements.time"] == log["rows"]["measurements"]


def test_salt_and_original_identifiers_are_in_no_output_byte(
    dicom_folder: Path, store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    salt_file = tmp_path / "keys" / "salt.txt"
    code, _, err = run_cli(["deid", dicom_folder, "--out", tmp_path / "dicom", "--salt-file", salt_file], capsys)
    assert code == 0, err
    assert "created a new salt" in err and stat.S_IMODE(salt_file.stat().st_mode) == 0o600
    salt = salt_file.read_text().strip()
    assert len(salt) == 64 and int(salt, 16) >= 0  # 32 random bytes, hex
    table = pd.DataFrame({"patient": ["77654033", "ABCD1234"], "name": ["Doe^Archibald", "Lestrade"], "v": [1, 2]})
    write_table(table, tmp_path / "t.csv")
    args = ["--salt-file", salt_file, "--patient-id", "patient", "--drop", "name"]
    assert run_cli(["deid", tmp_path / "t.csv", "--out", tmp_path / "table" / "t.parquet", *args], capsys)[0] == 0
    assert run_cli(["deid", store, "--out", tmp_path / "ehr", "--salt-file", salt_file], capsys)[0] == 0
    with EventStore.open(store) as source:
        store_ids = [row[0].encode() for row in source.connection.execute("SELECT patient_id FROM patients").fetchall()]
    outputs = [p for folder in ("dicom", "table", "ehr") for p in _files(tmp_path / folder)]
    assert len(outputs) > 14 and any(p.name == "deid_log.json" for p in outputs)
    originals = [
        str(pydicom.dcmread(p, stop_before_pixels=True).StudyInstanceUID).encode()
        for p in _files(dicom_folder)
        if p.name != "DICOMDIR"
    ]
    for path in outputs:
        data = path.read_bytes()
        assert salt.encode() not in data and salt.encode().hex().encode() not in data, path
        for secret in [*ORIGINAL_IDENTIFIERS, *originals, *store_ids[:10]]:
            assert secret not in data, (path, secret)


def test_cli_deid_one_line_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    write_table(pd.DataFrame({"pid": [1, 2], "seen": ["03/01/2020", "2020-01-02"]}), tmp_path / "t.csv")
    salt = ["--salt-file", tmp_path / "salt.txt"]
    code, _, err = run_cli(
        ["deid", tmp_path / "t.csv", "--out", tmp_path / "o.csv", "--id-column", "mrn", *salt], capsys
    )
    assert code == 2 and "'mrn'" in err and "its columns are: pid, seen" in err and "Traceback" not in err
    code, _, err = run_cli(
        [
            "deid",
            tmp_path / "t.csv",
            "--out",
            tmp_path / "o.csv",
            "--patient-id",
            "pid",
            "--date-column",
            "seen",
            *salt,
        ],
        capsys,
    )
    assert code == 2 and "'seen'" in err and "'03/01/2020' (row 2)" in err
    code, _, err = run_cli(["deid", tmp_path / "t.csv", "--out", tmp_path / "t.csv", "--drop", "seen", *salt], capsys)
    assert code == 2 and "input" in err and read_table(tmp_path / "t.csv").shape == (2, 2)
    shutil.copy(get_testdata_file("CT_small.dcm"), tmp_path / "ct.dcm")
    code, _, err = run_cli(["deid", tmp_path / "ct.dcm", "--out", tmp_path / "d", "--id-column", "x", *salt], capsys)
    assert code == 2 and "--id-column" in err and "tables" in err
    code, _, err = run_cli(
        ["deid", tmp_path / "ct.dcm", "--out", tmp_path / "salt_here", "--salt-file", tmp_path / "salt_here" / "s"],
        capsys,
    )
    assert code == 2 and "salt" in err
    monkeypatch.delenv("MEDDL_DEID_SALT", raising=False)
    code, _, err = run_cli(["deid", tmp_path / "ct.dcm", "--out", tmp_path / "d"], capsys)
    assert code == 2 and "--salt-file" in err and "MEDDL_DEID_SALT" in err


def test_bad_files_name_the_file_or_are_counted_when_skipped(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(get_testdata_file("CT_small.dcm"), folder / "a.dcm")
    (folder / "notes.txt").write_text("not an image")
    with pytest.raises(MedDLError, match=r"notes\.txt.*not a DICOM file"):
        deidentify_dicom(folder, tmp_path / "out", SALT)
    messages: list[str] = []
    log = deidentify_dicom(folder, tmp_path / "out2", SALT, on_bad_file="skip", progress=messages.append)
    assert log["skipped"] == {"unreadable": 1} and log["files_written_count"] == 1
    assert any("notes.txt" in m for m in messages) and "notes.txt" not in json.dumps(log)
    with pytest.raises(MedDLError, match=r"not a MedDL event store|not a readable DuckDB"):
        (tmp_path / "x.duckdb").write_bytes(b"nope")
        deidentify_event_store(tmp_path / "x.duckdb", tmp_path / "o3", SALT)
    with pytest.raises(MedDLError, match="needs --patient-id"):
        write_table(pd.DataFrame({"d": ["2020-01-01"]}), tmp_path / "t.csv")
        deidentify_table(tmp_path / "t.csv", tmp_path / "o.csv", SALT, date_columns=["d"])


def test_overwrite_replaces_only_what_meddl_wrote(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = Path(get_testdata_file("CT_small.dcm"))
    out = tmp_path / "out"
    first = deidentify_dicom(source, out, SALT)
    (out / "mine.txt").write_text("a note of the user's")
    with pytest.raises(MedDLError, match=r"not empty.*--overwrite"):
        deidentify_dicom(source, out, SALT)
    second = deidentify_dicom(source, out, "a-different-salt-value-123", overwrite=True)
    assert not (out / first["files_written"][0]).exists() and (out / second["files_written"][0]).is_file()
    assert (out / "mine.txt").read_text() == "a note of the user's"
    with pytest.raises(MedDLError, match="apart from the input"):
        deidentify_dicom(tmp_path, tmp_path / "inside", SALT)
    monkeypatch.setenv("MEDDL_DEID_SALT", "short")
    with pytest.raises(MedDLError, match="at least 16"):
        load_salt()
    monkeypatch.setenv("MEDDL_DEID_SALT", SALT)
    assert load_salt() == (SALT.encode(), None)
    with pytest.raises(MedDLError, match="for DICOM input only"):
        write_table(pd.DataFrame({"a": [1]}), tmp_path / "t.csv")
        deidentify(tmp_path / "t.csv", tmp_path / "o.csv", SALT, id_columns=["a"], burned_in="skip")
