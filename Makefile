# The two commands of the README:
#   make run    the whole pipeline on one machine (local Kafka, SQLite, a local mail server)
#   make test   the test suite against a real Kafka broker and a real PostgreSQL
# Both create .venv and start what they need on a fresh machine.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
ASSETS := services/web/node_modules/.installed

.PHONY: run test infra-up infra-down bench lint docs clean browser screenshots

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt -e '.[test]'
	touch $(STAMP)

# The GOV.UK Frontend assets of the web front (CSS, JS, fonts, images), pinned in package.json;
# no lock file is kept (it would name the registry's download addresses).
$(ASSETS): services/web/package.json
	cd services/web && npm install --no-package-lock --no-audit --no-fund --silent
	touch $(ASSETS)

# The browser tests drive Debian's Chromium with Playwright (never `playwright install`).
browser:
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium)

run: $(STAMP) $(ASSETS)
	$(BIN)/ehc run --keep-running

infra-up: $(STAMP)
	$(BIN)/ehc infra up

infra-down: $(STAMP)
	$(BIN)/ehc infra down

test: $(STAMP) $(ASSETS) browser infra-up
	$(BIN)/ruff check .
	$(BIN)/pytest -q -p no:cacheprovider

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy services shared

docs: $(STAMP)
	$(BIN)/ehc docs

# The README's pictures of the web front, taken by its browser tests from their own data.
screenshots: $(STAMP) $(ASSETS) browser infra-up
	EHC_SCREENSHOTS=docs/screenshots $(BIN)/pytest -q -p no:cacheprovider tests/web/test_web_browser.py

bench: $(STAMP) $(ASSETS) infra-up
	for b in bench/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache .hypothesis
