"""What a survival network's raw outputs mean, fitted once after training and saved in the bundle.

A Cox head (DeepSurv) outputs one log-risk per case; survival curves need the Breslow baseline hazard fitted on the
training split. A discrete head (DeepHit) outputs logits over (cause, interval) of a time grid taken from the
training event times. :class:`SurvivalOutputs` holds that state (JSON, never pickle) and turns outputs into the
scores every layer above uses: one row per case, ``[risk, S(h) at each horizon, median survival, S(t) on a curve
grid]`` (:meth:`SurvivalOutputs.columns` names the first part).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

from meddl.errors import MedDLError
from meddl.train.survival import (
    breslow_baseline,
    cox_loss,
    cox_survival,
    deephit_curves,
    deephit_loss,
    deephit_risk,
    survival_output_size,
    time_grid,
)
from meddl.train.trainer import LossFn

__all__ = ["CURVE_POINTS", "SurvivalOutputs", "horizon_name"]


class _DiscreteRisk(torch.nn.Module):
    """P(any event in the first ``bins`` intervals) from a discrete head's logits (an implicit 0 logit pads "no
    event within the grid", as the loss does)."""

    def __init__(self, model: torch.nn.Module, bins: int, n_intervals: int) -> None:
        super().__init__()
        self.model, self.bins, self.n_intervals = model, bins, n_intervals

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.model(x)
        padded = torch.cat([logits, torch.zeros_like(logits[:, :1])], dim=1)
        pmf = torch.softmax(padded, dim=1)[:, :-1].reshape(len(x), -1, self.n_intervals)  # (B, causes, T)
        return pmf[:, :, : self.bins].sum(dim=(1, 2)).unsqueeze(1)


CURVE_POINTS = 40  # points of the survival curve a prediction carries (the server draws it)


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name.strip().lower()) or "cause"


def horizon_name(horizon: float) -> str:
    """A horizon as a column suffix: ``1826``, ``2.5``."""
    return f"{horizon:g}"


@dataclass
class SurvivalOutputs:
    """The survival head's state: ``head`` (cox | discrete), the report's ``horizons``, the event ``causes``, the
    discrete ``grid`` or the Cox ``baseline_times``/``baseline_hazard``, and the ``curve_times`` of predictions."""

    head: str
    horizons: list[float]
    causes: list[str]
    curve_times: list[float]
    grid: list[float] | None = None
    baseline_times: list[float] | None = None
    baseline_hazard: list[float] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def plan(
        cls, head: str, time: np.ndarray, event: np.ndarray, horizons: list[float], causes: list[str], n_bins: int
    ) -> SurvivalOutputs:
        """The head's layout from the training split's follow-up (``time``, ``event`` codes)."""
        if head == "cox" and len(causes) > 1:
            raise MedDLError(
                f"the event column holds {len(causes)} causes (competing risks); a Cox head models one event — set "
                "model.arch: deephit (or model.survival_head: discrete)"
            )
        if not (event > 0).any():
            raise MedDLError("the training split has no event (every patient censored): nothing to learn from")
        grid = [float(t) for t in time_grid(time, event, n_bins)] if head == "discrete" else None
        end = max(float(np.quantile(time, 0.95)), float(horizons[-1]))
        curve = [float(t) for t in np.linspace(0.0, end, CURVE_POINTS)]
        return cls(head=head, horizons=[float(h) for h in horizons], causes=list(causes), curve_times=curve, grid=grid)

    # -- training ---------------------------------------------------------------------------------------
    def output_size(self) -> int:
        return survival_output_size(self.head, len(self.causes), len(self.grid or []))

    def loss(self) -> LossFn:
        if self.head == "cox":
            return cox_loss
        return deephit_loss(len(self.causes), np.asarray(self.grid, dtype=np.float64))

    def risk(self, outputs: np.ndarray) -> np.ndarray:
        """One number per case, higher = earlier event (what concordance ranks): the log-risk of a Cox head;
        for a discrete head the probability of any event by the last horizon."""
        outputs = np.asarray(outputs, dtype=np.float64)
        if self.head == "cox":
            return outputs.reshape(len(outputs), -1)[:, 0]
        return np.asarray(deephit_risk(outputs, np.asarray(self.grid), self.horizons[-1]), dtype=np.float64)

    def fit_baseline(self, outputs: np.ndarray, time: np.ndarray, event: np.ndarray) -> None:
        """Cox head: the Breslow baseline hazard from the training split's outputs (a discrete head has none)."""
        if self.head == "cox":
            times, hazard = breslow_baseline(self.risk(outputs), time, (event > 0).astype(np.int64))
            self.baseline_times = [float(t) for t in times]
            self.baseline_hazard = [float(h) for h in hazard]

    def risk_model(self, model: torch.nn.Module) -> torch.nn.Module:
        """``model`` with one output, the risk (what explanations attribute): the Cox head's log-risk itself; for
        a discrete head the probability of any event by the last horizon, differentiable in the inputs."""
        if self.head == "cox":
            return model
        grid = np.asarray(self.grid, dtype=np.float64)
        return _DiscreteRisk(model, int(np.searchsorted(grid, self.horizons[-1], side="left")) + 1, len(grid))

    # -- prediction -------------------------------------------------------------------------------------
    def survival(self, outputs: np.ndarray, at: np.ndarray | list[float]) -> np.ndarray:
        """S(t | x) of every case at the times ``at``, (N, len(at))."""
        at = np.asarray(at, dtype=np.float64)
        if self.head == "cox":
            if self.baseline_times is None or self.baseline_hazard is None:
                raise MedDLError("the Cox head's baseline hazard was not fitted")
            return np.asarray(
                cox_survival(self.risk(outputs), np.asarray(self.baseline_times), np.asarray(self.baseline_hazard), at)
            )
        survival, _ = deephit_curves(np.asarray(outputs, dtype=np.float64), np.asarray(self.grid), at)
        return np.asarray(survival)

    def median(self, outputs: np.ndarray) -> np.ndarray:
        """The first time a case's survival falls to 0.5 or below; NaN when its curve never does."""
        times = np.asarray(self.baseline_times if self.head == "cox" else self.grid, dtype=np.float64)
        curves = self.survival(outputs, times)
        reached = curves <= 0.5
        first = np.argmax(reached, axis=1)
        return np.where(reached.any(axis=1), times[first], np.nan)

    @property
    def competing(self) -> bool:
        """Several event causes (a discrete head): predictions carry each cause's cumulative incidence."""
        return len(self.causes) > 1

    def cumulative_incidence(self, outputs: np.ndarray, at: np.ndarray | list[float]) -> np.ndarray:
        """CIF_k(t | x) of every case and cause at the times ``at``, (N, K, len(at)) (discrete head)."""
        _, cif = deephit_curves(np.asarray(outputs, dtype=np.float64), np.asarray(self.grid), np.asarray(at))
        return np.asarray(cif)

    def columns(self) -> list[str]:
        """Names of the leading score columns: ``risk``, ``surv_<h>`` per horizon, ``median_survival``, and with
        competing causes ``cif_<cause>_<h>`` per cause and horizon."""
        names = ["risk", *[f"surv_{horizon_name(h)}" for h in self.horizons], "median_survival"]
        if self.competing:
            names += [f"cif_{_slug(c)}_{horizon_name(h)}" for c in self.causes for h in self.horizons]
        return names

    def scores(self, outputs: np.ndarray) -> np.ndarray:
        """``[risk, S(horizons), median, (CIF per cause and horizon), S(curve_times)]`` per case."""
        outputs = np.asarray(outputs, dtype=np.float64)
        if outputs.ndim == 1:
            outputs = outputs[:, None]
        parts = [self.risk(outputs), self.survival(outputs, self.horizons), self.median(outputs)]
        if self.competing:
            parts.append(self.cumulative_incidence(outputs, self.horizons).reshape(len(outputs), -1))
        parts.append(self.survival(outputs, self.curve_times))
        return np.column_stack(parts)

    def time_to_survival(self, scores: np.ndarray, level: float) -> np.ndarray:
        """The time at which each case's predicted survival curve falls to ``level`` (linear between the curve's
        points); the curve's last time where it never does (a low-risk case followed to the end)."""
        curves = np.atleast_2d(self.split(scores)["curve"])
        times = np.asarray(self.curve_times, dtype=np.float64)
        out = np.full(len(curves), times[-1])
        below = curves <= level
        reached = below.any(axis=1)
        first = np.argmax(below, axis=1)
        for i in np.flatnonzero(reached):
            j = first[i]
            if j == 0:
                out[i] = times[0]
                continue
            s0, s1 = curves[i, j - 1], curves[i, j]
            share = (s0 - level) / (s0 - s1) if s0 > s1 else 1.0
            out[i] = times[j - 1] + share * (times[j] - times[j - 1])
        return out

    def split(self, scores: np.ndarray) -> dict[str, np.ndarray]:
        """The parts of :meth:`scores`: ``risk`` (N,), ``survival`` (N, H), ``median`` (N,), ``cif`` (N, K, H;
        competing causes only) and ``curve`` (N, C)."""
        h, k = len(self.horizons), len(self.causes)
        scores = np.atleast_2d(scores)
        start = 2 + h + (k * h if self.competing else 0)
        parts = {
            "risk": scores[:, 0],
            "survival": scores[:, 1 : 1 + h],
            "median": scores[:, 1 + h],
            "curve": scores[:, start:],
        }
        if self.competing:
            parts["cif"] = scores[:, 2 + h : start].reshape(len(scores), k, h)
        return parts

    # -- persistence ------------------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, state: dict[str, Any]) -> SurvivalOutputs:
        try:
            return cls(**state)
        except TypeError as exc:
            raise MedDLError(f"model.json: the survival state is not readable ({exc}); retrain the model") from None
