"""What the validation split decides (early_stopping="auto"): the masking noise and the epoch kept."""

import numpy as np
import pytest

from skvae import DisentangledVAE
from skvae._validation import INPUT_DROPOUT_CANDIDATES, MIN_VALIDATION_ROWS, selection_epochs
from tiny import tiny_vae

FAST = dict(max_epochs=16, batch_size=128, early_stopping="auto")


def test_auto_holds_rows_out_of_labelled_data_large_enough(digits_all, digits):
    X, y = digits_all
    assert len(X) >= MIN_VALIDATION_ROWS > len(digits[0])
    assert tiny_vae(**FAST).fit(X, y).early_stopping_
    assert not tiny_vae(**FAST).fit(*digits).early_stopping_  # too few rows to spare a tenth
    assert not tiny_vae(**FAST).fit(X).early_stopping_  # no labels: nothing for the head to choose
    semi = np.where(np.arange(len(y)) % 2 == 0, y, -1)
    assert not tiny_vae(**FAST, unlabeled_label=-1).fit(X, semi).early_stopping_
    assert not tiny_vae(**{**FAST, "early_stopping": False}).fit(X, y).early_stopping_  # the default
    assert not DisentangledVAE().early_stopping
    assert tiny_vae(**{**FAST, "early_stopping": True}, n_iter_no_change=100).fit(*digits).early_stopping_


def test_noise_is_chosen_on_validation_accuracy_after_half_of_the_epochs(digits_all):
    X, y = digits_all
    vae = tiny_vae(**FAST).fit(X, y)
    scores = vae.input_dropout_scores_
    assert scores.shape == (len(INPUT_DROPOUT_CANDIDATES),) and np.isfinite(scores).all()
    winner = INPUT_DROPOUT_CANDIDATES.index(vae.input_dropout_)
    assert scores[winner] == scores.max() and scores[:winner].max(initial=0) < scores.max()  # ties: less noise
    assert vae.setup_.input_dropout == vae.net_.module_.input_dropout == vae.input_dropout_
    # The winner went on from where it was chosen: one history of max_epochs epochs.
    epochs, window = selection_epochs(vae.max_epochs_)
    assert len(vae.history_) == vae.max_epochs_ == len(vae.validation_scores_)
    assert scores[winner] == pytest.approx(np.mean(vae.validation_scores_[epochs - window : epochs]))
    # And it is the model a fit with that noise trains (same weights, batches and noise draws).
    fixed = tiny_vae(**FAST, input_dropout=vae.input_dropout_).fit(X, y)
    np.testing.assert_allclose(fixed.transform(X), vae.transform(X), rtol=0, atol=1e-5)


def test_a_fixed_noise_is_not_chosen(digits_all):
    X, y = digits_all
    vae = tiny_vae(**FAST, input_dropout=0.25).fit(X, y)
    assert vae.input_dropout_ == 0.25 and not hasattr(vae, "input_dropout_scores_")
    assert vae.early_stopping_ and len(vae.validation_scores_) == vae.max_epochs_
    assert "early_stopping" not in dict(vae.net_.callbacks_)  # "auto" trains every epoch, keeps the last


def test_noise_that_destroys_the_class_gets_none():
    """The class is the sign pattern of two of six features: masking either
    erases it, so the validation rows prefer no noise."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(1500, 6)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int) + 2 * (X[:, 1] > 0)
    vae = DisentangledVAE(hidden_dims=(32,), max_epochs=24, batch_size=64, early_stopping="auto", random_state=0)
    vae.fit(X, y)
    assert vae.input_dropout_ == 0.0, vae.input_dropout_scores_


def test_early_stopping_watches_the_head_and_keeps_its_best_epoch(digits_all):
    X, y = digits_all
    vae = tiny_vae(**{**FAST, "max_epochs": 60, "early_stopping": True}, input_dropout=0.1, n_iter_no_change=3)
    vae.fit(X, y)
    stopper = dict(vae.net_.callbacks_)["early_stopping"]
    assert stopper.monitor == "valid_accuracy"
    best_epoch = int(np.argmax(vae.validation_scores_)) + 1
    assert len(vae.history_) == best_epoch + 3 < 60  # stopped 3 epochs without a better head
    assert stopper.best_epoch_ == best_epoch
    for name, weights in vae.net_.module_.state_dict().items():
        assert np.array_equal(weights.numpy(), stopper.best_model_weights_[name].numpy())


@pytest.mark.parametrize("early_stopping", ["auto", True])
def test_a_model_chosen_on_validation_rows_saves_and_loads(digits_all, tmp_path, early_stopping):
    X, y = digits_all
    vae = tiny_vae(**{**FAST, "early_stopping": early_stopping}, n_iter_no_change=50).fit(X, y)
    vae.save(tmp_path / "model.skvae")
    loaded = DisentangledVAE.load(tmp_path / "model.skvae")
    np.testing.assert_array_equal(loaded.transform(X), vae.transform(X))
    assert loaded.input_dropout_ == vae.input_dropout_ and loaded.early_stopping_
    np.testing.assert_array_equal(loaded.input_dropout_scores_, vae.input_dropout_scores_)
