"""Building a fitted estimator's network: the torch module and its skorch net.

:class:`~skvae.DisentangledVAE` calls :func:`build_net` when ``fit`` (or a
first ``partial_fit``, or ``load``) needs a new network; the functions here
read the estimator's parameters and never change the estimator.
"""

import inspect
from numbers import Integral

import numpy as np
import torch
from skorch.callbacks import EarlyStopping, ProgressBar
from skorch.dataset import ValidSplit

from ._net import DisentangledVAENet
from .losses import DisentangledVAELoss
from .modules import (
    ConvDecoder,
    ConvEncoder,
    DisentangledVAEModule,
    LatentClassifier,
    MLPDecoder,
    MLPEncoder,
    build_seeded,
)

__all__ = [
    "OPTIMIZERS",
    "build_module_on_meta",
    "build_net",
    "check_precision",
    "image_shape_of",
    "optimizer_params",
    "precision_problem",
    "resolve_device",
]

#: The optimizers ``optimizer`` may name.
OPTIMIZERS = {
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "sgd": torch.optim.SGD,
    "rmsprop": torch.optim.RMSprop,
}


def optimizer_params(optimizer, device):
    """Keyword arguments for the optimizer that ``optimizer`` names.

    A built-in optimizer named by a string runs as one fused kernel where
    torch has one for its class and ``device``: torch's default CPU Adam
    updates each parameter tensor in its own series of small operations,
    the largest cost of a training step of the default MLP besides the
    matrix products (``benchmarks/RESULTS.md``, "Roofline"). An optimizer
    class passed by the user runs with torch's defaults for that class.
    """
    if not isinstance(optimizer, str):
        return {}
    supports_fused = "fused" in inspect.signature(OPTIMIZERS[optimizer]).parameters
    # The devices with fused kernels grew with torch's versions (CUDA only
    # before 2.4, then the CPU): asked of torch, not assumed. torch says it
    # only privately; a torch without that function gets no fused kernels.
    try:
        from torch.utils._foreach_utils import _get_fused_kernels_supported_devices
    except ImportError:
        return {}
    fused_devices = _get_fused_kernels_supported_devices()
    return {"fused": True} if supports_fused and device.type in fused_devices else {}


def resolve_device(device):
    """The torch device of a ``device`` parameter (``"auto"``: CUDA when available)."""
    resolved = "cuda" if device == "auto" and torch.cuda.is_available() else device
    resolved = "cpu" if resolved == "auto" else resolved
    try:
        resolved = torch.device(resolved)
    except RuntimeError as exc:
        raise ValueError(f"device={device!r} is not a torch device: {exc}") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} but CUDA is not available here; use device='cpu' or device='auto'.")
    if resolved.type == "cuda" and (resolved.index or 0) >= torch.cuda.device_count():
        raise ValueError(
            f"device={device!r} but this machine has {torch.cuda.device_count()} CUDA device(s), numbered from 0."
        )
    return resolved


def _cpu_has_bf16():
    """Whether this CPU multiplies bfloat16 natively (AVX-512 BF16 or AMX)."""
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in checks)


def _cpu_has_fp16():
    """Whether this CPU multiplies float16 natively (AMX-FP16)."""
    return getattr(torch.cpu, "_is_amx_fp16_supported", lambda: False)()


def precision_problem(precision, device):
    """Why ``device`` cannot run ``precision`` at speed, or None if it can."""
    if precision == "bf16-mixed":
        if torch.cuda.is_bf16_supported() if device.type == "cuda" else _cpu_has_bf16():
            return None
        where = f"this GPU ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else "this CPU"
        return (
            f"precision='bf16-mixed' needs bfloat16 arithmetic, which {where} does not "
            "have (on CPUs: AVX-512 BF16 or AMX); emulated it would be slower than float32"
        )
    if precision == "16-mixed" and device.type != "cuda" and not _cpu_has_fp16():
        # Measured on an AMD EPYC (Zen 4): float16 products at 2 GFLOP/s, float32 at 200.
        return (
            "precision='16-mixed' needs float16 arithmetic, which this CPU does not have "
            "(on CPUs: AMX-FP16); emulated it runs about 100 times slower than float32"
        )
    return None


def check_precision(precision, device):
    """Refuse a precision that ``device`` has no fast arithmetic for."""
    problem = precision_problem(precision, device)
    if problem is None:
        return
    usable = [p for p in ("bf16-mixed", "32") if p != precision and precision_problem(p, device) is None]
    advice = " or ".join(f"precision={p!r}" for p in usable)
    if precision == "16-mixed":
        advice = f"a CUDA device (device='cuda'), or {advice}"
    raise ValueError(f"{problem}. Use {advice}.")


def image_shape_of(estimator, n_features):
    """``(channels, height, width)`` of the estimator's images, or None."""
    if estimator.image_shape is None:
        if estimator.architecture == "conv":
            raise ValueError(
                "architecture='conv' needs image_shape, e.g. image_shape=(28, 28) for 784 pixel features."
            )
        return None
    shape = tuple(int(size) for size in estimator.image_shape)
    if len(shape) == 2:
        shape = (1, *shape)
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(
            f"image_shape must be (height, width) or (channels, height, width) "
            f"with positive sizes; got {estimator.image_shape!r}."
        )
    if int(np.prod(shape)) != n_features:
        raise ValueError(
            f"image_shape={estimator.image_shape!r} holds {int(np.prod(shape))} values "
            f"but X has {n_features} features; pass the shape of one image."
        )
    return shape


def _check_widths(widths, name):
    widths = tuple(widths)
    if not all(isinstance(w, Integral) and not isinstance(w, bool) and w > 0 for w in widths):
        raise ValueError(f"{name} must be a tuple of positive ints; got {widths!r}.")
    return tuple(int(w) for w in widths)


def _build_module(estimator, n_features, n_classes):
    image_shape = image_shape_of(estimator, n_features)
    hidden_dims = _check_widths(estimator.hidden_dims, "hidden_dims")
    classifier_hidden = _check_widths(estimator.classifier_hidden, "classifier_hidden")
    n_components = estimator.n_components
    if estimator.architecture == "conv":
        encoder = ConvEncoder(image_shape, n_components)
        decoder = ConvDecoder(n_components, image_shape)
    else:
        encoder = MLPEncoder(n_features, hidden_dims, n_components)
        decoder = MLPDecoder(n_components, hidden_dims, n_features)
    classifier = LatentClassifier(n_components, classifier_hidden, n_classes) if n_classes else None
    activation = "sigmoid" if estimator.reconstruction_ == "bce" else None
    return DisentangledVAEModule(
        encoder, decoder, classifier, output_activation=activation, input_dropout=estimator.input_dropout_
    )


def build_module_on_meta(estimator, n_features, n_classes, max_tensors):
    """The estimator's module on the ``meta`` device: shapes, no memory.

    Loading checks a file's tensors against its state dict before building
    the real network. Building takes time per layer even on the meta
    device, so a module of more than ``max_tensors`` tensors (those of the
    file) is refused first, with a :class:`ValueError`: every hidden layer
    has a weight and a bias.
    """
    hidden_layers = (len(estimator.hidden_dims) * 2 if estimator.architecture == "mlp" else 0) + (
        len(estimator.classifier_hidden) if n_classes else 0
    )
    if 2 * hidden_layers > max_tensors:
        raise ValueError(
            f"hidden_dims and classifier_hidden make {hidden_layers:,} hidden layers, "
            f"each with a weight and a bias, but the file holds {max_tensors} tensors"
        )
    with torch.device("meta"):
        return _build_module(estimator, n_features, n_classes)


def build_net(estimator, n_features, n_classes, device, seed, training_params, class_pairs=None):
    """A new, initialised :class:`~skvae._net.DisentangledVAENet` for ``estimator``.

    Parameters
    ----------
    estimator : DisentangledVAE
        Its parameters and ``reconstruction_`` and ``class_prior_means_``
        shape the network.
    n_features, n_classes : int
        Width of the data; number of classes (0 for a plain VAE).
    device : torch.device
        Where the net trains.
    seed : int
        Seeds the initial weights, the training's generators and the
        early-stopping split.
    training_params : dict
        The net parameters that may change between warm-started fits.
    class_pairs : ndarray of shape (n_pairs, 2), default=None
        Class indices of the pairs that must share a border
        (``class_neighbors``, encoded).
    """
    module = build_seeded(lambda: _build_module(estimator, n_features, n_classes), torch.Generator().manual_seed(seed))
    callbacks = list(estimator.callbacks or [])
    if estimator.early_stopping:
        callbacks.append(
            ("early_stopping", EarlyStopping(monitor="valid_loss", patience=estimator.n_iter_no_change, load_best=True))
        )
    if estimator.verbose:
        callbacks.append(ProgressBar())
    # Seeded: a warm start or a loaded model keeps the same split.
    split = (
        ValidSplit(estimator.validation_fraction, stratified=n_classes > 0, random_state=seed)
        if estimator.early_stopping
        else None
    )
    net = DisentangledVAENet(
        module,
        DisentangledVAELoss(
            estimator.reconstruction_, estimator.kl, estimator.beta, estimator.class_prior_means_, class_pairs
        ),
        optimizer=OPTIMIZERS.get(estimator.optimizer, estimator.optimizer),
        **{f"optimizer__{name}": value for name, value in optimizer_params(estimator.optimizer, device).items()},
        train_split=split,
        callbacks=callbacks,
        device=device,
        seed=seed,
        precision=estimator.precision,
        **training_params,
    )
    return net.initialize()
