"""Spot-perp funding carry on one venue: long spot / short perp while funding pays enough, hedged.

A ``strategies.carry.TwoLegCarry`` on the legs (spot, perp). Its signal is the perp's expected funding
(``FundingBook.expected_apr``): the mean of the last ``lookback_settlements`` settled rates blended with
the rate announced for the next settlement (``predicted_weight``), annualised on the perp's own clock.
Direction ``+1`` is long spot / short perp (collect positive funding) in equal base quantity
(perp contracts x multiplier = spot quantity); ``-1``, short spot / long perp on negative funding,
only with ``allow_short_spot``.

Look-ahead: our catalogs announce each settlement's realised rate one interval early, so
``predicted_weight > 0`` uses one interval of future funding (live, the venue's predicted rate
converges to it during the interval).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, ClassVar

from nautilus_trader.model import InstrumentId

from strategies.carry import DEFAULT_BAR_SPEC, CarryConfig, TwoLegCarry
from strategies.signals import ParameterRange, parameter_range


class SpotPerpCarryConfig(CarryConfig):
    """Parameters of ``SpotPerpCarry``.

    Parameters
    ----------
    spot_id, perp_id : str
        The spot pair and the perp on the same venue (run configs may write ``"venue:SYMBOL"``).
    bar_spec : str
        Time bars that drive decisions.
    round_trip_cost_bps : str
        Fees and slippage to open and close both legs, in bps of one leg's notional
        (Binance VIP 0 taker: 2 x (10 + 5) = 30).
    allow_short_spot : bool
        Also carry negative funding (short spot, long perp): needs a margin account.
    **carry
        The other ``strategies.carry.CarryConfig`` parameters: ``notional`` (sized at the spot close),
        ``entry_apr``, ``exit_apr``, ``lookback_settlements``, ``predicted_weight``,
        ``cost_horizon_days``, ``max_holding_hours``, ``hedge_tolerance_pct``, ``risk``.

    Raises
    ------
    ValueError
        If the perp is on another venue than the spot, or a carry parameter is out of range.
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
        *,
        spot_id: str,
        perp_id: str,
        bar_spec: str = DEFAULT_BAR_SPEC,
        round_trip_cost_bps: str = "30",
        allow_short_spot: bool = False,
        **carry: Any,
    ) -> None:
        super().__init__(bar_spec=bar_spec, round_trip_cost_bps=round_trip_cost_bps, **carry)
        self.spot_id = InstrumentId.from_str(spot_id)
        self.perp_id = InstrumentId.from_str(perp_id)
        if self.spot_id.venue != self.perp_id.venue:
            raise ValueError(f"perp_id: expected a perp on the spot's venue {self.spot_id.venue}, was {perp_id}")
        self.allow_short_spot = bool(allow_short_spot)


class SpotPerpCarry(TwoLegCarry):
    """Long spot / short perp (or the reverse) in equal base quantity while the funding carry pays."""

    def __init__(self, config: SpotPerpCarryConfig) -> None:
        super().__init__(
            config,
            legs=(config.spot_id, config.perp_id),
            funding_legs=[config.perp_id],
            allow_reverse=config.allow_short_spot,
        )
        self.funding = self.books[config.perp_id]

    def signal(self) -> Decimal | None:
        """Return the perp's expected funding APR (positive: the short perp collects)."""
        params = self.params
        return self.funding.expected_apr(lookback=params.lookback_settlements, predicted_weight=params.predicted_weight)
