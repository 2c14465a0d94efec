"""Render a backtest run as one self-contained HTML page (plotly with its JavaScript inlined).

Sections: headline statistics and the fill model, equity and drawdown, PnL attribution over time
(price / funding / fees), the tearsheet (``reports.tearsheet``: monthly returns, rolling Sharpe and
volatility, drawdown periods, trade statistics, realised funding APR, exposure and leverage, fees and
slippage), and per instrument the price with fills and the position held. Floats appear only for
plotting and ratios; money in the tables is the ledger's decimal text rounded for reading.
The renderer reads a run folder's artefacts (``stats.json`` and the ledgers' Parquet files), so the
same page comes from a backtest, a paper or a live session, and can be re-rendered any time:
``python -m reports.backtest RUN_DIR``. The per-bar artefacts (``bars``, ``equity``) are scanned,
never read whole: each part reads only the columns and the rows it shows (one traded instrument's
closes, a slice of close instants), so the memory depends on the report's resolution, not on the
bar count. The engine calls ``render_run`` through the
``carrylab.run_reports`` entry point after writing the artefacts; it never imports this module.
"""

from __future__ import annotations

import html
import json
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
import plotly.io as pio
import polars as pl
from plotly.subplots import make_subplots

from reports.tearsheet import build_tearsheet, fmt, instrument_closes
from reports.tearsheet_html import exposure_figure, rolling_figure, tearsheet_html

MAX_POINTS = 5_000
MAX_FILL_MARKERS = 3_000
EQUITY_COLUMNS = ("ts", "currency", "pnl_price", "pnl_funding", "pnl_fees", "pnl_total")
BARS_COLUMNS = ("instrument_id", "ts", "close")
HEADLINE = (
    "pnl_total",
    "pnl_price",
    "pnl_funding",
    "pnl_fees",
    "max_drawdown",
    "max_drawdown_pct",
    "sharpe",
    "orders",
    "orders_denied",
    "fills",
    "positions",
    "funding_settlements",
    "bars",
)


def thin(frame: pl.DataFrame, limit: int = MAX_POINTS) -> pl.DataFrame:
    """Return at most about ``limit`` evenly spaced rows of ``frame``, always keeping the last."""
    if frame.height <= limit:
        return frame
    step = -(-frame.height // limit)
    return pl.concat([frame.gather_every(step), frame.tail(1)]).unique(maintain_order=True)


def _floats(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.with_columns(pl.col(pl.Decimal).cast(pl.Float64))


def _summed(equity: pl.DataFrame | pl.LazyFrame, *columns: str) -> pl.DataFrame:
    # The float PnL columns added across currencies at each close instant (one row per instant).
    floats = pl.col(*columns).cast(pl.Float64)
    return equity.lazy().select("ts", floats).group_by("ts").agg(pl.col(*columns).sum()).sort("ts").collect()


def equity_figure(equity: pl.DataFrame | pl.LazyFrame, starting_capital: float) -> go.Figure:
    """Return equity (at par across currencies) and drawdown over time."""
    summed = _summed(equity, "pnl_total")
    summed = summed.with_columns(equity=pl.col("pnl_total") + starting_capital)
    summed = summed.with_columns(drawdown=pl.col("equity") - pl.col("equity").cum_max())
    shown = thin(summed)
    figure = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.7, 0.3], vertical_spacing=0.04)
    figure.add_trace(go.Scatter(x=shown["ts"].to_list(), y=shown["equity"].to_list(), name="equity"), row=1, col=1)
    figure.add_trace(
        go.Scatter(x=shown["ts"].to_list(), y=shown["drawdown"].to_list(), name="drawdown", fill="tozeroy"),
        row=2,
        col=1,
    )
    figure.update_layout(title="Equity and drawdown", height=520, margin={"t": 50, "b": 30})
    return figure


def attribution_figure(equity: pl.DataFrame | pl.LazyFrame) -> go.Figure:
    """Return cumulative PnL split into price, funding and fees, summed at par across currencies."""
    summed = _summed(equity, "pnl_price", "pnl_funding", "pnl_fees", "pnl_total")
    shown = thin(summed)
    figure = go.Figure()
    for column in ("pnl_total", "pnl_price", "pnl_funding", "pnl_fees"):
        figure.add_trace(go.Scatter(x=shown["ts"].to_list(), y=shown[column].to_list(), name=column))
    figure.update_layout(title="PnL attribution over time", height=420, margin={"t": 50, "b": 30})
    return figure


def instrument_figure(instrument_id: str, bars: pl.DataFrame | pl.LazyFrame, fills: pl.DataFrame) -> go.Figure:
    """Return one instrument's closes with its fills marked and the position held below (reads that instrument only)."""
    closes = thin(instrument_closes(bars, instrument_id).with_columns(pl.col("close").cast(pl.Float64)).collect())
    own = _floats(fills.filter(pl.col("instrument_id") == instrument_id)).sort("ts")
    signed = pl.when(pl.col("side") == "BUY").then(pl.col("quantity")).otherwise(-pl.col("quantity"))
    position = own.select("ts", signed.cum_sum().alias("position"))
    figure = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.7, 0.3], vertical_spacing=0.04)
    figure.add_trace(go.Scatter(x=closes["ts"].to_list(), y=closes["close"].to_list(), name="close"), row=1, col=1)
    markers = thin(own, MAX_FILL_MARKERS)
    for side, symbol, color in (("BUY", "triangle-up", "green"), ("SELL", "triangle-down", "red")):
        part = markers.filter(pl.col("side") == side)
        figure.add_trace(
            go.Scatter(
                x=part["ts"].to_list(),
                y=part["price"].to_list(),
                mode="markers",
                marker={"symbol": symbol, "color": color, "size": 8},
                name=f"{side.lower()} fills",
            ),
            row=1,
            col=1,
        )
    position = thin(position)
    figure.add_trace(
        go.Scatter(x=position["ts"].to_list(), y=position["position"].to_list(), name="position", line_shape="hv"),
        row=2,
        col=1,
    )
    shown = f" (showing {markers.height:,} of {own.height:,} fills)" if markers.height < own.height else ""
    figure.update_layout(
        title=f"{instrument_id}: price, fills and position{shown}", height=480, margin={"t": 50, "b": 30}
    )
    return figure


def _table(rows: list[tuple[str, Any]]) -> str:
    body = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>" for k, v in rows)
    return f"<table>{body}</table>"


def _readable(key: str, value: Any) -> str:
    if value is None:
        return "–"
    if key in ("orders", "orders_denied", "fills", "positions", "funding_settlements", "bars"):
        return f"{int(value):,}"
    if key == "max_drawdown_pct":
        return fmt(value, 2) + "%"
    if key == "sharpe":
        return fmt(value, 3)
    try:
        return fmt(Decimal(str(value)))
    except ArithmeticError:
        return str(value)


def _empty_positions() -> pl.DataFrame:
    return pl.DataFrame(
        schema={
            "position_id": pl.String,
            "instrument_id": pl.String,
            "ts_opened": pl.Datetime("ns", "UTC"),
            "ts_closed": pl.Datetime("ns", "UTC"),
            "realized_pnl": pl.Decimal(38, 18),
            "currency": pl.String,
        }
    )


def render_report(
    path: Path,
    *,
    stats: dict[str, Any],
    equity: pl.DataFrame | pl.LazyFrame,
    fills: pl.DataFrame,
    bars: pl.DataFrame | pl.LazyFrame,
    funding: pl.DataFrame,
    positions: pl.DataFrame | None = None,
    config: dict[str, Any] | None = None,
) -> Path:
    """Write the run report to ``path`` (one HTML file that opens offline) and return the path.

    ``positions`` (the positions ledger) feeds the tearsheet's trade statistics and ``config`` (the
    run's ``config.json``) the strategy's APR thresholds; without them those parts are empty.
    ``equity`` and ``bars`` may be lazy (scans of the artefacts): they are read in slices, never whole.
    """
    capital_exact = sum((Decimal(str(v)) for v in stats.get("starting_balances", {}).values()), Decimal(0))
    capital = float(capital_exact)
    sheet = build_tearsheet(
        equity=equity,
        fills=fills,
        positions=positions if positions is not None else _empty_positions(),
        funding=funding,
        bars=bars,
        starting_capital=capital_exact,
        config=config,
    )
    figures = [
        equity_figure(equity, capital),
        attribution_figure(equity),
        rolling_figure(sheet),
        exposure_figure(sheet),
    ]
    for instrument_id in sorted(set(fills["instrument_id"])):
        figures.append(instrument_figure(instrument_id, bars, fills))
    parts = [
        pio.to_html(figure, include_plotlyjs=(index == 0), full_html=False, div_id=f"figure-{index}")
        for index, figure in enumerate(figures)
    ]
    tearsheet = tearsheet_html(sheet, parts[2:4])
    parts = parts[:2] + parts[4:]
    headline = [(key, _readable(key, stats.get(key))) for key in HEADLINE]
    by_currency = [
        (c, ", ".join(f"{k} {_readable(k, v)}" for k, v in values.items()))
        for c, values in stats["by_currency"].items()
    ]
    funding_rows = [
        (f"{row['venue']} {row['instrument_id']}", f"{row['settlements']} settlements, {fmt(row['amount'])}")
        for row in funding.group_by("venue", "instrument_id")
        .agg(pl.len().alias("settlements"), pl.col("amount").sum())
        .sort("venue", "instrument_id")
        .iter_rows(named=True)
    ]
    # Smallest distance of each perp leg's liquidation price to the mark at a decision (strategies.risk).
    liquidation_rows = [
        (instrument_id, ", ".join(f"{k} {fmt(Decimal(v), 2)}%" for k, v in values.items()))
        for instrument_id, values in stats.get("liquidation_distance_pct", {}).items()
    ]
    title = html.escape(f"Backtest {stats.get('name', '')} ({stats.get('config_hash', '')})")
    warnings = "".join(
        f'<p class="warning"><strong>Warning:</strong> {html.escape(str(w))}</p>' for w in stats.get("warnings", [])
    )
    page = f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:sans-serif;margin:1.5em;max-width:1200px}}table{{border-collapse:collapse;margin:.5em 0 1em}}
th,td{{border:1px solid #ccc;padding:.25em .6em;text-align:left;font-weight:normal}}th{{background:#f4f4f4}}</style>
</head><body>
<h1>{title}</h1>
<p>{html.escape(stats.get("start", ""))} to {html.escape(stats.get("end", ""))};
money in {html.escape(stats.get("currency", ""))}.
pnl_total = pnl_price + pnl_funding + pnl_fees, exactly.</p>
{warnings}
{_table(headline)}
<h2>By currency</h2>{_table(by_currency)}
<h2>Funding settled</h2>{_table(funding_rows or [("none", "")])}
<h2>Liquidation distance</h2>{_table(liquidation_rows or [("no perp leg", "")])}
<h2>Fill model</h2><p>{html.escape(stats.get("fill_model", ""))}</p>
<h2>Venues</h2>{_table([(str(i), v) for i, v in enumerate(stats.get("venues", []))])}
{parts[0] if parts else ""}{"".join(parts[1:2])}
{tearsheet}
{"".join(parts[2:])}
</body></html>
"""
    path.write_text(page, encoding="utf-8")
    return path


def render_run(run_dir: Path) -> Path:
    """Render ``run_dir/report.html`` from the artefacts in ``run_dir`` and return its path.

    Raises
    ------
    FileNotFoundError
        If ``stats.json`` or a ledger file is missing from ``run_dir``.
    """
    run_dir = Path(run_dir)
    stats = json.loads((run_dir / "stats.json").read_text())
    frames: dict[str, Any] = {name: pl.read_parquet(run_dir / f"{name}.parquet") for name in ("fills", "funding")}
    # The per-bar artefacts are scanned: each part of the report reads the columns and rows it shows.
    for name, columns in (("equity", EQUITY_COLUMNS), ("bars", BARS_COLUMNS)):
        path = run_dir / f"{name}.parquet"
        if not path.is_file():
            raise FileNotFoundError(f"no {name}.parquet in {run_dir}")
        frames[name] = pl.scan_parquet(path).select(columns)
    positions = pl.read_parquet(run_dir / "positions.parquet") if (run_dir / "positions.parquet").exists() else None
    config_file = run_dir / "config.json"
    config = json.loads(config_file.read_text()) if config_file.exists() else None
    return render_report(run_dir / "report.html", stats=stats, positions=positions, config=config, **frames)


def main(argv: list[str] | None = None) -> int:
    """Re-render the report of each run folder given; return the exit code (3 when a folder lacks artefacts)."""
    folders = sys.argv[1:] if argv is None else argv
    if not folders:
        print("usage: python -m reports.backtest RUN_DIR...", file=sys.stderr)
        return 2
    for folder in folders:
        try:
            print(render_run(Path(folder)))
        except FileNotFoundError as exc:
            print(f"error: expected a run folder with stats.json and the ledgers, {exc}", file=sys.stderr)
            return 3
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
