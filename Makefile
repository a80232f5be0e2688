# Two commands for a new user:  `make lab` (install, then JupyterLab) and `make test` (install, then all tests).
# Both are idempotent: the venv is (re)built only when requirements.txt or pyproject.toml change.

PYTHON ?= python3
# The course stack is tested on Python 3.11 only; `make` refuses another unless ALLOW_UNTESTED_PYTHON=1.
TESTED_PYTHON := 3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
KERNEL := torchscript-course
# nbval runs every notebook and compares its stored outputs (strict: no --nbval-lax).
NBVAL := --nbval --nbval-current-env --nbval-sanitize-with notebooks/sanitize.cfg
# Tests are hermetic: the shipped model whatever COURSE_HUB says, and never the hub even where one answers,
# so stored notebook outputs reproduce on any machine, online or offline, whatever its Hugging Face cache holds.
TEST_ENV := HF_HUB_OFFLINE=1 COURSE_HUB=0 TOKENIZERS_PARALLELISM=false

.PHONY: install lab test notebooks arabic bench cpp check-browser clean

# JupyterLab opens with the course kernel and without the news prompt: settings kept in envs/jupyter/, installed
# into the venv (lab defaults under overrides.d, so a user's own overrides.json and settings still win).
LAB_SETTINGS := $(VENV)/share/jupyter/lab/settings/overrides.d/$(KERNEL).json
SERVER_CONFIG := $(VENV)/etc/jupyter/jupyter_server_config.json

install: $(STAMP) $(LAB_SETTINGS) $(SERVER_CONFIG)

# Stops before anything is built when the Python that builds the venv is not the tested version.
BASE_PY = $(if $(wildcard $(PY)),$(PY),$(PYTHON))
PYTHON_CHECK := import sys; v = "%d.%d" % sys.version_info[:2]; ok = v == "$(TESTED_PYTHON)"; \
  allow = "$(ALLOW_UNTESTED_PYTHON)" == "1"; \
  msg = "Python " + v + " (" + sys.executable + ") is untested: the course stack is tested on Python $(TESTED_PYTHON) only"; \
  ok or not allow or print("warning: " + msg + "; going on because ALLOW_UNTESTED_PYTHON=1"); \
  sys.exit(0 if ok or allow else msg + ". Run with PYTHON=python$(TESTED_PYTHON), or set ALLOW_UNTESTED_PYTHON=1 to try it anyway.")

# torch alone first, from PyTorch's CPU wheel index named as an *extra* index: where it answers, pip prefers its
# 2.13.0+cpu wheel; where it cannot be reached, pip gives up on it at once (no retries, 5 s timeout) and takes
# torch from your other sources. Only torch's own page is asked for (--no-deps), so an unreachable index costs
# seconds, not a retry per package. On Linux x86_64, PyPI's torch is the CUDA build; macOS and Windows get CPU
# wheels from PyPI, so the step runs on Linux only. The rest (torch's own dependencies too) comes next.
TORCH_INDEX := https://download.pytorch.org/whl/cpu
TORCH_PIN := $(shell grep -E '^torch==' requirements.txt)
TORCH_LOG := $(VENV)/pip-torch.log

$(STAMP): requirements.txt pyproject.toml
	@$(BASE_PY) -c 'import sys' || { echo "make: cannot run $(BASE_PY): set PYTHON to a Python $(TESTED_PYTHON) interpreter, e.g. PYTHON=python$(TESTED_PYTHON)" >&2; exit 1; }
	@$(BASE_PY) -c '$(PYTHON_CHECK)'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	@if [ "$$(uname -s)" = Linux ]; then \
	  rm -f $(TORCH_LOG); \
	  echo "$(PY) -m pip install --quiet --no-deps --retries 0 --timeout 5 --extra-index-url $(TORCH_INDEX) $(TORCH_PIN)"; \
	  $(PY) -m pip install --quiet --no-deps --retries 0 --timeout 5 --extra-index-url $(TORCH_INDEX) --log $(TORCH_LOG) "$(TORCH_PIN)" || exit 1; \
	  if grep -q "Could not fetch URL $(TORCH_INDEX)" $(TORCH_LOG); then \
	    echo "note: PyTorch's CPU wheel index ($(TORCH_INDEX)) could not be reached: torch $$($(PY) -c 'import importlib.metadata as m; print(m.version("torch"))') came from your other package sources (on Linux x86_64, PyPI's torch is the CUDA build, several GB with its NVIDIA libraries)"; \
	  fi; \
	fi
	$(PY) -m pip install --quiet -r requirements.txt -e .
	$(PY) -m pip check
	$(PY) -m ipykernel install --sys-prefix --name $(KERNEL) --display-name "Python (TorchScript course)" >/dev/null
	touch $(STAMP)

$(LAB_SETTINGS): envs/jupyter/overrides.json $(STAMP)
	mkdir -p $(@D) && cp $< $@

$(SERVER_CONFIG): envs/jupyter/jupyter_server_config.json $(STAMP)
	mkdir -p $(@D) && cp $< $@

# JupyterLab refuses to run as root (containers, some cloud images) unless told it may.
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root)

# JupyterLab treats a notebook it did not run as untrusted and shows its stored widgets (notebook 02's explorer) as
# raw text. These are the course's own notebooks, so `make lab` signs them first (in your Jupyter data folder).
COURSE_NOTEBOOKS = $(wildcard notebooks/[0-9][0-9]_*.ipynb notebooks/ar/*.ipynb)

lab: install
	$(VENV)/bin/jupyter trust $(COURSE_NOTEBOOKS) >/dev/null
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

# A learner's view in a real browser: headless Chromium opens every notebook in JupyterLab, runs notebook 02 and moves
# its explorer's slider (tools/check_browser.py says what it checks); screenshots go to build/browser/. It uses
# Debian's chromium, installed with apt-get when missing; where that cannot be done it says so and exits 0.
# The Python driver (Playwright, told to use that Chromium) is pinned in envs/browser.txt, outside the course stack.
CHROMIUM ?= /usr/bin/chromium
SUDO := $(if $(filter 0,$(shell id -u)),,sudo -n)

check-browser: install
	@if [ ! -x $(CHROMIUM) ] && command -v apt-get >/dev/null; then \
	  echo "check-browser: installing Debian's chromium with apt-get (log: build/apt-chromium.log)"; mkdir -p build; \
	  { $(SUDO) apt-get update && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; } \
	    >build/apt-chromium.log 2>&1; \
	fi; \
	if [ ! -x $(CHROMIUM) ]; then \
	  echo "check-browser: skipped, nothing checked: no Chromium at $(CHROMIUM), and apt-get could not install Debian's (set CHROMIUM=... to use another)"; \
	  exit 0; \
	fi; \
	$(PY) -m pip install --quiet -r envs/browser.txt && CHROMIUM=$(CHROMIUM) $(TEST_ENV) $(PY) tools/check_browser.py

clean:
	rm -rf $(VENV) .pytest_cache notebooks/build cpp/build build
