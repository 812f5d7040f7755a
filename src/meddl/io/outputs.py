"""Where MedDL may write: never over one of the command's inputs, never inside a bundle (whose manifest would
no longer match)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from meddl.errors import MedDLError

__all__ = ["check_output"]


def check_output(out: Path, *, inputs: Iterable[Any] = (), bundle: Path | None = None, file: bool = True) -> None:
    """Refuse an output path that is one of ``inputs``, lies inside ``bundle``, or (``file``) is a folder.

    Raises:
        MedDLError: naming the output and what it would overwrite.
    """
    target = Path(out).resolve()
    for source in inputs:
        if isinstance(source, str | Path) and Path(source).exists() and Path(source).resolve() == target:
            raise MedDLError(f"--out {out}: is the input {source}; write to another file")
    if bundle is not None and target.is_relative_to(Path(bundle).resolve()):
        raise MedDLError(f"--out {out}: is inside the bundle {bundle}; write outside it")
    if file and Path(out).is_dir():
        raise MedDLError(f"--out {out}: is a folder; give a file name")
