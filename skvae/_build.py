"""Building a fitted estimator's network: the torch module and its skorch net.

:class:`~skvae.DisentangledVAE` calls :func:`build_net` when ``fit`` (or a
first ``partial_fit``, or ``load``) needs a new network; what was fitted is a
:class:`FittedSetup`, made once by :func:`fitted_setup`; the functions here
are handed values and never see the estimator.
"""

import inspect
from dataclasses import dataclass
from numbers import Integral

import numpy as np
import torch
from skorch.dataset import ValidSplit

from ._net import DisentangledVAENet
from ._progress import FitProgressBar
from ._validation import BestValidationEpoch
from .losses import DisentangledVAELoss
from .modules import (
    ConvEncoder,
    DisentangledVAEModule,
    LatentClassifier,
    MLPDecoder,
    MLPEncoder,
    build_seeded,
)

__all__ = [
    "DEVICE_TYPES",
    "OPTIMIZERS",
    "FittedSetup",
    "build_module_on_meta",
    "build_net",
    "fitted_setup",
    "check_precision",
    "image_shape_of",
    "optimizer_params",
    "precision_problem",
    "resolve_device",
]

#: The types of torch device that ``device`` may name.
DEVICE_TYPES = ("cpu", "cuda")

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
    matrix products in an earlier run (``benchmarks/RESULTS.md``, "Roofline",
    reads 8% of a float32 step for the fused update today). An optimizer
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
    if resolved.type not in DEVICE_TYPES:
        # Other torch devices hold no data (meta) or are untested here.
        raise ValueError(
            f"device={device!r} is a torch device that DisentangledVAE does not run on; "
            "use 'cpu', 'cuda' (or 'cuda:0', 'cuda:1'...), or 'auto' for CUDA when available."
        )
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


#: The smallest image side (in pixels) that ``architecture="auto"`` gives the
#: convolutional encoder: its two stride-2 convolutions leave a 4x4 map of
#: 14x14 images, 2x2 of 8x8 ones, where they lost to the MLP.
MIN_CONV_IMAGE_SIDE = 14


def resolve_architecture(architecture, image_shape):
    """The encoder ``architecture`` names: ``"auto"`` is ``"conv"`` for images, ``"mlp"`` otherwise.

    ``image_shape`` is ``(channels, height, width)``, as :func:`image_shape_of`
    returns it, or None.

    Images are data whose ``image_shape`` the user gave, at least
    :data:`MIN_CONV_IMAGE_SIDE` pixels high and wide: there the
    convolutional encoder's head matched or beat the MLP's on every image
    set measured, at 2-D and 8-D; on 8x8 digits it did not
    (``benchmarks/RESULTS.md``, "Convolutional encoder"). A feature count
    alone does not tell images from a table, so ``"auto"`` does not guess
    the shape.
    """
    if architecture != "auto":
        return architecture
    if image_shape is None or min(image_shape[1:]) < MIN_CONV_IMAGE_SIDE:
        return "mlp"
    return "conv"


def image_shape_of(image_shape, architecture, n_features):
    """``(channels, height, width)`` of an ``image_shape`` parameter, or None."""
    if image_shape is None:
        if architecture == "conv":
            raise ValueError(
                "architecture='conv' needs image_shape, e.g. image_shape=(28, 28) for 784 pixel features."
            )
        return None
    shape = tuple(int(size) for size in image_shape)
    if len(shape) == 2:
        shape = (1, *shape)
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(
            f"image_shape must be (height, width) or (channels, height, width) "
            f"with positive sizes; got {image_shape!r}."
        )
    if int(np.prod(shape)) != n_features:
        raise ValueError(
            f"image_shape={image_shape!r} holds {int(np.prod(shape))} values "
            f"but X has {n_features} features; pass the shape of one image."
        )
    return shape


def _check_widths(widths, name):
    widths = tuple(widths)
    if not all(isinstance(w, Integral) and not isinstance(w, bool) and w > 0 for w in widths):
        raise ValueError(f"{name} must be a tuple of positive ints; got {widths!r}.")
    return tuple(int(w) for w in widths)


@dataclass(frozen=True, eq=False)
class FittedSetup:
    """What a fit built: everything that shapes the network, its loss and its set-up.

    Made once, by :func:`fitted_setup`, when ``fit`` (or a first
    ``partial_fit``) builds a network or ``load`` rebuilds one, and kept on
    the fitted estimator until it is refitted. The network, the file a
    model is saved to, inference, the scorers and the displays read it, not
    the estimator's parameters, which ``set_params`` may have changed since.

    Attributes
    ----------
    params : dict
        The estimator's parameters that shape the model, as they were at
        fit, by name: warm-started training refuses to continue when one of
        them changed, and ``save`` writes these.
    n_features, n_classes, n_components : int
        Width of the data, number of classes (0 for a plain VAE) and of
        latent dimensions.
    architecture : {"mlp", "conv"}
        The encoder (``"auto"`` resolved).
    hidden_dims, classifier_hidden : tuple of int
    image_shape : tuple of int or None
        ``(channels, height, width)`` of the images, or None.
    input_dropout : float
        The masking noise (``"auto"`` resolved).
    reconstruction : {"bce", "mse"}
        The reconstruction loss (``"auto"`` resolved).
    kl : {"standard", "abs"}
    beta : float
    class_prior_means : ndarray of shape (n_classes, n_components) or None
        Centres of the class priors.
    class_pairs : ndarray of shape (n_pairs, 2) or None
        Class indices of the pairs that must share a border.
    optimizer : str or torch.optim.Optimizer subclass
    validation_fraction : float or None
        Rows held out (stratified by class) to choose on; None for none.
    patience : int or None
        Epochs without a better validation score after which training
        stops, keeping the best epoch; None trains every epoch and keeps
        the last.
    precision : {"32", "bf16-mixed", "16-mixed"}
    seed : int
        Seeds the initial weights, the training's generators and the
        validation split.
    """

    params: dict
    n_features: int
    n_classes: int
    n_components: int
    architecture: str
    hidden_dims: tuple
    classifier_hidden: tuple
    image_shape: tuple | None
    input_dropout: float
    reconstruction: str
    kl: str
    beta: float
    class_prior_means: np.ndarray | None
    class_pairs: np.ndarray | None
    optimizer: object
    validation_fraction: float | None
    patience: int | None
    precision: str
    seed: int


def fitted_setup(params, *, n_features, n_classes, input_dropout, reconstruction, class_prior_means,
                 class_pairs, validation, seed):
    """The :class:`FittedSetup` of the parameters ``params`` and the values a fit chose.

    ``params`` holds the estimator's model-shaping parameters by name;
    ``input_dropout`` and ``reconstruction`` are the values ``"auto"``
    resolved to, ``validation`` whether the fit holds rows out (what
    ``early_stopping="auto"`` resolved to). Raises ``ValueError`` for
    parameters that do not fit the data (image shape, layer widths).
    """
    def frozen(array):
        if array is None:
            return None
        array = np.array(array)
        array.setflags(write=False)
        return array

    image_shape = image_shape_of(params["image_shape"], params["architecture"], n_features)
    return FittedSetup(
        params=dict(params),
        n_features=int(n_features),
        n_classes=int(n_classes),
        n_components=int(params["n_components"]),
        architecture=resolve_architecture(params["architecture"], image_shape),
        hidden_dims=_check_widths(params["hidden_dims"], "hidden_dims"),
        classifier_hidden=_check_widths(params["classifier_hidden"], "classifier_hidden"),
        image_shape=image_shape,
        input_dropout=float(input_dropout),
        reconstruction=reconstruction,
        kl=params["kl"],
        beta=float(params["beta"]),
        class_prior_means=frozen(class_prior_means),
        class_pairs=frozen(class_pairs),
        optimizer=params["optimizer"],
        validation_fraction=float(params["validation_fraction"]) if validation else None,
        patience=int(params["n_iter_no_change"]) if params["early_stopping"] is True else None,
        precision=params["precision"],
        seed=int(seed),
    )


def _build_module(setup):
    if setup.architecture == "conv":
        encoder = ConvEncoder(setup.image_shape, setup.hidden_dims, setup.n_components)
    else:
        encoder = MLPEncoder(setup.n_features, setup.hidden_dims, setup.n_components)
    decoder = MLPDecoder(setup.n_components, setup.hidden_dims, setup.n_features)
    classifier = (
        LatentClassifier(setup.n_components, setup.classifier_hidden, setup.n_classes) if setup.n_classes else None
    )
    activation = "sigmoid" if setup.reconstruction == "bce" else None
    return DisentangledVAEModule(
        encoder, decoder, classifier, output_activation=activation, input_dropout=setup.input_dropout
    )


def build_module_on_meta(setup, max_tensors):
    """The module of ``setup`` on the ``meta`` device: shapes, no memory.

    Loading checks a file's tensors against its state dict before building
    the real network. Building takes time per layer even on the meta
    device, so a module of more than ``max_tensors`` tensors (those of the
    file) is refused first, with a :class:`ValueError`: every hidden layer
    has a weight and a bias.
    """
    hidden_layers = len(setup.hidden_dims) * 2 + (
        len(setup.classifier_hidden) if setup.n_classes else 0
    )
    if 2 * hidden_layers > max_tensors:
        raise ValueError(
            f"hidden_dims and classifier_hidden make {hidden_layers:,} hidden layers, "
            f"each with a weight and a bias, but the file holds {max_tensors} tensors"
        )
    with torch.device("meta"):
        return _build_module(setup)


def build_net(setup, device, training_params, callbacks=()):
    """A new, initialised :class:`~skvae._net.DisentangledVAENet` for ``setup``.

    Parameters
    ----------
    setup : FittedSetup
        What shapes the network, its loss and its set-up.
    device : torch.device
        Where the net trains.
    training_params : dict
        The net parameters that may change between warm-started fits
        (schedule, learning rate, epochs, batch size, verbosity...).
    callbacks : sequence of skorch callbacks, default=()
        The user's callbacks, run before skvae's own.
    """
    module = build_seeded(lambda: _build_module(setup), torch.Generator().manual_seed(setup.seed))
    callbacks = list(callbacks)
    if setup.patience is not None:
        # What the split decides for: the head's accuracy where there is a
        # head, the VAE's loss where there is none.
        monitor = "valid_accuracy" if setup.n_classes else "valid_loss"
        callbacks.append(
            (
                "early_stopping",
                BestValidationEpoch(
                    monitor=monitor, lower_is_better=monitor == "valid_loss", patience=setup.patience, load_best=True
                ),
            )
        )
    # Always there: it shows itself at verbose=1, which may change between warm-started fits.
    callbacks.append(FitProgressBar())
    # Seeded: a warm start or a loaded model keeps the same split.
    split = (
        None
        if setup.validation_fraction is None
        else ValidSplit(setup.validation_fraction, stratified=setup.n_classes > 0, random_state=setup.seed)
    )
    net = DisentangledVAENet(
        module,
        DisentangledVAELoss(
            setup.reconstruction, setup.kl, setup.beta, setup.class_prior_means, setup.class_pairs
        ),
        optimizer=OPTIMIZERS.get(setup.optimizer, setup.optimizer),
        **{f"optimizer__{name}": value for name, value in optimizer_params(setup.optimizer, device).items()},
        train_split=split,
        callbacks=callbacks,
        device=device,
        seed=setup.seed,
        precision=setup.precision,
        **training_params,
    )
    return net.initialize()
