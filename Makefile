# Two commands set everything up on a fresh machine:
#   make demo    install wev and run it on examples/wev.yml
#   make check   install the test dependencies, then ruff, mypy and the tests
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin

.PHONY: demo check install bench

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'

demo: install
	cd examples && WEV_NO_DAEMON=1 ../$(BIN)/wev --explain
	cd examples && ../$(BIN)/wev sh -c 'echo "$$GREETING (AWS_PROFILE=$$AWS_PROFILE)"'

check: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python -m pytest

bench: install
	$(BIN)/python bench/startup.py
