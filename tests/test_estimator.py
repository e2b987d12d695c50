"""DisentangledVAE: the scikit-learn surface, bad input, and the idea on real data."""

import pickle
import warnings

import joblib
import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import make_classification
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler
from skorch.callbacks import Callback, EarlyStopping

from skvae import Constant, DisentangledVAE, DivergenceError, SigmoidDecay
from skvae.datasets import mnist_standard_split
from skvae.estimator import auto_input_dropout, auto_max_epochs
from skvae.modules import ConvEncoder


def small_vae(**params):
    defaults = dict(hidden_dims=(64,), max_epochs=8, warmup_steps=10, random_state=0)
    defaults.update(params)
    return DisentangledVAE(**defaults)


@pytest.fixture(scope="module")
def digits(digits_all):
    """The first 600 of the shared digits (tests/conftest.py), read-only."""
    X, y = digits_all
    return X[:600], y[:600]


@pytest.fixture(scope="module")
def fitted(digits):
    X, y = digits
    return small_vae().fit(X, y)


def test_methods_shapes_and_types(fitted, digits):
    X, y = digits
    assert X.dtype == np.float32
    Z = fitted.transform(X)
    assert Z.shape == (len(X), 2) and Z.dtype == np.float32
    assert fitted.inverse_transform(Z).shape == X.shape
    assert fitted.inverse_transform(Z).dtype == np.float32
    # float64 input gives float64 output, with the same values (the net is float32).
    Z64 = fitted.transform(X.astype(np.float64))
    assert Z64.dtype == np.float64
    np.testing.assert_array_equal(Z64, Z)
    # A full block read in place and a padded block give the same rows.
    X_big = np.tile(X, (2, 1))[:1030]
    np.testing.assert_array_equal(fitted.transform(X_big)[:20], fitted.transform(X_big[:20]))
    proba = fitted.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_array_equal(fitted.predict(X), fitted.classes_[proba.argmax(axis=1)])
    assert 0.0 <= fitted.score(X, y) <= 1.0
    np.testing.assert_array_equal(fitted.classes_, np.arange(10))
    assert fitted.n_features_in_ == 64


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_read_only_input_is_read_without_copies_or_warnings(fitted, digits, dtype):
    X, _ = digits
    X_big = np.tile(X, (2, 1))[:1100].astype(dtype)  # one full block and a partial one
    expected = fitted.transform(X_big)
    X_big.setflags(write=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(fitted.transform(X_big), expected)
        fitted.predict_proba(X_big)
    assert not X_big.flags.writeable


def test_history_records_every_term(fitted):
    history = fitted.history_
    assert len(history) == 8
    for key in ("train_loss", "train_reconstruction", "train_kl", "train_classification",
                "train_accuracy", "classification_weight"):
        values = history[:, key]
        assert len(values) == 8 and np.all(np.isfinite(values)), key
    # The default schedule decays from its start toward its floor; an
    # epoch records the mean weight of its steps, weighted by batch size.
    schedule = fitted.classification_weight
    weights = history[:, "classification_weight"]
    assert weights[-1] < max(weights)
    total = fitted.net_.total_steps_
    sizes = history[-1, "batches", :, "train_batch_size"]
    expected = np.average([schedule(step, total) for step in range(total - len(sizes), total)], weights=sizes)
    np.testing.assert_allclose(weights[-1], expected, rtol=1e-6)
    assert schedule.end <= weights[-1] < schedule.start


def test_warmup_trains_reconstruction_only(digits):
    X, y = digits
    vae = small_vae(max_epochs=2, warmup_steps=10_000).fit(X, y)
    assert vae.history_[:, "classification_weight"] == [0.0, 0.0]
    # KL is reported but not weighted: the total equals the reconstruction term.
    np.testing.assert_allclose(vae.history_[:, "train_loss"], vae.history_[:, "train_reconstruction"], rtol=1e-5)


def test_string_labels(digits):
    X, y = digits
    names = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"])
    vae = small_vae(max_epochs=2).fit(X, names[y])
    np.testing.assert_array_equal(vae.classes_, np.sort(names))
    assert set(vae.predict(X)) <= set(names)


def test_unsupervised_fit_is_a_plain_vae(digits):
    X, _ = digits
    vae = small_vae(max_epochs=2).fit(X)
    assert vae.transform(X).shape == (len(X), 2)
    assert not hasattr(vae, "classes_")
    assert "train_accuracy" not in vae.history_[-1]
    assert not hasattr(vae, "predict")
    with pytest.raises(AttributeError, match="fitted without labels .* no predict_proba"):
        vae.predict_proba(X)


def test_refit_without_labels_forgets_classes(digits):
    X, y = digits
    vae = small_vae(max_epochs=1).fit(X, y)
    vae.fit(X)
    assert not hasattr(vae, "classes_")


def test_same_random_state_same_model(digits):
    X, y = digits
    a = small_vae(max_epochs=2).fit(X, y).transform(X)
    b = small_vae(max_epochs=2).fit(X, y).transform(X)
    np.testing.assert_array_equal(a, b)
    c = small_vae(max_epochs=2, random_state=1).fit(X, y).transform(X)
    assert not np.allclose(a, c)


def test_fit_leaves_torch_global_rng_alone(digits):
    import torch

    X, y = digits
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    small_vae(max_epochs=1).fit(X, y)
    np.testing.assert_array_equal(torch.rand(3), expected)


def test_batch_invariant_outputs(fitted, digits):
    X, _ = digits
    full = fitted.transform(X)
    single = np.vstack([fitted.transform(X[i : i + 1]) for i in range(0, len(X), 37)])
    np.testing.assert_array_equal(full[::37], single)
    many = np.vstack([X] * 3)  # more rows than one inference block
    np.testing.assert_array_equal(fitted.transform(many)[len(X) : 2 * len(X)], full)


@pytest.mark.parametrize("dump, load", [(pickle.dumps, pickle.loads), (None, None)])
def test_pickle_and_joblib_round_trip(fitted, digits, tmp_path, dump, load):
    X, _ = digits
    if dump is None:
        joblib.dump(fitted, tmp_path / "vae.joblib")
        restored = joblib.load(tmp_path / "vae.joblib")
    else:
        restored = load(dump(fitted))
    for method in ("transform", "predict_proba", "predict"):
        np.testing.assert_array_equal(getattr(restored, method)(X), getattr(fitted, method)(X))
    Z = fitted.transform(X[:10])
    np.testing.assert_array_equal(restored.inverse_transform(Z), fitted.inverse_transform(Z))


def test_clone_copies_schedule_and_is_unfitted(fitted):
    copy = clone(fitted)
    assert not hasattr(copy, "net_")
    assert copy.classification_weight is not fitted.classification_weight
    assert copy.classification_weight.get_params() == fitted.classification_weight.get_params()


def test_nested_set_params_does_not_leak_into_other_instances():
    a = DisentangledVAE()
    a.set_params(classification_weight__midpoint=0.2)
    assert a.classification_weight.midpoint == 0.2
    assert DisentangledVAE().classification_weight.midpoint == 0.5


@pytest.mark.parametrize("weight", [Constant(1.0), 1.0, lambda step, total: 1.0])
def test_classification_weight_forms(digits, weight):
    X, y = digits
    vae = small_vae(max_epochs=1, warmup_steps=0, classification_weight=weight).fit(X, y)
    np.testing.assert_allclose(vae.history_[:, "classification_weight"], [1.0])


def test_conv_architecture(digits):
    X, y = digits
    vae = small_vae(architecture="conv", image_shape=(8, 8), max_epochs=2).fit(X, y)
    assert vae.image_shape_ == (1, 8, 8)
    assert vae.architecture_ == "conv"
    assert isinstance(vae.net_.module_.encoder, ConvEncoder)
    assert vae.inverse_transform(vae.transform(X[:5])).shape == (5, 64)


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, "mlp"),
        ({"image_shape": (14, 14)}, "conv"),
        ({"image_shape": (2, 14, 16)}, "conv"),
        ({"image_shape": (14, 13)}, "mlp"),  # too small for two stride-2 convolutions to pay
        ({"architecture": "mlp", "image_shape": (14, 14)}, "mlp"),
        ({"architecture": "conv", "image_shape": (7, 28)}, "conv"),
    ],
)
def test_auto_architecture_is_conv_for_images_only(params, expected):
    # image_shape says the features are pixels; a feature count alone does not.
    n_features = int(np.prod(params.get("image_shape", (14, 14))))
    X = np.random.default_rng(0).random((60, n_features))
    y = np.arange(60) % 3
    vae = small_vae(max_epochs=1, **params).fit(X, y)
    assert vae.architecture_ == expected
    assert isinstance(vae.net_.module_.encoder, ConvEncoder) == (expected == "conv")


@pytest.mark.parametrize("shape", [(7, 7), (1, 9, 5), (3, 4, 4)])
def test_conv_encoder_takes_odd_image_sizes(shape):
    n_features = int(np.prod(shape))
    X = np.random.default_rng(0).random((40, n_features))
    y = np.arange(40) % 2
    vae = small_vae(architecture="conv", image_shape=shape, max_epochs=1).fit(X, y)
    assert vae.inverse_transform(vae.transform(X)).shape == X.shape


def test_auto_reconstruction_follows_the_data(digits):
    X, y = digits
    assert small_vae(max_epochs=1).fit(X, y).reconstruction_ == "bce"
    assert small_vae(max_epochs=1).fit(X * 16, y).reconstruction_ == "mse"
    assert small_vae(max_epochs=1).fit(X - 0.5, y).reconstruction_ == "mse"
    assert small_vae(max_epochs=1, reconstruction="mse").fit(X, y).reconstruction_ == "mse"


def test_bce_reconstruction_outputs_probabilities(digits):
    X, y = digits
    vae = small_vae(reconstruction="bce", max_epochs=2).fit(X, y)
    decoded = vae.inverse_transform(vae.transform(X))
    assert decoded.min() >= 0 and decoded.max() <= 1


# --------------------------------------------------------------- in sklearn


def test_in_pipelines(digits):
    X, y = digits
    X_raw = X * 16  # unscaled pixels, as load_digits gives them
    scaled = make_pipeline(MinMaxScaler(), small_vae(reconstruction="bce")).fit(X_raw, y)
    assert scaled.predict(X_raw).shape == (len(X),)
    features = make_pipeline(small_vae(max_epochs=30), LogisticRegression(max_iter=500))
    assert features.fit(X, y).score(X, y) > 0.5  # 10 classes: chance is 0.1


def test_cross_val_score(digits):
    X, y = digits
    # 8 latent dimensions and 20 epochs of 10 steps: each fold's head scores
    # about 0.8 on the other half (0.75 at worst over seeds 0-7); chance is 0.1.
    estimator = small_vae(n_components=8, max_epochs=20, batch_size=32, lr=1e-2, warmup_steps=0)
    scores = cross_val_score(estimator, X, y, cv=2)
    assert scores.shape == (2,)
    assert scores.min() >= 0.6, scores


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_grid_search_over_schedule(digits, n_jobs):
    X, y = digits
    grid = {
        "classification_weight__midpoint": [0.2, 0.8],
        "classification_weight__end": [0.01, 1.0],
    }
    search = GridSearchCV(small_vae(max_epochs=3), grid, cv=2, n_jobs=n_jobs).fit(X, y)
    assert len(search.cv_results_["params"]) == 4
    assert search.best_estimator_.classification_weight.midpoint in (0.2, 0.8)
    schedules = {"classification_weight": [SigmoidDecay(start=10.0), Constant(1.0)]}
    search = GridSearchCV(small_vae(max_epochs=3), schedules, cv=2, n_jobs=n_jobs).fit(X, y)
    assert np.all(np.isfinite(search.cv_results_["mean_test_score"]))


def test_grid_search_parallel_equals_sequential(digits):
    X, y = digits
    grid = {"classification_weight__midpoint": [0.2, 0.8]}
    results = [
        GridSearchCV(small_vae(max_epochs=2), grid, cv=2, n_jobs=n_jobs).fit(X, y).cv_results_
        for n_jobs in (1, 2)
    ]
    np.testing.assert_allclose(results[0]["mean_test_score"], results[1]["mean_test_score"])


# ----------------------------------------------------------------- bad input


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_input_is_refused(digits, bad):
    X, y = digits
    X = X.copy()
    X[3, 5] = bad
    with pytest.raises(ValueError, match="NaN|infinity"):
        small_vae().fit(X, y)


def test_non_finite_input_refused_at_transform(fitted, digits):
    X, _ = digits
    X = X[:5].copy()
    X[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        fitted.transform(X)


def test_one_dimensional_X(digits):
    X, y = digits
    with pytest.raises(ValueError, match="Expected 2D array"):
        small_vae().fit(X[:, 0], y)


def test_wrong_feature_count(fitted, digits):
    X, _ = digits
    for method in ("transform", "predict", "predict_proba"):
        with pytest.raises(ValueError, match="X has 10 features, but DisentangledVAE is expecting 64"):
            getattr(fitted, method)(X[:, :10])


def test_inverse_transform_wrong_latent_width(fitted):
    with pytest.raises(ValueError, match="3 latent dimensions.*n_components=2"):
        fitted.inverse_transform(np.zeros((4, 3)))


def test_single_class(digits):
    X, _ = digits
    with pytest.raises(ValueError, match="at least 2 classes.*fit without y"):
        small_vae().fit(X, np.zeros(len(X)))


def test_continuous_target(digits):
    X, _ = digits
    with pytest.raises(ValueError, match="Unknown label type"):
        small_vae().fit(X, np.linspace(0, 1, len(X)))


def test_label_array_of_wrong_length(digits):
    X, y = digits
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        small_vae().fit(X, y[:-1])


@pytest.mark.parametrize("shape", [(9, 9), (2, 2, 2, 8), (0, 64)])
def test_image_shape_must_match_features(digits, shape):
    X, y = digits
    with pytest.raises(ValueError, match="image_shape"):
        small_vae(architecture="conv", image_shape=shape).fit(X, y)


def test_conv_needs_image_shape(digits):
    X, y = digits
    with pytest.raises(ValueError, match="architecture='conv' needs image_shape"):
        small_vae(architecture="conv").fit(X, y)


def test_bce_needs_inputs_in_unit_interval(digits):
    X, y = digits
    with pytest.raises(ValueError, match="MinMaxScaler"):
        small_vae(reconstruction="bce").fit(X * 16, y)
    # A network built for binary cross-entropy refuses such data later too.
    vae = small_vae(max_epochs=1, warm_start=True).fit(X, y)
    with pytest.raises(ValueError, match="needs X in \\[0, 1\\]"):
        vae.set_params(max_epochs=2).fit(X * 16, y)
    with pytest.raises(ValueError, match="needs X in \\[0, 1\\]"):
        vae.partial_fit(X * 16, y)


@pytest.mark.parametrize(
    "params, match",
    [
        (dict(n_components=0), "n_components"),
        (dict(hidden_dims=(64, -1)), "hidden_dims"),
        (dict(classification_weight="high"), "classification_weight"),
        (dict(kl="l1"), "kl"),
        (dict(device="tpu:9"), "device"),
        (dict(lr=0.0), "lr"),
    ],
)
def test_invalid_parameters(digits, params, match):
    X, y = digits
    with pytest.raises(ValueError, match=match):
        small_vae(**params).fit(X, y)


def test_diverging_loss_is_reported(digits):
    X, y = digits
    vae = small_vae(optimizer="sgd", lr=1e8, max_epochs=3)
    with pytest.raises(DivergenceError, match="diverged at epoch .*learning rate") as info:
        vae.fit(X * 1e3, y)
    assert isinstance(info.value, ValueError)


def test_methods_before_fit():
    vae = DisentangledVAE()
    X = np.zeros((2, 4))
    for method in ("transform", "predict", "predict_proba", "inverse_transform"):
        with pytest.raises(NotFittedError):
            getattr(vae, method)(X)


# --------------------------------------------------------- the idea, on MNIST


@pytest.mark.slow
@pytest.mark.xdist_group("mnist")
def test_mnist_class_regions(mnist_dir):
    """The head classifies well, class means stay apart after the weight has
    decayed, and a plain VAE of the same size separates classes worse."""
    X_train, X_test, y_train, y_test = mnist_standard_split(mnist_dir)
    params = dict(hidden_dims=(256, 128), max_epochs=12, random_state=0)
    vae = DisentangledVAE(**params).fit(X_train, y_train)
    plain = DisentangledVAE(**params).fit(X_train)

    final_weight = vae.history_[-1, "classification_weight"]
    assert final_weight < 0.5 * max(vae.history_[:, "classification_weight"])
    head_accuracy = vae.score(X_test, y_test)
    assert head_accuracy > 0.6  # chance is 0.1

    def knn_accuracy(model):
        knn = KNeighborsClassifier(5).fit(model.transform(X_train), y_train)
        return knn.score(model.transform(X_test), y_test)

    def separation(model):
        # Spread of class means relative to the mean within-class spread.
        Z = model.transform(X_test)
        means = np.array([Z[y_test == c].mean(axis=0) for c in range(10)])
        within = np.mean([Z[y_test == c].std(axis=0).mean() for c in range(10)])
        return means.std(axis=0).mean() / within

    assert knn_accuracy(vae) > 0.72
    assert knn_accuracy(vae) > knn_accuracy(plain) + 0.05
    assert separation(vae) > 1.2 * separation(plain)


# ------------------------------------------------- float32 range and errors


def test_values_beyond_float32_are_refused_not_nan(fitted, digits):
    X, y = digits
    X_huge = X.astype(np.float64)
    X_huge[5, 3] = 1e39
    for method in (fitted.predict, fitted.predict_proba, fitted.transform):
        with pytest.raises(ValueError, match=r"as large as 1e\+39, beyond float32's range"):
            method(X_huge)
    with pytest.raises(ValueError, match="beyond float32's range"):
        fitted.inverse_transform(np.array([[0.0, -1e39]]))
    with pytest.raises(ValueError, match="beyond float32's range"):
        small_vae().fit(X_huge, y)
    # The largest float32 is still accepted.
    X_edge = X.astype(np.float64)
    X_edge[0, 0] = float(np.finfo(np.float32).max)
    assert fitted.transform(X_edge).shape == (len(X), 2)


def test_rows_the_network_overflows_on_are_refused_by_index(fitted, digits):
    # Issue 22: values within float32's range gave NaN latent means and
    # probabilities, and predict answered classes_[0] for them.
    X, y = digits
    X_huge = X[:20].astype(np.float64)
    X_huge[[3, 11]] = 3e38
    for method in (fitted.transform, fitted.predict_proba, fitted.predict):
        with pytest.raises(ValueError, match=r"outputs for rows 3, 11 of X \(2 of 20\) are NaN or infinite: .* overflows"):
            method(X_huge)
    with pytest.raises(ValueError, match=r"rows 3, 11 of X"):
        fitted.score(X_huge, y[:20])
    mse = small_vae(reconstruction="mse", max_epochs=1, warmup_steps=0).fit(X[:100], y[:100])
    with pytest.raises(ValueError, match=r"outputs for row 0 of X \(1 of 1\) are NaN or infinite"):
        mse.inverse_transform([[3e38, -3e38]])
    # Training on them names them too, with the cause.
    with pytest.raises(DivergenceError, match=r"loss became nan.*rows 3, 11 of X \(2 of 20\) are NaN or infinite") as info:
        small_vae(max_epochs=1, warmup_steps=0).fit(X_huge, y[:20])
    assert info.value.last_finite_estimator is None
    # Rows that stay finite are answered.
    assert np.isfinite(fitted.predict_proba(np.delete(X_huge, [3, 11], axis=0))).all()


@pytest.mark.parametrize(
    "params, match",
    [
        ({"n_components": True}, "'n_components' parameter of DisentangledVAE must be an int, not a bool"),
        ({"warmup_steps": False}, "'warmup_steps' parameter of DisentangledVAE must be an int, not a bool"),
        ({"optimizer": int}, "'optimizer' parameter of DisentangledVAE must be a str among .* or a subclass of torch.optim.Optimizer"),
    ],
)
def test_parameter_errors_look_like_scikit_learns(digits, params, match):
    from sklearn.utils._param_validation import InvalidParameterError

    X, y = digits
    with pytest.raises(InvalidParameterError, match=match):
        small_vae(**params).fit(X, y)


def test_bools_do_not_stand_for_the_classes_1_and_0(digits):
    # Issue 22: class_neighbors=[(True, False)] was taken for [(1, 0)].
    X, y = digits[0][:100], digits[1][:100]
    with pytest.raises(ValueError, match=r"Unknown class labels False, True in class_neighbors \(True and False do not stand for the classes 1 and 0\)"):
        small_vae(class_neighbors=[(True, False)]).fit(X, y)
    with pytest.raises(ValueError, match=r"Unknown class label True in class_neighbors"):
        small_vae(class_neighbors=[(3, True)]).fit(X, y)
    # Classes that are bools are named by bools, and not by 1 and 0.
    vae = small_vae(max_epochs=1, warmup_steps=0, class_neighbors=[(False, True)]).fit(X, y % 2 == 0)
    assert vae.classes_.tolist() == [False, True]
    assert vae.sample(y=True)[1].tolist() == [True]
    with pytest.raises(ValueError, match=r"Unknown class label 1 in the given labels \(the classes are bools"):
        vae.sample(y=1)


@pytest.mark.parametrize("callbacks", [[1], [("named", "not a callback")], [EarlyStopping(), print]])
def test_callbacks_that_are_no_callbacks_are_refused_by_position(digits, callbacks):
    # Issue 22: callbacks=[1] failed with an AttributeError inside skorch.
    from sklearn.utils._param_validation import InvalidParameterError

    X, y = digits
    index = len(callbacks) - 1
    with pytest.raises(InvalidParameterError, match=rf"'callbacks' parameter of DisentangledVAE must be a list of skorch callbacks .* Got .* at index {index} instead"):
        small_vae(callbacks=callbacks).fit(X, y)


def test_callbacks_as_skorch_takes_them(digits):
    X, y = digits[0][:100], digits[1][:100]
    vae = small_vae(max_epochs=1, warmup_steps=0, callbacks=[Callback, ("named", Callback())]).fit(X, y)
    names = [name for name, _ in vae.net_.callbacks_]
    assert "Callback" in names and "named" in names


def test_a_device_that_cannot_run_the_model_is_refused(digits):
    # Issue 22: device="meta" failed with "RuntimeError: unsupported scalarType".
    X, y = digits
    with pytest.raises(ValueError, match=r"device='meta' is a torch device that DisentangledVAE does not run on; use 'cpu', 'cuda'"):
        small_vae(device="meta").fit(X, y)


def test_a_model_fitted_without_labels_says_why_it_cannot_predict(fitted, digits):
    # Issue 22: predict raised "This 'DisentangledVAE' has no attribute 'predict'", no more.
    X, y = digits
    plain = small_vae(max_epochs=1, warmup_steps=0).fit(X[:100])
    for method in ("predict", "predict_proba", "class_border"):
        assert not hasattr(plain, method)
        with pytest.raises(AttributeError, match=rf"fitted without labels .* no {method}; transform, inverse_transform, score_samples and sample work without one.*fit\(X, y\)"):
            getattr(plain, method)
        # Unfitted, and fitted with labels, the method is there.
        assert hasattr(DisentangledVAE(), method) and hasattr(fitted, method)
    assert plain.transform(X[:5]).shape == (5, 2)
    assert DisentangledVAE.predict.__doc__.startswith("Class labels from the latent classifier")


def test_feature_names_out_needs_a_fitted_model(fitted):
    with pytest.raises(NotFittedError):
        DisentangledVAE().get_feature_names_out()
    assert fitted.get_feature_names_out().tolist() == ["disentangledvae0", "disentangledvae1"]


def test_class_regions_before_a_partial_fit_with_every_class(digits):
    X, y = digits
    vae = small_vae().partial_fit(X[y < 5], y[y < 5], classes=np.arange(10))
    for call in (lambda: vae.sample(y=7), lambda: vae.class_border(0, 1), lambda: vae.interpolate(0, 1)):
        with pytest.raises(ValueError, match="no class regions yet.*partial_fit with data of every class"):
            call()
    vae.partial_fit(X, y)
    assert vae.sample(y=7)[0].shape == (1, 64)


def test_predict_proba_does_not_depend_on_row_order():
    # The default head's 10-wide float32 layers gave results that depended on
    # a row's position in the inference block (scikit-learn's
    # check_methods_sample_order_invariance failed on default parameters).
    rng = np.random.RandomState(0)
    X = 3 * rng.uniform(size=(20, 3))
    y = X[:, 0].astype(np.int64)
    vae = DisentangledVAE(n_components=1, max_epochs=20, random_state=1).fit(X, y)
    for seed in range(5):
        order = np.random.RandomState(seed).permutation(len(X))
        np.testing.assert_array_equal(vae.predict_proba(X)[order], vae.predict_proba(X[order]))
        np.testing.assert_array_equal(vae.transform(X)[order], vae.transform(X[order]))


@pytest.mark.parametrize(
    "n_samples, batch_size, epochs",
    [
        (60_000, 256, 16),  # round(4025 / sqrt(n)): large data, few passes
        (8_000, 256, 45),
        (1_347, 256, 167),  # raised to 1,000 optimizer steps (6 per epoch)
        (1_000, 256, 250),
        (1_000, 32, 127),  # 32 steps per epoch: the sqrt rule already gives 4,064 steps
        (120, 256, 300),  # capped
    ],
)
def test_auto_training_length(n_samples, batch_size, epochs):
    assert auto_max_epochs(n_samples, batch_size) == epochs


@pytest.mark.parametrize(
    "n_samples, epochs",
    [(8_000, 68), (1_347, 250), (120, 300)],  # 1.5x, within the cap
)
def test_auto_training_length_is_longer_where_the_head_arranges_the_classes(n_samples, epochs):
    assert auto_max_epochs(n_samples, 256, arranges_classes=True) == epochs


@pytest.mark.parametrize(
    "n_components, n_classes, labelled, arranges",
    [
        (2, 10, True, True),  # no fixed centres in 2-D for 10 classes
        (2, 3, True, False),  # a triangle of fixed centres
        (8, 10, True, False),
        (2, 10, False, False),  # a plain VAE has no head
    ],
)
def test_fit_resolves_auto_training_length_by_the_class_layout(n_components, n_classes, labelled, arranges):
    X, y = make_classification(n_samples=300, n_features=8, n_informative=6, n_classes=n_classes, random_state=0)
    vae = DisentangledVAE(n_components=n_components, hidden_dims=(8,), batch_size=300, random_state=0)
    # max_epochs_ is resolved before training: one epoch of partial_fit shows it.
    vae.partial_fit(X, y if labelled else None, classes=np.unique(y) if labelled else None)
    assert (vae.class_prior_means_ is None) == (arranges or not labelled)
    assert vae.max_epochs_ == auto_max_epochs(300, 300, arranges_classes=arranges)


def test_auto_input_dropout_follows_the_width_of_the_data(digits):
    from tiny import tiny_vae

    assert [auto_input_dropout(n) for n in (4, 19, 20, 64, 784)] == [0.1, 0.1, 0.2, 0.2, 0.2]
    X, y = digits
    narrow = tiny_vae(max_epochs=1).fit(X[:, :19], y)
    assert narrow.input_dropout == "auto" and narrow.input_dropout_ == 0.1
    assert narrow.net_.module_.input_dropout == 0.1
    wide = tiny_vae(max_epochs=1).fit(X, y)  # 64 features
    assert wide.input_dropout_ == 0.2 and wide.net_.module_.input_dropout == 0.2
    chosen = tiny_vae(max_epochs=1, input_dropout=0.3).fit(X, y)
    assert chosen.input_dropout_ == 0.3 and chosen.net_.module_.input_dropout == 0.3
