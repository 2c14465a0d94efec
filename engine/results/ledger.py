"""Ledgers of a finished run as exact-decimal polars frames: their schemas, funding and PnL attribution.

``engine.results.records`` reads orders, fills, positions and accounts from the engine's cache into
these schemas.

PnL attribution, per settlement currency, over the bar-close grid:

- ``pnl_price``: trading cash flows plus the open position marked at the last bar close
  (``-sum(signed qty * fill price * multiplier) + qty * close * multiplier``);
- ``pnl_funding``: the engine's funding settlements (``PositionAdjusted`` events of type FUNDING);
- ``pnl_fees``: minus the commissions of every fill;
- ``pnl_total = pnl_price + pnl_funding + pnl_fees``, exactly, because every term is a ``Decimal``.

The funding ledger restates every settlement with its inputs (position size before the settlement,
mark price, rate) and checks the engine's amount against ``-size * multiplier * mark * rate``.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pandas as pd
import polars as pl

from engine.errors import AccountingError
from engine.results.schemas import FUNDING_SCHEMA, frame_of_rows, text
from engine.run_data import BARS_SCHEMA, DECIMAL, MARKS_SCHEMA, NS, RunData, Streams, empty
from strategies.funding import funding_payment


def funding_ledger(events: list[dict[str, Any]], fills: pl.DataFrame, data: RunData) -> pl.DataFrame:
    """Return one row per settled position: ts, instrument, position size, mark price, rate, amount.

    Raises
    ------
    AccountingError
        If a settlement's amount differs from ``-size * multiplier * mark * rate`` by more than one
        unit of the currency's last decimal, or its inputs cannot be found.
    """
    if not events:
        return pl.DataFrame(schema=FUNDING_SCHEMA)
    joined = _settlement_inputs(events, fills, data)
    rows = []
    multipliers = {i: multiplier_of(data, i) for i in joined["instrument_id"].unique().to_list()}
    for row in joined.iter_rows(named=True):
        size = row["position_size"] or Decimal(0)
        mark, rate = row["mark_price"], row["rate"]
        if mark is None or rate is None:
            raise AccountingError(
                f"expected a mark price (or bar) and a funding update announcing {_when(row['ts'])} for "
                f"{row['instrument_id']}, found mark {mark} and rate {rate}; report this with the run config"
            )
        multiplier = multipliers[row["instrument_id"]]
        expected = funding_payment(size, multiplier, mark, rate)
        amount: Decimal = row["amount"]
        unit = Decimal(1).scaleb(-row["decimals"])
        if abs(expected - amount) > unit:
            raise AccountingError(
                f"expected the funding of {row['position_id']} at {_when(row['ts'])} to be -size*multiplier*mark*rate"
                f" = -({text(size)})*{text(multiplier)}*{text(mark)}*{text(rate)} = {text(expected)}, the "
                f"engine settled {text(amount)} {row['currency']}; report this with the run config"
            )
        rows.append({**{k: row[k] for k in FUNDING_SCHEMA if k in row}, "position_size": size, "ts": row["ts"]})
    return frame_of_rows(rows, FUNDING_SCHEMA)


def _when(ts_ns: int) -> str:
    return pd.Timestamp(ts_ns, tz="UTC").isoformat()


def _settlement_inputs(events: list[dict[str, Any]], fills: pl.DataFrame, data: RunData) -> pl.DataFrame:
    settled = pl.DataFrame(
        [{**e, "decimals": -e["amount"].as_tuple().exponent} for e in events],
        schema={
            "ts": pl.Int64,
            "instrument_id": pl.String,
            "position_id": pl.String,
            "amount": DECIMAL,
            "currency": pl.String,
            "decimals": pl.Int64,
        },
        orient="row",
    ).sort("ts", "instrument_id", "position_id")
    signed = pl.when(pl.col("side") == "BUY").then(pl.col("quantity")).otherwise(-pl.col("quantity"))
    held = (
        fills.sort("ts")
        .select("position_id", ts_fill=pl.col("ts").cast(pl.Int64), position_size=signed.cum_sum().over("position_id"))
        .sort("ts_fill")
    )
    rates = (
        data.funding.sort("ts_init")
        .select("instrument_id", ts=pl.col("next_funding").cast(pl.Int64), rate=pl.col("rate"))
        .unique(["instrument_id", "ts"], keep="last")
    )
    marks, bars = data.mark_streams(), data.bar_streams()
    per_instrument = []
    # One instrument's marks and closes at a time: the ledger never holds every bar of the window.
    for instrument_id in settled["instrument_id"].unique(maintain_order=True):
        mark = _stream(marks, instrument_id, MARKS_SCHEMA).select(
            ts_mark=pl.col("ts").cast(pl.Int64), mark=pl.col("mark_price")
        )
        # Without a mark the engine uses the top of the book: the last bar delivered (closed before the settlement).
        close = _stream(bars, instrument_id, BARS_SCHEMA).select(ts_bar=pl.col("ts").cast(pl.Int64), close="close")
        per_instrument.append(
            settled.filter(pl.col("instrument_id") == instrument_id)
            .join_asof(
                held,
                left_on="ts",
                right_on="ts_fill",
                by="position_id",
                allow_exact_matches=False,
                check_sortedness=False,
            )
            .join_asof(mark.sort("ts_mark"), left_on="ts", right_on="ts_mark", check_sortedness=False)
            .join_asof(
                close.sort("ts_bar"), left_on="ts", right_on="ts_bar", allow_exact_matches=False, check_sortedness=False
            )
        )
    return (
        pl.concat(per_instrument)
        .join(rates, on=["instrument_id", "ts"], how="left")
        .with_columns(
            pl.coalesce("mark", "close").alias("mark_price"),
            pl.col("instrument_id").replace_strict(data.venue_of, default="").alias("venue"),
        )
        .sort("ts", "instrument_id", "position_id")
    )


def _stream(streams: Streams, instrument_id: str, schema: dict[str, Any]) -> pl.DataFrame:
    # One instrument's frame, collected (empty if the run has none of it).
    return streams[instrument_id].collect() if instrument_id in streams else empty(schema)


def multiplier_of(data: RunData, instrument_id: str) -> Decimal:
    """Return the contract multiplier of ``instrument_id`` (1 for an instrument the run does not hold)."""
    for key, instrument in data.instruments.items():
        if str(key) == instrument_id:
            return Decimal(str(instrument.multiplier))
    return Decimal(1)


@dataclass(frozen=True, slots=True)
class Attribution:
    """PnL over time per currency and its final values."""

    curve: pl.DataFrame
    final: dict[str, dict[str, Decimal]]


def attribute(fills: pl.DataFrame, funding: pl.DataFrame, data: RunData, currency_of: dict[str, str]) -> Attribution:
    """Return ``ts, currency, pnl_price, pnl_funding, pnl_fees, pnl_total`` on every bar close, exactly.

    ``currency_of`` maps an instrument id to the currency its PnL settles in.
    """
    grid = _bar_times(data).with_columns(key=pl.col("ts").cast(pl.Int64) + 1)
    currencies = sorted(set(currency_of.values()) | set(fills["commission_currency"]) | set(funding["currency"]))
    curves = []
    for currency in currencies:
        price = pl.lit(Decimal(0), dtype=DECIMAL)
        frame = grid
        for instrument_id in sorted(i for i, c in currency_of.items() if c == currency):
            own = fills.filter(pl.col("instrument_id") == instrument_id)
            if not own.height:
                continue
            multiplier = multiplier_of(data, instrument_id)
            signed = pl.when(pl.col("side") == "BUY").then(pl.col("quantity")).otherwise(-pl.col("quantity"))
            events = own.select(
                key=pl.col("ts").cast(pl.Int64),
                qty=signed.cum_sum(),
                cash=(-signed * pl.col("price") * pl.lit(multiplier, dtype=DECIMAL)).cum_sum(),
            ).unique("key", keep="last", maintain_order=True)
            closes = _stream(data.bar_streams(), instrument_id, BARS_SCHEMA).select(
                pl.col("ts").alias(f"ts_{instrument_id}"), pl.col("close").alias(f"close_{instrument_id}")
            )
            frame = (
                frame.join_asof(
                    events.rename({"qty": f"qty_{instrument_id}", "cash": f"cash_{instrument_id}"}), on="key"
                )
                .join_asof(closes, left_on="ts", right_on=f"ts_{instrument_id}")
                .with_columns(pl.col(f"qty_{instrument_id}", f"cash_{instrument_id}").fill_null(Decimal(0)))
            )
            price = (
                price
                + pl.col(f"cash_{instrument_id}")
                + pl.col(f"qty_{instrument_id}")
                * pl.col(f"close_{instrument_id}").fill_null(Decimal(0))
                * pl.lit(multiplier, dtype=DECIMAL)
            )
        fees = _cumulative(fills.filter(pl.col("commission_currency") == currency), "commission", negate=True)
        paid = _cumulative(funding.filter(pl.col("currency") == currency), "amount", negate=False)
        frame = (
            frame.join_asof(fees.rename({"value": "fees"}), on="key")
            .join_asof(paid.rename({"value": "funding"}), on="key")
            .select(
                "ts",
                pl.lit(currency).alias("currency"),
                price.cast(DECIMAL).alias("pnl_price"),
                pl.col("funding").fill_null(Decimal(0)).cast(DECIMAL).alias("pnl_funding"),
                pl.col("fees").fill_null(Decimal(0)).cast(DECIMAL).alias("pnl_fees"),
            )
            .with_columns((pl.col("pnl_price") + pl.col("pnl_funding") + pl.col("pnl_fees")).alias("pnl_total"))
        )
        curves.append(frame)
    curve = (
        pl.concat(curves)
        if curves
        else pl.DataFrame(
            schema={
                "ts": NS,
                "currency": pl.String,
                **dict.fromkeys(("pnl_price", "pnl_funding", "pnl_fees", "pnl_total"), DECIMAL),
            }
        )
    )
    final = {
        row["currency"]: {k: row[k] for k in ("pnl_price", "pnl_funding", "pnl_fees", "pnl_total")}
        for row in curve.group_by("currency", maintain_order=True).last().iter_rows(named=True)
    }
    return Attribution(curve=curve, final=final)


def _bar_times(data: RunData) -> pl.DataFrame:
    # Every bar close time of the run, once, sorted: merged one instrument at a time.
    times = pl.DataFrame(schema={"ts": NS})
    for scan in data.bar_streams().values():
        own = scan.select("ts").collect().sort("ts")
        times = times.merge_sorted(own, key="ts").select(pl.col("ts").unique(maintain_order=True))
    return times


def _cumulative(frame: pl.DataFrame, column: str, *, negate: bool) -> pl.DataFrame:
    value = -pl.col(column) if negate else pl.col(column)
    return (
        frame.sort("ts")
        .select(key=pl.col("ts").cast(pl.Int64), value=value.cum_sum())
        .unique("key", keep="last", maintain_order=True)
    )
