"""Property-based tests: every input either trains a model that keeps the
API's promises, or is refused with a ValueError that names what is wrong.

Examples per property (``max_examples``), chosen so that the file runs in
well under a minute on two shared cores: valid data 40, any data 60,
training sequences 25, damaged files 60, interrupted saves 15.
"""

import contextlib
import os
import re
import signal
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from skvae import DisentangledVAE, DivergenceError, LinearDecay, SigmoidDecay
from skvae.persistence import ModelFileError


def fuzz(max_examples):
    # derandomize: the same examples on every run, as a test suite needs.
    return settings(
        max_examples=max_examples,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow],
    )

LABEL_NAMES = np.array(["cat", "dog", "eel", "fox"])


# Only a guard against a hang, never a speed check: an example takes well
# under a second alone, and a limit near that would fail on a busy machine
# (the first example in a process also pays for importing torch._dynamo).
HANG_LIMIT_S = 600


@contextlib.contextmanager
def time_limit(seconds=HANG_LIMIT_S):
    """Fail an example that runs longer than ``seconds`` (a hang)."""

    def hung(signum, frame):
        raise TimeoutError(f"an example ran longer than {seconds} s")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def as_dtype(X, dtype):
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        # Clip to a range that converts exactly (int64's max does not).
        X = np.clip(np.round(X), max(info.min, -(2.0**62)), min(info.max, 2.0**62))
    return X.astype(dtype)


@st.composite
def params(draw, reconstruction=None):
    return dict(
        n_components=draw(st.integers(1, 4)),
        architecture="mlp",
        hidden_dims=draw(st.sampled_from([(), (4,), (8, 4)])),
        classifier_hidden=draw(st.sampled_from([(), (4,)])),
        kl=draw(st.sampled_from(["abs", "standard"])),
        reconstruction=reconstruction or draw(st.sampled_from(["mse", "bce"])),
        beta=draw(st.sampled_from([0.0, 1.0, 4.0])),
        classification_weight=draw(st.sampled_from([SigmoidDecay(), LinearDecay(), 0.0, 10.0])),
        warmup_steps=draw(st.integers(0, 3)),
        max_epochs=draw(st.integers(1, 3)),
        batch_size=draw(st.integers(1, 64)),
        random_state=draw(st.integers(0, 1000)),
    )


@st.composite
def labels(draw, n_samples, rng, valid):
    """None, or int or string labels; valid ones hold every class at least once."""
    kind = draw(st.sampled_from(["none", "int", "str"]))
    if kind == "none" or (valid and n_samples < 2):
        return None
    n_classes = draw(st.integers(2 if valid else 1, min(4, n_samples) if valid else 4))
    y = rng.randint(n_classes, size=n_samples)
    if valid:
        y[:n_classes] = np.arange(n_classes)
    return LABEL_NAMES[y] if kind == "str" else y


@st.composite
def valid_problems(draw):
    """Data and parameters that must train."""
    rng = np.random.RandomState(draw(st.integers(0, 2**32 - 1)))
    n_samples, n_features = draw(st.integers(1, 40)), draw(st.integers(1, 5))
    dtype = draw(st.sampled_from([np.float64, np.float32, np.int64, np.uint8]))
    reconstruction = draw(st.sampled_from(["mse", "bce"]))
    if reconstruction == "bce":
        X = rng.uniform(size=(n_samples, n_features))
        if np.issubdtype(dtype, np.integer):
            X = (X > 0.5).astype(np.float64)
    else:
        X = rng.normal(size=(n_samples, n_features)) * (3 if np.issubdtype(dtype, np.integer) else 1)
        if dtype is np.uint8:
            X = np.abs(X)
    X = as_dtype(X, dtype)
    return X, draw(labels(n_samples, rng, valid=True)), draw(params(reconstruction))


@st.composite
def any_problems(draw):
    """Data and parameters that may be refused: extreme or constant values,
    a single class, BCE on data outside [0, 1]."""
    rng = np.random.RandomState(draw(st.integers(0, 2**32 - 1)))
    n_samples, n_features = draw(st.integers(1, 40)), draw(st.integers(1, 5))
    scale = draw(st.sampled_from([1.0, 1e-30, 1e-3, 1e6, 1e15, 1e30]))
    X = rng.normal(size=(n_samples, n_features)) * scale
    if draw(st.booleans()):
        X[:, draw(st.integers(0, n_features - 1))] = draw(st.sampled_from([0.0, 1.0, -1e30, 1e30]))
    if draw(st.booleans()):
        X[rng.randint(n_samples), rng.randint(n_features)] = draw(st.sampled_from([1e30, -1e30, 1e-300]))
    X = as_dtype(X, draw(st.sampled_from([np.float64, np.float32, np.int64, np.uint8])))
    return X, draw(labels(n_samples, rng, valid=False)), draw(params())


def expected_refusals(X, y, params):
    """What is wrong with a problem from ``any_problems``, as the patterns its
    refusal must match; empty when it must train (or diverge)."""
    refusals = []
    if y is not None and len(np.unique(y)) < 2:
        # The message names the one class.
        refusals.append(rf"at least 2 classes.*{re.escape(str(np.unique(y)[0]))}")
    if params["reconstruction"] == "bce" and (X.min() < 0 or X.max() > 1):
        refusals.append(r"reconstruction='bce' needs X in \[0, 1\].*MinMaxScaler")
    return refusals


def check_invariants(estimator, X, y):
    """What a fitted model promises."""
    n_samples, n_features = X.shape
    assert estimator.n_features_in_ == n_features
    assert len(estimator.history_) == estimator.max_epochs
    Z = estimator.transform(X)
    expected_dtype = np.float32 if np.asarray(X).dtype == np.float32 else np.float64
    assert Z.shape == (n_samples, estimator.n_components) and Z.dtype == expected_dtype
    assert np.isfinite(Z).all()
    X_back = estimator.inverse_transform(Z)
    assert X_back.shape == (n_samples, n_features) and np.isfinite(X_back).all()
    if estimator.reconstruction == "bce":
        assert ((X_back >= 0) & (X_back <= 1)).all()
    if y is None:
        assert not hasattr(estimator, "classes_")
        return
    classes = estimator.classes_
    np.testing.assert_array_equal(classes, np.unique(y))  # sorted, unique
    proba = estimator.predict_proba(X)
    assert proba.shape == (n_samples, len(classes)) and (proba >= 0).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_array_equal(estimator.predict(X), classes[proba.argmax(axis=1)])
    assert estimator.class_centroids_.shape == (len(classes), estimator.n_components)


def check_round_trip(estimator, X):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.skvae"
        estimator.save(path)
        loaded = DisentangledVAE.load(path)
        assert os.listdir(folder) == ["model.skvae"]
    np.testing.assert_array_equal(loaded.transform(X), estimator.transform(X))
    if hasattr(estimator, "classes_"):
        np.testing.assert_array_equal(loaded.predict_proba(X), estimator.predict_proba(X))
        np.testing.assert_array_equal(loaded.classes_, estimator.classes_)


@fuzz(40)
@given(valid_problems())
def test_valid_data_trains_keeps_promises_and_round_trips(problem):
    X, y, params = problem
    with time_limit():
        estimator = DisentangledVAE(**params).fit(X, y)
        check_invariants(estimator, X, y)
        check_round_trip(estimator, X)


@fuzz(60)
@given(any_problems())
def test_any_data_trains_or_is_refused_clearly(problem):
    X, y, params = problem
    refusals = expected_refusals(X, y, params)
    estimator = DisentangledVAE(**params)
    with time_limit():
        if refusals:
            # One ValueError that says what is wrong (either problem, when
            # there are two); any other exception fails the test.
            with pytest.raises(ValueError) as info:
                estimator.fit(X, y)
            assert not isinstance(info.value, DivergenceError), str(info.value)
            assert any(re.search(pattern, str(info.value), re.DOTALL) for pattern in refusals), (refusals, str(info.value))
            event(f"refused: {len(refusals)} problem(s)")
            return
        try:
            estimator.fit(X, y)
        except DivergenceError as exc:
            event("diverged")
            assert "Likely causes" in str(exc)
            # Left unfitted, as any failed fit; the error carries the last
            # finite state, or names the rows the network overflows on.
            assert not hasattr(estimator, "net_")
            last = exc.last_finite_estimator
            if last is None:
                assert re.search(r"outputs for rows? \d.* of X .* are NaN or infinite", str(exc)), str(exc)
                return
            assert "last_finite_estimator is the model with" in str(exc)
            assert all(torch.isfinite(p).all() for p in last.net_.module_.parameters())
            assert last.transform(X).shape == (len(X), last.n_components)
            return
        event("trained")
        check_invariants(estimator, X, y)
        check_round_trip(estimator, X)


OPERATIONS = st.lists(
    st.sampled_from(["partial_fit", "warm_fit", "more_epochs", "interrupted_fit"]), min_size=1, max_size=5
)


@fuzz(25)
@given(
    operations=OPERATIONS,
    n_samples=st.integers(2, 40),
    batch_size=st.integers(1, 16),
    warmup_steps=st.integers(0, 6),
    schedule=st.sampled_from([SigmoidDecay(), LinearDecay(start=3.0, end=1.0)]),
    labelled=st.booleans(),
)
def test_schedule_continues_across_any_training_sequence(
    operations, n_samples, batch_size, warmup_steps, schedule, labelled
):
    """However training is split -- partial_fit, warm fits, more epochs,
    Ctrl-C -- step i of the whole training uses the schedule's weight at
    step i of the horizon fixed when the network was built."""
    from skorch.callbacks import Callback

    class CtrlC(Callback):
        def on_batch_end(self, net, **kwargs):
            if armed[0]:
                armed[0] = False
                raise KeyboardInterrupt

    armed = [False]
    rng = np.random.RandomState(n_samples)
    X = rng.normal(size=(n_samples, 3))
    y = np.arange(n_samples) % 2 if labelled else None
    estimator = DisentangledVAE(
        hidden_dims=(4,), classifier_hidden=(4,), max_epochs=2, batch_size=batch_size,
        warmup_steps=warmup_steps, classification_weight=schedule, warm_start=True,
        callbacks=[CtrlC()], random_state=0,
    )
    with time_limit():
        for operation in operations:
            if not hasattr(estimator, "net_"):
                max_epochs_when_built = estimator.max_epochs
            if operation == "partial_fit":
                estimator.partial_fit(X, y, classes=None if y is None or hasattr(estimator, "net_") else [0, 1])
            elif operation == "more_epochs":
                estimator.set_params(max_epochs=estimator.max_epochs + 1)
            else:
                armed[0] = operation == "interrupted_fit"
                with pytest.warns(UserWarning) if armed[0] or (
                    hasattr(estimator, "net_") and len(estimator.net_.history) >= estimator.max_epochs
                ) else contextlib.nullcontext():
                    estimator.fit(X, y)
                armed[0] = False
    if not hasattr(estimator, "net_"):
        return
    net = estimator.net_
    weights = [w for row in net.history for w in (b["classification_weight"] for b in row["batches"])]
    assert net.n_steps_ == len(weights) == sum(row["train_batch_count"] for row in net.history)
    expected = [schedule(step, net.total_steps_) if step >= warmup_steps else 0.0 for step in range(len(weights))]
    assert weights == expected
    assert net.total_steps_ == max_epochs_when_built * -(-n_samples // batch_size)


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    rng = np.random.RandomState(0)
    X, y = rng.normal(size=(30, 4)), np.arange(30) % 3
    estimator = DisentangledVAE(hidden_dims=(4,), max_epochs=1, random_state=0).fit(X, y)
    path = tmp_path_factory.mktemp("fuzz") / "model.skvae"
    estimator.save(path)
    return estimator, X, path.read_bytes()


@fuzz(60)
@given(data=st.data())
def test_damaged_files_are_refused_or_load_intact(saved_model, data):
    """Truncated, bit-flipped or spliced files raise ModelFileError, or --
    when only bytes that torch ignores changed -- load the same model."""
    estimator, X, content = saved_model
    content = bytearray(content)
    damage = data.draw(st.sampled_from(["truncate", "flip", "splice"]))
    position = data.draw(st.integers(0, len(content) - 1))
    if damage == "truncate":
        content = content[:position]
    elif damage == "flip":
        content[position] ^= 1 << data.draw(st.integers(0, 7))
    else:
        content[position:position] = data.draw(st.binary(min_size=1, max_size=16))
    event(damage)
    with tempfile.TemporaryDirectory() as folder, time_limit():
        path = Path(folder) / "damaged.skvae"
        path.write_bytes(bytes(content))
        try:
            loaded = DisentangledVAE.load(path)
        except ModelFileError:
            event("refused")
            return
    event("loaded intact")
    np.testing.assert_array_equal(loaded.transform(X), estimator.transform(X))


@fuzz(15)
@given(fraction=st.floats(0, 1), failure=st.sampled_from([OSError, KeyboardInterrupt, RuntimeError]))
def test_a_save_that_fails_anywhere_keeps_the_previous_file(saved_model, fraction, failure):
    estimator, _, content = saved_model
    real_save = torch.save

    def fail_midway(obj, file, *args, **kwargs):
        real_save(obj, file)
        file.seek(int(fraction * file.tell()))
        file.truncate()
        raise failure("injected")

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.skvae"
        path.write_bytes(content)
        torch.save = fail_midway
        try:
            with pytest.raises(failure):
                estimator.save(path)
        finally:
            torch.save = real_save
        assert os.listdir(folder) == ["model.skvae"] and path.read_bytes() == content
