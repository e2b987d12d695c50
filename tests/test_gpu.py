"""Device handling: ``device="cuda"`` / ``"auto"``, and GPU models used on CPU.

The CUDA tests skip where ``torch.cuda.is_available()`` is False; the others
run everywhere, with CUDA hidden by monkeypatching where they need a
machine without it.
"""

import pickle

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose
from skorch.callbacks import Callback
from skorch.exceptions import DeviceWarning

from skvae import DisentangledVAE

requires_cuda = pytest.mark.skipif(
    not torch.cuda.is_available(),
    reason="needs a CUDA GPU: torch.cuda.is_available() is False on this machine",
)


def _tiny(**params):
    defaults = dict(hidden_dims=(16,), classifier_hidden=(8,), max_epochs=2, warmup_steps=0, random_state=0)
    defaults.update(params)
    return DisentangledVAE(**defaults)


@pytest.fixture
def without_cuda(monkeypatch):
    """Make this process look like a machine without CUDA."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


class _RecordDevices(Callback):
    """Record the device of every training batch the module and the loss see."""

    def on_train_begin(self, net, **kwargs):
        self.devices = set()
        net.module_.register_forward_pre_hook(lambda module, args: self.devices.add(args[0].device.type))
        net.criterion_.register_forward_pre_hook(
            lambda module, args: self.devices.update(arg.device.type for arg in args[1:])
        )


def _parameter_devices(estimator):
    return {p.device.type for p in estimator.net_.module_.parameters()}


# ------------------------------------------------------------- any machine


def test_auto_is_cpu_without_cuda(digits, without_cuda):
    est = _tiny(device="auto").fit(*digits)

    assert torch.device(est.net_.device).type == "cpu"
    assert _parameter_devices(est) == {"cpu"}
    assert est.get_params()["device"] == "auto"


def test_cuda_without_cuda_raises(digits, without_cuda):
    with pytest.raises(ValueError, match="CUDA is not available.*device='cpu' or device='auto'"):
        _tiny(device="cuda").fit(*digits)


@pytest.mark.parametrize("device", ["gpu", "cuda:x", "cpu0"])
def test_invalid_device_raises(digits, device):
    with pytest.raises(ValueError, match=f"device={device!r} is not a torch device"):
        _tiny(device=device).fit(*digits)


# ------------------------------------------------------------------ CUDA


@requires_cuda
@pytest.mark.parametrize("device", ["cuda", "auto", torch.device("cuda", 0)], ids=["cuda", "auto", "cuda0"])
def test_fit_on_cuda(digits, device):
    recorder = _RecordDevices()
    est = _tiny(device=device, callbacks=[recorder]).fit(*digits)

    assert torch.device(est.net_.device).type == "cuda"
    assert _parameter_devices(est) == {"cuda"}
    # Every batch (X into the module; X and y into the loss) was on the GPU.
    assert recorder.devices == {"cuda"}
    X = digits[0]
    assert np.isfinite(est.transform(X)).all()
    assert np.isfinite(est.inverse_transform(est.transform(X))).all()
    assert_allclose(est.predict_proba(X).sum(axis=1), 1)


@requires_cuda
def test_cuda_model_pickles_for_cpu(digits, monkeypatch):
    # Fit on the GPU, then unpickle as on a machine without CUDA: skorch maps
    # the tensors to the CPU (with a DeviceWarning) and inference matches.
    X, y = digits
    gpu = _tiny(device="cuda").fit(X, y)
    Z, proba = gpu.transform(X), gpu.predict_proba(X)
    blob = pickle.dumps(gpu)

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    # skorch may warn twice (net device, and each CUDA attribute it maps);
    # pytest re-emits unmatched warnings, which the suite turns into errors.
    with pytest.warns(DeviceWarning, match=r"(?i)no cuda devices are available|is not available"):
        cpu = pickle.loads(blob)

    assert torch.device(cpu.net_.device).type == "cpu"
    assert _parameter_devices(cpu) == {"cpu"}
    assert_allclose(cpu.transform(X), Z, rtol=1e-4, atol=1e-5)
    assert_allclose(cpu.predict_proba(X), proba, rtol=1e-4, atol=1e-5)


@requires_cuda
@pytest.mark.parametrize("hide_cuda", [False, True], ids=["device-cpu", "no-cuda-here"])
def test_cuda_model_saves_for_cpu(digits, tmp_path, monkeypatch, hide_cuda):
    # DisentangledVAE.save / load: load(device="cpu") on any machine, or
    # load() where CUDA is missing, which falls back to the CPU with a warning.
    X, y = digits
    gpu = _tiny(device="cuda").fit(X, y)
    Z, proba = gpu.transform(X), gpu.predict_proba(X)
    gpu.save(tmp_path / "model.pt")

    if hide_cuda:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
        with pytest.warns(UserWarning, match="CUDA is not available here"):
            cpu = DisentangledVAE.load(tmp_path / "model.pt")
    else:
        cpu = DisentangledVAE.load(tmp_path / "model.pt", device="cpu")

    assert cpu.device == "cpu"
    assert _parameter_devices(cpu) == {"cpu"}
    assert_allclose(cpu.transform(X), Z, rtol=1e-4, atol=1e-5)
    assert_allclose(cpu.predict_proba(X), proba, rtol=1e-4, atol=1e-5)


@requires_cuda
def test_bf16_mixed_on_cuda(digits):
    if not torch.cuda.is_bf16_supported():
        pytest.skip("this GPU has no bfloat16 arithmetic")
    X, y = digits
    est = _tiny(device="cuda", precision="bf16-mixed").fit(X, y)
    Z = est.transform(X)
    assert Z.dtype == X.dtype and np.isfinite(Z).all()
    np.testing.assert_array_equal(est.transform(X[:5]), Z[:5])
    assert_allclose(est.predict_proba(X).sum(axis=1), 1)


@requires_cuda
def test_16_mixed_on_cuda_scales_the_loss(digits, tmp_path):
    X, y = digits
    est = _tiny(device="cuda", precision="16-mixed", max_epochs=5).fit(X, y)
    reference = _tiny(device="cuda", max_epochs=5).fit(X, y)
    assert est.net_.grad_scaler_.is_enabled() and est.net_.grad_scaler_.get_scale() >= 1
    assert est.history_[-1, "train_loss"] < 1.1 * reference.history_[-1, "train_loss"]
    Z = est.transform(X)
    assert Z.dtype == X.dtype and np.isfinite(Z).all()
    np.testing.assert_array_equal(est.transform(X[:5]), Z[:5])
    est.save(tmp_path / "fp16.skvae")
    np.testing.assert_array_equal(DisentangledVAE.load(tmp_path / "fp16.skvae").transform(X), Z)
