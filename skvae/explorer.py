"""An interactive, self-contained HTML explorer of a fitted model's latent space.

:class:`LatentExplorer` writes one HTML file (or a Jupyter output) that
shows the latent means of some data over the latent classifier's regions
and decodes the latent point under the cursor live, in the browser. The
decoder's and the classifier's weights are embedded in the page as
base64-encoded float32 arrays and run in JavaScript, so the page needs no
Python, no server and no network: it works offline, from a file.

The page's markup, style sheet and script are files of the package
(``skvae/explorer_page``). The title, class and feature names come from
users' data, so the page treats them as hostile: they are filled in once,
escaped for where they go, the page's script shows them as text only, and
a Content-Security-Policy lets nothing run but the page's own script and
style, and load nothing.
"""

import base64
import functools
import hashlib
import html
import json
import re
from importlib import resources
from numbers import Integral
from pathlib import Path

import numpy as np
from sklearn.utils import check_random_state, check_scalar
from sklearn.utils.validation import check_consistent_length, check_is_fitted
from torch import nn

from ._plane import (
    UNLABELED_COLOR,
    check_plane_dimension,
    class_colors,
    image_shape,
    latent_plane,
    padded_range,
    point_labels,
)

__all__ = ["LatentExplorer"]

# Format of the data block the page reads; bumped on incompatible changes.
_FORMAT_VERSION = 1


# ------------------------------------------------------------------ the networks


def _b64(array, dtype="<f4"):
    """``array`` as base64 of its little-endian bytes (float32 by default)."""
    return base64.b64encode(np.ascontiguousarray(array, dtype=dtype).tobytes()).decode("ascii")


def _layer_ops(layers):
    """The operations of a list of torch layers as JSON-ready dicts the page runs.

    Knows the layers skvae's decoders and latent classifier are made of;
    anything else raises a TypeError, as the page could not run it.
    """
    return [op for layer in layers for op in _layer_op(layer)]


def _layer_op(module):
    """The page's operations for one torch layer."""
    if isinstance(module, nn.Linear):
        weight = module.weight.detach().cpu().numpy()
        bias = np.zeros(weight.shape[0]) if module.bias is None else module.bias.detach().cpu().numpy()
        return [{"op": "linear", "in": int(weight.shape[1]), "out": int(weight.shape[0]),
                 "w": _b64(weight), "b": _b64(bias)}]
    if isinstance(module, nn.ReLU):
        return [{"op": "relu"}]
    if isinstance(module, nn.LeakyReLU):
        return [{"op": "leaky_relu", "slope": float(module.negative_slope)}]
    if isinstance(module, nn.Sigmoid):
        return [{"op": "sigmoid"}]
    raise TypeError(
        f"LatentExplorer runs the decoder and the latent classifier in the browser and "
        f"knows linear, ReLU, LeakyReLU and sigmoid layers; it "
        f"cannot run a {type(module).__name__}."
    )


def _decoder_ops(estimator):
    """The decoder's operations, its output activation included."""
    return _layer_ops(estimator.net_.module_.decoder_layers())


def _classifier_ops(estimator):
    """The latent classifier's operations (to logits), or None for a model fitted without labels."""
    layers = estimator.net_.module_.head_layers()
    return None if layers is None else _layer_ops(layers)


# ------------------------------------------------------- what the page draws


def _slider_ranges(coords, axis_names):
    """One slider per axis after the plane's two, spanning the latent means along it."""
    sliders = []
    for name, values in zip(axis_names[2:], coords[:, 2:].T):
        low, high = float(values.min()), float(values.max())
        if high - low < 1e-12:  # no spread along the axis: still a range to move in
            low, high = low - 0.5, high + 0.5
        sliders.append({"name": name, "min": low, "max": high})
    return sliders


def _drawn_points(n_points, max_points, random_state):
    """Indices of the latent means drawn: all, or a sorted random subset of ``max_points``."""
    if n_points <= max_points:
        return np.arange(n_points)
    return np.sort(check_random_state(random_state).choice(n_points, max_points, replace=False))


def _hex(rgba):
    return "#" + "".join(f"{round(float(c) * 255):02x}" for c in rgba[:3])


def _output_spec(estimator, X):
    """How the page shows a decoded point: an image, or a bar per feature, and its value range."""
    shape = image_shape(estimator)
    X_values = np.asarray(X.to_numpy() if hasattr(X, "to_numpy") else X, dtype=np.float64)
    if shape is None:
        # Bars from 0, so the range holds 0 and every value of X.
        vmin, vmax = min(0.0, float(X_values.min())), max(0.0, float(X_values.max()))
        if vmax == vmin:
            vmax += 1.0
    elif estimator.reconstruction_ == "bce":
        vmin, vmax = 0.0, 1.0
    else:
        # The grey levels ignore the few pixels a decoder overshoots with.
        vmin, vmax = (float(v) for v in np.percentile(X_values, [1, 99]))
        if not vmax > vmin:
            vmin, vmax = vmin - 0.5, vmax + 0.5
    feature_names = getattr(estimator, "feature_names_in_", None)
    return {
        "kind": "profile" if shape is None else "image",
        "shape": None if shape is None else [int(s) for s in shape],
        "n_features": int(estimator.n_features_in_),
        "feature_names": None if shape is not None or feature_names is None else [str(n) for n in feature_names],
        "vmin": vmin,
        "vmax": vmax,
    }


# ------------------------------------------------------------------- the page

# A placeholder of page.html: {{NAME}}.
_PLACEHOLDER = re.compile(r"\{\{([A-Z]+)\}\}")

# Escapes that keep JSON inert inside a <script> element: without "<" no
# "</script>" can end it early and no "<!--" can switch the parser into its
# escaped states; ">" and "&" for the parsers that treat them specially;
# U+2028 and U+2029 end a line in older JavaScript. All of them occur only
# inside JSON strings, where the \u escapes read back as the same text.
_SCRIPT_SAFE_JSON = str.maketrans(
    {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
)


def _script_json(value):
    """``value`` as JSON that can sit in a ``<script type="application/json">`` element."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return text.translate(_SCRIPT_SAFE_JSON)


def _hash_source(text):
    """The CSP source that allows an inline script or style of exactly ``text``."""
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return f"'sha256-{base64.b64encode(digest).decode('ascii')}'"


@functools.cache
def _page_parts():
    """The page's template, style sheet and script, and the policy that lets only these two run.

    ``read_text`` turns line ends into "\\n" as the browser's HTML parser
    does, so the hashes are those of the texts the browser reads.
    """
    folder = resources.files(__package__).joinpath("explorer_page")
    template, style, script = (
        folder.joinpath(name).read_text(encoding="utf-8") for name in ("page.html", "style.css", "explorer.js")
    )
    policy = "; ".join([
        "default-src 'none'",  # nothing from the network: no scripts, styles, images, fonts, frames, fetches
        f"script-src {_hash_source(script)}",
        f"style-src {_hash_source(style)}",
        "base-uri 'none'",
        "form-action 'none'",
    ])
    return template, style, script, policy


def _fill(template, values):
    """``template`` with each ``{{NAME}}`` replaced by ``values[NAME]``.

    One pass over the template: the values are not searched for
    placeholders, so a value holding ``{{DATA}}`` stays that text.
    """
    return _PLACEHOLDER.sub(lambda match: values[match.group(1)], template)


class LatentExplorer:
    """Interactive HTML page of a fitted model's latent space.

    Use :meth:`from_estimator` to create one, then :meth:`save_html` to
    write a single self-contained HTML file (its JavaScript, styles and
    weights inline: no network, no server, works offline), or show it in
    Jupyter, where it displays inline in an ``<iframe>``.

    The page draws the latent means of ``X`` coloured by class over the
    latent classifier's regions on a 2-D plane of the latent space: the
    latent axes for ``n_components=2``; for more dimensions the plane of the
    first two principal axes of the latent means, with one slider per
    remaining principal axis (3rd, 4th, ...) that moves the plane along that
    axis, from the lowest to the highest coordinate of a latent mean along
    it (the slider's ticks go from -100 to 100, 0 being the plane through
    the mean of the latent means). The point drawn at plane coordinates
    ``(u, v)`` with slider values ``s_3, ..., s_d`` is ``origin + u a_1 + v a_2 + s_3 a_3 + ... + s_d a_d``
    (``origin`` the mean of the latent means, ``a_i`` the principal axes).
    The drawn points are the projections of the latent means on the plane,
    and the regions are the classifier's predictions on the plane at the
    sliders' offset, recomputed as they move.

    Moving the cursor decodes the latent point under it in the browser and
    shows it (an image when the estimator has ``image_shape_`` or a square
    number of features, else a bar chart of the features, which names the
    feature under the pointer: its column name when ``X`` had them at fit)
    with the classifier's probabilities. Dragging from one point to another decodes
    ``n_steps`` points of the straight segment between them, as a strip.

    The browser runs the decoder in float32 (accumulating in float64) and
    the classifier in float64, as :meth:`~skvae.DisentangledVAE.inverse_transform`
    and :meth:`~skvae.DisentangledVAE.predict_proba` do: both agree with the
    estimator to about 1e-6. A model fitted with ``precision="bf16-mixed"``
    decodes under bfloat16 in Python, so the page (float32) differs from its
    ``inverse_transform`` by bfloat16's precision. The page's
    ``window.skvaeExplorer`` object exposes ``decode(z)``, ``proba(z)`` and
    the state under the cursor (``current``), for scripts and tests.

    The title, class names and feature names come from the data and are
    shown as text, whatever they hold. The page's Content-Security-Policy
    lets only its own script and style run (by their SHA-256 hashes) and
    lets it load nothing, so that code slipped into the page would not run
    either.

    Parameters
    ----------
    spec : dict
        Everything the page shows, JSON-ready: made by
        :meth:`from_estimator`.

    Attributes
    ----------
    spec : dict
        As given.

    See Also
    --------
    skvae.plotting.LatentSpaceDisplay : The same picture, static, in matplotlib.

    Examples
    --------
    >>> from skvae import DisentangledVAE
    >>> from skvae.datasets import load_digits
    >>> from skvae.plotting import LatentExplorer
    >>> X, y = load_digits(return_X_y=True)
    >>> vae = DisentangledVAE(hidden_dims=(32,), max_epochs=5, random_state=0).fit(X, y)
    >>> explorer = LatentExplorer.from_estimator(vae, X, y)
    >>> explorer.save_html("explorer.html")  # doctest: +SKIP
    """

    def __init__(self, spec):
        self.spec = spec

    @classmethod
    def from_estimator(cls, estimator, X, y=None, *, n_steps=10, grid_resolution=120, max_points=5000,
                       random_state=0, title=None):
        """Build the explorer of ``estimator`` around the latent means of ``X``.

        Parameters
        ----------
        estimator : DisentangledVAE
            Fitted estimator with ``n_components >= 2`` and a decoder made
            of the layers skvae builds (MLP or convolutional).
        X : array-like of shape (n_samples, n_features)
            Data whose latent means are drawn and set the plane, its extent
            and the sliders' ranges.
        y : array-like of shape (n_samples,), default=None
            Labels that colour the points; those equal to the estimator's
            ``unlabeled_label`` mark unlabeled points, drawn grey. None
            colours them by the classifier's prediction (one colour for a
            model fitted without labels).
        n_steps : int, default=10
            Decoded points of a dragged path, both ends included.
        grid_resolution : int, default=120
            Grid cells per axis on which the page evaluates the classifier
            for the regions.
        max_points : int, default=5000
            At most this many latent means are drawn, a random subset when
            ``X`` has more (all of them set the plane and the extent).
        random_state : int, RandomState instance or None, default=0
            Draws that subset.
        title : str, default=None
            Title of the page.

        Returns
        -------
        explorer : LatentExplorer
        """
        check_is_fitted(estimator)
        check_plane_dimension(estimator, cls.__name__)
        check_scalar(n_steps, "n_steps", Integral, min_val=2)
        check_scalar(grid_resolution, "grid_resolution", Integral, min_val=2, max_val=1000)
        check_scalar(max_points, "max_points", Integral, min_val=1)
        if y is not None:
            check_consistent_length(X, y)

        decoder = _decoder_ops(estimator)  # first: a layer the page cannot run fails before any work
        Z = np.asarray(estimator.transform(X), dtype=np.float64)
        n_components = Z.shape[1]
        origin, axes, axis_names = latent_plane(Z)
        coords = (Z - origin) @ axes.T
        labels, classes, label_title = point_labels(estimator, Z, y)
        class_names = [] if classes is None else [str(c) for c in classes]
        if labels is None:  # nothing to colour by: every point in the page's one colour
            labels = np.zeros(len(Z), dtype=int)
        drawn = _drawn_points(len(Z), max_points, random_state)
        spec = {
            "version": _FORMAT_VERSION,
            "title": f"Latent space of a {n_components}-D DisentangledVAE" if title is None else str(title),
            "n_components": int(n_components),
            "origin": origin.tolist(),
            "axes": axes.tolist(),
            "axis_names": axis_names,
            "extent": [*padded_range(coords[:, 0]), *padded_range(coords[:, 1])],
            "sliders": _slider_ranges(coords, axis_names),
            "points": {"n": len(drawn), "xy": _b64(coords[drawn, :2]), "labels": labels[drawn].tolist()},
            "n_points_total": len(Z),
            "classes": class_names,
            "colors": [_hex(color) for color in class_colors(len(class_names))],
            "unlabeled_color": UNLABELED_COLOR,
            "label_title": label_title if class_names else "",
            "decoder": decoder,
            "head": _classifier_ops(estimator),
            "output": _output_spec(estimator, X),
            "n_steps": int(n_steps),
            "grid_resolution": int(grid_resolution),
        }
        return cls(spec)

    def to_html(self):
        """The page as a string: a complete, self-contained HTML document."""
        template, style, script, policy = _page_parts()
        return _fill(template, {
            "POLICY": html.escape(policy),
            "TITLE": html.escape(self.spec["title"]),
            "STYLE": style,
            "DATA": _script_json(self.spec),
            "SCRIPT": script,
        })

    def save_html(self, path):
        """Write the page to ``path`` (UTF-8) and return the path.

        Parameters
        ----------
        path : str or path-like
            File to write, usually ending in ``.html``.

        Returns
        -------
        path : pathlib.Path
        """
        path = Path(path)
        path.write_text(self.to_html(), encoding="utf-8")
        return path

    def _repr_html_(self):
        # An iframe keeps the page's script and styles apart from the
        # notebook's, and runs it wherever notebooks show HTML.
        return (
            '<iframe srcdoc="' + html.escape(self.to_html(), quote=True) + '" '
            f'style="width: 100%; height: {660 + 26 * len(self.spec["sliders"])}px; border: none;" '
            'title="skvae LatentExplorer"></iframe>'
        )
