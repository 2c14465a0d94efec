"""The one-screen summary the CLI prints after each run."""

from __future__ import annotations

from engine.results.result import RunResult


def summarize(result: RunResult) -> str:
    """Return a short multi-line summary: PnL attribution, counts, risk figures and where artefacts are."""
    stats = result.stats
    lines = [
        f"{stats['name']}  [{result.config_hash}]  {stats['start']} -> {stats['end']}",
        f"  pnl_total   {stats['pnl_total']:>20} {stats['currency']}",
        f"    price     {stats['pnl_price']:>20}",
        f"    funding   {stats['pnl_funding']:>20}  ({stats['funding_settlements']} settlements)",
        f"    fees      {stats['pnl_fees']:>20}",
    ]
    for currency, values in stats["by_currency"].items():
        if len(stats["by_currency"]) > 1:
            lines.append(
                f"  {currency:<6} total {values['pnl_total']}, "
                f"funding {values['pnl_funding']}, fees {values['pnl_fees']}"
            )
    lines += [
        f"  max drawdown {stats['max_drawdown']} ({stats['max_drawdown_pct']:.2f}%), sharpe {stats['sharpe']}",
        f"  bars {stats['bars']:,}  orders {stats['orders']:,} (denied {stats['orders_denied']})  "
        f"fills {stats['fills']:,}  positions {stats['positions']:,}",
    ]
    lines += [f"  warning: {warning}" for warning in stats.get("warnings", [])]
    timings = ", ".join(f"{k} {v:.2f} s" for k, v in result.timings_secs.items())
    lines.append(f"  time: {timings}")
    if result.run_dir is not None:
        lines.append(f"  artefacts: {result.run_dir}")
        report = result.run_dir / "report.html"
        if report.exists():
            lines.append(f"  tearsheet: {report}")
    return "\n".join(lines)
