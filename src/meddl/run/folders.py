"""Run folders that never lose a user's files.

A run (training or external evaluation) is written into a staging folder beside ``--out`` — ``runs/pima.partial``
for ``runs/pima`` — and moved into place only once it is complete, so a wrong data path, a crash or a kill never
touches what ``--out`` held before, and no half-written bundle is ever found where a finished one is expected. A
killed training run keeps its checkpoints in the staging folder, where ``--resume`` finds them.

What MedDL wrote is recorded in a marker file, ``.meddl-run.json`` (its kind and its top-level entries). When a
run replaces an earlier one, only the entries MedDL wrote are removed; anything else in the folder stays. A
non-empty ``--out`` that is not a MedDL folder is refused unless ``overwrite`` is given — and then the run's files
are added beside what is there (a file with the same name as one the run writes is replaced), nothing else is
deleted. A folder of another kind (an evaluation's ``--out`` pointing at a trained bundle) is always refused.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from meddl._version import __version__
from meddl.bundle.files import BUNDLE_FORMAT, MANIFEST
from meddl.errors import MedDLError

__all__ = ["MARKER", "RunFolder", "meddl_entries", "staging_path"]

MARKER = ".meddl-run.json"
LOCK = ".meddl-lock"  # the pid of the process writing a staging folder
STAGING_SUFFIX = ".partial"
# What a training run made before run folders carried a marker (bundle files are listed in the manifest).
_LEGACY_RUN_ENTRIES = frozenset({MANIFEST, "run.json", "checkpoints", "work", "model_card.md", "report.html"})


def _live_owner(staging: Path) -> int | None:
    """The pid of a live process (not this one) writing ``staging``, if any."""
    try:
        pid = int((staging / LOCK).read_text(encoding="utf-8").strip())
    except (OSError, ValueError):
        return None
    if pid == os.getpid():
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid
    return pid


def staging_path(out: Path) -> Path:
    """The folder a run is written into before it is moved to ``out``."""
    return out.parent / f"{out.name}{STAGING_SUFFIX}"


def _read_marker(folder: Path) -> dict[str, Any] | None:
    path = folder / MARKER
    if not path.is_file():
        return None
    try:
        marker = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return marker if isinstance(marker, dict) and isinstance(marker.get("entries"), list) else None


def meddl_entries(folder: Path) -> tuple[str | None, set[str]]:
    """The kind of MedDL folder ``folder`` is (``train``, ``evaluate``; None when it is not one) and the top-level
    entries MedDL wrote in it."""
    marker = _read_marker(folder)
    present = {p.name for p in folder.iterdir()} if folder.is_dir() else set()
    if marker is not None:  # names only, of entries that are there: a marker never reaches outside its folder
        return str(marker.get("kind")), {
            name for name in map(str, marker["entries"]) if _plain_name(name)
        } & present | {MARKER}
    manifest = folder / MANIFEST
    if manifest.is_file():  # a bundle written before markers existed
        try:
            content = json.loads(manifest.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            return None, set()
        if isinstance(content, dict) and content.get("format") == BUNDLE_FORMAT:
            files = content.get("files")
            names = {str(name).split("/")[0] for name in files} if isinstance(files, dict) else set()
            work = {name for name in present if re.fullmatch(r"work(-rank\d+)?", name)}
            return "train", ({name for name in names if _plain_name(name)} & present) | (
                _LEGACY_RUN_ENTRIES & present
            ) | work
    return None, set()


def _plain_name(name: str) -> bool:
    """A single entry of a folder: not empty, not ``.``/``..``, no separator, not absolute."""
    return bool(name) and name not in {".", ".."} and "/" not in name and "\\" not in name


def _move(source: Path, target: Path) -> None:
    """Rename, or copy and delete across file systems (an ``--out`` on a mounted volume)."""
    try:
        os.replace(source, target)
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.EBUSY):
            raise
        shutil.move(str(source), str(target))


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def _describe(names: list[str]) -> str:
    shown = ", ".join(sorted(names)[:4])
    return shown + (f" and {len(names) - 4} more" if len(names) > 4 else "")


@dataclass
class RunFolder:
    """Where a run is written (:attr:`staging`) and where it ends up (:attr:`final`)."""

    final: Path
    staging: Path
    kind: str
    resumed: bool = False

    @classmethod
    def open(cls, out: str | Path, *, kind: str, resume: bool = False, overwrite: bool = False) -> RunFolder:
        """Check ``out`` (before any data is read) and create the staging folder.

        Args:
            out: the folder the finished run goes to.
            kind: ``train`` or ``evaluate``; a MedDL folder of another kind is never replaced.
            resume: keep the staging folder of an interrupted run (its checkpoints); if there is none, start from
                the checkpoints of the finished run in ``out``.
            overwrite: write into a non-empty folder MedDL did not make (its files are kept).

        Raises:
            MedDLError: ``out`` is a file, a MedDL folder of another kind, or a non-empty folder MedDL did not
                make and ``overwrite`` is False; or the staging folder exists and MedDL did not make it.
        """
        final = Path(out).resolve()  # '.', '..' and a symlinked folder name the real folder; staging sits beside it
        if final.parent == final:
            raise MedDLError(f"--out {out}: is the file system's root; give a folder for the run")
        staging = staging_path(final)
        if final.exists() and not final.is_dir():
            raise MedDLError(f"--out {final}: is a file; give a folder for the run")
        if final.is_dir():
            found, _ = meddl_entries(final)
            if found is not None and found != kind:
                what = "a trained bundle" if found == "train" else f"a MedDL {found} run"
                raise MedDLError(f"--out {final}: holds {what}; choose another folder for this {kind} run")
            if found is None and any(final.iterdir()) and not overwrite:
                names = [p.name for p in final.iterdir()]
                raise MedDLError(
                    f"--out {final}: the folder holds files MedDL did not write ({_describe(names)}); choose a new "
                    "or empty folder, or pass --overwrite to add the run beside them (nothing else is deleted)"
                )
        if staging.exists():
            owner = _live_owner(staging)
            if owner is not None:
                raise MedDLError(
                    f"--out {final}: another MedDL run (process {owner}) is writing {staging}; wait for it"
                )
            staged, _ = meddl_entries(staging)
            if staged != kind:
                raise MedDLError(
                    f"{staging}: exists and is not a MedDL staging folder; MedDL writes the run there before moving "
                    f"it to {final} — move it away first"
                )
        folder = cls(final, staging, kind)
        if resume and (staging / "checkpoints").is_dir():
            folder.resumed = True
            (staging / LOCK).write_text(str(os.getpid()), encoding="utf-8")
            return folder
        if staging.exists():  # what an interrupted run left, not asked to resume: start again
            shutil.rmtree(staging)
        try:
            staging.mkdir(parents=True)
            folder._write_marker()
            if resume and (final / "checkpoints").is_dir():
                shutil.copytree(final / "checkpoints", staging / "checkpoints")
                folder.resumed = True
        except OSError as exc:
            raise MedDLError(f"--out {final}: cannot write {staging}: {exc.strerror or exc}") from None
        return folder

    def _write_marker(self, target: Path | None = None) -> None:
        (self.staging / LOCK).write_text(str(os.getpid()), encoding="utf-8")
        hidden = {MARKER, LOCK}
        entries = (
            sorted(p.name for p in self.staging.iterdir() if p.name not in hidden) if self.staging.exists() else []
        )
        marker = {"meddl_version": __version__, "kind": self.kind, "entries": entries}
        (target or self.staging / MARKER).write_text(json.dumps(marker, indent=1) + "\n", encoding="utf-8")

    def commit(self) -> Path:
        """Move the finished run to :attr:`final`, replacing only what an earlier MedDL run wrote there."""
        self._write_marker()
        (self.staging / LOCK).unlink(missing_ok=True)
        if not self.final.exists():
            _move(self.staging, self.final)
            return self.final
        found, previous = meddl_entries(self.final)
        present = {p.name for p in self.final.iterdir()}
        foreign = present - previous
        swappable = not os.path.ismount(self.final) and os.stat(self.final).st_dev == os.stat(self.staging).st_dev
        if swappable and ((not foreign and found == self.kind) or not present):
            # Swap the two folders: the old run stays whole until the new one is in place.
            old = self.final.parent / f"{self.final.name}.replaced"
            if old.exists() and meddl_entries(old)[0] is not None:  # left by a kill during an earlier swap
                _remove(old)
            if old.exists():
                raise MedDLError(f"{old}: exists and is not MedDL's; move it away so {self.final} can be replaced")
            os.replace(self.final, old)
            os.replace(self.staging, self.final)
            shutil.rmtree(old)
            return self.final
        # Other files live here: move entry by entry. The manifest goes first and comes back last, so a bundle
        # caught halfway does not load; the marker comes last of all.
        if MANIFEST in previous:
            _remove(self.final / MANIFEST)
        new = {p.name for p in self.staging.iterdir()}
        for name in sorted(previous - new - {MARKER}):
            _remove(self.final / name)
        for name in sorted(new - {MANIFEST, MARKER}):
            _remove(self.final / name)
            _move(self.staging / name, self.final / name)
        if (self.staging / MANIFEST).exists():
            _move(self.staging / MANIFEST, self.final / MANIFEST)
        _move(self.staging / MARKER, self.final / MARKER)
        self.staging.rmdir()
        return self.final

    def release(self) -> None:
        """Let another run use the staging folder (this process stopped; its checkpoints stay for --resume)."""
        (self.staging / LOCK).unlink(missing_ok=True)

    def discard(self) -> None:
        """Remove the staging folder (a run that failed before it could be resumed)."""
        if self.staging.exists():
            shutil.rmtree(self.staging, ignore_errors=True)
