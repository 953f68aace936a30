# The two commands a newcomer needs: `make test` and `make demo`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: test demo lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

test: lint
	$(BIN)/pytest

demo: $(STAMP)
	$(BIN)/python -m sandbox.demo

# Style, types and the layer contract (controller -> reconcilers -> policies; sandbox apart).
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy controller policies reconcilers sandbox
	$(BIN)/lint-imports

bench: $(STAMP)
	$(BIN)/python bench/sandbox_bench.py
	$(BIN)/python bench/plan_bench.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
