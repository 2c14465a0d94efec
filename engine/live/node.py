"""Assemble and run one Nautilus 2.x ``LiveNode`` from a run config: paper (sandbox) or live.

The config is the backtest's: venues, instruments, balances, fees, leverage, fill model, risk limits,
strategy path and params; ``[live]`` adds connections and node settings. Promoting a config from
backtest to paper to live changes the mode and the venue connection, nothing else.

- **paper** (the default): ``SandboxExecutionClient`` per venue, with the venue model's balances, fees,
  leverage and the backtest's fill model; data from the venues' adapters, or with ``replay=True``
  from the catalog through ``ReplayDataClient``; funding settled by ``FundingBook``. In a replay the
  strategy's clock reads historical time (``HistoricalClock``), as a backtest's does.
- **live**: the venues' data and execution adapters with credentials from the environment or a secrets
  file, after every rule of ``engine.live.safety``; Nautilus reconciliation recovers state.

One ``LiveNode`` per thread: ``run_session`` disposes of its node before it returns.
"""

from __future__ import annotations

import gc
import signal
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import polars as pl
from nautilus_trader.adapters.sandbox import SandboxExecutionClientConfig, SandboxExecutionClientFactory
from nautilus_trader.common import Environment, LoggerConfig, LogLevel
from nautilus_trader.live import DataClientConfig, LiveExecutionEngineConfig, LiveNode, LiveRiskEngineConfig
from nautilus_trader.model import Currency, InstrumentId, Money, TraderId

from datasets.symbols import market_of
from engine.backtest.data import RunData, load_run_data, open_catalog
from engine.backtest.events import RiskEventRecorder
from engine.backtest.result import RunResult, settlement_currency
from engine.backtest.runner import guarded, write_artefacts
from engine.backtest.stats import text
from engine.config import (
    ConnectionConfig,
    LiveConfig,
    RunConfig,
    build_strategy_config,
    config_hash,
    import_object,
    resolve_instrument,
    strategy_paths,
)
from engine.errors import EngineError
from engine.live import safety
from engine.live.errors import NodeError
from engine.live.funding import FundingBook, InstrumentTerms, Settlement
from engine.live.logs import get_logger
from engine.live.monitor import MetricsServer, NodeStatus, StopRequest, Supervisor
from engine.live.replay import HistoricalClock, ReplayClock, ReplayDataClientFactory, ReplayFeed, signed_quantity
from engine.live.report import build_session_result, observed_run_data
from engine.live.secrets import REDACTOR, Credentials, load_credentials
from engine.live.state import PaperState, read_state, state_path, write_state
from engine.live.venues import data_client, exec_client, nautilus_venue
from engine.venue_models import VenueModel, build_venue_model, instrument_id_for

Mode = Literal["paper", "live"]


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
        self.funding = FundingBook({})
        self.previous_signals: dict[int, Any] = {}
        self.risk_events = RiskEventRecorder()
        self.started = 0.0

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
        build_strategy_config(config)
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
            self.models = [_restored_model(m, self.state) for m in self.models]
        if options.replay:
            progress(f"catalog {config.data.catalog}: loading {config.start:%Y-%m-%d} to {config.end:%Y-%m-%d}")
            self.data = load_run_data(config, open_catalog(config.data.catalog), progress=progress)
        self.funding = FundingBook(_funding_terms(config, self.data))
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
            pause_after_ns=_ns(self.options.replay_until) if self.options.replay_until is not None else None,
        )

    def replay_finished(self) -> None:
        paused = self.options.replay_until is not None
        self.stop.request("replay paused" if paused else "replay finished", flatten=self.flatten and paused)

    def run(self) -> SessionResult:
        config, options = self.config, self.options
        strategy_class = import_object(strategy_paths(config)[0], field="strategy.path")
        strategy_class = _deferred_denials(_stoppable(guarded(strategy_class), self.stop))
        if options.replay:
            strategy_class = _on_replay_clock(strategy_class, self.clock)
        strategy = strategy_class(build_strategy_config(config))
        node = _build_node(config, options, self.models, self.live, self.credentials, self.feed(strategy))
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
                strategy.set_external_order_instrument_ids(_instrument_ids(config))
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
            instrument_ids=_instrument_ids(self.config),
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
            self.previous_signals = _install_signals(self.stop, flatten=self.flatten)

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
            _restore_signals(self.previous_signals)
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
            data = _replayed(self.data, after_ns=resumed, until_ns=self.clock.now)
        else:
            data = observed_run_data(
                self.status.bars, _cached_instruments(node, config), _venue_of(config), end_ns=time.time_ns()
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
            state = _paper_state(node, self.digest, self.models, cursor, self.funding, self.status, self.state)
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


def _build_node(
    config: RunConfig,
    options: SessionOptions,
    models: list[VenueModel],
    live_config: LiveConfig,
    credentials: Mapping[str, Credentials],
    feed: ReplayFeed | None,
) -> LiveNode:
    environment = Environment.LIVE if options.mode == "live" else Environment.SANDBOX
    notional = {
        resolve_instrument(config, *key.split(":", 1), where="risk.max_notional_per_order"): str(int(value))
        for key, value in config.risk.max_notional_per_order.items()
    }
    try:
        builder = LiveNode.builder(f"carrylab-{options.mode}", TraderId(config.trader_id), environment)
        builder = builder.with_logging(LoggerConfig(stdout_level=getattr(LogLevel, options.log_level)))
        builder = builder.with_risk_engine_config(
            LiveRiskEngineConfig(
                max_order_submit_rate=config.risk.max_order_submit_rate, max_notional_per_order=notional or None
            )
        )
        exec_engine = LiveExecutionEngineConfig(
            reconciliation=options.mode == "live",
            position_check_interval_secs=live_config.position_check_interval_secs if options.mode == "live" else None,
        )
        builder = builder.with_exec_engine_config(exec_engine)
        builder = builder.with_reconciliation(options.mode == "live")
        builder = builder.with_delay_post_stop_secs(0).with_timeout_disconnection_secs(2).with_delay_shutdown_secs(0)
        if feed is not None:
            builder = builder.add_data_client(
                "REPLAY", ReplayDataClientFactory(feed, venue=nautilus_venue(config.venues[0].name)), DataClientConfig()
            )
        for venue, model in zip(config.venues, models, strict=True):
            connection = (live_config.connections.get(venue.name)) or ConnectionConfig()
            if feed is None:
                client = data_client(venue, connection, credentials.get(venue.name))
                builder = builder.add_data_client(client.name, client.factory, client.config)
            if options.mode == "live":
                client = exec_client(venue, connection, credentials[venue.name])
                builder = builder.add_exec_client(client.name, client.factory, client.config)
            else:
                builder = builder.add_simulated_exec_client(
                    model.venue.value, SandboxExecutionClientFactory(), _sandbox(model)
                )
        return builder.build()
    except EngineError:
        raise
    except Exception as exc:
        message = REDACTOR.redact(str(exc))
        raise NodeError(
            f"expected the {options.mode} node to build, it failed with {type(exc).__name__}: {message}"
        ) from None


def _sandbox(model: VenueModel) -> SandboxExecutionClientConfig:
    return SandboxExecutionClientConfig(
        venue=model.venue,
        starting_balances=list(model.starting_balances),
        oms_type=model.oms_type,
        account_type=model.account_type,
        default_leverage=model.leverage,
        fee_model=model.fee_model(),
        # The rc6 sandbox takes native fill models only, so market orders fill at the last close
        # without fill.slippage_bps (logged at start when it is set; see the README, "Paper and live trading").
        fill_model=None,
        bar_execution=True,
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


def _ns(moment: datetime) -> int:
    return int(moment.timestamp()) * 1_000_000_000 + moment.microsecond * 1_000


def _replayed(data: RunData, *, after_ns: int, until_ns: int) -> RunData:
    # The report covers what this session replayed: bars closed in (after, until], marks and funding likewise.
    def window(frame: pl.DataFrame, column: str, shift_ns: int) -> pl.DataFrame:
        ts = pl.col(column).cast(pl.Int64) + shift_ns
        return frame.filter((ts > after_ns) & (ts <= until_ns))

    return replace(
        data,
        bars=window(data.bars, "ts", 1),
        marks=window(data.marks, "ts", 0),
        funding=window(data.funding, "ts_init", 0),
    )


def _stoppable(strategy_class: type, stop: StopRequest) -> type:
    # Once a stop was requested the strategy may only reduce: a bar arriving between the flatten and the
    # node's stop must not re-open a position. The strategy's code is untouched; only its submissions are gated.
    log = get_logger("node")

    def submit_order(self: Any, order: Any, position_id: Any = None, client_id: Any = None, params: Any = None) -> Any:
        if stop.event.is_set() and not order.is_reduce_only:
            log.warning("order dropped: node stopping", instrument_id=str(order.instrument_id), side=order.side.name)
            return None
        return strategy_class.submit_order(self, order, position_id, client_id, params)  # type: ignore[attr-defined]

    return type(strategy_class.__name__, (strategy_class,), {"submit_order": submit_order})


def _deferred_denials(strategy_class: type) -> type:
    # A live node denies an order (its risk engine, a market exit in progress) inside ``submit_order``,
    # while the strategy is still borrowed: a Python handler touching the strategy then fails with
    # "Already mutably borrowed". Denials are handed to the strategy's handler once ``submit_order`` returns.
    def submit_order(self: Any, order: Any, position_id: Any = None, client_id: Any = None, params: Any = None) -> Any:
        outer = self.__dict__.get("_denials") is None
        if outer:
            self._denials = []
        try:
            return strategy_class.submit_order(self, order, position_id, client_id, params)  # type: ignore[attr-defined]
        finally:
            if outer:
                denials, self._denials = self._denials, None
                for event in denials:
                    strategy_class.on_order_denied(self, event)  # type: ignore[attr-defined]

    def on_order_denied(self: Any, event: Any) -> None:
        pending = self.__dict__.get("_denials")
        if pending is None:
            strategy_class.on_order_denied(self, event)  # type: ignore[attr-defined]
        else:
            pending.append(event)

    return type(
        strategy_class.__name__, (strategy_class,), {"submit_order": submit_order, "on_order_denied": on_order_denied}
    )


def _on_replay_clock(strategy_class: type, replay: ReplayClock) -> type:
    # The node's clock is wall time; in a replay the strategy reads historical time instead, as in a backtest.
    node_clock = strategy_class.clock  # type: ignore[attr-defined]

    def clock(self: Any) -> HistoricalClock:
        return HistoricalClock(lambda: node_clock.__get__(self, type(self)), replay)

    return type(strategy_class.__name__, (strategy_class,), {"clock": property(clock)})


def _instrument_ids(config: RunConfig) -> list[InstrumentId]:
    return [instrument_id_for(v.name, s) for v in config.venues for s in v.instruments]


def _venue_of(config: RunConfig) -> dict[str, str]:
    return {str(instrument_id_for(v.name, s)): v.name for v in config.venues for s in v.instruments}


def _cached_instruments(node: LiveNode, config: RunConfig) -> dict[InstrumentId, Any]:
    found = {}
    for instrument_id in (instrument_id_for(v.name, s) for v in config.venues for s in v.instruments):
        instrument = node.cache.instrument(instrument_id)
        if instrument is not None:
            found[instrument_id] = instrument
    return found


def _restored_model(model: VenueModel, state: PaperState) -> VenueModel:
    balances = state.balances.get(model.name)
    if not balances:
        return model
    return replace(model, starting_balances=tuple(Money.from_str(text) for text in balances))


def _paper_state(
    node: LiveNode,
    digest: str,
    models: list[VenueModel],
    cursor_ns: int,
    funding: FundingBook,
    status: NodeStatus,
    previous: PaperState | None,
) -> PaperState:
    cache = node.cache
    positions: dict[str, dict[str, str]] = {}
    unrealized: dict[tuple[str, str], Decimal] = {}
    venue_names = {m.venue.value: m.name for m in models}
    for position in cache.positions_open():
        instrument_id = str(position.instrument_id)
        size = signed_quantity(position)
        entry = Decimal(repr(position.avg_px_open))
        last = status.last_price.get(instrument_id, entry)
        positions[instrument_id] = {"quantity": str(size), "avg_price": str(entry), "last_price": str(last)}
        key = (venue_names.get(position.instrument_id.venue.value, ""), str(position.settlement_currency.code))
        unrealized[key] = unrealized.get(key, Decimal(0)) + size * (last - entry) * position.multiplier.as_decimal()
    balances: dict[str, list[str]] = {}
    for model in models:
        account = cache.account_for_venue(model.venue)
        if account is None:
            continue
        rows = []
        for money in account.balances_total().values():
            currency = str(money.currency.code)
            amount = money.as_decimal() + unrealized.get((model.name, currency), Decimal(0))
            rows.append(f"{amount.quantize(Decimal(1).scaleb(-money.currency.precision))} {currency}")
        balances[model.name] = rows
    orders = [
        {
            "client_order_id": str(o.client_order_id),
            "instrument_id": str(o.instrument_id),
            "side": o.side.name,
            "quantity": str(o.quantity),
            "filled_quantity": str(o.filled_qty),
            "status": o.status.name,
        }
        for o in cache.orders()
    ]
    return PaperState(
        config_hash=digest,
        cursor_ns=cursor_ns or (previous.cursor_ns if previous is not None else 0),
        balances=balances,
        positions=positions,
        orders=(previous.orders if previous is not None else []) + orders,
        funding=list(funding.settlements),
        sessions=(previous.sessions if previous is not None else 0) + 1,
    )


def _install_signals(stop: StopRequest, *, flatten: bool) -> dict[int, Any]:
    if threading.current_thread() is not threading.main_thread():
        return {}

    def handler(signum: int, frame: Any) -> None:
        stop.request(f"signal {signal.Signals(signum).name}", flatten=flatten)

    previous: dict[int, Any] = {}
    for signum in (signal.SIGINT, signal.SIGTERM):
        previous[signum] = signal.signal(signum, handler)
    return previous


def _restore_signals(previous: dict[int, Any]) -> None:
    for signum, handler in previous.items():
        signal.signal(signum, handler)
