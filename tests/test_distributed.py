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
import logging
import os
import threading
import time

import numpy as np
import pytest
import torch
from joblib import parallel_backend
from numpy.testing import assert_array_equal
from sklearn.model_selection import GridSearchCV, cross_validate

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
        yield client
    finally:
        client.close(timeout=30)
        cluster.close(timeout=30)


@pytest.fixture(scope="module")
def data():
    X, y = load_digits(return_X_y=True)
    return X[:300], y[:300]


@pytest.fixture
def one_torch_thread():
    """Run torch in this process with the workers' thread count."""
    n_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
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
    schedules = [SigmoidDecay(), SigmoidDecay(midpoint=0.2), Constant(1.0)]
    # refit=False: the final refit runs in this process, not on the cluster.
    return GridSearchCV(estimator, {"classification_weight": schedules}, cv=2, n_jobs=n_jobs, refit=False)


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
        except BaseException as exc:
            future.set_exception(exc)

    threading.Thread(target=target, daemon=True).start()
    return future


@pytest.fixture(scope="module")
def reference(data):
    n_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _search(n_jobs=1).fit(*data).cv_results_
    finally:
        torch.set_num_threads(n_threads)


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


def test_fitted_models_come_back_from_workers(client, data, one_torch_thread):
    # return_estimator=True pickles the fitted nets on the workers and loads
    # them here; they must transform exactly like the same fits made here.
    estimator = _search(n_jobs=1).estimator
    local = cross_validate(estimator, *data, cv=2, return_estimator=True)
    remote = _start_on_dask(
        lambda: cross_validate(estimator, *data, cv=2, n_jobs=-1, return_estimator=True)
    ).result(timeout=SEARCH_TIMEOUT)

    assert_array_equal(remote["test_score"], local["test_score"])
    X = data[0]
    for remote_model, local_model in zip(remote["estimator"], local["estimator"]):
        assert_array_equal(remote_model.transform(X), local_model.transform(X))
        assert_array_equal(remote_model.predict(X), local_model.predict(X))


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
    client.run(os._exit, 1, workers=[victim], wait=False)
    future.result(timeout=SEARCH_TIMEOUT)

    _, lost, _ = client.run_on_scheduler(_recorder_state)
    client.unregister_scheduler_plugin(_TaskRecorder.name)
    assert lost >= 1, "no task was running on the killed worker"
    _assert_same_results(search.cv_results_, reference)
    # The nanny has replaced the dead worker.
    client.wait_for_workers(2, timeout=STARTUP_TIMEOUT)
    assert victim not in client.scheduler_info()["workers"]
