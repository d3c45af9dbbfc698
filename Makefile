# Two entry points for a fresh machine: `make run` (the default pipeline) and `make test`.
# Each creates the virtual environment on first use: CPU torch first, then the project
# pinned by requirements.lock so that pip never backtracks.
VENV ?= .venv
PYTHON ?= python3
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin

# Nothing phones home and nothing loads from a hub at run time.
export DVC_NO_ANALYTICS := 1
export HF_HUB_OFFLINE := 1
export BENTOML_DO_NOT_TRACK := true
export MLFLOW_DISABLE_TELEMETRY := true
STAMP := $(VENV)/.installed

.PHONY: install run test lint lock

install: $(STAMP)

$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/python -m pip install --quiet -c requirements.lock -e '.[dev]'
	touch $@

run: $(STAMP)
	$(BIN)/psyllm run

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Regenerate the lock after changing dependencies in pyproject.toml. TORCH_WHEELS holds the CPU
# torch wheel, so torch's CUDA-only dependencies stay out of the lock.
TORCH_WHEELS ?= /opt/wheels
lock:
	uv pip compile pyproject.toml --extra dev --find-links $(TORCH_WHEELS) --python-version 3.11 --no-emit-package torch --no-header -o requirements.lock
