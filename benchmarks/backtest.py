"""Engine throughput: 1,000,000 one-minute bars, an EMA cross that trades often, 8-hourly funding.

    .venv/bin/python benchmarks/backtest.py [--bars 1000000] [--dir /tmp/bench-backtest]

Builds a seeded store (``datasets.synthetic.synthetic_bars``) and its catalog once per
directory, then runs the config through ``engine.backtest.run_backtest`` and prints bars per second
of the engine run, the wall-time split (catalog load, engine run, artefact writing) and peak RSS.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.memory import peak_rss_mib  # noqa: E402
from datasets.catalog import export_catalog  # noqa: E402
from datasets.store import Store  # noqa: E402
from datasets.synthetic import SYNTHETIC_SOURCE, synthetic_bars  # noqa: E402
from datasets.testing import write_fixture_instruments  # noqa: E402
from engine.backtest import parse_config, run_backtest  # noqa: E402

START = datetime(2022, 1, 1, tzinfo=UTC)


def build_catalog(directory: Path, bars: int) -> Path:
    catalog = directory / "catalog"
    if (catalog / "data").is_dir():
        return catalog
    store = Store(directory / "store")
    write_fixture_instruments(store)  # the catalog is built from stored specs (export refuses without them)
    frame = synthetic_bars(bars, venue="binance", symbol="BTC-USDT-PERP", start=START, tick="0.10", seed=11)
    store.write("ohlcv", frame, SYNTHETIC_SOURCE)
    end = START + timedelta(minutes=bars)
    settlements = pl.datetime_range(START + timedelta(hours=8), end, "8h", eager=True, time_unit="ns")
    rates = [f"{(i % 7 - 2) * 0.00003:.5f}" for i in range(settlements.len())]
    funding = (
        pl.DataFrame(
            {"ts": settlements.cast(pl.Datetime("ns", "UTC")), "rate": rates},
        )
        .with_row_index("_row")
        .select(
            pl.lit("binance").alias("venue"),
            pl.lit("BTC-USDT-PERP").alias("symbol"),
            "ts",
            pl.col("rate").cast(pl.Decimal(38, 18)),
            pl.lit("8h").alias("interval"),
            *(pl.lit(None, dtype=pl.Decimal(38, 18)).alias(c) for c in ("mark_price", "index_price", "premium")),
            pl.col("_row").cast(pl.Int64),
        )
    )
    store.write("funding", funding, SYNTHETIC_SOURCE)
    export_catalog(store, catalog)
    return catalog


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bars", type=int, default=1_000_000)
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "bench-backtest")
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    catalog = build_catalog(args.dir, args.bars)
    print(f"store + catalog ready in {time.perf_counter() - started:.1f} s ({args.bars:,} bars)")
    end = START + timedelta(minutes=args.bars + 1)
    config = parse_config(
        f"""
name = "bench-ema-cross"
start = {START.isoformat()}
end = {end.isoformat().replace("+00:00", "Z")}
[data]
catalog = "{catalog}"
bar_spec = "1-MINUTE-LAST-EXTERNAL"
mark_prices = false
[[venues]]
name = "binance"
instruments = ["BTC-USDT-PERP"]
starting_balances = ["1000000 USDT"]
leverage = 5
[fill]
slippage_bps = 1
[risk]
max_order_submit_rate = "1000/00:00:01"
[strategy]
path = "strategies.demo:EmaCross"
[strategy.params]
instrument_id = "binance:BTC-USDT-PERP"
fast_period = 10
slow_period = 30
trade_size = "0.01"
""".encode()
    )
    result = run_backtest(config, out_dir=args.dir / "runs")
    timings = result.timings_secs
    bars = result.stats["bars"]
    wall = sum(timings.values())
    print(
        f"bars {bars:,}  orders {result.stats['orders']:,}  fills {result.stats['fills']:,}  "
        f"funding settlements {result.stats['funding_settlements']:,}"
    )
    print(f"engine run: {bars / timings['engine_run']:,.0f} bars/s ({timings['engine_run']:.2f} s)")
    print(f"end to end: {bars / wall:,.0f} bars/s ({wall:.2f} s)")
    for name, secs in timings.items():
        print(f"  {name:<13} {secs:7.2f} s  {secs / wall:6.1%}")
    peak_mib = peak_rss_mib()
    print(f"peak RSS {peak_mib:,.0f} MiB")
    print(
        f"pnl_total {result.stats['pnl_total']} = price {result.stats['pnl_price']} "
        f"+ funding {result.stats['pnl_funding']} + fees {result.stats['pnl_fees']}"
    )


if __name__ == "__main__":
    main()
