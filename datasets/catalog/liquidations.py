"""Store liquidations -> Nautilus custom data (``Liquidation``), one stream per venue and symbol.

Written under ``data/custom/Liquidation/<identifier>/`` where the identifier is the Nautilus instrument
id when ``datasets.venues`` knows the symbol (``BTCUSDT-PERP.BINANCE``), else ``<symbol>.<VENUE>``
(liquidation captures cover symbols and protocols we hold no instrument spec for). Every field is a
string: Nautilus' ``@customdataclass`` maps only str, int, float, bool, bytes and dict to Arrow, so
prices and quantities travel as exact decimal text (``"43210.5"``) rather than as lossy floats. Rows
are stamped ``ts_event = ts_init =`` the liquidation time. Reading a million rows back through
``query_custom_data`` is slow (tens of seconds, NAUTILUS2.md): research reads these files with polars.
"""

from __future__ import annotations

import json

import polars as pl
import pyarrow as pa
from nautilus_trader.model import register_custom_data_class
from nautilus_trader.model.custom import customdataclass

from datasets.catalog.funding import decimal_text

TYPE_NAME = "Liquidation"
TEXT_FIELDS = (
    "instrument_id",
    "venue",
    "protocol",
    "symbol",
    "market",
    "side",
    "price",
    "quantity",
    "notional_usd",
    "account",
    "liquidator",
    "order_id",
    "tx_signature",
    "source",
    "event_id",
)
DECIMAL_FIELDS = ("price", "quantity", "notional_usd")
TIMESTAMP = pa.timestamp("ns", tz="UTC")


@customdataclass
class Liquidation:
    """One forced close: the venue's record, decimals as exact text, ``None`` where the source is silent."""

    instrument_id: str = ""
    venue: str = ""
    protocol: str = ""
    symbol: str = ""
    market: str = ""
    side: str = ""
    price: str = ""
    quantity: str = ""
    notional_usd: str = ""
    account: str = ""
    liquidator: str = ""
    order_id: str = ""
    tx_signature: str = ""
    source: str = ""
    event_id: str = ""


register_custom_data_class(Liquidation)

LIQUIDATION_SCHEMA = pa.schema(
    [pa.field(name, pa.string()) for name in TEXT_FIELDS]
    + [
        pa.field("type", pa.string(), nullable=False),
        pa.field("ts_event", TIMESTAMP, nullable=False),
        pa.field("ts_init", TIMESTAMP, nullable=False),
        pa.field("data_type", pa.string(), nullable=False),
    ]
)


def data_type_text(identifier: str) -> str:
    """Return the ``data_type`` column value Nautilus writes for custom data with this identifier."""
    return json.dumps({"type_name": TYPE_NAME, "metadata": None, "identifier": identifier}, separators=(",", ":"))


def liquidations_table(frame: pl.DataFrame, *, identifier: str, instrument_id: str | None) -> pa.Table:
    """Return store liquidation rows of one venue and symbol as a ``Liquidation`` custom-data table."""
    ts = pl.col("ts").cast(pl.Datetime("ns", "UTC"))
    columns = frame.sort("ts", "event_id").select(
        pl.lit(instrument_id, dtype=pl.String).alias("instrument_id"),
        *(
            (decimal_text(pl.col(name)) if name in DECIMAL_FIELDS else pl.col(name).cast(pl.String)).alias(name)
            for name in TEXT_FIELDS[1:]
        ),
        pl.lit(TYPE_NAME).alias("type"),
        ts.alias("ts_event"),
        ts.alias("ts_init"),
        pl.lit(data_type_text(identifier)).alias("data_type"),
    )
    arrow = columns.to_arrow()
    arrays = [arrow.column(field.name).cast(field.type) for field in LIQUIDATION_SCHEMA]
    return pa.Table.from_arrays(arrays, schema=LIQUIDATION_SCHEMA.with_metadata({"type_name": TYPE_NAME}))
