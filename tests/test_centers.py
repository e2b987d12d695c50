"""Class-centre geometry: placement, arrangement and the "auto" spacing.

Speed is not asserted here (see the report of the change that made the
placement fast, and benchmarks/); the tests check properties: closest pair
at the spacing, centring, determinism, permutations, and that "auto"
decides, without building centres where it can, exactly what building them
would say.
"""

import numpy as np
import pytest
from scipy.spatial.distance import pdist, squareform

from skvae import centers as centers_module
from skvae.centers import (
    AUTO_SPACING_PER_SQRT_DIM,
    arrange_class_centers,
    class_centers,
    near_equidistant,
    resolve_class_spacing,
)


def _pairwise(points):
    dist = np.linalg.norm(points[:, None] - points[None, :], axis=-1)
    return dist[~np.eye(len(points), dtype=bool)]


def _mismatch(centers, class_distances):
    off = ~np.eye(len(centers), dtype=bool)
    center_dist = squareform(pdist(centers))
    center_dist = center_dist / center_dist[off].mean()
    target = class_distances / class_distances[off].mean()
    return ((center_dist - target)[off] ** 2).sum()


@pytest.mark.parametrize("n_classes, n_components", [(10, 1), (10, 2), (10, 3), (10, 8), (10, 9),
                                                     (10, 16), (3, 2), (2, 1)])
def test_class_centers_are_spread_and_deterministic(n_classes, n_components):
    centers = class_centers(n_classes, n_components, spacing=5.0)
    assert centers.shape == (n_classes, n_components)
    assert _pairwise(centers).min() == pytest.approx(5.0)
    np.testing.assert_allclose(centers.mean(0), 0, atol=1e-2)
    np.testing.assert_array_equal(centers, class_centers(n_classes, n_components, spacing=5.0))


@pytest.mark.parametrize("n_components", [2, 8, 64])
def test_a_thousand_centres_keep_the_spacing(n_components):
    centers = class_centers(1000, n_components, spacing=3.0)
    assert centers.shape == (1000, n_components)
    assert centers.flags.writeable  # a fresh array, not the cached geometry
    assert pdist(centers).min() == pytest.approx(3.0)
    np.testing.assert_allclose(centers.mean(0), 0, atol=1e-6)
    np.testing.assert_array_equal(centers, class_centers(1000, n_components, spacing=3.0))
    np.testing.assert_allclose(class_centers(1000, n_components, spacing=6.0), 2 * centers)


def test_one_class_sits_at_the_origin():
    centers = class_centers(1, 4, spacing=3.0)
    np.testing.assert_array_equal(centers, np.zeros((1, 4)))
    centers[0, 0] = 1.0  # the caller's copy
    np.testing.assert_array_equal(class_centers(1, 4), np.zeros((1, 4)))
    with pytest.raises(ValueError, match="n_classes >= 1"):
        class_centers(0, 2)


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


def _brute_force_auto(n_classes, n_components):
    if n_classes < 2:
        return None
    if not near_equidistant(class_centers(n_classes, n_components)):
        return None
    return AUTO_SPACING_PER_SQRT_DIM * np.sqrt(n_components)


GRID = [(k, d) for k in range(1, 15) for d in range(1, 13)]
# Both sides of the packing bound in 3-D (22 classes may be near-equidistant,
# 23 may not), and a few larger cases.
EDGES = [(22, 3), (23, 3), (30, 3), (70, 4), (71, 4), (40, 24), (100, 64)]


@pytest.mark.parametrize("n_classes, n_components", GRID + EDGES)
def test_auto_decision_matches_building_the_centres(n_classes, n_components):
    expected = _brute_force_auto(n_classes, n_components)
    decided = resolve_class_spacing("auto", n_classes, n_components)
    assert decided == (None if expected is None else pytest.approx(expected))


def test_auto_decides_without_centres_where_the_answer_is_known(monkeypatch):
    def no_centres(*args):
        raise AssertionError("built centres")

    monkeypatch.setattr(centers_module, "class_centers", no_centres)
    centers_module._auto_anchors.cache_clear()
    try:
        for k, d in [(1000, 1), (1000, 2), (400, 3), (1000, 5), (1000, 6), (1000, 999), (3, 1), (2, 1), (8, 2)]:
            expected_anchor = k == 2 or d >= k - 1
            assert (resolve_class_spacing("auto", k, d) is not None) == expected_anchor
    finally:
        centers_module._auto_anchors.cache_clear()


def test_packing_bound_thresholds():
    # The largest near-equidistant layout the volume bound allows, per dimension.
    may = centers_module._may_be_near_equidistant
    for d, largest in [(1, 2), (2, 7), (3, 22), (4, 70), (5, 218), (6, 678)]:
        assert may(largest, d) and not may(largest + 1, d)
    assert may(10**6, 64)  # no bound in high dimensions: build and check


def test_a_thousand_classes_anchor_in_64d_not_in_8d():
    assert resolve_class_spacing("auto", 1000, 64) == pytest.approx(AUTO_SPACING_PER_SQRT_DIM * 8)
    assert near_equidistant(class_centers(1000, 64))
    assert resolve_class_spacing("auto", 1000, 8) is None
    assert resolve_class_spacing("auto", 200, 8) is None


def test_blocked_repulsion_equals_the_dense_formula(monkeypatch):
    points = centers_module._sphere_start(50, 5)
    diff = points[:, None] - points[None]
    dist2 = (diff**2).sum(-1) + np.eye(50)
    for exponent in (2, 3):
        dense = (diff / dist2[..., None] ** exponent).sum(1)
        monkeypatch.setattr(centers_module, "_BLOCK_ENTRIES", 7 * 50)  # 7 rows a block
        force, lo, hi = centers_module._repulsion(points, exponent, extremes=True)
        np.testing.assert_allclose(force, dense, rtol=1e-9, atol=1e-9)
        off = dist2[~np.eye(50, dtype=bool)]
        assert lo == pytest.approx(off.min()) and hi == pytest.approx(off.max())


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


@pytest.mark.parametrize("n_classes, n_components", [(40, 2), (60, 3), (1000, 2), (1000, 8)])
def test_arrangement_of_many_classes_is_a_better_permutation(n_classes, n_components):
    centers = class_centers(n_classes, n_components)
    data = np.random.RandomState(0).normal(size=(n_classes, 6))
    distances = squareform(pdist(data))
    arranged = arrange_class_centers(centers, distances)
    assert arranged.shape == centers.shape
    # A permutation of the rows: every centre used once.
    np.testing.assert_array_equal(arranged[np.lexsort(arranged.T)], centers[np.lexsort(centers.T)])
    assert _mismatch(arranged, distances) < 0.8 * _mismatch(centers, distances)
    np.testing.assert_array_equal(arranged, arrange_class_centers(centers, distances))


def test_batched_search_ends_where_no_swap_improves():
    # Beyond 32 classes, whole rounds of swaps; with the work budget of 40
    # classes each start runs to a local optimum of pairwise swaps.
    centers = class_centers(40, 2)
    data = np.random.RandomState(1).normal(size=(40, 3))
    distances = np.linalg.norm(data[:, None] - data[None], axis=-1)
    arranged = arrange_class_centers(centers, distances)
    off = ~np.eye(40, dtype=bool)
    current = np.linalg.norm(arranged[:, None] - arranged[None], axis=-1)
    current = current / current[off].mean()
    target = np.where(off, distances / distances[off].mean(), 0.0)
    assert centers_module._all_swap_deltas(current, target)[off].min() > -1e-9


def test_swap_deltas_match_the_change_of_the_full_mismatch():
    from skvae.centers import _all_swap_deltas, _swap_deltas

    rng = np.random.RandomState(0)
    points, data = rng.rand(7, 2), rng.rand(7, 3)
    center_dist = np.linalg.norm(points[:, None] - points[None], axis=-1)
    target = np.linalg.norm(data[:, None] - data[None], axis=-1)
    order = rng.permutation(7)
    off = ~np.eye(7, dtype=bool)

    def mismatch(order):
        return ((center_dist[np.ix_(order, order)] - target)[off] ** 2).sum()

    current = center_dist[np.ix_(order, order)]
    all_deltas = _all_swap_deltas(current, target)
    for a in range(6):
        candidates = np.arange(a + 1, 7)
        deltas = _swap_deltas(current, target, a, candidates)
        for b, delta in zip(candidates, deltas):
            swapped = order.copy()
            swapped[[a, b]] = swapped[[b, a]]
            assert delta == pytest.approx(mismatch(swapped) - mismatch(order), abs=1e-12)
            assert all_deltas[a, b] == pytest.approx(delta, abs=1e-12)
            assert all_deltas[b, a] == pytest.approx(delta, abs=1e-12)
