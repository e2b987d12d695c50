"""The state of one training call, held by a callback of the net.

A :class:`~skvae._net.DisentangledVAENet` trains in calls of ``fit_loop``,
one for each ``fit`` or ``partial_fit``. What such a call needs besides
the net's fitted attributes -- random generators that continue from the
net's ``rng_state_``, the copy of the last finished epoch that a stop
inside an epoch goes back to, the pseudo-labels propagated over its
training data -- is held by :class:`TrainingRun`, one of the net's default
callbacks, from the call's start to its end.
"""

import torch
from skorch.callbacks import Callback

from ._data_parallel import training_group

__all__ = ["TrainingRun", "initial_rng_state"]


def initial_rng_state(seed, device):
    """Random state a training seeded with ``seed`` starts from.

    A dict of generator states: ``"cpu"`` drives shuffling (and the
    sampling noise on the CPU), ``"cuda"`` the sampling noise on a GPU.
    """
    state = {"cpu": torch.Generator().manual_seed(seed).get_state()}
    if device.type == "cuda":
        state["cuda"] = torch.Generator(device=device).manual_seed(seed).get_state()
    return state


def _generators(state, device):
    """Generators ``(shuffle, noise)`` continuing from a random state."""
    shuffle = torch.Generator()
    shuffle.set_state(state["cpu"])
    if device.type != "cuda":
        return shuffle, shuffle
    noise = torch.Generator(device=device)
    if "cuda" in state:
        noise.set_state(state["cuda"])
    else:
        noise.manual_seed(int(torch.randint(2**31 - 1, (), generator=shuffle)))
    return shuffle, noise


def _generator_states(shuffle, noise):
    state = {"cpu": shuffle.get_state()}
    if noise is not shuffle:
        state["cuda"] = noise.get_state()
    return state


class TrainingRun(Callback):
    """What one training call of the net carries from hook to hook.

    The net starts a run in ``fit_loop`` (:meth:`start`), after every
    callback's ``on_train_begin``: a ``LoadInitState`` has loaded its
    checkpoint by then, and the call starts from that. The net's own
    ``on_epoch_end``, notified before any callback's, raises when the
    weights diverged; this callback's ``on_epoch_end`` then records the
    epoch as finished, before the user's callbacks (an ``EarlyStopping``
    ends training by raising there). When an exception stops the call, the
    net goes back to that epoch (:meth:`go_back`).

    Attributes
    ----------
    epochs_ : int
        The epochs the call trains.
    first_epoch_ : int
        The number, in the history, of the call's first epoch.
    shuffle_generator_ : torch.Generator
        Orders the training rows.
    noise_generator_ : torch.Generator
        Draws the sampling and masking noise and the border term's points:
        the shuffle generator itself on the CPU, a CUDA generator on a GPU.
    last_finished_epoch_ : dict or None
        The net's :meth:`~skvae._net.DisentangledVAENet.training_checkpoint`
        at the end of the last finished epoch (at the start of the call
        before one finished); None once training ended.
    propagated_labels_ : tuple of Tensor or None
        ``(labels, certainty)`` of each row of the training data's source
        dataset, by the row numbers that batches carry, set by the net when
        the first epoch begins; None unless the net propagates labels.
    group_ : TrainingGroup or None
        The ranks of a data-parallel training
        (:class:`~skvae._data_parallel.TrainingGroup`); None when the call
        trains in this process alone.
    """

    def initialize(self):
        self.epochs_ = 0
        self.first_epoch_ = 1
        self.shuffle_generator_ = self.noise_generator_ = None
        self.last_finished_epoch_ = None
        self.propagated_labels_ = None
        self.group_ = None
        return self

    def start(self, net, epochs):
        """Start a call that trains ``net``, as it is now, for ``epochs`` epochs."""
        self.epochs_ = epochs
        self.first_epoch_ = len(net.history) + 1
        self.shuffle_generator_, self.noise_generator_ = _generators(net.rng_state_, torch.device(net.device))
        self.propagated_labels_ = None
        self.group_ = training_group(net.data_parallel, torch.device(net.device))
        self.last_finished_epoch_ = net.training_checkpoint()

    def on_epoch_end(self, net, **kwargs):
        net.rng_state_ = _generator_states(self.shuffle_generator_, self.noise_generator_)
        self.last_finished_epoch_ = net.training_checkpoint()

    def go_back(self, net):
        """Take ``net`` back to the end of the last finished epoch, dropping
        the unfinished one from its history."""
        if len(net.history) > self.last_finished_epoch_["epochs"]:
            # The horizon, once set by the first epoch, stays.
            net.rewind({**self.last_finished_epoch_, "total_steps": net.total_steps_})

    def on_train_end(self, net, **kwargs):
        # Training ended with a finished epoch: its copy would only take memory.
        self.last_finished_epoch_ = None
        self.group_ = None

    def __getstate__(self):
        # A call in progress is not part of the model; the net's rng_state_
        # is. A net pickled during training (by a Checkpoint) so holds its
        # weights once, and no CUDA generator or tensor that a machine
        # without CUDA could not unpickle.
        state = self.__dict__.copy()
        state.update(
            shuffle_generator_=None, noise_generator_=None, last_finished_epoch_=None, propagated_labels_=None,
            group_=None,
        )
        return state
