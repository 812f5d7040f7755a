"""The ``data`` and ``preprocess`` sections of medical images (``data.kind: image``).

Plain pydantic (see :mod:`meddl.sections`): validating an experiment imports nothing heavy.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field, model_validator

from meddl.sections import DataSection, PreprocessSection, Section

__all__ = ["AugmentConfig", "Data", "ImageDataConfig", "ImagePreprocessConfig", "Preprocess"]


class ImageDataConfig(DataSection):
    """Medical images: a folder, a manifest CSV or a MedMNIST-style ``.npz``.

    ``path`` may be
    * a folder with one sub-folder per class (``benign/``, ``malignant/``) of PNG/JPEG/DICOM/NIfTI files;
    * a manifest CSV with a path column (relative to the CSV), a label column and optionally a patient id column;
      a path may name a single file or a DICOM series folder;
    * a ``.npz`` with ``train_images``/``train_labels``, ``val_…``, ``test_…`` (its own splits are used).
    """

    default_arch: ClassVar[str] = "small_cnn"
    archs: ClassVar[tuple[str, ...]] = (
        "small_cnn",
        "seed_cnn",
        "resnet18",
        "resnet34",
        "densenet121",
        "vit",
        "unet",
        "segresnet",
        "unetr",
        "swin_unetr",
    )
    task_archs: ClassVar[dict[str, tuple[str, ...]]] = {"segmentation": ("unet", "segresnet", "unetr", "swin_unetr")}

    tasks: ClassVar[tuple[str, ...]] = ("binary", "multiclass", "multilabel", "segmentation")
    classical_baselines: ClassVar[bool] = False  # no classical baseline on raw pixels by default

    kind: Literal["image"]
    path: Path
    format: Literal["auto", "dicom", "nifti", "png", "npz"] = "auto"
    path_column: str = "path"
    target: str = Field("label", description="label column of the manifest")
    label_columns: list[str] | None = Field(None, description="multilabel: one 0/1 column per finding")
    positive_label: str | int | float | bool | None = None
    classes: list[str | int | float | bool] | None = None
    patient_id: str | None = None
    spatial_dims: Literal[2, 3] = 2
    on_bad_file: Literal["error", "skip"] = "error"
    mask_column: str = Field("mask", description="segmentation: the manifest column naming each image's mask file")
    labels: dict[int, str] | None = Field(
        None,
        description="segmentation: the label values in the masks and their names, e.g. {1: lesion}; default: the "
        "values found in the masks, named label_<value>",
    )

    @model_validator(mode="after")
    def _labels_valid(self) -> ImageDataConfig:
        if self.labels is not None:
            if not self.labels:
                raise ValueError("labels: give at least one label value and its name, e.g. {1: lesion}")
            bad = [value for value in self.labels if value < 1 or value > 255]
            if bad:
                raise ValueError(f"labels: label values are 1 to 255 (0 is the background); got {bad}")
            if len(set(self.labels.values())) != len(self.labels):
                raise ValueError(f"labels: two labels share a name: {self.labels}")
        return self

    def check_task(self, task: str) -> None:
        if task != "segmentation" and self.labels is not None:
            raise ValueError("data.labels: names the values of segmentation masks; this is a " + task + " task")
        if task == "regression":
            raise ValueError("task regression is not available for images yet; use binary, multiclass or multilabel")
        super().check_task(task)
        if task == "multilabel" and not self.label_columns:
            raise ValueError("task multilabel needs data.label_columns (one 0/1 column per finding)")


class AugmentConfig(Section):
    """Random augmentation, applied to the training split only, seeded by ``train.seed``."""

    flip: bool = True
    rotate_degrees: float = Field(10.0, ge=0, le=180)
    affine: bool = False
    intensity_shift: float = Field(0.1, ge=0)
    noise_std: float = Field(0.0, ge=0)


class ImagePreprocessConfig(PreprocessSection):
    """MONAI transforms: window → resample → resize/crop/pad → normalise; augmentation on training only."""

    kind: Literal["image"] = "image"
    window: Literal["lung", "soft_tissue", "bone", "brain"] | None = None
    window_level: float | None = None
    window_width: float | None = Field(None, gt=0)
    spacing: list[float] | None = Field(None, description="resample to this voxel spacing (mm), per spatial axis")
    size: list[int] = Field(default_factory=lambda: [64, 64], description="target size per spatial axis")
    resize_mode: Literal["resize", "crop_or_pad"] = "resize"
    normalize: Literal["zscore", "percentile", "minmax", "none", "ct"] = Field(
        "zscore",
        description="zscore: each image by its own mean and SD; ct (segmentation): nnU-Net's CT scheme, clipped to the "
        "training foreground's 0.5-99.5th percentiles and scaled by its mean and SD; segmentation chooses between "
        "the two from the training images when this is left out",
    )
    channels: Literal[1, 3] | None = Field(None, description="force grey (1) or RGB (3); default: as read")
    augment: AugmentConfig = Field(default_factory=AugmentConfig)
    cache: bool = True
    cache_dir: Path | None = Field(None, description="default: .meddl-cache next to the data")
    imbalance: Literal["none", "class_weight", "oversample"] = "none"
    # segmentation (the plan step derives each one the experiment leaves out; see docs/segmentation.md)
    patch_size: list[int] | None = Field(
        None, description="segmentation: the patch trained on and slid over a whole image (default: from the data)"
    )
    foreground_ratio: float = Field(
        0.5, ge=0, le=1, description="segmentation: share of training patches centred on a foreground voxel"
    )
    overlap: float = Field(0.5, ge=0, lt=1, description="segmentation: sliding-window overlap between patches")
    min_object_size: float | None = Field(
        None,
        ge=0,
        description="segmentation: drop predicted objects smaller than this (mm³; mm² for 2-D images), every label; "
        "default: chosen per label on the validation cases (0, or 10/25/50 % of the smallest training object)",
    )

    @model_validator(mode="after")
    def _window_complete(self) -> ImagePreprocessConfig:
        if (self.window_level is None) != (self.window_width is None):
            raise ValueError("set both window_level and window_width (a custom window), or neither")
        if self.window is not None and self.window_level is not None:
            raise ValueError("choose a window preset or window_level/window_width, not both")
        return self


Data = ImageDataConfig
Preprocess = ImagePreprocessConfig
