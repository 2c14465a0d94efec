"""The tearsheet section of a run report: tables of decimal text rounded for reading, and two figures."""

from __future__ import annotations

import html
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from reports.tearsheet import MONTHS, Tearsheet, fmt

MAX_POINTS = 5_000


def table(header: list[str], rows: list[list[Any]], *, css: str = "") -> str:
    """Return an HTML table of already formatted cells (escaped here)."""
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table class="{css}"><tr>{head}</tr>{body}</table>'


def _monthly(sheet: Tearsheet) -> str:
    rows = [
        [year, *(fmt(values.get(m), percent=True) if m in values else "" for m in (*MONTHS, "Year"))]
        for year, values in sorted(sheet.monthly.items())
    ]
    return table(["Year", *MONTHS, "Year"], rows, css="monthly") if rows else "<p>no daily returns</p>"


def _drawdowns(sheet: Tearsheet) -> str:
    rows = [
        [
            str(p.peak),
            str(p.trough),
            str(p.recovered) if p.recovered else "not recovered",
            fmt(p.depth_pct, percent=True),
            p.length_days,
        ]
        for p in sheet.drawdowns
    ]
    header = ["Peak", "Trough", "Recovered", "Depth", "Length (days)"]
    return table(header, rows, css="drawdowns") if rows else "<p>no drawdown</p>"


def _trades(sheet: Tearsheet) -> str:
    t = sheet.trades
    holding = t["mean_holding"]
    hours = fmt(holding.total_seconds() / 3600, 1) + " h" if holding is not None else "–"
    rows = [
        ["Round trips (closed position cycles)", t["round_trips"]],
        ["Win rate", fmt(t["win_rate"], 1, percent=True)],
        ["Average win", fmt(t["average_win"])],
        ["Average loss", fmt(t["average_loss"])],
        ["Mean holding time", hours],
        ["Traded notional", fmt(t["traded_notional"])],
        ["Turnover (notional / mean equity)", fmt(t["turnover"], 2) + "x" if t["turnover"] is not None else "–"],
    ]
    return table(["Trades", ""], rows, css="trades")


def _funding(sheet: Tearsheet) -> str:
    expected = ", ".join(f"{k} = {fmt(v, 2, percent=True)}" for k, v in sheet.expected_apr.items()) or "not recorded"
    rows = [
        [r["instrument_id"], r["settlements"], fmt(r["amount"]), fmt(r["apr"], 2, percent=True), expected]
        for r in sheet.funding.iter_rows(named=True)
    ]
    header = ["Instrument", "Settlements", "Funding received", "Realised APR", "Strategy's APR thresholds"]
    return table(header, rows, css="funding-apr") if rows else "<p>no funding settled</p>"


def _costs(sheet: Tearsheet) -> str:
    rows = [
        [r["instrument_id"], r["fills"], fmt(r["fees"]), fmt(r["slippage"])] for r in sheet.costs.iter_rows(named=True)
    ]
    if rows:
        rows.append(
            ["total", sum(int(r[1]) for r in rows), fmt(sheet.costs["fees"].sum()), fmt(sheet.costs["slippage"].sum())]
        )
    header = ["Instrument", "Fills", "Fees paid", "Slippage paid (vs last close)"]
    return table(header, rows, css="costs") if rows else "<p>no fills</p>"


def _exposure_rows(sheet: Tearsheet) -> str:
    frame = sheet.exposure
    if frame.height == 0:
        return "<p>no exposure</p>"
    rows = [
        [label, fmt(frame[column].mean()), fmt(frame[column].max())]
        for label, column in (("Gross exposure", "gross"), ("Net exposure", "net"), ("Leverage", "leverage"))
    ]
    return table(["", "Mean", "Max"], rows, css="exposure")


def rolling_figure(sheet: Tearsheet) -> go.Figure:
    """Return the rolling Sharpe ratio and annualised volatility."""
    figure = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.06)
    frame = sheet.rolling.dropna()
    x = [str(t) for t in frame.index]
    figure.add_trace(go.Scatter(x=x, y=frame["sharpe"].tolist(), name="rolling Sharpe"), row=1, col=1)
    figure.add_trace(go.Scatter(x=x, y=frame["volatility"].tolist(), name="rolling volatility"), row=2, col=1)
    figure.update_layout(title="Rolling 30-day Sharpe and annualised volatility", height=440, margin={"t": 50, "b": 30})
    return figure


def exposure_figure(sheet: Tearsheet) -> go.Figure:
    """Return gross and net exposure and leverage over time."""
    frame = sheet.exposure
    if frame.height > MAX_POINTS:
        frame = frame.gather_every(-(-frame.height // MAX_POINTS))
    figure = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.06)
    x = frame["ts"].to_list() if frame.height else []
    for column in ("gross", "net"):
        figure.add_trace(go.Scatter(x=x, y=frame[column].to_list(), name=f"{column} exposure"), row=1, col=1)
    figure.add_trace(go.Scatter(x=x, y=frame["leverage"].to_list(), name="leverage"), row=2, col=1)
    figure.update_layout(title="Exposure and leverage", height=440, margin={"t": 50, "b": 30})
    return figure


def tearsheet_html(sheet: Tearsheet, figure_html: list[str]) -> str:
    """Return the tearsheet section; ``figure_html`` are the rendered rolling and exposure figures."""
    s = sheet.stats
    summary = [
        ["Total return", fmt(s.get("total_return"), percent=True)],
        ["Annual return", fmt(s.get("annual_return"), percent=True)],
        ["Annual volatility", fmt(s.get("annual_volatility"), percent=True)],
        ["Sharpe (daily, 365)", fmt(s.get("sharpe"))],
        ["Sortino", fmt(s.get("sortino"))],
        ["Max drawdown (daily closes)", fmt(s.get("max_drawdown"), percent=True)],
    ]
    notes = "".join(f"<p class='note'>Note: {html.escape(n)}.</p>" for n in sheet.notes)
    rolling, exposure = [*figure_html, "", ""][:2]
    return f"""<section id="tearsheet"><h2>Tearsheet</h2>
<p>Daily returns of total equity (currencies at par; the first day against the starting capital, as
for the headline Sharpe in stats.json), 365-day years, zero risk-free rate; statistics by
empyrical-reloaded.</p>{notes}
{table(["Returns", ""], summary, css="returns")}
<h3>Monthly returns</h3>{_monthly(sheet)}
<h3>Rolling Sharpe and volatility</h3>{rolling}
<h3>Drawdown periods</h3>{_drawdowns(sheet)}
<h3>Trade statistics</h3>{_trades(sheet)}
<h3>Funding: realised APR per instrument</h3>{_funding(sheet)}
<h3>Exposure and leverage</h3>{_exposure_rows(sheet)}{exposure}
<h3>Fees and slippage</h3>{_costs(sheet)}
</section>"""
