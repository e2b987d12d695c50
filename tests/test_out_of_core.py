"""Input larger than memory: memmaps, chunked stores (HDF5 through h5py), and dask arrays, read in blocks."""

import dask.array as da
import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from skvae import DisentangledVAE
from skvae import _arrays, _inference
from skvae._arrays import ChunkWindowBatches
from skvae.datasets import ScaledArray

FAST = dict(
    hidden_dims=(32, 16), classifier_hidden=(8,), input_dropout=0.1, max_epochs=2, batch_size=64, random_state=0
)


class RowStore:
    """A chunked array on disk as h5py and zarr present one: ``shape``, a numpy
    ``dtype``, ``chunks``, and ``__getitem__`` with slices and increasing
    index arrays only. It records the number of rows of every read."""

    def __init__(self, array, chunk_rows=None):
        self._array = array
        self.shape = array.shape
        self.dtype = array.dtype
        if chunk_rows is not None:
            self.chunks = (chunk_rows, array.shape[1])
        self.reads = []

    def __getitem__(self, key):
        if isinstance(key, np.ndarray):
            if not (np.diff(key) > 0).all():
                raise TypeError("Indexing elements must be in increasing order (as h5py says)")
        elif not isinstance(key, slice):
            raise TypeError(f"RowStore reads slices and index arrays, not {type(key).__name__}")
        rows = self._array[key]
        self.reads.append(len(rows))
        return rows.copy()


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return (X[:900] / 16).astype(np.float32), y[:900]


def on_disk(tmp_path, X, name="X.npy"):
    """``X`` written to a .npy file, opened read-only as a memmap."""
    np.save(tmp_path / name, X)
    return np.load(tmp_path / name, mmap_mode="r")


@pytest.fixture
def small_blocks(monkeypatch):
    """Blocks of 200 rows of digits (64 features) to scan, of 256 for
    inference, and shuffling windows of 2 chunks of 100."""
    monkeypatch.setattr(_arrays, "SCAN_BLOCK_BYTES", 8 * 64 * 200)
    monkeypatch.setattr(_arrays, "SHUFFLE_WINDOW_BYTES", 4 * 64 * 200)
    monkeypatch.setattr(_inference, "BLOCK_ROWS", 256)


@pytest.mark.parametrize("early_stopping", [False, True])
def test_memmap_fit_equals_in_memory_fit(digits, tmp_path, early_stopping):
    """Same seed, same data: the memmap trains on the same batches, bit for bit,
    validation split and sample weights included."""
    X, y = digits
    weights = np.random.default_rng(0).uniform(0.5, 1.5, len(X))
    params = dict(FAST, early_stopping=early_stopping)
    in_memory = DisentangledVAE(**params).fit(X, y, sample_weight=weights)
    from_disk = DisentangledVAE(**params).fit(on_disk(tmp_path, X), y, sample_weight=weights)
    assert from_disk.loss_curve_ == in_memory.loss_curve_
    np.testing.assert_array_equal(from_disk.transform(X), in_memory.transform(X))
    np.testing.assert_array_equal(from_disk.class_centroids_, in_memory.class_centroids_)


def test_memmap_partial_fit_equals_in_memory(digits, tmp_path):
    X, y = digits
    in_memory, from_disk = DisentangledVAE(**FAST), DisentangledVAE(**FAST)
    X_disk = on_disk(tmp_path, X)
    for _ in range(2):
        in_memory.partial_fit(X, y, classes=np.arange(10))
        from_disk.partial_fit(X_disk, y, classes=np.arange(10))
    np.testing.assert_array_equal(from_disk.transform(X), in_memory.transform(X))


def test_inference_on_disk_equals_in_memory(digits, tmp_path):
    X, y = digits
    model = DisentangledVAE(**FAST).fit(X, y)
    for X_disk in (on_disk(tmp_path, X), RowStore(X, chunk_rows=100), da.from_array(X, chunks=(300, -1))):
        np.testing.assert_array_equal(model.transform(X_disk), model.transform(X))
        std_disk, std_memory = model.transform(X_disk, return_std=True)[1], model.transform(X, return_std=True)[1]
        np.testing.assert_array_equal(std_disk, std_memory)
        np.testing.assert_array_equal(model.predict_proba(X_disk), model.predict_proba(X))
        np.testing.assert_array_equal(model.predict(X_disk), model.predict(X))
        assert model.score(X_disk, y) == model.score(X, y)
        np.testing.assert_array_equal(
            model.score_samples(X_disk, n_samples=4), model.score_samples(X, n_samples=4)
        )


def test_chunked_store_is_never_read_whole_and_about_once_an_epoch(digits, small_blocks):
    """Every read is bounded (at most one inference block of 256 rows, of
    900), and training reads each chunk about once an epoch."""
    X, y = digits
    store = RowStore(X, chunk_rows=100)
    model = DisentangledVAE(**FAST).fit(store, y)
    model.predict(store)
    assert max(store.reads) <= 256 < len(X)
    # The scan, the class means, 2 epochs and the class regions' pass, plus
    # chunks read again at window boundaries: nowhere near a chunk per row.
    passes = sum(store.reads) / len(X) - 1  # less predict's
    assert 4 <= passes <= 7, passes


def test_chunk_windows_shuffle_every_row_once_with_few_chunks_per_batch():
    chunk_of_row = torch.arange(1000) // 50
    generator = torch.Generator().manual_seed(0)
    sampler = ChunkWindowBatches(chunk_of_row, window_chunks=2, batch_size=64, generator=generator)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 16
    order = np.concatenate(batches)
    assert sorted(order.tolist()) == list(range(1000)) and order.tolist() != sorted(order.tolist())
    # A batch spans at most two windows: at most 4 chunks.
    assert max(len(np.unique(chunk_of_row[batch])) for batch in batches) <= 4
    assert list(sampler) != batches  # the next epoch shuffles anew


def test_dask_array_trains_like_a_chunked_store_of_the_same_chunks(digits):
    """A dask array and a chunked store of the same chunks shuffle alike; both
    differ from the in-memory shuffle (windows of chunks, not all rows), by a
    documented, small amount of the loss."""
    X, y = digits
    from_dask = DisentangledVAE(**FAST).fit(da.from_array(X, chunks=(100, -1)), y)
    from_store = DisentangledVAE(**FAST).fit(RowStore(X, chunk_rows=100), y)
    in_memory = DisentangledVAE(**FAST).fit(X, y)
    assert from_dask.loss_curve_ == from_store.loss_curve_
    np.testing.assert_array_equal(from_dask.transform(X), from_store.transform(X))
    assert from_dask.loss_curve_ != in_memory.loss_curve_
    assert from_dask.loss_curve_[-1] == pytest.approx(in_memory.loss_curve_[-1], rel=0.1)


def test_hdf5_dataset_trains_like_a_chunked_store_of_the_same_chunks(digits, tmp_path):
    """An h5py.Dataset, chunked on disk, is read as any chunked store: its
    chunks shuffle in windows, and fit, transform and predict read it in blocks."""
    h5py = pytest.importorskip("h5py")
    X, y = digits
    with h5py.File(tmp_path / "digits.h5", "w") as file:
        file.create_dataset("X", data=X, chunks=(100, X.shape[1]))
    with h5py.File(tmp_path / "digits.h5", "r") as file:
        stored = file["X"]
        from_hdf5 = DisentangledVAE(**FAST).fit(stored, y)
        latents, predictions = from_hdf5.transform(stored), from_hdf5.predict(stored)
    from_store = DisentangledVAE(**FAST).fit(RowStore(X, chunk_rows=100), y)
    assert from_hdf5.loss_curve_ == from_store.loss_curve_
    np.testing.assert_array_equal(latents, from_store.transform(X))
    np.testing.assert_array_equal(predictions, from_store.predict(X))


def test_scaled_uint8_on_disk_trains_as_the_scaled_array_in_memory(tmp_path):
    pixels = np.random.default_rng(0).integers(0, 256, size=(500, 49), dtype=np.uint8)
    y = np.arange(500) % 3
    scaled = ScaledArray(on_disk(tmp_path, pixels))
    assert scaled.shape == (500, 49) and scaled.dtype == np.float32
    in_memory = (pixels * (1 / 255)).astype(np.float32)
    np.testing.assert_array_equal(scaled[:], in_memory)
    # The values load_mnist gives its pixels.
    np.testing.assert_array_equal(scaled[[0, 3]], pixels[[0, 3]].astype(np.float32) / 255)
    from_disk = DisentangledVAE(**FAST).fit(scaled, y)
    assert from_disk.reconstruction_ == "bce"
    in_memory_model = DisentangledVAE(**FAST).fit(in_memory, y)
    np.testing.assert_array_equal(from_disk.transform(scaled), in_memory_model.transform(in_memory))
    assert from_disk.transform(scaled).dtype == np.float32


def test_scaled_array_refuses_a_scale_that_is_not_positive():
    with pytest.raises(ValueError, match="scale"):
        ScaledArray(np.zeros((2, 2), dtype=np.uint8), scale=0)


@pytest.mark.parametrize("method", ["fit", "partial_fit", "warm_start"])
def test_nan_in_the_last_block_is_refused_before_training(digits, small_blocks, method):
    """The scan reads every row once and stops at the NaN: nothing else is
    read, nothing trained, and a fitted model stays as it was."""
    X, y = digits
    model = DisentangledVAE(**FAST, warm_start=method == "warm_start").fit(X[:800], y[:800])
    before = model.transform(X)
    n_iter = model.n_iter_
    bad = X.copy()
    bad[-1, 5] = np.nan
    store = RowStore(bad)
    call = model.partial_fit if method == "partial_fit" else model.fit
    with pytest.raises(ValueError, match=r"Input X contains NaN: 1 of its rows 800 to 899 .*first at row 899"):
        call(store, y)
    assert sum(store.reads) == len(X) and max(store.reads) == 200
    assert model.n_iter_ == n_iter
    np.testing.assert_array_equal(model.transform(X), before)
    with pytest.raises(ValueError, match="Input X contains NaN"):
        model.transform(store)


def test_infinity_in_an_unfitted_fit_leaves_it_unfitted(digits, tmp_path):
    X, y = digits
    bad = X.astype(np.float64)
    bad[3, 0] = np.inf
    model = DisentangledVAE(**FAST)
    with pytest.raises(ValueError, match="Input X contains infinity.*first at row 3"):
        model.fit(on_disk(tmp_path, bad), y)
    assert not hasattr(model, "n_features_in_") and not hasattr(model, "net_")


def test_shape_dtype_and_features_are_checked(digits, tmp_path):
    X, y = digits
    model = DisentangledVAE(**FAST).fit(X, y)
    with pytest.raises(ValueError, match="X has 63 features, but DisentangledVAE is expecting 64"):
        model.transform(on_disk(tmp_path, X[:, :63]))
    with pytest.raises(ValueError, match="Expected a 2-dimensional X"):
        model.transform(RowStore(X.reshape(-1, 8, 8)))
    with pytest.raises(ValueError, match="needs numbers"):
        DisentangledVAE(**FAST).fit(on_disk(tmp_path, X.astype(str)), y)
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        DisentangledVAE(**FAST).fit(on_disk(tmp_path, X), y[:-1])


@pytest.mark.parametrize("source", ["head", "propagation"])
@pytest.mark.parametrize("validation", [False, True], ids=["all rows", "validation split"])
def test_semi_supervised_out_of_core_trains_as_in_memory(digits, tmp_path, source, validation):
    # Label propagation reads the memmap a block at a time (the training
    # part of a split through SelectedRows) and builds the graph of the
    # in-memory fit.
    X, y = digits
    y_partly = np.where(np.arange(len(y)) % 5 == 0, y, -1)
    params = dict(FAST, unlabeled_label=-1, pseudo_label_source=source)
    if validation:
        params.update(early_stopping=True)
    from_disk = DisentangledVAE(**params).fit(on_disk(tmp_path, X), y_partly)
    in_memory = DisentangledVAE(**params).fit(X, y_partly)
    if source == "propagation":
        run_disk, run_memory = from_disk.net_.training_run_, in_memory.net_.training_run_
        for disk, memory in zip(run_disk.propagated_labels_, run_memory.propagated_labels_):
            np.testing.assert_array_equal(disk.numpy(), memory.numpy())
    np.testing.assert_array_equal(from_disk.transform(X), in_memory.transform(X))
