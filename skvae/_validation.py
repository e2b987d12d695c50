"""What the validation split decides: the input noise, and when to stop.

With ``early_stopping="auto"`` (or ``True``) a labelled fit of enough rows
holds ``validation_fraction`` of them out, stratified, and lets them choose
what a rule fitted to a few data sets would otherwise guess:
``input_dropout="auto"``, the masking noise, among
:data:`INPUT_DROPOUT_CANDIDATES`. Every candidate trains the same network
(same initial weights, same batches) for the first half of the epochs; the
one whose head scored best on the validation rows over the last tenth of
the epochs before that point goes on to the end. Noise pays late in
training: compared after a third of the epochs, the candidate without
noise often led by 4-8 points on data where it ended 3-12 points behind
(glyphs, waveforms), so choosing then lost 1.6 points against the best
candidate on average; choosing at half lost 0.5, about what choosing on
the last epoch loses (``python -m benchmarks.noise_selection``, 19 fits of
7 data sets, ``benchmarks/RESULTS.md``). The two candidates dropped cost a
fit, the held-out tenth saves a tenth of one: the fit costs about 1.8
times one with a fixed noise. It is not the default: on the data sets
measured, the held-out tenth and the choice together scored below the rule
of ``auto_input_dropout`` on all rows (same section of the results).

With ``early_stopping=True`` the validation rows also stop training once
``n_iter_no_change`` epochs brought no better score, and the best epoch's
weights are kept (:class:`BestValidationEpoch`).
"""

import copy
from dataclasses import replace

import numpy as np
from skorch.callbacks import EarlyStopping

__all__ = [
    "INPUT_DROPOUT_CANDIDATES",
    "MIN_VALIDATION_ROWS",
    "BestValidationEpoch",
    "select_input_dropout",
    "selection_epochs",
]

#: The masking-noise rates ``input_dropout="auto"`` chooses among: none, and
#: up to the most any data measured here wanted (images of a kind not tuned on).
INPUT_DROPOUT_CANDIDATES = (0.0, 0.15, 0.3)

#: Share of the epochs the candidates train before one is chosen.
SELECTION_SHARE = 1 / 2

#: Share of the epochs whose validation scores, at the end of the
#: candidates' training, are averaged to rank them: one epoch's score on a
#: few hundred rows moves by a point from epoch to epoch.
SCORE_WINDOW_SHARE = 0.1

#: Below this many training rows ``early_stopping="auto"`` holds none out:
#: a tenth of fewer rows scores a candidate too coarsely to choose by (with
#: 100 validation rows one row is a point of accuracy), and costs the fit
#: rows it needs.
MIN_VALIDATION_ROWS = 1000


class BestValidationEpoch(EarlyStopping):
    """skorch's ``EarlyStopping`` that restores the best epoch only when training is over.

    skorch's callback loads the best weights at the end of every call of
    ``fit_loop``; the candidates of :func:`select_input_dropout` train in
    such a call in the middle of training, and must go on from their last
    weights. Here the best weights are loaded once the net has trained its
    ``max_epochs`` or been stopped.
    """

    def on_train_end(self, net, **kwargs):
        if self.misses_ >= self.patience or len(net.history) >= net.max_epochs:
            super().on_train_end(net, **kwargs)


def selection_epochs(max_epochs):
    """Epochs the candidates train, and the last of them whose scores are averaged."""
    epochs = max(1, round(max_epochs * SELECTION_SHARE))
    return epochs, min(epochs, max(1, round(max_epochs * SCORE_WINDOW_SHARE)))


def select_input_dropout(setup, build, X, y, max_epochs):
    """Choose the masking noise on the net's validation split.

    Parameters
    ----------
    setup : FittedSetup
        What the network is built with; its ``input_dropout`` is replaced by
        each candidate's.
    build : callable
        ``build(setup) -> net``: a new net of a setup, with a validation
        split that records ``valid_accuracy``.
    X : TensorBatchDataset
        The training rows, their class indices and weights, the validation
        rows among them (the net splits them off, the same for every
        candidate).
    y : ndarray
        The rows' class indices, by which the split is stratified.
    max_epochs : int
        The fit's epochs; the candidates train half of them.

    Returns
    -------
    net : DisentangledVAENet
        The chosen candidate, trained for the candidates' epochs, to go on
        training; a candidate whose training was interrupted (Ctrl-C) is
        returned at once, as it stopped.
    input_dropout : float
        Its masking noise.
    scores : ndarray of shape (n_candidates,)
        Mean validation head accuracy of each candidate of
        :data:`INPUT_DROPOUT_CANDIDATES` over the last epochs it trained,
        NaN for those not trained.
    """
    epochs, window = selection_epochs(max_epochs)
    scores = np.full(len(INPUT_DROPOUT_CANDIDATES), np.nan)
    nets = {}
    for index, rate in enumerate(INPUT_DROPOUT_CANDIDATES):
        net = nets[rate] = build(replace(setup, input_dropout=rate))
        net.partial_fit(X, y, epochs=epochs)
        if net.interrupted_:
            return net, rate, scores
        scores[index] = np.mean(net.history[-window:, "valid_accuracy"])
    # Ties go to the less noise: it perturbs the data the least.
    best = int(np.argmax(scores))
    rate = INPUT_DROPOUT_CANDIDATES[best]
    return nets[rate], rate, scores


def copied_callbacks(callbacks):
    """A copy of the user's callbacks for one more net: each net initialises its own."""
    return copy.deepcopy(list(callbacks or ()))


def stratifiable(y, fraction):
    """Whether a stratified ``fraction`` of ``y`` holds every class at least once."""
    counts = np.bincount(np.asarray(y)[np.asarray(y) >= 0])
    return counts.size > 0 and counts.min() * fraction >= 1
