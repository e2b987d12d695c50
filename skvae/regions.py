"""Class regions of the latent space: per-class Gaussians, paths and borders.

Plain numpy functions behind :meth:`DisentangledVAE.sample`,
:meth:`DisentangledVAE.interpolate`, :meth:`DisentangledVAE.class_border`
and the displays of :mod:`skvae.plotting`. They know nothing of torch: the
estimator passes latent points in and gets latent points out.
"""

import numpy as np
from sklearn.utils import check_random_state

__all__ = [
    "check_class_neighbors",
    "class_gaussians",
    "find_sign_change",
    "principal_plane",
    "sample_class_gaussians",
    "segment_points",
]


def class_gaussians(Z, y_encoded, n_classes, reg=1e-6, sample_weight=None):
    """Mean and full covariance of the latent points of each class.

    Covariances are maximum-likelihood estimates (divided by the class
    size) with ``reg`` added to the diagonal, as ``reg_covar`` in
    :class:`sklearn.mixture.GaussianMixture`: they are positive definite
    even for a class of one sample.

    Parameters
    ----------
    Z : ndarray of shape (n_samples, n_components)
        Latent points, e.g. latent means of the training data.
    y_encoded : ndarray of shape (n_samples,)
        Class index of each point in ``range(n_classes)``; negative values
        mark unlabelled points, which are ignored.
    n_classes : int
        Number of classes.
    reg : float, default=1e-6
        Non-negative value added to the diagonal of each covariance.
    sample_weight : ndarray of shape (n_samples,), default=None
        Non-negative weight of each point: the estimates are those of the
        points repeated by their weights (divided by the class's weight).
        A class whose points all weigh 0 gets the unweighted estimates of
        its points, so that it still has a region. None weighs each 1.

    Returns
    -------
    centroids : ndarray of shape (n_classes, n_components)
        Mean latent point of each class.
    covariances : ndarray of shape (n_classes, n_components, n_components)
        Covariance of each class.
    """
    Z = np.asarray(Z, dtype=np.float64)
    y_encoded = np.asarray(y_encoded)
    counts = np.bincount(y_encoded[y_encoded >= 0], minlength=n_classes)
    if counts.min() == 0:
        raise ValueError(
            f"Every class needs at least one labelled sample to fit its latent "
            f"Gaussian; classes {np.flatnonzero(counts == 0).tolist()} have none."
        )
    n_components = Z.shape[1]
    centroids = np.empty((n_classes, n_components))
    covariances = np.empty((n_classes, n_components, n_components))
    for k in range(n_classes):
        in_class = y_encoded == k
        Z_k = Z[in_class]
        weights = np.ones(len(Z_k)) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)[in_class]
        if not weights.sum() > 0:
            weights = np.ones(len(Z_k))
        centroids[k] = np.average(Z_k, axis=0, weights=weights)
        centered = Z_k - centroids[k]
        covariances[k] = (centered * weights[:, None]).T @ centered / weights.sum()
        covariances[k].flat[:: n_components + 1] += reg
    return centroids, covariances


def sample_class_gaussians(centroids, covariances, class_indices, random_state=None):
    """Draw one latent point from the Gaussian of each given class.

    Parameters
    ----------
    centroids : ndarray of shape (n_classes, n_components)
        Means of the class Gaussians.
    covariances : ndarray of shape (n_classes, n_components, n_components)
        Positive definite covariances of the class Gaussians.
    class_indices : ndarray of shape (n_samples,)
        Class index of each point to draw.
    random_state : int, RandomState instance or None, default=None
        Seeds the draws.

    Returns
    -------
    Z : ndarray of shape (n_samples, n_components)
        The drawn latent points, in the order of ``class_indices``.
    """
    rng = check_random_state(random_state)
    class_indices = np.asarray(class_indices, dtype=np.intp)
    noise = rng.standard_normal((len(class_indices), centroids.shape[1]))
    factors = np.linalg.cholesky(covariances)[class_indices]
    return centroids[class_indices] + np.einsum("nij,nj->ni", factors, noise)


def segment_points(z_start, z_stop, t):
    """Points at fractions ``t`` of the straight segment from ``z_start`` to ``z_stop``.

    Parameters
    ----------
    z_start, z_stop : ndarray of shape (n_components,)
        End points of the segment.
    t : ndarray of shape (n_points,)
        Fractions of the way from ``z_start`` (0) to ``z_stop`` (1).

    Returns
    -------
    Z : ndarray of shape (n_points, n_components)
        ``(1 - t) * z_start + t * z_stop``, written so that ``t = 1`` gives
        ``z_stop`` exactly.
    """
    t = np.asarray(t, dtype=np.float64)
    return np.outer(1 - t, z_start) + np.outer(t, z_stop)


def check_class_neighbors(class_pairs, n_components, classes):
    """Refuse borders that no class regions in ``n_components`` dimensions can have.

    On a line (1-D) a region is an interval: it borders at most two others,
    and the borders cannot close a cycle. In a plane (2-D), regions can
    share exactly the borders of a planar graph (e.g. not five classes that
    all border each other); from 3-D on, any set of borders is possible.

    Parameters
    ----------
    class_pairs : ndarray of shape (n_pairs, 2)
        Class indices of the pairs that must share a border.
    n_components : int
        Dimension of the latent space.
    classes : ndarray of shape (n_classes,)
        The class labels, for the error message.

    Raises
    ------
    ValueError
        Naming the classes whose borders cannot all exist, and what to do.
    """
    if n_components >= 3 or len(class_pairs) == 0:
        return
    import networkx as nx

    graph = nx.Graph([tuple(pair) for pair in np.asarray(class_pairs).tolist()])
    if n_components == 1:
        crowded = [node for node, degree in graph.degree() if degree > 2]
        cycle = [] if crowded else next(iter(nx.cycle_basis(graph)), [])
        culprits, why = (
            (crowded, "a class on a line borders at most two others")
            if crowded
            else (cycle, "borders on a line cannot close a cycle")
        )
        if not culprits:
            return
    else:
        planar, obstruction = nx.check_planarity(graph, counterexample=True)
        if planar:
            return
        culprits = list(obstruction.nodes())
        why = "regions in a plane can share only the borders of a planar graph, and these contain K5 or K3,3"
    names = ", ".join(repr(label) for label in classes[sorted(culprits)].tolist())
    raise ValueError(
        f"class_neighbors cannot be met in {n_components}-D: {why} (classes {names}). "
        "Ask for fewer pairs, or use a larger n_components (from 3 on, any set of "
        "class pairs can share borders)."
    )


def find_sign_change(func, *, n_points=1024, tol=1e-6):
    """First point of ``[0, 1]`` where a continuous function changes sign.

    A bisection that splits the bracket into ``n_points - 1`` sections per
    round instead of 2: ``func`` is evaluated on ``n_points`` equally spaced
    points of the current bracket, and the first section whose ends differ
    in sign becomes the next bracket. Evaluating a whole grid costs the
    latent classifier no more than one point (it always runs on blocks of
    1024 rows), and the grid of the first round finds the first crossing
    even where the function changes sign more than once.

    Parameters
    ----------
    func : callable
        Vectorised and deterministic: maps an ndarray of points ``t`` in
        ``[0, 1]`` to an ndarray of values.
    n_points : int, default=1024
        Points evaluated per round, at least 3.
    tol : float, default=1e-6
        Width of bracket at which the search stops; the root is then
        interpolated linearly between the bracket's ends.

    Returns
    -------
    t : float or None
        The first root, or None when ``func`` has the same sign at every
        point of the first round's grid.
    """
    lo, hi = 0.0, 1.0
    while True:
        t = np.linspace(lo, hi, n_points)
        values = np.asarray(func(t), dtype=np.float64)
        signs = np.sign(values)
        # The first grid point that is a root or ends a sign change.
        events = np.flatnonzero((signs[1:] != signs[:-1]) | (signs[1:] == 0))
        if signs[0] == 0:
            return float(t[0])
        if events.size == 0:
            return None
        i = events[0]
        if signs[i + 1] == 0:
            return float(t[i + 1])
        lo, hi = t[i], t[i + 1]
        if hi - lo <= tol:
            return float(lo + (hi - lo) * values[i] / (values[i] - values[i + 1]))


def principal_plane(centroids, covariances):
    """The plane through the class Gaussians' mean along their two main axes.

    The axes are the top two eigenvectors of the covariance of an
    equal-weight mixture of the class Gaussians: the spread of the
    centroids plus the mean within-class covariance. With three or more
    well separated classes this is the PCA plane of the centroids, and it
    stays defined for two classes, whose centroids span a single line.

    Parameters
    ----------
    centroids : ndarray of shape (n_classes, n_components)
        Means of the class Gaussians; ``n_components`` at least 2.
    covariances : ndarray of shape (n_classes, n_components, n_components)
        Covariances of the class Gaussians.

    Returns
    -------
    origin : ndarray of shape (n_components,)
        Mean of the centroids.
    basis : ndarray of shape (2, n_components)
        Orthonormal axes of the plane, the main one first; each is signed so
        that its largest coordinate is positive, for a reproducible picture.
    """
    origin = centroids.mean(axis=0)
    between = (centroids - origin).T @ (centroids - origin) / len(centroids)
    _, axes = _principal_axes(between + covariances.mean(axis=0))
    return origin, axes[:2]


def _principal_axes(covariance):
    """Eigen-decomposition of a covariance matrix, the largest variance first.

    The axes of :func:`principal_plane`, and of the PCA plane of latent
    means that the displays draw (``skvae._plane.latent_plane``).

    Parameters
    ----------
    covariance : ndarray of shape (n_components, n_components)
        Symmetric positive semi-definite matrix.

    Returns
    -------
    variances : ndarray of shape (n_components,)
        Variance along each axis, decreasing; round-off below 0 is set to 0.
    axes : ndarray of shape (n_components, n_components)
        Orthonormal axes as rows, in the order of ``variances``. Each is
        signed so that its largest coordinate is positive (as
        :class:`sklearn.decomposition.PCA` signs its components), for a
        reproducible picture.
    """
    variances, eigenvectors = np.linalg.eigh(covariance)
    axes = eigenvectors[:, ::-1].T
    largest = np.abs(axes).argmax(axis=1)
    axes *= np.sign(axes[np.arange(len(axes)), largest])[:, np.newaxis]
    return np.clip(variances[::-1], 0, None), axes
