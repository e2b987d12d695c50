"""Tests of :class:`skvae.explorer.LatentExplorer`.

Unit tests read the page without a browser; browser tests load it in
Chromium through Playwright, move the mouse and compare what the page
decoded with ``inverse_transform``. They skip when Playwright or Chromium
is missing (Debian: ``apt-get install chromium``; ``pip install
playwright``, no ``playwright install`` needed: the system Chromium is
used, found on PATH or at ``$SKVAE_CHROMIUM``).

Set ``SKVAE_EXPLORER_SCREENSHOT=path.png`` to keep a screenshot of the
digits page.
"""

import base64
import copy
import html
import json
import os
import re
import shutil
from html.parser import HTMLParser

import numpy as np
import pytest
from scipy.special import softmax
from sklearn.exceptions import NotFittedError
from sklearn.preprocessing import StandardScaler
import torch
from torch import nn

from skvae import DisentangledVAE
from skvae._inference import latent_proba
from skvae.explorer import LatentExplorer
from skvae.plotting import LatentExplorer as ReExported
from skvae.regions import segment_points

# Trains in about a second (the conftest's TRAINED_2D).
SMALL = dict(
    hidden_dims=(32,), classifier_hidden=(8,), max_epochs=20, batch_size=32, lr=1e-2, warmup_steps=0, random_state=0
)
TOL = 1e-4


@pytest.fixture(scope="module")
def vae8(digits):
    return DisentangledVAE(n_components=8, **SMALL).fit(*digits)


@pytest.fixture(scope="module")
def profile_vae(digits):
    """60 standardised features: not a square, not in [0, 1] (MSE, bar-chart page)."""
    X = StandardScaler().fit_transform(digits[0][:, :60]).astype(np.float32)
    return DisentangledVAE(**SMALL).fit(X, digits[1]), X


def _data(page_html):
    """The spec embedded in a page."""
    match = re.search(r'<script type="application/json" id="skvae-data">(.*?)</script>', page_html, re.S)
    return json.loads(match.group(1))


def _floats(text):
    return np.frombuffer(base64.b64decode(text), dtype="<f4")


def _run_ops(ops, z):
    """The page's interpreter in numpy and torch, for one latent point: a float64 vector.

    The page's JavaScript runs the same operations; the tests check both
    against the estimator.
    """
    x = np.asarray(z, dtype=np.float64).ravel()
    shape = None
    for op in ops:
        kind = op["op"]
        if kind == "linear":
            x = _floats(op["w"]).reshape(op["out"], op["in"]) @ x + _floats(op["b"])
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
            c_in, c_out = op["in_channels"], op["out_channels"]
            kh, kw = op["kernel"]
            inputs = torch.as_tensor(x.reshape(1, *shape))
            bias = torch.as_tensor(_floats(op["b"]).astype(np.float64))
            if kind == "conv2d":
                weight = torch.as_tensor(_floats(op["w"]).astype(np.float64)).reshape(c_out, c_in, kh, kw)
                out = torch.nn.functional.conv2d(inputs, weight, bias, stride=op["stride"], padding=op["padding"])
            else:
                weight = torch.as_tensor(_floats(op["w"]).astype(np.float64)).reshape(c_in, c_out, kh, kw)
                out = torch.nn.functional.conv_transpose2d(
                    inputs, weight, bias, stride=op["stride"], padding=op["padding"],
                    output_padding=op["output_padding"],
                )
            shape = list(out.shape[1:])
            x = out.numpy().ravel()
    return x


class _Resources(HTMLParser):
    """External resources a page would load: src and href of any element."""

    def __init__(self):
        super().__init__()
        self.found = []
        self.scripts = 0

    def handle_starttag(self, tag, attrs):
        self.scripts += tag == "script"
        for name, value in attrs:
            if name in ("src", "href") and value:
                self.found.append((tag, name, value))


# ------------------------------------------------------------ without a browser


def test_reexported_from_plotting():
    assert ReExported is LatentExplorer


def test_page_is_self_contained(vae, digits, tmp_path):
    path = LatentExplorer.from_estimator(vae, *digits).save_html(tmp_path / "explorer.html")
    text = path.read_text(encoding="utf-8")
    parser = _Resources()
    parser.feed(text)
    assert parser.found == []
    assert parser.scripts == 2  # the data and the code, both inline
    assert re.search(r"https?://", text) is None
    assert "fetch(" not in text and "import(" not in text


def test_page_holds_classes_and_points(vae, digits):
    explorer = LatentExplorer.from_estimator(vae, *digits)
    spec = _data(explorer.to_html())
    assert spec["classes"] == [str(c) for c in vae.classes_]
    assert len(spec["colors"]) == len(vae.classes_)
    assert spec["points"]["n"] == len(digits[0])
    np.testing.assert_array_equal(spec["points"]["labels"], np.searchsorted(vae.classes_, digits[1]))
    np.testing.assert_allclose(
        _floats(spec["points"]["xy"]).reshape(-1, 2), vae.transform(digits[0]), rtol=0, atol=1e-6
    )
    assert spec["output"] == {
        "kind": "image", "shape": [1, 8, 8], "n_features": 64, "feature_names": None, "vmin": 0.0, "vmax": 1.0
    }
    assert spec["sliders"] == []


def test_weights_round_trip(vae, digits):
    spec = _data(LatentExplorer.from_estimator(vae, *digits).to_html())
    module = vae.net_.module_
    linears = [layer for layer in module.decoder.modules() if isinstance(layer, nn.Linear)]
    ops = [op for op in spec["decoder"] if op["op"] == "linear"]
    assert len(ops) == len(linears) > 0
    for op, layer in zip(ops, linears):
        np.testing.assert_array_equal(
            _floats(op["w"]).reshape(op["out"], op["in"]), layer.weight.detach().numpy()
        )
        np.testing.assert_array_equal(_floats(op["b"]), layer.bias.detach().numpy())
    assert [op["op"] for op in spec["decoder"]] == ["linear", "relu", "linear", "sigmoid"]
    assert [op["op"] for op in spec["head"]] == ["linear", "leaky_relu", "linear"]
    assert spec["head"][1]["slope"] == 0.01


@pytest.mark.parametrize("model", ["vae", "vae8"])
def test_embedded_networks_match_the_estimator(model, digits, request):
    """The page's operations, run by a numpy reference interpreter, give
    inverse_transform and latent_proba."""
    estimator = request.getfixturevalue(model)
    spec = LatentExplorer.from_estimator(estimator, *digits).spec
    Z = (estimator.transform(digits[0][:20]) + np.random.default_rng(0).normal(size=(20, estimator.n_components)))
    Z = Z.astype(np.float32)
    decoded = np.stack([_run_ops(spec["decoder"], z) for z in Z])
    np.testing.assert_allclose(decoded, estimator.inverse_transform(Z), rtol=0, atol=TOL)
    proba = softmax(np.stack([_run_ops(spec["head"], z) for z in Z]), axis=1)
    np.testing.assert_allclose(proba, latent_proba(estimator, Z), rtol=0, atol=1e-8)


def test_plane_and_sliders_in_8d(vae8, digits):
    spec = LatentExplorer.from_estimator(vae8, *digits).spec
    Z = vae8.transform(digits[0]).astype(np.float64)
    origin, axes = np.array(spec["origin"]), np.array(spec["axes"])
    np.testing.assert_allclose(axes @ axes.T, np.eye(8), atol=1e-10)
    np.testing.assert_allclose(origin, Z.mean(axis=0), atol=1e-6)
    coords = (Z - origin) @ axes.T
    np.testing.assert_allclose(_floats(spec["points"]["xy"]).reshape(-1, 2), coords[:, :2], atol=1e-5)
    # Principal axes, by decreasing variance.
    assert np.all(np.diff(coords.var(axis=0)) <= 1e-9)
    assert len(spec["sliders"]) == 6
    for i, slider in enumerate(spec["sliders"], start=2):
        assert slider["min"] == pytest.approx(coords[:, i].min()) and slider["max"] == pytest.approx(coords[:, i].max())
        assert slider["name"].startswith(f"PC {i + 1} (")


def test_more_dimensions_than_points(vae8, digits):
    """Principal axes of 5 points in 8-D are completed to a basis."""
    spec = LatentExplorer.from_estimator(vae8, digits[0][:5]).spec
    axes = np.array(spec["axes"])
    np.testing.assert_allclose(axes @ axes.T, np.eye(8), atol=1e-10)
    assert len(spec["sliders"]) == 6


def test_unsupervised_model(plain_vae, digits):
    spec = LatentExplorer.from_estimator(plain_vae, digits[0]).spec
    assert spec["head"] is None and spec["classes"] == [] and spec["colors"] == []
    spec = LatentExplorer.from_estimator(plain_vae, *digits).spec
    assert spec["head"] is None and spec["classes"] == [str(c) for c in np.unique(digits[1])]


def test_predicted_classes_colour_the_points_without_y(vae, digits):
    spec = LatentExplorer.from_estimator(vae, digits[0]).spec
    assert spec["label_title"] == "predicted class"
    np.testing.assert_array_equal(spec["points"]["labels"], np.searchsorted(vae.classes_, vae.predict(digits[0])))


def test_max_points(vae, digits):
    spec = LatentExplorer.from_estimator(vae, *digits, max_points=50).spec
    assert spec["points"]["n"] == 50 and spec["n_points_total"] == len(digits[0])
    assert len(spec["points"]["labels"]) == 50


def test_profile_page_for_features_that_are_no_image(profile_vae):
    estimator, X = profile_vae
    spec = LatentExplorer.from_estimator(estimator, X).spec
    assert estimator.reconstruction_ == "mse"
    assert spec["output"]["kind"] == "profile" and spec["output"]["shape"] is None
    assert spec["decoder"][-1]["op"] == "linear"  # no sigmoid for MSE


def test_class_names_cannot_break_the_page(digits):
    y = np.where(digits[1] % 2, "</script><b>odd", "even & <i>")
    estimator = DisentangledVAE(**SMALL).fit(digits[0], y)
    text = LatentExplorer.from_estimator(estimator, digits[0], y).to_html()
    assert text.count("</script>") == 2
    assert sorted(_data(text)["classes"]) == ["</script><b>odd", "even & <i>"]


def test_repr_html_is_an_iframe_of_the_page(vae, digits):
    explorer = LatentExplorer.from_estimator(vae, *digits)
    frame = explorer._repr_html_()
    match = re.fullmatch(r'<iframe srcdoc="([^"]*)" style="[^"]*" title="[^"]*"></iframe>', frame)
    assert match and html.unescape(match.group(1)) == explorer.to_html()


def test_errors(vae, digits):
    one_d = DisentangledVAE(n_components=1, **SMALL)
    with pytest.raises(NotFittedError):
        LatentExplorer.from_estimator(one_d, *digits)
    with pytest.raises(ValueError, match="n_components=1"):
        LatentExplorer.from_estimator(one_d.set_params(max_epochs=1).fit(*digits), *digits)
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        LatentExplorer.from_estimator(vae, digits[0], digits[1][:10])
    with pytest.raises(ValueError, match="n_steps"):
        LatentExplorer.from_estimator(vae, *digits, n_steps=1)
    odd = copy.deepcopy(vae)
    odd.net_.module_.decoder.body[1] = nn.Tanh()
    with pytest.raises(TypeError, match="cannot run a Tanh"):
        LatentExplorer.from_estimator(odd, *digits)


# ------------------------------------------------------------------ in a browser


def _chromium():
    found = os.environ.get("SKVAE_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    return found or ("/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None)


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="the browser tests need Playwright: pip install playwright"
    )
    executable = _chromium()
    if executable is None:
        pytest.skip("the browser tests need Chromium (apt-get install chromium, or set SKVAE_CHROMIUM)")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable)
        yield browser
        browser.close()


def _open(browser, path):
    """A page showing the saved file, and the list its console errors go to."""
    page = browser.new_page(viewport={"width": 1100, "height": 1000})
    errors = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(path.as_uri())
    page.wait_for_function("window.skvaeExplorer !== undefined")
    return page, errors


def _plane_box(page):
    box = page.locator("#plane").bounding_box()
    # The plot area inside the canvas' margins (see M in the page's code).
    scale = box["width"] / 520
    return box["x"] + 56 * scale, box["y"] + 10 * scale, 454 * scale, 466 * scale


def _check_cursor(page, estimator, fractions):
    """Move the mouse over the plane; the page's decoding equals inverse_transform."""
    left, top, width, height = _plane_box(page)
    seen = []
    for fx, fy in fractions:
        page.mouse.move(left + fx * width, top + fy * height)
        page.evaluate("skvaeExplorer.settled()")
        seen.append(page.evaluate("skvaeExplorer.current"))
    # One call each: the estimator decodes blocks of 1024 rows, however few are asked.
    Z = np.array([current["z"] for current in seen], dtype=np.float32)
    np.testing.assert_allclose([c["x"] for c in seen], estimator.inverse_transform(Z), rtol=0, atol=TOL)
    if hasattr(estimator, "classes_"):
        np.testing.assert_allclose([c["proba"] for c in seen], latent_proba(estimator, Z), rtol=0, atol=TOL)
    # Different points, decoded anew at each.
    assert len({tuple(z) for z in Z}) == len(fractions)
    return Z


def _check_drag(page, estimator, start, stop):
    left, top, width, height = _plane_box(page)
    page.mouse.move(left + start[0] * width, top + start[1] * height)
    page.mouse.down()
    page.mouse.move(left + stop[0] * width, top + stop[1] * height, steps=4)
    page.mouse.up()
    page.wait_for_function("skvaeExplorer.state.path !== null && skvaeExplorer.state.path.done")
    path = page.evaluate("skvaeExplorer.state.path")
    Z = np.array(path["z"], dtype=np.float32)
    n_steps = page.evaluate("skvaeExplorer.spec.n_steps")
    assert len(Z) == n_steps
    np.testing.assert_allclose(Z, segment_points(Z[0], Z[-1], np.linspace(0, 1, n_steps)), atol=1e-5)
    np.testing.assert_allclose(path["x"], estimator.inverse_transform(Z), rtol=0, atol=TOL)
    # The strip shows them: it is not blank.
    assert page.evaluate(
        """() => { const c = document.getElementById("strip");
                   const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
                   return d.some((v, i) => i % 4 === 3 && v > 0); }"""
    )


POINTS = [(0.1, 0.1), (0.35, 0.7), (0.5, 0.5), (0.9, 0.3), (0.75, 0.95)]


def test_browser_digits_2d(browser, vae, digits, tmp_path):
    path = LatentExplorer.from_estimator(vae, *digits).save_html(tmp_path / "explorer.html")
    page, errors = _open(browser, path)
    _check_cursor(page, vae, POINTS)
    _check_drag(page, vae, (0.2, 0.2), (0.8, 0.7))
    # A point given directly, far outside the plane's extent.
    z = np.array([[7.5, -9.25]], dtype=np.float32)
    np.testing.assert_allclose(
        page.evaluate("z => skvaeExplorer.decode(z)", z[0].tolist()), vae.inverse_transform(z)[0], rtol=0, atol=TOL
    )
    screenshot = os.environ.get("SKVAE_EXPLORER_SCREENSHOT") or tmp_path / "explorer.png"
    page.screenshot(path=screenshot)
    assert os.path.getsize(screenshot) > 10_000
    assert errors == []
    page.close()


def test_browser_digits_8d_sliders(browser, vae8, digits, tmp_path):
    explorer = LatentExplorer.from_estimator(vae8, *digits)
    page, errors = _open(browser, explorer.save_html(tmp_path / "explorer.html"))
    axes = np.array(explorer.spec["axes"])
    origin = np.array(explorer.spec["origin"])
    for slider, tick in [(0, 60), (3, -80), (5, 100)]:
        offset = page.evaluate(f"skvaeExplorer.setSlider({slider}, {tick})")
        bound = explorer.spec["sliders"][slider]["max" if tick > 0 else "min"]
        assert offset == pytest.approx(abs(tick) / 100 * bound)
        Z = _check_cursor(page, vae8, POINTS[:2])
        offsets = (Z - origin) @ axes[2:].T
        assert offsets[:, slider] == pytest.approx(offset, abs=1e-4)
    _check_drag(page, vae8, (0.1, 0.8), (0.9, 0.1))
    assert errors == []
    page.close()


def test_browser_feature_profile(browser, profile_vae, tmp_path):
    estimator, X = profile_vae
    page, errors = _open(browser, LatentExplorer.from_estimator(estimator, X).save_html(tmp_path / "p.html"))
    _check_cursor(page, estimator, POINTS[:3])
    _check_drag(page, estimator, (0.3, 0.3), (0.6, 0.9))
    assert errors == []
    page.close()


def test_browser_jupyter_iframe(browser, vae, digits):
    """_repr_html_ runs as a notebook shows it: inside an iframe of another page."""
    page = browser.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.set_viewport_size({"width": 600, "height": 800})  # narrow: the panels stack
    page.set_content("<html><body>" + LatentExplorer.from_estimator(vae, *digits)._repr_html_() + "</body></html>")
    frame = page.frames[1]
    frame.wait_for_function("window.skvaeExplorer !== undefined")
    # The frame grew to its page's height: nothing is cut off.
    frame_height = page.evaluate("document.querySelector('iframe').getBoundingClientRect().height")
    assert frame_height == pytest.approx(frame.evaluate("document.documentElement.scrollHeight"), abs=1)
    assert frame_height > 700
    z = np.array([[0.5, -1.0]], dtype=np.float32)
    np.testing.assert_allclose(
        frame.evaluate("z => skvaeExplorer.decode(z)", z[0].tolist()), vae.inverse_transform(z)[0], rtol=0, atol=TOL
    )
    assert errors == []
    page.close()


@pytest.mark.parametrize("architecture", ["mlp", "conv"])
def test_browser_mnist(browser, mnist_dir, architecture, tmp_path):
    from skvae.datasets import mnist_standard_split

    X_train, X_test, y_train, y_test = mnist_standard_split(data_home=mnist_dir)
    n_train = 2000 if architecture == "mlp" else 300
    estimator = DisentangledVAE(
        architecture=architecture, image_shape=(28, 28), hidden_dims=(32,), classifier_hidden=(8,),
        max_epochs=2 if architecture == "mlp" else 1, lr=1e-2, warmup_steps=0, random_state=0,
    ).fit(X_train[:n_train], y_train[:n_train])
    explorer = LatentExplorer.from_estimator(estimator, X_test[:500], y_test[:500])
    assert explorer.spec["decoder_kind"] == ("MLP" if architecture == "mlp" else "convolutional")
    page, errors = _open(browser, explorer.save_html(tmp_path / "mnist.html"))
    _check_cursor(page, estimator, POINTS[:3])
    _check_drag(page, estimator, (0.2, 0.8), (0.8, 0.2))
    assert errors == []
    page.close()
