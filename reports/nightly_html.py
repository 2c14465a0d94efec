"""The night's HTML page: one self-contained file (plotly inlined once) from a night's record."""

from __future__ import annotations

import html
import json
import os
from decimal import Decimal
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
import plotly.io as pio
import polars as pl

from reports.tearsheet import fmt
from reports.tearsheet_html import table

MAX_POINTS = 2_000


def _stats(root: Path, run_id: str | None) -> dict[str, Any]:
    path = root / run_id / "stats.json" if run_id else None
    return json.loads(path.read_text()) if path is not None and path.exists() else {}


def _equity_figure(root: Path, runs: list[dict[str, Any]]) -> go.Figure:
    figure = go.Figure()
    for run in runs:
        path = root / run["run_id"] / "equity.parquet" if run.get("run_id") else None
        if path is None or not path.exists():
            continue
        capital = sum(Decimal(v) for v in _stats(root, run["run_id"]).get("starting_balances", {}).values())
        curve = pl.read_parquet(path).group_by("ts").agg(pl.col("pnl_total").sum()).sort("ts")
        if curve.height > MAX_POINTS:
            curve = curve.gather_every(-(-curve.height // MAX_POINTS))
        equity = [float(v + capital) for v in curve["pnl_total"]]
        figure.add_trace(go.Scatter(x=curve["ts"].to_list(), y=equity, name=run.get("name") or run["config"]))
    figure.update_layout(title="Equity per strategy (currencies at par)", height=420, margin={"t": 50, "b": 30})
    return figure


def _attribution(root: Path, runs: list[dict[str, Any]]) -> str:
    rows = []
    for run in runs:
        stats = _stats(root, run.get("run_id"))
        if stats:
            rows.append(
                [
                    run.get("name") or run["config"],
                    *(fmt(Decimal(stats[k])) for k in ("pnl_total", "pnl_price", "pnl_funding", "pnl_fees")),
                    fmt(stats.get("sharpe"), 3),
                    fmt(stats.get("max_drawdown_pct"), 2) + "%",
                ]
            )
    header = ["Strategy", "PnL total", "price", "funding", "fees", "Sharpe", "Max drawdown"]
    return table(header, rows, css="attribution") if rows else "<p>no successful run</p>"


def _change_rows(comparisons: dict[str, Any], key: str) -> list[list[Any]]:
    rows = []
    for config, entry in comparisons.items():
        change = entry.get(key)
        if not change:
            continue
        data = change["data"]
        files = len(data["added"]) + len(data["removed"]) + len(data["changed"])
        pnl = change["stats"].get("pnl_total")
        rows.append(
            [
                config,
                change["a"],
                "same" if change["same_inputs"] else "changed",
                "same" if data["same"] else f"changed ({files} files)",
                ", ".join(change["config"]) or "same",
                ", ".join(change["code"]) or "same",
                f"{fmt(pnl['a'])} -> {fmt(pnl['b'])} ({fmt(pnl['change'])})" if pnl else "same",
            ]
        )
    return rows


def _link(report_dir: Path, root: Path, run_id: str | None) -> str:
    if not run_id or not (root / run_id / "report.html").exists():
        return ""
    target = os.path.relpath(root / run_id / "report.html", report_dir)
    return f'<a href="{html.escape(target)}">report</a>'


def _runs_table(night: dict[str, Any], root: Path, report_dir: Path) -> str:
    header = ["Strategy", "Config", "This night", "Status", "Run", "PnL total", "Sharpe", "Report"]
    rows = []
    for run in night["runs"]:
        stats = _stats(root, run.get("run_id")) if run["status"] == "ok" else {}
        cells = [
            html.escape(run.get("name") or ""),
            html.escape(run["config"]),
            html.escape(run["action"]),
            html.escape(run["status"]),
            html.escape(run.get("run_id") or ""),
            html.escape(fmt(Decimal(stats["pnl_total"])) if stats else "–"),
            html.escape(fmt(stats.get("sharpe"), 3) if stats else "–"),
            _link(report_dir, root, run.get("run_id")),
        ]
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    for session in night.get("sessions", []):
        rows.append(
            f"<tr><td colspan=4>paper/live session</td><td>{html.escape(session)}</td><td></td><td></td>"
            f"<td>{_link(report_dir, root, session)}</td></tr>"
        )
    head = "".join(f"<th>{h}</th>" for h in header)
    return f'<table class="runs"><tr>{head}</tr>{"".join(rows)}</table>'


def _findings(findings: list[Any]) -> str:
    if not findings:
        return "<p>no new findings</p>"
    keys = sorted({k for f in findings if isinstance(f, dict) for k in f})
    return table(keys, [[f.get(k, "") for k in keys] for f in findings if isinstance(f, dict)], css="findings")


def _freshness(series: list[Any]) -> str:
    keys = ["kind", "venue", "symbol", "series", "interval", "first", "last", "rows"]
    rows = [[s.get(k, "") for k in keys] for s in series if isinstance(s, dict)]
    return table(keys, rows, css="freshness") if rows else "<p>no series (store empty or status failed)</p>"


def render_night(path: Path, *, night: dict[str, Any], comparisons: dict[str, Any], root: Path) -> Path:
    """Write the night's page to ``path`` and return it."""
    ok_runs = [r for r in night["runs"] if r["status"] == "ok"]
    failed = [r for r in night["runs"] if r["status"] == "failed"]
    figure = pio.to_html(_equity_figure(root, ok_runs), include_plotlyjs=True, full_html=False, div_id="equity")
    partial = (
        f'<p class="partial" id="partial"><strong>PARTIAL</strong>: {len(failed)} run(s) failed: '
        f"{html.escape(', '.join(r.get('name') or r['config'] for r in failed))}</p>"
        if failed
        else ""
    )
    failures = table(
        ["Config", "Strategy", "Exit", "Error"],
        [[r["config"], r.get("name") or "", r.get("exit_code") or "", r.get("error") or ""] for r in failed],
        css="failures",
    )
    change_header = ["Config", "Compared with", "Inputs", "Data", "Config changes", "Code changes", "PnL total"]
    previous = _change_rows(comparisons, "previous")
    baseline = _change_rows(comparisons, "baseline")
    steps = [[k, v["exit_code"], fmt(v["wall_secs"], 1) + " s"] for k, v in night.get("steps", {}).items()]
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in night.get("notes", []))
    title = html.escape(f"Night {night['date']}" + (" (partial)" if failed else ""))
    page = f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:sans-serif;margin:1.5em;max-width:1300px}}table{{border-collapse:collapse;margin:.5em 0 1em}}
th,td{{border:1px solid #ccc;padding:.25em .6em;text-align:left;font-weight:normal}}th{{background:#f4f4f4}}
.partial{{background:#fde2e2;padding:.5em;border:1px solid #d33}}</style>
</head><body>
<h1>{title}</h1>{partial}
<p>Started {html.escape(night["started_at"])}, finished {html.escape(night["finished_at"])};
previous night {html.escape(night.get("previous") or "none")};
baseline {html.escape(night.get("baseline") or "none")}.</p>
<ul>{notes}</ul>
<section id="steps"><h2>Data steps</h2>{table(["Step", "Exit", "Wall time"], steps)}</section>
<section id="failed"><h2>Failed runs</h2>{failures if failed else "<p>none</p>"}</section>
<section id="equity-section"><h2>Equity and attribution per strategy</h2>{figure}{_attribution(root, ok_runs)}</section>
<section id="since-previous"><h2>Change since the previous night</h2>
{table(change_header, previous) if previous else "<p>no previous night to compare with</p>"}</section>
<section id="baseline"><h2>Against the pinned baseline</h2>
{table(change_header, baseline) if baseline else "<p>no baseline pinned (baseline in the nightly config)</p>"}</section>
<section id="findings"><h2>New data-quality findings</h2>{_findings(night.get("new_findings", []))}</section>
<section id="freshness"><h2>Data freshness per series</h2>{_freshness(night.get("freshness", []))}</section>
<section id="runs"><h2>All runs</h2>{_runs_table(night, root, path.parent)}</section>
</body></html>
"""
    path.write_text(page, encoding="utf-8")
    return path
