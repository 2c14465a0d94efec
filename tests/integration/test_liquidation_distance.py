"""The liquidation-distance control on real Binance data: the 2021-02-08 BTC spike against a carry's short perp.

How the spike was found: over the Binance BTC/ETH/SOL USDT-M 1h perp bars in
``../shared/data/binance_freqtrade/futures`` we ranked the largest rises (close 24 h earlier to the
highest high) and kept those where the spot/perp carry is naturally short the perp, i.e. funding was
strongly positive. 2021-02-08 (Tesla's bitcoin purchase) is one: BTCUSDT perp closes 38,620.72 at
04:00 UTC, 43,506.10 at 13:00, 48,210.00 on 02-09 07:00 (+25 % in 27 h) while 8-hourly funding ran at
0.03-0.25 % (``BTC_USDT_USDT-1h-funding_rate.feather``). (The 2021-07-26 squeeze is larger on the highs
but came with negative funding, so a carry would not have been short then.)

The carry (``strategies.spot_perp_carry``) enters at the 2021-02-06 00:00 close: 1.044 BTC long spot at
38,290.24, short perp at 38,362.60 (notional 40,000 / 38,290.24 rounded down to the 0.001 lot). The perp
is margined by the venue's USDT wallet (cross), its brackets are Binance's from
``../shared/data/binance_margin/binance_leverage_tiers.json`` imported into the store (today's brackets
for a 2021 window: the file has no history, the store serves its first version), BTC bracket 1:
maintenance rate 0.004, maintenance amount 0, for notionals below 300,000. For a short opened at ``EP``
(Binance's formula, one-way mode, no other contracts)::

    LP = (W + cum + Q x EP) / (Q x MMR + Q) = (W + Q x EP) / (Q x 1.004)

Spot legs are not collateral of the futures wallet, so the hedge's gain does not help the perp.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import ROUND_DOWN, Decimal
from pathlib import Path

import polars as pl
import pytest

from datasets.importers.base import ImportOptions
from datasets.pipeline import import_paths
from datasets.store import Store
from engine.backtest import RunResult, parse_config, run_backtest
from reports.backtest import render_run
from tests.kit.live import flat_perp_catalog, risk_hold_toml
from tests.kit.store import catalog_from_files

FILES = (
    "binance_freqtrade/spot/BTC_USDT-1h.feather",
    "binance_freqtrade/futures/BTC_USDT_USDT-1h-futures.feather",
    "binance_freqtrade/futures/BTC_USDT_USDT-1h-mark.feather",
    "binance_freqtrade/futures/BTC_USDT_USDT-1h-funding_rate.feather",  # 8-hourly settlements
)
SPOT, PERP = "BTCUSDT.BINANCE", "BTCUSDT-PERP.BINANCE"
ENTRY_QUANTITY, ENTRY_PRICE = Decimal("1.044"), Decimal("38362.60")
SPIKE_TS = datetime(2021, 2, 8, 13, 0, tzinfo=UTC)  # the 12:00-13:00 bar, close 43,506.10
SPIKE_CLOSE = Decimal("43506.10")
LOT = Decimal("0.001")
MMR = Decimal("0.004")


@pytest.fixture(scope="module")
def spike(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("spike")
    catalog_from_files(
        root,
        [shared_data / name for name in FILES],
        start=datetime(2021, 2, 1, tzinfo=UTC),
        end=datetime(2021, 2, 12, tzinfo=UTC),
    )
    brackets = shared_data / "binance_margin" / "binance_leverage_tiers.json"
    import_paths([brackets], Store(root / "store"), options=ImportOptions(as_of=datetime(2026, 9, 1, tzinfo=UTC)))
    return root


def _run(root: Path, *, balance: int, distance: str | None, out_dir: Path | None = None) -> RunResult:
    risk = "" if distance is None else f"[strategy.params.risk]\nmin_liquidation_distance_pct = {distance}\n"
    text = f"""
name = "liquidation-spike"
start = 2021-02-05T00:00:00Z
end = 2021-02-11T00:00:00Z
[data]
catalog = "{root / "catalog"}"
store = "{root / "store"}"
[[venues]]
name = "binance"
instruments = ["BTC-USDT", "BTC-USDT-PERP"]
starting_balances = ["{balance} USDT"]
leverage = 10
funding_interval = "8h"
[strategy]
path = "strategies.spot_perp_carry:SpotPerpCarry"
[strategy.params]
spot_id = "binance:BTC-USDT"
perp_id = "binance:BTC-USDT-PERP"
notional = "40000"
lookback_settlements = 3
max_holding_hours = 336
{risk}"""
    return run_backtest(parse_config(text.encode()), out_dir=out_dir)


def _liquidation_events(result: RunResult) -> pl.DataFrame:
    return result.risk_events.filter(pl.col("control") == "liquidation_distance").sort("ts")


def _held(fills: pl.DataFrame, instrument_id: str, *, until: datetime) -> Decimal:
    signed = fills.filter((pl.col("instrument_id") == instrument_id) & (pl.col("ts") <= until)).select(
        pl.when(pl.col("side") == "BUY").then(pl.col("quantity")).otherwise(-pl.col("quantity"))
    )
    return sum(signed.to_series().to_list(), Decimal(0))


def _wallet(result: RunResult, balance: int, *, before: datetime) -> Decimal:
    fees = sum(result.fills.filter(pl.col("ts") < before)["commission"].to_list(), Decimal(0))
    funding = sum(result.funding.filter(pl.col("ts") < before)["amount"].to_list(), Decimal(0))
    return Decimal(balance) - fees + funding


def test_spike_reduces_the_short_perp_leg_and_records_it(spike: Path, tmp_path: Path) -> None:
    """Default control (15 %), wallet 11,000: at entry W = 11,000 and the distance is
    (11000 / 40050.55 - 0.004) / 1.004 = 26.96 %, allowed. The price rises until the spike's 13:00 close,
    where the wallet W (11,000 - entry fees + funding settled so far, from the run's own ledgers) gives
    LP = (W + 1.044 x 38362.60) / (1.044 x 1.004), a distance (LP - 43506.10) / 43506.10 below 15 %.
    The largest safe short at the mark, the loss so far ``U = -1.044 x (43506.10 - 38362.60)`` joining the
    wallet, is Q = (W + U) / (43506.10 x (0.15 x 1.004 + 0.004)); both legs are cut to Q rounded down to
    the 0.001 lot, at that bar."""
    result = _run(spike, balance=11000, distance=None, out_dir=tmp_path / "runs")
    events = _liquidation_events(result)
    assert events.height >= 1
    assert set(events["action"]) == {"reduce"}
    first = events.row(0, named=True)
    assert SPIKE_TS <= first["ts"] < datetime(2021, 2, 8, 14, tzinfo=UTC)
    assert first["instrument_id"] == PERP
    assert first["limit"] == "15"

    wallet = _wallet(result, 11000, before=SPIKE_TS)
    liquidation = (wallet + ENTRY_QUANTITY * ENTRY_PRICE) / (ENTRY_QUANTITY * (1 + MMR))
    distance = (liquidation - SPIKE_CLOSE) / SPIKE_CLOSE * 100
    assert distance < 15
    assert abs(Decimal(first["value"]) - distance) < Decimal("1e-18")

    loss = -ENTRY_QUANTITY * (SPIKE_CLOSE - ENTRY_PRICE)
    safe = (wallet + loss) / (SPIKE_CLOSE * (Decimal("0.15") * (1 + MMR) + MMR))
    kept = safe.quantize(LOT, rounding=ROUND_DOWN)
    after_spike = datetime(2021, 2, 8, 13, 30, tzinfo=UTC)
    assert _held(result.fills, PERP, until=after_spike) == -kept
    assert _held(result.fills, SPOT, until=after_spike) == kept  # the hedge is cut with it
    before_spike = datetime(2021, 2, 8, 12, 30, tzinfo=UTC)
    assert _held(result.fills, PERP, until=before_spike) == -ENTRY_QUANTITY  # nothing was cut before the spike

    stats = result.stats
    assert stats["liquidation_distance_pct"][PERP]["min"] == str(
        min(Decimal(v) for v in events["value"]).quantize(Decimal("0.0001"))
    )
    assert result.run_dir is not None
    report = render_run(result.run_dir).read_text(encoding="utf-8")
    section = report.split("<h2>Liquidation distance</h2>", 1)[1].split("<h2>", 1)[0]
    assert PERP in section


def test_without_the_control_the_short_perp_rides_the_spike_close_to_liquidation(spike: Path) -> None:
    """Same run with ``min_liquidation_distance_pct = 0`` (off): no event, the 1.044 BTC short is held
    through the spike, and its liquidation price (about 49,000: (W + 40,050.55) / 1.048176) came within
    2 % of the 48,210.00 close of 02-09 07:00, against at least 11 % with the control on."""
    off = _run(spike, balance=11000, distance="0")
    on = _run(spike, balance=11000, distance=None)
    assert _liquidation_events(off).height == 0
    assert off.stats["fills"] == 2
    assert _held(off.fills, PERP, until=datetime(2021, 2, 11, tzinfo=UTC)) == -ENTRY_QUANTITY
    worst_off = Decimal(off.stats["liquidation_distance_pct"][PERP]["min"])
    worst_on = Decimal(on.stats["liquidation_distance_pct"][PERP]["min"])
    assert worst_off < 2
    assert worst_on > 11
    assert Decimal(off.stats["pnl_total"]) != Decimal(on.stats["pnl_total"])


def test_entry_beyond_the_distance_is_cut_to_the_largest_safe_pair(spike: Path) -> None:
    """Wallet 5,000 for a 40,000 short: (5000 / 40050.55 - 0.004) / 1.004 = 12.04 % < 15 %. The largest safe
    short at the 38,362.60 entry close is 5000 / (38362.60 x (0.15 x 1.004 + 0.004)) = 5000 / 5930.858 =
    0.84305 BTC, so the pair enters with 0.843 on both legs and a ``reduce`` event says so."""
    result = _run(spike, balance=5000, distance="15")
    first = _liquidation_events(result).row(0, named=True)
    assert first["action"] == "reduce"
    assert first["reason"].startswith("pair 1.044 cut to 0.843: ")
    entry = datetime(2021, 2, 6, 0, 30, tzinfo=UTC)
    assert _held(result.fills, PERP, until=entry) == Decimal("-0.843")
    assert _held(result.fills, SPOT, until=entry) == Decimal("0.843")


def test_a_single_order_beyond_the_distance_is_cut_to_the_lot(tmp_path: Path) -> None:
    """Hand-made flat catalog (``tests.kit.live.flat_perp_catalog``, synthetic: BTC perp at 100.0), a short of
    1,000 contracts on a 100,000 USDT wallet: its distance is (100000 / 100000 - 0.004) / 1.004 = 99.2 %, under a
    120 % minimum. One order is cut, not refused: Q = 100000 / (100 x (1.2 x 1.004 + 0.004)) = 100000 / 120.88
    = 827.2667, rounded down to the 0.001 lot, 827.266."""
    text = risk_hold_toml(
        flat_perp_catalog(tmp_path / "flat"),
        name="cut",
        end="2024-01-01T12:00:00Z",
        risk="min_liquidation_distance_pct = 120",
    ).replace('quantity = "100"', 'quantity = "-1000"')
    result = run_backtest(parse_config(text.encode()), out_dir=None)
    event = _liquidation_events(result).row(0, named=True)
    assert (event["action"], event["instrument_id"]) == ("reduce", PERP)
    assert "cut BTCUSDT-PERP.BINANCE -1000.000 to 827.266" in event["reason"]
    assert _held(result.fills, PERP, until=datetime(2024, 1, 2, tzinfo=UTC)) == Decimal("-827.266")
