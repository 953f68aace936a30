# The two commands a newcomer needs: `make test` and `make demo`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: test preflight demo lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The suite in up to four processes (pytest-xdist, one per core): its integration tests mostly
# wait on sandboxes, daemons and thaws, so they overlap well. Each process has its own sandbox.
test: preflight lint
	$(BIN)/pytest -n auto --maxprocesses 4

# What the tests need and `make` cannot install itself (they are system packages): said at once,
# not ten minutes into the run. `.ci/run` installs them on a fresh machine.
SLAPD    ?= $(or $(KARCHIVE_SLAPD),/usr/sbin/slapd)
SLAPADD  ?= $(or $(KARCHIVE_SLAPADD),/usr/sbin/slapadd)
PROMTOOL ?= $(or $(shell command -v promtool),/usr/bin/promtool)
# The keep page's browser test: headless Chromium and its WebDriver.
CHROMIUM     ?= $(or $(KARCHIVE_CHROMIUM),/usr/bin/chromium)
CHROMEDRIVER ?= $(or $(KARCHIVE_CHROMEDRIVER),/usr/bin/chromedriver)
preflight:
	@missing=""; \
	for tool in "$(SLAPD)" "$(SLAPADD)"; do \
	  [ -x "$$tool" ] || missing="$$missing $$tool (apt-get install slapd ldap-utils)"; done; \
	[ -x "$(PROMTOOL)" ] || missing="$$missing promtool (apt-get install --no-install-recommends prometheus)"; \
	for tool in "$(CHROMIUM)" "$(CHROMEDRIVER)"; do \
	  [ -x "$$tool" ] || missing="$$missing $$tool (apt-get install --no-install-recommends chromium chromium-driver)"; done; \
	if [ -n "$$missing" ]; then \
	  echo "make test: missing:$$missing" | sed 's/ \//\n  \//g; s/ promtool/\n  promtool/'; \
	  echo "Install them (.ci/run does) and run make test again."; exit 1; fi

demo: $(STAMP)
	$(BIN)/python -m sandbox.demo

# Style, types (strict for the product; the sandbox, a test tool, checked plainly), complexity
# and argument count, and the layer contracts (controller -> reconcilers -> policies; sandbox apart).
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy --strict controller policies reconcilers
	$(BIN)/mypy sandbox
	$(BIN)/lint-imports

bench: $(STAMP)
	$(BIN)/python bench/sandbox_bench.py
	$(BIN)/python bench/plan_bench.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
