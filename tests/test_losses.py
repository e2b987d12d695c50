"""Loss terms: class-anchored KL, class centres and the "auto" spacing."""

import numpy as np
import pytest
import torch

from skvae.losses import (
    DisentangledVAELoss,
    arrange_class_centers,
    class_centers,
    kl_divergence,
    near_equidistant,
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


def test_lattice_centres_in_2d_give_most_classes_several_neighbours():
    centers = class_centers(10, 2, spacing=3.0)
    dist = _pairwise(centers)
    # 18 of the 45 pairs are lattice neighbours (a ring would give 10).
    assert np.isclose(dist, 3.0).sum() // 2 == 18
    assert dist.min() == pytest.approx(3.0)


def test_auto_spacing_anchors_near_equidistant_centres_sqrt_dim_apart():
    assert [resolve_class_spacing("auto", 10, d) is None for d in (1, 2, 3, 4)] == [True] * 4
    assert resolve_class_spacing("auto", 10, 8) == pytest.approx(12.0)
    assert resolve_class_spacing("auto", 10, 16) == pytest.approx(12.0 * np.sqrt(2))
    assert resolve_class_spacing("auto", 3, 2) == pytest.approx(6.0)  # a triangle is equidistant
    assert resolve_class_spacing("auto", 1, 2) is None  # one class: nothing to anchor
    assert resolve_class_spacing(4, 10, 2) == 4.0
    assert resolve_class_spacing(None, 10, 8) is None
    with pytest.raises(ValueError, match="auto"):
        resolve_class_spacing("far", 10, 8)


def test_arrangement_puts_similar_classes_next_to_each_other():
    centers = class_centers(4, 1, spacing=1.0)  # a line: -1.5, -0.5, 0.5, 1.5
    # Classes 0 and 3 are alike, as are 1 and 2; 0/3 far from 1/2.
    data = np.array([0.0, 10.0, 11.0, 1.0])
    distances = np.abs(data[:, None] - data[None, :])
    arranged = arrange_class_centers(centers, distances)
    assert sorted(arranged.ravel().tolist()) == sorted(centers.ravel().tolist())
    assert abs(arranged[0, 0] - arranged[3, 0]) == pytest.approx(1.0)
    assert abs(arranged[1, 0] - arranged[2, 0]) == pytest.approx(1.0)
    np.testing.assert_array_equal(arranged, arrange_class_centers(centers, distances))


@pytest.mark.parametrize("n_components", [8, 9])
def test_arrangement_keeps_near_equidistant_centres_in_order(n_components):
    centers = class_centers(10, n_components, spacing=2.0)
    assert near_equidistant(centers)
    distances = np.random.RandomState(0).rand(10, 10)
    np.testing.assert_array_equal(arrange_class_centers(centers, distances + distances.T), centers)
    assert not near_equidistant(class_centers(10, 2))


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


def test_estimator_anchors_similar_digit_classes_next_to_each_other():
    from skvae import DisentangledVAE
    from skvae.datasets import load_digits

    X, y = load_digits(return_X_y=True)
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


def test_swap_deltas_match_the_change_of_the_full_mismatch():
    from skvae.losses import _swap_deltas

    rng = np.random.RandomState(0)
    points, data = rng.rand(7, 2), rng.rand(7, 3)
    center_dist = np.linalg.norm(points[:, None] - points[None], axis=-1)
    target = np.linalg.norm(data[:, None] - data[None], axis=-1)
    order = rng.permutation(7)
    off = ~np.eye(7, dtype=bool)

    def mismatch(order):
        return ((center_dist[np.ix_(order, order)] - target)[off] ** 2).sum()

    current = center_dist[np.ix_(order, order)]
    for a in range(6):
        candidates = np.arange(a + 1, 7)
        deltas = _swap_deltas(current, target, a, candidates)
        for b, delta in zip(candidates, deltas):
            swapped = order.copy()
            swapped[[a, b]] = swapped[[b, a]]
            assert delta == pytest.approx(mismatch(swapped) - mismatch(order), abs=1e-12)
