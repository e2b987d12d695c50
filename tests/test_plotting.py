"""The displays of skvae.plotting, drawn with the Agg backend."""

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from matplotlib.colors import to_rgba
from matplotlib.image import imread
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.decomposition import PCA

from skvae import DisentangledVAE
from skvae._inference import latent_proba
from skvae._plane import UNLABELED_COLOR, class_colors, latent_plane
from skvae.plotting import (
    InterpolationDisplay,
    LatentExplorer,
    LatentSpaceDisplay,
    LatentTraversalDisplay,
    TrainingHistoryDisplay,
)

FAST = dict(hidden_dims=(32,), classifier_hidden=(8,), max_epochs=4, warmup_steps=0, random_state=0)


@pytest.fixture(autouse=True)
def no_show_and_close(monkeypatch):
    def show(*args, **kwargs):
        raise AssertionError("a display called plt.show()")

    monkeypatch.setattr(plt, "show", show)
    yield
    plt.close("all")


# digits, and the 2-D models vae and plain_vae fitted on them: tests/conftest.py.


@pytest.fixture(scope="module")
def vae_3d(digits):
    return DisentangledVAE(3, **FAST).fit(*digits)


# ---------------------------------------------------------- latent space


def test_latent_space_2d(vae, digits):
    X, y = digits
    display = LatentSpaceDisplay.from_estimator(vae, X, y, grid_resolution=50)
    assert_allclose(display.scatter_.get_offsets(), vae.transform(X))
    colors = class_colors(10)
    assert_allclose(display.scatter_.get_facecolors(), colors[y])
    assert [text.get_text() for text in display.legend_.get_texts()] == [str(c) for c in range(10)]
    assert display.legend_.get_title().get_text() == "class"

    # The regions are the head's predictions on the grid, in class colours.
    regions = display.regions_.get_array()
    assert regions.shape == (50, 50, 4)
    assert_allclose(regions[..., 3], 0.3)
    x_min, x_max, y_min, y_max = display.extent
    corner = np.array([[x_min, y_min], [x_max, y_max]])
    predicted = latent_proba(vae.net_, corner, len(vae.classes_)).argmax(axis=1)
    assert_allclose(regions[[0, -1], [0, -1], :3], colors[predicted, :3])
    assert display.ax_.get_xlim() == (x_min, x_max)
    assert display.figure_ is display.ax_.figure


def test_latent_space_colours_by_prediction_without_y(vae, digits):
    X = digits[0][:40]
    display = LatentSpaceDisplay.from_estimator(vae, X, grid_resolution=20)
    assert_allclose(display.scatter_.get_facecolors(), class_colors(10)[vae.predict(X)])
    assert display.legend_.get_title().get_text() == "predicted class"


def test_latent_space_projects_more_dimensions_with_pca(vae_3d, digits):
    X, y = digits
    _, ax = plt.subplots()
    display = LatentSpaceDisplay.from_estimator(vae_3d, X, y, grid_resolution=20, ax=ax)
    assert display.ax_ is ax
    Z = vae_3d.transform(X)
    assert_allclose(np.abs(display.scatter_.get_offsets()), np.abs(PCA(2).fit_transform(Z)), rtol=1e-4, atol=1e-6)
    assert "PCA projection of the 3-D latent means" in ax.get_title()
    assert display.regions_ is not None


def test_latent_plane_is_the_pca_of_the_latent_means(vae_3d, digits):
    """The one PCA plane of the displays and the explorer: sklearn's PCA, signs included."""
    Z = vae_3d.transform(digits[0]).astype(np.float64)
    origin, axes, names = latent_plane(Z)
    pca = PCA().fit(Z)
    assert_allclose(origin, pca.mean_)
    assert_allclose(axes, pca.components_, atol=1e-8)
    assert names == [f"PC {i + 1} ({ratio:.0%} of variance)" for i, ratio in enumerate(pca.explained_variance_ratio_)]


def test_latent_space_of_a_plain_vae(plain_vae, digits):
    X, y = digits
    display = LatentSpaceDisplay.from_estimator(plain_vae, X)
    assert display.regions_ is None and display.legend_ is None
    display = LatentSpaceDisplay.from_estimator(plain_vae, X, np.where(y < 5, "low", "high"))
    assert [text.get_text() for text in display.legend_.get_texts()] == ["high", "low"]


def test_latent_space_errors(vae, digits):
    X, y = digits
    with pytest.raises(ValueError, match="Unknown class label 10"):
        LatentSpaceDisplay.from_estimator(vae, X[:2], [1, 10])
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        LatentSpaceDisplay.from_estimator(vae, X[:3], [1, 2])
    one_d = DisentangledVAE(1, **{**FAST, "max_epochs": 1}).fit(X, y)
    with pytest.raises(ValueError, match="has n_components=1"):
        LatentSpaceDisplay.from_estimator(one_d, X)


@pytest.mark.parametrize("fitted_with_labels", [True, False])
def test_unlabeled_points_are_grey_in_both_displays(digits, fitted_with_labels):
    """``unlabeled_label`` in y marks unlabeled points, whether the model
    was fitted with labels or not: LatentSpaceDisplay and LatentExplorer
    give them the same code, -1, draw them grey and leave them out of the
    classes."""
    X, y = digits
    y_partial = np.where(np.arange(len(y)) % 3 == 0, -1, y)
    unlabeled = y_partial == -1
    model = DisentangledVAE(**FAST, unlabeled_label=-1)
    model.fit(X, y_partial) if fitted_with_labels else model.fit(X)

    display = LatentSpaceDisplay.from_estimator(model, X, y_partial, grid_resolution=10)
    assert_array_equal(display.class_names, np.arange(10))
    assert_array_equal(display.labels, np.where(unlabeled, -1, y))
    colors = display.scatter_.get_facecolors()
    assert_allclose(colors[unlabeled], np.broadcast_to(to_rgba(UNLABELED_COLOR), (unlabeled.sum(), 4)))
    assert_allclose(colors[~unlabeled], class_colors(10)[y[~unlabeled]])
    legend = [text.get_text() for text in display.legend_.get_texts()]
    assert legend == [str(c) for c in range(10)] + ["unlabeled"]
    assert (display.regions_ is not None) == fitted_with_labels

    spec = LatentExplorer.from_estimator(model, X, y_partial).spec
    assert spec["classes"] == legend[:-1]
    assert spec["points"]["labels"] == display.labels.tolist()
    assert spec["unlabeled_color"] == UNLABELED_COLOR


@pytest.mark.parametrize("draw", [LatentSpaceDisplay.from_estimator, LatentExplorer.from_estimator])
def test_both_displays_refuse_a_label_that_is_no_class(vae, digits, draw):
    X, y = digits
    with pytest.raises(ValueError, match=r"Unknown class label -1 in y"):
        draw(vae, X, np.where(y == 0, -1, y))


# ------------------------------------------------------------- traversal


def test_traversal_grid_2d(vae, digits):
    display = LatentTraversalDisplay.from_estimator(vae, digits[0], n_images=5)
    assert display.images.shape == (5, 5, 8, 8)
    # 5 tiles of 8 pixels and 4 gaps of 1 pixel per side.
    mosaic = display.image_.get_array()
    assert mosaic.shape == (44, 44)
    # Top-left tile: highest y, lowest x.
    assert_allclose(mosaic[:8, :8], display.images[-1, 0])
    assert_allclose(display.latent_points[-1, 0], [display.x[0], display.y[-1]])
    decoded = vae.inverse_transform(display.latent_points[2, 3][np.newaxis])
    assert_allclose(display.images[2, 3], decoded.reshape(8, 8))
    # Tiles are centred on their grid points.
    left, right, bottom, top = display.image_.get_extent()
    assert (left + right) / 2 == pytest.approx((display.x[0] + display.x[-1]) / 2)
    assert (bottom + top) / 2 == pytest.approx((display.y[0] + display.y[-1]) / 2)


def test_traversal_extent(vae):
    display = LatentTraversalDisplay.from_estimator(vae, n_images=3, extent=(-1, 1, 0, 4))
    assert_array_equal(display.x, [-1, 0, 1])
    assert_array_equal(display.y, [0, 2, 4])
    assert_allclose(display.latent_points[1, 2], [1, 2])
    assert "(given extent)" in display.ax_.get_title()
    with pytest.raises(ValueError, match=r"extent must be \(x_min, x_max, y_min, y_max\); got \(0, 1\)"):
        LatentTraversalDisplay.from_estimator(vae, extent=(0, 1))


@pytest.mark.parametrize("with_X", [True, False])
def test_traversal_on_a_plane_of_more_dimensions(vae_3d, digits, with_X):
    X = digits[0] if with_X else None
    display = LatentTraversalDisplay.from_estimator(vae_3d, X, n_images=4)
    assert display.latent_points.shape == (4, 4, 3)
    # Equally spaced points on a plane: each step along x is the same vector.
    steps = np.diff(display.latent_points, axis=1)
    assert_allclose(steps, np.broadcast_to(steps[0, 0], steps.shape), atol=1e-12)
    assert "plane of 3-D latent space" in display.ax_.get_title()


def test_traversal_of_a_plain_vae_spans_the_prior(plain_vae):
    display = LatentTraversalDisplay.from_estimator(plain_vae, n_images=3)
    assert_array_equal(display.x, [-2, 0, 2])
    assert "the prior" in display.ax_.get_title()


def test_traversal_of_rgb_images():
    X, y = np.random.RandomState(0).rand(20, 48), np.repeat([0, 1], 10)
    model = DisentangledVAE(hidden_dims=(4,), image_shape=(3, 4, 4), max_epochs=1).fit(X, y)
    display = LatentTraversalDisplay.from_estimator(model, n_images=3)
    assert display.images.shape == (3, 3, 4, 4, 3)
    mosaic = display.image_.get_array()
    assert mosaic.shape == (14, 14, 3)
    assert mosaic.min() >= 0 and mosaic.max() <= 1
    channels_first = model.inverse_transform(display.latent_points[0, 0][np.newaxis]).reshape(3, 4, 4)
    assert_allclose(display.images[0, 0], np.clip(channels_first.transpose(1, 2, 0), 0, 1))


def test_traversal_needs_images():
    X, y = np.random.RandomState(0).rand(40, 5), np.repeat([0, 1], 20)
    model = DisentangledVAE(hidden_dims=(4,), max_epochs=1).fit(X, y)
    with pytest.raises(ValueError, match="draws grey or RGB images.*it has 5"):
        LatentTraversalDisplay.from_estimator(model)


# --------------------------------------------------------- interpolation


def test_interpolation(vae):
    display = InterpolationDisplay.from_estimator(vae, 0, 8, n_steps=7)
    assert display.image_.get_array().shape == (8, 7 * 9 - 1)
    assert_allclose(display.decoded, vae.interpolate(0, 8, n_steps=7)[0])
    assert len(display.lines_) == 3
    p_a, p_b, p_other = (line.get_ydata() for line in display.lines_)
    assert np.all(p_a + p_b + p_other <= 1 + 1e-12)
    assert_allclose(p_a[0], latent_proba(vae.net_, vae.class_centroids_[[0]], len(vae.classes_))[0, 0])
    assert display.strip_ax_.get_xlim() == display.ax_.get_xlim()
    # The shared model's head prefers 0 at 0's centroid and 8 at 8's, so
    # p(0) - p(8) changes sign on the path: there is a border to mark.
    assert p_a[0] > p_b[0] and p_b[-1] > p_a[-1]
    assert 0 < display.border.t < 1
    assert display.border.t == pytest.approx(vae.class_border(0, 8).t)
    assert [line.get_xdata()[0] for line in display.border_lines_] == [display.border.t] * 2
    assert f"border t={display.border.t:.3f}" in display.ax_.texts[0].get_text()


def test_interpolation_marks_the_border():
    # 4x4 images and a head set by hand: logit(a) = -2 z1, logit(b) = 2 z1,
    # centroids at z1 = -1 and 1, so the border is halfway.
    X, y = np.random.RandomState(0).rand(20, 16), np.repeat(["a", "b"], 10)
    model = DisentangledVAE(hidden_dims=(4,), classifier_hidden=(), max_epochs=1).fit(X, y)
    with torch.no_grad():
        model.net_.module_.classifier.out.weight.copy_(torch.tensor([[-2.0, 0.0], [2.0, 0.0]]))
        model.net_.module_.classifier.out.bias.zero_()
    model.class_centroids_ = np.array([[-1.0, 0.5], [1.0, 0.5]])
    display = InterpolationDisplay.from_estimator(model, "a", "b")
    assert display.border.t == pytest.approx(0.5, abs=1e-6)
    assert [line.get_xdata()[0] for line in display.border_lines_] == [display.border.t] * 2
    assert "border t=0.500" in display.ax_.texts[0].get_text()
    assert display.image_.get_array().shape == (4, 11 * 5 - 1)
    assert_allclose(display.lines_[2].get_ydata(), 0)  # no other class


def test_interpolation_without_a_border_marks_none():
    # logit(a) - logit(b) = 10 - 4 z1 > 0 on the whole path z1 in [-1, 1]:
    # the head never switches to b.
    X, y = np.random.RandomState(0).rand(20, 16), np.repeat(["a", "b"], 10)
    model = DisentangledVAE(hidden_dims=(4,), classifier_hidden=(), max_epochs=1).fit(X, y)
    with torch.no_grad():
        model.net_.module_.classifier.out.weight.copy_(torch.tensor([[-2.0, 0.0], [2.0, 0.0]]))
        model.net_.module_.classifier.out.bias.copy_(torch.tensor([10.0, 0.0]))
    model.class_centroids_ = np.array([[-1.0, 0.5], [1.0, 0.5]])
    display = InterpolationDisplay.from_estimator(model, "a", "b")
    assert display.border is None and display.border_lines_ is None
    assert not any("border" in text.get_text() for text in display.ax_.texts)
    p_a, p_b, _ = (line.get_ydata() for line in display.lines_)
    assert np.all(p_a > p_b)


def test_interpolation_of_non_image_data_is_a_heat_map():
    X, y = np.random.RandomState(0).rand(40, 5), np.repeat([0, 1], 20)
    model = DisentangledVAE(hidden_dims=(4,), max_epochs=1).fit(X, y)
    display = InterpolationDisplay.from_estimator(model, 0, 1, n_steps=4)
    assert_allclose(display.image_.get_array(), display.decoded.T)


def test_interpolation_errors(vae, plain_vae):
    with pytest.raises(ValueError, match="two different classes"):
        InterpolationDisplay.from_estimator(vae, 1, 1)
    with pytest.raises(ValueError, match="needs a DisentangledVAE fitted with labels"):
        InterpolationDisplay.from_estimator(plain_vae, 0, 1)


# --------------------------------------------------------------- history


def test_training_history(vae):
    display = TrainingHistoryDisplay.from_estimator(vae)
    assert len(display.axes_) == 3
    history = vae.history_
    assert_allclose(display.lines_["total"].get_ydata(), history[:, "train_loss"])
    assert_allclose(display.lines_["KL"].get_ydata(), history[:, "train_kl"])
    assert_allclose(display.lines_["accuracy"].get_ydata(), history[:, "train_accuracy"])
    assert display.axes_[0].get_yscale() == "log"
    schedule = display.lines_["schedule"]
    assert len(schedule.get_xdata()) == vae.net_.total_steps_ + 1
    assert schedule.get_ydata()[0] == pytest.approx(vae.net_.classification_weight(0, 1))


def test_training_history_with_validation(digits):
    model = DisentangledVAE(**{**FAST, "early_stopping": True}).fit(*digits)
    display = TrainingHistoryDisplay.from_estimator(model)
    assert_allclose(display.lines_["KL (validation)"].get_ydata(), model.history_[:, "valid_kl"])
    assert "total (validation)" not in display.lines_
    assert "accuracy (validation)" in display.lines_


def test_training_history_of_a_plain_vae(plain_vae):
    display = TrainingHistoryDisplay.from_estimator(plain_vae)
    assert len(display.axes_) == 1
    assert set(display.lines_) == {"total", "reconstruction", "KL"}


def test_training_history_checks_the_number_of_axes(vae):
    _, ax = plt.subplots()
    with pytest.raises(ValueError, match="ax must hold 3 axes"):
        TrainingHistoryDisplay.from_estimator(vae, ax=ax)


# ------------------------------------------------------------------ files


def test_displays_save_valid_pngs(vae, digits, tmp_path):
    displays = {
        "latent": LatentSpaceDisplay.from_estimator(vae, *digits, grid_resolution=20),
        "traversal": LatentTraversalDisplay.from_estimator(vae, n_images=4),
        "interpolation": InterpolationDisplay.from_estimator(vae, 1, 7),
        "history": TrainingHistoryDisplay.from_estimator(vae),
    }
    for name, display in displays.items():
        display.figure_.savefig(tmp_path / f"{name}.png")
        image = imread(tmp_path / f"{name}.png")
        assert image.ndim == 3 and min(image.shape[:2]) > 100
        # Not blank.
        assert image[..., :3].std() > 0.05
