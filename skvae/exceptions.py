"""Exceptions raised by skvae."""

__all__ = ["ChecksumError", "DivergenceError", "ModelFileError"]


class DivergenceError(FloatingPointError, ValueError):
    """Training produced a loss that is NaN or infinite.

    Subclasses both :class:`FloatingPointError` (what happened) and
    :class:`ValueError` (how scikit-learn reports a fit that cannot proceed
    with the given data and parameters).
    """


class ChecksumError(ValueError):
    """A dataset file's md5 checksum does not match the official one."""


class ModelFileError(ValueError):
    """A model file is truncated, corrupted, of another format version, or
    not a model file at all."""
