"""Import throughput against a bare polars read_ipc -> write_parquet of the same files, same process.

    .venv/bin/python benchmarks/ingest.py [--data ../shared/data/binance_freqtrade] [--pairs 9] [--bars N]

Runs ``--pairs`` interleaved pairs (bare then full, the order alternating pair to pair, each into a
fresh temp dir) of the bare baseline and the full import (importer, validation, decimal conversion,
partitioning, lineage, atomic writes), and prints the median and range of the per-pair ratio
full / bare (target <= 3) with the load average, so a burst of load elsewhere moves one pair, not
the figure. The CPU seconds of each side (``time.process_time``, all threads) are printed too: on a
loaded machine they move less than wall time. Then times the Nautilus catalog export of ``--bars``
bars (target <= 3 s for 1,000,000) through ``benchmarks/catalog_export.py`` when that module is
present (``--bars 0`` skips it).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
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


def timed(run: Callable[[Path], int]) -> tuple[float, float, int]:
    """Return (wall seconds, CPU seconds of the process, rows) of ``run`` into a fresh temp dir."""
    with tempfile.TemporaryDirectory() as tmp:
        start, cpu = time.perf_counter(), time.process_time()
        rows = run(Path(tmp))
        return time.perf_counter() - start, time.process_time() - cpu, rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "binance_freqtrade")
    parser.add_argument("--pairs", type=int, default=9)
    parser.add_argument("--bars", type=int, default=1_000_000, help="bars for the catalog export timing (0: skip)")
    args = parser.parse_args()

    files, _ = expand_inputs([args.data])

    def bare(tmp: Path) -> int:
        return bare_copy(files, tmp)

    def full(tmp: Path) -> int:
        return import_paths([args.data], Store(tmp)).rows

    timed(bare), timed(full)  # warm-up: page cache, imports, polars thread pool
    ratios, bare_secs, full_secs, bare_cpu, full_cpu = [], [], [], [], []
    rows = 0
    for pair in range(args.pairs):
        order = (bare, full) if pair % 2 == 0 else (full, bare)
        secs = {run: timed(run) for run in order}
        (b, b_cpu, _), (f, f_cpu, rows) = secs[bare], secs[full]
        bare_secs.append(b)
        full_secs.append(f)
        bare_cpu.append(b_cpu)
        full_cpu.append(f_cpu)
        ratios.append(f / b)
    print(f"input: {args.data} ({len(files)} files, {rows:,} rows); load average {os.getloadavg()}")
    print(
        f"bare read_ipc -> write_parquet: median {statistics.median(bare_secs):6.3f} s "
        f"({statistics.median(bare_cpu):.3f} CPU s)"
    )
    print(
        f"full import (validated, lineage): median {statistics.median(full_secs):6.3f} s "
        f"({statistics.median(full_cpu):.3f} CPU s)"
    )
    print(
        f"ratio full / bare over {args.pairs} interleaved pairs: median {statistics.median(ratios):.2f} "
        f"(range {min(ratios):.2f}-{max(ratios):.2f}; target <= 3)"
    )
    if args.bars <= 0:
        return 0
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
