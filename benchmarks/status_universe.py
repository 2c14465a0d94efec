"""``status`` on a universe: time the per-series table and the ``--summary`` view over many perps.

``.venv/bin/python benchmarks/status_universe.py [--symbols 300]`` writes a SYNTHETIC store (seeded rates,
not market data): 8 h funding for N perps on Binance, Bybit and OKX and 1 h funding for N on Hyperliquid and
dYdX, two years each, then times ``coverage`` + formatting, best of three.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl

from datasets.schemas import PL_DECIMAL
from datasets.status import coverage, format_coverage, format_summary, summarise
from datasets.store import SourceInfo, Store

CLOCKS = {
    "binance": ("USDT", 8),
    "bybit": ("USDT", 8),
    "okx": ("USDT", 8),
    "hyperliquid": ("USDC", 1),
    "dydx": ("USDC", 1),
}
START = datetime(2024, 1, 1, tzinfo=UTC)


def _write(store: Store, symbols: int) -> int:
    rows = 0
    for venue, (quote, hours) in CLOCKS.items():
        count = 2 * 365 * 24 // hours
        times = pl.datetime_range(START, START + timedelta(hours=hours * (count - 1)), f"{hours}h", eager=True)
        frames = [
            pl.DataFrame(
                {
                    "venue": venue,
                    "symbol": f"C{n:04d}-{quote}-PERP",
                    "ts": times.dt.cast_time_unit("ns"),
                    # Seeded by position: (i % 5 - 2) x 1e-5 per settlement.
                    "rate": [str((i % 5 - 2) * 10) + "e-6" for i in range(count)],
                    "interval": f"{hours}h",
                }
            ).with_columns(
                pl.col("rate").cast(PL_DECIMAL),
                *(pl.lit(None, PL_DECIMAL).alias(c) for c in ("mark_price", "index_price", "premium")),
            )
            for n in range(symbols)
        ]
        batch = pl.concat(frames).with_row_index("_row").with_columns(pl.col("_row").cast(pl.Int64))
        store.write("funding", batch, SourceInfo(f"synthetic {venue}", "0" * 64, "benchmark", "1"))
        rows += batch.height
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--symbols", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        store = Store(Path(scratch) / "store")
        started = time.perf_counter()
        rows = _write(store, args.symbols)
        perps = len(CLOCKS) * args.symbols
        print(f"wrote {rows:,} synthetic settlements, {perps} perps: {time.perf_counter() - started:.1f} s")
        for label, render in (
            ("status (one row per series)", format_coverage),
            ("status --summary", lambda c: format_summary(summarise(c))),
        ):
            best = float("inf")
            for _ in range(3):
                started = time.perf_counter()
                text = render(coverage(store))
                best = min(best, time.perf_counter() - started)
            print(f"{label}: {best:.2f} s, {len(text.splitlines()) - 1:,} table rows")


if __name__ == "__main__":
    main()
