"""What held-out rows decide: whether the masking noise fits the data, and when to stop.

``input_dropout="auto"`` starts from a rule fitted to the data sets measured
here (:func:`skvae.estimator.auto_input_dropout`: 0.1 below 20 features, 0.2
from 20 on). The rule can be badly wrong on a kind of data it was not fitted
to: where the classes differ in something the masking disturbs (e.g. the
amplitude of a signal, which zeroing a fifth of its samples changes by as
much as the classes differ), noise 0.2 left the head at chance where no
noise reached 0.70. So where a labelled fit can spare the rows,
:func:`check_input_dropout` lets the data overrule the rule: two short
pilot fits, one with the rule's noise and one without, each train on a
stratified half of the rows for half of the epochs and classify a held-out
``validation_fraction`` of the rows after each of their last epochs. No
noise replaces the rule's only when it classified the held-out rows
significantly better -- a paired test on the rows where the two pilots
disagree (McNemar's, z > :data:`SWITCH_Z`, 3) -- and by more than
:data:`MIN_LEAD` (10 points) of held-out accuracy. Most of the time the rule's
noise is as good as the best (``benchmarks/RESULTS.md``, "Choosing the
masking noise on validation rows"), and then the final fit is exactly the
one without a check; the pilots cost about half a fit.

Why pilots compare only at half of the epochs: noise pays late. After a
third of the epochs, the fit without noise often led by 4-9 points on data
where it ended 3-12 points behind (glyphs, waveforms); at half it led by at
most 2 points where it ended behind (same section of the results). Nor
can they stop sooner to cost less: noise that erases the class shows only
then. Stopped at a quarter of the epochs, pilots caught none of 6 such
fits, and switched wrongly on 13 of 78 others; at half, all 6 (``How long
the noise check's pilots must train`` in the results,
``benchmarks.pilot_length``).

With ``early_stopping=True`` the validation rows also stop training once
``n_iter_no_change`` epochs brought no better score, and the best epoch's
weights are kept (:class:`BestValidationEpoch`).
"""

from dataclasses import replace

import numpy as np
import torch
from skorch.callbacks import Callback, EarlyStopping
from sklearn.model_selection import train_test_split

from ._net import batch_dataset

__all__ = [
    "MIN_LEAD",
    "MIN_VALIDATION_ROWS",
    "PILOT_ROW_SHARE",
    "SWITCH_Z",
    "BestValidationEpoch",
    "check_input_dropout",
    "no_noise_wins",
    "paired_comparison",
    "selection_epochs",
]

#: Share of the epochs the pilots train before they are compared.
SELECTION_SHARE = 1 / 2

#: Share of the epochs, at the end of the pilots' training, whose held-out
#: predictions are compared: one epoch's predictions on a few hundred rows
#: move by a point from epoch to epoch.
SCORE_WINDOW_SHARE = 0.1

#: Share of the rows not held out that each pilot trains on: two pilots of
#: half the rows and half the epochs cost about half a fit.
PILOT_ROW_SHARE = 1 / 2

#: The paired test's threshold: no noise replaces the rule's when it was
#: right on that many standard deviations more of the disputed held-out
#: rows. Strong evidence, not the 2 of a plain significance test, because
#: the pilots are biased toward no noise: they train a quarter of the
#: fit's steps, and noise pays late. At 2 the check switched wrongly on one
#: of 20 fits (glyphs16 8-D: z 2.27, and 1.5 points lost), while the rule's
#: noise that erased the class scored z 8.7-10.2 (``benchmarks.noise_check``).
SWITCH_Z = 3.0

#: The lead in held-out accuracy that no noise must also have. A z grows with
#: the number of held-out rows for the same lead, and the pilots' bias is a
#: lead: on image sets where the rule's noise won by 1.5-2.3 points at the end,
#: no noise led the pilots by 5-7 points (z 2.3-4.5 on 400-800 held-out
#: rows: glyphs16 8-D, 14x14 MNIST 2-D with the conv encoder), where the
#: noise that erased the class trailed by 30-37 points
#: (``benchmarks.noise_check``, ``benchmarks.architecture``).
MIN_LEAD = 0.10

#: Below this many training rows neither ``early_stopping="auto"`` nor the
#: noise check holds rows out: a tenth of fewer rows tells pilots apart too
#: coarsely (with 100 held-out rows one row is a point of accuracy), and
#: costs the fit rows it needs.
MIN_VALIDATION_ROWS = 1000


class BestValidationEpoch(EarlyStopping):
    """skorch's ``EarlyStopping`` that restores the best epoch only when training is over.

    skorch's callback loads the best weights at the end of every call of
    ``fit_loop``; a training split over several calls (``warm_start``, a fit
    interrupted by Ctrl-C and continued) must go on from its last weights.
    Here the best weights are loaded once the net has trained its
    ``max_epochs`` or been stopped.
    """

    def on_train_end(self, net, **kwargs):
        if self.misses_ >= self.patience or len(net.history) >= net.max_epochs:
            super().on_train_end(net, **kwargs)


def selection_epochs(max_epochs, share=SELECTION_SHARE):
    """Epochs the pilots train (``share`` of ``max_epochs``), and the last of them whose predictions are compared."""
    epochs = max(1, round(max_epochs * share))
    return epochs, min(epochs, max(1, round(max_epochs * SCORE_WINDOW_SHARE)))


class HeldOutPredictions(Callback):
    """The head's class predictions for held-out rows after each of the last ``window`` epochs."""

    def __init__(self, X, first_epoch):
        self.X = X
        self.first_epoch = first_epoch

    def initialize(self):
        self.predictions_ = []
        return self

    def on_epoch_end(self, net, **kwargs):
        if len(net.history) < self.first_epoch:
            return
        module = net.module_
        was_training = module.training
        module.eval()
        with torch.inference_mode():
            X = torch.as_tensor(self.X, device=net.device)
            self.predictions_.append(module.head_logits(module.encode(X)[0]).argmax(1).cpu().numpy())
        module.train(was_training)


def check_rows(y, validation_fraction, seed):
    """Stratified rows of the noise check: each pilot's training rows, and the held-out rows."""
    rows = np.arange(len(y))
    rest, held_out = train_test_split(rows, test_size=validation_fraction, stratify=y, random_state=seed)
    pilot, _ = train_test_split(rest, train_size=PILOT_ROW_SHARE, stratify=y[rest], random_state=seed)
    return np.sort(pilot), np.sort(held_out)


def check_input_dropout(setup, build, X, y, sample_weight, max_epochs, validation_fraction):
    """Keep the rule's masking noise unless held-out rows say no noise is far and significantly better.

    Parameters
    ----------
    setup : FittedSetup
        What the network is built with; its ``input_dropout`` is the rule's
        noise.
    build : callable
        ``build(setup, callbacks) -> net``: a new net of a setup, trained
        on all the rows it gets, with ``callbacks`` after the user's.
    X : ndarray of shape (n_samples, n_features)
        The training rows, in memory.
    y : ndarray of shape (n_samples,)
        Their class indices, all labelled.
    sample_weight : ndarray of shape (n_samples,) or None
        Their weights in training.
    max_epochs : int
        The fit's epochs; the pilots train half of them.
    validation_fraction : float
        Share of the rows held out.

    Returns
    -------
    input_dropout : float
        The rule's noise, or 0.0.
    check : dict or None
        ``"input_dropout"``: the two noises checked (the rule's, 0.0);
        ``"validation_accuracy"``: each pilot's mean held-out head accuracy
        over its last epochs; ``"z"``: the paired test's statistic, positive
        where no noise was right more often. None when Ctrl-C stopped a
        pilot: the rule's noise is kept.
    """
    rule = setup.input_dropout
    pilot_rows, held_out = check_rows(y, validation_fraction, setup.seed)
    epochs, window = selection_epochs(max_epochs)
    weights = None if sample_weight is None else sample_weight[pilot_rows]
    correct = []
    for rate in (rule, 0.0):
        recorder = HeldOutPredictions(np.asarray(X[held_out], dtype=np.float32), first_epoch=epochs - window + 1)
        net = build(replace(setup, input_dropout=rate, validation_fraction=None, patience=None), [recorder])
        net.partial_fit(batch_dataset(X[pilot_rows], y[pilot_rows], weights), y[pilot_rows], epochs=epochs)
        if net.interrupted_:
            return rule, None
        correct.append(np.stack(recorder.predictions_) == y[held_out])
    z, accuracy = paired_comparison(*correct)
    check = {"input_dropout": (rule, 0.0), "validation_accuracy": accuracy, "z": z}
    return (0.0 if no_noise_wins(z, accuracy) else rule), check


def paired_comparison(correct_rule, correct_none):
    """McNemar's z of the pilots without noise over those with the rule's, and both held-out accuracies.

    ``correct_*``: (epochs, held-out rows) booleans, whether each pilot's
    prediction was right. The rows only one pilot got right are counted per
    epoch and averaged over the epochs; z is positive where no noise was
    right more often.
    """
    noisy_only = np.mean((correct_rule & ~correct_none).sum(axis=1))
    clean_only = np.mean((correct_none & ~correct_rule).sum(axis=1))
    disputed = noisy_only + clean_only
    z = float((clean_only - noisy_only) / np.sqrt(disputed)) if disputed else 0.0
    return z, np.array([correct_rule.mean(), correct_none.mean()])


def no_noise_wins(z, validation_accuracy):
    """Whether pilots with paired statistic ``z`` and held-out accuracies (rule, none) overrule the rule."""
    return bool(z > SWITCH_Z and validation_accuracy[1] - validation_accuracy[0] > MIN_LEAD)


def stratifiable(y, fraction):
    """Whether a stratified ``fraction`` of ``y`` holds every class at least once."""
    counts = np.bincount(np.asarray(y)[np.asarray(y) >= 0])
    return counts.size > 0 and counts.min() * fraction >= 1
