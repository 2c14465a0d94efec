"""Assemble and run one NautilusTrader ``BacktestEngine`` per run config, then rebuild its ledgers.

``run_backtest(config)`` is the notebook API: it returns a ``RunResult`` whose frames are the same
tables the CLI writes to ``runs/<config-hash>/``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
from nautilus_trader.backtest import BacktestEngine, BacktestEngineConfig
from nautilus_trader.common import LoggerConfig, LogLevel
from nautilus_trader.model import TraderId
from nautilus_trader.risk import RiskEngineConfig

from engine.backtest import ledger, records
from engine.backtest.data import RunData, load_run_data, open_catalog
from engine.backtest.events import RISK_EVENTS_SCHEMA, RiskEventRecorder
from engine.backtest.stats import build_stats, text
from engine.config import (
    RunConfig,
    build_strategy_config,
    config_hash,
    config_json,
    import_object,
    resolve_instrument,
    strategy_paths,
)
from engine.errors import EngineError, EngineRunError
from engine.fill import SlippageFillModel, describe_fill_model
from engine.venue_models import VenueModel, build_venue_model

Progress = Callable[[str], None]
ARTEFACTS = ("orders", "fills", "positions", "account", "funding", "equity", "risk_events")


def _quiet(_: str) -> None:
    return None


@dataclass(slots=True)
class RunResult:
    """What one run produced: its ledgers as polars frames, its statistics and where it was written.

    Attributes
    ----------
    config : RunConfig
    config_hash : str
    orders, fills, positions, account, funding, equity : pl.DataFrame
        The ledgers; ``equity`` is the PnL attribution on every bar close, per currency.
    risk_events : pl.DataFrame
        Every decision of the strategy's risk controls (``strategies.risk``), in order.
    stats : dict
        The ``stats.json`` document.
    run_dir : Path | None
        ``runs/<config-hash>/`` when artefacts were written.
    timings_secs : dict[str, float]
        Wall time of ``catalog_load``, ``engine_run``, ``ledgers`` (rebuilding them from the engine's
        reports) and ``artefacts`` (writing files and the HTML report).
    """

    config: RunConfig
    config_hash: str
    orders: pl.DataFrame
    fills: pl.DataFrame
    positions: pl.DataFrame
    account: pl.DataFrame
    funding: pl.DataFrame
    equity: pl.DataFrame
    stats: dict[str, Any]
    bars: pl.DataFrame
    run_dir: Path | None = None
    timings_secs: dict[str, float] = field(default_factory=dict)
    risk_events: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=RISK_EVENTS_SCHEMA))

    def frames(self) -> dict[str, pl.DataFrame]:
        """Return the ledgers by artefact name."""
        return {name: getattr(self, name) for name in ARTEFACTS}


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
    cache = engine.cache
    every_order = cache.orders()
    fills = records.fills_frame(every_order, data.venue_of)
    orders = records.orders_frame(every_order, ledger.order_reasons(every_order))
    open_or_last, snapshots = cache.positions(), cache.position_snapshots()
    positions = records.positions_frame(open_or_last, snapshots)
    accounts = ((m.name, cache.account_for_venue(m.venue)) for m in models)
    account = records.account_frame((name, a) for name, a in accounts if a is not None)
    funding = ledger.funding_ledger(records.funding_events([*open_or_last, *snapshots]), fills, data)
    currency_of = {str(i): _settlement_currency(instrument) for i, instrument in data.instruments.items()}
    attribution = ledger.attribute(fills, funding, data, currency_of)
    starting: dict[str, Decimal] = {}
    for model in models:
        for money in model.starting_balances:
            starting[money.currency.code] = starting.get(money.currency.code, Decimal(0)) + money.as_decimal()
    counts = {
        "orders": orders.height,
        "orders_denied": orders.filter(pl.col("status") == "DENIED").height,
        "fills": fills.height,
        "positions": positions.height,
        "funding_settlements": funding.height,
        "bars": data.bar_count,
    }
    extra = {
        "name": config.name,
        "config_hash": config_hash(config),
        "start": config.start.isoformat(),
        "end": config.end.isoformat(),
        "fill_model": describe_fill_model(config.fill.slippage_bps),
        "venues": [m.describe() for m in models],
        "reconciliation": _reconcile(attribution, account, positions, data, currency_of, starting),
    }
    stats = build_stats(attribution=attribution, starting=starting, counts=counts, extra=extra)
    return RunResult(
        config=config,
        config_hash=config_hash(config),
        orders=orders,
        fills=fills,
        positions=positions,
        account=account,
        funding=funding,
        equity=attribution.curve,
        stats=stats,
        bars=data.bars,
    )


def _settlement_currency(instrument: Any) -> str:
    # Nautilus books linear PnL, fees and funding in the quote currency (Hyperliquid perps: USD, not USDC).
    currency = instrument.base_currency if getattr(instrument, "is_inverse", False) else instrument.quote_currency
    return str(currency.code)


def _reconcile(
    attribution: ledger.Attribution,
    account: pl.DataFrame,
    positions: pl.DataFrame,
    data: RunData,
    currency_of: dict[str, str],
    starting: dict[str, Decimal],
) -> dict[str, dict[str, str]]:
    """Compare the ledger's PnL with the engine's balances plus open positions marked at the last close.

    Nautilus keeps average entry prices as binary floats, so realised PnL of partial closes can differ
    from the exact ledger in the last decimals; the difference is reported, not hidden.
    """
    result: dict[str, dict[str, str]] = {}
    final = account.group_by("venue", "currency", maintain_order=True).last()
    engine_change: dict[str, Decimal] = {}
    for row in final.iter_rows(named=True):
        engine_change[row["currency"]] = engine_change.get(row["currency"], Decimal(0)) + row["total"]
    for currency, amount in starting.items():
        engine_change[currency] = engine_change.get(currency, Decimal(0)) - amount
    last_close = {
        row["instrument_id"]: row["close"]
        for row in data.bars.group_by("instrument_id", maintain_order=True).last().iter_rows(named=True)
    }
    for row in positions.filter(~pl.col("is_snapshot") & (pl.col("side") != "FLAT")).iter_rows(named=True):
        currency = currency_of.get(row["instrument_id"], row["currency"])
        signed = row["quantity"] if row["side"] == "LONG" else -row["quantity"]
        unrealized = (
            signed
            * (last_close[row["instrument_id"]] - Decimal(row["avg_price_open"]))
            * ledger_multiplier(data, row["instrument_id"])
        )
        engine_change[currency] = engine_change.get(currency, Decimal(0)) + unrealized
    for currency, values in attribution.final.items():
        change = engine_change.get(currency, Decimal(0))
        result[currency] = {
            "ledger_pnl_total": text(values["pnl_total"]),
            "engine_pnl_total": text(change),
            "difference": text(values["pnl_total"] - change),
        }
    return result


def ledger_multiplier(data: RunData, instrument_id: str) -> Decimal:
    for key, instrument in data.instruments.items():
        if str(key) == instrument_id:
            return Decimal(str(instrument.multiplier))
    return Decimal(1)


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
