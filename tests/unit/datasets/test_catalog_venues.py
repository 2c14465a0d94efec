"""datasets.venues: instrument ids as Nautilus' live adapters build them, fees, clear errors; the fixture table."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from datasets.errors import DatasetError
from datasets.instruments import InstrumentSpec, spec_in_force
from datasets.store import Store
from datasets.testing import write_fixture_instruments
from datasets.venues import (
    VENUES,
    UnknownInstrumentError,
    UnknownVenueError,
    instrument_id_for,
    raw_symbol_for,
    venue_spec,
)

MID_2025 = datetime(2025, 6, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("venue", "symbol", "expected"),
    [
        ("binance", "BTC-USDT", "BTCUSDT.BINANCE"),
        ("binance", "BTC-USDT-PERP", "BTCUSDT-PERP.BINANCE"),
        ("binance", "LINK-USDT-PERP", "LINKUSDT-PERP.BINANCE"),
        ("bybit", "ETH-USDT", "ETHUSDT-SPOT.BYBIT"),
        ("bybit", "ETH-USDT-PERP", "ETHUSDT-LINEAR.BYBIT"),
        ("okx", "SOL-USDT", "SOL-USDT.OKX"),
        ("okx", "SOL-USDT-PERP", "SOL-USDT-SWAP.OKX"),
        ("hyperliquid", "BTC-USDC-PERP", "BTC-USD-PERP.HYPERLIQUID"),
        ("kraken", "BTC-USD", "BTC/USD.KRAKEN"),
        ("kraken", "BTC-USD-PERP", "PF_XBTUSD.KRAKEN"),
        ("kraken", "ETH-USD-PERP", "PF_ETHUSD.KRAKEN"),
    ],
)
def test_instrument_id_for_follows_live_adapter_convention(venue: str, symbol: str, expected: str) -> None:
    assert str(instrument_id_for(venue, symbol)) == expected


@pytest.mark.parametrize(
    ("venue", "symbol", "expected"),
    [
        ("binance", "BTC-USDT-PERP", "BTCUSDT"),
        ("okx", "BTC-USDT-PERP", "BTC-USDT-SWAP"),
        ("hyperliquid", "SOL-USDC-PERP", "SOL"),
        ("kraken", "BTC-USD-PERP", "PF_XBTUSD"),
        ("kraken", "BTC-USD", "XBTUSD"),
    ],
)
def test_raw_symbol_for_is_the_venue_name(venue: str, symbol: str, expected: str) -> None:
    assert raw_symbol_for(venue, symbol) == expected


def _fixture_specs(root: Path) -> dict[tuple[str, str], InstrumentSpec]:
    store = Store(root)
    write_fixture_instruments(store)
    records = store.scan("instruments").select("venue", "symbol").collect().iter_rows()
    return {(v, s): spec_in_force(store, v, s, MID_2025) for v, s in records}


@pytest.fixture(scope="module")
def fixture_specs(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], InstrumentSpec]:
    return _fixture_specs(tmp_path_factory.mktemp("fixture-instruments"))


def test_every_fixture_spec_builds_an_instrument_id_and_consistent_numbers(
    fixture_specs: dict[tuple[str, str], InstrumentSpec],
) -> None:
    for venue in VENUES.values():
        assert venue.funding_interval_minutes in (60, 480)
    assert len(fixture_specs) == 29  # configs/instruments_mid2025.csv: 29 rows
    for (venue, symbol), spec in fixture_specs.items():
        assert spec.instrument_id == instrument_id_for(venue, symbol)
        assert spec.raw_symbol == raw_symbol_for(venue, symbol)
        assert spec.min_quantity >= spec.size_increment > 0
        assert spec.price_increment > 0
        if spec.market == "perp":
            assert 0 < spec.margin_maint < spec.margin_init < 1
        else:
            assert spec.margin_init == spec.margin_maint == 0


def test_fixture_covers_the_demo_and_shared_data_symbols(fixture_specs: dict[tuple[str, str], InstrumentSpec]) -> None:
    for base in ("BTC", "ETH", "SOL"):
        for venue in ("binance", "bybit", "okx"):
            assert (venue, f"{base}-USDT") in fixture_specs
            assert (venue, f"{base}-USDT-PERP") in fixture_specs
        assert ("hyperliquid", f"{base}-USDC-PERP") in fixture_specs
    for base in ("LINK", "AVAX"):
        assert ("binance", f"{base}-USDT-PERP") in fixture_specs


def test_precision_counts_the_tick_as_written(fixture_specs: dict[tuple[str, str], InstrumentSpec]) -> None:
    # The table writes Binance's BTC perp tick as "0.10" (precision 2) and Bybit's SOL perp tick as "0.010".
    btc = fixture_specs[("binance", "BTC-USDT-PERP")]
    assert (str(btc.price_increment), btc.price_precision, btc.size_precision) == ("0.10", 2, 3)
    assert fixture_specs[("bybit", "SOL-USDT-PERP")].price_precision == 3
    assert fixture_specs[("binance", "SOL-USDT-PERP")].size_precision == 0


def test_fees_are_exact_decimals_per_market() -> None:
    binance = venue_spec("binance")
    assert (binance.fees("perp").maker, binance.fees("perp").taker) == (Decimal("0.0002"), Decimal("0.0005"))
    assert binance.fees("spot").taker == Decimal("0.001")
    assert venue_spec("hyperliquid").funding_interval == "1h"


def test_unknown_venue_raises_naming_known_venues() -> None:
    with pytest.raises(UnknownVenueError, match=r"no spec for venue 'deribit': known venues are binance, bybit"):
        instrument_id_for("deribit", "BTC-USD-PERP")
    assert issubclass(UnknownVenueError, DatasetError)


def test_a_symbol_that_is_not_canonical_raises() -> None:
    with pytest.raises(UnknownInstrumentError, match=r"expected a canonical symbol BASE-QUOTE or BASE-QUOTE-PERP"):
        instrument_id_for("binance", "DOGEUSDT")
    assert issubclass(UnknownInstrumentError, DatasetError)
    # Any canonical symbol has an id by the venue's rule: specs are data, not this module's table.
    assert str(instrument_id_for("binance", "DOGE-USDT-PERP")) == "DOGEUSDT-PERP.BINANCE"


def test_binance_perp_margins_match_first_leverage_tier(
    shared_data: Path, fixture_specs: dict[tuple[str, str], InstrumentSpec]
) -> None:
    tiers = json.loads((shared_data / "binance_margin" / "binance_leverage_tiers.json").read_text())
    for (venue, symbol), spec in fixture_specs.items():
        if venue != "binance" or spec.market != "perp":
            continue
        first = tiers[f"{spec.base}/{spec.quote}:{spec.quote}"][0]["info"]
        assert spec.margin_maint == Decimal(str(first["maintMarginRatio"])), symbol
        initial = Decimal(1) / Decimal(first["initialLeverage"])
        assert Decimal(0) <= spec.margin_init - initial < Decimal("0.0001"), symbol
