# Two commands set everything up on a fresh machine:
#   make demo    install wev (nothing else) and run its main job against local
#                stand-ins for CodeArtifact and a private index (examples/demo.py)
#   make check   install the test dependencies, then ruff, mypy and the tests
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
# The tests run in parallel (pytest-xdist): they mostly wait on the processes
# they start, so more workers than cores pay. Those marked serial (they load
# the machine themselves, or change it) run after them, alone.
TEST_WORKERS ?= 6

.PHONY: demo check install bench

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'

# wev and its own dependencies only: the stand-ins the demo starts come from
# tests/fakes of this checkout and need nothing more (aiohttp is wev's).
demo: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	$(BIN)/python examples/demo.py

check: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python -m pytest -n $(TEST_WORKERS) -m 'not serial'; parallel=$$?; \
	$(BIN)/python -m pytest -m serial; serial=$$?; \
	[ $$parallel = 0 ] && [ $$serial = 0 ]

bench: install
	$(BIN)/python bench/startup.py
