# One-command set-up and runs. Every target creates .venv with uv when it is missing.
SHELL := /bin/bash
export UV_PYTHON_DOWNLOADS := never
export PYTHONDONTWRITEBYTECODE :=
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
UV := $(PYTHON) -m uv
# The stamp names the inputs of the install: the pins, the Python version and pyproject.toml (the project
# itself is installed editable, so its package list and entry points come from there).
STAMP := $(VENV)/.installed-$(shell cat requirements.lock .python-version pyproject.toml | sha256sum | cut -c1-12)

.PHONY: setup test lint typecheck unit backtest backtest-real lock clean-venv

setup: $(STAMP)

$(STAMP): requirements.lock .python-version pyproject.toml
	@$(UV) --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet uv
	@test -x $(PY) || $(UV) venv --quiet --python "$$(cat .python-version)" $(VENV)
	$(UV) pip install --quiet --python $(PY) --compile-bytecode -r requirements.lock
	$(UV) pip install --quiet --python $(PY) --no-deps --editable .
	$(VENV)/bin/jupytext-config --settings-file $(VENV)/etc/jupyter/labconfig/default_setting_overrides.json \
		set-default-viewer python  # JupyterLab opens research/*.py (jupytext) as notebooks on a double click
	@rm -f $(VENV)/.installed-* && touch $@

lint: setup
	$(PY) -m ruff check .
	$(PY) -m ruff format --check datasets engine strategies reports tests benchmarks research
	$(VENV)/bin/lint-imports --no-cache --no-logo  # the [tool.importlinter] contracts in pyproject.toml

typecheck: setup
	$(PY) -m mypy

# Two workers (the core count here): the suite mostly waits on loopback venues, live nodes and subprocesses,
# so it finishes in about half the serial time; a module's tests stay on one worker (--dist loadfile).
# PYTEST_WORKERS=0 runs it serially.
PYTEST_WORKERS ?= 2
unit: setup
	$(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadfile

test: lint typecheck unit

backtest: setup
	$(PY) -m engine.demo

SHARED_DATA ?= ../shared/data
backtest-real: setup
	$(PY) -m datasets import $(SHARED_DATA)/binance_freqtrade --no-progress
	$(PY) -m datasets import configs/instruments_mid2025.csv --no-progress
	$(PY) -m datasets export-catalog --catalog data/catalog --venue binance --symbol BTC-USDT \
		--symbol BTC-USDT-PERP --no-progress
	$(PY) -m engine.backtest configs/binance_btc_2024q1.toml configs/carry_binance_btc_spot_perp.toml

lock:
	@$(UV) --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet uv
	$(UV) pip compile pyproject.toml --extra dev --python-version "$$(cat .python-version)" \
		--no-emit-index-url --quiet -o requirements.lock

clean-venv:
	rm -rf $(VENV)
