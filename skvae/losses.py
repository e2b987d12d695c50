"""Loss terms of the disentangled VAE.

Every term is summed over features (or latent dimensions) and averaged over
the samples of a batch, as in the original experiment, so that the weights
of the terms mean the same thing for any batch size. With sample weights
(``fit(..., sample_weight=...)``) each average is weighted: the sum of
weight times term over the rows it averages, divided by their weights' sum,
as scikit-learn's ``MLPClassifier`` does per batch. A batch that holds every
row of the data (``batch_size >= n_samples``) thus gives rows of integer
weight the loss and gradients of as many copies of them, and rows of weight
0 those of data without them.
"""

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

#: Weight of :func:`border_loss` relative to the classification weight.
#: With the current defaults (input_dropout=0.2, at least 1,000 steps),
#: asking for a border between 0 and 8 in 2-D, seeds 0-2 on digits and on
#: MNIST: 0.5 met it on 4 of 6 fits, 1 on 5, 2 on all 6, at a head accuracy
#: of 0.947 / 0.948 against 0.956 / 0.947 without the request
#: (``benchmarks/RESULTS.md``, "Borders on request").
BORDER_WEIGHT = 2.0

#: Points drawn on each requested path per training step.
N_BORDER_POINTS = 16

#: Neighbours of a sample in the graph of :func:`propagate_labels`. On
#: digits (8-D, seeds 0-8) and MNIST (3 seeds), 7 gave the head a better
#: accuracy than 10 with 1% and 10% labels (``benchmarks/SEMI_SUPERVISED.md``).
PROPAGATION_NEIGHBORS = 7

__all__ = [
    "DisentangledVAELoss",
    "border_loss",
    "class_balance_loss",
    "classification_loss",
    "kl_divergence",
    "observation_log_likelihood",
    "prior_log_density",
    "propagate_labels",
    "pseudo_labels",
    "reconstruction_loss",
    "weighted_mean",
]


#: Whether torch.compile is tracing the caller (always False before torch 2.3,
#: whose compiler then breaks its graph where the eager code branches on data).
_is_compiling = getattr(torch.compiler, "is_compiling", lambda: False)


def weighted_mean(values, sample_weight=None):
    """Mean of the rows of ``values`` (over its first dimension), weighted.

    ``sum(sample_weight * values) / sum(sample_weight)`` over the rows; the
    plain mean when ``sample_weight`` (one weight per row) is None, and 0,
    with zero gradient, when every weight is 0: the rows then do not count.
    """
    if sample_weight is None:
        return values.mean(dim=0)
    total = sample_weight.sum().clamp(min=torch.finfo(sample_weight.dtype).tiny)
    weights = sample_weight.reshape(-1, *([1] * (values.dim() - 1)))
    return (weights * values).sum(dim=0) / total


def reconstruction_loss(output, X, kind="mse", reduction="mean"):
    """Reconstruction error per sample, averaged over the batch.

    Parameters
    ----------
    output : Tensor of shape (n_samples, n_features)
        Decoder output: the reconstruction for ``"mse"``, logits for ``"bce"``.
    X : Tensor of shape (n_samples, n_features)
        The data.
    kind : {"mse", "bce"}
        Squared error summed over features, or binary cross-entropy summed
        over features (``X`` in [0, 1]).
    reduction : {"mean", "none"}, default="mean"
        Average over the batch, or one value per sample.
    """
    if kind == "mse":
        per_feature = (output - X) ** 2
    elif kind == "bce":
        per_feature = F.binary_cross_entropy_with_logits(output, X, reduction="none")
    else:
        raise ValueError(f"Unknown reconstruction loss {kind!r}; use 'mse' or 'bce'.")
    per_sample = per_feature.sum(dim=1)
    return per_sample.mean() if reduction == "mean" else per_sample


def observation_log_likelihood(output, X, kind):
    """``log p(x | z)`` of each row under the observation model of the reconstruction term.

    The reconstruction term is this log-likelihood negated, up to a
    constant: ``"bce"`` is the Bernoulli model ``x_j ~ Bernoulli(sigmoid(output_j))``,
    whose log-probability is exactly minus the summed binary cross-entropy
    (a log-probability mass for binary ``X``; for values strictly between
    0 and 1 the same expression, not normalised over [0, 1]); ``"mse"`` is
    the Gaussian ``x ~ N(output, I / 2)``, the variance that makes the
    summed squared error its negative log-density up to
    ``n_features / 2 * log(pi)``, which is added here.

    Parameters
    ----------
    output : Tensor of shape (n_samples, n_features)
        Decoder output: logits for ``"bce"``, the mean for ``"mse"``.
    X : Tensor of shape (n_samples, n_features)
        The data, of ``output``'s dtype.
    kind : {"mse", "bce"}
        The reconstruction term.

    Returns
    -------
    log_likelihood : Tensor of shape (n_samples,)
    """
    log_likelihood = -reconstruction_loss(output, X, kind, reduction="none")
    if kind == "mse":
        log_likelihood = log_likelihood - 0.5 * X.shape[1] * math.log(math.pi)
    return log_likelihood


def prior_log_density(z, centers=None):
    """``log p(z)`` of the prior whose KL term :func:`kl_divergence` computes.

    ``N(0, I)`` without class centres; with them, the mixture of the class
    priors ``N(centers[k], I)`` with equal weights, the prior of a sample
    whose class is unknown (the uniform class prior of
    :meth:`DisentangledVAELoss.marginal_kl`).

    Parameters
    ----------
    z : Tensor of shape (n_samples, n_components)
        Latent points.
    centers : Tensor of shape (n_classes, n_components), default=None
        The class centres, of ``z``'s dtype; None is the origin alone.

    Returns
    -------
    log_density : Tensor of shape (n_samples,)
    """
    normaliser = 0.5 * z.shape[1] * math.log(2 * math.pi)
    if centers is None:
        return -0.5 * (z**2).sum(dim=1) - normaliser
    squared = ((z.unsqueeze(1) - centers.unsqueeze(0)) ** 2).sum(dim=2)
    return torch.logsumexp(-0.5 * squared, dim=1) - math.log(len(centers)) - normaliser


def kl_divergence(mu, logvar, kind="standard", center=None, reduction="mean"):
    """KL term between the encoder's Gaussian and a unit-variance Gaussian prior.

    ``"standard"`` (default, as the estimator's ``kl``) is the KL divergence
    ``-0.5 * sum(1 + logvar - (mu - c)**2 - exp(logvar))`` to a prior
    ``N(c, I)``, ``c = 0`` unless ``center`` is given. ``"abs"`` replaces
    ``(mu - c)**2`` by ``|mu - c|``: a linear pull toward the centre, so
    class means far from it are not shrunk quadratically once the
    classifier stops holding them apart.

    Parameters
    ----------
    mu, logvar : Tensor of shape (n_samples, n_components)
        The encoder's Gaussian.
    kind : {"standard", "abs"}, default="standard"
        Variant of the mean term.
    center : Tensor of shape (n_samples, n_components), default=None
        Mean of each sample's prior (e.g. its class centre); None is the
        origin.
    reduction : {"mean", "none"}, default="mean"
        Average over the batch, or one value per sample.
    """
    offset = mu if center is None else mu - center
    if kind == "standard":
        mean_term = offset**2
    elif kind == "abs":
        mean_term = offset.abs()
    else:
        raise ValueError(f"Unknown KL variant {kind!r}; use 'standard' or 'abs'.")
    per_sample = (-0.5 * (1 + logvar - mean_term - logvar.exp())).sum(dim=1)
    return per_sample.mean() if reduction == "mean" else per_sample


def classification_loss(logits, y, sample_weight=None):
    """Cross-entropy of the latent classifier on the labelled samples.

    Samples with ``y < 0`` are unlabelled and ignored; a batch without any
    labelled sample gives zero. ``sample_weight`` (one per sample, or None)
    weights the mean over the labelled samples.
    """
    labelled = y >= 0
    if logits is not None and _is_compiling():
        # The same value without the masks' data-dependent shapes, at which
        # compiled code would break its graph: unlabelled rows weigh 0, and
        # a batch without labelled rows gives 0 (see weighted_mean).
        weights = labelled.to(logits.dtype) if sample_weight is None else sample_weight * labelled
        per_sample = F.cross_entropy(logits, y.clamp(min=0), reduction="none")
        return weighted_mean(per_sample, weights)
    if logits is None or not bool(labelled.any()):
        return torch.zeros((), device=y.device)
    if sample_weight is None:
        return F.cross_entropy(logits[labelled], y[labelled])
    per_sample = F.cross_entropy(logits[labelled], y[labelled], reduction="none")
    return weighted_mean(per_sample, sample_weight[labelled])


def border_loss(classifier, mu, y, class_pairs, t, sample_weight=None):
    """How much the latent classifier sees other classes between class pairs.

    For each pair ``(a, b)`` of ``class_pairs`` whose two classes are both
    in the batch, the points at fractions ``t`` of the straight path from
    the batch's mean code of ``a`` to that of ``b`` should belong to ``a``
    or ``b`` only: the term is ``-log(p(a) + p(b))`` averaged over the
    points, summed over the pairs. Its gradient moves the codes of the two
    classes side by side, with no third class between them; the head's
    weights get none, as a head taught to claim the path for ``a`` and
    ``b`` would draw a corridor of the two across the latent space and cut
    the borders of the classes on either side (digits, 2-D, six seeds: the
    share of pairs that share a border fell from 0.315 to 0.270 with the
    head trained, to 0.300 without).

    Parameters
    ----------
    classifier : nn.Module
        The latent classifier, latent codes to logits.
    mu : Tensor of shape (n_samples, n_components)
        The encoder's means.
    y : Tensor of shape (n_samples,)
        Class indices, negative for unlabelled samples.
    class_pairs : Tensor of shape (n_pairs, 2)
        Class indices of the pairs that must share a border.
    t : Tensor of shape (n_points, 1)
        Fractions of the path, in [0, 1].
    sample_weight : Tensor of shape (n_samples,), default=None
        Weights of the samples in the class means; a class whose samples
        all weigh 0 counts as absent from the batch.
    """
    frozen = {name: weight.detach() for name, weight in classifier.named_parameters()}
    total = torch.zeros((), device=mu.device)
    if sample_weight is not None:
        # A row of weight 0 is no row of its class.
        y = torch.where(sample_weight > 0, y, -1)
    for a, b in class_pairs.tolist():
        in_a, in_b = y == a, y == b
        if not (bool(in_a.any()) and bool(in_b.any())):
            continue
        weights_a, weights_b = (None, None) if sample_weight is None else (sample_weight[in_a], sample_weight[in_b])
        start, stop = weighted_mean(mu[in_a], weights_a), weighted_mean(mu[in_b], weights_b)
        logits = torch.func.functional_call(classifier, frozen, (start + t * (stop - start),)).float()
        total = total + (torch.logsumexp(logits, dim=1) - torch.logsumexp(logits[:, [a, b]], dim=1)).mean()
    return total


def pseudo_labels(teacher_logits, y, threshold):
    """Confident predictions of the head on the unlabelled samples.

    Parameters
    ----------
    teacher_logits : Tensor of shape (n_samples, n_classes)
        The head's logits at the latent means (no sampling noise), without
        gradient: the weakly perturbed view of each sample.
    y : Tensor of shape (n_samples,)
        Class indices, ``-1`` for an unlabelled sample.
    threshold : float
        Smallest probability of the predicted class that makes it a
        pseudo-label.

    Returns
    -------
    pseudo : Tensor of shape (n_samples,)
        The predicted class of every unlabelled sample whose top probability
        reaches ``threshold``, and -1 for the others and for labelled
        samples.
    """
    confidence, predicted = torch.softmax(teacher_logits, dim=1).max(dim=1)
    return torch.where((y < 0) & (confidence >= threshold), predicted, torch.full_like(y, -1))


def propagate_labels(X, y, n_classes, n_neighbors=PROPAGATION_NEIGHBORS, alpha=0.99, n_iter=30, sample_weight=None):
    """Spread the labels of some samples to all over their kNN graph.

    Label spreading (Zhou et al., 2004) as Iscen et al. (2019) use it for
    deep semi-supervised learning: the ``n_neighbors``-nearest-neighbour
    graph of ``X`` (Euclidean), with edge weights ``exp(-d**2 / s)`` (``s``
    the mean squared neighbour distance), symmetrised and normalised to
    ``S = D**-1/2 W D**-1/2``; then ``n_iter`` iterations of
    ``F <- alpha * S @ F + (1 - alpha) * Y`` from the one-hot labels ``Y``.
    Each class's scores are then scaled to sum to its share of the labels
    (class mass normalisation, Zhu et al., 2003), so that a class whose
    labelled samples lie in a dense region does not take over its
    neighbours'. With ``sample_weight`` a class's share is that of the
    labelled samples' weights.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        The samples: an ndarray, or rows read a block at a time by slices
        (a :class:`numpy.memmap`, :class:`~skvae._arrays.BlockRows`). The
        neighbours are found without a copy of ``X``
        (:func:`~skvae._neighbors.nearest_neighbors`), so that the memory
        besides ``X`` grows as ``n_samples * n_neighbors``: exactly, in
        blocks, or, from ``APPROXIMATE_FROM`` (200,000) rows of an ndarray or
        memmap, approximately, among the rows of nearby k-means cells.
    y : ndarray of shape (n_samples,)
        Class indices, negative for unlabelled samples.
    n_classes : int
        Number of classes.
    n_neighbors : int, default=PROPAGATION_NEIGHBORS
        Neighbours of each sample in the graph.
    alpha : float, default=0.99
        Share of a sample's score that comes from its neighbours.
    n_iter : int, default=30
        Iterations of the spreading.
    sample_weight : ndarray of shape (n_samples,), default=None
        Weight of each sample in the class shares; None weighs each 1.

    Returns
    -------
    labels : ndarray of shape (n_samples,)
        The class of highest score of every sample.
    certainty : ndarray of shape (n_samples,)
        ``1 - H(p) / log(n_classes)``, ``p`` the sample's normalised scores:
        1 for a sample that one class alone reaches, 0 for one that no
        class or every class alike reaches.
    """
    from scipy import sparse

    from ._neighbors import nearest_neighbors

    y = np.asarray(y)
    n = len(X)
    k = min(n_neighbors, n - 1)
    distances, neighbors = nearest_neighbors(X, k + 1)
    # The first neighbour of a sample is itself (or a duplicate of it).
    distances, neighbors = distances[:, 1:], neighbors[:, 1:]
    scale = max(float(np.mean(distances**2)), 1e-12)
    weights = np.exp(-(distances**2) / scale).ravel()
    W = sparse.csr_matrix((weights, (np.repeat(np.arange(n), k), neighbors.ravel())), shape=(n, n))
    W = W + W.T
    d = 1 / np.sqrt(np.maximum(np.asarray(W.sum(axis=1)).ravel(), 1e-12))
    S = sparse.diags(d) @ W @ sparse.diags(d)
    labelled = y >= 0
    Y = np.zeros((n, n_classes))
    Y[labelled, y[labelled]] = 1
    scores = Y.copy()
    for _ in range(n_iter):
        scores = alpha * (S @ scores) + (1 - alpha) * Y
    weights = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)[labelled]
    counts = np.bincount(y[labelled], weights=weights, minlength=n_classes)
    prior = counts / max(counts.sum(), np.finfo(np.float64).tiny)
    scores = scores / np.maximum(scores.sum(axis=0, keepdims=True), 1e-12) * prior
    total = scores.sum(axis=1, keepdims=True)
    p = np.where(total > 0, scores / np.where(total > 0, total, 1), 1 / n_classes)
    entropy = -(p * np.log(np.clip(p, 1e-12, None))).sum(axis=1)
    certainty = np.clip(1 - entropy / np.log(n_classes), 0, 1) if n_classes > 1 else np.ones(n)
    return p.argmax(axis=1), certainty


def class_balance_loss(logits, y, sample_weight=None):
    """KL divergence of the labelled rows' class frequencies from the head's
    mean prediction on the unlabelled rows of a batch.

    Without it, a head that learns from its own predictions can give every
    unlabelled sample one class. The frequencies are counted with one extra
    sample per class, so that a class missing from a batch's labelled rows
    is not forbidden. With ``sample_weight`` the rows count by their
    weights, in the frequencies and in the mean prediction (the extra
    sample weighs 1, as a row of weight 1 does); when the unlabelled rows
    all weigh 0 the term is 0.
    """
    n_classes = logits.shape[1]
    labelled, unlabelled = y >= 0, y < 0
    weights = None if sample_weight is None else sample_weight[labelled]
    counts = torch.bincount(y[labelled], weights=weights, minlength=n_classes).float() + 1
    target = counts / counts.sum()
    unlabelled_weight = None if sample_weight is None else sample_weight[unlabelled]
    if unlabelled_weight is not None and not bool((unlabelled_weight > 0).any()):
        return torch.zeros((), device=logits.device)
    mean_q = weighted_mean(torch.softmax(logits[unlabelled], dim=1), unlabelled_weight)
    return (target * (target.log() - mean_q.clamp(min=1e-8).log())).sum()


class DisentangledVAELoss(nn.Module):
    """Weighted sum of reconstruction, KL and latent-classification losses.

    Parameters
    ----------
    reconstruction : {"mse", "bce"}, default="mse"
        Reconstruction term, see :func:`reconstruction_loss`.
    kl : {"standard", "abs"}, default="standard"
        KL variant, see :func:`kl_divergence`; the estimator's default too.
    beta : float, default=1.0
        Weight of the KL term.
    centers : array-like of shape (n_classes, n_components), default=None
        Class-mean anchoring: each labelled sample's prior is
        ``N(centers[y], I)`` (see :func:`skvae.centers.class_centers` and
        :func:`skvae.centers.arrange_class_centers`). Unlabelled samples,
        and every sample when None, keep the ``N(0, I)`` prior.
    class_pairs : array-like of shape (n_pairs, 2), default=None
        Class indices of pairs that must share a border: adds
        :func:`border_loss`, weighted :data:`BORDER_WEIGHT` times the
        classification weight. None adds nothing.
    """

    def __init__(self, reconstruction="mse", kl="standard", beta=1.0, centers=None, class_pairs=None):
        super().__init__()
        self.reconstruction = reconstruction
        self.kl = kl
        self.beta = beta
        # Buffers, so that moving the criterion to a device moves the centres
        # once instead of on every training step.
        self.register_buffer(
            "centers", None if centers is None else torch.tensor(np.asarray(centers), dtype=torch.float32)
        )
        self.register_buffer(
            "class_pairs", None if class_pairs is None else torch.tensor(np.asarray(class_pairs), dtype=torch.long)
        )

    def prior_means(self, mu, y):
        """Mean of each sample's prior: its class centre, or 0 when unlabelled.

        None when every prior is ``N(0, I)`` (no anchoring).
        """
        if self.centers is None:
            return None
        centers = self.centers.to(mu.device)
        labelled = (y >= 0).unsqueeze(1)
        return torch.where(labelled, centers[y.clamp(min=0)], torch.zeros_like(mu))

    def marginal_kl(self, mu, logvar, logits, y, sample_weight=None):
        """KL term with the class of unlabelled samples marginalised out.

        A labelled sample's KL is to its class's prior; an unlabelled
        sample's is the head's expectation of the KL to each class's prior
        minus the entropy of the head's prediction (M2, Kingma et al. 2014,
        with a uniform class prior): the head learns which class region the
        code lies in, and the code moves toward the classes the head
        predicts. ``sample_weight`` weights the mean over the batch.
        """
        centers = self.centers.to(mu.device)
        n_samples, n_classes = len(mu), len(centers)
        per_class = kl_divergence(
            mu.repeat_interleave(n_classes, 0),
            logvar.repeat_interleave(n_classes, 0),
            self.kl,
            center=centers.repeat(n_samples, 1),
            reduction="none",
        ).view(n_samples, n_classes)
        log_q = torch.log_softmax(logits, dim=1)
        unlabeled = (log_q.exp() * (per_class + log_q)).sum(dim=1)
        labeled = per_class.gather(1, y.clamp(min=0).unsqueeze(1)).squeeze(1)
        return weighted_mean(torch.where(y >= 0, labeled, unlabeled), sample_weight)

    def per_row_loss(self, module, X, y, *, n_samples=0, generator=None):
        """Minus the ELBO of each row of ``X``: reconstruction plus ``beta`` times KL.

        The reconstruction is of the latent mean when ``n_samples`` is 0,
        else averaged over that many latent codes sampled with
        ``generator``. ``y`` holds class indices (-1 for unlabelled rows),
        which place each labelled row's prior at its class centre. No
        classification term: this is the VAE's own loss, for scoring.
        """
        mu, logvar = module.encode(X)
        if n_samples:
            recon = 0.0
            for _ in range(n_samples):
                noise = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
                z = mu + noise * torch.exp(0.5 * logvar)
                recon = recon + reconstruction_loss(module.decoder(z), X, self.reconstruction, reduction="none")
            recon = recon / n_samples
        else:
            recon = reconstruction_loss(module.decoder(mu), X, self.reconstruction, reduction="none")
        center = self.prior_means(mu, y)
        return recon + self.beta * kl_divergence(mu, logvar, self.kl, center=center, reduction="none")

    def per_row_log_likelihood(self, module, X, noise_chunks):
        """Importance-weighted estimate of ``log p(x)`` for each row of ``X``, in float64.

        The IWAE bound (Burda et al., 2016): with ``K`` codes
        ``z_k = mu + sigma * eps_k`` drawn from the encoder's Gaussian
        ``q(z | x)``, ``log(1/K * sum_k p(x | z_k) p(z_k) / q(z_k | x))``,
        with the observation model of :func:`observation_log_likelihood`
        and the prior of :func:`prior_log_density` (the class-centre
        mixture when the model has centres; ``beta`` and the KL variant
        play no part). Its expectation is a lower bound on ``log p(x)``
        that rises to it as ``K`` grows; ``K = 1`` is a one-sample ELBO.
        The codes are decoded one draw per row at a time, so memory stays
        that of one decoder pass whatever ``K``; the weights are summed in
        float64.

        Parameters
        ----------
        module : DisentangledVAEModule
        X : Tensor of shape (n_samples, n_features)
        noise_chunks : iterable of Tensor of shape (n_samples, n_draws, n_components)
            Standard-normal draws ``eps``, float64, on ``X``'s device; ``K``
            is their total number of draws per row.
        """
        mu, logvar = (value.double() for value in module.encode(X))
        sigma = torch.exp(0.5 * logvar)
        data = X.double()
        centers = None if self.centers is None else self.centers.to(device=X.device, dtype=torch.float64)
        # log q(z_k | x) is the standard normal's log-density at eps_k, less sum(log(sigma)).
        log_q_base = -0.5 * logvar.sum(dim=1) - 0.5 * mu.shape[1] * math.log(2 * math.pi)
        total, n_draws = None, 0
        for chunk in noise_chunks:
            for eps in chunk.unbind(dim=1):
                z = mu + sigma * eps
                output = module.decoder(z.to(X.dtype)).flatten(1).double()
                log_weight = (
                    observation_log_likelihood(output, data, self.reconstruction)
                    + prior_log_density(z, centers)
                    - (log_q_base - 0.5 * (eps**2).sum(dim=1))
                )
                total = log_weight if total is None else torch.logaddexp(total, log_weight)
            n_draws += chunk.shape[1]
        return total - math.log(n_draws)

    def forward(
        self,
        outputs,
        X,
        y,
        *,
        kl_weight=1.0,
        classification_weight=0.0,
        pseudo=None,
        pseudo_weight=None,
        unlabeled_weight=0.0,
        classifier=None,
        generator=None,
        sample_weight=None,
    ):
        """All loss terms as a dict; ``"loss"`` is the weighted total.

        ``pseudo`` (from :func:`pseudo_labels` or :func:`propagate_labels`),
        given for a batch with unlabelled samples, holds their pseudo-labels,
        -1 elsewhere, and ``pseudo_weight``, if given, a weight for each
        (their certainty; 1 when None). The head's cross-entropy against
        them, weighted, summed over the pseudo-labelled samples and divided
        by the number of unlabelled ones (so that, with the head's sure
        predictions, it grows as the head grows confident, with no warm-up
        of its own), plus
        :func:`class_balance_loss`, is the ``"unlabeled"`` term, weighted
        ``unlabeled_weight * classification_weight``. With class centres,
        the KL term is then :meth:`marginal_kl`.

        ``classifier`` (the latent head) and ``generator`` (for the points
        on the paths) are needed only with ``class_pairs``; the ``"border"``
        term is then in the dict too.

        ``sample_weight`` (one per sample, or None for equal weights)
        weights every average over the samples: each term's mean, the
        pseudo-label term's sum and its count of unlabelled samples (their
        weights' sum), the class balance and the class means of the border
        term (see :func:`weighted_mean`).
        """
        output, mu, logvar, logits = outputs
        recon = weighted_mean(reconstruction_loss(output, X, self.reconstruction, reduction="none"), sample_weight)
        if pseudo is None or self.centers is None:
            per_sample_kl = kl_divergence(mu, logvar, self.kl, center=self.prior_means(mu, y), reduction="none")
            kl = weighted_mean(per_sample_kl, sample_weight)
        else:
            kl = self.marginal_kl(mu, logvar, logits, y, sample_weight)
        clf = classification_loss(logits, y, sample_weight)
        total = recon + kl_weight * self.beta * kl + classification_weight * clf
        terms = {"reconstruction": recon, "kl": kl, "classification": clf}
        if pseudo is not None:
            terms["unlabeled"] = self._pseudo_label_loss(logits, y, pseudo, pseudo_weight, sample_weight)
            terms["unlabeled"] = terms["unlabeled"] + class_balance_loss(logits, y, sample_weight)
            total = total + unlabeled_weight * classification_weight * terms["unlabeled"]
        if self.class_pairs is not None and classifier is not None:
            t = torch.rand((N_BORDER_POINTS, 1), generator=generator, device=mu.device)
            terms["border"] = border_loss(classifier, mu, y, self.class_pairs, t, sample_weight)
            total = total + BORDER_WEIGHT * classification_weight * terms["border"]
        return {"loss": total, **terms}

    @staticmethod
    def _pseudo_label_loss(logits, y, pseudo, pseudo_weight, sample_weight):
        """The head's cross-entropy against the pseudo-labels, each weighted
        by its ``pseudo_weight`` (1 when None) and its ``sample_weight``,
        summed over the pseudo-labelled samples and divided by the number
        of unlabelled ones (their weights' sum, with sample weights)."""
        unlabeled = y < 0
        if sample_weight is None:
            n_unlabeled = unlabeled.sum().clamp(min=1)
        else:
            n_unlabeled = sample_weight[unlabeled].sum().clamp(min=torch.finfo(sample_weight.dtype).tiny)
        if pseudo_weight is None and sample_weight is None:
            share = (pseudo >= 0).sum() / n_unlabeled
            return classification_loss(logits, pseudo) * share
        has = pseudo >= 0
        if not bool(has.any()):
            return torch.zeros((), device=logits.device)
        weight = torch.ones_like(logits[:, 0]) if pseudo_weight is None else pseudo_weight
        if sample_weight is not None:
            weight = weight * sample_weight
        ce = F.cross_entropy(logits[has], pseudo[has], reduction="none")
        return (weight[has] * ce).sum() / n_unlabeled
