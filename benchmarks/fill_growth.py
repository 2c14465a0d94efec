"""Per-fill cost growth inside NautilusTrader: a minimal reproduction on a bare ``BacktestEngine``.

    .venv/bin/python benchmarks/fill_growth.py [--bars 200000] [--slices 8] [--every 2]

No catalog, no project strategy: seeded synthetic one-minute bars (a random walk, labelled synthetic)
of one perp on one margin venue, and a strategy that flips a 1-contract market position every
``--every`` bars. The engine runs streaming, one slice of bars at a time, and prints per slice: the
engine time, the fills so far, and what reading the account costs then (``portfolio.account(venue)``
+ ``balances_total()``, which clones the account's event history in rc6) and ``len(account.events)``.
A flat engine time with rising fills would clear Nautilus; a rising one with a flat strategy (it does
the same few calls per bar) is Nautilus' growth. Then it times the project's ledger readers
(``engine.results.records``) on the final cache, which are ours.

Printed figures only, never asserted (``benchmarks/`` are not timed tests).
"""

from __future__ import annotations

import argparse
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

START_NS = 1_640_995_200 * 1_000_000_000  # 2022-01-01T00:00Z
MINUTE_NS = 60 * 1_000_000_000


def synthetic_bars(bar_type: Any, instrument: Any, count: int, *, seed: int = 7) -> list[Any]:
    """Return ``count`` seeded synthetic one-minute bars (a random walk around 30,000), stamped at close + 1 ns."""
    from nautilus_trader.model import Bar, Price, Quantity

    rng = np.random.default_rng(seed)
    closes = 30_000 + np.cumsum(rng.normal(0, 5, count))
    volume = Quantity(1000, instrument.size_precision)
    bars = []
    for index, close in enumerate(closes.tolist()):
        price = Price(close, instrument.price_precision)
        ts = START_NS + (index + 1) * MINUTE_NS
        bars.append(Bar(bar_type, price, price, price, price, volume, ts, ts + 1))
    return bars


def flipper(bar_type: Any, every: int) -> Any:
    from nautilus_trader.model import OrderSide, Quantity
    from nautilus_trader.trading import Strategy, StrategyConfig

    class Flipper(Strategy):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__(StrategyConfig())
            self.count = 0
            self.side = OrderSide.BUY
            self.one, self.two = Quantity.from_str("1.000"), Quantity.from_str("2.000")

        def on_start(self) -> None:
            self.subscribe_bars(bar_type)

        def on_bar(self, bar: Any) -> None:
            self.count += 1
            if self.count % every:
                return
            quantity = self.one if self.count == every else self.two
            self.submit_order(self.order_factory.market(bar_type.instrument_id, self.side, quantity))
            self.side = OrderSide.SELL if self.side == OrderSide.BUY else OrderSide.BUY

    return Flipper()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bars", type=int, default=200_000)
    parser.add_argument("--slices", type=int, default=8)
    parser.add_argument("--every", type=int, default=2, help="bars between two flips")
    args = parser.parse_args()

    from nautilus_trader.backtest import BacktestEngine, BacktestEngineConfig
    from nautilus_trader.common import LoggerConfig, LogLevel
    from nautilus_trader.execution import MakerTakerFeeModel
    from nautilus_trader.model import AccountType, BarType, Money, OmsType, TraderId, Venue
    from nautilus_trader.risk import RiskEngineConfig
    from nautilus_trader.testkit.providers import TestInstrumentProvider

    from engine.results import records

    instrument = TestInstrumentProvider.btcusdt_perp_binance()
    bar_type = BarType.from_str(f"{instrument.id}-1-MINUTE-LAST-EXTERNAL")
    venue = Venue("BINANCE")
    bars = synthetic_bars(bar_type, instrument, args.bars)
    engine = BacktestEngine(
        BacktestEngineConfig(
            trader_id=TraderId("FILLS-001"),
            logging=LoggerConfig(stdout_level=LogLevel.ERROR),
            risk_engine=RiskEngineConfig(max_order_submit_rate="100000/00:00:01"),
        )
    )
    engine.add_venue(
        venue,
        OmsType.NETTING,
        AccountType.MARGIN,
        [Money.from_str("10000000 USDT")],
        default_leverage=Decimal(3),
        fee_model=MakerTakerFeeModel(Decimal("0.0002"), Decimal("0.0005")),
        bar_execution=True,
    )
    engine.add_instrument(instrument)
    engine.add_strategy(flipper(bar_type, args.every))
    size = -(-len(bars) // args.slices)
    print(f"{args.bars:,} synthetic bars, a flip every {args.every} bars, {args.slices} slices")
    print(
        f"{'slice':>5} {'engine s':>9} {'fills':>8} {'portfolio.account ms':>21} {'balances_total ms':>18} "
        f"{'account events':>15}"
    )
    for index in range(args.slices):
        chunk = bars[index * size : (index + 1) * size]
        engine.add_data(chunk, sort=True)
        started = time.perf_counter()
        engine.run(streaming=True)
        ran = time.perf_counter() - started
        engine.clear_data()
        fills = sum(1 for _ in engine.cache.orders())
        started = time.perf_counter()
        account = engine.portfolio.account(venue)
        fetch_ms = (time.perf_counter() - started) * 1000
        if account is None:
            raise SystemExit(f"expected an account on {venue}, the engine has none")
        started = time.perf_counter()
        account.balances_total()
        read_ms = (time.perf_counter() - started) * 1000
        print(f"{index + 1:>5} {ran:>9.2f} {fills:>8,} {fetch_ms:>21.2f} {read_ms:>18.3f} {account.event_count:>15,}")
    engine.end()
    cache = engine.cache
    orders = cache.orders()
    timings = {}
    started = time.perf_counter()
    records.fills_frame(orders, {str(instrument.id): "binance"}, currency_of={})
    timings["fills_frame"] = time.perf_counter() - started
    started = time.perf_counter()
    records.orders_frame(orders, records.order_reasons(orders))
    timings["orders_frame"] = time.perf_counter() - started
    started = time.perf_counter()
    records.positions_frame(cache.positions(), cache.position_snapshots())
    timings["positions_frame"] = time.perf_counter() - started
    started = time.perf_counter()
    records.account_frame([("binance", cache.account_for_venue(venue))])
    timings["account_frame"] = time.perf_counter() - started
    print(f"project readers on {len(orders):,} orders: " + ", ".join(f"{k} {v:.2f} s" for k, v in timings.items()))
    engine.dispose()


if __name__ == "__main__":
    main()
