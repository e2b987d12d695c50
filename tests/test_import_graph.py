"""skvae's modules import each other without a cycle, and each imports on its own."""

import ast
import graphlib
import subprocess
import sys
from pathlib import Path

import pytest

import skvae

PACKAGE = Path(skvae.__file__).parent
MODULES = sorted(path.stem for path in PACKAGE.glob("*.py"))


def _skvae_imports(path):
    """The skvae modules that the module at ``path`` imports, at its top or inside functions."""
    imported = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1:
                module = node.module
            elif node.level == 0 and node.module and node.module.split(".")[0] == "skvae":
                module = node.module.removeprefix("skvae").removeprefix(".")
            else:
                continue
            if module:
                imported.add(module.split(".")[0])
            else:  # from . import name: a module of the package, or a name its __init__ defines
                imported.update(alias.name if alias.name in MODULES else "__init__" for alias in node.names)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "skvae":
                    imported.add(parts[1] if len(parts) > 1 else "__init__")
    return imported & set(MODULES) - {path.stem}


def test_import_graph_reads_imports():
    """The parser sees relative, absolute and function-level imports."""
    assert {"_plane", "explorer", "regions"} <= _skvae_imports(PACKAGE / "plotting.py")
    assert {"plotting", "datasets"} <= _skvae_imports(PACKAGE / "__main__.py")  # inside functions


def test_modules_import_each_other_without_a_cycle():
    graph = {name: _skvae_imports(PACKAGE / f"{name}.py") for name in MODULES}
    try:
        tuple(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as error:
        # The cycle lists each module before one that imports it.
        cycle = " imports ".join(reversed(error.args[1]))
        pytest.fail(f"skvae's modules import each other in a cycle: {cycle}", pytrace=False)


# Each module imported first, in a fresh copy of skvae: torch and the
# other dependencies stay loaded, so one interpreter does them all quickly.
IMPORT_EACH = """
import importlib, sys
for name in sys.argv[1:]:
    for loaded in [module for module in sys.modules if module == "skvae" or module.startswith("skvae.")]:
        del sys.modules[loaded]
    importlib.import_module("skvae" if name == "__init__" else "skvae." + name)
"""


def test_each_module_imports_first():
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_EACH, *MODULES], cwd=PACKAGE.parent, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
