"""Matplotlib displays of a fitted :class:`~skvae.DisentangledVAE`.

The displays follow scikit-learn's convention (see
:class:`sklearn.inspection.DecisionBoundaryDisplay`): the classmethod
``from_estimator`` computes what is drawn and calls ``plot``, which draws on
a given matplotlib axes or a new figure and keeps the matplotlib objects as
attributes ending in ``_``. Nothing calls ``plt.show()``.

matplotlib.pyplot is imported only when something is drawn.
"""

from numbers import Integral

import numpy as np
from sklearn.utils import check_scalar
from sklearn.utils.validation import check_consistent_length, check_is_fitted

from ._inference import latent_proba
from ._labels import UNLABELED, encode_labels
from ._plane import (
    UNLABELED_COLOR,
    check_plane_dimension,
    class_colors,
    image_shape,
    latent_plane,
    padded_range,
    point_labels,
)
from .explorer import LatentExplorer  # re-exported: an HTML page, not a matplotlib display
from .regions import principal_plane, segment_points

__all__ = [
    "InterpolationDisplay",
    "LatentExplorer",
    "LatentSpaceDisplay",
    "LatentTraversalDisplay",
    "TrainingHistoryDisplay",
]


def _check_supervised(estimator, display):
    if not hasattr(estimator, "classes_"):
        raise ValueError(
            f"{display} needs a DisentangledVAE fitted with labels, as it draws its "
            "latent classifier; this one was fitted without y."
        )


def _to_images(X, shape):
    """Rows of ``X`` as images imshow can draw: (n, h, w), or (n, h, w, 3) clipped to [0, 1]."""
    images = X.reshape(len(X), *shape)
    if shape[0] == 1:
        return images[:, 0]
    return np.clip(images.transpose(0, 2, 3, 1), 0, 1)


def _mosaic(images, gap=1):
    """Tile an (n_rows, n_cols, h, w[, 3]) array of images into one image.

    Tiles are separated by ``gap`` pixels of NaN, drawn transparent (white
    for RGB images, which cannot hold NaN): without it, digits that touch
    their borders merge into stripes.
    """
    fill = np.nan if images.ndim == 4 else 1.0
    pad = [(0, 0), (0, 0), (0, gap), (0, gap)] + [(0, 0)] * (images.ndim - 4)
    padded = np.pad(images.astype(np.float64), pad, constant_values=fill)
    n_rows, n_cols, height, width = padded.shape[:4]
    tiled = padded.swapaxes(1, 2).reshape(n_rows * height, n_cols * width, *images.shape[4:])
    return tiled[: tiled.shape[0] - gap, : tiled.shape[1] - gap]


def _tile_limits(centres, tile_size, gap=1):
    """Data limits of a row of tiles of ``_mosaic`` centred on equally spaced ``centres``."""
    pixel = (centres[-1] - centres[0]) / (len(centres) - 1) / (tile_size + gap)
    low = centres[0] - pixel * tile_size / 2
    return low, low + pixel * (len(centres) * (tile_size + gap) - gap)


def _color_limits(values):
    """vmin and vmax that ignore the few pixels a decoder overshoots with."""
    vmin, vmax = np.percentile(values, [1, 99])
    return {"vmin": vmin, "vmax": vmax} if vmax > vmin else {}


class LatentSpaceDisplay:
    """Latent means coloured by class over the latent classifier's regions.

    Use :meth:`from_estimator` to create one. For a 2-D latent space the
    points are the latent means themselves and the regions are where the
    classifier predicts each class. For more dimensions the points are
    projected onto the PCA plane of the latent means, and the regions are
    the classifier's predictions on that plane (a slice of the latent
    space: a point off the plane may lie in another class's region than
    its projection).

    Parameters
    ----------
    points : ndarray of shape (n_samples, 2)
        Plotted coordinates of the samples.
    labels : ndarray of shape (n_samples,) or None
        Index in ``class_names`` of each sample, -1 for an unlabeled one
        (drawn grey); None draws one colour.
    class_names : ndarray of shape (n_classes,) or None
        Class labels, for the colours and the legend.
    regions : ndarray of shape (grid_resolution, grid_resolution) or None
        Index of the predicted class at each cell of a grid over
        ``extent``, first axis along y; None draws no regions.
    extent : tuple of float
        ``(x_min, x_max, y_min, y_max)`` of the axes.
    xlabel, ylabel, title : str
        Axis labels and title.
    legend_title : str, default="class"
        Title of the legend.

    Attributes
    ----------
    ax_ : matplotlib Axes
        Axes with the plot.
    figure_ : matplotlib Figure
        Figure containing the plot.
    scatter_ : matplotlib PathCollection
        The samples.
    regions_ : matplotlib AxesImage or None
        The shaded class regions.
    legend_ : matplotlib Legend or None
        Legend of the classes.

    See Also
    --------
    LatentTraversalDisplay : Decoded images over a grid of latent points.

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> from skvae import DisentangledVAE
    >>> from skvae.datasets import load_digits
    >>> from skvae.plotting import LatentSpaceDisplay
    >>> X, y = load_digits(return_X_y=True)
    >>> vae = DisentangledVAE(max_epochs=5, random_state=0).fit(X, y)
    >>> display = LatentSpaceDisplay.from_estimator(vae, X, y)
    >>> plt.show()  # doctest: +SKIP
    """

    def __init__(
        self, *, points, labels, class_names, regions, extent, xlabel, ylabel, title, legend_title="class"
    ):
        self.points = points
        self.labels = labels
        self.class_names = class_names
        self.regions = regions
        self.extent = extent
        self.xlabel = xlabel
        self.ylabel = ylabel
        self.title = title
        self.legend_title = legend_title

    @classmethod
    def from_estimator(
        cls, estimator, X, y=None, *, grid_resolution=200, ax=None, region_alpha=0.3, scatter_kwargs=None
    ):
        """Plot the latent means of ``X`` over the classifier's regions.

        Parameters
        ----------
        estimator : DisentangledVAE
            Fitted estimator with ``n_components >= 2``.
        X : array-like of shape (n_samples, n_features)
            Data to encode and plot.
        y : array-like of shape (n_samples,), default=None
            Labels that colour the points; those equal to the estimator's
            ``unlabeled_label`` mark unlabeled points, drawn grey. None
            colours them by the classifier's prediction (no colours for a
            model fitted without labels).
        grid_resolution : int, default=200
            Grid cells per axis on which the regions are evaluated.
        ax : matplotlib Axes, default=None
            Axes to plot on; a new figure is created when None.
        region_alpha : float, default=0.3
            Opacity of the shaded regions.
        scatter_kwargs : dict, default=None
            Passed to ``ax.scatter``.

        Returns
        -------
        display : LatentSpaceDisplay
        """
        check_is_fitted(estimator)
        check_plane_dimension(estimator, cls.__name__)
        check_scalar(grid_resolution, "grid_resolution", Integral, min_val=2)
        if y is not None:
            check_consistent_length(X, y)
        Z = estimator.transform(X)
        supervised = hasattr(estimator, "classes_")

        origin, axes, (xlabel, ylabel, *_) = latent_plane(Z)
        basis = axes[:2]
        if Z.shape[1] == 2:
            title = "Latent means and classifier regions" if supervised else "Latent means"
        else:
            title = f"PCA projection of the {Z.shape[1]}-D latent means"
            if supervised:
                title += "\nregions: classifier on the PCA plane"
        points = (Z - origin) @ basis.T
        extent = (*padded_range(points[:, 0]), *padded_range(points[:, 1]))

        labels, class_names, legend_title = point_labels(estimator, Z, y)
        regions = None
        if supervised:
            xs = np.linspace(extent[0], extent[1], grid_resolution)
            ys = np.linspace(extent[2], extent[3], grid_resolution)
            grid = np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 2)
            proba = latent_proba(estimator.net_, origin + grid @ basis, len(estimator.classes_))
            regions = np.argmax(proba, axis=1).reshape(grid_resolution, grid_resolution)

        display = cls(
            points=points,
            labels=labels,
            class_names=class_names,
            regions=regions,
            extent=extent,
            xlabel=xlabel,
            ylabel=ylabel,
            title=title,
            legend_title=legend_title,
        )
        return display.plot(ax=ax, region_alpha=region_alpha, scatter_kwargs=scatter_kwargs)

    def plot(self, ax=None, *, region_alpha=0.3, scatter_kwargs=None):
        """Draw the display.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            Axes to plot on; a new figure is created when None.
        region_alpha : float, default=0.3
            Opacity of the shaded regions.
        scatter_kwargs : dict, default=None
            Passed to ``ax.scatter``.

        Returns
        -------
        display : LatentSpaceDisplay
        """
        import matplotlib.pyplot as plt
        from matplotlib.colors import to_rgba
        from matplotlib.lines import Line2D

        if ax is None:
            _, ax = plt.subplots(layout="constrained")
        colors = None if self.class_names is None else class_colors(len(self.class_names))

        self.regions_ = None
        if self.regions is not None:
            shades = colors[self.regions]
            shades[..., 3] = region_alpha
            self.regions_ = ax.imshow(
                shades, origin="lower", extent=self.extent, aspect="auto", interpolation="nearest"
            )

        kwargs = {"s": 10, "linewidths": 0}
        unlabeled = np.zeros(len(self.points), dtype=bool)
        if self.labels is None:
            kwargs["c"] = "C0"
        else:
            unlabeled = self.labels == UNLABELED
            point_colors = colors[self.labels]
            point_colors[unlabeled] = to_rgba(UNLABELED_COLOR)
            kwargs["c"] = point_colors
        kwargs.update(scatter_kwargs or {})
        self.scatter_ = ax.scatter(self.points[:, 0], self.points[:, 1], **kwargs)

        self.legend_ = None
        if colors is not None:
            handles = [
                Line2D([], [], marker="o", linestyle="", color=color, label=str(name))
                for name, color in zip(self.class_names, colors)
            ]
            if unlabeled.any():
                handles.append(Line2D([], [], marker="o", linestyle="", color=UNLABELED_COLOR, label="unlabeled"))
            self.legend_ = ax.legend(
                handles=handles, title=self.legend_title, loc="center left",
                bbox_to_anchor=(1.02, 0.5), frameon=False,
            )
        ax.set_xlim(self.extent[:2])
        ax.set_ylim(self.extent[2:])
        ax.set(xlabel=self.xlabel, ylabel=self.ylabel, title=self.title)
        self.ax_ = ax
        self.figure_ = ax.figure
        return self


class LatentTraversalDisplay:
    """Decoded images over a square grid of latent points (the "manifold" plot).

    Use :meth:`from_estimator` to create one. For a 2-D latent space the
    grid spans the latent axes; for more dimensions it spans a plane (see
    :meth:`from_estimator`), and the axes show coordinates in that plane.

    Parameters
    ----------
    images : ndarray of shape (n_images, n_images, height, width[, 3])
        Decoded image at each grid point; first axis along y (upwards),
        second along x.
    x, y : ndarray of shape (n_images,)
        Grid coordinates along each axis, increasing.
    latent_points : ndarray of shape (n_images, n_images, n_components)
        The decoded latent points.
    xlabel, ylabel, title : str
        Axis labels and title.

    Attributes
    ----------
    ax_ : matplotlib Axes
        Axes with the plot.
    figure_ : matplotlib Figure
        Figure containing the plot.
    image_ : matplotlib AxesImage
        All the images, tiled into one.

    See Also
    --------
    LatentSpaceDisplay : The latent means over the classifier's regions.
    """

    def __init__(self, *, images, x, y, latent_points, xlabel, ylabel, title):
        self.images = images
        self.x = x
        self.y = y
        self.latent_points = latent_points
        self.xlabel = xlabel
        self.ylabel = ylabel
        self.title = title

    @classmethod
    def from_estimator(cls, estimator, X=None, *, n_images=15, extent=None, ax=None, cmap="gray_r"):
        """Decode an ``n_images`` x ``n_images`` grid of latent points.

        The plane and its default extent are taken from

        * the latent means of ``X`` when given: the latent axes for a 2-D
          latent space, else their PCA plane; from the 1st to the 99th
          percentile along each axis, so that a few outliers do not stretch
          the grid;
        * else the class Gaussians of a model fitted with labels: the latent
          axes, or the plane of :func:`skvae.regions.principal_plane`; wide
          enough to hold every class's centroid +- 2 standard deviations;
        * else the prior: the first two latent axes, from -2 to 2.

        Parameters
        ----------
        estimator : DisentangledVAE
            Fitted estimator with ``n_components >= 2`` whose data are
            images: ``image_shape_`` is set, or the number of features is a
            square.
        X : array-like of shape (n_samples, n_features), default=None
            Data whose latent means set the plane and the extent.
        n_images : int, default=15
            Images per side of the grid.
        extent : tuple of float, default=None
            ``(x_min, x_max, y_min, y_max)`` of the grid in plane
            coordinates, overriding the default extent.
        ax : matplotlib Axes, default=None
            Axes to plot on; a new figure is created when None.
        cmap : str or Colormap, default="gray_r"
            Colormap of single-channel images.

        Returns
        -------
        display : LatentTraversalDisplay
        """
        check_is_fitted(estimator)
        check_plane_dimension(estimator, cls.__name__)
        check_scalar(n_images, "n_images", Integral, min_val=2)
        if extent is not None and len(extent) != 4:
            raise ValueError(f"extent must be (x_min, x_max, y_min, y_max); got {extent!r}.")
        shape = image_shape(estimator)
        if shape is None:
            raise ValueError(
                f"{cls.__name__} draws grey or RGB images, but this DisentangledVAE's "
                f"data are neither: fit it with image_shape=(height, width) or (3, "
                "height, width). Without image_shape only a square number of features "
                f"counts as a grey image; it has {estimator.n_features_in_}."
            )
        n_components = estimator.setup_.n_components
        axes_names = ("latent dimension 1", "latent dimension 2")
        if X is not None:
            Z = estimator.transform(X)
            origin, axes, axes_names = latent_plane(Z)
            basis = axes[:2]
            low, high = np.percentile((Z - origin) @ basis.T, [1, 99], axis=0)
            source = "extent from the latent means of X"
        elif hasattr(estimator, "class_centroids_"):
            centroids, covariances = estimator.class_centroids_, estimator.class_covariances_
            if n_components == 2:
                origin, basis = np.zeros(2), np.eye(2)
            else:
                origin, basis = principal_plane(centroids, covariances)
                axes_names = ("principal axis 1", "principal axis 2")
            centres = (centroids - origin) @ basis.T
            spreads = np.sqrt(np.einsum("ai,kij,aj->ka", basis, covariances, basis))
            low, high = (centres - 2 * spreads).min(axis=0), (centres + 2 * spreads).max(axis=0)
            source = "extent from the class Gaussians"
        else:
            origin, basis = np.zeros(n_components), np.eye(2, n_components)
            low, high = np.full(2, -2.0), np.full(2, 2.0)
            source = "extent from the prior"
        if extent is None:
            extent = (low[0], high[0], low[1], high[1])
        else:
            source = "given extent"

        x = np.linspace(extent[0], extent[1], n_images)
        y = np.linspace(extent[2], extent[3], n_images)
        grid = np.stack(np.meshgrid(x, y), axis=-1)
        latent_points = origin + grid @ basis
        decoded = estimator.inverse_transform(latent_points.reshape(-1, n_components))
        images = _to_images(decoded, shape)
        images = images.reshape(n_images, n_images, *images.shape[1:])
        plane = "latent space" if n_components == 2 else f"plane of {n_components}-D latent space"
        display = cls(
            images=images,
            x=x,
            y=y,
            latent_points=latent_points,
            xlabel=axes_names[0],
            ylabel=axes_names[1],
            title=f"Decoded grid over the {plane}\n({source})",
        )
        return display.plot(ax=ax, cmap=cmap)

    def plot(self, ax=None, *, cmap="gray_r"):
        """Draw the display.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            Axes to plot on; a new figure is created when None.
        cmap : str or Colormap, default="gray_r"
            Colormap of single-channel images.

        Returns
        -------
        display : LatentTraversalDisplay
        """
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(6.4, 6.4), layout="constrained")
        height, width = self.images.shape[2:4]
        x_limits = _tile_limits(self.x, width)
        y_limits = _tile_limits(self.y, height)
        # The top row of the mosaic is the grid's highest y; each tile is
        # centred on its grid point, so the ticks read as plane coordinates.
        self.image_ = ax.imshow(
            _mosaic(self.images[::-1]),
            cmap=cmap,
            origin="upper",
            extent=(*x_limits, *y_limits),
            interpolation="nearest",
            **_color_limits(self.images),
        )
        # Square pixels whatever the units of the plane's axes.
        pixel_width = (x_limits[1] - x_limits[0]) / self.image_.get_array().shape[1]
        pixel_height = (y_limits[1] - y_limits[0]) / self.image_.get_array().shape[0]
        ax.set_aspect(pixel_width / pixel_height)
        ax.set(xlabel=self.xlabel, ylabel=self.ylabel, title=self.title)
        self.ax_ = ax
        self.figure_ = ax.figure
        return self


class InterpolationDisplay:
    """Decoded path between two class centroids, over the classifier's probabilities.

    Use :meth:`from_estimator` to create one. The top axes show the decoded
    points of the straight latent path from the centroid of class ``a`` to
    that of class ``b``; the bottom axes show the latent classifier's
    probabilities of ``a``, of ``b`` and of the most probable other class
    along the path, and the border where ``p(a) = p(b)``.

    Parameters
    ----------
    t : ndarray of shape (n_steps,)
        Positions of the decoded points on the path, from 0 (``a``) to 1
        (``b``).
    decoded : ndarray of shape (n_steps, n_features)
        The decoded points.
    images : ndarray of shape (n_steps, height, width[, 3]) or None
        The decoded points as images; None draws ``decoded`` as a heat map.
    curve_t : ndarray of shape (n_curve_points,)
        Positions at which the probabilities are evaluated.
    proba : ndarray of shape (n_curve_points, 3)
        Probabilities of ``a``, of ``b`` and of the most probable other class
        at each of ``curve_t`` (the last column is 0 with two classes).
    class_names : tuple
        ``(a, b)``.
    border : :class:`~sklearn.utils.Bunch` or None
        The result of :meth:`DisentangledVAE.class_border`, or None when the
        classifier does not switch from ``a`` to ``b`` along the path.

    Attributes
    ----------
    ax_ : matplotlib Axes
        Axes with the probabilities.
    strip_ax_ : matplotlib Axes
        Axes with the decoded points.
    figure_ : matplotlib Figure
        Figure containing the plot.
    image_ : matplotlib AxesImage
        The decoded points, tiled into one image.
    lines_ : list of matplotlib Line2D
        Probability curves of ``a``, ``b`` and the most probable other class.
    border_lines_ : list of matplotlib Line2D or None
        Vertical lines at the border on both axes; None without a border.
    """

    def __init__(self, *, t, decoded, images, curve_t, proba, class_names, border):
        self.t = t
        self.decoded = decoded
        self.images = images
        self.curve_t = curve_t
        self.proba = proba
        self.class_names = class_names
        self.border = border

    @classmethod
    def from_estimator(cls, estimator, a, b, *, n_steps=11, n_curve_points=201, ax=None, cmap="gray_r"):
        """Decode the path between two class centroids and plot the classifier along it.

        Parameters
        ----------
        estimator : DisentangledVAE
            Estimator fitted with labels.
        a, b : class label
            Two different labels from ``estimator.classes_``.
        n_steps : int, default=11
            Number of decoded points, ends included.
        n_curve_points : int, default=201
            Number of points at which the probabilities are evaluated.
        ax : pair of matplotlib Axes, default=None
            Axes for the decoded points and for the probabilities, in that
            order; a new figure is created when None.
        cmap : str or Colormap, default="gray_r"
            Colormap of single-channel images and of the heat map.

        Returns
        -------
        display : InterpolationDisplay
        """
        check_is_fitted(estimator)
        _check_supervised(estimator, cls.__name__)
        check_scalar(n_curve_points, "n_curve_points", Integral, min_val=2)
        index_a, index_b = encode_labels(estimator.classes_, [a, b], input_name="the given labels")
        if index_a == index_b:
            raise ValueError(f"a and b must be two different classes; got {a!r} twice.")
        decoded, Z_path = estimator.interpolate(a, b, n_steps=n_steps)
        shape = image_shape(estimator)
        images = None if shape is None else _to_images(decoded, shape)

        curve_t = np.linspace(0, 1, n_curve_points)
        curve = segment_points(Z_path[0], Z_path[-1], curve_t)
        all_proba = latent_proba(estimator.net_, curve, len(estimator.classes_))
        others = np.delete(all_proba, [index_a, index_b], axis=1)
        proba = np.column_stack(
            [all_proba[:, index_a], all_proba[:, index_b], others.max(axis=1, initial=0.0)]
        )
        try:
            border = estimator.class_border(a, b)
        except ValueError:  # the classifier never switches from a to b: no border to mark
            border = None
        display = cls(
            t=np.linspace(0, 1, n_steps),
            decoded=decoded,
            images=images,
            curve_t=curve_t,
            proba=proba,
            class_names=tuple(estimator.classes_[[index_a, index_b]].tolist()),
            border=border,
        )
        return display.plot(ax=ax, cmap=cmap)

    def plot(self, ax=None, *, cmap="gray_r"):
        """Draw the display.

        Parameters
        ----------
        ax : pair of matplotlib Axes, default=None
            Axes for the decoded points and for the probabilities, in that
            order; a new figure is created when None.
        cmap : str or Colormap, default="gray_r"
            Colormap of single-channel images and of the heat map.

        Returns
        -------
        display : InterpolationDisplay
        """
        import matplotlib.pyplot as plt

        n_steps = len(self.t)
        if ax is None:
            width = max(6.4, 0.6 * n_steps + 1.2)
            strip_height = 1.2
            if self.images is not None:
                # Square tiles: the axes are about 0.8 inch narrower than the
                # figure, and every tile is followed by a 1-pixel gap.
                height, tile_width = self.images.shape[1:3]
                strip_height = (width - 0.8) / n_steps * height / (tile_width + 1)
            _, (strip_ax, ax) = plt.subplots(
                2, 1, figsize=(width, strip_height + 3.6), sharex=True,
                height_ratios=[strip_height, 2.6], layout="constrained",
            )
        else:
            strip_ax, ax = ax
        name_a, name_b = self.class_names
        if self.images is not None:
            x_limits = _tile_limits(self.t, self.images.shape[2])
            strip = _mosaic(self.images[np.newaxis])
            strip_extent = (*x_limits, 0, 1)
            strip_ax.set_yticks([])
        else:
            half_step = 0.5 / (n_steps - 1)
            x_limits = (-half_step, 1 + half_step)
            strip = self.decoded.T
            strip_extent = (*x_limits, self.decoded.shape[1] - 0.5, -0.5)
            strip_ax.set_ylabel("feature")
        self.image_ = strip_ax.imshow(
            strip, cmap=cmap, extent=strip_extent, aspect="auto", interpolation="nearest",
            **_color_limits(self.decoded),
        )
        strip_ax.set_title(f"Decoded path from the centroid of class {name_a} to class {name_b}")

        styles = [
            {"color": "C0", "label": f"p({name_a})"},
            {"color": "C3", "label": f"p({name_b})"},
            {"color": "0.5", "linestyle": "--", "label": "most probable other class"},
        ]
        self.lines_ = [ax.plot(self.curve_t, column, **style)[0] for column, style in zip(self.proba.T, styles)]
        self.border_lines_ = None
        if self.border is not None:
            t = self.border.t
            self.border_lines_ = [
                axes.axvline(t, color="k", linestyle=":", linewidth=1.5) for axes in (strip_ax, ax)
            ]
            p_border = np.interp(t, self.curve_t, self.proba[:, 0])
            note = f"border t={t:.3f}\np({name_a}) = p({name_b}) = {p_border:.2f}"
            if self.border.other_class_wins:
                note += f"\nbut another class wins (p={self.border.max_other_proba:.2f})"
            # The note goes on the side of the line with more room.
            side = 1 if t < 0.5 else -1
            ax.annotate(
                note, xy=(t, 1), xycoords=("data", "axes fraction"), xytext=(4 * side, -4),
                textcoords="offset points", ha="left" if side > 0 else "right", va="top",
                fontsize="small",
            )
        ax.set_xlim(x_limits)
        # Room above the curves for the border's note; a weak classifier's
        # probabilities stay close to 1 / n_classes and would be flat on [0, 1].
        ax.set_ylim(0, min(1.05, 1.3 * self.proba.max()))
        ax.set(
            xlabel=f"position on the path (0: centroid of {name_a}, 1: centroid of {name_b})",
            ylabel="classifier probability",
        )
        # Below the axes, where it cannot hide the curves or the border's note.
        ax.legend(fontsize="small", loc="upper center", bbox_to_anchor=(0.5, -0.2), ncols=3, frameon=False)
        self.ax_ = ax
        self.strip_ax_ = strip_ax
        self.figure_ = ax.figure
        return self


class TrainingHistoryDisplay:
    """Loss terms per epoch and the classification weight schedule.

    Use :meth:`from_estimator` to create one. Draws the loss terms
    recorded in ``history_`` (on a log scale when all are positive), with
    the validation terms dashed when ``early_stopping`` held data out; for
    a model fitted with labels also the classifier's accuracy and the
    classification weight: the schedule over optimizer steps, the warm-up
    steps (weight 0) and the mean weight of each epoch.

    Parameters
    ----------
    epochs : ndarray of shape (n_epochs,)
        Epoch numbers.
    losses : dict of str to ndarray of shape (n_epochs,)
        Mean of each loss term over the epoch's training batches, by name.
    validation_losses : dict of str to ndarray of shape (n_epochs,)
        The same on the validation data, for some of the names of
        ``losses``; empty without validation data.
    accuracy : dict of str to ndarray of shape (n_epochs,)
        Classifier accuracy, by data set (``"training"``,
        ``"validation"``); empty for a model without a classifier.
    schedule : BaseSchedule or None
        The classification weight schedule; None draws the losses only.
    total_steps : int
        Optimizer steps of the whole training, the schedule's horizon.
    warmup_steps : int
        First optimizer steps, whose weight is 0.
    epoch_steps : ndarray of shape (n_epochs,)
        Optimizer step at the middle of each epoch.
    epoch_weights : ndarray of shape (n_epochs,) or None
        Mean classification weight of each epoch.

    Attributes
    ----------
    axes_ : ndarray of matplotlib Axes
        The losses, then, with a schedule, the accuracy and the
        classification weight.
    figure_ : matplotlib Figure
        Figure containing the plot.
    lines_ : dict of str to matplotlib Line2D
        Every curve drawn, by its legend label.
    """

    def __init__(
        self, *, epochs, losses, validation_losses, accuracy, schedule, total_steps, warmup_steps,
        epoch_steps, epoch_weights,
    ):
        self.epochs = epochs
        self.losses = losses
        self.validation_losses = validation_losses
        self.accuracy = accuracy
        self.schedule = schedule
        self.total_steps = total_steps
        self.warmup_steps = warmup_steps
        self.epoch_steps = epoch_steps
        self.epoch_weights = epoch_weights

    @classmethod
    def from_estimator(cls, estimator, *, ax=None):
        """Plot the training history of a fitted estimator.

        Parameters
        ----------
        estimator : DisentangledVAE
            Fitted estimator.
        ax : matplotlib Axes or sequence of matplotlib Axes, default=None
            One axes for a model fitted without labels, three (losses,
            accuracy, classification weight) for one fitted with labels; a
            new figure is created when None.

        Returns
        -------
        display : TrainingHistoryDisplay
        """
        check_is_fitted(estimator)
        history = estimator.history_
        supervised = hasattr(estimator, "classes_")
        recorded = history[-1].keys()

        def column(key):
            return np.asarray(history[:, key], dtype=np.float64)

        terms = {"loss": "total", "reconstruction": "reconstruction", "kl": "KL"}
        if supervised:
            terms["classification"] = "classification (unweighted)"
        losses = {label: column(f"train_{term}") for term, label in terms.items()}
        # The validation total leaves the classification term out, so it is
        # not comparable to the training total: only the terms are drawn.
        validation_losses = {
            label: column(f"valid_{term}")
            for term, label in terms.items()
            if term != "loss" and f"valid_{term}" in recorded
        }
        accuracy = {}
        if supervised:
            accuracy["training"] = column("train_accuracy")
            if "valid_accuracy" in recorded:
                accuracy["validation"] = column("valid_accuracy")
        batch_counts = column("train_batch_count")
        net = estimator.net_
        display = cls(
            epochs=np.asarray(history[:, "epoch"]),
            losses=losses,
            validation_losses=validation_losses,
            accuracy=accuracy,
            schedule=net.classification_weight if supervised else None,
            total_steps=net.total_steps_,
            warmup_steps=net.warmup_steps,
            epoch_steps=np.cumsum(batch_counts) - batch_counts / 2,
            epoch_weights=column("classification_weight") if supervised else None,
        )
        return display.plot(ax=ax)

    def plot(self, ax=None):
        """Draw the display.

        Parameters
        ----------
        ax : matplotlib Axes or sequence of matplotlib Axes, default=None
            One axes without a schedule, three (losses, accuracy,
            classification weight) with one; a new figure is created when
            None.

        Returns
        -------
        display : TrainingHistoryDisplay
        """
        import matplotlib.pyplot as plt
        from matplotlib.lines import Line2D

        n_axes = 1 if self.schedule is None else 3
        if ax is None:
            _, ax = plt.subplots(1, n_axes, figsize=(4.4 * n_axes, 3.8), layout="constrained", squeeze=False)
        axes = np.ravel(ax)
        if len(axes) != n_axes:
            raise ValueError(
                f"ax must hold {n_axes} axes for this history (losses"
                f"{', accuracy and classification weight' if n_axes == 3 else ''}); got {len(axes)}."
            )
        self.lines_ = {}
        self._plot_curves(axes[0], self.losses, self.validation_losses)
        if all(values.min() > 0 for values in [*self.losses.values(), *self.validation_losses.values()]):
            axes[0].set_yscale("log")
        axes[0].set(xlabel="epoch", ylabel="mean loss per sample", title="Loss terms")
        # One entry per term, and one for the dashes, below the axes: inside,
        # it would hide the start of the curves.
        handles = [self.lines_[label] for label in self.losses]
        if self.validation_losses:
            handles.append(Line2D([], [], color="0.3", linestyle="--", label="validation (dashed)"))
        axes[0].legend(
            handles=handles, fontsize="small", loc="upper center", bbox_to_anchor=(0.5, -0.2), ncols=2,
            frameon=False,
        )

        if self.schedule is not None:
            accuracy_ax, weight_ax = axes[1:]
            training = {"accuracy": self.accuracy["training"]}
            validation = {"accuracy": self.accuracy["validation"]} if "validation" in self.accuracy else {}
            self._plot_curves(accuracy_ax, training, validation, first_color=4)
            accuracy_ax.set_ylim(0, 1.02)
            accuracy_ax.set(xlabel="epoch", ylabel="accuracy", title="Classifier accuracy")
            if validation:
                accuracy_ax.legend(fontsize="small")
            self._plot_weight(weight_ax)
        self.axes_ = axes
        self.figure_ = axes[0].figure
        return self

    def _plot_curves(self, ax, training, validation, first_color=0):
        """Training curves solid, validation curves of the same name dashed in the same colour."""
        for i, (label, values) in enumerate(training.items()):
            color = f"C{first_color + i}"
            (self.lines_[label],) = ax.plot(self.epochs, values, marker=".", color=color, label=label)
            if label in validation:
                (self.lines_[f"{label} (validation)"],) = ax.plot(
                    self.epochs, validation[label], linestyle="--", color=color, label=f"{label} (validation)"
                )

    def _plot_weight(self, ax):
        self.lines_["schedule"] = self.schedule.plot(self.total_steps, ax=ax, label="schedule", color="C0")
        if self.warmup_steps:
            ax.axvspan(0, min(self.warmup_steps, self.total_steps), color="0.85", label="warm-up (weight 0)")
        # A log axis cannot show the 0 weight of warm-up epochs.
        shown = self.epoch_weights > 0 if ax.get_yscale() == "log" else slice(None)
        (self.lines_["mean weight per epoch"],) = ax.plot(
            self.epoch_steps[shown], self.epoch_weights[shown], "o", color="C1", markersize=4,
            label="mean weight per epoch",
        )
        ax.set_title("Classification weight")
        ax.legend(fontsize="small")
