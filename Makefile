# The two commands of the README. Each creates (or reuses) .venv, installs torch first
# (pinned: the CPU wheel; an unpinned torch pulls GB of CUDA packages), then wsg and
# the pinned book toolchain.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
TORCH  ?= torch==2.13.0
export WSG_PROFILE ?= tiny
SHELL  := /bin/bash
.SHELLFLAGS := -eo pipefail -c

.PHONY: test book unit notebooks book-check env clean

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: $(BIN)/activate pyproject.toml
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q "$(TORCH)"
	$(BIN)/pip install -q -e ".[dev]"
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $@

env: $(VENV)/.installed  ## create/refresh the virtual environment

test: env  ## the whole suite: unit tests, every notebook under nbval, and the book's structure under -W
	$(BIN)/python -m pytest tests -q -p no:cacheprovider
	$(BIN)/python -m pytest --nbval-lax notebooks -q -p no:cacheprovider
	$(MAKE) book-check

unit: env  ## unit tests only
	$(BIN)/python -m pytest tests -q

notebooks: env  ## every chapter under nbval (executes them)
	$(BIN)/python -m pytest --nbval-lax notebooks -q -p no:cacheprovider

book-check: env  ## the book's structure, references and links under -W, without executing (nbval does that)
	rm -rf _build/check
	$(BIN)/jupyter-book config sphinx . >/dev/null
	$(BIN)/sphinx-build -W --keep-going -q -D nb_execution_mode=off . _build/check
	rm -f conf.py

book: env  ## the book with every chapter executed, in _build/html
	$(BIN)/jupyter-book build . -W --keep-going

clean:
	rm -rf _build .pytest_cache
