"""De-identifying DICOM datasets and files with the Basic Application Level Confidentiality Profile (PS3.15 Annex E).

One dataset at a time and no state between them: every replacement (Patient ID key, UIDs, date shift) is a keyed
hash of the original value, so files of one study processed in any order, in any run with the same salt, stay linked.
The public entry point is :func:`meddl.io.deid.deidentify_dicom`.
"""

from __future__ import annotations

import re
import warnings
from collections import Counter
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from meddl.errors import MedDLError
from meddl.io._deid_common import date_offset_days, new_uid, normalize_id, pseudonym
from meddl.io._deid_dicom_profile import (
    BASIC_PROFILE,
    BURNED_IN_MODALITIES,
    BURNED_IN_SOP_CLASS_PREFIXES,
    DUMMY_TEXT,
    KEPT_UIDS,
    PATIENT_CHARACTERISTICS,
    REMOVED_FILE_META,
    resolve_action,
)

__all__ = ["DicomDeidentifier", "burned_in_reasons", "dicom_files"]

_STANDARD_UID_ROOT = "1.2.840.10008."
_DICOMDIR_CLASS = "1.2.840.10008.1.3.10"
_TEXT_VRS = {"AE", "CS", "LO", "LT", "PN", "SH", "ST", "UC", "UT", "UR"}
_NUMBER_TEXT_VRS = {"DS", "IS"}
_DT_REST = re.compile(r"(\d{2}(\d{2}(\d{2}(\.\d{1,6})?)?)?)?([+-]\d{4})?")
_METHOD_CODES = {
    "113100": "Basic Application Confidentiality Profile",
    "113107": "Retain Longitudinal Temporal Information Modified Dates Option",
    "113108": "Retain Patient Characteristics Option",
}


def dicom_files(source: Path) -> list[Path]:
    """The file itself, or every file under a folder (hidden files and folders left out), sorted.

    Raises:
        MedDLError: the folder holds no file.
    """
    if source.is_file():
        return [source]
    files = sorted(
        path
        for path in source.rglob("*")
        if path.is_file() and not any(part.startswith(".") for part in path.relative_to(source).parts)
    )
    if not files:
        raise MedDLError(f"{source}: the folder holds no DICOM file")
    return files


def burned_in_reasons(dataset: Any) -> list[str]:
    """Why the pixels (or encapsulated document) of ``dataset`` may show identifying text or a face (empty: none)."""
    reasons = []
    if str(dataset.get("BurnedInAnnotation", "")).strip().upper() == "YES":
        reasons.append("BurnedInAnnotation is YES")
    if str(dataset.get("RecognizableVisualFeatures", "")).strip().upper() == "YES":
        reasons.append("RecognizableVisualFeatures is YES")
    modality = str(dataset.get("Modality", "")).strip().upper()
    if modality in BURNED_IN_MODALITIES:
        reasons.append(f"modality {modality} ({BURNED_IN_MODALITIES[modality]})")
    sop_class = str(dataset.get("SOPClassUID", "")).strip()
    for prefix, name in BURNED_IN_SOP_CLASS_PREFIXES.items():
        if sop_class == prefix or sop_class.startswith(prefix + "."):
            reasons.append(f"SOP class {name}")
    return reasons


class DicomDeidentifier:
    """Applies the profile to datasets, counting every action.

    Args:
        salt: the secret key of every replacement.
        keep_patient_characteristics: apply the Retain Patient Characteristics Option (sex, age, size, weight…).
    """

    def __init__(self, salt: bytes, *, keep_patient_characteristics: bool = False) -> None:
        self.salt = salt
        self.keep_patient_characteristics = keep_patient_characteristics
        self.actions: Counter[str] = Counter()
        self.attributes: dict[str, Counter[str]] = {}
        self._uids: dict[str, str] = {}

    def method_codes(self) -> dict[str, str]:
        """The CID 7050 codes of what is applied: code value → meaning."""
        codes = ["113100", "113107"] + (["113108"] if self.keep_patient_characteristics else [])
        return {code: _METHOD_CODES[code] for code in codes}

    def deidentify(self, dataset: Any) -> None:
        """De-identify ``dataset`` (and its file meta information) in place and mark it as de-identified."""
        from pydicom.dataset import Dataset
        from pydicom.sequence import Sequence

        patient = normalize_id(dataset.get("PatientID"))
        study = normalize_id(dataset.get("StudyInstanceUID"))
        # Without a Patient ID the study is the unit whose dates keep their intervals.
        days = date_offset_days(self.salt, patient if patient is not None else f"study:{study or ''}")
        self._clean(dataset, days)
        meta = getattr(dataset, "file_meta", None)
        if meta is not None:
            for keyword in REMOVED_FILE_META:
                if keyword in meta:
                    del meta[keyword]
            if meta.get("MediaStorageSOPInstanceUID"):
                meta.MediaStorageSOPInstanceUID = self.uid(str(meta.MediaStorageSOPInstanceUID))
        if getattr(dataset, "preamble", None) is not None:
            dataset.preamble = b"\x00" * 128  # a preamble may hold another format's header (TIFF) with names
        dataset.PatientIdentityRemoved = "YES"
        dataset.LongitudinalTemporalInformationModified = "MODIFIED"
        codes = self.method_codes()
        dataset.DeidentificationMethod = ["MedDL deid", *codes.values()]
        items = []
        for value, meaning in codes.items():
            item = Dataset()
            item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, "DCM", meaning
            items.append(item)
        dataset.DeidentificationMethodCodeSequence = Sequence(items)

    def uid(self, value: str) -> str:
        """The replacement of one UID (memoised: a study's UIDs repeat in every file)."""
        if value not in self._uids:
            self._uids[value] = new_uid(self.salt, value)
        return self._uids[value]

    def _count(self, keyword: str, action: str) -> None:
        self.actions[action] += 1
        if keyword:
            self.attributes.setdefault(keyword, Counter())[action] += 1

    def _clean(self, dataset: Any, days: int) -> None:
        for element in list(dataset):
            tag, keyword, vr = element.tag, element.keyword, element.VR
            if tag.is_private:
                del dataset[tag]
                self.actions["private_removed"] += 1
                continue
            if 0x5000 <= tag.group <= 0x50FF or 0x6000 <= tag.group <= 0x60FF:
                del dataset[tag]  # curves and overlays: drawn annotations and their text
                self.actions["overlay_or_curve_removed"] += 1
                continue
            if tag.element == 0:
                del dataset[tag]  # a group length, wrong once elements are removed
                continue
            if keyword == "PatientID":
                original = normalize_id(element.value)
                element.value = pseudonym(self.salt, original) if original is not None else ""
                self._count(keyword, "pseudonymised" if original is not None else "emptied")
                continue
            code = BASIC_PROFILE.get(keyword)
            if code is not None and self.keep_patient_characteristics and keyword in PATIENT_CHARACTERISTICS:
                code = "K"
            action = resolve_action(code) if code is not None else None
            if action == "X":
                del dataset[tag]
                self._count(keyword, "removed")
            elif action == "Z" or (action == "D" and vr == "SQ"):
                element.value = element.empty_value  # a dummy item would carry the original's content
                self._count(keyword, "emptied")
            elif action == "D":
                element.value = _dummy(vr)
                self._count(keyword, "dummy")
            elif vr == "SQ":
                for item in element.value:
                    self._clean(item, days)
            elif vr == "UI":
                self._replace_uids(element, keyword)
            elif vr in ("DA", "DT") and element.value not in (None, ""):
                self._shift_dates(element, keyword, days)

    def _replace_uids(self, element: Any, keyword: str) -> None:
        if keyword in KEPT_UIDS or element.value in (None, ""):
            return
        values = _values(element.value)
        new = [v if not v or v.startswith(_STANDARD_UID_ROOT) else self.uid(v) for v in values]
        if new != values:
            element.value = new if len(new) > 1 else new[0]
            self._count(keyword, "uid_replaced")

    def _shift_dates(self, element: Any, keyword: str, days: int) -> None:
        shift = _shift_date if element.VR == "DA" else _shift_datetime
        shifted = [shift(value, days) if value else "" for value in _values(element.value)]
        if any(value is None for value in shifted):
            element.value = element.empty_value
            self._count(keyword, "date_emptied_unreadable")
        else:
            element.value = shifted if len(shifted) > 1 else shifted[0]
            self._count(keyword, "date_shifted")


def _values(value: Any) -> list[str]:
    if isinstance(value, str | bytes) or not hasattr(value, "__iter__"):
        return [str(value).strip()]
    return [str(v).strip() for v in value]


def _dummy(vr: str) -> Any:
    if vr in _TEXT_VRS:
        return DUMMY_TEXT
    if vr in _NUMBER_TEXT_VRS:
        return "0"
    if vr == "TM":
        return "000000"
    if vr in ("OB", "OW", "OF", "OD", "OL", "OV", "UN"):
        return b"\x00\x00"
    return 0


def _shift_date(value: str, days: int) -> str | None:
    """``YYYYMMDD`` (or the old ``YYYY.MM.DD``) moved by ``days``; None if it is not a readable date."""
    text = value.replace(".", "") if re.fullmatch(r"\d{4}\.\d{2}\.\d{2}", value) else value
    if not re.fullmatch(r"\d{8}", text):
        return None
    try:
        moved = date(int(text[:4]), int(text[4:6]), int(text[6:])) + timedelta(days=days)
    except (ValueError, OverflowError):
        return None
    return f"{moved.year:04d}{moved.month:02d}{moved.day:02d}"


def _shift_datetime(value: str, days: int) -> str | None:
    """``YYYYMMDD[HH[MM[SS[.F]]]][&ZZXX]`` with its date moved by ``days`` and the rest kept; None when the value has
    less than a day's precision (a year or month alone cannot be moved by days) or is not readable."""
    date_part = _shift_date(value[:8], days)
    if date_part is None or not _DT_REST.fullmatch(value[8:]):
        return None
    return date_part + value[8:]


class _OutputClash(MedDLError):
    """An output file that exists already: never overwritten, whatever ``on_bad_file`` says."""


def deidentify_files(
    files: list[Path],
    out: Path,
    deidentifier: DicomDeidentifier,
    *,
    burned_in: str,
    on_bad_file: str,
    progress: Callable[[str], None],
) -> dict[str, Any]:
    """Read, de-identify and write each file as ``out/<patient key>/<study UID>/<series UID>/<SOP UID>.dcm``.

    Returns:
        The parts of the log about files (counts, new names, warnings): never an input path or name.
    """
    written: list[str] = []
    warned: list[dict[str, str]] = []
    skipped: Counter[str] = Counter()
    seen: set[str] = set()
    for path in files:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # pydicom's warnings quote values: they stay off the console
                outcome = _deidentify_file(path, out, deidentifier, seen, burned_in == "skip")
        except _OutputClash:
            raise
        except MedDLError as error:
            if on_bad_file != "skip":
                raise
            skipped["unreadable"] += 1
            progress(f"skipped {error}")
            continue
        except Exception as error:  # pydicom raises many types on values it cannot encode
            message = f"{path}: cannot be de-identified and written: {error}"
            if on_bad_file != "skip":
                raise MedDLError(message) from None
            skipped["unreadable"] += 1
            progress(f"skipped {message}")
            continue
        status, relative, reasons = outcome
        if status != "written":
            skipped[status] += 1
            progress(f"skipped {path}: {_SKIP_REASONS[status]}" + (f" ({'; '.join(reasons)})" if reasons else ""))
            if status == "burned_in":
                warned.append(
                    {"file": relative, "warning": f"not written, may carry burned-in text: {'; '.join(reasons)}"}
                )
            continue
        written.append(relative)
        if reasons:
            warned.append({"file": relative, "warning": f"may carry burned-in text: {'; '.join(reasons)}"})
            progress(f"warning: {path} may carry burned-in text ({'; '.join(reasons)}); check its pixels")
    parts = [name.split("/") for name in written]
    return {
        "files_read": len(files),
        "files_written_count": len(written),
        "patients": len({p[0] for p in parts}),
        "studies": len({p[1] for p in parts}),
        "series": len({p[2] for p in parts}),
        "burned_in_flagged": len(warned),
        "skipped": dict(skipped),
        "warnings": warned,
        "files_written": written,
    }


_SKIP_REASONS = {
    "dicomdir": "a DICOMDIR index (it lists names and IDs); rebuild one on the output if you need it",
    "duplicate_sop_instance": "another file has the same SOP Instance UID",
    "burned_in": "may carry burned-in text",
}


def _deidentify_file(
    path: Path, out: Path, deidentifier: DicomDeidentifier, seen: set[str], skip_burned_in: bool
) -> tuple[str, str, list[str]]:
    """De-identify one file and write it unless it is skipped: (status, new relative name, burned-in reasons)."""
    from meddl.io.dicom import _read_dataset

    if path.name.upper() == "DICOMDIR":
        return "dicomdir", "", []
    dataset = _read_dataset(path)
    if str(getattr(dataset, "file_meta", {}).get("MediaStorageSOPClassUID", "")) == _DICOMDIR_CLASS:
        return "dicomdir", "", []
    reasons = burned_in_reasons(dataset)
    deidentifier.deidentify(dataset)
    relative = "/".join(
        (
            str(dataset.get("PatientID", "")) or "no-patient-id",
            str(dataset.get("StudyInstanceUID", "")) or "no-study-uid",
            str(dataset.get("SeriesInstanceUID", "")) or "no-series-uid",
            f"{dataset.get('SOPInstanceUID', '') or deidentifier.uid(str(path))}.dcm",
        )
    )
    if relative in seen:
        return "duplicate_sop_instance", relative, []
    if reasons and skip_burned_in:
        return "burned_in", relative, reasons
    target = out / relative
    if target.exists():
        raise _OutputClash(f"{target} exists and was not written by this run; choose a new --out")
    target.parent.mkdir(parents=True, exist_ok=True)
    dataset.save_as(target, enforce_file_format=True)
    seen.add(relative)
    return "written", relative, reasons
