"""Loss terms: reconstruction, (class-anchored) KL, classification, borders.

The class-centre geometry has its own tests, in test_centers.py.
"""

import numpy as np
import pytest
import torch

from skvae import DisentangledVAE
from skvae.centers import class_centers
from skvae.losses import (
    BORDER_WEIGHT,
    DisentangledVAELoss,
    border_loss,
    class_balance_loss,
    kl_divergence,
    pseudo_labels,
)


def _pairwise(points):
    dist = np.linalg.norm(points[:, None] - points[None, :], axis=-1)
    return dist[~np.eye(len(points), dtype=bool)]


def test_kl_defaults_to_the_standard_term_like_the_estimator():
    mu, logvar = torch.randn(6, 3), torch.randn(6, 3)
    assert kl_divergence(mu, logvar).item() == kl_divergence(mu, logvar, "standard").item()
    assert kl_divergence(mu, logvar).item() != pytest.approx(kl_divergence(mu, logvar, "abs").item())
    assert DisentangledVAELoss().kl == DisentangledVAE().kl == "standard"
    with pytest.raises(ValueError, match="'standard' or 'abs'"):
        kl_divergence(mu, logvar, "squared")


def test_kl_with_a_center_is_the_kl_to_the_shifted_prior():
    mu, logvar = torch.randn(6, 3), torch.randn(6, 3)
    center = torch.randn(6, 3)
    shifted = kl_divergence(mu - center, logvar, "standard")
    assert kl_divergence(mu, logvar, "standard", center=center) == pytest.approx(shifted.item())
    # Closed form of KL(N(mu, s^2) || N(c, 1)), summed over dims, averaged.
    expected = 0.5 * ((mu - center) ** 2 + logvar.exp() - 1 - logvar).sum(1).mean()
    assert kl_divergence(mu, logvar, "standard", center=center) == pytest.approx(expected.item(), rel=1e-5)


def test_anchored_loss_pulls_labelled_samples_to_their_class_centre():
    centers = torch.as_tensor(class_centers(3, 2, 6.0), dtype=torch.float32)
    loss = DisentangledVAELoss("mse", "standard", centers=centers.numpy())
    y = torch.tensor([0, 1, 2, -1])
    mu = torch.cat([centers, torch.zeros(1, 2)])  # each at its prior's mean
    logvar = torch.zeros(4, 2)
    X = torch.zeros(4, 5)
    logits = torch.zeros(4, 3)
    terms = loss((X, mu, logvar, logits), X, y)
    assert terms["kl"].item() == pytest.approx(0.0, abs=1e-6)
    # Without anchoring the same codes pay for their distance to the origin.
    plain = DisentangledVAELoss("mse", "standard")
    assert plain((X, mu, logvar, logits), X, y)["kl"].item() > 1.0


def test_estimator_anchors_similar_digit_classes_next_to_each_other(digits_all):
    from skvae import DisentangledVAE

    X, y = digits_all
    vae = DisentangledVAE(max_epochs=1, hidden_dims=(16,), class_spacing=6.0, random_state=0).fit(X, y)
    centers = vae.class_prior_means_
    assert centers.shape == (10, 2)
    dist = _pairwise(centers)
    assert dist.min() == pytest.approx(6.0)
    # The most alike pair of class mean images gets neighbouring centres.
    means = np.stack([X[y == c].mean(0) for c in range(10)])
    data_dist = np.linalg.norm(means[:, None] - means[None], axis=-1) + np.eye(10) * 1e9
    a, b = np.unravel_index(data_dist.argmin(), data_dist.shape)
    assert np.linalg.norm(centers[a] - centers[b]) == pytest.approx(6.0)
    # "auto" does not anchor 10 classes in 2-D, and a plain VAE has no class priors.
    assert DisentangledVAE(max_epochs=1, hidden_dims=(16,)).fit(X, y).class_prior_means_ is None
    assert DisentangledVAE(max_epochs=1, hidden_dims=(16,), class_spacing=6.0).fit(X).class_prior_means_ is None


# ------------------------------------------------------------ border loss


def _three_class_head(middle_logit):
    """A head on a 1-D latent: class 0 left of -1, class 2 right of 1, and
    class 1 in between with the given logit (the others' are 0 there)."""
    head = torch.nn.Linear(1, 3)
    with torch.no_grad():
        head.weight.copy_(torch.tensor([[-10.0], [0.0], [10.0]]))
        head.bias.copy_(torch.tensor([0.0, middle_logit, 0.0]))
    return head


def test_border_loss_is_small_only_when_no_third_class_sits_between_the_pair():
    mu = torch.tensor([[-2.0], [-1.5], [1.5], [2.0]])
    y = torch.tensor([0, 0, 2, 2])
    t = torch.linspace(0, 1, 11)[:, None]
    pairs = torch.tensor([[0, 2]])
    crossed = border_loss(_three_class_head(5.0), mu, y, pairs, t)
    shared = border_loss(_three_class_head(-5.0), mu, y, pairs, t)
    assert crossed > 0.5  # about 30% of the path is class 1's
    assert 0 <= shared < 0.05
    # Pairs of classes missing from the batch add nothing.
    assert border_loss(_three_class_head(5.0), mu, y, torch.tensor([[0, 1]]), t) == 0


def test_loss_without_class_pairs_has_no_border_term():
    outputs = (torch.zeros(4, 3), torch.zeros(4, 1), torch.zeros(4, 1), torch.zeros(4, 3))
    X, y = torch.zeros(4, 3), torch.tensor([0, 0, 2, 2])
    head = _three_class_head(5.0)
    plain = DisentangledVAELoss()(outputs, X, y, classification_weight=2.0, classifier=head)
    assert "border" not in plain
    paired = DisentangledVAELoss(class_pairs=[[0, 2]])(
        outputs, X, y, classification_weight=2.0, classifier=head, generator=torch.Generator().manual_seed(0)
    )
    assert paired["border"] > 0
    expected = plain["loss"] + 2.0 * BORDER_WEIGHT * paired["border"]
    torch.testing.assert_close(paired["loss"], expected)


def test_pseudo_labels_are_confident_predictions_on_unlabelled_samples_only():
    teacher = torch.tensor([[4.0, 0.0], [0.1, 0.0], [0.0, 4.0], [4.0, 0.0]])
    y = torch.tensor([-1, -1, -1, 1])
    # Row 1 is unsure (p = 0.52), row 3 is labelled.
    assert pseudo_labels(teacher, y, 0.8).tolist() == [0, -1, 1, -1]
    assert pseudo_labels(teacher, y, 1.0).tolist() == [-1, -1, -1, -1]


def test_class_balance_loss_is_zero_when_the_head_matches_the_labelled_frequencies():
    y = torch.tensor([0, 1, -1, -1])
    balanced = torch.tensor([[0.0, 0.0], [0.0, 0.0], [5.0, 0.0], [0.0, 5.0]])
    assert class_balance_loss(balanced, y).item() == pytest.approx(0.0, abs=1e-6)
    one_class = torch.tensor([[0.0, 0.0], [0.0, 0.0], [5.0, 0.0], [5.0, 0.0]])
    assert class_balance_loss(one_class, y).item() > 0.3


def test_marginal_kl_of_an_unlabelled_sample_follows_the_head():
    centers = torch.as_tensor(class_centers(3, 2, 6.0), dtype=torch.float32)
    loss = DisentangledVAELoss("mse", "standard", centers=centers.numpy())
    mu, logvar = centers[[0, 0]], torch.zeros(2, 2)
    # Row 0 is labelled 0; row 1 is unlabelled, at centre 0.
    y = torch.tensor([0, -1])
    labelled_kl = kl_divergence(mu[:1], logvar[:1], center=centers[:1]).item()
    assert labelled_kl == pytest.approx(0.0, abs=1e-6)
    sure_of_0 = torch.tensor([[0.0, -30.0, -30.0], [30.0, 0.0, 0.0]])
    sure_of_1 = torch.tensor([[0.0, -30.0, -30.0], [0.0, 30.0, 0.0]])
    # The head sure of class 0 leaves the unlabelled sample at its prior's
    # mean; sure of class 1, the sample is 6 away from it: KL 6**2 / 2 = 18.
    assert loss.marginal_kl(mu, logvar, sure_of_0, y).item() == pytest.approx(0.0, abs=1e-4)
    assert loss.marginal_kl(mu, logvar, sure_of_1, y).item() == pytest.approx(18.0 / 2, rel=1e-4)


def test_border_loss_moves_the_codes_not_the_head():
    head = _three_class_head(5.0)
    mu = torch.tensor([[-2.0, 0.0], [2.0, 0.0]])[:, :1].clone().requires_grad_(True)
    border_loss(head, mu, torch.tensor([0, 2]), torch.tensor([[0, 2]]), torch.linspace(0, 1, 11)[:, None]).backward()
    assert mu.grad.abs().sum() > 0
    assert all(weight.grad is None for weight in head.parameters())
