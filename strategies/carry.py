"""Two-leg funding carry: the config, sizing, state machine and hedging both carry strategies share.

A two-leg carry holds one leg long and the other short in the same *base* quantity while a funding
signal (an APR) pays enough, and hedges the legs back together when they drift. Subclasses say only
what differs: which legs, which of them settle funding, the signal, and which leg is long in
direction ``+1`` (``strategies.spot_perp_carry``, ``strategies.cross_venue_carry``).

Every bar close where both legs have a bar, ``TwoLegCarry`` (a close is paired by its bar slot, ``ts_event``
rounded to the nearest multiple of the bar interval: Binance stamps a 1m kline at its close time
``start + 59.999 s``, the other venues at ``start + 60 s``; catalog bars lie on the boundaries):

1. feeds the risk breakers the current equity (``strategies.risk``);
2. advances each funding book to the clock and asks the subclass for its signal;
3. steps the carry state machine (``strategies.signals.carry_step``): enter when the signal net of
   amortised round-trip costs reaches ``entry_apr``, exit below ``exit_apr`` or after
   ``max_holding_hours``; switching closes both legs and opens the new pair together (both or neither);
4. re-balances a leg that drifted more than ``hedge_tolerance_pct`` from its target (partial fills,
   a denied leg).

Most bars change nothing, and then cost little without changing any decision: the equity breakers
are fed only what can move them (``RiskManagedStrategy.check_equity``), the state machine is not
stepped again while the signal, the direction and the side of ``max_holding_hours`` are those of a
step that held, and the hedge is not re-measured until a fill or an order moves the holdings. Inside a
quiet window (``RiskManagedStrategy.is_quiet``) a decision is two float closes checked against bounds;
a new peak equity or a new worst price of a leg is recorded there exactly, without leaving the window.

Quantities: the target is in base units; a perp's position and orders are in contracts of
``multiplier`` base units (an OKX BTC swap: 0.01 BTC), so a perp leg of ``b`` base units is
``b / multiplier`` contracts, rounded down to the contract lot. The pair quantity is rounded down to a
multiple of both legs' lots in base units, so both legs hold exactly the same base quantity.
"""

from __future__ import annotations

import json
import math
from collections import deque
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar

from nautilus_trader.model import Bar, BarType, FundingRateUpdate, InstrumentId
from nautilus_trader.trading import StrategyConfig

from strategies.funding import FundingBook
from strategies.quiet_window import QuietWindow
from strategies.risk import RiskManagedStrategy
from strategies.risk_limits import RiskLimits
from strategies.risk_state import load_state_document, state_decimal, state_field
from strategies.signals import NS_PER_SECOND, carry_step, cost_apr, hedge_orders
from strategies.sizing import Sizing

DEFAULT_BAR_SPEC = "1-HOUR-LAST-EXTERNAL"
# The slowest funding clock in our data (Binance, Bybit, OKX: 8 h): warm-up covers that many settlements.
LONGEST_FUNDING_INTERVAL_SECS = 8 * 3600
CARRY_STATE_KEY = "carry"
NO_LIMIT_NS = 2**63  # after every int64 nanosecond time


def decimal_param(name: str, value: str | int | float) -> Decimal:
    """Return a config value as a finite ``Decimal``.

    Raises
    ------
    ValueError
        If it is not a finite decimal number.
    """
    try:
        result = Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"{name}: expected a decimal number, was {value!r}") from None
    if not result.is_finite():
        raise ValueError(f"{name}: expected a finite number, was {value!r}")
    return result


def bar_interval_ns(bar_spec: str) -> int:
    """Return the duration of one bar of a time bar specification (``5-MINUTE-LAST-EXTERNAL``: 5 minutes).

    Raises
    ------
    ValueError
        If ``bar_spec`` is not a time bar specification with its aggregation source.
    """
    try:
        spec = BarType.from_str(f"CONFIG.CHECK-{bar_spec}").spec
    except ValueError as exc:
        raise ValueError(
            f"bar_spec: expected a bar specification like {DEFAULT_BAR_SPEC!r}, was {bar_spec!r} ({exc})"
        ) from None
    if not spec.is_time_aggregated():
        raise ValueError(f"bar_spec: expected time bars (SECOND, MINUTE, HOUR, DAY, ...), was {bar_spec!r}")
    interval: int = spec.get_interval_ns()
    return interval


def warmup_bars(bar_spec: str, *, settlements: int, interval_secs: int = LONGEST_FUNDING_INTERVAL_SECS) -> int:
    """Return the bars of ``bar_spec`` spanning ``settlements`` funding intervals (rounded up).

    Six settlements on an 8 h clock are 48 bars of 1 hour or 576 bars of 5 minutes.

    Raises
    ------
    ValueError
        If ``bar_spec`` is not a time bar specification.
    """
    span_ns = settlements * interval_secs * NS_PER_SECOND
    return -(-span_ns // bar_interval_ns(bar_spec))


def common_lot(lots: Sequence[Decimal]) -> Decimal:
    """Return the smallest positive quantity that is a whole number of each of ``lots``.

    Raises
    ------
    ValueError
        If no lot is given or one is not positive.
    """
    if not lots or any(lot <= 0 for lot in lots):
        raise ValueError(f"lots: expected positive lot sizes, was {list(lots)}")
    places = max(-int(lot.as_tuple().exponent) for lot in lots)
    whole = [int(lot.scaleb(places)) for lot in lots]
    common = Decimal(math.lcm(*whole)).scaleb(-places).normalize()
    return common if common < 1 else common.quantize(Decimal(1))


def pair_base_quantity(notional: Decimal, price: Decimal, *, lots: Sequence[Decimal]) -> Decimal:
    """Return the base quantity ``notional / price``, rounded down to a whole number of every lot.

    ``lots`` are in base units (a perp's is its size increment x multiplier). Exact: the division
    is Decimal integer division of ``notional`` by ``price x lot``, never a float.

    Raises
    ------
    ValueError
        If a lot is not positive.
    """
    lot = common_lot(lots)
    if price <= 0:
        return Decimal(0)
    return (notional // (price * lot)) * lot


def check_carry_params(config: Any) -> None:
    """Check the parameters every carry config shares.

    Raises
    ------
    ValueError
        If one is out of range; the message names it.
    """
    if config.notional <= 0:
        raise ValueError(f"notional: expected > 0, was {config.notional}")
    if config.exit_apr > config.entry_apr:
        raise ValueError(f"exit_apr: expected <= entry_apr {config.entry_apr}, was {config.exit_apr}")
    if config.lookback_settlements < 1:
        raise ValueError(f"lookback_settlements: expected >= 1, was {config.lookback_settlements}")
    if not Decimal(0) <= config.predicted_weight <= Decimal(1):
        raise ValueError(f"predicted_weight: expected within [0, 1], was {config.predicted_weight}")
    if config.round_trip_cost_bps < 0:
        raise ValueError(f"round_trip_cost_bps: expected >= 0, was {config.round_trip_cost_bps}")
    if config.cost_horizon_days <= 0:
        raise ValueError(f"cost_horizon_days: expected > 0, was {config.cost_horizon_days}")
    if config.max_holding_hours < 1:
        raise ValueError(f"max_holding_hours: expected >= 1, was {config.max_holding_hours}")
    if not Decimal(0) <= config.hedge_tolerance_pct <= Decimal(50):
        raise ValueError(f"hedge_tolerance_pct: expected within [0, 50], was {config.hedge_tolerance_pct}")


def funding_clocks(value: Mapping[str, Any] | None) -> dict[str, int]:
    """Return the ``funding_clock_secs`` mapping checked: instrument id -> positive interval in seconds.

    Raises
    ------
    ValueError
        If an interval is not a positive whole number of seconds.
    """
    clocks = {}
    for instrument_id, secs in (value or {}).items():
        if isinstance(secs, bool) or not isinstance(secs, int) or secs <= 0:
            raise ValueError(f"funding_clock_secs.{instrument_id}: expected a positive number of seconds, was {secs!r}")
        clocks[str(instrument_id)] = secs
    return clocks


def funding_seeds(value: Mapping[str, Any] | None) -> dict[str, list[tuple[Decimal, int]]]:
    """Return the ``funding_seed`` mapping checked: instrument id -> ``(rate, interval secs)`` pairs.

    Raises
    ------
    ValueError
        If an entry is not a ``[rate, interval secs]`` pair with a decimal rate and a positive interval.
    """
    seeds = {}
    for instrument_id, pairs in (value or {}).items():
        checked = []
        for index, pair in enumerate(pairs):
            where = f"funding_seed.{instrument_id}[{index}]"
            if not isinstance(pair, (list, tuple)) or len(pair) != 2 or not isinstance(pair[1], int) or pair[1] <= 0:
                raise ValueError(f"{where}: expected [rate, positive interval secs], was {pair!r}")
            checked.append((decimal_param(where, pair[0]), pair[1]))
        seeds[str(instrument_id)] = checked
    return seeds


class CarryConfig(StrategyConfig):  # type: ignore[misc]
    """The parameters every two-leg carry shares; subclasses add their legs and pass the rest on by keyword.

    Parameters
    ----------
    bar_spec : str
        Time bars that drive decisions (``1-HOUR-LAST-EXTERNAL``).
    notional : str
        Quote amount of each leg at entry (base quantity = notional / first leg's close, rounded down
        to both lots in base units); the ``sizing`` mode may scale it.
    entry_apr, exit_apr : str
        Annualised thresholds (0.10 = 10 %/year): enter at ``signal - cost >= entry_apr``, exit when
        the signal in the position's favour falls below ``exit_apr``.
    lookback_settlements : int
        Settled rates averaged into the expected rate (per perp, on its own clock).
    predicted_weight : str
        Weight of the announced next rate in the expected rate, within [0, 1].
    round_trip_cost_bps : str
        Fees and slippage to open and close both legs, in bps of one leg's notional.
    cost_horizon_days : str
        Days over which the round-trip cost is amortised into an APR.
    max_holding_hours : int
        Exit after this long in a position.
    hedge_tolerance_pct : str
        Re-balance a leg more than this far (percent of the target quantity) from its target.
    risk : dict
        ``strategies.risk_limits.RiskLimits`` fields.
    sizing : dict, optional
        ``strategies.sizing.Sizing`` fields (the run config's ``[sizing]``); None: fixed ``notional``.
    funding_clock_secs : dict, optional
        Instrument id -> its venue's funding interval in seconds (settlements on every multiple of it
        from 00:00 UTC), filled by ``engine.loading``: completes live updates that lack an interval or
        a settlement instant (``strategies.funding.FundingBook``).
    funding_seed : dict, optional
        Instrument id -> ``[rate, interval secs]`` pairs that settled before the start, oldest first,
        filled by ``engine.loading`` for a live node from the catalog: the books start warm.

    Raises
    ------
    ValueError
        If a parameter is malformed or out of range; the message names it.
    """

    def __init__(
        self,
        *,
        bar_spec: str = DEFAULT_BAR_SPEC,
        notional: str = "10000",
        entry_apr: str = "0.10",
        exit_apr: str = "0.02",
        lookback_settlements: int = 6,
        predicted_weight: str = "0.5",
        round_trip_cost_bps: str = "30",
        cost_horizon_days: str = "30",
        max_holding_hours: int = 2160,
        hedge_tolerance_pct: str = "1",
        risk: dict[str, Any] | None = None,
        sizing: dict[str, Any] | None = None,
        funding_clock_secs: dict[str, int] | None = None,
        funding_seed: dict[str, list[list[Any]]] | None = None,
        order_id_tag: str | None = None,
    ) -> None:
        super().__init__()
        self.bar_spec = bar_spec
        self.bar_interval_ns = bar_interval_ns(bar_spec)
        self.notional = decimal_param("notional", notional)
        self.entry_apr = decimal_param("entry_apr", entry_apr)
        self.exit_apr = decimal_param("exit_apr", exit_apr)
        self.lookback_settlements = int(lookback_settlements)
        self.predicted_weight = decimal_param("predicted_weight", predicted_weight)
        self.round_trip_cost_bps = decimal_param("round_trip_cost_bps", round_trip_cost_bps)
        self.cost_horizon_days = decimal_param("cost_horizon_days", cost_horizon_days)
        self.max_holding_hours = int(max_holding_hours)
        self.hedge_tolerance_pct = decimal_param("hedge_tolerance_pct", hedge_tolerance_pct)
        self.risk = RiskLimits.from_mapping(risk)
        self.sizing = Sizing.from_mapping(sizing)
        self.funding_clock_secs = funding_clocks(funding_clock_secs)
        self.funding_seed = funding_seeds(funding_seed)
        check_carry_params(self)

    @property
    def warmup_bars(self) -> int:
        """Bars of ``bar_spec`` before the first decision: ``lookback_settlements`` settlements on an 8 h clock."""
        return warmup_bars(self.bar_spec, settlements=self.lookback_settlements)

    @property
    def cost(self) -> Decimal:
        """The round-trip cost as an APR."""
        return cost_apr(self.round_trip_cost_bps, self.cost_horizon_days)


class TwoLegCarry(RiskManagedStrategy):
    """Hold ``legs[0]`` and ``legs[1]`` opposite in equal base quantity while the subclass's signal pays.

    Parameters
    ----------
    config : CarryConfig
    legs : tuple[InstrumentId, InstrumentId]
        The two legs; the pair quantity is sized at the first leg's close.
    funding_legs : Sequence[InstrumentId]
        The legs that settle funding: each gets a ``FundingBook``, funding and mark subscriptions.
    allow_reverse : bool
        Whether direction ``-1`` may be entered.
    """

    #: Sign of the first leg's position in direction ``+1`` (the second leg holds the opposite).
    FIRST_LEG_SIGN: ClassVar[int] = 1

    def __init__(
        self,
        config: CarryConfig,
        *,
        legs: tuple[InstrumentId, InstrumentId],
        funding_legs: Sequence[InstrumentId],
        allow_reverse: bool,
    ) -> None:
        super().__init__(config, limits=config.risk)
        self.params = config
        self.legs = legs
        self.allow_reverse = allow_reverse
        clocks = config.funding_clock_secs
        self.books = {instrument_id: FundingBook(clocks.get(str(instrument_id))) for instrument_id in funding_legs}
        for instrument_id, book in self.books.items():
            book.seed(config.funding_seed.get(str(instrument_id), []))
        # Per leg: the bar slot of its last close (``bar_ts`` by instrument), its bar type and its id's text.
        self._slots: list[int | None] = [None, None]
        self._bar_types = tuple(BarType.from_str(f"{i}-{config.bar_spec}") for i in legs)
        self._leg_texts = tuple(i.value for i in legs)
        self.direction = 0
        self.entered_ns = 0
        self.decided_ns = 0  # close of the last decision taken (a restart completes it, never re-takes it)
        self.target = Decimal(0)  # signed base quantity of the first leg; the second holds -target
        self.decisions = 0
        self.max_drift = Decimal(0)
        self.last_signal: Decimal | None = None
        # (target, holdings_version) of a rebalance that sent nothing: the holdings cannot have moved since.
        self._balanced: tuple[Decimal, int] | None = None
        self._cost = config.cost
        self._interval_ns = config.bar_interval_ns
        self._half_interval_ns = config.bar_interval_ns // 2
        self._max_holding_secs = config.max_holding_hours * 3600
        self._book_list = list(self.books.values())
        self._steady: tuple[Decimal | None, int] | None = None  # (signal, direction) of the last step that held
        # Until when (clock ns, bar slot ns) and within which closes a decision changes nothing but its count.
        self._quiet: tuple[QuietWindow, int] | None = None
        # First-leg closes for the realised volatility, kept only when the sizing mode reads them.
        self.sizing_closes: deque[Decimal] | None = (
            deque(maxlen=config.sizing.volatility_window_bars) if config.sizing.mode == "volatility_target" else None
        )

    def signal(self) -> Decimal | None:
        """Return the carry signal as an APR in favour of direction ``+1``, or None while warming up.

        The books have been advanced to the clock. Subclasses implement it.
        """
        raise NotImplementedError

    @property
    def bar_ts(self) -> dict[str, int]:
        """The bar slot (close time, ns) of each leg's last bar, by instrument id text."""
        return {text: slot for text, slot in zip(self._leg_texts, self._slots, strict=True) if slot is not None}

    def on_start(self) -> None:
        self.start_risk(list(self.legs), funding=list(self.books), marks=list(self.books))
        for instrument_id, bar_type in zip(self.legs, self._bar_types, strict=True):
            self.subscribe_bars(bar_type)
            if instrument_id in self.books:
                self.subscribe_funding_rates(instrument_id)
                self.subscribe_mark_prices(instrument_id)

    def on_funding_rate(self, funding_rate: FundingRateUpdate) -> None:
        book = self.books.get(funding_rate.instrument_id)
        if book is not None:
            book.add(funding_rate)
        self.observe_funding(funding_rate.instrument_id, funding_rate.ts_event, funding_rate.next_funding_ns)

    def on_bar(self, bar: Bar) -> None:
        # Every bar of a run passes here: the leg is found by comparing bar types (no id built or hashed),
        # the bar stored as observe_last_bar does, and a decision inside its quiet window settled in place.
        bar_type = bar.bar_type
        if bar_type == self._bar_types[0]:
            leg = 0
        elif bar_type == self._bar_types[1]:
            leg = 1
        else:
            return
        self.latest_bars[self._leg_texts[leg]] = bar
        shifted = bar.ts_event + self._half_interval_ns
        ts_ns = shifted - shifted % self._interval_ns  # the close of the bar's slot
        if leg == 0 and self.sizing_closes is not None:
            self.sizing_closes.append(bar.close.as_decimal())
        slots = self._slots
        slots[leg] = ts_ns
        if slots[1 - leg] != ts_ns:
            return
        quiet = self._quiet
        if quiet is not None and self.decided_ns < ts_ns < quiet[1] and self.is_quiet(quiet[0]):
            # The breakers, the books, the signal and the hedge are as the last decision left them.
            self.decided_ns = ts_ns
            self.decisions += 1
            return
        self.decide(ts_ns)

    def decide(self, ts_ns: int) -> None:
        """Take one decision at the close ``ts_ns`` both legs share (``on_bar`` settles a quiet one itself)."""
        self._quiet = None
        params = self.params
        if ts_ns <= self.decided_ns:
            # A restarted node replays the bar it was deciding on when it stopped: the decision (saved
            # with its first fill) stands; trade what it had not filled yet.
            self.rebalance()
            return
        self.decided_ns = ts_ns
        self.check_equity()
        if self.gate.halted:
            return
        self.check_liquidation()
        now = self.clock.timestamp_ns()
        for book in self._book_list:
            book.advance(now)
        signal = self.signal()
        self.last_signal = signal
        self.decisions += 1
        direction = self.direction
        steady = self._steady
        if (
            steady is not None
            and steady[0] is signal
            and steady[1] == direction
            and (not direction or ts_ns - self.entered_ns < self._max_holding_secs * NS_PER_SECOND)
        ):
            # The signal object, the direction and the holding period's side of its limit are those of
            # a step that held: carry_step would hold again.
            wanted = direction
        else:
            held_secs = (ts_ns - self.entered_ns) // NS_PER_SECOND if direction else 0
            wanted = carry_step(
                direction,
                held_secs,
                signal,
                entry_apr=params.entry_apr,
                exit_apr=params.exit_apr,
                cost=self._cost,
                max_holding_secs=self._max_holding_secs,
                allow_reverse=self.allow_reverse,
            )
            self._steady = (signal, direction) if wanted == direction else None
        if wanted != direction:
            self.switch(wanted, ts_ns)
        if (self.target, self.holdings_version) != self._balanced:
            self.rebalance()
        self._quiet = self._quiet_window()

    def _quiet_window(self) -> tuple[QuietWindow, int] | None:
        # Later decisions repeat this one while: the step held (the same signal object, nothing switched)
        # and will hold until the holding limit, the hedge sent nothing, no book settles, the breakers are quiet.
        steady = self._steady
        if steady is None or steady[0] is not self.last_signal or steady[1] != self.direction:
            return None
        if (self.target, self.holdings_version) != self._balanced:
            return None
        books = [book.next_settlement_ns for book in self._book_list]
        window = self.quiet_window(before_ns=min((t for t in books if t is not None), default=None))
        if window is None:
            return None
        # A position is held until the slot that reaches max_holding_hours; flat, every slot repeats.
        slots_until = self.entered_ns + self._max_holding_secs * NS_PER_SECOND if self.direction else NO_LIMIT_NS
        return window, slots_until

    def switch(self, wanted: int, ts_ns: int) -> None:
        """Close both legs (always allowed) and, unless ``wanted`` is flat, open the new pair."""
        if self.direction != 0:
            self.submit_checked([(i, -self.holding(i)) for i in self.legs])
            self.direction, self.target = 0, Decimal(0)
        if wanted == 0:
            return
        quantity = self.pair_quantity()
        if quantity <= 0:
            return
        first = self.liquidation_fit(quantity if wanted * self.FIRST_LEG_SIGN > 0 else -quantity)
        if first == 0:
            return
        # Set before sending: a leg the engine denies calls ``on_order_lost`` from inside ``submit_order``.
        self.direction, self.target, self.entered_ns = wanted, first, ts_ns
        if not self.submit_checked([self.leg_order(0, first), self.leg_order(1, -first)]):
            self.direction, self.target = 0, Decimal(0)

    def pair_quantity(self) -> Decimal:
        """Return the base quantity of each leg: the entry notional / first leg's close, rounded down to both lots."""
        price = self.last_price.get(self.legs[0])
        if not price:
            return Decimal(0)
        lots = self.pair_lots()
        return pair_base_quantity(self.entry_notional(price), price, lots=lots) if lots else Decimal(0)

    def pair_lots(self) -> list[Decimal]:
        """Return both legs' lots in base units (a perp's size increment x multiplier); empty if one is not cached."""
        lots = []
        for instrument_id in self.legs:
            instrument = self.cache.instrument(instrument_id)
            if instrument is None:
                return []
            lots.append(instrument.size_increment.as_decimal() * self.multiplier(instrument_id))
        return lots

    def liquidation_fit(self, first: Decimal) -> Decimal:
        """Return the first leg's signed base quantity cut so every perp leg keeps its liquidation distance.

        The cut (``RiskManagedStrategy.liquidation_room``) applies to both legs alike, rounded down to
        both lots, and is recorded as a ``liquidation_distance`` risk event: ``reduce``, or ``deny`` when
        nothing fits.
        """
        scale, tight = self.liquidation_room([self.leg_order(0, first), self.leg_order(1, -first)])
        if tight is None:
            return first
        fitted = pair_base_quantity(abs(first) * scale, Decimal(1), lots=self.pair_lots())
        detail = f"pair {abs(first)} cut to {fitted}" if fitted else f"pair {abs(first)} refused"
        self._record(self.clock.timestamp_ns(), tight, "reduce" if fitted else "deny", detail=detail)
        return fitted if first > 0 else -fitted

    def entry_notional(self, price: Decimal) -> Decimal:
        """Return each leg's notional at entry: the sizing mode's, scaled down to the correlated exposure cap."""
        prices = self.last_price
        return self.sized_notional(
            self.params.sizing,
            self.params.notional,
            closes=list(self.sizing_closes or ()),
            bar_interval_ns=self.params.bar_interval_ns,
            # Both legs get the same base quantity, notional / price: the second leg's exposure is at its own price.
            added=lambda notional: {str(i): notional * prices.get(i, price) / price for i in self.legs},
        )

    def base_holding(self, instrument_id: InstrumentId) -> Decimal:
        """Return ``holding`` in base units (contracts x multiplier for a perp)."""
        return self.holding(instrument_id) * self.multiplier(instrument_id)

    def leg_order(self, index: int, base_quantity: Decimal) -> tuple[InstrumentId, Decimal]:
        """Return the order ``(instrument, signed quantity in its units)`` that trades ``base_quantity`` on a leg."""
        instrument_id = self.legs[index]
        return instrument_id, base_quantity / self.multiplier(instrument_id)

    def rebalance(self) -> None:
        """Trade a leg back to its target when it drifted beyond the tolerance."""
        key = (self.target, self.holdings_version)
        if key == self._balanced:
            return  # nothing moved since a rebalance that found nothing to trade
        self._balanced = key
        holdings = [self.base_holding(i) for i in self.legs]
        if self.target:
            drift = max(abs(holdings[0] - self.target), abs(holdings[1] + self.target)) / abs(self.target)
            self.max_drift = max(self.max_drift, drift)
        orders = hedge_orders(self.target, holdings, tolerance=self.params.hedge_tolerance_pct / 100)
        for index, quantity in enumerate(orders):
            if quantity != 0:
                self._balanced = None
                self.submit_checked([self.leg_order(index, quantity)])

    def on_risk_flatten(self) -> None:
        self.direction, self.target = 0, Decimal(0)

    def on_liquidation_reduce(self, instrument_id: InstrumentId, fraction: Decimal) -> None:
        # Both legs shrink to the same base quantity; the decision's rebalance trades them (reductions only).
        cut = pair_base_quantity(abs(self.target) * fraction, Decimal(1), lots=self.pair_lots())
        self.target = cut if self.target > 0 else -cut
        if cut == 0:
            self.direction = 0

    def on_save(self) -> dict[str, bytes]:
        """Return the carry's state (direction, target, entry time, funding books) and the breakers'."""
        document = {
            "direction": self.direction,
            "target": str(self.target),
            "entered_ns": self.entered_ns,
            "decided_ns": self.decided_ns,
            "decisions": self.decisions,
            "max_drift": str(self.max_drift),
            "last_signal": None if self.last_signal is None else str(self.last_signal),
            "bar_ts": dict(self.bar_ts),
            "books": {
                str(i): {
                    "announced": [[t, str(rate), interval] for t, (rate, interval) in sorted(book.announced.items())],
                    "settled": [str(rate) for rate in book.settled],
                    "interval_secs": book.interval_secs,
                }
                for i, book in self.books.items()
            },
        }
        return {**super().on_save(), CARRY_STATE_KEY: json.dumps(document, sort_keys=True).encode()}

    def on_load(self, state: dict[str, bytes]) -> None:
        """Restore what ``on_save`` returned (nothing when ``state`` has no carry entry).

        Raises
        ------
        ValueError
            If an entry is not the document ``on_save`` writes; the message names the field.
        """
        super().on_load(state)
        self._quiet = None
        if CARRY_STATE_KEY not in state:
            return
        key = CARRY_STATE_KEY
        document = load_state_document(state, key)
        direction = state_field(document, key, "direction", int)
        if direction not in (-1, 0, 1):
            raise ValueError(f"{key}.direction: expected -1, 0 or 1, was {direction}")
        self.direction = direction
        self.target = state_decimal(document, key, "target")
        self.entered_ns = state_field(document, key, "entered_ns", int)
        self.decided_ns = state_field(document, key, "decided_ns", int)
        self.decisions = state_field(document, key, "decisions", int)
        self.max_drift = state_decimal(document, key, "max_drift")
        self.last_signal = state_decimal(document, key, "last_signal", optional=True)
        bar_ts = state_field(document, key, "bar_ts", dict)
        saved = {str(InstrumentId.from_str(i)): int(ts) for i, ts in bar_ts.items()}
        self._slots = [saved.get(text) for text in self._leg_texts]
        books = state_field(document, key, "books", dict)
        for instrument_id, book in self.books.items():
            saved = books.get(str(instrument_id))
            if saved is None:
                continue
            announced = state_field(saved, f"{key}.books.{instrument_id}", "announced", list)
            book.announced = {int(t): (Decimal(str(rate)), int(interval)) for t, rate, interval in announced}
            settled = state_field(saved, f"{key}.books.{instrument_id}", "settled", list)
            book.settled = [Decimal(str(rate)) for rate in settled]
            book.interval_secs = state_field(saved, f"{key}.books.{instrument_id}", "interval_secs", (int, type(None)))

    def on_order_lost(self, instrument_id: InstrumentId) -> None:
        # A leg was denied or rejected: unwind rather than stay half-hedged; the next decision may re-enter.
        self.direction, self.target = 0, Decimal(0)
