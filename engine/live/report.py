"""The report of a paper or live session, built with the backtest's ledger, stats and artefact code.

The node's cache holds orders, fills, positions and account states; Nautilus' ``ReportProvider`` turns
them into the same pandas reports ``BacktestEngine.generate_*_report`` returns, and
``engine.backtest.ledger`` rebuilds the exact-decimal ledgers from them. Funding comes from the paper
funding book (the sandbox does not settle it). A replay's wall-clock timestamps are mapped back to the
historical time of the bar they happened on, so the artefacts line up with a backtest's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

import polars as pl
from nautilus_trader.analysis import ReportProvider

from engine.backtest import ledger
from engine.backtest.data import DECIMAL, NS, RunData
from engine.backtest.runner import RunResult, _reconcile, _settlement_currency
from engine.backtest.stats import build_stats, text
from engine.config import RunConfig, config_hash
from engine.fill import describe_fill_model
from engine.live.funding import Settlement
from engine.venue_models import VenueModel

FUNDING_SCHEMA: dict[str, Any] = {
    "ts": NS,
    "venue": pl.String,
    "instrument_id": pl.String,
    "position_id": pl.String,
    "position_size": DECIMAL,
    "mark_price": DECIMAL,
    "rate": DECIMAL,
    "amount": DECIMAL,
    "currency": pl.String,
}


def funding_frame(settlements: Sequence[Settlement]) -> pl.DataFrame:
    """Return the paper funding ledger in the backtest's ``funding.parquet`` schema."""
    rows = [
        {
            "ts": s.ts,
            "venue": s.venue,
            "instrument_id": s.instrument_id,
            "position_id": s.position_id,
            "position_size": s.position_size,
            "mark_price": s.mark_price,
            "rate": s.rate,
            "amount": s.amount,
            "currency": s.currency,
        }
        for s in settlements
    ]
    frame = pl.DataFrame(
        rows, schema={k: (pl.Int64 if v == NS else v) for k, v in FUNDING_SCHEMA.items()}, orient="row"
    )
    return frame.with_columns(pl.col("ts").cast(NS)).sort("ts", "instrument_id")


def _map_times(frame: pl.DataFrame, columns: Sequence[str], to_historical: Callable[[int], int]) -> pl.DataFrame:
    present = [c for c in columns if c in frame.columns]
    if not present or frame.height == 0:
        return frame
    return frame.with_columns(
        pl.col(c).cast(pl.Int64).map_elements(to_historical, return_dtype=pl.Int64, skip_nulls=True).cast(NS).alias(c)
        for c in present
    )


def _with_commissions(report: Any, data: RunData) -> Any:
    # Fills that reconciliation synthesises from a venue position carry no commission: book zero.
    if report is None or len(report) == 0 or "commission" not in report.columns:
        return report
    currency = {str(i): _settlement_currency(instrument) for i, instrument in data.instruments.items()}
    report = report.copy()
    report["commission"] = [
        text if len(str(text).split()) == 2 else f"0 {currency.get(str(instrument_id), 'USD')}"
        for text, instrument_id in zip(report["commission"], report["instrument_id"], strict=True)
    ]
    return report


def build_session_result(
    config: RunConfig,
    *,
    cache: Any,
    models: list[VenueModel],
    data: RunData,
    settlements: Sequence[Settlement],
    to_historical: Callable[[int], int],
    mode: str,
    extra: dict[str, Any] | None = None,
) -> RunResult:
    """Return a ``RunResult`` of the session: the same ledgers, stats and artefacts as a backtest.

    ``stats.reconciliation`` compares the ledger with the venue accounts; the sandbox does not book
    funding, so in paper mode the accounts differ from the ledger by exactly the funding total, which
    is reported as ``funding_outside_account``.
    """
    orders = list(cache.orders())
    fills = _map_times(
        ledger.fills_frame(_with_commissions(ReportProvider.generate_fills_report(orders), data), data.venue_of),
        ["ts"],
        to_historical,
    )
    orders_frame = _map_times(
        ledger.orders_frame(ReportProvider.generate_orders_report(orders), ledger.order_reasons(orders)),
        ["ts_init", "ts_last"],
        to_historical,
    )
    positions = _map_times(
        ledger.positions_frame(ReportProvider.generate_positions_report(list(cache.positions()))),
        ["ts_opened", "ts_closed"],
        to_historical,
    )
    accounts = []
    for model in models:
        account = cache.account_for_venue(model.venue)
        if account is not None:
            accounts.append((model.name, ReportProvider.generate_account_report(account)))
    account = _map_times(ledger.account_frame(accounts), ["ts"], to_historical)
    funding = funding_frame(settlements)
    currency_of = {str(i): _settlement_currency(instrument) for i, instrument in data.instruments.items()}
    attribution = ledger.attribute(fills, funding, data, currency_of)
    starting: dict[str, Decimal] = {}
    for model in models:
        for money in model.starting_balances:
            starting[money.currency.code] = starting.get(money.currency.code, Decimal(0)) + money.as_decimal()
    reconciliation = _reconcile(attribution, account, positions, data, currency_of, starting) if account.height else {}
    for currency, values in reconciliation.items():
        outside = sum((s.amount for s in settlements if s.currency == currency), Decimal(0))
        values["funding_outside_account"] = text(outside)
        values["difference_excluding_funding"] = text(Decimal(values["difference"]) - outside)
    counts = {
        "orders": orders_frame.height,
        "orders_denied": orders_frame.filter(pl.col("status") == "DENIED").height,
        "fills": fills.height,
        "positions": positions.height,
        "funding_settlements": funding.height,
        "bars": data.bar_count,
    }
    stats_extra = {
        "name": config.name,
        "mode": mode,
        "config_hash": config_hash(config),
        "start": config.start.isoformat(),
        "end": config.end.isoformat(),
        "fill_model": describe_fill_model(config.fill.slippage_bps),
        "venues": [m.describe() for m in models],
        "reconciliation": reconciliation,
        **(extra or {}),
    }
    stats = build_stats(attribution=attribution, starting=starting, counts=counts, extra=stats_extra)
    return RunResult(
        config=config,
        config_hash=config_hash(config),
        orders=orders_frame,
        fills=fills,
        positions=positions,
        account=account,
        funding=funding,
        equity=attribution.curve,
        stats=stats,
        bars=data.bars,
    )


def observed_run_data(
    bars: Sequence[tuple[str, int, Decimal]], instruments: dict[Any, Any], venue_of: dict[str, str], *, end_ns: int
) -> RunData:
    """Return a ``RunData`` of the bars a session observed on venue data (for its report).

    Each instrument's last close is repeated at ``end_ns`` (the session's end), so fills after the
    last bar (the graceful stop's) fall inside the attribution grid.
    """
    last = {i: close for i, _, close in bars}
    rows = [*bars, *((i, end_ns, close) for i, close in last.items())]
    frame = pl.DataFrame(
        [{"instrument_id": i, "ts": ts, "close": close} for i, ts, close in rows],
        schema={"instrument_id": pl.String, "ts": pl.Int64, "close": DECIMAL},
        orient="row",
    ).with_columns(pl.col("ts").cast(NS))
    return RunData(
        instruments=instruments,
        bars=frame.unique(["instrument_id", "ts"], keep="last").sort("ts", "instrument_id"),
        marks=pl.DataFrame(schema={"instrument_id": pl.String, "ts": NS, "mark_price": DECIMAL}),
        funding=pl.DataFrame(
            schema={
                "instrument_id": pl.String,
                "ts_init": NS,
                "next_funding": NS,
                "rate": DECIMAL,
                "interval_minutes": pl.Int64,
            }
        ),
        venue_of=venue_of,
    )
