"""Liquidations against price moves: Solana lending around the 2025-10-10 crash, and exchange cascades.

- ``load_hourly_panel``: the DeFi-Kai hourly panel (Kamino + Jupiter Lend debt repaid in liquidations, SOL
  price and volume; ``../shared/data/solana/solana_liquidations_hourly_defikai/panel_sol.csv``).
- ``crash_window``: how concentrated the liquidations were around a crash hour.
- ``volume_by_return``: liquidation volume per bucket of the hour's log return.
- ``liquidation_flows`` / ``flows_vs_moves``: exchange liquidations (the ``liquidations`` kind) summed per
  window and side, beside the return of a bar series over the same window.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from research.errors import ResearchError

PANEL_COLUMNS = ("hour", "price", "log_return", "total_debt_repaid_usd_hour", "sol_volume_usd_hour")


class PanelError(ResearchError, ValueError):
    """A liquidation panel or flow input is unreadable or lacks what it needs."""


def load_hourly_panel(path: Path) -> pl.DataFrame:
    """Read the hourly liquidation panel into ``ts, price_usd, log_return, liquidations_usd, volume_usd``.

    ``hour`` is UTC text such as ``2025-10-03 1:00``.

    Raises
    ------
    PanelError
        If the file is missing, lacks a column, or a row's hour or number does not parse (naming the row).
    """
    try:
        raw = pl.read_csv(path, infer_schema=False)
    except (OSError, pl.exceptions.PolarsError) as error:
        raise PanelError(f"{path}: cannot read the hourly panel ({error}); pass the panel_sol.csv file") from None
    missing = [c for c in PANEL_COLUMNS if c not in raw.columns]
    if missing:
        raise PanelError(f"{path}: expected the columns {list(PANEL_COLUMNS)}, missing {missing}, was {raw.columns}")
    parsed = raw.select(
        ts=pl.col("hour").str.strptime(pl.Datetime("ns", "UTC"), "%Y-%m-%d %H:%M", strict=False),
        price_usd=pl.col("price").cast(pl.Float64, strict=False),
        log_return=pl.col("log_return").cast(pl.Float64, strict=False),
        liquidations_usd=pl.col("total_debt_repaid_usd_hour").cast(pl.Float64, strict=False),
        volume_usd=pl.col("sol_volume_usd_hour").cast(pl.Float64, strict=False),
    )
    bad = parsed.with_row_index("row", offset=2).filter(pl.any_horizontal(pl.exclude("row").is_null()))
    if bad.height:
        row = bad.row(0, named=True)
        field = next(name for name, value in row.items() if value is None)
        source = {"ts": "hour", "price_usd": "price", "liquidations_usd": "total_debt_repaid_usd_hour"}
        raise PanelError(
            f"{path}: line {row['row']}, field {source.get(field, field)!r} does not parse "
            f"(was {raw.row(row['row'] - 2, named=True)}); fix or drop the row"
        )
    return parsed.sort("ts")


@dataclass(frozen=True, slots=True)
class CrashWindow:
    """Liquidations around one crash hour."""

    peak_ts: datetime
    peak_usd: float
    peak_return: float
    window_usd: float
    total_usd: float
    window_share: float
    price_change_pct: float


def crash_window(panel: pl.DataFrame, *, hours_before: int = 12, hours_after: int = 12) -> CrashWindow:
    """Return the hour of peak liquidations and the share of all liquidations within a window around it.

    ``price_change_pct`` is the change of the price from the window's first hour to its lowest.

    Raises
    ------
    PanelError
        If the panel holds no liquidation.
    """
    total = float(panel["liquidations_usd"].sum())
    if total <= 0:
        raise PanelError("the panel holds no liquidation volume; expected some hour with a positive amount")
    peak = panel.row(int(panel["liquidations_usd"].arg_max() or 0), named=True)
    start, end = peak["ts"] - timedelta(hours=hours_before), peak["ts"] + timedelta(hours=hours_after)
    window = panel.filter(pl.col("ts").is_between(start, end))
    first = float(window["price_usd"][0])
    return CrashWindow(
        peak_ts=peak["ts"],
        peak_usd=peak["liquidations_usd"],
        peak_return=peak["log_return"],
        window_usd=float(window["liquidations_usd"].sum()),
        total_usd=total,
        window_share=float(window["liquidations_usd"].sum()) / total,
        price_change_pct=(float(window["price_usd"].min()) / first - 1) * 100,  # type: ignore[arg-type]
    )


def volume_by_return(
    panel: pl.DataFrame, *, edges_pct: Sequence[float] = (-4.0, -2.0, -1.0, 0.0, 1.0, 2.0)
) -> pl.DataFrame:
    """Return per bucket of the hour's log return (in %) the hours, liquidation volume and its share."""
    labels = [f"< {edges_pct[0]:g}%"]
    labels += [f"{a:g}% .. {b:g}%" for a, b in itertools.pairwise(edges_pct)]
    labels.append(f">= {edges_pct[-1]:g}%")
    index = np.searchsorted(np.asarray(edges_pct, dtype=np.float64), panel["log_return"].to_numpy() * 100, side="right")
    return (
        panel.with_columns(bucket=pl.Series(np.asarray(labels)[index]).cast(pl.Enum(labels)))
        .group_by("bucket")
        .agg(hours=pl.len(), liquidations_usd=pl.col("liquidations_usd").sum())
        .with_columns(share=pl.col("liquidations_usd") / pl.col("liquidations_usd").sum())
        .sort("bucket")
    )


def liquidation_flows(liquidations: pl.DataFrame, *, every: str = "1m") -> pl.DataFrame:
    """Return per window the liquidated notional of longs and shorts, their count and the imbalance.

    ``liquidations`` are rows of the ``liquidations`` kind read with ``floats=True`` (``side`` is the
    liquidated position: ``long`` or ``short``).

    Raises
    ------
    PanelError
        If a column is missing.
    """
    missing = [c for c in ("ts", "side", "notional_usd") if c not in liquidations.columns]
    if missing:
        raise PanelError(f"liquidations lack {missing}; pass rows of the liquidations kind (floats=True)")
    notional = pl.col("notional_usd").fill_null(0)
    return (
        liquidations.sort("ts")
        .group_by_dynamic("ts", every=every)
        .agg(
            long_usd=notional.filter(pl.col("side") == "long").sum(),
            short_usd=notional.filter(pl.col("side") == "short").sum(),
            count=pl.len(),
        )
        .with_columns(imbalance=(pl.col("long_usd") - pl.col("short_usd")) / (pl.col("long_usd") + pl.col("short_usd")))
    )


def flows_vs_moves(flows: pl.DataFrame, bars: pl.DataFrame, *, every: str = "5m") -> pl.DataFrame:
    """Return per bar window of ``every`` the liquidated notional beside the bar's return in %.

    ``bars`` holds ``ts`` (the bar's open) and ``open, close``; only windows with a bar are kept.
    """
    per_window = (
        flows.sort("ts")
        .group_by_dynamic("ts", every=every)
        .agg(pl.col("long_usd").sum(), pl.col("short_usd").sum(), pl.col("count").sum())
    )
    moves = bars.select("ts", return_pct=(pl.col("close") / pl.col("open") - 1) * 100)
    return per_window.join(moves, on="ts", how="inner").sort("ts")
