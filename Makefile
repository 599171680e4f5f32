# The two commands of the README. Both set themselves up on a fresh machine (Python 3.11+).
VENV ?= .venv
PY := $(VENV)/bin/python
PG_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test

.PHONY: demo test setup

$(PY):
	python3 -m venv $(VENV)

setup: $(PY)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'

# Set up and run the demo on the embedded default (SQLite, built-in ledger).
demo: setup
	$(VENV)/bin/directlink demo

# Set up and run the tests, on SQLite and on the local PostgreSQL server (required). The linters run
# first, as they take seconds and the suite minutes: ruff, mypy (domain/, gateway/protocol/) and the layer
# contracts (tests/test_layers.py runs those again, so a bare pytest holds them too).
test: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports --no-cache --no-logo
	@command -v xmlsec1 >/dev/null || (apt-get update -qq && apt-get install -y -qq xmlsec1 >/dev/null)
	@command -v softhsm2-util >/dev/null || (apt-get update -qq && apt-get install -y -qq softhsm2 >/dev/null)
	@command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null)
	@command -v pdftotext >/dev/null || (apt-get update -qq && apt-get install -y -qq poppler-utils >/dev/null)
	@$(PY) -c "import psycopg,sys; psycopg.connect('host=127.0.0.1 port=5432 dbname=test user=postgres', connect_timeout=5).close()" \
	  || (echo "PostgreSQL is not reachable at 127.0.0.1:5432 (database test)"; exit 1)
	DIRECTLINK_TEST_DATABASE_URL=$(PG_URL) $(PY) -m pytest
