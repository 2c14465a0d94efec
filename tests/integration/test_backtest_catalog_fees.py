"""Fees have one source: the backtest charges the rates of the catalog's ``venues.json``, not ``datasets.venues``."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from datasets.venues import venue_spec
from engine.backtest import parse_config, run_backtest
from engine.errors import MissingDataError
from tests.kit.engine import build_catalog, hourly_bars

T0 = datetime(2024, 1, 1, tzinfo=UTC)
BTC_BINANCE = "BTCUSDT-PERP.BINANCE"
EDITED_TAKER = Decimal("0.0011")

CONFIG = """
name = "catalog-fees"
start = 2024-01-01T01:00:00Z
end = 2024-01-02T00:00:00Z
[data]
catalog = "{catalog}"
mark_prices = false
funding = false
[[venues]]
name = "binance"
instruments = ["BTC-USDT-PERP"]
starting_balances = ["100000 USDT"]
leverage = 5
[strategy]
path = "tests.kit.engine:Scripted"
[strategy.params]
orders = [["2024-01-01T02:00:00+00:00", "BTCUSDT-PERP.BINANCE", "BUY", "2.000"]]
"""


@pytest.fixture
def catalog(tmp_path: Path) -> Path:
    closes = [f"{42000 + 10 * i}.0" for i in range(24)]
    return build_catalog(tmp_path, bars={("binance", "BTC-USDT-PERP"): hourly_bars(T0, closes)})


def _edit_venues_file(catalog: Path, edit: dict[str, str] | None) -> None:
    path = catalog / "venues.json"
    document = json.loads(path.read_text())
    instruments = document["venues"]["BINANCE"]["instruments"]
    if edit is None:
        del instruments[BTC_BINANCE]
    else:
        instruments[BTC_BINANCE].update(edit)
    path.write_text(json.dumps(document, indent=2))


def test_edited_taker_fee_in_venues_file_is_the_fee_charged(tmp_path: Path, catalog: Path) -> None:
    assert venue_spec("binance").fees("perp").taker != EDITED_TAKER  # the file, not datasets.venues, must win
    _edit_venues_file(catalog, {"taker_fee": str(EDITED_TAKER)})
    result = run_backtest(parse_config(CONFIG.format(catalog=catalog).encode()), out_dir=None)
    fill = result.fills.row(0, named=True)
    # The market buy on the bar closing 02:00 fills at that close, 42010.0.
    assert (fill["side"], fill["quantity"], fill["price"]) == ("BUY", Decimal("2.000"), Decimal("42010.0"))
    assert fill["commission"] == Decimal("2.000") * Decimal("42010.0") * EDITED_TAKER == Decimal("92.42200000")
    assert Decimal(result.stats["pnl_fees"]) == -fill["commission"]
    assert result.stats["venues"] == [
        "binance: margin account, netting, leverage 5, funding clock 8h; "
        f"fees {BTC_BINANCE}: maker 0.0002, taker {EDITED_TAKER}"
    ]


def test_instrument_missing_from_venues_file_fails_naming_it_and_the_fix(tmp_path: Path, catalog: Path) -> None:
    _edit_venues_file(catalog, None)
    config = parse_config(CONFIG.format(catalog=catalog).encode())
    with pytest.raises(MissingDataError, match=rf"expected {BTC_BINANCE} \(binance:BTC-USDT-PERP\) in .*venues\.json"):
        run_backtest(config, out_dir=None)
