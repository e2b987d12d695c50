"""Loss terms: class-anchored KL, class centres and the "auto" spacing."""

import numpy as np
import pytest
import torch

from skvae.losses import (
    DisentangledVAELoss,
    class_centers,
    kl_divergence,
    resolve_class_spacing,
)


def _pairwise(points):
    dist = np.linalg.norm(points[:, None] - points[None, :], axis=-1)
    return dist[~np.eye(len(points), dtype=bool)]


@pytest.mark.parametrize("n_classes, n_components", [(10, 1), (10, 2), (10, 3), (10, 8), (10, 9),
                                                     (10, 16), (3, 2), (2, 1)])
def test_class_centers_are_spread_and_deterministic(n_classes, n_components):
    centers = class_centers(n_classes, n_components, spacing=5.0)
    assert centers.shape == (n_classes, n_components)
    assert _pairwise(centers).min() == pytest.approx(5.0)
    np.testing.assert_allclose(centers.mean(0), 0, atol=1e-2)
    np.testing.assert_array_equal(centers, class_centers(n_classes, n_components, spacing=5.0))


@pytest.mark.parametrize("n_components", [9, 16])
def test_class_centers_form_a_regular_simplex(n_components):
    dist = _pairwise(class_centers(10, n_components, spacing=2.0))
    np.testing.assert_allclose(dist, 2.0)


def test_auto_spacing_anchors_only_with_near_equidistant_centres():
    assert [resolve_class_spacing("auto", 10, d) is None for d in (1, 2, 3, 4)] == [True] * 4
    assert [resolve_class_spacing("auto", 10, d) for d in (5, 8, 16)] == [12.0] * 3
    assert resolve_class_spacing("auto", 3, 2) == 12.0  # a triangle is equidistant
    assert resolve_class_spacing(4, 10, 2) == 4.0
    assert resolve_class_spacing(None, 10, 8) is None
    with pytest.raises(ValueError, match="auto"):
        resolve_class_spacing("far", 10, 8)


def test_kl_with_a_center_is_the_kl_to_the_shifted_prior():
    mu, logvar = torch.randn(6, 3), torch.randn(6, 3)
    center = torch.randn(6, 3)
    shifted = kl_divergence(mu - center, logvar, "standard")
    assert kl_divergence(mu, logvar, "standard", center=center) == pytest.approx(shifted.item())
    # Closed form of KL(N(mu, s^2) || N(c, 1)), summed over dims, averaged.
    expected = 0.5 * ((mu - center) ** 2 + logvar.exp() - 1 - logvar).sum(1).mean()
    assert kl_divergence(mu, logvar, "standard", center=center) == pytest.approx(expected.item(), rel=1e-5)


def test_anchored_loss_pulls_labelled_samples_to_their_class_centre():
    loss = DisentangledVAELoss("mse", "standard", class_spacing=6.0)
    centers = torch.as_tensor(class_centers(3, 2, 6.0), dtype=torch.float32)
    y = torch.tensor([0, 1, 2, -1])
    mu = torch.cat([centers, torch.zeros(1, 2)])  # each at its prior's mean
    logvar = torch.zeros(4, 2)
    X = torch.zeros(4, 5)
    logits = torch.zeros(4, 3)
    terms = loss((X, mu, logvar, logits), X, y)
    assert terms["kl"].item() == pytest.approx(0.0, abs=1e-6)
    # Without anchoring the same codes pay for their distance to the origin.
    plain = DisentangledVAELoss("mse", "standard", class_spacing=None)
    assert plain((X, mu, logvar, logits), X, y)["kl"].item() > 1.0


def test_auto_loss_without_anchoring_in_2d_equals_the_plain_loss():
    torch.manual_seed(0)
    outputs = (torch.rand(8, 5), torch.randn(8, 2), torch.randn(8, 2), torch.randn(8, 10))
    X, y = torch.rand(8, 5), torch.randint(0, 10, (8,))
    auto = DisentangledVAELoss("mse", "standard", class_spacing="auto")(outputs, X, y)
    plain = DisentangledVAELoss("mse", "standard", class_spacing=None)(outputs, X, y)
    assert auto["kl"].item() == pytest.approx(plain["kl"].item())
