# The two commands of the README. Each creates (or reuses) .venv, installs torch first
# (pinned, so that nothing later upgrades it), then wsg and the pinned book toolchain.
# On Linux, PyPI's torch is the CUDA build (several GB of nvidia packages); on a CPU-only
# machine, `make test TORCH_INDEX=https://download.pytorch.org/whl/cpu` takes PyTorch's CPU wheel.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
TORCH  ?= torch==2.13.0
TORCH_INDEX ?=
export WSG_PROFILE ?= tiny
SHELL  := /bin/bash
.SHELLFLAGS := -eo pipefail -c

# Seconds one cell may run in the executed chapters, per profile, set here and nowhere else: for nbval
# (`test`, `notebooks`) and for the book (`book`; it overrides _config.yml's execute.timeout). A few
# times the profile's longest cell and no more, because a stalled cell costs exactly this long: when
# the book's executor (nbclient) misses the wake-up for an execute_reply that has arrived, it finds
# the reply only as this timeout expires, and the cell then passes (the 15 idle minutes at the old
# 900 s; scripts/execution_soak.py reproduces it and says why). tiny: the longest cell, Chapter 6's
# ablations, took 80 s on a free core and 240-280 s on 2 busy ones. full: each main training stops
# at 45 min (wsg/profiles.py), but Chapter 6's ablation cell trains six variants without a cap.
CELL_TIMEOUT_tiny := 600
CELL_TIMEOUT_full := 14400
CELL_TIMEOUT ?= $(or $(CELL_TIMEOUT_$(WSG_PROFILE)),$(CELL_TIMEOUT_full))

.PHONY: test book book-instructor pdf unit notebooks book-check env clean browser checkpoints second-machine wheel-check full-check full-check-all colab results

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: $(BIN)/activate pyproject.toml
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX)) "$(TORCH)"
	$(BIN)/pip install -q -e ".[dev]"
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $@

env: $(VENV)/.installed  ## create/refresh the virtual environment

test: env browser  ## the whole suite: unit tests, every notebook under nbval, and the book's structure under -W
	$(BIN)/python -m pytest tests -q -p no:cacheprovider
	$(BIN)/python -m pytest --nbval-lax --nbval-cell-timeout=$(CELL_TIMEOUT) notebooks -q -p no:cacheprovider
	$(MAKE) book-check

unit: env  ## unit tests only
	$(BIN)/python -m pytest tests -q

notebooks: env  ## every chapter under nbval (executes them)
	$(BIN)/python -m pytest --nbval-lax --nbval-cell-timeout=$(CELL_TIMEOUT) notebooks -q -p no:cacheprovider

book-check: env  ## the book's structure, references and links under -W, without executing (nbval does that)
	rm -rf _build/check
	$(BIN)/jupyter-book config sphinx . >/dev/null
	PYTHONPATH=book/_ext $(BIN)/sphinx-build -W --keep-going -q -D nb_execution_mode=off . _build/check
	rm -f conf.py

# TQDM_DISABLE: no live progress bars in the executed build. A static page cannot show them, and
# every bar update is a widget message between kernel and client; on a loaded 2-core machine the
# build once sat idle for 15 minutes in Chapter 3, and again in Chapter 6 with the bars off: the cause
# is the explorers' Output widgets (see CELL_TIMEOUT), so WSG_STATIC_EXPLORERS draws their first view
# as a plain figure (wsg.viz.explorer), and the build sends no widget message at all.
# jupyter-book's own configuration, built by sphinx-build as `book-check` does, because only that
# takes -D (the per-profile CELL_TIMEOUT).
#
# Two editions of the executed book: `book`, the student edition (_config.yml: hide_solutions), in
# _build/html, and `book-instructor`, with every solution folded under its exercise, in _build/instructor.
# `book` executes every chapter (a jupyter-cache emptied first, so nothing is reused: the cache keys
# only on cell text and would not notice a change in the library); `book-instructor` and `pdf` take the
# chapters' outputs from that cache and execute only a chapter whose cells changed since.
# After the build, `book` writes the course's lab-time table from the times this build measured
# (book/lab_times.py), rebuilds the pages that include it (course.md alone: the chapters come from
# the cache), and checks the pages in headless Chromium (book/check_pages.py): it fails on a defect.
BOOK_CACHE := $(CURDIR)/_build/.jupyter_cache
BOOK_RUN    = TQDM_DISABLE=1 WSG_STATIC_EXPLORERS=1 PYTHONPATH=book/_ext $(BIN)/sphinx-build -W --keep-going \
              -D nb_execution_timeout=$(CELL_TIMEOUT) -D nb_execution_mode=cache -D nb_execution_cache_path=$(BOOK_CACHE)

book: env browser  ## the student edition, every chapter executed, in _build/html; then its page checks
	rm -rf $(BOOK_CACHE)
	$(BIN)/jupyter-book config sphinx . >/dev/null
	$(BOOK_RUN) -d _build/.doctrees . _build/html || { rm -f conf.py; exit 1; }
	$(BIN)/python book/lab_times.py --doctrees _build/.doctrees || { rm -f conf.py; exit 1; }
	$(BOOK_RUN) -q -d _build/.doctrees . _build/html || { rm -f conf.py; exit 1; }
	rm -f conf.py
	$(BIN)/python book/check_pages.py _build/html

book-instructor: env browser  ## the instructor edition (solutions folded under each exercise) in _build/instructor
	$(BIN)/jupyter-book config sphinx . >/dev/null
	$(BOOK_RUN) -D hide_solutions=0 -d _build/.doctrees-instructor . _build/instructor || { rm -f conf.py; exit 1; }
	rm -f conf.py
	$(BIN)/python book/check_pages.py _build/instructor

# No LaTeX: jupyter-book's PDF route through LaTeX needs a TeX installation of several GB. The student
# edition as one HTML page (Sphinx's singlehtml builder), printed by the headless Chromium that the
# page checks use (book/print_pdf.py). Run after `make book` (it reuses that build's outputs).
pdf: env browser  ## the student edition as one PDF, _build/pdf/wsg-book.pdf (headless Chromium, no LaTeX)
	$(BIN)/jupyter-book config sphinx . >/dev/null
	$(BOOK_RUN) -q -b singlehtml -d _build/.doctrees-pdf . _build/singlehtml || { rm -f conf.py; exit 1; }
	rm -f conf.py
	$(BIN)/python book/print_pdf.py _build/singlehtml _build/pdf/wsg-book.pdf

# The chapters' train-or-load checkpoints (wsg.checkpoints), all five shipped (0.2-1.5 MB each): a
# chapter opened alone (Colab) loads them from the installed wheel instead of training (Chapter 7 needs all).
CHECKPOINTED = marn wsra vlanet fsan fian
checkpoints: env  ## remake the shipped tiny checkpoints in checkpoints/tiny (one thread: bit-reproducible)
	TQDM_DISABLE=1 $(BIN)/python -m wsg checkpoints $(CHECKPOINTED) --dataset charades --profile tiny --seed 0

# The whole results store from one commit (wsg/regenerate.py): hours of CPU time, resumable. It builds
# results/next/ and skips the jobs already done for the current code digest; commit results/next/
# between sessions, then `make results ARGS=--promote` moves the complete store into results/.
results: env  ## remake every file of results/ at one commit (resumable; ARGS=--list shows what is left)
	TQDM_DISABLE=$${TQDM_DISABLE:-} $(BIN)/python -m wsg.regenerate $(ARGS)

# tests/test_site.py opens the built pages in headless Chromium: Debian's `chromium` package
# (never a browser download). Installed here when missing and we may (root, apt-get); the
# test fails when CI is set and no browser is found, and is skipped on a developer's machine.
browser:  ## install headless Chromium for tests/test_site.py when it is missing
	@if command -v chromium >/dev/null || command -v chromium-browser >/dev/null \
	    || command -v google-chrome >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing chromium (Debian package) for tests/test_site.py"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null; \
	else echo "no chromium and no root to install it: tests/test_site.py will be skipped (or fail if CI is set)"; fi

clean:
	rm -rf _build .pytest_cache

# ------------------------------------------------------------------ readers' machines (.ci/run calls these too)
# Another CPU: the unit tests again with other kernels (AVX2 in ATen and MKL). Rounding differs, so the
# reproduction tests take their other branch (determinism here + the seed spread; wsg/provenance.py).
second-machine: env  ## the unit tests as on another CPU (ATEN_CPU_CAPABILITY=avx2, MKL_ENABLE_INSTRUCTIONS=AVX2)
	ATEN_CPU_CAPABILITY=avx2 MKL_ENABLE_INSTRUCTIONS=AVX2 $(BIN)/python -m pytest tests -q -p no:cacheprovider

# Colab: the wheel in a fresh venv, only the notebooks in an empty folder (tests/test_wheel_alone.py).
wheel-check: env  ## Chapters 1, 2 and 7 from the built wheel in an empty folder, as Colab runs them
	WSG_WHEEL_CHECK=1 $(BIN)/python -m pytest tests/test_wheel_alone.py -q -p no:cacheprovider -rs

# The `full` profile on a CPU: the chapters with their full data and the bf16 AMP path, each training run
# cut to 2 steps x 1 epoch (WSG_STEP_CAP); the chapters skip their asserts about what a model learned.
# Evaluating the full-width models on the full splits still takes long on 2 cores: Chapter 5 alone takes
# about 30 minutes (FSAN's 80-million-parameter model, fp32 on one thread; the others 0.5-9 minutes), so
# CI's `full-check` runs every chapter but 5, and `full-check-all` all seven.
FULL_CHECK = notebooks/01_task_data_evaluation.ipynb notebooks/02_marn.ipynb notebooks/03_wsra.ipynb \
             notebooks/04_vlanet.ipynb notebooks/06_fian.ipynb notebooks/07_comparison.ipynb
full-check: env  ## every chapter but 5 in the full profile under a step cap (CI)
	WSG_PROFILE=full WSG_STEP_CAP=2,1 TQDM_DISABLE=1 $(BIN)/python -m pytest --nbval-lax \
	    --nbval-cell-timeout=$(CELL_TIMEOUT_full) $(FULL_CHECK) -q -p no:cacheprovider

full-check-all: env  ## every chapter in the full profile under a step cap (about an hour on 2 cores)
	$(MAKE) full-check FULL_CHECK=notebooks

# The chapters' Colab copies: colab/NN_x.ipynb from notebooks/NN_x.ipynb, MyST turned into the plain Markdown
# that Colab renders, solutions folded, outputs stripped (book/colab.py; tests/test_colab.py checks they are current).
colab: env  ## write the Colab copies of the chapters into colab/ (run after editing a chapter)
	$(BIN)/python book/colab.py
