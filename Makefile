# The two commands of the README: `make run` (set up, then the main job) and `make test` (set up, then the tests).
VENV ?= .venv
RUN_DIR ?= runs/demo
BIN := $(VENV)/bin

.PHONY: setup run test lint clean

setup:
	@bash scripts/setup.sh $(VENV)

run: setup
	$(BIN)/reflect-rl demo --output-dir $(RUN_DIR)

test: setup
	$(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache
