"""The neighbour search of label propagation: the blocked exact search gives the
neighbours and labels of a whole-data float64 search, from memory or from disk;
the approximate one (cells) finds most neighbours and labels as well."""

import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy import sparse
from sklearn.datasets import make_blobs, make_classification
from sklearn.neighbors import NearestNeighbors

from skvae import _neighbors
from skvae._arrays import BlockRows, SelectedRows
from skvae._neighbors import nearest_neighbors
from skvae.losses import propagate_labels


def reference_propagate_labels(X, y, n_classes, n_neighbors=7, alpha=0.99, n_iter=30):
    """Label spreading as propagate_labels did before the blocked search: the
    graph from scikit-learn's search over a float64 copy of X."""
    X = np.asarray(X, dtype=np.float64)
    n, k = len(X), min(n_neighbors, len(X) - 1)
    distances, neighbors = NearestNeighbors(n_neighbors=k + 1).fit(X).kneighbors(X)
    distances, neighbors = distances[:, 1:], neighbors[:, 1:]
    scale = max(float(np.mean(distances**2)), 1e-12)
    W = sparse.csr_matrix(
        (np.exp(-(distances**2) / scale).ravel(), (np.repeat(np.arange(n), k), neighbors.ravel())), shape=(n, n)
    )
    W = W + W.T
    d = 1 / np.sqrt(np.maximum(np.asarray(W.sum(axis=1)).ravel(), 1e-12))
    S = sparse.diags(d) @ W @ sparse.diags(d)
    labelled = y >= 0
    Y = np.zeros((n, n_classes))
    Y[labelled, y[labelled]] = 1
    scores = Y.copy()
    for _ in range(n_iter):
        scores = alpha * (S @ scores) + (1 - alpha) * Y
    counts = np.bincount(y[labelled], minlength=n_classes)
    scores = scores / np.maximum(scores.sum(axis=0, keepdims=True), 1e-12) * counts / counts.sum()
    total = scores.sum(axis=1, keepdims=True)
    p = np.where(total > 0, scores / np.where(total > 0, total, 1), 1 / n_classes)
    certainty = 1 - (-(p * np.log(np.clip(p, 1e-12, None))).sum(axis=1)) / np.log(n_classes)
    return p.argmax(axis=1), np.clip(certainty, 0, 1)


def _partly_labelled(y, fraction, seed=0):
    hidden = np.random.default_rng(seed).random(len(y)) >= fraction
    return np.where(hidden, -1, y)


DATA_SETS = {
    "blobs 30-D": lambda: make_blobs(n_samples=1500, n_features=30, centers=4, cluster_std=4.0, random_state=0),
    "classification 40-D": lambda: make_classification(
        n_samples=1500, n_features=40, n_informative=10, n_classes=3, random_state=1
    ),
    # float32 far from the origin: |x|^2 dwarfs the distances.
    "float32 blobs around 1000": lambda: (
        lambda X, y: ((X + 1000).astype(np.float32), y)
    )(*make_blobs(n_samples=1200, n_features=20, centers=3, cluster_std=0.05, random_state=2)),
}


@pytest.fixture
def small_blocks(monkeypatch):
    """Blocks of 64 kB of float64 rows (204 to 409 rows here), also for propagate_labels."""
    monkeypatch.setattr(_neighbors, "BLOCK_BYTES", 64 << 10)
    return 64 << 10


@pytest.mark.parametrize("name", DATA_SETS)
def test_neighbors_are_those_of_a_float64_search(name, small_blocks):
    X, _ = DATA_SETS[name]()
    distances, neighbors = nearest_neighbors(X, 8, block_bytes=small_blocks)
    expected_distances, expected_neighbors = NearestNeighbors(n_neighbors=8).fit(X.astype(np.float64)).kneighbors()
    # kneighbors() without X leaves each row itself out: column 0 is the row.
    assert_array_equal(neighbors[:, 0], np.arange(len(X)))
    assert_array_equal(neighbors[:, 1:], expected_neighbors[:, :7])
    assert_allclose(distances[:, 1:], expected_distances[:, :7], rtol=1e-7)
    assert_allclose(distances[:, 0], 0, atol=1e-5)
    assert np.all(np.diff(distances, axis=1) >= 0)


@pytest.mark.parametrize("name", DATA_SETS)
def test_propagated_labels_are_those_of_the_whole_data_search(name, small_blocks):
    X, y = DATA_SETS[name]()
    y_partly = _partly_labelled(y, 0.03)
    labels, certainty = propagate_labels(X, y_partly, len(np.unique(y)))
    expected_labels, expected_certainty = reference_propagate_labels(X, y_partly, len(np.unique(y)))
    assert_array_equal(labels, expected_labels)
    assert_allclose(certainty, expected_certainty, atol=1e-9)
    assert np.mean(labels == y) > 0.5  # the comparison is of labels that mean something


def test_propagation_reads_a_memmap_or_selected_rows_as_it_reads_memory(tmp_path, small_blocks):
    X, y = DATA_SETS["blobs 30-D"]()
    y_partly = _partly_labelled(y, 0.05)
    np.save(tmp_path / "X.npy", X.astype(np.float32))
    on_disk = np.load(tmp_path / "X.npy", mmap_mode="r")
    in_memory = propagate_labels(X.astype(np.float32), y_partly, 4)
    for got, expected in zip(propagate_labels(on_disk, y_partly, 4), in_memory):
        assert_array_equal(got, expected)
    # Every other row, gathered from the blocks a slice at a time.
    selected = np.arange(0, len(X), 2)
    rows = SelectedRows(BlockRows(on_disk, np.float32), selected)
    assert rows.shape == (len(selected), 30)
    assert_array_equal(rows[5:9], X[selected[5:9]].astype(np.float32))
    expected = propagate_labels(X[selected].astype(np.float32), y_partly[selected], 4)
    for got, want in zip(propagate_labels(rows, y_partly[selected], 4), expected):
        assert_array_equal(got, want)


def test_tiny_data_and_bad_neighbor_counts():
    X = np.array([[0.0], [1.0], [3.0]])
    distances, neighbors = nearest_neighbors(X, 3)
    assert_array_equal(neighbors, [[0, 1, 2], [1, 0, 2], [2, 1, 0]])
    assert_allclose(distances, [[0, 1, 3], [0, 1, 2], [0, 2, 3]])
    with pytest.raises(ValueError, match="n_neighbors must be between 1 and the 3 samples; got 4"):
        nearest_neighbors(X, 4)
    with pytest.raises(TypeError, match="SelectedRows reads slices"):
        SelectedRows(BlockRows(X, np.float64), np.arange(2))[0]


@pytest.fixture
def few_probes(monkeypatch):
    """Cells searched per row: 4 of the ~70 cells of 5,000 rows, so that most rows are not compared."""
    monkeypatch.setattr(_neighbors, "PROBED_CELLS", 4)


def test_approximate_search_finds_most_neighbours_and_never_nearer_ones(few_probes):
    X, _ = make_blobs(n_samples=5000, n_features=10, centers=6, cluster_std=2.0, random_state=3)
    exact_distances, exact = nearest_neighbors(X, 8, approximate=False)
    distances, neighbors = nearest_neighbors(X, 8, approximate=True)
    assert_array_equal(neighbors[:, 0], np.arange(len(X)))  # each row finds itself
    assert np.all(np.diff(distances, axis=1) >= 0)
    # The k-th distance found is never shorter than the true k-th: only true rows are measured.
    assert np.all(distances >= exact_distances - 1e-9)
    assert_allclose(distances, np.linalg.norm(X[neighbors] - X[:, None], axis=2), atol=1e-9)
    recall = np.mean([len(np.intersect1d(a[1:], b[1:])) / 7 for a, b in zip(neighbors, exact)])
    assert 0.6 < recall < 1  # approximate (0.70 here, with 4 of ~70 cells searched), yet it finds most
    # Deterministic.
    again = nearest_neighbors(X, 8, approximate=True)
    assert_array_equal(again[1], neighbors)


def test_auto_searches_approximately_from_approximate_from_rows_of_arrays(monkeypatch, tmp_path):
    calls = []
    cell_search = _neighbors._cell_search
    monkeypatch.setattr(_neighbors, "_cell_search", lambda *args: calls.append(len(args[0])) or cell_search(*args))
    monkeypatch.setattr(_neighbors, "APPROXIMATE_FROM", 1000)
    X, _ = make_blobs(n_samples=1000, n_features=5, random_state=0)
    nearest_neighbors(X[:999], 3)
    assert calls == []
    nearest_neighbors(X, 3)
    np.save(tmp_path / "X.npy", X)
    nearest_neighbors(np.load(tmp_path / "X.npy", mmap_mode="r"), 3)
    assert calls == [1000, 1000]
    # Rows that only slice (a chunked store) are searched exactly.
    nearest_neighbors(BlockRows(X, np.float64), 3)
    assert calls == [1000, 1000]


def test_propagation_over_the_approximate_graph_labels_as_well(few_probes, monkeypatch):
    X, y = make_blobs(n_samples=5000, n_features=10, centers=6, cluster_std=2.0, random_state=3)
    y_partly = _partly_labelled(y, 0.02)
    hidden = y_partly < 0
    exact_labels, _ = propagate_labels(X, y_partly, 6)
    monkeypatch.setattr(_neighbors, "APPROXIMATE_FROM", 1000)
    labels, certainty = propagate_labels(X, y_partly, 6)
    assert abs(np.mean(labels[hidden] == y[hidden]) - np.mean(exact_labels[hidden] == y[hidden])) < 0.02
    assert np.mean(labels[hidden] == y[hidden]) > 0.8 and np.all((certainty >= 0) & (certainty <= 1))


def test_approximate_search_of_few_distinct_rows_warns_nothing(few_probes):
    # 5 distinct rows, 400 copies each: fewer distinct rows than the 44 cells' centres.
    X = np.repeat(np.arange(5.0)[:, None], 400, axis=0) * np.ones((1, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        distances, neighbors = nearest_neighbors(X, 4, approximate=True)
    assert_allclose(distances, 0, atol=1e-12)  # every row's neighbours are copies of it
    assert_array_equal(X[neighbors][..., 0], np.repeat(X[:, :1], 4, axis=1))
