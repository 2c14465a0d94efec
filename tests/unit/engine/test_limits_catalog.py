"""engine.limits reads margin rates from the catalog's Nautilus instruments (built from stored specs)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from engine.limits import catalog_instruments, limit_findings
from engine.loading import parse_config
from tests.kit.engine import build_catalog, hourly_bars

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def _config(catalog: Path, leverage: int) -> str:
    return f"""
name = "limits-from-catalog"
start = 2024-01-01T00:00:00Z
end = 2024-01-02T00:00:00Z
[data]
catalog = "{catalog}"
[[venues]]
name = "binance"
instruments = ["BTC-USDT-PERP"]
starting_balances = ["10000 USDT"]
leverage = {leverage}
[strategy]
path = "strategies.demo:FundingShort"
[strategy.params]
instrument_ids = ["binance:BTC-USDT-PERP"]
"""


def test_the_venue_maximum_is_one_over_the_catalog_instruments_margin_init(tmp_path: Path) -> None:
    # The fixture table stores Binance's BTC perp at margin_init 0.0067: 1 / 0.0067 = 149.25..., rounded up 150x.
    catalog = build_catalog(tmp_path, bars={("binance", "BTC-USDT-PERP"): hourly_bars(T0, ["42000.0"] * 3)})
    config = parse_config(_config(catalog, 151).encode())
    (instrument,) = catalog_instruments(config).values()
    assert str(instrument.margin_init) == "0.0067"
    (finding,) = limit_findings(config)
    assert finding.startswith("venues[binance].leverage: expected at most binance's maximum 150x")
    assert limit_findings(parse_config(_config(catalog, 150).encode())) == []


def test_without_the_instrument_in_the_catalog_leverage_above_1_is_a_finding(tmp_path: Path) -> None:
    config = parse_config(_config(tmp_path / "no-catalog", 2).encode())
    assert catalog_instruments(config) == {}
    (finding,) = limit_findings(config)
    assert "expected the margin rates of BTC-USDT-PERP to check binance's maximum leverage" in finding
    assert limit_findings(parse_config(_config(tmp_path / "no-catalog", 1).encode())) == []
