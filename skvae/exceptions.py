"""Exceptions raised by skvae."""

__all__ = ["ChecksumError", "DivergenceError", "ModelFileError"]


class DivergenceError(FloatingPointError, ValueError):
    """Training produced a loss that is NaN or infinite.

    Subclasses both :class:`FloatingPointError` (what happened) and
    :class:`ValueError` (how scikit-learn reports a fit that cannot proceed
    with the given data and parameters).

    Like any other failed fit, a diverged ``fit`` or ``partial_fit`` leaves
    the estimator as it was before the call (a previous fit intact, or
    unfitted); what the training reached before it diverged comes with the
    error.

    Attributes
    ----------
    last_finite_estimator : DisentangledVAE or None
        A copy of the estimator fitted to the training's last finite state:
        the weights of its last finished epoch (or the initial ones when
        none finished), to inspect, or to train further with
        ``warm_start=True`` once the cause is gone (e.g. after lowering
        ``lr``). None when the rows of ``X`` overflow the network even at
        those weights: the message then names them.
    """

    last_finite_estimator = None


class ChecksumError(ValueError):
    """A dataset file's md5 checksum does not match the official one."""


class ModelFileError(ValueError):
    """A model file is truncated, corrupted, of another format version, or
    not a model file at all."""
