"""Exact nearest neighbours of every row of data, in memory O(n_samples * k).

The kNN graph of :func:`skvae.losses.propagate_labels` needs, for each row,
its ``k`` nearest rows. :func:`nearest_neighbors` finds them exactly by
comparing blocks of query rows with blocks of reference rows, so that at any
time it holds one block of distances (at most ``DISTANCE_BLOCK_BYTES``) and
the ``k`` best found so far for each row, never a copy of the data: the rows
are read a block at a time from anything that slices into arrays (an
``ndarray``, a :class:`numpy.memmap`, :class:`~skvae._arrays.BlockRows`).
"""

import numpy as np
import torch

__all__ = ["DISTANCE_BLOCK_BYTES", "nearest_neighbors"]

#: Bytes of the float32 block of distances between query and reference rows.
DISTANCE_BLOCK_BYTES = 64 << 20

# Query rows per block: each block of them is compared with all the data, so
# a larger block reads the data (from disk, for a memmap) fewer times.
QUERY_BLOCK_ROWS = 4096


def nearest_neighbors(X, n_neighbors, distance_block_bytes=DISTANCE_BLOCK_BYTES):
    """The ``n_neighbors`` nearest rows of ``X`` (Euclidean) to each of its rows.

    Exact search, the row itself included (at distance 0). The rows are
    centred on their mean, which float32 distances from rows far from the
    origin need; then each block of query rows is compared with each block
    of reference rows in float32,
    which picks ``2 * n_neighbors`` candidates per query row in the
    reference block; their distances are then computed again in float64
    from the differences of the rows, and the ``n_neighbors`` closest
    candidates seen so far are kept. The float64 distances decide, so the
    neighbours are those of a float64 search unless float32 rounding hides
    a neighbour behind ``n_neighbors`` closer-looking candidates of the same
    reference block.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Rows readable by slices, ``X[start:stop]`` giving an ndarray.
    n_neighbors : int
        Neighbours of each row, at most ``n_samples``.
    distance_block_bytes : int, default=DISTANCE_BLOCK_BYTES
        Size of the float32 distance block; bounds the memory the search
        uses besides its result.

    Returns
    -------
    distances : ndarray of shape (n_samples, n_neighbors)
        Distances to the neighbours, increasing along each row.
    neighbors : ndarray of shape (n_samples, n_neighbors)
        Row positions of the neighbours; equal distances in increasing order
        of position.
    """
    n_samples = len(X)
    if not 1 <= n_neighbors <= n_samples:
        raise ValueError(f"n_neighbors must be between 1 and the {n_samples} samples; got {n_neighbors}.")
    query_rows = min(n_samples, QUERY_BLOCK_ROWS)
    candidates = 2 * n_neighbors
    reference_rows = max(candidates, distance_block_bytes // (4 * query_rows))
    distances = np.empty((n_samples, n_neighbors))
    neighbors = np.empty((n_samples, n_neighbors), dtype=np.int64)
    center = sum(_read(X, start, reference_rows).sum(dim=0) for start in range(0, n_samples, reference_rows))
    center /= n_samples
    for query_start in range(0, n_samples, query_rows):
        query = _read(X, query_start, query_rows) - center
        query32 = query.float()
        best_distances = torch.empty((len(query), 0), dtype=torch.float64)
        best_neighbors = torch.empty((len(query), 0), dtype=torch.int64)
        for reference_start in range(0, n_samples, reference_rows):
            reference = _read(X, reference_start, reference_rows) - center
            reference32 = reference.float()
            # |q - r|^2 less |q|^2, which does not change the order along a row.
            approximate = torch.addmm((reference32 * reference32).sum(dim=1), query32, reference32.T, alpha=-2)
            _, picked = torch.topk(approximate, min(candidates, len(reference)), dim=1, largest=False, sorted=False)
            exact = ((query[:, None, :] - reference[picked]) ** 2).sum(dim=2)
            best_distances = torch.cat([best_distances, exact], dim=1)
            best_neighbors = torch.cat([best_neighbors, picked + reference_start], dim=1)
            if best_distances.shape[1] > n_neighbors:
                _, kept = torch.topk(best_distances, n_neighbors, dim=1, largest=False, sorted=False)
                best_distances = best_distances.gather(1, kept)
                best_neighbors = best_neighbors.gather(1, kept)
        block_distances, block_neighbors = best_distances.numpy(), best_neighbors.numpy()
        order = np.lexsort((block_neighbors, block_distances), axis=1)
        stop = query_start + len(query)
        distances[query_start:stop] = np.sqrt(np.take_along_axis(block_distances, order, axis=1))
        neighbors[query_start:stop] = np.take_along_axis(block_neighbors, order, axis=1)
    return distances, neighbors


def _read(X, start, rows):
    """Rows ``start`` to ``start + rows`` of ``X`` as a float64 tensor."""
    return torch.from_numpy(np.asarray(X[start : start + rows], dtype=np.float64).reshape(-1, X.shape[1]))
