"""The catalog is built from stored specs: the version in force, exit 3 without one, inferred specs marked."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest
from nautilus_trader.model import InstrumentId
from nautilus_trader.persistence import ParquetDataCatalog

from datasets.acquire.ccxt_venues import make_exchange
from datasets.acquire.instruments import fetch_instruments
from datasets.catalog import MissingInstrumentSpecsError, export_catalog, read_venues_file
from datasets.cli import main as datasets_main
from datasets.exit_codes import ExitCode
from datasets.instruments import common_increment
from datasets.pipeline import import_paths
from datasets.store import Store
from datasets.synthetic import synthetic_bars
from datasets.testing import write_fixture_instruments
from tests.kit.engine import TEST_SOURCE
from tests.kit.store import ohlcv_batch
from tests.kit.venues import (
    FakeVenueServer,
    Route,
    SyntheticMarket,
    binance_routes,
    bybit_routes,
    hyperliquid_routes,
    kraken_futures_routes,
    okx_routes,
)

T0 = datetime(2024, 1, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)
BTC_PERP = "BTCUSDT-PERP.BINANCE"
DOGE_PERP = "DOGEUSDT-PERP.BINANCE"
# A second version of Binance's BTC perp spec from 2024-01-02: tick 0.5 (was "0.10"), lot 0.01 (was 0.001).
CHANGED_SPEC = (
    "# test table: a changed Binance BTC perp spec\n"
    "venue,symbol,tick_size,lot_size,min_quantity,initial_margin,maintenance_margin,contract_multiplier,effective_from\n"
    "binance,BTC-USDT-PERP,0.5,0.01,0.01,0.0067,0.004,1,2024-01-02T00:00:00Z\n"
)
# SYNTHETIC DOGE bars, hand-made: every price is a multiple of 0.00001 and no coarser step (8123 and 8125
# in units of 0.00001 have gcd 1), every volume a multiple of 1 (gcd(12, 35, 7) = 1).
DOGE_BARS = [
    (T0, "0.08123", "0.08130", "0.08120", "0.08125", "12"),
    (T0 + HOUR, "0.08125", "0.08140", "0.08125", "0.08135", "35"),
    (T0 + 2 * HOUR, "0.08135", "0.08135", "0.08101", "0.08110", "7"),
]


def _btc_store(root: Path) -> Store:
    store = Store(root)
    store.write(
        "ohlcv", synthetic_bars(48, venue="binance", symbol="BTC-USDT-PERP", start=T0, interval="1h"), TEST_SOURCE
    )
    write_fixture_instruments(store)
    return store


def test_common_increment_is_the_finest_step_every_value_fits() -> None:
    # 42000.1, 42000.3, 41999.9 in tenths: 420001, 420003, 419999, gcd 1 -> 0.1. 0.25, 0.75, 1.5 in
    # hundredths: 25, 75, 150, gcd 25 -> 0.25. Non-positive values and None carry no step.
    assert common_increment([Decimal("42000.1"), Decimal("42000.3"), Decimal("41999.9")]) == Decimal("0.1")
    assert common_increment([Decimal("0.25"), Decimal("0.75"), Decimal("1.5"), Decimal(0), None]) == Decimal("0.25")
    assert common_increment([Decimal(0), None]) is None


def test_export_uses_the_spec_in_force_at_the_window_start(tmp_path: Path) -> None:
    store = _btc_store(tmp_path / "store")
    table = tmp_path / "changed.csv"
    table.write_text(CHANGED_SPEC)
    import_paths([table], store)
    export_catalog(store, tmp_path / "before", start=T0, end=T0 + 24 * HOUR)
    export_catalog(store, tmp_path / "after", start=T0 + 24 * HOUR)
    (before,) = ParquetDataCatalog(str(tmp_path / "before")).instruments()
    (after,) = ParquetDataCatalog(str(tmp_path / "after")).instruments()
    assert (str(before.price_increment), str(before.size_increment)) == ("0.10", "0.001")
    assert (str(after.price_increment), str(after.size_increment)) == ("0.5", "0.01")
    # The bars of the later window are rounded to the tick in force then.
    bars = ParquetDataCatalog(str(tmp_path / "after")).query_bars([f"{BTC_PERP}-1-HOUR-LAST-EXTERNAL"])
    assert len(bars) == 24
    assert all(bar.close.as_decimal() % Decimal("0.5") == 0 for bar in bars)


def test_a_window_before_every_stored_version_is_refused(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    store.write(
        "ohlcv", synthetic_bars(3, venue="binance", symbol="BTC-USDT-PERP", start=T0, interval="1h"), TEST_SOURCE
    )
    table = tmp_path / "changed.csv"
    table.write_text(CHANGED_SPEC)  # in force from 2024-01-02 only: the bars of 2024-01-01 have none
    import_paths([table], store)
    with pytest.raises(MissingInstrumentSpecsError, match=r"in force at their first row .* was none for binance: BTC"):
        export_catalog(store, tmp_path / "catalog")


def test_without_stored_specs_the_cli_exits_3_naming_symbols_and_the_fetch_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = _btc_store(tmp_path / "store")
    store.write("ohlcv", ohlcv_batch(DOGE_BARS, symbol="DOGE-USDT-PERP"), TEST_SOURCE)
    argv = ["export-catalog", "--store", str(store.root), "--catalog", str(tmp_path / "catalog"), "--no-progress"]
    assert datasets_main(argv) == ExitCode.BAD_INPUT == 3
    err = capsys.readouterr().err
    assert "was none for binance: DOGE-USDT-PERP;" in err
    assert "python -m datasets fetch --kind instruments --venue binance" in err
    assert "--infer-instruments" in err
    assert "Traceback" not in err
    assert not (tmp_path / "catalog").exists()
    assert datasets_main([*argv, "--infer-instruments"]) == ExitCode.OK


def test_inferred_specs_come_from_the_data_and_are_marked(tmp_path: Path) -> None:
    store = _btc_store(tmp_path / "store")
    store.write("ohlcv", ohlcv_batch(DOGE_BARS, symbol="DOGE-USDT-PERP"), TEST_SOURCE)
    export_catalog(store, tmp_path / "catalog", infer_instruments=True)
    catalog = ParquetDataCatalog(str(tmp_path / "catalog"))
    instruments = {str(i.id): i for i in catalog.instruments()}
    doge, btc = instruments[DOGE_PERP], instruments[BTC_PERP]
    assert (str(doge.price_increment), str(doge.size_increment), str(doge.min_quantity)) == ("0.00001", "1", "1")
    assert (doge.margin_init, str(doge.multiplier)) == (Decimal(0), "1")
    assert doge.info["inferred"] is True
    assert not btc.info  # the stored spec carries no mark
    document = json.loads((tmp_path / "catalog" / "venues.json").read_text())
    assert document["venues"]["BINANCE"]["instruments"][DOGE_PERP]["inferred"] is True
    assert "inferred" not in document["venues"]["BINANCE"]["instruments"][BTC_PERP]
    assert read_venues_file(tmp_path / "catalog")["BINANCE"].inferred == frozenset({DOGE_PERP})


# ----------------------------------------------------------------- five loopback venues, 100+ instruments
FETCHED = datetime(2026, 11, 1, 12, tzinfo=UTC)
MARKET = SyntheticMarket(start_ms=1_704_067_200_000, bars=10, settlements=3)
META_SAMPLE = "exchange_payloads/crates/adapters/hyperliquid/test_data/http_meta_perp_sample.json"


def _routes(shared_data: Path) -> dict[str, Callable[[], dict[str, Route]]]:
    sample = json.loads((shared_data / META_SAMPLE).read_text())
    return {
        "binance": lambda: binance_routes({"BTCUSDT": MARKET}),
        "bybit": lambda: bybit_routes({"BTCUSDT": MARKET}),
        "okx": lambda: okx_routes({"BTC-USDT-SWAP": MARKET, "BTC-USDT": MARKET}),
        "hyperliquid": lambda: hyperliquid_routes({"BTC": MARKET}, meta_sample=sample),
        "kraken": lambda: kraken_futures_routes({"PF_XBTUSD": MARKET}),
    }


def test_a_store_of_five_loopback_venues_exports_a_catalog_of_over_100_instruments(
    shared_data: Path, tmp_path: Path
) -> None:
    store = Store(tmp_path / "store")
    for venue, routes in _routes(shared_data).items():
        with FakeVenueServer(routes()) as server:
            fetch_instruments(
                store,
                venue,
                exchange_factory=lambda name, market, url=server.base_url: make_exchange(
                    name, market, api_url=url, enable_rate_limit=False
                ),
                clock=lambda: FETCHED,
            )
    specs = store.scan("instruments").select("venue", "symbol", "tick_size").collect()
    # SYNTHETIC bars for every fetched instrument, two hours after the fetch (when the specs came into force).
    bars = [
        synthetic_bars(2, venue=v, symbol=s, start=FETCHED, interval="1h", tick=str(t.normalize()), seed=i)
        for i, (v, s, t) in enumerate(specs.iter_rows())
    ]
    store.write("ohlcv", pl.concat(bars).drop("_row").with_row_index("_row"), TEST_SOURCE)
    summary = export_catalog(store, tmp_path / "catalog")
    catalog = ParquetDataCatalog(str(tmp_path / "catalog"))
    instruments = {str(i.id): i for i in catalog.instruments()}
    assert len(instruments) == specs.height >= 100
    assert summary.rows("Bar") == 2 * specs.height
    # tests.kit.venues listings: OKX DOGE swap ctVal 0.1; Binance XRP perp LOT_SIZE stepSize "1";
    # Hyperliquid ATOM szDecimals 2 in http_meta_perp_sample.json (lot 0.01, tick 10^-(6-2)).
    okx_doge = instruments["DOGE-USDT-SWAP.OKX"]
    assert (str(okx_doge.multiplier), str(okx_doge.size_increment)) == ("0.1", "1")
    assert str(instruments["XRPUSDT-PERP.BINANCE"].size_increment) == "1"
    atom = instruments["ATOM-USD-PERP.HYPERLIQUID"]
    assert (atom.size_precision, str(atom.size_increment), str(atom.price_increment)) == (2, "0.01", "0.0001")
    assert atom.id == InstrumentId.from_str("ATOM-USD-PERP.HYPERLIQUID")
