"""Sphinx configuration of the skvae documentation.

Build with ``make docs`` (``python -m sphinx -W --keep-going -b html docs
docs/_build/html``). The gallery runs every example with its real settings,
as a reader would run it (``SKVAE_EXAMPLES_FAST``, the examples' fast mode
for the test suite, is removed from the environment here), so the published
figures and numbers are those of trained models; the whole build takes
several minutes on 2 cores. Environment variables:

``SKVAE_DOCS_INTERSPHINX``
    Set to ``1`` to link to the Python, NumPy, scikit-learn, PyTorch and
    skorch documentation (needs a network connection). Unset, no inventory
    is fetched, so an offline build with ``-W`` has no warning.
``SKVAE_DATA``
    Folder with the MNIST IDX files; see ``examples/README.txt``. Without
    MNIST (there, or in ``shared/data/mnist`` beside or above the
    repository), the MNIST example is not run: its page shows the code
    without output and says why, so links to it still resolve.

Pass ``-D plot_gallery=0`` to build the gallery pages without running the
examples (used by ``tests/test_docs.py``).

The pages load nothing from the network: MathJax comes from the
``sphinx-mathjax-offline`` package (in the ``docs`` extra), which copies it
into ``_static/mathjax``; ``tests/test_docs.py`` checks that no page loads a
resource by URL and that the formulas render in a browser without network.
"""

import os
import re
import shutil
import sys
from pathlib import Path

# torch's OpenMP threads busy-wait by default; on a shared 2-core machine
# that makes training ~30x slower. Set before anything imports torch.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# The published gallery shows the examples' real runs: never their fast mode
# (less data, 2 epochs: untrained models), even when the caller's
# environment has it on.
os.environ.pop("SKVAE_EXAMPLES_FAST", None)

DOCS = Path(__file__).resolve().parent
REPO = DOCS.parent
sys.path.insert(0, str(REPO))

import skvae  # noqa: E402

# autosummary writes a page per documented object into gen_modules/ but never
# removes the page of an object that left the API reference; such a stale
# page is a warning ("not included in any toctree"). The folder is generated
# (and ignored by git): start every build from an empty one.
shutil.rmtree(DOCS / "gen_modules", ignore_errors=True)


def _mnist_available():
    """Whether the MNIST example will find its data (same rule as the example)."""
    name = "t10k-images-idx3-ubyte.gz"
    if os.environ.get("SKVAE_DATA"):
        candidates = [Path(os.environ["SKVAE_DATA"]).expanduser()]
    else:
        candidates = [folder / "shared" / "data" / "mnist" for folder in (REPO, *REPO.parents)]
    return any((c / name).is_file() or (c / "mnist" / name).is_file() for c in candidates)


# -- Project -----------------------------------------------------------------

project = "skvae"
author = "skvae developers"
copyright = "skvae developers, BSD-3-Clause"
version = release = skvae.__version__

# -- General -----------------------------------------------------------------

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    # MathJax 3 from the Python package, copied into _static/mathjax: pages
    # render their math without a network connection (sphinx.ext.mathjax
    # alone loads it from a CDN, and offline shows the raw LaTeX).
    "sphinx-mathjax-offline",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "matplotlib.sphinxext.plot_directive",
]

# The local copy of sphinx-mathjax-offline (its setup() sets the same path;
# stated here so that the built pages never point at a CDN).
mathjax_path = "mathjax/tex-chtml.js"

exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "**.ipynb_checkpoints"]
templates_path = ["_templates"]
default_role = "code"

autosummary_generate = True
autodoc_default_options = {"members": True, "inherited-members": False}
autodoc_typehints = "none"

numpydoc_show_class_members = False
numpydoc_class_members_toctree = False

# Inventories are fetched over the network; offline (the default here) a
# failed fetch would be a warning, and -W would turn it into an error.
if os.environ.get("SKVAE_DOCS_INTERSPHINX"):
    intersphinx_mapping = {
        "python": ("https://docs.python.org/3", None),
        "numpy": ("https://numpy.org/doc/stable/", None),
        "sklearn": ("https://scikit-learn.org/stable/", None),
        "torch": ("https://pytorch.org/docs/stable/", None),
        "skorch": ("https://skorch.readthedocs.io/en/stable/", None),
        "matplotlib": ("https://matplotlib.org/stable/", None),
    }
else:
    intersphinx_mapping = {}

# -- matplotlib plot directive (cheap figures in the user guide) ---------------

plot_include_source = True
plot_html_show_source_link = False
plot_html_show_formats = False
plot_formats = [("png", 100)]

# -- Gallery -----------------------------------------------------------------

# The MNIST example needs the IDX files. Without them it is not run (run as
# a script it would print a message and exit 0), but its page is still built
# from the source, without output, so that the user guide's links to it
# resolve (-W would turn a dangling link into an error); a note at the top
# of the page says why the output is missing.
MNIST_AVAILABLE = _mnist_available()
_run = r"/plot_" if MNIST_AVAILABLE else r"/plot_(?!mnist_reproduction\.py)"
_ignore = r"__init__\.py|[/\\]_[^/\\]*\.py$"

sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": _run,
    "ignore_pattern": _ignore,
    "within_subsection_order": "ExampleTitleSortKey",
    "backreferences_dir": "gen_modules/backreferences",
    "doc_module": ("skvae",),
    "reference_url": {"skvae": None},
    "image_scrapers": ("matplotlib",),
    "download_all_examples": False,
    "remove_config_comments": True,
    # Examples set their own seeds; nothing to reset between them but figures.
    "reset_modules": ("matplotlib",),
    "show_memory": False,
    # sg_execution_times.rst would land in docs/ itself, outside the
    # ignored build folders; the build log prints the times anyway.
    "write_computation_times": False,
    "min_reported_time": 1,
    # Run every example on every build: sphinx-gallery would otherwise skip
    # examples whose source is unchanged, and keep the figures of a fast
    # build in a full one (or the other way round).
    "run_stale_examples": True,
}

# -- Docstring fixes ---------------------------------------------------------

# A fitted attribute in a shape, "(n_samples, n_features_in_)", ends with an
# underscore, which reST reads as a link to a target "n_features_in". Escape
# such trailing underscores inside the parentheses of "of shape (...)" before
# numpydoc parses the docstring.
_SHAPE = re.compile(r"of shape \(([^()]*)\)")
_TRAILING_UNDERSCORE = re.compile(r"(\w)_(?=[,)\s]|$)")


def _escape_shape_underscores(app, what, name, obj, options, lines):
    for i, line in enumerate(lines):
        if "of shape (" in line:
            lines[i] = _SHAPE.sub(
                lambda m: "of shape (" + _TRAILING_UNDERSCORE.sub(r"\1\\_", m.group(1)) + ")", line
            )


def _skip_member(app, what, name, obj, skip, options):
    # scikit-learn's metadata-routing methods (set_fit_request, ...) are
    # generated per class; their docstrings point into scikit-learn's docs.
    if name.startswith("set_") and name.endswith("_request"):
        return True
    return None


def _note_unrun_mnist_example(app, docname, source):
    if MNIST_AVAILABLE or docname != "auto_examples/plot_mnist_reproduction":
        return
    note = (
        "\n.. note::\n\n"
        "   This page was built without the MNIST data, so the example was not\n"
        "   run and its figures are missing. Run it yourself with the data (see\n"
        "   :ref:`examples`), or rebuild the documentation where the data is.\n\n"
    )
    # After the page's title, an over- and underlined line.
    title = re.search(r"^(=+)\n[^\n]+\n\1\n", source[0], flags=re.MULTILINE)
    end = title.end() if title else 0
    source[0] = source[0][:end] + note + source[0][end:]


def setup(app):
    app.connect("source-read", _note_unrun_mnist_example)
    app.connect("autodoc-process-docstring", _escape_shape_underscores, priority=100)
    app.connect("autodoc-skip-member", _skip_member)


# -- HTML --------------------------------------------------------------------

try:
    import pydata_sphinx_theme  # noqa: F401
except ImportError:  # pragma: no cover - the docs extra installs it
    html_theme = "alabaster"
    html_theme_options = {}
else:
    html_theme = "pydata_sphinx_theme"
    html_theme_options = {
        "navigation_with_keys": False,
        "show_toc_level": 2,
        "secondary_sidebar_items": ["page-toc"],
    }
html_title = f"skvae {release}"
html_static_path = ["_static"]
html_show_sourcelink = False
