"""Nearest neighbours of every row of data, in memory O(n_samples * k).

The kNN graph of :func:`skvae.losses.propagate_labels` needs, for each row,
its ``k`` nearest rows. :func:`nearest_neighbors` finds them with
scikit-learn's exact search, one block of reference rows against one block
of query rows at a time, and keeps the ``k`` best found so far for each
row: it never holds a copy of the data larger than two blocks, and reads the
rows a block at a time from anything that slices into arrays (an
``ndarray``, a :class:`numpy.memmap`, :class:`~skvae._arrays.BlockRows`).

An exact search compares every pair of rows: a million rows of 40 features
took 64 minutes on one core here. From ``APPROXIMATE_FROM`` rows of an
ndarray or memmap the search is approximate instead: the rows are grouped
into cells around k-means centres, and each row is compared with the rows
of the cells nearest its own (an inverted-file search).
"""

import warnings

import numpy as np
from sklearn.cluster import KMeans
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import pairwise_distances_argmin
from sklearn.neighbors import NearestNeighbors

__all__ = ["APPROXIMATE_FROM", "BLOCK_BYTES", "nearest_neighbors"]

#: Bytes of float64 rows in a block of the search: a query or reference
#: block. Data that fit in one block are searched as one whole.
BLOCK_BYTES = 64 << 20

#: Rows of an ndarray (or memmap) from which the search is approximate
#: (``benchmarks/RESULTS.md``, "Label propagation at scale": at 200,000 rows
#: of 40 features an exact search took 2.5 minutes on one core here, a
#: million 64 minutes -- the approximate one 3 minutes, its labels 1.5
#: points less accurate on those hard, isotropic blobs).
APPROXIMATE_FROM = 200_000
#: Cells each row's neighbours are looked for in: its own cell and the
#: nearest others (by the distance between the cells' centres). On 100,000
#: rows 8 / 16 / 32 found 42 / 63 / 86% of the true neighbours.
PROBED_CELLS = 32
#: Rows drawn per cell to fit the cells' centres.
CENTER_SAMPLE_PER_CELL = 32


def nearest_neighbors(X, n_neighbors, block_bytes=None, approximate="auto"):
    """The ``n_neighbors`` nearest rows of ``X`` (Euclidean) to each of its rows.

    The row itself included (at distance about 0). The exact search: each block
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
    approximate : bool or "auto", default="auto"
        Whether to search approximately (:func:`_cell_search`): the rows of
        ``X`` must then be readable by lists of row positions (an ndarray or
        memmap). ``"auto"`` searches approximately from ``APPROXIMATE_FROM``
        rows of an ndarray or memmap, exactly otherwise.

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
    if approximate == "auto":
        approximate = isinstance(X, np.ndarray) and n_samples >= APPROXIMATE_FROM
    if approximate:
        return _cell_search(X, n_neighbors, block_rows)
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


def _cell_search(X, n_neighbors, block_rows):
    """``nearest_neighbors`` found approximately, in cells of nearby rows.

    About ``sqrt(n_samples)`` cells, around the k-means centres of a seeded
    sample of rows; every row goes to the cell of its nearest centre (read a
    block of ``block_rows`` at a time). The rows of each cell are then
    searched exactly among the rows of ``PROBED_CELLS`` cells -- their own
    and the cells whose centres lie nearest its centre, more where these
    hold fewer than ``n_neighbors`` rows -- so each row is compared with
    about ``PROBED_CELLS * sqrt(n_samples)`` others instead of all. A true
    neighbour in a cell not searched is missed; the row itself (or, where
    rows repeat, copies of it at distance 0) never is, since each cell
    searches its own rows. Deterministic: the same ``X`` gives the same
    neighbours.
    """
    n_samples = len(X)
    n_cells = max(1, int(np.sqrt(n_samples)))
    rng = np.random.default_rng(0)
    sample = np.sort(rng.choice(n_samples, size=min(n_samples, CENTER_SAMPLE_PER_CELL * n_cells), replace=False))
    with warnings.catch_warnings():
        # Data with fewer distinct rows than cells leave centres that coincide;
        # each cell still searches its own rows first, so that is no concern of the user's.
        warnings.simplefilter("ignore", ConvergenceWarning)
        centers = KMeans(n_clusters=n_cells, n_init=1, max_iter=20, random_state=0).fit(
            np.asarray(X[sample], dtype=np.float64)).cluster_centers_
    cells = np.concatenate([
        pairwise_distances_argmin(_read(X, start, block_rows), centers)
        for start in range(0, n_samples, block_rows)
    ])
    order = np.argsort(cells, kind="stable")  # row positions, cell after cell
    bounds = np.searchsorted(cells[order], np.arange(n_cells + 1))
    sizes = np.diff(bounds)
    distances = np.empty((n_samples, n_neighbors))
    neighbors = np.empty((n_samples, n_neighbors), dtype=np.int64)
    for cell in np.flatnonzero(sizes):
        by_distance = np.argsort(((centers - centers[cell]) ** 2).sum(axis=1), kind="stable")
        # Its own cell first, even where another centre coincides with its own.
        by_distance = np.concatenate([[cell], by_distance[by_distance != cell]])
        enough = max(PROBED_CELLS, int(np.searchsorted(np.cumsum(sizes[by_distance]), n_neighbors)) + 1)
        candidates = np.sort(np.concatenate([order[bounds[c] : bounds[c + 1]] for c in by_distance[:enough]]))
        queries = order[bounds[cell] : bounds[cell + 1]]
        rows = np.asarray(X[candidates], dtype=np.float64)
        found_distances, found = NearestNeighbors(n_neighbors=n_neighbors).fit(rows).kneighbors(
            rows[np.searchsorted(candidates, queries)])
        distances[queries], neighbors[queries] = found_distances, candidates[found]
    return distances, neighbors


def _read(X, start, rows):
    """Rows ``start`` to ``start + rows`` of ``X`` as a float64 array."""
    return np.asarray(X[start : start + rows], dtype=np.float64).reshape(-1, X.shape[1])
