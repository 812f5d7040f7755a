"""A run folder is a bundle: one :class:`Bundle` for every data kind, verified by sha256 before it loads.

Layout::

    runs/pima/
      config.yaml        the experiment as run
      model.json         kind, architecture, its arguments (user's and the data's), task, classes, threshold
      model.safetensors  weights (no pickle)
      preprocess.json    the modality's fitted preprocessing state (+ preprocess.npz when it holds arrays)
      metrics.json       test metrics with CIs, baselines, data summary
      model_card.md, report.html, splits.csv
      manifest.json      sha256 of every file above and the bundle hash
"""

from meddl.bundle.bundle import Bundle, load_bundle
from meddl.bundle.files import BUNDLE_FORMAT, load_weights, save_weights, verify_manifest, write_manifest

__all__ = [
    "BUNDLE_FORMAT",
    "Bundle",
    "load_bundle",
    "load_weights",
    "save_weights",
    "verify_manifest",
    "write_manifest",
]
