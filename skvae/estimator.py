"""The :class:`DisentangledVAE` estimator.

This module holds the estimator's parameters, documentation and public
methods. The machinery lives in small modules: :mod:`skvae._net` (the skorch
training loop), :mod:`skvae._build` and :mod:`skvae.modules` (building the
network), :mod:`skvae._inference`
(running a fitted network), :mod:`skvae._labels` (label encoding),
:mod:`skvae.centers` (class-prior geometry), :mod:`skvae.regions` (class
Gaussians and paths) and :mod:`skvae.persistence` (the model file).
"""

import copy
import dataclasses
import functools
import inspect
import types
import warnings
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import (
    BaseEstimator,
    ClassifierMixin,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    _fit_context,
)
from sklearn.utils import Bunch, check_random_state, check_scalar
from sklearn.utils._param_validation import Interval, InvalidParameterError, RealNotInt, StrOptions
from sklearn.utils.validation import (
    _check_sample_weight,
    _check_y,
    check_array,
    check_consistent_length,
    check_is_fitted,
    validate_data,
)
from skorch.callbacks import Callback

from . import persistence
from ._data_parallel import is_main_process, training_group
from ._arrays import BlockRows, is_out_of_core, validate_blocks, weighted_class_means
from ._inference import (
    check_float32_range,
    check_forward_finite,
    latent_distribution,
    latent_means,
    latent_proba,
    row_keys,
    row_noise,
    run_blocks,
    validate_rows,
)
from ._labels import check_classes, check_unlabeled_label, classes_of, encode_labels
from ._net import batch_dataset
from ._build import OPTIMIZERS, build_net, check_precision, fitted_setup, precision_problem, resolve_device
from ._validation import MIN_VALIDATION_ROWS, PILOT_ROW_SHARE, check_input_dropout, stratifiable
from .exceptions import DivergenceError
from .centers import arrange_class_centers, class_centers, resolve_class_spacing
from .regions import (
    check_class_neighbors,
    class_gaussians,
    find_sign_change,
    sample_class_gaussians,
    segment_points,
)
from .schedules import _SharedDefault, as_schedule

__all__ = ["DisentangledVAE"]

#: Where skvae's documentation (``make docs``) is published; the API
#: reference's pages are under ``gen_modules/``, named ``skvae.<Class>.html``
#: by autosummary (``docs/api.rst``).
DOCS_URL = "https://skvae.readthedocs.io/en/stable/"

# Decays from 100 to a floor of 30, not to ~0: the classification loss is
# ~1 per sample while the reconstruction is summed over all features, so a
# weight near 0 stops the head from learning (see docs/defaults.rst).
# One object is the default of every instance, so it refuses changes in
# place; set_params swaps in a private copy before a nested change.
_DEFAULT_SCHEDULE = _SharedDefault(start=100.0, end=30.0)

# Points of each requested path (class_neighbors) checked after fitting:
# the benchmark's judge looks at 21, this is finer.
_BORDER_CHECK_POINTS = 101

# Parameters that may change between warm-started fits: the net gets them
# anew at every fit.
_TRAINING_PARAMS = (
    "classification_weight",
    "warmup_steps",
    "lr",
    "max_epochs",
    "batch_size",
    "verbose",
    "unlabeled_weight",
    "pseudo_label_threshold",
    "pseudo_label_source",
)
# Parameters of a fit call, not of the model it builds.
_CALL_PARAMS = ("warm_start", "random_state", "unlabeled_label", "class_weight", "compile", "data_parallel")
# Every other parameter shapes the model: a fit that builds a network
# records it in setup_, which the fitted model uses until it is refitted.

# max_epochs="auto": round(scale / sqrt(n_samples)) epochs, raised to give at
# least _AUTO_MIN_STEPS optimizer steps, within the range; 45 epochs for
# MNIST's 8,000 training images at the default batch and lr.
_AUTO_EPOCHS_SCALE = 4025.0
_AUTO_MIN_STEPS = 1000
_AUTO_EPOCHS_RANGE = (10, 300)
# A head whose classes have no fixed centres (class_prior_means_ is None)
# must arrange them in the latent space itself, and that takes longer: at
# 2-D, 1.5 times the epochs raised the head on 10 of 11 data sets, by up to
# 4.4 points, where anchored 8-D spaces gained at most a point from twice
# the epochs (docs/defaults.rst, benchmarks/RESULTS.md).
_AUTO_EPOCHS_UNANCHORED = 1.5

# input_dropout="auto": masking noise by the width of the data. Measured
# (docs/defaults.rst): 0.1 beat 0.2 on data with 4-13 features (iris, wine,
# make_classification), 0.2 beat 0.1 on make_classification with 20-200
# features and on MNIST (784 pixels); digits (64) is the exception.
_AUTO_DROPOUT_NARROW, _AUTO_DROPOUT_WIDE, _AUTO_DROPOUT_WIDE_FROM = 0.1, 0.2, 20


def auto_max_epochs(n_samples, batch_size, *, arranges_classes=False):
    """Training length of ``max_epochs="auto"`` for ``n_samples`` training rows.

    ``round(4025 / sqrt(n_samples))`` epochs -- 45 for 8,000, 16 for
    60,000 -- so the number of optimizer steps grows as ``sqrt(n_samples)``:
    large data sets make no needless passes. Below about 4,000 rows (at a
    batch of 256) that is raised to the epochs that make 1,000 optimizer
    steps of ``batch_size`` -- 167 for the 1,347 training digits, 250 for
    1,000 rows -- since small data sets still need that many steps. With
    ``arranges_classes`` -- a latent classifier whose classes have no fixed
    centres, e.g. 10 classes in 2-D -- that is 1.5 times longer: 68 epochs
    for 8,000 rows. Always within [10, 300].
    """
    steps_per_epoch = -(-n_samples // batch_size)
    epochs = max(round(_AUTO_EPOCHS_SCALE / np.sqrt(n_samples)), -(-_AUTO_MIN_STEPS // steps_per_epoch))
    if arranges_classes:
        epochs = round(_AUTO_EPOCHS_UNANCHORED * epochs)
    return int(np.clip(epochs, *_AUTO_EPOCHS_RANGE))


def auto_input_dropout(n_features):
    """Masking noise of ``input_dropout="auto"`` for data of ``n_features`` features.

    0.1 below 20 features, 0.2 from 20 on: with few features each zeroed
    value is a large part of the row.
    """
    return _AUTO_DROPOUT_WIDE if n_features >= _AUTO_DROPOUT_WIDE_FROM else _AUTO_DROPOUT_NARROW


def _same_param(a, b):
    """Whether two parameter values are equal; objects compare by identity."""
    if isinstance(a, (list, tuple, np.ndarray)) and isinstance(b, (list, tuple, np.ndarray)):
        return len(a) == len(b) and all(_same_param(x, y) for x, y in zip(a, b))
    try:
        return bool(a == b)
    except (TypeError, ValueError):
        return a is b


def _class_mean(X_class, weights):
    """Mean row of a class, weighted (equally when its rows all weigh 0)."""
    return np.average(X_class.astype(np.float64), axis=0, weights=weights if weights.sum() > 0 else None)


def _classes_text(classes):
    return "none (no labels)" if classes is None else repr(classes.tolist())


class _needs_labels:
    """Decorator of the methods that need the latent classifier.

    A model fitted without labels has none, so, as with scikit-learn's
    ``available_if``, it has no such attribute (``hasattr`` is False); but
    the ``AttributeError`` says why, and what works instead, itself rather
    than in its cause.
    """

    def __init__(self, method):
        self.method = method
        functools.update_wrapper(self, method)

    def __get__(self, estimator, owner=None):
        if estimator is None:
            return self.method
        if hasattr(estimator, "net_") and not hasattr(estimator, "classes_"):
            raise AttributeError(
                f"This {type(estimator).__name__} was fitted without labels (a plain VAE), "
                f"so it has no latent classifier and no {self.method.__name__}; transform, "
                "inverse_transform, score_samples and sample work without one. Fit it with "
                "class labels, fit(X, y), to use predict, predict_proba and class_border.",
                name=self.method.__name__,
                obj=estimator,
            )
        return types.MethodType(self.method, estimator)


class DisentangledVAE(ClassNamePrefixFeaturesOutMixin, ClassifierMixin, TransformerMixin, BaseEstimator):
    """Variational autoencoder whose latent space is split into class regions.

    A classifier head on the latent code is trained together with the VAE.
    Its loss weight starts high and decays to a floor, so early training
    carves a region per class into the latent space and later training
    mostly refines the VAE while the head keeps learning; with enough latent
    dimensions each class also gets its own prior centre (``class_spacing``).
    See ``docs/defaults.rst`` for why the defaults are what they are.
    Labels are needed for training only: ``transform`` encodes, ``predict``
    classifies from the latent mean and ``inverse_transform`` decodes any
    latent point.

    Parameters
    ----------
    n_components : int, default=2
        Dimension of the latent space.
    architecture : {"auto", "mlp", "conv"}, default="auto"
        The encoder. ``"mlp"``: fully connected layers of ``hidden_dims``.
        ``"conv"``: two stride-2 3x3 convolutions (8 and 16 filters) in
        front of those layers, for images; needs ``image_shape``. The
        decoder is fully connected in both. ``"auto"`` is ``"conv"`` when
        ``image_shape`` is given and the images are at least 14 pixels high
        and wide, ``"mlp"`` otherwise: on such image sets the convolutional
        encoder's head was as good or better (by 0.3-1 point on average over
        three seeds, most on drawn glyphs and shifted, rotated digits) for
        1.1-1.6x the fit time; on 8x8 digits it gained nothing.
        Resolved in ``architecture_``.
    hidden_dims : tuple of int, default=(512, 256)
        Widths of the encoder's hidden dense layers; the decoder mirrors
        them.
    image_shape : tuple of int, default=None
        ``(height, width)`` or ``(channels, height, width)`` of the images
        whose pixels are the features (channels first, row-major). Required
        for ``architecture="conv"``; with ``architecture="auto"`` it makes
        the encoder convolutional for images of 14x14 pixels or more.
    classifier_hidden : tuple of int, default=(10, 10)
        Widths of the latent classifier's LeakyReLU hidden layers.
    input_dropout : float in [0, 1) or "auto", default="auto"
        Fraction of the encoder's input values zeroed at random in each
        training step (masking noise, as in a denoising autoencoder; the
        reconstruction is still compared with the clean input). It keeps
        the encoder from fitting the training rows alone: on MNIST (6,000
        training images, judged on 2,000 others, 2-D) the head's accuracy
        went from 0.918 / 0.916 without it to 0.941 / 0.938 (seeds 0 / 1)
        with 0.2, with a lower reconstruction error. But the right amount
        depends on the data. ``"auto"`` starts from a rule -- 0.1 below 20
        features, 0.2 from 20 on (``skvae.estimator.auto_input_dropout``,
        see ``docs/defaults.rst``) -- and lets the data overrule it where a
        fully labelled fit has at least 1,000 rows in memory: two pilot
        fits, with the rule's noise and without noise, each train on a
        stratified half of the rows for half of the epochs and classify a
        held-out ``validation_fraction`` of the rows; no noise replaces the
        rule's only when it was right significantly more often on the rows
        where the two disagree (a paired test, z > 3) and by more than 10
        points of held-out accuracy. The pilots cost
        about half a fit, run their own copies of ``callbacks``, and
        ``input_dropout_check_`` records them. Where the
        rule's noise stays, the model is the one a fit with that fixed
        noise trains. The value used is ``input_dropout_``. 0
        turns it off (models saved before this parameter existed load
        with 0).
    reconstruction : {"auto", "bce", "mse"}, default="auto"
        Binary cross-entropy summed over features (inputs in [0, 1], e.g.
        pixel intensities; the decoder then ends with a sigmoid), or squared
        error summed over features (any real data). ``"auto"`` picks
        ``"bce"`` when all training values lie in [0, 1] and ``"mse"``
        otherwise; ``reconstruction_`` says which was used.
    kl : {"abs", "standard"}, default="standard"
        KL term: ``"standard"`` uses ``mu**2``, ``"abs"`` uses ``|mu|`` so that
        class means are not pulled quadratically to the origin.
    beta : float, default=1.0
        Weight of the KL term.
    class_spacing : float, "auto" or None, default="auto"
        Class-mean anchoring: with a number, the prior of a labelled sample
        is a unit Gaussian centred on its class's centre instead of the
        origin. The centres are fixed and well spread (a regular simplex
        when ``n_components >= n_classes - 1``, a triangular-lattice patch
        in 2-D; see :func:`skvae.centers.class_centers`), the closest two
        ``class_spacing`` apart, and where they are not nearly equidistant,
        classes whose mean rows of ``X`` are alike get nearby centres
        (:func:`skvae.centers.arrange_class_centers`; the result is
        ``class_prior_means_``). ``"auto"`` anchors where the
        centres can be nearly equidistant (farthest pair at most 1.5 times
        the closest: 10 classes in 5 or more dimensions), with spacing
        ``3 * sqrt(2 * n_components)`` (12 in 8-D, 17 in 16-D), and not
        otherwise (e.g. in 2-D, see ``docs/defaults.rst``). None keeps the
        single ``N(0, I)`` prior.
    class_neighbors : list of (label, label) pairs or None, default=None
        Class pairs whose regions must share a border, e.g. ``[(0, 8)]`` to
        decode mixes of a 0 and an 8 on the straight path between them.
        While the classifier trains, a loss term asks that it see only the
        two classes on the path between their mean codes in each batch
        (:func:`skvae.losses.border_loss`, weighted
        :data:`skvae.losses.BORDER_WEIGHT` times ``classification_weight``,
        with gradient for the encoder only), which moves the two classes
        side by side with no third class between them; with class
        anchoring the pair also gets the nearest centres the layout allows. After fitting, a warning names each
        pair whose path between the class centroids still crosses another
        class's region. Refused when the latent dimension cannot hold the
        borders (:func:`skvae.regions.check_class_neighbors`: in 2-D the
        pairs must form a planar graph, e.g. not five classes all
        bordering each other). Needs labels.
    classification_weight : schedule, float or callable, default=SigmoidDecay(end=30.0)
        Weight of the latent classifier's loss at every optimizer step: a
        schedule from :mod:`skvae.schedules`, a constant, or a callable
        ``f(step, total_steps) -> float``. The default decays from 100 to
        a floor of 30 along a sigmoid centred halfway through training
        (the original recipe decayed to 0.01: ``SigmoidDecay()``).
    warmup_steps : int or float, default=0.05
        First optimizer steps that train reconstruction only (no KL and no
        classification term): a fraction of all the training's optimizer
        steps (float in [0, 1)), or a number of steps (int; the original
        recipe used 100). A warning says when the warm-up, or a schedule
        that is 0 throughout, leaves the latent classifier untrained.
    max_epochs : int or "auto", default="auto"
        Number of passes over the training data. ``"auto"`` adapts it to
        the number of training samples ``n``: ``round(4025 / sqrt(n))``,
        raised where needed to make at least 1,000 optimizer steps of
        ``batch_size``, within [10, 300]; i.e. 45 epochs for 8,000 samples,
        16 for 60,000, 167 for 1,350 and 300 below about 500 (at the default
        batch), so that small data sets get enough optimizer steps and large
        ones no needless passes. A latent classifier whose classes get no
        fixed centres (``class_prior_means_`` is None, e.g. 10 classes in
        2-D) trains 1.5 times that (68 epochs for 8,000 samples): it must
        arrange the classes itself, and that takes longer. The value used is
        ``max_epochs_``. The rule was measured with the
        default ``batch_size`` and ``lr`` (``docs/defaults.rst``). It also
        sets the horizon of the ``classification_weight`` schedule (and of
        a fractional ``warmup_steps``): ``max_epochs`` epochs of optimizer
        steps, fixed when the network is built (see ``warm_start``).
    batch_size : int, default=256
        Samples per optimizer step. The original recipe used 128 with
        ``lr=1e-3``; 256 steps are cheaper per sample (1.6x the samples per
        second of the default MLP on 2 CPU cores), and with twice the
        learning rate 256 reached the quality of 128 on MNIST in 1.5 times
        the epochs (``docs/defaults.rst``).
    lr : float, default=2e-3
        Learning rate.
    optimizer : {"adam", "adamw", "sgd", "rmsprop"} or torch optimizer class, default="adam"
        Optimizer. Named by a string, Adam, AdamW and SGD run torch's fused
        update where torch has one for the device (the CPU and CUDA); a
        class runs with torch's defaults for it, e.g.
        ``optimizer=torch.optim.Adam`` for the unfused Adam of the
        original recipe.
    early_stopping : "auto" or bool, default=False
        Hold out ``validation_fraction`` of the training rows (stratified by
        class when labelled) to score each epoch on them.
        ``"auto"`` holds rows out for a labelled fit of at least 1,000 rows
        (not a semi-supervised one, nor ``partial_fit``) and trains every
        epoch; ``True`` always holds rows out and also stops once
        ``n_iter_no_change`` epochs brought no better validation score --
        the latent classifier's accuracy, or the VAE's loss for a model
        fitted without labels -- keeping the best epoch's weights;
        ``False`` never holds rows out. ``early_stopping_`` records what
        was done. The schedule's horizon counts the steps on the training
        part only. Not the default: the rows held out cost the model more
        than the best epoch gained on the data sets measured
        (``docs/defaults.rst``, "Choosing on validation rows").
        :meth:`partial_fit` does not support ``True``.
    validation_fraction : float, default=0.1
        Fraction of the training data held out when ``early_stopping``
        holds rows out.
    n_iter_no_change : int, default=5
        Number of epochs without a better validation score after which
        ``early_stopping=True`` stops training.
    warm_start : bool, default=False
        When True and the model is fitted, ``fit`` continues training it --
        weights, optimizer state, schedule step and random state -- instead
        of building a new network, and trains only the epochs missing to
        reach ``max_epochs`` in all (``len(history_)`` counts those done).
        A fit stopped early (by Ctrl-C or a callback) thus resumes where it
        stopped, as does the ``last_finite_estimator`` of a
        ``DivergenceError`` once ``lr`` is lowered, and the fits together
        follow the schedule of one uninterrupted fit of ``max_epochs``
        epochs. The schedule's horizon stays the one set when
        the network was built; to train longer, raise ``max_epochs``: the
        extra epochs use the schedule's final weight. ``max_epochs``,
        ``batch_size``, ``lr``, ``warmup_steps``, ``classification_weight``,
        ``unlabeled_weight``, ``pseudo_label_threshold``,
        ``pseudo_label_source``, ``class_weight`` and ``verbose`` may
        change between fits; the parameters that shape
        the network, its loss, its optimizer, its device, its callbacks and
        early stopping may not, and neither may the number of features or
        the classes of the data.
    device : str, default="cpu"
        Torch device to train and infer on: ``"cpu"``, ``"cuda"``,
        ``"cuda:1"``..., or ``"auto"`` for CUDA when available; ``fit``
        refuses other torch devices (e.g. ``"meta"``).
    random_state : int, RandomState instance or None, default=None
        Seeds weight initialisation, shuffling, the latent sampling and the
        early-stopping split. Pass an int for reproducible results: a fit
        draws from random generators of its own, so it depends on
        ``random_state`` only -- also when fits run in threads -- and
        torch's global random state is neither used nor changed.
    verbose : int, default=0
        What training prints, to ``sys.stdout``. 0: nothing. 1: one
        progress bar for the whole training call, over its epochs, with the
        last epoch's loss and head accuracy (``valid_accuracy`` too when
        rows are held out); tqdm's bar on a terminal, its widget in Jupyter
        (with ipywidgets), and where the output is a file or a pipe plain
        lines of the same values instead (after the first epoch, every
        tenth of the epochs and after the last), without ANSI codes or
        carriage returns. 2 (or more): skorch's table of every recorded
        term for every epoch, coloured on a terminal only.
    callbacks : list of skorch callbacks, default=None
        Extra skorch callbacks. For instance
        ``Checkpoint(monitor=every_5_epochs, dirname="checkpoints")``, with
        a function ``every_5_epochs(net)`` returning
        ``len(net.history) % 5 == 0`` (``monitor=None`` saves every epoch),
        writes the weights, optimizer state and history to a folder. To
        resume from it, add ``LoadInitState(checkpoint)`` to the callbacks:
        the next fit starts from the last checkpoint and trains the epochs
        missing to ``max_epochs``, the schedule continuing where the
        checkpoint left it. A fitted model can also load one with
        ``est.net_.load_params(checkpoint=checkpoint)`` and continue with
        ``warm_start=True``. A ``KeyboardInterrupt`` (Ctrl-C) stops training
        with a warning; the model keeps the weights of the last finished
        epoch.
    unlabeled_label : int or str, default=None
        Value of ``y`` that marks an unlabeled sample, e.g. ``-1`` as in
        scikit-learn's semi-supervised estimators; ``classes_`` leaves the
        marker out. None means every value of ``y`` is a class label. A
        marker of a type that no value of ``y`` has (a string with numeric
        labels, a number with string labels) is refused, as it would mark
        no sample; string labels with an int marker go in a ``y`` of dtype
        object. When
        ``y`` holds both labeled and unlabeled samples, training is
        semi-supervised: every batch carries labeled samples (a quarter of
        the batch, or their share of the data when larger, drawn in turn
        from all of them), and the unlabeled samples train the latent
        classifier too, with pseudo-labels (see ``pseudo_label_source``)
        that the classifier at their sampled latent codes learns, and a term
        keeps the classifier's mean prediction on the unlabeled samples
        close to the labeled samples' class frequencies, so that it cannot
        give them all one class. With class anchoring (``class_spacing``)
        an unlabeled sample's prior is the classifier's mixture of the class
        priors (marginalised as in the M2 model of Kingma et al., 2014)
        instead of ``N(0, I)``. Fully labeled data trains exactly as
        without ``unlabeled_label``.
    unlabeled_weight : float, default=1.0
        Weight of the unlabeled samples' classifier terms (pseudo-labels and
        class balance), relative to ``classification_weight`` at every step:
        it follows the schedule and the warm-up. The pseudo-label term is
        the cross-entropy summed over the pseudo-labeled samples and divided
        by the number of unlabeled ones, so it grows as the classifier grows
        confident, and means the same at any label fraction. 0 turns both
        terms off (the batches still carry labeled samples, and with class
        anchoring the unlabeled samples' marginalised prior still reaches
        the classifier).
    pseudo_label_threshold : float, default=0.8
        With ``pseudo_label_source="head"``: smallest probability the latent
        classifier must give its predicted class at an unlabeled sample's
        latent mean for that class to become the sample's pseudo-label; 1.0
        gives (almost) none. Unused with ``"propagation"``.
    pseudo_label_source : {"propagation", "head"}, default="propagation"
        Where the unlabeled samples' pseudo-labels come from in a
        semi-supervised fit. ``"propagation"``: once per call to ``fit`` (or
        ``partial_fit``), the labels are spread over the 7-nearest-neighbour
        graph of the training samples ``X`` (Euclidean distances on ``X`` as
        given: scale its features comparably, as for scikit-learn's
        ``LabelSpreading``), see :func:`skvae.losses.propagate_labels`;
        every unlabeled sample gets the class of highest score, weighted by
        its certainty (1 minus the entropy of its normalised scores over
        ``log(n_classes)``). The graph is fixed, so the classifier's own
        errors do not feed back into its targets; it costs a kNN search of
        the training data per call (about 4 s for 8,000 MNIST images on two
        cores). ``"head"``: the latent classifier's own prediction at an
        unlabeled sample's latent mean where it reaches
        ``pseudo_label_threshold`` (FixMatch-style; the only source before
        this parameter). Measured on digits, 3 seeds, 8-D, head accuracy
        with 1% / 10% labels: 0.888 / 0.951 with ``"propagation"``, 0.561 /
        0.928 with ``"head"`` (``benchmarks/SEMI_SUPERVISED.md``).
    precision : {"32", "bf16-mixed", "16-mixed"}, default="32"
        Arithmetic of the forward passes, named as in PyTorch Lightning:
        ``"32"`` is float32 throughout; ``"bf16-mixed"`` runs training and
        inference forward passes under bfloat16 autocast, while the weights,
        the optimizer state and the loss stay float32 and outputs keep the
        dtypes of ``"32"``. bfloat16 matrix products run about twice as fast
        on CPUs with AVX-512 BF16 or AMX and on recent GPUs; elsewhere
        ``fit`` refuses it, as it would be slower than float32. Results
        differ from float32 by bfloat16's precision (about 3 significant
        digits per product); every row's output still does not depend on
        the rows that came with it. ``"16-mixed"`` is the same with
        float16, whose narrower range needs the loss scaled in training
        (:class:`torch.amp.GradScaler`; a step whose gradients overflow is
        skipped and the scale lowered): the usual choice on GPUs without
        bfloat16. Only CUDA devices and CPUs with AMX-FP16 run it;
        elsewhere ``fit`` refuses it. A model loaded on a device that
        cannot run its precision runs in float32, with a warning.
    class_weight : dict, "balanced" or None, default=None
        Weight of each class in the loss, multiplied into ``sample_weight``
        for the labeled samples of that class (unlabeled samples keep
        theirs): a dict ``{label: weight}`` (classes left out weigh 1), or
        ``"balanced"``, which weighs each class by ``n / (n_classes * n_k)``
        (with ``sample_weight``, ``n`` and the class's ``n_k`` are sums of
        the labeled samples' weights) so that every class counts alike. On
        imbalanced data (5 classes, 20:1, ``benchmarks/class_weight.py``,
        2 seeds) ``"balanced"`` raised the head's balanced accuracy from
        0.655 to 0.761 in 2-D and from 0.762 to 0.784 in 8-D, and lowered
        its accuracy from 0.879 to 0.829 and from 0.901 to 0.875: it trades
        the large classes' accuracy for the small ones'. ``partial_fit``
        refuses ``"balanced"``, as one call's data may not show the
        classes' frequencies (pass a dict). May change between
        warm-started fits. Needs labels.
    compile : bool, default=False
        Whether training steps run their forward pass and loss compiled by
        ``torch.compile`` (the backward pass, the fused optimizer step and
        skorch's training loop stay as they are). The random draws stay
        those of the fit's own generators, so a compiled fit depends on
        ``random_state`` only, as an eager one does; its results equal those
        of another compiled fit on the same machine, not those of an eager
        fit (the compiled kernels round differently: the latent codes of a
        short fit differ by about 1e-3). A process compiles once per network
        shape -- the epochs, the smaller last batch, the fits of a grid
        search and other training sizes reuse it -- and torch keeps the
        compiled code on disk for later processes. Compiling takes time: on a
        shared 2-core CPU 31-100 s with torch's compile cache cold, 3-17 s
        with it warm, and the compiled steps were only 1.08-1.10x as fast as
        the eager ones with the fused optimizer (every compiled default MNIST
        fit took longer than the eager one beside it;
        ``benchmarks/RESULTS.md``, "Compiled training step"), so it does not
        pay on such CPUs (there is no ``"auto"`` until a device is measured
        where it does). Where ``torch.compile`` fails (no C++ compiler,
        an unsupported platform) training warns and runs eagerly. May change
        between warm-started fits. The fitted model holds no compiled code:
        it pickles, clones and saves as an eager one.
    data_parallel : {"auto", True, False}, default="auto"
        Whether ``fit`` and ``partial_fit`` train data-parallel over
        ``torch.distributed``'s default process group: in a script started
        by ``torchrun --nproc_per_node N`` (one process per CPU socket or
        GPU) that calls ``torch.distributed.init_process_group()`` and fits
        the same estimator on the same data in every process (user guide,
        "Several processes or GPUs"). Each process runs the network on its
        share of every batch; together they train the model one process
        trains at the same ``batch_size`` (the global batch), up to float
        rounding, and every process ends with that same model. Only rank 0
        prints, writes checkpoints and saves (``save``). ``"auto"``: when a
        default process group of more than one process is initialised;
        True: over the default process group, which must be initialised
        (of any size); False: never, each process fits a model of its own
        (e.g. the fits of a search spread over the processes). May change
        between warm-started fits.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels seen in ``fit``; absent for a model fitted without
        labels.
    n_features_in_ : int
        Number of features seen in ``fit``.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Feature names seen in ``fit``, when ``X`` has string column names.
    net_ : skorch.NeuralNet
        The fitted skorch net; ``net_.module_`` is the torch model.
    history_ : skorch.History
        Per-epoch record: ``train_loss``, ``train_reconstruction``,
        ``train_kl``, ``train_classification``, ``train_accuracy``,
        ``classification_weight`` (mean over the epoch's steps), ``dur``;
        in a semi-supervised fit also ``train_unlabeled``, the unlabeled
        samples' classifier terms (see ``unlabeled_weight``).
    reconstruction_ : {"bce", "mse"}
        The reconstruction loss the network was trained with (resolves
        ``reconstruction="auto"``).
    architecture_ : {"mlp", "conv"}
        The encoder the network was built with (resolves
        ``architecture="auto"``).
    input_dropout_ : float
        The masking noise the network trains with: ``input_dropout``, or
        the value ``"auto"`` chose (on the validation rows, or by the width
        of the data without them).
    input_dropout_check_ : dict
        The pilot fits of ``input_dropout="auto"``: ``"input_dropout"``,
        the two noises compared (the rule's, 0.0); ``"validation_accuracy"``,
        ndarray of shape (2,), each pilot's head accuracy on the held-out
        rows, averaged over its last epochs; ``"z"``, the paired test's
        statistic, positive where no noise was right more often (no noise
        is chosen above 3). Absent when the noise was not checked; None
        when Ctrl-C stopped a pilot (the fit then keeps the rule's noise
        and its initial weights, with a warning).
    early_stopping_ : bool
        Whether the fit held validation rows out (resolves
        ``early_stopping="auto"``).
    n_iter_ : int
        Epochs trained, over all the calls that trained this network
        (``fit`` with ``warm_start=True`` and ``partial_fit`` continue the
        count, as MLPClassifier's ``n_iter_`` does): ``len(history_)``.
    loss_curve_ : list of float
        Training loss of each of those epochs (``history_[:, "train_loss"]``):
        the weighted total of the loss terms, averaged over the epoch's
        batches (weighted by ``sample_weight`` within each batch), as the
        optimizer minimised it -- so with a schedule of
        ``classification_weight`` it need not decrease.
    best_loss_ : float or None
        The smallest of ``loss_curve_``; None when the fit held validation
        rows out (``early_stopping_``), whose scores judge the epochs
        instead, as in MLPClassifier with ``early_stopping=True``.
    validation_scores_ : list of float or None
        Validation head accuracy after each epoch (weighted by the
        validation rows' ``sample_weight``; ``history_[:, "valid_accuracy"]``),
        when the fit held labelled validation rows out; None otherwise
        (also for a model fitted without labels, whose validation loss is
        ``history_[:, "valid_loss"]``).
    best_validation_score_ : float or None
        The best of ``validation_scores_`` (with ``early_stopping=True``,
        that epoch's weights are kept); None without them.
    max_epochs_ : int
        The training length in epochs (resolves ``max_epochs="auto"``).
    compile_ : bool
        Whether the last fit compiled its training steps (``compile`` may
        change before a warm-started fit).
    image_shape_ : tuple of int or None
        ``(channels, height, width)`` of the data, when images.
    class_centroids_ : ndarray of shape (n_classes, n_components)
        Mean of the latent means of each class's training samples; absent
        for a model fitted without labels.
    class_covariances_ : ndarray of shape (n_classes, n_components, n_components)
        Covariance of the latent means of each class's training samples,
        plus 1e-6 on the diagonal; with ``class_centroids_`` the Gaussian
        that :meth:`sample` draws a class region from.
    class_prior_means_ : ndarray of shape (n_classes, n_components) or None
        Centre of each class's prior during training (``class_spacing``);
        None without class anchoring.
    setup_ : skvae._build.FittedSetup
        What the network was built with: the model-shaping parameters as
        they were at fit and the values the fit chose from the data. The
        fitted model keeps using it after ``set_params``, until it is
        refitted; ``save`` writes it.

    See Also
    --------
    sklearn.decomposition.PCA : Linear latent space without class regions.
    sklearn.discriminant_analysis.LinearDiscriminantAnalysis : Linear
        supervised projection, no decoder.

    Examples
    --------
    >>> from skvae import DisentangledVAE
    >>> from skvae.datasets import load_digits
    >>> X, y = load_digits(return_X_y=True)
    >>> vae = DisentangledVAE(max_epochs=5, random_state=0).fit(X, y)
    >>> vae.transform(X[:3]).shape
    (3, 2)
    >>> vae.inverse_transform(vae.transform(X[:3])).shape
    (3, 64)
    """

    # The "?" of the HTML repr (in notebooks) links to this class's page of
    # skvae's API reference, not to scikit-learn's documentation.
    _doc_link_module = "skvae"
    _doc_link_template = DOCS_URL + "gen_modules/skvae.{estimator_name}.html"

    _parameter_constraints = {
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "architecture": [StrOptions({"auto", "mlp", "conv"})],
        "hidden_dims": ["array-like"],
        "image_shape": ["array-like", None],
        "classifier_hidden": ["array-like"],
        "reconstruction": [StrOptions({"auto", "bce", "mse"})],
        "kl": [StrOptions({"abs", "standard"})],
        "beta": [Interval(Real, 0, None, closed="left")],
        "input_dropout": [Interval(Real, 0, 1, closed="left"), StrOptions({"auto"})],
        "class_spacing": [Interval(Real, 0, None, closed="left"), StrOptions({"auto"}), None],
        "class_neighbors": ["array-like", None],
        "classification_weight": [Interval(Real, 0, None, closed="left"), callable],
        "warmup_steps": [Interval(Integral, 0, None, closed="left"), Interval(RealNotInt, 0, 1, closed="left")],
        "max_epochs": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "optimizer": [StrOptions(set(OPTIMIZERS)), type],
        "early_stopping": ["boolean", StrOptions({"auto"})],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "warm_start": ["boolean"],
        "device": [str, torch.device],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "callbacks": [list, None],
        "unlabeled_label": [Integral, str, None],
        "unlabeled_weight": [Interval(Real, 0, None, closed="left")],
        "pseudo_label_threshold": [Interval(Real, 0, 1, closed="both")],
        "pseudo_label_source": [StrOptions({"propagation", "head"})],
        "precision": [StrOptions({"32", "bf16-mixed", "16-mixed"})],
        "compile": ["boolean"],
        "data_parallel": ["boolean", StrOptions({"auto"})],
        "class_weight": [StrOptions({"balanced"}), dict, None],
    }

    def __init__(
        self,
        n_components=2,
        *,
        architecture="auto",
        hidden_dims=(512, 256),
        image_shape=None,
        classifier_hidden=(10, 10),
        input_dropout="auto",
        reconstruction="auto",
        kl="standard",
        beta=1.0,
        class_spacing="auto",
        class_neighbors=None,
        classification_weight=_DEFAULT_SCHEDULE,
        warmup_steps=0.05,
        max_epochs="auto",
        batch_size=256,
        lr=2e-3,
        optimizer="adam",
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=5,
        warm_start=False,
        device="cpu",
        random_state=None,
        verbose=0,
        callbacks=None,
        unlabeled_label=None,
        unlabeled_weight=1.0,
        pseudo_label_threshold=0.8,
        pseudo_label_source="propagation",
        precision="32",
        class_weight=None,
        compile=False,
        data_parallel="auto",
    ):
        self.n_components = n_components
        self.architecture = architecture
        self.hidden_dims = hidden_dims
        self.image_shape = image_shape
        self.classifier_hidden = classifier_hidden
        self.input_dropout = input_dropout
        self.reconstruction = reconstruction
        self.kl = kl
        self.beta = beta
        self.class_spacing = class_spacing
        self.class_neighbors = class_neighbors
        self.classification_weight = classification_weight
        self.warmup_steps = warmup_steps
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.optimizer = optimizer
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.warm_start = warm_start
        self.device = device
        self.random_state = random_state
        self.verbose = verbose
        self.callbacks = callbacks
        self.unlabeled_label = unlabeled_label
        self.unlabeled_weight = unlabeled_weight
        self.pseudo_label_threshold = pseudo_label_threshold
        self.pseudo_label_source = pseudo_label_source
        self.precision = precision
        self.class_weight = class_weight
        self.compile = compile
        self.data_parallel = data_parallel

    def set_params(self, **params):
        # The default schedule is shared by every instance and frozen; a
        # nested change (classification_weight__midpoint=...) goes to a copy.
        nested = any(key.startswith("classification_weight__") for key in params)
        if nested and isinstance(self.classification_weight, _SharedDefault):
            self.classification_weight = self.classification_weight.unshared()
        return super().set_params(**params)

    # ------------------------------------------------------------------ fit

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None, sample_weight=None):
        """Train the VAE and, when ``y`` is given, its latent classifier.

        With ``warm_start=True`` and a fitted model, continue training it
        up to ``max_epochs`` epochs in all instead (see ``warm_start``).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data. With ``reconstruction="bce"`` values must lie in
            [0, 1]. An ``np.memmap``, ``h5py.Dataset``, ``zarr.Array`` or
            dask array is read in blocks of rows, never whole (user guide,
            "Data larger than memory"); so are uint8 images wrapped in
            :class:`~skvae.datasets.ScaledArray`.
        y : array-like of shape (n_samples,), default=None
            Class labels (ints or strings). None trains a plain VAE, which
            can transform and decode but not predict. With
            ``unlabeled_label`` set, samples carrying that value count as
            unlabeled and training is semi-supervised (see
            ``unlabeled_label``).
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weight of each sample in every term of the loss
            (reconstruction, KL and classification, and an unlabeled
            sample's pseudo-label terms): each batch's average becomes a
            weighted average, as in :class:`~sklearn.neural_network.MLPClassifier`.
            None weighs every sample 1. Weights do not change the number
            of optimizer steps (``max_epochs="auto"`` counts rows); see the
            user guide, "Sample weights", for what they mean for the
            validation rows, the pseudo-labels and the class regions.
            Negative, non-finite and all-zero weights are refused, and so
            are weights that leave fewer than 2 classes with positive
            weight among the labeled samples.

        Returns
        -------
        self : DisentangledVAE
            The fitted estimator.

        Warns
        -----
        UserWarning
            When a ``KeyboardInterrupt`` (Ctrl-C) stops training: the model
            is usable, with the weights of the last finished epoch.

        Raises
        ------
        DivergenceError
            When a loss or the weights become NaN or infinite. As with any
            error, the estimator is left as it was; the error's
            ``last_finite_estimator`` is a copy fitted with the weights of
            the last finished epoch (or the initial ones), to inspect, or to
            train further with ``warm_start=True`` after lowering ``lr``.
            When the rows of ``X`` overflow the network even at those
            weights, the message names them instead.

        Notes
        -----
        An error leaves the estimator exactly as it was before the call: a
        previous fit intact, or unfitted. Everything that can be checked --
        data, parameters, every weight of the schedule -- is checked before
        training starts. A ``KeyboardInterrupt`` (Ctrl-C) that stops
        training is no error: the model keeps the last finished epoch (see
        Warns).
        """
        return self._fit(X, y, sample_weight, incremental=False)

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y=None, classes=None, sample_weight=None):
        """Train one epoch on ``X``, continuing from the fitted state.

        The first call builds the network as :meth:`fit` does; every call,
        also after ``fit``, then trains one epoch over ``X``, whatever
        ``warm_start`` and ``max_epochs``. The schedule's step carries over
        from call to call, with a horizon of ``max_epochs`` epochs of the
        first call's data: ``max_epochs`` calls on data of that size follow
        the schedule as one ``fit`` does, and later calls use its final
        weight. ``partial_fit`` holds no data out, so it refuses
        ``early_stopping=True``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data. With ``reconstruction="bce"`` values must lie in
            [0, 1]. Arrays on disk are read in blocks, as in :meth:`fit`.
        y : array-like of shape (n_samples,), default=None
            Class labels, each in ``classes``; ``unlabeled_label`` marks
            unlabeled samples. Pass ``y`` in every call to train a latent
            classifier, in none to train a plain VAE.
        classes : array-like of shape (n_classes,), default=None
            Every class label of the problem, required on the first call
            that has ``y`` (as in
            :meth:`sklearn.linear_model.SGDClassifier.partial_fit`), since
            one call's ``y`` may miss some classes. Later calls may omit it.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weight of each sample of this call in the loss, as
            in :meth:`fit`; None weighs every sample 1.

        Returns
        -------
        self : DisentangledVAE
            The fitted estimator.

        Notes
        -----
        ``class_centroids_`` and ``class_covariances_`` are refitted on the
        data of every call whose ``y`` holds all the classes; a call that
        misses a class keeps those of the previous calls (and until such a
        call, the class-region methods explain that they have none). As
        with :meth:`fit`, an error, a ``DivergenceError`` included, leaves
        the estimator as it was before the call.
        """
        return self._fit(X, y, sample_weight, incremental=True, classes=classes)

    def _fit(self, X, y, sample_weight, *, incremental, classes=None):
        """The one training path behind ``fit`` (whole) and ``partial_fit`` (one epoch)."""
        self._check_param_values()
        if incremental and self.early_stopping is True:
            raise ValueError(
                "partial_fit trains one epoch on all the data it gets, so it cannot "
                "hold out validation data for early_stopping=True. Use fit for early "
                "stopping, or set early_stopping=False."
            )
        if y is None and classes is not None:
            raise ValueError(
                "classes was given but y is None. Pass y with classes to train a "
                "latent classifier, or neither for a plain VAE."
            )
        continuing = hasattr(self, "net_") and (incremental or self.warm_start)
        # A call that raises leaves the estimator as it was: its attributes
        # and, when it continues training the fitted net, that net's training
        # state and parameters (a new net goes with the new attributes).
        before = dict(vars(self))
        net_before = (self.net_.training_checkpoint(), self._net_training_params()) if continuing else None
        try:
            if continuing:
                self._check_unchanged_params()
            X, y_encoded = self._validate_training_data(X, y, classes, incremental, continuing)
            sample_weight = self._validate_sample_weight(sample_weight, X, y_encoded, incremental)
            self._check_reconstruction(X, new_network=not continuing)
            if self.max_epochs != "auto":
                self.max_epochs_ = self.max_epochs
            train = True
            if not continuing:
                class_pairs = self._encoded_class_neighbors()
                self._set_class_prior_means(X, y_encoded, sample_weight, class_pairs)
                if self.max_epochs == "auto":
                    arranges_classes = y is not None and self.class_prior_means_ is None and len(self.classes_) > 1
                    self.max_epochs_ = auto_max_epochs(len(X), self.batch_size, arranges_classes=arranges_classes)
                self.early_stopping_ = self._holds_rows_out(y_encoded, incremental)
                self.compile_ = bool(self.compile)
                n_classes = 0 if y is None else len(self.classes_)
                self._initialize_net(X, y_encoded, sample_weight, n_classes, class_pairs, incremental)
                # Ctrl-C while a pilot of the noise check trained: no training follows.
                train = getattr(self, "input_dropout_check_", True) is not None
            else:
                self.compile_ = bool(self.compile)
                self.net_.set_params(**self._training_params())
                if not incremental and len(self.net_.history) >= self.max_epochs_:
                    warnings.warn(
                        f"warm_start=True and this model has trained {len(self.net_.history)} "
                        f"epochs, max_epochs={self.max_epochs_}, so fit did not train. Raise "
                        "max_epochs to train longer.",
                        UserWarning,
                    )
                    return self
            self._train(
                X, y_encoded, sample_weight, epochs=1 if incremental else None, partial=incremental, train=train
            )
        except BaseException:
            vars(self).clear()
            vars(self).update(before)
            if net_before is not None:
                checkpoint, params = net_before
                self.net_.set_params(**params)
                self.net_.rewind(checkpoint)
            raise
        if not incremental:
            self._warn_unmet_neighbors()
        return self

    def _check_param_values(self):
        """Checks that scikit-learn's parameter constraints cannot express."""
        # sklearn's Interval(Integral, ...) accepts bools.
        for name, constraints in self._parameter_constraints.items():
            integral = any(isinstance(c, Interval) and c.type is Integral for c in constraints)
            value = getattr(self, name)
            if integral and isinstance(value, (bool, np.bool_)):
                raise InvalidParameterError(
                    f"The {name!r} parameter of {type(self).__name__} must be an int, "
                    f"not a bool. Got {value!r} instead."
                )
        if isinstance(self.unlabeled_label, bool):
            # True == 1: it would unlabel every sample of class 1.
            raise InvalidParameterError(
                f"The 'unlabeled_label' parameter of {type(self).__name__} must be an int, "
                f"a str or None, not a bool. Got {self.unlabeled_label!r} instead."
            )
        optimizer = self.optimizer
        if not isinstance(optimizer, str) and not (
            isinstance(optimizer, type) and issubclass(optimizer, torch.optim.Optimizer)
        ):
            raise InvalidParameterError(
                f"The 'optimizer' parameter of {type(self).__name__} must be a str among "
                f"{sorted(OPTIMIZERS)} or a subclass of torch.optim.Optimizer. Got "
                f"{optimizer!r} instead."
            )
        try:
            as_schedule(self.classification_weight)
        except TypeError as exc:
            raise InvalidParameterError(str(exc)) from None
        for index, entry in enumerate(self.callbacks or []):
            # skorch takes a callback, or a (name, callback) pair, as an
            # instance or a class to instantiate.
            named = isinstance(entry, (tuple, list)) and len(entry) == 2 and isinstance(entry[0], str)
            callback = entry[1] if named else entry
            is_class = isinstance(callback, type) and issubclass(callback, Callback)
            if not (isinstance(callback, Callback) or is_class):
                raise InvalidParameterError(
                    f"The 'callbacks' parameter of {type(self).__name__} must be a list of "
                    "skorch callbacks (instances or subclasses of skorch.callbacks.Callback, "
                    f"or (name, callback) pairs). Got {entry!r} ({type(entry).__name__}) at "
                    f"index {index} instead."
                )

    def _validate_training_data(self, X, y, classes, incremental, continuing):
        """Validated ``X`` and ``y`` encoded as class indices (-1: unlabeled).

        Sets ``classes_`` (or removes it for a plain VAE) when a new network
        is built; a continued training must see the classes it was built with.
        """
        try:
            if is_out_of_core(X):
                # Read block by block, never whole (see "Data larger than memory").
                X = validate_blocks(self, X, reset=not continuing)
                if y is not None:
                    y = _check_y(y, estimator=self)
                    check_consistent_length(X, y)
            elif y is None:
                X = validate_data(self, X, dtype=[np.float64, np.float32], reset=not continuing)
            else:
                X, y = validate_data(self, X, y, dtype=[np.float64, np.float32], reset=not continuing)
        except ValueError as exc:
            if continuing and not incremental:
                raise ValueError(
                    f"{exc} warm_start=True continues training the fitted model; set "
                    "warm_start=False to fit a new one."
                ) from None
            raise
        check_float32_range(X)
        if y is not None:
            check_unlabeled_label(y, self.unlabeled_label)
        fitted = getattr(self, "classes_", None) if continuing else None
        if y is None:
            if fitted is not None:
                raise ValueError(
                    "This DisentangledVAE has a latent classifier, so "
                    + ("partial_fit needs y in every call; mark unlabeled samples with unlabeled_label."
                       if incremental else f"warm_start=True needs y with its classes {fitted.tolist()!r}; "
                       "set warm_start=False to fit a new model.")
                )
            if not continuing and hasattr(self, "classes_"):
                del self.classes_
            return X, None
        if continuing and fitted is None:
            raise ValueError(
                "This DisentangledVAE was fitted without labels (a plain VAE) and has no "
                "latent classifier; train it without y, or fit a new model "
                + ("with labels." if incremental else "with labels and warm_start=False.")
            )
        if incremental:
            if not continuing and classes is None:
                raise ValueError(
                    "classes must be passed on the first call to partial_fit when y is "
                    "given: all the class labels, as one call's y may miss some."
                )
            given = None if classes is None else check_classes(classes, self.unlabeled_label)
        else:
            given = classes_of(y, self.unlabeled_label)
        if continuing:
            if given is not None and given.tolist() != fitted.tolist():
                raise ValueError(
                    f"{'classes' if incremental else 'y'} has the classes {_classes_text(given)}, "
                    f"but this model was fitted with {_classes_text(fitted)} and "
                    + ("partial_fit" if incremental else "warm_start=True")
                    + " continues training it; the classes cannot change. Fit a new model "
                    "(warm_start=False) for other classes."
                )
        else:
            self.classes_ = given
        hint = " Pass all the classes in classes on the first call to partial_fit." if incremental else ""
        try:
            y_encoded = encode_labels(self.classes_, y, unlabeled_label=self.unlabeled_label)
        except ValueError as exc:
            raise ValueError(f"{exc}{hint}") from None
        return X, y_encoded

    def _validate_sample_weight(self, sample_weight, X, y_encoded, incremental):
        """The weight of each row in the loss: ``sample_weight`` checked as
        scikit-learn does (ones for None), times ``class_weight``.

        Negative, non-finite and all-zero weights are refused; so, in
        ``fit``, are weights that leave the latent classifier fewer than 2
        classes to tell apart (``partial_fit`` calls may miss classes).
        """
        sample_weight = _check_sample_weight(sample_weight, X, dtype=np.float64, ensure_non_negative=True)
        if self.class_weight is not None:
            sample_weight = sample_weight * self._row_class_weights(y_encoded, sample_weight, incremental)
        # Also where scikit-learn's check lets all-zero weights pass (before 1.7).
        if not (sample_weight > 0).any():
            cause = "sample_weight" if self.class_weight is None else f"class_weight={self.class_weight!r}"
            raise ValueError(
                f"{cause} weighs every sample 0, so nothing would be trained. Sample weights "
                "must contain at least one non-zero number."
            )
        if incremental or y_encoded is None:
            return sample_weight
        weighted = np.unique(y_encoded[(y_encoded >= 0) & (sample_weight > 0)])
        if weighted.size < 2:
            kept = "no class" if weighted.size == 0 else f"only class {self.classes_[weighted[0]].tolist()!r}"
            raise ValueError(
                f"sample_weight and class_weight leave {kept} with positive weight among the "
                "labeled samples, but the latent classifier needs samples of at least 2 classes "
                "to learn from. Give samples of at least 2 classes a positive weight, or fit "
                "without y for a plain VAE."
            )
        return sample_weight

    def _row_class_weights(self, y_encoded, sample_weight, incremental):
        """``class_weight`` of each row's class; 1 for unlabeled rows."""
        if y_encoded is None:
            raise ValueError(
                f"class_weight={self.class_weight!r} weighs the classes of y, so it needs "
                "labels: fit with y, or set class_weight=None."
            )
        n_classes = len(self.classes_)
        labeled = y_encoded >= 0
        if self.class_weight == "balanced":
            if incremental:
                raise ValueError(
                    "class_weight='balanced' is not supported by partial_fit: one call's y "
                    "may not show the classes' frequencies. Compute them from enough labels, "
                    "e.g. dict(zip(classes, compute_class_weight('balanced', classes=classes, "
                    "y=y_sample))) with sklearn.utils.class_weight, and pass that dict as "
                    "class_weight."
                )
            counts = np.bincount(y_encoded[labeled], weights=sample_weight[labeled], minlength=n_classes)
            # A class of weight 0 stays 0 (its rows have no weight to scale).
            by_class = np.divide(counts.sum(), n_classes * counts, out=np.zeros(n_classes), where=counts > 0)
        else:
            labels = list(self.class_weight)
            values = np.array([self.class_weight[label] for label in labels], dtype=object)
            if not all(isinstance(v, Real) and not isinstance(v, bool) and np.isfinite(v) and v >= 0 for v in values):
                raise ValueError(
                    f"class_weight must map class labels to non-negative finite numbers; got "
                    f"{self.class_weight!r}."
                )
            by_class = np.ones(n_classes)
            by_class[encode_labels(self.classes_, labels, input_name="class_weight")] = values.astype(np.float64)
        return np.where(labeled, by_class[np.maximum(y_encoded, 0)], 1.0)

    def _model_params(self):
        """The parameters that shape the model (a copy of each), by name."""
        return {
            name: copy.copy(getattr(self, name))
            for name in inspect.signature(type(self)).parameters  # in the order of the signature
            if name not in _TRAINING_PARAMS and name not in _CALL_PARAMS
        }

    def _check_unchanged_params(self):
        """Refuse to continue training a network whose parameters changed."""
        built_with = self.setup_.params
        changed = [
            f"{name} ({built_with[name]!r} -> {value!r})"
            for name, value in self._model_params().items()
            if not _same_param(value, built_with[name])
        ]
        if changed:
            raise ValueError(
                f"{', '.join(changed)} changed since the network was built, but "
                "warm_start=True and partial_fit continue training that network. "
                "Set them back, or fit with warm_start=False to build a new one."
            )

    def _check_reconstruction(self, X, new_network):
        """Choose ``reconstruction_`` for a new network, and check that ``X``
        suits it: binary cross-entropy needs ``X`` in [0, 1]."""
        in_unit_interval = bool(X.min() >= 0 and X.max() <= 1)
        if new_network:
            if self.reconstruction == "auto":
                self.reconstruction_ = "bce" if in_unit_interval else "mse"
            else:
                self.reconstruction_ = self.reconstruction
        if self.reconstruction_ == "bce" and not in_unit_interval:
            raise ValueError(
                f"reconstruction='bce' needs X in [0, 1]; got values in "
                f"[{X.min():.4g}, {X.max():.4g}]. Scale X first (e.g. "
                "make_pipeline(MinMaxScaler(), DisentangledVAE(...))) or use "
                "reconstruction='mse'."
            )

    def _set_class_prior_means(self, X, y_encoded, sample_weight, class_pairs):
        """Choose ``class_prior_means_``, the centres of the class priors.

        The centres come from :func:`~skvae.centers.class_centers`; which
        class gets which centre follows the distances between the classes'
        mean rows of ``X`` (:func:`~skvae.centers.arrange_class_centers`), so
        that similar classes get neighbouring regions; near-equidistant
        centres keep their order. When ``y_encoded`` misses a class (a first
        ``partial_fit`` call), classes keep the order of ``classes_``. The
        mean rows are weighted by ``sample_weight`` (equally for a class
        whose rows all weigh 0).
        """
        n_classes = 0 if y_encoded is None else len(self.classes_)
        spacing = resolve_class_spacing(self.class_spacing, n_classes, self.n_components)
        if spacing is None:
            self.class_prior_means_ = None
            return
        centers = class_centers(n_classes, self.n_components, spacing)
        present = np.unique(y_encoded[y_encoded >= 0])
        if present.size == n_classes:
            if isinstance(X, BlockRows):  # out of core: accumulated a block at a time
                means = weighted_class_means(X, y_encoded, sample_weight, n_classes)
            else:
                means = np.stack(
                    [_class_mean(X[y_encoded == code], sample_weight[y_encoded == code]) for code in range(n_classes)]
                )
            distances = np.linalg.norm(means[:, None, :] - means[None, :, :], axis=-1)
            if class_pairs is not None:
                distances[class_pairs[:, 0], class_pairs[:, 1]] = distances[class_pairs[:, 1], class_pairs[:, 0]] = 0.0
            centers = arrange_class_centers(centers, distances)
        self.class_prior_means_ = centers

    def _initialize_net(self, X, y_encoded, sample_weight, n_classes, class_pairs, incremental):
        """Record what the network is built with (``setup_``), and build it (``net_``).

        The seed is drawn from ``random_state``: the weights, the shuffling
        and the sampling noise all come from generators seeded with it.
        With ``input_dropout="auto"`` the rule's noise is first checked on
        held-out rows where the data can spare them
        (:func:`~skvae._validation.check_input_dropout`).
        """
        device = resolve_device(self.device)
        check_precision(self.precision, device)
        seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        group = training_group(self.data_parallel, device)
        if group is not None:
            # random_state=None draws from each process's own global state.
            seed = group.broadcast_seed(seed)
        if self.input_dropout != "auto":
            self.input_dropout_ = self.input_dropout
        else:
            self.input_dropout_ = auto_input_dropout(X.shape[1])
        vars(self).pop("input_dropout_check_", None)  # a previous fit's
        self._record_setup(X.shape[1], n_classes, class_pairs, seed)
        if self._checks_noise(X, y_encoded, n_classes, incremental):
            # The pilots train quietly, each with its own copy of the user's callbacks.
            quiet = {**self._training_params(), "verbose": 0}

            def build(setup, callbacks):
                return build_net(setup, device, quiet, [*copy.deepcopy(list(self.callbacks or ())), *callbacks])

            rate, self.input_dropout_check_ = check_input_dropout(
                self.setup_, build, X, y_encoded, sample_weight, self.max_epochs_, self.validation_fraction
            )
            self.input_dropout_ = rate
            self.setup_ = dataclasses.replace(self.setup_, input_dropout=rate)
            if self.verbose and self.input_dropout_check_ is not None and is_main_process(self.data_parallel):
                accuracy = self.input_dropout_check_["validation_accuracy"]
                print(
                    f"input_dropout={rate}: the held-out head accuracy of pilot fits was {accuracy[0]:.3f} "
                    f"with the rule's {self.input_dropout_check_['input_dropout'][0]}, {accuracy[1]:.3f} "
                    f"without noise (z={self.input_dropout_check_['z']:.2f})"
                )
        self._build_net(device)

    def _checks_noise(self, X, y_encoded, n_classes, incremental):
        """Whether ``input_dropout="auto"`` checks the rule's noise on held-out rows."""
        # Fully labelled data in memory only: a semi-supervised fit's few
        # labels would decide by chance, a partial_fit epoch cannot pay for
        # pilots, and data read from disk is large enough for the rule.
        return (
            self.input_dropout == "auto"
            and not incremental
            and n_classes > 1
            and isinstance(X, np.ndarray)
            and bool((y_encoded >= 0).all())
            and len(y_encoded) >= MIN_VALIDATION_ROWS
            and stratifiable(y_encoded, self.validation_fraction * (1 - self.validation_fraction) * PILOT_ROW_SHARE)
        )

    def _holds_rows_out(self, y_encoded, incremental):
        """Whether this fit holds validation rows out: ``early_stopping`` resolved."""
        if self.early_stopping != "auto":
            return self.early_stopping
        # Labelled data only: the rows choose for the head. Not for a
        # semi-supervised fit (whose few labels the head needs), nor one
        # partial_fit epoch, nor data too small to spare a tenth.
        return (
            not incremental
            and y_encoded is not None
            and bool((y_encoded >= 0).all())
            and len(y_encoded) >= MIN_VALIDATION_ROWS
            and stratifiable(y_encoded, self.validation_fraction)
        )

    def _record_setup(self, n_features, n_classes, class_pairs, seed):
        """``setup_``: the parameters that shape the model and what the fit chose."""
        self.setup_ = fitted_setup(
            self._model_params(),
            n_features=n_features,
            n_classes=n_classes,
            input_dropout=self.input_dropout_,
            reconstruction=self.reconstruction_,
            class_prior_means=self.class_prior_means_,
            class_pairs=class_pairs,
            validation=self.early_stopping_,
            seed=seed,
        )
        self.image_shape_ = self.setup_.image_shape
        self.architecture_ = self.setup_.architecture

    def _build_net(self, device):
        """``net_``: a new, initialised net of ``setup_`` on ``device``."""
        self.net_ = build_net(self.setup_, device, self._training_params(), self.callbacks or ())

    def _encoded_class_neighbors(self):
        """``class_neighbors`` as checked, distinct class-index pairs (None without)."""
        if self.class_neighbors is None:
            return None
        if not hasattr(self, "classes_"):
            raise ValueError(
                "class_neighbors names classes whose regions must share a border, so it "
                "needs labels: fit with y, or set class_neighbors=None."
            )
        pairs = list(self.class_neighbors)
        if not all(isinstance(pair, (tuple, list, np.ndarray)) and len(pair) == 2 for pair in pairs):
            raise ValueError(
                f"class_neighbors must be a list of (label, label) pairs, e.g. [(0, 8)]; "
                f"got {self.class_neighbors!r}."
            )
        flat = [label for pair in pairs for label in pair]
        indices = encode_labels(self.classes_, flat, input_name="class_neighbors").reshape(-1, 2)
        same = indices[:, 0] == indices[:, 1]
        if same.any():
            raise ValueError(
                f"class_neighbors pairs a class with itself ({pairs[int(np.argmax(same))]!r}); "
                "each pair names two different classes."
            )
        indices = np.unique(np.sort(indices, axis=1), axis=0)
        check_class_neighbors(indices, self.n_components, self.classes_)
        return indices

    def _warn_unmet_neighbors(self):
        """Warn about requested pairs whose path between the class centroids
        the classifier gives to a third class somewhere."""
        pairs = self.setup_.class_pairs
        if pairs is None or not hasattr(self, "class_centroids_"):
            return
        t = np.linspace(0, 1, _BORDER_CHECK_POINTS)
        labels = self.classes_.tolist()
        unmet = []
        for a, b in pairs:
            path = segment_points(self.class_centroids_[a], self.class_centroids_[b], t)
            others = np.setdiff1d(latent_proba(self.net_, path, self.setup_.n_classes).argmax(axis=1), [a, b])
            if others.size:
                crossed = ", ".join(repr(labels[other]) for other in others)
                unmet.append(f"{labels[a]!r} and {labels[b]!r} crosses the region of {crossed}")
        if unmet:
            warnings.warn(
                f"class_neighbors not met: the straight path between the class centroids of "
                f"{'; '.join(unmet)}. Train longer (max_epochs), or ask for fewer pairs.",
                UserWarning,
            )

    def _train(self, X, y_encoded, sample_weight, epochs=None, *, partial=False, train=True):
        """Train ``net_`` (unless ``train`` is False) and set the fitted attributes that describe it."""
        try:
            if train:
                # y_encoded once more: the validation split stratifies by it.
                self.net_.partial_fit(batch_dataset(X, y_encoded, sample_weight), y_encoded, epochs=epochs)
        except DivergenceError as exc:
            self._hand_on_last_finite_model(exc, X, y_encoded, sample_weight, partial)
            raise
        self._set_trained_attributes(X, y_encoded, sample_weight, partial)
        if self.net_.interrupted_ or not train:
            n_epochs = len(self.history_)
            kept = (
                f"the weights of epoch {n_epochs}, the last finished one"
                if n_epochs
                else "its initial weights, as no epoch finished"
            )
            warnings.warn(
                f"Training was interrupted (KeyboardInterrupt); the model keeps "
                f"{kept}. Call fit with warm_start=True, or partial_fit, to continue "
                "training.",
                UserWarning,
            )

    def _hand_on_last_finite_model(self, exc, X, y_encoded, sample_weight, partial):
        """Set ``exc.last_finite_estimator``: a copy of this estimator with
        the net of the training on ``X`` that raised ``exc``, a
        :class:`DivergenceError`, which went back to the end of its last
        finished epoch (``_fit`` then undoes this estimator's call)."""
        last_finite = copy.copy(self)
        last_finite.net_ = copy.deepcopy(self.net_)
        try:
            check_forward_finite(last_finite.net_, X, self.setup_.n_components)
            last_finite._set_trained_attributes(X, y_encoded, sample_weight, partial)
        except ValueError as overflow:
            # Rows the network overflows on even at these weights: the data
            # are the cause, and no model of them is worth handing on.
            exc.args = (f"{exc.args[0]} {overflow}",)
            return
        n_epochs = len(last_finite.history_)
        kept = (
            f"the weights of epoch {n_epochs}, the last finished one"
            if n_epochs
            else "its initial weights, as no epoch finished"
        )
        exc.last_finite_estimator = last_finite
        exc.args = (
            f"{exc.args[0]} This {type(self).__name__} is left as it was before this call; "
            f"the error's last_finite_estimator is the model with {kept}.",
        )

    def _set_trained_attributes(self, X, y_encoded, sample_weight, partial):
        self.history_ = self.net_.history
        self._set_history_attributes()
        if y_encoded is None:
            for name in ("class_centroids_", "class_covariances_"):
                if hasattr(self, name):
                    delattr(self, name)
            return
        # partial_fit refits the class statistics only from data of every class.
        if partial and np.unique(y_encoded[y_encoded >= 0]).size < len(self.classes_):
            return
        self.class_centroids_, self.class_covariances_ = class_gaussians(
            latent_means(self.net_, X, self.setup_.n_components),
            y_encoded,
            len(self.classes_),
            sample_weight=sample_weight,
        )

    def _set_history_attributes(self):
        """MLPClassifier's fitted attributes, read from ``history_``: the one
        record of the training, which a warm start, ``partial_fit`` and
        ``load`` continue."""
        self.n_iter_ = len(self.history_)
        self.loss_curve_ = [float(loss) for loss in self.history_[:, "train_loss"]] if self.n_iter_ else []
        validated = self.early_stopping_ and self.n_iter_ > 0 and "valid_accuracy" in self.history_[-1]
        if validated:
            self.validation_scores_ = [float(v) for v in self.history_[:, "valid_accuracy"]]
            self.best_validation_score_ = max(self.validation_scores_)
        else:
            self.validation_scores_ = self.best_validation_score_ = None
        # As MLPClassifier's: None where validation rows judge the epochs instead.
        self.best_loss_ = None if self.early_stopping_ or not self.loss_curve_ else min(self.loss_curve_)

    def _training_params(self):
        """Parameters of ``net_`` that may change between warm-started fits (``_TRAINING_PARAMS``)."""
        params = {name: getattr(self, name) for name in _TRAINING_PARAMS}
        params["classification_weight"] = as_schedule(self.classification_weight)
        params["max_epochs"] = self.max_epochs_
        params["verbose"] = int(self.verbose)
        params["use_compiled_step"] = self.compile_
        params["data_parallel"] = self.data_parallel
        return params

    def _net_training_params(self):
        """The values of :meth:`_training_params` that ``net_`` has now."""
        return {name: getattr(self.net_, name) for name in (*_TRAINING_PARAMS, "use_compiled_step", "data_parallel")}

    # ---------------------------------------------------------- persistence

    def save(self, path):
        """Save the fitted model to one file that loads without running code.

        The file holds tensors (weights, optimizer and random state) and
        JSON text (parameters, fitted attributes, history); :meth:`load`
        reads it with ``torch.load(..., weights_only=True)``, so loading a
        file from someone else is safe. Unpickling, by contrast, runs code
        chosen by the file's author: pickle or joblib only files you trust.
        The loaded model gives bit-identical outputs and can continue
        training. See :mod:`skvae.persistence` for the format.

        Parameters without a plain-data form -- callbacks, a callable
        ``classification_weight``, a custom optimizer class, a
        ``RandomState`` -- are refused with a ``ValueError``: set them to a
        storable value with ``set_params`` first (``callbacks=None`` does not
        change the fitted model). So is a training history of more than
        about 30,000 batches, which :meth:`load` would refuse; the message
        says how to drop its per-batch records.

        Parameters
        ----------
        path : str, bytes or path-like
            File to write, in an existing folder (else a
            ``FileNotFoundError`` names the folder). It is written to a
            temporary file in the same folder, then renamed: a failed or
            interrupted save leaves an existing file at ``path`` intact, and
            the temporary file of a save that was killed is removed by the
            next save into the folder. Otherwise it is an ordinary write: a
            symlink is written through (the link stays), a new file gets the
            mode the umask allows, an existing file keeps its mode, and a
            read-only file is refused with a ``PermissionError``.

        Notes
        -----
        In a process group that the model trains over (``data_parallel``),
        every rank holds the same model and only rank 0 writes the file; the
        other ranks return without writing, and need
        ``torch.distributed.barrier()`` after ``save`` before they read it.
        """
        check_is_fitted(self)
        if not is_main_process(self.data_parallel):
            return
        split_seed = getattr(self.net_.train_split, "random_state", None)
        # The model as fitted: parameters changed by set_params since do not
        # describe it. Callbacks only act in training: not part of the model.
        fitted = {name: value for name, value in self.setup_.params.items() if name != "callbacks"}
        persistence.save(
            path,
            params={**self.get_params(deep=False), **fitted},
            attributes={
                name: value for name, value in vars(self).items() if name not in ("net_", "history_", "setup_")
            },
            training_state=self.net_.get_training_state(),
            split_seed=split_seed,
        )

    @classmethod
    def load(cls, path, *, device=None):
        """Load a model written by :meth:`save`, without running code from it.

        Only tensors and plain data are read (``torch.load`` with
        ``weights_only=True``), so files from others are safe to load --
        unlike pickle files, which can run any code when unpickled. A file
        whose tensors do not fit its parameters, or whose content exceeds
        the bounds of :mod:`skvae.persistence`, is refused before the
        network is built. The file's checksum detects damage, not
        forgery: a model from someone else predicts what its weights
        compute, right or wrong.

        Parameters
        ----------
        path : str, bytes or path-like
            File written by :meth:`save`.
        device : str or torch.device, default=None
            Device to put the model on. None means the saved ``device``
            parameter, or the CPU, with a warning, when that asks for CUDA
            and CUDA is not available here. A model whose ``precision``
            that device cannot run (e.g. ``"16-mixed"`` trained on a GPU,
            loaded on a CPU) is loaded with ``precision="32"``, with a
            warning.

        Returns
        -------
        estimator : DisentangledVAE
            The fitted model.

        Raises
        ------
        skvae.persistence.ModelFileError
            A ``ValueError``: the file is truncated, corrupted, of another
            format version, not a model file, or one whose tensors do not
            fit its parameters.
        FileNotFoundError
            There is no file at ``path``; the message names a missing folder.
        """
        saved = persistence.load(path)
        try:
            estimator = cls(**saved.params)
            estimator._validate_params()
            for name, value in saved.attributes.items():
                setattr(estimator, name, value)
        except (TypeError, ValueError) as exc:
            raise persistence.ModelFileError(
                f"{path} passes its checksum but does not describe a {cls.__name__} "
                f"this skvae can build: {persistence.describe_error(exc)}"
            ) from exc
        if device is not None:
            estimator.device = device
        elif str(estimator.device).startswith("cuda") and not torch.cuda.is_available():
            warnings.warn(
                f"{path} was saved with device={str(estimator.device)!r}, but CUDA is not "
                "available here; loading the model on the CPU (device='cpu').",
                UserWarning,
            )
            estimator.device = "cpu"
        torch_device = resolve_device(estimator.device)
        problem = precision_problem(estimator.precision, torch_device)
        if problem is not None:
            warnings.warn(
                f"{path} was saved with precision={estimator.precision!r}, but {problem}; "
                "loading the model with precision='32', whose outputs differ from the "
                "saved model's by the rounding of its precision.",
                UserWarning,
            )
            estimator.precision = "32"
        try:
            n_classes = len(estimator.classes_) if hasattr(estimator, "classes_") else 0
            estimator._record_setup(
                estimator.n_features_in_, n_classes, estimator._encoded_class_neighbors(), saved.split_seed or 0
            )
            # Before the network is allocated: a file cannot make it larger than its tensors.
            persistence.check_weights(saved.training_state, estimator.setup_)
            estimator._build_net(torch_device)
            estimator.net_.set_training_state(saved.training_state)
        except (KeyError, TypeError, ValueError, AttributeError, RuntimeError, OverflowError) as exc:
            raise persistence.ModelFileError(
                f"{path} passes its checksum but its weights do not fit the network its "
                f"parameters describe: {persistence.describe_error(exc)}"
            ) from exc
        estimator.history_ = estimator.net_.history
        # From the history: files of older versions lack them.
        estimator._set_history_attributes()
        return estimator

    # ------------------------------------------------------------ inference

    def transform(self, X, return_std=False):
        """Latent means of ``X``, and on request their standard deviations.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data; an ``np.memmap``, ``h5py.Dataset``, ``zarr.Array`` or
            dask array is read in blocks of rows, as :meth:`fit` reads it.
        return_std : bool, default=False
            Also return the standard deviations of the encoder's Gaussian
            (as :meth:`sklearn.gaussian_process.GaussianProcessRegressor.predict`
            does). Pipelines call ``transform(X)`` and get the means only.
            With :meth:`set_output`, the means come in the configured
            container and the standard deviations as an ndarray
            (scikit-learn wraps the first element of a tuple only).

        Returns
        -------
        Z : ndarray of shape (n_samples, n_components)
            Mean of the encoder's Gaussian for each sample; float32 for
            float32 ``X``, float64 otherwise (the network computes in
            float32 either way).
        Z_std : ndarray of shape (n_samples, n_components)
            Standard deviation of the encoder's Gaussian (its covariance is
            diagonal) for each sample and latent dimension, of ``Z``'s
            dtype; only with ``return_std=True``.
        """
        X = validate_rows(self, X)  # first: it raises NotFittedError before fit
        if not return_std:
            return latent_means(self.net_, X, self.setup_.n_components)
        Z, Z_std = latent_distribution(self.net_, X, self.setup_.n_components)
        return np.ascontiguousarray(Z), np.ascontiguousarray(Z_std)

    def score_samples(self, X, n_samples=100, random_state=0):
        """Importance-weighted estimate of the log-likelihood ``log p(x)`` of each row, in nats.

        The estimate is the IWAE bound of Burda et al. (2016) with the
        encoder's Gaussian ``q(z | x)`` as proposal:
        ``log(1/K * sum_k p(x | z_k) p(z_k) / q(z_k | x))`` over ``K =
        n_samples`` latent codes ``z_k`` drawn from ``q(z | x)``. Its
        expectation is a lower bound on ``log p(x)`` that rises to it as
        ``n_samples`` grows (``n_samples=1`` is a one-sample ELBO). Higher
        is more typical of the training data: ``-score_samples(X)`` is an
        outlier score, as for :class:`~sklearn.mixture.GaussianMixture`.

        The model is the one that training fits:

        - prior ``p(z)``: ``N(0, I)``, or with class anchoring
          (``class_prior_means_``) the mixture of the class priors
          ``N(class_prior_means_[k], I)`` with equal weights, as the class
          of ``x`` is not given (the uniform class prior with which
          semi-supervised training marginalises unknown classes). With
          ``kl="abs"``, whose penalty is not a KL divergence to any prior,
          the same Gaussian prior as ``kl="standard"``; ``beta`` does not
          enter (it weights the KL term in training, not the model).
        - observation model ``p(x | z)``, from ``reconstruction_``:
          ``"bce"``, independent Bernoulli pixels with probabilities
          ``inverse_transform(z)``: a log-probability for binary ``X``;
          for values between 0 and 1 the same formula, minus the binary
          cross-entropy, which is not normalised over [0, 1], so only
          comparisons on the same data mean something. ``"mse"``, the
          Gaussian ``N(inverse_transform(z), I / 2)``: the variance 1/2
          makes the summed squared error that training minimises its
          negative log-density up to a constant, so this is a proper
          log-density of ``X`` as given to the model (after any scaling in
          a pipeline).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data.
        n_samples : int, default=100
            Importance samples per row. The cost is that many decoder
            passes over ``X``. Likelihoods reported in papers use 5,000.
        random_state : int, RandomState instance or None, default=0
            Seeds the importance samples: with the default the result is
            the same at every call. Each row draws from a random stream
            keyed by its own values and the seed, so a row's score depends
            on the row and ``random_state`` only, not on its position or the
            rows that come with it, while different rows get independent
            draws (so the mean over many rows averages the sampling noise
            out). The draws for ``n_samples=k`` are the first ``k`` of those
            for any larger ``n_samples``.

        Returns
        -------
        log_likelihood : ndarray of shape (n_samples,)
            The estimate for each row, float64 (summed in float64 whatever
            the network's precision).
        """
        X = validate_rows(self, X)  # first: it raises NotFittedError before fit
        check_scalar(n_samples, "n_samples", Integral, min_val=1)
        seed = int(check_random_state(random_state).randint(np.iinfo(np.int32).max))
        net, n_components = self.net_, self.setup_.n_components

        def log_likelihood(block, keys):
            noise = row_noise(keys.cpu(), seed, n_samples, n_components, block.device)
            return net.criterion_.per_row_log_likelihood(net.module_, block, noise)

        return run_blocks(net, X, log_likelihood, 1, labels=row_keys(X), dtype=np.float64)[:, 0]

    def inverse_transform(self, X):
        """Decode latent points back to data space.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_components)
            Latent points, e.g. the output of :meth:`transform`.

        Returns
        -------
        X_original : ndarray of shape (n_samples, n_features_in_)
            Decoded data (in [0, 1] for ``reconstruction="bce"``); float32
            for float32 ``X``, float64 otherwise.
        """
        check_is_fitted(self)
        Z = check_array(X, dtype=[np.float64, np.float32], input_name="X")
        n_components = self.setup_.n_components
        if Z.shape[1] != n_components:
            raise ValueError(
                f"X has {Z.shape[1]} latent dimensions, but this DisentangledVAE "
                f"was fitted with n_components={n_components}; pass points of its latent "
                "space, e.g. the output of transform."
            )
        check_float32_range(Z)
        return run_blocks(self.net_, Z, self.net_.module_.decode, self.n_features_in_)

    @_needs_labels
    def predict_proba(self, X):
        """Class probabilities of the latent classifier at the latent means.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Probability of each class, in the order of ``classes_``.
        """
        Z = self.transform(X)  # first: it raises NotFittedError before fit
        return latent_proba(self.net_, Z, self.setup_.n_classes)

    @_needs_labels
    def predict(self, X):
        """Class labels from the latent classifier at the latent means.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            Predicted labels, from ``classes_``.
        """
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]

    def score(self, X, y=None, sample_weight=None):
        """Accuracy of :meth:`predict`, or the mean log-likelihood for a model without labels.

        A model fitted with labels scores the accuracy of its latent
        classifier on ``X`` against ``y``, as classifiers do. A model fitted
        without labels has no classifier: it scores the mean of
        :meth:`score_samples` (its defaults), as density models such as
        :class:`~sklearn.mixture.GaussianMixture` and
        :class:`~sklearn.decomposition.PCA` do, and ignores ``y``; a
        search over such models without ``scoring`` then picks the most
        likely model of the held-out data.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data.
        y : array-like of shape (n_samples,), default=None
            True labels; required for a model fitted with labels.
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the rows in the mean.

        Returns
        -------
        score : float
            Accuracy in [0, 1], or mean log-likelihood in nats.
        """
        check_is_fitted(self)
        if hasattr(self, "classes_"):
            if y is None:
                raise ValueError(
                    "This DisentangledVAE was fitted with labels, so score measures the "
                    "accuracy of its latent classifier and needs y; for the model's "
                    "log-likelihood use score_samples(X).mean()."
                )
            return super().score(X, y, sample_weight=sample_weight)
        log_likelihood = self.score_samples(X)
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, log_likelihood, ensure_non_negative=True)
        return float(np.average(log_likelihood, weights=sample_weight))

    def get_feature_names_out(self, input_features=None):
        """Names of the latent features: ``disentangledvae0``, ``disentangledvae1``...

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Only checked against ``feature_names_in_``.

        Returns
        -------
        feature_names_out : ndarray of str objects
        """
        check_is_fitted(self)
        return super().get_feature_names_out(input_features)

    # -------------------------------------------------------- class regions
    # The math lives in skvae.regions; these methods map labels and data rows
    # to latent points and run the torch parts.

    def sample(self, n_samples=None, y=None, random_state=None):
        """Decode random latent points of a class region, or of the prior.

        A fit with labels stores a Gaussian per class, fitted to the latent
        means of the class's training samples (``class_centroids_``,
        ``class_covariances_``); a class's samples are decoded draws from
        it. Without ``y`` the latent points are drawn from the VAE's prior
        N(0, I).

        Parameters
        ----------
        n_samples : int, default=None
            Number of samples. None means 1, or one per label when ``y`` is
            an array.
        y : class label or array-like of shape (n_samples,), default=None
            Class of the samples: one label for all of them or one label
            per sample. None draws from the prior.
        random_state : int, RandomState instance or None, default=None
            Seeds the latent draws. Pass an int for reproducible samples.

        Returns
        -------
        X : ndarray of shape (n_samples, n_features_in_)
            Decoded samples.
        y : ndarray of shape (n_samples,) or None
            Class of each sample, from ``classes_``; None for draws from the
            prior, which belong to no class.
        """
        check_is_fitted(self)
        rng = check_random_state(random_state)
        labels = None if y is None else np.asarray(y)
        if labels is not None and labels.ndim > 1:
            raise ValueError(
                f"y must be a class label or a 1-D array of labels; got an array of "
                f"shape {labels.shape}."
            )
        if labels is not None and labels.ndim == 1:
            if n_samples is not None and n_samples != len(labels):
                raise ValueError(
                    f"n_samples={n_samples} but y holds {len(labels)} labels; pass one "
                    "label per sample, or leave n_samples=None."
                )
            n_samples = len(labels)
        n_samples = 1 if n_samples is None else n_samples
        check_scalar(n_samples, "n_samples", Integral, min_val=1)
        if labels is None:
            return self.inverse_transform(rng.standard_normal((n_samples, self.setup_.n_components))), None
        indices = self._class_indices(np.broadcast_to(labels, (n_samples,)))
        centroids, covariances = self._class_regions()
        Z = sample_class_gaussians(centroids, covariances, indices, rng)
        return self.inverse_transform(Z), self.classes_[indices]

    def interpolate(self, a, b, n_steps=11):
        """Decode the straight latent path between two classes or data rows.

        Parameters
        ----------
        a, b : class label or array-like of shape (n_features_in_,)
            Ends of the path: a class label stands for the class centroid
            (``class_centroids_``), a data row for its latent mean.
        n_steps : int, default=11
            Number of points on the path, ends included; at least 2.

        Returns
        -------
        X_path : ndarray of shape (n_steps, n_features_in_)
            Decoded points, from ``a`` to ``b``.
        Z_path : ndarray of shape (n_steps, n_components)
            The latent points, equally spaced on the segment.
        """
        check_is_fitted(self)
        check_scalar(n_steps, "n_steps", Integral, min_val=2)
        z_a, z_b = self._latent_point(a, "a"), self._latent_point(b, "b")
        Z_path = segment_points(z_a, z_b, np.linspace(0, 1, n_steps))
        return self.inverse_transform(Z_path), Z_path

    @_needs_labels
    def class_border(self, a, b, *, tol=1e-6):
        """Where the latent classifier switches from class ``a`` to class ``b``.

        Searches the straight segment from the centroid of ``a`` to the
        centroid of ``b`` for the first point where the classifier gives
        both classes the same probability (bisection on
        ``p(a) - p(b)``, see :func:`skvae.regions.find_sign_change`).

        Another class may win there, when the segment crosses its region
        on the way: the point is still returned, with
        ``other_class_wins=True`` and that class's probability in
        ``max_other_proba``.

        Parameters
        ----------
        a, b : class label
            Two different labels from ``classes_``.
        tol : float, default=1e-6
            Precision of the point, as a fraction of the segment's length.

        Returns
        -------
        border : :class:`~sklearn.utils.Bunch`
            Dictionary-like object with attributes:

            latent_point : ndarray of shape (n_components,)
                The border point in latent space.
            decoded : ndarray of shape (n_features_in_,)
                The border point decoded.
            proba : ndarray of shape (n_classes,)
                The classifier's probabilities there, in the order of
                ``classes_``.
            t : float
                Position on the segment: 0 at the centroid of ``a``, 1 at
                the centroid of ``b``.
            max_other_proba : float
                Largest probability of a class other than ``a`` and ``b``
                (0 for a two-class model).
            other_class_wins : bool
                True when that class is more probable than ``a`` and ``b``,
                so the point is not on the border of the regions of ``a``
                and ``b``.

        Raises
        ------
        ValueError
            If ``p(a) - p(b)`` does not change sign along the segment: the
            classifier does not prefer ``a`` at one end and ``b`` at the
            other, so there is no border to find.
        """
        check_is_fitted(self)
        check_scalar(tol, "tol", Real, min_val=0, include_boundaries="neither")
        index_a, index_b = self._class_indices([a, b])
        if index_a == index_b:
            raise ValueError(f"a and b must be two different classes; got {a!r} twice.")
        z_a, z_b = self._class_regions()[0][[index_a, index_b]]

        def proba_difference(t):
            proba = latent_proba(self.net_, segment_points(z_a, z_b, t), self.setup_.n_classes)
            return proba[:, index_a] - proba[:, index_b]

        t = find_sign_change(proba_difference, tol=tol)
        if t is None:
            name_a, name_b = self.classes_[[index_a, index_b]].tolist()
            at_a, at_b = proba_difference(np.array([0.0, 1.0]))
            raise ValueError(
                f"The latent classifier never gives classes {name_a!r} and {name_b!r} "
                f"the same probability between their centroids: p({name_a!r}) - "
                f"p({name_b!r}) goes from {at_a:+.3g} to {at_b:+.3g} without changing "
                "sign. The head does not separate these classes along this path; "
                "train longer or pick another pair."
            )
        latent_point = segment_points(z_a, z_b, [t])
        proba = latent_proba(self.net_, latent_point, self.setup_.n_classes)[0]
        max_other_proba = float(np.delete(proba, [index_a, index_b]).max(initial=0.0))
        return Bunch(
            latent_point=latent_point[0],
            decoded=self.inverse_transform(latent_point)[0],
            proba=proba,
            t=t,
            max_other_proba=max_other_proba,
            other_class_wins=bool(max_other_proba > max(proba[index_a], proba[index_b])),
        )

    def _class_indices(self, labels):
        """Indices in ``classes_`` of the given class labels."""
        if not hasattr(self, "classes_"):
            raise ValueError(
                f"This DisentangledVAE was fitted without labels, so it has no class "
                f"regions and no class label means anything to it (got "
                f"{np.asarray(labels).tolist()!r}). Fit it with y, pass data rows "
                "instead of labels, or sample from the prior with y=None."
            )
        return encode_labels(self.classes_, labels, input_name="the given labels").astype(np.intp)

    def _class_regions(self):
        """``(class_centroids_, class_covariances_)``, or a clear error without them."""
        if not hasattr(self, "class_centroids_"):
            raise ValueError(
                "This DisentangledVAE has no class regions yet: they are estimated from "
                "a training call whose y holds every class, and no partial_fit call so "
                f"far had samples of all of {self.classes_.tolist()!r}. Call partial_fit "
                "with data of every class (or fit) first."
            )
        return self.class_centroids_, self.class_covariances_

    def _latent_point(self, value, name):
        """Latent point of a class label (its centroid) or a data row (its mean)."""
        if np.ndim(value) == 0:
            index = self._class_indices([value])[0]
            return self._class_regions()[0][index]
        rows = check_array(np.atleast_2d(value), dtype=[np.float64, np.float32], input_name=name)
        if rows.shape != (1, self.n_features_in_):
            raise ValueError(
                f"{name} must be a class label or one data row of {self.n_features_in_} "
                f"features; got an array of shape {np.shape(value)}."
            )
        check_float32_range(rows, name)
        return latent_means(self.net_, rows, self.setup_.n_components)[0]

    @property
    def _n_features_out(self):
        # Absent before fit, so that get_feature_names_out raises NotFittedError.
        if not hasattr(self, "setup_"):
            raise AttributeError("_n_features_out")
        return self.setup_.n_components

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = False
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags
