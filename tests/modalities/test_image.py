"""The image pipeline end to end: DICOM / PNG / NIfTI / npz in, a CNN bundle with heat maps out."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from meddl import Experiment, load_bundle
from meddl.cli import main
from meddl.data.phantoms import write_phantom_dataset
from meddl.errors import MedDLError
from meddl.run.privacy import local_ids_path


def image_config(manifest: Path, **overrides: object) -> dict:
    config: dict = {
        "name": "phantoms",
        "task": "binary",
        "data": {
            "kind": "image",
            "path": str(manifest),
            "target": "label",
            "positive_label": "lesion",
            "patient_id": "patient_id",
        },
        "preprocess": {"size": [32, 32], "augment": {"flip": True, "rotate_degrees": 0}},
        "model": {"arch": "small_cnn", "channels": [8, 16]},
        "train": {"epochs": 3, "batch_size": 16, "progress": False},
        "evaluate": {"bootstrap": 20},
    }
    config.update(overrides)
    return config


@pytest.fixture(scope="module")
def dicom_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("dicom")
    manifest = write_phantom_dataset(folder / "data", 80, size=32, fmt="dicom", seed=1, patients=40)
    Experiment.from_dict(image_config(manifest)).run(out=folder / "run")
    return manifest, folder / "run"


def test_dicom_run_writes_a_complete_image_bundle(dicom_run: tuple[Path, Path]) -> None:
    manifest, run = dicom_run
    for name in (
        "config.yaml",
        "model.json",
        "model.safetensors",
        "preprocess.json",
        "metrics.json",
        "splits.csv",
        "report.html",
        "model_card.md",
        "manifest.json",
    ):
        assert (run / name).is_file(), name
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["test"]["auroc"]["ci"][0] is not None
    splits = pd.read_csv(local_ids_path(run))
    assert splits.groupby("patient_id")["split"].nunique().max() == 1  # patient-level split
    n_test = int((splits["split"] == "test").sum())
    assert len(list((run / "heatmaps").glob("case_*.png"))) == n_test  # a heat map for every test case
    game = metrics["localization"]
    assert game["n"] == int(
        (
            pd.read_csv(manifest)
            .set_index("path")
            .loc[[p.split("data/", 1)[-1] for p in splits.loc[splits["split"] == "test", "path"]], "label"]
            == "lesion"
        ).sum()
    )
    assert set(game["by_method"]) == {"gradcam", "occlusion"}
    report = (run / "report.html").read_text()
    assert "Where the model looked" in report and "data:image/png;base64" in report


def test_image_bundle_predicts_and_explains_from_the_cli(
    dicom_run: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest, run = dicom_run
    images = manifest.parent / "images"
    main(["predict", str(run), "--data", str(images), "--out", str(tmp_path / "p.csv"), "--explain"])
    predictions = pd.read_csv(tmp_path / "p.csv")
    assert len(predictions) == 80 and predictions["probability_lesion"].between(0, 1).all()
    assert all(Path(p).is_file() for p in predictions["heatmap"])
    bundle = load_bundle(run)
    expected = np.where(predictions["probability_lesion"] >= bundle.threshold, "lesion", "normal")
    assert (predictions["prediction"] == expected).all()
    main(["explain", str(run), "--input", str(images / "case_0000.dcm"), "--out", str(tmp_path / "h.png")])
    assert (tmp_path / "h.png").read_bytes().startswith(b"\x89PNG")


def test_unreadable_file_is_a_note_not_a_dropped_row(dicom_run: tuple[Path, Path], tmp_path: Path) -> None:
    _, run = dicom_run
    (tmp_path / "broken.dcm").write_bytes(b"DICM" * 10)
    good = next((run.parent / "data" / "images").glob("*.dcm"))
    predictions = load_bundle(run).predict([good, tmp_path / "broken.dcm"])
    assert len(predictions) == 2
    assert predictions["note"].iloc[0] == "" and predictions["note"].iloc[1].startswith("not scored:")


@pytest.mark.parametrize("fmt", ["png", "nifti"])
def test_png_and_nifti_manifests_train(fmt: str, tmp_path: Path) -> None:
    manifest = write_phantom_dataset(tmp_path / fmt, 60, size=32, fmt=fmt, seed=2)
    config = image_config(manifest)
    config["data"]["patient_id"] = None
    config["train"]["epochs"] = 1
    config["explain"] = {"heatmap": "gradcam"}
    result = Experiment.from_dict(config).run(out=tmp_path / "run")
    assert result.metrics["test"]["auroc"]["value"] is not None


def test_class_folders_and_npz(tmp_path: Path) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    for label in ("benign", "malignant"):
        (tmp_path / "folders" / label).mkdir(parents=True)
        for i in range(20):
            pixels = rng.integers(0, 255, (28, 28), dtype=np.uint8)
            if label == "malignant":
                pixels[10:18, 10:18] = 255
            Image.fromarray(pixels).save(tmp_path / "folders" / label / f"{i}.png")
    config = image_config(tmp_path / "folders", task="binary")
    config["data"].update({"positive_label": "malignant", "patient_id": None})
    config["train"]["epochs"] = 1
    result = Experiment.from_dict(config).run(out=tmp_path / "run_folders")
    assert result.record["data"]["classes"] == ["benign", "malignant"]

    images = rng.integers(0, 255, (60, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 3, (60, 1))
    np.savez(
        tmp_path / "mnist.npz",
        train_images=images[:40],
        train_labels=labels[:40],
        val_images=images[40:50],
        val_labels=labels[40:50],
        test_images=images[50:],
        test_labels=labels[50:],
    )
    config = image_config(tmp_path / "mnist.npz", task="multiclass")
    config["data"].update({"positive_label": None, "patient_id": None})
    config["train"]["epochs"] = 1
    result = Experiment.from_dict(config).run(out=tmp_path / "run_npz")
    assert result.record["data"]["splits"] == {"train": 40, "validation": 10, "test": 10}
    assert "auroc_macro" in result.metrics["test"]


def test_bad_image_inputs_are_clear_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    manifest = write_phantom_dataset(tmp_path / "data", 30, size=32, fmt="dicom", seed=3)
    frame = pd.read_csv(manifest)
    (manifest.parent / frame["path"].iloc[4]).write_bytes(b"DICM" + b"\x00" * 20)  # truncated DICOM
    config = image_config(manifest)
    config["data"]["patient_id"] = None
    with pytest.raises(MedDLError, match=r"case_0004\.dcm"):
        Experiment.from_dict(config).run(out=tmp_path / "run")
    config["data"]["on_bad_file"] = "skip"
    config["train"]["epochs"] = 1
    result = Experiment.from_dict(config).run(out=tmp_path / "run")
    assert result.metrics["data"]["dropped"]["unreadable image files (data.on_bad_file: skip)"] == 1
    assert "case_0004.dcm" in (tmp_path / "run" / "report.html").read_text()

    frame.loc[2, "path"] = "images/missing.dcm"
    frame.to_csv(tmp_path / "data" / "bad_manifest.csv", index=False)
    (tmp_path / "exp.json").write_text("")
    import yaml

    config["data"]["path"] = str(tmp_path / "data" / "bad_manifest.csv")
    config["data"]["on_bad_file"] = "error"  # (under skip a missing file is left out and listed)
    (tmp_path / "exp.yaml").write_text(yaml.safe_dump(config))
    with pytest.raises(SystemExit) as exit_info:
        main(["train", str(tmp_path / "exp.yaml"), "--out", str(tmp_path / "run2")])
    assert exit_info.value.code == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "missing.dcm" in err and "Traceback" not in err

    np.savez(tmp_path / "partial.npz", train_images=np.zeros((4, 8, 8)), train_labels=np.zeros(4))
    config["data"]["path"] = str(tmp_path / "partial.npz")
    with pytest.raises(MedDLError, match="val_images"):
        Experiment.from_dict(config).run(out=tmp_path / "run3")


def _undecodable_dicom(path: Path) -> None:
    """A DICOM file whose header is whole but whose RLE pixel data cannot be decoded (only decoding tells)."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.encaps import encapsulate
    from pydicom.uid import CTImageStorage, RLELossless, generate_uid

    dataset = Dataset()
    dataset.file_meta = FileMetaDataset()
    dataset.file_meta.TransferSyntaxUID = RLELossless
    dataset.file_meta.MediaStorageSOPClassUID = dataset.SOPClassUID = CTImageStorage
    dataset.file_meta.MediaStorageSOPInstanceUID = dataset.SOPInstanceUID = generate_uid()
    dataset.Modality = "CT"
    dataset.Rows, dataset.Columns, dataset.SamplesPerPixel, dataset.PhotometricInterpretation = 32, 32, 1, "MONOCHROME2"
    dataset.BitsAllocated, dataset.BitsStored, dataset.HighBit, dataset.PixelRepresentation = 16, 16, 15, 1
    dataset.PixelData = encapsulate([bytes(64)])  # not an RLE segment table
    dataset["PixelData"].VR = "OB"
    dataset.save_as(path, enforce_file_format=True)


def test_each_image_is_read_once_and_undecodable_files_are_listed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import meddl.io.images

    manifest = write_phantom_dataset(tmp_path / "data", 24, size=32, fmt="dicom", seed=5)
    paths = [str((manifest.parent / p).resolve()) for p in pd.read_csv(manifest)["path"]]
    _undecodable_dicom(Path(paths[5]))
    reads: dict[str, int] = {}
    real_read_image = meddl.io.images.read_image

    def counting_read_image(path: str | Path, **kwargs: Any) -> Any:
        reads[str(path)] = reads.get(str(path), 0) + 1
        return real_read_image(path, **kwargs)

    monkeypatch.setattr(meddl.io.images, "read_image", counting_read_image)
    config = image_config(manifest)
    config["data"].update({"patient_id": None, "on_bad_file": "skip"})
    config["train"]["epochs"] = 2
    messages: list[str] = []
    result = Experiment.from_dict(config).run(out=tmp_path / "run", log=messages.append)
    assert any("reading and preprocessing 24 image(s) into the cache" in m for m in messages)
    assert [m for m in messages if m.startswith("checked ")] == [f"checked {n}/24 image(s)" for n in range(3, 24, 3)]
    # The check before the split reads each file into the cache; both epochs, evaluation and heat maps read the
    # cache: one read per file.
    assert {path: reads.get(path) for path in paths} == dict.fromkeys(paths, 1)
    assert result.metrics["data"]["dropped"]["unreadable image files (data.on_bad_file: skip)"] == 1
    assert any("case_0005.dcm" in w and "decoding failed" in w for w in result.record["warnings"])
    assert result.metrics["data"]["n_rows_used"] == 23

    # Without the cache, under on_bad_file: error, only headers are checked up front: the file passes, and the
    # reader stops the run when it meets it, naming it.
    config["preprocess"]["cache"] = False
    config["data"]["on_bad_file"] = "error"
    with pytest.raises(MedDLError, match=r"case_0005\.dcm: .*decoding failed"):
        Experiment.from_dict(config).run(out=tmp_path / "run_no_cache")


@pytest.mark.slow
def test_3d_dicom_series_volumes_train_and_predict(tmp_path: Path) -> None:
    manifest = write_phantom_dataset(tmp_path / "data", 30, spatial_dims=3, size=16, fmt="dicom", seed=0)
    first_series = manifest.parent / pd.read_csv(manifest)["path"].iloc[0]
    assert first_series.is_dir() and len(list(first_series.glob("*.dcm"))) == 16  # one file per slice
    config = image_config(manifest)
    config["data"].update({"spatial_dims": 3, "patient_id": None})
    config["preprocess"]["size"] = [16, 16, 16]
    config["train"].update({"epochs": 1, "batch_size": 8})
    result = Experiment.from_dict(config).run(out=tmp_path / "run")
    assert result.metrics["test"]["auroc"]["value"] is not None
    assert set(result.metrics["localization"]["by_method"]) == {"gradcam", "occlusion"}
    bundle = load_bundle(tmp_path / "run")
    predictions = bundle.predict([first_series], explain_dir=tmp_path / "heat")
    assert 0.0 <= predictions["probability_lesion"].iloc[0] <= 1.0
    assert Path(predictions["heatmap"].iloc[0]).read_bytes().startswith(b"\x89PNG")
