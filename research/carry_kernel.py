"""Fast two-leg carry kernel (numba) for both carry strategies: the engine's decisions, fills and funding.

One compiled loop scores many parameter sets of ``strategies.carry.TwoLegCarry`` (spot-perp and
cross-venue) on one range of bars, with the engine's rules:

- decisions: ``strategies.signals.carry_step`` semantics on the decision grid (bar closes where both
  legs have a bar); the signal is ``strategies.funding.FundingBook.expected_apr`` (evaluated in
  decimals, once per lookback and predicted weight, by ``research.carry_vbt.expected_apr``'s method)
  for the spot-perp, and ``apr(first) - apr(second)`` for the cross-venue carry;
- warm-up and end: a run over ``[S, E)`` knows only settlements in ``(S, E)``, so the signal is NaN
  until ``lookback`` of them settled on every funding leg, and a leg whose next settlement is at or
  after ``E`` has no announced rate (what a fresh engine run's books hold);
- sizing: ``pair_base_quantity`` (notional / first leg's close, down to the common lot);
- fills: market orders at the decision bar's close, ``slippage_bps`` against the taker, rounded to the
  tick against the taker (``engine.fill``); taker fees on every order; closing and opening are two orders;
- funding: ``strategies.funding.funding_payment`` of the contracts held after the last decision strictly
  before each settlement ``T`` in ``(S, E)``, at the latest mark at or before ``T`` within the run
  (before the first one, the leg's last bar close before ``T``).

Not modelled: the engine's risk controls (run sweeps without binding limits) and re-hedging (fills here
are always complete, as in the engine's fill model). Float64 throughout; ``research.sweep`` re-runs the
picks through the engine, the ledger of record.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import numba
import numpy as np
import pandas as pd
import polars as pl

from datasets.catalog.bars import round_to_increment, round_to_precision
from datasets.instruments import spec_in_force
from datasets.store import Store
from datasets.venues import venue_spec
from research.errors import SweepError
from strategies.carry import common_lot
from strategies.funding import FundingBook, funding_payment
from strategies.signals import NS_PER_SECOND, SECONDS_PER_YEAR, carry_decision

NS = pl.Datetime("ns", "UTC")
SPOT_PERP = "strategies.spot_perp_carry:SpotPerpCarry"
CROSS_VENUE = "strategies.cross_venue_carry:CrossVenueCarry"
# Columns of the kernel's output, one row per parameter set.
METRICS = (
    "pnl_total",
    "pnl_price",
    "pnl_funding",
    "pnl_fees",
    "fills",
    "entries",
    "sharpe",
    "max_drawdown",
    "settlements",
)


@dataclass(frozen=True, slots=True)
class FundingLeg:
    """One perp's funding: settlements, the exact rates for the strategy's book, its marks and bars."""

    settle_ns: np.ndarray
    rate: np.ndarray
    interval_secs: np.ndarray
    rate_decimal: tuple[Decimal, ...]
    mark_ns: np.ndarray
    mark_price: np.ndarray
    bar_ns: np.ndarray
    bar_close: np.ndarray


@dataclass(frozen=True, slots=True)
class TwoLegInputs:
    """Float vectors of a two-leg carry on its decision grid, with the legs' contract specs and funding."""

    ts_ns: np.ndarray
    close: np.ndarray  # (2, n)
    tick: np.ndarray  # (2,)
    taker: np.ndarray  # (2,)
    multiplier: np.ndarray  # (2,)
    contract_places: np.ndarray  # (2,) decimals of each leg's lot (contracts)
    lot_base: float  # the common lot of both legs in base units
    funding: tuple[FundingLeg | None, FundingLeg | None]
    first_leg_sign: int  # +1 spot-perp (long spot in +1), -1 cross-venue (short the first perp in +1)
    allow_reverse: bool
    legs: tuple[str, str]


def _leg(text: str) -> tuple[str, str]:
    venue, _, symbol = text.partition(":")
    if not symbol:
        raise SweepError(f"expected a leg as 'venue:SYMBOL', was {text!r}")
    return venue, symbol


def _closes(store: Store, venue: str, symbol: str, price_type: str, *, start: datetime, end: datetime) -> pl.DataFrame:
    instrument = spec_in_force(store, venue, symbol, start)
    if price_type == "trade":
        rounded = round_to_increment(pl.col("close"), instrument.price_increment)
    else:
        rounded = round_to_precision(pl.col("close"), instrument.price_precision)
    frame = store.scan("ohlcv", start=start, end=end, venue=venue, symbol=symbol, price_type=price_type).collect()
    if frame.height == 0:
        return pl.DataFrame({"ts": [], "close": []}, schema={"ts": NS, "close": pl.Float64})
    # The finest interval, stamped at the bar close, as the catalog export does.
    steps = {i: pd.Timedelta(i) for i in frame["interval"].unique().to_list()}
    finest = min(steps, key=lambda i: steps[i])
    step = steps[finest].to_pytimedelta()
    return (
        frame.filter(pl.col("interval") == finest)
        .select(ts=(pl.col("ts") + step).cast(NS), close=rounded.cast(pl.Float64))
        .filter(pl.col("ts") < end)
        .sort("ts")
    )


def _ns(series: pl.Series) -> np.ndarray:
    return series.cast(NS).cast(pl.Int64).to_numpy()


def _funding_leg(
    store: Store, venue: str, symbol: str, *, start: datetime, end: datetime, bars: pl.DataFrame
) -> FundingLeg:
    funding = (
        store.scan("funding", venue=venue, symbol=symbol, start=start, end=end)
        .filter(pl.col("ts") > start)
        .select("ts", "rate", "interval")
        .collect()
        .sort("ts")
    )
    marks = _closes(store, venue, symbol, "mark", start=start, end=end)
    return FundingLeg(
        settle_ns=_ns(funding["ts"]),
        rate=funding["rate"].cast(pl.Float64).to_numpy(),
        interval_secs=np.asarray([int(pd.Timedelta(i).total_seconds()) for i in funding["interval"]], dtype=np.int64),
        rate_decimal=tuple(funding["rate"].to_list()),
        mark_ns=_ns(marks["ts"]),
        mark_price=marks["close"].to_numpy(),
        bar_ns=_ns(bars["ts"]),
        bar_close=bars["close"].to_numpy(),
    )


def load_two_leg_inputs(
    store: Store,
    *,
    strategy_path: str,
    params: Mapping[str, Any],
    start: datetime,
    end: datetime,
    taker_fees: Mapping[str, Decimal | None] | None = None,
) -> TwoLegInputs:
    """Return the kernel's inputs for a carry run config's strategy over bar closes in ``[start, end)``.

    ``taker_fees`` maps a venue to its configured taker fee (None: the venue spec's, by market).

    Raises
    ------
    SweepError
        If the strategy is not one of the two carry strategies, or the legs share no bar.
    """
    if strategy_path == SPOT_PERP:
        legs = (_leg(params["spot_id"]), _leg(params["perp_id"]))
        funded, sign, reverse = (False, True), 1, bool(params.get("allow_short_spot", False))
    elif strategy_path == CROSS_VENUE:
        legs = (_leg(params["first_id"]), _leg(params["second_id"]))
        funded, sign, reverse = (True, True), -1, True
    else:
        raise SweepError(f"expected strategy {SPOT_PERP} or {CROSS_VENUE}, was {strategy_path}")
    bars = [_closes(store, v, s, "trade", start=start, end=end) for v, s in legs]
    grid = (
        bars[0]
        .filter(pl.col("ts") >= start)
        .join(bars[1].filter(pl.col("ts") >= start), on="ts", suffix="_1")
        .sort("ts")
    )
    if grid.height == 0:
        raise SweepError(f"expected common bars of {legs[0]} and {legs[1]} in [{start}, {end}), found none")
    specs = [spec_in_force(store, v, s, start) for v, s in legs]
    fees = []
    for (venue, _), spec in zip(legs, specs, strict=True):
        configured = (taker_fees or {}).get(venue)
        fees.append(float(configured if configured is not None else venue_spec(venue).fees(spec.market).taker))
    funding = tuple(
        _funding_leg(store, v, s, start=start, end=end, bars=b) if f else None
        for (v, s), b, f in zip(legs, bars, funded, strict=True)
    )
    return TwoLegInputs(
        ts_ns=_ns(grid["ts"]),
        close=np.vstack([grid["close"].to_numpy(), grid["close_1"].to_numpy()]),
        tick=np.array([float(s.price_increment) for s in specs]),
        taker=np.array(fees),
        multiplier=np.array([float(s.multiplier) for s in specs]),
        contract_places=np.array([max(-int(s.size_increment.as_tuple().exponent), 0) for s in specs], dtype=np.int64),
        lot_base=float(common_lot([s.size_increment * s.multiplier for s in specs])),
        funding=(funding[0], funding[1]),
        first_leg_sign=sign,
        allow_reverse=reverse,
        legs=(f"{legs[0][0]}:{legs[0][1]}", f"{legs[1][0]}:{legs[1][1]}"),
    )


def book_apr(leg: FundingLeg, ts_ns: np.ndarray, *, lookback: int, predicted_weight: float) -> np.ndarray:
    """Return ``FundingBook.expected_apr`` at every close of ``ts_ns``, the book knowing every settlement of ``leg``."""
    return apr_series(
        leg.settle_ns, leg.interval_secs, leg.rate_decimal, ts_ns, lookback=lookback, predicted_weight=predicted_weight
    )


def apr_series(
    when: np.ndarray,
    intervals: np.ndarray,
    rates: Sequence[Decimal],
    ts_ns: np.ndarray,
    *,
    lookback: int,
    predicted_weight: float,
) -> np.ndarray:
    """Return the strategy's ``FundingBook.expected_apr`` at every close of ``ts_ns`` (NaN while warming up).

    The book is fed every settlement (``when``, its interval, its rate as a decimal) and evaluated, in
    decimals, at each instant what it knows changes: at a close ``t`` it holds the rates announced at or
    before ``t`` (a rate settling at ``T`` is announced at ``T - interval``) and has settled those with
    ``T <= t``, as the strategy's book does on the engine's clock. The one place both research twins
    (this kernel and ``research.carry_vbt``) compute the signal.
    """
    announced_at = when - intervals * NS_PER_SECOND
    instants = np.unique(np.concatenate([announced_at, when]))
    order = np.argsort(announced_at, kind="stable")
    weight = Decimal(repr(predicted_weight))
    book = FundingBook()
    values = np.full(instants.shape, np.nan)
    told = 0
    for k, instant in enumerate(instants.tolist()):
        while told < order.size and announced_at[order[told]] <= instant:
            i = int(order[told])
            book.announce(int(when[i]), rates[i], int(intervals[i]))
            told += 1
        book.advance(instant)
        apr = book.expected_apr(lookback=lookback, predicted_weight=weight)
        if apr is not None:
            values[k] = float(apr)
    latest = np.searchsorted(instants, ts_ns, side="right") - 1
    return np.where(latest >= 0, values[np.clip(latest, 0, None)], np.nan)


def signal_keys(combos: list[Mapping[str, Any]]) -> list[tuple[int, float]]:
    """Return the distinct ``(lookback_settlements, predicted_weight)`` of ``combos``, sorted."""
    return sorted({(int(c["lookback_settlements"]), float(c["predicted_weight"])) for c in combos})


def full_signals(inputs: TwoLegInputs, keys: list[tuple[int, float]]) -> np.ndarray:
    """Return each funding leg's expected APR on the whole grid for each key, shape (2, L, K, n).

    ``[0]`` is the book with every settlement; ``[1]`` the same book without the announced rate
    (the mean of the settled ones), which is what a run ending before the next settlement knows:
    the engine loads no funding update settling at or after the run's end.
    """
    funded = [leg for leg in inputs.funding if leg is not None]
    out = np.empty((2, len(funded), len(keys), inputs.ts_ns.size))
    for k, (lookback, weight) in enumerate(keys):
        for index, leg in enumerate(funded):
            out[0, index, k] = book_apr(leg, inputs.ts_ns, lookback=lookback, predicted_weight=weight)
            out[1, index, k] = (
                out[0, index, k]
                if weight == 0
                else book_apr(leg, inputs.ts_ns, lookback=lookback, predicted_weight=0.0)
            )
    return out


@dataclass(frozen=True, slots=True)
class RangeSlice:
    """What one task needs to score parameter sets on one range: vectors, masked signals, settlements."""

    ts_ns: np.ndarray
    close: np.ndarray
    signals: np.ndarray  # (K, n), NaN while a fresh run starting at the range warms up
    settle: tuple[np.ndarray, np.ndarray]  # per leg: (k, 3) of ts, rate, mark; empty for no funding
    statics: np.ndarray  # tick0, tick1, taker0, taker1, mult0, mult1, places0, places1, lot, sign, reverse


def _settlements(leg: FundingLeg, *, start_ns: int, end_ns: int) -> np.ndarray:
    inside = (leg.settle_ns > start_ns) & (leg.settle_ns < end_ns)
    when, rate = leg.settle_ns[inside], leg.rate[inside]
    mark_at = np.searchsorted(leg.mark_ns, when, side="right") - 1
    has_mark = (mark_at >= 0) & (leg.mark_ns[np.clip(mark_at, 0, None)] >= start_ns)
    bar_at = np.searchsorted(leg.bar_ns, when, side="left") - 1
    fallback = np.where(bar_at >= 0, leg.bar_close[np.clip(bar_at, 0, None)], 0.0)
    mark = np.where(has_mark, leg.mark_price[np.clip(mark_at, 0, None)], fallback)
    return np.column_stack([when.astype(np.float64), rate, mark])


def slice_range(
    inputs: TwoLegInputs, signals: np.ndarray, keys: list[tuple[int, float]], *, start_ns: int, end_ns: int
) -> RangeSlice:
    """Return the slice of a run over ``[start_ns, end_ns)``: the grid, the signal a fresh run has, settlements.

    A fresh run's books start empty at ``start_ns`` (NaN until ``lookback`` settlements) and never see
    a rate settling at or after ``end_ns`` (the settled mean alone once the next settlement is that late).
    """
    lo, hi = np.searchsorted(inputs.ts_ns, [start_ns, end_ns], side="left")
    ts = inputs.ts_ns[lo:hi]
    lookbacks = np.array([k[0] for k in keys])
    legs, settles = [], []
    for leg in inputs.funding:
        if leg is None:
            settles.append(np.empty((0, 3)))
            continue
        index = len(legs)
        first = np.searchsorted(leg.settle_ns, start_ns, side="right")
        following = np.searchsorted(leg.settle_ns, ts, side="right")
        late = np.append(leg.settle_ns, np.iinfo(np.int64).max)[following] >= end_ns
        apr = np.where(late[None, :], signals[1, index, :, lo:hi], signals[0, index, :, lo:hi])
        apr[(following - first)[None, :] < lookbacks[:, None]] = np.nan
        legs.append(apr)
        settles.append(_settlements(leg, start_ns=start_ns, end_ns=end_ns))
    combined = legs[0] if len(legs) == 1 else legs[0] - legs[1]
    statics = np.array(
        [
            *inputs.tick,
            *inputs.taker,
            *inputs.multiplier,
            *inputs.contract_places,
            inputs.lot_base,
            inputs.first_leg_sign,
            1.0 if inputs.allow_reverse else 0.0,
        ],
        dtype=np.float64,
    )
    return RangeSlice(ts, inputs.close[:, lo:hi].copy(), combined, (settles[0], settles[1]), statics)


@numba.njit(cache=True)
def _fill_price(close: float, buy: bool, tick: float, slippage: float) -> float:
    if buy:
        return np.ceil(close * (1.0 + slippage) / tick - 1e-9) * tick
    return np.floor(close * (1.0 - slippage) / tick + 1e-9) * tick


# The one decision rule (strategies.signals.carry_decision), compiled.
_carry_decision = numba.njit(cache=True)(carry_decision)


@numba.njit(cache=True)
def _step(
    position: int, held_ns: int, apr: float, entry: float, exit_: float, cost: float, hold_ns: int, rev: bool
) -> int:
    # ``carry_step`` with ``held_secs >= max_holding_secs`` as ``held_ns >= hold_ns`` (the same test for
    # whole seconds, without a division per bar). NaN is "no signal".
    return _carry_decision(position, held_ns, apr == apr, apr, entry, exit_, cost, hold_ns, rev)


# The one funding formula (strategies.funding), compiled.
_funding_payment = numba.njit(cache=True)(funding_payment)


@numba.njit(cache=True)
def _settle(settle: np.ndarray, k: int, upto: float, pos: float, mult: float, places: int) -> tuple[int, float, int]:
    received, count = 0.0, 0
    while k < settle.shape[0] and settle[k, 0] <= upto:
        contracts = round(pos / mult, places)
        received += _funding_payment(contracts, mult, settle[k, 2], settle[k, 1])
        count += 1 if contracts != 0 else 0
        k += 1
    return k, received, count


@numba.njit(cache=True)
def _pair_order(first, c0, c1, tick0, tick1, taker0, taker1, slippage, cash, fees):
    # Trade ``first`` base units on leg 0 and ``-first`` on leg 1 at the engine's fill prices.
    price0 = _fill_price(c0, first > 0, tick0, slippage)
    price1 = _fill_price(c1, first < 0, tick1, slippage)
    cash += -first * price0 + first * price1
    fees += abs(first) * (price0 * taker0 + price1 * taker1)
    return cash, fees


@numba.njit(cache=True)
def _run_one(ts, close, signal, settle0, settle1, statics, entry, exit_, cost, hold, notional, slippage, out):
    tick0, tick1, taker0, taker1, mult0, mult1 = statics[0], statics[1], statics[2], statics[3], statics[4], statics[5]
    places0, places1, lot, sign, rev = int(statics[6]), int(statics[7]), statics[8], statics[9], statics[10] > 0.5
    n = ts.shape[0]
    position, entered = 0, 0
    pos0 = pos1 = cash = fees = funding = 0.0
    fills = entries = settlements = 0
    k0 = k1 = 0
    next0 = settle0[0, 0] if settle0.shape[0] else np.inf
    next1 = settle1[0, 0] if settle1.shape[0] else np.inf
    hold_ns = hold * NS_PER_SECOND
    peak, drawdown, previous = 0.0, 0.0, 0.0
    total, total_sq = 0.0, 0.0
    for i in range(n):
        t = ts[i]
        if t >= next0:
            k0, got, count = _settle(settle0, k0, t, pos0, mult0, places0)
            funding += got
            settlements += count
            next0 = settle0[k0, 0] if k0 < settle0.shape[0] else np.inf
        if t >= next1:
            k1, got, count = _settle(settle1, k1, t, pos1, mult1, places1)
            funding += got
            settlements += count
            next1 = settle1[k1, 0] if k1 < settle1.shape[0] else np.inf
        wanted = _step(position, t - entered, signal[i], entry, exit_, cost, hold_ns, rev)
        if wanted != position:
            c0, c1 = close[0, i], close[1, i]
            if position != 0:
                cash, fees = _pair_order(-pos0, c0, c1, tick0, tick1, taker0, taker1, slippage, cash, fees)
                pos0 = pos1 = 0.0
                position = 0
                fills += 2
            quantity = np.floor(notional / (c0 * lot) + 1e-9) * lot if wanted != 0 and c0 > 0 else 0.0
            if quantity > 0:
                first = quantity * wanted * sign
                cash, fees = _pair_order(first, c0, c1, tick0, tick1, taker0, taker1, slippage, cash, fees)
                pos0, pos1 = first, -first
                position, entered = wanted, t
                fills += 2
                entries += 1
        equity = cash + pos0 * close[0, i] + pos1 * close[1, i] + funding - fees
        change = equity - previous
        previous = equity
        total += change
        total_sq += change * change
        peak = max(peak, equity)
        drawdown = max(drawdown, peak - equity)
    k0, got0, n0 = _settle(settle0, k0, np.inf, pos0, mult0, places0)
    k1, got1, n1 = _settle(settle1, k1, np.inf, pos1, mult1, places1)
    funding += got0 + got1
    settlements += n0 + n1
    price_pnl = cash + (pos0 * close[0, n - 1] + pos1 * close[1, n - 1] if n else 0.0)
    out[0] = price_pnl + funding - fees
    out[1] = price_pnl
    out[2] = funding
    out[3] = -fees
    out[4] = fills
    out[5] = entries
    if n > 1:
        mean = total / n
        std = np.sqrt(max(total_sq / n - mean * mean, 0.0))
        seconds = (ts[n - 1] - ts[0]) / NS_PER_SECOND / (n - 1)
        out[6] = mean / std * np.sqrt(SECONDS_PER_YEAR / seconds) if std > 0 else 0.0
    else:
        out[6] = 0.0
    out[7] = drawdown
    out[8] = settlements


@numba.njit(cache=True)
def score_batch(ts, close, signals, settle0, settle1, statics, params, notional, slippage):
    """Score every row of ``params`` (signal index, entry_apr, exit_apr, cost APR, max holding secs)."""
    out = np.empty((params.shape[0], 9))
    for p in range(params.shape[0]):
        key = int(params[p, 0])
        _run_one(
            ts,
            close,
            signals[key],
            settle0,
            settle1,
            statics,
            params[p, 1],
            params[p, 2],
            params[p, 3],
            int(params[p, 4]),
            notional,
            slippage,
            out[p],
        )
    return out


def score(piece: RangeSlice, params: np.ndarray, *, notional: float, slippage_bps: float) -> np.ndarray:
    """Return the kernel's ``METRICS`` for each parameter row on one range slice, shape (P, len(METRICS))."""
    if piece.ts_ns.size == 0:
        return np.zeros((params.shape[0], len(METRICS)))
    return score_batch(
        piece.ts_ns,
        piece.close,
        piece.signals,
        piece.settle[0],
        piece.settle[1],
        piece.statics,
        np.ascontiguousarray(params, dtype=np.float64),
        float(notional),
        float(slippage_bps) / 10_000,
    )
