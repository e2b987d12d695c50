# Two commands for a fresh machine: `make demo` and `make test`.
# Each creates .venv when missing and installs skvae with its test extras.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.skvae-installed
# torch's OpenMP threads busy-wait by default; on a shared 2-core machine
# that slows training ~30x whenever another process holds a core.
export OMP_WAIT_POLICY ?= PASSIVE

.PHONY: demo test docs bench clean

# torch first: prefer a wheel the machine already provides (pip's find-links,
# e.g. a CPU build, instead of a multi-GB CUDA build from the index);
# elsewhere torch comes from the package index as usual.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --no-index --no-deps torch || $(PY) -m pip install torch
	$(PY) -m pip install -e ".[test]"
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m skvae demo $(ARGS)

test: $(STAMP)
	$(PY) -m pytest -n 2 --dist loadgroup $(ARGS)

docs: $(STAMP)
	$(PY) -m pip install -e ".[docs]"
	$(PY) -m sphinx -W --keep-going -b html docs docs/_build/html

bench: $(STAMP)
	$(PY) -m pip install -e ".[benchmarks]"
	$(PY) -m benchmarks.run_all $(ARGS)

clean:
	rm -rf $(VENV) docs/_build docs/auto_examples docs/gen_modules demo_output
