"""README's code runs, and prints what README says it prints.

README shows each Python snippet followed by a ```text block: what the
snippet prints. Each snippet runs here alone, in a fresh Python process whose
working folder is a temporary one (so it must be self-contained, imports
included, and whatever it writes lands there), and its output is compared
with the block. The demo's report, the ```text block after the comment
``<!-- output of: python -m skvae demo -->``, is compared with a real run of
``python -m skvae demo`` with its defaults, also in a temporary folder.

Comparison (:func:`output_matches`): text must match exactly, except that
runs of white space are equivalent and ``...`` stands for any text
(including none, or several lines). A number with a decimal point may
differ: by 0.01 when written with up to three decimals (accuracies,
probabilities, positions on a path), by 5% of its value when written with
four or more (reconstruction errors), since float results differ slightly
between CPUs. Integers (epochs, shapes, class labels) must match exactly.

So a change of a default that moves a number README quotes fails here;
update README from the test's message. The snippets train real models:
about 70 s in all on 2 idle cores, the demo included (2-3 minutes on a busy
machine).
"""

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"

# The one command whose output README quotes; the snippets are Python blocks.
DEMO_MARKER = "<!-- output of: python -m skvae demo -->"
DEMO_COMMAND = ["-m", "skvae", "demo"]
TIMEOUT_S = 600

_FENCE = re.compile(r"^```(?P<lang>[\w-]*)[ \t]*\n(?P<body>.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
_DECIMAL = r"-?\d+\.\d+"
_TOKEN = re.compile(r"(\.\.\.|(?<![\w.])" + _DECIMAL + r"(?![\w.])|\s+)")


def fenced_blocks(text):
    """``(language, body, text_before)`` of each fenced block, in order;
    ``text_before`` is the text between the previous block and this one."""
    blocks, previous_end = [], 0
    for match in _FENCE.finditer(text):
        blocks.append((match["lang"], match["body"], text[previous_end:match.start()]))
        previous_end = match.end()
    return blocks


def snippets(text):
    """``(code, expected_output)`` of each Python block; the output is the
    text block right after it (nothing but white space between), or None."""
    blocks = fenced_blocks(text)
    found = []
    for i, (lang, body, _) in enumerate(blocks):
        if lang != "python":
            continue
        following = blocks[i + 1] if i + 1 < len(blocks) else None
        if following is not None and following[0] == "text" and not following[2].strip():
            found.append((body, following[1]))
        else:
            found.append((body, None))
    return found


def demo_output(text):
    """The text block README marks as the demo's output."""
    for lang, body, before in fenced_blocks(text):
        if lang == "text" and before.rstrip().endswith(DEMO_MARKER):
            return body
    return None


def _tolerance(written):
    decimals = len(written.split(".")[1])
    return 0.01 if decimals <= 3 else 0.05 * abs(float(written))


def output_matches(expected, actual):
    """Whether ``actual`` is the ``expected`` output (see the module's
    docstring); returns ``(ok, reason)``."""
    tokens = [token for token in _TOKEN.split(expected.strip()) if token]
    parts, numbers = [], []
    for i, token in enumerate(tokens):
        if token == "...":
            parts.append(r"[\s\S]*?")
        elif token.isspace():
            # White space beside "..." may be absorbed by it.
            beside_ellipsis = "..." in (tokens[i - 1] if i else "", tokens[i + 1] if i + 1 < len(tokens) else "")
            parts.append(r"\s*" if beside_ellipsis else r"\s+")
        elif re.fullmatch(_DECIMAL, token):
            parts.append(f"({_DECIMAL})")
            numbers.append(token)
        else:
            parts.append(re.escape(token))
    match = re.fullmatch("".join(parts), actual.strip())
    if match is None:
        return False, "the text differs (words, integers, or a number's place)"
    for written, got in zip(numbers, match.groups()):
        if abs(float(got) - float(written)) > _tolerance(written) + 1e-12:
            return False, f"{got} where README says {written} (tolerance {_tolerance(written):.2g})"
    return True, ""


def _run(args, cwd):
    # PYTHONPATH: this checkout's skvae, whatever the environment installed;
    # the working folder is a temporary one, never the repository.
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_WAIT_POLICY="PASSIVE", MPLBACKEND="Agg")
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT_S
    )
    return result, time.perf_counter() - start


def _report(what, expected, result, seconds, reason):
    return (
        f"{what} ({seconds:.0f} s, exit code {result.returncode}): {reason}\n"
        f"--- README says ---\n{expected}\n"
        f"--- it printed ---\n{result.stdout[-6000:]}\n"
        f"--- stderr (end) ---\n{result.stderr[-3000:]}"
    )


README_TEXT = README.read_text(encoding="utf-8")
SNIPPETS = snippets(README_TEXT)


# ------------------------------------------------------ the comparison itself


@pytest.mark.parametrize(
    "expected, actual",
    [
        ("accuracy 0.958", "accuracy 0.951"),
        ("accuracy 0.958", "accuracy 0.9666"),
        ("mse 0.0391", "mse 0.0405"),
        ("trained 167 epochs in ... s", "trained 167 epochs in 11.9 s"),
        ("first\n...\nlast", "first\nsome\nlines\nlast"),
        ("shape (360, 2)", "shape  (360,\n2)"),
    ],
)
def test_output_matches_accepts(expected, actual):
    assert output_matches(expected, actual) == (True, "")


@pytest.mark.parametrize(
    "expected, actual",
    [
        ("accuracy 0.958", "accuracy 0.947"),  # beyond 0.01
        ("mse 0.0391", "mse 0.0420"),  # beyond 5%
        ("167 epochs", "168 epochs"),  # integers are exact
        ("most probable: 5", "most probable: 4"),
        ("p(0) = 0.50", "p(1) = 0.50"),
        ("one line", "one line\nand another"),
    ],
)
def test_output_matches_refuses(expected, actual):
    ok, reason = output_matches(expected, actual)
    assert not ok and reason


# ------------------------------------------------------------- README itself


def test_readme_has_snippets_and_the_demo_output():
    assert len(SNIPPETS) >= 3, "README's Python snippets were not found"
    assert demo_output(README_TEXT) is not None, f"no ```text block after {DEMO_MARKER!r} in README"


@pytest.mark.parametrize("index", range(len(SNIPPETS)), ids=[f"snippet{i + 1}" for i in range(len(SNIPPETS))])
def test_readme_snippet_prints_what_readme_says(index, tmp_path):
    code, expected = SNIPPETS[index]
    assert expected is not None, (
        f"README's Python snippet {index + 1} has no ```text block right after it "
        f"showing what it prints:\n{code}"
    )
    script = tmp_path / "snippet.py"
    script.write_text(code, encoding="utf-8")
    result, seconds = _run([str(script)], cwd=tmp_path)
    assert result.returncode == 0, _report(f"snippet {index + 1} failed", expected, result, seconds, "")
    ok, reason = output_matches(expected, result.stdout)
    assert ok, _report(f"snippet {index + 1} printed something else", expected, result, seconds, reason)


def test_demo_prints_what_readme_says(tmp_path):
    """``python -m skvae demo`` with its defaults (seed 0, class_neighbors
    [(0, 8)], its figures into ``demo_output/`` of the working folder)."""
    expected = demo_output(README_TEXT)
    assert expected is not None, f"no ```text block after {DEMO_MARKER!r} in README"
    result, seconds = _run(DEMO_COMMAND, cwd=tmp_path)
    assert result.returncode == 0, _report("the demo failed", expected, result, seconds, "")
    # The epoch table (verbose) stands between the first line and the
    # report; README leaves it out with "...".
    ok, reason = output_matches(expected, result.stdout)
    assert ok, _report("the demo printed something else", expected, result, seconds, reason)
    written = sorted(path.name for path in (tmp_path / "demo_output").iterdir())
    assert "explorer.html" in written and "interpolation_0_8.png" in written, written


# ------------------------------------------ the documentation's front page


_RST_BLOCK = re.compile(r"^\.\. code-block:: (?P<lang>[\w-]+)[ \t]*\n(?P<body>(?:[ \t]*\n|   .*\n)+)", re.MULTILINE)


def rst_code_blocks(text):
    """``(language, body)`` of each ``.. code-block::`` of a reST page
    (bodies indented by three spaces, as docs/index.rst writes them)."""
    blocks = []
    for match in _RST_BLOCK.finditer(text if text.endswith("\n") else text + "\n"):
        lines = match["body"].splitlines()
        body = "\n".join(line[3:] for line in lines).strip("\n")
        blocks.append((match["lang"], body))
    return blocks


def test_docs_index_shows_readmes_snippets_and_outputs():
    """docs/index.rst repeats README's snippets and the outputs checked
    above; they must be the same, so that its numbers are checked too."""
    index = rst_code_blocks((REPO / "docs" / "index.rst").read_text(encoding="utf-8"))
    readme_code = {code.strip("\n"): (output or "").strip("\n") for code, output in SNIPPETS}
    demo = demo_output(README_TEXT).strip("\n")
    python_blocks = [i for i, (lang, _) in enumerate(index) if lang == "python"]
    assert python_blocks, "docs/index.rst shows no Python snippet"
    for i in python_blocks:
        code = index[i][1]
        assert code in readme_code, f"docs/index.rst shows a snippet that README does not:\n{code}"
        following = index[i + 1] if i + 1 < len(index) else (None, None)
        assert following == ("text", readme_code[code]), (
            f"docs/index.rst: the output shown after this snippet is not README's:\n{code}"
        )
    outputs = {readme_code[index[i][1]] for i in python_blocks}
    for lang, body in index:
        if lang == "text":
            assert body in outputs or body == demo, f"docs/index.rst shows an output README does not:\n{body}"
