"""Dataset loaders: MNIST from the official IDX files, and scikit-learn's digits.

Both loaders return pixel features scaled to ``[0, 1]`` as ``float32``, the
input range the VAE's Bernoulli/sigmoid decoder expects.
"""

import contextlib
import gzip
import hashlib
import http.client
import os
import urllib.request
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits as _sklearn_load_digits
from sklearn.model_selection import train_test_split
from sklearn.utils import Bunch

from ._fileio import atomic_write
from .exceptions import ChecksumError

__all__ = [
    "ChecksumError",
    "MNIST_MIRRORS",
    "load_digits",
    "load_mnist",
    "mnist_standard_split",
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
