"""Survival baselines on the real GBSG2 data: Cox (with its ridge fallback) and a random survival forest."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sksurv.column import encode_categorical
from sksurv.datasets import load_gbsg2
from sksurv.ensemble import RandomSurvivalForest
from sksurv.linear_model import CoxPHSurvivalAnalysis
from sksurv.metrics import concordance_index_censored

from meddl.errors import MedDLError
from meddl.evaluate import survival_baselines
from meddl.evaluate.survival import harrell_c, survival_metrics
from meddl.evaluate.survival_baselines import (
    COX_ALPHAS,
    SURVIVAL_BASELINES,
    fit_survival_baseline,
    predict_survival_baseline,
)

HORIZONS = np.array([365.0, 1095.0, 1826.0])


@pytest.fixture(scope="module")
def gbsg2() -> dict[str, np.ndarray]:
    """GBSG2 with one-hot categoricals, split 70/30 at random (seed 0)."""
    X, y = load_gbsg2()
    features = encode_categorical(X).to_numpy(dtype=float)
    order = np.random.default_rng(0).permutation(len(y))
    train, test = order[: int(0.7 * len(y))], order[int(0.7 * len(y)) :]
    return {
        "X_train": features[train],
        "t_train": y["time"][train],
        "e_train": y["cens"][train].astype(int),
        "X_test": features[test],
        "t_test": y["time"][test],
        "e_test": y["cens"][test].astype(int),
    }


@pytest.fixture(scope="module")
def cox(gbsg2: dict[str, np.ndarray]) -> Pipeline:
    return fit_survival_baseline("cox", gbsg2["X_train"], gbsg2["t_train"], gbsg2["e_train"])


@pytest.fixture(scope="module")
def forest(gbsg2: dict[str, np.ndarray]) -> RandomSurvivalForest:
    return fit_survival_baseline("random_survival_forest", gbsg2["X_train"], gbsg2["t_train"], gbsg2["e_train"])


def test_names() -> None:
    assert SURVIVAL_BASELINES == ("cox", "random_survival_forest")
    assert COX_ALPHAS[0] == 0.0 and list(COX_ALPHAS) == sorted(COX_ALPHAS)


def test_cox_on_gbsg2(gbsg2: dict[str, np.ndarray], cox: Pipeline) -> None:
    assert isinstance(cox, Pipeline) and isinstance(cox[0], StandardScaler)
    model = cox[-1]
    assert isinstance(model, CoxPHSurvivalAnalysis) and model.ties == "efron" and model.alpha == 0.0
    assert cox.meddl_alpha_ == 0.0 and cox.meddl_fit_failures_ == []
    risk, survival = predict_survival_baseline(cox, gbsg2["X_test"], HORIZONS)
    assert risk.shape == (len(gbsg2["t_test"]),) and survival.shape == (len(gbsg2["t_test"]), 3)
    c = harrell_c(gbsg2["t_test"], gbsg2["e_test"], risk)
    assert 0.6 < c < 0.75
    assert c == pytest.approx(concordance_index_censored(gbsg2["e_test"] > 0, gbsg2["t_test"], risk)[0], abs=1e-12)
    # survival is sksurv's step function at each horizon, decreasing in time and in risk
    expected = np.array([f(HORIZONS) for f in cox.predict_survival_function(gbsg2["X_test"])])
    np.testing.assert_allclose(survival, expected, atol=1e-12)
    assert np.all(np.diff(survival, axis=1) <= 0) and np.all((survival >= 0) & (survival <= 1))
    assert np.corrcoef(risk, survival[:, 1])[0, 1] < -0.9
    # the same predictions feed the survival metrics
    result = survival_metrics(
        gbsg2["t_train"], gbsg2["e_train"], gbsg2["t_test"], gbsg2["e_test"], risk, survival, HORIZONS, n_bootstrap=0
    )
    assert result["metrics"]["c_index"]["value"] == pytest.approx(c)
    assert result["metrics"]["auc@1095"]["value"] > 0.6


@pytest.mark.parametrize("name", ["cox", "forest"])
def test_step_functions_at_and_outside_the_model_support(
    name: str, gbsg2: dict[str, np.ndarray], request: pytest.FixtureRequest
) -> None:
    model = request.getfixturevalue(name)
    final = model[-1] if isinstance(model, Pipeline) else model
    knots = final.unique_times_
    X = gbsg2["X_test"][:5]
    curves = model.predict_survival_function(X, return_array=True)
    drop = int(np.flatnonzero(np.any(np.diff(curves, axis=1) < 0, axis=0))[0]) + 1  # first knot where S falls
    horizons = np.array([knots[0] / 2, knots[drop] - 1e-6, knots[drop], knots[-1], knots[-1] * 3])
    _, survival = predict_survival_baseline(model, X, horizons)
    np.testing.assert_array_equal(survival[:, 0], 1.0)  # before the first time nobody has died
    np.testing.assert_allclose(survival[:, 1], curves[:, drop - 1])  # just before the drop
    np.testing.assert_allclose(survival[:, 2], curves[:, drop])  # right-continuous: the drop counts at its time
    assert np.any(survival[:, 2] < survival[:, 1])
    np.testing.assert_allclose(survival[:, 3], curves[:, -1])
    np.testing.assert_allclose(survival[:, 4], curves[:, -1])  # past the support: the last value


def test_random_survival_forest_on_gbsg2(gbsg2: dict[str, np.ndarray], forest: RandomSurvivalForest) -> None:
    assert isinstance(forest, RandomSurvivalForest)
    params = forest.get_params()
    assert (params["n_estimators"], params["min_samples_leaf"], params["max_features"], params["n_jobs"]) == (
        200,
        15,
        "sqrt",
        1,
    )
    risk, survival = predict_survival_baseline(forest, gbsg2["X_test"], HORIZONS)
    assert harrell_c(gbsg2["t_test"], gbsg2["e_test"], risk) > 0.6
    expected = np.array([f(HORIZONS) for f in forest.predict_survival_function(gbsg2["X_test"])])
    np.testing.assert_allclose(survival, expected, atol=1e-12)
    assert np.all(np.diff(survival, axis=1) <= 1e-12)


def test_forest_seed_is_used(gbsg2: dict[str, np.ndarray], forest: RandomSurvivalForest) -> None:
    rows = slice(0, 250)
    again = fit_survival_baseline(
        "random_survival_forest", gbsg2["X_train"][rows], gbsg2["t_train"][rows], gbsg2["e_train"][rows], seed=0
    )
    other = fit_survival_baseline(
        "random_survival_forest", gbsg2["X_train"][rows], gbsg2["t_train"][rows], gbsg2["e_train"][rows], seed=1
    )
    assert again.random_state == 0 and other.random_state == 1
    same = fit_survival_baseline(
        "random_survival_forest", gbsg2["X_train"][rows], gbsg2["t_train"][rows], gbsg2["e_train"][rows], seed=0
    )
    X = gbsg2["X_test"]
    np.testing.assert_array_equal(again.predict(X), same.predict(X))
    assert not np.array_equal(again.predict(X), other.predict(X))


@pytest.mark.filterwarnings("ignore::scipy.linalg.LinAlgWarning")  # the plain sksurv fit below, not ours
def test_cox_penalty_fallback_on_collinear_columns(gbsg2: dict[str, np.ndarray]) -> None:
    X = np.column_stack([gbsg2["X_train"], gbsg2["X_train"][:, 0]])  # a duplicated column: singular Hessian
    # plain Cox fails on it: an error, or (scikit-survival >= 0.28) an ill-conditioned-matrix warning
    with warnings.catch_warnings(), pytest.raises((np.linalg.LinAlgError, Warning)):
        warnings.simplefilter("error")
        pipeline = Pipeline([("scale", StandardScaler()), ("cox", CoxPHSurvivalAnalysis(ties="efron"))])
        pipeline.fit(X, np.array(list(zip(gbsg2["e_train"] > 0, gbsg2["t_train"], strict=True)), dtype="?,f8"))
    model = fit_survival_baseline("cox", X, gbsg2["t_train"], gbsg2["e_train"])
    assert model.meddl_alpha_ > 0 and model[-1].alpha == model.meddl_alpha_
    assert model.meddl_alpha_ in COX_ALPHAS
    assert model.meddl_fit_failures_ and model.meddl_fit_failures_[0].startswith("alpha=0:")
    coef = model[-1].coef_
    assert np.all(np.isfinite(coef)) and coef[0] == pytest.approx(coef[-1], rel=1e-6)  # the twins share the effect
    risk, _ = predict_survival_baseline(model, np.column_stack([gbsg2["X_test"], gbsg2["X_test"][:, 0]]), HORIZONS)
    assert harrell_c(gbsg2["t_test"], gbsg2["e_test"], risk) > 0.6


def test_cox_penalty_fallback_on_separated_data() -> None:
    # the feature orders the event times perfectly: the unpenalised coefficient runs off to infinity
    x = np.linspace(0.0, 1.0, 40)
    time = 10.0 - 9.0 * x
    event = np.ones(40, dtype=int)
    model = fit_survival_baseline("cox", x[:, None], time, event)
    assert model.meddl_alpha_ > 0
    assert model.meddl_fit_failures_[0].startswith("alpha=0:")
    assert np.isfinite(model[-1].coef_).all() and model[-1].coef_[0] > 0
    risk, survival = predict_survival_baseline(model, x[:, None], [2.0, 5.0])
    assert harrell_c(time, event, risk) == 1.0
    assert np.all(np.isfinite(survival))


def test_cox_penalty_fallback_on_warnings_and_quasi_separation() -> None:
    rng = np.random.default_rng(0)
    n = 100
    x = rng.normal(size=n)
    time = rng.exponential(np.exp(-x))
    # a near-duplicate column: the plain fit "converges" with an ill-conditioned Hessian and coefficients of +-450
    near_twin = np.column_stack([x, x + 1e-12 * rng.normal(size=n)])
    model = fit_survival_baseline("cox", near_twin, time, np.ones(n, dtype=int))
    assert model.meddl_alpha_ > 0 and "ill-conditioned" in model.meddl_fit_failures_[0]
    assert np.abs(model[-1].coef_).max() < 8
    # quasi-separation: every row of group 1 has an event before any row of group 0, which is all censored; the
    # plain fit stops on its loss tolerance at a log hazard ratio of ~11 per SD instead of diverging further
    group = (rng.random(n) < 0.5).astype(float)
    time = np.where(group == 1, rng.uniform(1, 5, n), rng.uniform(6, 10, n))
    model = fit_survival_baseline("cox", np.column_stack([group, rng.normal(size=n)]), time, group.astype(int))
    assert model.meddl_alpha_ > 0 and "diverging coefficients" in model.meddl_fit_failures_[0]
    assert 0 < model[-1].coef_[0] <= 8


def test_cox_convergence_warning_triggers_the_penalty(monkeypatch: pytest.MonkeyPatch) -> None:
    class Unconverged(Pipeline):
        def fit(self, X: object, y: object = None, **params: object) -> Unconverged:
            super().fit(X, y, **params)
            if self[-1].alpha == 0:  # what sksurv says after n_iter Newton steps, even with modest coefficients
                warnings.warn("Optimization did not converge", ConvergenceWarning, stacklevel=2)
            return self

    def build(alpha: float) -> Pipeline:
        return Unconverged([("scale", StandardScaler()), ("cox", CoxPHSurvivalAnalysis(alpha=alpha, ties="efron"))])

    monkeypatch.setattr(survival_baselines, "_cox", build)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(80, 2))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing escapes the fit
        model = fit_survival_baseline("cox", x, rng.exponential(np.exp(-x[:, 0])), np.ones(80, dtype=int))
    assert model.meddl_alpha_ == COX_ALPHAS[1]
    assert model.meddl_fit_failures_ == ["alpha=0: Optimization did not converge"]


def test_cox_refused_when_every_penalty_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    class Broken(Pipeline):
        def fit(self, X: object, y: object = None, **params: object) -> Broken:
            raise np.linalg.LinAlgError("singular")

    monkeypatch.setattr(survival_baselines, "_cox", lambda alpha: Broken([("scale", StandardScaler())]))
    with pytest.raises(MedDLError, match=r"could not be fitted with any ridge penalty.*alpha=10: singular"):
        fit_survival_baseline("cox", np.eye(4), [1.0, 2.0, 3.0, 4.0], [1, 0, 1, 1])


@pytest.mark.parametrize("name", SURVIVAL_BASELINES)
def test_survival_is_one_before_the_first_event_time(name: str) -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 2))
    time = np.arange(1.0, 61.0)
    event = np.ones(60, dtype=int)  # the earliest time is an event: the curves drop at the first knot
    model = fit_survival_baseline(name, X, time, event)
    curves = model.predict_survival_function(X[:4], return_array=True)
    assert np.all(curves[:, 0] < 1.0)
    _, survival = predict_survival_baseline(model, X[:4], [0.5, 1.0])
    np.testing.assert_array_equal(survival[:, 0], 1.0)
    np.testing.assert_allclose(survival[:, 1], curves[:, 0])


def test_bad_input_is_refused(gbsg2: dict[str, np.ndarray], cox: Pipeline) -> None:
    X = gbsg2["X_train"].copy()
    X[7, 3] = np.nan
    with pytest.raises(MedDLError, match=r"X_train has 1 missing \(NaN\) values, the first at row 7, column 3; impute"):
        fit_survival_baseline("cox", X, gbsg2["t_train"], gbsg2["e_train"])
    with pytest.raises(MedDLError, match="impute first"):
        fit_survival_baseline("random_survival_forest", X, gbsg2["t_train"], gbsg2["e_train"])
    X_test = gbsg2["X_test"].copy()
    X_test[0, 0] = np.nan
    with pytest.raises(MedDLError, match="X has 1 missing"):
        predict_survival_baseline(cox, X_test, HORIZONS)
    with pytest.raises(MedDLError, match="unknown survival baseline 'deepsurv'"):
        fit_survival_baseline("deepsurv", gbsg2["X_train"], gbsg2["t_train"], gbsg2["e_train"])
    with pytest.raises(MedDLError, match="time_train has 479 rows but X_train has 480"):
        fit_survival_baseline("cox", gbsg2["X_train"], gbsg2["t_train"][:-1], gbsg2["e_train"][:-1])
    with pytest.raises(MedDLError, match="too few events: 0 events in the training split"):
        fit_survival_baseline("cox", gbsg2["X_train"], gbsg2["t_train"], np.zeros_like(gbsg2["e_train"]))
    with pytest.raises(MedDLError, match="horizons must be strictly increasing"):
        predict_survival_baseline(cox, gbsg2["X_test"], [1095.0, 365.0])
