"""Transfer learning from a local weights file (``model.pretrained``): what is loaded, swapped and frozen."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file, save_file
from torch import nn

from meddl import Experiment, load_bundle
from meddl.data.phantoms import write_phantom_dataset
from meddl.errors import MedDLError
from meddl.models import build_model
from meddl.models.pretrained import apply_pretrained, describe_pretrained, head_modules
from meddl.sections import PretrainedConfig


def small_cnn(out_channels: int, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return build_model("small_cnn", {"channels": [8, 16]}, spatial_dims=2, in_channels=1, out_channels=out_channels)


def saved(model: nn.Module, path: Path, prefix: str = "") -> Path:
    save_file({prefix + k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    return path


def test_head_of_another_size_is_swapped_and_the_rest_loaded(tmp_path: Path) -> None:
    source = small_cnn(3, seed=1)
    weights = saved(source, tmp_path / "three_classes.safetensors")
    target, fresh = small_cnn(2, seed=2), small_cnn(2, seed=2)
    record = apply_pretrained(target, PretrainedConfig(path=weights))
    assert record is not None
    assert record["swapped"] == ["head.3.weight", "head.3.bias"] and record["n_swapped"] == 2
    assert record["missing"] == [] and record["unexpected"] == []
    assert record["loaded"] == len(source.state_dict()) - 2
    assert record["head"] == ["head"]
    for key, tensor in target.state_dict().items():
        expected = fresh.state_dict()[key] if key.startswith("head.") else source.state_dict()[key]
        assert torch.equal(tensor, expected), key
    assert record["frozen"] == [] and record["n_frozen_parameters"] == 0
    assert len(record["sha256"]) == 64
    line = describe_pretrained(record)
    assert line == "loaded 12 tensors from three_classes.safetensors (2 swapped: head for another output size)"


def test_none_changes_nothing() -> None:
    model = small_cnn(1)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    assert apply_pretrained(model, None) is None
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


@pytest.mark.parametrize("prefix", ["module.", "net.", "module.net.", "_orig_mod."])
def test_wrapper_prefixes_are_stripped(tmp_path: Path, prefix: str) -> None:
    source = small_cnn(1, seed=3)
    target = small_cnn(1, seed=4)
    record = apply_pretrained(target, PretrainedConfig(path=saved(source, tmp_path / "w.safetensors", prefix)))
    assert record is not None and record["loaded"] == len(source.state_dict())
    assert record["unexpected"] == [] and record["missing"] == []
    assert all(torch.equal(v, source.state_dict()[k]) for k, v in target.state_dict().items())


def test_bare_monai_weights_fit_the_wrapper_and_its_fc_is_the_head(tmp_path: Path) -> None:
    from monai.networks.nets import resnet18

    bare = resnet18(spatial_dims=2, n_input_channels=1, num_classes=2, conv1_t_stride=2)
    path = tmp_path / "bare.pt"
    torch.save(bare.state_dict(), path)  # a plain torch state dict, read with weights_only=True
    wrapper = build_model("resnet18", {}, spatial_dims=2, in_channels=1, out_channels=5)
    record = apply_pretrained(wrapper, PretrainedConfig(path=path, freeze=["encoder"]))
    assert record is not None
    assert record["head"] == ["net.fc"]
    assert record["swapped"] == ["net.fc.weight", "net.fc.bias"] and record["unexpected"] == []
    assert torch.equal(wrapper.net.conv1.weight, bare.conv1.weight)
    trainable = [name for name, p in wrapper.named_parameters() if p.requires_grad]
    assert trainable == ["net.fc.weight", "net.fc.bias"]
    assert record["frozen"][:3] == ["net.conv1", "net.bn1", "net.layer1"]


def test_segmentation_networks_output_block_is_the_head() -> None:
    from monai.networks.nets import SegResNet, UNet

    unet = UNet(spatial_dims=2, in_channels=1, out_channels=3, channels=(4, 8, 16), strides=(2, 2), num_res_units=1)
    assert head_modules(unet) == ["model.2"]
    wrapped = nn.Module()
    wrapped.net = SegResNet(spatial_dims=2, in_channels=1, out_channels=3, init_filters=8)
    assert head_modules(wrapped) == ["net.conv_final"]


def test_a_network_that_names_its_head_is_taken_at_its_word(tmp_path: Path) -> None:
    class Named(nn.Module):
        head = "decoder.out"

        def __init__(self) -> None:
            super().__init__()
            self.encoder = nn.Linear(4, 4)
            self.decoder = nn.Sequential()
            self.decoder.add_module("out", nn.Linear(4, 2))
            self.decoder.add_module("calibration", nn.Linear(2, 2))  # registered last, yet not the head

    model = Named()
    weights = saved(Named(), tmp_path / "named.safetensors")
    record = apply_pretrained(model, PretrainedConfig(path=weights, freeze=["encoder"]))
    assert record is not None and record["head"] == ["decoder.out"]
    assert sorted(record["frozen"]) == ["decoder.calibration", "encoder"]
    assert model.decoder.out.weight.requires_grad


def test_strict_names_the_file_and_the_first_key(tmp_path: Path) -> None:
    weights = saved(small_cnn(3), tmp_path / "three.safetensors")
    target = small_cnn(2)
    before = {k: v.clone() for k, v in target.state_dict().items()}
    with pytest.raises(MedDLError, match=r"three\.safetensors.*'head\.3\.weight' has shape \(3, 16\) in the file"):
        apply_pretrained(target, PretrainedConfig(path=weights, strict=True))
    assert all(torch.equal(before[k], v) for k, v in target.state_dict().items())  # nothing loaded on error

    partial = {k: v for k, v in small_cnn(2).state_dict().items() if not k.startswith("features.0.1")}
    save_file(partial, str(tmp_path / "partial.safetensors"))
    with pytest.raises(MedDLError, match=r"partial\.safetensors.*key 'features\.0\.1\.weight' is missing"):
        apply_pretrained(small_cnn(2), PretrainedConfig(path=tmp_path / "partial.safetensors", strict=True))

    extra = {**small_cnn(2).state_dict(), "projection.weight": torch.zeros(2, 2)}
    save_file(extra, str(tmp_path / "extra.safetensors"))
    with pytest.raises(MedDLError, match=r"extra\.safetensors.*unexpected key 'projection\.weight'"):
        apply_pretrained(small_cnn(2), PretrainedConfig(path=tmp_path / "extra.safetensors", strict=True))
    record = apply_pretrained(small_cnn(2), PretrainedConfig(path=tmp_path / "extra.safetensors"))
    assert record is not None and record["unexpected"] == ["projection.weight"] and record["n_unexpected"] == 1

    exact = saved(small_cnn(2, seed=9), tmp_path / "exact.safetensors")
    record = apply_pretrained(small_cnn(2), PretrainedConfig(path=exact, strict=True))
    assert record is not None and record["loaded"] == len(small_cnn(2).state_dict())


def test_freeze_by_module_name_and_unmatched_names(tmp_path: Path) -> None:
    weights = saved(small_cnn(1, seed=5), tmp_path / "w.safetensors")
    model = small_cnn(1)
    record = apply_pretrained(model, PretrainedConfig(path=weights, freeze=["features.0"]))
    assert record is not None and record["frozen"] == ["features.0"]
    frozen = {name for name, p in model.named_parameters() if not p.requires_grad}
    assert frozen == {"features.0.0.weight", "features.0.1.weight", "features.0.1.bias"}
    assert record["n_frozen_parameters"] == sum(p.numel() for p in model.features[0].parameters())

    record = apply_pretrained(small_cnn(1), PretrainedConfig(path=weights, freeze=["head"]))
    assert record is not None and record["frozen"] == ["head"]
    everything = small_cnn(1)
    record = apply_pretrained(everything, PretrainedConfig(path=weights, freeze=["encoder", "head"]))
    assert record is not None and record["frozen"] == ["features", "head"]
    assert record["n_frozen_parameters"] == sum(p.numel() for p in everything.parameters())

    with pytest.raises(MedDLError, match=r"model\.pretrained\.freeze: 'backbone' matches no.*features, head"):
        apply_pretrained(small_cnn(1), PretrainedConfig(path=weights, freeze=["backbone"]))


def test_unreadable_file_names_the_field(tmp_path: Path) -> None:
    garbage = tmp_path / "notes.pt"
    garbage.write_text("not weights")
    with pytest.raises(MedDLError, match=r"model\.pretrained\.path: cannot read weights from .*notes\.pt"):
        apply_pretrained(small_cnn(1), PretrainedConfig(path=garbage))


# -- the experiment file ---------------------------------------------------------------------------------------


def image_experiment(manifest: Path, **model: object) -> dict:
    return {
        "name": "phantoms",
        "task": "binary",
        "data": {"kind": "image", "path": str(manifest), "target": "label", "positive_label": "lesion"},
        "preprocess": {"size": [32, 32]},
        "model": {"arch": "small_cnn", "channels": [8, 16], **model},
        "train": {"epochs": 2, "batch_size": 16, "progress": False, "scheduler": "none"},
        "evaluate": {"bootstrap": 10, "robustness": False, "baselines": []},
        "explain": {"heatmap": "occlusion", "occlusion_window": 16, "occlusion_stride": 16},
    }


def test_a_missing_weights_file_is_reported_when_the_experiment_is_loaded(tmp_path: Path) -> None:
    config = image_experiment(tmp_path / "not-read-yet.csv", pretrained={"path": "weights.safetensors"})
    (tmp_path / "exp.yaml").write_text(yaml.safe_dump(config))
    expected = str(tmp_path.resolve() / "weights.safetensors")
    with pytest.raises(MedDLError, match=r"model\.pretrained\.path: file not found: " + expected):
        Experiment.from_yaml(tmp_path / "exp.yaml")
    (tmp_path / "weights.safetensors").write_bytes(b"")  # relative to the experiment file, as data.path
    experiment = Experiment.from_yaml(tmp_path / "exp.yaml")
    assert experiment.config.model.pretrained is not None
    assert str(experiment.config.model.pretrained.path) == expected
    assert experiment.config.model.params == {"channels": [8, 16]}  # not passed to the network


def test_unknown_pretrained_fields_are_named(tmp_path: Path) -> None:
    config = image_experiment(tmp_path / "m.csv", pretrained={"path": "w.safetensors", "freez": ["encoder"]})
    with pytest.raises(MedDLError, match=r"model\.pretrained\.freez: unknown field"):
        Experiment.from_dict(config, base_dir=tmp_path)


@pytest.mark.slow
def test_fine_tuning_with_a_frozen_encoder_keeps_it(tmp_path: Path) -> None:
    manifest = write_phantom_dataset(tmp_path / "data", 48, size=32, seed=3)
    source = Experiment.from_dict(image_experiment(manifest)).run(out=tmp_path / "source")
    weights = source.path / "model.safetensors"
    messages: list[str] = []
    config = image_experiment(manifest, pretrained={"path": str(weights), "freeze": ["encoder"]})
    config["train"]["learning_rate"] = 0.05  # large steps: a parameter that should move certainly does
    result = Experiment.from_dict(config).run(out=tmp_path / "tuned", log=messages.append)

    record = result.record["model"]["pretrained"]
    assert record["path"] == str(weights.resolve()) and record["swapped"] == []
    assert record["frozen"] == ["features"]
    parameters = dict(small_cnn(1).named_parameters())
    assert record["n_frozen_parameters"] == sum(p.numel() for k, p in parameters.items() if k.startswith("features"))
    before, after = load_file(str(weights)), load_file(str(result.path / "model.safetensors"))
    for name in parameters:  # parameters only: batch-norm running statistics still follow the new data
        unchanged = torch.equal(before[name], after[name])
        assert unchanged == name.startswith("features."), name
    assert any(m.startswith(f"loaded {len(before)} tensors from model.safetensors (froze encoder: ") for m in messages)
    assert json.loads((result.path / "run.json").read_text())["model"]["pretrained"]["frozen"] == ["features"]
    weights.unlink()  # the bundle stands alone: its config names the file, loading it does not need it
    assert load_bundle(result.path).config.model.pretrained is not None
