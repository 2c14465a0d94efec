"""datasets.venues: instrument ids as Nautilus' live adapters build them, specs, fees, clear errors."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from datasets.errors import DatasetError
from datasets.venues import (
    VENUES,
    UnknownInstrumentError,
    UnknownVenueError,
    instrument_id_for,
    instrument_spec,
    raw_symbol_for,
    venue_spec,
)


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


def test_every_spec_builds_an_instrument_id_and_consistent_numbers() -> None:
    for venue in VENUES.values():
        assert venue.funding_interval_minutes in (60, 480)
        for symbol, spec in venue.instruments.items():
            assert spec.symbol == symbol
            assert str(spec.instrument_id).endswith(f".{venue.nautilus_venue}")
            assert spec.min_quantity >= spec.size_increment > 0
            assert spec.price_increment > 0
            if spec.market == "perp":
                assert 0 < spec.margin_maint < spec.margin_init < 1
            else:
                assert spec.margin_init == spec.margin_maint == 0


def test_required_symbols_are_covered() -> None:
    for base in ("BTC", "ETH", "SOL"):
        for venue in ("binance", "bybit", "okx"):
            instrument_spec(venue, f"{base}-USDT")
            instrument_spec(venue, f"{base}-USDT-PERP")
        instrument_spec("hyperliquid", f"{base}-USDC-PERP")
    for base in ("LINK", "AVAX"):
        instrument_spec("binance", f"{base}-USDT-PERP")


def test_precision_counts_the_tick_as_written() -> None:
    btc = instrument_spec("binance", "BTC-USDT-PERP")
    assert (btc.price_increment, btc.price_precision, btc.size_precision) == (Decimal("0.10"), 2, 3)
    assert instrument_spec("bybit", "SOL-USDT-PERP").price_precision == 3
    assert instrument_spec("binance", "SOL-USDT-PERP").size_precision == 0


def test_fees_are_exact_decimals_per_market() -> None:
    binance = venue_spec("binance")
    assert (binance.fees("perp").maker, binance.fees("perp").taker) == (Decimal("0.0002"), Decimal("0.0005"))
    assert binance.fees("spot").taker == Decimal("0.001")
    assert venue_spec("hyperliquid").funding_interval == "1h"


def test_unknown_venue_raises_naming_known_venues() -> None:
    with pytest.raises(UnknownVenueError, match=r"no spec for venue 'deribit': known venues are binance, bybit"):
        instrument_id_for("deribit", "BTC-USD-PERP")
    assert issubclass(UnknownVenueError, DatasetError)


def test_unknown_symbol_raises_naming_known_symbols() -> None:
    with pytest.raises(UnknownInstrumentError, match=r"'DOGE-USDT-PERP' on binance: known symbols are BTC-USDT"):
        instrument_id_for("binance", "DOGE-USDT-PERP")
    assert issubclass(UnknownInstrumentError, DatasetError)


def test_binance_perp_margins_match_first_leverage_tier(shared_data: Path) -> None:
    tiers = json.loads((shared_data / "binance_margin" / "binance_leverage_tiers.json").read_text())
    for symbol, spec in venue_spec("binance").instruments.items():
        if spec.market != "perp":
            continue
        first = tiers[f"{spec.base}/{spec.quote}:{spec.quote}"][0]["info"]
        assert spec.margin_maint == Decimal(str(first["maintMarginRatio"])), symbol
        initial = Decimal(1) / Decimal(first["initialLeverage"])
        assert Decimal(0) <= spec.margin_init - initial < Decimal("0.0001"), symbol
