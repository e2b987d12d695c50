"""Class regions: skvae.regions and DisentangledVAE.sample / interpolate / class_border / class_neighbors."""

import copy
import warnings

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose, assert_array_equal

from skvae import DisentangledVAE
from skvae._inference import latent_proba
from skvae.regions import (
    check_class_neighbors,
    class_gaussians,
    find_sign_change,
    principal_plane,
    sample_class_gaussians,
    segment_points,
)

FAST = dict(hidden_dims=(32,), classifier_hidden=(8,), max_epochs=3, warmup_steps=0, random_state=0)


# digits, and the 2-D models vae and plain_vae fitted on them: tests/conftest.py.


def _with_linear_head(n_components, weights, bias, centroids):
    """A 3-class model whose head has the given logits ``weights @ z + bias``.

    Training only builds the model; the head and the centroids are then set
    by hand, so the border is known exactly.
    """
    rng = np.random.RandomState(0)
    X, y = rng.rand(30, 4), np.repeat(["a", "b", "c"], 10)
    model = DisentangledVAE(n_components, hidden_dims=(4,), classifier_hidden=(), max_epochs=1).fit(X, y)
    head = model.net_.module_.classifier.out
    with torch.no_grad():
        head.weight.copy_(torch.as_tensor(weights, dtype=torch.float32))
        head.bias.copy_(torch.as_tensor(bias, dtype=torch.float32))
    model.class_centroids_ = np.asarray(centroids, dtype=np.float64)
    return model


def _border_model(n_components, bias_c):
    # Along the first latent axis: logit(a) = -2 z1, logit(b) = 2 z1, logit(c)
    # = bias_c; a's centroid at z1 = -1, b's at z1 = 1: p(a) = p(b) at z1 = 0.
    weights = np.zeros((3, n_components))
    weights[0, 0], weights[1, 0] = -2, 2
    centroids = np.zeros((3, n_components))
    centroids[0, 0], centroids[1, 0], centroids[2, 0] = -1, 1, 0
    # Off the axis in the other dimensions, to check the path is a segment.
    centroids[:2, 1:] = 0.5
    return _with_linear_head(n_components, weights, [0, 0, bias_c], centroids)


# ------------------------------------------------------- skvae.regions


def test_class_gaussians_are_regularised_ml_estimates():
    rng = np.random.RandomState(0)
    Z, y = rng.randn(50, 3), rng.randint(3, size=50)
    centroids, covariances = class_gaussians(Z, y, 3, reg=0.1)
    for k in range(3):
        assert_allclose(centroids[k], Z[y == k].mean(axis=0))
        assert_allclose(covariances[k], np.cov(Z[y == k].T, bias=True) + 0.1 * np.eye(3))


def test_class_gaussians_positive_definite_for_one_sample_and_ignore_unlabelled():
    Z = np.array([[1.0, 2.0], [5.0, 5.0], [3.0, 4.0], [100.0, 100.0]])
    centroids, covariances = class_gaussians(Z, np.array([0, 1, 1, -1]), 2)
    assert_allclose(centroids, [[1, 2], [4, 4.5]])
    assert_allclose(covariances[0], 1e-6 * np.eye(2))
    assert np.all(np.linalg.eigvalsh(covariances) > 0)


def test_class_gaussians_rejects_a_class_without_samples():
    with pytest.raises(ValueError, match=r"classes \[1\] have none"):
        class_gaussians(np.zeros((2, 2)), np.array([0, 2]), 3)


def test_sample_class_gaussians_follows_each_class():
    centroids = np.array([[0.0, 0.0], [10.0, -10.0]])
    covariances = np.array([np.eye(2), [[4.0, 1.0], [1.0, 1.0]]])
    indices = np.repeat([1, 0], 20000)
    Z = sample_class_gaussians(centroids, covariances, indices, random_state=0)
    assert_allclose(Z[:20000].mean(axis=0), centroids[1], atol=0.05)
    assert_allclose(np.cov(Z[:20000].T), covariances[1], atol=0.1)
    assert_allclose(Z[20000:].mean(axis=0), centroids[0], atol=0.05)
    assert_array_equal(Z, sample_class_gaussians(centroids, covariances, indices, random_state=0))


def test_segment_points_ends_exactly_at_both_points():
    z_start, z_stop = np.array([0.1, 0.7, -3.0]), np.array([0.3, -0.2, 1e-9])
    Z = segment_points(z_start, z_stop, [0, 0.5, 1])
    assert_array_equal(Z[0], z_start)
    assert_array_equal(Z[2], z_stop)
    assert_allclose(Z[1], (z_start + z_stop) / 2)


@pytest.mark.parametrize(
    "func, expected",
    [
        (lambda t: 0.3 - t, 0.3),
        (lambda t: np.cos(7 * t), np.pi / 14),  # first of two roots
        (lambda t: t - 1 / 1023, 1 / 1023),  # a root on the first grid
        (lambda t: t, 0.0),
        (lambda t: np.where(t < 0.6, 1.0, -1.0), 0.6),  # a jump, as between regions
    ],
)
def test_find_sign_change(func, expected):
    assert find_sign_change(func, tol=1e-9) == pytest.approx(expected, abs=1e-8)


def test_find_sign_change_without_a_change_returns_none():
    assert find_sign_change(lambda t: 1 + t) is None


def test_principal_plane_follows_the_centroids():
    centroids = np.array([[-4.0, 0.0, 1.0], [0.0, 0.0, 1.0], [4.0, 0.1, 1.0]])
    covariances = np.array([np.diag([0.1, 0.5, 0.2])] * 3)
    origin, basis = principal_plane(centroids, covariances)
    assert_allclose(origin, [0, 1 / 30, 1])
    assert_allclose(basis @ basis.T, np.eye(2), atol=1e-12)
    assert_allclose(np.abs(basis[0]), [1, 0, 0], atol=2e-2)
    assert_allclose(np.abs(basis[1]), [0, 1, 0], atol=2e-2)
    assert basis[0, 0] > 0 and basis[1, 1] > 0


# ---------------------------------------------------- fitted statistics


def test_fit_stores_class_gaussians_of_the_training_latents(vae, digits):
    X, y = digits
    Z = vae.transform(X)
    assert vae.class_centroids_.shape == (10, 2)
    assert vae.class_covariances_.shape == (10, 2, 2)
    for k, label in enumerate(vae.classes_):
        assert_allclose(vae.class_centroids_[k], Z[y == label].mean(axis=0), rtol=1e-6)
    assert np.all(np.linalg.eigvalsh(vae.class_covariances_) > 0)


def test_refit_without_labels_drops_class_gaussians(digits):
    X, y = digits
    model = DisentangledVAE(**{**FAST, "max_epochs": 1}).fit(X, y)
    model.fit(X)
    assert not hasattr(model, "class_centroids_")
    assert not hasattr(model, "class_covariances_")


def test_latent_proba_matches_predict_proba(vae, digits):
    X = digits[0][:50]
    proba = latent_proba(vae.net_, vae.transform(X), len(vae.classes_))
    assert proba.dtype == np.float64
    assert_allclose(proba.sum(axis=1), 1, rtol=1e-12)
    assert_allclose(proba, vae.predict_proba(X), rtol=1e-6)


# ---------------------------------------------------------------- sample


def test_sample_from_a_class(vae):
    X, y = vae.sample(5, y=3, random_state=0)
    assert X.shape == (5, 64)
    assert_array_equal(y, [3] * 5)
    assert_array_equal(X, vae.sample(5, y=3, random_state=0)[0])
    assert not np.allclose(X[0], X[1])


def test_sample_one_label_per_sample_infers_n_samples(vae):
    X, y = vae.sample(y=[4, 1, 4], random_state=0)
    assert X.shape == (3, 64)
    assert_array_equal(y, [4, 1, 4])
    assert y.dtype == vae.classes_.dtype


def test_sample_draws_from_the_class_gaussian(vae):
    model = copy.deepcopy(vae)
    model.class_covariances_ = np.broadcast_to(1e-14 * np.eye(2), (10, 2, 2)).copy()
    X, _ = model.sample(2, y=7, random_state=0)
    centroid = model.class_centroids_[list(model.classes_).index(7)]
    assert_allclose(X, model.inverse_transform([centroid, centroid]), atol=1e-5)


def test_sample_from_the_prior(vae, plain_vae):
    for model in (vae, plain_vae):
        X, y = model.sample(4, random_state=0)
        assert X.shape == (4, 64)
        assert y is None
    assert vae.sample()[0].shape == (1, 64)


def test_sample_errors(vae, plain_vae):
    with pytest.raises(ValueError, match=r"Unknown class label 11 .*\[0, 1, 2, 3, 4, 5, 6, 7, 8, 9\]"):
        vae.sample(y=11)
    with pytest.raises(ValueError, match="n_samples=2 but y holds 3 labels"):
        vae.sample(2, y=[1, 2, 3])
    with pytest.raises(ValueError, match="n_samples == 0, must be >= 1"):
        vae.sample(0)
    with pytest.raises(ValueError, match=r"1-D array of labels; got an array of shape \(1, 2\)"):
        vae.sample(y=[[1, 2]])
    with pytest.raises(ValueError, match="fitted without labels, so it has no class regions"):
        plain_vae.sample(y=1)


# ----------------------------------------------------------- interpolate


def test_interpolate_between_a_class_and_a_row(vae, digits):
    row = digits[0][7]
    X_path, Z_path = vae.interpolate(2, row, n_steps=5)
    assert X_path.shape == (5, 64)
    assert_allclose(Z_path[0], vae.class_centroids_[2])
    assert_allclose(Z_path[-1], vae.transform(row[np.newaxis])[0])
    assert_allclose(np.diff(Z_path, axis=0), np.diff(Z_path, axis=0)[:1].repeat(4, axis=0), atol=1e-12)
    assert_allclose(X_path, vae.inverse_transform(Z_path))


def test_interpolate_rows_of_a_plain_vae(plain_vae, digits):
    _, Z_path = plain_vae.interpolate(digits[0][0], digits[0][1:2], n_steps=2)
    assert_allclose(Z_path, plain_vae.transform(digits[0][:2]))


def test_interpolate_errors(vae, plain_vae):
    with pytest.raises(ValueError, match="n_steps == 1, must be >= 2"):
        vae.interpolate(0, 1, n_steps=1)
    with pytest.raises(TypeError, match="n_steps must be an instance of int"):
        vae.interpolate(0, 1, n_steps=2.5)
    message = r"b must be a class label or one data row of 64 features; got an array of shape \(3,\)"
    with pytest.raises(ValueError, match=message):
        vae.interpolate(0, [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="Unknown class label 'zero'"):
        vae.interpolate("zero", 1)
    with pytest.raises(ValueError, match="fitted without labels"):
        plain_vae.interpolate(0, 1)


# ---------------------------------------------------------- class_border


@pytest.mark.parametrize("n_components", [1, 2, 3])
def test_class_border_between_two_classes(n_components):
    model = _border_model(n_components, bias_c=-10)
    border = model.class_border("a", "b", tol=1e-9)
    assert border.t == pytest.approx(0.5, abs=1e-6)
    expected = segment_points(model.class_centroids_[0], model.class_centroids_[1], [0.5])[0]
    assert_allclose(border.latent_point, expected, atol=1e-6)
    assert_allclose(border.decoded, model.inverse_transform(border.latent_point[np.newaxis])[0])
    assert border.proba[0] == pytest.approx(border.proba[1], abs=1e-6)
    assert border.max_other_proba == pytest.approx(border.proba[2])
    assert border.other_class_wins is False


def test_class_border_where_another_class_wins():
    border = _border_model(2, bias_c=5).class_border("b", "a")
    assert border.t == pytest.approx(0.5, abs=1e-5)
    assert border.other_class_wins is True
    assert border.max_other_proba == pytest.approx(np.exp(5) / (np.exp(5) + 2), rel=1e-5)


def test_class_border_without_a_switch_raises():
    # logit(a) - logit(b) = 10 - 4 z1 > 0 on the whole segment z1 in [-1, 1].
    model = _with_linear_head(2, [[-2, 0], [2, 0], [0, 0]], [10, 0, 0], [[-1, 0], [1, 0], [0, 0]])
    with pytest.raises(ValueError, match=r"never gives classes 'a' and 'b' the same probability"):
        model.class_border("a", "b")


def test_class_border_errors(vae, plain_vae):
    with pytest.raises(ValueError, match="two different classes; got 3 twice"):
        vae.class_border(3, 3)
    with pytest.raises(ValueError, match="Unknown class label 12"):
        vae.class_border(3, 12)
    with pytest.raises(ValueError, match="tol == 0"):
        vae.class_border(0, 1, tol=0)
    # The method is hidden, and the error says why.
    with pytest.raises(AttributeError, match="fitted without labels .* no class_border"):
        plain_vae.class_border(0, 1)


# ------------------------------------------------------- class_neighbors


LABELS = np.arange(10)
K5 = [(a, b) for a in range(5) for b in range(a + 1, 5)]
K33 = [(a, b) for a in range(3) for b in range(3, 6)]


@pytest.mark.parametrize(
    "pairs, n_components",
    [
        ([(0, 8)], 1),
        ([(0, 1), (1, 2), (5, 6)], 1),  # two paths
        ([(c, (c + 1) % 10) for c in range(10)], 2),  # a ring
        (K5[:-1], 2),  # K5 less one edge is planar
        (K5, 3),
        (K33, 3),
    ],
)
def test_check_class_neighbors_accepts_borders_the_dimension_can_hold(pairs, n_components):
    check_class_neighbors(np.array(pairs), n_components, LABELS)


@pytest.mark.parametrize(
    "pairs, n_components, message",
    [
        ([(0, 1), (0, 2), (0, 3)], 1, r"in 1-D: a class on a line borders at most two others \(classes 0\)"),
        ([(0, 1), (1, 2), (2, 0)], 1, r"in 1-D: borders on a line cannot close a cycle \(classes 0, 1, 2\)"),
        (K5, 2, r"in 2-D: .* planar graph.*\(classes 0, 1, 2, 3, 4\)"),
        (K33 + [(6, 7)], 2, r"in 2-D: .*\(classes 0, 1, 2, 3, 4, 5\)"),
        # A subdivided K5 (one border through class 9) is not planar either.
        ([pair for pair in K5 if pair != (0, 1)] + [(0, 9), (9, 1)], 2, r"\(classes 0, 1, 2, 3, 4, 9\)"),
    ],
)
def test_check_class_neighbors_refuses_borders_the_dimension_cannot_hold(pairs, n_components, message):
    with pytest.raises(ValueError, match=message) as excinfo:
        check_class_neighbors(np.array(pairs), n_components, LABELS)
    assert "larger n_components" in str(excinfo.value)


def _border_crossed(model, a, b):
    """Whether a third class wins somewhere on the path between the centroids of a and b."""
    index_a, index_b = np.searchsorted(model.classes_, [a, b])
    path = segment_points(model.class_centroids_[index_a], model.class_centroids_[index_b], np.linspace(0, 1, 101))
    return bool(np.setdiff1d(latent_proba(model.net_, path, len(model.classes_)).argmax(1), [index_a, index_b]).size)


def test_class_neighbors_makes_two_classes_share_a_border(digits_all):
    from sklearn.model_selection import train_test_split

    # The demo's data and seed, default parameters: without the request, the
    # path from 0 to 8 crosses the region of 5.
    X_train, _, y_train, _ = train_test_split(*digits_all, test_size=0.2, stratify=digits_all[1], random_state=0)
    params = dict(image_shape=(8, 8), random_state=0)
    assert _border_crossed(DisentangledVAE(**params).fit(X_train, y_train), 0, 8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "class_neighbors not met" warning
        model = DisentangledVAE(class_neighbors=[(0, 8)], **params).fit(X_train, y_train)
    assert not _border_crossed(model, 0, 8)
    assert model.class_border(0, 8).other_class_wins is False
    # Recorded once the warm-up is over; it falls as the pair comes together.
    border = [epoch["train_border"] for epoch in model.history_ if "train_border" in epoch]
    assert border[-1] < border[0]


def test_class_neighbors_warns_when_training_falls_short(digits):
    params = dict(FAST, max_epochs=1, n_components=3)
    with pytest.warns(UserWarning, match=r"class_neighbors not met: .* crosses the region of"):
        DisentangledVAE(class_neighbors=K5, **params).fit(*digits)


@pytest.mark.parametrize(
    "class_neighbors, y_given, message",
    [
        ([(0, 0)], True, r"pairs a class with itself \(\(0, 0\)\)"),
        ([(0, 11)], True, "Unknown class label 11 in class_neighbors"),
        ([0, 8], True, r"must be a list of \(label, label\) pairs"),
        (K5, True, "cannot be met in 2-D"),
        ([(0, 8)], False, "needs labels: fit with y"),
    ],
)
def test_class_neighbors_errors_leave_the_estimator_as_it_was(digits, class_neighbors, y_given, message):
    model = DisentangledVAE(class_neighbors=class_neighbors, **FAST)
    before = copy.deepcopy(vars(model))
    with pytest.raises(ValueError, match=message):
        model.fit(*digits) if y_given else model.fit(digits[0])
    assert vars(model).keys() == before.keys()
    assert not hasattr(model, "net_")


def test_class_neighbors_is_part_of_the_network(digits, tmp_path):
    model = DisentangledVAE(class_neighbors=[(0, 8)], **FAST).fit(*digits)
    # Labels are matched to classes_ whatever their order or repetition.
    same = DisentangledVAE(class_neighbors=[[8, 0], (0, 8)], **FAST).fit(*digits)
    assert_array_equal(model.transform(digits[0]), same.transform(digits[0]))
    path = tmp_path / "model.pt"
    model.save(path)
    loaded = DisentangledVAE.load(path)
    assert_array_equal(loaded.transform(digits[0]), model.transform(digits[0]))
    loaded.set_params(warm_start=True, class_neighbors=[(1, 7)])
    with pytest.raises(ValueError, match=r"class_neighbors \(\[\(0, 8\)\] -> \[\(1, 7\)\]\) changed since the network was built"):
        loaded.fit(*digits)
