"""Semi-supervised fitting: ``unlabeled_label`` marks samples without a label."""

import numpy as np
import pytest
from numpy.testing import assert_array_equal
from sklearn.model_selection import train_test_split
from sklearn.utils._param_validation import InvalidParameterError

from skvae import DisentangledVAE


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
