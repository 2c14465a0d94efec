"""Store -> Nautilus catalog -> BacktestEngine: bars, mark prices and funding from an export settle exactly."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from nautilus_trader.backtest import BacktestEngine, BacktestEngineConfig
from nautilus_trader.common import LoggerConfig, LogLevel
from nautilus_trader.model import (
    AccountType,
    BarType,
    Currency,
    InstrumentId,
    Money,
    NautilusDataType,
    OmsType,
    OrderSide,
    Quantity,
    Venue,
)
from nautilus_trader.persistence import ParquetDataCatalog
from nautilus_trader.trading import Strategy, StrategyConfig

from datasets.catalog import export_catalog, read_venues_file
from datasets.importers import ImportOptions, require_importer
from datasets.store import SourceInfo, Store
from datasets.testing import write_fixture_instruments
from tests.kit.store import canonical_frame

T0 = datetime(2024, 1, 1, tzinfo=UTC)
HAND = SourceInfo(source="hand-made", sha256="0" * 64, importer="test", importer_version="1")
BINANCE_PERP = "BTCUSDT-PERP.BINANCE"
HYPERLIQUID_PERP = "BTC-USD-PERP.HYPERLIQUID"

# Settlement time (hours after T0) -> rate. Every rate differs from its neighbours, so settling a
# settlement with the rate announced at it (for the next one) would change the sum.
BINANCE_RATES = {8: "0.0001", 16: "-0.00005", 24: "0.00025"}
HYPERLIQUID_RATES = {3: "0.00001", 4: "0.00002", 5: "-0.00001", 6: "0.00003", 7: "0.00001", 8: "0.00002"}
BINANCE_QTY, HYPERLIQUID_QTY = "0.100", "1.00000"


def binance_mark(hour: int) -> Decimal:
    """Mark close of the binance bar closing ``hour`` hours after T0."""
    return Decimal("42000.25") + 10 * hour


def hyperliquid_mark(hour: int) -> Decimal:
    """Mark close of the hyperliquid bar closing ``hour`` hours after T0."""
    return Decimal(40_000 + 1_000 * hour)


def hourly_bars(venue: str, symbol: str, price_type: str, hours: int, close_at: Any) -> pl.DataFrame:
    rows = []
    for k in range(hours):
        close = close_at(k + 1) - (Decimal(5) if price_type == "trade" else 0)
        rows.append({"ts": T0 + timedelta(hours=k), "open": close, "high": close + 1, "low": close - 1, "close": close})
    return canonical_frame(
        "ohlcv", rows, venue=venue, symbol=symbol, market="perp", price_type=price_type, interval="1h", volume=100
    )


def settlements(venue: str, symbol: str, rates: dict[int, str], interval: str) -> pl.DataFrame:
    rows = [{"ts": T0 + timedelta(hours=h), "rate": r, "interval": interval} for h, r in rates.items()]
    return canonical_frame("funding", rows, venue=venue, symbol=symbol)


def build_store(root: Path) -> Store:
    store = Store(root)
    for price_type in ("trade", "mark"):
        store.write("ohlcv", hourly_bars("binance", "BTC-USDT-PERP", price_type, 24, binance_mark), HAND)
        store.write("ohlcv", hourly_bars("hyperliquid", "BTC-USDC-PERP", price_type, 9, hyperliquid_mark), HAND)
    store.write("funding", settlements("binance", "BTC-USDT-PERP", BINANCE_RATES, "8h"), HAND)
    store.write("funding", settlements("hyperliquid", "BTC-USDC-PERP", HYPERLIQUID_RATES, "1h"), HAND)
    write_fixture_instruments(store)
    return store


class ShortOnceConfig(StrategyConfig):
    """Which perps to short once, and how much (``{instrument_id: quantity}``)."""

    def __new__(cls, *args: Any, **kwargs: Any) -> ShortOnceConfig:
        kwargs.pop("quantities", None)
        return super().__new__(cls, *args, **kwargs)

    def __init__(self, quantities: dict[str, str], **kwargs: Any) -> None:
        super().__init__()
        self.quantities = quantities


class ShortOnce(Strategy):
    """Sell each configured perp at market on its first one-hour bar, then hold."""

    def __init__(self, config: ShortOnceConfig) -> None:
        super().__init__(config)
        self.quantities = {InstrumentId.from_str(i): Quantity.from_str(q) for i, q in config.quantities.items()}
        self.opened: set[InstrumentId] = set()

    def on_start(self) -> None:
        for instrument_id in self.quantities:
            self.subscribe_bars(BarType.from_str(f"{instrument_id}-1-HOUR-LAST-EXTERNAL"))

    def on_bar(self, bar: Any) -> None:
        instrument_id = bar.bar_type.instrument_id
        if instrument_id not in self.opened:
            self.opened.add(instrument_id)
            self.submit_order(self.order_factory.market(instrument_id, OrderSide.SELL, self.quantities[instrument_id]))


@pytest.fixture
def engine() -> Iterator[BacktestEngine]:
    config = BacktestEngineConfig(
        logging=LoggerConfig(stdout_level=LogLevel.ERROR, bypass_logging=True), run_analysis=False
    )
    engine = BacktestEngine(config)
    yield engine
    engine.dispose()


def funding_adjustments(engine: BacktestEngine) -> dict[str, list[tuple[int, Decimal]]]:
    """Return ``{instrument_id: [(ts_event, pnl_change), ...]}`` of every funding adjustment, in time order."""
    report = engine.generate_positions_report()
    found: dict[str, set[tuple[int, Decimal]]] = {}
    for instrument_id, adjustments in zip(report["instrument_id"], report["adjustments"], strict=True):
        for adjustment in adjustments:
            if adjustment["adjustment_type"] == "FUNDING":
                amount = Decimal(adjustment["pnl_change"].split()[0])
                found.setdefault(str(instrument_id), set()).add((adjustment["ts_event"], amount))
    return {i: sorted(a) for i, a in found.items()}


def expected(rates: dict[int, str], qty: str, mark: Any) -> list[tuple[int, Decimal]]:
    """Return ``[(T, -q * mark(T) * r(T)), ...]`` for a short of ``qty`` (signed position ``q = -qty``)."""
    signed_qty = -Decimal(qty)
    return [(ns(T0 + timedelta(hours=h)), -signed_qty * mark(h) * Decimal(r)) for h, r in rates.items()]


def ns(moment: datetime) -> int:
    return int(moment.timestamp()) * 10**9


def test_exported_catalog_backtest_settles_funding_exactly(tmp_path: Path, engine: BacktestEngine) -> None:
    """A short perp opened on the first bar receives funding ``-q * mark(T) * r(T)`` at every settlement T.

    Arithmetic (q is the signed position, -0.1 BTC on Binance and -1 BTC on Hyperliquid; a short
    receives funding when the rate is positive):

    - Binance, 8h clock, settlements at T0+8h, +16h, +24h with r = 0.0001, -0.00005, 0.00025 and the
      mark closes of the bars ending there, 42080.25, 42160.25, 42240.25:
      0.1 * 42080.25 * 0.0001 = 0.4208025; 0.1 * 42160.25 * -0.00005 = -0.21080125;
      0.1 * 42240.25 * 0.00025 = 1.05600625; sum 1.2660075 USDT (exact at USDT's 8 decimals).
    - Hyperliquid, 1h clock, settlements at T0+3h..+8h with r = 1, 2, -1, 3, 1, 2 (x 1e-5) and marks
      43000..48000: 0.43 + 0.88 - 0.45 + 1.38 + 0.47 + 0.96 = 3.67 USDC.

    Each settlement T is announced by the update stamped at T - I; the update stamped at T (for
    T + I) must not displace it, which the per-settlement comparison checks.
    """
    store = build_store(tmp_path / "store")
    catalog_dir = tmp_path / "catalog"
    summary = export_catalog(store, catalog_dir)
    assert summary.rows("FundingRateUpdate") == len(BINANCE_RATES) + len(HYPERLIQUID_RATES)
    venues = read_venues_file(catalog_dir)
    catalog = ParquetDataCatalog(str(catalog_dir))

    engine.add_venue(
        Venue("BINANCE"),
        OmsType.NETTING,
        AccountType.MARGIN,
        [Money.from_str("100000 USDT")],
        base_currency=Currency.from_str("USDT"),
        fee_model=venues["BINANCE"].fee_model(),
    )
    engine.add_venue(
        Venue("HYPERLIQUID"),
        OmsType.NETTING,
        AccountType.MARGIN,
        [Money.from_str("100000 USDC")],
        base_currency=Currency.from_str("USDC"),
        fee_model=venues["HYPERLIQUID"].fee_model(),
    )
    for instrument in catalog.instruments():
        engine.add_instrument(instrument)
    # Only trade bars go to the venue: its matching engine refuses MARK bars for bar execution.
    engine.add_data(catalog.query_bars([f"{i}-1-HOUR-LAST-EXTERNAL" for i in (BINANCE_PERP, HYPERLIQUID_PERP)]))
    engine.add_data(catalog.query_mark_price_updates())
    engine.add_data(catalog.query(NautilusDataType.FundingRateUpdate))
    engine.add_strategy(
        ShortOnce(ShortOnceConfig(quantities={BINANCE_PERP: BINANCE_QTY, HYPERLIQUID_PERP: HYPERLIQUID_QTY}))
    )
    engine.run()

    got = funding_adjustments(engine)
    assert got[BINANCE_PERP] == expected(BINANCE_RATES, BINANCE_QTY, binance_mark)
    assert got[HYPERLIQUID_PERP] == expected(HYPERLIQUID_RATES, HYPERLIQUID_QTY, hyperliquid_mark)
    assert sum(p for _, p in got[BINANCE_PERP]) == Decimal("1.2660075")
    assert sum(p for _, p in got[HYPERLIQUID_PERP]) == Decimal("3.67")

    fills = engine.generate_fills_report()
    binance = fills[fills["instrument_id"] == BINANCE_PERP]
    taker = venues["BINANCE"].fee_overrides[InstrumentId.from_str(BINANCE_PERP)][1]
    for qty, price, commission in zip(binance["last_qty"], binance["last_px"], binance["commission"], strict=True):
        assert Decimal(commission.split()[0]) == Decimal(str(qty)) * Decimal(str(price)) * taker


def test_real_binance_month_exports_counts_from_input(tmp_path: Path, shared_data: Path) -> None:
    """March 2025 of Binance BTC perp: 744 hourly bars (31 days x 24) and 93 funding settlements (31 x 3)."""
    folder = shared_data / "binance_freqtrade" / "futures"
    store = Store(tmp_path / "store")
    for name in ("BTC_USDT_USDT-1h-futures.feather", "BTC_USDT_USDT-8h-funding_rate.feather"):
        path = folder / name
        importer = require_importer(path)
        info = SourceInfo(str(path), "-", importer.name, importer.version)
        for batch in importer.read(path, ImportOptions()):
            store.write(batch.kind, batch.frame, info)
    write_fixture_instruments(store)
    start, end = datetime(2025, 3, 1, tzinfo=UTC), datetime(2025, 4, 1, tzinfo=UTC)
    bars_in = pl.read_ipc(folder / "BTC_USDT_USDT-1h-futures.feather").filter(
        pl.col("date").is_between(start, end, closed="left")
    )
    funding_in = pl.read_ipc(folder / "BTC_USDT_USDT-8h-funding_rate.feather").filter(
        pl.col("date").dt.round("1m").is_between(start, end, closed="left")
    )

    summary = export_catalog(store, tmp_path / "catalog", symbols=["BTC-USDT-PERP"], start=start, end=end)

    catalog = ParquetDataCatalog(str(tmp_path / "catalog"))
    bars = catalog.query_bars([f"{BINANCE_PERP}-1-HOUR-LAST-EXTERNAL"])
    funding = catalog.query(NautilusDataType.FundingRateUpdate, [BINANCE_PERP])
    assert len(bars) == bars_in.height == 744
    assert len(funding) == funding_in.height == 93
    assert bars[0].ts_event == ns(start + timedelta(hours=1))
    assert funding[0].next_funding_ns == ns(start)
    assert summary.stream("Bar", f"{BINANCE_PERP}-1-HOUR-LAST-EXTERNAL").rows == 744
