"""An interactive, self-contained HTML explorer of a fitted model's latent space.

:class:`LatentExplorer` writes one HTML file (or a Jupyter output) that
shows the latent means of some data over the latent classifier's regions
and decodes the latent point under the cursor live, in the browser. The
decoder's and the classifier's weights are embedded in the page as
base64-encoded float32 arrays and run in JavaScript, so the page needs no
Python, no server and no network: it works offline, from a file.
"""

import base64
import html
import json
from numbers import Integral
from pathlib import Path

import numpy as np
from sklearn.decomposition import PCA
from sklearn.utils import check_random_state, check_scalar
from sklearn.utils.validation import check_consistent_length, check_is_fitted
from torch import nn

from ._inference import latent_proba
from ._labels import encode_labels

__all__ = ["LatentExplorer"]

# Format of the data block the page reads; bumped on incompatible changes.
_FORMAT_VERSION = 1


def _b64(array, dtype="<f4"):
    """``array`` as base64 of its little-endian bytes (float32 by default)."""
    return base64.b64encode(np.ascontiguousarray(array, dtype=dtype).tobytes()).decode("ascii")


def _pair(value):
    return [int(v) for v in (value if isinstance(value, tuple) else (value, value))]


def _layer_ops(module):
    """The operations of ``module`` as a list of JSON-ready dicts the page runs.

    Knows the layers skvae's decoders and latent classifier are made of;
    anything else raises a TypeError, as the page could not run it.
    """
    from .modules import ConvDecoder, LatentClassifier, MLPDecoder

    if isinstance(module, nn.Sequential):
        return [op for child in module for op in _layer_ops(child)]
    if isinstance(module, (MLPDecoder, LatentClassifier)):
        return _layer_ops(module.body) + _layer_ops(module.out)
    if isinstance(module, ConvDecoder):
        return _layer_ops(module.body)
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
    if isinstance(module, nn.Flatten) and module.start_dim == 1 and module.end_dim == -1:
        return []  # the page keeps every activation flat, in (channel, row, column) order
    if isinstance(module, nn.Unflatten) and module.dim == 1:
        return [{"op": "shape", "shape": [int(s) for s in module.unflattened_size]}]
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)) and _plain_conv(module):
        weight = module.weight.detach().cpu().numpy()
        bias = np.zeros(module.out_channels) if module.bias is None else module.bias.detach().cpu().numpy()
        transposed = isinstance(module, nn.ConvTranspose2d)
        op = {
            "op": "conv_transpose2d" if transposed else "conv2d",
            "in_channels": int(module.in_channels),
            "out_channels": int(module.out_channels),
            "kernel": _pair(module.kernel_size),
            "stride": _pair(module.stride),
            "padding": _pair(module.padding),
            "w": _b64(weight),
            "b": _b64(bias),
        }
        if transposed:
            op["output_padding"] = _pair(module.output_padding)
        return [op]
    raise TypeError(
        f"LatentExplorer runs the decoder and the latent classifier in the browser and "
        f"knows linear, (transposed) convolution, ReLU, LeakyReLU and sigmoid layers; it "
        f"cannot run a {type(module).__name__}."
    )


def _plain_conv(module):
    """A convolution the page can run: zero padding given as numbers, no groups or dilation."""
    return (
        module.groups == 1
        and _pair(module.dilation) == [1, 1]
        and module.padding_mode == "zeros"
        and not isinstance(module.padding, str)
    )


def _run_ops(ops, Z):
    """Reference implementation of the page's interpreter in numpy, for one point.

    The page's JavaScript does the same; the tests check both against the
    estimator. Returns a float64 vector.
    """
    x = np.asarray(Z, dtype=np.float64).ravel()
    shape = None
    for op in ops:
        kind = op["op"]
        if kind == "linear":
            w = _unb64(op["w"]).reshape(op["out"], op["in"])
            x = w @ x + _unb64(op["b"])
            shape = None
        elif kind == "relu":
            x = np.maximum(x, 0)
        elif kind == "leaky_relu":
            x = np.where(x >= 0, x, op["slope"] * x)
        elif kind == "sigmoid":
            x = 1 / (1 + np.exp(-x))
        elif kind == "shape":
            shape = op["shape"]
        else:
            import torch

            c_in, c_out = op["in_channels"], op["out_channels"]
            kh, kw = op["kernel"]
            inp = torch.as_tensor(x.reshape(1, *shape))
            w = torch.as_tensor(_unb64(op["w"]))
            b = torch.as_tensor(_unb64(op["b"]))
            if kind == "conv2d":
                out = torch.nn.functional.conv2d(
                    inp, w.reshape(c_out, c_in, kh, kw), b, stride=op["stride"], padding=op["padding"]
                )
            else:
                out = torch.nn.functional.conv_transpose2d(
                    inp, w.reshape(c_in, c_out, kh, kw), b, stride=op["stride"], padding=op["padding"],
                    output_padding=op["output_padding"],
                )
            shape = list(out.shape[1:])
            x = out.numpy().ravel()
    return x


def _unb64(text, dtype="<f4"):
    return np.frombuffer(base64.b64decode(text), dtype=dtype).astype(np.float64)


def _check_plane_dimension(estimator):
    if estimator.n_components < 2:
        raise ValueError(
            "LatentExplorer draws a 2-D plane of the latent space, but this "
            "DisentangledVAE has n_components=1; plot transform(X) against the "
            "labels instead, or use InterpolationDisplay."
        )


def _axes_of(Z):
    """Orthonormal axes of the latent space in the order the page uses them.

    The latent axes themselves for 2 dimensions; else the principal axes of
    ``Z`` (the first two span the drawn plane, the others are the sliders),
    completed to a basis of the whole space when ``Z`` has fewer points than
    dimensions. Returns ``(origin, axes, names)``.
    """
    n_components = Z.shape[1]
    if n_components == 2:
        return np.zeros(2), np.eye(2), ["latent dimension 1", "latent dimension 2"]
    pca = PCA(n_components=min(n_components, len(Z)), svd_solver="full").fit(Z)
    axes = pca.components_
    names = [f"PC {i + 1} ({ratio:.0%} of variance)" for i, ratio in enumerate(pca.explained_variance_ratio_)]
    if len(axes) < n_components:
        # The rest of the space: the orthogonal complement of the fitted axes.
        q, _ = np.linalg.qr(np.vstack([axes, np.eye(n_components)]).T)
        extra = q[:, len(axes) : n_components].T
        names += [f"axis {i + 1} (no variance in X)" for i in range(len(axes), n_components)]
        axes = np.vstack([axes, extra])
    return pca.mean_, axes, names


def _padded_range(values, margin=0.05):
    low, high = float(values.min()), float(values.max())
    pad = margin * (high - low) or 0.5
    return low - pad, high + pad


def _hex(rgba):
    return "#" + "".join(f"{round(float(c) * 255):02x}" for c in rgba[:3])


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
    the mean of the latent means). The point drawn at plane coordinates ``(u, v)`` with slider values
    ``s_3, ..., s_d`` is ``origin + u a_1 + v a_2 + s_3 a_3 + ... + s_d a_d``
    (``origin`` the mean of the latent means, ``a_i`` the principal axes).
    The drawn points are the projections of the latent means on the plane,
    and the regions are the classifier's predictions on the plane at the
    sliders' offset, recomputed as they move.

    Moving the cursor decodes the latent point under it in the browser and
    shows it (an image when the estimator has ``image_shape_`` or a square
    number of features, else a bar chart of the features) with the
    classifier's probabilities. Dragging from one point to another decodes
    ``n_steps`` points of the straight segment between them, as a strip.

    The browser runs the decoder in float32 (accumulating in float64) and
    the classifier in float64, as :meth:`~skvae.DisentangledVAE.inverse_transform`
    and :meth:`~skvae.DisentangledVAE.predict_proba` do: both agree with the
    estimator to about 1e-6. A model fitted with ``precision="bf16-mixed"``
    decodes under bfloat16 in Python, so the page (float32) differs from its
    ``inverse_transform`` by bfloat16's precision. The page's
    ``window.skvaeExplorer`` object exposes ``decode(z)``, ``proba(z)`` and
    the state under the cursor (``current``), for scripts and tests.

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
            Labels that colour the points. None colours them by the
            classifier's prediction (one colour for a model fitted without
            labels).
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
        _check_plane_dimension(estimator)
        check_scalar(n_steps, "n_steps", Integral, min_val=2)
        check_scalar(grid_resolution, "grid_resolution", Integral, min_val=2, max_val=1000)
        check_scalar(max_points, "max_points", Integral, min_val=1)
        if y is not None:
            check_consistent_length(X, y)
        from .plotting import _class_colors, _image_shape

        module = estimator.net_.module_
        decoder = _layer_ops(module.decoder)
        if module.output_activation == "sigmoid":
            decoder.append({"op": "sigmoid"})
        supervised = hasattr(estimator, "classes_") and module.classifier is not None
        head = _layer_ops(module.classifier) if supervised else None

        Z = np.asarray(estimator.transform(X), dtype=np.float64)
        n_components = Z.shape[1]
        origin, axes, names = _axes_of(Z)
        coords = (Z - origin) @ axes.T
        extent = [*_padded_range(coords[:, 0]), *_padded_range(coords[:, 1])]
        sliders = []
        for i in range(2, n_components):
            low, high = float(coords[:, i].min()), float(coords[:, i].max())
            if high - low < 1e-12:  # no spread along the axis: still a range to move in
                low, high = low - 0.5, high + 0.5
            sliders.append({"name": names[i], "min": low, "max": high})

        if supervised:
            class_names = [str(c) for c in estimator.classes_]
            if y is None:
                labels, label_title = np.argmax(latent_proba(estimator.net_, Z, len(estimator.classes_)), axis=1), "predicted class"
            else:
                labels = encode_labels(
                    estimator.classes_, y, unlabeled_label=getattr(estimator, "unlabeled_label", None)
                )
                label_title = "class"
        elif y is not None:
            classes, labels = np.unique(np.asarray(y), return_inverse=True)
            class_names, label_title = [str(c) for c in classes], "class"
        else:
            class_names, labels, label_title = [], np.zeros(len(Z), dtype=int), ""
        colors = [_hex(c) for c in _class_colors(len(class_names))] if class_names else []

        keep = np.arange(len(Z))
        if len(Z) > max_points:
            keep = np.sort(check_random_state(random_state).choice(len(Z), max_points, replace=False))

        shape = _image_shape(estimator)
        X_values = np.asarray(X if not hasattr(X, "to_numpy") else X.to_numpy(), dtype=np.float64)
        if estimator.reconstruction_ == "bce":
            vmin, vmax = 0.0, 1.0
        else:
            vmin, vmax = (float(v) for v in np.percentile(X_values, [1, 99]))
            if not vmax > vmin:
                vmin, vmax = vmin - 0.5, vmax + 0.5
        output = {
            "kind": "profile" if shape is None else "image",
            "shape": None if shape is None else [int(s) for s in shape],
            "n_features": int(estimator.n_features_in_),
            "vmin": vmin,
            "vmax": vmax,
        }
        if shape is None:
            output["vmin"] = min(0.0, float(X_values.min()))
            output["vmax"] = max(0.0, float(X_values.max()))
            if output["vmax"] == output["vmin"]:
                output["vmax"] += 1.0

        if title is None:
            title = f"Latent space of a {n_components}-D DisentangledVAE"
        architecture = "convolutional" if any(op["op"].startswith("conv") for op in decoder) else "MLP"
        spec = {
            "version": _FORMAT_VERSION,
            "title": str(title),
            "n_components": int(n_components),
            "origin": [float(v) for v in origin],
            "axes": [[float(v) for v in row] for row in axes],
            "axis_names": names,
            "extent": [float(v) for v in extent],
            "sliders": sliders,
            "points": {"n": int(len(keep)), "xy": _b64(coords[keep, :2]),
                       "labels": [int(v) for v in labels[keep]]},
            "n_points_total": int(len(Z)),
            "classes": class_names,
            "colors": colors,
            "label_title": label_title,
            "decoder": decoder,
            "decoder_kind": architecture,
            "head": head,
            "output": output,
            "n_steps": int(n_steps),
            "grid_resolution": int(grid_resolution),
        }
        return cls(spec)

    def to_html(self):
        """The page as a string: a complete, self-contained HTML document."""
        data = json.dumps(self.spec, separators=(",", ":"), allow_nan=False)
        # Inside <script>, "</" could close the element early.
        data = data.replace("</", "<\\/")
        return _PAGE.replace("{{TITLE}}", html.escape(self.spec["title"])).replace(
            "{{CSS}}", _CSS
        ).replace("{{DATA}}", data).replace("{{JS}}", _JS)

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


_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{TITLE}}</title>
<style>{{CSS}}</style>
</head>
<body>
<div id="skvae-explorer">
<h1 id="title">{{TITLE}}</h1>
<div class="row">
  <div class="column">
    <canvas id="plane" width="520" height="520" aria-label="latent plane"></canvas>
    <div id="sliders"></div>
    <div id="legend"></div>
  </div>
  <div class="column side">
    <section><h2>Decoded at the cursor</h2>
      <canvas id="decoded" width="224" height="224"></canvas>
      <div id="where" class="small"></div></section>
    <section id="proba-section"><h2>Class probabilities</h2><div id="proba"></div></section>
    <section><h2>Path <span class="small">(drag on the plane)</span></h2>
      <canvas id="strip" width="420" height="60"></canvas></section>
    <div id="timing" class="small"></div>
  </div>
</div>
<p id="about" class="small"></p>
</div>
<script type="application/json" id="skvae-data">{{DATA}}</script>
<script>{{JS}}</script>
</body>
</html>
"""

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 12px; color: #222; }
h1 { font-size: 18px; margin: 0 0 8px 0; }
h2 { font-size: 14px; margin: 0 0 4px 0; }
.row { display: flex; flex-wrap: wrap; gap: 16px; align-items: flex-start; }
.column { display: flex; flex-direction: column; gap: 8px; }
.side { min-width: 280px; max-width: 440px; }
section { border: 1px solid #ddd; border-radius: 4px; padding: 6px 8px; }
#plane { width: 520px; height: 520px; cursor: crosshair; touch-action: none; }
#decoded { width: 224px; height: 224px; image-rendering: pixelated; background: #fff; border: 1px solid #ccc; }
#strip { width: 420px; height: 60px; image-rendering: pixelated; }
.small { font-size: 12px; color: #555; }
#legend { display: flex; flex-wrap: wrap; gap: 4px 10px; font-size: 12px; max-width: 520px; }
.swatch { display: inline-block; width: 10px; height: 10px; border-radius: 5px; margin-right: 3px; }
.slider { display: grid; grid-template-columns: 180px 1fr 60px; gap: 6px; align-items: center; font-size: 12px; max-width: 520px; }
.bar-row { display: grid; grid-template-columns: 70px 1fr 48px; gap: 6px; align-items: center; font-size: 12px; }
.bar { height: 10px; background: #eee; }
.bar > div { height: 10px; }
.best { font-weight: bold; }
"""

_JS = r"""
(function () {
"use strict";
const spec = JSON.parse(document.getElementById("skvae-data").textContent);

function f32(b64) {
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  return new Float32Array(bytes.buffer);
}
function prepare(ops) {
  if (!ops) return null;
  return ops.map((op) => {
    const out = Object.assign({}, op);
    if (op.w) { out.w = f32(op.w); out.b = f32(op.b); }
    return out;
  });
}
const decoderOps = prepare(spec.decoder);
const headOps = prepare(spec.head);
const n = spec.n_components;

// Run a list of operations on one latent point. With round32, activations
// are stored as float32 after each layer (accumulating in float64), as
// torch's float32 layers; without, everything stays float64.
function run(ops, z, round32) {
  const Arr = round32 ? Float32Array : Float64Array;
  let x = Arr.from(z);
  let shape = null;
  for (const op of ops) {
    switch (op.op) {
      case "linear": {
        const y = new Arr(op.out), w = op.w, b = op.b, nin = op.in;
        for (let o = 0; o < op.out; o++) {
          let s = b[o];
          const row = o * nin;
          for (let i = 0; i < nin; i++) s += w[row + i] * x[i];
          y[o] = s;
        }
        x = y; shape = null; break;
      }
      case "relu": for (let i = 0; i < x.length; i++) if (x[i] < 0) x[i] = 0; break;
      case "leaky_relu": for (let i = 0; i < x.length; i++) if (x[i] < 0) x[i] *= op.slope; break;
      case "sigmoid": for (let i = 0; i < x.length; i++) x[i] = 1 / (1 + Math.exp(-x[i])); break;
      case "shape": shape = op.shape.slice(); break;
      case "conv_transpose2d": { const r = convTranspose(op, x, shape, Arr); x = r[0]; shape = r[1]; break; }
      case "conv2d": { const r = conv(op, x, shape, Arr); x = r[0]; shape = r[1]; break; }
      default: throw new Error("unknown operation " + op.op);
    }
  }
  return x;
}

function convTranspose(op, x, shape, Arr) {
  const [cin, hin, win] = shape, cout = op.out_channels;
  const [kh, kw] = op.kernel, [sh, sw] = op.stride, [ph, pw] = op.padding, [oph, opw] = op.output_padding;
  const hout = (hin - 1) * sh - 2 * ph + kh + oph, wout = (win - 1) * sw - 2 * pw + kw + opw;
  const plane = hout * wout, acc = new Float64Array(cout * plane), w = op.w;
  // weight layout (cin, cout, kh, kw); scatter each input value.
  for (let ci = 0; ci < cin; ci++) {
    for (let iy = 0; iy < hin; iy++) {
      for (let ix = 0; ix < win; ix++) {
        const v = x[(ci * hin + iy) * win + ix];
        if (v === 0) continue;
        for (let ky = 0; ky < kh; ky++) {
          const oy = iy * sh - ph + ky;
          if (oy < 0 || oy >= hout) continue;
          for (let kx = 0; kx < kw; kx++) {
            const ox = ix * sw - pw + kx;
            if (ox < 0 || ox >= wout) continue;
            const base = oy * wout + ox;
            let wi = (ci * cout * kh + ky) * kw + kx;
            for (let co = 0; co < cout; co++, wi += kh * kw) acc[co * plane + base] += v * w[wi];
          }
        }
      }
    }
  }
  const y = new Arr(cout * plane);
  for (let co = 0; co < cout; co++) {
    const b = op.b[co];
    for (let p = 0; p < plane; p++) y[co * plane + p] = acc[co * plane + p] + b;
  }
  return [y, [cout, hout, wout]];
}

function conv(op, x, shape, Arr) {
  const [cin, hin, win] = shape, cout = op.out_channels;
  const [kh, kw] = op.kernel, [sh, sw] = op.stride, [ph, pw] = op.padding;
  const hout = Math.floor((hin + 2 * ph - kh) / sh) + 1, wout = Math.floor((win + 2 * pw - kw) / sw) + 1;
  const y = new Arr(cout * hout * wout), w = op.w;
  for (let co = 0; co < cout; co++) {
    for (let oy = 0; oy < hout; oy++) {
      for (let ox = 0; ox < wout; ox++) {
        let s = op.b[co];
        for (let ci = 0; ci < cin; ci++) {
          for (let ky = 0; ky < kh; ky++) {
            const iy = oy * sh - ph + ky;
            if (iy < 0 || iy >= hin) continue;
            for (let kx = 0; kx < kw; kx++) {
              const ix = ox * sw - pw + kx;
              if (ix < 0 || ix >= win) continue;
              s += x[(ci * hin + iy) * win + ix] * w[((co * cin + ci) * kh + ky) * kw + kx];
            }
          }
        }
        y[(co * hout + oy) * wout + ox] = s;
      }
    }
  }
  return [y, [cout, hout, wout]];
}

function decode(z) { return run(decoderOps, Float32Array.from(z), true); }
function proba(z) {
  if (!headOps) return null;
  const logits = run(headOps, Float32Array.from(z), false);
  let m = -Infinity;
  for (const v of logits) m = Math.max(m, v);
  let s = 0;
  const p = new Float64Array(logits.length);
  for (let i = 0; i < p.length; i++) { p[i] = Math.exp(logits[i] - m); s += p[i]; }
  for (let i = 0; i < p.length; i++) p[i] /= s;
  return p;
}

// ---- geometry: plane coordinates (u, v) and slider offsets -> latent point
const sliderValues = spec.sliders.map(() => 0);
function latent(u, v) {
  const z = new Float64Array(n);
  for (let j = 0; j < n; j++) z[j] = spec.origin[j] + u * spec.axes[0][j] + v * spec.axes[1][j];
  for (let k = 0; k < sliderValues.length; k++) {
    for (let j = 0; j < n; j++) z[j] += sliderValues[k] * spec.axes[k + 2][j];
  }
  return Float32Array.from(z);  // the page decodes float32 points
}

const canvas = document.getElementById("plane");
const ctx = canvas.getContext("2d");
const W = canvas.width, H = canvas.height;
const M = { left: 56, right: 10, top: 10, bottom: 44 };
const PW = W - M.left - M.right, PH = H - M.top - M.bottom;
const [x0, x1, y0, y1] = spec.extent;
function toPlane(px, py) { return [x0 + (px - M.left) / PW * (x1 - x0), y1 - (py - M.top) / PH * (y1 - y0)]; }
function toPixel(u, v) { return [M.left + (u - x0) / (x1 - x0) * PW, M.top + (y1 - v) / (y1 - y0) * PH]; }

function rgb(hex) { return [1, 3, 5].map((i) => parseInt(hex.substr(i, 2), 16)); }
const colors = spec.colors.map(rgb);

// ---- layers of the plane: regions (recomputed with the sliders), points, overlay
const regionCanvas = document.createElement("canvas");
const G = spec.grid_resolution;
regionCanvas.width = G; regionCanvas.height = G;
function drawRegions() {
  const rctx = regionCanvas.getContext("2d");
  rctx.clearRect(0, 0, G, G);
  if (!headOps) return;
  const img = rctx.createImageData(G, G);
  for (let r = 0; r < G; r++) {
    const v = y1 - (r + 0.5) / G * (y1 - y0);
    for (let c = 0; c < G; c++) {
      const u = x0 + (c + 0.5) / G * (x1 - x0);
      const p = proba(latent(u, v));
      let best = 0;
      for (let k = 1; k < p.length; k++) if (p[k] > p[best]) best = k;
      const col = colors[best], o = (r * G + c) * 4;
      img.data[o] = col[0]; img.data[o + 1] = col[1]; img.data[o + 2] = col[2]; img.data[o + 3] = 77;
    }
  }
  rctx.putImageData(img, 0, 0);
}

const pointCanvas = document.createElement("canvas");
pointCanvas.width = W; pointCanvas.height = H;
function drawPoints() {
  const pctx = pointCanvas.getContext("2d");
  const xy = f32(spec.points.xy), labels = spec.points.labels;
  for (let i = 0; i < spec.points.n; i++) {
    const [px, py] = toPixel(xy[2 * i], xy[2 * i + 1]);
    const l = labels[i];
    pctx.fillStyle = l >= 0 && l < spec.colors.length ? spec.colors[l] : "#1f77b4";
    if (spec.colors.length === 0) pctx.fillStyle = "#1f77b4";
    if (l < 0) pctx.fillStyle = "#999999";
    pctx.beginPath(); pctx.arc(px, py, 2.2, 0, 2 * Math.PI); pctx.fill();
  }
  // axes, ticks and names
  pctx.strokeStyle = "#444"; pctx.fillStyle = "#222"; pctx.lineWidth = 1;
  pctx.strokeRect(M.left, M.top, PW, PH);
  pctx.font = "11px sans-serif";
  pctx.textAlign = "center"; pctx.textBaseline = "top";
  for (const t of ticks(x0, x1)) {
    const [px] = toPixel(t, y0);
    pctx.beginPath(); pctx.moveTo(px, M.top + PH); pctx.lineTo(px, M.top + PH + 4); pctx.stroke();
    pctx.fillText(fmt(t), px, M.top + PH + 6);
  }
  pctx.textAlign = "right"; pctx.textBaseline = "middle";
  for (const t of ticks(y0, y1)) {
    const [, py] = toPixel(x0, t);
    pctx.beginPath(); pctx.moveTo(M.left - 4, py); pctx.lineTo(M.left, py); pctx.stroke();
    pctx.fillText(fmt(t), M.left - 6, py);
  }
  pctx.font = "12px sans-serif"; pctx.textAlign = "center"; pctx.textBaseline = "bottom";
  pctx.fillText(spec.axis_names[0], M.left + PW / 2, H - 2);
  pctx.save(); pctx.translate(12, M.top + PH / 2); pctx.rotate(-Math.PI / 2);
  pctx.textBaseline = "middle"; pctx.fillText(spec.axis_names[1], 0, 0); pctx.restore();
}
function ticks(a, b) {
  const span = b - a, step0 = Math.pow(10, Math.floor(Math.log10(span / 5)));
  const step = [1, 2, 5, 10].map((m) => m * step0).find((s) => span / s <= 6);
  const out = [];
  for (let t = Math.ceil(a / step) * step; t <= b + 1e-12; t += step) out.push(Math.abs(t) < step * 1e-9 ? 0 : t);
  return out;
}
function fmt(t) { return Math.abs(t) >= 1000 || (t !== 0 && Math.abs(t) < 0.01) ? t.toExponential(1) : +t.toFixed(2) + ""; }

// ---- state, exposed for scripts and tests
const state = {
  cursor: null,      // [u, v] plane coordinates under the cursor
  current: null,     // {z, x, proba, ms} of the last decoded cursor point
  path: null,        // {a: [u, v], b: [u, v], z: [...], x: [...]} of the dragged path
  decodeTimes: [],   // milliseconds of the last decodes (performance.now())
};
let dragStart = null;

function composite() {
  ctx.clearRect(0, 0, W, H);
  ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, W, H);
  ctx.imageSmoothingEnabled = true;  // soft borders between the grid's cells
  ctx.drawImage(regionCanvas, M.left, M.top, PW, PH);
  ctx.drawImage(pointCanvas, 0, 0);
  if (state.path) {
    const [ax, ay] = toPixel(...state.path.a), [bx, by] = toPixel(...state.path.b);
    ctx.strokeStyle = "#000"; ctx.lineWidth = 1.5;
    ctx.beginPath(); ctx.moveTo(ax, ay); ctx.lineTo(bx, by); ctx.stroke();
    ctx.fillStyle = "#000";
    for (let i = 0; i < spec.n_steps; i++) {
      const t = i / (spec.n_steps - 1);
      ctx.beginPath(); ctx.arc(ax + t * (bx - ax), ay + t * (by - ay), 2.5, 0, 2 * Math.PI); ctx.fill();
    }
  }
  if (state.cursor) {
    const [px, py] = toPixel(...state.cursor);
    ctx.strokeStyle = "#000"; ctx.lineWidth = 1;
    ctx.beginPath(); ctx.arc(px, py, 6, 0, 2 * Math.PI); ctx.stroke();
    ctx.beginPath(); ctx.moveTo(px - 10, py); ctx.lineTo(px + 10, py);
    ctx.moveTo(px, py - 10); ctx.lineTo(px, py + 10); ctx.stroke();
  }
}

// ---- decoded output: image or feature profile
const out = spec.output;
function drawImage(target, x, dx, dy, dw, dh) {
  const tctx = target.getContext("2d");
  const [c, h, w] = out.shape, tmp = document.createElement("canvas");
  tmp.width = w; tmp.height = h;
  const t = tmp.getContext("2d"), img = t.createImageData(w, h);
  const scale = 255 / (out.vmax - out.vmin);
  for (let p = 0; p < h * w; p++) {
    for (let k = 0; k < 3; k++) {
      const v = c === 1 ? x[p] : x[k * h * w + p];
      let g = (v - out.vmin) * scale;
      g = g < 0 ? 0 : g > 255 ? 255 : g;
      img.data[4 * p + k] = c === 1 ? 255 - g : g;  // grey images in gray_r, as the displays
    }
    img.data[4 * p + 3] = 255;
  }
  t.putImageData(img, 0, 0);
  tctx.imageSmoothingEnabled = false;
  tctx.drawImage(tmp, dx, dy, dw, dh);
}
function drawProfile(target, x, dx, dy, dw, dh) {
  const tctx = target.getContext("2d");
  const m = x.length, zero = dy + dh * out.vmax / (out.vmax - out.vmin);
  tctx.fillStyle = "#fafafa"; tctx.fillRect(dx, dy, dw, dh);
  tctx.fillStyle = "#1f77b4";
  for (let i = 0; i < m; i++) {
    const v = Math.max(out.vmin, Math.min(out.vmax, x[i]));
    const top = dy + dh * (out.vmax - v) / (out.vmax - out.vmin);
    const bx = dx + i * dw / m;
    tctx.fillRect(bx, Math.min(top, zero), Math.max(dw / m - (m < 60 ? 1 : 0), 0.5), Math.abs(zero - top));
  }
  tctx.strokeStyle = "#888"; tctx.beginPath(); tctx.moveTo(dx, zero); tctx.lineTo(dx + dw, zero); tctx.stroke();
}
const draw = out.kind === "image" ? drawImage : drawProfile;

const decodedCanvas = document.getElementById("decoded");
if (out.kind === "profile") {
  decodedCanvas.width = 400; decodedCanvas.height = 200;
  decodedCanvas.style.width = "400px"; decodedCanvas.style.height = "200px";
}
const probaDiv = document.getElementById("proba");
const probaBars = [];
if (headOps) {
  spec.classes.forEach((name, k) => {
    const row = document.createElement("div"); row.className = "bar-row";
    const label = document.createElement("span"); label.textContent = name;
    const bar = document.createElement("div"); bar.className = "bar";
    const fill = document.createElement("div"); fill.style.background = spec.colors[k]; fill.style.width = "0%";
    bar.appendChild(fill);
    const value = document.createElement("span"); value.textContent = "";
    row.append(label, bar, value); probaDiv.appendChild(row);
    probaBars.push([row, fill, value]);
  });
} else {
  document.getElementById("proba-section").style.display = "none";
}

function timed(z) {
  const t0 = performance.now();
  const x = decode(z);
  const ms = performance.now() - t0;
  state.decodeTimes.push(ms);
  if (state.decodeTimes.length > 200) state.decodeTimes.shift();
  return [x, ms];
}

function showCursor() {
  if (!state.cursor) return;
  const z = latent(...state.cursor);
  const [x, ms] = timed(z);
  const p = proba(z);
  state.current = { z: Array.from(z), x: Array.from(x), proba: p ? Array.from(p) : null, ms: ms };
  const dctx = decodedCanvas.getContext("2d");
  dctx.clearRect(0, 0, decodedCanvas.width, decodedCanvas.height);
  draw(decodedCanvas, x, 0, 0, decodedCanvas.width, decodedCanvas.height);
  if (p) {
    let best = 0;
    for (let k = 1; k < p.length; k++) if (p[k] > p[best]) best = k;
    probaBars.forEach(([row, fill, value], k) => {
      fill.style.width = (100 * p[k]).toFixed(1) + "%";
      value.textContent = p[k].toFixed(3);
      row.className = k === best ? "bar-row best" : "bar-row";
    });
  }
  const zs = Array.from(z).map((v) => v.toFixed(2)).join(", ");
  document.getElementById("where").textContent =
    "plane (" + state.cursor.map((v) => v.toFixed(2)).join(", ") + ")  z = [" + zs + "]";
  const times = state.decodeTimes, mean = times.reduce((a, b) => a + b, 0) / times.length;
  document.getElementById("timing").textContent =
    "decoding in the browser (" + spec.decoder_kind + " decoder): " + ms.toFixed(3) +
    " ms for this point, " + mean.toFixed(3) + " ms on average over the last " + times.length;
}

// The path strip is decoded a few images per frame, so that dragging stays smooth.
const strip = document.getElementById("strip");
let pathJob = 0;
function startPath() {
  const job = ++pathJob, path = state.path, k = spec.n_steps;
  const za = latent(...path.a), zb = latent(...path.b);
  path.z = []; path.x = [];
  const gap = 4, tile = Math.max(8, Math.min(out.kind === "image" ? 56 : 80, Math.floor((420 - gap * (k - 1)) / k)));
  strip.width = k * (tile + gap) - gap; strip.height = tile;
  strip.style.width = strip.width + "px"; strip.style.height = strip.height + "px";
  const sctx = strip.getContext("2d");
  sctx.clearRect(0, 0, strip.width, strip.height);
  let i = 0;
  function step() {
    if (job !== pathJob) return;
    const t0 = performance.now();
    while (i < k && performance.now() - t0 < 12) {
      const t = i / (k - 1), z = new Float64Array(n);
      // (1 - t) a + t b, exact at both ends as skvae.regions.segment_points
      for (let j = 0; j < n; j++) z[j] = (1 - t) * za[j] + t * zb[j];
      const z32 = Float32Array.from(z), [x] = timed(z32);
      path.z.push(Array.from(z32)); path.x.push(Array.from(x));
      draw(strip, x, i * (tile + gap), 0, tile, tile);
      i++;
    }
    if (i < k) requestAnimationFrame(step); else path.done = true;
  }
  step();
}

// ---- input
// Pointer events only record where the pointer is; the next animation frame
// draws and decodes, once however many events came.
let pending = false, pathChanged = false;
function schedule() {
  if (pending) return;
  pending = true;
  requestAnimationFrame(() => {
    pending = false;
    composite();
    showCursor();
    if (pathChanged && state.path) { pathChanged = false; startPath(); }
  });
}
function planeAt(event) {
  const r = canvas.getBoundingClientRect();
  const px = (event.clientX - r.left) * W / r.width, py = (event.clientY - r.top) * H / r.height;
  if (px < M.left || px > M.left + PW || py < M.top || py > M.top + PH) return null;
  return toPlane(px, py);
}
canvas.addEventListener("pointermove", (event) => {
  const at = planeAt(event);
  if (!at) return;
  state.cursor = at;
  if (dragStart) { state.path = { a: dragStart, b: at, z: [], x: [], done: false }; pathChanged = true; }
  schedule();
});
canvas.addEventListener("pointerdown", (event) => {
  const at = planeAt(event);
  if (!at) return;
  dragStart = at;
  state.path = null;
  canvas.setPointerCapture(event.pointerId);
  schedule();
});
canvas.addEventListener("pointerup", () => { dragStart = null; });

const sliderDiv = document.getElementById("sliders");
if (spec.sliders.length) {
  const head = document.createElement("div"); head.className = "small";
  head.textContent = "Offset of the plane along the other principal axes:";
  sliderDiv.appendChild(head);
}
spec.sliders.forEach((s, k) => {
  const row = document.createElement("label"); row.className = "slider";
  const name = document.createElement("span"); name.textContent = s.name;
  // Ticks -100..100: 0 is the plane through the mean, -100 and 100 the
  // lowest and highest coordinate of a latent mean along the axis.
  const input = document.createElement("input");
  input.type = "range"; input.min = -100; input.max = 100; input.step = 1; input.value = 0;
  const value = document.createElement("span"); value.textContent = "0.00";
  input.addEventListener("input", () => {
    const tick = +input.value;
    sliderValues[k] = tick < 0 ? -tick / 100 * s.min : tick / 100 * s.max;
    value.textContent = sliderValues[k].toFixed(2);
    drawRegions();
    if (state.path) pathChanged = true;
    schedule();
  });
  row.append(name, input, value); sliderDiv.appendChild(row);
});

const legend = document.getElementById("legend");
if (spec.classes.length) {
  const title = document.createElement("span"); title.textContent = spec.label_title + ":";
  legend.appendChild(title);
  spec.classes.forEach((name, k) => {
    const item = document.createElement("span");
    const sw = document.createElement("span"); sw.className = "swatch"; sw.style.background = spec.colors[k];
    item.append(sw, document.createTextNode(name)); legend.appendChild(item);
  });
}

const about = [];
about.push(n === 2
  ? "The plane is the 2-D latent space."
  : "The plane is spanned by the first two principal axes of the " + n + "-D latent means, through their mean; " +
    "each slider moves it along one of the remaining principal axes. Points are the latent means projected " +
    "on the plane.");
about.push(spec.points.n < spec.n_points_total
  ? spec.points.n + " of " + spec.n_points_total + " latent means drawn." : spec.points.n + " latent means drawn.");
if (headOps) about.push("Shaded: the class the latent classifier predicts, on a " + G + "x" + G + " grid.");
about.push("Move the cursor to decode a latent point; drag to decode the straight path between two points (" +
  spec.n_steps + " steps). Everything is computed in this page, from the embedded " + spec.decoder_kind +
  " decoder weights (float32).");
document.getElementById("about").textContent = about.join(" ");

drawRegions(); drawPoints(); composite();

// Shown in an iframe (Jupyter, the docs), the page sets the frame's height
// to its own, whether its panels sit side by side or stack in a narrow one.
// A frame of another origin cannot be reached: its fixed height stays.
function fitFrame() {
  try {
    const frame = window.frameElement;
    if (frame) frame.style.height = document.documentElement.scrollHeight + "px";
  } catch (error) { /* cross-origin parent */ }
}
fitFrame();
window.addEventListener("resize", fitFrame);

window.skvaeExplorer = {
  spec: spec,
  state: state,
  get current() { return state.current; },
  decode: (z) => Array.from(decode(z)),
  proba: (z) => { const p = proba(z); return p ? Array.from(p) : null; },
  latent: (u, v) => Array.from(latent(u, v)),
  toPixel: toPixel,
  // Moves slider k to tick -100..100 as a user would; returns the offset.
  setSlider: (k, tick) => {
    const input = sliderDiv.querySelectorAll("input")[k];
    input.value = tick; input.dispatchEvent(new Event("input"));
    return sliderValues[k];
  },
  sliderValues: sliderValues,
  // Resolves after the next two animation frames: the pointer's effect is drawn.
  settled: () => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))),
};
})();
"""
