"""
=======================================
Training in several processes or GPUs
=======================================

*Story:* one fit takes too long on one process, and the machine has more
CPU sockets or GPUs. You want the same model, trained by several processes
together, without writing a training loop of your own.

This script is started by ``torchrun``, which runs it once per process
(two here) and tells each process its rank; each process joins the
``torch.distributed`` process group and fits the same estimator on the same
data. With a group of more than one process, ``fit`` trains data-parallel
(``data_parallel="auto"``, the default): each process runs the network on
its share of every batch, and every process ends with the model one process
trains at the same ``batch_size``. From the repository root::

    torchrun --standalone --nproc_per_node 2 examples/data_parallel.py

(``python -m torch.distributed.run`` is the same launcher). On a machine
with two GPUs, ``SKVAE_DEVICE=cuda`` trains one process per GPU over NCCL.
Run with plain ``python``, the script fits in one process, to compare. It
is not run by the documentation build, which has no ``torchrun``;
``tests/test_data_parallel.py`` runs it with two processes.
"""

# %%
# ``OMP_WAIT_POLICY=PASSIVE`` keeps torch's idle threads from busy-waiting
# (set before torch is imported); ``SKVAE_EXAMPLES_FAST=1`` shrinks the
# training for the test suite.
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
FAST = os.environ.get("SKVAE_EXAMPLES_FAST") == "1"

# %%
# The process group
# -----------------
# ``torchrun`` sets ``RANK``, ``WORLD_SIZE`` and the address of rank 0 in
# each process's environment, which :func:`torch.distributed.init_process_group`
# reads. gloo runs on CPUs; NCCL needs one GPU per process, named in
# ``device``.
import time

import torch
import torch.distributed as dist
from sklearn.model_selection import train_test_split

from skvae import DisentangledVAE
from skvae.datasets import load_digits

on_gpus = os.environ.get("SKVAE_DEVICE") == "cuda"
local_rank = int(os.environ.get("LOCAL_RANK", 0))
if "WORLD_SIZE" in os.environ:  # started by torchrun
    dist.init_process_group("nccl" if on_gpus else "gloo")
rank = dist.get_rank() if dist.is_initialized() else 0
world_size = dist.get_world_size() if dist.is_initialized() else 1
device = f"cuda:{local_rank}" if on_gpus else "cpu"

# %%
# The fit
# -------
# Every process reads the same data and builds the same estimator: the
# ranks draw the same shuffles from ``random_state`` (rank 0's seed is used
# when it is None), and ``fit`` refuses, on every rank, ranks whose data
# differ in size. ``batch_size`` is the global batch, shared by the ranks.
X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, stratify=y, random_state=0)
model = DisentangledVAE(
    n_components=2,
    hidden_dims=(64, 32) if FAST else (512, 256),
    batch_size=256,
    max_epochs=2 if FAST else 40,
    device=device,
    random_state=0,
)
start = time.perf_counter()
model.fit(X_train, y_train)
seconds = time.perf_counter() - start

# %%
# After the fit
# -------------
# Every rank holds the fitted model, with a plain torch module:
# ``transform``, ``predict`` and pickling work as after any fit. Only rank
# 0 writes the file of :meth:`~skvae.DisentangledVAE.save` (and skorch
# checkpoints); a rank that reads it waits for rank 0 at a barrier first.
model.save("data_parallel_model.skvae")
if dist.is_initialized():
    dist.barrier()
if rank == 0:
    print(f"{world_size} process(es): fit in {seconds:.1f} s, head accuracy on held-out digits "
          f"{model.score(X_test, y_test):.3f}")
    print("latent codes of two held-out digits, from the saved model:")
    print(DisentangledVAE.load("data_parallel_model.skvae").transform(X_test[:2]).round(3))
    os.remove("data_parallel_model.skvae")
if dist.is_initialized():
    dist.destroy_process_group()
