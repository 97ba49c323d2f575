# Two commands do everything on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.complaw-installed
PIP    := $(BIN)/python -m pip
# Every install goes through the constraints file: it pins the local CPU torch.
PIPI   := $(PIP) install --disable-pip-version-check -c constraints.txt

.PHONY: install test lint demo bench clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIPI) -q torch==2.13.0
	$(PIPI) -q -e '.[test,ray]'
	touch $(STAMP)

install: $(STAMP)

lint: install
	$(BIN)/ruff check src tests benchmarks

test: lint
	$(BIN)/python -m pytest -q

demo: install
	$(BIN)/complaw demo

bench: install
	$(BIN)/python benchmarks/bench_fit.py

clean:
	rm -rf $(VENV) build dist .pytest_cache .ruff_cache
