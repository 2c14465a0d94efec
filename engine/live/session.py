"""Run one paper or live session from a run config: check, prepare, run the node, stop, report.

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

import contextlib
import gc
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
from nautilus_trader.live import LiveNode
from nautilus_trader.model import BarSpecification, Currency, InstrumentId, Money, Venue

from datasets.symbols import market_of
from engine.config import LiveConfig, RunConfig
from engine.errors import NodeError, StateError
from engine.harness import guarded, raise_failure
from engine.limits import limit_findings
from engine.live import safety
from engine.live.anomalies import AnomalyMonitor, watched
from engine.live.funding import InstrumentTerms, PaperFunding, Settlement
from engine.live.funding_account import FundingAccounts
from engine.live.harness import after_resume, deferred_denials, journaled, on_replay_clock, stoppable, timed
from engine.live.journal import Journal, ResumePoint, journal_path, marked_balances
from engine.live.logs import get_logger
from engine.live.monitor import STOP_TIMEOUT_SECS, MetricsServer, NodeMetrics, NodeStatus, StopRequest, Supervisor
from engine.live.node import Mode, build_node
from engine.live.recording import JournalRecorder
from engine.live.replay import ReplayClock, ReplayFeed
from engine.live.report import build_session_result, observed_run_data, replayed_run_data
from engine.live.secrets import Credentials, load_credentials
from engine.live.signals import (
    SignalGate,
    StartupAborted,
    current_signals,
    install_signals,
    restore_signals,
    watch_signals,
)
from engine.loading import config_hash, instrument_id_for, instrument_ids, load_strategy, venue_of
from engine.results.artefacts import write_artefacts
from engine.results.events import RiskEventRecorder
from engine.results.result import Ledgers, RunResult, assemble_result, settlement_currency
from engine.results.schemas import text
from engine.run_data import RunData, load_run_data, ns_of, open_catalog
from engine.venue_models import VenueModel, build_venue_models


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
        Ask the operator to type YES before a production start (the CLI sets it when stdin is a terminal).
    ask : callable
        How to ask (``input`` by default; tests inject answers).
    confirm_hash : str, optional
        ``--confirm-live``: the config hash confirming a production start without a terminal.
    secrets_file : Path, optional
    environ : mapping, optional
        Environment to read credentials from (default ``os.environ``).
    out_dir : Path, optional
        Artefacts go to ``out_dir/<config-hash>/``; None writes none.
    state_dir : Path, optional
        Overrides ``live.state_dir`` (the journal: ``<state_dir>/<config-hash>/journal.sqlite``).
    speed : float, optional
        Overrides ``live.replay_speed``.
    duration_secs : float, optional
        Stop gracefully after this many wall seconds.
    fresh : bool
        Back the journal up and start an empty one (paper otherwise resumes from it). The first session
        of a new journal renames an existing ``out_dir/<config-hash>/`` to ``<config-hash>.before-<UTC time>/``.
    flatten_on_stop : bool, optional
        Overrides ``live.flatten_on_stop``.
    metrics_port : int, optional
        Overrides ``live.metrics_port``.
    log_level : str
        Nautilus' stdout log level.
    install_signal_handlers : bool
        SIGINT/SIGTERM stop the node gracefully once it runs (main thread only).
    signals : SignalGate, optional
        The CLI's start-up handlers (``engine.live.signals``): armed before the node runs, a signal they
        remembered becomes a stop as soon as the node has started.
    replay_until : datetime, optional
        Stop a replay after this historical moment, as an operator's stop would (the journal resumes after it).
    actors : sequence of Nautilus actors
        Added to the node before the strategy (an operator's control actor, e.g. one publishing
        ``strategies.risk.KILL_SWITCH_TOPIC``).
    stop : StopRequest, optional
        The request that stops the node gracefully; a caller may request it from any thread.
    """

    mode: Mode = "paper"
    replay: bool = False
    confirmed_live: bool = False
    interactive: bool = False
    ask: Callable[[str], str] = input
    confirm_hash: str | None = None
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
    signals: SignalGate | None = None
    actors: Sequence[Any] = ()
    stop: StopRequest | None = None


@dataclass(frozen=True, slots=True)
class SessionCheck:
    """What ``check_session`` found: the hash ``--confirm-live`` confirms, the environments, the warnings."""

    config_hash: str
    environments: dict[str, str]
    warnings: list[str]


@dataclass(slots=True)
class SessionResult:
    """What a session produced.

    Attributes
    ----------
    result : RunResult
        Cumulative over every session of the journal (restore orders left out), written to ``run_dir``.
    session_result : RunResult, optional
        This session alone, as its node's cache has it (restore orders included), written to ``session_dir``.
    state_path : Path, optional
        The journal (``<state_dir>/<config-hash>/journal.sqlite``).
    session : int
        This session's number in the journal (1 for a fresh start).
    """

    result: RunResult
    stop_reason: str
    run_dir: Path | None = None
    state_path: Path | None = None
    metrics_port: int | None = None
    restored_positions: dict[str, Decimal] = field(default_factory=dict)
    session_result: RunResult | None = None
    session_dir: Path | None = None
    session: int = 1


def run_session(
    config: RunConfig, options: SessionOptions, *, progress: Callable[[str], None] = lambda _: None
) -> SessionResult:
    """Run one paper or live node until it stops; return its report.

    Raises
    ------
    SafetyError
        If live mode is refused (``engine.live.safety``: no ``--live``, a paper environment, limits
        missing or unable to bind, no confirmation, replay requested).
    CredentialsError
        If live mode lacks credentials for a venue, a credential is too short, or the secrets file is unsafe.
    ConfigError, MissingDataError
        As for a backtest.
    NodeError
        If Nautilus fails to build or run the node.
    StateError
        If the journal is malformed (a table, column or value; a negative balance; a strategy state its
        ``on_load`` refuses) or belongs to another config.
    StartupAborted
        If a signal stopped the node before it started: nothing traded, no report written (the journal
        may have gained an empty session, an old run folder may have been set aside). A
        ``BaseException``, like ``KeyboardInterrupt``: catch it by name (the CLI maps it to exit 0 and
        ``stopped during start-up (...)``).

    The journal is closed on every way out, an exception or ``StartupAborted`` included.
    """
    session = _Session(config, options)
    session.check()
    try:
        session.prepare(progress)
        return session.run()
    finally:
        session.close()


def check_session(config: RunConfig, options: SessionOptions) -> SessionCheck:
    """Run every check ``run_session`` runs before it reads data or builds anything; return what passed.

    Live: every safety rule but the operator's confirmation (``--dry-run``), so the returned hash is
    what ``--confirm-live`` expects.

    Raises
    ------
    SafetyError, CredentialsError
        As ``run_session``.
    """
    session = _Session(config, options)
    session.check(confirm=False)
    return SessionCheck(
        config_hash=session.digest,
        environments=dict(safety.venue_environments(config)),
        warnings=list(session.warnings),
    )


class _Session:
    def __init__(self, config: RunConfig, options: SessionOptions) -> None:
        self.config = config
        self.options = options
        self.live = config.live or LiveConfig()
        self.log = get_logger("node")
        self.digest = config_hash(config)
        self.journal_file = journal_path(options.state_dir or Path(self.live.state_dir), self.digest)
        self.clock = ReplayClock(speed=options.speed if options.speed is not None else self.live.replay_speed)
        self.status = NodeStatus(max_data_age_secs=_max_data_age_secs(self.live, config.data.bar_spec))
        clock = self.clock
        self.now_ns: Callable[[], int] = (lambda: clock.now) if options.replay else time.time_ns
        self.metrics = NodeMetrics(self.status, now_ns=self.now_ns)  # a registry per node, not the global one
        self.status.latency.listeners.append(self.metrics.on_latency)
        self.stop = options.stop if options.stop is not None else StopRequest()
        self.flatten = self.live.flatten_on_stop if options.flatten_on_stop is None else options.flatten_on_stop
        self.credentials: Mapping[str, Credentials] = {}
        self.journal: Journal | None = None
        self.recorder: JournalRecorder | None = None
        self.resume = ResumePoint()
        self.carried: list[Settlement] = []
        self.base_models: list[VenueModel] = []
        self.replay: ReplayFeed | None = None
        self.data: RunData | None = None
        self.models: list[VenueModel] = []
        self.funding = PaperFunding({})
        self.funding_accounts = FundingAccounts()
        self.supervisor_started = False
        self.supervisor_starting = False
        self.last_signal: str | None = None
        self.started_lock = threading.Lock()
        self.warnings: list[str] = []
        self.risk_events = _JournaledRiskEvents()
        self.anomalies: AnomalyMonitor | None = None
        self.started = 0.0
        self.plan = load_strategy(config)

    def check(self, *, confirm: bool = True) -> None:
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
                confirm_hash=self.options.confirm_hash,
                confirm=confirm,
            )
        else:
            # Live refuses these (check_live above); paper runs and records them, as a backtest does.
            self.warnings = limit_findings(self.config)
            for finding in self.warnings:
                self.log.warning("limit cannot bind", finding=finding)

    def prepare(self, progress: Callable[[str], None]) -> None:
        config, options = self.config, self.options
        self.models = build_venue_models(config, fees="venue" if options.mode == "live" else "catalog")
        self.base_models = list(self.models)
        # Venue data: the funding books start from the catalog's settled rates (a replay reads its own).
        self.plan = load_strategy(config, seed_funding_before_ns=None if options.replay else self.now_ns())
        if options.replay:
            progress(f"catalog {config.data.catalog}: loading {config.start:%Y-%m-%d} to {config.end:%Y-%m-%d}")
            self.data = load_run_data(config, open_catalog(config.data.catalog), progress=progress)
        self.funding = PaperFunding(_funding_terms(config, self.data))
        self.open_journal()
        self.anomalies = self.anomaly_monitor()
        if options.mode == "paper" and config.fill.slippage_bps:
            self.log.warning(
                "paper fills ignore fill.slippage_bps",
                slippage_bps=str(config.fill.slippage_bps),
                why="the 2.0.0rc7 sandbox accepts native fill models only; market orders fill at the last close",
            )

    def open_journal(self) -> None:
        # Paper resumes from the journal (positions, balances, cursor, strategy state); live only records
        # (the venue is the record: reconciliation recovers orders and positions).
        options = self.options
        journal = Journal.open(
            self.journal_file, config_hash=self.digest, fresh=options.fresh, keep_backups=self.live.journal_backups
        )
        self.journal = journal
        journal.backup(label="start")
        resume = journal.resume_point()
        self.resume = resume if options.mode == "paper" else ResumePoint(session=resume.session)
        if resume.session == 1 and options.out_dir is not None:
            # A new journal (--fresh, or a new state dir) numbers its sessions from 1 again: keep the old
            # run's folder whole, beside the new one, rather than write session-1/ over its files.
            moved = set_aside(options.out_dir / self.digest, now=datetime.now(UTC))
            if moved is not None:
                self.log.info("previous run folder set aside", path=str(moved))
        journal.begin_session(mode=options.mode, resumed_after_ns=self.resume.cursor_ns)
        data = self.data
        venue_names = {m.venue.value: m.name for m in self.models}
        instruments = data.instruments if data is not None else {}
        self.recorder = JournalRecorder(
            journal,
            to_historical=self.clock.to_historical if options.replay else (lambda ns: ns),
            venue_of=data.venue_of if data is not None else venue_of(self.config),
            currency_of={str(i): settlement_currency(x) for i, x in instruments.items()},
            venues={name: Venue(venue) for venue, name in venue_names.items()},
        )
        self.risk_events.record_event = self.on_risk_event
        self.status.latency.listeners.append(self.recorder.on_latency)
        if options.mode != "paper":
            return
        self.carried = [Settlement(**{k: v for k, v in row.items() if k != "session"}) for row in journal.settlements()]
        self.funding.settlements.extend(self.carried)
        for instrument_id in self.funding.terms:
            self.funding.settled_until[instrument_id] = max(
                self.resume.cursor_ns - 1, self.resume.settled_until.get(instrument_id, 0), 0
            )
        if self.resume.session > 1:
            self.models = self.restored_models()
            self.log.info(
                "resuming from the journal",
                path=str(self.journal_file),
                session=self.resume.session,
                cursor_ns=self.resume.cursor_ns,
                positions={i: str(q) for i, q in self.resume.positions.items()},
                balances={m.name: [str(b) for b in m.starting_balances] for m in self.models},
            )

    def anomaly_monitor(self) -> AnomalyMonitor | None:
        anomalies = self.live.anomalies
        if anomalies is None:
            return None
        journal, _ = self.opened()
        ids = instrument_ids(self.config)
        return AnomalyMonitor(
            anomalies,
            venues=sorted({i.venue.value for i in ids}),
            instrument_ids=[str(i) for i in ids],
            # Live: the venue is the record, our fills before this session are the journal's; a paper node
            # re-opens its positions with orders of the strategy's own, counted as they fill.
            ours=journal.net_positions() if self.options.mode == "live" else {},
            tracker=self.status.latency,
            ts_ns=self.now_ns,
        )

    def restored_models(self) -> list[VenueModel]:
        # A margin account's balance + unrealised PnL, rebuilt exactly from the journal's fills marked at the
        # price the positions are re-opened at (the replay's last close before the cursor), its funding, plus
        # the taker fee the re-opening orders pay: the restarted sandbox's equity is the uninterrupted one's.
        journal, _ = self.opened()
        prices = self.restore_prices()
        multipliers = {
            str(i): Decimal(str(x.multiplier)) for i, x in (self.data.instruments if self.data else {}).items()
        }
        fills = journal.rows("fills")
        restored = []
        for model in self.models:
            own = [f for f in fills if f["venue"] == model.name]
            change = marked_balances(own, prices, multipliers)
            # Paper funding is booked into the sandbox accounts (engine.live.funding_account).
            for settlement in self.carried:
                if settlement.venue == model.name:
                    change[settlement.currency] = change.get(settlement.currency, Decimal(0)) + settlement.amount
            for instrument_id, size in self.resume.positions.items():
                fees = (model.fees or {}).get(InstrumentId.from_str(instrument_id))
                price = prices.get(instrument_id)
                if fees is not None and price is not None and any(f["instrument_id"] == instrument_id for f in own):
                    currency = next(f["commission_currency"] for f in own if f["instrument_id"] == instrument_id)
                    fee = abs(size) * price * multipliers.get(instrument_id, Decimal(1)) * fees[1]
                    change[currency] = change.get(currency, Decimal(0)) + fee
            balances = []
            for money in model.starting_balances:
                code = str(money.currency.code)
                unit = Decimal(1).scaleb(-money.currency.precision)
                amount = (money.as_decimal() + change.get(code, Decimal(0))).quantize(unit)
                if amount < 0:
                    raise StateError(
                        f"journal {self.journal_file}: expected the restored {model.name} balance to be >= 0, "
                        f"was {amount} {code} (fills marked to the last price); pass --fresh to start over"
                    )
                balances.append(Money.from_str(f"{amount} {code}"))
            restored.append(replace(model, starting_balances=tuple(balances)))
        return restored

    def primed_after_ns(self) -> int:
        # A resumed replay re-emits the last bar of each instrument before the cursor (the restore price):
        # the session's report starts just before the earliest of them.
        if self.data is None or not self.resume.cursor_ns:
            return 0
        closed = self.data.bars.filter(pl.col("ts").cast(pl.Int64) + 1 <= self.resume.cursor_ns)
        last = closed.group_by("instrument_id").agg(pl.col("ts").cast(pl.Int64).max())
        earliest: int = last["ts"].min() if last.height else self.resume.cursor_ns  # type: ignore[assignment]
        return earliest

    def opened(self) -> tuple[Journal, JournalRecorder]:
        if self.journal is None or self.recorder is None:
            raise NodeError("expected the session's journal to be open (prepare() opens it), it was not")
        return self.journal, self.recorder

    def restore_prices(self) -> dict[str, Decimal]:
        # Replay: the close of the last bar delivered at or before the cursor (the priming bar). Venue data:
        # the last fill price (the position is re-opened on the next venue bar).
        if self.data is not None:
            closed = self.data.bars.filter(pl.col("ts").cast(pl.Int64) + 1 <= self.resume.cursor_ns)
            last = closed.group_by("instrument_id", maintain_order=True).last()
            return {row["instrument_id"]: row["close"] for row in last.iter_rows(named=True)}
        journal, _ = self.opened()
        return {row["instrument_id"]: Decimal(row["price"]) for row in journal.rows("fills")}

    def on_risk_event(self, event: dict[str, Any]) -> None:
        if self.recorder is not None:
            self.recorder.on_risk_event(event)
        self.metrics.on_risk_event(event)

    def on_settlement(self, settlement: Settlement) -> None:
        self.log.info("funding", **settlement.to_json())
        # Into the sandbox account too (paper): balances, equity and the risk breakers include it, as in a backtest.
        self.funding_accounts.book(settlement)
        if self.anomalies is not None:
            self.anomalies.on_settlement(settlement.instrument_id)
        if self.recorder is not None:
            self.recorder.on_settlement(settlement)

    def feed(self, strategy: Any) -> ReplayFeed | None:
        if self.data is None:
            return None
        status = self.status
        self.replay = ReplayFeed(
            instruments=list(self.data.instruments.values()),
            events=sorted(self.data.engine_data, key=lambda e: e.ts_init),
            clock=self.clock,
            funding=self.funding,
            resume_after=self.resume.cursor_events,
            on_processed=lambda count, event: self.on_processed(count, event, strategy),
            on_settlement=self.on_settlement,
            booked=self.funding_accounts.landed,
            on_finished=self.replay_finished,
            processed=lambda bar: status.processed_bar_ns.get(str(bar.bar_type), 0) >= bar.ts_init,
            settling=strategy.is_exiting,
            pause_after_ns=ns_of(self.options.replay_until) if self.options.replay_until is not None else None,
        )
        return self.replay

    def on_processed(self, count: int, event: Any, strategy: Any) -> None:
        if self.recorder is not None:
            self.recorder.on_cursor(count, event.ts_init, strategy)

    def replay_finished(self) -> None:
        paused = self.options.replay_until is not None
        self.stop.request("replay paused" if paused else "replay finished", flatten=self.flatten and paused)

    def wrap(self, strategy_class: type) -> type:
        # timed inside stoppable (and watched): an order dropped at the stop or by a halt was never submitted.
        measured = timed(guarded(strategy_class), self.status.latency)
        if self.anomalies is not None:
            measured = watched(measured, self.anomalies)
        wrapped = deferred_denials(stoppable(measured, self.stop))
        if self.options.replay:
            wrapped = on_replay_clock(wrapped, self.clock)
        if self.resume.cursor_ns:
            wrapped = after_resume(wrapped, lambda: self.replay is not None and self.replay.priming)
        return journaled(wrapped, self.recorder) if self.recorder is not None else wrapped

    def run(self) -> SessionResult:
        config, options = self.config, self.options
        strategy = self.plan.create(self.wrap)
        self.load_strategy_state(strategy)
        node = build_node(
            config,
            mode=options.mode,
            log_level=options.log_level,
            models=self.models,
            live_config=self.live,
            credentials=self.credentials,
            feed=self.feed(strategy),
            funding_accounts=self.funding_accounts if options.mode == "paper" else None,
        )
        restore = dict(self.resume.positions)
        self.started = time.perf_counter()
        metrics: MetricsServer | None = None
        timer: threading.Timer | None = None
        try:
            supervisor = self.supervisor(strategy, node.handle().stop, restore)
            node.add_actor(supervisor)
            node.add_actor(self.risk_events)
            for actor in options.actors:
                node.add_actor(actor)
            node.add_strategy(strategy)
            if options.mode == "live":
                # Orders and positions reconciliation recovers from the venue belong to the strategy trading them.
                strategy.set_external_order_instrument_ids(instrument_ids(config))
            port = options.metrics_port if options.metrics_port is not None else self.live.metrics_port
            if port is not None:
                metrics = MetricsServer(self.metrics, host=self.live.metrics_host, port=port).start()
                root = f"http://{self.live.metrics_host}:{metrics.port}"
                self.log.info("metrics", url=f"{root}/metrics", health=f"{root}/healthz")
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
            outcome = self.finish(node, restore, metrics)
            left_open = supervisor.open_after_flatten or self.left_open(node)
            if left_open:
                # Written above (journal, report); still a failure: the operator asked for a flat book.
                raise NodeError(
                    f"expected the stop to flatten every position, {', '.join(left_open)} still open when the "
                    f"node stopped (the venue refused or did not fill the close within {STOP_TIMEOUT_SECS:.0f} s, "
                    "or the node stopped before the close was sent); close them at the venue, the report and "
                    "journal hold the state"
                )
            return outcome
        finally:
            if timer is not None:
                timer.cancel()
            if metrics is not None:
                metrics.close()
            node.dispose()
            del node
            gc.collect()

    def left_open(self, node: LiveNode) -> list[str]:
        """Return the configured instruments still holding a position after a stop that was to flatten."""
        if not (self.stop.event.is_set() and self.stop.flatten):
            return []
        configured = set(instrument_ids(self.config))
        return sorted({str(p.instrument_id) for p in node.cache.positions_open() if p.instrument_id in configured})

    def close(self) -> None:
        if self.journal is not None:
            self.journal.close()
            self.journal = None

    def load_strategy_state(self, strategy: Any) -> None:
        saved = self.resume.strategy_state
        if not saved:
            return
        # One strategy per node: its saved state, whatever id the previous session gave it.
        strategy_id, state = next(iter(saved.items()))
        try:
            strategy.on_load(state)
        except (ValueError, TypeError, KeyError, ArithmeticError) as exc:
            raise StateError(
                f"journal {self.journal_file}: expected strategy_state of {strategy_id} to be what "
                f"{type(strategy).__name__}.on_save writes, {exc}; pass --fresh to start over"
            ) from None
        self.log.info("strategy state restored", strategy_id=strategy_id, keys=sorted(state))

    def supervisor(self, strategy: Any, stop_node: Callable[[], None], restore: dict[str, Decimal]) -> Supervisor:
        return Supervisor(
            strategy=strategy,
            instrument_ids=instrument_ids(self.config),
            bar_spec=self.config.data.bar_spec,
            status=self.status,
            stop=self.stop,
            stop_node=stop_node,
            now_ns=self.now_ns,
            status_interval_secs=self.live.status_interval_secs,
            funding=self.funding,
            settle_funding=not self.options.replay and self.options.mode == "paper",
            on_settlement=self.on_settlement,
            restore=restore,
            on_started=self.install_signals,
            on_tick=self.on_supervisor_tick,
            funding_booked=self.funding_accounts.newly_landed,
            anomalies=self.anomalies,
        )

    def on_supervisor_tick(self) -> None:
        if self.journal is not None:
            self.journal.backup_if_due(time.time_ns())
        if self.options.install_signal_handlers and not self.stop.event.is_set():
            # A live node's adapters may install Nautilus' own SIGINT/SIGTERM handling after the supervisor
            # started (measured on rc6: it then stopped the strategy before our flatten could run). Ours are
            # put back on every tick, so a signal is always the graceful stop.
            install_signals(self.stop, flatten=self.flatten)

    def install_signals(self) -> None:
        # Called from the supervisor's on_start, on the main thread inside node.run(): after the node has
        # installed its own SIGINT/SIGTERM handling, so ours (graceful: cancel, flatten, state) replaces it.
        # A signal the CLI's gate remembered while the node was starting becomes the stop now.
        with self.started_lock:
            self.supervisor_starting = True  # from here a signal is a graceful stop the supervisor performs
        if self.options.install_signal_handlers:
            install_signals(self.stop, flatten=self.flatten)  # run_node puts back the handlers from before
        with self.started_lock:
            self.supervisor_started = True
        gate = self.options.signals
        if gate is not None and gate.received is not None:
            self.stop.request(f"signal {gate.received}", flatten=self.flatten)

    def run_node(self, node: LiveNode, strategy: Any) -> None:
        self.log.info(
            "starting",
            mode=self.options.mode,
            replay=self.options.replay,
            venues=[v.name for v in self.config.venues],
            config_hash=self.digest,
        )
        gate = self.options.signals
        before = current_signals()
        stop_node = node.handle().stop
        watching = (
            watch_signals(lambda name: self.on_signal_while_starting(name, stop_node))
            if self.options.install_signal_handlers
            else contextlib.nullcontext()
        )
        try:
            with watching:
                if gate is not None:
                    gate.arm()  # the watcher sees every signal from here on
                node.run()
        except Exception as exc:
            raise NodeError(
                f"expected the node to run until stopped, it failed with {type(exc).__name__}: {exc}"
            ) from exc
        finally:
            # Nautilus leaves its own handlers installed after run(): put back the ones from before it.
            restore_signals(before)
        if not self.supervisor_started:
            # Stopped by a signal before our supervisor started: nothing traded, write nothing.
            reason = self.stop.reason or (f"signal {gate.received}" if gate is not None and gate.received else "")
            raise StartupAborted(f"{reason or 'a signal caught by Nautilus'} while the node was starting")
        raise_failure(strategy, NodeError)

    def on_signal_while_starting(self, name: str, stop_node: Callable[[], None]) -> None:
        # From watch_signals' thread: the main thread may be inside Nautilus, connecting, for a minute.
        # Every signal is remembered: Nautilus' own handler may have stopped the node on it before ours
        # were installed, and the report must still say why the node stopped.
        self.last_signal = name
        with self.started_lock:
            if self.supervisor_started:
                return  # install_signals' handlers run on the main thread now
            self.stop.request(f"signal {name}", flatten=self.flatten)
            if self.supervisor_starting:
                return  # the supervisor is installing our handlers: its timer performs the graceful stop
        stop_node()

    def finish(self, node: LiveNode, restore: dict[str, Decimal], metrics: MetricsServer | None) -> SessionResult:
        config, options = self.config, self.options
        journal, recorder = self.opened()
        to_historical = self.clock.to_historical if options.replay else (lambda ns: ns)
        until_ns = max(self.clock.now, self.resume.cursor_ns)
        if self.data is not None:
            data = replayed_run_data(self.data, after_ns=self.primed_after_ns(), until_ns=until_ns)
        else:
            data = observed_run_data(
                self.status.bars, _cached_instruments(node, config), venue_of(config), end_ns=time.time_ns()
            )
        reason = self.stop.reason or (f"signal {self.last_signal}" if self.last_signal else "node stopped")
        extra = {
            "stop_reason": reason,
            "session": journal.session,
            "restored_positions": {k: str(v) for k, v in restore.items()},
            "funding_before_restart": _totals(self.carried),
        }
        result = build_session_result(
            config,
            cache=node.cache,
            models=self.models,
            data=data,
            settlements=self.funding.settlements[len(self.carried) :],
            to_historical=to_historical,
            mode=options.mode + (" (replay)" if options.replay else ""),
            extra=extra,
        )
        result.risk_events = self.risk_events.frame()
        result.stats["risk_events"] = result.risk_events.height
        if self.warnings:
            result.stats["warnings"] = list(self.warnings)
        result.timings_secs["session"] = time.perf_counter() - self.started
        # The stop's final states: every order, the balances, and this session's positions as the report has them.
        recorder.snapshot(node.cache, ts=until_ns if options.replay else time.time_ns())
        journal.replace_session_rows("positions", _ns_rows(result.positions, ["ts_opened", "ts_closed"]))
        journal.end_session(reason)
        # Live: the venue is the record (reconciliation re-books what earlier sessions left open), so the
        # report is the session's; paper: the journal's, over every session.
        total = self.cumulative_result(result, data) if options.mode == "paper" else result
        session_dir = run_dir = None
        if options.out_dir is not None:
            session_dir = write_artefacts(result, options.out_dir / self.digest, folder=f"session-{journal.session}")
            run_dir = write_artefacts(total, options.out_dir)
        self.log.info(
            "stopped", reason=reason, run_dir=str(run_dir), session_dir=str(session_dir), journal=str(self.journal_file)
        )
        return SessionResult(
            result=total,
            stop_reason=reason,
            run_dir=run_dir,
            state_path=self.journal_file,
            metrics_port=metrics.port if metrics is not None else None,
            restored_positions=restore,
            session_result=result,
            session_dir=session_dir,
            session=journal.session,
        )

    def cumulative_result(self, session: RunResult, session_data: RunData) -> RunResult:
        # Every session of the journal: the strategy's orders and fills (restore orders left out: they
        # re-open what a fill of an earlier session opened), positions, balances, funding, risk events,
        # attributed over every bar replayed since the start. Reconciled with this session's positions.
        journal, _ = self.opened()
        if self.data is not None:
            data = replayed_run_data(self.data, after_ns=0, until_ns=max(self.clock.now, self.resume.cursor_ns))
        else:
            data = session_data
        positions = _sorted_positions(journal.frame("positions"))
        ledgers = Ledgers(
            orders=journal.frame("orders").sort("ts_init", "client_order_id"),
            fills=journal.frame("fills").sort("ts", "client_order_id", "quantity", maintain_order=True),
            positions=_sorted_positions(journal.frame("positions", where=f"session = {journal.session}")),
            account=journal.frame("account").sort("ts", maintain_order=True),
        )
        total = assemble_result(
            self.config,
            ledgers,
            funding=journal.frame("funding").sort("ts", "instrument_id"),
            models=self.base_models,
            data=data,
            extra={
                "mode": session.stats["mode"],
                "stop_reason": session.stats["stop_reason"],
                "sessions": journal.session,
                "restored_positions": session.stats["restored_positions"],
            },
        )
        total.positions = positions
        total.stats["positions"] = positions.height
        total.risk_events = journal.frame("risk_events")
        total.stats["risk_events"] = total.risk_events.height
        if "warnings" in session.stats:
            total.stats["warnings"] = session.stats["warnings"]
        total.timings_secs = dict(session.timings_secs)
        return total


class _JournaledRiskEvents(RiskEventRecorder):
    """The risk events recorder, also journaling each event as it is published."""

    record_event: Callable[[dict[str, Any]], None] | None = None

    def _record(self, message: object) -> None:
        super()._record(message)
        if self.record_event is not None and isinstance(message, dict):
            self.record_event(message)


def set_aside(run_dir: Path, *, now: datetime) -> Path | None:
    """Rename ``run_dir`` to ``<run_dir>.before-<UTC time>`` if it exists; return the new path."""
    if not run_dir.exists():
        return None
    target = run_dir.with_name(f"{run_dir.name}.before-{now.astimezone(UTC):%Y%m%dT%H%M%S%fZ}")
    run_dir.rename(target)
    return target


def _ns_rows(frame: pl.DataFrame, columns: list[str]) -> list[dict[str, Any]]:
    return frame.with_columns(pl.col(c).cast(pl.Int64) for c in columns).to_dicts()


def _sorted_positions(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.sort("ts_opened", "ts_closed", "position_id", nulls_last=True, maintain_order=True).sort(
        "ts_opened", "position_id", "is_snapshot"
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


def _max_data_age_secs(live: LiveConfig, bar_spec: str) -> float:
    if live.max_data_age_secs is not None:
        return live.max_data_age_secs
    step, aggregation, price_type = bar_spec.split("-")[:3]
    return 3 * BarSpecification.from_str(f"{step}-{aggregation}-{price_type}").timedelta.total_seconds()


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
