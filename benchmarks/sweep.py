"""Sweep throughput: the numba carry kernel against vectorbt's generic MA-cross sweep, on the same bars.

    .venv/bin/python benchmarks/sweep.py [--days 365] [--repeat 3] [--with-carry-vbt]

One seeded year of 1-minute bars (525,600): a spot random walk, a perp at a small premium, 8-hourly
funding and per-minute marks. Each side scores a 10 x 10 parameter grid on every bar:

- ``research.carry_kernel.score``: the spot-perp carry (entry_apr x exit_apr, one signal);
- vectorbt: ``MA.run`` fast x slow windows, crossings, ``Portfolio.from_signals`` and ``total_return``.

Prints parameter-bars per second (parameter sets x bars / seconds), cold (first call in this process:
numba compiles, or loads its on-disk cache) and warm (best of ``--repeat`` further calls), one core each.
``--with-carry-vbt`` also times ``research.carry_vbt.sweep`` (the vectorbt carry twin) on 30 days.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import vectorbt as vbt  # noqa: E402

from research.carry_kernel import FundingLeg, TwoLegInputs, full_signals, score, slice_range  # noqa: E402
from research.carry_vbt import CarryInputs, sweep  # noqa: E402

MINUTE_NS = 60_000_000_000
START_NS = 1_640_995_200 * 1_000_000_000  # 2022-01-01T00:00Z


def synthetic(days: int, *, seed: int = 7) -> tuple[np.ndarray, np.ndarray, np.ndarray, FundingLeg]:
    rng = np.random.default_rng(seed)
    n = days * 1440
    ts = START_NS + MINUTE_NS * np.arange(1, n + 1, dtype=np.int64)
    spot = np.round(30_000 * np.exp(np.cumsum(rng.normal(0, 0.0006, n))), 2)
    perp = np.round(spot * (1 + 0.0004 + np.cumsum(rng.normal(0, 2e-6, n))) / 0.1) * 0.1
    settle = START_NS + 8 * 60 * MINUTE_NS * np.arange(1, days * 3 + 1, dtype=np.int64)
    # Persistent regimes of positive and negative funding, so the carry trades all year.
    regime = np.repeat(rng.normal(0.00012, 0.00015, days // 7 + 1), 21)[: settle.size]
    rate = np.round(regime + rng.normal(0, 0.00003, settle.size), 8)
    leg = FundingLeg(
        settle_ns=settle,
        rate=rate,
        interval_secs=np.full(settle.size, 8 * 3600, dtype=np.int64),
        rate_decimal=tuple(Decimal(repr(float(r))) for r in rate),
        mark_ns=ts,
        mark_price=perp,
        bar_ns=ts,
        bar_close=perp,
    )
    return ts, spot, perp, leg


def carry_inputs(ts: np.ndarray, spot: np.ndarray, perp: np.ndarray, leg: FundingLeg) -> TwoLegInputs:
    return TwoLegInputs(
        ts_ns=ts,
        close=np.vstack([spot, perp]),
        tick=np.array([0.01, 0.1]),
        taker=np.array([0.001, 0.0005]),
        multiplier=np.array([1.0, 1.0]),
        contract_places=np.array([5, 3], dtype=np.int64),
        lot_base=0.001,
        funding=(None, leg),
        first_leg_sign=1,
        allow_reverse=True,
        legs=("binance:BTC-USDT", "binance:BTC-USDT-PERP"),
    )


def timed(call: Callable[[], Any], repeat: int) -> tuple[float, float, Any]:
    started = time.perf_counter()
    result = call()
    cold = time.perf_counter() - started
    warm = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        warm.append(time.perf_counter() - started)
    return cold, min(warm), result


def kernel_sweep(inputs: TwoLegInputs) -> Callable[[], np.ndarray]:
    keys = [(6, 0.5)]
    signals = full_signals(inputs, keys)
    piece = slice_range(inputs, signals, keys, start_ns=int(inputs.ts_ns[0]), end_ns=int(inputs.ts_ns[-1]) + 1)
    entry, exit_ = np.linspace(0.05, 0.50, 10), np.linspace(-0.05, 0.04, 10)
    rows = np.array([[0, e, x, 0.0394, 2160 * 3600] for e in entry for x in exit_])
    return lambda: score(piece, rows, notional=40_000, slippage_bps=1.0)


def vectorbt_sweep(ts: np.ndarray, close: np.ndarray) -> Callable[[], pd.Series]:
    series = pd.Series(close, index=pd.to_datetime(ts, utc=True))
    fast_windows, slow_windows = np.arange(5, 55, 5), np.arange(60, 560, 50)

    def run() -> pd.Series:
        fast = vbt.MA.run(series, window=np.repeat(fast_windows, 10), short_name="fast")
        slow = vbt.MA.run(series, window=np.tile(slow_windows, 10), short_name="slow")
        above = fast.ma.to_numpy() > slow.ma.to_numpy()
        previous = np.vstack([np.zeros((1, above.shape[1]), dtype=bool), above[:-1]])
        entries, exits = above & ~previous, ~above & previous
        portfolio = vbt.Portfolio.from_signals(series, entries, exits, fees=0.001, freq="1min")
        return portfolio.total_return()

    return run


def carry_vbt_sweep(
    ts: np.ndarray, spot: np.ndarray, perp: np.ndarray, leg: FundingLeg, days: int
) -> Callable[[], Any]:
    n = days * 1440
    inside = leg.settle_ns <= ts[n - 1]
    inputs = CarryInputs(
        ts_ns=ts[:n],
        spot_close=spot[:n],
        perp_close=perp[:n],
        settle_ns=leg.settle_ns[inside],
        settle_rate=leg.rate[inside],
        settle_interval_secs=leg.interval_secs[inside],
        settle_rate_decimal=leg.rate_decimal[: int(inside.sum())],
        mark_ns=ts[:n],
        mark_price=perp[:n],
        perp_bar_ns=ts[:n],
        perp_bar_close=perp[:n],
        spot_tick=Decimal("0.01"),
        perp_tick=Decimal("0.10"),
        spot_lot=Decimal("0.00001"),
        perp_lot=Decimal("0.001"),
        perp_multiplier=Decimal(1),
        spot_taker=0.001,
        perp_taker=0.0005,
    )
    base = {
        "notional": 40_000.0,
        "lookback_settlements": 6,
        "predicted_weight": 0.5,
        "round_trip_cost_bps": 32.0,
        "cost_horizon_days": 30.0,
        "max_holding_hours": 2160,
        "slippage_bps": 1.0,
        "allow_short_spot": True,
    }
    combos = [{"entry_apr": e, "exit_apr": 0.0} for e in (0.10, 0.20)]
    return lambda: sweep(inputs, combos, base=base)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--with-carry-vbt", action="store_true")
    args = parser.parse_args(argv)
    ts, spot, perp, leg = synthetic(args.days)
    bars = ts.size
    print(f"{bars:,} one-minute bars, 10 x 10 parameter grid ({100 * bars:,} parameter-bars per sweep)")
    cold, warm, out = timed(kernel_sweep(carry_inputs(ts, spot, perp, leg)), args.repeat)
    kernel_rate = 100 * bars / warm
    print(
        f"carry kernel (numba):          cold {100 * bars / cold:>14,.0f}   warm {kernel_rate:>14,.0f} parameter-bars/s"
    )
    print(f"  fills per set: {np.median(out[:, 4]):.0f} median")
    cold_v, warm_v, _ = timed(vectorbt_sweep(ts, spot), args.repeat)
    vbt_rate = 100 * bars / warm_v
    print(
        f"vectorbt MA cross from_signals: cold {100 * bars / cold_v:>14,.0f}   warm {vbt_rate:>14,.0f} parameter-bars/s"
    )
    print(f"kernel / vectorbt, warm: {kernel_rate / vbt_rate:.1f}x (target >= 20x)")
    if args.with_carry_vbt:
        days = min(30, args.days)
        _, warm_c, _ = timed(carry_vbt_sweep(ts, spot, perp, leg, days), 1)
        print(f"research.carry_vbt.sweep ({days} days): warm {2 * days * 1440 / warm_c:>14,.0f} parameter-bars/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
