# Two commands for a new user:  `make lab` (install, then JupyterLab) and `make test` (install, then all tests).
# Both are idempotent: the venv is (re)built only when requirements.txt or pyproject.toml change.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
KERNEL := torchscript-course
# nbval runs every notebook and compares its stored outputs (strict: no --nbval-lax).
NBVAL := --nbval --nbval-current-env --nbval-sanitize-with notebooks/sanitize.cfg
# Tests are hermetic: they never reach for the hub, so stored notebook outputs reproduce anywhere.
TEST_ENV := HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false

.PHONY: install lab test notebooks arabic bench cpp clean

install: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt -e .
	$(PY) -m pip check
	$(PY) -m ipykernel install --sys-prefix --name $(KERNEL) --display-name "Python (TorchScript course)" >/dev/null
	touch $(STAMP)

# JupyterLab refuses to run as root (containers, some cloud images) unless told it may.
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root)

lab: install
	$(VENV)/bin/jupyter lab notebooks/ $(ROOT_FLAG) $(LAB_ARGS)

test: install
	$(TEST_ENV) $(PY) -m pytest tests notebooks $(NBVAL) $(PYTEST_ARGS)

# Re-execute every notebook top to bottom and store its outputs (run before committing a notebook).
notebooks: install
	$(TEST_ENV) $(PY) tools/run_notebooks.py $(or $(NB),notebooks/[0-9]*.ipynb)
	$(PY) tools/arabic.py build

# Rebuild the Arabic edition (notebooks/ar/) from the English notebooks and translations/ar/; `python
# tools/arabic.py status` lists the cells still to translate.
arabic: install
	$(PY) tools/arabic.py build

bench: install
	$(PY) -m pip install --quiet -r envs/bench.txt || echo "envs/bench.txt (OpenVINO) did not install: its benchmark rows will be skipped"
	@ls benchmarks/*.py >/dev/null 2>&1 || { echo "no benchmarks yet"; exit 0; }
	for script in benchmarks/*.py; do $(TEST_ENV) $(PY) $$script || exit 1; done

# Build cpp/run_model (notebook 08) with this machine's compiler and CMake, against the LibTorch inside the
# venv's torch wheel (no separate download). Safe to repeat: only changed sources are recompiled.
cpp: install
	$(PY) -m helpers.cpp

clean:
	rm -rf $(VENV) .pytest_cache notebooks/build cpp/build
