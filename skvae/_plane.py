"""The latent plane that the displays of skvae.plotting and the LatentExplorer draw.

One version of what they share: the check that the latent space has a
plane, the plane itself (the latent axes in 2-D, else the principal axes of
the latent means), its padded extent, the class of each drawn point and
the class colours, and the image shape decoded points are shown in.
"""

import math

import numpy as np

from ._inference import latent_proba
from ._labels import encode_labels
from .regions import _principal_axes

__all__ = [
    "UNLABELED_COLOR",
    "check_plane_dimension",
    "class_colors",
    "image_shape",
    "latent_plane",
    "padded_range",
    "point_labels",
]

#: Colour of a point whose label is ``unlabeled_label``, in both displays.
UNLABELED_COLOR = "#999999"


def check_plane_dimension(estimator, drawer):
    """Raise a ValueError naming ``drawer`` when the latent space has no plane."""
    if estimator.setup_.n_components < 2:
        raise ValueError(
            f"{drawer} draws a 2-D plane of the latent space, but this DisentangledVAE "
            "has n_components=1; plot transform(X) against the labels instead, or "
            "use InterpolationDisplay."
        )


def latent_plane(Z):
    """Orthonormal axes of the latent space, the first two spanning the drawn plane.

    The latent axes themselves for 2 dimensions; else the principal axes
    of ``Z`` through its mean, by decreasing variance. They always form a
    basis of the whole space: with fewer points than dimensions, the axes
    along which ``Z`` does not spread complete it.

    Parameters
    ----------
    Z : ndarray of shape (n_samples, n_components)
        Latent points, ``n_components`` at least 2.

    Returns
    -------
    origin : ndarray of shape (n_components,)
        The point at plane coordinates (0, 0).
    axes : ndarray of shape (n_components, n_components)
        The axes as rows.
    names : list of str
        A name for each axis, for the plot's labels.
    """
    Z = np.asarray(Z, dtype=np.float64)
    n_samples, n_components = Z.shape
    if n_components == 2:
        return np.zeros(2), np.eye(2), ["latent dimension 1", "latent dimension 2"]
    origin = Z.mean(axis=0)
    centered = Z - origin
    variances, axes = _principal_axes(centered.T @ centered / n_samples)
    # eigh computes variances to about eps times the largest: below that, none.
    spread = variances > n_components * np.finfo(np.float64).eps * variances[0]
    total = variances.sum()
    names = [
        f"PC {i + 1} ({variance / total:.0%} of variance)" if has_spread else f"axis {i + 1} (no variance in X)"
        for i, (variance, has_spread) in enumerate(zip(variances, spread))
    ]
    return origin, axes, names


def padded_range(values, margin=0.05):
    """``(low, high)`` of ``values`` widened by ``margin`` of their range on each side."""
    low, high = float(np.min(values)), float(np.max(values))
    pad = margin * (high - low) or 0.5  # a range of one point still gets an extent
    return low - pad, high + pad


def point_labels(estimator, Z, y=None):
    """The class of each latent point, for its colour, and the classes.

    For a model fitted with labels, the index in ``classes_`` of each label
    of ``y``, or of the class the latent classifier predicts when ``y`` is
    None; for a model fitted without, the index among the classes of ``y``.
    Either way, a label equal to the estimator's ``unlabeled_label`` marks
    an unlabeled point, coded -1 (``skvae._labels.UNLABELED``) and drawn grey.

    Parameters
    ----------
    estimator : DisentangledVAE
        Fitted estimator.
    Z : ndarray of shape (n_samples, n_components)
        Latent means of the points.
    y : array-like of shape (n_samples,), default=None
        Labels of the points.

    Returns
    -------
    labels : ndarray of shape (n_samples,) or None
        Index in ``classes`` of each point, -1 for an unlabeled one; None
        when there is nothing to colour by (no classifier, no ``y``).
    classes : ndarray of shape (n_classes,) or None
        The classes, None with ``labels``.
    title : str
        What the classes are: ``"class"`` or ``"predicted class"``.
    """
    unlabeled_label = estimator.unlabeled_label
    if hasattr(estimator, "classes_"):
        classes = estimator.classes_
        if y is None:
            return np.argmax(latent_proba(estimator.net_, Z, len(classes)), axis=1), classes, "predicted class"
    elif y is None:
        return None, None, "class"
    else:
        y = np.asarray(y)
        classes = np.unique(y if unlabeled_label is None else y[y != unlabeled_label])
    return encode_labels(classes, y, unlabeled_label=unlabeled_label), classes, "class"


def class_colors(n_classes):
    """One RGBA colour per class: tab10 or tab20 while they suffice, else turbo."""
    from matplotlib import colormaps

    if n_classes <= 10:
        return colormaps["tab10"](np.arange(n_classes))
    if n_classes <= 20:
        return colormaps["tab20"](np.arange(n_classes))
    return colormaps["turbo"](np.linspace(0, 1, n_classes))


def image_shape(estimator):
    """``(channels, height, width)`` of the estimator's data, or None if not images.

    ``image_shape_`` when set at fit, else a single square channel when the
    number of features is a square. Only grey and RGB images are drawn.
    """
    if estimator.image_shape_ is not None:
        shape = tuple(estimator.image_shape_)
    else:
        side = math.isqrt(estimator.n_features_in_)
        if side * side != estimator.n_features_in_:
            return None
        shape = (1, side, side)
    return shape if shape[0] in (1, 3) else None

