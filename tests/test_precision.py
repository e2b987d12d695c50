"""precision="bf16-mixed" and "16-mixed": bfloat16 or float16 autocast for forward passes, float32 everything else."""

import math

import numpy as np
import pytest
import torch
from numpy.testing import assert_array_equal

from skvae import DisentangledVAE
from tiny import tiny_vae

needs_bf16 = pytest.mark.skipif(
    not getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)(),
    reason="this CPU has no AVX-512 BF16, so precision='bf16-mixed' is refused here",
)


@needs_bf16
def test_bf16_trains_infers_and_keeps_output_dtypes(digits_all, tmp_path):
    X, y = digits_all
    X, y = X[:500], y[:500]
    vae = tiny_vae(precision="bf16-mixed", max_epochs=10).fit(X, y)
    reference = tiny_vae(max_epochs=10).fit(X, y)
    Z = vae.transform(X)
    assert Z.dtype == np.float32 and vae.transform(X.astype(np.float64)).dtype == np.float64
    assert vae.inverse_transform(Z).dtype == np.float32
    assert np.isfinite(Z).all() and np.all(np.diff(vae.history_[:, "train_loss"]) < 1e3)
    # Learns as float32 does, within a few points.
    assert vae.score(X, y) > reference.score(X, y) - 0.1
    # bfloat16 products, not float32 ones: the latents differ by bfloat16's precision.
    module = vae.net_.module_
    with torch.inference_mode():
        float32_latent = module.encoder(torch.as_tensor(X[:64]))[0].numpy()
    difference = np.abs(vae.transform(X[:64]) - float32_latent).max()
    assert 0 < difference < 0.1 * np.abs(float32_latent).max()
    # Fixed inference blocks: a row's output does not depend on the batch.
    assert_array_equal(vae.transform(X[:3]), Z[:3])
    assert_array_equal(vae.predict_proba(X[:5]), vae.predict_proba(X)[:5])
    # Saved and loaded, bit-identical, precision included.
    vae.save(tmp_path / "bf16.skvae")
    loaded = DisentangledVAE.load(tmp_path / "bf16.skvae")
    assert loaded.precision == "bf16-mixed"
    assert_array_equal(loaded.transform(X), Z)


def test_bf16_is_refused_where_the_cpu_lacks_it(digits_all, monkeypatch):
    X, y = digits_all
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    vae = tiny_vae(precision="bf16-mixed")
    with pytest.raises(ValueError, match="precision='bf16-mixed' needs bfloat16 arithmetic, which this CPU"):
        vae.fit(X[:100], y[:100])
    assert not hasattr(vae, "net_")


def test_unknown_precision_is_refused(digits_all):
    X, y = digits_all
    with pytest.raises(ValueError, match="'precision' parameter of DisentangledVAE must be a str among"):
        tiny_vae(precision="16").fit(X[:100], y[:100])


def test_precision_cannot_change_in_a_warm_start(digits_all):
    X, y = digits_all
    vae = tiny_vae(warm_start=True, max_epochs=1).fit(X[:200], y[:200])
    vae.set_params(precision="bf16-mixed", max_epochs=2)
    with pytest.raises(ValueError, match=r"precision \('32' -> 'bf16-mixed'\) changed"):
        vae.fit(X[:200], y[:200])


@pytest.mark.parametrize("bf16", [False, pytest.param(True, marks=needs_bf16)])
def test_conv_layers_give_autocasts_values_and_gradients(bf16):
    # Under bf16 autocast the conv encoder computes the weight gradients in
    # float32 kernels (modules._run_conv): the same function and gradients as
    # calling the layers plainly, up to rounding.
    import copy

    from skvae.modules import ConvEncoder, build_seeded

    shape = (3, 13, 9)  # odd sizes
    encoder = build_seeded(lambda: ConvEncoder(shape, (16,), 2), torch.Generator().manual_seed(0))
    X = torch.rand(32, int(np.prod(shape)), generator=torch.Generator().manual_seed(2))
    results = []
    for plain in (False, True):
        enc = copy.deepcopy(encoder)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            if plain:
                h = enc.body(enc.convolutions(X.reshape(-1, *shape)))
                mu, logvar = enc.mu(h), enc.logvar(h)
            else:
                mu, logvar = enc(X)
        out = torch.cat([mu, logvar], dim=1)
        (out.float().square().mean() + logvar.float().mean()).backward()
        grads = [p.grad for p in enc.parameters()]
        assert all(g is not None and g.dtype == torch.float32 for g in grads)
        results.append((out.detach().float(), grads))
    (out, grads), (out_plain, grads_plain) = results
    assert out.shape == (32, 4)
    tolerance = 2e-2 if bf16 else 1e-4  # bfloat16 keeps ~3 significant digits
    torch.testing.assert_close(out, out_plain, rtol=tolerance, atol=tolerance * out_plain.abs().max().item())
    for g, g_plain in zip(grads, grads_plain):
        torch.testing.assert_close(g, g_plain, rtol=tolerance, atol=tolerance * g_plain.abs().max().item())


@pytest.fixture
def cpu_with_fp16(monkeypatch):
    """Make this CPU look like one with AMX-FP16, so that "16-mixed" runs here.

    float16 is emulated then (slow, but exact to float16): enough to test
    the loss scaling, not its speed.
    """
    monkeypatch.setattr(torch.cpu, "_is_amx_fp16_supported", lambda: True, raising=False)


def test_fp16_is_refused_where_the_cpu_lacks_it(digits_all, monkeypatch):
    X, y = digits_all
    monkeypatch.setattr(torch.cpu, "_is_amx_fp16_supported", lambda: False, raising=False)
    vae = tiny_vae(precision="16-mixed")
    with pytest.raises(ValueError, match=r"precision='16-mixed' needs float16 arithmetic.*Use a CUDA device"):
        vae.fit(X[:100], y[:100])
    assert not hasattr(vae, "net_")


def test_fp16_trains_with_a_loss_scale_and_saves_it(digits_all, tmp_path, cpu_with_fp16):
    X, y = digits_all
    X, y = X[:500], y[:500]
    vae = tiny_vae(precision="16-mixed", max_epochs=10).fit(X, y)
    reference = tiny_vae(max_epochs=10).fit(X, y)
    scaler = vae.net_.grad_scaler_
    assert scaler.is_enabled() and not reference.net_.grad_scaler_.is_enabled()
    # The first steps overflowed at the initial scale (2**16) and each halved
    # it; no 2,000-step run of good steps doubled it back.
    scale = scaler.get_scale()
    assert 1 <= scale < 2.0**16 and math.log2(scale).is_integer()
    Z = vae.transform(X)
    assert Z.dtype == np.float32 and vae.transform(X.astype(np.float64)).dtype == np.float64
    assert vae.inverse_transform(Z).dtype == np.float32
    # Learns as float32 does: the first steps' gradients overflow at the
    # initial scale (2**16) and are skipped until the scale fits.
    assert vae.history_[-1, "train_loss"] < 1.1 * reference.history_[-1, "train_loss"]
    # float16 products: the latents differ from float32's by its precision.
    with torch.inference_mode():
        float32_latent = vae.net_.module_.encoder(torch.as_tensor(X[:64]))[0].numpy()
    difference = np.abs(vae.transform(X[:64]) - float32_latent).max()
    assert 0 < difference < 0.01 * np.abs(float32_latent).max()
    assert_array_equal(vae.transform(X[:3]), Z[:3])
    # Saved and loaded: bit-identical outputs, the same loss scale to continue with.
    vae.save(tmp_path / "fp16.skvae")
    loaded = DisentangledVAE.load(tmp_path / "fp16.skvae")
    assert loaded.precision == "16-mixed"
    assert loaded.net_.grad_scaler_.state_dict() == scaler.state_dict()
    assert_array_equal(loaded.transform(X), Z)


def test_fp16_skips_steps_whose_gradients_overflow(digits_all, cpu_with_fp16):
    X, y = digits_all
    vae = tiny_vae(precision="16-mixed", max_epochs=1).fit(X[:256], y[:256])
    weights = [p.detach().clone() for p in vae.net_.module_.parameters()]
    # A scale that overflows float16's range (65504) in every backward pass.
    vae.net_.grad_scaler_.update(new_scale=1e30)
    vae.partial_fit(X[:256], y[:256])  # 4 batches of 64
    assert all(torch.equal(a, b) for a, b in zip(weights, vae.net_.module_.parameters()))
    assert vae.net_.grad_scaler_.get_scale() == pytest.approx(1e30 * 0.5**4)
    assert vae.net_.n_steps_ == 8  # skipped steps still count in the schedule


def test_a_model_loads_in_float32_where_its_precision_cannot_run(digits_all, tmp_path, monkeypatch):
    X, y = digits_all
    monkeypatch.setattr(torch.cpu, "_is_amx_fp16_supported", lambda: True, raising=False)
    vae = tiny_vae(precision="16-mixed").fit(X[:300], y[:300])
    vae.save(tmp_path / "fp16.skvae")
    monkeypatch.setattr(torch.cpu, "_is_amx_fp16_supported", lambda: False)
    with pytest.warns(UserWarning, match="saved with precision='16-mixed', but precision='16-mixed' needs float16"):
        loaded = DisentangledVAE.load(tmp_path / "fp16.skvae")
    assert loaded.precision == "32" and not loaded.net_.grad_scaler_.is_enabled()
    np.testing.assert_allclose(loaded.transform(X[:300]), vae.transform(X[:300]), atol=0.02)
