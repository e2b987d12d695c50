"""The skorch net that trains a :class:`~skvae.modules.DisentangledVAEModule`.

The estimator in :mod:`skvae.estimator` builds one of these inside ``fit``.
Training is skorch's own loop; this subclass only adds what the method needs:

* batches fetched whole (``__getitems__``) instead of row by row,
* a loss made of several terms, each recorded in the history,
* an optimizer-step counter that drives the classification-weight schedule
  and the reconstruction-only warm-up,
* a divergence guard that stops before a non-finite loss reaches the weights.
"""

import math

import numpy as np
import torch
from skorch import NeuralNet
from skorch.callbacks import PassthroughScoring
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
        Optimizer steps taken since the net was initialised.
    total_steps_ : int
        Optimizer steps in ``max_epochs`` epochs: the schedule's horizon.
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
        return self

    def on_epoch_begin(self, net, dataset_train=None, dataset_valid=None, **kwargs):
        super().on_epoch_begin(net, dataset_train, dataset_valid, **kwargs)
        self.total_steps_ = self.max_epochs * math.ceil(len(dataset_train) / self.batch_size)

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
        raise DivergenceError(
            f"Training diverged at epoch {len(self.history)}, optimizer step "
            f"{self.n_steps_}: the {', '.join(bad)} loss became "
            f"{terms[bad[0]] if bad[0] != 'total' else terms['loss']}. The weights "
            "were not updated with it. Likely causes: a learning rate that is too "
            f"high (lr={self.lr}), or unscaled inputs (scale X, e.g. with "
            "StandardScaler or MinMaxScaler)."
        )

    def train_step(self, batch, **fit_params):
        step = super().train_step(batch, **fit_params)
        self.n_steps_ += 1
        return step
