"""Where the tests find the real MNIST test set: one rule for every test.

``$SKVAE_DATA`` when it is set (the folder itself or its ``mnist``
subfolder, as :func:`skvae.datasets.load_mnist` reads it), else
``shared/data/mnist`` beside the clone. A folder only counts when it holds
both test files: tests that need the data check for the files, never for a
folder, and nothing here creates one. ``.ci/run`` runs the suite a second
time with ``SKVAE_DATA`` pointing at an empty folder, so the suite is proven
on a machine without the data too.
"""

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TEST_FILES = ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


def _find_mnist():
    if os.environ.get("SKVAE_DATA"):
        home = Path(os.environ["SKVAE_DATA"]).expanduser()
        candidates = [home, home / "mnist"]
    else:
        candidates = [REPO.parent / "shared" / "data" / "mnist"]
    for folder in candidates:
        if all((folder / name).is_file() for name in TEST_FILES):
            return folder
    return None


# The folder holding both MNIST test files, or None where there is none.
MNIST_DIR = _find_mnist()
MNIST_MISSING = (
    "the MNIST test files are not here: set SKVAE_DATA to a folder holding "
    f"{' and '.join(TEST_FILES)}, or place them in {REPO.parent / 'shared' / 'data' / 'mnist'}"
)
