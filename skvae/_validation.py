"""What the validation split decides: the input noise, and the epoch kept.

With ``early_stopping="auto"`` (the default) a labelled fit of enough rows
holds ``validation_fraction`` of them out, stratified, and lets them choose
what a rule fitted to a few data sets would otherwise guess:

* ``input_dropout="auto"``: the masking noise, by successive halving over
  :data:`INPUT_DROPOUT_CANDIDATES`. Every candidate trains the same network
  (same initial weights, same batches) for the first eighth of the epochs;
  the better half, by validation head accuracy, trains another eighth; the
  best one goes on to the end. The candidates cost half a fit, the second
  round a quarter: the whole fit costs 1.5 times one of the winner.
* the epoch kept: the one whose head scored best on the validation rows
  (:class:`BestValidationEpoch`), once training is over.
"""

import copy
from dataclasses import replace

import numpy as np
from skorch.callbacks import EarlyStopping

__all__ = [
    "INPUT_DROPOUT_CANDIDATES",
    "MIN_VALIDATION_ROWS",
    "BestValidationEpoch",
    "halving_rounds",
    "select_input_dropout",
]

#: The masking-noise rates ``input_dropout="auto"`` chooses among: none to
#: the most any data measured here wanted (images of a kind not tuned on).
INPUT_DROPOUT_CANDIDATES = (0.0, 0.1, 0.2, 0.3)

#: Below this many training rows ``early_stopping="auto"`` holds none out:
#: a tenth of fewer rows scores a candidate too coarsely to choose by (with
#: 100 validation rows one row is a point of accuracy), and costs the fit
#: rows it needs.
MIN_VALIDATION_ROWS = 1000


class BestValidationEpoch(EarlyStopping):
    """skorch's ``EarlyStopping`` that restores the best epoch only when training is over.

    skorch's callback loads the best weights at the end of every call of
    ``fit_loop``; the rounds of :func:`select_input_dropout` are such calls
    in the middle of training, and must go on from their last weights.
    Here the best weights are loaded once the net has trained its
    ``max_epochs`` or been stopped.
    """

    def on_train_end(self, net, **kwargs):
        if self.misses_ >= self.patience or len(net.history) >= net.max_epochs:
            super().on_train_end(net, **kwargs)


def halving_rounds(max_epochs):
    """Epochs of the two selection rounds: an eighth of ``max_epochs`` each, at least one."""
    epochs = max(1, round(max_epochs / 8))
    return epochs, epochs


def select_input_dropout(setup, build, X, y, max_epochs):
    """Choose the masking noise by successive halving on the net's validation split.

    Parameters
    ----------
    setup : FittedSetup
        What the network is built with; its ``input_dropout`` is replaced by
        each candidate's.
    build : callable
        ``build(setup) -> net``: a new net of a setup, with a validation
        split that records ``valid_accuracy``.
    X, y : ndarray
        Training rows and their class indices, the validation rows among
        them (the net splits them off, the same for every candidate).
    max_epochs : int
        The fit's epochs; the rounds take an eighth of them each.

    Returns
    -------
    net : DisentangledVAENet
        The winner, trained for the epochs of both rounds, to go on
        training; a candidate whose training was interrupted (Ctrl-C) is
        returned at once, as it stopped.
    input_dropout : float
        Its masking noise.
    scores : ndarray of shape (n_candidates, 2)
        Validation head accuracy of each candidate of
        :data:`INPUT_DROPOUT_CANDIDATES` after each round, NaN for the
        rounds it did not train.
    """
    nets = {rate: build(replace(setup, input_dropout=rate)) for rate in INPUT_DROPOUT_CANDIDATES}
    scores = np.full((len(nets), 2), np.nan)
    for round_, (epochs, keep) in enumerate(zip(halving_rounds(max_epochs), (len(nets) // 2, 1))):
        for rate, net in nets.items():
            net.partial_fit(X, y, epochs=epochs)
            if net.interrupted_:
                return net, rate, scores
            scores[INPUT_DROPOUT_CANDIDATES.index(rate), round_] = net.history[-1, "valid_accuracy"]
        # Ties go to the less noise: it perturbs the data the least.
        ranked = sorted(nets, key=lambda rate: (-scores[INPUT_DROPOUT_CANDIDATES.index(rate), round_], rate))
        nets = {rate: nets[rate] for rate in ranked[:keep]}
    ((rate, net),) = nets.items()
    return net, rate, scores


def copied_callbacks(callbacks):
    """A copy of the user's callbacks for one more net: each net initialises its own."""
    return copy.deepcopy(list(callbacks or ()))


def stratifiable(y, fraction):
    """Whether a stratified ``fraction`` of ``y`` holds every class at least once."""
    counts = np.bincount(np.asarray(y)[np.asarray(y) >= 0])
    return counts.size > 0 and counts.min() * fraction >= 1
