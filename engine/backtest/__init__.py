"""Config-driven NautilusTrader backtests: ``run_backtest(config) -> RunResult`` and ``python -m engine.backtest``."""

from __future__ import annotations

from engine.backtest.result import RunResult
from engine.backtest.runner import run_backtest, run_many, write_artefacts
from engine.config import RunConfig, load_config, parse_config, with_overrides

__all__ = [
    "RunConfig",
    "RunResult",
    "load_config",
    "parse_config",
    "run_backtest",
    "run_many",
    "with_overrides",
    "write_artefacts",
]
