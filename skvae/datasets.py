"""Data sets: loaders for MNIST and digits, and generators of other kinds of data.

The loaders (MNIST from the official IDX files, scikit-learn's digits)
return pixel features scaled to ``[0, 1]`` as ``float32``, the input range
the VAE's Bernoulli/sigmoid decoder expects.

The generators, in the style of scikit-learn's ``make_*`` functions, make
kinds of data the digits do not cover, to judge an estimator beyond them:
shifted 1-D signals (:func:`make_waveforms`), images of drawn shapes that are
not digits (:func:`make_glyphs`), and given images under random shifts,
rotations and stroke noise, optionally at a coarser resolution
(:func:`perturb_images`). Each is seeded by ``random_state``.

:class:`ScaledArray` scales an array's values as its rows are read, so that
images stored as uint8 on disk train without a float copy of them.
"""

import contextlib
import gzip
import hashlib
import http.client
import os
import urllib.request
from pathlib import Path

import numpy as np
from scipy import ndimage
from sklearn.datasets import load_digits as _sklearn_load_digits
from sklearn.model_selection import train_test_split
from sklearn.utils import Bunch, check_random_state, check_scalar
from sklearn.utils.validation import check_array

from ._fileio import atomic_write
from .exceptions import ChecksumError

__all__ = [
    "ChecksumError",
    "GLYPH_NAMES",
    "MNIST_MIRRORS",
    "ScaledArray",
    "load_digits",
    "load_mnist",
    "make_glyphs",
    "make_waveforms",
    "mnist_standard_split",
    "perturb_images",
]

#: Public MNIST mirrors tried in order when files are missing.
MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)

_MNIST_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
_MNIST_FILES["all"] = _MNIST_FILES["train"] + _MNIST_FILES["test"]

_MNIST_MD5 = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}

_IDX_IMAGES_MAGIC = 2051  # unsigned bytes, 3 dimensions
_IDX_LABELS_MAGIC = 2049  # unsigned bytes, 1 dimension
_CHUNK = 1 << 16

_MNIST_DESCR = """\
MNIST handwritten digits
------------------------

70,000 grayscale 28x28 images of handwritten digits 0-9 (60,000 training,
10,000 test), read from the original IDX files. ``data`` holds the pixels
flattened to 784 features and scaled to [0, 1] (pixel / 255) as float32;
``images`` holds the raw uint8 pixels (0-255).

MNIST is by Yann LeCun, Corinna Cortes and Christopher J.C. Burges
(http://yann.lecun.com/exdb/mnist/), made available under the terms of the
Creative Commons Attribution-Share Alike 3.0 license (CC BY-SA 3.0).

Y. LeCun, L. Bottou, Y. Bengio and P. Haffner. "Gradient-based learning
applied to document recognition." Proceedings of the IEEE, 86(11):2278-2324,
1998.
"""


def _md5(path):
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _data_home(data_home):
    if data_home is None:
        data_home = os.environ.get("SKVAE_DATA") or "~/.cache/skvae"
    return Path(os.path.expanduser(os.fspath(data_home)))


def _find_file(name, data_home):
    """Return the path of ``name`` in ``data_home`` or ``data_home/mnist``, or None."""
    for folder in (data_home, data_home / "mnist"):
        if (folder / name).is_file():
            return folder / name
    return None


def _download_atomic(url, dest, md5, timeout):
    """Download ``url`` to ``dest``; ``dest`` only ever appears complete and verified.

    The body is streamed through :func:`~skvae._fileio.atomic_write` (a
    temporary file next to ``dest``, renamed only once the body is complete
    and verified, and removed on any failure).
    """
    with atomic_write(dest) as tmp, urllib.request.urlopen(url, timeout=timeout) as response:
        length = response.headers.get("Content-Length", "")
        digest = hashlib.md5(usedforsecurity=False)
        size = 0
        while chunk := response.read(_CHUNK):
            tmp.write(chunk)
            digest.update(chunk)
            size += len(chunk)
        # http.client returns b"" rather than raising when the server closes
        # early, so a dropped connection shows only as a short body.
        if length.isdigit() and size != int(length):
            raise ConnectionError(
                f"incomplete download: received {size} of {length} bytes"
            )
        found = digest.hexdigest()
        if found != md5:
            raise ChecksumError(
                f"downloaded file has md5 {found}, expected {md5} "
                "(corrupt or wrong file served)"
            )


def _download(name, data_home, base_urls, timeout):
    """Download MNIST file ``name`` into ``data_home``, trying each mirror in turn.

    Folders created for the download are removed again when it fails, so a
    failed call leaves the disk as it found it.
    """
    created = [folder for folder in (data_home, *data_home.parents) if not folder.exists()]
    data_home.mkdir(parents=True, exist_ok=True)
    failures = []
    for base in base_urls:
        url = base.rstrip("/") + "/" + name
        try:
            _download_atomic(url, data_home / name, _MNIST_MD5[name], timeout)
            return data_home / name
        except (OSError, http.client.HTTPException, ChecksumError) as exc:
            failures.append((url, exc))
    for folder in created:  # deepest first
        with contextlib.suppress(OSError):  # not empty: another writer uses it
            folder.rmdir()
    tried = "\n".join(
        f"  - {url}: {type(exc).__name__}: {exc}" for url, exc in failures
    )
    message = (
        f"Could not download MNIST file {name!r} into '{data_home}'; nothing "
        f"was saved. Tried:\n{tried}\nTo fix: place {name!r} (md5 "
        f"{_MNIST_MD5[name]}) in '{data_home}' manually, or pass base_url= a "
        "reachable mirror."
    )
    error = (
        ChecksumError
        if any(isinstance(exc, ChecksumError) for _, exc in failures)
        else ConnectionError
    )
    raise error(message) from failures[-1][1]


def _read_idx(path, magic):
    """Parse a gzipped IDX file of unsigned bytes whose header must carry ``magic``."""
    try:
        with gzip.open(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as exc:
        raise ValueError(f"'{path}' is not a valid gzip file: {exc}") from exc
    found = int.from_bytes(raw[:4], "big")
    if len(raw) < 4 or found != magic:
        raise ValueError(
            f"'{path}' is not an IDX file of the expected kind: magic number "
            f"{found}, expected {magic}"
        )
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"'{path}' is truncated inside its IDX header")
    shape = tuple(int(d) for d in np.frombuffer(raw, ">i4", count=ndim, offset=4))
    expected = int(np.prod(shape)) if min(shape) >= 0 else -1
    if len(raw) - header != expected:
        raise ValueError(
            f"'{path}' is malformed: its header declares shape {shape} but it "
            f"holds {len(raw) - header} data bytes"
        )
    return np.frombuffer(raw, np.uint8, offset=header).reshape(shape).copy()


def _read_mnist_pair(images_path, labels_path):
    images = _read_idx(images_path, _IDX_IMAGES_MAGIC)
    labels = _read_idx(labels_path, _IDX_LABELS_MAGIC)
    if images.shape[1:] != (28, 28):
        raise ValueError(
            f"'{images_path}' holds images of shape {images.shape[1:]}, "
            "expected (28, 28)"
        )
    if len(images) != len(labels):
        raise ValueError(
            f"'{images_path}' holds {len(images)} images but '{labels_path}' "
            f"holds {len(labels)} labels"
        )
    if labels.size and labels.max() > 9:
        raise ValueError(f"'{labels_path}' holds labels outside 0-9")
    return images, labels


def load_mnist(
    data_home=None,
    *,
    subset="test",
    download=True,
    return_X_y=False,
    base_url=None,
    timeout=30.0,
):
    """Load the MNIST handwritten digits from the official IDX files.

    Every file read or downloaded is checked against its official md5
    checksum. Files are looked up in ``data_home`` and then in
    ``data_home/mnist``; a read-only folder holding the files works, as
    nothing is written unless a file has to be downloaded.

    Parameters
    ----------
    data_home : str or path-like, default=None
        Folder holding the ``*-ubyte.gz`` files (directly or in a ``mnist``
        subfolder), and where missing files are downloaded to. Defaults to
        the ``SKVAE_DATA`` environment variable if set, else
        ``~/.cache/skvae``.
    subset : {"test", "train", "all"}, default="test"
        Which split to load: the 10,000 test images, the 60,000 training
        images, or both (training first, then test).
    download : bool, default=True
        Download missing files. Each download is streamed to a temporary file
        in ``data_home``, verified, and only then renamed to its final name,
        so an interrupted or corrupt download never leaves a partial file.
    return_X_y : bool, default=False
        If True, return ``(data, target)`` instead of a Bunch.
    base_url : str or sequence of str, default=None
        Mirror URL(s) of the folder holding the MNIST files, tried in order.
        Defaults to :data:`MNIST_MIRRORS`.
    timeout : float, default=30.0
        Timeout in seconds for each network connection and read.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        Dictionary-like object with attributes:

        data : ndarray of shape (n_samples, 784), dtype float32
            Pixels flattened row by row and scaled to ``[0, 1]``.
        target : ndarray of shape (n_samples,), dtype int64
            Digit labels 0-9.
        images : ndarray of shape (n_samples, 28, 28), dtype uint8
            Raw pixel values 0-255.
        feature_names : list of str
            ``"pixel_0"`` to ``"pixel_783"``.
        target_names : ndarray of shape (10,)
            The digits 0-9.
        DESCR : str
            Description of the dataset, with its citation and license.

    (data, target) : tuple if ``return_X_y`` is True
        The ``data`` and ``target`` arrays described above.

    Raises
    ------
    FileNotFoundError
        If files are missing and ``download`` is False.
    ChecksumError
        A :class:`ValueError` raised if a local or downloaded file does not
        match its official md5 checksum.
    ConnectionError
        If a missing file could not be downloaded from any mirror.
    ValueError
        If ``subset`` is invalid or a file is not a well-formed IDX file.

    Examples
    --------
    >>> from skvae.datasets import load_mnist
    >>> X, y = load_mnist(return_X_y=True)  # doctest: +SKIP
    >>> X.shape, y.shape  # doctest: +SKIP
    ((10000, 784), (10000,))
    """
    if subset not in _MNIST_FILES:
        raise ValueError(
            f"subset must be one of 'train', 'test' or 'all', got {subset!r}"
        )
    data_home = _data_home(data_home)
    if base_url is None:
        base_urls = MNIST_MIRRORS
    elif isinstance(base_url, str):
        base_urls = (base_url,)
    else:
        base_urls = tuple(base_url)

    paths = {name: _find_file(name, data_home) for name in _MNIST_FILES[subset]}
    missing = [name for name, path in paths.items() if path is None]
    if missing and not download:
        raise FileNotFoundError(
            f"MNIST file(s) {', '.join(missing)} not found in '{data_home}' "
            f"or '{data_home / 'mnist'}'. To fix: call load_mnist with "
            "download=True, place the files in one of those folders, or point "
            "data_home (or the SKVAE_DATA environment variable) at the folder "
            "holding them."
        )
    for name in missing:
        paths[name] = _download(name, data_home, base_urls, timeout)

    for name, path in paths.items():
        found = _md5(path)
        if found != _MNIST_MD5[name]:
            raise ChecksumError(
                f"MNIST file '{path}' is corrupt or not the official file: "
                f"expected md5 {_MNIST_MD5[name]}, found {found}. To fix: delete "
                "it and call load_mnist(download=True) to re-download it, or "
                "replace it with a good copy."
            )

    names = _MNIST_FILES[subset]
    pairs = [
        _read_mnist_pair(paths[images_name], paths[labels_name])
        for images_name, labels_name in zip(names[::2], names[1::2])
    ]
    images = np.concatenate([images for images, _ in pairs])
    target = np.concatenate([labels for _, labels in pairs]).astype(np.int64)
    data = images.reshape(len(images), -1).astype(np.float32)
    data /= 255
    if return_X_y:
        return data, target
    return Bunch(
        data=data,
        target=target,
        images=images,
        feature_names=[f"pixel_{i}" for i in range(data.shape[1])],
        target_names=np.arange(10),
        DESCR=_MNIST_DESCR,
    )


def load_digits(*, return_X_y=False):
    """Load scikit-learn's 8x8 digits with pixels scaled to ``[0, 1]``.

    A small, offline stand-in for MNIST (1,797 images), wrapping
    :func:`sklearn.datasets.load_digits`.

    Parameters
    ----------
    return_X_y : bool, default=False
        If True, return ``(data, target)`` instead of a Bunch.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        Dictionary-like object with attributes:

        data : ndarray of shape (1797, 64), dtype float32
            Pixels flattened row by row and scaled to ``[0, 1]`` (pixel / 16).
        target : ndarray of shape (1797,), dtype int64
            Digit labels 0-9.
        images : ndarray of shape (1797, 8, 8), dtype uint8
            Raw pixel values 0-16.
        feature_names : list of str
            scikit-learn's names, ``"pixel_0_0"`` to ``"pixel_7_7"``.
        target_names : ndarray of shape (10,)
            The digits 0-9.
        DESCR : str
            scikit-learn's description of the dataset.

    (data, target) : tuple if ``return_X_y`` is True
        The ``data`` and ``target`` arrays described above.

    Examples
    --------
    >>> from skvae.datasets import load_digits
    >>> X, y = load_digits(return_X_y=True)
    >>> X.shape, X.dtype, float(X.max())
    ((1797, 64), dtype('float32'), 1.0)
    """
    digits = _sklearn_load_digits()
    images = digits.images.astype(np.uint8)
    data = images.reshape(len(images), -1).astype(np.float32)
    data /= 16
    target = digits.target.astype(np.int64)
    if return_X_y:
        return data, target
    return Bunch(
        data=data,
        target=target,
        images=images,
        feature_names=list(digits.feature_names),
        target_names=np.arange(10),
        DESCR=digits.DESCR,
    )


def mnist_standard_split(data_home=None, **load_kwargs):
    """Split the MNIST test subset into the project's standard 8,000/2,000 split.

    Stratified ``train_test_split(X, y, test_size=0.2, stratify=y,
    random_state=0)`` of the 10,000 MNIST test images, used by the tests and
    benchmarks.

    Parameters
    ----------
    data_home : str or path-like, default=None
        Passed to :func:`load_mnist`.
    **load_kwargs
        Other keyword arguments for :func:`load_mnist` (e.g. ``download``);
        ``subset`` and ``return_X_y`` are fixed.

    Returns
    -------
    X_train : ndarray of shape (8000, 784), dtype float32
    X_test : ndarray of shape (2000, 784), dtype float32
    y_train : ndarray of shape (8000,), dtype int64
    y_test : ndarray of shape (2000,), dtype int64
    """
    X, y = load_mnist(data_home, subset="test", return_X_y=True, **load_kwargs)
    return train_test_split(X, y, test_size=0.2, stratify=y, random_state=0)


# --------------------------------------------------------------------------- generators


def _balanced_labels(n_samples, n_classes, rng):
    """``n_samples`` labels in random order, the class counts differing by at most one."""
    labels = np.arange(n_samples, dtype=np.int64) % n_classes
    return labels[rng.permutation(n_samples)]


def _check_count(value, name, min_val=1):
    return check_scalar(value, name, target_type=(int, np.integer), min_val=min_val)


def _add_stroke_noise(ink, amount, rng):
    """Dim every pixel by a random share of up to ``amount``: strokes of uneven intensity.

    Multiplying leaves the background at 0, as ink on paper varies and the
    paper does not.
    """
    return ink * (1 - amount * rng.uniform(size=ink.shape))


# Each waveform template sums this many random components.
_WAVEFORM_COMPONENTS = 3


def _waveform_template(n_features, rng):
    """One class's periodic template of unit variance: a sum of sinusoids, bumps and boxes.

    Every component is periodic over the window (whole cycles, bumps and
    boxes that wrap around), so a circular shift of the template is as
    smooth as the template itself.
    """
    position = np.arange(n_features) / n_features  # one period
    template = np.zeros(n_features)
    for kind in rng.randint(3, size=_WAVEFORM_COMPONENTS):
        sign = rng.choice([-1.0, 1.0])
        if kind == 0:  # sinusoid of 1 to 4 cycles
            cycles = rng.randint(1, 5)
            template += sign * rng.uniform(0.5, 1.0) * np.sin(2 * np.pi * (cycles * position + rng.uniform()))
        elif kind == 1:  # bump: a Gaussian wrapped around the window
            offset = (position - rng.uniform() + 0.5) % 1 - 0.5
            template += sign * rng.uniform(1.0, 2.0) * np.exp(-0.5 * (offset / rng.uniform(0.02, 0.1)) ** 2)
        else:  # box: a step up and, 10-40% of the window later, down again
            template += sign * rng.uniform(0.5, 1.0) * ((position - rng.uniform()) % 1 < rng.uniform(0.1, 0.4))
    template -= template.mean()
    # A template of components that cancel out is flat; any other has a spread to scale.
    return template / max(template.std(), np.finfo(float).eps)


def make_waveforms(n_samples=1000, n_features=64, n_classes=10, *, noise=0.5, shift=0.5, random_state=None):
    """Generate 1-D signals: shifted, rescaled and noisy copies of one waveform per class.

    Each class has a random periodic template of zero mean and unit
    variance, the sum of three components, each a sinusoid (1 to 4 cycles),
    a bump (a Gaussian) or a box (a step up and down again). A sample is its
    class's template rotated circularly by a random number of steps, scaled
    by a random amplitude (log-uniform in ``[0.5, 2]``), plus Gaussian
    noise. As the class is a shape wherever it lies, a linear model of the
    raw signal tells the classes apart poorly, while neighbours in signal
    space share the class far more often.

    Parameters
    ----------
    n_samples : int, default=1000
        The number of signals. The classes are balanced: their counts differ
        by at most one.
    n_features : int, default=64
        The length of each signal. The templates are drawn over one period
        whatever the length, so a longer signal is a finer sampling of the
        same shapes.
    n_classes : int, default=10
        The number of classes, one template each.
    noise : float, default=0.5
        Standard deviation of the Gaussian noise added to every value,
        relative to the templates' unit standard deviation.
    shift : float in [0, 0.5], default=0.5
        The largest circular shift, as a fraction of ``n_features``: each
        signal is rotated by a whole number of steps drawn uniformly from
        ``[-shift * n_features, shift * n_features]``. 0.5 puts the shape
        anywhere in the window; 0 keeps it in place.
    random_state : int, RandomState instance or None, default=None
        Seeds the templates, the labels, the shifts, the amplitudes and the
        noise. Pass an int for the same data at every call.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features), dtype float32
        The signals, not standardized (amplitudes vary by design): put a
        :class:`~sklearn.preprocessing.StandardScaler` in front of a model
        that expects standardized features.
    y : ndarray of shape (n_samples,), dtype int64
        The class of each signal, in random order.

    Examples
    --------
    >>> from skvae.datasets import make_waveforms
    >>> X, y = make_waveforms(n_samples=200, random_state=0)
    >>> X.shape, X.dtype, y.dtype
    ((200, 64), dtype('float32'), dtype('int64'))
    """
    _check_count(n_samples, "n_samples")
    _check_count(n_features, "n_features")
    _check_count(n_classes, "n_classes")
    check_scalar(noise, "noise", target_type=(int, float), min_val=0)
    check_scalar(shift, "shift", target_type=(int, float), min_val=0, max_val=0.5)
    rng = check_random_state(random_state)
    templates = np.stack([_waveform_template(n_features, rng) for _ in range(n_classes)])
    y = _balanced_labels(n_samples, n_classes, rng)
    largest_shift = int(shift * n_features)
    shifts = rng.randint(-largest_shift, largest_shift + 1, size=n_samples)
    # Row i reads its template from position (j - shift_i) mod n_features: a circular shift.
    positions = (np.arange(n_features) - shifts[:, None]) % n_features
    amplitudes = np.exp(rng.uniform(np.log(0.5), np.log(2.0), size=(n_samples, 1)))
    X = amplitudes * templates[y[:, None], positions] + noise * rng.normal(size=(n_samples, n_features))
    return X.astype(np.float32), y


def _polygon(vertices):
    """The closed outline through ``vertices``, as segments."""
    return [(vertices[i], vertices[(i + 1) % len(vertices)]) for i in range(len(vertices))]


# The shapes of make_glyphs, in canonical coordinates (x to the right, y
# down, the image spanning [-1, 1] both ways) as line segments ((x0, y0),
# (x1, y1)), with the extra half-thickness each shape's strokes get beyond
# the sample's pen: a bar is a thick line, a disc a point drawn very thick.
_RING = _polygon([(0.7 * np.cos(a), 0.7 * np.sin(a)) for a in np.linspace(0, 2 * np.pi, 24, endpoint=False)])
_GLYPHS = {
    "line": ([((-0.8, 0.8), (0.8, -0.8))], 0.0),
    "bar": ([((-0.75, 0.0), (0.75, 0.0))], 0.12),
    "ring": (_RING, 0.0),
    "plus": ([((-0.8, 0.0), (0.8, 0.0)), ((0.0, -0.8), (0.0, 0.8))], 0.0),
    "cross": ([((-0.7, -0.7), (0.7, 0.7)), ((-0.7, 0.7), (0.7, -0.7))], 0.0),
    "corner": ([((-0.7, -0.7), (-0.7, 0.7)), ((-0.7, 0.7), (0.7, 0.7))], 0.0),
    "triangle": (_polygon([(0.0, -0.8), (0.75, 0.6), (-0.75, 0.6)]), 0.0),
    "square": (_polygon([(-0.65, -0.65), (0.65, -0.65), (0.65, 0.65), (-0.65, 0.65)]), 0.0),
    "disc": ([((0.0, 0.0), (0.0, 0.0))], 0.4),
    "tee": ([((-0.8, -0.7), (0.8, -0.7)), ((0.0, -0.7), (0.0, 0.8))], 0.0),
    "parallel": ([((-0.8, -0.4), (0.8, -0.4)), ((-0.8, 0.4), (0.8, 0.4))], 0.0),
    "chevron": ([((-0.8, 0.5), (0.0, -0.5)), ((0.0, -0.5), (0.8, 0.5))], 0.0),
}
#: The shapes of :func:`make_glyphs`, class 0 first.
GLYPH_NAMES = tuple(_GLYPHS)

# Rotations stay small enough that no shape turns into another (a plus
# rotated by 45 degrees is a cross).
_GLYPH_MAX_ROTATION = np.deg2rad(15)


def _segment_distances(points, starts, ends):
    """Distance from each point to each segment, per sample.

    ``points`` is (n_pixels, 2); ``starts`` and ``ends`` are (n_samples,
    n_segments, 2). Returns (n_samples, n_segments, n_pixels).
    """
    direction = ends - starts
    length2 = np.maximum((direction**2).sum(-1, keepdims=True), np.finfo(float).eps)  # a point: length 0
    relative = points[None, None] - starts[:, :, None]  # (n, s, p, 2)
    along = np.clip((relative * direction[:, :, None]).sum(-1) / length2, 0, 1)
    return np.linalg.norm(relative - along[..., None] * direction[:, :, None], axis=-1)


def _draw_glyphs(name, n_samples, image_size, rng):
    """``n_samples`` drawings of glyph ``name``, each (image_size * image_size) row-major, ink in [0, 1]."""
    segments, extra_half_width = _GLYPHS[name]
    segments = np.asarray(segments, dtype=float)  # (n_segments, 2 ends, 2 coordinates)
    # Per sample: a scale, an aspect and shear (a slightly uneven hand), a
    # rotation, a pen, then a position that keeps the whole stroke inside the image.
    scale = rng.uniform(0.5, 0.85, size=n_samples)
    angle = rng.uniform(-_GLYPH_MAX_ROTATION, _GLYPH_MAX_ROTATION, size=n_samples)
    cos, sin = np.cos(angle), np.sin(angle)
    rotation = np.stack([np.stack([cos, -sin], -1), np.stack([sin, cos], -1)], -2)
    uneven = np.eye(2) + rng.normal(scale=0.08, size=(n_samples, 2, 2))
    drawn = np.einsum("nij,sej->nsei", scale[:, None, None] * rotation @ uneven, segments)
    # The pen: half-widths of 0.06-0.13 of the half-image, strokes of 1-2
    # pixels at 16x16, scaled with the shape.
    half_width = rng.uniform(0.06, 0.13, size=n_samples) + extra_half_width * scale
    pixel = 2 / image_size
    margin = (half_width + pixel / 2)[:, None]  # the ink fades out over half a pixel beyond the pen
    lowest, highest = -1 + margin - drawn.min(axis=(1, 2)), 1 - margin - drawn.max(axis=(1, 2))
    middle = (lowest + highest) / 2  # where a shape too big to fit goes
    lowest, highest = np.minimum(lowest, middle), np.maximum(highest, middle)
    drawn += (lowest + rng.uniform(size=(n_samples, 2)) * (highest - lowest))[:, None, None]

    centers = (np.arange(image_size) + 0.5) * pixel - 1
    rows, cols = np.meshgrid(centers, centers, indexing="ij")
    points = np.stack([cols.ravel(), rows.ravel()], -1)  # (x, y) of each pixel, row-major
    distance = _segment_distances(points, drawn[:, :, 0], drawn[:, :, 1]).min(1)
    # Anti-aliased: full ink inside the stroke, fading to none over one pixel at its edge.
    return np.clip((half_width[:, None] - distance) / pixel + 0.5, 0, 1)


def make_glyphs(n_samples=1000, image_size=16, n_classes=10, *, random_state=None):
    """Generate grey images of simple drawn shapes, one shape per class: images that are not digits.

    The shapes, class 0 first, are those of :data:`GLYPH_NAMES`: a diagonal
    line, a thick horizontal bar, a ring, a plus, a cross, a corner, a
    triangle, a square, a disc, a T, two parallel lines and a chevron; the
    first ``n_classes`` are used. Each image draws its class's shape with a
    random scale, a slight random aspect and shear, a rotation of at most
    15 degrees either way (so that no shape becomes another, as a plus
    turned by 45 degrees would be a cross), a random position that keeps it
    whole inside the image, a random pen width, and stroke noise (each pixel of ink dimmed by
    up to 30%), on a black background.

    Parameters
    ----------
    n_samples : int, default=1000
        The number of images. The classes are balanced: their counts differ
        by at most one.
    image_size : int, default=16
        The side of the square images in pixels. The shapes, positions and
        pen widths are drawn relative to the image, so another size gives
        the same kind of images at another resolution.
    n_classes : int, default=10
        The number of classes, at most ``len(GLYPH_NAMES)`` (12).
    random_state : int, RandomState instance or None, default=None
        Seeds the labels and every drawing. Pass an int for the same images
        at every call.

    Returns
    -------
    X : ndarray of shape (n_samples, image_size * image_size), dtype float32
        The images flattened row by row, values in ``[0, 1]`` (0 is the
        background).
    y : ndarray of shape (n_samples,), dtype int64
        The class of each image: the index of its shape in
        :data:`GLYPH_NAMES`.

    Examples
    --------
    >>> from skvae.datasets import make_glyphs
    >>> X, y = make_glyphs(n_samples=100, random_state=0)
    >>> X.shape, X.dtype, bool(X.min() >= 0 and X.max() <= 1)
    ((100, 256), dtype('float32'), True)
    """
    _check_count(n_samples, "n_samples")
    _check_count(image_size, "image_size", min_val=4)
    check_scalar(n_classes, "n_classes", target_type=(int, np.integer), min_val=1, max_val=len(GLYPH_NAMES))
    rng = check_random_state(random_state)
    y = _balanced_labels(n_samples, n_classes, rng)
    X = np.zeros((n_samples, image_size * image_size))
    for label in range(n_classes):
        rows = np.flatnonzero(y == label)
        X[rows] = _draw_glyphs(GLYPH_NAMES[label], len(rows), image_size, rng)
    X = _add_stroke_noise(X, 0.3, rng)
    return X.astype(np.float32), y


def perturb_images(
    images, image_shape, *, shift=2.0, rotation=15.0, stroke_noise=0.2, downsample=1, random_state=None
):
    """Randomly shift, rotate and add stroke noise to images; optionally at a coarser resolution.

    Each image is rotated about its centre by an angle drawn uniformly from
    ``[-rotation, rotation]`` degrees and shifted by offsets drawn uniformly
    from ``[-shift, shift]`` pixels along each axis, in one bilinear
    resampling (:func:`scipy.ndimage.map_coordinates`), with the background
    (0) filling in at the borders. Then each pixel is dimmed by a random
    share of up to ``stroke_noise`` (strokes of uneven intensity, the
    background left at 0), and, with ``downsample > 1``, each block of
    ``downsample x downsample`` pixels is replaced by its mean. To make
    "MNIST with random shifts and rotations", or MNIST at 14x14::

        X_moved = perturb_images(X, (28, 28), random_state=0)
        X_14 = perturb_images(X, (28, 28), shift=0, rotation=0, stroke_noise=0, downsample=2)

    Parameters
    ----------
    images : array-like of shape (n_samples, height * width)
        Images flattened row by row, values in ``[0, 1]`` (0 the
        background), such as :func:`load_mnist`'s ``data``.
    image_shape : tuple of (int, int)
        ``(height, width)`` of each image.
    shift : float, default=2.0
        The largest shift along each axis, in pixels of the input images.
    rotation : float, default=15.0
        The largest rotation either way, in degrees.
    stroke_noise : float in [0, 1], default=0.2
        The largest share by which a pixel is dimmed; 0 for none.
    downsample : int, default=1
        Mean-pool blocks of ``downsample x downsample`` pixels: 2 turns
        28x28 images into 14x14. ``height`` and ``width`` must be multiples
        of it.
    random_state : int, RandomState instance or None, default=None
        Seeds the rotations, shifts and noise. Pass an int for the same
        output at every call.

    Returns
    -------
    X : ndarray of shape (n_samples, (height // downsample) * (width // downsample)), dtype float32
        The perturbed images, flattened row by row, values in ``[0, 1]``.

    Examples
    --------
    >>> import numpy as np
    >>> from skvae.datasets import perturb_images
    >>> images = np.zeros((3, 28 * 28), dtype=np.float32)
    >>> perturb_images(images, (28, 28), downsample=2, random_state=0).shape
    (3, 196)
    """
    images = check_array(images, dtype=[np.float64, np.float32], input_name="images")
    if len(image_shape) != 2 or images.shape[1] != image_shape[0] * image_shape[1]:
        raise ValueError(
            f"images have {images.shape[1]} features, which is not the height * width of "
            f"image_shape={tuple(image_shape)}"
        )
    height, width = image_shape
    check_scalar(shift, "shift", target_type=(int, float), min_val=0)
    check_scalar(rotation, "rotation", target_type=(int, float), min_val=0)
    check_scalar(stroke_noise, "stroke_noise", target_type=(int, float), min_val=0, max_val=1)
    _check_count(downsample, "downsample")
    if height % downsample or width % downsample:
        raise ValueError(f"downsample={downsample} does not divide image_shape={tuple(image_shape)}")
    rng = check_random_state(random_state)
    n_samples = len(images)

    angle = np.deg2rad(rng.uniform(-rotation, rotation, size=n_samples))[:, None, None]
    offset = rng.uniform(-shift, shift, size=(2, n_samples))[:, :, None, None]
    # Each output pixel reads the input at its position moved back: shifted
    # back, then rotated back about the centre.
    center_row, center_col = (height - 1) / 2, (width - 1) / 2
    rows, cols = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    d_row = rows[None] - center_row - offset[0]
    d_col = cols[None] - center_col - offset[1]
    cos, sin = np.cos(angle), np.sin(angle)
    source_row = center_row + cos * d_row - sin * d_col
    source_col = center_col + sin * d_row + cos * d_col
    # The image index is whole, so interpolating across images never mixes two.
    which = np.broadcast_to(np.arange(n_samples)[:, None, None], source_row.shape)
    moved = ndimage.map_coordinates(
        images.reshape(n_samples, height, width), [which, source_row, source_col], order=1, cval=0.0
    )
    moved = _add_stroke_noise(np.clip(moved, 0, 1), stroke_noise, rng)
    pooled = moved.reshape(n_samples, height // downsample, downsample, width // downsample, downsample).mean((2, 4))
    return pooled.reshape(n_samples, -1).astype(np.float32)


class ScaledArray:
    """An array whose rows are read scaled, as float32: uint8 pixels to [0, 1].

    Indexing reads the rows of ``array`` and returns them multiplied by
    ``scale`` in float64, then converted to float32 -- with the default
    ``scale=1/255``, the values :func:`load_mnist` gives for its uint8
    pixels. Nothing is read or converted before that, so a
    :class:`numpy.memmap`, ``h5py.Dataset``, ``zarr.Array`` or dask array
    of uint8 images stays on disk at a quarter of the size of its float32
    values, and :class:`~skvae.DisentangledVAE` reads it in blocks (see the
    user guide, "Data larger than memory"). An in-memory ``X`` is scaled
    the same way by ``(X * scale).astype(np.float32)``.

    Parameters
    ----------
    array : array-like of shape (n_samples, n_features)
        Any array indexable by rows: ``array[key]`` for slices and sorted
        integer arrays.
    scale : float, default=1/255
        Factor applied to every value.

    Attributes
    ----------
    shape : tuple of int
        The shape of ``array``.
    dtype : numpy.dtype
        float32, the dtype of the rows read.

    Examples
    --------
    >>> import numpy as np
    >>> from skvae.datasets import ScaledArray
    >>> pixels = np.array([[0, 51, 255]], dtype=np.uint8)
    >>> ScaledArray(pixels)[:1]
    array([[0. , 0.2, 1. ]], dtype=float32)
    """

    dtype = np.dtype(np.float32)

    def __init__(self, array, scale=1 / 255):
        check_scalar(scale, "scale", target_type=(int, float, np.floating), min_val=0, include_boundaries="neither")
        self.array = array
        self.scale = float(scale)

    @property
    def shape(self):
        return tuple(self.array.shape)

    @property
    def ndim(self):
        return len(self.shape)

    @property
    def chunks(self):
        # A chunked store keeps its chunks: training reads them whole.
        return getattr(self.array, "chunks", None)

    def __len__(self):
        return self.shape[0]

    def __getitem__(self, key):
        return np.multiply(np.asarray(self.array[key]), self.scale, dtype=np.float64).astype(np.float32)

    def __array__(self, dtype=None, copy=None):
        # What np.asarray(scaled) reads: all of it, the way an in-memory fit would.
        values = self[:]
        return values if dtype is None else values.astype(dtype)

    def __repr__(self):
        return f"ScaledArray({type(self.array).__name__} of shape {self.shape}, scale={self.scale!r})"
