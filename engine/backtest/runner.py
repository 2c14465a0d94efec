"""Assemble and run one NautilusTrader ``BacktestEngine`` per run config, then rebuild its ledgers.

``run_backtest(config)`` is the notebook API: it returns a ``RunResult`` whose frames are the same
tables the CLI writes to ``runs/<config-hash>/``.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from nautilus_trader.backtest import BacktestEngine, BacktestEngineConfig
from nautilus_trader.common import LoggerConfig, LogLevel
from nautilus_trader.model import TraderId
from nautilus_trader.risk import RiskEngineConfig

from engine.config import RunConfig
from engine.errors import EngineError, EngineRunError, MissingDataError
from engine.fill import SlippageFillModel
from engine.harness import guarded, raise_failure, silent_streams
from engine.limits import limit_findings
from engine.loading import load_strategy, max_notional_per_order
from engine.results import ledger, records
from engine.results.artefacts import write_artefacts
from engine.results.events import RiskEventRecorder
from engine.results.result import RunResult, assemble_result, read_ledgers
from engine.run_data import RunData, catalog_streams, load_run_data, open_catalog
from engine.venue_models import VenueModel, build_venue_models, inferred_warning
from strategies.carry import bar_interval_ns
from strategies.risk import RiskManagedStrategy

Progress = Callable[[str], None]
# Bars per chunk fed to the engine, over all instruments (a spot-perp pair of one-minute bars: ~70-day
# chunks; 18 instruments: ~8 days). What a chunk keeps alive, ~0.7 KiB per object (bar, mark), is ~200 MiB.
CHUNK_BARS = 200_000


def _quiet(_: str) -> None:
    return None


def run_backtest(
    config: RunConfig,
    *,
    out_dir: str | Path | None = "runs",
    progress: Progress = _quiet,
    actors: Sequence[Any] = (),
    chunk_bars: int | None = None,
) -> RunResult:
    """Run one backtest and return its ledgers; write ``<out_dir>/<config-hash>/`` unless ``out_dir`` is None.

    ``actors`` are extra Nautilus actors added before the strategy (e.g. ``strategies.kill_switch.KillSwitchTimer``).
    The engine is fed chunks of ``chunk_bars`` bar intervals (Nautilus streaming: ``add_data``,
    ``run(streaming=True)``, ``clear_data`` per chunk) read from the catalog as the run goes, so the
    memory of a run depends on the chunk, not the window; by default a chunk holds about ``CHUNK_BARS``
    bars over all instruments. ``chunk_bars=0`` adds the whole window and runs once. All give the same
    artefacts.
    The artefacts are data only (``engine.results.artefacts``); reports are rendered by the caller.

    Raises
    ------
    ConfigError
        If the strategy does not import or rejects its params, or a venue/instrument is unknown.
    MissingDataError
        If the catalog lacks an instrument or does not cover the range, or a stream the strategy
        subscribed to delivered no event.
    EngineRunError
        If NautilusTrader fails while building or running, or the strategy raised.
    AccountingError
        If the engine's funding settlements disagree with their inputs.
    """
    timings: dict[str, float] = {}
    plan = load_strategy(config)
    models = build_venue_models(config)

    started = time.perf_counter()
    progress(f"catalog {config.data.catalog}: loading {config.start:%Y-%m-%d} to {config.end:%Y-%m-%d}")
    data = load_run_data(config, open_catalog(config.data.catalog), progress=progress)
    timings["catalog_load"] = time.perf_counter() - started

    started = time.perf_counter()
    bars = data.feed.bar_count
    progress(f"engine: replaying {bars:,} bars and {data.feed.event_count - bars:,} other events")
    engine = _build_engine(config, models, data)
    timings["engine_build"] = time.perf_counter() - started
    started = time.perf_counter()
    recorder = RiskEventRecorder()
    strategy = None
    try:
        strategy = plan.create(guarded)
        try:
            engine.add_actor(recorder)
            for actor in actors:
                engine.add_actor(actor)
            engine.add_strategy(strategy)
            intervals = max(CHUNK_BARS // len(data.feed.instruments), 1) if chunk_bars is None else chunk_bars
            timings["feed"] = _run_chunks(engine, data, chunk_ns=intervals * bar_interval_ns(config.data.bar_spec))
        except EngineError:
            raise
        except Exception as exc:
            raise EngineRunError(
                f"expected the engine to finish, it failed with {type(exc).__name__}: {exc}; "
                "rerun with the same config to reproduce"
            ) from exc
        _check_strategy(strategy, config)
        liquidation = liquidation_distances(strategy)
        timings["engine_run"] = time.perf_counter() - started - timings["feed"]
        progress(f"engine: done in {timings['engine_run']:.2f} s")
        started = time.perf_counter()
        result = _collect(config, engine, models, data)
        result.risk_events = recorder.frame()
        result.stats["risk_events"] = result.risk_events.height
        if liquidation:
            result.stats["liquidation_distance_pct"] = liquidation
        # engine.limits: live refuses these, a backtest records them.
        warnings = limit_findings(config, data.instruments)
        if inferred := sorted(i for model in models for i in model.inferred):
            result.stats["inferred_instruments"] = inferred
            warnings.append(inferred_warning(inferred))
        if warnings:
            result.stats["warnings"] = warnings
        timings["ledgers"] = time.perf_counter() - started
    finally:
        engine.dispose()
        # The engine is a Rust object bound to this thread: collect it here, never from another
        # thread's garbage collection (which Nautilus reports as "unsendable ... dropped on another thread").
        del engine, strategy, recorder
        gc.collect()
    result.timings_secs.update(timings)
    if out_dir is not None:
        started = time.perf_counter()
        result.run_dir = write_artefacts(result, Path(out_dir))
        result.timings_secs["artefacts"] = time.perf_counter() - started
        progress(f"artefacts: {result.run_dir}")
    return result


def liquidation_distances(strategy: Any) -> dict[str, dict[str, str]]:
    """Return each perp leg's liquidation distance in percent: the smallest at a decision, and at the end if open."""
    if not isinstance(strategy, RiskManagedStrategy):
        return {}
    last = strategy.liquidation_distances()
    worst = strategy.liquidation.worst_pct()
    places = Decimal("0.0001")
    result = {}
    for key in sorted({*worst, *last}):
        seen = [d for d in (worst.get(key), last.get(key)) if d is not None]
        result[key] = {"min": str(min(seen).quantize(places))}
        if key in last:
            result[key]["last"] = str(last[key].quantize(places))
    return result


def _check_strategy(strategy: Any, config: RunConfig) -> None:
    raise_failure(strategy, EngineRunError)
    silent = silent_streams(strategy)
    if silent:
        kind, target = silent[0]
        instrument_id = str(getattr(target, "instrument_id", target))
        held = catalog_streams(config.data.catalog, instrument_id)
        raise MissingDataError(
            f"expected the strategy's subscription to {kind} {target} to deliver data, it delivered none "
            f"({len(silent)} silent stream(s): {', '.join(f'{k} {t}' for k, t in silent)}); the catalog "
            f"{config.data.catalog} holds for {instrument_id}: {', '.join(held) or 'nothing'}; set [data].bar_spec "
            "(or the strategy's bar_spec) to a stream the catalog holds, or export the missing data"
        )


def run_many(
    configs: list[RunConfig], *, out_dir: str | Path | None = "runs", progress: Progress = _quiet
) -> list[RunResult]:
    """Run several configs one after another (one engine at a time) and return their results in order."""
    results = []
    for index, config in enumerate(configs, start=1):
        progress(f"[{index}/{len(configs)}] {config.name}")
        results.append(run_backtest(config, out_dir=out_dir, progress=progress))
    return results


def _build_engine(config: RunConfig, models: list[VenueModel], data: RunData) -> BacktestEngine:
    notional = {instrument_id: int(value) for instrument_id, value in max_notional_per_order(config).items()}
    engine_config = BacktestEngineConfig(
        trader_id=TraderId(config.trader_id),
        logging=LoggerConfig(stdout_level=LogLevel.ERROR),
        risk_engine=RiskEngineConfig(
            max_order_submit_rate=config.risk.max_order_submit_rate,
            max_notional_per_order={str(k): v for k, v in notional.items()} or None,
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
    except Exception as exc:
        raise EngineRunError(f"expected the engine to build, it failed with {type(exc).__name__}: {exc}") from exc
    return engine


def _run_chunks(engine: BacktestEngine, data: RunData, *, chunk_ns: int) -> float:
    """Feed and run the engine chunk by chunk; return the seconds spent building and adding the chunks' objects."""
    building = 0.0
    streaming = chunk_ns > 0
    started = time.perf_counter()
    for parts in data.feed.parts(chunk_ns if streaming else None):
        for part in parts:
            engine.add_data(part, sort=False)
        engine.sort_data()  # by ts_init, as one add_data(chunk, sort=True) does: same artefacts, byte for byte
        building += time.perf_counter() - started
        parts.clear()  # the engine holds its own copy: let the chunk's objects go before running
        if streaming:
            engine.run(streaming=True)
            engine.clear_data()
        else:
            engine.run()
        started = time.perf_counter()
    building += time.perf_counter() - started
    if streaming:
        engine.end()
    return building


def _collect(config: RunConfig, engine: BacktestEngine, models: list[VenueModel], data: RunData) -> RunResult:
    ledgers = read_ledgers(engine.cache, models=models, data=data)
    settled = records.funding_events([*engine.cache.positions(), *engine.cache.position_snapshots()])
    funding = ledger.funding_ledger(settled, ledgers.fills, data)
    return assemble_result(config, ledgers, funding=funding, models=models, data=data)
