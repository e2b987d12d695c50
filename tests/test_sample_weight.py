"""sample_weight in fit and partial_fit: what weights mean, and how they are checked and routed.

Weights equal repeated rows, and weights of 0 dropped rows, where minibatch
training allows it: in the loss and gradients of a batch that holds every
row. Tolerance: 1e-5 relative (float32 sums of a few hundred terms in
another order), on the loss and on every gradient entry, with an absolute
floor of 1e-5 times the largest gradient entry. A whole fit differs (more
rows are more optimizer steps and more noise draws), so the fit-level tests
are statistical: a class of weight 0 is never predicted, a class weighted
up is predicted more.
"""

import copy

import numpy as np
import pytest
import sklearn
import torch
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.datasets import load_iris, make_classification
from sklearn.model_selection import GridSearchCV, cross_validate

from skvae import DisentangledVAE
from tiny import tiny_vae

RTOL = 1e-5


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True)
    return (X - X.mean(axis=0)) / X.std(axis=0), y


def _batch_loss_and_gradients(net, X, labels, weights):
    """The training loss of one batch of all the rows, and its gradients.

    Through the net's own ``get_loss`` (the labels, weights and
    pseudo-labels as training hands them on), with the module in
    evaluation mode: the code is the latent mean, so that the rows carry
    no noise draw of their own.
    """
    net = copy.deepcopy(net)
    net.history.new_epoch()
    net.history.new_batch()
    # The border term draws its points from the training's noise generator.
    net.training_run_.noise_generator_ = torch.Generator().manual_seed(0)
    net.module_.eval()
    X = torch.as_tensor(X, dtype=torch.float32)
    y_true = {
        "labels": torch.as_tensor(labels, dtype=torch.int64),
        "weights": torch.as_tensor(weights, dtype=torch.float32),
        "rows": torch.arange(len(X)),
    }
    loss = net.get_loss(net.module_(X), y_true, X=X, training=True)
    loss.backward()
    return loss.item(), [p.grad.clone() for p in net.module_.parameters() if p.grad is not None]


def _assert_same_loss_and_gradients(net, X, labels, weights):
    """Weighted rows against the rows repeated by their (integer) weights."""
    repeats = weights.astype(int)
    weighted = _batch_loss_and_gradients(net, X, labels, weights)
    repeated = _batch_loss_and_gradients(
        net, np.repeat(X, repeats, axis=0), np.repeat(labels, repeats), np.ones(repeats.sum())
    )
    assert weighted[0] == pytest.approx(repeated[0], rel=RTOL)
    assert len(weighted[1]) == len(repeated[1]) > 0
    for got, expected in zip(*(g[1] for g in (weighted, repeated))):
        floor = RTOL * float(expected.abs().max())
        assert_allclose(got.numpy(), expected.numpy(), rtol=RTOL, atol=floor)


# Labelled with class anchoring and a border request (every term); semi-
# supervised with the head's pseudo-labels, the class balance and the
# marginalised KL; a plain VAE.
SETTINGS = {
    "labelled": dict(n_components=3, class_spacing=4.0, class_neighbors=[(0, 1)]),
    "semi-supervised": dict(n_components=3, class_spacing=4.0, unlabeled_label=-1, pseudo_label_source="head",
                            pseudo_label_threshold=0.0),
    "plain": dict(),
}


@pytest.mark.parametrize("setting", SETTINGS)
@pytest.mark.parametrize("weights", ["integers", "zeros and ones"])
def test_weights_give_a_batch_the_loss_and_gradients_of_repeated_or_dropped_rows(iris, setting, weights):
    X, y = iris
    rng = np.random.RandomState(0)
    params = SETTINGS[setting]
    labels = np.where(rng.rand(len(y)) < 0.5, y, -1) if "unlabeled_label" in params else y
    vae = tiny_vae(**params).fit(X, None if setting == "plain" else labels)
    codes = np.full(len(y), -1) if setting == "plain" else labels
    sample_weight = rng.randint(1, 4, len(y)) if weights == "integers" else rng.randint(0, 2, len(y))
    _assert_same_loss_and_gradients(vae.net_, X, codes, sample_weight.astype(np.float64))


def test_the_comparison_can_fail(iris):
    # Weights that the loss ignored would pass the test above only if the
    # repeated rows changed nothing either: they do.
    X, y = iris
    vae = tiny_vae().fit(X, y)
    weights = np.where(y == 0, 3.0, 1.0)
    plain = _batch_loss_and_gradients(vae.net_, X, y, np.ones(len(y)))
    weighted = _batch_loss_and_gradients(vae.net_, X, y, weights)
    assert abs(plain[0] - weighted[0]) > 100 * RTOL * abs(plain[0])


def test_unit_weights_train_exactly_as_no_weights(iris):
    X, y = iris
    plain = tiny_vae().fit(X, y)
    weighted = tiny_vae().fit(X, y, sample_weight=np.ones(len(y)))
    assert_array_equal(plain.transform(X), weighted.transform(X))
    assert plain.loss_curve_ == weighted.loss_curve_


def test_a_class_of_weight_zero_is_never_predicted(iris):
    X, y = iris
    weights = np.where(y == 1, 0.0, 1.0)
    vae = tiny_vae(max_epochs=30).fit(X, y, sample_weight=weights)
    assert vae.classes_.tolist() == [0, 1, 2]  # the class is still known
    assert not np.any(vae.predict(X) == 1)
    # Without the weights it is predicted.
    assert np.mean(tiny_vae(max_epochs=30).fit(X, y).predict(X)[y == 1] == 1) > 0.5


def test_a_class_weighted_up_is_predicted_more():
    # Two overlapping classes: where they overlap, the weights decide.
    X, y = make_classification(n_samples=400, n_features=6, n_informative=2, class_sep=0.5, random_state=0)
    plain = tiny_vae(max_epochs=20).fit(X, y)
    favoured = tiny_vae(max_epochs=20).fit(X, y, sample_weight=np.where(y == 0, 10.0, 1.0))
    share_plain, share_favoured = np.mean(plain.predict(X) == 0), np.mean(favoured.predict(X) == 0)
    assert share_favoured > share_plain + 0.1 and share_favoured > 0.7


def test_weights_of_a_partial_fit_call_weight_its_epoch(iris):
    X, y = iris
    weights = np.where(y == 2, 0.0, 1.0)
    vae = tiny_vae()
    for _ in range(30):
        vae.partial_fit(X, y, classes=[0, 1, 2], sample_weight=weights)
    assert not np.any(vae.predict(X) == 2)
    # A call may weigh all its labelled rows of a class, or of all classes but one, 0.
    vae.partial_fit(X, y, sample_weight=np.where(y == 0, 1.0, 0.0))


@pytest.mark.parametrize(
    "weights, message",
    [
        (lambda n: -np.ones(n), "Negative values in data passed to `sample_weight`"),
        (lambda n: np.r_[np.nan, np.ones(n - 1)], "Input sample_weight contains NaN"),
        (lambda n: np.r_[np.inf, np.ones(n - 1)], "Input sample_weight contains infinity"),
        (lambda n: np.zeros(n), "at least one non-zero"),
        (lambda n: np.ones(n + 1), r"sample_weight.shape == \(151,\), expected \(150,\)"),
        (lambda n: np.r_[np.ones(50), np.zeros(n - 50)], "leave only class 0 with positive weight"),
    ],
)
def test_bad_weights_are_refused_and_leave_the_model_as_it_was(iris, weights, message):
    X, y = iris
    vae = tiny_vae().fit(X, y)
    before = vae.transform(X)
    with pytest.raises(ValueError, match=message):
        vae.fit(X, y, sample_weight=weights(len(y)))
    assert_array_equal(vae.transform(X), before)
    with pytest.raises(ValueError, match="non-zero"):
        tiny_vae().partial_fit(X, y, classes=[0, 1, 2], sample_weight=np.zeros(len(y)))


def test_validation_rows_are_weighted(iris):
    # The validation rows' weights weight their accuracy: with the rows of
    # class 0 weighing 0, it is the head's accuracy on the validation rows
    # of the other classes. The best epoch's weights are kept: the model
    # scores best_validation_score_ on them.
    X, y = iris
    weights = np.where(y == 0, 0.0, 1.0)
    vae = tiny_vae(early_stopping=True, n_iter_no_change=100, max_epochs=5).fit(X, y, sample_weight=weights)
    valid = vae.net_.train_split(np.arange(len(y)), y)[1].indices
    assert vae.validation_scores_ == [float(v) for v in vae.history_[:, "valid_accuracy"]]
    assert vae.best_validation_score_ == pytest.approx(vae.score(X[valid], y[valid], weights[valid]), abs=1e-6)


def test_rows_of_weight_zero_are_left_out_of_the_label_propagation(iris):
    X, y = iris
    rng = np.random.RandomState(0)
    labels = np.where(rng.rand(len(y)) < 0.3, y, -1)
    weights = (rng.rand(len(y)) < 0.8).astype(float)
    vae = tiny_vae(unlabeled_label=-1, max_epochs=2).fit(X, labels, sample_weight=weights)
    propagated, certainty = vae.net_.training_run_.propagated_labels_
    assert np.all(propagated.numpy()[weights == 0] == -1) and np.all(certainty.numpy()[weights == 0] == 0)
    assert np.all(propagated.numpy()[weights > 0] >= 0)


def test_weights_are_routed_by_grid_search_and_cross_validate(iris):
    X, y = iris
    weights = np.where(y == 1, 0.0, 1.0)
    with sklearn.config_context(enable_metadata_routing=True):
        vae = tiny_vae(max_epochs=10).set_fit_request(sample_weight=True).set_score_request(sample_weight=False)
        search = GridSearchCV(vae, {"lr": [1e-2]}, cv=3).fit(X, y, sample_weight=weights)
        assert not np.any(search.predict(X) == 1)
        # The test folds score all their rows (score does not request the
        # weights): class 1, a third of them, weighted 0 in training, is never right.
        scores = cross_validate(vae, X, y, params={"sample_weight": weights}, cv=3, return_estimator=True)
        assert all(not np.any(fitted.predict(X) == 1) for fitted in scores["estimator"])
        assert np.all(scores["test_score"] <= 0.7)
        # Not requested: the weights may not be passed.
        with pytest.raises(sklearn.exceptions.UnsetMetadataPassedError):
            GridSearchCV(tiny_vae(), {"lr": [1e-2]}, cv=3).fit(X, y, sample_weight=weights)


# ---------------------------------------------------------------- class_weight


def test_class_weight_multiplies_the_sample_weights_of_labelled_rows(iris):
    X, y = iris
    semi = np.where(np.arange(len(y)) % 3 == 0, y, -1)
    by_class = {0: 2.0, 2: 0.5}  # class 1 left out: weighs 1
    row_weights = np.where(semi >= 0, np.choose(np.maximum(semi, 0), [2.0, 1.0, 0.5]), 1.0)
    sample_weight = np.linspace(0.5, 1.5, len(y))
    with_class_weight = tiny_vae(class_weight=by_class, unlabeled_label=-1).fit(X, semi, sample_weight=sample_weight)
    by_hand = tiny_vae(unlabeled_label=-1).fit(X, semi, sample_weight=sample_weight * row_weights)
    assert_array_equal(with_class_weight.transform(X), by_hand.transform(X))


def test_balanced_class_weight_is_scikit_learns(iris):
    X, y = iris
    keep = np.r_[0:50, 50:70, 100:110]  # 50, 20 and 10 rows
    X, y = X[keep], y[keep]
    sample_weight = np.linspace(0.5, 1.5, len(y))
    balanced = tiny_vae(class_weight="balanced").fit(X, y, sample_weight=sample_weight)
    # n / (n_classes * n_k), with the sums of the sample weights for the counts.
    class_totals = np.bincount(y, weights=sample_weight)
    expected = (sample_weight.sum() / (3 * class_totals))[y]
    by_hand = tiny_vae().fit(X, y, sample_weight=sample_weight * expected)
    assert_allclose(balanced.transform(X), by_hand.transform(X), rtol=1e-5, atol=1e-6)


def test_class_weight_dict_is_saved(iris, tmp_path):
    X, y = iris
    vae = tiny_vae(max_epochs=1, class_weight={np.int64(0): 2.0, 2: 0.5}).fit(X, y)
    vae.save(tmp_path / "model.skvae")
    loaded = DisentangledVAE.load(tmp_path / "model.skvae")
    assert loaded.class_weight == {0: 2.0, 2: 0.5}
    assert all(type(label) is int for label in loaded.class_weight)
    strings = tiny_vae(max_epochs=1, class_weight={"b": 3.0}).fit(X, np.array(["a", "b", "c"])[y])
    strings.save(tmp_path / "strings.skvae")
    assert DisentangledVAE.load(tmp_path / "strings.skvae").class_weight == {"b": 3.0}


@pytest.mark.parametrize(
    "class_weight, call, message",
    [
        ({5: 1.0}, "fit", "Unknown class label 5 in class_weight"),
        ({0: -1.0}, "fit", "non-negative finite numbers"),
        ({0: np.nan}, "fit", "non-negative finite numbers"),
        ({0: 0.0, 1: 0.0, 2: 0.0}, "fit", "weighs every sample 0"),
        ("balanced", "partial_fit", "not supported by partial_fit"),
        ("balanced", "fit without labels", "needs labels"),
    ],
)
def test_bad_class_weights_are_refused(iris, class_weight, call, message):
    X, y = iris
    vae = tiny_vae(class_weight=class_weight)
    with pytest.raises(ValueError, match=message):
        if call == "fit":
            vae.fit(X, y)
        elif call == "partial_fit":
            vae.partial_fit(X, y, classes=[0, 1, 2])
        else:
            vae.fit(X)
    assert not hasattr(vae, "net_")
