"""Config-driven NautilusTrader backtests: ``run_backtest(config) -> RunResult`` and ``python -m engine.backtest``."""

from __future__ import annotations

from engine.backtest.runner import run_backtest, run_many
from engine.batch import load_runs
from engine.config import RunConfig
from engine.loading import load_config, parse_config, with_overrides
from engine.results.artefacts import write_artefacts
from engine.results.result import RunResult

__all__ = [
    "RunConfig",
    "RunResult",
    "load_config",
    "load_runs",
    "parse_config",
    "run_backtest",
    "run_many",
    "with_overrides",
    "write_artefacts",
]
