"""MLPClassifier's fitted attributes -- n_iter_, loss_curve_, best_loss_,
validation_scores_, best_validation_score_ -- read from history_."""

import pickle

import numpy as np
import pytest
from sklearn.datasets import load_iris

from skvae import DisentangledVAE
from tiny import tiny_vae


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True)
    return (X - X.mean(axis=0)) / X.std(axis=0), y


def _assert_read_from_history(vae):
    assert vae.n_iter_ == len(vae.history_) == len(vae.loss_curve_)
    assert vae.loss_curve_ == [float(loss) for loss in vae.history_[:, "train_loss"]]
    assert all(isinstance(loss, float) and np.isfinite(loss) for loss in vae.loss_curve_)


def test_without_validation_rows(iris):
    vae = tiny_vae(max_epochs=4).fit(*iris)
    _assert_read_from_history(vae)
    assert vae.n_iter_ == 4
    assert vae.best_loss_ == min(vae.loss_curve_)
    # As MLPClassifier's without early_stopping: None, not absent.
    assert vae.validation_scores_ is None and vae.best_validation_score_ is None


def test_epochs_count_over_partial_fit_and_warm_start_until_a_new_fit(iris):
    X, y = iris
    vae = tiny_vae(max_epochs=2).fit(X, y)
    curve = list(vae.loss_curve_)
    vae.partial_fit(X, y)
    assert vae.n_iter_ == 3 and vae.loss_curve_[:2] == curve
    vae.set_params(warm_start=True, max_epochs=5).fit(X, y)
    assert vae.n_iter_ == 5
    _assert_read_from_history(vae)
    vae.set_params(warm_start=False, max_epochs=2).fit(X, y)
    assert vae.n_iter_ == 2 and vae.loss_curve_ == curve  # same seed, a new network
    assert vae.best_loss_ == min(curve)


def test_with_validation_rows(iris):
    vae = tiny_vae(max_epochs=30, early_stopping=True, n_iter_no_change=2).fit(*iris)
    _assert_read_from_history(vae)
    assert vae.n_iter_ < 30  # stopped early
    assert vae.validation_scores_ == [float(v) for v in vae.history_[:, "valid_accuracy"]]
    assert len(vae.validation_scores_) == vae.n_iter_
    assert vae.best_validation_score_ == max(vae.validation_scores_)
    # The validation scores judge the epochs: no best training loss, as in MLPClassifier.
    assert vae.best_loss_ is None


def test_a_plain_vae_has_no_validation_score(iris):
    X, _ = iris
    vae = tiny_vae(max_epochs=3, early_stopping=True).fit(X)
    _assert_read_from_history(vae)
    assert vae.validation_scores_ is None and vae.best_validation_score_ is None and vae.best_loss_ is None
    assert len(vae.history_[:, "valid_loss"]) == vae.n_iter_  # what early stopping watched


def test_unfitted_has_none(iris):
    vae = DisentangledVAE()
    for name in ("n_iter_", "loss_curve_", "best_loss_", "validation_scores_", "best_validation_score_"):
        assert not hasattr(vae, name)


@pytest.mark.parametrize("early_stopping", [False, True])
def test_save_load_and_pickle_keep_them(iris, tmp_path, early_stopping):
    names = ("n_iter_", "loss_curve_", "best_loss_", "validation_scores_", "best_validation_score_")
    vae = tiny_vae(max_epochs=3, early_stopping=early_stopping, n_iter_no_change=10).fit(*iris)
    vae.save(tmp_path / "model.skvae")
    loaded = DisentangledVAE.load(tmp_path / "model.skvae")
    unpickled = pickle.loads(pickle.dumps(vae))
    for name in names:
        assert getattr(loaded, name) == getattr(vae, name) == getattr(unpickled, name), name
    # Files of versions before these attributes get them from the history.
    for name in names:
        delattr(vae, name)
    vae.save(tmp_path / "older.skvae")
    older = DisentangledVAE.load(tmp_path / "older.skvae")
    for name in names:
        assert getattr(older, name) == getattr(loaded, name), name
    # And training on continues the count.
    assert older.set_params(warm_start=True, max_epochs=4).fit(*iris).n_iter_ == 4
