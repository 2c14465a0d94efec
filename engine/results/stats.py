"""Run statistics: PnL attribution totals, counts, drawdown and Sharpe, as JSON-ready values.

Money is reported as ``Decimal`` text in the run's currency. When a run's venues settle in different
USD stablecoins (Binance USDT, Hyperliquid USDC), the headline totals add them at par and say so in
``currency``; the exact per-currency figures are under ``by_currency``.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

import polars as pl

from engine.results.ledger import Attribution
from engine.results.schemas import text
from strategies.risk_limits import USD_LIKE

PNL_KEYS = ("pnl_total", "pnl_price", "pnl_funding", "pnl_fees")


def headline_currency(currencies: list[str]) -> str:
    """Return the label of the headline totals: the one currency, or ``USD (USDC+USDT at par)``.

    Raises
    ------
    ValueError
        If currencies other than USD stablecoins are mixed (they cannot be added at par).
    """
    unique = sorted(set(currencies))
    if len(unique) == 1:
        return unique[0]
    if all(c in USD_LIKE for c in unique):
        return f"USD ({'+'.join(unique)} at par)"
    raise ValueError(f"cannot add PnL in {unique} without an exchange rate: run such venues separately")


def equity_curve(attribution: Attribution, starting: dict[str, Decimal]) -> pl.DataFrame:
    """Return ``ts, pnl_*, equity`` summed over currencies at par (exact decimals)."""
    curve = attribution.curve
    summed = curve.group_by("ts").agg(pl.col(k).sum() for k in PNL_KEYS).sort("ts")
    capital = sum((starting.get(c, Decimal(0)) for c in curve["currency"].unique().to_list()), Decimal(0))
    return summed.with_columns(
        (pl.col("pnl_total") + pl.lit(capital, dtype=summed.schema["pnl_total"])).alias("equity")
    )


def max_drawdown(equity: pl.Series) -> tuple[Decimal, float]:
    """Return the largest peak-to-trough fall of ``equity`` (money, exact) and its fraction of the peak."""
    if equity.len() == 0:
        return Decimal(0), 0.0
    frame = pl.DataFrame({"equity": equity}).with_columns(peak=pl.col("equity").cum_max())
    frame = frame.with_columns(fall=pl.col("peak") - pl.col("equity"))
    at = frame["fall"].arg_max()
    if at is None:
        return Decimal(0), 0.0
    fall, peak = frame["fall"][at], frame["peak"][at]
    if not isinstance(fall, Decimal) or not isinstance(peak, Decimal) or fall <= 0:
        return Decimal(0), 0.0
    return fall, float(fall / peak) if peak > 0 else 0.0


def sharpe(curve: pl.DataFrame) -> float | None:
    """Return the annualised Sharpe ratio of daily equity returns (365 days, zero risk-free rate).

    A day's return is its last equity against the day before's, the first day's against the starting
    capital (``equity - pnl_total`` of the curve; the tearsheet, ``reports.tearsheet``, uses the same
    series). None when there are fewer than two days or the returns do not vary.
    """
    daily = curve.group_by(day=pl.col("ts").dt.date()).agg(pl.col("equity").last().cast(pl.Float64)).sort("day")
    capital = float(curve["equity"][0] - curve["pnl_total"][0])
    equity = pl.concat([pl.Series([capital]), daily["equity"]])
    returns = equity.pct_change().drop_nulls()
    if returns.len() < 2:
        return None
    deviation = returns.std()
    mean = returns.mean()
    if not isinstance(deviation, float) or not isinstance(mean, float) or deviation == 0 or math.isnan(deviation):
        return None
    return round(mean / deviation * math.sqrt(365), 6)


def build_stats(
    *,
    attribution: Attribution,
    starting: dict[str, Decimal],
    counts: dict[str, int],
    extra: dict[str, Any],
) -> dict[str, Any]:
    """Return the ``stats.json`` document: headline PnL, per-currency PnL, counts, drawdown, Sharpe."""
    by_currency = {c: {k: text(v[k]) for k in PNL_KEYS} for c, v in sorted(attribution.final.items())}
    totals = {k: sum((v[k] for v in attribution.final.values()), Decimal(0)) for k in PNL_KEYS}
    curve = equity_curve(attribution, starting)
    drawdown, drawdown_fraction = max_drawdown(curve["equity"]) if curve.height else (Decimal(0), 0.0)
    currencies = list(attribution.final) or list(starting)
    return {
        "currency": headline_currency(currencies) if currencies else "",
        **{k: text(totals[k]) for k in PNL_KEYS},
        "by_currency": by_currency,
        "starting_balances": {c: text(v) for c, v in sorted(starting.items())},
        **counts,
        "max_drawdown": text(drawdown),
        "max_drawdown_pct": round(drawdown_fraction * 100, 6),
        "sharpe": sharpe(curve) if curve.height else None,
        **extra,
    }
