"""Run folders never lose a user's files: a run is staged beside ``--out`` and moved in only when complete."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from meddl.errors import MedDLError
from meddl.run.folders import MARKER, RunFolder, meddl_entries, staging_path
from tests.conftest import fast_config
from tests.test_cli import run_cli, write_experiment


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` with its sha256."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def fake_run(folder: RunFolder, *names: str) -> None:
    for name in names:
        (folder.staging / name).write_text(name)


def test_a_new_folder_appears_only_when_the_run_is_complete(tmp_path: Path) -> None:
    folder = RunFolder.open(tmp_path / "runs" / "pima", kind="train")
    fake_run(folder, "model.json", "report.html")
    assert not (tmp_path / "runs" / "pima").exists()
    assert folder.staging == staging_path(tmp_path / "runs" / "pima") and folder.staging.is_dir()
    final = folder.commit()
    assert sorted(p.name for p in final.iterdir()) == sorted([MARKER, "model.json", "report.html"])
    assert not folder.staging.exists()
    assert meddl_entries(final) == ("train", {MARKER, "model.json", "report.html"})


def test_replacing_a_run_keeps_files_the_user_added(tmp_path: Path) -> None:
    first = RunFolder.open(tmp_path / "run", kind="train")
    fake_run(first, "model.json", "old_only.png")
    first.commit()
    (tmp_path / "run" / "my_notes.txt").write_text("mine")

    second = RunFolder.open(tmp_path / "run", kind="train")
    fake_run(second, "model.json", "report.html")
    second.commit()
    names = sorted(p.name for p in (tmp_path / "run").iterdir())
    assert names == sorted([MARKER, "model.json", "report.html", "my_notes.txt"])  # old_only.png was MedDL's
    assert (tmp_path / "run" / "my_notes.txt").read_text() == "mine"
    assert meddl_entries(tmp_path / "run")[1] == {MARKER, "model.json", "report.html"}


def test_a_folder_of_user_files_is_refused_and_overwrite_keeps_them(tmp_path: Path) -> None:
    (tmp_path / "exp.yaml").write_text("task: binary\n")
    (tmp_path / "data.csv").write_text("a,b\n1,2\n")
    before = snapshot(tmp_path)
    with pytest.raises(MedDLError, match=r"holds files MedDL did not write \(data.csv, exp.yaml\).*--overwrite"):
        RunFolder.open(tmp_path, kind="train")
    assert snapshot(tmp_path) == before

    folder = RunFolder.open(tmp_path, kind="train", overwrite=True)
    fake_run(folder, "model.json")
    folder.commit()
    after = snapshot(tmp_path)
    assert {k: v for k, v in after.items() if k in before} == before
    assert "model.json" in after


def test_an_evaluation_never_replaces_a_trained_bundle(tmp_path: Path) -> None:
    trained = RunFolder.open(tmp_path / "run", kind="train")
    fake_run(trained, "model.json")
    trained.commit()
    with pytest.raises(MedDLError, match="holds a trained bundle; choose another folder for this evaluate run"):
        RunFolder.open(tmp_path / "run", kind="evaluate", overwrite=True)
    with pytest.raises(MedDLError, match="is a file"):
        RunFolder.open(tmp_path / "run" / "model.json", kind="evaluate")


def test_a_staging_folder_mdl_did_not_make_is_left_alone(tmp_path: Path) -> None:
    (tmp_path / "run.partial").mkdir()
    (tmp_path / "run.partial" / "thesis.docx").write_text("years of work")
    with pytest.raises(MedDLError, match="is not a MedDL staging folder"):
        RunFolder.open(tmp_path / "run", kind="train")
    assert (tmp_path / "run.partial" / "thesis.docx").read_text() == "years of work"


def test_resume_keeps_the_interrupted_runs_checkpoints(tmp_path: Path) -> None:
    killed = RunFolder.open(tmp_path / "run", kind="train")
    (killed.staging / "checkpoints").mkdir()
    (killed.staging / "checkpoints" / "checkpoint.pt").write_text("epoch 3")
    resumed = RunFolder.open(tmp_path / "run", kind="train", resume=True)
    assert resumed.resumed and (resumed.staging / "checkpoints" / "checkpoint.pt").read_text() == "epoch 3"
    fresh = RunFolder.open(tmp_path / "run", kind="train")  # not resuming: the leftover is MedDL's to clear
    assert not fresh.resumed and not (fresh.staging / "checkpoints").exists()


def test_wrong_data_path_leaves_the_finished_bundle_untouched(
    clinical_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Regression: `--out runs/keep_me` with a wrong data path emptied the finished bundle before failing."""
    experiment = write_experiment(tmp_path, fast_config(clinical_csv))
    keep = tmp_path / "runs" / "keep_me"
    code, _, err = run_cli(["train", experiment, "--out", keep, "--quiet"], capsys)
    assert code == 0, err
    before = snapshot(keep)

    broken = write_experiment(tmp_path, fast_config(tmp_path / "missing.csv"), name="broken.yaml")
    code, _, err = run_cli(["train", broken, "--out", keep, "--quiet"], capsys)
    assert code == 2 and "missing.csv" in err
    assert snapshot(keep) == before
    assert not staging_path(keep).exists()
    from meddl.bundle import load_bundle

    load_bundle(keep)  # still loads: the manifest matches every file


def test_out_at_the_experiment_folder_deletes_nothing(
    clinical_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Regression: `--out` at the folder holding exp.yaml and data.csv deleted them."""
    experiment = write_experiment(tmp_path, fast_config(clinical_csv))
    before = snapshot(tmp_path)
    code, _, err = run_cli(["train", experiment, "--out", tmp_path, "--quiet"], capsys)
    assert code == 2 and "--overwrite" in err
    assert snapshot(tmp_path) == before

    code, _, err = run_cli(["train", experiment, "--out", tmp_path, "--quiet", "--overwrite"], capsys)
    assert code == 0, err
    after = snapshot(tmp_path)
    assert {k: after.get(k) for k in before} == before  # every user file still there, byte for byte
    assert "model.safetensors" in after

    code, _, err = run_cli(["evaluate", tmp_path, "--data", clinical_csv, "--out", tmp_path], capsys)
    assert code == 2 and "holds a trained bundle" in err
    assert snapshot(tmp_path) == after


def test_a_crafted_marker_never_reaches_outside_its_folder(tmp_path: Path) -> None:
    (tmp_path / "important.txt").write_text("keep")
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / MARKER).write_text('{"kind": "train", "entries": ["..", "/etc", ".", "notes.txt"]}')
    (bundle / "notes.txt").write_text("listed, so MedDL's to replace")
    folder = RunFolder.open(bundle, kind="train")
    fake_run(folder, "model.json")
    folder.commit()
    assert (tmp_path / "important.txt").read_text() == "keep"
    assert sorted(p.name for p in bundle.iterdir()) == [MARKER, "model.json"]


def test_out_dot_stages_beside_the_folder_and_keeps_ids_outside(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from meddl.run.privacy import local_ids_path

    here = tmp_path / "project"
    here.mkdir()
    monkeypatch.chdir(here)
    folder = RunFolder.open(".", kind="train")
    assert folder.final == here and folder.staging == tmp_path / "project.partial"
    fake_run(folder, "model.json")
    assert folder.commit() == here
    assert local_ids_path(folder.final) == tmp_path / "project.local-ids.csv"


def test_a_staging_folder_in_use_by_a_live_run_is_refused(tmp_path: Path) -> None:
    import subprocess
    import sys

    folder = RunFolder.open(tmp_path / "run", kind="train")
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        (folder.staging / ".meddl-lock").write_text(str(other.pid))
        with pytest.raises(MedDLError, match=rf"another MedDL run \(process {other.pid}\) is writing"):
            RunFolder.open(tmp_path / "run", kind="train")
    finally:
        other.kill()
        other.wait()
    RunFolder.open(tmp_path / "run", kind="train")  # its writer is gone: the leftover is MedDL's to clear
