"""Tests for skvae.datasets: MNIST IDX loading, checksums, atomic downloads, digits, the generators."""

import gzip
import hashlib
import http.server
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from shared_data import MNIST_DIR, MNIST_MISSING

from skvae import datasets
from skvae.datasets import (
    GLYPH_NAMES,
    ChecksumError,
    load_digits,
    load_mnist,
    make_glyphs,
    make_waveforms,
    mnist_standard_split,
    perturb_images,
)

SHARED_MNIST = MNIST_DIR
IMAGES = "t10k-images-idx3-ubyte.gz"
LABELS = "t10k-labels-idx1-ubyte.gz"
# Official per-class counts of the 10,000-image MNIST test set.
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]

needs_shared = pytest.mark.skipif(MNIST_DIR is None, reason=MNIST_MISSING)


# --------------------------------------------------------------------------- helpers


def md5(path):
    return hashlib.md5(Path(path).read_bytes()).hexdigest()


def write_idx(path, array, magic=None):
    """Write ``array`` (uint8) as a gzipped IDX file; ``magic`` overrides the header."""
    array = np.asarray(array, dtype=np.uint8)
    if magic is None:
        magic = 0x800 + array.ndim
    header = magic.to_bytes(4, "big") + np.asarray(array.shape, ">i4").tobytes()
    with gzip.open(path, "wb") as f:
        f.write(header + array.tobytes())
    return path


def folder_contents(folder):
    folder = Path(folder)
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


class _FolderHandler(http.server.SimpleHTTPRequestHandler):
    """Serves the files of ``folder`` and records the requested paths."""

    folder = None
    requests = None

    def __init__(self, *args, **kwargs):
        super().__init__(*args, directory=self.folder, **kwargs)

    def log_message(self, *args):
        pass

    def do_GET(self):
        self.requests.append(self.path)
        super().do_GET()


class _DroppingHandler(http.server.BaseHTTPRequestHandler):
    """Promises a large body, sends a little of it, then closes the connection."""

    requests = None

    def log_message(self, *args):
        pass

    def do_GET(self):
        self.requests.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(1_000_000))
        self.end_headers()
        self.wfile.write(b"\x1f\x8b" + b"\0" * 998)
        self.wfile.flush()
        self.close_connection = True


class Server:
    """An HTTP server on 127.0.0.1 (ephemeral port) run in a background thread."""

    def __init__(self, handler, **attrs):
        self.requests = []
        attrs["requests"] = self.requests
        handler = type(handler.__name__, (handler,), attrs)
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, args=(0.05,), daemon=True
        )
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def start_server():
    servers = []

    def start(handler, **attrs):
        servers.append(Server(handler, **attrs))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


@pytest.fixture
def serve_folder(start_server):
    """Serve a folder's files over HTTP on 127.0.0.1; returns the server."""
    return lambda folder: start_server(_FolderHandler, folder=str(folder))


@pytest.fixture
def mirror(tmp_path):
    """A writable copy of the shared MNIST test files, to serve or corrupt."""
    if MNIST_DIR is None:
        pytest.skip(MNIST_MISSING)
    folder = tmp_path / "mirror"
    folder.mkdir()
    for name in (IMAGES, LABELS):
        shutil.copyfile(SHARED_MNIST / name, folder / name)
    return folder


@pytest.fixture
def fake_mnist(tmp_path, monkeypatch):
    """Tiny synthetic MNIST files for all four names, with checksums patched in.

    Train has 3 images (labels 1, 2, 3), test 2 (labels 8, 9); each image is
    filled with its label so the order of rows can be checked.
    """
    folder = tmp_path / "fake"
    folder.mkdir()
    checksums = {}
    for prefix, labels in (("train", [1, 2, 3]), ("t10k", [8, 9])):
        labels = np.array(labels, dtype=np.uint8)
        images = np.repeat(labels, 28 * 28).reshape(-1, 28, 28)
        for kind, array in (("images-idx3", images), ("labels-idx1", labels)):
            name = f"{prefix}-{kind}-ubyte.gz"
            checksums[name] = md5(write_idx(folder / name, array))
    monkeypatch.setattr(datasets, "_MNIST_MD5", checksums)
    return folder


# ---------------------------------------------------------------- real MNIST test set


@needs_shared
def test_load_shared_test_set():
    before = folder_contents(SHARED_MNIST)
    bunch = load_mnist(SHARED_MNIST, download=False)

    assert bunch.data.shape == (10000, 784)
    assert bunch.data.dtype == np.float32
    assert bunch.data.min() == 0.0 and bunch.data.max() == 1.0
    assert 0.12 < bunch.data.mean() < 0.14  # MNIST pixel mean is ~0.1325
    assert bunch.target.dtype == np.int64
    assert np.bincount(bunch.target, minlength=10).tolist() == TEST_COUNTS
    assert bunch.target[:5].tolist() == [7, 2, 1, 0, 4]
    assert bunch.images.shape == (10000, 28, 28)
    assert bunch.images.dtype == np.uint8
    np.testing.assert_array_equal(bunch.data * 255, bunch.images.reshape(10000, -1))
    assert bunch.feature_names[0] == "pixel_0" and len(bunch.feature_names) == 784
    np.testing.assert_array_equal(bunch.target_names, np.arange(10))
    assert "LeCun" in bunch.DESCR and "CC BY-SA 3.0" in bunch.DESCR
    assert folder_contents(SHARED_MNIST) == before  # nothing written


@needs_shared
def test_return_X_y_matches_bunch():
    X, y = load_mnist(SHARED_MNIST, download=False, return_X_y=True)
    bunch = load_mnist(SHARED_MNIST, download=False)
    np.testing.assert_array_equal(X, bunch.data)
    np.testing.assert_array_equal(y, bunch.target)


@needs_shared
def test_data_home_may_be_parent_of_mnist_folder(start_server):
    # Present files must not trigger any request, even with download=True.
    server = start_server(_DroppingHandler)
    X, y = load_mnist(SHARED_MNIST.parent, return_X_y=True, base_url=server.url)
    assert X.shape == (10000, 784)
    assert server.requests == []


@needs_shared
def test_data_home_from_env_and_default(tmp_path, monkeypatch):
    monkeypatch.setenv("SKVAE_DATA", str(SHARED_MNIST))
    assert load_mnist(download=False, return_X_y=True)[0].shape == (10000, 784)

    monkeypatch.delenv("SKVAE_DATA")
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"\.cache/skvae"):
        load_mnist(download=False)
    default = tmp_path / ".cache" / "skvae" / "mnist"
    default.mkdir(parents=True)
    for name in (IMAGES, LABELS):
        (default / name).symlink_to(SHARED_MNIST / name)
    assert load_mnist(download=False, return_X_y=True)[0].shape == (10000, 784)


@needs_shared
def test_standard_split_is_stratified_and_deterministic():
    split = mnist_standard_split(SHARED_MNIST, download=False)
    X_train, X_test, y_train, y_test = split
    assert X_train.shape == (8000, 784) and X_test.shape == (2000, 784)
    assert y_train.shape == (8000,) and y_test.shape == (2000,)
    expected = np.array(TEST_COUNTS) * 0.2
    assert np.all(np.abs(np.bincount(y_test, minlength=10) - expected) <= 1)
    again = mnist_standard_split(SHARED_MNIST, download=False)
    np.testing.assert_array_equal(again[3], y_test)
    np.testing.assert_array_equal(again[1], X_test)


# -------------------------------------------------------------- missing / bad files


@needs_shared
def test_missing_train_files_without_download(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        load_mnist(tmp_path, subset="train", download=False)
    message = str(info.value)
    assert "train-images-idx3-ubyte.gz" in message
    assert "train-labels-idx1-ubyte.gz" in message
    assert "t10k" not in message
    assert str(tmp_path) in message and "download=True" in message
    assert folder_contents(tmp_path) == []

    # "all" needs the train files even where the test files are present.
    with pytest.raises(FileNotFoundError, match="train-images") as info:
        load_mnist(SHARED_MNIST, subset="all", download=False)
    assert "t10k" not in str(info.value)


def test_invalid_subset(tmp_path):
    with pytest.raises(ValueError, match="subset"):
        load_mnist(tmp_path, subset="validation", download=False)


@pytest.mark.parametrize("name", [IMAGES, LABELS])
def test_corrupted_local_file_fails_checksum(mirror, name):
    path = mirror / name
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))

    with pytest.raises(ChecksumError) as info:
        load_mnist(mirror, download=False)
    message = str(info.value)
    assert isinstance(info.value, ValueError)
    assert name in message
    assert datasets._MNIST_MD5[name] in message and md5(path) in message
    assert "delete" in message.lower()
    assert path.exists()  # the user's file is reported, not deleted


def test_subset_all_concatenates_train_then_test(fake_mnist):
    bunch = load_mnist(fake_mnist, subset="all", download=False)
    np.testing.assert_array_equal(bunch.target, [1, 2, 3, 8, 9])
    np.testing.assert_array_equal(bunch.images[:, 0, 0], [1, 2, 3, 8, 9])
    np.testing.assert_allclose(bunch.data[:, 0], np.array([1, 2, 3, 8, 9]) / 255)
    assert load_mnist(fake_mnist, subset="train", download=False).data.shape == (3, 784)


def test_image_label_count_mismatch(fake_mnist, monkeypatch):
    path = write_idx(fake_mnist / LABELS, np.array([8, 9, 9], dtype=np.uint8))
    monkeypatch.setitem(datasets._MNIST_MD5, LABELS, md5(path))
    with pytest.raises(ValueError, match="2 images but .* 3 labels"):
        load_mnist(fake_mnist, download=False)


@pytest.mark.parametrize(
    "content, match",
    [
        (b"not gzip at all", "not a valid gzip"),
        (gzip.compress(mtime=0, data=b"\x00\x00"), "magic number"),
        (gzip.compress(mtime=0, data=(2049).to_bytes(4, "big") + b"\x00\x00"), "truncated"),
        (
            gzip.compress(mtime=0, data=(2049).to_bytes(4, "big") + (5).to_bytes(4, "big") + b"\x01"),
            r"shape \(5,\) but it holds 1 data bytes",
        ),
        (
            gzip.compress(mtime=0, data=(2049).to_bytes(4, "big") + b"\xff\xff\xff\xff"),
            "malformed",
        ),
    ],
    # Explicit ids: the bytes would make the ids, and pytest-xdist workers
    # must collect identical ones.
    ids=["not-gzip", "bad-magic", "truncated-header", "short-data", "malformed-size"],
)
def test_read_idx_rejects_malformed_files(tmp_path, content, match):
    path = tmp_path / "bad.gz"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=match):
        datasets._read_idx(path, 2049)


def test_read_idx_rejects_wrong_kind(tmp_path):
    path = write_idx(tmp_path / "labels.gz", np.arange(4))
    with pytest.raises(ValueError, match="magic number 2049, expected 2051"):
        datasets._read_idx(path, 2051)
    np.testing.assert_array_equal(datasets._read_idx(path, 2049), np.arange(4))


# ------------------------------------------------------------------------- downloads


def test_download_into_empty_data_home(mirror, serve_folder, tmp_path):
    server = serve_folder(mirror)
    data_home = tmp_path / "new" / "data_home"  # does not exist yet
    X, y = load_mnist(data_home, return_X_y=True, base_url=server.url, timeout=10)

    X_ref, y_ref = load_mnist(mirror, download=False, return_X_y=True)
    np.testing.assert_array_equal(X, X_ref)
    np.testing.assert_array_equal(y, y_ref)
    assert folder_contents(data_home) == sorted([IMAGES, LABELS])
    assert md5(data_home / IMAGES) == datasets._MNIST_MD5[IMAGES]
    assert (data_home / IMAGES).stat().st_mode & 0o777 == 0o644
    assert sorted(server.requests) == sorted(["/" + IMAGES, "/" + LABELS])

    # Second call reads the downloaded files and makes no further request.
    load_mnist(data_home, base_url=server.url, timeout=10)
    assert len(server.requests) == 2


def test_download_corrupted_file_leaves_nothing(mirror, serve_folder, tmp_path):
    data = bytearray((mirror / IMAGES).read_bytes())
    data[1000] ^= 0xFF
    (mirror / IMAGES).write_bytes(bytes(data))
    server = serve_folder(mirror)
    data_home = tmp_path / "home"

    with pytest.raises(ChecksumError) as info:
        load_mnist(data_home, base_url=server.url, timeout=10)
    message = str(info.value)
    assert server.url + IMAGES in message
    assert datasets._MNIST_MD5[IMAGES] in message
    assert md5(mirror / IMAGES) in message
    assert IMAGES not in folder_contents(data_home)
    assert not any(name.endswith(".part") for name in folder_contents(data_home))


def test_download_removes_the_partial_file_of_a_killed_download(fake_mnist, serve_folder, tmp_path):
    # Downloads write through skvae._fileio.atomic_write, as model files do:
    # the temporary file that a killed download left (named with the pid of
    # its ended process) goes at the next download into the folder.
    from skvae import _fileio

    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    data_home = tmp_path / "home"
    data_home.mkdir()
    partial = data_home / f".{IMAGES}.skvae-{_fileio._host_tag()}-{ended.pid}-0123abcd.part"
    partial.write_bytes(b"half an image file")
    load_mnist(data_home, base_url=serve_folder(fake_mnist).url, timeout=10)
    assert folder_contents(data_home) == sorted([IMAGES, LABELS])


def test_dropped_connection_leaves_no_partial_file(start_server, tmp_path):
    server = start_server(_DroppingHandler)
    data_home = tmp_path / "home"

    with pytest.raises(ConnectionError) as info:
        load_mnist(data_home, base_url=server.url, timeout=10)
    message = str(info.value)
    assert server.url + IMAGES in message
    assert "incomplete" in message and "manually" in message
    assert server.requests == ["/" + IMAGES]
    # The folders made for the download went with it: nothing is left behind.
    assert not data_home.exists()


def test_failed_download_removes_only_the_folders_it_made(start_server, tmp_path):
    server = start_server(_DroppingHandler)
    (tmp_path / "kept").mkdir()
    data_home = tmp_path / "kept" / "new" / "deeper"

    with pytest.raises(ConnectionError):
        load_mnist(data_home, base_url=server.url, timeout=10)
    assert folder_contents(tmp_path) == ["kept"]
    assert folder_contents(tmp_path / "kept") == []


@needs_shared
def test_failed_download_keeps_existing_good_file(start_server, tmp_path):
    data_home = tmp_path / "home"
    data_home.mkdir()
    shutil.copyfile(SHARED_MNIST / LABELS, data_home / LABELS)
    server = start_server(_DroppingHandler)

    with pytest.raises(ConnectionError):
        load_mnist(data_home, base_url=server.url, timeout=10)
    assert server.requests == ["/" + IMAGES]  # the present labels were not fetched
    assert folder_contents(data_home) == [LABELS]
    assert md5(data_home / LABELS) == datasets._MNIST_MD5[LABELS]


def test_mirrors_are_tried_in_order(mirror, serve_folder, start_server, tmp_path):
    broken = start_server(_DroppingHandler)
    good = serve_folder(mirror)
    data_home = tmp_path / "home"

    mirrors = [broken.url, good.url]
    y = load_mnist(data_home, return_X_y=True, base_url=mirrors, timeout=10)[1]
    assert np.bincount(y).tolist() == TEST_COUNTS
    assert broken.requests == ["/" + IMAGES, "/" + LABELS]
    assert folder_contents(data_home) == sorted([IMAGES, LABELS])


def test_missing_file_on_server(tmp_path, serve_folder):
    empty = tmp_path / "empty"
    empty.mkdir()
    server = serve_folder(empty)
    with pytest.raises(ConnectionError, match="404"):
        load_mnist(tmp_path / "home", base_url=server.url, timeout=10)
    assert folder_contents(tmp_path / "home") == []


# ---------------------------------------------------------------------------- digits


def test_load_digits_scaled():
    bunch = load_digits()
    assert bunch.data.shape == (1797, 64) and bunch.data.dtype == np.float32
    assert bunch.data.min() == 0.0 and bunch.data.max() == 1.0
    assert bunch.images.shape == (1797, 8, 8) and bunch.images.dtype == np.uint8
    np.testing.assert_array_equal(bunch.data * 16, bunch.images.reshape(1797, -1))
    assert bunch.target.dtype == np.int64
    assert sorted(set(bunch.target.tolist())) == list(range(10))
    np.testing.assert_array_equal(bunch.target_names, np.arange(10))
    assert len(bunch.feature_names) == 64

    X, y = load_digits(return_X_y=True)
    np.testing.assert_array_equal(X, bunch.data)
    np.testing.assert_array_equal(y, bunch.target)


# --------------------------------------------------------------------------- generators


def assert_balanced(y, n_classes):
    counts = np.bincount(y, minlength=n_classes)
    assert len(counts) == n_classes and counts.max() - counts.min() <= 1


@pytest.mark.parametrize(("n_samples", "n_features", "n_classes"), [(103, 64, 10), (40, 17, 3), (5, 8, 7)])
def test_make_waveforms_shapes_dtypes_and_balance(n_samples, n_features, n_classes):
    X, y = make_waveforms(n_samples, n_features, n_classes, random_state=0)
    assert X.shape == (n_samples, n_features) and X.dtype == np.float32
    assert y.shape == (n_samples,) and y.dtype == np.int64
    assert np.isfinite(X).all()
    assert_balanced(y, n_classes)  # with fewer samples than classes: no class twice


def test_make_waveforms_is_deterministic_and_seeded():
    X, y = make_waveforms(200, random_state=3)
    X_again, y_again = make_waveforms(200, random_state=np.random.RandomState(3))
    np.testing.assert_array_equal(X, X_again)
    np.testing.assert_array_equal(y, y_again)
    X_other, _ = make_waveforms(200, random_state=4)
    assert not np.allclose(X, X_other)


def test_make_waveforms_are_circular_shifts_of_one_template_per_class():
    # Without noise and with amplitudes divided out, every signal of a class
    # is a rotation of every other.
    X, y = make_waveforms(60, n_features=32, n_classes=3, noise=0.0, random_state=0)
    X = X / X.std(axis=1, keepdims=True)
    for label in range(3):
        first, *others = X[y == label]
        rotations = np.stack([np.roll(first, k) for k in range(32)])
        for signal in others:
            assert np.abs(rotations - signal).max(axis=1).min() < 1e-4
    # Templates differ between classes: no rotation of one class's signal is another's.
    a, b = X[y == 0][0], X[y == 1][0]
    assert min(np.abs(np.roll(a, k) - b).max() for k in range(32)) > 0.1


def test_make_waveforms_shift_and_noise():
    X, y = make_waveforms(50, n_features=32, n_classes=2, noise=0.0, shift=0.0, random_state=0)
    X = X / X.std(axis=1, keepdims=True)
    for label in range(2):  # no shift: one template per class up to the amplitude
        np.testing.assert_allclose(X[y == label], np.broadcast_to(X[y == label][0], X[y == label].shape), atol=1e-5)
    clean, _ = make_waveforms(2000, n_features=16, noise=0.0, random_state=0)
    noisy, _ = make_waveforms(2000, n_features=16, noise=1.0, random_state=0)
    # The same templates, shifts and amplitudes (one draw order), plus unit noise.
    assert np.std(noisy - clean) == pytest.approx(1.0, rel=0.05)


def test_make_waveforms_need_more_than_a_linear_model():
    # The kind of data asked for: a shape anywhere in the window, which a
    # linear model of the raw signal hardly tells apart and 5-NN does.
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier

    X, y = make_waveforms(2000, random_state=0)
    X_train, X_test, y_train, y_test = X[:1500], X[1500:], y[:1500], y[1500:]
    linear = LogisticRegression(max_iter=500).fit(X_train, y_train).score(X_test, y_test)
    neighbours = KNeighborsClassifier(5).fit(X_train, y_train).score(X_test, y_test)
    assert linear < 0.5 < neighbours


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"n_samples": 0}, "n_samples"), ({"n_classes": 0}, "n_classes"), ({"noise": -1.0}, "noise"),
     ({"shift": 0.6}, "shift")],
)
def test_make_waveforms_rejects_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_waveforms(**kwargs)


@pytest.mark.parametrize(("n_samples", "image_size", "n_classes"), [(50, 16, 10), (25, 28, 12), (9, 8, 2)])
def test_make_glyphs_shapes_dtypes_range_and_balance(n_samples, image_size, n_classes):
    X, y = make_glyphs(n_samples, image_size, n_classes, random_state=0)
    assert X.shape == (n_samples, image_size**2) and X.dtype == np.float32
    assert y.shape == (n_samples,) and y.dtype == np.int64
    assert X.min() >= 0 and X.max() <= 1
    assert_balanced(y, n_classes)


def test_make_glyphs_is_deterministic_and_seeded():
    X, y = make_glyphs(60, random_state=1)
    X_again, y_again = make_glyphs(60, random_state=1)
    np.testing.assert_array_equal(X, X_again)
    np.testing.assert_array_equal(y, y_again)
    assert not np.array_equal(X, make_glyphs(60, random_state=2)[0])


def test_make_glyphs_draw_ink_inside_a_black_frame():
    X, y = make_glyphs(240, image_size=16, n_classes=12, random_state=0)
    images = X.reshape(-1, 16, 16)
    ink = images.sum(axis=(1, 2))
    assert (ink > 5).all()  # every image shows its shape
    # The stroke stays inside: at most its anti-aliased edge (half ink) on
    # the border pixels, but for the rare shape drawn too big to fit.
    border = np.maximum.reduce([images[:, 0].max(1), images[:, -1].max(1), images[:, :, 0].max(1),
                                images[:, :, -1].max(1)])
    assert (border <= 0.5).mean() > 0.97
    assert np.median((X == 0).mean(axis=1)) > 0.5  # mostly background
    # A disc (thick, round, small) carries a different amount of ink than a ring (long, thin).
    ring, disc = GLYPH_NAMES.index("ring"), GLYPH_NAMES.index("disc")
    assert not np.isclose(ink[y == ring].mean(), ink[y == disc].mean(), rtol=0.1)


def test_make_glyphs_image_size_is_a_resolution():
    # The same classes drawn at two resolutions: mean-pooling the finer one
    # gives images of the coarser one's size and about its total ink per class.
    coarse, y_coarse = make_glyphs(600, image_size=16, random_state=0)
    fine, y_fine = make_glyphs(600, image_size=32, random_state=0)
    np.testing.assert_array_equal(y_coarse, y_fine)
    pooled = fine.reshape(-1, 16, 2, 16, 2).mean((2, 4)).reshape(-1, 256)
    per_class = [(pooled[y_fine == c].sum(1).mean(), coarse[y_coarse == c].sum(1).mean()) for c in range(10)]
    for pooled_ink, coarse_ink in per_class:
        assert pooled_ink == pytest.approx(coarse_ink, rel=0.25)


def test_make_glyphs_classes_are_shapes_not_pixels():
    # 5-NN tells the shapes apart well, a linear model of the pixels less so.
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier

    X, y = make_glyphs(2000, random_state=0)
    X_train, X_test, y_train, y_test = X[:1500], X[1500:], y[:1500], y[1500:]
    neighbours = KNeighborsClassifier(5).fit(X_train, y_train).score(X_test, y_test)
    linear = LogisticRegression(max_iter=500).fit(X_train, y_train).score(X_test, y_test)
    assert neighbours > 0.7 and linear < neighbours


@pytest.mark.parametrize(("kwargs", "match"), [({"n_classes": 13}, "n_classes"), ({"image_size": 2}, "image_size")])
def test_make_glyphs_rejects_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_glyphs(10, **kwargs)


def square_images(n, size=12):
    """``n`` images holding a bright square in the middle, flattened."""
    images = np.zeros((n, size, size), dtype=np.float32)
    images[:, size // 3 : 2 * size // 3, size // 3 : 2 * size // 3] = 1.0
    return images.reshape(n, -1)


def test_perturb_images_without_perturbation_is_the_identity():
    images = square_images(4)
    out = perturb_images(images, (12, 12), shift=0, rotation=0, stroke_noise=0, random_state=0)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, images, atol=1e-6)


def test_perturb_images_downsample_is_mean_pooling():
    rng = np.random.RandomState(0)
    images = rng.uniform(size=(3, 28 * 28)).astype(np.float32)
    out = perturb_images(images, (28, 28), shift=0, rotation=0, stroke_noise=0, downsample=2)
    assert out.shape == (3, 14 * 14) and out.dtype == np.float32
    expected = images.reshape(3, 14, 2, 14, 2).mean((2, 4)).reshape(3, -1)
    np.testing.assert_allclose(out, expected, atol=1e-6)


def test_perturb_images_shift_moves_and_rotation_turns():
    images = square_images(200)
    # A whole-pixel shift of 2 moves the square by up to 2 pixels each way, keeping its ink.
    moved = perturb_images(images, (12, 12), shift=2, rotation=0, stroke_noise=0, random_state=0)
    rows, cols = np.indices((12, 12))
    centre_row = (moved.reshape(-1, 12, 12) * rows).sum((1, 2)) / moved.sum(1)
    centre_col = (moved.reshape(-1, 12, 12) * cols).sum((1, 2)) / moved.sum(1)
    assert np.abs(centre_row - 5.5).max() <= 2 + 1e-6 and np.abs(centre_col - 5.5).max() <= 2 + 1e-6
    assert np.std(centre_row) > 0.5 and np.std(centre_col) > 0.5
    np.testing.assert_allclose(moved.sum(1), images.sum(1), rtol=1e-5)
    # Rotations about the centre keep the centre of the ink where it was.
    turned = perturb_images(images, (12, 12), shift=0, rotation=30, stroke_noise=0, random_state=0)
    assert not np.allclose(turned, images)
    centre = (turned.reshape(-1, 12, 12) * rows).sum((1, 2)) / turned.sum(1)
    np.testing.assert_allclose(centre, 5.5, atol=1e-3)


def test_perturb_images_stroke_noise_dims_ink_only():
    images = square_images(50)
    noisy = perturb_images(images, (12, 12), shift=0, rotation=0, stroke_noise=0.4, random_state=0)
    ink = images > 0
    assert (noisy[~ink] == 0).all()
    assert noisy[ink].min() >= 0.6 - 1e-6 and noisy[ink].max() <= 1
    assert noisy[ink].std() > 0.05


def test_perturb_images_is_deterministic_and_in_range():
    images = load_digits(return_X_y=True)[0][:100]
    out = perturb_images(images, (8, 8), shift=1, random_state=5)
    np.testing.assert_array_equal(out, perturb_images(images, (8, 8), shift=1, random_state=5))
    assert not np.array_equal(out, perturb_images(images, (8, 8), shift=1, random_state=6))
    assert out.min() >= 0 and out.max() <= 1


@pytest.mark.parametrize(
    ("image_shape", "kwargs", "match"),
    [((12, 10), {}, "height \\* width"), ((12, 12), {"downsample": 5}, "does not divide"),
     ((12, 12), {"stroke_noise": 1.5}, "stroke_noise"), ((12, 12), {"shift": -1}, "shift")],
)
def test_perturb_images_rejects_bad_parameters(image_shape, kwargs, match):
    with pytest.raises(ValueError, match=match):
        perturb_images(square_images(2), image_shape, **kwargs)
