"""Catalog export throughput: 1,000,000 one-minute perp bars store -> Nautilus catalog, against Nautilus' object path.

    .venv/bin/python benchmarks/catalog_export.py [--bars 1000000] [--baseline-bars 100000] [--repeat 3]

Builds a seeded synthetic store (one Binance BTC perp, geometric random walk around 30,000 USDT,
one-minute bars), then times ``datasets.catalog.export_catalog`` of those bars (target <= 3 s on the
2-core reference machine; best of ``--repeat`` into fresh catalogs, store read included). As a
same-process baseline it times Nautilus' own path for a slice: build one ``Bar`` object per row
(``Price``/``Quantity`` from floats, the cheapest object route) and ``ParquetDataCatalog.write_bars``
(2.x's ``write_data`` for bars). Prints seconds, bars/s and the per-bar cost ratio baseline / export,
and checks the two catalogs hold identical bars for the slice.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import polars as pl  # noqa: E402

from datasets.catalog import export_catalog  # noqa: E402
from datasets.instruments import InstrumentSpec, spec_in_force  # noqa: E402
from datasets.store import SourceInfo, Store  # noqa: E402
from datasets.synthetic import synthetic_bars  # noqa: E402
from datasets.testing import write_fixture_instruments  # noqa: E402

VENUE, SYMBOL = "binance", "BTC-USDT-PERP"
START = datetime(2022, 1, 1, tzinfo=UTC)
SOURCE = SourceInfo(source="benchmarks/catalog_export.py", sha256="0" * 64, importer="synthetic", importer_version="1")


def build_store(root: Path, n_bars: int, *, seed: int = 42) -> Store:
    """Return a store at ``root`` holding ``n_bars`` seeded one-minute bars of the benchmark perp."""
    store = Store(root)
    write_fixture_instruments(store)
    tick = str(_spec(store).price_increment)
    store.write("ohlcv", synthetic_bars(n_bars, venue=VENUE, symbol=SYMBOL, start=START, tick=tick, seed=seed), SOURCE)
    return store


def _spec(store: Store) -> InstrumentSpec:
    return spec_in_force(store, VENUE, SYMBOL, START)


def object_path_bars(frame: pl.DataFrame, store: Store) -> list[Any]:
    """Return store rows as Nautilus ``Bar`` objects stamped at the close, as a caller of ``write_bars`` builds them."""
    from nautilus_trader.model import Bar, BarType, Price, Quantity

    spec = _spec(store)
    bar_type = BarType.from_str(f"{spec.instrument_id}-1-MINUTE-LAST-EXTERNAL")
    price_precision, size_precision = spec.price_precision, spec.size_precision
    floats = frame.select(
        pl.col("open", "high", "low", "close", "volume").cast(pl.Float64),
        (pl.col("ts").dt.epoch("ns") + 60 * 10**9).alias("ts_close"),
    )
    return [
        Bar(
            bar_type,
            Price(o, price_precision),
            Price(h, price_precision),
            Price(lo, price_precision),
            Price(c, price_precision),
            Quantity(v, size_precision),
            ts,
            ts,
        )
        for o, h, lo, c, v, ts in floats.iter_rows()
    ]


def time_catalog_export(n_bars: int = 1_000_000, *, baseline_bars: int = 100_000, repeat: int = 3) -> dict[str, Any]:
    """Return timings of exporting ``n_bars`` one-minute bars, and of Nautilus' object path on a slice.

    Keys: ``bars``, ``export_secs`` (best of ``repeat``), ``export_bars_per_sec``, ``baseline_bars``,
    ``baseline_build_secs``, ``baseline_write_secs``, ``baseline_bars_per_sec``, ``per_bar_ratio``
    (baseline seconds per bar / export seconds per bar), ``identical_slice`` (both paths read back equal).
    """
    from nautilus_trader.persistence import ParquetDataCatalog

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        store = build_store(root / "store", n_bars)
        export_secs = float("inf")
        for attempt in range(repeat):
            started = time.perf_counter()
            export_catalog(store, root / f"catalog-{attempt}")
            export_secs = min(export_secs, time.perf_counter() - started)

        slice_rows = min(baseline_bars, n_bars)
        frame = store.scan("ohlcv").head(slice_rows).collect()
        started = time.perf_counter()
        bars = object_path_bars(frame, store)
        build_secs = time.perf_counter() - started
        (root / "baseline").mkdir()
        baseline = ParquetDataCatalog(str(root / "baseline"))
        started = time.perf_counter()
        baseline.write_bars(bars)
        write_secs = time.perf_counter() - started

        bar_type = str(bars[0].bar_type)
        exported = ParquetDataCatalog(str(root / "catalog-0")).query_bars([bar_type], end=bars[-1].ts_event)
        identical = [str(b) for b in exported] == [str(b) for b in baseline.query_bars([bar_type])]

    baseline_secs = build_secs + write_secs
    return {
        "bars": n_bars,
        "export_secs": round(export_secs, 3),
        "export_bars_per_sec": round(n_bars / export_secs),
        "baseline_bars": slice_rows,
        "baseline_build_secs": round(build_secs, 3),
        "baseline_write_secs": round(write_secs, 3),
        "baseline_bars_per_sec": round(slice_rows / baseline_secs),
        "per_bar_ratio": round((baseline_secs / slice_rows) / (export_secs / n_bars), 1),
        "identical_slice": identical,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bars", type=int, default=1_000_000)
    parser.add_argument("--baseline-bars", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    figures = time_catalog_export(args.bars, baseline_bars=args.baseline_bars, repeat=args.repeat)
    print(
        f"export of {figures['bars']:,} one-minute bars: {figures['export_secs']:.3f} s "
        f"({figures['export_bars_per_sec']:,} bars/s; target <= 3 s)"
    )
    print(
        f"Nautilus object path, {figures['baseline_bars']:,} bars: build {figures['baseline_build_secs']:.3f} s + "
        f"write_bars {figures['baseline_write_secs']:.3f} s ({figures['baseline_bars_per_sec']:,} bars/s)"
    )
    ratio, identical = figures["per_bar_ratio"], figures["identical_slice"]
    print(f"per-bar cost, object path / export: {ratio}x; slice identical: {identical}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
