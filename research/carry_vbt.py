"""Spot-perp funding carry in vectorbt, on the same Parquet store as the engine: fast sweeps, and a cross-check.

The decisions are the engine strategy's own: ``strategies.signals.carry_step`` run over float vectors
(``carry_positions``), on the same grid (bar closes where spot and perp both have a bar), with the
same expected funding (``strategies.funding.FundingBook.expected_apr``, evaluated in decimals wherever
what the book knows changes) and the same sizing (``strategies.carry.pair_base_quantity``: notional /
spot close in base units, rounded down to both lots, the perp's being its contract lot x multiplier).
vectorbt then books the two legs in base units (``Portfolio.from_orders``, target amounts, taker fees)
and funding is added at every settlement as ``strategies.funding.funding_payment`` of the perp's
contracts (base / multiplier), as the engine settles it.

Fill model, and how it differs from the engine's (``engine.fill``):

- both fill market orders at the close of the bar the decision was taken on, moved ``slippage_bps``
  against the taker; with ``tick_rounding=True`` (default) the slipped price is rounded to the tick
  against the taker as the engine does, otherwise vectorbt's own ``slippage`` is used (no rounding:
  up to one tick x quantity per fill apart);
- vectorbt computes in float64, the engine in decimals (fees rounded to the settlement currency's
  precision): a few 1e-8 USDT per fill and per settlement;
- the engine's risk controls may deny an order; vectorbt has none, so compare runs without binding
  limits;
- funding uses the latest mark price at the settlement instant, or, before the first mark, the close
  of the last perp bar before it (what the engine's book holds).

Nothing under ``engine/``, ``strategies/`` or ``datasets/`` imports this module.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import vectorbt as vbt

from datasets.catalog.bars import round_to_increment, round_to_precision
from datasets.instruments import spec_in_force
from datasets.store import Store
from datasets.venues import venue_spec
from research.carry_kernel import apr_series
from strategies.carry import pair_base_quantity
from strategies.funding import funding_payment
from strategies.signals import carry_positions, cost_apr
from strategies.spot_perp_carry import SpotPerpCarryConfig

NS = pl.Datetime("ns", "UTC")


@dataclass(frozen=True, slots=True)
class CarryInputs:
    """Float vectors of one spot-perp pair on the decision grid, plus the funding schedule and marks."""

    ts_ns: np.ndarray  # bar close times where both legs have a bar
    spot_close: np.ndarray
    perp_close: np.ndarray
    settle_ns: np.ndarray  # funding settlement instants, sorted
    settle_rate: np.ndarray
    settle_interval_secs: np.ndarray
    settle_rate_decimal: tuple[Decimal, ...]  # the same rates exactly, for the strategy's FundingBook
    mark_ns: np.ndarray
    mark_price: np.ndarray
    perp_bar_ns: np.ndarray  # every perp bar close (for the no-mark fallback)
    perp_bar_close: np.ndarray
    spot_tick: Decimal
    perp_tick: Decimal
    spot_lot: Decimal
    perp_lot: Decimal  # in contracts
    perp_multiplier: Decimal  # base units per contract (OKX BTC swap: 0.01)
    spot_taker: float
    perp_taker: float
    meta: dict[str, str] = field(default_factory=dict)


def load_carry_inputs(
    store: Store,
    *,
    venue: str = "binance",
    base: str = "BTC",
    quote: str = "USDT",
    start: datetime,
    end: datetime,
    interval: str = "1h",
) -> CarryInputs:
    """Return the vectors of ``<base>-<quote>`` spot and perp on ``venue`` for bar closes in ``[start, end)``.

    Raises
    ------
    ValueError
        If the store holds no common bars for the two legs in the range.
    """
    spot_symbol, perp_symbol = f"{base}-{quote}", f"{base}-{quote}-PERP"
    step = pd.Timedelta(interval).to_pytimedelta()
    spec = venue_spec(venue)
    spot_spec, perp_spec = (spec_in_force(store, venue, s, start) for s in (spot_symbol, perp_symbol))

    def closes(symbol: str, price_type: str) -> pl.DataFrame:
        # Round as the catalog export does, so both implementations see the same prices.
        instrument = spot_spec if symbol == spot_symbol else perp_spec
        if price_type == "trade":
            rounded = round_to_increment(pl.col("close"), instrument.price_increment)
        else:
            rounded = round_to_precision(pl.col("close"), instrument.price_precision)
        frame = (
            store.scan(
                "ohlcv",
                start=start - step - timedelta(days=3),
                end=end,
                venue=venue,
                symbol=symbol,
                price_type=price_type,
                interval=interval,
            )
            .select(ts=(pl.col("ts") + step).cast(NS), close=rounded.cast(pl.Float64))
            .filter(pl.col("ts") < end)
            .collect()
        )
        return frame.sort("ts")

    spot, perp = closes(spot_symbol, "trade"), closes(perp_symbol, "trade")
    marks = closes(perp_symbol, "mark")
    grid = (
        spot.filter(pl.col("ts") >= start).join(perp.filter(pl.col("ts") >= start), on="ts", suffix="_perp").sort("ts")
    )
    if grid.height == 0:
        raise ValueError(f"expected common {spot_symbol} and {perp_symbol} bars on {venue} in the range, found none")
    funding = (
        # As the engine: only settlements strictly inside the run, so warm-up starts at ``start`` in both.
        store.scan("funding", venue=venue, symbol=perp_symbol, start=start, end=end)
        .filter(pl.col("ts") > start)
        .select("ts", "rate", "interval")
        .collect()
        .sort("ts")
    )
    interval_secs = [int(pd.Timedelta(i).total_seconds()) for i in funding["interval"].to_list()]
    return CarryInputs(
        ts_ns=_ns(grid["ts"]),
        spot_close=grid["close"].to_numpy(),
        perp_close=grid["close_perp"].to_numpy(),
        settle_ns=_ns(funding["ts"]),
        settle_rate=funding["rate"].cast(pl.Float64).to_numpy(),
        settle_interval_secs=np.asarray(interval_secs, dtype=np.int64),
        settle_rate_decimal=tuple(funding["rate"].to_list()),
        mark_ns=_ns(marks["ts"]),
        mark_price=marks["close"].to_numpy(),
        perp_bar_ns=_ns(perp["ts"]),
        perp_bar_close=perp["close"].to_numpy(),
        spot_tick=spot_spec.price_increment,
        perp_tick=perp_spec.price_increment,
        spot_lot=spot_spec.size_increment,
        perp_lot=perp_spec.size_increment,
        perp_multiplier=perp_spec.multiplier,
        spot_taker=float(spec.fees("spot").taker),
        perp_taker=float(spec.fees("perp").taker),
        meta={"venue": venue, "spot": spot_symbol, "perp": perp_symbol},
    )


def _ns(series: pl.Series) -> np.ndarray:
    return series.cast(NS).cast(pl.Int64).to_numpy()


def expected_apr(inputs: CarryInputs, *, lookback: int, predicted_weight: float) -> np.ndarray:
    """Return the strategy's expected funding APR at every decision (NaN while warming up).

    ``research.carry_kernel.apr_series``: the strategy's own ``FundingBook.expected_apr`` in decimals,
    as its book sees the settlements on the engine's clock.
    """
    return apr_series(
        inputs.settle_ns,
        inputs.settle_interval_secs,
        inputs.settle_rate_decimal,
        inputs.ts_ns,
        lookback=lookback,
        predicted_weight=predicted_weight,
    )


def targets(inputs: CarryInputs, directions: np.ndarray, *, notional: float) -> tuple[np.ndarray, np.ndarray]:
    """Return the spot target quantity at every decision and whether the target changed there.

    The base quantity is fixed at entry, as the strategy sizes it: notional / spot close in base units,
    rounded down to a whole number of the spot lot and of the perp's lot in base units (contract lot x
    multiplier); the perp holds the opposite base quantity.
    """
    lots = (inputs.perp_lot * inputs.perp_multiplier, inputs.spot_lot)
    amount = Decimal(repr(notional))
    target = np.zeros(directions.shape, dtype=np.float64)
    changed = np.zeros(directions.shape, dtype=bool)
    held, current = 0, 0.0
    for i, direction in enumerate(directions):
        if direction != held:
            if direction == 0:
                current = 0.0
            else:
                # The closes are the catalog's decimal prices as floats: their repr is the decimal itself.
                quantity = pair_base_quantity(amount, Decimal(repr(float(inputs.spot_close[i]))), lots=lots)
                current = float(quantity) * int(direction)
            held = int(direction)
            changed[i] = True
        target[i] = current
    return target, changed


def contracts(inputs: CarryInputs, base: np.ndarray) -> np.ndarray:
    """Return perp contracts from base quantities (``base / multiplier``, to the contract lot's decimals)."""
    places = max(-int(inputs.perp_lot.as_tuple().exponent), 0)
    return np.round(base / float(inputs.perp_multiplier), places)


def fill_prices(close: np.ndarray, buy: np.ndarray, *, tick: Decimal, slippage_bps: float) -> np.ndarray:
    """Return the engine's market fill prices: close moved ``slippage_bps`` against the taker, rounded to the tick."""
    factor = np.where(buy, 1 + slippage_bps / 10_000, 1 - slippage_bps / 10_000)
    ticks = close * factor / float(tick)
    # The engine rounds exact decimals; a float a hair above an integer must not round up a whole tick.
    rounded = np.where(buy, np.ceil(ticks - 1e-9), np.floor(ticks + 1e-9))
    return rounded * float(tick)


@dataclass(frozen=True, slots=True)
class CarryResult:
    """A vectorbt carry run: PnL attribution (quote currency) and the orders it sent."""

    pnl_total: float
    pnl_price: float
    pnl_funding: float
    pnl_fees: float
    fills: int
    entries: int
    directions: np.ndarray
    portfolio: Any
    funding: pd.DataFrame


def run_carry(
    inputs: CarryInputs,
    *,
    notional: float,
    entry_apr: float,
    exit_apr: float,
    lookback_settlements: int,
    predicted_weight: float,
    round_trip_cost_bps: float,
    cost_horizon_days: float,
    max_holding_hours: int,
    allow_short_spot: bool = False,
    slippage_bps: float = 0.0,
    tick_rounding: bool = True,
) -> CarryResult:
    """Run the spot-perp carry with vectorbt and return its PnL attribution."""
    apr = expected_apr(inputs, lookback=lookback_settlements, predicted_weight=predicted_weight)
    cost = float(cost_apr(Decimal(str(round_trip_cost_bps)), Decimal(str(cost_horizon_days))))
    directions = carry_positions(
        apr,
        inputs.ts_ns,
        entry_apr=entry_apr,
        exit_apr=exit_apr,
        cost=cost,
        max_holding_secs=max_holding_hours * 3600,
        allow_reverse=allow_short_spot,
    )
    spot_target, changed = targets(inputs, directions, notional=notional)
    perp_target = -spot_target
    index = pd.to_datetime(inputs.ts_ns, utc=True)
    close = pd.DataFrame({"spot": inputs.spot_close, "perp": inputs.perp_close}, index=index)
    size = pd.DataFrame(
        {"spot": np.where(changed, spot_target, np.nan), "perp": np.where(changed, perp_target, np.nan)}, index=index
    )
    previous_spot = np.concatenate([[0.0], spot_target[:-1]])
    spot_buy = spot_target > previous_spot
    kwargs: dict[str, Any] = {}
    if tick_rounding:
        kwargs["price"] = pd.DataFrame(
            {
                "spot": fill_prices(inputs.spot_close, spot_buy, tick=inputs.spot_tick, slippage_bps=slippage_bps),
                "perp": fill_prices(inputs.perp_close, ~spot_buy, tick=inputs.perp_tick, slippage_bps=slippage_bps),
            },
            index=index,
        )
    else:
        kwargs["slippage"] = slippage_bps / 10_000
    portfolio = vbt.Portfolio.from_orders(
        close,
        size=size,
        size_type="targetamount",
        direction="both",
        fees=np.array([inputs.spot_taker, inputs.perp_taker]),
        init_cash=1e12,
        cash_sharing=True,
        group_by=True,
        freq="1h",
        **kwargs,
    )
    funding = funding_flows(inputs, perp_target)
    orders = portfolio.orders.records_readable
    fees = float(orders["Fees"].sum()) if len(orders) else 0.0
    total_trading = float(portfolio.total_profit())
    pnl_funding = float(funding["amount"].sum()) if len(funding) else 0.0
    return CarryResult(
        pnl_total=total_trading + pnl_funding,
        pnl_price=total_trading + fees,
        pnl_funding=pnl_funding,
        pnl_fees=-fees,
        fills=len(orders),
        entries=int(np.count_nonzero(changed & (directions != 0))),
        directions=directions,
        portfolio=portfolio,
        funding=funding,
    )


def funding_flows(inputs: CarryInputs, perp_target: np.ndarray) -> pd.DataFrame:
    """Return every settlement the perp position receives: ``funding_payment(contracts, multiplier, mark, rate)``.

    ``perp_target`` is in base units; the position at a settlement ``T`` is the target of the last
    decision strictly before ``T``, in contracts (the ``position`` column, as the engine's ledger).
    """
    t, when, rate = inputs.ts_ns, inputs.settle_ns, inputs.settle_rate
    before = np.searchsorted(t, when, side="left") - 1
    position = contracts(inputs, np.where(before >= 0, perp_target[np.clip(before, 0, None)], 0.0))
    mark_index = np.searchsorted(inputs.mark_ns, when, side="right") - 1
    bar_index = np.searchsorted(inputs.perp_bar_ns, when, side="left") - 1
    mark = np.where(
        mark_index >= 0,
        inputs.mark_price[np.clip(mark_index, 0, None)],
        inputs.perp_bar_close[np.clip(bar_index, 0, None)],
    )
    amount = funding_payment(position, float(inputs.perp_multiplier), mark, rate)
    frame = pd.DataFrame(
        {"ts": pd.to_datetime(when, utc=True), "position": position, "mark": mark, "rate": rate, "amount": amount}
    )
    return frame[frame["position"] != 0].reset_index(drop=True)


def parameter_grid(
    names: Iterable[str], *, space: Mapping[str, Any] | None = None, fixed: Mapping[str, Any] | None = None
) -> list[dict[str, Any]]:
    """Return every combination of the declared ranges of ``names`` (``SpotPerpCarryConfig.PARAMETER_SPACE``).

    Combinations with ``exit_apr > entry_apr`` are dropped (the config refuses them).
    """
    space = space or SpotPerpCarryConfig.PARAMETER_SPACE
    names = list(names)
    grids = [space[name].grid() for name in names]
    combos = []
    for values in itertools.product(*grids):
        combo = {**(fixed or {}), **dict(zip(names, values, strict=True))}
        if Decimal(str(combo.get("exit_apr", 0))) > Decimal(str(combo.get("entry_apr", 1))):
            continue
        combos.append(combo)
    return combos


def sweep(inputs: CarryInputs, combos: list[dict[str, Any]], *, base: Mapping[str, Any]) -> pd.DataFrame:
    """Run ``run_carry`` for each parameter combination (over ``base``) and return one row of PnL each."""
    rows = []
    for combo in combos:
        params = {**base, **{k: float(v) if isinstance(v, Decimal) else v for k, v in combo.items()}}
        result = run_carry(inputs, **params)
        rows.append(
            {
                **combo,
                "pnl_total": result.pnl_total,
                "pnl_funding": result.pnl_funding,
                "pnl_price": result.pnl_price,
                "pnl_fees": result.pnl_fees,
                "entries": result.entries,
                "fills": result.fills,
            }
        )
    return pd.DataFrame(rows)


def params_from_config(params: Mapping[str, Any]) -> dict[str, Any]:
    """Return ``run_carry`` keyword arguments from a run config's ``[strategy.params]`` table."""
    keys = (
        "notional",
        "entry_apr",
        "exit_apr",
        "predicted_weight",
        "round_trip_cost_bps",
        "cost_horizon_days",
    )
    result: dict[str, Any] = {k: float(params[k]) for k in keys if k in params}
    for key in ("lookback_settlements", "max_holding_hours"):
        if key in params:
            result[key] = int(params[key])
    if "allow_short_spot" in params:
        result["allow_short_spot"] = bool(params["allow_short_spot"])
    return result
