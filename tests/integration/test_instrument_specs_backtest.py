"""Stored specs reach the backtest: the window picks the version in force, and a non-BTC/ETH/SOL coin runs.

Both stores take their specs from tables imported into the ``instruments`` kind (the hand-typed fixture
``configs/instruments_mid2025.csv`` and tables written here), so the path is store -> catalog -> engine.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal
from pathlib import Path

import polars as pl
import pytest
from nautilus_trader.persistence import ParquetDataCatalog

from datasets.catalog import export_catalog
from datasets.pipeline import import_paths
from datasets.store import Store
from datasets.testing import FIXTURE_INSTRUMENTS
from engine.backtest import RunResult, parse_config, run_backtest
from engine.results.summary import summarize
from reports.backtest import render_run
from tests.kit.engine import TEST_SOURCE, hourly_bars
from tests.kit.store import funding_batch, ohlcv_batch

T0 = datetime(2024, 1, 1, tzinfo=UTC)
SWITCH = datetime(2024, 1, 5, tzinfo=UTC)
DAY = timedelta(days=1)
# A new version of OKX's BTC swap from 2024-01-05: contracts of 0.1 BTC (fixture: 0.01), lot 0.1 (fixture: 0.01).
CHANGED_SWAP = (
    "# test table: OKX BTC swap with a changed contract value\n"
    "venue,symbol,tick_size,lot_size,min_quantity,initial_margin,maintenance_margin,contract_multiplier,effective_from\n"
    f"okx,BTC-USDT-PERP,0.1,0.1,0.1,0.01,0.004,0.1,{SWITCH.isoformat()}\n"
)


def _funding_short(
    catalog: Path, venue: str, symbol: str, start: datetime, end: datetime, *, out_dir: Path | None = None, **data: str
) -> RunResult:
    options = "\n".join(f"{k} = {v}" for k, v in data.items())
    text = f"""
name = "stored-specs"
start = {start.isoformat()}
end = {end.isoformat()}
[data]
catalog = "{catalog}"
{options}
[[venues]]
name = "{venue}"
instruments = ["{symbol}"]
starting_balances = ["100000 USDT"]
account_type = "margin"
leverage = 3
funding_interval = "8h"
[strategy]
path = "strategies.demo:FundingShort"
[strategy.params]
instrument_ids = ["{venue}:{symbol}"]
bar_spec = "{data.get("bar_spec", '"1-HOUR-LAST-EXTERNAL"').strip('"')}"
notional = "20000"
enter_rate = "0.00005"
exit_rate = "0"
"""
    return run_backtest(parse_config(text.encode()), out_dir=out_dir)


@pytest.fixture(scope="module")
def okx_store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    root = tmp_path_factory.mktemp("okx-specs")
    store = Store(root / "store")
    bars = hourly_bars(T0, ["42000.0"] * (8 * 24))
    store.write(
        "ohlcv",
        pl.concat(
            [
                ohlcv_batch(bars, venue="okx", symbol="BTC-USDT-PERP"),
                ohlcv_batch(bars, venue="okx", symbol="BTC-USDT-PERP", price_type="mark"),
            ]
        ),
        TEST_SOURCE,
    )
    settlements = [(T0 + timedelta(hours=8 * k), "0.0003") for k in range(1, 8 * 3)]
    store.write("funding", funding_batch(settlements, venue="okx", symbol="BTC-USDT-PERP"), TEST_SOURCE)
    table = root / "changed_swap.csv"
    table.write_text(CHANGED_SWAP)
    import_paths([FIXTURE_INSTRUMENTS, table], store)
    return store


def test_the_backtest_window_picks_the_spec_in_force(okx_store: Store, tmp_path: Path) -> None:
    """FundingShort shorts 20000 USDT at the flat close 42000 in contracts of ``multiplier`` BTC, floored to the lot.

    Before 2024-01-05 (fixture: 0.01 BTC a contract, lot 0.01): 20000 / (42000 x 0.01) = 47.619... -> 47.61.
    From 2024-01-05 (new version: 0.1 BTC, lot 0.1): 20000 / (42000 x 0.1) = 4.7619... -> 4.7.
    """
    early, late = tmp_path / "early", tmp_path / "late"
    export_catalog(okx_store, early, start=T0, end=SWITCH - DAY)
    export_catalog(okx_store, late, start=SWITCH, end=SWITCH + 3 * DAY)
    (before,) = ParquetDataCatalog(str(early)).instruments()
    (after,) = ParquetDataCatalog(str(late)).instruments()
    assert (str(before.multiplier), str(before.size_increment)) == ("0.01", "0.01")
    assert (str(after.multiplier), str(after.size_increment)) == ("0.1", "0.1")
    first = _funding_short(early, "okx", "BTC-USDT-PERP", T0, SWITCH - DAY)
    second = _funding_short(late, "okx", "BTC-USDT-PERP", SWITCH, SWITCH + 3 * DAY)
    assert [Decimal(str(q)) for q in first.fills["quantity"]] == [Decimal("47.61")]
    assert [Decimal(str(q)) for q in second.fills["quantity"]] == [Decimal("4.7")]
    assert "inferred_instruments" not in first.stats


LINK_FILE = "binance_vision/LINKUSDT-1m-2026-02.csv"
LINK_START, LINK_END = datetime(2026, 2, 1, tzinfo=UTC), datetime(2026, 2, 4, tzinfo=UTC)
# Binance's funding F = P + clamp(I - P, -0.05 %, 0.05 %) with the interest rate I = 0.01 % per 8 h: while the
# premium P stays inside the band, F = I = 0.0001 at every 00/08/16 UTC settlement. The shared data has no
# LINK funding, so this SYNTHETIC tidy table from that rule stands in for it.
LINK_RATE = "0.0001"


def test_a_link_carry_backtest_runs_on_real_binance_klines(shared_data: Path, tmp_path: Path) -> None:
    """FundingShort on Binance LINK-USDT-PERP 1m klines (real, 2026-02-01..03) with its stored fixture spec.

    The short is floored to LINK's lot 0.01 (stored spec): quantity = floor(20000 / fill price, 0.01), as
    slippage is zero the fill is at the bar close. Each settlement pays a short |size| x mark x 0.0001.
    """
    store = Store(tmp_path / "store")
    import_paths([shared_data / LINK_FILE, FIXTURE_INSTRUMENTS], store)
    settlements = [(LINK_START + timedelta(hours=8 * k), LINK_RATE) for k in range(1, 9)]
    store.write("funding", funding_batch(settlements, symbol="LINK-USDT-PERP"), TEST_SOURCE)
    catalog = tmp_path / "catalog"
    export_catalog(store, catalog, symbols=["LINK-USDT-PERP"], start=LINK_START, end=LINK_END)
    (link,) = ParquetDataCatalog(str(catalog)).instruments()
    assert (str(link.id), str(link.size_increment), str(link.price_increment)) == (
        "LINKUSDT-PERP.BINANCE",
        "0.01",
        "0.001",
    )
    result = _funding_short(
        catalog,
        "binance",
        "LINK-USDT-PERP",
        LINK_START,
        LINK_END,
        bar_spec='"1-MINUTE-LAST-EXTERNAL"',
        mark_prices="false",
    )
    (fill,) = result.fills.iter_rows(named=True)
    price, quantity = Decimal(str(fill["price"])), Decimal(str(fill["quantity"]))
    assert fill["side"] == "SELL"
    assert quantity == (Decimal(20000) / price).quantize(Decimal("0.01"), rounding=ROUND_DOWN)
    # Settlements T (table: 02-01 08:00 .. 02-03 16:00) are announced at T - 8h; FundingShort acts on the
    # second update (02-01 08:00, the first one settled), so it is short for 02-01 16:00 .. 02-03 16:00: 7.
    assert result.funding.height == 7
    for row in result.funding.iter_rows(named=True):
        assert Decimal(str(row["rate"])) == Decimal(LINK_RATE)
        # A short receives |size| x mark x rate at USDT's 8 decimals (e.g. 9 decimals of the product rounded off).
        paid = quantity * Decimal(str(row["mark_price"])) * Decimal(LINK_RATE)
        assert Decimal(str(row["amount"])) == paid.quantize(Decimal("1e-8"), rounding=ROUND_HALF_EVEN)
    assert Decimal(result.stats["by_currency"]["USDT"]["pnl_funding"]) > 0


def test_inferred_link_specs_are_flagged_in_stats_and_report(shared_data: Path, tmp_path: Path) -> None:
    """Without stored specs, ``infer_instruments`` derives LINK's tick and lot from the klines.

    Binance writes LINK prices with 3 decimals (tick 0.001) and volumes with 2 (lot 0.01); over three days
    of 1m bars both finest steps occur, so the inferred spec equals the venue's, and the run says it is inferred.
    """
    store = Store(tmp_path / "store")
    import_paths([shared_data / LINK_FILE], store)
    settlements = [(LINK_START + timedelta(hours=8 * k), LINK_RATE) for k in range(1, 9)]
    store.write("funding", funding_batch(settlements, symbol="LINK-USDT-PERP"), TEST_SOURCE)
    catalog = tmp_path / "catalog"
    export_catalog(store, catalog, start=LINK_START, end=LINK_END, infer_instruments=True)
    (link,) = ParquetDataCatalog(str(catalog)).instruments()
    assert (str(link.price_increment), str(link.size_increment), link.info["inferred"]) == ("0.001", "0.01", True)
    result = _funding_short(
        catalog,
        "binance",
        "LINK-USDT-PERP",
        LINK_START,
        LINK_END,
        out_dir=tmp_path / "runs",
        bar_spec='"1-MINUTE-LAST-EXTERNAL"',
        mark_prices="false",
    )
    assert result.run_dir is not None
    stats = json.loads((result.run_dir / "stats.json").read_text())
    assert stats["inferred_instruments"] == ["LINKUSDT-PERP.BINANCE"]
    assert any(w.startswith("inferred instrument specs: LINKUSDT-PERP.BINANCE") for w in stats["warnings"])
    assert "  warning: inferred instrument specs: LINKUSDT-PERP.BINANCE" in summarize(result)
    report = render_run(result.run_dir).read_text()
    assert "<strong>Warning:</strong> inferred instrument specs: LINKUSDT-PERP.BINANCE" in report
