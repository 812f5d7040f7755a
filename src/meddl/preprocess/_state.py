"""The persistence protocol shared by the preprocessors: JSON + NumPy ``.npz``, never pickle.

Every fitted preprocessor (and every step of `TabularPreprocessor`) implements

* ``to_state() -> dict``: a JSON-able dict of its arguments and learned numbers. Arrays too large or too
  exact for JSON lists may be held under the top-level key ``"arrays"`` as ``{name: ndarray}``;
  `split_arrays` takes them out (leaving their sorted names) so the rest is written as JSON and the
  arrays as one ``.npz``, and `join_arrays` puts them back.
* ``from_state(state)`` (a classmethod): the fitted instance whose ``transform`` equals the original's,
  raising `MedDLError` for a state it cannot trust.

`write_state` / `read_state` write and read such a pair of files in a folder, naming the file at fault.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol, Self, runtime_checkable

import numpy as np

from meddl.errors import MedDLError

__all__ = [
    "ARRAYS_KEY",
    "StateProtocol",
    "join_arrays",
    "malformed",
    "read_state",
    "split_arrays",
    "write_state",
]

ARRAYS_KEY = "arrays"
"""Top-level key of a state holding its arrays (``{name: ndarray}`` in memory, sorted names on disk)."""


@runtime_checkable
class StateProtocol(Protocol):
    """What a fitted preprocessor offers to be saved and restored without pickle."""

    def to_state(self) -> dict[str, Any]:
        """The JSON-able state (arrays, if any, under ``"arrays"``)."""
        ...

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Self:
        """Rebuild the fitted instance from `to_state` output."""
        ...


def split_arrays(state: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Separate a state's arrays from its JSON part.

    Args:
        state: `to_state` output; ``state["arrays"]``, when a mapping, holds ``{name: ndarray}``.

    Returns:
        ``(json_state, arrays)``: a copy of `state` whose ``"arrays"`` entry is the sorted list of array
        names (key order unchanged), and copies of the arrays in their original order. A state without
        an ``"arrays"`` mapping is returned as a copy with no arrays.
    """
    json_state = dict(state)
    held = state.get(ARRAYS_KEY)
    if not isinstance(held, Mapping):
        return json_state, {}
    arrays = {str(name): np.array(value, copy=True) for name, value in held.items()}
    json_state[ARRAYS_KEY] = sorted(arrays)
    return json_state, arrays


def join_arrays(json_state: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """Inverse of `split_arrays`: put the arrays named in ``json_state["arrays"]`` back into the state.

    Args:
        json_state: The JSON part; its ``"arrays"`` entry lists the array names.
        arrays: The arrays read back (e.g. from the ``.npz``).

    Returns:
        The state with ``"arrays"`` as ``{name: ndarray}`` in sorted name order.

    Raises:
        ValueError: when the arrays given are not exactly the ones listed.
    """
    listed = sorted(json_state[ARRAYS_KEY])
    if sorted(arrays) != listed:
        raise ValueError(f"arrays {sorted(arrays)} do not match the listed {listed}")
    state = dict(json_state)
    state[ARRAYS_KEY] = {name: np.asarray(arrays[name]) for name in listed}
    return state


@contextmanager
def malformed(what: str) -> Iterator[None]:
    """Turn the KeyError / TypeError / ValueError / IndexError of reading a bad state into a `MedDLError`.

    Args:
        what: Names the state in the message, e.g. ``"preprocess state"``.
    """
    try:
        yield
    except (KeyError, TypeError, ValueError, IndexError) as error:
        raise MedDLError(f"{what} is malformed: {error!r}") from error


def write_state(
    directory: Path | str,
    state: Mapping[str, Any],
    arrays: Mapping[str, np.ndarray],
    *,
    state_file: str,
    arrays_file: str,
) -> list[Path]:
    """Write ``directory/state_file`` (strict JSON, indented) and, when there are arrays, ``arrays_file``.

    Args:
        directory: Folder to write into (created if needed).
        state: The JSON part (see `split_arrays`).
        arrays: The arrays, written with `numpy.savez` (no pickle).
        state_file: Name of the JSON file.
        arrays_file: Name of the ``.npz`` file.

    Returns:
        The files written.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state_path = directory / state_file
    state_path.write_text(json.dumps(state, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    written = [state_path]
    if arrays:
        arrays_path = directory / arrays_file
        np.savez(arrays_path, **arrays)  # type: ignore[arg-type]
        written.append(arrays_path)
    return written


def read_state(directory: Path | str, *, state_file: str, arrays_file: str) -> tuple[Any, dict[str, np.ndarray]]:
    """Read the files written by `write_state`.

    Args:
        directory: The folder holding them.
        state_file: Name of the JSON file.
        arrays_file: Name of the ``.npz`` file, read only when the JSON lists arrays.

    Returns:
        ``(json_state, arrays)``; `json_state` is whatever the JSON holds (the caller checks it).

    Raises:
        MedDLError: naming the file, when a file is absent or not valid JSON / NPZ without pickle.
    """
    directory = Path(directory)
    state_path = directory / state_file
    try:
        state = json.loads(state_path.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise MedDLError(f"{state_path}: file not found") from error
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise MedDLError(f"{state_path}: not a valid preprocess state ({error})") from error
    arrays: dict[str, np.ndarray] = {}
    if isinstance(state, dict) and state.get(ARRAYS_KEY):
        arrays_path = directory / arrays_file
        try:
            with np.load(arrays_path, allow_pickle=False) as archive:
                arrays = {name: archive[name] for name in archive.files}
        except FileNotFoundError as error:
            raise MedDLError(f"{arrays_path}: file not found (listed in {state_path.name})") from error
        except (OSError, ValueError) as error:
            raise MedDLError(f"{arrays_path}: not a valid NumPy archive without pickle ({error})") from error
    return state, arrays
