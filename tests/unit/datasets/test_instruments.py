"""Versioned instrument specs and margin tiers: history, idempotence, the spec in force, validation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from datasets.acquire.instruments import instruments_frame, margin_tiers_frame
from datasets.errors import ConflictError, NotInStoreError, SourceFormatError, ValidationError
from datasets.importers.base import ImportOptions
from datasets.importers.binance_margin import BinanceLeverageTiersImporter
from datasets.instruments import instrument_specs_at, margin_tiers_at
from datasets.pipeline import import_paths
from datasets.store import SourceInfo, Store
from datasets.venues import instrument_id_for, instrument_id_from_parts

T0 = datetime(2025, 1, 1, tzinfo=UTC)
T1 = datetime(2025, 3, 1, tzinfo=UTC)
T2 = datetime(2026, 2, 1, tzinfo=UTC)
NOW = datetime(2026, 6, 1, tzinfo=UTC)
INFO = SourceInfo(source="test", sha256="0" * 64, importer="test", importer_version="1")
BRACKETS = "binance_margin/binance_leverage_tiers.json"


def _spec(symbol: str = "BTC-USDT-PERP", *, tick: str = "0.10", source: str = "test", **extra: Any) -> dict[str, Any]:
    base, quote = symbol.removesuffix("-PERP").split("-")
    return {
        "venue": "binance",
        "symbol": symbol,
        "market": "perp",
        "native_symbol": f"{base}{quote}",
        "instrument_id": f"{base}{quote}-PERP.BINANCE",
        "base": base,
        "quote": quote,
        "settle": quote,
        "tick_size": Decimal(tick),
        "lot_size": Decimal("0.001"),
        "contract_multiplier": Decimal(1),
        "funding_interval": "8h",
        "source": source,
    } | extra


def _write(store: Store, when: datetime, *specs: dict[str, Any]) -> int:
    summary = store.write("instruments", instruments_frame(list(specs), effective_from=when), INFO)
    return len(summary.partitions_written)


def _stored(store: Store) -> pl.DataFrame:
    return store.scan("instruments").collect().sort("symbol", "effective_from")


def test_spec_in_force_is_the_latest_version_at_or_before_ts(store_root: Path) -> None:
    store = Store(store_root)
    _write(store, T0, _spec(tick="0.10"))
    _write(store, T2, _spec(tick="0.01"))
    assert instrument_specs_at(store, "binance", "BTC-USDT-PERP", T0).tick_size == Decimal("0.10")
    assert instrument_specs_at(store, "binance", "BTC-USDT-PERP", T2 - timedelta(microseconds=1)).tick_size == Decimal(
        "0.10"
    )
    later = instrument_specs_at(store, "binance", "BTC-USDT-PERP", T2)
    assert (later.tick_size, later.effective_from) == (Decimal("0.01"), T2)
    with pytest.raises(NotInStoreError, match="no instrument spec of BTC-USDT-PERP on binance in force"):
        instrument_specs_at(store, "binance", "BTC-USDT-PERP", T0 - timedelta(days=1))
    earliest = instrument_specs_at(store, "binance", "BTC-USDT-PERP", T0 - timedelta(days=1), before_first="earliest")
    assert earliest.effective_from == T0
    with pytest.raises(NotInStoreError, match="holds no instrument spec of ETH-USDT-PERP"):
        instrument_specs_at(store, "binance", "ETH-USDT-PERP", T2)
    with pytest.raises(ValueError, match="tz-aware"):
        instrument_specs_at(store, "binance", "BTC-USDT-PERP", datetime(2025, 5, 1))  # noqa: DTZ001


def test_moving_effective_from_changes_which_version_is_in_force(store_root: Path) -> None:
    store = Store(store_root)
    probe = datetime(2025, 6, 1, tzinfo=UTC)
    _write(store, T0, _spec(tick="0.10"))
    _write(store, T2, _spec(tick="0.01"))
    assert instrument_specs_at(store, "binance", "BTC-USDT-PERP", probe).tick_size == Decimal("0.10")
    other = Store(store_root.with_name("other"))
    _write(other, T0, _spec(tick="0.10"))
    _write(other, T1, _spec(tick="0.01"))
    assert instrument_specs_at(other, "binance", "BTC-USDT-PERP", probe).tick_size == Decimal("0.01")


def test_identical_specs_again_store_nothing_and_a_change_adds_a_version(store_root: Path) -> None:
    store = Store(store_root)
    assert _write(store, T0, _spec(), _spec("ETH-USDT-PERP")) == 1
    files = {p: p.read_bytes() for p in store.files("instruments")}
    # Fetched again later, from another endpoint: same specs, so nothing new (source is not a spec).
    assert _write(store, T1, _spec(source="again"), _spec("ETH-USDT-PERP")) == 0
    assert {p: p.read_bytes() for p in store.files("instruments")} == files
    # ETH's tick changed: one new version of ETH only; BTC keeps its single version.
    assert _write(store, T2, _spec(), _spec("ETH-USDT-PERP", tick="0.05")) == 1
    stored = _stored(store)
    assert stored.select("symbol", "effective_from", "tick_size").rows() == [
        ("BTC-USDT-PERP", T0, Decimal("0.10")),
        ("ETH-USDT-PERP", T0, Decimal("0.10")),
        ("ETH-USDT-PERP", T2, Decimal("0.05")),
    ]
    # Changed back: a third version (history is a sequence, not a set).
    _write(store, NOW, _spec("ETH-USDT-PERP"))
    assert _stored(store).filter(pl.col("symbol") == "ETH-USDT-PERP").height == 3


def test_two_specs_for_one_symbol_at_one_time_are_a_conflict(store_root: Path) -> None:
    store = Store(store_root)
    _write(store, T0, _spec())
    with pytest.raises(ConflictError, match=r"keys \(venue, symbol, effective_from\) are already stored"):
        _write(store, T0, _spec(tick="0.5"))


def test_margin_tier_snapshot_changes_when_a_tier_is_removed(store_root: Path) -> None:
    store = Store(store_root)

    def tiers(count: int) -> list[dict[str, Any]]:
        return [
            {
                "venue": "bybit",
                "symbol": "BTC-USDT-PERP",
                "tier": n,
                "bound_unit": "notional",
                "notional_floor": Decimal(1_000 * (n - 1)),
                "notional_cap": Decimal(1_000 * n),
                "max_leverage": Decimal(100 // n),
                "maintenance_margin": Decimal("0.005") * n,
                "source": "test",
            }
            for n in range(1, count + 1)
        ]

    store.write("margin_tiers", margin_tiers_frame(tiers(3), effective_from=T0), INFO)
    store.write("margin_tiers", margin_tiers_frame(tiers(3), effective_from=T1), INFO)
    store.write("margin_tiers", margin_tiers_frame(tiers(2), effective_from=T2), INFO)
    assert [t.tier for t in margin_tiers_at(store, "bybit", "BTC-USDT-PERP", T1)] == [1, 2, 3]
    assert [t.tier for t in margin_tiers_at(store, "bybit", "BTC-USDT-PERP", NOW)] == [1, 2]
    assert store.scan("margin_tiers").collect().height == 5


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"tick_size": Decimal(0)}, "tick_size", "prices must be > 0"),
        ({"funding_interval": "8 hours"}, "funding_interval", "must match"),
        ({"market": "swap"}, "market", "must be one of spot, perp"),
        ({"max_leverage": Decimal(-1)}, "max_leverage", "must be >= 0"),
        ({"symbol": "btc/usdt"}, "symbol", "must match"),
    ],
)
def test_bad_spec_is_refused_naming_the_field(
    store_root: Path, change: dict[str, Any], field: str, message: str
) -> None:
    frame = instruments_frame([_spec() | change], effective_from=T0)
    with pytest.raises(ValidationError, match=f"field '{field}': {message}"):
        Store(store_root).write("instruments", frame, INFO)


def test_effective_from_before_the_venue_existed_is_refused(store_root: Path) -> None:
    frame = instruments_frame([_spec()], effective_from=datetime(2015, 1, 1, tzinfo=UTC))
    with pytest.raises(ValidationError, match="field 'effective_from': expected a time from 2019-09-08"):
        Store(store_root).write("instruments", frame, INFO)


def test_instrument_ids_follow_the_adapter_rules_for_any_base() -> None:
    assert str(instrument_id_from_parts("binance", "PEPE", "USDT", "perp")) == "PEPEUSDT-PERP.BINANCE"
    assert str(instrument_id_from_parts("bybit", "TIA", "USDT", "spot")) == "TIAUSDT-SPOT.BYBIT"
    assert str(instrument_id_from_parts("okx", "SUI", "USDT", "perp")) == "SUI-USDT-SWAP.OKX"
    assert str(instrument_id_from_parts("hyperliquid", "ATOM", "USDC", "perp")) == "ATOM-USD-PERP.HYPERLIQUID"
    assert str(instrument_id_from_parts("kraken", "BTC", "USD", "perp")) == "PF_XBTUSD.KRAKEN"
    # The known symbols keep their ids.
    assert instrument_id_for("binance", "BTC-USDT-PERP") == instrument_id_from_parts("binance", "BTC", "USDT", "perp")


# ------------------------------------------------------------------------------ Binance brackets
def test_binance_brackets_import_every_linear_perpetual(shared_data: Path, store_root: Path) -> None:
    store = Store(store_root)
    options = ImportOptions(as_of=datetime(2026, 9, 1, tzinfo=UTC))
    report = import_paths([shared_data / BRACKETS], store, options=options, progress=False)
    tiers = store.scan("margin_tiers").collect()
    assert report.rows == tiers.height == 7_244
    # 907 symbols in the file, of which 4 are dated quarterlies (BTC and ETH, 260925 and 261225).
    assert tiers["symbol"].n_unique() == 903
    btc = margin_tiers_at(store, "binance", "BTC-USDT-PERP", datetime(2026, 10, 1, tzinfo=UTC))
    first = btc[0]
    # The first bracket is what datasets/venues.py typed for BTC: 150x, maintenance 0.4%.
    assert (first.tier, first.max_leverage, first.maintenance_margin) == (1, Decimal(150), Decimal("0.004"))
    assert (first.notional_floor, first.notional_cap, first.maintenance_amount) == (
        Decimal(0),
        Decimal(300_000),
        Decimal(0),
    )
    assert first.initial_margin == Decimal("0.006666666666666667")
    assert [t.notional_floor for t in btc[1:3]] == [t.notional_cap for t in btc[:2]]
    # Imported again as of a later date: the same brackets, so no new version.
    later = ImportOptions(as_of=datetime(2026, 11, 1, tzinfo=UTC))
    import_paths([shared_data / BRACKETS], store, options=later, progress=False)
    assert store.scan("margin_tiers").collect().height == 7_244


def test_binance_brackets_without_as_of_are_refused(shared_data: Path) -> None:
    importer = BinanceLeverageTiersImporter()
    assert importer.sniff(shared_data / BRACKETS)
    with pytest.raises(SourceFormatError, match=r"carry no date.*pass --as-of"):
        importer.read(shared_data / BRACKETS, ImportOptions())


def test_binance_brackets_in_the_venue_layout_are_read(tmp_path: Path) -> None:
    path = tmp_path / "leverageBracket.json"
    path.write_text(
        '[{"symbol": "ETHUSDT", "brackets": [{"bracket": 1, "initialLeverage": 125, "notionalCap": 50000, '
        '"notionalFloor": 0, "maintMarginRatio": 0.004, "cum": 0.0}, {"bracket": 2, "initialLeverage": 100, '
        '"notionalCap": 500000, "notionalFloor": 50000, "maintMarginRatio": 0.005, "cum": 50.0}]}, '
        '{"symbol": "BTCUSDT_260925", "brackets": []}]'
    )
    batches = BinanceLeverageTiersImporter().read(path, ImportOptions(as_of=T0))
    frame = batches[0].frame
    assert frame.select("symbol", "tier", "initial_margin", "maintenance_amount").rows() == [
        ("ETH-USDT-PERP", 1, Decimal("0.008"), Decimal(0)),
        ("ETH-USDT-PERP", 2, Decimal("0.01"), Decimal(50)),
    ]


def test_binance_bracket_with_a_bad_number_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "tiers.json"
    path.write_text(
        '{"X/USDT:USDT": [{"info": {"bracket": 1, "initialLeverage": 20, "notionalCap": 5000, '
        '"notionalFloor": 0, "maintMarginRatio": "lots", "cum": 0}}]}'
    )
    with pytest.raises(SourceFormatError, match="X-USDT-PERP: bracket 0, field 'maintMarginRatio'"):
        BinanceLeverageTiersImporter().read(path, ImportOptions(as_of=T0))
