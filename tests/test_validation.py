"""What the validation split decides (early_stopping="auto"): the masking noise and the epoch kept."""

import numpy as np
import pytest

from skvae import DisentangledVAE
from skvae._validation import INPUT_DROPOUT_CANDIDATES, MIN_VALIDATION_ROWS, halving_rounds
from tiny import tiny_vae

FAST = dict(max_epochs=16, batch_size=128)


def test_auto_holds_rows_out_of_labelled_data_large_enough(digits_all, digits):
    X, y = digits_all
    assert len(X) >= MIN_VALIDATION_ROWS > len(digits[0])
    assert tiny_vae(**FAST).fit(X, y).early_stopping_
    assert not tiny_vae(**FAST).fit(*digits).early_stopping_  # too few rows to spare a tenth
    assert not tiny_vae(**FAST).fit(X).early_stopping_  # no labels: nothing for the head to choose
    semi = np.where(np.arange(len(y)) % 2 == 0, y, -1)
    assert not tiny_vae(**FAST, unlabeled_label=-1).fit(X, semi).early_stopping_
    assert not tiny_vae(**FAST, early_stopping=False).fit(X, y).early_stopping_
    assert tiny_vae(**FAST, early_stopping=True, n_iter_no_change=100).fit(*digits).early_stopping_


def test_noise_is_chosen_by_successive_halving_on_validation_accuracy(digits_all):
    X, y = digits_all
    vae = tiny_vae(**FAST).fit(X, y)
    scores = vae.input_dropout_scores_
    assert scores.shape == (len(INPUT_DROPOUT_CANDIDATES), 2)
    # Every candidate trained the first round; the better half the second.
    assert np.isfinite(scores[:, 0]).all() and np.isfinite(scores[:, 1]).sum() == 2
    second = np.flatnonzero(np.isfinite(scores[:, 1]))
    assert set(np.argsort(-scores[:, 0], kind="stable")[:2]) == set(second) or (
        np.sort(scores[:, 0])[-2] == np.sort(scores[:, 0])[-3]  # a tie at the cut
    )
    winner = INPUT_DROPOUT_CANDIDATES.index(vae.input_dropout_)
    assert winner in second and scores[winner, 1] == np.nanmax(scores[:, 1])
    assert vae.setup_.input_dropout == vae.net_.module_.input_dropout == vae.input_dropout_
    # The winner went on from its rounds: one history, of max_epochs epochs.
    assert len(vae.history_) == vae.max_epochs_
    assert vae.validation_scores_[sum(halving_rounds(vae.max_epochs_)) - 1] == scores[winner, 1]
    assert vae.best_validation_score_ == max(vae.validation_scores_)


def test_a_fixed_noise_is_not_chosen(digits_all):
    X, y = digits_all
    vae = tiny_vae(**FAST, input_dropout=0.25).fit(X, y)
    assert vae.input_dropout_ == 0.25 and not hasattr(vae, "input_dropout_scores_")
    assert vae.early_stopping_ and len(vae.validation_scores_) == vae.max_epochs_


def test_noise_that_destroys_the_class_gets_none():
    """The class is the sign pattern of two of six features: masking either
    erases it, so the validation rows prefer no noise."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(1500, 6)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int) + 2 * (X[:, 1] > 0)
    vae = DisentangledVAE(hidden_dims=(32,), max_epochs=24, batch_size=64, random_state=0).fit(X, y)
    assert vae.input_dropout_ == 0.0, vae.input_dropout_scores_


def test_the_best_validation_epoch_is_kept(digits_all):
    X, y = digits_all
    vae = tiny_vae(**FAST, input_dropout=0.1, lr=5e-2).fit(X, y)
    best_epoch = int(np.argmax(vae.validation_scores_)) + 1
    # Training went on to the end, and the weights are those of the best epoch.
    assert len(vae.history_) == vae.max_epochs_
    stopper = dict(vae.net_.callbacks_)["early_stopping"]
    assert stopper.best_epoch_ == best_epoch
    for name, weights in vae.net_.module_.state_dict().items():
        assert np.array_equal(weights.numpy(), stopper.best_model_weights_[name].numpy())


@pytest.mark.parametrize("early_stopping", ["auto", True])
def test_a_model_chosen_on_validation_rows_saves_and_loads(digits_all, tmp_path, early_stopping):
    X, y = digits_all
    vae = tiny_vae(**FAST, early_stopping=early_stopping, n_iter_no_change=50).fit(X, y)
    vae.save(tmp_path / "model.skvae")
    loaded = DisentangledVAE.load(tmp_path / "model.skvae")
    np.testing.assert_array_equal(loaded.transform(X), vae.transform(X))
    assert loaded.input_dropout_ == vae.input_dropout_ and loaded.early_stopping_
    np.testing.assert_array_equal(loaded.input_dropout_scores_, vae.input_dropout_scores_)
