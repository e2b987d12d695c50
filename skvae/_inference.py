"""Inference with a fitted network: the one path from rows to network outputs.

Everything that runs a fitted :class:`~skvae._net.DisentangledVAENet` on
data -- ``transform``, ``predict_proba``, ``inverse_transform``, the class
regions, the scorers and the displays -- goes through :func:`run_blocks`,
so that a row's result never depends on the rows that came with it, and a
row on which the network overflows is refused, by its index, instead of
coming out as NaN or infinity. It reads ``X`` a block at a time, so input
larger than memory (:mod:`skvae._arrays`) runs in bounded memory.
"""

import contextlib
import hashlib
import warnings

import numpy as np
import torch
from scipy.special import softmax
from sklearn.utils.validation import check_is_fitted, validate_data

from ._arrays import is_out_of_core, validate_blocks
from ._net import AUTOCAST_DTYPES

__all__ = [
    "BLOCK_ROWS",
    "check_forward_finite",
    "check_float32_range",
    "latent_distribution",
    "latent_means",
    "latent_proba",
    "row_keys",
    "row_noise",
    "run_blocks",
    "validate_rows",
]

# The module always runs on blocks of exactly this many rows (the last one
# zero-padded): float32 matrix products give results that depend on the
# number of rows, so a fixed shape makes every row's output independent of
# the batch it came in.
BLOCK_ROWS = 1024

_FLOAT32_MAX = float(np.finfo(np.float32).max)

# Rows named in the error about rows whose outputs are not finite.
_ROWS_SHOWN = 5

# Most standard-normal draws held at once by row_noise: 32 MB of float64.
_NOISE_CHUNK_VALUES = 1 << 22


def check_float32_range(array, name="X"):
    """Refuse finite values that float32, the network's precision, cannot hold."""
    if array.dtype == np.float32 or array.size == 0:
        return
    # Two reductions instead of np.abs, which would copy the whole array.
    largest = max(float(array.max()), -float(array.min()))
    if largest > _FLOAT32_MAX:
        raise ValueError(
            f"{name} holds values as large as {largest:.4g}, beyond float32's range "
            f"(+-{_FLOAT32_MAX:.4g}), in which the network computes. Scale {name} "
            "first, e.g. with StandardScaler."
        )


def validate_rows(estimator, X):
    """``X`` checked against a fitted estimator, as float64 or float32: an
    in-memory array, or the :class:`~skvae._arrays.BlockRows` of an
    out-of-core one, checked block by block."""
    check_is_fitted(estimator)
    if is_out_of_core(X):
        X = validate_blocks(estimator, X, reset=False)
    else:
        X = validate_data(estimator, X, dtype=[np.float64, np.float32], reset=False)
    check_float32_range(X)
    return X


def _float32_view(rows):
    """``rows`` as a float32 tensor, sharing float32 memory instead of copying.

    Inference only reads it, so read-only arrays (memmaps, DataFrame values)
    are fine and torch's warning about them does not apply.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.as_tensor(np.ascontiguousarray(rows), dtype=torch.float32)


def _check_finite_rows(out, arithmetic):
    """Refuse rows of ``out`` that hold NaN or infinity, naming them.

    Inputs are finite by the time they reach the network, so such a row is
    one on which ``arithmetic`` (a dtype's name) overflowed.
    """
    finite = np.isfinite(out).all(axis=1)
    if finite.all():
        return
    rows = np.flatnonzero(~finite)
    shown = ", ".join(str(row) for row in rows[:_ROWS_SHOWN]) + (", ..." if len(rows) > _ROWS_SHOWN else "")
    raise ValueError(
        f"The network's outputs for row{'s' if len(rows) > 1 else ''} {shown} of X ({len(rows)} of "
        f"{len(out)}) are NaN or infinite: their values are too large for the "
        f"model, and its {arithmetic} computation overflows on them. Leave these rows "
        "out, or scale the data (e.g. with StandardScaler) to the range the model is "
        "fitted on."
    )


def run_blocks(net, data, function, n_columns, *, labels=None, mixed=True, dtype=None):
    """Apply ``function`` to ``data`` in fixed-size blocks, without autograd.

    Parameters
    ----------
    net : DisentangledVAENet
        The fitted net; its module is put in evaluation mode.
    data : ndarray or BlockRows of shape (n_samples, n_features)
        Rows to run, float32 or float64, read a block at a time.
    function : callable
        Maps a float32 tensor of :data:`BLOCK_ROWS` rows on the net's device
        to a tensor of ``n_columns`` columns.
    n_columns : int
        Columns of the result.
    labels : ndarray of shape (n_samples,), default=None
        Integer codes passed to ``function`` as a second argument, blocked
        and padded (with -1) like ``data``.
    mixed : bool, default=True
        Run under the net's ``precision`` autocast; False runs as called.
    dtype : numpy dtype, default=None
        dtype of the result; None follows ``data``.

    Returns
    -------
    out : ndarray of shape (n_samples, n_columns)
        Of ``dtype``; by default float32 for float32 ``data``, float64
        otherwise, as scikit-learn transformers do.

    Raises
    ------
    ValueError
        When the results of some rows are NaN or infinite: the error names
        them as rows of ``X`` (finite ``data`` only overflows on values far
        too large).
    """
    device = net.device
    if dtype is None:
        dtype = np.float32 if data.dtype == np.float32 else np.float64
    out = np.empty((len(data), n_columns), dtype=dtype)
    out_tensor = torch.from_numpy(out)  # the same memory: results are copied in once
    net.module_.eval()
    with torch.inference_mode(), net.autocast() if mixed else contextlib.nullcontext():
        for start in range(0, len(data), BLOCK_ROWS):
            rows = _float32_view(data[start : start + BLOCK_ROWS]).to(device)
            n_rows = len(rows)
            if n_rows == BLOCK_ROWS:
                block = rows
            else:
                block = torch.cat([rows, rows.new_zeros((BLOCK_ROWS - n_rows, rows.shape[1]))])
            if labels is None:
                result = function(block)
            else:
                codes = torch.full((BLOCK_ROWS,), -1, dtype=torch.int64)
                codes[:n_rows] = torch.as_tensor(labels[start : start + n_rows])
                result = function(block, codes.to(device))
            # One copy converts the dtype (bfloat16 and float16 have no numpy
            # type) and the device.
            out_tensor[start : start + n_rows].copy_(result[:n_rows].reshape(n_rows, n_columns))
    if len(data):
        # Under autocast the products run in its dtype, whatever the dtype of the results.
        arithmetic = AUTOCAST_DTYPES.get(net.precision, result.dtype) if mixed else result.dtype
        _check_finite_rows(out, str(arithmetic).removeprefix("torch."))
    return out


def latent_means(net, X, n_components):
    """Latent means of validated rows ``X`` under a fitted net."""
    module = net.module_
    return run_blocks(net, X, lambda block: module.encode(block)[0], n_components)


def latent_distribution(net, X, n_components):
    """Means and standard deviations of the latent Gaussians of validated rows ``X``.

    One pass of the encoder gives both, side by side, so that a row whose
    variance overflows is refused like any other.
    """
    module = net.module_

    def mean_and_std(block):
        mu, logvar = module.encode(block)
        return torch.cat([mu, torch.exp(0.5 * logvar)], dim=1)

    both = run_blocks(net, X, mean_and_std, 2 * n_components)
    return both[:, :n_components], both[:, n_components:]


def row_keys(X):
    """A 63-bit key of each row's float32 values, the values the network sees.

    Seeds per-row random streams (:func:`row_noise`), so that what is drawn
    for a row depends on the row alone, not on its position or the rows
    that come with it; equal rows get equal keys.
    """
    keys = np.empty(len(X), dtype=np.int64)
    # A block at a time: X may be larger than memory, and its float32 copy too.
    for start in range(0, len(X), BLOCK_ROWS):
        rows = np.ascontiguousarray(X[start : start + BLOCK_ROWS], dtype=np.float32)
        digests = (hashlib.blake2b(row.tobytes(), digest_size=8).digest() for row in rows)
        keys[start : start + len(rows)] = [int.from_bytes(digest, "little") >> 1 for digest in digests]
    return keys


def row_noise(keys, seed, n_draws, n_components, device):
    """Standard-normal draws of each row's own stream, in chunks of bounded size.

    Parameters
    ----------
    keys : Tensor of shape (n_rows,)
        int64 keys from :func:`row_keys` (any: a padding row's too), on the CPU.
    seed : int
        Second part of every stream's key: another seed, other draws.
    n_draws : int
        Draws per row, of ``n_components`` values each.
    n_components : int
    device : torch.device
        Where the chunks go.

    Yields
    ------
    chunk : Tensor of shape (n_rows, n_chunk, n_components)
        float64; the chunks hold the ``n_draws`` draws of every row in
        order, so the first ``k`` draws are the same for any ``n_draws``
        of at least ``k``.
    """
    stream_keys = np.empty((len(keys), 2), dtype=np.uint64)
    stream_keys[:, 0] = keys.numpy().view(np.uint64)
    stream_keys[:, 1] = seed
    generators = [np.random.Generator(np.random.Philox(key=key)) for key in stream_keys]
    per_chunk = max(1, min(n_draws, _NOISE_CHUNK_VALUES // (len(generators) * n_components)))
    for start in range(0, n_draws, per_chunk):
        size = (min(per_chunk, n_draws - start), n_components)
        chunk = np.stack([generator.standard_normal(size) for generator in generators])
        yield torch.from_numpy(chunk).to(device)


def check_forward_finite(net, X, n_components):
    """Refuse rows of ``X`` on which a fitted net's forward pass overflows.

    Runs what the training loss is made of -- the latent mean and variance
    and the decoder's output at the mean -- at the net's current weights,
    and raises the ``ValueError`` of :func:`run_blocks` that names the rows
    whose results are NaN or infinite.
    """
    module = net.module_

    def loss_inputs(block):
        mu, logvar = module.encode(block)
        return torch.cat([mu.float(), logvar.exp().float(), module.decoder(mu).flatten(1).float()], dim=1)

    run_blocks(net, X, loss_inputs, 2 * n_components + X.shape[1])


def latent_proba(net, Z, n_classes):
    """A fitted net's latent-classifier probabilities at latent points ``Z``.

    The head runs in float64: float32 products with as few output columns as
    its layers have give results that depend on a row's position in the
    block (seen with 10 columns), and the head is too small for the cost to
    matter. The softmax runs in float64 too, so that rows sum to 1 to double
    precision.
    """
    head = net.module_.float64_head()
    logits = run_blocks(net, np.asarray(Z, dtype=np.float64), lambda block: head(block.double()), n_classes, mixed=False)
    return softmax(logits.astype(np.float64), axis=1)
