"""``python -m engine.demo``: backtests that work offline on a fresh machine, on SYNTHETIC data.

When the store has no data it is filled with the seeded synthetic generator (``datasets.synthetic``),
the hand-typed fixture instrument table (``configs/instruments_mid2025.csv``, not a source of truth) is
imported into the store's ``instruments`` kind, the catalog is exported from the store, and the demo
configs run with the catalog path overridden: the two carry strategies
(``configs/demo_carry_spot_perp.toml``: Binance BTC spot + perp; ``configs/demo_carry_cross_venue.toml``:
Binance against Hyperliquid BTC perps) and the funding-short toy (``configs/demo.toml``). Each prints
its summary and the path of its tearsheet. Every run of the demo on the same seed prints the same figures.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from datasets.catalog import export_catalog
from datasets.store import Store
from datasets.synthetic import SyntheticSpec, has_store, write_synthetic_store
from datasets.testing import write_fixture_instruments
from engine.backtest.__main__ import main as backtest_main

DEFAULT_CONFIGS = (
    Path("configs/demo_carry_spot_perp.toml"),
    Path("configs/demo_carry_cross_venue.toml"),
    Path("configs/demo.toml"),
)


def prepare_demo_catalog(store_root: Path, catalog_dir: Path, *, echo: bool = True) -> Path:
    """Fill an empty store with synthetic data and export it to ``catalog_dir``; return the catalog path."""
    store = Store(store_root)
    if not has_store(store.root):
        if echo:
            print(
                f"store {store.root} is empty: writing SYNTHETIC demo data (seed 7, BTC/ETH, 2024-01..03)",
                file=sys.stderr,
            )
        write_synthetic_store(store, SyntheticSpec())
    write_fixture_instruments(store)  # a store of an older demo may lack them; unchanged specs add nothing
    if not (catalog_dir / "data").is_dir():
        if echo:
            print(f"exporting catalog {catalog_dir}", file=sys.stderr)
        export_catalog(store, catalog_dir)
    return catalog_dir


def main(argv: list[str] | None = None) -> int:
    """Prepare the synthetic store and catalog if needed, then run the demo configs; return the exit code."""
    parser = argparse.ArgumentParser(prog="python -m engine.demo", description=__doc__)
    parser.add_argument(
        "--store", type=Path, default=Path("data/demo/store"), help="store directory (default %(default)s)"
    )
    parser.add_argument("--catalog", type=Path, default=Path("data/demo/catalog"), help="catalog directory")
    parser.add_argument(
        "--config",
        type=Path,
        action="append",
        dest="configs",
        help="run config, repeatable (default: " + ", ".join(map(str, DEFAULT_CONFIGS)) + ")",
    )
    parser.add_argument("--out", type=Path, default=Path("runs"), help="runs directory (default %(default)s)")
    args = parser.parse_args(argv)
    prepare_demo_catalog(args.store, args.catalog)
    configs = [str(path) for path in (args.configs or DEFAULT_CONFIGS)]
    return backtest_main([*configs, "--catalog", str(args.catalog), "--out", str(args.out)])


if __name__ == "__main__":
    raise SystemExit(main())
