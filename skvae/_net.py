"""The skorch net that trains a :class:`~skvae.modules.DisentangledVAEModule`.

The estimator in :mod:`skvae.estimator` builds one of these inside ``fit``.
Training is skorch's own loop; this subclass only adds what the method needs:

* batches fetched whole (``__getitems__``) instead of row by row, from
  memory or, for input larger than memory, from an array read in blocks
  (:class:`ArrayBatchDataset`, shuffled within windows of chunks when the
  array is a chunked store),
* a loss made of several terms, each recorded in the history,
* an optimizer-step counter that drives the classification-weight schedule
  and the reconstruction-only warm-up, the schedule checked for every step
  of a training call when its first epoch begins, before any step,
* random generators of its own for shuffling and the sampling noise, so
  that a training depends on its seed only, also with fits in threads,
  held with the rest of a training call's state by a callback
  (:class:`~skvae._training.TrainingRun`),
* its training state as one get/set pair (:meth:`get_training_state`),
* a divergence guard that stops before a non-finite loss reaches the weights,
* a copy of the state at the end of every finished epoch, which training
  goes back to when an exception (Ctrl-C, divergence, any error) stops it
  mid-epoch, so that the net is always that of a finished epoch and can be
  resumed exactly where that epoch left it,
* data-parallel training over a ``torch.distributed`` process group, each
  rank running its share of every batch (:mod:`skvae._data_parallel`).

Undoing a whole failed training call is the estimator's part
(:meth:`DisentangledVAENet.training_checkpoint` and :meth:`~DisentangledVAENet.rewind`).
"""

import copy
import math
import warnings

import numpy as np
import torch
from skorch import NeuralNet
from skorch.callbacks import EarlyStopping, PassthroughScoring
from skorch.history import History
from skorch.dataset import unpack_data
from skorch.utils import TeeGenerator, to_tensor

from ._arrays import BlockRows, ChunkCache, ChunkWindowBatches, SelectedRows, shuffle_window_chunks
from ._compile import compiled_forward, compiled_loss
from ._data_parallel import interrupts_deferred, is_main_process, quiet_rank
from ._progress import EpochTable
from ._training import TrainingRun, initial_rng_state
from .exceptions import DivergenceError
from .losses import propagate_labels, pseudo_labels, weighted_mean
from .schedules import check_schedule

__all__ = ["ArrayBatchDataset", "DisentangledVAENet", "LabeledInEveryBatch", "TensorBatchDataset", "batch_dataset"]

LOSS_TERMS = ("reconstruction", "kl", "classification")

#: The autocast dtype of each mixed precision.
AUTOCAST_DTYPES = {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}

# Share of every semi-supervised batch given to labelled rows (unless the
# data hold more): with 1% labels a plain shuffle puts about one labelled
# row in a batch of 128, too few for the head to learn from.
LABELED_SHARE = 0.25


class TensorBatchDataset(torch.utils.data.Dataset):
    """In-memory dataset that hands out whole batches with one index.

    A batch is ``(X, y)`` with ``y`` a dict: ``"labels"``, the class indices
    of its rows, ``"weights"``, their sample weights, and ``"rows"``, their
    positions in the dataset, by which a training finds what it computed
    for each row before it started (the propagated pseudo-labels).

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Data, converted to a float32 tensor once.
    y : array-like of shape (n_samples,) or None
        Integer class indices, ``-1`` for an unlabelled sample. None means
        no sample is labelled.
    sample_weight : array-like of shape (n_samples,) or None
        Non-negative weight of each sample in the loss, as float32; None
        weighs every sample 1.
    """

    def __init__(self, X, y=None, sample_weight=None):
        self.X = torch.as_tensor(np.asarray(X, dtype=np.float32).copy())
        self.y, self.weights = _labels_and_weights(len(self.X), y, sample_weight)

    def __len__(self):
        return len(self.X)

    def __getitem__(self, index):
        return self.X[index], {"labels": self.y[index], "weights": self.weights[index], "rows": index}

    def __getitems__(self, indices):
        # The DataLoader's batch fetch protocol: one gather per batch.
        rows = torch.as_tensor(indices, dtype=torch.int64)
        return self.X[rows], {"labels": self.y[rows], "weights": self.weights[rows], "rows": rows}


def _labels_and_weights(n_samples, y, sample_weight):
    """``(labels, weights)`` tensors of a dataset: -1 and 1 where not given."""
    if y is None:
        labels = torch.full((n_samples,), -1, dtype=torch.int64)
    else:
        labels = torch.as_tensor(np.asarray(y, dtype=np.int64).copy())
    if sample_weight is None:
        weights = torch.ones(n_samples, dtype=torch.float32)
    else:
        weights = torch.as_tensor(np.asarray(sample_weight, dtype=np.float32).copy())
    return labels, weights


class ArrayBatchDataset(torch.utils.data.Dataset):
    """The dataset of :class:`TensorBatchDataset`, its rows read from an
    array in batches instead of held in memory.

    A batch reads its rows in one gather of their sorted positions and puts
    them back in the order asked for, so its values are those the in-memory
    dataset of the same rows gives: with the same batches, a training is
    the same. From a chunked store (``chunk_rows``) the rows come from a
    cache of whole chunks, which the training's batches
    (:class:`~skvae._arrays.ChunkWindowBatches`) read about once an epoch.

    Parameters
    ----------
    X : BlockRows
        Validated rows of the array (:func:`~skvae._arrays.validate_blocks`).
    y, sample_weight : array-like of shape (n_samples,) or None
        As for :class:`TensorBatchDataset`.
    """

    def __init__(self, X, y=None, sample_weight=None):
        self.X = X
        self.y, self.weights = _labels_and_weights(len(X), y, sample_weight)
        self.chunk_rows = X.chunk_rows
        if self.chunk_rows:
            self.window_chunks = shuffle_window_chunks(self.chunk_rows, X.shape[1])
            # A batch spans at most two windows.
            self._cache = ChunkCache(X, 2 * self.window_chunks + 1)

    def __len__(self):
        return len(self.X)

    def __getitem__(self, index):
        X, y = self.__getitems__([index])
        return X[0], {"labels": y["labels"][0], "weights": y["weights"][0], "rows": index}

    def __getitems__(self, indices):
        rows = torch.as_tensor(indices, dtype=torch.int64)
        # Unique and sorted, as h5py and zarr need; repeated rows are read once.
        positions, inverse = np.unique(rows.numpy(), return_inverse=True)
        if self.chunk_rows:
            values = self._cache.gather(positions)
        else:
            values = self.X.take(positions).astype(np.float32, copy=False)
        X = torch.from_numpy(np.ascontiguousarray(values[inverse]))
        return X, {"labels": self.y[rows], "weights": self.weights[rows], "rows": rows}


def batch_dataset(X, y=None, sample_weight=None):
    """The dataset of validated rows ``X``: a :class:`TensorBatchDataset` of
    an in-memory array, an :class:`ArrayBatchDataset` of ``BlockRows``."""
    dataset = ArrayBatchDataset if isinstance(X, BlockRows) else TensorBatchDataset
    return dataset(X, y, sample_weight)


def _source_and_rows(dataset):
    """``(source, rows)`` of a training dataset: the TensorBatchDataset (or
    ArrayBatchDataset) its rows come from, and their positions there, which
    its batches carry. The training part of a validation split is a
    ``Subset`` of one."""
    if isinstance(dataset, torch.utils.data.Subset):
        return dataset.dataset, torch.as_tensor(dataset.indices, dtype=torch.int64)
    return dataset, slice(None)


class LabeledInEveryBatch(torch.utils.data.Sampler):
    """Batches of partly labelled data that all carry labelled rows.

    An epoch has as many batches as a plain shuffle of the data would
    (``ceil(n_samples / batch_size)``), so the schedule's horizon means the
    same. Each batch holds ``n_labeled`` labelled rows, the labelled share of
    the data or ``LABELED_SHARE``, whichever is larger (at most all of them),
    drawn in turn from reshuffled passes over the labelled rows, so that every
    labelled row is seen about equally often; the rest of the batch are
    unlabelled rows, likewise.

    Parameters
    ----------
    labeled : Tensor of shape (n_samples,), dtype bool
        Which rows are labelled; both kinds must be present.
    batch_size : int
        Rows per batch, at least 2.
    generator : torch.Generator
        Source of the shuffles.
    """

    def __init__(self, labeled, batch_size, generator):
        self.labeled = torch.nonzero(labeled).flatten()
        self.unlabeled = torch.nonzero(~labeled).flatten()
        self.batch_size = batch_size
        self.generator = generator
        share = max(len(self.labeled) / len(labeled), LABELED_SHARE)
        self.n_labeled = min(max(round(share * batch_size), 1), batch_size - 1, len(self.labeled))
        self.n_batches = math.ceil(len(labeled) / batch_size)

    def __len__(self):
        return self.n_batches

    def _stream(self, rows, n):
        """``n`` of ``rows``, in reshuffled passes over all of them."""
        passes = math.ceil(n / len(rows))
        order = torch.cat([rows[torch.randperm(len(rows), generator=self.generator)] for _ in range(passes)])
        return order[:n]

    def __iter__(self):
        n_unlabeled = self.batch_size - self.n_labeled
        labeled = self._stream(self.labeled, self.n_batches * self.n_labeled).view(self.n_batches, self.n_labeled)
        unlabeled = self._stream(self.unlabeled, self.n_batches * n_unlabeled).view(self.n_batches, n_unlabeled)
        for batch in torch.cat([labeled, unlabeled], dim=1):
            yield batch.tolist()


def collate_batch(batch):
    """Collate function for :class:`TensorBatchDataset`: batches come whole."""
    return batch


class _Initialized:
    """Pickled in place of a parameter that is the initialized component."""


class DisentangledVAENet(NeuralNet):
    """skorch ``NeuralNet`` for the disentangled VAE.

    Parameters
    ----------
    module : DisentangledVAEModule
        The model, returning ``(output, mu, logvar, logits)``.
    criterion : DisentangledVAELoss
        The weighted loss; its ``forward`` returns a dict of terms.
    classification_weight : callable
        Schedule ``f(step, total_steps) -> weight`` of the classification
        term, evaluated at every optimizer step.
    warmup_steps : int or float
        First optimizer steps that train reconstruction only: a number of
        steps (int), or a fraction of ``total_steps_`` (float in [0, 1)).
    seed : int
        Seed of the training's own random generators (shuffling and the
        sampling noise); torch's global random state is never used.
    precision : {"32", "bf16-mixed", "16-mixed"}
        Forward passes in float32, or under bfloat16 or float16 autocast
        (weights, optimizer state and loss stay float32). ``"16-mixed"``
        scales the loss (:class:`torch.amp.GradScaler`) so that small
        gradients survive float16's narrow range.
    unlabeled_weight : float
        Weight of the unlabelled rows' head terms (pseudo-labels and class
        balance), relative to the classification weight.
    pseudo_label_threshold : float
        Smallest head probability at the latent mean that makes an
        unlabelled row's predicted class its pseudo-label (``"head"``).
    pseudo_label_source : {"head", "propagation"}
        Where the unlabelled rows' pseudo-labels come from: the head's sure
        predictions, or labels spread over the kNN graph of the training
        data once per :meth:`fit_loop`, weighted by their certainty
        (:func:`~skvae.losses.propagate_labels`).
    use_compiled_step : bool
        Whether training steps run their forward pass and loss compiled by
        ``torch.compile`` (:mod:`skvae._compile`); the random draws, the
        backward pass and the optimizer step stay eager. Not skorch's
        ``compile``, which would make ``module_`` a compiled module.
    data_parallel : {"auto", True, False}
        Whether training runs data-parallel over torch.distributed's default
        process group (see :func:`~skvae._data_parallel.training_group`):
        each rank runs the rows of its share of every batch, and only rank 0
        prints and writes checkpoints.
    **kwargs
        Passed to :class:`skorch.NeuralNet`.

    Attributes
    ----------
    n_steps_ : int
        Optimizer steps taken in the epochs of the history.
    total_steps_ : int
        The schedule's horizon: optimizer steps (training batches) in
        ``max_epochs`` epochs of the data of the first epoch after
        initialisation. Training continued later keeps it.
    rng_state_ : dict of Tensor
        State of the training's generators (CPU, and CUDA on a GPU) at the
        end of the last finished epoch, as CPU tensors. Training continues
        from it, so a training stopped and resumed shuffles and samples
        exactly as one that ran through.
    interrupted_ : bool
        Whether the last training was stopped by a ``KeyboardInterrupt``
        other than that of an ``EarlyStopping`` callback.
    grad_scaler_ : torch.amp.GradScaler
        The loss scale of ``"16-mixed"`` training; disabled in the other
        precisions.
    training_run_ : TrainingRun
        The callback that holds the state of a training call (see
        :mod:`skvae._training`): its generators, the copy of its last
        finished epoch, its propagated labels.

    Notes
    -----
    Unlike a plain skorch net, :meth:`fit_loop` without ``epochs`` trains
    the epochs missing to ``max_epochs`` in the history: ``fit`` after a
    training that stopped early, or after loading a checkpoint's history,
    finishes the planned training.

    When an exception -- a ``KeyboardInterrupt``, a
    :class:`~skvae.exceptions.DivergenceError` or any other -- stops
    training inside an epoch, the module, the optimizer, the step counter
    and the random state go back to the end of the last finished epoch, and
    that epoch's unfinished row is dropped from the history, before the
    exception propagates: the net is always that of a finished epoch, whose
    weights are finite. To undo a whole call, take a
    :meth:`training_checkpoint` before it and :meth:`rewind` to it.
    """

    def __init__(
        self,
        module,
        criterion,
        *args,
        classification_weight,
        warmup_steps=0,
        seed=0,
        precision="32",
        unlabeled_weight=1.0,
        pseudo_label_threshold=0.8,
        pseudo_label_source="head",
        use_compiled_step=False,
        data_parallel=False,
        **kwargs,
    ):
        kwargs.setdefault("dataset", TensorBatchDataset)
        kwargs.setdefault("iterator_train__shuffle", True)
        kwargs.setdefault("iterator_train__collate_fn", collate_batch)
        kwargs.setdefault("iterator_valid__collate_fn", collate_batch)
        super().__init__(module, criterion, *args, **kwargs)
        self.classification_weight = classification_weight
        self.warmup_steps = warmup_steps
        self.seed = seed
        self.precision = precision
        self.unlabeled_weight = unlabeled_weight
        self.pseudo_label_threshold = pseudo_label_threshold
        self.pseudo_label_source = pseudo_label_source
        self.use_compiled_step = use_compiled_step
        self.data_parallel = data_parallel

    @property
    def _default_callbacks(self):
        callbacks = list(super()._default_callbacks)
        print_log = callbacks.pop()  # PrintLog must stay last to see every entry.
        terms = list(LOSS_TERMS)
        if self.module.classifier is not None:
            # "unlabeled" is recorded by batches that hold unlabelled rows only.
            terms += ["unlabeled", "accuracy"]
        names = [f"{prefix}_{term}" for term in terms for prefix in ("train", "valid")]
        if self.criterion.class_pairs is not None:
            names.append("train_border")  # a training term only
        for name in names:
            callbacks.append(
                (name, PassthroughScoring(name=name, on_train=name.startswith("train"), lower_is_better=None))
            )
        callbacks.append(
            (
                "classification_weight",
                PassthroughScoring(name="classification_weight", on_train=True, lower_is_better=None),
            )
        )
        # Before the user's callbacks, which may end training in their
        # on_epoch_end (an EarlyStopping raises there): the run has recorded
        # the epoch as finished by then.
        callbacks.append(("training_run", TrainingRun()))
        # Every column from the first epoch on: the border term is recorded
        # only once the warm-up is over.
        border = ("train_border",) if self.criterion.class_pairs is not None else ()
        callbacks.append((print_log[0], EpochTable(columns=border)))
        return callbacks

    @property
    def training_run_(self):
        """The :class:`~skvae._training.TrainingRun` that holds the state of
        a training call from its start to its end."""
        return dict(self.callbacks_)["training_run"]

    def initialize(self):
        super().initialize()
        self.n_steps_ = 0
        self.total_steps_ = 0
        self.rng_state_ = initial_rng_state(self.seed, torch.device(self.device))
        self.interrupted_ = False
        self.grad_scaler_ = torch.amp.GradScaler(torch.device(self.device).type, enabled=self.precision == "16-mixed")
        return self

    def get_training_state(self):
        """Everything training continues from, as a copy.

        Returns
        -------
        state : dict
            ``module``, ``optimizer`` and ``grad_scaler`` (state dicts),
            ``n_steps``, ``total_steps``, ``rng`` (generator states) and
            ``history`` (a list of per-epoch dicts).
        """
        state = self._weights_and_counters()
        state["history"] = copy.deepcopy(self.history.to_list())
        return state

    def set_training_state(self, state):
        """Continue from ``state``, as returned by :meth:`get_training_state`."""
        self.module_.load_state_dict(state["module"])
        self.optimizer_.load_state_dict(state["optimizer"])
        # States saved before "16-mixed" existed have no scaler (nor need one).
        if state.get("grad_scaler"):
            self.grad_scaler_.load_state_dict(state["grad_scaler"])
        self.n_steps_ = int(state["n_steps"])
        self.total_steps_ = int(state["total_steps"])
        self.rng_state_ = state["rng"]
        if "history" in state:
            self.history = History(copy.deepcopy(list(state["history"])))

    def training_checkpoint(self):
        """A copy of the state that :meth:`rewind` goes back to.

        Returns
        -------
        checkpoint : dict
            The weights, optimizer state, counters and random state, as in
            :meth:`get_training_state`, and ``epochs``, the number of epochs
            in the history, instead of the history itself (its rows do not
            change once recorded).
        """
        checkpoint = self._weights_and_counters()
        checkpoint["epochs"] = len(self.history)
        return checkpoint

    def rewind(self, checkpoint):
        """Go back to ``checkpoint`` (:meth:`training_checkpoint`), dropping
        the epochs recorded since."""
        self.set_training_state(checkpoint)
        del self.history[checkpoint["epochs"] :]

    def _weights_and_counters(self):
        return copy.deepcopy(
            {
                "module": self.module_.state_dict(),
                "optimizer": self.optimizer_.state_dict(),
                "grad_scaler": self.grad_scaler_.state_dict(),
                "n_steps": self.n_steps_,
                "total_steps": self.total_steps_,
                "rng": self.rng_state_,
            }
        )

    def fit_loop(self, X, y=None, epochs=None, **fit_params):
        """Train ``epochs`` epochs; None trains those missing to ``max_epochs``."""
        if epochs is None:
            epochs = max(self.max_epochs - len(self.history), 0)
        self.interrupted_ = False
        # Started here, after every callback's on_train_begin: a
        # LoadInitState has loaded its checkpoint, which this call starts from.
        run = self.training_run_
        run.start(self, epochs)
        try:
            if run.group_ is not None:
                self._check_ranks_agree(X, epochs)
            with interrupts_deferred(run.group_):
                return super().fit_loop(X, y, epochs=epochs, **fit_params)
        except BaseException as exc:
            run.go_back(self)
            if isinstance(exc, KeyboardInterrupt):
                self.interrupted_ = not any(
                    isinstance(cb, EarlyStopping) and cb.misses_ >= cb.patience for _, cb in self.callbacks_
                )
            raise

    def _check_ranks_agree(self, dataset, epochs):
        """Raise on every rank of a data-parallel training unless all train
        the same net on the same number of rows: ranks that differ would
        wait for each other forever, or train apart."""
        with torch.no_grad():
            checksum = sum(float(p.double().sum()) for p in self.module_.parameters())
        self.training_run_.group_.check_same(
            {
                "the number of rows": len(dataset),
                "the epochs to train": epochs,
                "batch_size": self.batch_size,
                "the optimizer steps taken": self.n_steps_,
                "the weights": checksum,
            }
        )

    def notify(self, method_name, **cb_kwargs):
        if is_main_process(self.data_parallel):
            return super().notify(method_name, **cb_kwargs)
        # Another rank of a data-parallel training, whose model is rank 0's.
        with quiet_rank(self):
            return super().notify(method_name, **cb_kwargs)

    def on_epoch_begin(self, net, dataset_train=None, dataset_valid=None, **kwargs):
        super().on_epoch_begin(net, dataset_train, dataset_valid, **kwargs)
        # The first hook of a call that sees its training data (the training
        # part of a validation split), before any step.
        if len(self.history) == self.training_run_.first_epoch_:
            self._begin_training(dataset_train)

    def _begin_training(self, dataset_train):
        """Before the first step of a training call on ``dataset_train``: set
        the schedule's horizon (once), check the schedule for every step of
        the call, and propagate the labels."""
        run = self.training_run_
        steps_per_epoch = math.ceil(len(dataset_train) / self.batch_size)
        if not self.total_steps_:
            self.total_steps_ = self.max_epochs * steps_per_epoch
        # Every weight this call will use is known now: a schedule that
        # fails at some step fails before any weight changes.
        first, stop = max(self.n_steps_, self.warmup_end()), self.n_steps_ + run.epochs_ * steps_per_epoch
        weights = check_schedule(self.classification_weight, range(first, stop), self.total_steps_)
        self._warn_if_head_untrained(weights, stop)
        run.propagated_labels_ = self._propagate(dataset_train)

    def _propagate(self, dataset):
        """``(labels, certainty)`` spread from the labelled rows of
        ``dataset`` to all of them over the kNN graph of their data (see
        :func:`~skvae.losses.propagate_labels`), as tensors on the net's
        device indexed by the row positions that batches carry (-1 and 0 at
        the positions of validation rows and of rows of weight 0); None unless
        ``pseudo_label_source="propagation"`` and the data are partly
        labelled."""
        source, rows = _source_and_rows(dataset)
        # Rows of weight 0 count as absent: they are left out of the graph.
        # Sorted, as a block read gathers them, and alike in memory, so that
        # both give the graph the same order of rows.
        rows = torch.arange(len(source))[rows].sort().values
        rows = rows[source.weights[rows] > 0]
        y = source.y[rows]
        labeled = y >= 0
        if (
            self.pseudo_label_source != "propagation"
            or self.module_.classifier is None
            or not bool(labeled.any())
            or bool(labeled.all())
        ):
            return None
        if isinstance(source.X, BlockRows):
            X = source.X if len(rows) == len(source) else SelectedRows(source.X, rows.numpy())
        else:
            X = source.X[rows]
            X = X.reshape(len(X), -1).numpy()
        labels, certainty = propagate_labels(
            X,
            y.numpy(),
            self.module_.classifier.out.out_features,
            sample_weight=source.weights[rows].numpy(),
        )
        all_labels = torch.full((len(source),), -1, dtype=torch.int64)
        all_labels[rows] = torch.as_tensor(labels, dtype=torch.int64)
        all_certainty = torch.zeros(len(source), dtype=torch.float32)
        all_certainty[rows] = torch.as_tensor(certainty, dtype=torch.float32)
        return all_labels.to(self.device), all_certainty.to(self.device)

    def warmup_end(self):
        """The first optimizer step after the warm-up."""
        if isinstance(self.warmup_steps, float):
            return round(self.warmup_steps * self.total_steps_)
        return self.warmup_steps

    def _warn_if_head_untrained(self, weights, stop):
        """Warn when ``weights``, the head's weights after the warm-up up to
        step ``stop``, are all 0 in a training that runs the whole schedule."""
        # partial_fit's first epoch cannot tell: later calls may train the head.
        if self.module_.classifier is None or self.n_steps_ or stop < self.total_steps_:
            return
        if not any(weights):
            warnings.warn(
                f"The latent classifier gets no training: its loss weight is 0 at every one "
                f"of the {stop} optimizer steps of this fit (warm-up until step "
                f"{self.warmup_end()}, classification_weight={self.classification_weight!r}). "
                "Lower warmup_steps, train longer (max_epochs) or use a positive weight.",
                UserWarning,
            )

    def get_iterator(self, dataset, training=False):
        if not training:
            return super().get_iterator(dataset, training=False)
        kwargs = self.get_params_for("iterator_train")
        kwargs.setdefault("batch_size", self.batch_size)
        source, rows = _source_and_rows(dataset)
        labeled = source.y[rows] >= 0
        partly = bool(labeled.any()) and not bool(labeled.all())
        shuffle_generator = self.training_run_.shuffle_generator_
        # A batch of one row cannot hold both kinds: it keeps the plain shuffle.
        if self.module_.classifier is not None and partly and kwargs["batch_size"] > 1:
            # Partly labelled: batches that always carry labelled rows.
            kwargs["batch_sampler"] = LabeledInEveryBatch(labeled, kwargs.pop("batch_size"), shuffle_generator)
            kwargs.pop("shuffle", None)
            kwargs.pop("drop_last", None)
            return self.iterator_train(dataset, **kwargs)
        if getattr(source, "chunk_rows", None) and kwargs.get("shuffle", True):
            # A chunked store: shuffled windows of chunks, read about once each.
            chunk_of_row = torch.arange(len(source))[rows] // source.chunk_rows
            kwargs["batch_sampler"] = ChunkWindowBatches(
                chunk_of_row, source.window_chunks, kwargs.pop("batch_size"), shuffle_generator
            )
            kwargs.pop("shuffle", None)
            kwargs.pop("drop_last", None)
            return self.iterator_train(dataset, **kwargs)
        return self.iterator_train(dataset, generator=shuffle_generator, **kwargs)

    def infer(self, x, **fit_params):
        # The module draws its noise in training only: from the training call's generator.
        run = self.training_run_
        generator = run.noise_generator_
        if run.group_ is not None and self.module_.training and not fit_params:
            return self._infer_share(x, generator, run.group_)
        with self.autocast():
            if self.use_compiled_step and self.module_.training and not fit_params:
                x = to_tensor(x, device=self.device)
                return compiled_forward(self.module_, x, self.module_.draw_noise(x, generator))
            return super().infer(x, generator=generator, **fit_params)

    def _infer_share(self, x, generator, group):
        """The training outputs of batch ``x`` in a data-parallel training:
        this rank runs its rows forward, with their part of the batch's
        noise, and gets the other rows' outputs from the other ranks."""
        x = to_tensor(x, device=self.device)
        rows = group.rows(len(x))
        with self.autocast():
            # Drawn for the whole batch, as one process does, on every rank alike.
            noise = tuple(None if draws is None else draws[rows] for draws in self.module_.draw_noise(x, generator))
            if self.use_compiled_step:
                outputs = compiled_forward(self.module_, x[rows], noise)
            else:
                outputs = self.module_(x[rows], noise=noise)
        return group.gather_outputs(outputs, len(x))

    def autocast(self):
        """The autocast context of ``precision`` on the net's device."""
        dtype = AUTOCAST_DTYPES.get(self.precision)
        return torch.autocast(torch.device(self.device).type, dtype=dtype, enabled=dtype is not None)

    def on_epoch_end(self, net, dataset_train=None, dataset_valid=None, **kwargs):
        super().on_epoch_end(net, dataset_train, dataset_valid, **kwargs)
        if self.training_run_.group_ is not None:
            # A Ctrl-C during validation stops every rank here.
            self.training_run_.group_.check_interrupted()
        # A finite loss can still be followed by a step to non-finite
        # weights; checked here, that never becomes a finished epoch.
        if not all(bool(torch.isfinite(p).all()) for p in self.module_.parameters()):
            raise DivergenceError(
                f"Training diverged at epoch {len(self.history)}: its last optimizer "
                f"step (step {self.n_steps_}) made the weights NaN or infinite. "
                f"{self._divergence_causes()}"
            )

    def load_params(self, *args, **kwargs):
        super().load_params(*args, **kwargs)
        # A history loaded from a checkpoint sets the schedule's step.
        self.n_steps_ = sum(row.get("train_batch_count", 0) for row in self.history)

    def __getstate__(self):
        state = super().__getstate__()
        # The estimator passes built instances as the module and criterion
        # parameters, so they are module_ and criterion_, which skorch
        # pickles such that CUDA tensors unpickle on a CPU-only machine.
        # Pickled once more here, theirs would not.
        for name in ("module", "criterion"):
            if state[name] is getattr(self, name + "_", None):
                state[name] = _Initialized
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        for name in ("module", "criterion"):
            if getattr(self, name) is _Initialized:
                setattr(self, name, getattr(self, name + "_"))

    def current_weights(self):
        """``(kl_weight, classification_weight)`` for the next optimizer step."""
        if self.n_steps_ < self.warmup_end():
            return 0.0, 0.0
        # Checked for every step of a training call before it starts (_begin_training).
        return 1.0, self.classification_weight(self.n_steps_, self.total_steps_)

    def get_loss(self, y_pred, y_true, X=None, training=False):
        """The weighted loss of a batch, its terms recorded in the history.

        ``y_true`` is the batch's ``y`` (:class:`TensorBatchDataset`): the
        rows' ``"labels"``, ``"weights"`` and ``"rows"``, their positions in
        the dataset. The weights weight every term, and the recorded
        accuracy, over the batch's rows.
        """
        # The loss terms are sums over features: computed in float32 whatever
        # the precision of the forward pass.
        y_pred = tuple(None if out is None else out.float() for out in y_pred)
        X = to_tensor(X, device=self.device)
        labels = to_tensor(y_true["labels"], device=self.device)
        weights = to_tensor(y_true["weights"], device=self.device)
        run = self.training_run_
        kl_weight, clf_weight = self.current_weights() if training else (1.0, 0.0)
        extra = {}
        logits = y_pred[3]
        if training and clf_weight > 0 and self.criterion_.class_pairs is not None:
            # The border term (class_neighbors) is weighted like the head's
            # loss: it counts only in training, once the warm-up is over.
            extra.update(classifier=self.module_.classifier, generator=run.noise_generator_)
        if training and logits is not None and bool((labels < 0).any()):
            # The head at the sampled code learns the unlabelled rows'
            # pseudo-labels: propagated over the data's kNN graph, or the
            # head's own sure predictions at the latent means (the weak view).
            if run.propagated_labels_ is not None:
                # Each weighted by its certainty.
                propagated, certainty = run.propagated_labels_
                rows = to_tensor(y_true["rows"], device=self.device)
                unlabeled = labels < 0
                extra.update(
                    pseudo=torch.where(unlabeled, propagated[rows], -1),
                    pseudo_weight=torch.where(unlabeled, certainty[rows], 0.0),
                )
            else:
                with torch.no_grad(), self.autocast():
                    teacher = self.module_.classifier(y_pred[1].detach()).float()
                extra.update(pseudo=pseudo_labels(teacher, labels, self.pseudo_label_threshold))
            extra.update(unlabeled_weight=self.unlabeled_weight)
        if training and self.use_compiled_step and "generator" not in extra:
            # The schedule's weights as tensors: new values, not new compilations.
            factors = {name: torch.tensor(float(value), device=self.device) for name, value in (
                ("kl_weight", kl_weight), ("classification_weight", clf_weight),
                ("unlabeled_weight", extra.pop("unlabeled_weight", 0.0)),
            )}
            terms = compiled_loss(self.criterion_, y_pred, X, labels, sample_weight=weights, **factors, **extra)
        else:
            # The border term draws its points from a generator, which compiled code cannot.
            terms = self.criterion_(
                y_pred, X, labels, kl_weight=kl_weight, classification_weight=clf_weight, sample_weight=weights,
                **extra,
            )
        prefix = "train" if training else "valid"
        if training:
            self._check_finite(terms)
            self.history.record_batch("classification_weight", clf_weight)
        for name in (*LOSS_TERMS, "unlabeled", "border"):
            if name in terms:
                self.history.record_batch(f"{prefix}_{name}", terms[name].item())
        # Rows of weight 0 do not count, as in score(X, y, sample_weight).
        labelled = (labels >= 0) & (weights > 0)
        if logits is not None and bool(labelled.any()):
            correct = (logits[labelled].argmax(dim=1) == labels[labelled]).float()
            self.history.record_batch(f"{prefix}_accuracy", weighted_mean(correct, weights[labelled]).item())
        return terms["loss"]

    def _check_finite(self, terms):
        if torch.isfinite(terms["loss"]):
            return
        bad = [name for name in LOSS_TERMS if not torch.isfinite(terms[name])] or ["total"]
        value = terms[bad[0] if bad[0] != "total" else "loss"].item()
        raise DivergenceError(
            f"Training diverged at epoch {len(self.history)}, optimizer step "
            f"{self.n_steps_}: the {', '.join(bad)} loss became {value}. The weights "
            f"were not updated with it. {self._divergence_causes()}"
        )

    def _divergence_causes(self):
        return (
            f"Likely causes: a learning rate that is too high (lr={self.lr}), or "
            "unscaled inputs (scale X, e.g. with StandardScaler or MinMaxScaler)."
        )

    def train_step_single(self, batch, **fit_params):
        step = super().train_step_single(batch, **fit_params)
        self._sum_gradients()
        return step

    def _sum_gradients(self):
        """In a data-parallel training, the gradients of the batch: the sum
        of the ranks', each of which holds its rows' part."""
        group = self.training_run_.group_
        if group is not None:
            group.sum_gradients([param for _, param in self.get_all_learnable_params()])

    def train_step(self, batch, **fit_params):
        if self.grad_scaler_.is_enabled():
            step = self._scaled_train_step(batch, **fit_params)
        else:
            step = super().train_step(batch, **fit_params)
        self.n_steps_ += 1
        return step

    def _scaled_train_step(self, batch, **fit_params):
        """One optimizer step with a scaled loss (``"16-mixed"``).

        skorch's step hands the optimizer a closure, which a GradScaler
        cannot step; this is that step in the order torch's AMP recipe
        gives: scaled backward, unscale (so that ``on_grad_computed``
        callbacks, e.g. gradient clipping, see the true gradients), a step
        that the scaler skips when a gradient overflowed, and the scale's
        update.
        """
        self.optimizer_.zero_grad()
        self.module_.train()
        self.criterion_.train()
        Xi, yi = unpack_data(batch)
        y_pred = self.infer(Xi, **fit_params)
        loss = self.get_loss(y_pred, yi, X=Xi, training=True)
        self.grad_scaler_.scale(loss).backward()
        self._sum_gradients()
        self.grad_scaler_.unscale_(self.optimizer_)
        self.notify("on_grad_computed", named_parameters=TeeGenerator(self.get_all_learnable_params()), batch=batch)
        self.grad_scaler_.step(self.optimizer_)
        self.grad_scaler_.update()
        return {"loss": loss, "y_pred": y_pred}
