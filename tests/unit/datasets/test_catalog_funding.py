"""datasets.catalog.funding: settlements become updates announced one interval before they settle."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest
from nautilus_trader.model import FundingRateUpdate, InstrumentId, NautilusDataType
from nautilus_trader.persistence import ParquetDataCatalog

from datasets.catalog.files import write_parquet
from datasets.catalog.funding import decimal_text, funding_table, funding_updates_frame
from tests.kit.store import canonical_frame

INSTRUMENT = "BTCUSDT-PERP.BINANCE"


def ns(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()) * 10**9


def settlements(rows: list[tuple[str, str, str]]) -> pl.DataFrame:
    return canonical_frame(
        "funding",
        [{"ts": datetime.fromisoformat(t).replace(tzinfo=UTC), "rate": r, "interval": i} for t, r, i in rows],
        venue="binance",
        symbol="BTC-USDT-PERP",
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0.0001", "0.0001"),
        ("-0.0000615", "-0.0000615"),
        ("100", "100"),
        ("0", "0"),
        ("-0.000000000000000000", "0"),
        ("12.500", "12.5"),
    ],
)
def test_decimal_text_is_shortest_plain_form(text: str, expected: str) -> None:
    series = pl.Series([text]).cast(pl.Decimal(38, 18))
    assert series.to_frame("x").select(decimal_text(pl.col("x"))).item() == expected


def test_updates_are_announced_one_interval_before_settlement() -> None:
    """8h settlements at 08:00 (r = 0.0001) and 16:00 (r = -0.00005), then a 1h one at 17:00 (r = 0.0002).

    Each becomes (ts_event = ts_init = T - I, rate r, interval I in minutes, next_funding_ns T):
    (00:00, 0.0001, 480, 08:00), (08:00, -0.00005, 480, 16:00), (16:00, 0.0002, 60, 17:00).
    """
    frame = settlements(
        [
            ("2024-01-01T16:00", "-0.00005", "8h"),
            ("2024-01-01T08:00", "0.0001", "8h"),
            ("2024-01-01T17:00", "0.0002", "1h"),
        ]
    )
    updates = funding_updates_frame(frame, instrument_id=INSTRUMENT)
    rows = [
        (r["ts_event"], r["rate"], r["interval"], r["next_funding_ns"])
        for r in updates.with_columns(pl.col("ts_event", "next_funding_ns").dt.epoch("ns")).to_dicts()
    ]
    assert rows == [
        (ns("2024-01-01T00:00"), "0.0001", 480, ns("2024-01-01T08:00")),
        (ns("2024-01-01T08:00"), "-0.00005", 480, ns("2024-01-01T16:00")),
        (ns("2024-01-01T16:00"), "0.0002", 60, ns("2024-01-01T17:00")),
    ]
    assert (updates["ts_init"] == updates["ts_event"]).all()


def test_funding_table_reads_back_as_nautilus_updates(tmp_path: Path) -> None:
    frame = settlements([("2024-01-01T08:00", "0.0001", "8h"), ("2024-01-01T16:00", "-0.0000615", "8h")])
    table = funding_table(frame, instrument_id=INSTRUMENT)
    assert table.schema.metadata == {b"instrument_id": INSTRUMENT.encode(), b"type_name": b"FundingRateUpdate"}
    write_parquet(table, tmp_path / "data" / "funding_rates" / INSTRUMENT)
    updates = ParquetDataCatalog(str(tmp_path)).query(NautilusDataType.FundingRateUpdate, [INSTRUMENT])
    instrument_id = InstrumentId.from_str(INSTRUMENT)
    assert updates == [
        FundingRateUpdate(
            instrument_id,
            Decimal("0.0001"),
            ns("2024-01-01T00:00"),
            ns("2024-01-01T00:00"),
            480,
            ns("2024-01-01T08:00"),
        ),
        FundingRateUpdate(
            instrument_id,
            Decimal("-0.0000615"),
            ns("2024-01-01T08:00"),
            ns("2024-01-01T08:00"),
            480,
            ns("2024-01-01T16:00"),
        ),
    ]
