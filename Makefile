# The two commands of the README: `make book` and `make test`. Both create .venv first.
SHELL := /bin/bash
PY := .venv/bin/python
STAMP := .venv/.installed-stamp
# Real corpora: $EESR_DATA if set, else ../shared/data beside the clone, else data/.
EESR_DATA ?= $(shell if [ -d ../shared/data ]; then cd ../shared/data && pwd; else echo $(CURDIR)/data; fi)
export EESR_DATA

.PHONY: venv test test-all lint book bench clean-book

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
	.venv/bin/ruff check eesr_lib tests benchmarks
	.venv/bin/ruff format --check eesr_lib tests benchmarks

book: venv
	@ls notebooks/*.ipynb >/dev/null 2>&1 || { echo "make book: no notebooks in notebooks/ yet (they come with the notebooks issue)"; exit 1; }
	$(PY) -m eesr_lib.book_build

bench: venv
	$(PY) benchmarks/run_cpu.py
