"""The ledgers read a run's bars one instrument at a time (``RunData.bar_streams``), never the whole window.

Synthetic bars, hand-written here: instrument A closes 100, 102, 101.5 at hours 1-3; B closes 50, 55 at
hours 2 and 4.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import polars as pl

from engine.results.artefacts import write_frame
from engine.results.ledger import attribute
from engine.results.schemas import FILLS_SCHEMA, FUNDING_SCHEMA, frame_of_rows
from engine.run_data import BARS_SCHEMA, RunData

HOUR = 3_600_000_000_000
A, B = "A-PERP.X", "B-PERP.X"
SYNTHETIC_BARS = frame_of_rows(
    [
        {"instrument_id": A, "ts": HOUR, "close": Decimal("100")},
        {"instrument_id": A, "ts": 2 * HOUR, "close": Decimal("102")},
        {"instrument_id": B, "ts": 2 * HOUR, "close": Decimal("50")},
        {"instrument_id": A, "ts": 3 * HOUR, "close": Decimal("101.5")},
        {"instrument_id": B, "ts": 4 * HOUR, "close": Decimal("55")},
    ],
    BARS_SCHEMA,
)


def _streamed() -> RunData:
    # What load_run_data holds for a backtest: one lazy frame per instrument, collected only when read.
    return RunData(bars={i: SYNTHETIC_BARS.lazy().filter(pl.col("instrument_id") == i) for i in (A, B)})


def _held(data: RunData) -> object:
    return vars(data)["_bars"]


def test_counts_and_last_closes_come_from_the_streams_without_collecting_the_window() -> None:
    data = _streamed()
    assert data.bar_count == 5  # 3 bars of A + 2 of B
    assert data.last_close(A) == Decimal("101.5")
    assert data.last_close(B) == Decimal("55")
    assert isinstance(_held(data), dict)  # still lazy: nothing collected every bar of the window


def test_attribution_per_stream_equals_the_collected_frame_and_the_hand_computed_pnl() -> None:
    # Buy 2 A at 100 (fee 0.1 USD) just after the 1h close. Marked at A's last close on each grid time:
    # 1h: -200 + 2*100 = 0; 2h: -200 + 2*102 = 4; 3h and 4h: -200 + 2*101.5 = 3. Fees -0.1 throughout.
    fills = frame_of_rows(
        [
            {
                "ts": HOUR + 1,
                "instrument_id": A,
                "side": "BUY",
                "quantity": Decimal("2"),
                "price": Decimal("100"),
                "commission": Decimal("0.1"),
                "commission_currency": "USD",
            }
        ],
        FILLS_SCHEMA,
    )
    funding = pl.DataFrame(schema=FUNDING_SCHEMA)
    currency_of = {A: "USD", B: "USD"}
    streamed = _streamed()
    curve = attribute(fills, funding, streamed, currency_of).curve
    assert isinstance(_held(streamed), dict)
    assert curve["ts"].cast(pl.Int64).to_list() == [HOUR, 2 * HOUR, 3 * HOUR, 4 * HOUR]
    assert curve["pnl_total"].to_list() == [Decimal(v) for v in ("-0.1", "3.9", "2.9", "2.9")]
    assert curve.equals(attribute(fills, funding, RunData(bars=SYNTHETIC_BARS), currency_of).curve)


def test_bars_artefact_is_written_stream_by_stream_with_the_same_rows_and_bytes(tmp_path: Path) -> None:
    first, second = tmp_path / "first.parquet", tmp_path / "second.parquet"
    write_frame(_streamed().bars_source(), first)
    write_frame(_streamed().bars_source(), second)
    assert first.read_bytes() == second.read_bytes()
    expected = pl.concat([SYNTHETIC_BARS.filter(pl.col("instrument_id") == i) for i in (A, B)])
    assert pl.read_parquet(first).equals(expected)
    # A frame given whole (a paper session's bars) is written as it is, in its own row order.
    write_frame(RunData(bars=SYNTHETIC_BARS).bars_source(), first)
    assert pl.read_parquet(first).equals(SYNTHETIC_BARS)
