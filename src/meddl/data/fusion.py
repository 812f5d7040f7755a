"""Patients with a known answer for multimodal fusion: a table, an image and an expression profile per patient,
and an outcome that needs all three.

Three independent hidden factors per patient, one behind each input:

* ``clinical.csv``: ``marker`` measures the first factor (with noise), beside age, sex and BMI, which carry nothing;
* ``scans.csv`` → ``scans/<id>.png``: a lesion whose radius grows with the second factor, on a noisy background;
* ``expression.csv``: a signature of ten genes shifted together by the third factor, among 90 genes of noise.

The outcome is ``yes`` when ``1.3·a + 1.0·b + 0.7·c + noise > 0``: the planted ranking of the inputs is clinical >
scan > tumour; known exactly, each factor alone would reach an AUROC of 0.83, 0.75 and 0.67, the three together
0.98 (learned from noisy measurements, less). ``missing``
leaves an input out for a share of the patients (``{"scan": 0.3}``: no scan for 30 %). The same risk also sets a
time to progression (``months``, ``progressed``: exponential times, censored uniformly between 6 and 60 months),
for a survival task.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["FUSION_WEIGHTS", "SIGNATURE", "fusion_data_section", "write_fusion_dataset"]

FUSION_WEIGHTS = {"clinical": 1.3, "scan": 1.0, "tumour": 0.7}
SIGNATURE = [f"SIG{k:02d}" for k in range(1, 11)]
_NOISE = 0.5


def _scan(radius: float, size: int, rng: np.random.Generator) -> np.ndarray:
    """A 2-D image in [0, 255]: smooth background texture, noise, and a bright disc of ``radius`` pixels."""
    yy, xx = np.mgrid[:size, :size].astype(np.float64)
    image = 70 + 12 * np.sin(xx / rng.uniform(3, 6) + rng.uniform(0, 6)) * np.cos(yy / rng.uniform(3, 6))
    margin = 9
    cy, cx = rng.uniform(margin, size - margin, size=2)
    disc = np.clip(radius + 0.5 - np.hypot(yy - cy, xx - cx), 0, 1)  # anti-aliased edge
    image += 110 * disc + rng.normal(0, 10, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def write_fusion_dataset(
    folder: str | Path,
    n: int = 400,
    *,
    seed: int = 0,
    size: int = 32,
    missing: dict[str, float] | None = None,
) -> dict[str, Path]:
    """Write ``n`` patients under ``folder``; returns the files: ``outcomes``, ``clinical``, ``scans``,
    ``expression``, ``cases`` (a ``meddl predict`` file naming the three inputs), ``labelled`` (the same with the
    outcome table, for ``meddl evaluate``) and ``truth`` (the hidden factors)."""
    from PIL import Image

    folder = Path(folder)
    (folder / "scans").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    ids = [f"P{k:04d}" for k in range(n)]
    factors = rng.normal(size=(n, 3))
    weights = np.array(list(FUSION_WEIGHTS.values()))
    risk = factors @ weights + rng.normal(0, _NOISE, n)
    outcome = np.where(risk > 0, "yes", "no")
    gone = {name: rng.random(n) < share for name, share in (missing or {}).items()}
    unknown = sorted(set(gone) - set(FUSION_WEIGHTS))
    if unknown:
        raise ValueError(f"missing: {unknown} are not inputs; the inputs are {list(FUSION_WEIGHTS)}")
    keep = {name: ~gone.get(name, np.zeros(n, dtype=bool)) for name in FUSION_WEIGHTS}

    clinical = pd.DataFrame(
        {
            "patient_id": ids,
            "age": np.round(rng.normal(62, 11, n)).astype(int),
            "sex": rng.choice(["F", "M"], n),
            "bmi": np.round(rng.normal(27, 4, n), 1),
            "marker": np.round(factors[:, 0] + rng.normal(0, 0.35, n), 3),
        }
    )[keep["clinical"]]
    paths = []
    for k in np.flatnonzero(keep["scan"]):
        radius = float(np.clip(4.5 + 1.6 * factors[k, 1], 1.0, 8.5))
        name = f"scans/{ids[k]}.png"
        Image.fromarray(_scan(radius, size, rng)).save(folder / name)
        paths.append((ids[k], name))
    scans = pd.DataFrame(paths, columns=["patient_id", "path"])
    genes = [f"GENE{k:03d}" for k in range(1, 91)]
    names = genes[:40] + SIGNATURE + genes[40:]
    log2 = rng.normal(6, 1.5, len(names))[None, :] + rng.normal(0, 0.5, (n, len(names)))
    signature = np.array([g in SIGNATURE for g in names])
    log2[:, signature] += 1.0 * factors[:, 2:3]
    expression = pd.DataFrame(np.round(2**log2, 2), columns=names)
    expression.insert(0, "patient_id", ids)
    expression = expression[keep["tumour"]]
    # the same risk as time to progression: exponential event times, censored at a uniform 6-60 months
    event_time = rng.exponential(24.0 * np.exp(-0.8 * (risk - risk.mean())))
    censored_at = rng.uniform(6, 60, n)
    outcomes = pd.DataFrame(
        {
            "patient_id": ids,
            "relapse": outcome,
            "months": np.round(np.maximum(np.minimum(event_time, censored_at), 0.1), 2),
            "progressed": (event_time <= censored_at).astype(int),
        }
    )
    truth = pd.DataFrame({"patient_id": ids, "clinical": factors[:, 0], "scan": factors[:, 1], "tumour": factors[:, 2]})

    files = {
        "outcomes": folder / "outcomes.csv",
        "clinical": folder / "clinical.csv",
        "scans": folder / "scans.csv",
        "expression": folder / "expression.csv",
        "truth": folder / "truth.csv",
        "cases": folder / "cases.yaml",
        "labelled": folder / "labelled.yaml",
    }
    outcomes.to_csv(files["outcomes"], index=False)
    clinical.to_csv(files["clinical"], index=False)
    scans.to_csv(files["scans"], index=False)
    expression.to_csv(files["expression"], index=False)
    truth.to_csv(files["truth"], index=False)
    files["cases"].write_text(
        "# the inputs of new patients for `meddl predict`, keyed by patient_id as in training\n"
        "inputs:\n  clinical: clinical.csv\n  scan: scans.csv\n  tumour: expression.csv\n"
    )
    files["labelled"].write_text(
        "# these patients with their outcome, for `meddl evaluate` (another site's data has this layout)\n"
        "target: {path: outcomes.csv}\n"
        "inputs:\n  clinical: clinical.csv\n  scan: scans.csv\n  tumour: expression.csv\n"
    )
    return files


def fusion_data_section(files: Mapping[str, str | Path]) -> dict[str, Any]:
    """The experiment's ``data`` section for these patients (``files`` as :func:`write_fusion_dataset` returns
    them, or paths relative to the experiment file): relapse from the three inputs, keyed by ``patient_id``."""
    return {
        "kind": "multimodal",
        "patient_id": "patient_id",
        "target": {"path": str(files["outcomes"]), "column": "relapse", "positive_label": "yes"},
        "inputs": {
            "clinical": {"kind": "tabular", "path": str(files["clinical"])},
            "scan": {"kind": "image", "path": str(files["scans"])},
            "tumour": {"kind": "expression", "path": str(files["expression"])},
        },
    }
