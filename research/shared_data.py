"""Build a store and a Nautilus catalog for a carry run config from the recorded files in ``../shared/data``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from datasets.catalog import export_catalog
from datasets.pipeline import import_paths
from datasets.store import Store
from datasets.testing import FIXTURE_INSTRUMENTS
from research.carry_kernel import CROSS_VENUE, SPOT_PERP
from research.errors import SweepError

# The recorded files each carry strategy's configs trade (the configs' headers list the same).
FILES = {
    SPOT_PERP: (
        "binance_freqtrade/spot/BTC_USDT-1h.feather",
        "binance_freqtrade/futures/BTC_USDT_USDT-1h-futures.feather",
        "binance_freqtrade/futures/BTC_USDT_USDT-1h-mark.feather",
        "binance_freqtrade/futures/BTC_USDT_USDT-1h-funding_rate.feather",
    ),
    CROSS_VENUE: (
        "binance_freqtrade/futures/BTC_USDT_USDT-1h-futures.feather",
        "binance_freqtrade/futures/BTC_USDT_USDT-1h-mark.feather",
        "binance_freqtrade/futures/BTC_USDT_USDT-1h-funding_rate.feather",
        "hyperliquid_freqtrade/BTC_USDC_USDC-1h-futures.feather",
        "hyperliquid_freqtrade/BTC_USDC_USDC-8h-mark.feather",
        "hyperliquid_freqtrade/BTC_USDC_USDC-1h-funding_rate.feather",
    ),
}


@dataclass(frozen=True, slots=True)
class PreparedData:
    """A store (for the kernel) and a catalog (for the engine) holding the same data."""

    store: Store
    catalog: Path


def prepare_shared_data(
    shared: Path,
    root: Path,
    *,
    strategy_path: str,
    venues: list[str],
    symbols: list[str],
    start: datetime,
    end: datetime,
) -> PreparedData:
    """Import the strategy's recorded files from ``shared`` into ``root/store`` and export ``root/catalog``.

    Raises
    ------
    SweepError
        If the strategy has no known files or one is missing under ``shared``.
    """
    if strategy_path not in FILES:
        raise SweepError(f"expected strategy {SPOT_PERP} or {CROSS_VENUE}, was {strategy_path}")
    paths = [shared / name for name in FILES[strategy_path]]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise SweepError(f"expected the recorded files under {shared}, missing {missing}: check --shared")
    store = Store(root / "store")
    # The recorded files carry no instrument specs: the hand-typed fixture table stands in (datasets.testing).
    import_paths([*paths, FIXTURE_INSTRUMENTS], store)
    catalog = root / "catalog"
    export_catalog(store, catalog, venues=venues, symbols=symbols, start=start, end=end)
    return PreparedData(store, catalog)
