"""Small helpers the section builders of the run context share: display text, reading and checking the record."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import yaml

from meddl.report._context_types import KINDS
from meddl.report._format import DASH, fmt_metric, fmt_number, fmt_sig, mapping, model_name_label, sequence

__all__: list[str] = []


def _text(value: object) -> str:
    """Any value as display text; None and empty text become an em dash."""
    if value is None or value == "":
        return DASH
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return fmt_sig(value)
    if isinstance(value, list | tuple):
        return ", ".join(_text(item) for item in value) if value else DASH
    if isinstance(value, Mapping):
        return json.dumps(value, default=str, ensure_ascii=False)
    return str(value)


def _require(run: object) -> Mapping[str, Any]:
    if not isinstance(run, Mapping):
        raise ValueError(f"run record: expected a dict, got {type(run).__name__}")
    for key in ("kind", "name", "task"):
        if run.get(key) in (None, ""):
            raise ValueError(f"run record: required key {key!r} is missing")
    if run["kind"] not in KINDS:
        raise ValueError(f"run record: 'kind' must be one of {list(KINDS)}, got {run['kind']!r}")
    if not isinstance(mapping(run.get("evaluation")).get("model"), Mapping):
        raise ValueError("run record: required key 'evaluation.model' is missing (the model's evaluation)")
    return run


def _parse_config(config_yaml: object) -> Mapping[str, Any]:
    """The experiment file as a dict, or empty when it is absent or not a YAML mapping (it is only shown)."""
    if not isinstance(config_yaml, str) or not config_yaml.strip():
        return {}
    try:
        parsed = yaml.safe_load(config_yaml)
    except yaml.YAMLError:
        return {}
    return parsed if isinstance(parsed, Mapping) else {}


def _positive_label(run: Mapping[str, Any]) -> str | None:
    data = mapping(run.get("data"))
    if data.get("positive_label") is not None:
        return str(data["positive_label"])
    classes = sequence(data.get("classes"))
    if run.get("task") == "binary" and len(classes) == 2:
        return str(classes[1])
    return None


def _target_description(run: Mapping[str, Any]) -> str:
    data = mapping(run.get("data"))
    target = data.get("target")
    if target is None:
        return "the outcome this model was trained on"
    task = run.get("task")
    if task == "binary":
        positive = _positive_label(run)
        return f"'{target}'" + (f" (positive class: {positive})" if positive else "")
    if task == "multiclass":
        classes = sequence(data.get("classes"))
        return f"'{target}'" + (f" (one of: {', '.join(map(str, classes))})" if classes else "")
    if task == "survival":
        return f"the risk of the event and the chance of remaining free of it over time (follow-up: {target})"
    if task == "segmentation":
        classes = sequence(data.get("classes"))
        return f"the extent of {', '.join(map(str, classes)) or 'the labelled regions'} in an image (where and how big)"
    return f"the value of '{target}'"


def _main_metric(task: object) -> str | None:
    return {
        "binary": "auroc",
        "multiclass": "auroc_macro",
        "regression": "rmse",
        "survival": "c_index",
        "segmentation": "dice",
    }.get(str(task))


def _evaluations(run: Mapping[str, Any]) -> list[tuple[str, str, Mapping[str, Any]]]:
    """``(key, label, EVAL)`` for the model first, then each baseline."""
    evaluation = mapping(run.get("evaluation"))
    items = [("model", "Model", mapping(evaluation.get("model")))]
    for key, record in mapping(evaluation.get("baselines")).items():
        if isinstance(record, Mapping):
            items.append((str(key), model_name_label(str(key)), record))
    return items


def _is_number(cell: str) -> bool:
    try:
        float(cell.replace("%", "").replace("−", "-"))
    except ValueError:
        return False
    return True


def _fine(metric: str, value: object, reference: object) -> str:
    """A metric with one decimal more than in the metrics table, for differences and fold-to-fold spread."""
    if metric in {"mae", "rmse"}:
        return fmt_metric(metric, value, reference)
    return fmt_number(value, 4 if metric in {"brier", "ece", "log_loss"} else 3)
