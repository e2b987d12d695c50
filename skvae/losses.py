"""Loss terms of the disentangled VAE.

Every term is summed over features (or latent dimensions) and averaged over
the samples of a batch, as in the original experiment, so that the weights
of the terms mean the same thing for any batch size.
"""

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "DisentangledVAELoss",
    "classification_loss",
    "kl_divergence",
    "reconstruction_loss",
]


def reconstruction_loss(output, X, kind="mse"):
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
    """
    if kind == "mse":
        per_feature = (output - X) ** 2
    elif kind == "bce":
        per_feature = F.binary_cross_entropy_with_logits(output, X, reduction="none")
    else:
        raise ValueError(f"Unknown reconstruction loss {kind!r}; use 'mse' or 'bce'.")
    return per_feature.sum(dim=1).mean()


def kl_divergence(mu, logvar, kind="abs"):
    """KL term between the encoder's Gaussian and the unit Gaussian prior.

    ``"standard"`` is ``-0.5 * sum(1 + logvar - mu**2 - exp(logvar))``.
    ``"abs"`` replaces ``mu**2`` by ``|mu|``: a linear pull toward the origin,
    so class means far from the origin are not shrunk quadratically once
    the classifier stops holding them apart.
    """
    if kind == "standard":
        mean_term = mu**2
    elif kind == "abs":
        mean_term = mu.abs()
    else:
        raise ValueError(f"Unknown KL variant {kind!r}; use 'abs' or 'standard'.")
    return (-0.5 * (1 + logvar - mean_term - logvar.exp())).sum(dim=1).mean()


def classification_loss(logits, y):
    """Cross-entropy of the latent classifier on the labelled samples.

    Samples with ``y < 0`` are unlabelled and ignored; a batch without any
    labelled sample gives zero.
    """
    labelled = y >= 0
    if logits is None or not bool(labelled.any()):
        return torch.zeros((), device=y.device)
    return F.cross_entropy(logits[labelled], y[labelled])


class DisentangledVAELoss(nn.Module):
    """Weighted sum of reconstruction, KL and latent-classification losses.

    Parameters
    ----------
    reconstruction : {"mse", "bce"}
        Reconstruction term, see :func:`reconstruction_loss`.
    kl : {"abs", "standard"}
        KL variant, see :func:`kl_divergence`.
    beta : float
        Weight of the KL term.
    """

    def __init__(self, reconstruction="mse", kl="abs", beta=1.0):
        super().__init__()
        self.reconstruction = reconstruction
        self.kl = kl
        self.beta = beta

    def forward(self, outputs, X, y, *, kl_weight=1.0, classification_weight=0.0):
        """All loss terms as a dict; ``"loss"`` is the weighted total."""
        output, mu, logvar, logits = outputs
        recon = reconstruction_loss(output, X, self.reconstruction)
        kl = kl_divergence(mu, logvar, self.kl)
        clf = classification_loss(logits, y)
        total = recon + kl_weight * self.beta * kl + classification_weight * clf
        return {"loss": total, "reconstruction": recon, "kl": kl, "classification": clf}
