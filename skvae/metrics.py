"""Scorers for tuning a :class:`~skvae.DisentangledVAE`.

Tuning the classification-weight schedule trades the head's accuracy
against how well the model reconstructs and how cleanly the classes sit in
the latent space. These scikit-learn scorers measure the other side of that
trade, all with the convention *greater is better*:

* :data:`reconstruction_scorer` -- minus the mean squared error per feature
  of ``inverse_transform(transform(X))``;
* :data:`silhouette_scorer` -- silhouette of the latent means ``transform(X)``
  labelled with ``y`` (in ``[-1, 1]``; needs labels);
* :data:`elbo_scorer` -- minus the model's own training loss per sample
  without the classification term (reconstruction + ``beta`` * KL, the
  negative ELBO for ``reconstruction="bce"``), evaluated at the latent
  means, so the score has no sampling noise;
* the head's accuracy is scikit-learn's ``"accuracy"`` scorer.

Each scorer is a callable ``scorer(estimator, X, y)``. The estimator may be
a :class:`~skvae.DisentangledVAE` or a :class:`~sklearn.pipeline.Pipeline`
whose last step is one: ``X`` is then passed through the preceding steps
first and the error is measured in the space the VAE sees (e.g. after a
``MinMaxScaler``).

Recipe: tune the schedule for accuracy while watching reconstruction and
class separation, and refit the best model by one of them::

    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import MinMaxScaler
    from skvae import DisentangledVAE
    from skvae.metrics import elbo_scorer, reconstruction_scorer, silhouette_scorer

    pipe = make_pipeline(MinMaxScaler(), DisentangledVAE(random_state=0))
    grid = {
        "disentangledvae__classification_weight__end": [0.01, 1.0, 10.0],
        "disentangledvae__reconstruction": ["mse", "bce"],
    }
    search = GridSearchCV(
        pipe,
        grid,
        scoring={
            "accuracy": "accuracy",
            "reconstruction": reconstruction_scorer,
            "silhouette": silhouette_scorer,
            "elbo": elbo_scorer,
        },
        refit="accuracy",
        cv=3,
    ).fit(X, y)
    search.cv_results_["mean_test_reconstruction"]

To pick a compromise rather than the best of one score, pass a callable as
``refit`` that reads ``cv_results_`` (e.g. the most accurate candidate
whose reconstruction is within 5% of the best).
"""

from numbers import Integral

import numpy as np
import torch
from sklearn.metrics import silhouette_score
from sklearn.utils import check_consistent_length, check_scalar, column_or_1d
from sklearn.utils.validation import check_is_fitted

from ._inference import latent_means, run_blocks, validate_rows
from ._labels import UNLABELED, encode_labels

__all__ = [
    "elbo_scorer",
    "latent_estimator",
    "make_elbo_scorer",
    "make_silhouette_scorer",
    "reconstruction_scorer",
    "silhouette_scorer",
]


def latent_estimator(estimator, X):
    """The fitted DisentangledVAE inside ``estimator`` and ``X`` in its input space.

    Parameters
    ----------
    estimator : DisentangledVAE or Pipeline
        A fitted VAE, or a fitted pipeline whose last step is one; the
        pipeline's preceding steps transform ``X``.
    X : array-like of shape (n_samples, n_features)
        Data, as given to ``estimator``.

    Returns
    -------
    vae : DisentangledVAE
        The fitted final estimator.
    Xt : ndarray of shape (n_samples, vae.n_features_in_)
        ``X`` as the VAE sees it, validated as the VAE's own methods
        validate their input.
    """
    if hasattr(estimator, "steps"):
        Xt = estimator[:-1].transform(X) if len(estimator.steps) > 1 else X
        vae = estimator.steps[-1][1]
    else:
        Xt, vae = X, estimator
    check_is_fitted(vae)
    if not hasattr(vae, "net_"):
        raise TypeError(
            f"The scorers of skvae.metrics need a fitted DisentangledVAE, or a "
            f"Pipeline ending with one; got {type(vae).__name__}."
        )
    return vae, validate_rows(vae, Xt)


def _check_labels(y, X, scorer):
    if y is None:
        raise ValueError(f"the {scorer} scorer needs class labels y.")
    y = column_or_1d(y, warn=True)
    check_consistent_length(X, y)
    return y


def reconstruction_scorer(estimator, X, y=None):
    """Minus the mean squared error of ``inverse_transform(transform(X))``.

    The error is averaged over samples and features, in the space the VAE
    sees. Greater is better; a perfect reconstruction scores 0.
    """
    vae, Xt = latent_estimator(estimator, X)
    X_rec = vae.inverse_transform(latent_means(vae.net_, Xt, vae.setup_.n_components))
    return -float(np.mean((X_rec - Xt) ** 2, dtype=np.float64))


def make_silhouette_scorer(*, metric="euclidean", sample_size=None, random_state=0):
    """A scorer: silhouette of the latent means labelled with ``y``.

    Parameters
    ----------
    metric : str, default="euclidean"
        Distance in the latent space, passed to
        :func:`sklearn.metrics.silhouette_score`.
    sample_size : int, default=None
        Score a random subset of this many samples (the silhouette costs
        O(n_samples**2)); None uses all.
    random_state : int, default=0
        Seed of the subset.

    Returns
    -------
    scorer : callable ``scorer(estimator, X, y) -> float``
        0 when ``y`` holds a single class, for which the silhouette is
        undefined.
    """
    if sample_size is not None:
        check_scalar(sample_size, "sample_size", Integral, min_val=2)

    def silhouette(estimator, X, y):
        vae, Xt = latent_estimator(estimator, X)
        y = _check_labels(y, Xt, "silhouette")
        Z = latent_means(vae.net_, Xt, vae.setup_.n_components)
        if len(np.unique(y)) < 2:
            return 0.0
        size = sample_size if sample_size is not None and sample_size < len(Z) else None
        return float(silhouette_score(Z, y, metric=metric, sample_size=size, random_state=random_state))

    return silhouette


def make_elbo_scorer(*, n_samples=0, random_state=0):
    """A scorer: minus the model's own loss per sample, without the head.

    The loss is the estimator's reconstruction term plus ``beta`` times
    its KL term, exactly as in training (same ``reconstruction`` and ``kl``
    variants; with class anchoring the prior of a labelled sample is its
    class's prior, so pass ``y`` to score that, or ``y=None`` for the
    ``N(0, I)`` prior). For ``reconstruction="bce"`` and ``kl="standard"``
    without anchoring this is the ELBO per sample; for the other variants
    it is the negative training objective. It runs through the same
    fixed-size blocks as ``transform``, so a row's term does not depend on
    the rows scored with it.

    Parameters
    ----------
    n_samples : int, default=0
        0 decodes the latent mean (no sampling noise); a positive number
        averages the reconstruction over that many latent samples, drawn
        with ``random_state`` so that the score is reproducible.
    random_state : int, default=0
        Seed of the latent samples when ``n_samples > 0``.

    Returns
    -------
    scorer : callable ``scorer(estimator, X, y=None) -> float``
        ``y`` must hold classes of the model (``unlabeled_label`` marks
        samples scored with the ``N(0, I)`` prior).
    """
    check_scalar(n_samples, "n_samples", Integral, min_val=0)
    check_scalar(random_state, "random_state", Integral)

    def elbo(estimator, X, y=None):
        vae, Xt = latent_estimator(estimator, X)
        classes = getattr(vae, "classes_", None)
        if y is None or classes is None:
            codes = np.full(len(Xt), UNLABELED, dtype=np.int64)
        else:
            y = _check_labels(y, Xt, "elbo")
            codes = encode_labels(classes, y, unlabeled_label=vae.unlabeled_label)
        net = vae.net_
        generator = torch.Generator(device=net.device).manual_seed(int(random_state))

        def loss_per_row(block, block_codes):
            return net.criterion_.per_row_loss(net.module_, block, block_codes, n_samples=n_samples, generator=generator)

        losses = run_blocks(vae.net_, Xt, loss_per_row, 1, labels=codes)
        return -float(losses.astype(np.float64).mean())

    return elbo


#: Silhouette of the latent means (all samples, euclidean); see
#: :func:`make_silhouette_scorer`.
silhouette_scorer = make_silhouette_scorer()

#: Minus the loss per sample at the latent means; see :func:`make_elbo_scorer`.
elbo_scorer = make_elbo_scorer()
