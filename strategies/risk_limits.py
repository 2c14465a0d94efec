"""The limits a strategy runs under, and ``RiskGate``: the pure state of the risk controls that answers them.

``RiskGate`` has no Nautilus inside: it takes positions, prices and equity and returns a ``Decision``.
``strategies.risk.RiskManagedStrategy`` feeds it from what the kernel injects and records each decision
as a ``RiskEvent``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from decimal import ROUND_DOWN, Decimal, InvalidOperation
from typing import Any, Literal

from nautilus_trader.model import Quantity

from strategies.liquidation_price import MaintenanceTier, MarginMode, tiers_from_mapping

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


def reduces_position(position: Decimal, quantity: Decimal) -> bool:
    """Return whether trading ``quantity`` (signed) shrinks ``position`` without flipping its side."""
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
        # screen_equity's floats of (peak, day start, limits), rebuilt when one of them is replaced.
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
        if all(reduces_position(positions.get(i.instrument_id, Decimal(0)), i.quantity) for i in intents):
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
        slack = 0.0 if peak is None else error + 1e-9 * (abs(equity) + abs(self._as_floats(peak)[0]))
        bounds = self.quiet_equity(now_ns, slack)
        if bounds is None or equity <= bounds[0]:
            return "update"
        return "peak" if equity >= bounds[1] else "unchanged"

    def quiet_equity(self, now_ns: int, slack: float) -> tuple[float, float] | None:
        """Return the open interval of estimates that ``screen_equity`` finds ``"unchanged"`` now, or None.

        ``slack`` must bound ``error + 1e-9 x (|equity| + |peak|)`` for every estimate the caller screens
        with it (``strategies.quiet_window.fast_screen``). None when an update is due whatever the equity
        (no equity yet, a new UTC day). The interval holds while the gate is unchanged: a new peak moves it.
        """
        peak = self.peak_equity
        if peak is None or now_ns // NS_PER_DAY != self.day:
            return None
        return self._thresholds(peak, slack)

    def _thresholds(self, peak: Decimal, slack: float) -> tuple[float, float]:
        # (update_below, peak_from) of estimates with this slack: at or below the first an update may halt,
        # resume or start a day; at or above the second it may raise the peak.
        peak_value, day_start, drawdown_pct, loss_limit = self._as_floats(peak)
        update_below = -math.inf
        # A new peak cannot breach the drawdown (0 % from itself); a lower equity is measured from this peak.
        halted = self.halted_reason is not None
        if drawdown_pct is not None and peak_value > 0 and (self.halted_until_ns is not None or not halted):
            update_below = peak_value + slack - drawdown_pct * peak_value * (1 - 1e-9) / 100
        if loss_limit is not None and not halted and day_start is not None:
            update_below = max(update_below, day_start - loss_limit + 2 * slack)
        return update_below, peak_value - slack

    def _as_floats(self, peak: Decimal) -> tuple[float, float | None, float | None, float | None]:
        # The floats of the peak, day start and limits, rebuilt when one of them is replaced.
        known = self._floats
        day_start, limits = self.day_start_equity, self.limits
        if known[0] is not peak or known[1] is not day_start or known[2] is not limits:
            drawdown, loss = limits.max_drawdown_pct, limits.daily_loss_limit_usd
            known = self._floats = (
                peak,
                day_start,
                limits,
                float(peak),
                None if day_start is None else float(day_start),
                None if drawdown is None else float(drawdown),
                None if loss is None else float(loss),
            )
        return known[3:]

    def track_peak(self, equity: Decimal) -> Decimal:
        """Raise the peak to ``equity`` if it is higher (all ``screen_equity``'s ``"peak"`` allows); return the peak."""
        peak = self.peak_equity = equity if self.peak_equity is None else max(self.peak_equity, equity)
        return peak

    def kill(self, reason: str) -> Decision:
        """Halt for good: the kill switch."""
        self.halted_reason, self.halted_until_ns = f"kill switch: {reason}", None
        return Decision(False, "kill_switch", self.halted_reason)
