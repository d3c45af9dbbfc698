# Two entry points for a fresh machine: `make run` (the default pipeline) and `make test`.
# Each creates the virtual environment on first use: CPU torch first (pip, which finds the
# CPU wheel), then uv into the environment, then the project pinned by requirements.lock with uv
# (it fetches and installs in parallel: about 30 s, where pip takes about 5 min).
VENV ?= .venv
PYTHON ?= python3
TORCH_SPEC ?= torch==2.13.0
# Where pip looks for torch alone, when not on its own index (e.g. https://download.pytorch.org/whl/cpu).
TORCH_INDEX ?=
BIN := $(VENV)/bin

# Nothing phones home and nothing loads from a hub at run time.
export DVC_NO_ANALYTICS := 1
export HF_HUB_OFFLINE := 1
export BENTOML_DO_NOT_TRACK := true
export MLFLOW_DISABLE_TELEMETRY := true
STAMP := $(VENV)/.installed
# Debian packages the serving tests drive: Chromium (the web page) and PostgreSQL (a ratings store).
SYSTEM_PACKAGES := chromium postgresql

.PHONY: install run test lint lock system-packages

install: $(STAMP)

$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH_SPEC)" $(if $(TORCH_INDEX),--index-url "$(TORCH_INDEX)")
	$(BIN)/python -m pip install --quiet uv
	$(BIN)/uv pip install --python $(BIN)/python --quiet -c requirements.lock -e '.[dev]'
	touch $@

run: $(STAMP)
	$(BIN)/psyllm run

# Installed when missing if we are root (CI); otherwise those tests skip and say why.
system-packages:
	@if command -v chromium >/dev/null && ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(SYSTEM_PACKAGES) >/dev/null; \
	else echo "note: install $(SYSTEM_PACKAGES) to run the browser and PostgreSQL tests"; fi

test: $(STAMP) system-packages
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Regenerate the lock after changing dependencies in pyproject.toml. TORCH_WHEELS holds the CPU
# torch wheel, so torch's CUDA-only dependencies stay out of the lock.
TORCH_WHEELS ?= /opt/wheels
lock: $(STAMP)
	$(BIN)/uv pip compile pyproject.toml --extra dev --find-links $(TORCH_WHEELS) --python-version 3.11 --no-emit-package torch --no-header -o requirements.lock
