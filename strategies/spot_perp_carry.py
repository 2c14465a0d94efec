"""Spot-perp funding carry on one venue: long spot / short perp while funding pays enough, hedged.

Every bar close where both legs have a bar, the strategy:

1. feeds the risk breakers the current equity (``strategies.risk``);
2. estimates the expected funding per interval from the last ``lookback_settlements`` settled rates
   and the rate announced for the next settlement (``predicted_weight``), annualised on the perp's own
   clock (``strategies.signals``);
3. steps the carry state machine: enter ``+1`` (long spot, short perp, equal base quantity) when the
   APR net of amortised round-trip costs reaches ``entry_apr``; enter ``-1`` (short spot, long perp)
   on negative funding when ``allow_short_spot``; exit when the APR in the position's favour falls
   below ``exit_apr`` or after ``max_holding_hours``;
4. re-balances a leg that drifted more than ``hedge_tolerance_pct`` from its target base quantity
   (partial fills, a denied leg).

Entries send both legs together through the risk gate (both or neither). Look-ahead: our catalogs
announce each settlement's realised rate one interval early, so ``predicted_weight > 0`` uses one
interval of future funding (live, the venue's predicted rate converges to it during the interval).
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
)

# The longest funding clock in our data (Binance, Bybit: 8 h); warm-up is declared in bars of 1 h.
LONGEST_INTERVAL_HOURS = 8


class SpotPerpCarryConfig(StrategyConfig):  # type: ignore[misc]
    """Parameters of ``SpotPerpCarry``.

    Parameters
    ----------
    spot_id, perp_id : str
        The spot pair and the perp on the same venue (run configs may write ``"venue:SYMBOL"``).
    bar_spec : str
        Bars that drive decisions.
    notional : str
        Quote amount of each leg at entry (base quantity = notional / spot close, rounded down to both lots).
    entry_apr, exit_apr : str
        Annualised thresholds (0.10 = 10 %/year): enter at ``apr - cost >= entry_apr``, exit below ``exit_apr``.
    lookback_settlements : int
        Settled rates averaged into the expected rate.
    predicted_weight : str
        Weight of the announced next rate in the expected rate, within [0, 1].
    round_trip_cost_bps : str
        Fees and slippage to open and close both legs, in bps of one leg's notional
        (Binance VIP 0 taker: 2 x (10 + 5) = 30).
    cost_horizon_days : str
        Days over which the round-trip cost is amortised into an APR.
    max_holding_hours : int
        Exit after this long in a position.
    hedge_tolerance_pct : str
        Re-balance a leg more than this far (percent of the target quantity) from its target.
    allow_short_spot : bool
        Also carry negative funding (short spot, long perp): needs a margin account.
    risk : dict
        ``strategies.risk.RiskLimits`` fields.
    """

    PARAMETER_SPACE: ClassVar[dict[str, ParameterRange]] = {
        "entry_apr": parameter_range("0.05", "0.30", "0.05"),
        "exit_apr": parameter_range("0", "0.10", "0.025"),
        "lookback_settlements": parameter_range("1", "21", "5", integer=True),
        "predicted_weight": parameter_range("0", "1", "0.5"),
        "max_holding_hours": parameter_range("168", "2184", "672", integer=True),
    }

    def __init__(
        self,
        spot_id: str,
        perp_id: str,
        bar_spec: str = "1-HOUR-LAST-EXTERNAL",
        notional: str = "10000",
        entry_apr: str = "0.10",
        exit_apr: str = "0.02",
        lookback_settlements: int = 6,
        predicted_weight: str = "0.5",
        round_trip_cost_bps: str = "30",
        cost_horizon_days: str = "30",
        max_holding_hours: int = 2160,
        hedge_tolerance_pct: str = "1",
        allow_short_spot: bool = False,
        risk: dict[str, Any] | None = None,
        order_id_tag: str | None = None,
    ) -> None:
        super().__init__()
        self.spot_id = InstrumentId.from_str(spot_id)
        self.perp_id = InstrumentId.from_str(perp_id)
        if self.spot_id.venue != self.perp_id.venue:
            raise ValueError(f"perp_id: expected a perp on the spot's venue {self.spot_id.venue}, was {perp_id}")
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
        self.allow_short_spot = bool(allow_short_spot)
        self.risk = RiskLimits.from_mapping(risk)
        check_carry_params(self)

    @property
    def warmup_bars(self) -> int:
        """Bars (of 1 h) before the first decision: ``lookback_settlements`` settlements on an 8 h clock."""
        return self.lookback_settlements * LONGEST_INTERVAL_HOURS

    @property
    def cost(self) -> Decimal:
        """The round-trip cost as an APR."""
        return cost_apr(self.round_trip_cost_bps, self.cost_horizon_days)


class SpotPerpCarry(RiskManagedStrategy):
    """Long spot / short perp (or the reverse) in equal base quantity while the funding carry pays."""

    def __init__(self, config: SpotPerpCarryConfig) -> None:
        super().__init__(config, limits=config.risk)
        self.params = config
        self.funding = FundingBook()
        self.bar_ts: dict[InstrumentId, int] = {}
        self.direction = 0
        self.entered_ns = 0
        self.target = Decimal(0)
        self.decisions = 0
        self.max_drift = Decimal(0)

    def on_start(self) -> None:
        params = self.params
        self.start_risk([params.spot_id, params.perp_id], funding=[params.perp_id])
        for instrument_id in (params.spot_id, params.perp_id):
            self.subscribe_bars(BarType.from_str(f"{instrument_id}-{params.bar_spec}"))
        self.subscribe_funding_rates(params.perp_id)
        self.subscribe_mark_prices(params.perp_id)

    def on_funding_rate(self, funding_rate: FundingRateUpdate) -> None:
        self.funding.add(funding_rate)
        self.observe_funding(funding_rate.instrument_id, funding_rate.ts_event, funding_rate.next_funding_ns)

    def on_mark_price(self, mark_price: MarkPriceUpdate) -> None:
        self.observe_mark(mark_price.instrument_id, mark_price.ts_event)

    def on_bar(self, bar: Bar) -> None:
        instrument_id = bar.bar_type.instrument_id
        self.observe_bar(instrument_id, bar.close.as_decimal(), bar.ts_event)
        self.bar_ts[instrument_id] = bar.ts_event
        params = self.params
        if self.bar_ts.get(params.spot_id) != self.bar_ts.get(params.perp_id):
            return
        self.decide(bar.ts_event)

    def decide(self, ts_ns: int) -> None:
        """Take one decision at the close ``ts_ns`` both legs share."""
        params = self.params
        self.check_equity()
        if self.gate.halted:
            return
        self.funding.advance(self.clock.timestamp_ns())
        apr = self.funding.expected_apr(lookback=params.lookback_settlements, predicted_weight=params.predicted_weight)
        self.decisions += 1
        held_secs = (ts_ns - self.entered_ns) // NS_PER_SECOND if self.direction else 0
        wanted = carry_step(
            self.direction,
            held_secs,
            apr,
            entry_apr=params.entry_apr,
            exit_apr=params.exit_apr,
            cost=params.cost,
            max_holding_secs=params.max_holding_hours * 3600,
            allow_reverse=params.allow_short_spot,
        )
        if wanted != self.direction:
            self.switch(wanted, ts_ns)
        self.rebalance()

    def switch(self, wanted: int, ts_ns: int) -> None:
        """Close the current legs (always allowed) and, if ``wanted`` is not flat, open the new pair."""
        params = self.params
        if self.direction != 0:
            self.submit_checked([(i, -self.holding(i)) for i in (params.spot_id, params.perp_id)])
            self.direction, self.target = 0, Decimal(0)
        if wanted == 0:
            return
        quantity = self.pair_quantity()
        if quantity <= 0:
            return
        signed = quantity if wanted > 0 else -quantity
        # Set before sending: a leg the engine denies calls ``on_order_lost`` from inside ``submit_order``.
        self.direction, self.target, self.entered_ns = wanted, signed, ts_ns
        if not self.submit_checked([(params.spot_id, signed), (params.perp_id, -signed)]):
            self.direction, self.target = 0, Decimal(0)

    def pair_quantity(self) -> Decimal:
        """Return the base quantity of each leg: notional / spot close, rounded down to both lots."""
        params = self.params
        price = self.last_price.get(params.spot_id)
        if not price:
            return Decimal(0)
        raw = float(params.notional / price)
        for instrument_id in (params.perp_id, params.spot_id):
            instrument = self.cache.instrument(instrument_id)
            if instrument is None:
                return Decimal(0)
            raw = float(instrument.make_qty(raw, round_down=True).as_decimal())
        return Decimal(str(raw))

    def rebalance(self) -> None:
        """Trade a leg back to its target when it drifted beyond the tolerance."""
        params = self.params
        legs = (params.spot_id, params.perp_id)
        holdings = [self.holding(i) for i in legs]
        scale = max(abs(self.target), Decimal(0))
        if scale:
            drift = max(abs(holdings[0] - self.target), abs(holdings[1] + self.target)) / scale
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
