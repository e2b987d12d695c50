"""skvae: a class-disentangled variational autoencoder as a scikit-learn estimator."""

import os
import sys

# torch's OpenMP threads busy-wait by default: while another process holds a
# core, training then runs ~30x slower. OpenMP reads this once, when torch
# loads it, so it only helps when torch is not imported yet; a value the
# user set is kept.
if "torch" not in sys.modules:
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from .estimator import DisentangledVAE  # noqa: E402
from .exceptions import ChecksumError, DivergenceError, ModelFileError  # noqa: E402
from ._version import __version__  # noqa: E402
from .schedules import Constant, CosineDecay, LinearDecay, SigmoidDecay  # noqa: E402

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
