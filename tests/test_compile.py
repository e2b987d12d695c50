"""compile=True: the training step's forward pass and loss compiled by torch.compile.

Every compiled fit here has the same network shape, so that the process
compiles once (the first test pays it; the others reuse it).
"""

import pickle

import numpy as np
import pytest
import torch
from numpy.testing import assert_array_equal
from sklearn.base import clone

from skvae import DisentangledVAE, _compile
from tiny import tiny_vae

# One xdist worker runs the module: its compiled fits share one compilation.
pytestmark = pytest.mark.xdist_group("compile")


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.random((300, 20), dtype=np.float32)
    return X, rng.integers(0, 3, 300)


@pytest.fixture(scope="module")
def compiled_fit(data):
    X, y = data
    return tiny_vae(compile=True).fit(X, y)


def test_two_compiled_fits_are_equal_and_close_to_eager(data, compiled_fit):
    X, y = data
    again = tiny_vae(compile=True).fit(X, y)
    assert_array_equal(again.transform(X), compiled_fit.transform(X))
    assert again.loss_curve_ == compiled_fit.loss_curve_
    # Not bit-identical to eager training (the compiled kernels sum in
    # another order), but the same training within rounding.
    eager = tiny_vae().fit(X, y)
    assert not np.array_equal(eager.transform(X), compiled_fit.transform(X))
    np.testing.assert_allclose(compiled_fit.transform(X), eager.transform(X), rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(compiled_fit.loss_curve_, eager.loss_curve_, rtol=1e-4)


def test_fits_of_one_shape_compile_once(data, compiled_fit):
    from torch._dynamo.utils import counters

    X, y = data
    graphs = counters["stats"]["unique_graphs"]
    # Other rows, another last batch (250 = 3 * 64 + 58), a new network: no new compilation.
    tiny_vae(compile=True, random_state=1).fit(X[:250], y[:250])
    assert counters["stats"]["unique_graphs"] == graphs


def test_compiled_fit_pickles_clones_and_saves_plain_modules(data, compiled_fit, tmp_path):
    X, _ = data
    restored = pickle.loads(pickle.dumps(compiled_fit))
    assert_array_equal(restored.transform(X), compiled_fit.transform(X))
    assert type(restored.net_.module_).__name__ == "DisentangledVAEModule"
    assert b"OptimizedModule" not in pickle.dumps(compiled_fit)
    assert clone(compiled_fit).get_params()["compile"] is True
    compiled_fit.save(tmp_path / "model.skvae")
    loaded = DisentangledVAE.load(tmp_path / "model.skvae")
    assert loaded.compile is True
    assert_array_equal(loaded.transform(X), compiled_fit.transform(X))


def test_failed_compilation_warns_and_trains_eagerly(data, monkeypatch):
    X, y = data

    def no_compiler(function, **kwargs):
        def fails(*args):
            raise RuntimeError("InductorError: no C++ compiler found")

        return fails

    monkeypatch.setattr(torch, "compile", no_compiler)
    monkeypatch.setattr(_compile, "_COMPILED", {})
    monkeypatch.setattr(_compile, "_FAILURE", [])
    with pytest.warns(UserWarning, match="torch.compile failed here .*no C.. compiler.*runs eagerly"):
        fallback = tiny_vae(compile=True).fit(X, y)
    assert_array_equal(fallback.transform(X), tiny_vae().fit(X, y).transform(X))


def test_compile_is_validated(data):
    X, y = data
    with pytest.raises(ValueError, match="'compile' parameter"):
        tiny_vae(compile="yes").fit(X, y)


def test_an_error_of_the_step_itself_is_raised_not_taken_for_a_compiler_failure(data, monkeypatch):
    X, y = data
    monkeypatch.setattr(_compile, "_FAILURE", [])
    with pytest.raises(RuntimeError, match="mat1 and mat2 shapes cannot be multiplied"):
        _compile.compiled_forward(tiny_vae().fit(X, y).net_.module_.train(), torch.zeros(4, 3), (None, None))
    assert _compile.compilation_failed() is None
