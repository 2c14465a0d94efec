"""Import throughput against a bare polars read_ipc -> write_parquet of the same files, same process.

    .venv/bin/python benchmarks/ingest.py [--data ../shared/data/binance_freqtrade] [--repeat 3]

Prints rows/s of the full import (importer, validation, decimal conversion, partitioning, lineage,
atomic writes) and of the bare baseline, and their ratio (target <= 3). Each figure is the best of
``--repeat`` runs into a fresh temp dir. Then times the Nautilus catalog export of 1,000,000 bars
(target <= 3 s) through ``benchmarks/catalog_export.py`` when that module is present.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import polars as pl

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from datasets.pipeline import expand_inputs, import_paths  # noqa: E402
from datasets.store import Store  # noqa: E402


def bare_copy(files: list[Path], out: Path) -> int:
    rows = 0
    for i, path in enumerate(files):
        frame = pl.read_ipc(path)
        frame.write_parquet(out / f"{i}.parquet")
        rows += frame.height
    return rows


def best_of(repeat: int, run: object) -> tuple[float, int]:
    best = float("inf")
    rows = 0
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            rows = run(Path(tmp))  # type: ignore[operator]
            best = min(best, time.perf_counter() - start)
    return best, rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "binance_freqtrade")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--bars", type=int, default=1_000_000, help="bars for the catalog export timing")
    args = parser.parse_args()

    files, _ = expand_inputs([args.data])
    bare_secs, bare_rows = best_of(args.repeat, lambda tmp: bare_copy(files, tmp))
    full_secs, full_rows = best_of(args.repeat, lambda tmp: import_paths([args.data], Store(tmp)).rows)
    print(f"input: {args.data} ({len(files)} files, {full_rows:,} rows)")
    print(f"bare read_ipc -> write_parquet: {bare_secs:6.3f} s  {bare_rows / bare_secs:12,.0f} rows/s")
    print(f"full import (validated, lineage): {full_secs:6.3f} s  {full_rows / full_secs:12,.0f} rows/s")
    print(f"ratio full / bare: {full_secs / bare_secs:.2f} (target <= 3)")

    try:
        from benchmarks.catalog_export import time_catalog_export
    except ImportError as exc:
        print(f"catalog export timing skipped: {exc}")
        return 0
    figures = time_catalog_export(args.bars)
    for name, value in figures.items():
        print(f"catalog export {name}: {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
