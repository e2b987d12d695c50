"""Exact nearest neighbours of every row of data, in memory O(n_samples * k).

The kNN graph of :func:`skvae.losses.propagate_labels` needs, for each row,
its ``k`` nearest rows. :func:`nearest_neighbors` finds them with
scikit-learn's exact search, one block of reference rows against one block
of query rows at a time, and keeps the ``k`` best found so far for each
row: it never holds a copy of the data larger than two blocks, and reads the
rows a block at a time from anything that slices into arrays (an
``ndarray``, a :class:`numpy.memmap`, :class:`~skvae._arrays.BlockRows`).
"""

import numpy as np
from sklearn.neighbors import NearestNeighbors

__all__ = ["BLOCK_BYTES", "nearest_neighbors"]

#: Bytes of float64 rows in a block of the search: a query or reference
#: block. Data that fit in one block are searched as one whole.
BLOCK_BYTES = 64 << 20


def nearest_neighbors(X, n_neighbors, block_bytes=None):
    """The ``n_neighbors`` nearest rows of ``X`` (Euclidean) to each of its rows.

    Exact search, the row itself included (at distance about 0). Each block
    of reference rows, converted to float64, is indexed by
    :class:`~sklearn.neighbors.NearestNeighbors` (``algorithm="auto"``)
    and queried with every block of rows; each row keeps the
    ``n_neighbors`` closest of the neighbours found so far. Data of one
    block are thus searched as ``NearestNeighbors(...).fit(X).kneighbors(X)``
    on a float64 copy of ``X`` searches them; with more blocks the
    neighbours are the same, ties aside. ``X`` is read once per reference
    block.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Rows readable by slices, ``X[start:stop]`` giving an ndarray.
    n_neighbors : int
        Neighbours of each row, at most ``n_samples``.
    block_bytes : int, default=None
        Bytes of float64 rows in a block; None for ``BLOCK_BYTES``. Bounds
        the memory the search uses besides its result.

    Returns
    -------
    distances : ndarray of shape (n_samples, n_neighbors)
        Distances to the neighbours, increasing along each row.
    neighbors : ndarray of shape (n_samples, n_neighbors)
        Row positions of the neighbours.
    """
    n_samples = len(X)
    if not 1 <= n_neighbors <= n_samples:
        raise ValueError(f"n_neighbors must be between 1 and the {n_samples} samples; got {n_neighbors}.")
    block_bytes = BLOCK_BYTES if block_bytes is None else block_bytes
    block_rows = max(n_neighbors, block_bytes // (8 * max(X.shape[1], 1)))
    distances = np.empty((n_samples, n_neighbors))
    neighbors = np.empty((n_samples, n_neighbors), dtype=np.int64)
    for reference_start in range(0, n_samples, block_rows):
        reference = _read(X, reference_start, block_rows)
        search = NearestNeighbors(n_neighbors=min(n_neighbors, len(reference))).fit(reference)
        for query_start in range(0, n_samples, block_rows):
            query = reference if query_start == reference_start else _read(X, query_start, block_rows)
            found_distances, found_neighbors = search.kneighbors(query)
            rows = slice(query_start, query_start + len(query))
            if reference_start == 0:
                distances[rows], neighbors[rows] = found_distances, found_neighbors
                continue
            merged_distances = np.hstack([distances[rows], found_distances])
            merged_neighbors = np.hstack([neighbors[rows], found_neighbors + reference_start])
            # Nearest first; of equal distances, the one found first.
            kept = np.argsort(merged_distances, axis=1, kind="stable")[:, :n_neighbors]
            distances[rows] = np.take_along_axis(merged_distances, kept, axis=1)
            neighbors[rows] = np.take_along_axis(merged_neighbors, kept, axis=1)
    return distances, neighbors


def _read(X, start, rows):
    """Rows ``start`` to ``start + rows`` of ``X`` as a float64 array."""
    return np.asarray(X[start : start + rows], dtype=np.float64).reshape(-1, X.shape[1])
