"""PyTorch modules: encoders, decoders, the latent classifier and the VAE."""

import copy
import math

import torch
from torch import nn

__all__ = [
    "ConvEncoder",
    "DisentangledVAEModule",
    "LatentClassifier",
    "MLPDecoder",
    "MLPEncoder",
    "build_seeded",
]


def build_seeded(build, generator):
    """Build a module with ``build()`` and initialise it from ``generator``.

    The module is built on the meta device, so that building draws nothing
    from torch's global random state, and then gets PyTorch's default
    initialisation (Kaiming-uniform weights, uniform biases), drawn from
    ``generator`` alone: two fits with the same seed in two threads get the
    same weights, and neither disturbs the other's random draws.

    Parameters
    ----------
    build : callable
        Returns a new ``nn.Module`` made of linear and convolution layers and
        parameter-free layers.
    generator : torch.Generator
        CPU generator the initial weights are drawn from.

    Returns
    -------
    module : nn.Module
        On the CPU.
    """
    with torch.device("meta"):
        module = build()
    module = module.to_empty(device="cpu")
    with torch.no_grad():
        for layer in module.modules():
            if isinstance(layer, (nn.Linear, nn.modules.conv._ConvNd)):
                nn.init.kaiming_uniform_(layer.weight, a=math.sqrt(5), generator=generator)
                if layer.bias is not None:
                    fan_in, _ = nn.init._calculate_fan_in_and_fan_out(layer.weight)
                    bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0.0
                    nn.init.uniform_(layer.bias, -bound, bound, generator=generator)
            elif any(True for _ in layer.parameters(recurse=False)):
                raise TypeError(f"build_seeded cannot initialise {type(layer).__name__} layers.")
    return module


def _mlp(sizes, activation=nn.ReLU):
    """Linear layers of the given sizes with an activation after each."""
    layers = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(n_in, n_out), activation()]
    return nn.Sequential(*layers)


class MLPEncoder(nn.Module):
    """Fully connected encoder returning the Gaussian's mean and log-variance."""

    def __init__(self, n_features, hidden_dims, n_components):
        super().__init__()
        self.body = _mlp([n_features, *hidden_dims])
        width = hidden_dims[-1] if hidden_dims else n_features
        self.mu = nn.Linear(width, n_components)
        self.logvar = nn.Linear(width, n_components)

    def forward(self, X):
        h = self.body(X)
        return self.mu(h), self.logvar(h)


class MLPDecoder(nn.Module):
    """Fully connected decoder, mirroring :class:`MLPEncoder`."""

    def __init__(self, n_components, hidden_dims, n_features):
        super().__init__()
        hidden = list(reversed(hidden_dims))
        self.body = _mlp([n_components, *hidden])
        self.out = nn.Linear(hidden[-1] if hidden else n_components, n_features)

    def forward(self, z):
        return self.out(self.body(z))

    def layers(self):
        """The torch layers that :meth:`forward` runs, in order."""
        return [*self.body, self.out]


def _conv_sizes(size):
    """Spatial sizes after each of the two stride-2 convolutions."""
    first = math.ceil(size / 2)
    return first, math.ceil(first / 2)


def _autocast_dtype(device_type):
    """The dtype of autocast on ``device_type`` in this thread, None when it is off."""
    if hasattr(torch, "get_autocast_dtype"):  # torch >= 2.4
        on = torch.is_autocast_enabled(device_type)
        return torch.get_autocast_dtype(device_type) if on else None
    if device_type == "cpu":
        return torch.get_autocast_cpu_dtype() if torch.is_autocast_cpu_enabled() else None
    return torch.get_autocast_gpu_dtype() if torch.is_autocast_enabled() else None


def _cpu_bf16_autocast():
    """Whether bfloat16 autocast is on for the CPU in this thread."""
    return _autocast_dtype("cpu") == torch.bfloat16


class _FloatWeightGradConv(torch.autograd.Function):
    """A 2-D convolution in bfloat16 whose weight gradient is float32 work.

    The forward pass and the gradient of the input are those of autocast
    (the same oneDNN kernels, on bfloat16 copies of the input and weights).
    The weight and bias gradients are computed by float32 kernels from the
    same bfloat16 values, widened. oneDNN's bfloat16 weight-gradient kernel
    (``jit_bf16``, AVX-512 BF16) stalled on a 2-core CPU shared with other
    processes: 0.1-3 s per call instead of 5-20 ms, for every convolution
    of the former conv encoder and decoder, so that a training step took up
    to 26 s (``benchmarks/RESULTS.md``, "Conv training step"); with one
    thread, or in float32, it did not. The gradient is at least as exact as autocast's (float32
    sums, not rounded to bfloat16).
    """

    @staticmethod
    def forward(ctx, x, weight, bias, stride, padding):
        x16, weight16 = x.to(torch.bfloat16), weight.to(torch.bfloat16)
        bias16 = None if bias is None else bias.to(torch.bfloat16)
        ctx.save_for_backward(x16, weight16)
        ctx.settings = (stride, padding, [1, 1], False, [0, 0], 1)
        ctx.has_bias, ctx.x_dtype = bias is not None, x.dtype
        return torch.convolution(x16, weight16, bias16, *ctx.settings)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        x16, weight16 = ctx.saved_tensors
        bias_sizes = [weight16.shape[0]]
        need_x, need_weight, need_bias = ctx.needs_input_grad[:3]
        grad_x = grad_weight = grad_bias = None
        if need_x:
            grad_x = torch.ops.aten.convolution_backward(
                grad.to(torch.bfloat16), x16, weight16, bias_sizes, *ctx.settings, [True, False, False]
            )[0].to(ctx.x_dtype)
        if need_weight or (need_bias and ctx.has_bias):
            _, grad_weight, grad_bias = torch.ops.aten.convolution_backward(
                grad.float(), x16.float(), weight16.float(), bias_sizes, *ctx.settings,
                [False, need_weight, need_bias and ctx.has_bias],
            )
        return grad_x, grad_weight, grad_bias, None, None


def _run_conv(layer, x):
    """``layer(x)`` for a 2-D convolution; under bfloat16 autocast with gradients on the CPU,
    its weight gradient is float32 work (:class:`_FloatWeightGradConv`).

    The values computed are those of ``layer(x)`` up to rounding. The
    activations stay NCHW: channels-last, which paid 1.4x for the former
    conv pair's 32-64 channels, left this encoder's 8-16-channel step no
    faster (0.88-1.03x in three runs; ``benchmarks/RESULTS.md``, "Conv
    training step").
    """
    needs_grad = torch.is_grad_enabled() and any(p.requires_grad for p in layer.parameters())
    if x.device.type != "cpu" or not (needs_grad and _cpu_bf16_autocast()):
        return layer(x)
    plain = layer.padding_mode == "zeros" and tuple(layer.dilation) == (1, 1) and layer.groups == 1
    if not plain or isinstance(layer.padding, str):
        return layer(x)  # not the layers of this module; autocast's own path
    return _FloatWeightGradConv.apply(x, layer.weight, layer.bias, list(layer.stride), list(layer.padding))


def _run_body(body, x):
    """``body(x)`` for an ``nn.Sequential``, its convolutions through :func:`_run_conv`."""
    for layer in body:
        x = _run_conv(layer, x) if isinstance(layer, nn.Conv2d) else layer(x)
    return x


class ConvEncoder(nn.Module):
    """Two stride-2 convolutions, then the MLP encoder's hidden layers.

    The convolutions (3x3, ``channels`` filters, ReLU) see the image as an
    image, so that a stroke moved by a pixel or two makes the same features;
    the dense layers of ``hidden_dims`` that follow are those of
    :class:`MLPEncoder`. Its decoder is an :class:`MLPDecoder`: the
    classifier reads the code the encoder makes, and the transposed
    convolutions of the former conv decoder did about 10 times the dense
    decoder's arithmetic per 28x28 image (5.6 million multiply-adds against
    0.53 million; ``benchmarks/RESULTS.md``, "Convolutional encoder").
    """

    def __init__(self, image_shape, hidden_dims, n_components, channels=(8, 16)):
        super().__init__()
        self.image_shape = tuple(image_shape)
        n_channels, height, width = self.image_shape
        _, h2 = _conv_sizes(height)
        _, w2 = _conv_sizes(width)
        self.convolutions = nn.Sequential(
            nn.Conv2d(n_channels, channels[0], 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(channels[0], channels[1], 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Flatten(),
        )
        self.body = _mlp([channels[1] * h2 * w2, *hidden_dims])
        width = hidden_dims[-1] if hidden_dims else channels[1] * h2 * w2
        self.mu = nn.Linear(width, n_components)
        self.logvar = nn.Linear(width, n_components)

    def forward(self, X):
        h = self.body(_run_body(self.convolutions, X.reshape(-1, *self.image_shape)))
        return self.mu(h), self.logvar(h)


class LatentClassifier(nn.Module):
    """Small LeakyReLU MLP from the latent code to class logits."""

    def __init__(self, n_components, hidden_dims, n_classes):
        super().__init__()
        self.body = _mlp([n_components, *hidden_dims], activation=nn.LeakyReLU)
        self.out = nn.Linear(hidden_dims[-1] if hidden_dims else n_components, n_classes)

    def forward(self, z):
        return self.out(self.body(z))

    def layers(self):
        """The torch layers that :meth:`forward` runs, in order."""
        return [*self.body, self.out]


class DisentangledVAEModule(nn.Module):
    """A VAE with an optional classifier head on its latent code.

    In training mode the latent code is sampled with the
    reparameterisation trick and the head sees the sample; in evaluation
    mode the code is the mean. The sampling noise is drawn from the
    ``generator`` passed to :meth:`forward` (torch's global random state
    when None).

    Parameters
    ----------
    encoder : nn.Module
        Maps a batch to ``(mu, logvar)``.
    decoder : nn.Module
        Maps latent codes to the decoder output (logits for a BCE loss).
    classifier : nn.Module or None
        Maps latent codes to class logits; None for a plain VAE.
    output_activation : {"sigmoid", None}
        Applied by :meth:`decode` to turn decoder output into data.
    input_dropout : float
        In training mode, the fraction of the encoder's input values zeroed
        at random (the others scaled by ``1 / (1 - input_dropout)``), drawn
        from ``generator``. Only the encoder sees the masked input; the
        loss compares the reconstruction with the clean one.
    """

    def __init__(self, encoder, decoder, classifier=None, output_activation=None, input_dropout=0.0):
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.classifier = classifier
        self.output_activation = output_activation
        self.input_dropout = input_dropout

    def draw_noise(self, X, generator=None):
        """The random draws of one training forward pass of ``X``, before it.

        Returns ``(keep, noise)``: which input values the masking noise
        keeps (None without ``input_dropout``), and the standard-normal
        draws of the sampled latent codes, in the dtype of the latent means
        (that of autocast when it is on). Drawn from ``generator`` in the
        order :meth:`forward` draws them itself, so that a forward pass
        handed them computes what one drawing them would: a compiled
        forward pass (``torch.compile``) is handed them, as it cannot draw
        from a generator. Needs the encoder's latent means to come from a
        linear layer ``mu``, as in skvae's encoders.
        """
        means = self.encoder.mu
        dtype = _autocast_dtype(X.device.type) or means.weight.dtype
        keep = self._input_mask(X, generator)
        noise = torch.randn((len(X), means.out_features), generator=generator, device=X.device, dtype=dtype)
        return keep, noise

    def _input_mask(self, X, generator):
        """The input values the masking noise keeps; None without it."""
        if not self.input_dropout:
            return None
        # Drawn from the fit's generator, not torch's global state, so
        # that fits in threads stay reproducible.
        return torch.rand(X.shape, generator=generator, device=X.device) >= self.input_dropout

    def forward(self, X, generator=None, noise=None):
        """``(output, mu, logvar, logits)`` of a batch ``X``.

        In training mode the random draws are ``noise``, as returned by
        :meth:`draw_noise`, or drawn from ``generator`` when None.
        """
        keep, latent_noise = (None, None) if noise is None else noise
        if self.training and noise is None:
            keep = self._input_mask(X, generator)
        if self.training and keep is not None:
            X = X * keep / (1.0 - self.input_dropout)
        mu, logvar = self.encoder(X)
        if self.training:
            if latent_noise is None:
                latent_noise = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
            z = mu + latent_noise * torch.exp(0.5 * logvar)
        else:
            z = mu
        logits = self.classifier(z) if self.classifier is not None else None
        return self.decoder(z), mu, logvar, logits

    def encode(self, X):
        """``(mu, logvar)`` of the latent code of ``X``, without input noise."""
        return self.encoder(X)

    def decode(self, z):
        """Decoded data for latent codes ``z``."""
        out = self.decoder(z)
        return torch.sigmoid(out) if self.output_activation == "sigmoid" else out

    def decoder_layers(self):
        """The torch layers of :meth:`decode`, in order, its output activation included."""
        layers = self.decoder.layers()
        return [*layers, nn.Sigmoid()] if self.output_activation == "sigmoid" else layers

    def head_layers(self):
        """The torch layers of :meth:`head_logits`, in order; None without a classifier."""
        return None if self.classifier is None else self.classifier.layers()

    def head_logits(self, z):
        """The latent classifier's class logits at latent codes ``z``."""
        return self.classifier(z)

    def float64_head(self):
        """A float64 copy of the latent classifier, for exact inference of its few columns."""
        return copy.deepcopy(self.classifier).to(torch.float64)
