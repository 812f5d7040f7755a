"""`torchrun --nproc_per_node 2` (DDP, gloo on CPU) gives the same model quality as one process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from meddl.data import synthetic_clinical_table
from meddl.io import write_table
from tests.conftest import fast_config


@pytest.mark.slow
def test_two_process_ddp_matches_single_process(tmp_path: Path) -> None:
    csv = write_table(synthetic_clinical_table(400, seed=4), tmp_path / "clinic.csv")
    config = fast_config(csv)
    config["model"] = {"arch": "mlp", "hidden": [32], "dropout": 0.0}
    config["train"].update({"epochs": 5, "batch_size": 32})
    experiment = tmp_path / "exp.yaml"
    experiment.write_text(yaml.safe_dump(config))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MASTER_PORT": "29517"}
    single = [sys.executable, "-m", "meddl", "train", str(experiment), "--quiet", "--out", str(tmp_path / "one")]
    subprocess.run(single, check=True, env=env, capture_output=True)
    ddp = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_port",
        "29517",
        "-m",
        "meddl",
        "train",
        str(experiment),
        "--quiet",
        "--out",
        str(tmp_path / "two"),
    ]
    result = subprocess.run(ddp, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    one = json.loads((tmp_path / "one" / "metrics.json").read_text())
    two = json.loads((tmp_path / "two" / "metrics.json").read_text())
    # Same samples per optimiser step and averaged gradients: only float summation order differs.
    for metric in ("auroc", "brier", "accuracy"):
        assert two["test"][metric]["value"] == pytest.approx(one["test"][metric]["value"], abs=1e-3), metric
    assert two["training"]["epochs_run"] == one["training"]["epochs_run"]


@pytest.mark.slow
def test_two_process_ddp_on_an_ehr_store_extracts_features_per_rank(tmp_path: Path) -> None:
    """Each rank extracts the EHR features into its own scratch folder (two writers on one memory-mapped file
    would corrupt it) and every scratch folder is gone afterwards; metrics match one process."""
    from meddl.data.ehr_synth import synthetic_ehr

    synthetic_ehr(tmp_path / "events.duckdb", n_patients=300, seed=2)
    config = {
        "name": "ehr-ddp",
        "task": "binary",
        "data": {"kind": "ehr", "path": "events.duckdb", "cohort": {"outcome": "mortality"}},
        "preprocess": {"top_labs": 6, "codes_top": 20},
        "model": {"arch": "gru", "hidden": 16, "dropout": 0.0},
        "train": {"epochs": 3, "batch_size": 32, "seed": 0, "progress": False},
        "evaluate": {"bootstrap": 20},
    }
    experiment = tmp_path / "exp.yaml"
    experiment.write_text(yaml.safe_dump(config))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MASTER_PORT": "29519"}
    single = [sys.executable, "-m", "meddl", "train", str(experiment), "--quiet", "--out", str(tmp_path / "one")]
    subprocess.run(single, check=True, env=env, capture_output=True)
    ddp = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29519"]
    ddp += ["-m", "meddl", "train", str(experiment), "--quiet", "--out", str(tmp_path / "two")]
    result = subprocess.run(ddp, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert not [p.name for p in (tmp_path / "two").iterdir() if p.name.startswith("work")]
    one = json.loads((tmp_path / "one" / "metrics.json").read_text())
    two = json.loads((tmp_path / "two" / "metrics.json").read_text())
    assert two["test"]["auroc"]["value"] == pytest.approx(one["test"]["auroc"]["value"], abs=1e-3)


@pytest.mark.slow
def test_a_refused_out_stops_every_rank_at_once(tmp_path: Path) -> None:
    """Rank 0 refuses a --out full of the user's files; the other rank hears it at once (no wait for a timeout)."""
    csv = write_table(synthetic_clinical_table(100, seed=4), tmp_path / "clinic.csv")
    experiment = tmp_path / "exp.yaml"
    experiment.write_text(yaml.safe_dump(fast_config(csv)))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MASTER_PORT": "29521"}
    ddp = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29521"]
    command = [*ddp, "-m", "meddl", "train", str(experiment), "--quiet", "--out", str(tmp_path)]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert result.stderr.count("the folder holds files MedDL did not write") == 2  # both ranks say why
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clinic.csv", "exp.yaml"]
