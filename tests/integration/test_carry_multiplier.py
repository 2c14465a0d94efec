"""Carry on perps whose contract is a fraction of a coin (OKX BTC swap: 0.01 BTC) through the engine.

Hand-made OKX catalogs: spot BTC-USDT and the BTC-USDT swap (``BTC-USDT-SWAP.OKX``, multiplier 0.01)
at 42,000 USDT, funding at 0.03 % every 8 h (about 33 %/year, far above the entry threshold). The
hedge must hold the same *base* quantity on both legs: spot BTC = -(swap contracts x 0.01), and the
strategy's exposure caps must count contracts x 0.01 x price.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from datasets.store import Store
from engine.backtest import RunResult, parse_config, run_backtest
from research.carry_vbt import load_carry_inputs, params_from_config, run_carry
from tests.kit.engine import build_catalog, hourly_bars

# vectorbt 1.2 calls DataFrame.rename(inplace=True), deprecated in pandas 3: third-party, harmless here.
pytestmark = pytest.mark.filterwarnings("ignore:The inplace keyword in DataFrame.rename:pandas.errors.Pandas4Warning")

T0 = datetime(2024, 1, 1, tzinfo=UTC)
END = T0 + timedelta(days=2)
OKX_SPOT, OKX_SWAP = "BTC-USDT.OKX", "BTC-USDT-SWAP.OKX"
BINANCE_PERP = "BTCUSDT-PERP.BINANCE"
MULTIPLIER = Decimal("0.01")
HOURS = 48
PARAMS: dict[str, Any] = {
    "notional": "10000",
    "entry_apr": "0.10",
    "exit_apr": "0.02",
    "lookback_settlements": 1,
    "predicted_weight": "0",
    "round_trip_cost_bps": "30",
    "cost_horizon_days": "30",
    "max_holding_hours": 2160,
    "hedge_tolerance_pct": "1",
}
# Gross exposure of the hedged pair is ~20,000 USDT; without the multiplier the swap leg alone would
# count 100 times its value and every entry would be denied.
RISK = "max_instrument_exposure_usd = 15000\nmax_total_exposure_usd = 25000\nmax_leverage = { OKX = 1, BINANCE = 1 }"


def _closes(first: str, step: str) -> list[str]:
    return [str(Decimal(first) + Decimal(step) * i) for i in range(HOURS)]


def _settlements(rate: str) -> list[tuple[datetime, str]]:
    return [(T0 + timedelta(hours=h), rate) for h in range(8, HOURS + 1, 8)]


@pytest.fixture(scope="module")
def okx_catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    spot, swap = ("okx", "BTC-USDT"), ("okx", "BTC-USDT-PERP")
    return build_catalog(
        tmp_path_factory.mktemp("okx"),
        bars={spot: hourly_bars(T0, _closes("42000.0", "7.3")), swap: hourly_bars(T0, _closes("42010.0", "7.1"))},
        marks={swap: hourly_bars(T0, _closes("42005.0", "7.1"))},
        funding={swap: ("8h", _settlements("0.0003"))},
    )


@pytest.fixture(scope="module")
def cross_catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    okx, binance = ("okx", "BTC-USDT-PERP"), ("binance", "BTC-USDT-PERP")
    return build_catalog(
        tmp_path_factory.mktemp("cross"),
        bars={okx: hourly_bars(T0, _closes("42010.0", "7.1")), binance: hourly_bars(T0, _closes("42000.0", "7.0"))},
        marks={okx: hourly_bars(T0, _closes("42005.0", "7.1")), binance: hourly_bars(T0, _closes("42000.0", "7.0"))},
        funding={okx: ("8h", _settlements("0.0003")), binance: ("8h", _settlements("0.00001"))},
    )


def _params(extra: str) -> str:
    def value(v: Any) -> str:
        return f'"{v}"' if isinstance(v, str) else str(v)

    return "\n".join(f"{k} = {value(v)}" for k, v in PARAMS.items()) + "\n" + extra


def _run(catalog: Path, venues: str, strategy: str) -> RunResult:
    text = f"""
name = "carry-multiplier"
start = {T0.isoformat()}
end = {END.isoformat()}
[data]
catalog = "{catalog}"
{venues}
[strategy]
{strategy}
[strategy.params.risk]
{RISK}
"""
    return run_backtest(parse_config(text.encode()), out_dir=None)


def _venue(name: str, instruments: str) -> str:
    return f"""
[[venues]]
name = "{name}"
instruments = [{instruments}]
starting_balances = ["100000 USDT"]
account_type = "margin"
leverage = 3
funding_interval = "8h"
"""


def _spot_perp(catalog: Path) -> RunResult:
    strategy = 'path = "strategies.spot_perp_carry:SpotPerpCarry"\n[strategy.params]\n' + _params(
        'spot_id = "okx:BTC-USDT"\nperp_id = "okx:BTC-USDT-PERP"'
    )
    return _run(catalog, _venue("okx", '"BTC-USDT", "BTC-USDT-PERP"'), strategy)


def _positions(fills: pl.DataFrame) -> dict[str, Decimal]:
    signed = pl.when(pl.col("side") == "BUY").then(pl.col("quantity")).otherwise(-pl.col("quantity"))
    totals = fills.group_by("instrument_id").agg(signed.sum().alias("position"))
    return {row["instrument_id"]: row["position"] for row in totals.iter_rows(named=True)}


def test_spot_perp_on_okx_holds_spot_equal_to_swap_contracts_times_multiplier(okx_catalog: Path) -> None:
    result = _spot_perp(okx_catalog)
    assert result.stats["orders_denied"] == 0
    assert result.risk_events.filter(pl.col("action") == "deny").height == 0
    positions = _positions(result.fills)
    spot, contracts = positions[OKX_SPOT], positions[OKX_SWAP]
    # Entered on the bar closing 08:00 (spot 42,051.1): 10,000 / 42,051.1 = 0.237806... BTC, rounded down
    # to the swap's lot in BTC (0.01 contracts x 0.01 = 0.0001): 0.2378 BTC long, 23.78 contracts short.
    assert spot == Decimal("0.2378")
    assert contracts == Decimal("-23.78")
    assert spot == -(contracts * MULTIPLIER)
    # Every batch of fills leaves the legs hedged in base units.
    fills = result.fills.with_columns(
        base=pl.when(pl.col("instrument_id") == OKX_SWAP).then(pl.col("quantity") * MULTIPLIER).otherwise("quantity")
    )
    by_ts = fills.group_by("ts", "instrument_id", "side").agg(pl.col("base").sum()).sort("ts")
    for (_ts,), batch in by_ts.group_by("ts", maintain_order=True):
        buys = batch.filter(pl.col("side") == "BUY")["base"].sum()
        sells = batch.filter(pl.col("side") == "SELL")["base"].sum()
        assert buys == sells


def test_vectorbt_twin_sizes_and_settles_the_okx_swap_like_the_engine(okx_catalog: Path) -> None:
    # The twin reads the store the catalog was exported from. Same decisions, sizing in base units
    # and fill prices (no slippage here); the tolerance, 0.01 USDT per PnL component, is the one of
    # the Binance differential test (float64 vs decimals).
    engine = _spot_perp(okx_catalog)
    store = Store(okx_catalog.parent / "store")
    inputs = load_carry_inputs(store, venue="okx", base="BTC", quote="USDT", start=T0, end=END)
    vector = run_carry(inputs, **params_from_config(PARAMS))
    assert vector.fills == engine.stats["fills"] > 0
    assert vector.funding["position"].to_list() == [-23.78] * len(vector.funding)
    tolerance = Decimal("0.01")
    for key in ("pnl_total", "pnl_price", "pnl_funding", "pnl_fees"):
        assert abs(Decimal(engine.stats[key]) - Decimal(repr(getattr(vector, key)))) <= tolerance, key


def test_cross_venue_with_an_okx_leg_holds_equal_base_quantities(cross_catalog: Path) -> None:
    strategy = 'path = "strategies.cross_venue_carry:CrossVenueCarry"\n[strategy.params]\n' + _params(
        'first_id = "okx:BTC-USDT-PERP"\nsecond_id = "binance:BTC-USDT-PERP"'
    )
    venues = _venue("okx", '"BTC-USDT-PERP"') + _venue("binance", '"BTC-USDT-PERP"')
    result = _run(cross_catalog, venues, strategy)
    assert result.stats["orders_denied"] == 0
    assert result.risk_events.filter(pl.col("action") == "deny").height == 0
    positions = _positions(result.fills)
    contracts, binance = positions[OKX_SWAP], positions[BINANCE_PERP]
    # OKX pays more: short OKX, long Binance. Sized at the OKX close of 08:00 (42,059.7): 0.237757... BTC,
    # rounded down to a whole number of both lots in BTC (OKX 0.0001, Binance 0.001): 0.237 BTC.
    assert binance == Decimal("0.237")
    assert contracts == Decimal("-23.70")
    assert binance == -(contracts * MULTIPLIER)
