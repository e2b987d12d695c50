"""Class-centre geometry: where each class's prior sits in the latent space.

With class-mean anchoring (``class_spacing``), the prior of a labelled
sample is a unit Gaussian on a fixed centre of its class:

* :func:`class_centers` places one centre per class, the closest two
  ``spacing`` apart;
* :func:`arrange_class_centers` decides which class gets which centre, so
  that similar classes get nearby ones;
* :func:`resolve_class_spacing` turns ``class_spacing`` (a number,
  ``"auto"`` or None) into a spacing, or None for no anchoring;
  ``"auto"`` anchors only when the centres are :func:`near_equidistant`.

All of it is deterministic, and takes under a second for up to a thousand
classes.
"""

import contextlib
import functools
import math
import threading

import numpy as np
from scipy.spatial.distance import pdist, squareform
from threadpoolctl import threadpool_limits

__all__ = [
    "arrange_class_centers",
    "class_centers",
    "near_equidistant",
    "resolve_class_spacing",
]

#: ``class_spacing="auto"`` spaces the class centres this many times
#: ``sqrt(n_components)`` apart: the typical distance between two samples of
#: a unit Gaussian grows as ``sqrt(n_components)``, so the gap between class
#: regions keeps the same relative size in any dimension (12 in 8-D).
AUTO_SPACING_PER_SQRT_DIM = 3 * np.sqrt(2)

#: ``class_spacing="auto"`` anchors only when the farthest two class centres
#: are at most this many times farther apart than the closest two.
AUTO_MAX_SPREAD = 1.5

# Up to this many classes, the centres on a sphere come from the full
# 2000-step repulsion (a few tenths of a second at most); beyond, from the
# accelerated one (100 steps).
_FULL_REPULSION_MAX_CLASSES = 128
# Up to this many classes, arrange_class_centers runs its first-improvement
# search from 16 starts; beyond, the batched search below.
_FIRST_IMPROVEMENT_MAX_CLASSES = 32
# Work budget of the batched search, in multiply-adds: each round multiplies
# two k x k matrices (k**3), so 1000 classes get 5 rounds, 200 classes 625.
_BATCHED_SEARCH_WORK = 5e9
# The repulsion goes through the Gram matrix in blocks of rows of at most
# this many entries: memory stays bounded (never n_classes**2 *
# n_components), and a block (a megabyte in float32) stays in cache through
# its elementwise passes, 3 times faster at 1000 classes than whole matrices.
_BLOCK_ENTRIES = 1 << 18
# Distances between up to this many coordinate differences come from the
# differences themselves (as they always did); beyond, from scipy's pdist,
# faster and without the n_classes**2 * n_components array.
_DENSE_DIFFERENCES = 1 << 18


def class_centers(n_classes, n_components, spacing=1.0):
    """Fixed, well-spread centres of the class-conditional priors.

    Every pair of centres is at least ``spacing`` apart, and as far as the
    latent dimension allows, all pairs are equally far:

    * ``n_components >= n_classes - 1``: the vertices of a regular simplex
      (every pair exactly ``spacing`` apart), so the straight path between
      two class centres passes no third one;
    * ``n_components == 2``: the ``n_classes`` points of a triangular
      lattice closest to the origin, neighbours ``spacing`` apart: the most
      compact patch, where most centres have several neighbours (18 of the
      45 pairs of 10 classes are lattice neighbours, against 10 on a ring);
    * ``n_components == 1``: evenly spaced points on a line;
    * otherwise: points on a sphere pushed apart by a deterministic
      repulsion (2000 small steps for up to 128 classes; beyond, 100
      accelerated steps, keeping the most even layout met), rescaled so
      that the closest pair is ``spacing`` apart.

    The centres are centred on the origin and depend only on the
    arguments (no randomness across calls). Which class gets which centre
    is decided by :func:`arrange_class_centers`.

    Returns
    -------
    centers : ndarray of shape (n_classes, n_components)
    """
    k, d = int(n_classes), int(n_components)
    if k < 1 or d < 1:
        raise ValueError(f"need n_classes >= 1 and n_components >= 1; got {k}, {d}.")
    points, min_dist = _unit_geometry(k, d)
    if k == 1:
        return points.copy()
    return points * (spacing / min_dist)


@functools.lru_cache(maxsize=8)
def _unit_geometry(k, d):
    """The centred centres of ``class_centers(k, d)`` before scaling, and
    their closest distance; cached (read-only), since ``"auto"`` builds them
    once to decide and the estimator once more to anchor."""
    if k == 1:
        points, min_dist = np.zeros((1, d)), 1.0
    else:
        if d >= k - 1:
            # Centred one-hot vectors are a regular simplex in a (k-1)-dim
            # subspace; express them in an orthonormal basis of that subspace.
            simplex = np.eye(k) - 1.0 / k
            _, _, vt = np.linalg.svd(simplex)
            points = simplex @ vt[: k - 1].T
            points = np.hstack([points, np.zeros((k, d - (k - 1)))])
        elif d == 1:
            points = np.linspace(-(k - 1) / 2, (k - 1) / 2, k)[:, None]
        elif d == 2:
            points = _lattice_patch(k)
        elif k <= _FULL_REPULSION_MAX_CLASSES:
            points = _repulsion_on_sphere(k, d)
        else:
            points = _fast_repulsion_on_sphere(k, d)
        points = points - points.mean(axis=0)
        min_dist = _distance_extremes(points)[0]
    points.setflags(write=False)
    return points, min_dist


_BLAS_LOCK = threading.Lock()


@contextlib.contextmanager
def _one_blas_thread():
    """Single-threaded BLAS for the small matrix products here, where
    threads only add overhead (3 to 10 times slower on 2 cores); under a
    lock, so that concurrent calls (fits in threads) never interleave their
    limit and restore of the process-wide setting."""
    with _BLAS_LOCK, threadpool_limits(limits=1, user_api="blas"):
        yield


def _lattice_patch(k):
    """The ``k`` points of the unit triangular lattice closest to the origin
    (ties broken by angle, so the result is deterministic)."""
    radius = int(np.ceil(np.sqrt(k))) + 1
    i, j = np.meshgrid(np.arange(-radius, radius + 1), np.arange(-radius, radius + 1))
    points = np.stack([i.ravel() + 0.5 * j.ravel(), j.ravel() * np.sqrt(3) / 2], axis=1)
    norm = np.round(np.linalg.norm(points, axis=1), 9)
    angle = np.round(np.arctan2(points[:, 1], points[:, 0]), 9)
    return points[np.lexsort((angle, norm))[:k]]


def _sphere_start(k, d):
    points = np.random.RandomState(0).normal(size=(k, d))
    return points / np.linalg.norm(points, axis=1, keepdims=True)


def _repulsion(points, exponent, extremes=False):
    """Repulsive force on each of ``points`` (rows on the unit sphere) from
    all others, ``sum_j (p_i - p_j) / |p_i - p_j|**(2 * exponent)``
    (``exponent`` 2 or 3), and with ``extremes`` the smallest and largest
    squared distance between two points.

    Works through the Gram matrix ``G`` (``|p_i - p_j|**2 = 2 * (1 - G_ij)``
    for unit rows), on blocks of rows of about ``_BLOCK_ENTRIES`` entries."""
    k = len(points)
    rows = max(1, _BLOCK_ENTRIES // k)
    force = np.empty_like(points)
    lo, hi = np.inf, 0.0
    for start in range(0, k, rows):
        block = points[start : start + rows]
        gap = block @ points.T
        np.subtract(1.0, gap, out=gap)  # half the squared distance
        if extremes:
            hi = max(hi, 2.0 * float(gap.max()))  # the diagonal (~0) is never the max
        gap[np.arange(len(block)), np.arange(start, start + len(block))] = np.inf
        np.maximum(gap, np.finfo(gap.dtype).eps, out=gap)  # (nearly) coincident points
        if extremes:
            lo = min(lo, 2.0 * float(gap.min()))
        inverse = np.reciprocal(gap, out=gap)  # 0 on the diagonal
        weight = inverse * inverse
        for _ in range(exponent - 2):
            weight *= inverse
        force[start : start + rows] = block * weight.sum(axis=1, keepdims=True) - weight @ points
    force *= 0.5**exponent
    return force, lo, hi


def _repulsion_on_sphere(k, d):
    """2000 steps of 0.01 along the ``1 / r**3`` repulsion, renormalising
    onto the unit sphere after each."""
    points = _sphere_start(k, d)
    with _one_blas_thread():
        for _ in range(2000):
            force = _repulsion(points, 2)[0]
            points = points + 0.01 * force
            points /= np.linalg.norm(points, axis=1, keepdims=True)
    return points


def _fast_repulsion_on_sphere(k, d, steps=100, patience=20, rate=0.05, momentum=0.9):
    """Accelerated repulsion for many classes: a steeper ``1 / r**5`` force
    (the closest pairs push hardest), steps along the sphere scaled to the
    closest distance, with momentum; returns the most even layout met (the
    smallest ratio of the farthest to the closest pair), stopping early
    when ``patience`` steps in a row improved it by less than 0.01%. In
    float32: only the layout matters, not the last digits.

    At 200 to 1000 classes in 8 to 64 dimensions its layouts are as even as
    those of the 2000 plain steps or more (which take minutes at 1000
    classes)."""
    points = _sphere_start(k, d).astype(np.float32)
    velocity = np.zeros_like(points)
    best, best_spread, best_step = points, np.inf, 0
    with _one_blas_thread():
        for step in range(steps + 1):
            force, lo, hi = _repulsion(points, 3, extremes=True)
            if hi / lo < best_spread:
                if hi / lo < best_spread * (1 - 1e-4):
                    best_step = step
                best, best_spread = points, hi / lo
            if step == steps or step - best_step >= patience:
                break
            along = force - points * (force * points).sum(axis=1, keepdims=True)
            scale = rate * np.sqrt(lo) / np.linalg.norm(along, axis=1).mean()
            velocity = momentum * velocity + np.float32(scale) * along
            points = points + velocity
            points /= np.linalg.norm(points, axis=1, keepdims=True)
    return best.astype(np.float64)


def _distance_matrix(points):
    """Euclidean distances between the rows of ``points``."""
    k, d = points.shape
    if k * k * d <= _DENSE_DIFFERENCES:
        return np.linalg.norm(points[:, None] - points[None, :], axis=-1)
    return squareform(pdist(points))


def _distance_extremes(points):
    """Smallest and largest distance between two rows of ``points`` (at
    least two rows)."""
    k, d = points.shape
    if k * k * d <= _DENSE_DIFFERENCES:
        dist = np.linalg.norm(points[:, None] - points[None, :], axis=-1)
        off = dist[~np.eye(k, dtype=bool)]
    else:
        off = pdist(points)
    return float(off.min()), float(off.max())


def _swap_deltas(current, target, a, candidates):
    """Change of the squared mismatch ``sum((current - target)**2)`` (off
    the diagonal) when class ``a`` swaps centres with each of
    ``candidates``; ``current[i, j]`` is the distance between the centres
    of classes i and j. Only rows and columns a and b change, so each delta
    costs O(n_classes)."""
    k = len(current)
    row_a, target_a = current[a], target[a]
    rows_b, targets_b = current[candidates], target[candidates]
    before = (row_a - target_a) ** 2 + (rows_b - targets_b) ** 2
    after = (rows_b - target_a) ** 2 + (row_a - targets_b) ** 2
    others = np.ones((len(candidates), k), dtype=bool)
    others[:, a] = False
    others[np.arange(len(candidates)), candidates] = False
    return 2.0 * np.where(others, after - before, 0.0).sum(axis=1)


def _all_swap_deltas(current, target):
    """``_swap_deltas`` for every pair at once: entry ``(a, b)`` is the
    change of the mismatch when classes a and b swap centres. Both matrices
    have a zero diagonal. The change is ``4 * sum_j (current[a, j] -
    current[b, j]) * (target[a, j] - target[b, j])`` over ``j`` other than a
    and b, i.e. one matrix product for all pairs."""
    product = current @ target.T
    diag = product.diagonal()
    return 4.0 * (diag[:, None] + diag[None, :] - product - product.T - 2.0 * current * target)


def _first_improvement_search(center_dist, target, order):
    """Pairwise swaps from ``order``: scan pairs (a, b) in order, swap as
    soon as a swap lowers the mismatch, until a whole pass finds none."""
    k = len(order)
    current = center_dist[np.ix_(order, order)]
    improved = True
    while improved:
        improved = False
        for a in range(k - 1):
            b = a + 1
            while b < k:
                candidates = np.arange(b, k)
                better = np.flatnonzero(_swap_deltas(current, target, a, candidates) < -1e-12)
                if better.size == 0:
                    break
                b = candidates[better[0]]
                order[[a, b]] = order[[b, a]]
                current = center_dist[np.ix_(order, order)]
                improved = True
                b += 1
    return order


def _batched_search(center_dist, target, order, rounds):
    """Pairwise swaps from ``order``, many per round: each round computes
    the change of every swap (one matrix product), applies the best
    disjoint improving swaps together (fewer if together they do not lower
    the mismatch, down to the single best one), until no swap improves or
    ``rounds`` run out. Both matrices have a zero diagonal.

    Returns the order and the number of rounds used."""
    k = len(order)
    current = center_dist[np.ix_(order, order)]
    cost = float(((current - target) ** 2).sum())
    for used in range(1, rounds + 1):
        deltas = _all_swap_deltas(current, target)
        improving = np.flatnonzero(np.triu(deltas < -1e-12, 1))
        if improving.size == 0:
            return order, used
        if improving.size > 4 * k:
            improving = improving[np.argpartition(deltas.flat[improving], 4 * k)[: 4 * k]]
        improving = improving[np.argsort(deltas.flat[improving], kind="stable")]
        taken = np.zeros(k, dtype=bool)
        pairs = []
        for a, b in zip(*np.divmod(improving, k)):
            if not (taken[a] or taken[b]):
                taken[a] = taken[b] = True
                pairs.append((a, b))
        while True:
            a, b = np.array(pairs).T
            candidate = order.copy()
            candidate[a], candidate[b] = order[b], order[a]
            swapped = center_dist[np.ix_(candidate, candidate)]
            swapped_cost = float(((swapped - target) ** 2).sum())
            if swapped_cost < cost - 1e-12 or len(pairs) == 1:
                break
            pairs = pairs[: len(pairs) // 2]
        if swapped_cost >= cost - 1e-12:  # only rounding was left to gain
            return order, used
        order, current, cost = candidate, swapped, swapped_cost
    return order, rounds


def arrange_class_centers(centers, class_distances):
    """Give similar classes nearby centres.

    Reorders ``centers`` so that the distances between them follow the
    distances between the classes in the data (e.g. between their mean
    images), as well as a permutation can: in 2-D, a "4" then borders a "9"
    rather than a "0". The permutation minimises the squared difference of
    the two distance matrices (each scaled to mean 1) by pairwise swaps
    from several deterministic starts: up to 32 classes, first-improvement
    swaps from 16 starts; beyond, rounds of many disjoint swaps at once,
    from as many of the same starts as a fixed amount of work allows (one
    start, five rounds, at 1000 classes). :func:`near_equidistant` centres
    (e.g. a simplex) keep their order: every order is (nearly) equally
    good there, and on MNIST at 8-D reordering them cost 1.7% of
    reconstruction error (two seeds).

    Parameters
    ----------
    centers : ndarray of shape (n_classes, n_components)
    class_distances : ndarray of shape (n_classes, n_classes)
        Symmetric distances between the classes.

    Returns
    -------
    centers : ndarray of shape (n_classes, n_components)
        Row ``c`` is the centre of class ``c``.
    """
    centers = np.asarray(centers)
    k = len(centers)
    off = ~np.eye(k, dtype=bool)
    target = np.asarray(class_distances, dtype=float)
    if near_equidistant(centers) or target[off].max() <= 0:
        return centers.copy()
    center_dist = _distance_matrix(centers)
    target = target / target[off].mean()
    center_dist = center_dist / center_dist[off].mean()

    rng = np.random.RandomState(0)
    starts = [np.arange(k)] + [rng.permutation(k) for _ in range(15)]
    if k <= _FIRST_IMPROVEMENT_MAX_CLASSES:
        orders = (_first_improvement_search(center_dist, target, start.copy()) for start in starts)
    else:
        target = np.where(off, target, 0.0)
        np.fill_diagonal(center_dist, 0.0)
        with _one_blas_thread():
            orders = _batched_orders(center_dist, target, starts, max(1, int(_BATCHED_SEARCH_WORK / k**3)))
    best_order, best_cost = None, np.inf
    for order in orders:
        mismatch = float(((center_dist[np.ix_(order, order)] - target)[off] ** 2).sum())
        if mismatch < best_cost - 1e-12:
            best_order, best_cost = order.copy(), mismatch
    return centers[best_order]


def _batched_orders(center_dist, target, starts, rounds):
    """The local optimum (or the last order) of :func:`_batched_search` from
    each start, while ``rounds`` last."""
    orders = []
    for start in starts:
        order, used = _batched_search(center_dist, target, start.copy(), rounds)
        orders.append(order)
        rounds -= used
        if rounds <= 0:
            break
    return orders


def near_equidistant(centers):
    """Whether the farthest two centres are at most :data:`AUTO_MAX_SPREAD`
    times farther apart than the closest two."""
    centers = np.asarray(centers)
    if len(centers) < 3:
        return True
    closest, farthest = _distance_extremes(centers)
    return farthest <= AUTO_MAX_SPREAD * closest + 1e-9


def _may_be_near_equidistant(n_classes, n_components):
    """False when no ``n_classes`` points in ``n_components`` dimensions can
    be :func:`near_equidistant`, whatever their layout.

    Points whose closest pair is ``m`` apart and farthest ``D <= s * m``
    apart (``s`` = :data:`AUTO_MAX_SPREAD`) lie in a ball of radius
    ``R <= D * sqrt(d / (2 * (d + 1)))`` (Jung's theorem), and the balls of
    radius ``m / 2`` around them are disjoint and inside the ball of radius
    ``R + m / 2``; comparing volumes, ``n_classes <= (1 + 2 * R / m)**d``.
    This excludes 3 or more classes on a line, 8 or more in 2-D, 23 in
    3-D, 71 in 4-D, 219 in 5-D, 679 in 6-D. (``s`` is raised by 1e-6 to
    cover the tolerance of :func:`near_equidistant`.)
    """
    d = n_components
    spread = AUTO_MAX_SPREAD * (1 + 1e-6)
    return math.log(n_classes) <= d * math.log1p(2 * spread * math.sqrt(d / (2 * (d + 1))))


@functools.lru_cache(maxsize=64)
def _auto_anchors(n_classes, n_components):
    """Whether ``near_equidistant(class_centers(n_classes, n_components))``,
    without building the centres where the answer is known."""
    if n_classes < 3 or n_components >= n_classes - 1:
        return True  # a segment or a regular simplex: all pairs equally far
    if not _may_be_near_equidistant(n_classes, n_components):
        return False
    return near_equidistant(class_centers(n_classes, n_components))


def resolve_class_spacing(class_spacing, n_classes, n_components):
    """The spacing of the class centres, or None for no class anchoring
    (also for fewer than 2 classes, where there is nothing to anchor).

    ``"auto"`` gives ``AUTO_SPACING_PER_SQRT_DIM * sqrt(n_components)``
    (12 in 8-D, 17 in 16-D) when the centres of :func:`class_centers` are
    :func:`near_equidistant` (every class then borders every other one, e.g.
    10 classes in 5 or more dimensions), and None otherwise (e.g. 10
    classes in 2-D, where the encoder, pulled only by the KL term, does not
    move whole classes onto fixed centres; see ``docs/defaults.rst``).
    The answer needs no centres when the latent space holds a regular
    simplex of the classes (``n_components >= n_classes - 1``: anchor) or
    cannot hold any near-equidistant layout of them (e.g. 8 or more classes
    in 2-D: do not anchor).
    """
    if isinstance(class_spacing, str) and class_spacing != "auto":
        raise ValueError(f"class_spacing must be a number, 'auto' or None; got {class_spacing!r}.")
    if class_spacing is None or class_spacing == 0 or n_classes is None or n_classes < 2:
        return None
    if class_spacing == "auto":
        if not _auto_anchors(int(n_classes), int(n_components)):
            return None
        return float(AUTO_SPACING_PER_SQRT_DIM * np.sqrt(n_components))
    return float(class_spacing)
