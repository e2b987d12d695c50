"""Hyper-parameter search on a Dask cluster through joblib's ``"dask"`` backend.

A module-scoped two-process ``LocalCluster`` on 127.0.0.1 runs the searches.
Their results must equal those of the same search run with ``n_jobs=1`` in
this process *exactly*: every fit is seeded by ``random_state``, and the
workers run the same torch build on the same CPU with the same thread count
(1), so each fit performs the same float operations in the same order. On a
remote cluster with other CPUs (other SIMD kernels) only float-tolerance
equality could be expected.
"""

import concurrent.futures
import contextlib
import logging
import os
import threading
import time

import pytest
import torch
from joblib import parallel_backend
from numpy.testing import assert_array_equal
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV

from skvae import Constant, DisentangledVAE, SigmoidDecay
from skvae.datasets import load_digits

distributed = pytest.importorskip("distributed")
from distributed.diagnostics.plugin import SchedulerPlugin  # noqa: E402

# Workers are new processes: give them the environment the test process has
# (passive OpenMP waiting, one torch thread), set before torch is imported.
WORKER_ENV = {"OMP_WAIT_POLICY": "PASSIVE", "OMP_NUM_THREADS": "1"}
STARTUP_TIMEOUT = 90  # seconds: cluster start, a restarted worker
SEARCH_TIMEOUT = 180  # seconds: one search, including workers importing torch
# The cv_results_ entries that must match; the *_time entries cannot.
RESULT_KEYS = ["mean_test_score", "std_test_score", "rank_test_score", "split0_test_score", "split1_test_score"]


def _warm_up():
    X, y = load_digits(return_X_y=True)
    DisentangledVAE(hidden_dims=(4,), max_epochs=1, random_state=0).fit(X[:20], y[:20])


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(
        n_workers=2,
        processes=True,
        threads_per_worker=1,
        host="127.0.0.1",
        dashboard_address=None,
        env=WORKER_ENV,
        silence_logs=logging.ERROR,
    )
    client = distributed.Client(cluster, timeout=STARTUP_TIMEOUT)
    try:
        client.wait_for_workers(2, timeout=STARTUP_TIMEOUT)
        # Pay each worker's one-off costs (importing torch, whose first
        # optimizer also imports torch._dynamo) before the timed searches.
        client.run(_warm_up)
        yield client
    finally:
        client.close(timeout=30)
        cluster.close(timeout=30)


@pytest.fixture(scope="module")
def data():
    X, y = load_digits(return_X_y=True)
    return X[:300], y[:300]


@contextlib.contextmanager
def _one_torch_thread():
    """Run torch in this process with the workers' thread count."""
    n_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n_threads)


def _search(n_jobs):
    estimator = DisentangledVAE(
        n_components=4,
        hidden_dims=(16,),
        classifier_hidden=(8,),
        max_epochs=5,
        batch_size=32,
        lr=1e-2,
        warmup_steps=0,
        random_state=0,
    )
    schedules = [SigmoidDecay(midpoint=0.2), Constant(1.0)]
    # Log-loss scores are continuous, so equal scores mean equal models.
    # refit=False: the final refit runs in this process, not on the cluster.
    return GridSearchCV(
        estimator,
        {"classification_weight": schedules},
        scoring="neg_log_loss",
        cv=2,
        n_jobs=n_jobs,
        refit=False,
    )


def _start_on_dask(function):
    """Call ``function()`` under joblib's dask backend in a daemon thread.

    Returns a future: its ``result(timeout=...)`` bounds the wait, and a hung
    search cannot keep the test process from exiting.
    """
    future = concurrent.futures.Future()

    def target():
        try:
            with parallel_backend("dask"):
                future.set_result(function())
        except Exception as exc:
            future.set_exception(exc)

    threading.Thread(target=target, daemon=True).start()
    return future


@pytest.fixture(scope="module")
def reference(data):
    """cv_results_ of the search run here with n_jobs=1."""
    with _one_torch_thread():
        return _search(n_jobs=1).fit(*data).cv_results_


def _assert_same_results(results, expected):
    # The schedules are equal-valued copies, not the same objects.
    assert repr(results["params"]) == repr(expected["params"])
    for key in RESULT_KEYS:
        assert_array_equal(results[key], expected[key], err_msg=key)


def test_workers_run_one_passive_torch_thread(client):
    def worker_settings():
        import torch

        return os.environ.get("OMP_WAIT_POLICY"), torch.get_num_threads()

    settings = client.run(worker_settings)
    assert list(settings.values()) == [("PASSIVE", 1)] * 2


def test_grid_search_on_dask_equals_n_jobs_1(client, data, reference):
    search = _search(n_jobs=-1)
    with distributed.get_task_stream(client) as tasks:
        _start_on_dask(lambda: search.fit(*data)).result(timeout=SEARCH_TIMEOUT)

    _assert_same_results(search.cv_results_, reference)
    # The search really fanned out: both workers ran fits.
    assert len({task["worker"] for task in tasks.data}) == 2


def test_fitted_model_comes_back_from_a_worker(client, data):
    # fit returns the estimator: the worker pickles the fitted skorch net and
    # this process loads it. It must predict exactly like the same fit here.
    estimator = _search(n_jobs=1).estimator
    remote = client.submit(estimator.fit, *data, pure=False).result(timeout=SEARCH_TIMEOUT)
    with _one_torch_thread():
        local = clone(estimator).fit(*data)

    X = data[0]
    assert_array_equal(remote.transform(X), local.transform(X))
    assert_array_equal(remote.predict_proba(X), local.predict_proba(X))
    assert_array_equal(remote.inverse_transform(remote.transform(X)), local.inverse_transform(local.transform(X)))


class _TaskRecorder(SchedulerPlugin):
    """Scheduler plugin counting finished tasks and tasks lost mid-run."""

    name = "skvae-task-recorder"

    def __init__(self):
        self.finished = 0
        self.lost = 0

    def transition(self, key, start, finish, *args, **kwargs):
        if start == "processing" and finish == "memory":
            self.finished += 1
        elif start == "processing" and finish in ("released", "waiting"):
            self.lost += 1


async def _crash():
    os._exit(1)


def _recorder_state(dask_scheduler):
    recorder = dask_scheduler.plugins[_TaskRecorder.name]
    busy = sorted(address for address, worker in dask_scheduler.workers.items() if worker.processing)
    return recorder.finished, recorder.lost, busy


def test_search_survives_a_killed_worker(client, data, reference):
    # Once the first task has finished, kill a worker that is running one
    # (os._exit: no clean-up, as in a crash). The scheduler gives the lost
    # task to the other worker, the nanny restarts the dead one, and the
    # search finishes with the same results.
    client.register_plugin(_TaskRecorder())
    search = _search(n_jobs=-1)
    future = _start_on_dask(lambda: search.fit(*data))

    deadline = time.monotonic() + SEARCH_TIMEOUT
    while True:
        finished, _, busy = client.run_on_scheduler(_recorder_state)
        if finished and busy:
            break
        assert not future.done(), "the search ended before a worker could be killed"
        assert time.monotonic() < deadline, "no task finished in time"
        time.sleep(0.05)
    victim = busy[0]
    client.run(_crash, workers=[victim], wait=False)
    future.result(timeout=SEARCH_TIMEOUT)

    _, lost, _ = client.run_on_scheduler(_recorder_state)
    client.unregister_scheduler_plugin(_TaskRecorder.name)
    assert lost >= 1, "no task was running on the killed worker"
    _assert_same_results(search.cv_results_, reference)
    # The nanny has replaced the dead worker.
    client.wait_for_workers(2, timeout=STARTUP_TIMEOUT)
    assert victim not in client.scheduler_info()["workers"]
