"""The skorch net that trains a :class:`~skvae.modules.DisentangledVAEModule`.

The estimator in :mod:`skvae.estimator` builds one of these inside ``fit``.
Training is skorch's own loop; this subclass only adds what the method needs:

* batches fetched whole (``__getitems__``) instead of row by row,
* a loss made of several terms, each recorded in the history,
* an optimizer-step counter that drives the classification-weight schedule
  and the reconstruction-only warm-up,
* a divergence guard that stops before a non-finite loss reaches the weights,
* a copy of the state at the end of every finished epoch, which training
  goes back to when it stops mid-epoch (Ctrl-C, divergence, any error), so
  that it can be resumed exactly where the last finished epoch left it.
"""

import copy
import math

import numpy as np
import torch
from skorch import NeuralNet
from skorch.callbacks import EarlyStopping, PassthroughScoring
from skorch.utils import to_tensor

from .exceptions import DivergenceError

__all__ = ["DisentangledVAENet", "TensorBatchDataset"]

LOSS_TERMS = ("reconstruction", "kl", "classification")


class TensorBatchDataset(torch.utils.data.Dataset):
    """In-memory dataset that hands out whole batches with one index.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Data, converted to a float32 tensor once.
    y : array-like of shape (n_samples,) or None
        Integer class indices, ``-1`` for an unlabelled sample. None means
        no sample is labelled.
    """

    def __init__(self, X, y=None):
        self.X = torch.as_tensor(np.asarray(X, dtype=np.float32).copy())
        if y is None:
            self.y = torch.full((len(self.X),), -1, dtype=torch.int64)
        else:
            self.y = torch.as_tensor(np.asarray(y, dtype=np.int64).copy())

    def __len__(self):
        return len(self.X)

    def __getitem__(self, index):
        return self.X[index], self.y[index]

    def __getitems__(self, indices):
        # The DataLoader's batch fetch protocol: one gather per batch.
        index = torch.as_tensor(indices, dtype=torch.int64)
        return self.X[index], self.y[index]


def collate_batch(batch):
    """Collate function for :class:`TensorBatchDataset`: batches come whole."""
    return batch


class _Initialized:
    """Pickled in place of a parameter that is the initialized component."""


def _get_rng_state(device):
    """torch's random state for training on ``device``, as CPU tensors."""
    state = {"cpu": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(state, device):
    torch.set_rng_state(state["cpu"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


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
    warmup_steps : int
        Number of first optimizer steps that train reconstruction only.
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
        torch's random state (CPU, and CUDA on a GPU) at the end of the last
        finished epoch, stored as CPU tensors. Training runs on a copy of
        it, so a training stopped and resumed shuffles and samples exactly
        as one that ran through.
    interrupted_ : bool
        Whether the last training was stopped by a ``KeyboardInterrupt``
        other than that of an ``EarlyStopping`` callback.

    Notes
    -----
    Unlike a plain skorch net, :meth:`fit_loop` without ``epochs`` trains
    the epochs missing to ``max_epochs`` in the history: ``fit`` after a
    training that stopped early, or after loading a checkpoint's history,
    finishes the planned training.

    When training stops inside an epoch (a ``KeyboardInterrupt``, a
    :class:`~skvae.exceptions.DivergenceError`, any other exception), the
    module, the optimizer, the step counter and the random state go back
    to the end of the last finished epoch, and that epoch's unfinished row
    is dropped from the history, before the exception propagates.
    """

    def __init__(self, module, criterion, *args, classification_weight, warmup_steps=0, **kwargs):
        kwargs.setdefault("dataset", TensorBatchDataset)
        kwargs.setdefault("iterator_train__shuffle", True)
        kwargs.setdefault("iterator_train__collate_fn", collate_batch)
        kwargs.setdefault("iterator_valid__collate_fn", collate_batch)
        super().__init__(module, criterion, *args, **kwargs)
        self.classification_weight = classification_weight
        self.warmup_steps = warmup_steps

    @property
    def _default_callbacks(self):
        callbacks = list(super()._default_callbacks)
        print_log = callbacks.pop()  # PrintLog must stay last to see every entry.
        terms = list(LOSS_TERMS)
        if self.module.classifier is not None:
            terms.append("accuracy")
        for term in terms:
            for prefix, on_train in (("train", True), ("valid", False)):
                name = f"{prefix}_{term}"
                callbacks.append(
                    (name, PassthroughScoring(name=name, on_train=on_train, lower_is_better=None))
                )
        callbacks.append(
            (
                "classification_weight",
                PassthroughScoring(name="classification_weight", on_train=True, lower_is_better=None),
            )
        )
        callbacks.append(print_log)
        return callbacks

    def initialize(self):
        super().initialize()
        self.n_steps_ = 0
        self.total_steps_ = 0
        self.rng_state_ = _get_rng_state(torch.device(self.device))
        self.interrupted_ = False
        return self

    def fit_loop(self, X, y=None, epochs=None, **fit_params):
        """Train ``epochs`` epochs; None trains those missing to ``max_epochs``."""
        if epochs is None:
            epochs = max(self.max_epochs - len(self.history), 0)
        self.interrupted_ = False
        device = torch.device(self.device)
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            _set_rng_state(self.rng_state_, device)
            self._save_epoch_state()
            try:
                return super().fit_loop(X, y, epochs=epochs, **fit_params)
            except BaseException as exc:
                self._restore_epoch_state(exc)
                raise
            finally:
                del self._epoch_state

    def on_epoch_begin(self, net, dataset_train=None, dataset_valid=None, **kwargs):
        super().on_epoch_begin(net, dataset_train, dataset_valid, **kwargs)
        if not self.total_steps_:
            self.total_steps_ = self.max_epochs * math.ceil(len(dataset_train) / self.batch_size)

    def on_epoch_end(self, net, dataset_train=None, dataset_valid=None, **kwargs):
        super().on_epoch_end(net, dataset_train, dataset_valid, **kwargs)
        # A finite loss can still be followed by a step to non-finite
        # weights; checked here, that never becomes a finished epoch.
        if not all(bool(torch.isfinite(p).all()) for p in self.module_.parameters()):
            raise DivergenceError(
                f"Training diverged at epoch {len(self.history)}: its last optimizer "
                f"step (step {self.n_steps_}) made the weights NaN or infinite. "
                f"{self._divergence_causes()}"
            )
        self._save_epoch_state()

    def _save_epoch_state(self):
        """Copy the state that a stop in the next epoch goes back to."""
        self._epoch_state = {
            "epochs": len(self.history),
            "n_steps": self.n_steps_,
            "module": copy.deepcopy(self.module_.state_dict()),
            "optimizer": copy.deepcopy(self.optimizer_.state_dict()),
            "rng": _get_rng_state(torch.device(self.device)),
        }
        self.rng_state_ = self._epoch_state["rng"]

    def _restore_epoch_state(self, exc):
        """Go back to the last finished epoch after ``exc`` stopped training."""
        state = self._epoch_state
        if len(self.history) > state["epochs"]:
            self.module_.load_state_dict(state["module"])
            self.optimizer_.load_state_dict(state["optimizer"])
            self.n_steps_ = state["n_steps"]
            self.rng_state_ = state["rng"]
            del self.history[state["epochs"] :]
        if isinstance(exc, KeyboardInterrupt):
            self.interrupted_ = not any(
                isinstance(cb, EarlyStopping) and cb.misses_ >= cb.patience for _, cb in self.callbacks_
            )
        elif isinstance(exc, DivergenceError):
            kept = (
                f"the weights of epoch {state['epochs']}, the last finished one"
                if state["epochs"]
                else "its initial weights, as no epoch finished"
            )
            exc.args = (f"{exc.args[0]} The model keeps {kept}.",)

    def load_params(self, *args, **kwargs):
        super().load_params(*args, **kwargs)
        # A history loaded from a checkpoint sets the schedule's step.
        self.n_steps_ = sum(row.get("train_batch_count", 0) for row in self.history)

    def __getstate__(self):
        state = super().__getstate__()
        # The copy of a training in progress (e.g. pickled by a Checkpoint)
        # lives on the training device; it is not part of the model.
        state.pop("_epoch_state", None)
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
        if self.n_steps_ < self.warmup_steps:
            return 0.0, 0.0
        weight = self.classification_weight(self.n_steps_, self.total_steps_)
        if not (math.isfinite(weight) and weight >= 0):
            raise ValueError(
                f"The classification_weight schedule returned {weight!r} at step "
                f"{self.n_steps_}; a weight must be a finite number >= 0."
            )
        return 1.0, weight

    def get_loss(self, y_pred, y_true, X=None, training=False):
        X = to_tensor(X, device=self.device)
        y_true = to_tensor(y_true, device=self.device)
        kl_weight, clf_weight = self.current_weights() if training else (1.0, 0.0)
        terms = self.criterion_(y_pred, X, y_true, kl_weight=kl_weight, classification_weight=clf_weight)
        prefix = "train" if training else "valid"
        if training:
            self._check_finite(terms)
            self.history.record_batch("classification_weight", clf_weight)
        for name in LOSS_TERMS:
            self.history.record_batch(f"{prefix}_{name}", terms[name].item())
        logits = y_pred[3]
        labelled = y_true >= 0
        if logits is not None and bool(labelled.any()):
            correct = (logits[labelled].argmax(dim=1) == y_true[labelled]).float().mean()
            self.history.record_batch(f"{prefix}_accuracy", correct.item())
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

    def train_step(self, batch, **fit_params):
        step = super().train_step(batch, **fit_params)
        self.n_steps_ += 1
        return step
