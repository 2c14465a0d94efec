"""Pure signal kernels of the funding carry strategies: no Nautilus, no I/O, testable by hand.

The carry strategies (``strategies.carry.TwoLegCarry`` and its subclasses) call the scalar
functions on every decision with ``Decimal`` inputs; ``research.carry_vbt`` calls the same functions
through ``carry_positions`` on float vectors, so both implementations take the same decisions.

Vocabulary:

- a *settled* rate is one whose settlement instant has passed; the *predicted* rate is the one the
  venue announces for the next settlement (in our catalogs, the rate that later settles exactly);
- ``expected_rate`` blends the mean of the last ``lookback`` settled rates with the predicted one;
- APR = rate per interval x intervals per year (simple, not compounded);
- the carry *direction* is ``+1`` (long spot / short perp: collect positive funding), ``-1`` (the
  reverse: collect negative funding) or ``0`` (flat). For perp-perp carry, ``+1`` means short the
  first perp and long the second.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

import numpy as np
import numpy.typing as npt

SECONDS_PER_YEAR = 365 * 24 * 3600
NS_PER_SECOND = 1_000_000_000
BPS = Decimal(10_000)
Direction = Literal[-1, 0, 1]


@dataclass(frozen=True, slots=True)
class ParameterRange:
    """A swept parameter: inclusive ``low`` to ``high`` in steps of ``step``.

    Attributes
    ----------
    low, high, step : Decimal
        Bounds and grid step, as decimal text in declarations.
    integer : bool
        Whether the parameter is an integer (grid values are then ``int``).
    """

    low: Decimal
    high: Decimal
    step: Decimal
    integer: bool = False

    def __post_init__(self) -> None:
        if self.step <= 0 or self.high < self.low:
            raise ValueError(f"expected low <= high and step > 0, was {self.low}, {self.high}, {self.step}")

    def grid(self) -> list[Decimal] | list[int]:
        """Return the grid ``low, low + step, ...`` up to and including ``high``."""
        count = int((self.high - self.low) / self.step) + 1
        values = [self.low + i * self.step for i in range(count)]
        if self.integer:
            return [int(v) for v in values]
        return values

    def contains(self, value: Decimal | int) -> bool:
        """Return whether ``value`` lies within ``[low, high]``."""
        return self.low <= Decimal(value) <= self.high


def parameter_range(low: str, high: str, step: str, *, integer: bool = False) -> ParameterRange:
    """Return a ``ParameterRange`` from decimal text."""
    return ParameterRange(Decimal(low), Decimal(high), Decimal(step), integer)


def expected_rate(
    settled: Sequence[Decimal], predicted: Decimal | None, *, lookback: int, predicted_weight: Decimal
) -> Decimal | None:
    """Return the expected funding rate per interval, or None until ``lookback`` rates have settled.

    ``predicted_weight * predicted + (1 - predicted_weight) * mean(last lookback settled)``; without a
    predicted rate the mean alone.

    Raises
    ------
    ValueError
        If ``lookback < 1`` or ``predicted_weight`` is outside ``[0, 1]``.
    """
    if lookback < 1:
        raise ValueError(f"lookback: expected >= 1, was {lookback}")
    if not Decimal(0) <= predicted_weight <= Decimal(1):
        raise ValueError(f"predicted_weight: expected within [0, 1], was {predicted_weight}")
    if len(settled) < lookback:
        return None
    recent = settled[-lookback:]
    mean = sum(recent, Decimal(0)) / Decimal(lookback)
    if predicted is None or predicted_weight == 0:
        return mean
    return predicted_weight * predicted + (1 - predicted_weight) * mean


def annualize(rate: Decimal, interval_secs: int) -> Decimal:
    """Return a per-interval rate as a simple annual rate (``0.0001`` every 8 h -> ``0.1095``).

    Raises
    ------
    ValueError
        If ``interval_secs`` is not positive.
    """
    if interval_secs <= 0:
        raise ValueError(f"interval_secs: expected > 0, was {interval_secs}")
    return rate * Decimal(SECONDS_PER_YEAR) / Decimal(interval_secs)


def cost_apr(round_trip_cost_bps: Decimal, horizon_days: Decimal) -> Decimal:
    """Return round-trip costs (bps of one leg's notional) amortised over ``horizon_days`` as an APR.

    Raises
    ------
    ValueError
        If ``horizon_days`` is not positive.
    """
    if horizon_days <= 0:
        raise ValueError(f"horizon_days: expected > 0, was {horizon_days}")
    return round_trip_cost_bps / BPS * Decimal(365) / horizon_days


def carry_step[T: (Decimal, float)](
    position: int,
    held_secs: int,
    apr: T | None,
    *,
    entry_apr: T,
    exit_apr: T,
    cost: T,
    max_holding_secs: int,
    allow_reverse: bool,
) -> Direction:
    """Return the carry direction to hold after one decision.

    Flat: enter ``+1`` when ``apr - cost >= entry_apr``, ``-1`` when ``allow_reverse`` and
    ``-apr - cost >= entry_apr``. In a position of direction ``d``: exit to flat when ``d * apr``
    falls below ``exit_apr`` or the position has been held ``max_holding_secs``. A flat result is
    never reversed in the same step (the next decision may re-enter). Without a signal, hold.
    """
    signal = apr is not None
    decided = carry_decision(
        position,
        held_secs,
        signal,
        apr if apr is not None else entry_apr,
        entry_apr,
        exit_apr,
        cost,
        max_holding_secs,
        allow_reverse,
    )
    return 1 if decided > 0 else -1 if decided < 0 else 0


def carry_decision[T: (Decimal, float)](
    position: int,
    held: int,
    signal: bool,
    apr: T,
    entry_apr: T,
    exit_apr: T,
    cost: T,
    max_holding: int,
    allow_reverse: bool,
) -> int:
    """Return ``carry_step``'s decision from positional arguments: the one rule, which kernels compile.

    ``signal`` False means no signal (``apr`` is then ignored); ``held`` and ``max_holding`` are in one
    unit (seconds here, nanoseconds in ``research.carry_kernel``, which compiles this with numba).
    """
    direction = 1 if position > 0 else -1 if position < 0 else 0
    if not signal:
        return direction
    if position != 0:
        if position * apr < exit_apr or held >= max_holding:
            return 0
        return direction
    if apr - cost >= entry_apr:
        return 1
    if allow_reverse and -apr - cost >= entry_apr:
        return -1
    return 0


def carry_positions(
    apr: npt.NDArray[np.float64],
    ts_ns: npt.NDArray[np.int64],
    *,
    entry_apr: float,
    exit_apr: float,
    cost: float,
    max_holding_secs: int,
    allow_reverse: bool,
) -> npt.NDArray[np.int8]:
    """Return the direction held after each decision, running ``carry_step`` over vectors (NaN = no signal).

    Raises
    ------
    ValueError
        If ``apr`` and ``ts_ns`` differ in length.
    """
    if apr.shape != ts_ns.shape:
        raise ValueError(f"expected apr and ts_ns of one length, was {apr.shape} and {ts_ns.shape}")
    out = np.zeros(apr.shape, dtype=np.int8)
    position = 0
    entered_ns = 0
    for i in range(apr.shape[0]):
        value = float(apr[i])
        held = (int(ts_ns[i]) - entered_ns) // NS_PER_SECOND if position else 0
        new = carry_step(
            position,
            held,
            None if value != value else value,
            entry_apr=entry_apr,
            exit_apr=exit_apr,
            cost=cost,
            max_holding_secs=max_holding_secs,
            allow_reverse=allow_reverse,
        )
        if new != position and new != 0:
            entered_ns = int(ts_ns[i])
        position = new
        out[i] = new
    return out


def hedge_orders(target: Decimal, holdings: Sequence[Decimal], *, tolerance: Decimal) -> list[Decimal]:
    """Return the signed quantity to trade on each leg so that leg ``i`` holds ``target_i``.

    ``holdings`` are the legs' signed base quantities; the targets are ``+target`` for the first leg
    and ``-target`` for every other (long one, short the others for ``target > 0``). A leg trades only
    when it is off its target by more than ``tolerance`` (a fraction of ``|target|``), or when the
    target is zero and it holds anything.

    Raises
    ------
    ValueError
        If ``tolerance`` is negative or fewer than two legs are given.
    """
    if tolerance < 0:
        raise ValueError(f"tolerance: expected >= 0, was {tolerance}")
    if len(holdings) < 2:
        raise ValueError(f"holdings: expected two legs or more, was {len(holdings)}")
    orders = []
    for index, held in enumerate(holdings):
        wanted = target if index == 0 else -target
        gap = wanted - held
        limit = abs(target) * tolerance
        orders.append(gap if (gap != 0 and (target == 0 or abs(gap) > limit)) else Decimal(0))
    return orders


def hedge_drift(holdings: Sequence[Decimal]) -> Decimal:
    """Return how unhedged two legs are: ``|a + b| / max(|a|, |b|)`` (0 when flat or perfectly hedged)."""
    first, second = holdings[0], holdings[1]
    scale = max(abs(first), abs(second))
    if scale == 0:
        return Decimal(0)
    return abs(first + second) / scale


def spread_apr(apr_first: Decimal, apr_second: Decimal) -> Decimal:
    """Return the carry of short-first / long-second perps: ``apr_first - apr_second``.

    Positive when the first perp's longs pay more than the second's: short the first, long the second.
    """
    return apr_first - apr_second
