"""Tearsheet statistics of one run, from its artefacts: returns, risk, drawdowns, trades, funding, exposure, costs.

Returns are daily (the last equity of each UTC day against the one before, the first day against the
starting capital), years have 365 days and the risk-free rate is zero, as in ``stats.json``'s Sharpe.
Return statistics come from ``empyrical`` (empyrical-reloaded: Sharpe, volatility, rolling windows,
monthly compounding); drawdown periods, trade statistics, funding APR, exposure and costs are computed
here from the ledgers. Money figures are exact decimals until they are rounded for reading (``fmt``).
Floats are for the return series and ratios only.

The per-bar frames (``bars``, one row per instrument and close; ``equity``, one per close and
currency) may be given as lazy frames (``pl.scan_parquet`` of a run's artefacts): they are then read
in slices, so the memory depends on the output's resolution (the distinct close instants, one traded
instrument's closes), not on the bar count.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import empyrical
import pandas as pd
import polars as pl

DAYS_PER_YEAR = 365
ROLLING_DAYS = 30
NS_PER_YEAR = DAYS_PER_YEAR * 24 * 3600 * 10**9
# Bar rows read at once when the exposure is computed from a lazy ``bars`` (a slice of close instants).
WINDOW_ROWS = 1_000_000
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def fmt(value: Any, places: int = 2, *, percent: bool = False) -> str:
    """Return ``value`` as decimal text for reading: rounded half-even to ``places``, thousands separated.

    ``percent`` multiplies by 100 and appends ``%``; None and NaN read as an en dash.
    """
    if value is None or (isinstance(value, float) and (math.isnan(value) or math.isinf(value))):
        return "–"
    number = Decimal(str(value)) * (100 if percent else 1)
    rounded = number.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN)
    if rounded == 0:
        rounded = abs(rounded)
    return f"{rounded:,}{'%' if percent else ''}"


def daily_equity(equity: pl.DataFrame | pl.LazyFrame, starting_capital: Decimal) -> pl.DataFrame:
    """Return ``day, equity`` (exact): the last total equity of each UTC day, currencies added at par."""
    summed = equity.lazy().group_by("ts").agg(pl.col("pnl_total").sum()).sort("ts")
    days = (
        summed.with_columns(day=pl.col("ts").dt.date(), equity=pl.col("pnl_total") + pl.lit(starting_capital))
        .group_by("day")
        .agg(pl.col("equity").last())
        .sort("day")
        .collect()
    )
    return days if days.height else pl.DataFrame(schema={"day": pl.Date, "equity": pl.Decimal(38, 18)})


def daily_returns(days: pl.DataFrame, starting_capital: Decimal) -> pd.Series:
    """Return simple daily returns indexed by UTC midnight (the first day's against ``starting_capital``)."""
    values = [float(starting_capital), *(float(v) for v in days["equity"])]
    returns = [b / a - 1 if a else 0.0 for a, b in itertools.pairwise(values)]
    index = pd.DatetimeIndex(pd.to_datetime(days["day"].to_list()), tz="UTC")
    return pd.Series(returns, index=index, dtype="float64")


@dataclass(frozen=True, slots=True)
class DrawdownPeriod:
    """One fall below a peak: when it started (the peak), its trough, depth and recovery (None if open)."""

    peak: date
    trough: date
    recovered: date | None
    depth_pct: float
    length_days: int


def drawdown_periods(days: pl.DataFrame, *, top: int = 5) -> list[DrawdownPeriod]:
    """Return the ``top`` deepest drawdown periods of daily equity, deepest first.

    A period runs from the last peak to the first day equity is back at or above it (``recovered``);
    ``length_days`` counts from the peak to the recovery, or to the last day when still under water.
    """
    periods: list[DrawdownPeriod] = []
    if days.height == 0:
        return periods
    peak_value, peak_day = None, None
    trough_value, trough_day = None, None
    for day, value in days.select("day", "equity").iter_rows():
        if peak_value is None or value >= peak_value:
            if trough_value is not None and peak_day is not None and trough_day is not None and peak_value:
                periods.append(_period(peak_day, trough_day, day, peak_value, trough_value))
            peak_value, peak_day, trough_value, trough_day = value, day, None, None
        elif trough_value is None or value < trough_value:
            trough_value, trough_day = value, day
    if trough_value is not None and peak_day is not None and trough_day is not None and peak_value:
        last = days["day"][-1]
        open_period = _period(peak_day, trough_day, None, peak_value, trough_value)
        periods.append(
            DrawdownPeriod(open_period.peak, open_period.trough, None, open_period.depth_pct, (last - peak_day).days)
        )
    return sorted(periods, key=lambda p: p.depth_pct)[:top]


def _period(peak: date, trough: date, recovered: date | None, high: Decimal, low: Decimal) -> DrawdownPeriod:
    length = ((recovered or trough) - peak).days
    return DrawdownPeriod(peak, trough, recovered, float(low / high - 1), length)


def return_stats(returns: pd.Series) -> dict[str, float | None]:
    """Return total and annualised return, volatility, Sharpe, Sortino and max drawdown of daily ``returns``."""
    if len(returns) == 0:
        return {}
    with_nan_checks = {
        "total_return": float(empyrical.cum_returns_final(returns)),
        "annual_return": float(empyrical.annual_return(returns, annualization=DAYS_PER_YEAR)),
        "annual_volatility": float(empyrical.annual_volatility(returns, annualization=DAYS_PER_YEAR)),
        "sharpe": float(empyrical.sharpe_ratio(returns, annualization=DAYS_PER_YEAR)),
        "sortino": float(empyrical.sortino_ratio(returns, annualization=DAYS_PER_YEAR)),
        "max_drawdown": float(empyrical.max_drawdown(returns)),
    }
    return {k: (None if math.isnan(v) or math.isinf(v) else v) for k, v in with_nan_checks.items()}


def monthly_returns(returns: pd.Series) -> dict[int, dict[str, float]]:
    """Return compounded returns by year and month name (``{2024: {"Jan": 0.01, ..., "Year": 0.03}}``)."""
    table: dict[int, dict[str, float]] = {}
    if len(returns) == 0:
        return table
    for (year, month), value in empyrical.aggregate_returns(returns, "monthly").items():
        table.setdefault(int(year), {})[MONTHS[int(month) - 1]] = float(value)
    for year, value in empyrical.aggregate_returns(returns, "yearly").items():
        table.setdefault(int(year), {})["Year"] = float(value)
    return table


def rolling(returns: pd.Series, window: int = ROLLING_DAYS) -> pd.DataFrame:
    """Return the rolling ``window``-day annualised Sharpe and volatility of daily ``returns``."""
    if len(returns) < window:
        return pd.DataFrame({"sharpe": pd.Series(dtype="float64"), "volatility": pd.Series(dtype="float64")})
    return pd.DataFrame(
        {
            "sharpe": empyrical.roll_sharpe_ratio(returns, window=window, annualization=DAYS_PER_YEAR),
            "volatility": empyrical.roll_annual_volatility(returns, window=window, annualization=DAYS_PER_YEAR),
        }
    )


def closed_trades(positions: pl.DataFrame) -> pl.DataFrame:
    """Return one row per closed position cycle (a round trip): instrument, realised PnL, holding time."""
    closed = positions.filter(pl.col("ts_closed").is_not_null()).unique(
        "position_id", keep="first", maintain_order=True
    )
    return closed.select(
        "instrument_id",
        "realized_pnl",
        "currency",
        (pl.col("ts_closed") - pl.col("ts_opened")).alias("holding"),
    )


def trade_stats(positions: pl.DataFrame, fills: pl.DataFrame, mean_equity: Decimal | None) -> dict[str, Any]:
    """Return round trips, win rate, average win and loss, mean holding time, traded notional and turnover.

    Realised PnL is Nautilus' per position cycle (price PnL less commissions, funding excluded). Turnover
    is traded notional over mean equity, for the whole run.
    """
    trades = closed_trades(positions)
    wins = trades.filter(pl.col("realized_pnl") > 0)["realized_pnl"]
    losses = trades.filter(pl.col("realized_pnl") <= 0)["realized_pnl"]
    notional = (fills["quantity"] * fills["price"]).sum() if fills.height else Decimal(0)
    holding = trades["holding"].mean() if trades.height else None
    return {
        "round_trips": trades.height,
        "win_rate": wins.len() / trades.height if trades.height else None,
        "average_win": wins.mean() if wins.len() else None,
        "average_loss": losses.mean() if losses.len() else None,
        "mean_holding": holding if isinstance(holding, timedelta) else None,
        "traded_notional": notional,
        "turnover": float(Decimal(str(notional)) / mean_equity) if mean_equity else None,
    }


def funding_apr(funding: pl.DataFrame) -> pl.DataFrame:
    """Return per instrument the realised funding APR on the notional held at each settlement.

    ``apr = sum(amount) / sum(|position_size * mark_price|) * settlements_per_year``, the settlements per
    year from the median interval between the instrument's settlements: the notional-weighted mean
    rate received, annualised. Contract multipliers are taken as 1 (linear USD-margined perps).
    """
    if funding.height == 0 or not {"ts", "position_size", "mark_price", "amount"} <= set(funding.columns):
        return pl.DataFrame(
            schema={"instrument_id": pl.String, "settlements": pl.UInt32, "amount": pl.Float64, "apr": pl.Float64}
        )
    frame = funding.sort("ts").with_columns(
        notional=(pl.col("position_size") * pl.col("mark_price")).abs().cast(pl.Float64),
        gap_ns=pl.col("ts").cast(pl.Int64).diff().over("instrument_id"),
    )
    return (
        frame.group_by("instrument_id")
        .agg(
            pl.len().alias("settlements"),
            pl.col("amount").cast(pl.Float64).sum().alias("amount"),
            pl.col("notional").sum().alias("notional"),
            pl.col("gap_ns").filter(pl.col("gap_ns") > 0).median().alias("interval_ns"),
        )
        .with_columns(
            apr=pl.when(pl.col("notional") > 0)
            .then(pl.col("amount") / pl.col("notional") * (NS_PER_YEAR / pl.col("interval_ns")))
            .otherwise(None)
        )
        .select("instrument_id", "settlements", "amount", "apr")
        .sort("instrument_id")
    )


def exposure(
    fills: pl.DataFrame,
    bars: pl.DataFrame | pl.LazyFrame,
    equity: pl.DataFrame | pl.LazyFrame,
    starting_capital: Decimal,
    *,
    window_rows: int | None = None,
) -> pl.DataFrame:
    """Return ``ts, gross, net, leverage`` on every bar close: positions from the fills marked at the close.

    ``gross`` adds absolute notionals, ``net`` signed ones, across instruments at par; ``leverage`` is
    gross over equity at that close. The bars are read in slices of whole close instants of about
    ``window_rows`` rows (default ``WINDOW_ROWS``), each computed as the whole frame would be, so the
    result does not depend on ``window_rows``; only the output (one row per close instant) is held whole.
    """
    bars = bars.lazy()
    ts_type = bars.collect_schema().get("ts", pl.Datetime("ns", "UTC"))
    windows = _windows(bars, WINDOW_ROWS if window_rows is None else window_rows)
    if not windows:
        return pl.DataFrame(schema={"ts": ts_type} | dict.fromkeys(("gross", "net", "leverage"), pl.Float64))
    signed = pl.when(pl.col("side") == "BUY").then(pl.col("quantity")).otherwise(-pl.col("quantity"))
    held = (
        fills.sort("ts")
        .select("ts", "instrument_id", signed.cast(pl.Float64).alias("change"))
        .with_columns(position=pl.col("change").cum_sum().over("instrument_id"))
        .group_by("instrument_id", "ts", maintain_order=True)
        .agg(pl.col("position").last())
        .sort("ts")
    )
    curve = (
        equity.lazy()
        .group_by("ts")
        .agg(pl.col("pnl_total").sum())
        .select("ts", (pl.col("pnl_total").cast(pl.Float64) + float(starting_capital)).alias("equity"))
        .sort("ts")
        .collect()
    )
    parts = [
        _exposure_of(bars.filter(pl.col("ts").cast(pl.Int64).is_between(first, last)).collect(), held, curve)
        for first, last in windows
    ]
    return pl.concat(parts, rechunk=True)


def _windows(bars: pl.LazyFrame, rows: int) -> list[tuple[int, int]]:
    # Equal spans of close instants (first and last, int) holding about ``rows`` bars each if evenly spread.
    span = bars.select(
        pl.len().alias("rows"), first=pl.col("ts").cast(pl.Int64).min(), last=pl.col("ts").cast(pl.Int64).max()
    ).collect(engine="streaming")
    total, first, last = span.row(0)
    if not total:
        return []
    count = -(-total // max(rows, 1))
    width = (last - first) // count + 1
    return [(start, min(start + width - 1, last)) for start in range(first, last + 1, width)]


def _exposure_of(bars: pl.DataFrame, held: pl.DataFrame, curve: pl.DataFrame) -> pl.DataFrame:
    closes = bars.sort("ts", maintain_order=True).with_columns(pl.col("close").cast(pl.Float64))
    marked = closes.join_asof(
        held, on="ts", by="instrument_id", strategy="backward", check_sortedness=False
    ).with_columns(notional=pl.col("position").fill_null(0.0) * pl.col("close"))
    totals = marked.group_by("ts").agg(
        pl.col("notional").abs().sum().alias("gross"), pl.col("notional").sum().alias("net")
    )
    joined = totals.sort("ts").join_asof(curve, on="ts", strategy="backward")
    return joined.select(
        "ts", "gross", "net", pl.when(pl.col("equity") > 0).then(pl.col("gross") / pl.col("equity")).alias("leverage")
    )


def costs(fills: pl.DataFrame, bars: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame:
    """Return per instrument the fees and the slippage paid (exact decimals).

    Slippage is the fill price against the last close at or before the fill, times quantity, signed so
    that paying is positive (a buy above the close, a sell below it); a limit fill that improved on the
    close counts negative. Only the closes of the instruments filled are read, one instrument at a time.
    """
    schema: dict[str, Any] = {
        "instrument_id": pl.String,
        "fills": pl.UInt32,
        "fees": pl.Decimal(38, 18),
        "slippage": pl.Decimal(38, 18),
    }
    if fills.height == 0:
        return pl.DataFrame(schema=schema)
    if "commission" not in fills.columns:
        fills = fills.with_columns(commission=pl.lit(0, dtype=pl.Decimal(38, 18)))
    bars = bars.lazy()
    ordered = fills.sort("ts")
    joined = pl.concat(
        [
            ordered.filter(pl.col("instrument_id") == instrument_id).join_asof(
                instrument_closes(bars, instrument_id).select("ts", pl.col("close").alias("reference")).collect(),
                on="ts",
                strategy="backward",
                check_sortedness=False,
            )
            for instrument_id in ordered["instrument_id"].unique(maintain_order=True)
        ]
    )
    direction = pl.when(pl.col("side") == "BUY").then(1).otherwise(-1)
    paid = ((pl.col("price") - pl.col("reference")) * pl.col("quantity") * direction).fill_null(0)
    return (
        joined.group_by("instrument_id")
        .agg(pl.len().alias("fills"), pl.col("commission").sum().alias("fees"), paid.sum().alias("slippage"))
        .sort("instrument_id")
    )


def instrument_closes(bars: pl.DataFrame | pl.LazyFrame, instrument_id: str) -> pl.LazyFrame:
    """Return ``ts, close`` of ``instrument_id``'s bars sorted by time (stable: equal times keep their order)."""
    return (
        bars.lazy()
        .filter(pl.col("instrument_id") == instrument_id)
        .select("ts", "close")
        .sort("ts", maintain_order=True)
    )


def expected_apr(config: dict[str, Any] | None) -> dict[str, str]:
    """Return the strategy's annualised thresholds (``*_apr`` params) from the run's ``config.json``, if any."""
    params = ((config or {}).get("strategy") or {}).get("params") or {}
    return {k: str(v) for k, v in sorted(params.items()) if k.endswith("_apr")}


@dataclass(slots=True)
class Tearsheet:
    """Everything the report's tearsheet section shows, computed from a run's artefacts."""

    returns: pd.Series
    stats: dict[str, float | None]
    monthly: dict[int, dict[str, float]]
    rolling: pd.DataFrame
    drawdowns: list[DrawdownPeriod]
    trades: dict[str, Any]
    funding: pl.DataFrame
    expected_apr: dict[str, str]
    exposure: pl.DataFrame
    costs: pl.DataFrame
    notes: list[str] = field(default_factory=list)


def build_tearsheet(
    *,
    equity: pl.DataFrame | pl.LazyFrame,
    fills: pl.DataFrame,
    positions: pl.DataFrame,
    funding: pl.DataFrame,
    bars: pl.DataFrame | pl.LazyFrame,
    starting_capital: Decimal,
    config: dict[str, Any] | None = None,
) -> Tearsheet:
    """Return the tearsheet of one run's ledgers (``equity`` and ``bars`` may be lazy: they are read in slices)."""
    days = daily_equity(equity, starting_capital)
    returns = daily_returns(days, starting_capital)
    mean_equity = Decimal(str(days["equity"].mean())) if days.height else None
    notes = []
    thresholds = expected_apr(config)
    if not thresholds:
        notes.append("the strategy records no expected APR (no *_apr parameter): only the realised APR is shown")
    if len(returns) < ROLLING_DAYS:
        notes.append(f"fewer than {ROLLING_DAYS} days of returns: no rolling statistics")
    return Tearsheet(
        returns=returns,
        stats=return_stats(returns),
        monthly=monthly_returns(returns),
        rolling=rolling(returns),
        drawdowns=drawdown_periods(days),
        trades=trade_stats(positions, fills, mean_equity),
        funding=funding_apr(funding),
        expected_apr=thresholds,
        exposure=exposure(fills, bars, equity, starting_capital),
        costs=costs(fills, bars),
        notes=notes,
    )
