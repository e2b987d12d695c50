"""score_samples (the importance-weighted log-likelihood), score without labels, transform(return_std=True)."""

import copy

import numpy as np
import pytest
import torch
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer
from torch import nn

from tiny import tiny_vae

# Latent grid of the numerical integration: wide enough for every prior
# component and posterior, and finer than the posteriors' standard
# deviations (0.1-0.8 here); halving the step changes the integrals by < 1e-5.
GRID_LIMIT, GRID_STEP = 10.0, 0.04


def exact_log_likelihood(vae, X):
    """``log p(x)`` by integrating ``p(x | z) p(z)`` over a 2-D latent grid, in numpy.

    Written from the model's definition (Bernoulli or N(mean, I/2) pixels,
    N(0, I) or the equal mixture of N(class_prior_means_[k], I)), not with
    skvae's own functions.
    """
    axis = np.arange(-GRID_LIMIT, GRID_LIMIT + GRID_STEP / 2, GRID_STEP)
    grid = np.stack(np.meshgrid(axis, axis, indexing="ij"), axis=-1).reshape(-1, 2)
    decoder = copy.deepcopy(vae.net_.module_.decoder).double()
    with torch.no_grad():
        output = decoder(torch.from_numpy(grid)).numpy()
    X = np.asarray(X, dtype=np.float64)
    if vae.reconstruction_ == "bce":
        log_likelihood = X @ output.T - np.logaddexp(0, output).sum(axis=1)
    else:
        squared = (X**2).sum(1)[:, None] - 2 * X @ output.T + (output**2).sum(1)[None, :]
        log_likelihood = -squared - X.shape[1] / 2 * np.log(np.pi)
    centers = np.zeros((1, 2)) if vae.class_prior_means_ is None else vae.class_prior_means_
    squared_to_centers = ((grid[:, None, :] - centers[None]) ** 2).sum(axis=2)
    log_prior = np.logaddexp.reduce(-0.5 * squared_to_centers, axis=1) - np.log(len(centers)) - np.log(2 * np.pi)
    return np.logaddexp.reduce(log_likelihood + log_prior, axis=1) + 2 * np.log(GRID_STEP)


class WidenedProposal(nn.Module):
    """The fitted module with the encoder's standard deviations multiplied by ``factor``."""

    def __init__(self, module, factor):
        super().__init__()
        self.module, self.decoder, self.log_factor = module, module.decoder, 2 * float(np.log(factor))

    def encode(self, X):
        mu, logvar = self.module.encode(X)
        return mu, logvar + self.log_factor


@pytest.fixture(scope="module", params=["bce, class mixture", "mse, N(0, I)"])
def model_2d(request, digits):
    X, y = digits
    three = y < 3  # three classes: three prior centres inside the grid
    params = dict(class_spacing=4.0) if request.param.startswith("bce") else dict(class_spacing=None, reconstruction="mse")
    vae = tiny_vae(n_components=2, max_epochs=10, **params).fit(X[three], y[three])
    rows = X[three][:30]
    return vae, rows, exact_log_likelihood(vae, rows)


def test_model_fixture_has_the_prior_it_names(model_2d):
    vae, _, _ = model_2d
    assert (vae.class_prior_means_ is None) == (vae.reconstruction_ == "mse")


def test_importance_weights_integrate_to_the_numerical_integral(model_2d):
    # The encoder's Gaussians are narrower than the true posteriors (as in
    # most VAEs), which makes the importance weights heavy-tailed; three
    # times wider, they cover the posteriors and the estimate converges.
    # Measured with 2,000 draws: mean error -0.0001 (bce) / -0.0074 (mse)
    # nats, row errors within [-0.11, 0.15]; with the encoder's own widths,
    # -0.30 / -0.33, and -3.6 for the worst row. A wrong constant (log pi
    # of the Gaussian pixels: 36 nats here; log 3 of the mixture: 1.1) or a
    # wrong proposal density fails this.
    vae, rows, exact = model_2d
    n_draws = 2000
    noise = torch.from_numpy(np.random.default_rng(0).standard_normal((len(rows), n_draws, 2)))
    with torch.no_grad():
        estimate = vae.net_.criterion_.per_row_log_likelihood(
            WidenedProposal(vae.net_.module_, 3.0), torch.from_numpy(rows), [noise[:, :500], noise[:, 500:]]
        )
    error = estimate.numpy() - exact
    assert estimate.dtype == torch.float64
    assert abs(error.mean()) < 0.03, error
    assert np.abs(error).max() < 0.3, error


def test_score_samples_is_a_bound_that_rises_toward_the_integral(model_2d):
    # IWAE: in expectation below log p(x), rising with n_samples. Measured on
    # these models (bce / mse), mean error -3.29 / -2.31 nats with 1 sample,
    # -1.24 / -0.76 with 10, -0.52 / -0.43 with 100, -0.40 / -0.41 with
    # 1,000, -0.32 / -0.39 with 5,000.
    vae, rows, exact = model_2d
    means = [vae.score_samples(rows, n_samples=k).mean() for k in (1, 10, 100, 1000)]
    assert np.all(np.diff(means) > 0), means
    assert exact.mean() - 0.6 < means[-1] < exact.mean(), (means, exact.mean())


def test_score_samples_depends_on_the_row_and_seed_only(tiny_fitted, digits):
    X = digits[0][:40]
    scores = tiny_fitted.score_samples(X, n_samples=20)
    assert scores.dtype == np.float64 and scores.shape == (40,)
    np.testing.assert_array_equal(tiny_fitted.score_samples(X, n_samples=20), scores)  # deterministic by default
    np.testing.assert_array_equal(tiny_fitted.score_samples(X[::-1][:25], n_samples=20), scores[::-1][:25])
    np.testing.assert_array_equal(tiny_fitted.score_samples(X.astype(np.float64), n_samples=20), scores)
    assert scores[0] == tiny_fitted.score_samples(X[:1], n_samples=20)[0]
    other_seed = tiny_fitted.score_samples(X, n_samples=20, random_state=1)
    assert np.all(other_seed != scores) and np.abs(other_seed - scores).mean() < 2.0
    # Equal rows draw the same codes; different rows independent ones.
    np.testing.assert_array_equal(tiny_fitted.score_samples(X[[3, 3]], n_samples=20), scores[[3, 3]])
    with pytest.raises(ValueError, match="n_samples == 0, must be >= 1"):
        tiny_fitted.score_samples(X, n_samples=0)


def test_score_samples_through_a_pipeline_and_as_outlier_score(digits):
    X, y = digits
    pipe = make_pipeline(FunctionTransformer(), tiny_vae(max_epochs=10)).fit(X)
    noise = np.random.default_rng(0).uniform(size=(20, X.shape[1]))
    scores = pipe.score_samples(np.vstack([X[:20], noise]))
    assert scores[:20].min() > scores[20:].max()  # digits are far likelier than uniform noise


def test_score_without_labels_is_the_mean_log_likelihood(digits, tiny_fitted):
    X, y = digits
    plain = tiny_vae().fit(X)
    scores = plain.score_samples(X[:30])
    assert plain.score(X[:30]) == pytest.approx(scores.mean())
    assert plain.score(X[:30], y[:30]) == pytest.approx(scores.mean())  # y is ignored, as by GaussianMixture
    weights = np.arange(30.0)
    assert plain.score(X[:30], sample_weight=weights) == pytest.approx(np.average(scores, weights=weights))
    with pytest.raises(ValueError, match="Negative values"):
        plain.score(X[:30], sample_weight=-weights)
    # With labels, score stays the head's accuracy, and needs y.
    assert tiny_fitted.score(X, y) == pytest.approx(np.mean(tiny_fitted.predict(X) == y))
    with pytest.raises(ValueError, match=r"fitted with labels, so score .* needs y; .* score_samples\(X\)\.mean\(\)"):
        tiny_fitted.score(X)


def test_transform_returns_the_standard_deviations_on_request(tiny_fitted, digits):
    X = digits[0][:7]
    Z, Z_std = tiny_fitted.transform(X, return_std=True)
    np.testing.assert_array_equal(Z, tiny_fitted.transform(X))
    with torch.no_grad():
        _, logvar = tiny_fitted.net_.module_.encode(torch.as_tensor(X))
    np.testing.assert_allclose(Z_std, np.exp(0.5 * logvar.numpy()), rtol=1e-6)
    assert Z_std.shape == Z.shape and Z_std.dtype == Z.dtype == X.dtype and (Z_std > 0).all()
    Z64, Z64_std = tiny_fitted.transform(X.astype(np.float64), return_std=True)
    assert Z64_std.dtype == np.float64
    np.testing.assert_array_equal(Z64_std, Z_std)


def test_return_std_with_set_output_and_in_pipelines(tiny_fitted, digits):
    pd = pytest.importorskip("pandas")
    X = digits[0][:5]
    vae = copy.deepcopy(tiny_fitted).set_output(transform="pandas")
    Z, Z_std = vae.transform(X, return_std=True)
    # scikit-learn wraps the first element of a tuple: the means.
    assert isinstance(Z, pd.DataFrame) and list(Z.columns) == ["disentangledvae0", "disentangledvae1"]
    assert isinstance(Z_std, np.ndarray) and Z_std.shape == (5, 2)
    np.testing.assert_array_equal(Z.to_numpy(), tiny_fitted.transform(X))
    assert isinstance(vae.transform(X), pd.DataFrame)
    # A pipeline calls transform(X): the means alone.
    pipe = make_pipeline(FunctionTransformer(), copy.deepcopy(tiny_fitted))
    pipe.steps[0] = ("functiontransformer", FunctionTransformer().fit(X))
    np.testing.assert_array_equal(pipe.transform(X), tiny_fitted.transform(X))
