"""Run configs: one TOML file per backtest, parsed into frozen structs that reject unknown keys.

A config names the time range, the venues and their instruments, the strategy and its parameters,
balances, fees, the fill model, leverage, risk limits and the data to load. Parsing checks types and
ranges and reports the path of the bad field (``$.venues[0].leverage``). This module is the schema
only: ``engine.loading`` reads files, imports the strategy and resolves instrument references, so a
typo in a strategy parameter or a risk key also fails before any data is read.

Example::

    name = "demo"
    start = 2024-01-01T00:00:00Z        # TOML datetimes, UTC offset required
    end = 2024-04-01T00:00:00Z          # exclusive

    [data]
    catalog = "catalog"                 # a Nautilus catalog written by datasets.catalog.export_catalog
    bar_spec = "1-HOUR-LAST-EXTERNAL"

    [[venues]]
    name = "binance"                    # binance, bybit, okx, hyperliquid, kraken
    instruments = ["BTC-USDT-PERP"]     # canonical symbols
    starting_balances = ["100000 USDT"]

    [strategy]
    path = "strategies.demo:FundingShort"
    [strategy.params]
    instrument_ids = ["binance:BTC-USDT-PERP"]   # "venue:SYMBOL" strings become Nautilus ids

A config may also list independent runs of its strategy, one ``[[pairs]]`` entry each (``PairConfig``;
``engine.batch`` expands them): every entry is the config above with the entry's ``params`` merged over
``[strategy.params]``, only the instruments those params name, and its own name, hash, run directory and
accounts with the configured starting balances. The runs share no margin: two entries on one venue are
two accounts, each with the full balance, never one account holding both pairs::

    [[pairs]]
    name = "eth"                        # run name: "<name>-eth"
    params = { spot_id = "binance:ETH-USDT", perp_id = "binance:ETH-USDT-PERP" }
"""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal

import msgspec

from datasets.venues import DATA_VENUES, VENUES
from engine.errors import ConfigError
from strategies.sizing import Sizing, SizingMode

VENUE_NAMES: tuple[str, ...] = tuple(VENUES)
UtcDatetime = Annotated[datetime, msgspec.Meta(tz=True)]
FUNDING_INTERVAL = re.compile(r"^(data|[1-9][0-9]*[mh])$")
BAR_SPEC = re.compile(r"^[1-9][0-9]*-(MINUTE|HOUR|DAY)-(LAST|MID|BID|ASK)-(EXTERNAL|INTERNAL)$")
CURRENCY = re.compile(r"^[A-Z][A-Z0-9]{1,9}$")
INSTRUMENT_REFERENCE = re.compile(r"^(?P<venue>[a-z][a-z0-9_]*):(?P<symbol>[^\s:]+)$")


class _Config(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    pass


class DataConfig(_Config, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Where the data comes from and which kinds to load.

    Attributes
    ----------
    catalog : str
        Nautilus catalog directory (relative paths resolve against the working directory).
    bar_spec : str
        Bar specification of the bars to replay, e.g. ``1-HOUR-LAST-EXTERNAL``.
    mark_prices : bool
        Load ``MarkPriceUpdate`` for perps (funding settles on the mark when present).
    funding : bool
        Load ``FundingRateUpdate`` for perps; the engine settles funding from them.
    liquidations : bool
        Load the catalog's liquidation custom data and deliver it to the strategy.
    store : str, optional
        Canonical store whose ``margin_tiers`` give the perps' maintenance brackets (the strategy's
        ``risk.margin_tiers``, for the liquidation-distance control); None: each perp's flat ``margin_maint``.
    """

    catalog: str = "catalog"
    bar_spec: str = "1-HOUR-LAST-EXTERNAL"
    mark_prices: bool = True
    funding: bool = True
    liquidations: bool = False
    store: str | None = None

    def __post_init__(self) -> None:
        if not BAR_SPEC.match(self.bar_spec):
            raise ValueError(f"bar_spec: expected e.g. '1-HOUR-LAST-EXTERNAL', was {self.bar_spec!r}")


class VenueConfig(_Config, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One simulated venue: its account, fees, leverage and the instruments traded on it.

    Attributes
    ----------
    name : str
        Venue model: ``binance``, ``bybit``, ``okx``, ``hyperliquid`` or ``kraken``.
    instruments : list[str]
        Canonical symbols (``BTC-USDT-PERP``, ``BTC-USDT``) to load and trade.
    starting_balances : list[str]
        ``"<amount> <CURRENCY>"`` per currency, amounts positive.
    account_type : {"margin", "cash"}
        One account per venue; perps need ``margin``.
    oms : {"netting", "hedging"}
        Position bookkeeping: one net position per instrument, or one per opening order.
    leverage : Decimal
        Default leverage of every instrument on the venue.
    maker_fee, taker_fee : Decimal, optional
        Fee rates (0.0002 = 2 bps); default to the venue's published base tier.
    funding_interval : str
        ``"data"`` settles at the ``next_funding_ns`` the data carries; ``"8h"``/``"1h"``
        asserts the venue's clock and fails when the data disagrees.
    """

    name: str
    instruments: list[str]
    starting_balances: list[str]
    account_type: Literal["margin", "cash"] = "margin"
    oms: Literal["netting", "hedging"] = "netting"
    leverage: Decimal = Decimal(1)
    maker_fee: Decimal | None = None
    taker_fee: Decimal | None = None
    funding_interval: str = "data"

    def __post_init__(self) -> None:
        if self.name in DATA_VENUES and DATA_VENUES[self.name].research_only:
            raise ValueError(
                f"name: {self.name!r} is a research-only venue (its funding is in the store for research, but it has "
                "no Nautilus adapter mapping or instrument specs), so it cannot run in a backtest, paper or live "
                f"node; expected one of {', '.join(VENUE_NAMES)}"
            )
        if self.name not in VENUE_NAMES:
            raise ValueError(f"name: expected one of {', '.join(VENUE_NAMES)}, was {self.name!r}")
        if not self.instruments:
            raise ValueError("instruments: expected at least one symbol, was an empty list")
        if not self.starting_balances:
            raise ValueError("starting_balances: expected at least one '<amount> <CURRENCY>', was an empty list")
        for text in self.starting_balances:
            _positive_balance(text)
        if self.leverage <= 0:
            raise ValueError(f"leverage: expected > 0, was {self.leverage}")
        for label, fee in (("maker_fee", self.maker_fee), ("taker_fee", self.taker_fee)):
            if fee is not None and not Decimal("-0.01") <= fee <= Decimal("0.01"):
                raise ValueError(f"{label}: expected a rate within [-0.01, 0.01] (0.0005 = 5 bps), was {fee}")
        if not FUNDING_INTERVAL.match(self.funding_interval):
            raise ValueError(f"funding_interval: expected 'data', '1h' or '8h', was {self.funding_interval!r}")


class FillConfig(_Config, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """How orders fill on bar data.

    Attributes
    ----------
    slippage_bps : Decimal
        Market orders fill at the last bar close moved this many basis points against the taker.
    """

    slippage_bps: Decimal = Decimal(0)

    def __post_init__(self) -> None:
        if not Decimal(0) <= self.slippage_bps <= Decimal(1000):
            raise ValueError(f"slippage_bps: expected within [0, 1000], was {self.slippage_bps}")


# The largest per-order notional the Nautilus 2.0.0rc6 risk engine can compare with (measured: it is the
# largest ``Money``). Above it ``RiskEngineConfig`` accepts the limit but denies every order
# INVALID_MAX_NOTIONAL_PER_ORDER; above 2**96 - 1 it fails with a decimal overflow.
MAX_NOTIONAL_PER_ORDER = Decimal("17014118346046")


class RiskConfig(_Config, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Pre-trade limits the Nautilus risk engine enforces (denied orders are reported, never queued).

    Attributes
    ----------
    max_order_submit_rate : str
        ``"<count>/<HH:MM:SS>"``.
    max_notional_per_order : dict[str, Decimal]
        Per instrument (``"venue:SYMBOL"``), in the instrument's quote currency.
    """

    max_order_submit_rate: str = "100/00:00:01"
    max_notional_per_order: dict[str, Decimal] = msgspec.field(default_factory=dict)

    def __post_init__(self) -> None:
        if not re.match(r"^[1-9][0-9]*/[0-9]{2}:[0-9]{2}:[0-9]{2}$", self.max_order_submit_rate):
            raise ValueError(f"max_order_submit_rate: expected '<count>/HH:MM:SS', was {self.max_order_submit_rate!r}")
        for key, value in self.max_notional_per_order.items():
            if not INSTRUMENT_REFERENCE.match(key):
                raise ValueError(f"max_notional_per_order: expected keys 'venue:SYMBOL', was {key!r}")
            if not 0 < value <= MAX_NOTIONAL_PER_ORDER:
                raise ValueError(
                    f"max_notional_per_order[{key!r}]: expected > 0 and at most {MAX_NOTIONAL_PER_ORDER} (the "
                    f"largest amount Nautilus' Money holds), was {value}"
                )


class SizingConfig(_Config, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Optional ``[sizing]`` section: how the strategy sizes entries (``strategies.sizing`` has the formulas).

    Attributes
    ----------
    mode : {"fixed_notional", "volatility_target", "kelly"}
        ``fixed_notional`` (the default): the strategy's ``notional``.
    target_volatility, volatility_window_bars, max_notional : optional
        Volatility targeting: annualised target, bars of realised volatility, cap on one entry's notional.
    win_rate, average_win, average_loss, kelly_fraction : optional
        Fractional Kelly: win rate in [0, 1], average win and loss as positive fractions of the notional,
        share of the full Kelly fraction in (0, 1].
    max_correlated_exposure_usd : Decimal, optional
        Cap on the strategy's exposure with correlated instruments counted together.
    correlation_window_days : int
        Days of bars before ``start`` the correlation of the configured instruments is estimated over
        (``engine.correlation``), from the canonical store.
    correlation_interval : str
        Bar interval of the store's ``ohlcv`` trade bars used for it (``1h``).
    store : str, optional
        Canonical store root; defaults to ``$DATA_ROOT`` or ``./data/store``.
    """

    mode: SizingMode = "fixed_notional"
    target_volatility: Decimal | None = None
    volatility_window_bars: int = 720
    max_notional: Decimal | None = None
    win_rate: Decimal | None = None
    average_win: Decimal | None = None
    average_loss: Decimal | None = None
    kelly_fraction: Decimal = Decimal("0.5")
    max_correlated_exposure_usd: Decimal | None = None
    correlation_window_days: int = 30
    correlation_interval: str = "1h"
    store: str | None = None

    def __post_init__(self) -> None:
        if self.correlation_window_days < 1:
            raise ValueError(f"correlation_window_days: expected >= 1, was {self.correlation_window_days}")
        if not FUNDING_INTERVAL.match(self.correlation_interval) or self.correlation_interval == "data":
            raise ValueError(
                f"correlation_interval: expected a store interval like '1h', was {self.correlation_interval!r}"
            )
        Sizing.from_mapping(self.strategy_fields())

    def strategy_fields(self) -> dict[str, Any]:
        """Return the fields the strategy's ``sizing`` parameter takes (``strategies.sizing.Sizing``)."""
        fields = msgspec.structs.asdict(self)
        for name in ("correlation_window_days", "correlation_interval", "store"):
            del fields[name]
        return fields


class StrategySpec(_Config, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The strategy to run: import paths and parameters.

    Attributes
    ----------
    path : str
        ``"module:Class"`` of a ``nautilus_trader.trading.Strategy`` subclass.
    config_path : str, optional
        ``"module:Class"`` of its config; defaults to ``<path>Config``.
    params : dict
        Keyword arguments of the config class. Strings ``"venue:SYMBOL"`` naming a configured
        venue are replaced by the Nautilus instrument id, also inside lists.
    """

    path: str
    config_path: str | None = None
    params: dict[str, Any] = msgspec.field(default_factory=dict)

    def __post_init__(self) -> None:
        for label, value in (("path", self.path), ("config_path", self.config_path)):
            if value is not None and not re.match(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$", value):
                raise ValueError(f"{label}: expected 'package.module:ClassName', was {value!r}")


HTTP_URL = re.compile(r"^(https?|wss?)://[^\s]+$")


VenueEnvironment = Literal["paper", "testnet", "production"]


class ConnectionConfig(_Config, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """How a paper or live node reaches one venue (never its credentials: those come from the environment).

    Attributes
    ----------
    environment : {"paper", "testnet", "production"}
        What the config may trade on this venue. ``paper`` (the default): simulated execution only,
        ``--mode live`` is refused; market data comes from the venue's production feeds. ``testnet``:
        the venue's testnet/demo for data and, with ``--mode live --live``, execution. ``production``:
        real funds, with ``--mode live --live`` and the operator's confirmation.
    base_url_http, base_url_ws, base_url_ws_private, base_url_ws_trading : str, optional
        Overrides of the adapter's endpoints (the loopback tests point them at 127.0.0.1): REST, public
        market data WebSocket, private (account) WebSocket, order-entry WebSocket (Binance, Bybit) or
        exchange endpoint (Hyperliquid ``/exchange``).
    base_url_ws_business : str, optional
        OKX only: the business WebSocket (candles, and algo orders for execution).
    """

    environment: VenueEnvironment = "paper"
    base_url_http: str | None = None
    base_url_ws: str | None = None
    base_url_ws_private: str | None = None
    base_url_ws_trading: str | None = None
    base_url_ws_business: str | None = None

    def __post_init__(self) -> None:
        labels = ("base_url_http", "base_url_ws", "base_url_ws_private", "base_url_ws_trading", "base_url_ws_business")
        for label in labels:
            value = getattr(self, label)
            if value is not None and not HTTP_URL.match(value):
                raise ValueError(f"{label}: expected an http(s):// or ws(s):// URL, was {value!r}")


class AnomalyConfig(_Config, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Optional ``[live.anomalies]``: conditions that halt new exposure in paper and live (``engine.live.anomalies``).

    Every check is off unless its limit is set. A triggered check halts new exposure for the rest of the
    session (reducing orders still go), optionally flattens, and records a risk event.

    Attributes
    ----------
    max_disconnected_secs : float, optional
        A venue sent nothing (market data reaching the strategy, order events) for longer (wall clock).
    max_ack_latency_ms : float, optional
        An order waited longer for the venue's first answer (accepted, rejected or filled).
    max_unexplained_balance_change : Decimal, optional
        A venue balance moved by more than this, in its currency, between two readings (every second) with
        no fill or funding settlement of that venue between them.
    balance_grace_secs : float
        Slack around those readings: a fill or settlement (paper booking, or a venue's funding instant) this
        close to the interval still explains a change.
    check_positions : bool
        Compare the node's positions at the venue (after Nautilus' reconciliation) with ours: the journal's
        fills before this session plus the strategy's own fills since.
    position_grace_secs : float
        How long a position difference must last to count (reconciliation in progress).
    max_rejects : int, optional
        This many order rejections within ``reject_window_secs``.
    reject_window_secs : float
    flatten : bool
        Also close every position of the strategy when a check triggers.
    """

    max_disconnected_secs: float | None = None
    max_ack_latency_ms: float | None = None
    max_unexplained_balance_change: Decimal | None = None
    balance_grace_secs: float = 5.0
    check_positions: bool = False
    position_grace_secs: float = 2.0
    max_rejects: int | None = None
    reject_window_secs: float = 60.0
    flatten: bool = False

    def __post_init__(self) -> None:
        for name in ("max_disconnected_secs", "max_ack_latency_ms", "reject_window_secs"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"{name}: expected > 0, was {value}")
        if self.max_unexplained_balance_change is not None and self.max_unexplained_balance_change < 0:
            raise ValueError(
                f"max_unexplained_balance_change: expected >= 0, was {self.max_unexplained_balance_change}"
            )
        for name in ("balance_grace_secs", "position_grace_secs"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}: expected >= 0, was {getattr(self, name)}")
        if self.max_rejects is not None and self.max_rejects < 1:
            raise ValueError(f"max_rejects: expected >= 1, was {self.max_rejects}")


class LiveConfig(_Config, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Optional ``[live]`` section: what paper and live nodes need beyond a backtest config.

    Attributes
    ----------
    connections : dict[str, ConnectionConfig]
        Per configured venue name; a venue without an entry is ``environment = "paper"`` with the
        adapter's default endpoints.
    state_dir : str
        Where a node writes its state (paper: the state it restarts from) and artefacts.
    flatten_on_stop : bool
        On SIGINT/SIGTERM, close every position after cancelling open orders.
    status_interval_secs : float
        Period of the status line (positions, exposure, PnL, last data age per instrument).
    metrics_port : int, optional
        Serve Prometheus metrics (``/metrics``) and health (``/healthz``) on ``metrics_host:metrics_port`` when
        set (0 picks a free port).
    metrics_host : str
        Interface of the metrics endpoint; loopback unless you mean otherwise.
    replay_speed : float
        Replay clock acceleration: 1000 replays an hour of data in 3.6 s; 0 replays as fast as the node keeps up.
    position_check_interval_secs : float
        Live: how often Nautilus reconciles open positions against the venue's position reports.
    journal_backups : int
        Backups of the node's journal kept in ``<state_dir>/<config-hash>/backups/`` (one at each start
        and one a day), newest first.
    max_data_age_secs : float, optional
        ``/healthz`` turns 503 when a stream's last event is older (replay: in replay time); None: three
        bar intervals of ``data.bar_spec``.
    max_funding_seed_age_secs : float
        A node that seeds its funding books from the catalog (live, and paper on venue data) refuses to
        start when an instrument's newest seeded settlement is older than this (default 24 h: a daily
        ``datasets update`` + ``export-catalog`` keeps every venue's clock, hourly or 8-hourly, within it).
    anomalies : AnomalyConfig, optional
        Anomaly halts (``[live.anomalies]``); none when absent.
    """

    connections: dict[str, ConnectionConfig] = msgspec.field(default_factory=dict)
    state_dir: str = "state"
    flatten_on_stop: bool = False
    status_interval_secs: float = 60.0
    metrics_port: int | None = None
    metrics_host: str = "127.0.0.1"
    replay_speed: float = 1000.0
    position_check_interval_secs: float = 60.0
    journal_backups: int = 7
    max_data_age_secs: float | None = None
    max_funding_seed_age_secs: float = 86_400.0
    anomalies: AnomalyConfig | None = None

    def __post_init__(self) -> None:
        for name in self.connections:
            if name not in VENUE_NAMES:
                raise ValueError(f"connections: expected venue names ({', '.join(VENUE_NAMES)}), was {name!r}")
        if self.status_interval_secs <= 0:
            raise ValueError(f"status_interval_secs: expected > 0, was {self.status_interval_secs}")
        if self.metrics_port is not None and not 0 <= self.metrics_port <= 65_535:
            raise ValueError(f"metrics_port: expected 0..65535, was {self.metrics_port}")
        if self.journal_backups < 1:
            raise ValueError(f"journal_backups: expected >= 1, was {self.journal_backups}")
        if self.max_data_age_secs is not None and self.max_data_age_secs <= 0:
            raise ValueError(f"max_data_age_secs: expected > 0, was {self.max_data_age_secs}")
        if self.max_funding_seed_age_secs <= 0:
            raise ValueError(
                f"max_funding_seed_age_secs: expected > 0 seconds, was {self.max_funding_seed_age_secs} "
                "(to start unseeded, set strategy.params.funding_seed = {} instead)"
            )
        if self.replay_speed < 0:
            raise ValueError(f"replay_speed: expected >= 0 (0 = as fast as possible), was {self.replay_speed}")


PAIR_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$")


class PairConfig(_Config, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One ``[[pairs]]`` entry: an independent run of the config's strategy (``engine.batch`` expands it).

    The run is the config with ``params`` merged over ``[strategy.params]`` (a table merges key by key, any
    other value replaces the base's), each venue's instruments restricted to those the merged params name
    (``"venue:SYMBOL"``; venues left with none are dropped, and ``risk.max_notional_per_order`` likewise),
    and the name ``"<config name>-<entry name>"``. It has its own accounts with the configured starting
    balances: entries share no margin, even on one venue.

    Attributes
    ----------
    name : str
        Short name of the run (letters, digits, ``_.-``; at most 40), unique in the config.
    params : dict
        The strategy params that differ from ``[strategy.params]``; each must be a parameter of the strategy.
    """

    name: str
    params: dict[str, Any]

    def __post_init__(self) -> None:
        if not PAIR_NAME.match(self.name):
            raise ValueError(f"name: expected letters, digits, '_', '.' or '-' (at most 40), was {self.name!r}")
        if not self.params:
            raise ValueError("params: expected the strategy params this run changes, was an empty table")


class RunConfig(_Config, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One backtest run.

    Attributes
    ----------
    name : str
        Label for reports.
    start, end : datetime
        UTC range ``[start, end)`` of bar close times replayed.
    venues : list[VenueConfig]
    strategy : StrategySpec
    data : DataConfig
    fill : FillConfig
    risk : RiskConfig
    trader_id : str
    live : LiveConfig, optional
        Connections and node settings for ``python -m engine.live``; ignored by backtests.
    sizing : SizingConfig, optional
        Entry sizing and the correlated exposure cap, passed to the strategy's ``sizing`` parameter.
    """

    name: str
    start: UtcDatetime
    end: UtcDatetime
    venues: list[VenueConfig]
    strategy: StrategySpec
    data: DataConfig = msgspec.field(default_factory=DataConfig)
    fill: FillConfig = msgspec.field(default_factory=FillConfig)
    risk: RiskConfig = msgspec.field(default_factory=RiskConfig)
    trader_id: str = "BACKTESTER-001"
    live: LiveConfig | None = None
    sizing: SizingConfig | None = None

    def __post_init__(self) -> None:
        if self.end <= self.start:
            raise ValueError(f"end: expected after start {self.start.isoformat()}, was {self.end.isoformat()}")
        if not self.venues:
            raise ValueError("venues: expected at least one [[venues]] table, was none")
        names = [v.name for v in self.venues]
        if len(set(names)) != len(names):
            raise ValueError(f"venues: expected each venue once (one account per venue), was {names}")
        if not re.match(r"^[A-Za-z0-9]+-[0-9]{3}$", self.trader_id):
            raise ValueError(f"trader_id: expected 'NAME-001', was {self.trader_id!r}")
        if self.live is not None:
            unknown = sorted(set(self.live.connections) - set(names))
            if unknown:
                raise ValueError(f"live.connections: expected configured venues {names}, was {unknown}")

    def venue(self, name: str) -> VenueConfig:
        """Return the venue named ``name``."""
        for venue in self.venues:
            if venue.name == name:
                return venue
        raise ConfigError(f"expected a venue named {name!r} in the config, was one of {[v.name for v in self.venues]}")


def _positive_balance(text: str) -> None:
    try:
        amount, _ = parse_money(text)
    except ValueError as exc:
        raise ValueError(f"starting_balances: {exc}") from None
    if amount <= 0:
        raise ValueError(f"starting_balances: expected a positive amount, was {text!r}")


def parse_money(text: object) -> tuple[Decimal, str]:
    """Return amount and currency of a money text: ``"100000 USDT"`` or a Nautilus ``Money``.

    Raises
    ------
    ValueError
        If the text is not a finite decimal amount followed by a currency code.
    """
    parts = str(text).split()
    if len(parts) != 2 or not CURRENCY.match(parts[1]):
        raise ValueError(f"expected '<amount> <CURRENCY>' like '10000 USDT', was {str(text)!r}")
    try:
        amount = Decimal(parts[0])
    except InvalidOperation:
        raise ValueError(f"expected a decimal amount, was {parts[0]!r} in {str(text)!r}") from None
    if not amount.is_finite():
        raise ValueError(f"expected a finite amount, was {str(text)!r}")
    return amount, parts[1]
