import os

# torch's OpenMP threads spin while waiting; on a shared 2-core machine that
# makes training ~30x slower whenever another process holds a core.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from pathlib import Path  # noqa: E402

import matplotlib  # noqa: E402
import pytest  # noqa: E402

matplotlib.use("Agg")

from shared_data import MNIST_DIR, MNIST_MISSING  # noqa: E402


@pytest.fixture(scope="session")
def mnist_dir():
    if MNIST_DIR is None:
        pytest.skip(MNIST_MISSING)
    return MNIST_DIR


# ------------------------------------------------------- shared fixtures
#
# Session-scoped data and fitted models, shared by every test that an xdist
# worker runs. Their arrays are read-only; the fitted models must only be
# read: a test that changes one (sets attributes, refits it, edits its net)
# works on ``copy.deepcopy(model)``. A module may override ``digits`` with
# another slice of ``digits_all``.


@pytest.fixture(scope="session")
def digits_all():
    """All 1,797 scaled digits: ``X`` float32 in [0, 1] of shape (1797, 64), ``y``.

    Read-only: slice it, or copy it before changing it.
    """
    from skvae.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X.setflags(write=False)
    y.setflags(write=False)
    return X, y


@pytest.fixture(scope="session")
def digits(digits_all):
    """The first 300 digits (29 to 32 of each class), read-only."""
    X, y = digits_all
    return X[:300], y[:300]


@pytest.fixture(scope="session")
def tiny_fitted(digits):
    """``tiny_vae()`` fitted on ``digits``: a labelled model for mechanics
    (save, load, pickle), not quality."""
    from tiny import tiny_vae

    return tiny_vae().fit(*digits)


# Trains in well under a second, and long enough for a head that separates
# the classes: about 0.9 training accuracy, a border between every pair.
# Pinned, input_dropout included, so that the shared models do not change
# with the defaults: tests read their regions and borders.
TRAINED_2D = dict(
    hidden_dims=(32,),
    classifier_hidden=(8,),
    max_epochs=20,
    batch_size=32,
    lr=1e-2,
    warmup_steps=0,
    input_dropout=0.2,
    random_state=0,
)


@pytest.fixture(scope="session")
def vae(digits):
    """A DisentangledVAE with a 2-D latent space fitted on ``digits``."""
    from skvae import DisentangledVAE

    return DisentangledVAE(**TRAINED_2D).fit(*digits)


@pytest.fixture(scope="session")
def plain_vae(digits):
    """The same model fitted on ``digits`` without labels: a plain VAE."""
    from skvae import DisentangledVAE

    return DisentangledVAE(**TRAINED_2D).fit(digits[0])


# ------------------------------------------------- --dist loadgroup on pytest 9.2
#
# pytest-xdist tells its scheduler a test's xdist_group by appending
# "@<group>" to the nodeid on the worker, through the legacy ``item._nodeid``
# field. pytest 9.2 builds nodeids from ``item._id`` instead, so the groups
# are silently dropped and grouped tests spread over all workers (two dask
# clusters, two benchmark runs): pytest-dev/pytest-xdist#1386. Until xdist
# handles it, append the suffix to ``_id`` here, after xdist's own hook.


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    if not (hasattr(config, "workerinput") and config.getvalue("loadgroup")):
        return
    try:
        from _pytest.nodeid import NodeId
    except ImportError:  # pytest < 9.2: xdist's own suffix works
        return
    for item in items:
        if "@" in item.nodeid or not isinstance(getattr(item, "_id", None), NodeId):
            continue
        names = sorted({str(mark.args[0] if mark.args else mark.kwargs.get("name", "default"))
                        for mark in item.iter_markers("xdist_group")})
        if names:
            item._id = NodeId.parse(f"{item.nodeid}@{'_'.join(names)}")


# ------------------------------------------------ nothing outside the tmp dirs
#
# Tests write only in their tmp dirs. The run checks it as a whole, once, in
# the process that drives the workers: what lies beside the clone (the parent
# folder's entries, and everything under ``../shared``) and the clone's own
# untracked files must be the same after the run as before it. A difference
# fails the run and is named. (A test that made ``../shared/data/mnist`` on a
# machine without it broke every later run that way.)

REPO = Path(__file__).resolve().parents[1]


def _beside_the_clone():
    parent = REPO.parent
    entries = {entry.name for entry in parent.iterdir()}
    shared = parent / "shared"
    if shared.is_dir():
        entries |= {str(path.relative_to(parent)) for path in shared.rglob("*")}
    return entries


def _untracked_in_the_clone():
    import subprocess

    result = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"],
        cwd=REPO, capture_output=True, text=True, check=False,
    )
    if result.returncode != 0:  # not a git checkout (an sdist): nothing to compare
        return set()
    return {line[3:] for line in result.stdout.splitlines() if line.startswith("??")}


def _snapshot():
    return {"beside the clone": _beside_the_clone(), "untracked in the clone": _untracked_in_the_clone()}


def pytest_sessionstart(session):
    if not hasattr(session.config, "workerinput"):
        session.config.stash[_SNAPSHOT] = _snapshot()


def pytest_sessionfinish(session, exitstatus):
    before = session.config.stash.get(_SNAPSHOT, None)
    if before is None:
        return
    after = _snapshot()
    changes = [
        f"{where}: {sign} {name}"
        for where in before
        for sign, names in (("+", after[where] - before[where]), ("-", before[where] - after[where]))
        for name in sorted(names)
    ]
    if changes:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        message = "the test run changed files outside its tmp dirs:\n  " + "\n  ".join(changes[:50])
        if reporter is not None:
            reporter.write_sep("=", "FAILED: files outside the tmp dirs", red=True)
            reporter.write_line(message)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


_SNAPSHOT = pytest.StashKey[dict]()
