"""Ledger frames read straight from the engine's cache objects (orders, positions, accounts).

Nautilus' pandas reporter (``generate_*_report``) turns every order, fill, position snapshot and
account state into a dict, a pandas row and a ``pd.Timestamp`` before the ledger reads them back;
on a million bars that is most of the ledger time. These readers take the few attributes the ledgers
keep, as text, and let polars parse the decimals column-wise. The backtest runner and the paper/live
report both read their ledgers here (``engine.results.result.read_ledgers``).
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

import polars as pl
from nautilus_trader.model import OrderFilled

from engine.config import parse_money
from engine.results.schemas import ACCOUNT_SCHEMA, FILLS_SCHEMA, ORDERS_SCHEMA, POSITIONS_SCHEMA
from engine.run_data import DECIMAL, NS

SNAPSHOT_SUFFIX = r"-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _plain(value: Decimal) -> str:
    return format(value, "f")


def _frame(columns: dict[str, list[Any]], schema: dict[str, Any]) -> pl.DataFrame:
    # Decimals arrive as text and are parsed by polars (exact), timestamps as int nanoseconds.
    source = {k: pl.String if v == DECIMAL else pl.Int64 if v == NS else v for k, v in schema.items()}
    return pl.DataFrame(columns, schema=source).with_columns(
        pl.col(k).cast(v) for k, v in schema.items() if v in (DECIMAL, NS)
    )


def fills_frame(orders: Iterable[Any], venue_of: dict[str, str], *, currency_of: dict[str, str]) -> pl.DataFrame:
    """Return one row per fill of ``orders``, in time order.

    A fill without a commission (live reconciliation synthesises one for a position it recovers from
    the venue) books zero in its instrument's settlement currency (``currency_of``).
    """
    fills = [e for o in orders for e in o.events() if isinstance(e, OrderFilled)]
    instrument_ids = [str(f.instrument_id) for f in fills]
    commissions = [
        ["0", currency_of.get(i, "USD")] if f.commission is None else str(f.commission).split()
        for f, i in zip(fills, instrument_ids, strict=True)
    ]
    columns: dict[str, list[Any]] = {
        "ts": [f.ts_event for f in fills],
        "venue": [venue_of.get(i, "") for i in instrument_ids],
        "instrument_id": instrument_ids,
        "client_order_id": [str(f.client_order_id) for f in fills],
        "venue_order_id": [str(f.venue_order_id) for f in fills],
        "position_id": [str(f.position_id) for f in fills],
        "side": [str(f.order_side) for f in fills],
        "quantity": [str(f.last_qty) for f in fills],
        "price": [str(f.last_px) for f in fills],
        "commission": [c[0] for c in commissions],
        "commission_currency": [c[1] for c in commissions],
        "liquidity_side": [str(f.liquidity_side) for f in fills],
    }
    return _frame(columns, FILLS_SCHEMA).sort("ts", "client_order_id", "quantity", maintain_order=True)


def order_reasons(orders: Iterable[Any]) -> dict[str, str]:
    """Return client order id -> reason of every order whose last event carries one (denied, rejected)."""
    reasons = {}
    for order in orders:
        reason = getattr(order.events()[-1], "reason", None)
        if reason:
            reasons[str(order.client_order_id)] = str(reason)
    return reasons


def orders_frame(orders: list[Any], reasons: dict[str, str]) -> pl.DataFrame:
    """Return one row per order with its final state and, if it was denied or rejected, why (``reasons``)."""
    client_order_ids = [str(o.client_order_id) for o in orders]
    columns: dict[str, list[Any]] = {
        "ts_init": [o.ts_init for o in orders],
        "ts_last": [o.ts_last for o in orders],
        "client_order_id": client_order_ids,
        "venue_order_id": [_text(o.venue_order_id) for o in orders],
        "instrument_id": [str(o.instrument_id) for o in orders],
        "side": [str(o.side) for o in orders],
        "type": [str(o.order_type) for o in orders],
        "quantity": [str(o.quantity) for o in orders],
        "filled_quantity": [str(o.filled_qty) for o in orders],
        "avg_price": [_text(o.avg_px) for o in orders],
        "status": [str(o.status) for o in orders],
        "time_in_force": [str(o.time_in_force) for o in orders],
        "reduce_only": [bool(o.is_reduce_only) for o in orders],
        "position_id": [_text(o.position_id) for o in orders],
        "reason": [reasons.get(i) for i in client_order_ids],
    }
    return _frame(columns, ORDERS_SCHEMA).sort("ts_init", "client_order_id")


def positions_frame(positions: list[Any], snapshots: list[Any]) -> pl.DataFrame:
    """Return one row per position cycle: ``positions`` then their NETTING ``snapshots`` (closed cycles)."""
    every = [*positions, *snapshots]
    realized = [str(p.realized_pnl).split() for p in every]
    columns: dict[str, list[Any]] = {
        "position_id": [str(p.id) for p in every],
        "instrument_id": [str(p.instrument_id) for p in every],
        "entry": [str(p.entry) for p in every],
        "side": [str(p.side) for p in every],
        "quantity": [str(p.quantity) for p in every],
        "peak_quantity": [str(p.peak_qty) for p in every],
        "ts_opened": [p.ts_opened for p in every],
        "ts_closed": [p.ts_closed for p in every],
        "avg_price_open": [str(p.avg_px_open) for p in every],
        # The report holds prices as floats: a missing close price reads as NaN there.
        "avg_price_close": ["nan" if p.avg_px_close is None else str(p.avg_px_close) for p in every],
        "realized_pnl": [r[0] for r in realized],
        "currency": [r[1] for r in realized],
        "commissions": [_plain(sum((c.as_decimal() for c in p.commissions()), Decimal(0))) for p in every],
        "funding": [_plain(_funding(p)) for p in every],
        "is_snapshot": [False] * len(positions) + [True] * len(snapshots),
    }
    return (
        _frame(columns, POSITIONS_SCHEMA)
        .with_columns(_deterministic_snapshot_ids())
        .sort("ts_opened", "ts_closed", "position_id", nulls_last=True, maintain_order=True)
        .sort("ts_opened", "position_id", "is_snapshot")
    )


def _deterministic_snapshot_ids() -> pl.Expr:
    # Nautilus names a NETTING snapshot "<position id>-<random uuid4>"; number the closed cycles of
    # each position in opening order instead, so a re-run writes byte-identical ledgers.
    base = pl.col("position_id").str.replace(SNAPSHOT_SUFFIX, "")
    cycle = pl.col("ts_opened").rank("ordinal").over(base, pl.col("is_snapshot")).cast(pl.String)
    return pl.when(pl.col("is_snapshot")).then(base + "-cycle-" + cycle).otherwise(pl.col("position_id"))


def _funding(position: Any) -> Decimal:
    return sum(
        (a.pnl_change.as_decimal() for a in position.adjustments() if str(a.adjustment_type) == "FUNDING"),
        Decimal(0),
    )


def funding_events(positions: Iterable[Any]) -> list[dict[str, Any]]:
    """Return every FUNDING adjustment once (NETTING snapshots repeat the ones of their cycle)."""
    seen: set[str] = set()
    events = []
    for position in positions:
        for adjustment in position.adjustments():
            event_id = str(adjustment.event_id)
            if str(adjustment.adjustment_type) != "FUNDING" or event_id in seen:
                continue
            seen.add(event_id)
            amount, currency = parse_money(adjustment.pnl_change)
            events.append(
                {
                    "ts": adjustment.ts_event,
                    "instrument_id": str(adjustment.instrument_id),
                    "position_id": str(adjustment.position_id),
                    "amount": amount,
                    "currency": currency,
                }
            )
    return events


def account_frame(accounts: Iterable[tuple[str, Any]]) -> pl.DataFrame:
    """Return every balance of every account state of ``(venue name, account)`` pairs, in time order."""
    frames = []
    for venue, account in accounts:
        balances = [(state.ts_event, b) for state in account.events for b in state.balances]
        columns: dict[str, list[Any]] = {
            "ts": [ts for ts, _ in balances],
            "venue": [venue] * len(balances),
            "currency": [str(b.currency) for _, b in balances],
            "total": [_plain(b.total.as_decimal()) for _, b in balances],
            "locked": [_plain(b.locked.as_decimal()) for _, b in balances],
            "free": [_plain(b.free.as_decimal()) for _, b in balances],
        }
        frames.append(_frame(columns, ACCOUNT_SCHEMA).sort("ts", maintain_order=True))
    return pl.concat(frames) if frames else _frame({key: [] for key in ACCOUNT_SCHEMA}, ACCOUNT_SCHEMA)
