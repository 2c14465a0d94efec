"""Run one paper or live session from a run config: check, prepare, run the node, stop, report, save state.

The config is the backtest's: venues, instruments, balances, fees, leverage, fill model, risk limits,
strategy path and params; ``[live]`` adds connections and node settings. Promoting a config from
backtest to paper to live changes the mode and the venue connection, nothing else.

- **paper** (the default): ``SandboxExecutionClient`` per venue, with the venue model's balances, fees,
  leverage and the backtest's fill model; data from the venues' adapters, or with ``replay=True``
  from the catalog through ``ReplayDataClient``; funding settled by ``PaperFunding``. In a replay the
  strategy's clock reads historical time (``HistoricalClock``), as a backtest's does.
- **live**: the venues' data and execution adapters with credentials from the environment or a secrets
  file, after every rule of ``engine.live.safety``; Nautilus reconciliation recovers state.

The node is assembled by ``engine.live.node``; the strategy wrappers are ``engine.harness`` and
``engine.live.harness``. One ``LiveNode`` per thread: ``run_session`` disposes of its node before it returns.
"""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from nautilus_trader.live import LiveNode
from nautilus_trader.model import Currency, InstrumentId

from datasets.symbols import market_of
from engine.config import LiveConfig, RunConfig
from engine.errors import NodeError
from engine.harness import guarded
from engine.live import safety
from engine.live.funding import InstrumentTerms, PaperFunding, Settlement
from engine.live.harness import deferred_denials, install_signals, on_replay_clock, restore_signals, stoppable
from engine.live.logs import get_logger
from engine.live.monitor import MetricsServer, NodeStatus, StopRequest, Supervisor
from engine.live.node import Mode, build_node
from engine.live.replay import ReplayClock, ReplayFeed
from engine.live.report import build_session_result, observed_run_data, replayed_run_data
from engine.live.secrets import Credentials, load_credentials
from engine.live.state import PaperState, capture_state, read_state, restored_model, state_path, write_state
from engine.loading import config_hash, instrument_id_for, instrument_ids, load_strategy, venue_of
from engine.results.artefacts import write_artefacts
from engine.results.events import RiskEventRecorder
from engine.results.result import RunResult, settlement_currency
from engine.results.stats import text
from engine.run_data import RunData, load_run_data, ns_of, open_catalog
from engine.venue_models import VenueModel, build_venue_model


@dataclass(slots=True)
class SessionOptions:
    """How to run a config: mode, data source, safety inputs, outputs.

    Attributes
    ----------
    mode : {"paper", "live"}
    replay : bool
        Paper only: stream the catalog instead of connecting to venues.
    confirmed_live : bool
        The ``--live`` flag.
    interactive : bool
        Ask the operator to type YES before a live start (the CLI sets it when stdin is a terminal).
    ask : callable
        How to ask (``input`` by default; tests inject answers).
    secrets_file : Path, optional
    environ : mapping, optional
        Environment to read credentials from (default ``os.environ``).
    out_dir : Path, optional
        Artefacts go to ``out_dir/<config-hash>/``; None writes none.
    state_dir : Path, optional
        Overrides ``live.state_dir``.
    speed : float, optional
        Overrides ``live.replay_speed``.
    duration_secs : float, optional
        Stop gracefully after this many wall seconds.
    fresh : bool
        Ignore a saved paper state.
    flatten_on_stop : bool, optional
        Overrides ``live.flatten_on_stop``.
    metrics_port : int, optional
        Overrides ``live.metrics_port``.
    log_level : str
        Nautilus' stdout log level.
    install_signal_handlers : bool
        SIGINT/SIGTERM stop the node gracefully (main thread only).
    replay_until : datetime, optional
        Stop a replay after this historical moment, as an operator's stop would (state is written).
    """

    mode: Mode = "paper"
    replay: bool = False
    confirmed_live: bool = False
    interactive: bool = False
    ask: Callable[[str], str] = input
    secrets_file: Path | None = None
    environ: Mapping[str, str] | None = None
    out_dir: Path | None = Path("runs/paper")
    state_dir: Path | None = None
    speed: float | None = None
    duration_secs: float | None = None
    fresh: bool = False
    flatten_on_stop: bool | None = None
    metrics_port: int | None = None
    log_level: str = "WARNING"
    install_signal_handlers: bool = True
    replay_until: datetime | None = None


@dataclass(slots=True)
class SessionResult:
    """What a session produced."""

    result: RunResult
    stop_reason: str
    run_dir: Path | None = None
    state_path: Path | None = None
    metrics_port: int | None = None
    restored_positions: dict[str, Decimal] = field(default_factory=dict)


def run_session(
    config: RunConfig, options: SessionOptions, *, progress: Callable[[str], None] = lambda _: None
) -> SessionResult:
    """Run one paper or live node until it stops; return its report.

    Raises
    ------
    SafetyError
        If live mode is refused (no ``--live``, no YES, no risk limits, replay requested).
    CredentialsError
        If live mode lacks credentials for a venue, or the secrets file is unsafe.
    ConfigError, MissingDataError
        As for a backtest.
    NodeError
        If Nautilus fails to build or run the node.
    StateError
        If a saved paper state belongs to another config.
    """
    session = _Session(config, options)
    session.check()
    session.prepare(progress)
    return session.run()


class _Session:
    def __init__(self, config: RunConfig, options: SessionOptions) -> None:
        self.config = config
        self.options = options
        self.live = config.live or LiveConfig()
        self.log = get_logger("node")
        self.digest = config_hash(config)
        self.state_file = state_path(options.state_dir or Path(self.live.state_dir), self.digest)
        self.clock = ReplayClock(speed=options.speed if options.speed is not None else self.live.replay_speed)
        self.status = NodeStatus()
        self.stop = StopRequest()
        self.flatten = self.live.flatten_on_stop if options.flatten_on_stop is None else options.flatten_on_stop
        self.credentials: Mapping[str, Credentials] = {}
        self.state: PaperState | None = None
        self.data: RunData | None = None
        self.models: list[VenueModel] = []
        self.funding = PaperFunding({})
        self.previous_signals: dict[int, Any] = {}
        self.risk_events = RiskEventRecorder()
        self.started = 0.0
        self.plan = load_strategy(config)

    def check(self) -> None:
        venues = [v.name for v in self.config.venues]
        self.credentials = load_credentials(
            venues, environ=self.options.environ, secrets_file=self.options.secrets_file
        )
        if self.options.mode == "live":
            safety.check_live(
                self.config,
                confirmed=self.options.confirmed_live,
                replay=self.options.replay,
                credentials=self.credentials,
                interactive=self.options.interactive,
                ask=self.options.ask,
            )

    def prepare(self, progress: Callable[[str], None]) -> None:
        config, options = self.config, self.options
        self.models = [build_venue_model(v) for v in config.venues]
        self.plan = load_strategy(config)
        if not options.fresh and options.mode == "paper":
            self.state = read_state(self.state_file, config_hash=self.digest)
        if self.state is not None:
            self.log.info(
                "restoring paper state",
                path=str(self.state_file),
                cursor_ns=self.state.cursor_ns,
                positions=self.state.positions,
                balances=self.state.balances,
            )
            self.models = [restored_model(m, self.state) for m in self.models]
        if options.replay:
            progress(f"catalog {config.data.catalog}: loading {config.start:%Y-%m-%d} to {config.end:%Y-%m-%d}")
            self.data = load_run_data(config, open_catalog(config.data.catalog), progress=progress)
        self.funding = PaperFunding(_funding_terms(config, self.data))
        if self.state is not None:
            self.funding.settlements.extend(self.state.funding)
        if options.mode == "paper" and config.fill.slippage_bps:
            self.log.warning(
                "paper fills ignore fill.slippage_bps",
                slippage_bps=str(config.fill.slippage_bps),
                why="the 2.0.0rc6 sandbox accepts native fill models only; market orders fill at the last close",
            )

    def on_settlement(self, settlement: Settlement) -> None:
        self.log.info("funding", **settlement.to_json())

    def feed(self, strategy: Any) -> ReplayFeed | None:
        if self.data is None:
            return None
        status = self.status
        return ReplayFeed(
            instruments=list(self.data.instruments.values()),
            events=sorted(self.data.engine_data, key=lambda e: e.ts_init),
            clock=self.clock,
            funding=self.funding,
            resume_after_ns=self.state.cursor_ns if self.state is not None else 0,
            on_settlement=self.on_settlement,
            on_finished=self.replay_finished,
            processed=lambda bar: status.processed_bar_ns.get(str(bar.bar_type), 0) >= bar.ts_init,
            settling=strategy.is_exiting,
            pause_after_ns=ns_of(self.options.replay_until) if self.options.replay_until is not None else None,
        )

    def replay_finished(self) -> None:
        paused = self.options.replay_until is not None
        self.stop.request("replay paused" if paused else "replay finished", flatten=self.flatten and paused)

    def wrap(self, strategy_class: type) -> type:
        wrapped = deferred_denials(stoppable(guarded(strategy_class), self.stop))
        return on_replay_clock(wrapped, self.clock) if self.options.replay else wrapped

    def run(self) -> SessionResult:
        config, options = self.config, self.options
        strategy = self.plan.create(self.wrap)
        node = build_node(
            config,
            mode=options.mode,
            log_level=options.log_level,
            models=self.models,
            live_config=self.live,
            credentials=self.credentials,
            feed=self.feed(strategy),
        )
        restore = self.state.signed_positions() if self.state is not None else {}
        self.started = time.perf_counter()
        metrics: MetricsServer | None = None
        timer: threading.Timer | None = None
        try:
            node.add_actor(self.supervisor(strategy, node.handle().stop, restore))
            node.add_actor(self.risk_events)
            node.add_strategy(strategy)
            if options.mode == "live":
                # Orders and positions reconciliation recovers from the venue belong to the strategy trading them.
                strategy.set_external_order_instrument_ids(instrument_ids(config))
            port = options.metrics_port if options.metrics_port is not None else self.live.metrics_port
            if port is not None:
                metrics = MetricsServer(self.status, host=self.live.metrics_host, port=port).start()
                self.log.info("metrics", url=f"http://{self.live.metrics_host}:{metrics.port}/metrics")
            if options.duration_secs is not None:
                timer = threading.Timer(
                    options.duration_secs,
                    self.stop.request,
                    args=("duration elapsed",),
                    kwargs={"flatten": self.flatten},
                )
                timer.daemon = True
                timer.start()
            self.run_node(node, strategy)
            return self.finish(node, restore, metrics)
        finally:
            if timer is not None:
                timer.cancel()
            if metrics is not None:
                metrics.close()
            node.dispose()
            del node
            gc.collect()

    def supervisor(self, strategy: Any, stop_node: Callable[[], None], restore: dict[str, Decimal]) -> Supervisor:
        clock = self.clock
        return Supervisor(
            strategy=strategy,
            instrument_ids=instrument_ids(self.config),
            bar_spec=self.config.data.bar_spec,
            status=self.status,
            stop=self.stop,
            stop_node=stop_node,
            now_ns=(lambda: clock.now) if self.options.replay else time.time_ns,
            status_interval_secs=self.live.status_interval_secs,
            funding=self.funding,
            settle_funding=not self.options.replay and self.options.mode == "paper",
            on_settlement=self.on_settlement,
            restore=restore,
            on_started=self.install_signals,
        )

    def install_signals(self) -> None:
        # Called from the supervisor's on_start, on the main thread inside node.run(): after the node has
        # installed its own SIGINT handling, so ours (graceful: cancel, flatten, state) replaces it.
        if self.options.install_signal_handlers:
            self.previous_signals = install_signals(self.stop, flatten=self.flatten)

    def run_node(self, node: LiveNode, strategy: Any) -> None:
        self.log.info(
            "starting",
            mode=self.options.mode,
            replay=self.options.replay,
            venues=[v.name for v in self.config.venues],
            config_hash=self.digest,
        )
        try:
            node.run()
        except Exception as exc:
            raise NodeError(
                f"expected the node to run until stopped, it failed with {type(exc).__name__}: {exc}"
            ) from exc
        finally:
            restore_signals(self.previous_signals)
        failure = getattr(strategy, "engine_failure", None)
        if failure is not None:
            raise NodeError(
                f"expected the strategy to run without errors, {failure[0]} raised "
                f"{type(failure[1]).__name__}: {failure[1]}"
            ) from failure[1]

    def finish(self, node: LiveNode, restore: dict[str, Decimal], metrics: MetricsServer | None) -> SessionResult:
        config, options = self.config, self.options
        carried = self.state.funding if self.state is not None else []
        if self.data is not None:
            resumed = self.state.cursor_ns if self.state is not None else 0
            data = replayed_run_data(self.data, after_ns=resumed, until_ns=self.clock.now)
        else:
            data = observed_run_data(
                self.status.bars, _cached_instruments(node, config), venue_of(config), end_ns=time.time_ns()
            )
        reason = self.stop.reason or "node stopped"
        result = build_session_result(
            config,
            cache=node.cache,
            models=self.models,
            data=data,
            settlements=self.funding.settlements[len(carried) :],
            to_historical=self.clock.to_historical if options.replay else (lambda ns: ns),
            mode=options.mode + (" (replay)" if options.replay else ""),
            extra={
                "stop_reason": reason,
                "restored_positions": {k: str(v) for k, v in restore.items()},
                "funding_before_restart": _totals(carried),
            },
        )
        result.risk_events = self.risk_events.frame()
        result.stats["risk_events"] = result.risk_events.height
        result.timings_secs["session"] = time.perf_counter() - self.started
        written_state = None
        if options.mode == "paper":
            cursor = self.clock.now if options.replay else 0
            state = capture_state(node.cache, self.digest, self.models, cursor, self.funding, self.status, self.state)
            written_state = write_state(state, self.state_file)
        run_dir = write_artefacts(result, options.out_dir) if options.out_dir is not None else None
        self.log.info("stopped", reason=reason, run_dir=str(run_dir), state=str(written_state))
        return SessionResult(
            result=result,
            stop_reason=reason,
            run_dir=run_dir,
            state_path=written_state,
            metrics_port=metrics.port if metrics is not None else None,
            restored_positions=restore,
        )


def _funding_terms(config: RunConfig, data: RunData | None) -> dict[str, InstrumentTerms]:
    terms = {}
    for venue in config.venues:
        for symbol in venue.instruments:
            if market_of(symbol) != "perp":
                continue
            instrument_id = instrument_id_for(venue.name, symbol)
            instrument = data.instruments.get(instrument_id) if data is not None else None
            if instrument is None:
                # Venue data: Nautilus books linear perps in the quote currency (Hyperliquid: USD).
                currency = "USD" if venue.name == "hyperliquid" else symbol.split("-")[1]
                multiplier, precision = Decimal(1), int(Currency.from_str(currency).precision)
            else:
                currency = settlement_currency(instrument)
                multiplier = Decimal(str(instrument.multiplier))
                precision = int(instrument.quote_currency.precision)
            terms[str(instrument_id)] = InstrumentTerms(
                instrument_id=str(instrument_id),
                venue=venue.name,
                multiplier=multiplier,
                currency=currency,
                currency_precision=precision,
            )
    return terms


def _totals(settlements: list[Settlement]) -> dict[str, str]:
    totals: dict[str, Decimal] = {}
    for settlement in settlements:
        totals[settlement.currency] = totals.get(settlement.currency, Decimal(0)) + settlement.amount
    return {currency: text(amount) for currency, amount in sorted(totals.items())}


def _cached_instruments(node: LiveNode, config: RunConfig) -> dict[InstrumentId, Any]:
    found = {}
    for instrument_id in (instrument_id_for(v.name, s) for v in config.venues for s in v.instruments):
        instrument = node.cache.instrument(instrument_id)
        if instrument is not None:
            found[instrument_id] = instrument
    return found
