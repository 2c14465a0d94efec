"""Risk controls every strategy shares, in backtest, paper and live alike.

Nautilus' own risk engine already denies orders above a per-order notional, without margin, or too
fast (configured from the run config). What it lacks, and this module adds:

- exposure caps across open positions: per instrument and in total (gross, in base units at the last
  price: ``|contracts| x multiplier x price``), checked before every order *with* the orders still in flight;
- a maximum leverage per venue (the venue's gross exposure over its equity);
- a daily loss limit (calendar day, UTC) and a maximum drawdown from peak equity: a breach flattens
  every position of the strategy with ``Strategy.market_exit()`` and stops new entries (until the
  next UTC day for the daily limit, for the rest of the run for the drawdown);
- a kill switch: any message on ``KILL_SWITCH_TOPIC`` (the message bus, so it reaches a strategy in
  every environment without files) flattens and halts for the rest of the run;
- a stale-data guard: no new exposure on an instrument whose last price, or (for perps) last funding
  update, is older than a configured age.

Orders that only reduce positions are always allowed, so flattening never gets stuck behind a limit.
Rc6 cannot set the engine's ``TradingState`` from Python, so the halt lives in ``RiskGate`` and
``market_exit()`` does the flattening.

``RiskGate`` is pure (no Nautilus): it takes positions, prices and equity and answers. The
``RiskManagedStrategy`` base class feeds it from what the kernel injects (portfolio, cache, clock,
message bus), submits orders only through it, and publishes every decision as a plain dict on
``RISK_EVENTS_TOPIC``; the backtest runner records them to ``risk_events.parquet``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from decimal import ROUND_DOWN, Decimal, InvalidOperation
from typing import Any, Literal

from nautilus_trader.common import DataActor, DataActorConfig
from nautilus_trader.model import InstrumentId, OrderSide, Quantity, Venue
from nautilus_trader.trading import Strategy

from strategies.liquidation_price import (
    Book,
    LiquidationGuard,
    MaintenanceTier,
    MarginMode,
    OpenLeg,
    flat_tiers,
    tiers_from_mapping,
)
from strategies.positions import OpenPrices

RISK_EVENTS_TOPIC = "carrylab.risk.events"
KILL_SWITCH_TOPIC = "carrylab.risk.kill_switch"
# Published by a paper node once funding it settled is booked into the sandbox account: the balances
# then changed outside a fill, so a strategy re-reads them. A backtest settles funding into the account
# itself and publishes nothing here; the message carries no amounts, so nothing is ever counted twice.
FUNDING_BOOKED_TOPIC = "carrylab.funding.booked"
NS_PER_SECOND = 1_000_000_000
NS_PER_DAY = 86_400 * NS_PER_SECOND
USD_LIKE = ("USD", "USDT", "USDC", "FDUSD", "BUSD", "TUSD", "DAI")

Control = Literal[
    "order",
    "halted",
    "exposure_instrument",
    "exposure_total",
    "leverage",
    "stale_price",
    "stale_funding",
    "daily_loss",
    "drawdown",
    "kill_switch",
    "nautilus_risk_engine",
    "liquidation_distance",
]
Action = Literal["allow", "deny", "flatten", "halt", "resume", "reduce"]
# Safety default of ``RiskLimits.min_liquidation_distance_pct``: a cross-margined perp leg may be at most
# about 6.5x its venue's wallet (short: distance = (wallet / notional - MMR) / (1 + MMR)).
DEFAULT_MIN_LIQUIDATION_DISTANCE_PCT = Decimal(15)


class RiskConfigError(ValueError):
    """A risk limit is unknown, mistyped or out of range."""


@dataclass(frozen=True, slots=True)
class RiskLimits:
    """The limits a strategy runs under; every one is optional (None = no limit).

    Attributes
    ----------
    max_total_exposure_usd : Decimal, optional
        Gross exposure over all the strategy's instruments, at the last price, USD stablecoins at par.
    max_instrument_exposure_usd : Decimal, optional
        Gross exposure on any one instrument.
    max_leverage : dict[str, Decimal]
        Nautilus venue name (``BINANCE``) -> maximum gross exposure / venue equity.
    daily_loss_limit_usd : Decimal, optional
        Loss from the equity at the start of the UTC day that flattens and halts until the next day.
    max_drawdown_pct : Decimal, optional
        Fall from peak equity, in percent, that flattens and halts for the rest of the run.
    max_price_age_secs, max_funding_age_secs : int, optional
        No new exposure when the instrument's last price (bar or mark) or funding update is older.
    min_liquidation_distance_pct : Decimal, optional
        Smallest distance, in percent of the mark, between a perp leg's liquidation price and the mark:
        new exposure is cut to the largest size that keeps it (or refused), an open leg the mark moved
        closer is reduced (``strategies.liquidation_price``). On by default
        (``DEFAULT_MIN_LIQUIDATION_DISTANCE_PCT``); 0 in a config turns it off.
    margin_mode : {"cross", "isolated"}
        How the venue margins a perp leg: with the venue's whole wallet (Nautilus' margin account) or with
        its own ``notional / isolated_leverage``.
    isolated_leverage : Decimal
        Leverage of an isolated leg.
    margin_tiers : dict[str, tuple[MaintenanceTier, ...]]
        Instrument id (``BTCUSDT-PERP.BINANCE``) -> maintenance brackets, built by ``engine.loading`` from the
        store's ``margin_tiers``; a perp without an entry uses its instrument's flat ``margin_maint``.
    """

    max_total_exposure_usd: Decimal | None = None
    max_instrument_exposure_usd: Decimal | None = None
    max_leverage: dict[str, Decimal] = field(default_factory=dict)
    daily_loss_limit_usd: Decimal | None = None
    max_drawdown_pct: Decimal | None = None
    max_price_age_secs: int | None = None
    max_funding_age_secs: int | None = None
    min_liquidation_distance_pct: Decimal | None = DEFAULT_MIN_LIQUIDATION_DISTANCE_PCT
    margin_mode: MarginMode = "cross"
    isolated_leverage: Decimal = Decimal(1)
    margin_tiers: dict[str, tuple[MaintenanceTier, ...]] = field(default_factory=dict)

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any] | None) -> RiskLimits:
        """Return limits from a config table (``[strategy.params.risk]``), values as numbers or decimal text.

        Raises
        ------
        RiskConfigError
            If a key is unknown or a value is not a positive number.
        """
        if not raw:
            return cls()
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(raw) - known)
        if unknown:
            raise RiskConfigError(f"risk: unknown limit {unknown[0]!r}, expected one of {sorted(known)}")
        values: dict[str, Any] = {}
        for key, value in raw.items():
            if key == "max_leverage":
                if not isinstance(value, Mapping):
                    raise RiskConfigError(f"risk.max_leverage: expected a table venue -> leverage, was {value!r}")
                values[key] = {str(v).upper(): _positive(f"risk.max_leverage.{v}", x) for v, x in value.items()}
            elif key.endswith("_secs"):
                values[key] = int(_positive(f"risk.{key}", value))
            elif key in ("min_liquidation_distance_pct", "margin_mode", "margin_tiers"):
                values[key] = _liquidation_limit(key, value)
            else:
                values[key] = _positive(f"risk.{key}", value)
        return cls(**values)


def _liquidation_limit(key: str, value: Any) -> Any:
    if key == "margin_mode":
        if value not in ("cross", "isolated"):
            raise RiskConfigError(f"risk.margin_mode: expected 'cross' or 'isolated', was {value!r}")
        return value
    if key == "margin_tiers":
        if not isinstance(value, Mapping):
            raise RiskConfigError(f"risk.margin_tiers: expected a table instrument id -> brackets, was {value!r}")
        try:
            return {str(i): tiers_from_mapping(rows, where=f"risk.margin_tiers.{i}") for i, rows in value.items()}
        except ValueError as exc:
            raise RiskConfigError(str(exc)) from None
    if not isinstance(value, bool) and isinstance(value, int | float | str | Decimal) and _is_zero(value):
        return None  # the safety default switched off explicitly
    return _positive(f"risk.{key}", value)


def _is_zero(value: int | float | str | Decimal) -> bool:
    try:
        return Decimal(str(value)) == 0
    except InvalidOperation:
        return False


def _positive(name: str, value: Any) -> Decimal:
    try:
        result = Decimal(str(value))
    except InvalidOperation:
        raise RiskConfigError(f"{name}: expected a positive number, was {value!r}") from None
    if not result.is_finite() or result <= 0:
        raise RiskConfigError(f"{name}: expected a positive number, was {value!r}")
    return result


@dataclass(frozen=True, slots=True)
class OrderIntent:
    """An order the strategy wants to send: signed quantity (+ buy, - sell) at the price it expects.

    The quantity is in the instrument's own units, as Nautilus orders are: base units for spot,
    contracts for perps (one contract = ``multiplier`` base units).
    """

    instrument_id: str
    venue: str
    quantity: Decimal
    price: Decimal


@dataclass(frozen=True, slots=True)
class RiskEvent:
    """One decision of the risk controls, as recorded in ``risk_events.parquet``."""

    ts: int
    strategy_id: str
    control: Control
    action: Action
    instrument_id: str
    value: str
    limit: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        """Return the event as a plain dict (what is published on the message bus)."""
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer to a set of orders: all allowed, or all denied with the first reason."""

    allowed: bool
    control: Control
    reason: str
    value: Decimal = Decimal(0)
    limit: Decimal = Decimal(0)
    instrument_id: str = ""


def lot_quantity(instrument: Any, quantity: Decimal) -> Quantity:
    """Return ``|quantity|`` rounded down to the instrument's lot (``size_increment``), in exact decimals.

    ``Instrument.make_qty`` takes a float in rc6: a decimal with more digits than a float holds can
    land on the next lot that way (``make_qty(float(Decimal("0.99999999999999999")), round_down=True)``
    is 1.000, not 0.999).
    """
    lot: Decimal = instrument.size_increment.as_decimal()
    lots = (abs(quantity) / lot).to_integral_value(rounding=ROUND_DOWN)
    return Quantity.from_decimal_dp(lots * lot, instrument.size_precision)


def _reduces(position: Decimal, quantity: Decimal) -> bool:
    after = position + quantity
    return abs(after) < abs(position) and (after == 0 or (after > 0) == (position > 0))


class RiskGate:
    """The state of the controls of one strategy: halts, peaks, data ages. No Nautilus inside.

    Parameters
    ----------
    limits : RiskLimits
    """

    def __init__(self, limits: RiskLimits) -> None:
        self.limits = limits
        self.halted_reason: str | None = None
        self.halted_until_ns: int | None = None  # None with a reason: halted for good
        self.peak_equity: Decimal | None = None
        self.day: int | None = None
        self.day_start_equity: Decimal | None = None
        self.price_ts: dict[str, int] = {}
        self.funding_ts: dict[str, int] = {}
        # update_is_noop's floats of (peak, day start, limits), rebuilt when one of them is replaced.
        self._floats: tuple[Any, ...] = (None, None, None, 0.0, None, None, None)

    @property
    def halted(self) -> bool:
        """Whether new exposure is refused."""
        return self.halted_reason is not None

    def observe_price(self, instrument_id: str, ts_ns: int) -> None:
        """Record that a price of ``instrument_id`` was seen at ``ts_ns``."""
        self.price_ts[instrument_id] = max(ts_ns, self.price_ts.get(instrument_id, ts_ns))

    def observe_funding(self, instrument_id: str, ts_ns: int) -> None:
        """Record that a funding update of ``instrument_id`` was seen at ``ts_ns``."""
        self.funding_ts[instrument_id] = max(ts_ns, self.funding_ts.get(instrument_id, ts_ns))

    def check(
        self,
        intents: Sequence[OrderIntent],
        *,
        positions: Mapping[str, Decimal],
        prices: Mapping[str, Decimal],
        equity_by_venue: Mapping[str, Decimal],
        now_ns: int,
        funding_instruments: Iterable[str] = (),
        multipliers: Mapping[str, Decimal] | None = None,
    ) -> Decision:
        """Return whether ``intents`` may all be sent, given positions (in flight included) and prices.

        Orders that only reduce positions are always allowed. Otherwise, in order: the halt, stale
        prices and funding, per-instrument exposure, total exposure, leverage per venue. A limit is
        only enforced against orders that increase the measured quantity, so a position pushed over
        a cap by price moves can still be reduced.

        Positions and intents are in the instruments' units; ``multipliers`` (base units per contract,
        1 for an instrument it does not name) turn them into base units: exposure is
        ``|quantity| x multiplier x price``.
        """
        if all(_reduces(positions.get(i.instrument_id, Decimal(0)), i.quantity) for i in intents):
            return Decision(True, "order", "reduces positions only")
        if self.halted:
            return Decision(False, "halted", f"new exposure refused: {self.halted_reason}")
        stale = self._stale(intents, now_ns, set(funding_instruments))
        if stale is not None:
            return stale
        after = dict(positions)
        for intent in intents:
            after[intent.instrument_id] = after.get(intent.instrument_id, Decimal(0)) + intent.quantity
        all_prices = {**prices, **{i.instrument_id: i.price for i in intents}}
        contract_sizes = multipliers or {}

        def exposure(book: Mapping[str, Decimal], instrument_id: str) -> Decimal:
            base = abs(book.get(instrument_id, Decimal(0))) * contract_sizes.get(instrument_id, Decimal(1))
            return base * all_prices.get(instrument_id, Decimal(0))

        capped = self._caps(intents, positions, after, exposure)
        if capped is not None:
            return capped
        return self._leverage(intents, positions, after, exposure, equity_by_venue)

    def _caps(
        self,
        intents: Sequence[OrderIntent],
        positions: Mapping[str, Decimal],
        after: Mapping[str, Decimal],
        exposure: Callable[[Mapping[str, Decimal], str], Decimal],
    ) -> Decision | None:
        cap = self.limits.max_instrument_exposure_usd
        if cap is not None:
            for instrument_id in sorted({i.instrument_id for i in intents}):
                new, old = exposure(after, instrument_id), exposure(positions, instrument_id)
                if new > cap and new > old:
                    reason = f"{instrument_id} exposure would be {new:.2f} USD, cap {cap}"
                    return Decision(False, "exposure_instrument", reason, new, cap, instrument_id)
        cap = self.limits.max_total_exposure_usd
        if cap is not None:
            new = sum((exposure(after, i) for i in after), Decimal(0))
            old = sum((exposure(positions, i) for i in positions), Decimal(0))
            if new > cap and new > old:
                return Decision(False, "exposure_total", f"total exposure would be {new:.2f} USD, cap {cap}", new, cap)
        return None

    def _stale(self, intents: Sequence[OrderIntent], now_ns: int, funding: set[str]) -> Decision | None:
        for intent in intents:
            instrument_id = intent.instrument_id
            for control, limit, seen in (
                ("stale_price", self.limits.max_price_age_secs, self.price_ts.get(instrument_id)),
                (
                    "stale_funding",
                    self.limits.max_funding_age_secs if instrument_id in funding else None,
                    self.funding_ts.get(instrument_id),
                ),
            ):
                if limit is None:
                    continue
                age = None if seen is None else Decimal(now_ns - seen) / NS_PER_SECOND
                if age is None or age > limit:
                    what = "never seen" if age is None else f"{age:.0f} s old"
                    kind = "price" if control == "stale_price" else "funding update"
                    return Decision(
                        False,
                        control,  # type: ignore[arg-type]
                        f"last {kind} of {instrument_id} {what}, limit {limit} s",
                        age if age is not None else Decimal(-1),
                        Decimal(limit),
                        instrument_id,
                    )
        return None

    def _leverage(
        self,
        intents: Sequence[OrderIntent],
        positions: Mapping[str, Decimal],
        after: Mapping[str, Decimal],
        exposure: Callable[[Mapping[str, Decimal], str], Decimal],
        equity_by_venue: Mapping[str, Decimal],
    ) -> Decision:
        for venue in sorted({i.venue for i in intents}):
            limit = self.limits.max_leverage.get(venue)
            if limit is None:
                continue
            members = [i for i in after if i.rsplit(".", 1)[-1] == venue]
            new = sum((exposure(after, i) for i in members), Decimal(0))
            old = sum((exposure(positions, i) for i in members), Decimal(0))
            equity = equity_by_venue.get(venue, Decimal(0))
            if new <= old:
                continue
            if equity <= 0:
                return Decision(False, "leverage", f"{venue} equity is {equity}, no leverage allowed", new, limit)
            leverage = new / equity
            if leverage > limit:
                return Decision(
                    False, "leverage", f"{venue} leverage would be {leverage:.2f}x, limit {limit}x", leverage, limit
                )
        return Decision(True, "order", "within limits")

    def update_equity(self, now_ns: int, equity: Decimal) -> list[Decision]:
        """Track peak and day-start equity; return the breaches (and resumes) this update causes.

        A ``daily_loss`` breach halts until the next UTC midnight; ``drawdown`` halts for good.
        """
        decisions: list[Decision] = []
        day = now_ns // NS_PER_DAY
        if day != self.day:
            self.day, self.day_start_equity = day, equity
            if self.halted_until_ns is not None and now_ns >= self.halted_until_ns:
                decisions.append(Decision(True, "daily_loss", f"new UTC day: resuming after {self.halted_reason}"))
                self.halted_reason, self.halted_until_ns = None, None
        peak = self.track_peak(equity)
        limit = self.limits.max_drawdown_pct
        if limit is not None and peak > 0 and (self.halted_until_ns is not None or not self.halted):
            drawdown = (peak - equity) / peak * 100
            if drawdown >= limit:
                reason = f"drawdown {drawdown:.2f}% from peak {peak:.2f} >= {limit}%"
                self.halted_reason, self.halted_until_ns = reason, None
                decisions.append(Decision(False, "drawdown", reason, drawdown, limit))
                return decisions
        loss_limit = self.limits.daily_loss_limit_usd
        if loss_limit is not None and not self.halted and self.day_start_equity is not None:
            loss = self.day_start_equity - equity
            if loss >= loss_limit:
                reason = f"daily loss {loss:.2f} USD >= {loss_limit} since the UTC day began"
                self.halted_reason, self.halted_until_ns = reason, (day + 1) * NS_PER_DAY
                decisions.append(Decision(False, "daily_loss", reason, loss, loss_limit))
        return decisions

    def update_is_noop(self, now_ns: int, equity: float, error: float) -> bool:
        """Return whether ``update_equity(now_ns, e)`` changes nothing for every ``e`` within ``equity +- error``.

        A screen in floats for a caller that can estimate the equity cheaply (``error`` bounds the
        estimate's error): True only when the update cannot start a day, raise the peak or reach a
        limit, so skipping it leaves every decision and every saved value as they were.
        """
        return self.screen_equity(now_ns, equity, error) == "unchanged"

    def screen_equity(self, now_ns: int, equity: float, error: float) -> Literal["update", "peak", "unchanged"]:
        """Return what ``update_equity(now_ns, e)`` may do for some ``e`` within ``equity +- error``.

        ``"update"``: it may start a day, halt or resume (the caller must run it); ``"peak"``: at most
        raise the peak (``track_peak`` with the exact equity is then all it would do); ``"unchanged"``:
        nothing. Floats of the Decimal peak, day start and limits are off by ~1e-16 of their size: the
        thresholds are widened by 1e-9 of the magnitudes.
        """
        peak = self.peak_equity
        if peak is None or now_ns // NS_PER_DAY != self.day:
            return "update"
        peak_value, day_start, drawdown_pct, loss_limit = self._float_terms(peak)
        slack = error + 1e-9 * (abs(equity) + abs(peak_value))
        low = equity - slack
        # A new peak cannot breach the drawdown (0 % from itself); a lower equity is measured from this peak.
        if drawdown_pct is not None and peak_value > 0 and (self.halted_until_ns is not None or not self.halted):
            if (peak_value - low) * 100 >= drawdown_pct * peak_value * (1 - 1e-9):
                return "update"
        if loss_limit is not None and not self.halted and day_start is not None:
            if day_start - low >= loss_limit - slack:
                return "update"
        return "peak" if equity + slack >= peak_value else "unchanged"

    def track_peak(self, equity: Decimal) -> Decimal:
        """Raise the peak to ``equity`` if it is higher (all ``screen_equity``'s ``"peak"`` allows); return the peak."""
        peak = self.peak_equity = equity if self.peak_equity is None else max(self.peak_equity, equity)
        return peak

    def _float_terms(self, peak: Decimal) -> tuple[float, float | None, float | None, float | None]:
        known = self._floats
        if known[0] is not peak or known[1] is not self.day_start_equity or known[2] is not self.limits:
            known = self._floats = (peak, self.day_start_equity, self.limits, *_as_floats(self, peak))
        return known[3:]  # type: ignore[no-any-return]

    def kill(self, reason: str) -> Decision:
        """Halt for good: the kill switch."""
        self.halted_reason, self.halted_until_ns = f"kill switch: {reason}", None
        return Decision(False, "kill_switch", self.halted_reason)


def _as_floats(gate: RiskGate, peak: Decimal) -> tuple[float, float | None, float | None, float | None]:
    day_start, drawdown, loss = gate.day_start_equity, gate.limits.max_drawdown_pct, gate.limits.daily_loss_limit_usd
    return (
        float(peak),
        None if day_start is None else float(day_start),
        None if drawdown is None else float(drawdown),
        None if loss is None else float(loss),
    )


# (quantity, opened price, |quantity|, |quantity x opened price|) of one open position, in floats.
EstimateTerm = tuple[float, float, float, float]


def estimate_term(quantity: float, opened_price: float) -> EstimateTerm:
    """Return the ``estimate_equity`` term of a position of ``quantity`` base units opened at ``opened_price``."""
    return quantity, opened_price, abs(quantity), abs(quantity * opened_price)


def estimate_equity(base: float, terms: Sequence[EstimateTerm], prices: Sequence[float | None]) -> tuple[float, float]:
    """Return ``base + sum(quantity x (price - opened))`` in floats and a bound on its error.

    The bound is 1e-9 of the magnitudes summed (``|base|``, ``|quantity| x |price|``, ``|quantity x opened|``)
    plus 1e-9: the floats of the exact terms and the sum are good to ~1e-15 of them. A term whose price is
    None is left out (no price seen yet).
    """
    total = base
    size = abs(base)
    for (quantity, opened, magnitude, opened_magnitude), price in zip(terms, prices, strict=True):
        if price is None:
            continue
        total += quantity * (price - opened)
        size += magnitude * abs(price) + opened_magnitude
    return total, 1e-9 * size + 1e-9


@dataclass(slots=True)  # worst_bounds change as a window tracks new worst prices
class QuietWindow:
    """Decisions that change no breaker, only a peak or a worst price (``RiskManagedStrategy.quiet_window``).

    Attributes
    ----------
    until_ns : int
        First clock time outside the window (the next UTC day or funding settlement).
    versions : tuple[int, int, int]
        The strategy's holdings, balances and events versions when it was built.
    instruments : tuple[InstrumentId, ...]
        The instruments whose bar closes the window depends on (the open positions').
    price_bounds : tuple[tuple[str, float, float], ...]
        Per instrument, its id's text and the lowest and highest float of its close at which no
        liquidation trigger is near.
    worst_bounds : list[tuple[float, float]]
        Per instrument, the floats of its close that are no new worst price (``LiquidationGuard.worst_bounds``).
    terms : tuple[EstimateTerm, ...], optional
        Per instrument, its ``estimate_equity`` term; None when the equity does not depend on prices (flat).
    base : float
        The balances of ``estimate_equity``.
    """

    until_ns: int
    versions: tuple[int, int, int]
    instruments: tuple[InstrumentId, ...]
    price_bounds: tuple[tuple[str, float, float], ...]
    worst_bounds: list[tuple[float, float]]
    terms: tuple[EstimateTerm, ...] | None
    base: float = 0.0


class RiskManagedStrategy(Strategy):  # type: ignore[misc]
    """A ``Strategy`` whose orders all pass through a ``RiskGate`` and whose decisions are published.

    Subclasses call ``start_risk`` in ``on_start``, ``observe_bar``/``observe_mark``/``observe_funding``
    in their data handlers, ``check_equity`` once per decision, and send orders with ``submit_checked``.
    ``on_risk_flatten`` tells them a breaker or the kill switch flattened everything.
    """

    def __init__(self, config: Any, *, limits: RiskLimits) -> None:
        super().__init__(config)
        self.gate = RiskGate(limits)
        self.risk_events: list[RiskEvent] = []
        self._last_price: dict[InstrumentId, Decimal] = {}
        # Bar closes not converted to Decimal yet: most bars change no decision, so ``last_price``
        # converts only when read. Keyed by the instrument id's text (``InstrumentId.value``), as
        # ``_seen`` is: a str hashes in Python, an InstrumentId calls into Rust for every lookup.
        self._closes: dict[str, Any] = {}
        self.pending: dict[str, tuple[InstrumentId, Decimal]] = {}
        self.open_prices = OpenPrices()
        self.risk_instruments: list[InstrumentId] = []
        self.funding_instruments: set[str] = set()
        # Reading an account clones its event history (slower as a run goes on): balances are cached
        # and re-read only after a fill, a funding settlement instant or a paper funding booking
        # (``FUNDING_BOOKED_TOPIC``), the only things that move them.
        self._balances: dict[str, Decimal] | None = None
        self._settlements: set[int] = set()
        self._next_settlement_ns: int | None = None
        self._multipliers: dict[InstrumentId, Decimal] = {}
        # Positions move only on this strategy's fills (one strategy per instrument, as in every run):
        # the net positions and the open positions' exact terms are cached until the next fill or
        # position event, the equity breakers are fed again only when their inputs changed.
        self._net: dict[InstrumentId, Decimal] = {}
        self._open: list[tuple[InstrumentId, Decimal, Decimal, Decimal, str]] | None = None
        self._equity_key: tuple[Any, ...] | None = None
        self._flat_key: tuple[Any, ...] | None = None
        self._balances_version = 0
        self._estimate_terms: tuple[object, list[InstrumentId], list[EstimateTerm]] = (None, [], [])
        self._estimate_base: tuple[int, float] = (-1, 0.0)
        self._ids: dict[InstrumentId, str] = {}
        # Price times seen since the gate last looked (``_sync_prices``): a bar or mark is one dict store.
        self._seen: dict[str, int] = {}
        self._instrument_ids: dict[str, InstrumentId] = {}  # text -> id of the instruments with a close
        # Bumped whenever ``holding`` may change (a fill, a position event, an order sent or lost).
        self.holdings_version = 0
        # Bumped by what else ends a ``quiet_window``: a funding update, a paper funding booking, a restore.
        self._events_version = 0
        self.liquidation = LiquidationGuard(
            limits.margin_tiers,
            min_distance_pct=limits.min_liquidation_distance_pct,
            margin_mode=limits.margin_mode,
            isolated_leverage=limits.isolated_leverage,
        )
        self._liquidation_version: int | None = None  # balances version of the guard's last refresh
        self._liquidation_ids: list[tuple[InstrumentId, str]] = []  # the open legs at that refresh

    @property
    def last_price(self) -> dict[InstrumentId, Decimal]:
        """The last bar close of each instrument (the price orders fill at, and the exposure price)."""
        if self._closes:
            prices, ids = self._last_price, self._instrument_ids
            for text, close in self._closes.items():
                instrument_id = ids.get(text)
                if instrument_id is None:
                    instrument_id = ids[text] = InstrumentId.from_str(text)
                prices[instrument_id] = close.as_decimal()
            self._closes.clear()
        return self._last_price

    @last_price.setter
    def last_price(self, prices: dict[InstrumentId, Decimal]) -> None:
        self._closes.clear()
        self._last_price = prices

    def start_risk(self, instruments: Sequence[InstrumentId], *, funding: Sequence[InstrumentId] = ()) -> None:
        """Declare the instruments under control; listen to the kill switch and to paper funding bookings."""
        self.risk_instruments = list(instruments)
        self.funding_instruments = {str(i) for i in funding}
        self.subscribe_topic(KILL_SWITCH_TOPIC, self._on_kill_switch)
        self.subscribe_topic(FUNDING_BOOKED_TOPIC, self._on_funding_booked)
        for instrument_id in self.risk_instruments:
            instrument = self.cache.instrument(instrument_id)
            key = str(instrument_id)
            if instrument is None or key in self.liquidation.tiers or instrument.is_inverse:
                continue
            if instrument.margin_maint > 0:  # a perp without published tiers: its flat maintenance rate
                self.liquidation.tiers[key] = flat_tiers(instrument.margin_maint)

    def observe_bar(self, instrument_id: InstrumentId, close: Decimal, ts_ns: int) -> None:
        """Record a bar close (the price orders fill at, and the exposure price)."""
        text = self._id_text(instrument_id)
        self._closes.pop(text, None)
        self._last_price[instrument_id] = close
        self.observe_mark(text, ts_ns)

    def observe_bar_close(self, instrument: str, close: Any, ts_ns: int) -> None:
        """Record a bar close given as a Nautilus ``Price``, converted to ``Decimal`` only when read.

        ``instrument`` is the instrument id's text (``bar.bar_type.instrument_id.value``).
        """
        self._closes[instrument] = close
        seen = self._seen
        if seen.get(instrument, ts_ns) <= ts_ns:
            seen[instrument] = ts_ns

    def _sync_prices(self) -> None:
        for text, ts_ns in self._seen.items():
            self.gate.observe_price(text, ts_ns)
        self._seen.clear()

    def _id_text(self, instrument_id: InstrumentId) -> str:
        text = self._ids.get(instrument_id)
        if text is None:
            text = self._ids[instrument_id] = str(instrument_id)
        return text

    def observe_mark(self, instrument: str, ts_ns: int) -> None:
        """Record that a price of ``instrument`` (the id's text) arrived at ``ts_ns``: a mark keeps the price fresh."""
        seen = self._seen
        if seen.get(instrument, ts_ns) <= ts_ns:
            seen[instrument] = ts_ns

    def observe_funding(self, instrument_id: InstrumentId, ts_ns: int, next_funding_ns: int | None = None) -> None:
        """Record that a funding update arrived (and when it settles, which moves the balance)."""
        self._events_version += 1
        self.gate.observe_funding(str(instrument_id), ts_ns)
        if next_funding_ns is not None:
            self._settlements.add(next_funding_ns)
            if self._next_settlement_ns is None or next_funding_ns < self._next_settlement_ns:
                self._next_settlement_ns = next_funding_ns

    def holding(self, instrument_id: InstrumentId) -> Decimal:
        """Return the net position plus the orders in flight (signed, in the instrument's units: perp contracts)."""
        net = self._net.get(instrument_id)
        if net is None:
            net = self._net[instrument_id] = self.portfolio.net_position(instrument_id)
        return net + sum((q for i, q in self.pending.values() if i == instrument_id), Decimal(0))

    def multiplier(self, instrument_id: InstrumentId) -> Decimal:
        """Return the base units in one unit of the instrument (a perp's contract size; 1 for spot).

        1 for an instrument not in the cache (nothing can be sent on it either).
        """
        known = self._multipliers.get(instrument_id)
        if known is not None:
            return known
        instrument = self.cache.instrument(instrument_id)
        if instrument is None:
            return Decimal(1)
        multiplier: Decimal = instrument.multiplier.as_decimal()
        self._multipliers[instrument_id] = multiplier
        return multiplier

    def sized_notional(
        self,
        sizing: Any,
        notional: Decimal,
        *,
        closes: Sequence[Decimal],
        bar_interval_ns: int,
        added: Callable[[Decimal], dict[str, Decimal]],
    ) -> Decimal:
        """Return an entry's notional: ``sizing``'s (``strategies.sizing.Sizing``), scaled to the correlated cap.

        ``added`` maps the sized notional to the exposure the entry adds, per instrument id (its text).
        """
        if sizing.mode == "fixed_notional" and sizing.max_correlated_exposure_usd is None:
            return notional
        equity = sum(self.equity_by_venue().values(), Decimal(0)) if sizing.mode == "kelly" else Decimal(0)
        sized: Decimal = sizing.entry_notional(notional, equity=equity, closes=closes, bar_interval_ns=bar_interval_ns)
        prices = self.last_price
        current = {
            str(i): abs(self.holding(i) * self.multiplier(i)) * prices.get(i, Decimal(0)) for i in self.risk_instruments
        }
        scale: Decimal = sizing.entry_scale(current, added(sized))
        return sized * scale

    def equity_by_venue(self) -> dict[str, Decimal]:
        """Return each venue's USD-stablecoin balance plus the unrealised PnL of the strategy's positions there.

        The balance is the venue account's, funding included: a backtest's engine settles funding into
        it, a paper node books its own settlements into the sandbox account (``engine.live.funding_account``).
        """
        result = dict(self._venue_balances())
        open_positions = self._open_positions()
        if not open_positions:
            return result
        prices = self.last_price
        for instrument_id, signed, opened, multiplier, venue in open_positions:
            price = prices.get(instrument_id)
            if price is None:
                continue
            result[venue] = result.get(venue, Decimal(0)) + signed * (price - opened) * multiplier
        return result

    def _flat(self) -> bool:
        return not self._open_positions() and self._balances is not None

    def _open_positions(self) -> list[tuple[InstrumentId, Decimal, Decimal, Decimal, str]]:
        if self._open is None:
            self._open = []
            for position in self.cache.positions_open(strategy_id=self.strategy_id):
                quantity = position.quantity.as_decimal()
                signed = -quantity if position.is_short else quantity
                # Nautilus keeps the average open price as an f64: rebuild it exactly from the fills.
                opened = self.open_prices.of(position)
                multiplier = position.multiplier.as_decimal()
                instrument_id = position.instrument_id
                self._open.append((instrument_id, signed, opened, multiplier, instrument_id.venue.value))
        return self._open

    def _equity_estimate(self) -> tuple[float, float]:
        # equity_by_venue in floats and a bound on its error (``estimate_equity``); the terms are
        # rebuilt when the open positions are.
        ids, terms = self._estimate_inputs()
        return estimate_equity(self._estimate_base[1], terms, self._estimate_prices(ids))

    def _estimate_prices(self, ids: Sequence[InstrumentId]) -> list[float | None]:
        # The float of each instrument's last close: from its Nautilus price while not converted yet.
        closes, prices = self._closes, self._last_price
        floats: list[float | None] = []
        for instrument_id in ids:
            close = closes.get(self._id_text(instrument_id))
            if close is not None:
                floats.append(close.as_double())
            else:
                floats.append(float(prices[instrument_id]) if instrument_id in prices else None)
        return floats

    def _estimate_inputs(self) -> tuple[list[InstrumentId], list[EstimateTerm]]:
        open_positions = self._open_positions()
        if self._estimate_terms[0] is not open_positions:
            ids, terms = [], []
            for instrument_id, signed, opened_at, multiplier, _ in open_positions:
                ids.append(instrument_id)
                terms.append(estimate_term(float(signed * multiplier), float(opened_at)))
            self._estimate_terms = (open_positions, ids, terms)
        if self._estimate_base[0] != self._balances_version:
            self._estimate_base = (self._balances_version, float(sum((self._balances or {}).values(), Decimal(0))))
        return self._estimate_terms[1], self._estimate_terms[2]

    def quiet_window(self, *, before_ns: int | None = None) -> QuietWindow | None:
        """Return when and at which prices ``check_equity`` and ``check_liquidation`` would change nothing but extremes.

        Called after a decision ran both: a later decision for which ``is_quiet`` holds (same UTC day,
        no funding settlement, update, fill, order or balance since, the equity estimate far from every
        breaker threshold by ``RiskGate.screen_equity``, no leg near its liquidation trigger by
        ``LiquidationGuard.quiet_bounds``) would find nothing to update but a new peak equity or a new
        worst price, which ``is_quiet`` tracks exactly. None when no such window is known (halted, a leg's
        close not seen, ...). ``before_ns`` ends the window earlier (the caller's own next change, such
        as a funding book's settlement).
        """
        if self.gate.halted or self._balances is None:
            return None
        now = self.clock.timestamp_ns()
        until = (now // NS_PER_DAY + 1) * NS_PER_DAY
        for settles in (self._next_settlement_ns, before_ns):
            if settles is not None:
                until = min(until, settles)
        ids, terms = self._estimate_inputs()
        if now >= until or None in self._estimate_prices(ids):
            return None
        bounds = self._liquidation_bounds(ids)
        if bounds is None:
            return None
        versions, gate, guard = self._versions(), self.gate, self.liquidation
        texts = [self._id_text(i) for i in ids]
        worst = [guard.worst_bounds(text) for text in texts]
        closes = tuple((text, low, high) for text, (low, high) in zip(texts, bounds, strict=True))
        if self._flat_key == (now // NS_PER_DAY, self._balances_version, gate.halted_reason, gate.halted_until_ns):
            return QuietWindow(until, versions, tuple(ids), closes, worst, None)  # flat: check_equity returns at once
        return QuietWindow(until, versions, tuple(ids), closes, worst, tuple(terms), self._estimate_base[1])

    def _liquidation_bounds(self, ids: Sequence[InstrumentId]) -> tuple[tuple[float, float], ...] | None:
        # Per open position, the closes at which check_liquidation crosses no trigger; None if it would refresh.
        guard = self.liquidation
        unbounded = (-math.inf, math.inf)
        if not guard.tiers:
            return tuple(unbounded for _ in ids)
        if not ids:
            return None if guard.watches else ()
        if self._liquidation_version != self._balances_version:
            return None
        bounds = []
        for instrument_id in ids:
            quiet = guard.quiet_bounds(self._id_text(instrument_id))
            if quiet is None:
                return None
            bounds.append(quiet)
        return tuple(bounds)

    def is_quiet(self, window: QuietWindow) -> bool:
        """Return whether a decision now lies inside ``window`` (``quiet_window``): nothing to check or record.

        A new worst price of a watched leg and a new peak equity are tracked here, exactly as
        ``check_liquidation`` and ``check_equity`` would (the exact price, the exact equity).
        """
        now = self.clock.timestamp_ns()
        if now >= window.until_ns or window.versions != (
            self.holdings_version,
            self._balances_version,
            self._events_version,
        ):
            return False
        closes = self._closes
        prices = []
        for text, low, high in window.price_bounds:
            close = closes.get(text)
            if close is None:
                return False
            price = close.as_double()
            if not low <= price <= high:
                return False
            prices.append(price)
        screened = "unchanged"
        if window.terms is not None:
            equity, error = estimate_equity(window.base, window.terms, prices)
            screened = self.gate.screen_equity(now, equity, error)
            if screened == "update":
                return False
        # No breaker can trip now, so the full decision would reach check_liquidation: observing here is the same.
        if not self._track_worst(window, prices):
            return False
        if screened == "peak":
            self.gate.track_peak(sum(self.equity_by_venue().values(), Decimal(0)))
        return True

    def _track_worst(self, window: QuietWindow, prices: Sequence[float]) -> bool:
        # Observe each leg whose close may be a new worst price; False if one crossed its trigger.
        worst = window.worst_bounds
        for index, (low, high) in enumerate(worst):
            if not low <= prices[index] <= high:
                instrument_id = window.instruments[index]
                text = self._id_text(instrument_id)
                if self._observe_worst([(instrument_id, text)]):
                    return False
                worst[index] = self.liquidation.worst_bounds(text)
        return True

    def _observe_worst(self, legs: Sequence[tuple[InstrumentId, str]]) -> list[str]:
        # check_liquidation's observation: the exact close of each leg the float screen flags; the legs crossed.
        guard, closes, last = self.liquidation, self._closes, self._last_price
        exact: dict[str, Decimal] = {}
        for instrument_id, text in legs:
            close = closes.get(text)
            if close is not None:
                if guard.screen(text, close.as_double()):
                    exact[text] = close.as_decimal()
            elif instrument_id in last and guard.screen(text, float(last[instrument_id])):
                exact[text] = last[instrument_id]
        return guard.observe(exact) if exact else []

    def _versions(self) -> tuple[int, int, int]:
        return self.holdings_version, self._balances_version, self._events_version

    def _venue_balances(self) -> dict[str, Decimal]:
        now = self.clock.timestamp_ns()
        if self._next_settlement_ns is not None and self._next_settlement_ns <= now:
            self._settlements = {t for t in self._settlements if t > now}
            self._next_settlement_ns = min(self._settlements, default=None)
            self._balances = None
        if self._balances is None:
            self._balances_version += 1
            self._balances = {}
            for venue in sorted({i.venue.value for i in self.risk_instruments}):
                # The cache's copy of the account: the portfolio's costs ~5x more (each clones the event
                # history, benchmarks/fill_growth.py).
                account = self.cache.account_for_venue(Venue(venue))
                total = Decimal(0)
                if account is not None:
                    for currency, money in account.balances_total().items():
                        if currency.code in USD_LIKE:
                            total += money.as_decimal()
                self._balances[venue] = total
        return self._balances

    def check_equity(self) -> None:
        """Feed the breakers the current equity; on a breach, flatten with ``market_exit()``."""
        now = self.clock.timestamp_ns()
        gate = self.gate
        settling = self._next_settlement_ns is not None and self._next_settlement_ns <= now
        if not settling and self._balances is not None and self._flat_key is not None:
            # Flat, balances unchanged: the equity is the same as at the last check.
            if self._flat_key == (now // NS_PER_DAY, self._balances_version, gate.halted_reason, gate.halted_until_ns):
                return
        if not settling and self._balances is not None:
            estimate, error = self._equity_estimate()
            if gate.update_is_noop(now, estimate, error):
                return  # in a position, far from a new peak and from every limit: nothing to update
        equity = sum(self.equity_by_venue().values(), Decimal(0))
        # The same equity on the same UTC day from the same halt state changes nothing: skip the update.
        if self._equity_key == (now // NS_PER_DAY, equity, gate.halted_reason, gate.halted_until_ns):
            self._flat_key = (
                (now // NS_PER_DAY, self._balances_version, *self._equity_key[2:]) if self._flat() else None
            )
            return
        for decision in gate.update_equity(now, equity):
            if decision.allowed:
                self._record(now, decision, "resume")
                continue
            self._record(now, decision, "halt")
            self._flatten(now, decision)
        self._equity_key = (now // NS_PER_DAY, equity, gate.halted_reason, gate.halted_until_ns)
        self._flat_key = (now // NS_PER_DAY, self._balances_version, *self._equity_key[2:]) if self._flat() else None

    def submit_checked(self, orders: Sequence[tuple[InstrumentId, Decimal]]) -> bool:
        """Submit market orders ``(instrument, signed quantity)`` if the gate allows them all; else none.

        Quantities are in the instruments' units (contracts for perps), rounded down to each
        instrument's lot in exact decimals; returns whether anything was sent.
        """
        now = self.clock.timestamp_ns()
        sized: list[tuple[Any, Quantity, Decimal]] = []
        for instrument_id, signed in orders:
            instrument = self.cache.instrument(instrument_id)
            if instrument is None:
                self.log.error(f"risk: no instrument {instrument_id} in the cache, order not sent")
                continue
            quantity = lot_quantity(instrument, signed)
            if quantity.as_decimal() > 0:
                sized.append((instrument, quantity, quantity.as_decimal() if signed > 0 else -quantity.as_decimal()))
        if not sized:
            return False
        intents = [
            OrderIntent(str(inst.id), inst.id.venue.value, qty, self.last_price.get(inst.id, Decimal(0)))
            for inst, _, qty in sized
        ]
        self._sync_prices()
        decision = self.gate.check(
            intents,
            positions={str(i.id): self.holding(i.id) for i, _, _ in sized}
            | {str(i): self.holding(i) for i in self.risk_instruments},
            prices={str(i): p for i, p in self.last_price.items()},
            equity_by_venue=self.equity_by_venue() if self.gate.limits.max_leverage else {},
            now_ns=now,
            funding_instruments=self.funding_instruments,
            multipliers={str(i): self.multiplier(i) for i in [*self.risk_instruments, *(s.id for s, _, _ in sized)]},
        )
        if decision.allowed:
            sized, decision = self._liquidation_check(now, sized, decision)
            intents = [
                OrderIntent(str(i.id), i.id.venue.value, q, self.last_price.get(i.id, Decimal(0))) for i, _, q in sized
            ]
        described = ", ".join(f"{i.instrument_id} {i.quantity:+}" for i in intents)
        if not decision.allowed:
            self._record(now, decision, "deny", detail=f"denied [{described}]")
            return False
        self._record(now, decision, "allow", detail=f"allowed [{described}]")
        for instrument, quantity, signed in sized:
            side = OrderSide.BUY if signed > 0 else OrderSide.SELL
            order = self.order_factory.market(instrument.id, side, quantity)
            self.pending[str(order.client_order_id)] = (instrument.id, signed)
            self.holdings_version += 1
            self.submit_order(order)
        return True

    def _liquidation_check(
        self, now: int, sized: list[tuple[Any, Quantity, Decimal]], decision: Decision
    ) -> tuple[list[tuple[Any, Quantity, Decimal]], Decision]:
        scale, tight = self.liquidation_room([(i.id, q) for i, _, q in sized])
        if tight is None:
            return sized, decision
        if len(sized) > 1 or scale <= 0:
            return sized, tight
        instrument, _, signed = sized[0]
        quantity = lot_quantity(instrument, signed * scale)
        if quantity.as_decimal() <= 0:
            return sized, tight
        self._record(now, tight, "reduce", detail=f"cut {instrument.id} {signed:+} to {quantity.as_decimal()}")
        return [(instrument, quantity, quantity.as_decimal() if signed > 0 else -quantity.as_decimal())], decision

    def liquidation_room(self, orders: Sequence[tuple[InstrumentId, Decimal]]) -> tuple[Decimal, Decision | None]:
        """Return the fraction of ``orders`` that keeps every perp leg's liquidation distance, and the tightest leg.

        ``orders`` are signed, in the instruments' units. A fraction below 1 comes with a denying
        ``liquidation_distance`` decision naming the leg whose distance at the full size is the smallest;
        at 1 the decision is None. Orders that reduce a leg, and instruments without tiers, always fit.
        """
        guard = self.liquidation
        if guard.min_distance_pct is None or not guard.tiers:
            return Decimal(1), None
        scale, tight = Decimal(1), None
        for instrument_id, signed in orders:
            key = self._id_text(instrument_id)
            held = self.holding(instrument_id)
            mark = self.last_price.get(instrument_id)
            if key not in guard.tiers or not signed or not mark or _reduces(held, signed):
                continue
            legs = self._legs()
            book = Book(legs, self._venue_balances(), self._leg_prices())
            multiplier = self.multiplier(instrument_id)
            old, delta = held * multiplier, signed * multiplier
            side = 1 if old + delta > 0 else -1
            own = sum((leg.quantity * (mark - leg.entry_price) for leg in legs if leg.instrument_id == key), Decimal(0))
            safe = guard.safe_quantity(
                key, instrument_id.venue.value, side=side, own_unrealised=own, book=book, mark=mark
            )
            same_side = old != 0 and (old > 0) == (side > 0)
            fraction = min(
                Decimal(1), max(Decimal(0), (safe - abs(old) if same_side else abs(old) + safe) / abs(delta))
            )
            if fraction < scale:
                scale = fraction
                distance = guard.distance_if(
                    key, instrument_id.venue.value, quantity=old + delta, own_unrealised=own, book=book, mark=mark
                )
                reason = (
                    f"{key} liquidation price would be {distance:.2f}% from the mark {mark}, minimum "
                    f"{guard.min_distance_pct}%: {fraction:.4f} of the order keeps it"
                )
                tight = Decision(False, "liquidation_distance", reason, distance, guard.min_distance_pct, key)
        return scale, tight

    def check_liquidation(self) -> None:
        """Once per decision: reduce an open perp leg the mark brought within the minimum liquidation distance.

        The liquidation prices are recomputed only after a fill or a balance change; otherwise this is
        one comparison per open leg. ``on_liquidation_reduce`` does the reducing.
        """
        guard = self.liquidation
        if not guard.tiers:
            return
        if not self._open_positions():
            if guard.watches:
                guard.refresh(Book([], {}, {}))
            return
        self._refresh_liquidation()
        crossed = self._observe_worst(self._liquidation_ids)
        if not crossed:
            return
        book = Book(self._legs(), self._venue_balances(), self._leg_prices())
        legs, prices = book.legs, book.prices
        for key in crossed:
            leg = next(leg for leg in legs if leg.instrument_id == key)
            mark = prices[key]
            own = leg.quantity * (mark - leg.entry_price)
            side = 1 if leg.quantity > 0 else -1
            safe = guard.safe_quantity(key, leg.venue, side=side, own_unrealised=own, book=book, mark=mark)
            fraction = min(Decimal(1), max(Decimal(0), safe / abs(leg.quantity)))
            distance = guard.distances_pct(prices)[key]
            reason = (
                f"{key} liquidation price {guard.watches[key].liquidation} is {distance:.2f}% from the mark {mark}, "
                f"minimum {guard.min_distance_pct}%: reducing the position to {fraction:.4f} of it"
            )
            decision = Decision(
                False, "liquidation_distance", reason, distance, guard.min_distance_pct or Decimal(0), key
            )
            self._record(self.clock.timestamp_ns(), decision, "reduce")
            guard.disarm(key)
            self.on_liquidation_reduce(InstrumentId.from_str(key), fraction)

    def on_liquidation_reduce(self, instrument_id: InstrumentId, fraction: Decimal) -> None:
        """Cut the position on ``instrument_id`` to ``fraction`` of it, the kept part rounded down to the lot.

        Rounding what is kept (not what is cut) keeps the leg at or below the safe size, so the next bar
        does not cut again by a lot. A carry cuts both legs instead (``TwoLegCarry``).
        """
        held = self.holding(instrument_id)
        instrument = self.cache.instrument(instrument_id)
        if instrument is None:
            self.submit_checked([(instrument_id, -held * (1 - fraction))])
            return
        kept = lot_quantity(instrument, held * fraction).as_decimal()
        self.submit_checked([(instrument_id, -(held - kept) if held > 0 else -(held + kept))])

    def liquidation_distances(self) -> dict[str, Decimal]:
        """Return each open perp leg's liquidation distance at the last price, in percent (the status line)."""
        if not self.liquidation.tiers:
            return {}
        self._refresh_liquidation()
        return self.liquidation.distances_pct(self._leg_prices())

    def _refresh_liquidation(self) -> Book | None:
        wallet = self._venue_balances()
        if self._liquidation_version == self._balances_version:
            return None
        book = Book(self._legs(), wallet, self._leg_prices())
        self.liquidation.refresh(book)
        self._liquidation_version = self._balances_version
        self._liquidation_ids = [(i, self._id_text(i)) for i, *_ in self._open_positions()]
        return book

    def _legs(self) -> list[OpenLeg]:
        return [
            OpenLeg(self._id_text(i), venue, signed * multiplier, opened)
            for i, signed, opened, multiplier, venue in self._open_positions()
        ]

    def _leg_prices(self) -> dict[str, Decimal]:
        prices = self.last_price
        return {self._id_text(i): prices[i] for i, *_ in self._open_positions() if i in prices}

    def on_save(self) -> dict[str, bytes]:
        """Return the breakers' state (halt, peak and day-start equity, data ages, last prices) for a restart."""
        self._sync_prices()
        gate = self.gate
        document = {
            "halted_reason": gate.halted_reason,
            "halted_until_ns": gate.halted_until_ns,
            "peak_equity": _text_or_none(gate.peak_equity),
            "day": gate.day,
            "day_start_equity": _text_or_none(gate.day_start_equity),
            "price_ts": gate.price_ts,
            "funding_ts": gate.funding_ts,
            "last_price": {str(i): str(p) for i, p in self.last_price.items()},
            "settlements": sorted(self._settlements),
        }
        return {RISK_STATE_KEY: json.dumps(document, sort_keys=True).encode()}

    def on_load(self, state: dict[str, bytes]) -> None:
        """Restore what ``on_save`` returned (nothing when ``state`` has no risk entry).

        Raises
        ------
        ValueError
            If the entry is not the document ``on_save`` writes; the message names the field.
        """
        if RISK_STATE_KEY not in state:
            return
        document = load_state_document(state, RISK_STATE_KEY)
        gate = self.gate
        gate.halted_reason = state_field(document, RISK_STATE_KEY, "halted_reason", (str, type(None)))
        gate.halted_until_ns = state_field(document, RISK_STATE_KEY, "halted_until_ns", (int, type(None)))
        gate.peak_equity = state_decimal(document, RISK_STATE_KEY, "peak_equity", optional=True)
        gate.day = state_field(document, RISK_STATE_KEY, "day", (int, type(None)))
        gate.day_start_equity = state_decimal(document, RISK_STATE_KEY, "day_start_equity", optional=True)
        gate.price_ts = _int_map(document, "price_ts")
        self._seen.clear()
        gate.funding_ts = _int_map(document, "funding_ts")
        prices = state_field(document, RISK_STATE_KEY, "last_price", dict)
        self.last_price = {
            InstrumentId.from_str(i): state_decimal(prices, f"{RISK_STATE_KEY}.last_price", i) for i in prices
        }
        settlements = state_field(document, RISK_STATE_KEY, "settlements", list)
        if not all(isinstance(t, int) for t in settlements):
            raise ValueError(f"{RISK_STATE_KEY}.settlements: expected integer nanoseconds, was {settlements!r}")
        self._settlements = set(settlements)
        self._next_settlement_ns = min(self._settlements, default=None)
        self._balances = None
        self._positions_moved()

    def _positions_moved(self) -> None:
        self._liquidation_version = None
        self.holdings_version += 1
        self._events_version += 1
        self._net.clear()
        self._open = None
        self._equity_key = None
        self._flat_key = None

    def on_position_opened(self, _event: Any) -> None:
        self._positions_moved()

    def on_position_changed(self, _event: Any) -> None:
        self._positions_moved()

    def on_position_closed(self, _event: Any) -> None:
        self._positions_moved()

    def on_order_filled(self, event: Any) -> None:
        self._balances = None
        self._positions_moved()
        key = str(event.client_order_id)
        if key not in self.pending:
            return
        instrument_id, left = self.pending[key]
        filled = event.last_qty.as_decimal()
        left = left - filled if left > 0 else left + filled
        if left == 0:
            del self.pending[key]
        else:
            self.pending[key] = (instrument_id, left)

    def on_order_denied(self, event: Any) -> None:
        self.pending.pop(str(event.client_order_id), None)
        self.holdings_version += 1
        decision = Decision(False, "nautilus_risk_engine", str(event.reason), instrument_id=str(event.instrument_id))
        self._record(self.clock.timestamp_ns(), decision, "deny")
        self.on_order_lost(event.instrument_id)

    def on_order_rejected(self, event: Any) -> None:
        self.pending.pop(str(event.client_order_id), None)
        self.holdings_version += 1
        decision = Decision(False, "nautilus_risk_engine", f"venue rejected: {event.reason}")
        self._record(self.clock.timestamp_ns(), decision, "deny")
        self.on_order_lost(event.instrument_id)

    def on_order_canceled(self, event: Any) -> None:
        self.pending.pop(str(event.client_order_id), None)
        self.holdings_version += 1

    def on_order_lost(self, instrument_id: InstrumentId) -> None:
        """Called when an order of ours was denied or rejected; the next decision re-balances."""

    def on_risk_flatten(self) -> None:
        """Called after a breaker or the kill switch flattened every position."""

    def _on_funding_booked(self, _message: object) -> None:
        self._balances = None
        self._events_version += 1

    def _on_kill_switch(self, message: object) -> None:
        target = message.get("strategy_id") if isinstance(message, Mapping) else None
        if target is not None and str(target) != str(self.strategy_id):
            return
        reason = str(message.get("reason", "requested")) if isinstance(message, Mapping) else str(message)
        now = self.clock.timestamp_ns()
        decision = self.gate.kill(reason)
        self._record(now, decision, "halt")
        self._flatten(now, decision)

    def _flatten(self, now: int, decision: Decision) -> None:
        self.log.warning(f"risk: {decision.control} -> flattening all positions ({decision.reason})")
        self._record(now, decision, "flatten")
        self.pending.clear()
        self.holdings_version += 1
        self.market_exit()
        self.on_risk_flatten()

    def _record(self, now: int, decision: Decision, action: Action, *, detail: str = "") -> None:
        reason = f"{detail}: {decision.reason}" if detail else decision.reason
        event = RiskEvent(
            ts=now,
            strategy_id=str(self.strategy_id),
            control=decision.control,
            action=action,
            instrument_id=decision.instrument_id,
            value=format(decision.value, "f"),
            limit=format(decision.limit, "f"),
            reason=reason,
        )
        self.risk_events.append(event)
        if action in ("deny", "halt", "flatten"):
            self.log.warning(f"risk {action} [{decision.control}]: {reason}")
        self.publish_message(RISK_EVENTS_TOPIC, event.to_dict())


RISK_STATE_KEY = "risk"


def load_state_document(state: Mapping[str, bytes], key: str) -> dict[str, Any]:
    """Return the JSON object saved under ``key`` of a strategy's ``on_save`` state.

    Raises
    ------
    ValueError
        If it is not a JSON object.
    """
    try:
        document = json.loads(bytes(state[key]).decode())
    except (UnicodeDecodeError, json.JSONDecodeError, TypeError) as exc:
        raise ValueError(f"{key}: expected a JSON document, could not read it ({exc})") from None
    if not isinstance(document, dict):
        raise ValueError(f"{key}: expected a JSON object, was {type(document).__name__}")
    return document


def state_field(document: Mapping[str, Any], key: str, name: str, kinds: type | tuple[type, ...]) -> Any:
    """Return ``document[name]`` if it is of ``kinds``.

    Raises
    ------
    ValueError
        If it is missing or of another type; the message names ``key.name``.
    """
    if name not in document:
        raise ValueError(f"{key}.{name}: expected a value, was missing")
    value = document[name]
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in _tuple(kinds)):
        raise ValueError(f"{key}.{name}: expected {_names(kinds)}, was {value!r}")
    return value


def state_decimal(document: Mapping[str, Any], key: str, name: str, *, optional: bool = False) -> Any:
    """Return ``document[name]`` (decimal text) as a finite ``Decimal`` (None when ``optional`` and null).

    Raises
    ------
    ValueError
        If it is missing or not decimal text; the message names ``key.name``.
    """
    if name not in document:
        raise ValueError(f"{key}.{name}: expected decimal text, was missing")
    value = document[name]
    if value is None and optional:
        return None
    try:
        number = Decimal(value) if isinstance(value, str) else None
    except InvalidOperation:
        number = None
    if number is None or not number.is_finite():
        raise ValueError(f"{key}.{name}: expected decimal text, was {value!r}")
    return number


def _tuple(kinds: type | tuple[type, ...]) -> tuple[type, ...]:
    return kinds if isinstance(kinds, tuple) else (kinds,)


def _names(kinds: type | tuple[type, ...]) -> str:
    return " or ".join("null" if k is type(None) else k.__name__ for k in _tuple(kinds))


def _text_or_none(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _int_map(document: Mapping[str, Any], name: str) -> dict[str, int]:
    values = state_field(document, RISK_STATE_KEY, name, dict)
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in values.values()):
        raise ValueError(f"{RISK_STATE_KEY}.{name}: expected integer nanoseconds per instrument, was {values!r}")
    return {str(k): int(v) for k, v in values.items()}


class KillSwitchTimerConfig(DataActorConfig):  # type: ignore[misc]
    """Parameters of ``KillSwitchTimer``.

    Parameters
    ----------
    at_ns : int
        When to pull the switch (UNIX ns, UTC).
    reason : str
    strategy_id : str, optional
        Only this strategy halts; every risk-managed strategy when None.
    """

    def __init__(self, at_ns: int, reason: str = "scheduled kill switch", strategy_id: str | None = None) -> None:
        super().__init__()
        self.at_ns = at_ns
        self.reason = reason
        self.strategy_id = strategy_id


class KillSwitchTimer(DataActor):  # type: ignore[misc]
    """Publish the kill switch at a set time: how a test (or a scheduled shutdown) pulls it through Nautilus.

    An operator's switch is the same message sent by any component on the bus (a control actor
    of the live node, a REST handler): strategies never read files or the environment.
    """

    def __init__(self, config: KillSwitchTimerConfig) -> None:
        super().__init__(config)
        self.params = config

    def on_start(self) -> None:
        self.clock.set_time_alert_ns("kill-switch", self.params.at_ns, self._fire)

    def _fire(self, _event: Any) -> None:
        message: dict[str, str] = {"reason": self.params.reason}
        if self.params.strategy_id is not None:
            message["strategy_id"] = self.params.strategy_id
        self.publish_message(KILL_SWITCH_TOPIC, message)
