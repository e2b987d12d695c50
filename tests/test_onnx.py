"""skvae.onnx: the exported graphs compute what the estimator's methods compute.

Each graph runs in onnxruntime on the rows the estimator ran, and its
outputs must equal the method's within 1e-5 (float32's rounding: the
network computes in float32 in both, the latent classifier in float64).
"""

import copy
import dataclasses
import importlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason="the onnx extra is not installed: pip install skvae[onnx]")
onnxruntime = pytest.importorskip("onnxruntime", reason="the onnx extra is not installed: pip install skvae[onnx]")
skl2onnx = pytest.importorskip("skl2onnx", reason="the onnx extra is not installed: pip install skvae[onnx]")
pytest.importorskip("onnxscript", reason="the onnx extra is not installed: pip install skvae[onnx]")

from sklearn.exceptions import NotFittedError  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.pipeline import Pipeline, make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from test_readme import output_matches, rst_code_blocks  # noqa: E402
from tiny import tiny_vae  # noqa: E402

from skvae import DisentangledVAE  # noqa: E402
from skvae.onnx import to_onnx  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
TOLERANCE = 1e-5


def run(model, rows):
    """The outputs of ``model`` on ``rows``, by output name."""
    session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    outputs = session.run(None, {session.get_inputs()[0].name: rows})
    return dict(zip([output.name for output in session.get_outputs()], outputs))


@pytest.fixture(scope="module")
def conv_vae(digits):
    return tiny_vae(architecture="conv", image_shape=(8, 8), max_epochs=1).fit(*digits)


@pytest.fixture(params=["mlp", "conv"])
def fitted(request, vae, conv_vae):
    return vae if request.param == "mlp" else conv_vae


def expected_outputs(estimator, method, rows):
    if method == "transform":
        return {"Z": estimator.transform(rows)}
    if method == "predict_proba":
        return {"probabilities": estimator.predict_proba(rows)}
    if method == "predict":
        return {"label": estimator.predict(rows), "probabilities": estimator.predict_proba(rows)}
    return {"X": estimator.inverse_transform(rows)}


@pytest.mark.parametrize("method", ["transform", "predict_proba", "predict", "inverse_transform"])
def test_graph_computes_what_the_method_computes(fitted, method, digits):
    X = np.asarray(digits[0], dtype=np.float32)
    rows = fitted.transform(X) if method == "inverse_transform" else X
    model = to_onnx(fitted, method)
    expected = expected_outputs(fitted, method, rows)
    # The batch dimension is dynamic: all rows at once, and one.
    for batch in (rows, rows[:1]):
        got = run(model, batch)
        assert list(got) == list(expected)
        for name, value in got.items():
            want = expected[name][: len(batch)]
            assert value.dtype == want.dtype, name
            if name == "label":
                np.testing.assert_array_equal(value, want)
            else:
                assert np.abs(value - want).max() <= TOLERANCE, name


@pytest.mark.parametrize("method", ["predict_proba", "inverse_transform"])
def test_float64_graph_computes_what_the_method_computes_for_float64(vae, digits, method):
    X = np.asarray(digits[0], dtype=np.float64)
    rows = vae.transform(X) if method == "inverse_transform" else X
    [got] = run(to_onnx(vae, method, dtype=np.float64), rows).values()
    [want] = expected_outputs(vae, method, rows).values()
    assert got.dtype == want.dtype == np.float64
    assert np.abs(got - want).max() <= TOLERANCE


def test_string_labels_come_out_as_strings(digits):
    X, y = digits
    names = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"])
    estimator = tiny_vae(max_epochs=2).fit(X, names[y])
    got = run(to_onnx(estimator, "predict"), np.asarray(X, dtype=np.float32))
    np.testing.assert_array_equal(got["label"], estimator.predict(X))


def test_plain_vae_exports_encoder_and_decoder_but_no_classifier(plain_vae, digits):
    X = np.asarray(digits[0][:20], dtype=np.float32)
    assert np.abs(run(to_onnx(plain_vae), X)["Z"] - plain_vae.transform(X)).max() <= TOLERANCE
    with pytest.raises(ValueError, match="fitted without labels.*method='transform'"):
        to_onnx(plain_vae, "predict_proba")


def test_refuses_what_it_cannot_export(vae):
    with pytest.raises(ValueError, match="method must be one of"):
        to_onnx(vae, "score")
    with pytest.raises(ValueError, match="dtype must be"):
        to_onnx(vae, dtype=np.float16)
    with pytest.raises(ValueError, match="target_opset must be 18 or newer"):
        to_onnx(vae, target_opset=17)
    with pytest.raises(TypeError, match="exports a fitted DisentangledVAE; got LogisticRegression"):
        to_onnx(LogisticRegression())
    with pytest.raises(NotFittedError):
        to_onnx(DisentangledVAE())


def test_mixed_precision_model_warns_that_the_graph_computes_in_float32(vae):
    # Whether this CPU has bfloat16 arithmetic or not: only the record matters.
    mixed = copy.copy(vae)
    mixed.setup_ = dataclasses.replace(vae.setup_, precision="bf16-mixed")
    with pytest.warns(UserWarning, match="precision='bf16-mixed'.*computes in float32"):
        to_onnx(mixed)


def test_import_without_the_extra_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "skl2onnx", None)  # as if it were not installed
    monkeypatch.delitem(sys.modules, "skvae.onnx")
    with pytest.raises(ImportError, match=r"pip install skvae\[onnx\]"):
        importlib.import_module("skvae.onnx")


# ---------------------------------------------------------------- skl2onnx


@pytest.fixture(scope="module")
def pipeline(digits):
    return Pipeline([("scale", StandardScaler()), ("vae", tiny_vae())]).fit(*digits)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_pipeline_converts_whole_with_skl2onnx(pipeline, digits, dtype):
    X = np.asarray(digits[0], dtype=dtype)
    [Z] = run(skl2onnx.to_onnx(pipeline, X[:1]), X).values()
    want = pipeline.transform(X)
    assert Z.dtype == want.dtype == dtype
    assert np.abs(Z - want).max() <= TOLERANCE


def test_pipeline_converts_as_a_classifier_with_the_method_option(pipeline, digits):
    X = np.asarray(digits[0], dtype=np.float32)
    model = skl2onnx.to_onnx(pipeline, X[:1], options={DisentangledVAE: {"method": "predict"}})
    got = run(model, X)
    assert list(got) == ["label", "probabilities"]
    np.testing.assert_array_equal(got["label"], pipeline.predict(X))
    # skl2onnx's classifiers give probabilities in the input's type.
    assert got["probabilities"].dtype == np.float32
    assert np.abs(got["probabilities"] - pipeline.predict_proba(X)).max() <= TOLERANCE


def test_transformer_in_the_middle_of_a_pipeline_converts(digits):
    X = np.asarray(digits[0], dtype=np.float32)
    pipe = make_pipeline(StandardScaler(), tiny_vae(), LogisticRegression()).fit(X, digits[1])
    model = skl2onnx.to_onnx(pipe, X[:1], options={LogisticRegression: {"zipmap": False}})
    label, proba = run(model, X).values()
    np.testing.assert_array_equal(label, pipe.predict(X))
    assert np.abs(proba - pipe.predict_proba(X)).max() <= TOLERANCE


def test_plain_vae_converts_its_transform_but_no_classifier(plain_vae, digits):
    X = np.asarray(digits[0], dtype=np.float32)
    [Z] = run(skl2onnx.to_onnx(plain_vae, X[:1]), X).values()
    assert np.abs(Z - plain_vae.transform(X)).max() <= TOLERANCE
    with pytest.raises(ValueError, match="fitted without labels"):
        skl2onnx.to_onnx(plain_vae, X[:1], options={DisentangledVAE: {"method": "predict"}})


def test_unknown_method_option_is_refused(pipeline, digits):
    with pytest.raises(ValueError, match="'inverse_transform'.*option 'method'"):
        skl2onnx.to_onnx(pipeline, digits[0][:1], options={DisentangledVAE: {"method": "inverse_transform"}})


# ------------------------------------------------------ the deployment page


def test_deployment_page_prints_what_it_says(tmp_path):
    """docs/deployment.rst's Python blocks, run in order as one script in a
    fresh process, print the text block after each (compared as README's)."""
    blocks = rst_code_blocks((REPO / "docs" / "deployment.rst").read_text(encoding="utf-8"))
    marker = "----- end of block -----"
    pairs = [
        (code, blocks[i + 1][1] if i + 1 < len(blocks) and blocks[i + 1][0] == "text" else "")
        for i, (lang, code) in enumerate(blocks)
        if lang == "python"
    ]
    assert len(pairs) >= 2
    script = "".join(f"{code}\nprint({marker!r})\n" for code, _ in pairs)
    (tmp_path / "page.py").write_text(script, encoding="utf-8")
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_WAIT_POLICY="PASSIVE")
    result = subprocess.run(
        [sys.executable, "page.py"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    printed = result.stdout.split(marker + "\n")
    for (code, expected), actual in zip(pairs, printed):
        ok, reason = output_matches(expected, actual)
        assert ok, f"{reason}\n--- the page says ---\n{expected}\n--- it printed ---\n{actual}\n--- after ---\n{code}"
