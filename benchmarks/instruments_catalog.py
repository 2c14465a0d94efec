"""Catalog of many instruments: export 100 perps from stored specs, then load them in the engine.

    .venv/bin/python benchmarks/instruments_catalog.py [--instruments 100] [--hours 24]

Builds a SYNTHETIC store: an instrument table of ``--instruments`` Binance perps (``SYN000-USDT-PERP``...,
tick 0.01, lot 0.001, 75x; labelled synthetic in the table) imported into the ``instruments`` kind,
``--hours`` seeded hourly bars (trade and mark) and 8-hourly funding for each. Then it prints the time
of ``export_catalog`` (stored specs -> Nautilus instruments, bars, marks, funding), of reading the
instruments back from the catalog, and of a whole ``FundingShort`` backtest over all of them (catalog
load, engine build with one instrument each, run). Prints, never asserts.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import polars as pl  # noqa: E402

from datasets.catalog import export_catalog  # noqa: E402
from datasets.pipeline import import_paths  # noqa: E402
from datasets.schemas import FUNDING  # noqa: E402
from datasets.store import Store  # noqa: E402
from datasets.synthetic import SYNTHETIC_SOURCE, synthetic_bars  # noqa: E402

START = datetime(2024, 1, 1, tzinfo=UTC)
HEADER = (
    "venue,symbol,tick_size,lot_size,min_quantity,initial_margin,maintenance_margin,contract_multiplier,effective_from"
)


def symbols(count: int) -> list[str]:
    """Return the synthetic perps' canonical symbols."""
    return [f"SYN{i:03d}-USDT-PERP" for i in range(count)]


def build_store(root: Path, count: int, hours: int) -> Store:
    """Write the synthetic instrument table, bars, marks and funding of ``count`` perps under ``root``."""
    store = Store(root / "store")
    table = root / "synthetic_instruments.csv"
    rows = [f"binance,{s},0.01,0.001,0.001,0.0134,0.005,1,2023-01-01T00:00:00Z" for s in symbols(count)]
    table.write_text(
        "# SYNTHETIC instrument table of benchmarks/instruments_catalog.py\n" + HEADER + "\n" + "\n".join(rows) + "\n"
    )
    import_paths([table], store)
    frames = []
    for seed, symbol in enumerate(symbols(count)):
        common = {"venue": "binance", "symbol": symbol, "start": START, "interval": "1h", "seed": seed}
        frames += [synthetic_bars(hours, **common), synthetic_bars(hours, price_type="mark", **common)]
    store.write("ohlcv", pl.concat(frames).drop("_row").with_row_index("_row"), SYNTHETIC_SOURCE)
    settlements = [START + timedelta(hours=8 * k) for k in range(1, hours // 8 + 1)]
    funding = pl.DataFrame(
        {
            "venue": "binance",
            "symbol": [s for s in symbols(count) for _ in settlements],
            "ts": [t for _ in symbols(count) for t in settlements],
            "rate": "0.0001",
            "interval": "8h",
        },
        schema_overrides={"ts": pl.Datetime("ns", "UTC")},
    ).select(
        "venue",
        "symbol",
        "ts",
        pl.col("rate").cast(pl.Decimal(38, 18)),
        "interval",
        *(pl.lit(None, dtype=pl.Decimal(38, 18)).alias(c) for c in ("mark_price", "index_price", "premium")),
    )
    store.write("funding", funding.select(FUNDING.columns).with_row_index("_row"), SYNTHETIC_SOURCE)
    return store


def run_config(catalog: Path, count: int, hours: int) -> bytes:
    """Return the TOML of a FundingShort run over every synthetic perp."""
    ids = ", ".join(f'"binance:{s}"' for s in symbols(count))
    instruments = ", ".join(f'"{s}"' for s in symbols(count))
    return f"""
name = "bench-instruments"
start = {START.isoformat()}
end = {(START + timedelta(hours=hours)).isoformat()}
[data]
catalog = "{catalog}"
[[venues]]
name = "binance"
instruments = [{instruments}]
starting_balances = ["10000000 USDT"]
leverage = 3
[strategy]
path = "strategies.demo:FundingShort"
[strategy.params]
instrument_ids = [{ids}]
notional = "1000"
enter_rate = "0.00005"
exit_rate = "0"
""".encode()


def main(argv: list[str] | None = None) -> int:
    """Build the store, time the export and the engine load, print the figures."""
    from nautilus_trader.persistence import ParquetDataCatalog

    from engine.backtest import parse_config, run_backtest

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--instruments", type=int, default=100)
    parser.add_argument("--hours", type=int, default=24)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        started = time.perf_counter()
        store = build_store(root, args.instruments, args.hours)
        build_secs = time.perf_counter() - started
        started = time.perf_counter()
        summary = export_catalog(store, root / "catalog")
        export_secs = time.perf_counter() - started
        started = time.perf_counter()
        instruments = ParquetDataCatalog(str(root / "catalog")).instruments()
        read_secs = time.perf_counter() - started
        config = parse_config(run_config(root / "catalog", args.instruments, args.hours))
        started = time.perf_counter()
        result = run_backtest(config, out_dir=None)
        run_secs = time.perf_counter() - started
    print(
        f"synthetic store: {args.instruments} perps x {args.hours} hourly bars (+ marks, funding) in {build_secs:.2f} s"
    )
    print(
        f"export_catalog: {export_secs:.2f} s for {len(instruments)} instruments, {summary.rows('Bar'):,} bars, "
        f"{summary.rows('FundingRateUpdate'):,} funding updates"
    )
    print(f"catalog.instruments(): {read_secs:.3f} s for {len(instruments)} instruments")
    timings = ", ".join(f"{k} {v:.2f} s" for k, v in result.timings_secs.items())
    print(f"backtest over all {args.instruments}: {run_secs:.2f} s ({timings}); fills {result.stats['fills']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
