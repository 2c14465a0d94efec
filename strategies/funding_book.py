"""Funding updates as a strategy sees them, and config value parsing shared by the carry strategies."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from nautilus_trader.model import FundingRateUpdate

from strategies.signals import annualize, expected_rate


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


class FundingBook:
    """Funding updates of one perp: the rates that settled and the one announced for the next settlement."""

    def __init__(self) -> None:
        self.announced: dict[int, tuple[Decimal, int]] = {}
        self.settled: list[Decimal] = []
        self.interval_secs: int | None = None

    def add(self, update: FundingRateUpdate) -> None:
        """Record an update (its ``next_funding_ns`` and ``interval`` say when it settles)."""
        if update.next_funding_ns is None:
            return
        minutes = update.interval or 0
        self.announced[update.next_funding_ns] = (update.rate, minutes * 60)

    def advance(self, now_ns: int) -> None:
        """Move every announced rate whose settlement instant has passed to ``settled``."""
        for settles_at in sorted(t for t in self.announced if t <= now_ns):
            rate, interval = self.announced.pop(settles_at)
            self.settled.append(rate)
            if interval > 0:
                self.interval_secs = interval
        del self.settled[:-1000]

    def predicted(self) -> tuple[Decimal, int] | None:
        """Return the rate and interval announced for the next settlement, if one is."""
        if not self.announced:
            return None
        return self.announced[min(self.announced)]

    def expected_apr(self, *, lookback: int, predicted_weight: Decimal) -> Decimal | None:
        """Return the expected funding as an APR, or None while warming up."""
        next_one = self.predicted()
        rate = expected_rate(
            self.settled,
            next_one[0] if next_one else None,
            lookback=lookback,
            predicted_weight=predicted_weight,
        )
        interval = self.interval_secs or (next_one[1] if next_one else 0)
        if rate is None or interval <= 0:
            return None
        return annualize(rate, interval)


def check_carry_params(config: Any) -> None:
    """Check the parameters both carry configs share.

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
