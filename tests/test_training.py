"""Training that stops and resumes: warm start, partial_fit, Ctrl-C,
checkpoints, early stopping, divergence, and the inputs fit accepts."""

import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch
from skorch.callbacks import Callback, Checkpoint, EarlyStopping, LoadInitState
from sklearn.exceptions import NotFittedError
from skorch.dataset import ValidSplit

from skvae import DivergenceError, LinearDecay

from tiny import tiny_vae


def small_vae(**params):
    return tiny_vae(**{"max_epochs": 6, **params})


@pytest.fixture(scope="module")
def digits(digits):
    """The shared digits (tests/conftest.py) as float64, a writable copy."""
    X, y = digits
    return X.astype(np.float64), y.copy()


@pytest.fixture(scope="module")
def full_fit(digits):
    """One uninterrupted fit of 6 epochs: what every resumed training must match."""
    return small_vae().fit(*digits)


class RaiseAt(Callback):
    """Raise ``exception`` once, in ``on_batch_end`` of batch ``batch`` of ``epoch``."""

    def __init__(self, epoch, exception=KeyboardInterrupt, batch=1):
        self.epoch = epoch
        self.exception = exception
        self.batch = batch
        self.raised = False

    def on_batch_end(self, net, training=False, **kwargs):
        at_batch = len(net.history) == self.epoch and len(net.history[-1]["batches"]) >= self.batch
        if training and not self.raised and at_batch:
            self.raised = True
            raise self.exception


class PoisonWeightsAt(Callback):
    """Set a weight to NaN once, before batch ``batch`` of ``epoch``, or
    after it with ``after=True``."""

    def __init__(self, epoch, batch=1, after=False):
        self.epoch = epoch
        self.batch = batch
        self.after = after
        self.done = False

    def _poison(self, net, training, after):
        at_batch = len(net.history) == self.epoch and len(net.history[-1]["batches"]) == self.batch
        if training and after == self.after and not self.done and at_batch:
            self.done = True
            with torch.no_grad():
                next(net.module_.parameters()).view(-1)[0] = float("nan")

    def on_batch_begin(self, net, training=False, **kwargs):
        self._poison(net, training, False)

    def on_batch_end(self, net, training=False, **kwargs):
        self._poison(net, training, True)


def assert_same_training(a, b):
    """Same schedule values, losses and weights, bit for bit."""
    for key in ("classification_weight", "train_loss", "train_kl"):
        np.testing.assert_array_equal(a.history_[:, key], b.history_[:, key], err_msg=key)
    np.testing.assert_array_equal(
        a.history_[:, "batches", :, "classification_weight"],
        b.history_[:, "batches", :, "classification_weight"],
    )
    assert a.net_.n_steps_ == b.net_.n_steps_ and a.net_.total_steps_ == b.net_.total_steps_
    assert_same_weights(a, b)


def assert_same_weights(a, b):
    for (name, p), q in zip(a.net_.module_.state_dict().items(), b.net_.module_.state_dict().values()):
        assert torch.equal(p, q), name


def model_weights(estimator):
    return {name: p.clone() for name, p in estimator.net_.module_.state_dict().items()}


# ------------------------------------------------------ interrupt, resume


def test_ctrl_c_keeps_last_finished_epoch_and_warm_start_resumes(digits, full_fit):
    X, y = digits
    vae = small_vae(warm_start=True, callbacks=[RaiseAt(epoch=3)])
    with pytest.warns(UserWarning, match="interrupted.*weights of epoch 2, the last finished"):
        vae.fit(X, y)
    # Usable, with every fitted attribute, at the end of epoch 2.
    assert len(vae.history_) == 2 and vae.net_.n_steps_ == 2 * 5
    assert vae.class_centroids_.shape == (10, 2)
    assert np.isfinite(vae.transform(X)).all()
    net = vae.net_
    vae.fit(X, y)  # trains the 4 missing epochs, on the same net
    assert vae.net_ is net
    assert len(vae.history_) == 6
    assert_same_training(vae, full_fit)
    np.testing.assert_array_equal(vae.transform(X), full_fit.transform(X))
    np.testing.assert_array_equal(vae.class_centroids_, full_fit.class_centroids_)


def test_ctrl_c_in_first_epoch_keeps_initial_weights(digits):
    X, y = digits
    untrained = small_vae(callbacks=[RaiseAt(epoch=1, batch=1)])
    with pytest.warns(UserWarning, match="initial weights, as no epoch finished"):
        untrained.fit(X, y)
    assert len(untrained.history_) == 0 and untrained.net_.n_steps_ == 0
    assert untrained.predict(X).shape == (len(X),)
    interrupted_at_start = small_vae(callbacks=[RaiseAt(epoch=1, batch=3)])
    with pytest.warns(UserWarning, match="initial weights"):
        interrupted_at_start.fit(X, y)
    assert_same_weights(untrained, interrupted_at_start)


def test_two_fits_follow_the_schedule_of_one(digits, full_fit):
    """Ways of splitting 6 epochs: interrupted + warm fit (above), 6 partial
    fits, 3 partial fits + a warm fit; all use the schedule values of one
    fit, and (same random state) give the same model."""
    X, y = digits
    partial = small_vae()
    for _ in range(6):
        partial.partial_fit(X, y, classes=np.arange(10))
    assert_same_training(partial, full_fit)

    mixed = small_vae(warm_start=True)
    for _ in range(3):
        mixed.partial_fit(X, y, classes=np.arange(10))
    mixed.fit(X, y)
    assert_same_training(mixed, full_fit)


def test_horizon_is_fixed_when_the_network_is_built(digits):
    X, y = digits
    schedule = LinearDecay(start=10.0, end=1.0)
    vae = small_vae(max_epochs=4, classification_weight=schedule, warm_start=True).fit(X, y)
    total = vae.net_.total_steps_
    assert total == 4 * 5
    vae.set_params(max_epochs=6).fit(X, y)
    assert len(vae.history_) == 6 and vae.net_.total_steps_ == total
    # Epochs past the horizon use the schedule's final weight.
    np.testing.assert_array_equal(vae.history_[4:, "classification_weight"], [1.0, 1.0])
    assert vae.history_[3, "classification_weight"] > 1.0


def test_warm_start_on_finished_training_warns_and_trains_nothing(digits):
    X, y = digits
    vae = small_vae(max_epochs=2, warm_start=True).fit(X, y)
    before = model_weights(vae)
    with pytest.warns(UserWarning, match="trained 2 epochs, max_epochs=2, so fit did not train"):
        vae.fit(X, y)
    assert len(vae.history_) == 2
    for name, p in vae.net_.module_.state_dict().items():
        assert torch.equal(p, before[name])


def test_warm_start_false_builds_a_new_network(digits):
    X, y = digits
    vae = small_vae(max_epochs=1).fit(X, y)
    net = vae.net_
    vae.fit(X, y)
    assert vae.net_ is not net and len(vae.history_) == 1


def test_warm_start_applies_lr_and_max_epochs(digits):
    X, y = digits
    vae = small_vae(max_epochs=1, warm_start=True).fit(X, y)
    vae.set_params(lr=1e-3, max_epochs=2).fit(X, y)
    assert [group["lr"] for group in vae.net_.optimizer_.param_groups] == [1e-3]
    assert len(vae.history_) == 2


def test_warm_start_refuses_other_features_or_classes(digits):
    X, y = digits
    vae = small_vae(max_epochs=1, warm_start=True).fit(X, y)
    with pytest.raises(ValueError, match="X has 63 features.*expecting 64.*warm_start=False"):
        vae.fit(X[:, :-1], y)
    with pytest.raises(ValueError, match=r"y has the classes \[0, 1\], but this model was fitted with \[0, 1, .*\]"):
        vae.fit(X[y < 2], y[y < 2])
    with pytest.raises(ValueError, match="warm_start=True needs y with its classes"):
        vae.fit(X)
    with pytest.raises(ValueError, match=r"y has the classes \['a', 'b'\], but this model was fitted with \[0, .*\]"):
        vae.fit(X, np.where(y < 5, "a", "b"))
    # The refused fits left the model as it was.
    np.testing.assert_array_equal(vae.classes_, np.arange(10))
    assert vae.n_features_in_ == 64 and len(vae.history_) == 1


def test_warm_start_refuses_a_changed_network(digits):
    X, y = digits
    vae = small_vae(max_epochs=1, warm_start=True).fit(X, y)
    vae.set_params(hidden_dims=(8,), beta=2.0)
    with pytest.raises(ValueError, match=r"hidden_dims \(\(16,\) -> \(8,\)\), beta \(1.0 -> 2.0\) changed"):
        vae.fit(X, y)
    vae.set_params(hidden_dims=[16], beta=1.0, max_epochs=2).fit(X, y)
    assert len(vae.history_) == 2


def test_unlabelled_warm_start(digits):
    X, _ = digits
    vae = small_vae(max_epochs=2, warm_start=True, callbacks=[RaiseAt(epoch=2)])
    with pytest.warns(UserWarning, match="epoch 1"):
        vae.fit(X)
    vae.fit(X)
    assert len(vae.history_) == 2 and not hasattr(vae, "classes_")
    with pytest.raises(ValueError, match=r"fitted without labels \(a plain VAE\)"):
        vae.fit(X, np.arange(len(X)) % 2)


# ------------------------------------------------------------ partial_fit


def test_partial_fit_needs_classes_on_first_call(digits):
    X, y = digits
    with pytest.raises(ValueError, match="classes must be passed on the first call"):
        small_vae().partial_fit(X, y)
    with pytest.raises(ValueError, match="at least 2 classes"):
        small_vae().partial_fit(X[y == 0], y[y == 0], classes=[0])
    with pytest.raises(ValueError, match="classes was given but y is None"):
        small_vae().partial_fit(X, classes=[0, 1])


def test_partial_fit_accepts_chunks_with_some_classes(digits):
    X, y = digits
    vae = small_vae().partial_fit(X, y, classes=np.arange(10))
    centroids = vae.class_centroids_.copy()
    vae.partial_fit(X[y < 3], y[y < 3])  # misses classes 3-9: statistics kept
    np.testing.assert_array_equal(vae.class_centroids_, centroids)
    vae.partial_fit(X[y == 4], y[y == 4])  # one class only is fine too
    vae.partial_fit(X, y)  # every class: statistics refitted
    assert not np.array_equal(vae.class_centroids_, centroids)
    assert len(vae.history_) == 4 and vae.net_.total_steps_ == 6 * 5


def test_partial_fit_refuses_inconsistent_calls(digits):
    X, y = digits
    vae = small_vae().partial_fit(X, y, classes=np.arange(10))
    with pytest.raises(ValueError, match=r"Unknown class labels 10, 11 in y.*classes_"):
        vae.partial_fit(X[:2], [10, 11])
    with pytest.raises(ValueError, match="classes cannot change"):
        vae.partial_fit(X, y, classes=np.arange(11))
    with pytest.raises(ValueError, match="X has 63 features, but DisentangledVAE is expecting 64"):
        vae.partial_fit(X[:, :-1], y)
    with pytest.raises(ValueError, match="needs y in every call"):
        vae.partial_fit(X)
    with pytest.raises(ValueError, match="cannot hold out validation data"):
        small_vae(early_stopping=True).partial_fit(X, y, classes=np.arange(10))
    plain = small_vae().partial_fit(X)
    with pytest.raises(ValueError, match="fitted without labels"):
        plain.partial_fit(X, y)
    with pytest.raises(ValueError, match="classes was given but y is None"):
        plain.partial_fit(X, classes=[0, 1])


def test_partial_fit_with_unlabeled_samples(digits):
    X, y = digits
    y = np.where(np.arange(len(y)) % 3 == 0, -1, y)
    vae = small_vae(unlabeled_label=-1).partial_fit(X, y, classes=np.arange(10))
    np.testing.assert_array_equal(vae.classes_, np.arange(10))
    with pytest.raises(ValueError, match="contains unlabeled_label=-1"):
        small_vae(unlabeled_label=-1).partial_fit(X, y, classes=np.arange(-1, 10))


def test_partial_fit_continues_a_fit(digits):
    X, y = digits
    vae = small_vae(max_epochs=2).fit(X, y)
    vae.partial_fit(X, y)
    assert len(vae.history_) == 3


# ------------------------------------------------------------ checkpoints


def every_2_epochs(net):
    return len(net.history) % 2 == 0


def test_checkpoint_every_n_epochs_and_resume(digits, full_fit, tmp_path):
    """A fit crashes in epoch 5 after checkpoints at epochs 2 and 4; a new
    estimator with LoadInitState resumes from epoch 4 and trains 2 epochs,
    the schedule continuing where the checkpoint left it."""
    X, y = digits
    checkpoint = Checkpoint(monitor=every_2_epochs, dirname=tmp_path)
    crashed = small_vae(callbacks=[checkpoint, RaiseAt(epoch=5, exception=RuntimeError)])
    with pytest.raises(RuntimeError):
        crashed.fit(X, y)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "criterion.pt", "history.json", "optimizer.pt", "params.pt"
    ]

    checkpoint = Checkpoint(monitor=every_2_epochs, dirname=tmp_path)
    resumed = small_vae(callbacks=[checkpoint, LoadInitState(checkpoint)]).fit(X, y)
    assert len(resumed.history_) == 6 and resumed.net_.n_steps_ == full_fit.net_.n_steps_
    np.testing.assert_array_equal(
        resumed.history_[:, "classification_weight"], full_fit.history_[:, "classification_weight"]
    )
    # The first 4 epochs are those of the checkpoint, i.e. of the crashed fit.
    np.testing.assert_array_equal(resumed.history_[:4, "train_loss"], full_fit.history_[:4, "train_loss"])


def test_load_checkpoint_into_fitted_model(digits, tmp_path):
    X, y = digits
    checkpoint = Checkpoint(monitor=every_2_epochs, dirname=tmp_path)
    small_vae(max_epochs=4, callbacks=[checkpoint]).fit(X, y)
    vae = small_vae(max_epochs=6, warm_start=True).fit(X, y)
    vae.net_.load_params(checkpoint=checkpoint)
    assert len(vae.net_.history) == 4 and vae.net_.n_steps_ == 4 * 5
    vae.fit(X, y)
    assert len(vae.history_) == 6 and vae.net_.n_steps_ == 6 * 5


def test_checkpoint_pickle_of_a_training_net_holds_no_epoch_copy(digits, tmp_path):
    import pickle

    X, y = digits
    checkpoint = Checkpoint(monitor=None, dirname=tmp_path, f_pickle="net.pkl")
    small_vae(max_epochs=1, callbacks=[checkpoint]).fit(X, y)
    with open(tmp_path / "net.pkl", "rb") as file:
        net = pickle.load(file)
    assert not hasattr(net, "_epoch_state") and len(net.history) == 1


def test_a_net_pickled_in_training_holds_no_state_of_its_training_call(digits, tmp_path):
    import pickle

    X, y = digits
    checkpoint = Checkpoint(monitor=None, dirname=tmp_path, f_pickle="net.pkl")
    vae = small_vae(max_epochs=2, callbacks=[checkpoint]).fit(X, y)
    # Training over, the copy of its last epoch is let go.
    assert vae.net_.training_run_.last_finished_epoch_ is None
    with open(tmp_path / "net.pkl", "rb") as file:
        net = pickle.load(file)
    run = net.training_run_
    assert run.last_finished_epoch_ is None and run.shuffle_generator_ is None and run.noise_generator_ is None
    # The random state that training continues from is the net's own.
    assert torch.equal(net.rng_state_["cpu"], vae.net_.rng_state_["cpu"]) and len(net.history) == 2


# --------------------------------------------------------- early stopping


def test_early_stopping_restores_best_epoch(digits):
    X, y = digits
    vae = small_vae(early_stopping=True, n_iter_no_change=2, max_epochs=40, lr=5e-2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # early stopping is no interruption
        vae.fit(X, y)
    n_epochs = len(vae.history_)
    assert n_epochs < 40
    split = vae.net_.train_split
    assert isinstance(split, ValidSplit) and split.stratified and split.cv == 0.1
    # Total steps count the 270 training samples: 5 batches per epoch.
    assert vae.net_.total_steps_ == 40 * 5 and vae.net_.n_steps_ == n_epochs * 5
    assert np.isfinite(vae.history_[:, "valid_loss"]).all()
    early_stopping = dict(vae.net_.callbacks_)["early_stopping"]
    assert isinstance(early_stopping, EarlyStopping) and early_stopping.load_best
    assert early_stopping.best_epoch_ == n_epochs - 2
    for name, p in vae.net_.module_.state_dict().items():
        assert torch.equal(p, early_stopping.best_model_weights_[name])


def test_early_stopping_validation_is_stratified(digits):
    X, y = digits
    vae = small_vae(early_stopping=True, validation_fraction=0.2, max_epochs=1).fit(X, y)
    _, valid = vae.net_.get_split_datasets(X, np.searchsorted(vae.classes_, y))
    counts = np.bincount(valid.dataset.y[valid.indices].numpy(), minlength=10)
    assert counts.sum() == 60 and counts.min() >= 4


# ------------------------------------------------------------- divergence


def test_huge_learning_rate_diverges_and_hands_on_the_last_finite_model(digits):
    X, y = digits
    vae = small_vae(optimizer="sgd", lr=1e6)
    with pytest.raises(DivergenceError) as info:
        vae.fit(X, y)
    message = str(info.value)
    assert isinstance(info.value, ValueError)
    assert "diverged at epoch 1" in message and "lr=1000000.0" in message
    assert "unscaled inputs" in message and "loss became" in message
    assert "left as it was before this call" in message
    assert "last_finite_estimator is the model with its initial weights, as no epoch finished" in message
    # Like every failed fit, this one leaves the estimator unfitted ...
    assert not any(name.endswith("_") for name in vars(vae))
    with pytest.raises(NotFittedError):
        vae.transform(X)
    # ... and the error carries the model of the last finite state.
    last = info.value.last_finite_estimator
    assert last is not vae and len(last.history_) == 0
    for p in last.net_.module_.parameters():
        assert torch.isfinite(p).all()
    assert np.isfinite(last.transform(X)).all() and np.isfinite(last.class_centroids_).all()
    assert last.net_.n_steps_ == 0


def test_nan_in_epoch_3_hands_on_the_weights_of_epoch_2(digits):
    X, y = digits
    interrupted = small_vae(callbacks=[RaiseAt(epoch=3)])
    with pytest.warns(UserWarning):
        interrupted.fit(X, y)
    diverged = small_vae(callbacks=[PoisonWeightsAt(epoch=3, batch=2)])
    with pytest.raises(DivergenceError, match=r"epoch 3, optimizer step 11: the .* loss became nan.*weights of epoch 2, the last finished one") as info:
        diverged.fit(X, y)
    last = info.value.last_finite_estimator
    assert len(last.history_) == 2 and last.history_ is last.net_.history
    assert_same_training(last, interrupted)
    np.testing.assert_array_equal(last.transform(X), interrupted.transform(X))
    np.testing.assert_array_equal(last.class_centroids_, interrupted.class_centroids_)
    # Continue with warm_start once the cause is gone.
    last.set_params(warm_start=True).fit(X, y)
    assert len(last.history_) == 6


def test_nan_weights_after_the_last_step_of_an_epoch(digits):
    X, y = digits
    vae = small_vae(max_epochs=2, callbacks=[PoisonWeightsAt(epoch=2, batch=5, after=True)])
    with pytest.raises(DivergenceError, match="epoch 2: its last optimizer step .* made the weights NaN.*weights of epoch 1") as info:
        vae.fit(X, y)
    last = info.value.last_finite_estimator
    assert len(last.history_) == 1 and np.isfinite(last.transform(X)).all()


def test_other_errors_leave_the_estimator_as_before_the_fit(digits):
    X, y = digits
    vae = small_vae(callbacks=[RaiseAt(epoch=2, exception=RuntimeError("boom"))])
    with pytest.raises(RuntimeError, match="boom"):
        vae.fit(X, y)
    assert not any(name.endswith("_") for name in vars(vae))
    with pytest.raises(NotFittedError):
        vae.transform(X)


# ----------------------------------------------------------------- inputs


def test_bce_refuses_inputs_outside_unit_interval(digits):
    X, y = digits
    for bad in (X * 16, X - 0.5):
        with pytest.raises(ValueError, match=r"reconstruction='bce' needs X in \[0, 1\]"):
            small_vae(reconstruction="bce").fit(bad, y)
        with pytest.raises(ValueError, match=r"needs X in \[0, 1\]"):
            small_vae(reconstruction="bce").partial_fit(bad, y, classes=np.arange(10))


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int64, np.uint8])
def test_input_dtypes(digits, dtype):
    X, y = digits
    X = (X * 16).astype(dtype)
    vae = small_vae(max_epochs=1).fit(X, y)
    Z = vae.transform(X)
    # float32 stays float32 (sklearn's preserves_dtype); anything else gives float64.
    assert Z.dtype == (np.float32 if dtype == np.float32 else np.float64) and np.isfinite(Z).all()
    assert vae.inverse_transform(Z).shape == X.shape
    np.testing.assert_array_equal(vae.transform(X.astype(np.float64)), Z)


def test_dataframe_feature_names(digits):
    X, y = digits
    columns = [f"pixel_{i}" for i in range(64)]
    frame = pd.DataFrame(X, columns=columns)
    vae = small_vae(max_epochs=1).fit(frame, pd.Series(y))
    np.testing.assert_array_equal(vae.feature_names_in_, columns)
    assert vae.transform(frame).shape == (len(X), 2)
    with pytest.warns(UserWarning, match="X does not have valid feature names"):
        vae.transform(X)
    renamed = frame.rename(columns={"pixel_0": "other"})
    with pytest.raises(ValueError, match="feature names should match"):
        vae.transform(renamed)


def test_sparse_input_is_refused(digits):
    X, y = digits
    with pytest.raises(TypeError, match="[Ss]parse"):
        small_vae(max_epochs=1).fit(sp.csr_matrix(X), y)
    vae = small_vae(max_epochs=1).fit(X, y)
    with pytest.raises(TypeError, match="[Ss]parse"):
        vae.transform(sp.csr_matrix(X))
    with pytest.raises(TypeError, match="[Ss]parse"):
        vae.predict(sp.csr_matrix(X))
