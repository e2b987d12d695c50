"""Input larger than memory: arrays read in blocks of rows, never whole.

``fit``, ``partial_fit`` and the inference methods take, besides in-memory
arrays, any array whose rows can be read a block at a time: a
:class:`numpy.memmap`, an ``h5py.Dataset`` or ``zarr.Array`` (or any object
with ``shape``, a numpy ``dtype`` and ``__getitem__`` taking slices and
sorted integer arrays), a ``dask.array.Array``, and
:class:`skvae.datasets.ScaledArray` over any of them (:func:`is_out_of_core`).
Such ``X`` is checked block by block as ``validate_data`` checks an
in-memory one (:func:`validate_blocks`), and the estimator then reads it
through a :class:`BlockRows`, which hands out blocks of float32 or float64
rows as the in-memory path's ``X`` would hold them. A plain ``ndarray``
never comes here: the in-memory path is unchanged.
"""

import math
from collections import OrderedDict
from numbers import Integral

import numpy as np
import scipy.sparse
import torch
from sklearn.utils.validation import validate_data

__all__ = [
    "BlockRows",
    "ChunkCache",
    "ChunkWindowBatches",
    "SelectedRows",
    "is_out_of_core",
    "shuffle_window_chunks",
    "validate_blocks",
    "weighted_class_means",
]

# Rows read at once by a pass over the data (the finiteness scan, the class
# means): about this many bytes of float64.
SCAN_BLOCK_BYTES = 32 << 20

# Training from a chunked store shuffles within windows of chunks of about
# this many bytes of float32 (see ChunkWindowBatches); the dataset caches
# two windows' chunks.
SHUFFLE_WINDOW_BYTES = 64 << 20


def is_out_of_core(X):
    """Whether ``X`` is read in blocks rather than converted to one in-memory array.

    True for a :class:`numpy.memmap`, and for any object that is not an
    ``ndarray`` nor a sparse matrix and has a ``shape``, a numpy ``dtype``
    and ``__getitem__`` (:func:`validate_blocks` refuses those that are not
    2-D): ``h5py.Dataset``, ``zarr.Array``,
    ``dask.array.Array``, :class:`skvae.datasets.ScaledArray`. Lists,
    DataFrames (which have no single ``dtype``), tensors (whose ``dtype`` is
    torch's) and in-memory arrays keep the in-memory path.
    """
    if isinstance(X, np.memmap):
        return True
    if isinstance(X, np.ndarray) or scipy.sparse.issparse(X):
        return False
    return (
        isinstance(getattr(X, "dtype", None), np.dtype)
        and hasattr(X, "__getitem__")
        and isinstance(getattr(X, "shape", None), tuple)
    )


def _chunk_rows(array):
    """Rows per chunk of a chunked store (h5py, zarr, dask), None for others.

    h5py and zarr give ``chunks`` as a tuple of ints (None for a contiguous
    h5py dataset), dask as a tuple of tuples of chunk sizes per axis.
    """
    chunks = getattr(array, "chunks", None)
    if not chunks:
        return None
    first = chunks[0]
    rows = max(first) if isinstance(first, tuple) else first
    return int(rows) if isinstance(rows, Integral) and rows > 0 else None


def _read(array, key, dtype):
    """``array[key]`` as an in-memory array of ``dtype`` (computed, for dask)."""
    return np.asarray(array[key]).astype(dtype, copy=False)


class BlockRows:
    """Validated rows of an out-of-core array, read as float32 or float64.

    What the estimator holds instead of an in-memory ``X``: slicing reads
    those rows (``rows[start:stop]``, as :func:`~skvae._inference.run_blocks`
    does), :meth:`take` gathers sorted rows, :meth:`blocks` iterates over
    all of them, and ``min()``/``max()`` give the extremes the validation
    scan found. Values are those of the array converted to ``dtype``, as
    ``validate_data`` would convert the whole array.

    Parameters
    ----------
    array : array-like of shape (n_samples, n_features)
        The row-indexable array.
    dtype : {np.float32, np.float64}
        dtype of the rows read.
    """

    ndim = 2

    def __init__(self, array, dtype):
        self.array = array
        self.dtype = np.dtype(dtype)
        self.shape = tuple(int(n) for n in array.shape)
        self.size = self.shape[0] * self.shape[1]
        self.chunk_rows = _chunk_rows(array)
        self._extremes = None

    def __len__(self):
        return self.shape[0]

    def __getitem__(self, key):
        if not isinstance(key, slice):
            raise TypeError(f"BlockRows reads slices of rows; got {type(key).__name__}. Use take for index arrays.")
        return _read(self.array, key, self.dtype)

    def take(self, rows):
        """The rows at ``rows``, sorted unique positions, in one read."""
        if len(rows) == 0:
            return np.empty((0, self.shape[1]), dtype=self.dtype)
        if rows[-1] - rows[0] + 1 == len(rows):  # contiguous: a slice reads less metadata
            return self[int(rows[0]) : int(rows[-1]) + 1]
        return _read(self.array, rows, self.dtype)

    def block_rows(self):
        """Rows per block of a pass over the data: whole chunks of a chunked store."""
        rows = max(1, SCAN_BLOCK_BYTES // (8 * max(self.shape[1], 1)))
        if self.chunk_rows:
            rows = max(1, rows // self.chunk_rows) * self.chunk_rows
        return rows

    def blocks(self):
        """Yield ``(start, block)``: every row, in order, a block at a time."""
        step = self.block_rows()
        for start in range(0, len(self), step):
            yield start, self[start : start + step]

    def scan(self, input_name="X"):
        """Read every block once: refuse NaN and infinity, naming the rows,
        and record the smallest and largest value."""
        low, high = math.inf, -math.inf
        check_finite = self.array.dtype.kind == "f"
        for start, block in self.blocks():
            if check_finite and not np.isfinite(block).all():
                _refuse_non_finite(block, start, len(self), input_name)
            if block.size:
                low, high = min(low, float(block.min())), max(high, float(block.max()))
        self._extremes = (low, high)

    def min(self):
        """Smallest value, from the validation scan."""
        return self._extremes[0]

    def max(self):
        """Largest value, from the validation scan."""
        return self._extremes[1]


class SelectedRows:
    """Some rows of a :class:`BlockRows`, read by slices as the rows of an
    array of their own.

    ``selected[start:stop]`` reads the rows at ``positions[start:stop]`` in
    one gather, so that a pass over the selected rows in blocks (the label
    propagation's neighbour search) reads no other rows.

    Parameters
    ----------
    rows : BlockRows
        The rows to select from.
    positions : ndarray of shape (n_selected,)
        Sorted, unique positions of the selected rows in ``rows``.
    """

    ndim = 2

    def __init__(self, rows, positions):
        self.rows = rows
        self.positions = np.asarray(positions)
        self.shape = (len(self.positions), rows.shape[1])

    def __len__(self):
        return self.shape[0]

    def __getitem__(self, key):
        if not isinstance(key, slice):
            raise TypeError(f"SelectedRows reads slices of rows; got {type(key).__name__}.")
        return self.rows.take(self.positions[key])


def _refuse_non_finite(block, start, n_samples, input_name):
    bad = ~np.isfinite(block).all(axis=1)
    first = start + int(np.argmax(bad))
    what = "NaN" if np.isnan(block).any() else "infinity"
    stop = start + len(block)
    raise ValueError(
        f"Input {input_name} contains {what}: {int(bad.sum())} of its rows {start} to {stop - 1} "
        f"(of {n_samples}; the first at row {first}) hold NaN or infinite values. An out-of-core "
        f"{input_name} is checked block by block before use, and nothing was trained or computed. "
        "DisentangledVAE does not accept missing values: remove or impute those rows first."
    )


def validate_blocks(estimator, X, *, reset, input_name="X"):
    """Check an out-of-core ``X`` as ``validate_data`` checks an in-memory one.

    The shape (2-D, at least one row and one column), a numeric dtype, the
    number of features against a fitted ``estimator`` (``reset=False``) or
    recorded (``reset=True``), then every value, block by block: NaN and
    infinity are refused with the rows that hold them.

    Returns
    -------
    rows : BlockRows
        ``X`` read as float32 when it is float32, else as float64 (the
        dtypes ``validate_data(dtype=[np.float64, np.float32])`` gives).
    """
    shape = X.shape
    if len(shape) != 2:
        raise ValueError(
            f"Expected a 2-dimensional {input_name} of shape (n_samples, n_features); got shape "
            f"{shape}. Reshape it, or wrap it so that each row is one sample's features."
        )
    if any(not isinstance(n, Integral) for n in shape):
        raise ValueError(
            f"{input_name} has shape {shape}, whose number of rows is not known (a dask array "
            f"with unknown chunk sizes); call {input_name}.compute_chunk_sizes() first."
        )
    name = type(estimator).__name__
    if shape[0] < 1 or shape[1] < 1:
        raise ValueError(
            f"Found array with {shape[0]} sample(s) and {shape[1]} feature(s) (shape={shape}) "
            f"while a minimum of 1 of each is required by {name}."
        )
    dtype = np.dtype(X.dtype)
    if dtype.kind not in "biuf":
        raise ValueError(
            f"{input_name} holds {dtype} values, but {name} needs numbers (bool, integer or "
            f"float). Convert {input_name} to a numeric dtype first."
        )
    validate_data(estimator, X, skip_check_array=True, reset=reset)  # n_features_in_ and its check
    rows = BlockRows(X, np.float32 if dtype == np.float32 else np.float64)
    rows.scan(input_name)
    return rows


def weighted_class_means(rows, y_encoded, sample_weight, n_classes):
    """Mean row of each class, weighted (equally for a class whose rows all
    weigh 0), accumulated in float64 over the blocks of ``rows``."""
    n_features = rows.shape[1]
    weighted = np.zeros((n_classes, n_features))
    plain = np.zeros((n_classes, n_features))
    weights, counts = np.zeros(n_classes), np.zeros(n_classes)
    for start, block in rows.blocks():
        codes = y_encoded[start : start + len(block)]
        w = sample_weight[start : start + len(block)]
        labeled = codes >= 0
        one_hot = np.zeros((int(labeled.sum()), n_classes))
        one_hot[np.arange(len(one_hot)), codes[labeled]] = 1.0
        block = block[labeled].astype(np.float64, copy=False)
        weighted += (one_hot * w[labeled, None]).T @ block
        plain += one_hot.T @ block
        weights += one_hot.T @ w[labeled]
        counts += one_hot.sum(axis=0)
    by_weight = weights > 0
    return np.where(
        by_weight[:, None],
        weighted / np.where(by_weight, weights, 1.0)[:, None],
        plain / np.maximum(counts, 1.0)[:, None],
    )


def shuffle_window_chunks(chunk_rows, n_features):
    """Chunks per shuffling window: about ``SHUFFLE_WINDOW_BYTES`` of float32 rows."""
    return max(1, SHUFFLE_WINDOW_BYTES // (4 * max(n_features, 1) * chunk_rows))


class ChunkWindowBatches(torch.utils.data.Sampler):
    """Shuffled batches that read a chunked store a window of chunks at a time.

    Each epoch puts the chunks in a random order, groups them into windows
    of ``window_chunks`` consecutive chunks of that order, and shuffles the
    rows within each window; the batches are consecutive runs of this
    order, so a batch spans at most two windows and every chunk is read
    about once an epoch (a full shuffle would read a chunk for nearly every
    row). An epoch has ``ceil(n_rows / batch_size)`` batches, as with a
    full shuffle.

    Parameters
    ----------
    chunk_of_row : Tensor of shape (n_rows,)
        The chunk of the store each row of the dataset comes from.
    window_chunks : int
        Chunks per window.
    batch_size : int
        Rows per batch.
    generator : torch.Generator
        Source of the shuffles.
    """

    def __init__(self, chunk_of_row, window_chunks, batch_size, generator):
        self.chunk_of_row = chunk_of_row
        self.window_chunks = window_chunks
        self.batch_size = batch_size
        self.generator = generator

    def __len__(self):
        return math.ceil(len(self.chunk_of_row) / self.batch_size)

    def __iter__(self):
        n_rows = len(self.chunk_of_row)
        n_chunks = int(self.chunk_of_row.max()) + 1
        place = torch.empty(n_chunks, dtype=torch.int64)
        place[torch.randperm(n_chunks, generator=self.generator)] = torch.arange(n_chunks)
        window = place[self.chunk_of_row] // self.window_chunks
        # Distinct random keys: rows sort by window, then at random within it.
        within = torch.randperm(n_rows, generator=self.generator)
        order = torch.argsort(window * n_rows + within)
        for batch in order.split(self.batch_size):
            yield batch.tolist()


class ChunkCache:
    """The last chunks read from a chunked store, as float32, oldest dropped first.

    Parameters
    ----------
    rows : BlockRows
        The store's rows.
    capacity : int
        Chunks kept.
    """

    def __init__(self, rows, capacity):
        self.rows = rows
        self.capacity = capacity
        self._chunks = OrderedDict()

    def gather(self, positions):
        """float32 rows at sorted unique ``positions``, from cached chunks;
        read directly when they span more chunks than the cache holds."""
        size = self.rows.chunk_rows
        chunk_of = positions // size
        needed = np.unique(chunk_of)
        if len(needed) > self.capacity:
            return self.rows.take(positions).astype(np.float32, copy=False)
        parts = []
        for chunk in needed.tolist():
            if chunk not in self._chunks:
                self._chunks[chunk] = self.rows[chunk * size : (chunk + 1) * size].astype(np.float32, copy=False)
                if len(self._chunks) > self.capacity:
                    self._chunks.popitem(last=False)
            parts.append(self._chunks[chunk][positions[chunk_of == chunk] - chunk * size])
        return np.concatenate(parts)
