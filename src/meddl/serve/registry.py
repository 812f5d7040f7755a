"""The bundles a server serves, loaded once (hash-verified) and routed by their experiment name."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from meddl.bundle import Bundle, load_bundle
from meddl.errors import MedDLError

__all__ = ["ServedModel", "load_models"]


@dataclass
class ServedModel:
    bundle: Bundle
    request_model: type[BaseModel] | None  # the JSON body of the modality's json_route; None: uploads only

    @property
    def kind(self) -> str:
        return self.bundle.kind

    @property
    def request_style(self) -> str:
        """Which form the web page shows: ``records``, ``upload_image``, ``upload_cases``, ``upload_inputs``, ``events``
        or ``text``."""
        return self.bundle.modality.request_style

    @property
    def actions(self) -> tuple[str, ...]:
        return self.bundle.modality.actions

    @property
    def name(self) -> str:
        return self.bundle.name

    @property
    def json_routes(self) -> dict[str, str] | None:
        """The actions of the JSON route pair (``predict`` and its explain twin); None when the model takes uploads
        only. The web page posts a typed case to ``explain``."""
        route = self.bundle.modality.json_route
        if not route or self.request_model is None:
            return None
        return {"predict": route, "explain": route.replace("predict", "explain", 1)}

    def summary(self) -> dict[str, Any]:
        b = self.bundle
        return {
            "name": b.name,
            "task": b.task,
            "kind": self.kind,
            "request_style": self.request_style,
            "arch": b.info["arch"],
            "classes": b.classes,
            "threshold": b.threshold,
            "bundle_hash": b.bundle_hash,
            "created": b.info.get("created"),
        }

    def _conformal(self) -> dict[str, Any] | None:
        """What the page says about the model's conformal sets: the target coverage and the one measured."""
        conformal = self.bundle.conformal
        if conformal is None:
            return None
        figures = self.bundle.metrics.get("conformal") or {}
        return {
            "coverage": 1.0 - conformal.alpha,
            "method": conformal.method,
            "mondrian": conformal.mondrian,
            "test_coverage": _coverage_text(figures, self.bundle.config.evaluate.confidence_level),
            "max_interval": self.bundle.config.serve.max_interval,
        }

    def detail(self) -> dict[str, Any]:
        b = self.bundle
        test = b.metrics.get("test", {})
        operating_point = None
        if b.task == "binary":
            operating_point = {
                "threshold": b.threshold,
                "rule": b.info.get("threshold_rule"),
                "sensitivity": test.get("sensitivity"),
                "specificity": test.get("specificity"),
                "ppv": test.get("precision"),
                "npv": test.get("npv"),
                "meaning": (
                    f"A case is called '{b.classes[1]}' when its probability is at least {b.threshold:.3f}. "
                    "On the held-out test split this caught the share of true cases given by sensitivity and "
                    "cleared the share of non-cases given by specificity (95% CIs in brackets)."
                )
                if b.threshold is not None
                else None,
            }
        card_path = b.path / "model_card.md"
        return {
            **self.summary(),
            "target": b.info.get("target"),
            "description": b.config.data.description,
            "input_schema": b.modality.request_schema(),
            "json_routes": self.json_routes,
            "operating_point": operating_point,
            "conformal": self._conformal(),
            "referral": self.bundle.referral.to_json() if self.bundle.referral is not None else None,
            "metrics": test,
            "baselines": b.metrics.get("baselines", {}),
            "model_card": card_path.read_text(encoding="utf-8") if card_path.exists() else None,
        }


def _coverage_text(figures: dict[str, Any], level: float) -> str | None:
    overall = (figures.get("test") or {}).get("overall", {}).get("coverage") or {}
    if overall.get("value") is None:
        return None
    low, high = overall.get("ci") or [None, None]
    shown = f"{100 * overall['value']:.1f} %"
    if low is None or high is None:
        return shown
    return f"{shown} ({level:.0%} CI {100 * low:.1f}–{100 * high:.1f} %)"


def load_models(paths: list[Path]) -> dict[str, ServedModel]:
    """Load every bundle; two bundles with the same name are an error (routes would collide)."""
    if not paths:
        raise MedDLError("no bundle to serve: give at least one run folder")
    models: dict[str, ServedModel] = {}
    for path in paths:
        bundle = load_bundle(path)
        if bundle.name in models:
            raise MedDLError(
                f"{path}: a bundle named {bundle.name!r} is already served from {models[bundle.name].bundle.path}; "
                "rename one experiment (the name routes requests)"
            )
        modality = bundle.modality
        models[bundle.name] = ServedModel(bundle, modality.request_model() if modality.json_route else None)
    return models
