"""engine.venue_models: fees and funding clock from the catalog's venues.json, config overrides, live models."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from nautilus_trader.model import InstrumentId, Venue

from datasets.catalog import venues_document
from datasets.testing import fixture_spec
from engine.config import VenueConfig
from engine.errors import EngineRunError, MissingDataError
from engine.loading import parse_config
from engine.venue_models import build_venue_model, build_venue_models, read_catalog_fees

BTC_PERP = InstrumentId.from_str("BTCUSDT-PERP.BINANCE")
BTC_SPOT = InstrumentId.from_str("BTCUSDT.BINANCE")


def _catalog(root: Path, *, edit: dict[str, Any] | None = None) -> Path:
    (root / "data").mkdir(parents=True)
    specs = [fixture_spec("binance", "BTC-USDT-PERP"), fixture_spec("binance", "BTC-USDT")]
    document = venues_document(specs)
    document["venues"]["BINANCE"].update(edit or {})
    (root / "venues.json").write_text(json.dumps(document))
    return root


def _venue(**fields: Any) -> VenueConfig:
    values = {"name": "binance", "instruments": ["BTC-USDT-PERP", "BTC-USDT"], "starting_balances": ["1000 USDT"]}
    return VenueConfig(**{**values, **fields})


def _set_fees(catalog: Path, instrument_id: InstrumentId, maker: str, taker: str) -> None:
    path = catalog / "venues.json"
    document = json.loads(path.read_text())
    document["venues"]["BINANCE"]["instruments"][str(instrument_id)].update(maker_fee=maker, taker_fee=taker)
    path.write_text(json.dumps(document))


def test_fees_and_clock_come_from_the_venues_file(tmp_path: Path) -> None:
    catalog = _catalog(tmp_path, edit={"funding_interval": "4h"})
    _set_fees(catalog, BTC_PERP, "0.00015", "0.0007")
    model = build_venue_model(_venue(), read_catalog_fees(catalog))
    assert model.venue == Venue("BINANCE")
    assert model.fees == {
        BTC_PERP: (Decimal("0.00015"), Decimal("0.0007")),
        BTC_SPOT: (Decimal("0.001"), Decimal("0.001")),
    }
    assert model.funding_interval == "4h"
    assert model.fee_model() is not None


def test_exported_file_describes_the_venue_as_datasets_venues_did(tmp_path: Path) -> None:
    model = build_venue_model(_venue(leverage=Decimal(3)), read_catalog_fees(_catalog(tmp_path)))
    assert model.describe() == (
        "binance: margin account, netting, leverage 3, funding clock 8h; fees "
        "BTCUSDT-PERP.BINANCE: maker 0.0002, taker 0.0005, BTCUSDT.BINANCE: maker 0.001, taker 0.001"
    )


def test_config_fees_and_clock_override_the_file(tmp_path: Path) -> None:
    venue = _venue(taker_fee=Decimal("0.0004"), funding_interval="1h")
    model = build_venue_model(venue, read_catalog_fees(_catalog(tmp_path)))
    assert model.fees == {
        BTC_PERP: (Decimal("0.0002"), Decimal("0.0004")),
        BTC_SPOT: (Decimal("0.001"), Decimal("0.0004")),
    }
    assert model.funding_interval == "1h"


def test_instrument_missing_from_the_file_names_it_the_file_and_the_fix(tmp_path: Path) -> None:
    catalog = _catalog(tmp_path)
    path = catalog / "venues.json"
    document = json.loads(path.read_text())
    del document["venues"]["BINANCE"]["instruments"][str(BTC_SPOT)]
    path.write_text(json.dumps(document))
    with pytest.raises(
        MissingDataError,
        match=(
            rf"expected BTCUSDT\.BINANCE \(binance:BTC-USDT\) in {path}, was absent \(BINANCE lists: "
            rf"BTCUSDT-PERP\.BINANCE\); re-export the catalog with that symbol: python -m datasets export-catalog "
            rf"--catalog {catalog} --venue binance --symbol BTC-USDT"
        ),
    ):
        build_venue_model(_venue(), read_catalog_fees(catalog))


def test_venue_missing_from_the_file_is_missing_data(tmp_path: Path) -> None:
    catalog = _catalog(tmp_path)
    with pytest.raises(
        MissingDataError, match=r"expected venue okx in .*venues\.json, was absent \(it lists: binance\)"
    ):
        build_venue_model(_venue(name="okx", instruments=["BTC-USDT-PERP"]), read_catalog_fees(catalog))


def test_missing_venues_file_names_the_path_and_the_export(tmp_path: Path) -> None:
    with pytest.raises(
        MissingDataError,
        match=rf"expected the catalog's venue fees in {tmp_path}/venues\.json, was absent; re-export the catalog "
        rf"\(python -m datasets export-catalog --catalog {tmp_path}\)",
    ):
        read_catalog_fees(tmp_path)


def test_missing_catalog_is_missing_data(tmp_path: Path) -> None:
    with pytest.raises(MissingDataError, match=rf"expected a Nautilus catalog .* at {tmp_path}/nowhere, was absent"):
        read_catalog_fees(tmp_path / "nowhere")


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("{not json", "is not valid JSON"),
        ('{"format": "other", "version": 1, "venues": {}}', "expected format 'carrylab.catalog.venues'"),
        (
            '{"format": "carrylab.catalog.venues", "version": 1, "venues": {"BINANCE": {"store_venue": "binance"}}}',
            r"venue 'BINANCE': expected store_venue, .* was missing key 'instruments'",
        ),
    ],
)
def test_invalid_venues_file_is_missing_data_naming_the_path(tmp_path: Path, content: str, reason: str) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "venues.json").write_text(content)
    with pytest.raises(
        MissingDataError, match=rf"venue fees are unreadable: {tmp_path}/venues\.json.*{reason}.*re-export"
    ):
        read_catalog_fees(tmp_path)


def test_invalid_fee_text_is_missing_data(tmp_path: Path) -> None:
    catalog = _catalog(tmp_path)
    _set_fees(catalog, BTC_PERP, "0.0002", "five bps")
    with pytest.raises(MissingDataError, match=r"venue 'BINANCE': expected .* was InvalidOperation"):
        read_catalog_fees(catalog)


CONFIG = """
name = "t"
start = 2024-01-01T00:00:00Z
end = 2024-02-01T00:00:00Z
[data]
catalog = "{catalog}"
[[venues]]
name = "binance"
instruments = ["BTC-USDT-PERP"]
starting_balances = ["1000 USDT"]
[strategy]
path = "strategies.demo:FundingShort"
"""


def test_live_models_read_no_catalog_and_leave_fees_to_the_venue(tmp_path: Path) -> None:
    config = parse_config(CONFIG.format(catalog=tmp_path / "nowhere").encode())
    with pytest.raises(MissingDataError, match="expected a Nautilus catalog"):
        build_venue_models(config)
    (model,) = build_venue_models(config, fees="venue")
    assert (model.venue, model.fees) == (Venue("BINANCE"), None)
    assert model.describe() == (
        "binance: margin account, netting, leverage 1, funding clock 8h; fees charged by the venue"
    )
    with pytest.raises(EngineRunError, match="binance is a live one \\(fees charged by the venue\\)"):
        model.fee_model()


def test_models_of_a_run_read_its_catalog(tmp_path: Path) -> None:
    catalog = _catalog(tmp_path / "catalog")
    _set_fees(catalog, BTC_PERP, "0.0001", "0.0003")
    (model,) = build_venue_models(parse_config(CONFIG.format(catalog=catalog).encode()))
    assert model.fees == {BTC_PERP: (Decimal("0.0001"), Decimal("0.0003"))}
