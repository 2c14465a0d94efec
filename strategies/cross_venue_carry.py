"""Cross-venue perp-perp funding carry: short the perp whose longs pay more, long the other, hedged.

A ``strategies.carry.TwoLegCarry`` on two perps on different venues. Each settles on its own venue's
clock (e.g. Binance every 8 h, Hyperliquid every hour): each has its own ``FundingBook`` and is
annualised on its own interval, so the signal, the spread ``apr_first - apr_second``, compares like
with like. Direction ``+1`` = short the first perp / long the second (when ``spread - cost >=
entry_apr``), ``-1`` the reverse; ``cost`` amortises the taker fees of opening and closing on both
venues. Both legs hold the same base quantity (contracts x multiplier on each venue).

The same look-ahead note as ``strategies.spot_perp_carry`` applies to ``predicted_weight``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, ClassVar

from nautilus_trader.model import InstrumentId

from strategies.carry import DEFAULT_BAR_SPEC, CarryConfig, TwoLegCarry
from strategies.signals import ParameterRange, parameter_range, spread_apr


class CrossVenueCarryConfig(CarryConfig):
    """Parameters of ``CrossVenueCarry``.

    Parameters
    ----------
    first_id, second_id : str
        The two perps, on different venues (run configs may write ``"venue:SYMBOL"``).
    bar_spec : str
        Time bars that drive decisions.
    round_trip_cost_bps : str
        Taker fees and slippage to open and close both legs, in bps of one leg's notional
        (Binance 5 + Hyperliquid 4.5 taker: 2 x 9.5 = 19).
    **carry
        The other ``strategies.carry.CarryConfig`` parameters: ``notional`` (sized at the first
        perp's close), ``entry_apr`` and ``exit_apr`` (on the spread), ``lookback_settlements``,
        ``predicted_weight``, ``cost_horizon_days``, ``max_holding_hours``, ``hedge_tolerance_pct``, ``risk``.

    Raises
    ------
    ValueError
        If both perps are on one venue, or a carry parameter is out of range.
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
        *,
        first_id: str,
        second_id: str,
        bar_spec: str = DEFAULT_BAR_SPEC,
        round_trip_cost_bps: str = "19",
        **carry: Any,
    ) -> None:
        super().__init__(bar_spec=bar_spec, round_trip_cost_bps=round_trip_cost_bps, **carry)
        self.first_id = InstrumentId.from_str(first_id)
        self.second_id = InstrumentId.from_str(second_id)
        if self.first_id.venue == self.second_id.venue:
            raise ValueError(f"second_id: expected a perp on another venue than {self.first_id.venue}, was {second_id}")


class CrossVenueCarry(TwoLegCarry):
    """Short the perp with the higher expected funding, long the other, equal base quantity."""

    FIRST_LEG_SIGN: ClassVar[int] = -1

    def __init__(self, config: CrossVenueCarryConfig) -> None:
        legs = (config.first_id, config.second_id)
        super().__init__(config, legs=legs, funding_legs=legs, allow_reverse=True)
        # (first APR, second APR, spread) of the last answer: the books keep their APR objects until they change.
        self._spread: tuple[Decimal | None, Decimal | None, Decimal | None] = (None, None, None)

    def signal(self) -> Decimal | None:
        """Return ``apr(first) - apr(second)`` on each perp's own clock (positive: short the first).

        The same object while neither book changed, so the carry sees a signal that held as held.
        """
        params = self.params
        first, second = (
            self.books[instrument_id].expected_apr(
                lookback=params.lookback_settlements, predicted_weight=params.predicted_weight
            )
            for instrument_id in self.legs
        )
        if first is None or second is None:
            return None
        known = self._spread
        if known[0] is first and known[1] is second:
            return known[2]
        spread = spread_apr(first, second)
        self._spread = (first, second, spread)
        return spread
