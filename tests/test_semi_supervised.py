"""Semi-supervised fitting: ``unlabeled_label`` marks samples without a label."""

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.model_selection import train_test_split
from sklearn.utils._param_validation import InvalidParameterError
from skorch.callbacks import Callback

from skvae import DisentangledVAE
from skvae.losses import propagate_labels
from tiny import tiny_vae


def _tiny(**params):
    defaults = dict(hidden_dims=(16,), classifier_hidden=(8,), max_epochs=1, warmup_steps=0, random_state=0)
    defaults.update(params)
    return DisentangledVAE(**defaults)


@pytest.fixture(scope="module")
def digits(digits_all):
    """All 1,797 digits (tests/conftest.py), read-only."""
    return digits_all


def _hide_labels(y, fraction_labeled, marker, seed=0):
    y = y.astype(object if isinstance(marker, str) else y.dtype)
    y[np.random.RandomState(seed).rand(len(y)) >= fraction_labeled] = marker
    return y


@pytest.mark.parametrize("marker", [-1, "unlabeled"])
def test_classes_exclude_unlabeled_marker(digits, marker):
    X, y = digits[0][:200], digits[1][:200]
    if isinstance(marker, str):
        y = np.array([f"digit {label}" for label in y], dtype=object)
    y_semi = _hide_labels(y, 0.5, marker)

    est = _tiny(unlabeled_label=marker).fit(X, y_semi)

    assert_array_equal(est.classes_, np.unique(y))
    assert marker not in set(est.predict(X))


def test_classification_term_uses_labeled_samples_only(digits):
    # One sample per batch, two of them labeled: the other batches' terms are 0.
    X = digits[0][:40]
    y = np.full(40, -1)
    y[[3, 17]] = [0, 1]

    est = _tiny(unlabeled_label=-1, batch_size=1).fit(X, y)

    batches = est.history_[-1, "batches"]
    classification = np.array([batch["train_classification"] for batch in batches])
    reconstruction = np.array([batch["train_reconstruction"] for batch in batches])
    assert len(batches) == 40
    assert np.count_nonzero(classification) == 2
    # Reconstruction (and KL) train on every sample, labeled or not.
    assert np.all(reconstruction > 0)
    assert_array_equal(est.classes_, [0, 1])


def test_minus_one_is_a_class_without_unlabeled_label(digits):
    X = digits[0][:200]
    y = np.where(digits[1][:200] < 5, -1, 1)

    est = _tiny(max_epochs=5).fit(X, y)

    assert_array_equal(est.classes_, [-1, 1])
    assert set(est.predict(X)) <= {-1, 1}


def test_all_unlabeled_raises(digits):
    X = digits[0][:50]
    with pytest.raises(ValueError, match=r"All 50 samples are unlabeled.*fit\(X\)"):
        _tiny(unlabeled_label=-1).fit(X, np.full(50, -1))


def test_one_labeled_class_raises(digits):
    X = digits[0][:50]
    y = np.full(50, -1)
    y[:10] = 7
    with pytest.raises(ValueError, match="at least 2 classes.*got 1 class \\(7\\) among the labeled"):
        _tiny(unlabeled_label=-1).fit(X, y)


def test_invalid_unlabeled_label_raises(digits):
    X, y = digits[0][:50], digits[1][:50]
    with pytest.raises(InvalidParameterError, match="unlabeled_label"):
        _tiny(unlabeled_label=[-1]).fit(X, y)


def test_a_bool_unlabeled_label_is_refused(digits):
    # Issue 22: True == 1, so it unlabelled every sample of class 1.
    X, y = digits[0][:50], digits[1][:50]
    with pytest.raises(InvalidParameterError, match="'unlabeled_label' parameter .* not a bool. Got True"):
        _tiny(unlabeled_label=True).fit(X, y)


@pytest.mark.parametrize(
    "marker, kind, match",
    [
        ("-1", "int", r"unlabeled_label='-1' is a string, but the labels in y are numbers \(dtype int64\).*unlabeled_label=-1"),
        ("none", "int", r"is a string, but the labels in y are numbers.*e.g. unlabeled_label=-1"),
        (-1, "str", r"unlabeled_label=-1 is a number, but the labels in y are strings.*unlabeled_label='-1'"),
        (-1, "object", r"unlabeled_label=-1 is a number, but the labels in y are strings"),
    ],
)
def test_an_unlabeled_label_of_another_type_than_y_is_refused(digits, marker, kind, match):
    # Issue 22: "-1" with int -1 markers in y made -1 a class, silently.
    X, y = digits[0][:50], digits[1][:50].copy()
    y[::3] = -1
    y = {"int": y, "str": y.astype(str), "object": y.astype(str).astype(object)}[kind]
    with pytest.raises(ValueError, match=match):
        _tiny(unlabeled_label=marker).fit(X, y)
    with pytest.raises(ValueError, match=match):
        _tiny(unlabeled_label=marker).partial_fit(X, y, classes=np.unique(y))


def test_an_int_marker_among_string_labels_in_an_object_y(digits):
    # scikit-learn's semi-supervised convention for string labels.
    X, y = digits[0][:60], digits[1][:60].astype(str).astype(object)
    y[::3] = -1
    est = _tiny(unlabeled_label=-1).fit(X, y)
    assert_array_equal(est.classes_, np.unique(y[y != -1].astype(str)))


def test_ten_percent_labels_classify_above_chance(digits):
    X_train, X_test, y_train, y_test = train_test_split(
        *digits, test_size=0.3, stratify=digits[1], random_state=0
    )
    y_semi = _hide_labels(y_train, 0.1, -1)
    assert 0.07 < np.mean(y_semi != -1) < 0.13

    est = DisentangledVAE(
        n_components=8,
        hidden_dims=(32,),
        classifier_hidden=(16,),
        max_epochs=10,
        batch_size=32,
        lr=1e-2,
        warmup_steps=0,
        unlabeled_label=-1,
        random_state=0,
    ).fit(X_train, y_semi)

    # Chance is 0.1 on the 10 balanced digit classes.
    assert est.score(X_test, y_test) > 0.4


class _LabeledPerBatch(Callback):
    """Records how many labeled rows every training batch holds."""

    def initialize(self):
        self.counts = []
        return self

    def on_batch_begin(self, net, batch=None, training=False, **kwargs):
        if training:
            _, y = batch  # y: the rows' labels and their positions
            self.counts.append(int((y["labels"] >= 0).sum()))


def test_every_batch_of_a_partly_labeled_fit_carries_labeled_rows(digits):
    X, y = digits[0][:200], digits[1][:200].copy()
    y[3:] = -1  # 3 labeled rows: a plain shuffle leaves most batches of 16 without any
    counter = _LabeledPerBatch()

    est = _tiny(unlabeled_label=-1, batch_size=16, max_epochs=2, callbacks=[counter]).fit(X, y)

    # As many batches as a plain shuffle, each with all 3 labeled rows.
    assert counter.counts == [3] * 26
    # Every batch's head learns from the unlabeled rows too.
    batches = [batch for row in est.history_ for batch in row["batches"]]
    assert all("train_unlabeled" in batch for batch in batches)


def test_unlabeled_rows_train_the_head(digits):
    X, y = digits[0][:200], _hide_labels(digits[1][:200], 0.2, -1)
    params = dict(unlabeled_label=-1, max_epochs=8, lr=1e-2, pseudo_label_threshold=0.3)

    semi = _tiny(**params).fit(X, y)
    labeled_only = _tiny(unlabeled_weight=0.0, **params).fit(X, y)

    assert max(semi.history_[:, "train_unlabeled"]) > 0
    assert not np.array_equal(semi.predict_proba(X), labeled_only.predict_proba(X))


def test_fully_labeled_fit_is_unchanged(digits):
    # Values of the training path before the semi-supervised mode existed
    # (commit 3782c32): fully labeled data must not take the new path.
    # input_dropout came later; off, it draws nothing and changes nothing.
    X, y = digits[0][:300], digits[1][:300]
    expected = {
        2: [[-0.35070223, -0.73477167], [-0.2520461, -0.8319352], [0.07124622, -0.5296941]],
        8: [[0.4139977, -0.3922239, 0.5374375, 0.11968873, 0.30593866, 0.9125317, 0.003714621, -0.3447145]],
    }
    for n_components, rows in expected.items():
        est = tiny_vae(n_components=n_components, input_dropout=0.0).fit(X, y)
        assert_allclose(est.transform(X[: len(rows)]), rows, rtol=1e-5, atol=1e-6)
        marked = tiny_vae(n_components=n_components, input_dropout=0.0, unlabeled_label=-1).fit(X, y)
        assert_array_equal(marked.transform(X), est.transform(X))
        assert "train_unlabeled" not in est.history_[-1]


def test_semi_supervised_fit_depends_on_random_state_only(digits):
    X, y = digits[0][:200], _hide_labels(digits[1][:200], 0.1, -1)
    torch.manual_seed(0)
    first = _tiny(unlabeled_label=-1, max_epochs=3).fit(X, y)
    torch.manual_seed(1)
    second = _tiny(unlabeled_label=-1, max_epochs=3).fit(X, y)
    other = _tiny(unlabeled_label=-1, max_epochs=3, random_state=1).fit(X, y)

    assert_array_equal(first.transform(X), second.transform(X))
    assert first.history_[:, "train_loss"] == second.history_[:, "train_loss"]
    assert not np.array_equal(first.transform(X), other.transform(X))


def test_a_fit_on_a_few_labeled_rows_trains_its_head(digits_all):
    X, y = digits_all
    X_train, X_test, y_train, y_test = train_test_split(X, y, train_size=60, stratify=y, random_state=0)

    # Defaults but a small network: max_epochs="auto" gives 60 rows 300 epochs.
    est = DisentangledVAE(hidden_dims=(32,), random_state=0).fit(X_train, y_train)

    assert est.max_epochs_ == 300
    # Chance is 0.1.
    assert est.score(X_test, y_test) > 0.35


@pytest.mark.parametrize(
    "params",
    [
        dict(unlabeled_weight=-1.0),
        dict(pseudo_label_threshold=1.5),
        dict(pseudo_label_threshold="high"),
        dict(pseudo_label_source="graph"),
    ],
)
def test_invalid_semi_supervised_params_raise(digits, params):
    X, y = digits[0][:50], digits[1][:50]
    with pytest.raises(InvalidParameterError, match=next(iter(params))):
        _tiny(unlabeled_label=-1, **params).fit(X, y)


def test_propagate_labels_spreads_each_label_over_its_cluster():
    rng = np.random.RandomState(0)
    X = np.concatenate([rng.normal(0, 0.3, (30, 2)), rng.normal(5, 0.3, (30, 2)), rng.normal([0, 5], 0.3, (30, 2))])
    truth = np.repeat([0, 1, 2], 30)
    y = np.full(90, -1)
    y[[0, 30, 60]] = [0, 1, 2]

    labels, certainty = propagate_labels(X, y, 3)

    assert_array_equal(labels, truth)
    assert certainty.min() > 0.5 and certainty.max() <= 1


def test_propagate_labels_is_unsure_where_no_label_reaches():
    rng = np.random.RandomState(0)
    # Two clusters too far apart for any edge between them; only the first is labeled.
    X = np.concatenate([rng.normal(0, 0.1, (20, 2)), rng.normal(100, 0.1, (20, 2))])
    y = np.full(40, -1)
    y[[0, 1]] = [0, 1]

    _, certainty = propagate_labels(X, y, 2, n_neighbors=5)

    assert_allclose(certainty[20:], 0)


def _pseudo_label_terms(est):
    batches = [batch for row in est.history_ for batch in row["batches"] if "train_loss" in batch]
    return np.array([batch["train_unlabeled"] for batch in batches])


def test_pseudo_label_source_changes_the_unlabeled_term(digits):
    X, y = digits[0][:200], _hide_labels(digits[1][:200], 0.1, -1)

    propagated = _tiny(unlabeled_label=-1, max_epochs=3).fit(X, y)
    head = _tiny(unlabeled_label=-1, max_epochs=3, pseudo_label_source="head").fit(X, y)

    assert propagated.pseudo_label_source == "propagation"  # the default
    assert not np.allclose(_pseudo_label_terms(propagated), _pseudo_label_terms(head))
    assert not np.array_equal(propagated.transform(X), head.transform(X))


def test_propagation_with_a_validation_split(digits):
    # The training part of the split is a Subset: its rows find their labels.
    X, y = digits[0][:300], _hide_labels(digits[1][:300], 0.2, -1)

    est = _tiny(unlabeled_label=-1, max_epochs=2, early_stopping=True).fit(X, y)

    assert np.all(_pseudo_label_terms(est) > 0)
    assert "valid_loss" in est.history_[-1]


def test_propagation_fit_depends_on_random_state_only(digits):
    X, y = digits[0][:200], _hide_labels(digits[1][:200], 0.1, -1)

    first = _tiny(unlabeled_label=-1, max_epochs=2).fit(X, y)
    second = _tiny(unlabeled_label=-1, max_epochs=2).fit(X, y)

    assert_array_equal(first.transform(X), second.transform(X))
