"""Tests of meddl.train.survival: Cox/Efron against scikit-survival and hand loops, DeepHit by hand and by learning."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch
from scipy.stats import kendalltau, spearmanr
from sksurv.datasets import load_whas500
from sksurv.linear_model import CoxPHSurvivalAnalysis
from sksurv.linear_model.coxph import CoxPHOptimizer
from sksurv.util import Surv

from meddl.errors import MedDLError
from meddl.train.survival import (
    bin_index,
    breslow_baseline,
    cox_loss,
    cox_survival,
    deephit_curves,
    deephit_loss,
    deephit_risk,
    median_survival,
    survival_output_size,
    time_grid,
)

WHAS_NUMERIC = ["age", "bmi", "diasbp", "hr", "los", "sysbp"]


@functools.cache
def whas500() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """WHAS500's numeric covariates (standardised), follow-up days and death indicator; 215 deaths, tied days."""
    x, y = load_whas500()
    features = x[WHAS_NUMERIC].to_numpy(dtype=np.float64)
    features = (features - features.mean(axis=0)) / features.std(axis=0)
    return features, y["lenfol"].astype(np.float64), y["fstat"].astype(bool)


def targets_of(time: np.ndarray, event: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(np.column_stack([time, event]).astype(np.float64))


def cox_gradient(x: np.ndarray, time: np.ndarray, event: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """d cox_loss(X @ beta) / d beta, through autograd with beta a leaf tensor."""
    b = torch.tensor(beta, dtype=torch.float64, requires_grad=True)
    cox_loss(torch.as_tensor(x) @ b, targets_of(time, event)).backward()
    assert b.grad is not None
    return b.grad.numpy()


def efron_loop(f: np.ndarray, time: np.ndarray, event: np.ndarray) -> float:
    """Textbook Efron: -sum_j [sum_{D_j} f - sum_{l<d_j} log(sum_{R_j} e^f - l/d_j sum_{D_j} e^f)] / #events."""
    total = 0.0
    for t in np.unique(time[event > 0]):
        at_risk = time >= t
        died = (time == t) & (event > 0)
        d = int(died.sum())
        total += f[died].sum()
        for ell in range(d):
            total -= np.log(np.exp(f[at_risk]).sum() - ell / d * np.exp(f[died]).sum())
    return -total / (event > 0).sum()


def breslow_loop(f: np.ndarray, time: np.ndarray, event: np.ndarray) -> float:
    """Textbook Breslow: every tied event sees the full risk set."""
    total = 0.0
    for i in np.flatnonzero(event > 0):
        total += f[i] - np.log(np.exp(f[time >= time[i]]).sum())
    return -total / (event > 0).sum()


# ------------------------------------------------------------------------------------------------------------- Cox


def test_cox_loss_is_sksurv_efron_likelihood_and_stationary_at_its_solution():
    x, time, event = whas500()
    model = CoxPHSurvivalAnalysis(ties="efron").fit(x, Surv.from_arrays(event, time))
    scale = np.linalg.norm(cox_gradient(x, time, event, np.zeros(x.shape[1])))
    assert scale > 0.1  # the covariates carry signal, so beta = 0 is far from the optimum
    assert np.linalg.norm(cox_gradient(x, time, event, model.coef_)) < 1e-4 * scale
    # same value as the (per-sample) negative log partial likelihood sksurv minimises, rescaled to per-event
    reference = CoxPHOptimizer(x, event, time, np.zeros(x.shape[1]), "efron").nlog_likelihood(model.coef_)
    value = float(cox_loss(torch.as_tensor(x @ model.coef_), targets_of(time, event)))
    assert value == pytest.approx(reference * len(time) / event.sum(), rel=1e-10)


def test_cox_loss_follows_efron_not_breslow_when_times_are_heavily_tied():
    x, time, event = whas500()
    quarters = np.ceil(time / 90.0)  # ~27 distinct times for 500 patients: many tied deaths
    y = Surv.from_arrays(event, quarters)
    efron = CoxPHSurvivalAnalysis(ties="efron").fit(x, y).coef_
    breslow = CoxPHSurvivalAnalysis(ties="breslow").fit(x, y).coef_
    scale = np.linalg.norm(cox_gradient(x, quarters, event, np.zeros(x.shape[1])))
    assert np.linalg.norm(cox_gradient(x, quarters, event, efron)) < 1e-4 * scale
    assert np.linalg.norm(cox_gradient(x, quarters, event, breslow)) > 1e-3 * scale


def test_cox_loss_matches_a_hand_written_efron_loop_on_tied_times():
    time = np.array([2.0, 2.0, 2.0, 5.0, 5.0, 1.0, 7.0, 5.0, 3.0, 7.0])
    event = np.array([1, 2, 0, 1, 1, 0, 1, 0, 1, 1])  # code 2 is an event too; censored cases tied with events
    f = np.array([0.3, -1.2, 0.8, 1.5, -0.4, 0.0, 0.9, -0.7, 0.2, 2.1])
    value = float(cox_loss(torch.as_tensor(f)[:, None], targets_of(time, event)))
    assert value == pytest.approx(efron_loop(f, time, event), rel=1e-12)
    assert abs(value - breslow_loop(f, time, event)) > 1e-2  # the ties make Efron and Breslow differ
    distinct = time + np.arange(10) * 1e-3  # without ties the two agree
    assert float(cox_loss(torch.as_tensor(f), targets_of(distinct, event))) == pytest.approx(
        breslow_loop(f, distinct, event), rel=1e-12
    )


def test_cox_loss_passes_gradcheck():
    time = torch.tensor([3.0, 1.0, 3.0, 2.0, 3.0, 4.0], dtype=torch.float64)
    event = torch.tensor([1.0, 1.0, 1.0, 0.0, 0.0, 1.0], dtype=torch.float64)
    targets = torch.stack([time, event], dim=1)
    f = torch.tensor([0.1, -0.5, 0.7, 0.2, -1.0, 0.4], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda v: cox_loss(v, targets), (f,))


def test_cox_loss_is_stable_and_shift_invariant_in_float32():
    time = torch.tensor([1.0, 2.0, 2.0, 3.0, 4.0])
    targets = torch.stack([time, torch.tensor([1.0, 1.0, 1.0, 0.0, 1.0])], dim=1)
    f = torch.tensor([0.5, -0.3, 1.1, 0.0, 0.9])
    big = cox_loss(f + 1000.0, targets)  # exp(1000) overflows float32; the loss must not
    assert torch.isfinite(big)
    assert float(big) == pytest.approx(float(cox_loss(f, targets)), abs=1e-4)


def test_cox_loss_without_events_is_zero_but_keeps_the_graph():
    f = torch.tensor([[0.3], [1.2], [-0.5]], requires_grad=True)
    loss = cox_loss(f, torch.tensor([[1.0, 0.0], [2.0, 0.0], [3.0, 0.0]]))
    assert float(loss.detach()) == 0.0
    loss.backward()
    assert f.grad is not None and torch.equal(f.grad, torch.zeros_like(f))


def test_cox_loss_rejects_bad_shapes():
    targets = torch.tensor([[1.0, 1.0], [2.0, 0.0]])
    with pytest.raises(MedDLError, match="outputs"):
        cox_loss(torch.zeros(2, 3), targets)
    with pytest.raises(MedDLError, match="targets"):
        cox_loss(torch.zeros(2, 1), targets[:, 0])
    with pytest.raises(MedDLError, match="batch size"):
        cox_loss(torch.zeros(3, 1), targets)


def test_breslow_survival_matches_sksurv():
    x, time, event = whas500()
    model = CoxPHSurvivalAnalysis(ties="efron").fit(x, Surv.from_arrays(event, time))
    f = x @ model.coef_
    times, hazard = breslow_baseline(f, time, event)
    np.testing.assert_array_equal(times, np.unique(time[event]))
    np.testing.assert_allclose(hazard, model.cum_baseline_hazard_(times), rtol=1e-10)
    at = np.array([1.0, 1.5, 3.0, 99.5, 500.0, 1000.25, 1999.0, time.max()])  # at and between event times
    expected = np.array([fn(at) for fn in model.predict_survival_function(x[:40])])
    np.testing.assert_allclose(cox_survival(f[:40, None], times, hazard, at), expected, atol=1e-6)


def test_cox_survival_is_a_right_continuous_step_function():
    times, hazard = np.array([2.0, 5.0]), np.array([0.1, 0.4])
    survival = cox_survival(np.array([0.0, np.log(2.0)]), times, hazard, [0.5, 2.0, 4.9, 5.0, 100.0])
    np.testing.assert_allclose(
        survival,
        [np.exp(-np.array([0, 0.1, 0.1, 0.4, 0.4])), np.exp(-2 * np.array([0, 0.1, 0.1, 0.4, 0.4]))],
    )
    with pytest.raises(MedDLError, match="baseline_times"):
        cox_survival([0.0], [5.0, 2.0], [0.1, 0.4], [1.0])


def test_breslow_baseline_by_hand_and_without_events():
    time = np.array([1.0, 2.0, 2.0, 3.0])
    event = np.array([1, 1, 2, 0])
    f = np.log(np.array([1.0, 2.0, 3.0, 4.0]))
    times, hazard = breslow_baseline(f, time, event)
    np.testing.assert_array_equal(times, [1.0, 2.0])
    np.testing.assert_allclose(hazard, [1 / 10, 1 / 10 + 2 / 9])
    with pytest.raises(MedDLError, match="event"):
        breslow_baseline(f, time, np.zeros(4))
    with pytest.raises(MedDLError, match="time"):
        breslow_baseline(f, -time, event)


def test_median_survival():
    times = np.array([1.0, 2.0, 3.0, 4.0])
    curves = np.array([[0.9, 0.6, 0.5, 0.2], [0.95, 0.9, 0.8, 0.7], [0.4, 0.3, 0.2, 0.1]])
    np.testing.assert_array_equal(median_survival(times, curves), [3.0, np.nan, 1.0])
    with pytest.raises(MedDLError, match="survival_curves"):
        median_survival(times, curves[:, :3])


# --------------------------------------------------------------------------------------------------------- DeepHit


def test_time_grid_cuts_at_event_time_quantiles_and_ends_at_the_last_time():
    time = np.append(np.arange(1.0, 101.0), 150.0)
    event = np.append(np.ones(100), 0)
    np.testing.assert_array_equal(time_grid(time, event, n_bins=4), [25.0, 50.0, 75.0, 150.0])
    np.testing.assert_array_equal(time_grid(time, event, n_bins=1), [150.0])


def test_time_grid_gives_fewer_bins_for_tied_times_and_refuses_no_events():
    time = np.array([0.5, 1.0, 1.0, 1.0, 2.0, 2.0, 3.0, 9.0])
    event = np.array([0, 1, 1, 1, 1, 2, 1, 0])
    grid = time_grid(time, event, n_bins=20)
    assert grid[0] > 0 and grid[-1] == 9.0 and np.all(np.diff(grid) > 0)
    np.testing.assert_array_equal(grid, [1.0, 2.0, 3.0, 9.0])
    with pytest.raises(MedDLError, match="event"):
        time_grid(time, np.zeros(8))
    with pytest.raises(MedDLError, match="n_bins"):
        time_grid(time, event, n_bins=0)


def test_bin_index_uses_right_closed_intervals():
    grid = np.array([1.0, 2.0, 5.0])
    np.testing.assert_array_equal(bin_index([0.1, 1.0, 1.01, 2.0, 4.9, 5.0, 50.0], grid), [0, 0, 1, 1, 2, 2, 2])
    with pytest.raises(MedDLError, match="grid"):
        bin_index([1.0], [2.0, 1.0])


def softmax_padded(logits: np.ndarray) -> np.ndarray:
    padded = np.concatenate([logits, np.zeros((len(logits), 1))], axis=1)
    exp = np.exp(padded - padded.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


def test_deephit_curves_form_a_proper_distribution():
    rng = np.random.default_rng(0)
    grid = np.array([1.0, 2.0, 4.0, 8.0])
    logits = rng.normal(size=(5, 2 * 4)) * 2
    at = np.linspace(0.0, 12.0, 97)
    survival, incidence = deephit_curves(logits, grid, at)
    assert survival.shape == (5, 97) and incidence.shape == (5, 2, 97)
    np.testing.assert_allclose(survival + incidence.sum(axis=1), 1.0, atol=1e-12)
    assert np.all(np.diff(survival, axis=1) <= 1e-12) and np.all(np.diff(incidence, axis=2) >= -1e-12)
    np.testing.assert_array_equal(survival[:, at < 1.0], 1.0)
    pmf = softmax_padded(logits)
    np.testing.assert_allclose(pmf.sum(axis=1), 1.0)
    # past the grid only the padded "no event within the grid" mass survives; at a cut, that cut's mass is in
    np.testing.assert_allclose(survival[:, -1], pmf[:, -1])
    s, cif = deephit_curves(logits, grid, [2.0, 3.9])
    np.testing.assert_allclose(cif[:, 1, 0], pmf[:, 4] + pmf[:, 5])
    np.testing.assert_allclose(cif[:, 0, 1], pmf[:, 0] + pmf[:, 1])
    np.testing.assert_allclose(s[:, 0], 1 - pmf[:, [0, 1, 4, 5]].sum(axis=1))
    risk = deephit_risk(logits, grid, 3.9)
    np.testing.assert_allclose(risk, 1 - s[:, 1])
    np.testing.assert_allclose(deephit_risk(logits, grid, 3.9, cause=2), cif[:, 1, 1])
    with pytest.raises(MedDLError, match="cause"):
        deephit_risk(logits, grid, 3.9, cause=3)
    with pytest.raises(MedDLError, match="outputs"):
        deephit_curves(logits[:, :7], grid, at)


def test_deephit_loss_by_hand_on_three_cases():
    grid = np.array([1.0, 2.0, 3.0])
    logits = np.array([[1.0, 0.0, -1.0], [0.5, 0.5, 0.5], [-1.0, 0.0, 2.0]])
    # case 0: censored in interval 0 (t = 0.7); case 1: event in interval 1 (t = 1.5); case 2: event in 2 (t = 3)
    targets = torch.tensor([[0.7, 0.0], [1.5, 1.0], [3.0, 1.0]])
    p = softmax_padded(logits)
    nll = -(np.log(1 - p[0, 0]) + np.log(p[1, 1]) + np.log(p[2, 2])) / 3  # censored: survival past its interval only
    cif = np.cumsum(p[:, :3], axis=1)
    # comparable pairs: (1, 2) [t_1 < t_2, 1 had the event]; the censored case 0 is never the earlier "i"
    rank = np.exp(-(cif[1, 1] - cif[2, 1]) / 0.1)
    outputs = torch.tensor(logits)
    assert float(deephit_loss(1, grid, alpha=1.0)(outputs, targets)) == pytest.approx(nll, rel=1e-6)
    assert float(deephit_loss(1, grid, alpha=0.0)(outputs, targets)) == pytest.approx(rank, rel=1e-6)
    assert float(deephit_loss(1, grid)(outputs, targets)) == pytest.approx(0.2 * nll + 0.8 * rank, rel=1e-6)
    # the censored case's term depends on its logits only through its survival past interval 0
    moved = logits.copy()
    moved[0, 1:] = np.log(np.exp(logits[0, 1:]).sum() / 2)  # same mass beyond interval 0, spread differently
    assert np.exp(moved[0, 1:]).sum() == pytest.approx(np.exp(logits[0, 1:]).sum())
    assert float(deephit_loss(1, grid, alpha=1.0)(torch.tensor(moved), targets)) == pytest.approx(nll, rel=1e-6)


def deephit_reference(logits: np.ndarray, time: np.ndarray, code: np.ndarray, grid: np.ndarray, alpha: float) -> float:
    """Straight loops over cases and pairs of the DeepHit loss (sigma = 0.1)."""
    n, width = logits.shape
    t_bins = len(grid)
    causes = width // t_bins
    p = softmax_padded(logits)
    pmf = p[:, :-1].reshape(n, causes, t_bins)
    cif = np.cumsum(pmf, axis=2)
    bins = [min(int(np.searchsorted(grid, t)), t_bins - 1) for t in time]
    nll = 0.0
    for i in range(n):
        if code[i] > 0:
            nll -= np.log(pmf[i, int(code[i]) - 1, bins[i]])
        else:
            nll -= np.log(1 - cif[i, :, bins[i]].sum())
    terms = []
    for i in range(n):
        for j in range(n):
            if code[i] > 0 and time[i] < time[j]:
                k, b = int(code[i]) - 1, bins[i]
                terms.append(np.exp(-(cif[i, k, b] - cif[j, k, b]) / 0.1))
    rank = float(np.mean(terms)) if terms else 0.0
    return alpha * nll / n + (1 - alpha) * rank


@pytest.mark.parametrize("causes", [1, 2])
def test_deephit_loss_matches_a_loop_reference(causes: int):
    rng = np.random.default_rng(causes)
    grid = np.array([1.0, 2.5, 4.0, 6.0])
    time = np.array([0.5, 1.0, 2.5, 2.5, 3.0, 4.0, 7.0, 1.0, 5.5, 2.0])
    code = rng.integers(0, causes + 1, size=10).astype(float)
    logits = rng.normal(size=(10, causes * 4))
    loss = deephit_loss(causes, grid, alpha=0.3)(torch.tensor(logits), torch.tensor(np.column_stack([time, code])))
    assert float(loss) == pytest.approx(deephit_reference(logits, time, code, grid, 0.3), rel=1e-9)


def exponential_data(n: int, seed: int) -> tuple[torch.Tensor, np.ndarray, np.ndarray, np.ndarray]:
    """Exponential event times with log-hazard x0 - 0.8 x1, about 25 % uniformly censored."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    log_hazard = x[:, 0] - 0.8 * x[:, 1]
    event_time = rng.exponential(1.0 / np.exp(log_hazard))
    censor_time = rng.uniform(0.0, 4.0, size=n)
    time = np.minimum(event_time, censor_time)
    return torch.as_tensor(x, dtype=torch.float32), time, (event_time <= censor_time).astype(float), log_hazard


def train_linear(x: torch.Tensor, targets: torch.Tensor, width: int, loss_fn, steps: int = 200) -> tuple:
    torch.manual_seed(0)
    model = torch.nn.Linear(x.shape[1], width)
    optimiser = torch.optim.Adam(model.parameters(), lr=0.05)
    losses = []
    for _ in range(steps):
        optimiser.zero_grad()
        loss = loss_fn(model(x), targets)
        loss.backward()
        optimiser.step()
        losses.append(float(loss.detach()))
    with torch.no_grad():
        return model(x).numpy(), losses


def test_deephit_learns_the_hazard_order_of_exponential_data():
    x, time, event, log_hazard = exponential_data(300, seed=1)
    grid = time_grid(time, event, n_bins=10)
    targets = torch.as_tensor(np.column_stack([time, event]), dtype=torch.float32)
    outputs, losses = train_linear(x, targets, survival_output_size("discrete", 1, len(grid)), deephit_loss(1, grid))
    assert np.mean(losses[-10:]) < 0.8 * np.mean(losses[:10])
    risk = deephit_risk(outputs, grid, horizon=float(np.median(time)))
    tau = kendalltau(risk, log_hazard).statistic
    assert (1 + tau) / 2 > 0.7  # fraction of pairs ordered as the true hazards (ties aside)


def test_deephit_competing_risks_rank_by_the_cause_that_depends_on_x():
    rng = np.random.default_rng(2)
    n = 300
    x = rng.normal(size=(n, 2))
    t1 = rng.exponential(1.0 / np.exp(1.2 * x[:, 0]))  # cause 1: hazard grows with x0
    t2 = rng.exponential(1.0 / 0.5, size=n)  # cause 2: constant hazard
    censor = rng.uniform(0.0, 4.0, size=n)
    time = np.minimum.reduce([t1, t2, censor])
    code = np.select([time == t1, time == t2], [1.0, 2.0], 0.0)
    grid = time_grid(time, code, n_bins=10)
    targets = torch.as_tensor(np.column_stack([time, code]), dtype=torch.float32)
    outputs, losses = train_linear(
        torch.as_tensor(x, dtype=torch.float32), targets, 2 * len(grid), deephit_loss(2, grid)
    )
    assert np.isfinite(losses).all() and losses[-1] < losses[0]
    survival, incidence = deephit_curves(outputs, grid, [float(np.median(time))])
    np.testing.assert_allclose(survival[:, 0] + incidence[:, :, 0].sum(axis=1), 1.0, atol=1e-9)
    assert spearmanr(incidence[:, 0, 0], x[:, 0]).statistic > 0.5
    assert spearmanr(incidence[:, 0, 0], x[:, 0]).statistic > abs(spearmanr(incidence[:, 1, 0], x[:, 1]).statistic)


def test_deephit_loss_rejects_bad_arguments():
    grid = np.array([1.0, 2.0])
    loss = deephit_loss(2, grid)
    targets = torch.tensor([[1.0, 1.0], [2.0, 0.0]])
    with pytest.raises(MedDLError, match="outputs"):
        loss(torch.zeros(2, 3), targets)
    with pytest.raises(MedDLError, match="event codes"):
        loss(torch.zeros(2, 4), torch.tensor([[1.0, 3.0], [2.0, 0.0]]))
    with pytest.raises(MedDLError, match="alpha"):
        deephit_loss(1, grid, alpha=1.5)
    with pytest.raises(MedDLError, match="sigma"):
        deephit_loss(1, grid, sigma=0.0)
    with pytest.raises(MedDLError, match="n_causes"):
        deephit_loss(0, grid)


def test_survival_output_size():
    assert survival_output_size("cox", 1, 20) == 1
    assert survival_output_size("discrete", 3, 12) == 36
    with pytest.raises(MedDLError, match="deephit"):
        survival_output_size("cox", 2, 20)
    with pytest.raises(MedDLError, match="head"):
        survival_output_size("weibull", 1, 20)
    with pytest.raises(MedDLError, match="n_bins"):
        survival_output_size("discrete", 1, 0)
