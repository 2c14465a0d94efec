"""datasets.catalog.export_catalog: what lands in the catalog, re-exports replace, selections fail clearly."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from nautilus_trader.model import InstrumentId, NautilusDataType
from nautilus_trader.persistence import ParquetDataCatalog

from datasets.catalog import CatalogError, MissingInstrumentSpecsError, export_catalog, files, read_venues_file
from datasets.catalog.files import CatalogWriter
from datasets.store import SourceInfo, Store
from datasets.synthetic import synthetic_bars
from datasets.testing import write_fixture_instruments
from datasets.venues import UnknownVenueError
from tests.kit.store import canonical_frame

T0 = datetime(2024, 1, 1, tzinfo=UTC)
HAND = SourceInfo(source="hand-made", sha256="0" * 64, importer="test", importer_version="1")
BTC_PERP = "BTCUSDT-PERP.BINANCE"


def hourly(venue: str, symbol: str, price_type: str, hours: int) -> object:
    return synthetic_bars(hours, venue=venue, symbol=symbol, start=T0, interval="1h", price_type=price_type, tick="0.1")


@pytest.fixture
def store(tmp_path: Path) -> Store:
    store = Store(tmp_path / "store")
    for price_type in ("trade", "mark", "index"):
        store.write("ohlcv", hourly("binance", "BTC-USDT-PERP", price_type, 48), HAND)
    store.write("ohlcv", hourly("kraken", "BTC-USD", "trade", 5), HAND)
    write_fixture_instruments(store)
    funding = [{"ts": T0 + timedelta(hours=8 * k), "rate": "0.0001", "interval": "8h"} for k in range(1, 7)]
    store.write("funding", canonical_frame("funding", funding, venue="binance", symbol="BTC-USDT-PERP"), HAND)
    liquidations = [
        {
            "ts": T0 + timedelta(minutes=k),
            "symbol": symbol,
            "event_id": f"e{k}",
            "price": "40000.50",
            "quantity": "0.010",
        }
        for k, symbol in enumerate(["BTC-USDT-PERP", "BTC-USDT-PERP", "币安人生-USDT-PERP"])
    ]
    frame = canonical_frame("liquidations", liquidations, venue="binance", market="perp", side="long", source="test")
    store.write("liquidations", frame, HAND)
    return store


def parquet_files(root: Path) -> list[Path]:
    return sorted(p.relative_to(root) for p in root.rglob("*.parquet"))


def test_export_writes_every_stream_nautilus_reads(store: Store, tmp_path: Path) -> None:
    summary = export_catalog(store, tmp_path / "catalog")
    catalog = ParquetDataCatalog(str(tmp_path / "catalog"))
    assert sorted(str(i.id) for i in catalog.instruments()) == ["BTC/USD.KRAKEN", BTC_PERP]
    assert len(catalog.query_bars([f"{BTC_PERP}-1-HOUR-LAST-EXTERNAL"])) == 48
    assert len(catalog.query_bars([f"{BTC_PERP}-1-HOUR-MARK-EXTERNAL"])) == 48
    assert len(catalog.query_bars(["BTC/USD.KRAKEN-1-HOUR-LAST-EXTERNAL"])) == 5
    assert len(catalog.query_mark_price_updates([BTC_PERP])) == 48
    assert len(catalog.query_index_price_updates([BTC_PERP])) == 48
    assert len(catalog.query(NautilusDataType.FundingRateUpdate, [BTC_PERP])) == 6
    stream = summary.stream("Bar", f"{BTC_PERP}-1-HOUR-LAST-EXTERNAL")
    assert (stream.rows, stream.ts_first, stream.ts_last) == (48, T0 + timedelta(hours=1), T0 + timedelta(hours=48))
    assert summary.rows("FundingRateUpdate") == 6
    reasons = {(s.venue, s.symbol, s.detail): s.reason for s in summary.skipped}
    assert "no INDEX bar price type" in reasons[("binance", "BTC-USDT-PERP", "index 1h")]
    assert "Bar" in str(summary)
    assert not list((tmp_path / "catalog").glob(".export-staging-*"))


def test_liquidations_read_back_as_custom_data(store: Store, tmp_path: Path) -> None:
    export_catalog(store, tmp_path / "catalog")
    catalog = ParquetDataCatalog(str(tmp_path / "catalog"))
    known = catalog.query_custom_data(NautilusDataType.Custom("Liquidation"), [BTC_PERP])
    assert [(c.data.symbol, c.data.price, c.data.quantity, c.data.instrument_id) for c in known] == [
        ("BTC-USDT-PERP", "40000.5", "0.01", BTC_PERP)
    ] * 2
    unknown = catalog.query_custom_data(NautilusDataType.Custom("Liquidation"), ["币安人生-USDT-PERP.BINANCE"])
    assert [(c.data.symbol, c.data.instrument_id, c.ts_event) for c in unknown] == [
        ("币安人生-USDT-PERP", None, int((T0 + timedelta(minutes=2)).timestamp()) * 10**9)
    ]


def test_reexport_replaces_instead_of_duplicating(store: Store, tmp_path: Path) -> None:
    catalog_dir = tmp_path / "catalog"
    export_catalog(store, catalog_dir)
    files = parquet_files(catalog_dir)
    export_catalog(store, catalog_dir)
    assert parquet_files(catalog_dir) == files
    catalog = ParquetDataCatalog(str(catalog_dir))
    assert len(catalog.query_bars([f"{BTC_PERP}-1-HOUR-LAST-EXTERNAL"])) == 48
    assert len(catalog.instruments()) == 2

    day_two = export_catalog(store, catalog_dir, symbols=["BTC-USDT-PERP"], start=T0 + timedelta(days=1))
    assert day_two.stream("Bar", f"{BTC_PERP}-1-HOUR-LAST-EXTERNAL").rows == 24
    catalog = ParquetDataCatalog(str(catalog_dir))
    assert len(catalog.query_bars([f"{BTC_PERP}-1-HOUR-LAST-EXTERNAL"])) == 24
    assert len(catalog.query(NautilusDataType.FundingRateUpdate, [BTC_PERP])) == 4  # settlements at 24h..48h
    assert len(catalog.query_bars(["BTC/USD.KRAKEN-1-HOUR-LAST-EXTERNAL"])) == 5


def test_venues_file_holds_fees_and_clock_and_merges(store: Store, tmp_path: Path) -> None:
    catalog_dir = tmp_path / "catalog"
    export_catalog(store, catalog_dir, venues=["kraken"])
    export_catalog(store, catalog_dir, venues=["binance"])
    document = json.loads((catalog_dir / "venues.json").read_text())
    assert document["format"] == "carrylab.catalog.venues"
    assert sorted(document["venues"]) == ["BINANCE", "KRAKEN"]
    binance = document["venues"]["BINANCE"]
    assert (binance["funding_interval"], binance["funding_interval_minutes"]) == ("8h", 480)
    assert binance["instruments"][BTC_PERP] == {
        "symbol": "BTC-USDT-PERP",
        "market": "perp",
        "maker_fee": "0.0002",
        "taker_fee": "0.0005",
    }
    venues = read_venues_file(catalog_dir)
    kraken_spot = InstrumentId.from_str("BTC/USD.KRAKEN")
    assert venues["KRAKEN"].fee_overrides == {kraken_spot: (Decimal("0.0025"), Decimal("0.004"))}
    assert venues["BINANCE"].fee_model() is not None


def test_unknown_venue_is_refused(store: Store, tmp_path: Path) -> None:
    with pytest.raises(UnknownVenueError, match="no spec for venue 'ftx'"):
        export_catalog(store, tmp_path / "catalog", venues=["ftx"])
    assert not (tmp_path / "catalog").exists()


def test_a_symbol_without_stored_specs_is_refused_naming_the_fetch_command(store: Store, tmp_path: Path) -> None:
    store.write("ohlcv", hourly("binance", "DOGE-USDT-PERP", "trade", 5), HAND)
    fetch = r"fetch them \(python -m datasets fetch --kind instruments --venue binance\)"
    with pytest.raises(MissingInstrumentSpecsError, match=rf"was none for binance: DOGE-USDT-PERP; {fetch}"):
        export_catalog(store, tmp_path / "catalog")
    assert not (tmp_path / "catalog").exists()


def test_naive_or_empty_range_is_refused(store: Store, tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="start must be a timezone-aware UTC datetime, was naive 2024-01-01"):
        export_catalog(store, tmp_path / "catalog", start=datetime(2024, 1, 1))  # noqa: DTZ001
    with pytest.raises(CatalogError, match=r"start must be before end, was \[2024-01-02"):
        export_catalog(store, tmp_path / "catalog", start=T0 + timedelta(days=1), end=T0)


def test_missing_venues_file_is_reported(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match=r"venues\.json not found: export the catalog"):
        read_venues_file(tmp_path)


def _fail_replacing(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    real = os.replace

    def replace(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        if Path(dst).name == name and Path(dst).parent.name != "new":
            raise OSError(f"disk full while publishing {name}")
        real(src, dst)

    monkeypatch.setattr(files.os, "replace", replace)


def test_venues_file_is_swapped_in_by_the_writers_commit_after_the_streams(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    published: list[Path] = []
    commit = CatalogWriter.commit

    def recording_commit(self: CatalogWriter) -> list[Path]:
        assert not (self.catalog_dir / "venues.json").exists()
        published.extend(commit(self))
        return published

    monkeypatch.setattr(CatalogWriter, "commit", recording_commit)
    export_catalog(store, tmp_path / "catalog", venues=["binance"])
    assert published[-1] == tmp_path / "catalog" / "venues.json"
    assert all(p.is_relative_to(tmp_path / "catalog" / "data") for p in published[:-1])
    assert sorted(read_venues_file(tmp_path / "catalog")) == ["BINANCE"]
    assert not list((tmp_path / "catalog").glob(".*"))


def test_failed_commit_leaves_the_old_venues_file_beside_the_old_streams(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    catalog_dir = tmp_path / "catalog"
    export_catalog(store, catalog_dir, venues=["binance"])
    before = {p: (catalog_dir / p).read_bytes() for p in [Path("venues.json"), *parquet_files(catalog_dir)]}
    # Every stream of the second export is swapped in before venues.json, which then fails to land.
    _fail_replacing(monkeypatch, "venues.json")
    with pytest.raises(OSError, match=r"disk full while publishing venues\.json"):
        export_catalog(store, catalog_dir, start=T0 + timedelta(days=1))
    after = {p: (catalog_dir / p).read_bytes() for p in [Path("venues.json"), *parquet_files(catalog_dir)]}
    assert after == before
    assert sorted(read_venues_file(catalog_dir)) == ["BINANCE"]
    assert len(ParquetDataCatalog(str(catalog_dir)).query_bars([f"{BTC_PERP}-1-HOUR-LAST-EXTERNAL"])) == 48
    assert not list(catalog_dir.glob(".export-staging-*"))


def test_invalid_venues_file_fails_the_export_before_any_stream_changes(store: Store, tmp_path: Path) -> None:
    catalog_dir = tmp_path / "catalog"
    export_catalog(store, catalog_dir, venues=["binance"])
    files_before = parquet_files(catalog_dir)
    (catalog_dir / "venues.json").write_text("{truncated")
    with pytest.raises(CatalogError, match=r"venues\.json is not valid JSON .*move the file aside and export every"):
        export_catalog(store, catalog_dir, start=T0 + timedelta(days=1))
    assert parquet_files(catalog_dir) == files_before
    assert len(ParquetDataCatalog(str(catalog_dir)).query_bars([f"{BTC_PERP}-1-HOUR-LAST-EXTERNAL"])) == 48


def test_malformed_venue_entry_is_a_catalog_error_naming_it(store: Store, tmp_path: Path) -> None:
    catalog_dir = tmp_path / "catalog"
    export_catalog(store, catalog_dir, venues=["binance"])
    document = json.loads((catalog_dir / "venues.json").read_text())
    document["venues"]["BINANCE"]["instruments"][BTC_PERP]["taker_fee"] = 0.0005
    (catalog_dir / "venues.json").write_text(json.dumps(document))
    with pytest.raises(CatalogError, match=r"venue 'BINANCE': expected .* was TypeError: a fee must be decimal text"):
        read_venues_file(catalog_dir)
