"""What held-out rows decide: the masking noise of input_dropout="auto", and the epoch early_stopping keeps."""

import numpy as np
import pytest

from skorch.callbacks import Callback

import skvae.estimator
from skvae import DisentangledVAE
from skvae._validation import MIN_LEAD, MIN_VALIDATION_ROWS, SWITCH_Z, check_rows, no_noise_wins
from skvae.estimator import auto_input_dropout
from tiny import tiny_vae

# A fixed noise: these tests are about the rows held out, not the noise check.
FAST = dict(max_epochs=16, batch_size=128, early_stopping="auto", input_dropout=0.1)


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


def _sign_pattern_classes(n_samples=1500):
    """The class is the sign pattern of two of six features: masking either erases it.

    float64, as users' arrays mostly are."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n_samples, 6))
    return X, (X[:, 0] > 0).astype(int) + 2 * (X[:, 1] > 0)


def test_a_rule_far_off_is_overruled(monkeypatch):
    # A rule as wrong as the width rule's 0.2 was on signals whose class is
    # their amplitude (benchmarks.noise_check): noise that erases the class.
    monkeypatch.setattr(skvae.estimator, "auto_input_dropout", lambda n_features: 0.8)
    X, y = _sign_pattern_classes(2500)
    params = dict(hidden_dims=(32,), max_epochs=24, batch_size=64, random_state=0)
    vae = DisentangledVAE(**params).fit(X, y)
    check = vae.input_dropout_check_
    assert check["input_dropout"] == (0.8, 0.0)
    assert check["z"] > SWITCH_Z and check["validation_accuracy"][1] - check["validation_accuracy"][0] > MIN_LEAD
    assert vae.input_dropout_ == vae.setup_.input_dropout == vae.net_.module_.input_dropout == 0.0
    # The final fit trains on every row, for every epoch, as a fit without noise does.
    assert not vae.early_stopping_ and len(vae.history_) == vae.max_epochs_
    np.testing.assert_array_equal(DisentangledVAE(**params, input_dropout=0.0).fit(X, y).transform(X), vae.transform(X))


@pytest.mark.parametrize(
    ("z", "accuracy", "wins"),
    [
        (10.18, (0.158, 0.529), True),  # amplitudes 2-D: the rule's noise erased the class
        (8.66, (0.174, 0.470), True),  # amplitudes 8-D
        (4.47, (0.746, 0.808), False),  # 14x14 MNIST 2-D, conv: noise won by 2 points at the end
        (3.04, (0.688, 0.755), False),  # glyphs16 8-D seed 1: noise won by 2.2 points
        (2.90, (0.20, 0.60), False),  # far ahead, on too few disputed rows
    ],
)
def test_no_noise_must_win_the_pilots_by_far_and_significantly(z, accuracy, wins):
    # Pilots measured by benchmarks.noise_check and benchmarks.architecture.
    assert no_noise_wins(z, np.array(accuracy)) is wins


def test_the_rule_stays_where_no_noise_is_not_significantly_better(digits_all):
    X, y = digits_all
    vae = tiny_vae(max_epochs=16, batch_size=128).fit(X, y)
    check = vae.input_dropout_check_
    accuracy = check["validation_accuracy"]
    assert accuracy.shape == (2,) and ((0 < accuracy) & (accuracy <= 1)).all()
    # On digits the pilots do not tell the noises apart: the rule stays, and
    # the model is the one a fit with the rule's noise fixed trains.
    assert check["z"] <= SWITCH_Z and vae.input_dropout_ == check["input_dropout"][0] == 0.2
    fixed = tiny_vae(max_epochs=16, batch_size=128, input_dropout=0.2).fit(X, y)
    np.testing.assert_array_equal(fixed.transform(X), vae.transform(X))
    np.testing.assert_array_equal(fixed.predict_proba(X), vae.predict_proba(X))


def test_pilots_hold_out_rows_they_never_train_on():
    y = np.repeat(np.arange(4), 300)
    pilot, held_out = check_rows(y, 0.1, seed=0)
    assert len(held_out) == 120 and len(pilot) == 540 and not set(pilot) & set(held_out)
    assert (np.bincount(y[held_out]) == 30).all() and (np.bincount(y[pilot]) == 135).all()


@pytest.mark.parametrize(
    "case",
    ["fixed noise", "too few rows", "no labels", "semi-supervised", "partial_fit", "on disk"],
)
def test_noise_is_not_checked(case, digits_all, digits, tmp_path):
    X, y = digits_all
    vae = tiny_vae(max_epochs=4)
    if case == "fixed noise":
        vae.set_params(input_dropout=0.25).fit(X, y)
    elif case == "too few rows":
        vae.fit(*digits)
    elif case == "no labels":
        vae.fit(X)
    elif case == "semi-supervised":
        vae.set_params(unlabeled_label=-1).fit(X, np.where(np.arange(len(y)) % 2 == 0, y, -1))
    elif case == "partial_fit":
        vae.partial_fit(X, y, classes=np.unique(y))
    else:
        stored = np.lib.format.open_memmap(tmp_path / "X.npy", mode="w+", dtype=np.float32, shape=X.shape)
        stored[:] = X
        vae.fit(stored, y)
    assert not hasattr(vae, "input_dropout_check_")
    assert vae.input_dropout_ == (0.25 if case == "fixed noise" else auto_input_dropout(X.shape[1]))


def test_a_refit_without_a_check_drops_the_last_check(digits_all):
    X, y = digits_all
    vae = tiny_vae(max_epochs=4).fit(X, y)
    assert hasattr(vae, "input_dropout_check_")
    vae.set_params(input_dropout=0.1).fit(X, y)
    assert not hasattr(vae, "input_dropout_check_")


def test_early_stopping_watches_the_head_and_keeps_its_best_epoch(digits_all):
    X, y = digits_all
    vae = tiny_vae(**{**FAST, "max_epochs": 60, "early_stopping": True}, n_iter_no_change=3)
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
    params = {**FAST, "early_stopping": early_stopping, "input_dropout": "auto"}
    vae = tiny_vae(**params, n_iter_no_change=50).fit(X, y)
    vae.save(tmp_path / "model.skvae")
    loaded = DisentangledVAE.load(tmp_path / "model.skvae")
    np.testing.assert_array_equal(loaded.transform(X), vae.transform(X))
    assert loaded.input_dropout_ == vae.input_dropout_ and loaded.early_stopping_
    assert loaded.input_dropout_check_["z"] == vae.input_dropout_check_["z"]
    assert loaded.input_dropout_check_["input_dropout"] == vae.input_dropout_check_["input_dropout"]
    np.testing.assert_array_equal(
        loaded.input_dropout_check_["validation_accuracy"], vae.input_dropout_check_["validation_accuracy"]
    )


class _CtrlCOnFirstBatch(Callback):
    """Ctrl-C in the first training batch of whichever net runs it first."""

    def on_batch_end(self, net, training=False, **kwargs):
        if training:
            raise KeyboardInterrupt


def test_ctrl_c_in_a_pilot_stops_the_fit_with_the_rule_and_untrained_weights(digits_all):
    X, y = digits_all
    with pytest.warns(UserWarning, match="interrupted.*initial weights"):
        vae = tiny_vae(max_epochs=4, callbacks=[_CtrlCOnFirstBatch()]).fit(X, y)
    assert vae.input_dropout_check_ is None and vae.input_dropout_ == 0.2
    assert vae.n_iter_ == 0
    trained = tiny_vae(max_epochs=4, input_dropout=0.2).fit(X, y)
    assert not np.array_equal(trained.transform(X), vae.transform(X))
