# Two commands a newcomer needs: `make demo` and `make test`. Both create .venv when it is missing.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LOCK := requirements.lock
LOCK_TOOLS := .lock-tools
PIP_VERSION := 26.3
UV_VERSION := 0.13.10
RUN ?= runs/demo

.PHONY: demo test test-slow test-gpu lint bench venv lock clean

venv: $(STAMP)

# The venv holds exactly requirements.lock (versions and SHA-256 hashes, the CUDA builds of torch, torchvision
# and triton included) and this package, editable, without dependencies of its own choosing. The lock is for
# CPython 3.11 on Linux x86-64 (the CI and GPU machines); elsewhere, `pip install -e ".[dev]"` takes
# pyproject.toml's ranges. When the lock or pyproject.toml changes the venv is rebuilt from nothing, so no
# package outside the lock survives in it.
$(STAMP): $(LOCK) pyproject.toml
	@$(PY) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "requirements.lock is for CPython 3.11 and $(PY) is " + sys.version.split()[0] + "; run make with PY=python3.11, or pip install -e \".[dev]\" for the ranges.")'
	rm -rf $(VENV)
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q "pip==$(PIP_VERSION)"
	$(BIN)/python -m pip install -q --require-hashes --no-deps -r $(LOCK)
	$(BIN)/python -m pip install -q --no-deps -e .
	$(BIN)/python -m pip check
	touch $(STAMP)

# Regenerate requirements.lock with the newest versions pyproject.toml's ranges allow (uv, in a venv of its
# own), then run `make test` on it before committing the two files together.
lock:
	test -x $(LOCK_TOOLS)/bin/uv || ($(PY) -m venv $(LOCK_TOOLS) && $(LOCK_TOOLS)/bin/python -m pip install -q "uv==$(UV_VERSION)")
	$(LOCK_TOOLS)/bin/uv pip compile pyproject.toml --extra dev --generate-hashes --upgrade \
		--python-version 3.11 --python-platform x86_64-manylinux_2_28 --output-file $(LOCK)

# Train DDPM on the bundled digits (CPU, a few minutes), sample a grid, score it, show the leaderboard.
demo: $(STAMP)
	$(BIN)/python -m lit_genvision.demo --run-dir $(RUN)

test: $(STAMP)
	$(BIN)/python -m pytest -q

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow

# The kernels' bf16 and large-shape tests; on a machine without CUDA they skip.
test-gpu: $(STAMP)
	$(BIN)/python -m pytest -q -m gpu

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

bench: $(STAMP)
	$(BIN)/python benchmarks/train_throughput.py

clean:
	rm -rf runs .pytest_cache
