# The two commands of the README: `make book` and `make test`. Both create .venv first.
SHELL := /bin/bash
PY := .venv/bin/python
STAMP := .venv/.installed-stamp
# Real corpora: $EESR_DATA if set, else ../shared/data beside the clone, else data/.
EESR_DATA ?= $(shell if [ -d ../shared/data ]; then cd ../shared/data && pwd; else echo $(CURDIR)/data; fi)
export EESR_DATA

.PHONY: venv test test-all lint book book-smoke bench clean-book

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || python3 -m venv .venv
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	touch $@

venv: $(STAMP)

test: venv
	$(PY) -m pytest -q tests

test-all: venv
	$(PY) -m pytest -q -m "" tests

lint: venv
	.venv/bin/ruff check .
	.venv/bin/ruff format --check eesr_lib tests benchmarks scripts

# The book: every notebook in notebooks/ through papermill, then jupyter-book build (scripts/build_book.py).
#   make book                         EMODB, profile paper -> book/chapters/emodb/, _build/html
#   make book DATASET=ravdess DATA_ROOT=/data PROFILE=smoke
#   make book-smoke                   tiny and fast, built in $(SMOKE_DIR): touches nothing in the project
DATASET ?= emodb
DATA_ROOT ?=
PROFILE ?= paper
RESULTS ?= results
DEVICE ?= auto
SMOKE_DIR ?= /tmp/eesr-smoke-book
BOOK_ARGS = --dataset $(DATASET) --results $(RESULTS) --device $(DEVICE) --smoke-dir $(SMOKE_DIR) \
	$(if $(DATA_ROOT),--data-root $(DATA_ROOT),)

book: venv
	@ls notebooks/*.ipynb >/dev/null 2>&1 || { echo "make book: no notebooks in notebooks/"; exit 1; }
	$(PY) scripts/build_book.py --profile $(PROFILE) $(BOOK_ARGS)

book-smoke: venv
	$(PY) scripts/build_book.py --profile smoke $(BOOK_ARGS)

clean-book:
	rm -rf _build

bench: venv
	$(PY) benchmarks/run_cpu.py
