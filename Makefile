# The two commands of the README:
#   make run    the whole pipeline on one machine (local Kafka, SQLite, a local mail server)
#   make test   the test suite against a real Kafka broker and a real PostgreSQL
# Both create .venv and start what they need on a fresh machine.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test infra-up infra-down bench lint docs clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/ehc run

infra-up: $(STAMP)
	$(BIN)/ehc infra up

infra-down: $(STAMP)
	$(BIN)/ehc infra down

test: $(STAMP) infra-up
	$(BIN)/ruff check .
	$(BIN)/pytest -q -p no:cacheprovider

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy services shared

docs: $(STAMP)
	$(BIN)/ehc docs

bench: $(STAMP) infra-up
	for b in bench/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache .hypothesis
