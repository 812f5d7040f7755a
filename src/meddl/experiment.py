"""An experiment: one YAML file run through the one training run (:mod:`meddl.run`).

``Experiment.from_yaml("exp.yaml").run(out="runs/pima")`` is what ``meddl train`` calls, and
:func:`evaluate_external` is ``meddl evaluate``: the same figures on another site's data.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from meddl.config import ExperimentConfig, load_config, parse_config
from meddl.models import check_model_params
from meddl.run import RunResult, TrainingRun, evaluate_external

__all__ = ["Experiment", "RunResult", "evaluate_external"]


class Experiment:
    """One experiment file, runnable from Python exactly as ``meddl train`` runs it.

    Example:
        >>> result = Experiment.from_yaml("exp.yaml").run(out="runs/pima")  # doctest: +SKIP
        >>> result.metrics["test"]["auroc"]  # doctest: +SKIP
        {'value': 0.84, 'ci': [0.79, 0.89]}
    """

    def __init__(self, config: ExperimentConfig, base_dir: str | Path | None = None) -> None:
        check_model_params(config.model.arch, config.model.params, source="experiment")
        self.config = config
        self.base_dir = Path(base_dir) if base_dir else Path.cwd()
        config.data.resolve_paths(self.base_dir)
        config.model.resolve_pretrained(self.base_dir)  # like data.path; a missing file is named before any read

    @classmethod
    def from_yaml(cls, path: str | Path) -> Experiment:
        config, base = load_config(path)
        check_model_params(config.model.arch, config.model.params, source=str(path))
        return cls(config, base)

    @classmethod
    def from_dict(cls, raw: dict[str, Any], base_dir: str | Path | None = None) -> Experiment:
        return cls(parse_config(raw), base_dir)

    def run(
        self, out: str | Path | None = None, *, resume: bool = False, overwrite: bool = False, log: Any = None
    ) -> RunResult:
        """Train, evaluate, explain and write the bundle folder (any data kind: the modality registered for
        ``data.kind`` reads and preprocesses; the run is the same for all).

        Args:
            out: the run folder (default ``runs/<name>``). The run is written beside it (``<out>.partial``) and moved
                there when complete; an earlier MedDL run in it is replaced, files MedDL did not write are kept.
            resume: continue an interrupted run from its last checkpoint (``<out>.partial/checkpoints``).
            overwrite: allow ``out`` to be a non-empty folder MedDL did not make (its files are kept).
            log: optional ``callable(str)`` for progress messages.

        Returns:
            The run folder, metrics and run record.
        """
        return TrainingRun(self.config).run(out, resume=resume, overwrite=overwrite, log=log)
