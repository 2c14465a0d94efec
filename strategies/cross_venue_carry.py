"""Cross-venue perp-perp funding carry: short the perp whose longs pay more, long the other, hedged.

Each perp settles on its own venue's clock (e.g. Binance every 8 h, Hyperliquid every hour): the
strategy keeps one ``FundingBook`` per perp and annualises each on its own interval, so the spread
``apr_first - apr_second`` compares like with like. Every bar close where both perps have a bar:

1. feed the risk breakers (``strategies.risk``);
2. step the carry state machine on the spread: ``+1`` = short the first perp / long the second when
   ``spread - cost >= entry_apr``; ``-1`` = the reverse when ``-spread - cost >= entry_apr``; exit
   when the spread in the position's favour falls below ``exit_apr`` or after ``max_holding_hours``;
   ``cost`` amortises the taker fees of opening and closing on both venues;
3. keep both legs at the same base quantity within ``hedge_tolerance_pct``.

The same look-ahead note as ``strategies.spot_perp_carry`` applies to ``predicted_weight``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, ClassVar

from nautilus_trader.model import Bar, BarType, FundingRateUpdate, InstrumentId, MarkPriceUpdate
from nautilus_trader.trading import StrategyConfig

from strategies.funding_book import FundingBook, check_carry_params, decimal_param
from strategies.risk import RiskLimits, RiskManagedStrategy
from strategies.signals import (
    NS_PER_SECOND,
    ParameterRange,
    carry_step,
    cost_apr,
    hedge_orders,
    parameter_range,
    spread_apr,
)

LONGEST_INTERVAL_HOURS = 8


class CrossVenueCarryConfig(StrategyConfig):  # type: ignore[misc]
    """Parameters of ``CrossVenueCarry``.

    Parameters
    ----------
    first_id, second_id : str
        The two perps, on different venues (run configs may write ``"venue:SYMBOL"``).
    bar_spec : str
    notional : str
        Quote amount of each leg at entry (base quantity = notional / first perp's close, rounded down to both lots).
    entry_apr, exit_apr : str
        Thresholds on the annualised funding spread.
    lookback_settlements : int
        Settled rates averaged per perp (on its own clock).
    predicted_weight : str
    round_trip_cost_bps : str
        Taker fees and slippage to open and close both legs, in bps of one leg's notional
        (Binance 5 + Hyperliquid 4.5 taker: 2 x 9.5 = 19).
    cost_horizon_days : str
    max_holding_hours : int
    hedge_tolerance_pct : str
    risk : dict
        ``strategies.risk.RiskLimits`` fields.
    """

    PARAMETER_SPACE: ClassVar[dict[str, ParameterRange]] = {
        "entry_apr": parameter_range("0.05", "0.30", "0.05"),
        "exit_apr": parameter_range("0", "0.10", "0.025"),
        "lookback_settlements": parameter_range("1", "25", "6", integer=True),
        "predicted_weight": parameter_range("0", "1", "0.5"),
        "max_holding_hours": parameter_range("168", "2184", "672", integer=True),
    }

    def __init__(
        self,
        first_id: str,
        second_id: str,
        bar_spec: str = "1-HOUR-LAST-EXTERNAL",
        notional: str = "10000",
        entry_apr: str = "0.10",
        exit_apr: str = "0.02",
        lookback_settlements: int = 6,
        predicted_weight: str = "0.5",
        round_trip_cost_bps: str = "19",
        cost_horizon_days: str = "30",
        max_holding_hours: int = 2160,
        hedge_tolerance_pct: str = "1",
        risk: dict[str, Any] | None = None,
        order_id_tag: str | None = None,
    ) -> None:
        super().__init__()
        self.first_id = InstrumentId.from_str(first_id)
        self.second_id = InstrumentId.from_str(second_id)
        if self.first_id.venue == self.second_id.venue:
            raise ValueError(f"second_id: expected a perp on another venue than {self.first_id.venue}, was {second_id}")
        self.bar_spec = bar_spec
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
        check_carry_params(self)

    @property
    def warmup_bars(self) -> int:
        """Bars (of 1 h) before the first decision: the slower clock's ``lookback_settlements`` settlements."""
        return self.lookback_settlements * LONGEST_INTERVAL_HOURS

    @property
    def cost(self) -> Decimal:
        """The round-trip cost as an APR."""
        return cost_apr(self.round_trip_cost_bps, self.cost_horizon_days)


class CrossVenueCarry(RiskManagedStrategy):
    """Short the perp with the higher expected funding, long the other, equal base quantity."""

    def __init__(self, config: CrossVenueCarryConfig) -> None:
        super().__init__(config, limits=config.risk)
        self.params = config
        self.books = {config.first_id: FundingBook(), config.second_id: FundingBook()}
        self.bar_ts: dict[InstrumentId, int] = {}
        self.direction = 0
        self.entered_ns = 0
        self.target = Decimal(0)  # signed base quantity of the first leg
        self.max_drift = Decimal(0)
        self.last_spread: Decimal | None = None

    def on_start(self) -> None:
        params = self.params
        legs = [params.first_id, params.second_id]
        self.start_risk(legs, funding=legs)
        for instrument_id in legs:
            self.subscribe_bars(BarType.from_str(f"{instrument_id}-{params.bar_spec}"))
            self.subscribe_funding_rates(instrument_id)
            self.subscribe_mark_prices(instrument_id)

    def on_funding_rate(self, funding_rate: FundingRateUpdate) -> None:
        self.books[funding_rate.instrument_id].add(funding_rate)
        self.observe_funding(funding_rate.instrument_id, funding_rate.ts_event, funding_rate.next_funding_ns)

    def on_mark_price(self, mark_price: MarkPriceUpdate) -> None:
        self.observe_mark(mark_price.instrument_id, mark_price.ts_event)

    def on_bar(self, bar: Bar) -> None:
        instrument_id = bar.bar_type.instrument_id
        self.observe_bar(instrument_id, bar.close.as_decimal(), bar.ts_event)
        self.bar_ts[instrument_id] = bar.ts_event
        if self.bar_ts.get(self.params.first_id) == self.bar_ts.get(self.params.second_id):
            self.decide(bar.ts_event)

    def spread(self) -> Decimal | None:
        """Return ``apr(first) - apr(second)`` on each perp's own clock, or None while warming up."""
        params = self.params
        now = self.clock.timestamp_ns()
        aprs = []
        for instrument_id in (params.first_id, params.second_id):
            book = self.books[instrument_id]
            book.advance(now)
            aprs.append(
                book.expected_apr(lookback=params.lookback_settlements, predicted_weight=params.predicted_weight)
            )
        if aprs[0] is None or aprs[1] is None:
            return None
        return spread_apr(aprs[0], aprs[1])

    def decide(self, ts_ns: int) -> None:
        """Take one decision at the close ``ts_ns`` both perps share."""
        params = self.params
        self.check_equity()
        if self.gate.halted:
            return
        spread = self.spread()
        self.last_spread = spread
        held_secs = (ts_ns - self.entered_ns) // NS_PER_SECOND if self.direction else 0
        wanted = carry_step(
            self.direction,
            held_secs,
            spread,
            entry_apr=params.entry_apr,
            exit_apr=params.exit_apr,
            cost=params.cost,
            max_holding_secs=params.max_holding_hours * 3600,
            allow_reverse=True,
        )
        if wanted != self.direction:
            self.switch(wanted, ts_ns)
        self.rebalance()

    def switch(self, wanted: int, ts_ns: int) -> None:
        """Close both legs (always allowed) and, unless ``wanted`` is flat, open the new pair."""
        params = self.params
        legs = (params.first_id, params.second_id)
        if self.direction != 0:
            self.submit_checked([(i, -self.holding(i)) for i in legs])
            self.direction, self.target = 0, Decimal(0)
        if wanted == 0:
            return
        quantity = self.pair_quantity()
        if quantity <= 0:
            return
        first = -quantity if wanted > 0 else quantity
        # Set before sending: a leg the engine denies calls ``on_order_lost`` from inside ``submit_order``.
        self.direction, self.target, self.entered_ns = wanted, first, ts_ns
        if not self.submit_checked([(params.first_id, first), (params.second_id, -first)]):
            self.direction, self.target = 0, Decimal(0)

    def pair_quantity(self) -> Decimal:
        """Return the base quantity of each leg: notional / first close, rounded down to both lots."""
        params = self.params
        price = self.last_price.get(params.first_id)
        if not price:
            return Decimal(0)
        raw = float(params.notional / price)
        for instrument_id in (params.first_id, params.second_id):
            instrument = self.cache.instrument(instrument_id)
            if instrument is None:
                return Decimal(0)
            raw = float(instrument.make_qty(raw, round_down=True).as_decimal())
        return Decimal(str(raw))

    def rebalance(self) -> None:
        """Trade a leg back to its target when it drifted beyond the tolerance."""
        params = self.params
        legs = (params.first_id, params.second_id)
        holdings = [self.holding(i) for i in legs]
        if self.target:
            drift = max(abs(holdings[0] - self.target), abs(holdings[1] + self.target)) / abs(self.target)
            self.max_drift = max(self.max_drift, drift)
        orders = hedge_orders(self.target, holdings, tolerance=params.hedge_tolerance_pct / 100)
        for instrument_id, quantity in zip(legs, orders, strict=True):
            if quantity != 0:
                self.submit_checked([(instrument_id, quantity)])

    def on_risk_flatten(self) -> None:
        self.direction, self.target = 0, Decimal(0)

    def on_order_lost(self, instrument_id: InstrumentId) -> None:
        # A leg was denied or rejected: unwind rather than stay half-hedged; the next decision may re-enter.
        self.direction, self.target = 0, Decimal(0)
