"""Segmentation end to end on phantoms with masks: train, evaluate with CIs, bundle, predict masks, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from meddl import Experiment, load_bundle
from meddl.data.phantoms import write_phantom_dataset
from meddl.errors import MedDLError


def _experiment(manifest: Path, **data: object) -> dict:
    return {
        "name": "seg",
        "task": "segmentation",
        "data": {"kind": "image", "path": str(manifest), "patient_id": "patient_id", "labels": {1: "lesion"}, **data},
        "model": {"arch": "unet", "channels": [8, 16], "num_res_units": 1},
        "train": {"epochs": 2, "batch_size": 4, "seed": 0, "progress": False, "learning_rate": 0.01},
        "evaluate": {"bootstrap": 20},
    }


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, object]:
    root = tmp_path_factory.mktemp("seg")
    manifest = write_phantom_dataset(
        root / "data",
        24,
        spatial_dims=2,
        size=32,
        fmt="nifti",
        prevalence=0.85,
        seed=0,
        patients=12,
        mask_column="mask",
    )
    result = Experiment.from_dict(_experiment(manifest)).run(out=root / "run")
    return root, manifest, result


def test_run_measures_every_test_case_with_patient_level_cis(trained: tuple) -> None:
    _, _, result = trained
    metrics = json.loads((result.path / "metrics.json").read_text())
    dice = metrics["test"]["dice"]
    assert 0.0 <= dice["value"] <= 1.0 and dice["ci"][0] <= dice["value"] <= dice["ci"][1]
    lesion = metrics["per_label"]["lesion"]
    for name in ("hd95", "msd", "volume_error_pct", "lesion_sensitivity", "false_positive_lesions"):
        assert name in lesion, name
    n_test = metrics["data"]["splits"]["test"]
    cases = pd.read_csv(result.path / "test_cases.csv")
    assert len(cases) == n_test  # every test case scored, none skipped
    assert set(cases["label"]) == {"lesion"}
    # the plan is written with its reasons and travels in the bundle
    state = json.loads((result.path / "preprocess.json").read_text())
    assert state["segmentation"]["plan"]["patch_size"] == [32, 32]
    assert "patch_size" in state["segmentation"]["plan"]["why"]
    # the post-processing was chosen on the validation cases and travels with the plan
    plan = state["segmentation"]["plan"]
    assert set(plan["min_object_size"]) == {"1"} and plan["min_object_size"]["1"] >= 0
    assert "validation Dice" in plan["why"]["min_object_size"]
    assert "preprocess.min_object_size" in result.record["derived_defaults"]
    # no early stopping in the experiment: a quarter of the epochs (at least 10) and a smoothed Dice, written down
    derived = result.record["derived_defaults"]
    assert derived["train.early_stopping.patience"]["value"] == 10
    assert derived["train.early_stopping.smoothing"]["value"] == 0.8
    assert "smoothing: 0.8" in (result.path / "config.yaml").read_text()
    # the phantoms are CT in HU: nnU-Net's CT scheme, from the training foreground, written back to config.yaml
    assert plan["normalize"] == "ct" and plan["intensity"]["low"][0] < plan["intensity"]["high"][0]
    assert "Hounsfield" in plan["why"]["normalize"]
    assert "normalize: ct" in (result.path / "config.yaml").read_text()
    report = (result.path / "report.html").read_text()
    assert "Best test case" in report and "Worst test case" in report and "Plan" in report
    # patients do not straddle splits
    splits = pd.read_csv(result.path / "splits.csv")
    assert splits.groupby("patient_key")["split"].nunique().max() == 1


def test_predict_writes_masks_with_the_inputs_affine_and_volumes(trained: tuple, tmp_path: Path) -> None:
    _, manifest, result = trained
    images = sorted((manifest.parent / "images").glob("*.nii.gz"))[:3]
    bundle = load_bundle(result.path)
    table = bundle.predict(images, mask_dir=tmp_path / "masks", explain_dir=tmp_path / "overlays")
    assert list(table["path"]) == [str(p) for p in images]
    assert {"lesion_area_mm2", "lesion_count", "mask_path", "overlay", "note"} <= set(table.columns)
    for image_path, mask_path in zip(images, table["mask_path"], strict=True):
        written, source = nib.load(mask_path), nib.load(image_path)
        assert np.allclose(written.affine, source.affine)
        assert written.shape[:2] == source.shape[:2]
    # the volume column is the mask's own area at the image's spacing
    first = np.asarray(nib.load(table["mask_path"][0]).dataobj)
    spacing = nib.load(images[0]).header.get_zooms()[:2]
    assert table["lesion_area_mm2"][0] == pytest.approx(float((first == 1).sum()) * spacing[0] * spacing[1], rel=1e-4)
    assert all(Path(p).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in table["overlay"])
    maps = bundle.segment(images[:1])
    assert maps[0] is not None and maps[0].shape == (32, 32) and set(np.unique(maps[0])) <= {0, 1}


def test_an_unreadable_image_gets_a_note_not_a_row_lost(trained: tuple, tmp_path: Path) -> None:
    _, manifest, result = trained
    bad = tmp_path / "broken.nii.gz"
    bad.write_bytes(b"not a nifti")
    good = sorted((manifest.parent / "images").glob("*.nii.gz"))[0]
    table = load_bundle(result.path).predict([good, bad])
    assert len(table) == 2 and table["note"][0] == "" and "broken.nii.gz" in table["note"][1]
    with pytest.raises(MedDLError, match="MC dropout is not available for segmentation"):
        load_bundle(result.path).predict([good], mc_samples=3)


def test_a_mask_that_does_not_line_up_names_both_files(tmp_path: Path) -> None:
    manifest = write_phantom_dataset(
        tmp_path / "d", 12, spatial_dims=2, size=32, fmt="nifti", seed=1, mask_column="mask"
    )
    table = pd.read_csv(manifest)
    mask = manifest.parent / table["mask"][3]
    nib.save(nib.Nifti1Image(np.zeros((32, 30, 1), np.uint8), np.diag([0.8, 0.8, 0.8, 1])), mask)
    with pytest.raises(MedDLError, match=r"case_0003.nii.gz.*case_0003.nii.gz|does not line up"):
        Experiment.from_dict(_experiment(manifest)).run(out=tmp_path / "run")


def test_blank_mask_cell_and_unknown_label_values_are_errors(tmp_path: Path) -> None:
    manifest = write_phantom_dataset(
        tmp_path / "d", 12, spatial_dims=2, size=32, fmt="nifti", seed=1, mask_column="mask"
    )
    table = pd.read_csv(manifest)
    table.loc[2, "mask"] = None
    table.to_csv(manifest, index=False)
    with pytest.raises(MedDLError, match=r"row 4: column 'mask' is blank"):
        Experiment.from_dict(_experiment(manifest)).run(out=tmp_path / "run")
    manifest = write_phantom_dataset(
        tmp_path / "e", 12, spatial_dims=2, size=32, fmt="nifti", seed=1, mask_column="mask"
    )
    with pytest.raises(MedDLError, match=r"unexpected|not in|value"):
        Experiment.from_dict(_experiment(manifest, labels={2: "tumour"})).run(out=tmp_path / "run2")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"model": {"arch": "resnet18"}}, "does not fit task segmentation"),
        ({"train": {"ensemble": 2}}, "train.ensemble: not available for segmentation"),
        ({"evaluate": {"conformal": {"alpha": 0.1}}}, "evaluate.conformal: not available for segmentation"),
        (
            {"preprocess": {"normalize": "minmax"}},
            r"preprocess\.normalize: not available for segmentation yet \(zscore or ct\)",
        ),
        ({"preprocess": {"window": "lung"}}, r"preprocess\.window: not available for segmentation"),
        ({"preprocess": {"size": [32, 32]}}, r"preprocess\.size: not available for segmentation yet \(the plan"),
        ({"preprocess": {"min_object_size": -1}}, r"min_object_size"),
    ],
)
def test_config_mistakes_are_reported_before_any_data_is_read(tmp_path: Path, change: dict, message: str) -> None:
    raw = _experiment(tmp_path / "absent.csv")
    for section, values in change.items():
        raw[section] = {**raw.get(section, {}), **values}
    with pytest.raises(MedDLError, match=message):
        Experiment.from_dict(raw)


def test_predict_drops_objects_under_the_plans_smallest_size(trained: tuple) -> None:
    _, manifest, result = trained
    image = sorted((manifest.parent / "images").glob("*.nii.gz"))[0]
    bundle = load_bundle(result.path)
    modality = bundle.modality
    case = modality.read_for_prediction([image]).inputs[0]
    raw = modality.segment(bundle.model, case, postprocess=False)
    modality.plan.min_object_size = {1: 1e9}  # larger than any object: everything goes
    assert not modality.segment(bundle.model, case).any()
    modality.plan.min_object_size = {1: 0.0}
    assert np.array_equal(modality.segment(bundle.model, case), raw)


def test_a_3d_run_reloads_from_its_bundle_and_predicts(tmp_path: Path) -> None:
    manifest = write_phantom_dataset(
        tmp_path / "data", 16, spatial_dims=3, size=16, fmt="nifti", prevalence=0.9, seed=0, patients=16,
        mask_column="mask",
    )  # fmt: skip
    raw = _experiment(manifest, spatial_dims=3)
    raw["train"]["epochs"] = 1
    result = Experiment.from_dict(raw).run(out=tmp_path / "run")
    assert "size:\n  - 64\n  - 64\n  - 64" in (result.path / "config.yaml").read_text()  # the 3-D placeholder
    bundle = load_bundle(result.path)  # the written config.yaml is valid again
    image = sorted((manifest.parent / "images").glob("*.nii.gz"))[0]
    table = bundle.predict([image], mask_dir=tmp_path / "masks")
    assert table["note"].iloc[0] == "" and nib.load(table["mask_path"].iloc[0]).shape == (16, 16, 16)


@pytest.mark.parametrize(
    ("arch", "params", "patch"),
    [
        ("unetr", {"feature_size": 4, "hidden_size": 24, "mlp_dim": 48, "num_heads": 2}, [32, 32]),
        ("swin_unetr", {"feature_size": 12, "depths": [1, 1, 1, 1], "num_heads": [1, 2, 2, 4]}, [64, 64]),
    ],
)
def test_transformer_networks_train_reload_and_predict(tmp_path: Path, arch: str, params: dict, patch: list) -> None:
    manifest = write_phantom_dataset(
        tmp_path / "data", 12, spatial_dims=2, size=32, fmt="nifti", prevalence=0.9, seed=0, patients=12,
        mask_column="mask",
    )  # fmt: skip
    raw = _experiment(manifest)
    raw["model"] = {"arch": arch, **params}
    raw["train"]["epochs"] = 1
    result = Experiment.from_dict(raw).run(out=tmp_path / "run")
    plan = result.record["data"]["plan"]
    assert plan["patch_size"] == patch  # the network's divisor, at least twice it (Swin UNETR: 64 on 32-px images)
    bundle = load_bundle(result.path)
    if arch == "unetr":  # built for the plan's patch, which the bundle records for the rebuild
        assert json.loads((result.path / "model.json").read_text())["data_arguments"]["input_size"] == patch
    image = sorted((manifest.parent / "images").glob("*.nii.gz"))[0]
    table = bundle.predict([image], mask_dir=tmp_path / "masks")
    assert table["note"].iloc[0] == ""
    assert nib.load(table["mask_path"].iloc[0]).shape == nib.load(image).shape


@pytest.mark.parametrize(("arch", "patch"), [("unet", [5, 5]), ("swin_unetr", [32, 32]), ("unet", [16])])
def test_a_patch_the_network_cannot_take_is_an_error_before_any_data_is_read(
    tmp_path: Path, arch: str, patch: list
) -> None:
    raw = _experiment(tmp_path / "absent.csv")
    raw["model"] = {"arch": arch} if arch != "unet" else raw["model"]
    raw["preprocess"] = {"patch_size": patch}
    with pytest.raises(MedDLError, match=r"preprocess\.patch_size: .* does not fit model\.arch"):
        Experiment.from_dict(raw).run(out=tmp_path / "run")


def test_the_ct_scheme_is_only_for_segmentation(tmp_path: Path) -> None:
    raw = _experiment(tmp_path / "m.csv", labels=None)
    raw["data"].pop("labels")
    raw.update(task="binary", model={"arch": "small_cnn"}, preprocess={"normalize": "ct"})
    with pytest.raises(MedDLError, match=r"preprocess\.normalize: ct is for segmentation"):
        Experiment.from_dict(raw)


def test_labels_are_only_for_segmentation(tmp_path: Path) -> None:
    raw = _experiment(tmp_path / "m.csv")
    raw["task"] = "binary"
    raw["model"] = {"arch": "small_cnn"}
    with pytest.raises(MedDLError, match=r"data\.labels: names the values of segmentation masks"):
        Experiment.from_dict(raw)


def test_server_returns_the_mask_its_overlay_and_the_measured_volume(trained: tuple, tmp_path: Path) -> None:
    import base64

    from fastapi.testclient import TestClient

    from meddl.serve import Settings, create_app

    _, manifest, result = trained
    client = TestClient(create_app(Settings(bundles=[result.path], audit_log=tmp_path / "audit.jsonl")))
    image = sorted((manifest.parent / "images").glob("*.nii.gz"))[0]
    response = client.post("/models/seg/predict", files={"file": ("scan.nii.gz", image.read_bytes())})
    assert response.status_code == 200, response.text
    item = response.json()["predictions"][0]
    expected = load_bundle(result.path).predict([image])
    assert item["segmentation"]["lesion"]["size"] == pytest.approx(expected["lesion_area_mm2"][0])
    assert item["segmentation"]["lesion"]["unit"] == "mm²"
    assert base64.b64decode(item["overlay_png"])[:4] == b"\x89PNG"
    assert item["mask_file"]["name"] == "scan_mask.nii.gz"
    mask_path = tmp_path / item["mask_file"]["name"]
    mask_path.write_bytes(base64.b64decode(item["mask_file"]["base64"]))
    assert np.allclose(nib.load(mask_path).affine, nib.load(image).affine)
    page = client.get("/").text
    assert "overlay_png" in page and "Download the mask" in page


def test_dicom_input_gives_dicom_seg_masks_that_read_back(tmp_path: Path) -> None:
    import pydicom

    from meddl.io.images import read_image
    from meddl.io.masks import read_mask

    manifest = write_phantom_dataset(
        tmp_path / "d", 16, spatial_dims=2, size=32, fmt="dicom", prevalence=0.9, seed=2, mask_column="mask"
    )
    raw = _experiment(manifest)
    raw["train"]["epochs"] = 1
    result = Experiment.from_dict(raw).run(out=tmp_path / "run")
    image = sorted((manifest.parent / "images").glob("*.dcm"))[0]
    table = load_bundle(result.path).predict([image], mask_dir=tmp_path / "masks")
    written = Path(table["mask_path"][0])
    assert written.suffix == ".dcm"
    seg = pydicom.dcmread(written)
    assert seg.SOPClassUID == "1.2.840.10008.5.1.4.1.1.66.4" and seg.SegmentSequence[0].SegmentLabel == "lesion"
    source = pydicom.dcmread(image)
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == source.SeriesInstanceUID
    assert read_mask(written, read_image(image)).sum() * 0.8 * 0.8 == pytest.approx(table["lesion_area_mm2"][0])


def test_meddl_init_segmentation_is_a_valid_experiment(tmp_path: Path) -> None:
    import yaml
    from click.testing import CliRunner

    from meddl.cli import app
    from meddl.config import parse_config

    output = CliRunner().invoke(app, ["init", "segmentation"]).output
    config = parse_config(yaml.safe_load(output))
    assert config.task == "segmentation" and config.model.arch == "unet" and config.data.labels == {1: "lesion"}


def test_external_evaluation_and_explain_of_a_segmentation_bundle(trained: tuple, tmp_path: Path) -> None:
    from meddl.run.external import evaluate_external

    _, manifest, result = trained
    other = write_phantom_dataset(
        tmp_path / "site2", 12, spatial_dims=2, size=40, fmt="nifti", prevalence=1.0, seed=7, mask_column="mask"
    )
    external = evaluate_external(result.path, other, tmp_path / "ext")
    metrics = json.loads((external.path / "metrics.json").read_text())
    assert metrics["data"]["n_rows_used"] == 12 and 0.0 <= metrics["test"]["dice"]["value"] <= 1.0
    assert "hd95" in metrics["per_label"]["lesion"]
    assert {row["column"]: row["score"] for row in metrics["shift"]}["size axis 0"] > 1  # 40 px against 32
    out = tmp_path / "overlay.png"
    message = load_bundle(result.path).explain(sorted((manifest.parent / "images").glob("*.nii.gz"))[0], out)
    assert out.read_bytes()[:4] == b"\x89PNG" and "overlay" in message


def test_robustness_suite_segments_the_test_cases_again_under_corruptions(trained: tuple) -> None:
    _, _, result = trained
    metrics = json.loads((result.path / "metrics.json").read_text())
    suite = metrics["robustness"]
    assert suite["metric"] == "dice" and suite["n"] == metrics["data"]["splits"]["test"]
    names = {c["name"] for c in suite["corruptions"]}
    assert {"noise", "blur", "contrast", "rotation"} <= names
    for corruption in suite["corruptions"]:
        for row in corruption["severities"]:
            assert 0.0 <= row["value"] <= 1.0
            assert row["drop"] == pytest.approx(suite["clean"]["value"] - row["value"], abs=1e-9)
    assert "Robustness" in (result.path / "report.html").read_text()


def test_early_stopping_defaults_only_where_the_experiment_sets_none(tmp_path: Path) -> None:
    from meddl.config import ExperimentConfig, parse_config
    from meddl.run.segmentation import _early_stopping_defaults

    def config(**train: object) -> ExperimentConfig:
        raw = _experiment(tmp_path / "manifest.csv")
        raw["train"].update(train)
        return parse_config(raw)

    long = config(epochs=200)
    assert _early_stopping_defaults(long)["train.early_stopping.patience"]["value"] == 50
    assert (long.train.early_stopping.patience, long.train.early_stopping.smoothing) == (50, 0.8)
    given = config(epochs=200, early_stopping={"patience": 7})
    assert _early_stopping_defaults(given) == {}
    assert (given.train.early_stopping.patience, given.train.early_stopping.smoothing) == (7, 0.0)
