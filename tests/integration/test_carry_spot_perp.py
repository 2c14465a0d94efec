"""Spot-perp carry on real Binance BTC data (../shared/data): hedging, funding sign, every risk control in
the engine, and the differential check against the vectorbt implementation (``research.carry_vbt``)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from datasets.catalog import export_catalog
from datasets.pipeline import import_paths
from datasets.store import Store
from datasets.testing import FIXTURE_INSTRUMENTS
from engine.backtest import RunResult, parse_config, run_backtest
from research.carry_vbt import load_carry_inputs, params_from_config, run_carry
from strategies.kill_switch import KillSwitchTimer, KillSwitchTimerConfig

# vectorbt 1.2 calls DataFrame.rename(inplace=True), deprecated in pandas 3: third-party, harmless here.
pytestmark = pytest.mark.filterwarnings("ignore:The inplace keyword in DataFrame.rename:pandas.errors.Pandas4Warning")

FILES = (
    "binance_freqtrade/spot/BTC_USDT-1h.feather",
    "binance_freqtrade/futures/BTC_USDT_USDT-1h-futures.feather",
    "binance_freqtrade/futures/BTC_USDT_USDT-1h-mark.feather",
    "binance_freqtrade/futures/BTC_USDT_USDT-1h-funding_rate.feather",  # 8-hourly settlements
)
SPOT, PERP = "BTCUSDT.BINANCE", "BTCUSDT-PERP.BINANCE"
# Q1 2024: BTC funding on Binance was persistently positive (longs paid, ~10-30 %/year).
Q1 = (datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 4, 1, tzinfo=UTC))
JANUARY = (datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 2, 1, tzinfo=UTC))
PARAMS: dict[str, Any] = {
    "notional": "40000",
    "entry_apr": "0.10",
    "exit_apr": "0.02",
    "lookback_settlements": 3,
    "predicted_weight": "0.5",
    "round_trip_cost_bps": "32",
    "cost_horizon_days": "30",
    "max_holding_hours": 336,
    "hedge_tolerance_pct": "1",
}


@pytest.fixture(scope="module")
def store_and_catalog(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Store, Path]:
    root = tmp_path_factory.mktemp("carry")
    store = Store(root / "store")
    import_paths([*(shared_data / name for name in FILES), FIXTURE_INSTRUMENTS], store)
    catalog = root / "catalog"
    export_catalog(store, catalog, start=datetime(2023, 12, 1, tzinfo=UTC), end=datetime(2024, 5, 1, tzinfo=UTC))
    return store, catalog


def _toml(value: Any) -> str:
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + " }"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    return str(value)


def _run(
    catalog: Path,
    window: tuple[datetime, datetime],
    *,
    risk: dict[str, Any] | None = None,
    notional_cap: int = 250_000,
    actors: tuple[Any, ...] = (),
    out_dir: Path | None = None,
) -> RunResult:
    params = "\n".join(f"{k} = {_toml(v)}" for k, v in PARAMS.items())
    risk_table = "\n".join(f"{k} = {_toml(v)}" for k, v in (risk or {}).items())
    text = f"""
name = "carry-test"
start = {window[0].isoformat()}
end = {window[1].isoformat()}
[data]
catalog = "{catalog}"
[[venues]]
name = "binance"
instruments = ["BTC-USDT", "BTC-USDT-PERP"]
starting_balances = ["100000 USDT"]
leverage = 3
funding_interval = "8h"
[fill]
slippage_bps = 1
[risk.max_notional_per_order]
"binance:BTC-USDT" = {notional_cap}
"binance:BTC-USDT-PERP" = {notional_cap}
[strategy]
path = "strategies.spot_perp_carry:SpotPerpCarry"
[strategy.params]
spot_id = "binance:BTC-USDT"
perp_id = "binance:BTC-USDT-PERP"
{params}
[strategy.params.risk]
{risk_table}
"""
    return run_backtest(parse_config(text.encode()), out_dir=out_dir, actors=actors)


def _holdings(fills: pl.DataFrame) -> pl.DataFrame:
    signed = pl.when(pl.col("side") == "BUY").then(pl.col("quantity")).otherwise(-pl.col("quantity"))
    per_ts = (
        fills.with_columns(signed=signed)
        .group_by("ts", "instrument_id")
        .agg(pl.col("signed").sum())
        .pivot(on="instrument_id", index="ts", values="signed")
        .sort("ts")
    )
    for instrument in (SPOT, PERP):
        if instrument not in per_ts.columns:
            per_ts = per_ts.with_columns(pl.lit(Decimal(0), dtype=pl.Decimal(38, 18)).alias(instrument))
    per_ts = per_ts.with_columns(pl.col(SPOT, PERP).fill_null(Decimal(0)))
    return per_ts.with_columns(pl.col(SPOT).cum_sum().alias("spot"), pl.col(PERP).cum_sum().alias("perp"))


@pytest.mark.slow
def test_carry_in_positive_funding_regime_stays_hedged_and_earns_funding(
    store_and_catalog: tuple[Store, Path],
) -> None:
    result = _run(store_and_catalog[1], Q1)
    stats = result.stats
    assert stats["fills"] >= 2
    assert stats["orders_denied"] == 0
    # Hedged: after every batch of fills, spot + perp base quantity is 0 within the 1 % tolerance
    # (this fill model fills in full, so exactly 0).
    holdings = _holdings(result.fills)
    for row in holdings.iter_rows(named=True):
        assert abs(row["spot"] + row["perp"]) <= abs(row["spot"]) * Decimal("0.01")
    # Positive funding regime: the short perp collects; each settlement has the sign of the rate.
    assert Decimal(stats["pnl_funding"]) > 0
    for row in result.funding.iter_rows(named=True):
        assert row["position_size"] < 0
        assert (row["amount"] > 0) == (row["rate"] > 0)
    assert Decimal(stats["pnl_total"]) == sum(
        (Decimal(stats[k]) for k in ("pnl_price", "pnl_funding", "pnl_fees")), Decimal(0)
    )
    # Hedged price PnL is small next to the notional: basis moves only (< 1 % of 40,000 per leg).
    assert abs(Decimal(stats["pnl_price"])) < Decimal(400)


@pytest.mark.slow
def test_vectorbt_and_engine_agree_on_trades_and_pnl(store_and_catalog: tuple[Store, Path]) -> None:
    # Same signals (strategies.signals.carry_step on the same grid), same sizing, same fill prices
    # (close +/- 1 bp rounded to the tick against the taker), no binding risk limits. Differences
    # left: float64 in vectorbt vs decimals in the engine, ~1e-8 USDT per fill and settlement; the
    # tolerance, 0.01 USDT on each PnL component, is well above that and far below one tick x quantity
    # (0.1 USDT x 0.9 BTC), the first modelling difference it would catch.
    store, catalog = store_and_catalog
    engine = _run(catalog, Q1)
    inputs = load_carry_inputs(store, venue="binance", base="BTC", quote="USDT", start=Q1[0], end=Q1[1])
    vector = run_carry(inputs, slippage_bps=1.0, **params_from_config(PARAMS))
    assert vector.fills == engine.stats["fills"] > 0
    assert len(vector.funding) == engine.stats["funding_settlements"]
    tolerance = Decimal("0.01")
    for key in ("pnl_total", "pnl_price", "pnl_funding", "pnl_fees"):
        assert abs(Decimal(engine.stats[key]) - Decimal(repr(getattr(vector, key)))) <= tolerance, key


def _events(result: RunResult, control: str) -> pl.DataFrame:
    return result.risk_events.filter(pl.col("control") == control)


@pytest.mark.slow
def test_kill_switch_message_flattens_and_halts(store_and_catalog: tuple[Store, Path], tmp_path: Path) -> None:
    kill_at = datetime(2024, 1, 10, 12, 30, tzinfo=UTC)  # in a position since 2024-01-02
    timer = KillSwitchTimer(KillSwitchTimerConfig(at_ns=int(kill_at.timestamp()) * 1_000_000_000, reason="test"))
    result = _run(store_and_catalog[1], JANUARY, actors=(timer,), out_dir=tmp_path)
    events = _events(result, "kill_switch")
    assert events["action"].to_list() == ["halt", "flatten"]
    assert events["reason"].to_list() == ["kill switch: test"] * 2
    before = result.fills.filter(pl.col("ts") < kill_at)
    assert before.height >= 2  # it was in a position
    after = result.fills.filter(pl.col("ts") >= kill_at)
    holdings = _holdings(result.fills)
    assert holdings["spot"][-1] == holdings["perp"][-1] == 0  # flat at the end
    assert after["ts"].max() == kill_at  # flattened at the switch, nothing traded after it
    written = pl.read_parquet(result.run_dir / "risk_events.parquet")  # type: ignore[operator]
    assert written.equals(result.risk_events)


@pytest.mark.slow
def test_daily_loss_limit_flattens_then_resumes_next_utc_day(store_and_catalog: tuple[Store, Path]) -> None:
    # Entry costs ~60 USDT of fees (40,000 x (10 + 5) bps) plus slippage: a 50 USDT daily limit trips on the
    # decision after every entry.
    result = _run(store_and_catalog[1], JANUARY, risk={"daily_loss_limit_usd": 50})
    events = _events(result, "daily_loss")
    actions = events["action"].to_list()
    assert actions[:2] == ["halt", "flatten"]
    assert "resume" in actions
    first_halt = events["ts"][0]
    resume = events.filter(pl.col("action") == "resume")["ts"][0]
    assert resume.date() > first_halt.date()
    assert resume.hour == 0
    trades_while_halted = result.fills.filter((pl.col("ts") > first_halt) & (pl.col("ts") < resume))
    assert trades_while_halted.height == 0
    assert _holdings(result.fills.filter(pl.col("ts") <= first_halt))["spot"][-1] == 0


@pytest.mark.slow
def test_drawdown_limit_flattens_and_stops_entries_for_good(store_and_catalog: tuple[Store, Path]) -> None:
    result = _run(store_and_catalog[1], JANUARY, risk={"max_drawdown_pct": "0.05"})  # 50 USDT of 100,000
    events = _events(result, "drawdown")
    assert events["action"].to_list() == ["halt", "flatten"]
    assert events["reason"][0].startswith("drawdown ")
    assert events["reason"][0].endswith(">= 0.05%")
    assert result.fills.height == 4  # one entry pair, one flattening pair
    assert result.fills["ts"].max() == events["ts"][0]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("risk", "control", "reason"),
    [
        ({"max_instrument_exposure_usd": 30000}, "exposure_instrument", "exposure would be"),
        ({"max_total_exposure_usd": 60000}, "exposure_total", "total exposure would be"),
        ({"max_leverage": {"BINANCE": "0.5"}}, "leverage", "BINANCE leverage would be 0.8"),
    ],
)
def test_pre_trade_limit_denies_entries_with_a_reason(
    store_and_catalog: tuple[Store, Path], risk: dict[str, Any], control: str, reason: str
) -> None:
    result = _run(store_and_catalog[1], JANUARY, risk=risk)
    assert result.fills.height == 0
    denied = _events(result, control)
    assert denied.height > 0
    assert set(denied["action"]) == {"deny"}
    assert reason in denied["reason"][0]
    assert result.stats["risk_events"] == result.risk_events.height


@pytest.mark.slow
def test_stale_funding_guard_allows_entries_only_near_fresh_updates(store_and_catalog: tuple[Store, Path]) -> None:
    # Binance announces funding every 8 h (00, 08, 16 UTC); with a 1 h age limit entries can only happen
    # on the bars closing at those hours or one hour after, and are denied on every other bar.
    result = _run(store_and_catalog[1], Q1, risk={"max_funding_age_secs": 3600})
    denied = _events(result, "stale_funding")
    assert denied.height > 0
    assert denied["reason"][0].startswith("denied [BTCUSDT.BINANCE +")
    assert "last funding update of BTCUSDT-PERP.BINANCE" in denied["reason"][0]
    entries = result.risk_events.filter((pl.col("control") == "order") & (pl.col("reason").str.contains("within")))
    assert entries.height > 0
    assert set(entries["ts"].dt.hour().to_list()) <= {0, 1, 8, 9, 16, 17}


@pytest.mark.slow
def test_nautilus_per_order_cap_denial_is_recorded(store_and_catalog: tuple[Store, Path]) -> None:
    result = _run(store_and_catalog[1], (JANUARY[0], datetime(2024, 1, 8, tzinfo=UTC)), notional_cap=20_000)
    denied = _events(result, "nautilus_risk_engine")
    assert denied.height > 0
    assert "NOTIONAL_EXCEEDS_MAX_PER_ORDER" in denied["reason"][0]
    # A denied leg never leaves the other one naked for long: the next decision closes it.
    holdings = _holdings(result.fills) if result.fills.height else None
    if holdings is not None:
        assert holdings["spot"][-1] + holdings["perp"][-1] == 0
