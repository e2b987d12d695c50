"""skvae: a class-disentangled variational autoencoder as a scikit-learn estimator."""

from .estimator import DisentangledVAE
from .exceptions import ChecksumError, DivergenceError, ModelFileError
from ._version import __version__
from .schedules import Constant, CosineDecay, LinearDecay, SigmoidDecay

__all__ = [
    "ChecksumError",
    "Constant",
    "CosineDecay",
    "DisentangledVAE",
    "DivergenceError",
    "LinearDecay",
    "ModelFileError",
    "SigmoidDecay",
    "__version__",
]
