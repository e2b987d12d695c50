"""Data-parallel training over a ``torch.distributed`` process group.

A script started by ``torchrun --nproc_per_node N`` (or any launcher that
sets up a process group) initialises the group itself and fits the same
estimator on the same data in every process; the estimator's
``data_parallel`` parameter decides whether the fit then trains
data-parallel over the group (:func:`training_group`).

Every process, a *rank*, builds the same shuffled batches from the same
seeded generator and draws the random noise of the whole batch, as one
process would. Each rank runs the network forward on its share of the
batch's rows only (:meth:`TrainingGroup.rows`); the ranks exchange their
outputs (:meth:`TrainingGroup.gather_outputs`), so that every rank computes
the loss of the whole batch exactly as one process does, and the gradient
of that loss reaches each rank's network through its own rows only: summed
over the ranks (:meth:`TrainingGroup.sum_gradients`), it is the gradient
one process computes for the batch, up to the order of the float additions.
So the ranks keep identical weights, and a training equals that of one
process at the same batch size up to rounding. No
:class:`~torch.nn.parallel.DistributedDataParallel` wrapper: the net's
module stays the plain module that skorch, the compiled step and the saved
model use, and the loss needs all outputs of the batch, not one average of
per-rank losses (its class balance and border terms are not sums over rows).

A ``KeyboardInterrupt`` (Ctrl-C, which ``torchrun`` forwards to every
rank) is deferred to the next exchange of a training step or the end of an
epoch (:func:`interrupts_deferred`), where the ranks agree to stop
together, so that none is left waiting for the others in a collective.
"""

import contextlib
import math
import signal
import threading

import numpy as np
import torch
from skorch.callbacks import Checkpoint, TrainEndCheckpoint

__all__ = ["TrainingGroup", "interrupts_deferred", "is_main_process", "quiet_rank", "training_group"]


def _group_size():
    """World size of torch.distributed's default process group; 0 without one."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return 0
    return torch.distributed.get_world_size()


def training_group(data_parallel, device):
    """The :class:`TrainingGroup` a fit with ``data_parallel`` trains over, or None.

    Parameters
    ----------
    data_parallel : {"auto", True, False}
        The estimator's parameter: ``"auto"`` trains over the default
        process group when it has more than one process, True over the
        default process group whatever its size, False never.
    device : torch.device
        Where the net trains: the exchanged tensors live there (NCCL
        exchanges CUDA tensors only).

    Raises
    ------
    RuntimeError
        ``data_parallel=True`` without an initialised process group.
    """
    size = _group_size()
    if data_parallel is False or (data_parallel == "auto" and size < 2):
        return None
    if not size:
        raise RuntimeError(
            "data_parallel=True trains over torch.distributed's default process group, but none "
            "is initialised in this process. Start the script with torchrun (e.g. torchrun "
            "--nproc_per_node 2 script.py) and call torch.distributed.init_process_group() before "
            "fit, or set data_parallel='auto' to train in one process when there is no group."
        )
    return TrainingGroup(torch.device(device))


def is_main_process(data_parallel):
    """Whether this process prints the progress of a model with
    ``data_parallel`` and writes its files: any process but the ranks other
    than 0 of a process group the model trains over, which hold the same
    model as rank 0."""
    size = _group_size()
    if data_parallel is False or (data_parallel == "auto" and size < 2) or not size:
        return True
    return torch.distributed.get_rank() == 0


class TrainingGroup:
    """The ranks of the default process group, as one training sees them.

    Parameters
    ----------
    device : torch.device
        Where the exchanged tensors live.

    Attributes
    ----------
    rank, world_size : int
        This process's rank and the number of ranks.
    stop_requested : bool
        Whether this rank was interrupted (:func:`interrupts_deferred`)
        since the ranks last agreed to go on.
    """

    def __init__(self, device):
        self.device = device
        self.rank = torch.distributed.get_rank()
        self.world_size = torch.distributed.get_world_size()
        self.stop_requested = False

    def _shares(self, n_rows):
        """``(start, stop)`` of each rank's rows of a batch of ``n_rows``:
        contiguous, in rank order, as equal as they can be."""
        bounds = np.linspace(0, n_rows, self.world_size + 1).round().astype(int)
        return list(zip(bounds[:-1], bounds[1:]))

    def rows(self, n_rows):
        """The slice of a batch of ``n_rows`` rows that this rank runs forward."""
        start, stop = self._shares(n_rows)[self.rank]
        return slice(int(start), int(stop))

    def gather_outputs(self, outputs, n_rows):
        """Every rank's ``outputs`` of its rows, joined into those of the whole batch.

        Each rank's own rows keep their autograd graph; the others' come
        as values. Raises ``KeyboardInterrupt`` on every rank when any rank
        was interrupted (:attr:`stop_requested`): all ranks are at this same
        exchange, which they thus leave together.

        Parameters
        ----------
        outputs : tuple of Tensor or None
            The network's outputs for this rank's rows (:meth:`rows`), each
            with those rows as its first dimension; None stays None.
        n_rows : int
            Rows of the whole batch.

        Returns
        -------
        outputs : tuple of Tensor or None
            The outputs of the whole batch, in float32; with one rank,
            ``outputs`` themselves, so that its training is that of no
            process group bit for bit.
        """
        if self.world_size == 1:
            if self.stop_requested:
                self._stop()
            return outputs
        present = [output.float() for output in outputs if output is not None]
        widths = [math.prod(output.shape[1:]) for output in present]
        local = torch.cat([output.reshape(len(output), -1) for output in present], dim=1)
        shares = self._shares(n_rows)
        most = max(stop - start for start, stop in shares)
        # Equal shapes on every rank, as the collective needs: rows padded
        # to the largest share, and one more row that carries the stop flag.
        sent = torch.zeros((most + 1, local.shape[1]), dtype=local.dtype, device=local.device)
        sent[: len(local)] = local.detach()
        sent[most, 0] = float(self.stop_requested)
        received = [torch.empty_like(sent) for _ in range(self.world_size)]
        torch.distributed.all_gather(received, sent)
        if any(bool(block[most, 0]) for block in received):
            self._stop()
        joined = torch.cat(
            [local if rank == self.rank else block[: stop - start] for rank, (block, (start, stop)) in
             enumerate(zip(received, shares))]
        )
        columns = iter(joined.split(widths, dim=1))
        return tuple(
            None if output is None else next(columns).reshape(n_rows, *output.shape[1:]) for output in outputs
        )

    def sum_gradients(self, parameters):
        """Sum the gradients of ``parameters`` over the ranks, in one exchange."""
        if self.world_size == 1:
            return
        grads = [p.grad for p in parameters if p.grad is not None]
        if not grads:
            return
        flat = torch.cat([grad.reshape(-1) for grad in grads])
        torch.distributed.all_reduce(flat)
        offset = 0
        for grad in grads:
            grad.copy_(flat[offset : offset + grad.numel()].view_as(grad))
            offset += grad.numel()

    def check_interrupted(self):
        """Raise ``KeyboardInterrupt`` on every rank when any was interrupted."""
        flag = torch.tensor([float(self.stop_requested)], device=self.device)
        torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
        if bool(flag):
            self._stop()

    def _stop(self):
        self.stop_requested = False
        raise KeyboardInterrupt("stopped on every rank: a rank of the data-parallel training was interrupted")

    def broadcast_seed(self, seed):
        """Rank 0's ``seed``, on every rank."""
        value = torch.tensor([seed], dtype=torch.int64, device=self.device)
        torch.distributed.broadcast(value, src=0)
        return int(value)

    def check_same(self, values):
        """Raise a ``ValueError`` on every rank unless all ranks have the same ``values``.

        Parameters
        ----------
        values : dict of str to float
            What must agree, by name (sizes, counters, checksums).
        """
        local = torch.tensor(list(values.values()), dtype=torch.float64, device=self.device)
        low, high = local.clone(), local.clone()
        torch.distributed.all_reduce(low, op=torch.distributed.ReduceOp.MIN)
        torch.distributed.all_reduce(high, op=torch.distributed.ReduceOp.MAX)
        differ = [name for name, a, b in zip(values, low.tolist(), high.tolist()) if a != b]
        if differ:
            raise ValueError(
                f"The {self.world_size} ranks of this data-parallel fit differ in {', '.join(differ)}: "
                "every rank must fit the same estimator (same parameters, and the same fitted model "
                "when it continues training) on the same X, y and sample_weight. To fit a model of its "
                "own in each process, set data_parallel=False."
            )


@contextlib.contextmanager
def quiet_rank(net):
    """Within the block, ``net`` prints nothing and its checkpoint callbacks
    (skorch's ``Checkpoint`` and ``TrainEndCheckpoint``) write nothing,
    though they record their history entries as on rank 0."""
    checkpoints = [
        callback.checkpoint_ if isinstance(callback, TrainEndCheckpoint) else callback
        for _, callback in net.callbacks_
        if isinstance(callback, (Checkpoint, TrainEndCheckpoint))
    ]
    verbose = net.verbose
    net.verbose = 0
    for checkpoint in checkpoints:
        checkpoint.save_model = _skip_save
    try:
        yield
    finally:
        net.verbose = verbose
        for checkpoint in checkpoints:
            del checkpoint.save_model


def _skip_save(net):
    """A checkpoint's ``save_model`` on a rank other than 0."""


@contextlib.contextmanager
def interrupts_deferred(group):
    """Within the block, a Ctrl-C (SIGINT) sets ``group.stop_requested``
    instead of raising, and a second one raises at once.

    The ranks check the flag together at every exchange, and stop together.
    Only the main thread can handle signals: elsewhere, and without a
    ``group``, the block changes nothing.
    """
    if group is None or threading.current_thread() is not threading.main_thread():
        yield
        return
    # None: a handler installed by other than Python, which cannot be reinstalled; the default then.
    previous = signal.getsignal(signal.SIGINT)
    if previous is None:
        previous = signal.default_int_handler

    def request_stop(signum, frame):
        group.stop_requested = True
        # A second Ctrl-C stops this rank at once, for a training stuck elsewhere.
        signal.signal(signal.SIGINT, previous)

    signal.signal(signal.SIGINT, request_stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
