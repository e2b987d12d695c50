"""Tests of :class:`skvae.explorer.LatentExplorer`.

Unit tests read the page without a browser; browser tests load it in
Chromium through Playwright, move the mouse and compare what the page
decoded with ``inverse_transform``, and check that hostile class names,
feature names and titles are shown as text and run nothing. Without
Playwright or Chromium they skip, and fail under CI (``$CI`` set), where
they must run (Debian: ``apt-get install chromium``; ``pip install
playwright``, no ``playwright install`` needed: the system Chromium is
used, found on PATH or at ``$SKVAE_CHROMIUM``).

Set ``SKVAE_EXPLORER_SCREENSHOT=path.png`` to keep a screenshot of the
digits page.
"""

import base64
import copy
import hashlib
import html
import json
import math
import os
import re
import shutil
import time
from html.parser import HTMLParser
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
from scipy.special import softmax
from sklearn.exceptions import NotFittedError
from sklearn.preprocessing import StandardScaler
from torch import nn

from skvae import DisentangledVAE
from skvae._inference import latent_proba
from skvae.explorer import LatentExplorer, _fill
from skvae.plotting import LatentExplorer as ReExported
from skvae.regions import segment_points

# Trains in about a second (the conftest's TRAINED_2D).
SMALL = dict(
    hidden_dims=(32,), classifier_hidden=(8,), max_epochs=20, batch_size=32, lr=1e-2, warmup_steps=0, random_state=0
)
TOL = 1e-4

# Texts that break a page which pastes data into its markup or script:
# the template's placeholders, markup, the HTML parser's escaped script
# states, entities, CDATA ends, JavaScript template literals and line
# separators, a javascript: URL, right-to-left and astral text, a NUL and
# a very long text. 15 of them: as feature names, not a square number, so
# the page draws bars and shows the names.
HOSTILE = [
    "<!--<script>",
    "{{JS}}",
    "{{DATA}}",
    "</script><script>alert(1)</script>",
    "<img src=x onerror=alert(3)>",
    "\"'><svg onload=alert(4)>",
    "line\u2028separator\u2029paragraph",
    "&amp; &lt;i&gt; &#x3C;",
    "]]>",
    "${alert(5)} `${x}` `",
    "<style>body { display: none }</style>",
    "javascript:alert(6)",
    "\u202etxt.exe \u05e9\u05dc\u05d5\u05dd \u0645\u0631\u062d\u0628\u0627 \U0001f600",
    "nul\x00inside",
    "long " + "<b>{{SCRIPT}}{{TITLE}}{{POLICY}}</b>" * 300,
]
HOSTILE_TITLE = "Iris {{DATA}} <img src=x onerror=alert(3)> {{SCRIPT}} <!--<script>"


@pytest.fixture(scope="module")
def vae8(digits):
    return DisentangledVAE(n_components=8, **SMALL).fit(*digits)


@pytest.fixture(scope="module")
def hostile_explorer():
    """A model whose classes and features are named by ``HOSTILE``, and its explorer titled ``HOSTILE_TITLE``."""
    pd = pytest.importorskip("pandas")
    assert math.isqrt(len(HOSTILE)) ** 2 != len(HOSTILE)
    X = pd.DataFrame(np.random.default_rng(0).random((10 * len(HOSTILE), len(HOSTILE))), columns=HOSTILE)
    y = np.array(HOSTILE, dtype=object)[np.arange(len(X)) % len(HOSTILE)]
    estimator = DisentangledVAE(hidden_dims=(8,), classifier_hidden=(), max_epochs=2, random_state=0).fit(X, y)
    return estimator, LatentExplorer.from_estimator(estimator, X, y, title=HOSTILE_TITLE)


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
    """The page's interpreter in numpy, for one latent point: a float64 vector.

    The page's JavaScript runs the same operations; the tests check both
    against the estimator.
    """
    x = np.asarray(z, dtype=np.float64).ravel()
    for op in ops:
        kind = op["op"]
        if kind == "linear":
            x = _floats(op["w"]).reshape(op["out"], op["in"]) @ x + _floats(op["b"])
        elif kind == "relu":
            x = np.maximum(x, 0)
        elif kind == "leaky_relu":
            x = np.where(x >= 0, x, op["slope"] * x)
        elif kind == "sigmoid":
            x = 1 / (1 + np.exp(-x))
        else:
            raise AssertionError(f"unknown operation {kind!r}")
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
    np.testing.assert_allclose(proba, latent_proba(estimator.net_, Z, len(estimator.classes_)), rtol=0, atol=1e-8)


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
    # 5 points spread along 4 axes: PC 3 and PC 4, then 4 axes of no variance.
    names = [slider["name"] for slider in spec["sliders"]]
    assert [name.split(" (")[0] for name in names] == ["PC 3", "PC 4", "axis 5", "axis 6", "axis 7", "axis 8"]
    assert names[-1] == "axis 8 (no variance in X)"


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


def test_placeholders_are_filled_in_one_pass():
    """A value holding a placeholder keeps it: the values are not searched again."""
    assert _fill("{{A}}|{{B}}", {"A": "{{B}}", "B": "{{A}}"}) == "{{B}}|{{A}}"


def test_hostile_texts_stay_data(hostile_explorer):
    """Hostile title, class and feature names add no element to the page, and
    its data block holds no character that could end it or change how the
    HTML parser reads it, yet reads back exactly."""
    _, explorer = hostile_explorer
    text = explorer.to_html()
    parser = _Resources()
    parser.feed(text)
    assert parser.found == [] and parser.scripts == 2
    assert (text.count("<script"), text.count("</script"), text.count("<style"), text.count("<!--")) == (2, 2, 1, 0)
    assert re.search(r"<title>(.*?)</title>", text, re.S).group(1) == html.escape(HOSTILE_TITLE)
    block = re.search(r'<script type="application/json" id="skvae-data">(.*?)</script>', text, re.S).group(1)
    assert not set(block) & set("<>&\u2028\u2029")
    data = json.loads(block)
    assert data == json.loads(json.dumps(explorer.spec))
    assert data["title"] == HOSTILE_TITLE
    assert data["classes"] == sorted(HOSTILE)
    assert data["output"]["feature_names"] == HOSTILE


def _sha256_source(text):
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii") + "'"


def test_content_security_policy_allows_only_the_page_own_code(vae, digits):
    """The policy, first in the page, runs the page's own script and style
    (by their hashes) and nothing else, and loads nothing."""
    text = LatentExplorer.from_estimator(vae, *digits).to_html()
    match = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]*)">', text)
    policy = html.unescape(match.group(1))
    script = re.search(r"<script>(.*?)</script>", text, re.S).group(1)
    style = re.search(r"<style>(.*?)</style>", text, re.S).group(1)
    assert dict(directive.strip().split(" ", 1) for directive in policy.split(";")) == {
        "default-src": "'none'",
        "script-src": _sha256_source(script),
        "style-src": _sha256_source(style),
        "base-uri": "'none'",
        "form-action": "'none'",
    }
    assert match.start() < text.index("<style>") < text.index("<script")


def _page_file(name):
    return resources.files("skvae").joinpath("explorer_page", name).read_text(encoding="utf-8")


def test_page_script_writes_no_markup():
    """The page's script builds the page from text only: no HTML parsing,
    no code from strings; neither it nor the style sheet can end its element."""
    script = _page_file("explorer.js")
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "setAttribute", "eval(",
                 "Function(", "srcdoc"):
        assert sink not in script
    assert "</script" not in script.lower() and "<!--" not in script
    assert "</style" not in _page_file("style.css").lower()


def test_page_files_are_package_data():
    """pyproject.toml ships every file of skvae/explorer_page in the wheel."""
    tomllib = pytest.importorskip("tomllib")
    root = Path(__file__).resolve().parents[1]
    patterns = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    files = sorted(path for path in (root / "skvae" / "explorer_page").iterdir())
    assert [path.name for path in files] == ["explorer.js", "page.html", "style.css"]
    for path in files:
        assert any(path.match(pattern) for pattern in patterns["skvae.explorer_page"])


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


def _without_browser(reason):
    """Skip a browser test, or fail it under CI, where the browser tests must run."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; the browser tests must run under CI (CI is set), so they fail instead of skipping.",
                    pytrace=False)
    pytest.skip(reason)


def test_browser_tests_fail_under_ci_without_a_browser(monkeypatch):
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="must run under CI"):
        _without_browser("the browser tests need Chromium")
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match="need Chromium"):
        _without_browser("the browser tests need Chromium")


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright import sync_api
    except ImportError:
        _without_browser("the browser tests need Playwright: pip install playwright")
    executable = _chromium()
    if executable is None:
        _without_browser("the browser tests need Chromium (apt-get install chromium, or set SKVAE_CHROMIUM)")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable)
        yield browser
        browser.close()


# Run in every frame before its own scripts: Content-Security-Policy
# violations become console errors, which _watch collects.
_REPORT_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (event) => console.error(
  "CSP violation: " + event.effectiveDirective + " refused " + event.blockedURI));
"""


def _watch(page, own_url=None):
    """The list that the problems of ``page`` and its frames go to.

    Console errors, uncaught exceptions, CSP violations, dialogs (an
    alert() is what injected script would show; dismissed) and requests
    for anything but the page's own file.
    """
    problems = []

    def on_dialog(dialog):
        problems.append(f"{dialog.type} dialog: {dialog.message!r}")
        dialog.dismiss()

    page.add_init_script(_REPORT_VIOLATIONS)
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("dialog", on_dialog)
    page.on("request", lambda request: problems.append(f"request: {request.url}") if request.url != own_url else None)
    return problems


def _wait_for(frame, expression, problems=(), timeout=10.0):
    """Wait until the JavaScript ``expression`` is true in ``frame``; name the ``problems`` seen if it never is.

    Playwright's wait_for_function polls through eval(), which the page's
    policy refuses; evaluate() is exempt.
    """
    deadline = time.monotonic() + timeout
    while not frame.evaluate(expression):
        if time.monotonic() > deadline:
            raise AssertionError(f"still false after {timeout} s: {expression}; problems seen: {list(problems)}")
        frame.wait_for_timeout(20)


def _open(browser, path):
    """A page showing the saved file, and the list its problems go to (see _watch)."""
    page = browser.new_page(viewport={"width": 1100, "height": 1000})
    errors = _watch(page, own_url=path.as_uri())
    page.goto(path.as_uri())
    _wait_for(page.main_frame, "window.skvaeExplorer !== undefined", errors)
    return page, errors


def _plane_box(frame):
    box = frame.locator("#plane").bounding_box()
    # The plot area inside the canvas' margins (see M in the page's code).
    scale = box["width"] / 520
    return box["x"] + 56 * scale, box["y"] + 10 * scale, 454 * scale, 466 * scale


def _check_cursor(page, estimator, fractions, frame=None):
    """Move the mouse over the plane (in ``frame``, default the page's own);
    the page's decoding equals inverse_transform."""
    frame = frame or page.main_frame
    left, top, width, height = _plane_box(frame)
    seen = []
    for fx, fy in fractions:
        page.mouse.move(left + fx * width, top + fy * height)
        frame.evaluate("skvaeExplorer.settled()")
        seen.append(frame.evaluate("skvaeExplorer.current"))
    # One call each: the estimator decodes blocks of 1024 rows, however few are asked.
    Z = np.array([current["z"] for current in seen], dtype=np.float32)
    np.testing.assert_allclose([c["x"] for c in seen], estimator.inverse_transform(Z), rtol=0, atol=TOL)
    if hasattr(estimator, "classes_"):
        np.testing.assert_allclose([c["proba"] for c in seen], latent_proba(estimator.net_, Z, len(estimator.classes_)), rtol=0, atol=TOL)
    # Different points, decoded anew at each.
    assert len({tuple(z) for z in Z}) == len(fractions)
    return Z


def _check_drag(page, estimator, start, stop):
    left, top, width, height = _plane_box(page)
    page.mouse.move(left + start[0] * width, top + start[1] * height)
    page.mouse.down()
    page.mouse.move(left + stop[0] * width, top + stop[1] * height, steps=4)
    page.mouse.up()
    _wait_for(page.main_frame, "skvaeExplorer.state.path !== null && skvaeExplorer.state.path.done")
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
    # Over the last of the 60 bars: X had no column names, so its number, and its value.
    box = page.locator("#decoded").bounding_box()
    page.mouse.move(box["x"] + box["width"] - 1, box["y"] + box["height"] / 2)
    value = page.evaluate("skvaeExplorer.current.x[59]")
    name, shown = page.text_content("#feature").split(" = ")
    assert name == "feature 60" and float(shown) == pytest.approx(value, abs=5e-4)
    _check_drag(page, estimator, (0.3, 0.3), (0.6, 0.9))
    assert errors == []
    page.close()


def test_browser_jupyter_iframe(browser, vae, digits):
    """_repr_html_ runs as a notebook shows it: inside an iframe of another page."""
    page = browser.new_page()
    errors = _watch(page)
    page.set_viewport_size({"width": 600, "height": 800})  # narrow: the panels stack
    page.set_content("<html><body>" + LatentExplorer.from_estimator(vae, *digits)._repr_html_() + "</body></html>")
    frame = page.frames[1]
    _wait_for(frame, "window.skvaeExplorer !== undefined", errors)
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


def _texts(frame, selector):
    return frame.eval_on_selector_all(selector, "elements => elements.map((element) => element.textContent)")


def _check_texts_shown_literally(page, spec, frame=None):
    """The title, class names and feature names read back from the DOM as
    given, and none of them became an element."""
    frame = frame or page.main_frame
    assert frame.text_content("#title") == spec["title"]
    assert _texts(frame, "#legend .data-text") == spec["classes"]
    assert _texts(frame, "#proba .data-text") == spec["classes"]
    # Over the bar chart, the feature under the pointer, one bar after another.
    box = frame.locator("#decoded").bounding_box()
    names = spec["output"]["feature_names"]
    shown = []
    for i in range(len(names)):
        page.mouse.move(box["x"] + (i + 0.5) * box["width"] / len(names), box["y"] + box["height"] / 2)
        shown.append(frame.text_content("#feature .data-text"))
    assert shown == names
    counts = frame.evaluate(
        """() => ["script", "style", "img, svg, iframe, object, embed, b, i"].map(
               (selector) => document.querySelectorAll(selector).length)"""
    )
    assert counts == [2, 1, 0]


def _check_policy_blocks_injections(page, problems, frame=None):
    """The page's policy is in force: an inline script and an image from
    the network, added as an injection would add them, are refused."""
    frame = frame or page.main_frame
    seen = len(problems)
    frame.evaluate(
        """() => {
             const script = document.createElement("script");
             script.textContent = "window.injected = true;";
             const image = document.createElement("img");
             image.src = "http://127.0.0.1:9/injected.png";
             document.body.append(script, image);
           }"""
    )
    for _ in range(100):  # the violation events come asynchronously
        if len(problems) >= seen + 2:
            break
        page.wait_for_timeout(50)
    assert frame.evaluate("window.injected") is None
    refused = [problem for problem in problems[seen:] if problem.startswith("CSP violation")]
    assert "CSP violation: script-src-elem refused inline" in refused
    assert "CSP violation: img-src refused http://127.0.0.1:9/injected.png" in refused
    del problems[seen:]


def test_browser_hostile_texts_are_shown_as_text(browser, hostile_explorer, tmp_path):
    """Hostile class names, feature names and title: no dialog, no error, the
    page runs (it decodes what is under the cursor) and shows each text as is."""
    estimator, explorer = hostile_explorer
    page, problems = _open(browser, explorer.save_html(tmp_path / "hostile.html"))
    assert problems == []
    _check_cursor(page, estimator, POINTS[:2])
    _check_texts_shown_literally(page, explorer.spec)
    assert page.evaluate("document.querySelector('title').textContent") == HOSTILE_TITLE
    assert problems == []
    page.close()


@pytest.mark.parametrize("title", HOSTILE, ids=[f"hostile{i}" for i in range(len(HOSTILE))])
def test_browser_hostile_title(browser, hostile_explorer, title, tmp_path):
    estimator, explorer = hostile_explorer
    page, problems = _open(browser, LatentExplorer({**explorer.spec, "title": title}).save_html(tmp_path / "t.html"))
    assert page.text_content("#title") == title
    # The HTML parser reads a NUL of the markup as U+FFFD.
    assert page.evaluate("document.querySelector('title').textContent") == title.replace("\0", "\ufffd")
    z = np.array([[0.5, -1.0]], dtype=np.float32)
    np.testing.assert_allclose(
        page.evaluate("z => skvaeExplorer.decode(z)", z[0].tolist()), estimator.inverse_transform(z)[0], atol=TOL
    )
    assert problems == []
    page.close()


def test_browser_hostile_texts_in_the_jupyter_iframe(browser, hostile_explorer):
    """The same texts through _repr_html_, in the iframe of a notebook's page:
    shown as text, nothing runs, and the frame's own policy holds."""
    estimator, explorer = hostile_explorer
    page = browser.new_page(viewport={"width": 1100, "height": 1000})
    problems = _watch(page)
    page.set_content("<html><body>" + explorer._repr_html_() + "</body></html>")
    frame = page.frames[1]
    _wait_for(frame, "window.skvaeExplorer !== undefined", problems)
    assert page.evaluate("document.body.children.length") == 1  # the frame, alone
    assert problems == []
    _check_cursor(page, estimator, POINTS[:2], frame=frame)
    _check_texts_shown_literally(page, explorer.spec, frame=frame)
    assert problems == []
    _check_policy_blocks_injections(page, problems, frame=frame)
    assert problems == []
    page.close()


def test_browser_page_loads_nothing_and_violates_no_policy(browser, vae8, digits, tmp_path):
    """Used in every way (cursor, drag, sliders), the page requests nothing
    but its own file and its policy refuses nothing; and the policy holds."""
    page, problems = _open(browser, LatentExplorer.from_estimator(vae8, *digits).save_html(tmp_path / "e.html"))
    page.evaluate("skvaeExplorer.setSlider(1, 50)")
    _check_cursor(page, vae8, POINTS[:2])
    _check_drag(page, vae8, (0.2, 0.3), (0.7, 0.8))
    assert problems == []
    _check_policy_blocks_injections(page, problems)
    assert problems == []
    page.close()


def test_browser_unlabeled_points_in_the_legend(browser, digits, tmp_path):
    X, y = digits
    y_partial = np.where(np.arange(len(y)) % 3 == 0, -1, y)
    model = DisentangledVAE(**{**SMALL, "max_epochs": 2}, unlabeled_label=-1).fit(X, y_partial)
    page, problems = _open(browser, LatentExplorer.from_estimator(model, X, y_partial).save_html(tmp_path / "u.html"))
    assert _texts(page, "#legend .data-text") == [str(c) for c in range(10)] + ["unlabeled"]
    assert problems == []
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
    page, errors = _open(browser, explorer.save_html(tmp_path / "mnist.html"))
    _check_cursor(page, estimator, POINTS[:3])
    _check_drag(page, estimator, (0.2, 0.8), (0.8, 0.2))
    assert errors == []
    page.close()
