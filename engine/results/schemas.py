"""The schemas of a run's artefacts: one declaration per ledger, shared by backtest, paper and live.

Decimals are ``decimal128(38, 18)`` and timestamps ``timestamp[ns, UTC]``, as in the store; in JSON and
messages a decimal is ``text``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import polars as pl

from engine.run_data import DECIMAL, NS

FILLS_SCHEMA: dict[str, Any] = {
    "ts": NS,
    "venue": pl.String,
    "instrument_id": pl.String,
    "client_order_id": pl.String,
    "venue_order_id": pl.String,
    "position_id": pl.String,
    "side": pl.String,
    "quantity": DECIMAL,
    "price": DECIMAL,
    "commission": DECIMAL,
    "commission_currency": pl.String,
    "liquidity_side": pl.String,
}

ORDERS_SCHEMA: dict[str, Any] = {
    "ts_init": NS,
    "ts_last": NS,
    "client_order_id": pl.String,
    "venue_order_id": pl.String,
    "instrument_id": pl.String,
    "side": pl.String,
    "type": pl.String,
    "quantity": DECIMAL,
    "filled_quantity": DECIMAL,
    "avg_price": DECIMAL,
    "status": pl.String,
    "time_in_force": pl.String,
    "reduce_only": pl.Boolean,
    "position_id": pl.String,
    "reason": pl.String,
}

POSITIONS_SCHEMA: dict[str, Any] = {
    "position_id": pl.String,
    "instrument_id": pl.String,
    "entry": pl.String,
    "side": pl.String,
    "quantity": DECIMAL,
    "peak_quantity": DECIMAL,
    "ts_opened": NS,
    "ts_closed": NS,
    "avg_price_open": pl.String,
    "avg_price_close": pl.String,
    "realized_pnl": DECIMAL,
    "currency": pl.String,
    "commissions": DECIMAL,
    "funding": DECIMAL,
    "is_snapshot": pl.Boolean,
}

ACCOUNT_SCHEMA: dict[str, Any] = {
    "ts": NS,
    "venue": pl.String,
    "currency": pl.String,
    "total": DECIMAL,
    "locked": DECIMAL,
    "free": DECIMAL,
}

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

RISK_EVENTS_SCHEMA: dict[str, Any] = {
    "ts": NS,
    "strategy_id": pl.String,
    "control": pl.String,
    "action": pl.String,
    "instrument_id": pl.String,
    "value": pl.String,
    "limit": pl.String,
    "reason": pl.String,
}


def frame_of_rows(rows: list[dict[str, Any]], schema: dict[str, Any]) -> pl.DataFrame:
    """Return ``rows`` (dicts, timestamps as int nanoseconds) as a frame of ``schema``."""
    integers = {k: (pl.Int64 if v == NS else v) for k, v in schema.items()}
    frame = pl.DataFrame([{k: row.get(k) for k in schema} for row in rows], schema=integers, orient="row")
    return frame.with_columns(pl.col(k).cast(NS) for k, v in schema.items() if v == NS)


def text(value: Decimal) -> str:
    """Return a decimal as plain text without trailing zeros (``-0`` as ``0``)."""
    normalized = value.normalize()
    if normalized == 0:
        return "0"
    return format(normalized, "f")
