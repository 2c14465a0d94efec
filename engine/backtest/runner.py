"""Assemble and run one NautilusTrader ``BacktestEngine`` per run config, then rebuild its ledgers.

``run_backtest(config)`` is the notebook API: it returns a ``RunResult`` whose frames are the same
tables the CLI writes to ``runs/<config-hash>/``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from nautilus_trader.backtest import BacktestEngine, BacktestEngineConfig
from nautilus_trader.common import LoggerConfig, LogLevel
from nautilus_trader.model import TraderId
from nautilus_trader.risk import RiskEngineConfig

from engine.backtest import ledger, records
from engine.backtest.data import RunData, load_run_data, open_catalog
from engine.backtest.events import RiskEventRecorder
from engine.backtest.result import RunResult, assemble_result, read_ledgers
from engine.config import (
    RunConfig,
    build_strategy_config,
    config_json,
    import_object,
    resolve_instrument,
    strategy_paths,
)
from engine.errors import EngineError, EngineRunError
from engine.fill import SlippageFillModel
from engine.venue_models import VenueModel, build_venue_model

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    return None


def run_backtest(
    config: RunConfig,
    *,
    out_dir: str | Path | None = "runs",
    progress: Progress = _quiet,
    actors: Sequence[Any] = (),
) -> RunResult:
    """Run one backtest and return its ledgers; write ``<out_dir>/<config-hash>/`` unless ``out_dir`` is None.

    ``actors`` are extra Nautilus actors added before the strategy (e.g. ``strategies.risk.KillSwitchTimer``).

    Raises
    ------
    ConfigError
        If the strategy does not import or rejects its params, or a venue/instrument is unknown.
    MissingDataError
        If the catalog lacks an instrument or does not cover the range.
    EngineRunError
        If NautilusTrader fails while building or running.
    AccountingError
        If the engine's funding settlements disagree with their inputs.
    """
    timings: dict[str, float] = {}
    models = [build_venue_model(v) for v in config.venues]
    strategy_config = build_strategy_config(config)
    strategy_class = import_object(strategy_paths(config)[0], field="strategy.path")

    started = time.perf_counter()
    progress(f"catalog {config.data.catalog}: loading {config.start:%Y-%m-%d} to {config.end:%Y-%m-%d}")
    data = load_run_data(config, open_catalog(config.data.catalog), progress=progress)
    timings["catalog_load"] = time.perf_counter() - started

    started = time.perf_counter()
    progress(f"engine: replaying {data.bar_count:,} bars and {len(data.engine_data) - data.bar_count:,} other events")
    engine = _build_engine(config, models, data)
    recorder = RiskEventRecorder()
    try:
        strategy = guarded(strategy_class)(strategy_config)
        try:
            engine.add_actor(recorder)
            for actor in actors:
                engine.add_actor(actor)
            engine.add_strategy(strategy)
            engine.run()
        except EngineError:
            raise
        except Exception as exc:
            raise EngineRunError(
                f"expected the engine to finish, it failed with {type(exc).__name__}: {exc}; "
                "rerun with the same config to reproduce"
            ) from exc
        failure = getattr(strategy, "engine_failure", None)
        if failure is not None:
            raise EngineRunError(
                f"expected the strategy to run without errors, {failure[0]} raised {type(failure[1]).__name__}: "
                f"{failure[1]}; the run was stopped there (traceback above)"
            ) from failure[1]
        timings["engine_run"] = time.perf_counter() - started
        progress(f"engine: done in {timings['engine_run']:.2f} s")
        started = time.perf_counter()
        result = _collect(config, engine, models, data)
        result.risk_events = recorder.frame()
        result.stats["risk_events"] = result.risk_events.height
        timings["ledgers"] = time.perf_counter() - started
    finally:
        engine.dispose()
    result.timings_secs.update(timings)
    if out_dir is not None:
        started = time.perf_counter()
        result.run_dir = write_artefacts(result, Path(out_dir))
        result.timings_secs["artefacts"] = time.perf_counter() - started
        progress(f"artefacts: {result.run_dir}")
    return result


def run_many(
    configs: list[RunConfig], *, out_dir: str | Path | None = "runs", progress: Progress = _quiet
) -> list[RunResult]:
    """Run several configs one after another (one engine at a time) and return their results in order."""
    results = []
    for index, config in enumerate(configs, start=1):
        progress(f"[{index}/{len(configs)}] {config.name}")
        results.append(run_backtest(config, out_dir=out_dir, progress=progress))
    return results


def guarded(strategy_class: type) -> type:
    """Return a subclass of ``strategy_class`` that records the first exception of any ``on_*`` handler.

    Nautilus logs an exception raised in a handler and carries on; a backtest whose strategy failed
    halfway must not look like a result. The first failure stops the run (``shutdown_system``) and is
    raised as ``EngineRunError`` after it.
    """
    namespace: dict[str, Any] = {}
    for name in dir(strategy_class):
        if not name.startswith("on_") or not any(
            name in vars(k) for k in strategy_class.__mro__ if k.__module__.split(".")[0] != "nautilus_trader"
        ):
            continue
        namespace[name] = _guard(name, getattr(strategy_class, name))
    return type(strategy_class.__name__, (strategy_class,), namespace)


def _guard(name: str, handler: Callable[..., Any]) -> Callable[..., Any]:
    def guarded_handler(self: Any, *args: Any) -> Any:
        try:
            return handler(self, *args)
        except Exception as exc:
            if getattr(self, "engine_failure", None) is None:
                self.engine_failure = (name, exc)
                self.shutdown_system(f"{name} raised {type(exc).__name__}")
            raise

    guarded_handler.__name__ = name
    return guarded_handler


def _build_engine(config: RunConfig, models: list[VenueModel], data: RunData) -> BacktestEngine:
    notional = {
        resolve_instrument(config, *key.split(":", 1), where="risk.max_notional_per_order"): int(value)
        for key, value in config.risk.max_notional_per_order.items()
    }
    engine_config = BacktestEngineConfig(
        trader_id=TraderId(config.trader_id),
        logging=LoggerConfig(stdout_level=LogLevel.ERROR),
        risk_engine=RiskEngineConfig(
            max_order_submit_rate=config.risk.max_order_submit_rate,
            max_notional_per_order=notional or None,
        ),
    )
    try:
        engine = BacktestEngine(engine_config)
        for model in models:
            engine.add_venue(
                model.venue,
                model.oms_type,
                model.account_type,
                list(model.starting_balances),
                default_leverage=model.leverage,
                fill_model=SlippageFillModel(config.fill.slippage_bps),
                fee_model=model.fee_model(),
                bar_execution=True,
            )
        for instrument in data.instruments.values():
            engine.add_instrument(instrument)
        engine.add_data(data.engine_data, sort=True)
    except Exception as exc:
        raise EngineRunError(f"expected the engine to build, it failed with {type(exc).__name__}: {exc}") from exc
    return engine


def _collect(config: RunConfig, engine: BacktestEngine, models: list[VenueModel], data: RunData) -> RunResult:
    ledgers = read_ledgers(engine.cache, models=models, data=data)
    settled = records.funding_events([*engine.cache.positions(), *engine.cache.position_snapshots()])
    funding = ledger.funding_ledger(settled, ledgers.fills, data)
    return assemble_result(config, ledgers, funding=funding, models=models, data=data)


def write_artefacts(result: RunResult, out_dir: Path) -> Path:
    """Write the run's ledgers, stats, resolved config and HTML report to ``out_dir/<config-hash>/``."""
    from reports.backtest import render_report

    run_dir = out_dir / result.config_hash
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.json").write_text(config_json(result.config))
    for name, frame in result.frames().items():
        frame.write_parquet(run_dir / f"{name}.parquet", compression="zstd", statistics=False)
    (run_dir / "stats.json").write_text(json.dumps(result.stats, sort_keys=True, indent=2) + "\n")
    render_report(
        run_dir / "report.html",
        stats=result.stats,
        equity=result.equity,
        fills=result.fills,
        bars=result.bars,
        funding=result.funding,
    )
    return run_dir
