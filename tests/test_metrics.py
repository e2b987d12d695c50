"""Scorers of skvae.metrics: sign conventions, pipelines, grid search."""

import numpy as np
import pytest
from sklearn.exceptions import DataConversionWarning
from sklearn.metrics import silhouette_score
from sklearn.model_selection import GridSearchCV, PredefinedSplit
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler

from skvae import DisentangledVAE
from skvae.metrics import (
    elbo_scorer,
    latent_estimator,
    make_elbo_scorer,
    make_silhouette_scorer,
    reconstruction_scorer,
    silhouette_scorer,
)

SCORERS = {
    "accuracy": "accuracy",
    "reconstruction": reconstruction_scorer,
    "silhouette": silhouette_scorer,
    "elbo": elbo_scorer,
}


def _small(**params):
    defaults = dict(hidden_dims=(32,), max_epochs=3, batch_size=64, warmup_steps=0, random_state=0)
    defaults.update(params)
    return DisentangledVAE(**defaults)


@pytest.fixture(scope="module")
def digits(digits_all):
    """The first 600 of the shared digits (tests/conftest.py), read-only."""
    X, y = digits_all
    return X[:600], y[:600]


@pytest.fixture(scope="module")
def fitted(digits):
    X, y = digits
    return _small().fit(X, y)


def test_scorers_are_finite_and_greater_is_better(digits, fitted):
    X, y = digits
    rec = reconstruction_scorer(fitted, X, y)
    sil = silhouette_scorer(fitted, X, y)
    elbo = elbo_scorer(fitted, X, y)
    assert np.isfinite([rec, sil, elbo]).all()
    assert rec < 0  # minus an error
    assert -1 <= sil <= 1
    assert elbo < 0  # minus a loss that is positive for BCE
    # reconstruction_scorer is minus the mean squared error.
    X_rec = fitted.inverse_transform(fitted.transform(X))
    assert rec == pytest.approx(-np.mean((X_rec - X) ** 2))


def test_more_training_scores_better(digits, fitted):
    X, y = digits
    longer = _small(max_epochs=15).fit(X, y)
    assert reconstruction_scorer(longer, X, y) > reconstruction_scorer(fitted, X, y)
    assert elbo_scorer(longer, X, y) > elbo_scorer(fitted, X, y)


def test_elbo_is_reproducible_with_sampling(digits, fitted):
    X, y = digits
    scorer = make_elbo_scorer(n_samples=3, random_state=1)
    assert scorer(fitted, X, y) == scorer(fitted, X, y)
    # Without labels the unit prior at the origin is used; still finite.
    assert np.isfinite(elbo_scorer(fitted, X, None))


def test_silhouette_needs_labels_and_can_subsample(digits, fitted):
    X, y = digits
    with pytest.raises(ValueError, match="labels"):
        silhouette_scorer(fitted, X, None)
    Z = fitted.transform(X.astype(np.float64))
    full = silhouette_scorer(fitted, X, y)
    # float32 latents against float64 ones: equal to float32's precision
    # (absolute too: this barely trained model scores near 0).
    assert full == pytest.approx(silhouette_score(Z, y), rel=1e-6, abs=1e-7)
    # sample_size scores the subset silhouette_score draws with the same seed:
    # another score than the full one, the same on every call.
    sub = make_silhouette_scorer(sample_size=200, random_state=3)(fitted, X, y)
    assert sub == pytest.approx(silhouette_score(Z, y, sample_size=200, random_state=3), rel=1e-6, abs=1e-7)
    assert sub != pytest.approx(full, rel=1e-3)
    assert make_silhouette_scorer(sample_size=200, random_state=3)(fitted, X, y) == sub
    other_seed = make_silhouette_scorer(sample_size=200, random_state=4)(fitted, X, y)
    assert other_seed == pytest.approx(silhouette_score(Z, y, sample_size=200, random_state=4), rel=1e-6, abs=1e-7)
    assert other_seed != pytest.approx(sub, rel=1e-3)
    # A sample_size of at least n_samples scores every sample.
    assert make_silhouette_scorer(sample_size=len(X))(fitted, X, y) == pytest.approx(full, rel=1e-6, abs=1e-7)


def test_scorers_transform_through_a_pipeline(digits):
    X, y = digits
    X_scaled = X * 16.0  # the pipeline's scaler maps back to [0, 1]
    pipe = make_pipeline(MinMaxScaler(), _small(reconstruction="bce")).fit(X_scaled, y)
    vae, Xt = latent_estimator(pipe, X_scaled)
    assert vae is pipe[-1]
    assert Xt.min() >= 0 and Xt.max() <= 1
    for scorer in (reconstruction_scorer, silhouette_scorer, elbo_scorer):
        assert scorer(pipe, X_scaled, y) == pytest.approx(scorer(vae, Xt, y))


def test_latent_estimator_rejects_other_estimators(digits):
    from sklearn.decomposition import PCA

    X, y = digits
    with pytest.raises(TypeError, match="DisentangledVAE"):
        reconstruction_scorer(PCA(2).fit(X), X, y)


def test_grid_search_with_pipeline_refits_on_named_scorer(digits):
    X, y = digits
    split = PredefinedSplit(np.where(np.arange(len(X)) < 450, -1, 0))
    pipe = make_pipeline(MinMaxScaler(), _small())
    grid = {"disentangledvae__reconstruction": ["mse", "bce"]}
    search = GridSearchCV(pipe, grid, scoring=SCORERS, refit="reconstruction", cv=split)
    search.fit(X, y)
    for name in SCORERS:
        scores = search.cv_results_[f"mean_test_{name}"]
        assert np.isfinite(scores).all(), name
    best = int(np.argmax(search.cv_results_["mean_test_reconstruction"]))
    assert search.best_index_ == best
    assert search.best_params_ == search.cv_results_["params"][best]
    assert search.score(X, y) == pytest.approx(reconstruction_scorer(search.best_estimator_, X, y))


# ----------------------------------------------------------------- bad input


def test_elbo_validates_labels_like_an_estimator(digits, fitted):
    X, y = digits
    reference = elbo_scorer(fitted, X, y)
    with pytest.warns(DataConversionWarning, match="column-vector y"):
        assert elbo_scorer(fitted, X, y.reshape(-1, 1)) == pytest.approx(reference)
    with pytest.raises(ValueError, match=r"Unknown class label 99 in y"):
        elbo_scorer(fitted, X, np.where(np.arange(len(y)) == 3, 99, y))
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        elbo_scorer(fitted, X, y[:-1])


def test_elbo_runs_through_the_fixed_inference_blocks(digits, fitted):
    X, y = digits
    # A row's term does not depend on the rows scored with it.
    per_row = np.array([elbo_scorer(fitted, X[i : i + 1], y[i : i + 1]) for i in range(20)])
    assert elbo_scorer(fitted, X[:20], y[:20]) == pytest.approx(per_row.mean(), rel=1e-6)


@pytest.mark.parametrize(
    "params, match",
    [
        ({"n_samples": -1}, "n_samples == -1, must be >= 0"),
        ({"n_samples": 1.5}, "n_samples must be an instance of int"),
        ({"random_state": None}, "random_state must be an instance of int"),
    ],
)
def test_make_elbo_scorer_checks_its_parameters(params, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make_elbo_scorer(**params)


@pytest.mark.parametrize("scorer", [reconstruction_scorer, silhouette_scorer, elbo_scorer])
def test_scorers_refuse_bad_X_clearly(digits, fitted, scorer):
    X, y = digits
    with pytest.raises(ValueError, match="X has 10 features, but DisentangledVAE is expecting 64"):
        scorer(fitted, X[:, :10], y)
    with pytest.raises(ValueError, match="0 sample"):
        scorer(fitted, X[:0], y[:0])
    X_nan = X.copy()
    X_nan[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        scorer(fitted, X_nan, y)
    X_huge = X.astype(np.float64)
    X_huge[0, 0] = 1e39
    with pytest.raises(ValueError, match="beyond float32's range"):
        scorer(fitted, X_huge, y)


def test_silhouette_needs_matching_labels(digits, fitted):
    X, y = digits
    with pytest.raises(ValueError, match="needs class labels y"):
        silhouette_scorer(fitted, X, None)
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        silhouette_scorer(fitted, X, y[:-1])
    with pytest.raises(ValueError, match="sample_size == 1, must be >= 2"):
        make_silhouette_scorer(sample_size=1)
