"""
Grid search on a Dask cluster
=============================

The weight of the latent classifier's loss follows a schedule over training
(see :mod:`skvae.schedules`), and which schedule works best depends on the
data. A grid search answers that by fitting one model per candidate schedule
and cross-validation fold. The fits are independent of each other, so they
can run anywhere: scikit-learn hands them to joblib, and joblib's ``"dask"``
backend sends them to the workers of a Dask cluster.

This example runs the search on a :class:`distributed.LocalCluster` of two
worker processes on this machine, then shows the one line that changes to run
the same search on a remote cluster.

It needs Dask's ``distributed`` package: ``pip install "skvae[dask]"``.
"""

# %%
# Data, model and grid
# --------------------
#
# The 8x8 digits, a small model with a 2-dimensional latent space, and four
# schedules for the classification weight: the default sigmoid decay, an
# earlier sigmoid decay, a linear decay, and a constant weight.
import os

# torch's OpenMP threads busy-wait by default, which wastes the cores that
# other processes (here: the Dask workers) need.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import logging  # noqa: E402
import time  # noqa: E402

import matplotlib.pyplot as plt  # noqa: E402
from joblib import parallel_backend  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402

from skvae import Constant, DisentangledVAE, LinearDecay, SigmoidDecay  # noqa: E402
from skvae.datasets import load_digits  # noqa: E402

X, y = load_digits(return_X_y=True)

vae = DisentangledVAE(
    n_components=2,
    hidden_dims=(64,),
    max_epochs=10,
    batch_size=32,
    lr=1e-2,
    random_state=0,
)
schedules = [SigmoidDecay(), SigmoidDecay(midpoint=0.2), LinearDecay(), Constant(1.0)]
search = GridSearchCV(vae, {"classification_weight": schedules}, cv=2, n_jobs=-1)

# %%
# Search on a local cluster
# -------------------------
#
# ``LocalCluster`` starts a scheduler and two worker processes, each with one
# thread; ``Client`` connects to it and becomes the default client, which
# joblib's ``"dask"`` backend uses. Inside ``parallel_backend("dask")``,
# ``n_jobs=-1`` means every worker thread of the cluster. Each task carries
# a clone of the estimator and the data of its fold to a worker, which fits
# it and sends back the scores; the final refit on all data runs here.
#
# Worker processes do not share this process's settings, so the environment
# they need is passed with ``env``: one OpenMP thread each (two processes on
# two cores) and passive waiting.
#
# Worker processes are started by re-importing this script, as in any use
# of :mod:`multiprocessing`; the ``if __name__ == "__main__":`` guard keeps
# them from starting clusters of their own.
if __name__ == "__main__":
    from distributed import Client, LocalCluster

    cluster = LocalCluster(
        n_workers=2,
        processes=True,
        threads_per_worker=1,
        host="127.0.0.1",
        dashboard_address=None,
        env={"OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE"},
        silence_logs=logging.ERROR,
    )
    client = Client(cluster)
    print(f"{len(client.scheduler_info()['workers'])} workers at {cluster.scheduler_address}")

    start = time.perf_counter()
    with parallel_backend("dask"):
        search.fit(X, y)
    print(f"{len(schedules) * search.n_splits_} fits on the cluster and one refit here: "
          f"{time.perf_counter() - start:.0f} s")

    client.close()
    cluster.close()

# %%
# Results
# -------
#
# ``cv_results_`` is the same as it would be with ``n_jobs=1`` in this
# process: each fit is seeded by ``random_state``, whichever worker runs it.
# A worker that dies mid-search is restarted by its nanny, and the scheduler
# runs its lost fits again elsewhere.
if __name__ == "__main__":
    results = search.cv_results_
    print(f"{'classification_weight':<30} accuracy")
    for params, mean, std in zip(results["params"], results["mean_test_score"], results["std_test_score"]):
        print(f"{params['classification_weight']!r:<30} {mean:.3f} +/- {std:.3f}")
    print(f"best: {search.best_params_['classification_weight']!r}")

    fig, ax = plt.subplots(figsize=(6, 4))
    for schedule, mean in zip(schedules, results["mean_test_score"]):
        schedule.plot(100, ax=ax, label=f"{schedule!r}: accuracy {mean:.3f}")
    ax.set_xlabel("training progress (%)")
    ax.set_yscale("log")
    ax.set_title("Classification weight over training, with CV accuracy")
    ax.legend(fontsize="small")
    plt.show()

# %%
# On a remote cluster
# -------------------
#
# With a Dask scheduler running elsewhere (``dask scheduler`` on one machine,
# ``dask worker tcp://scheduler:8786 --nthreads 1`` on each worker machine,
# with ``OMP_NUM_THREADS=1``), only the client changes: connect it to the
# scheduler instead of starting a local cluster. The search code stays the
# same.
#
# .. code-block:: python
#
#     from distributed import Client
#
#     client = Client("tcp://scheduler:8786")
#     with parallel_backend("dask"):
#         search.fit(X, y)
#
# The workers need the same versions of skvae, torch and scikit-learn as
# the client, since estimators travel between them pickled.
# ``joblib.parallel_config(backend="dask")`` is the newer spelling of
# ``parallel_backend("dask")``; both work.
