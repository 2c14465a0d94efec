"""Order latency of a replay paper node: signal-to-submit and submit-to-ack, p50/p99 per order.

    .venv/bin/python benchmarks/live_latency.py [--bars 5000] [--dir /tmp/bench-live-latency]

Builds the seeded one-minute catalog of ``benchmarks/backtest.py`` once per directory, replays it at full
speed through a paper ``LiveNode`` (``EmaCross``, which trades often; the sandbox venue), then reads every
order's latencies from the journal's ``order_latency`` table (``engine.live.latency``) and prints their
percentiles. Target: signal-to-submit under 5 ms; submit-to-ack is the venue's (here the in-process
sandbox, so it measures the node's own path to the venue and back).
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
import time
from contextlib import closing
from datetime import timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.backtest import START, build_catalog  # noqa: E402
from engine.backtest import parse_config  # noqa: E402
from engine.live import SessionOptions, run_session  # noqa: E402
from engine.live.latency import percentiles_ms  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bars", type=int, default=5_000)
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "bench-live-latency")
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    catalog = build_catalog(args.dir, args.bars)
    end = START + timedelta(minutes=args.bars + 1)
    config = parse_config(
        f"""
name = "bench-live-latency"
start = {START.isoformat()}
end = {end.isoformat().replace("+00:00", "Z")}
[data]
catalog = "{catalog}"
bar_spec = "1-MINUTE-LAST-EXTERNAL"
mark_prices = false
[[venues]]
name = "binance"
instruments = ["BTC-USDT-PERP"]
starting_balances = ["1000000 USDT"]
leverage = 5
[risk]
max_order_submit_rate = "1000/00:00:01"
[strategy]
path = "strategies.demo:EmaCross"
[strategy.params]
instrument_id = "binance:BTC-USDT-PERP"
fast_period = 10
slow_period = 30
trade_size = "0.01"
""".encode()
    )
    options = SessionOptions(
        mode="paper",
        replay=True,
        speed=0,
        fresh=True,
        out_dir=None,
        state_dir=args.dir / "state",
        install_signal_handlers=False,
    )
    started = time.perf_counter()
    session = run_session(config, options)
    wall = time.perf_counter() - started
    assert session.state_path is not None
    with closing(sqlite3.connect(f"file:{session.state_path}?mode=ro", uri=True)) as connection:
        rows = connection.execute("SELECT signal_to_submit_ns, submit_to_ack_ns, ack FROM order_latency").fetchall()
    signal = [r[0] for r in rows if r[0] is not None]
    ack = [r[1] for r in rows]
    acks = sorted({r[2] for r in rows})
    print(f"replay paper node: {args.bars:,} one-minute bars, {len(rows):,} orders, {wall:.1f} s wall")
    for name, samples in (("signal-to-submit", signal), (f"submit-to-ack ({', '.join(acks)})", ack)):
        figures = percentiles_ms(samples)
        if not figures["count"]:
            print(f"  {name:<28} no samples")
            continue
        print(
            f"  {name:<28} p50 {figures['p50']:8.3f} ms  p99 {figures['p99']:8.3f} ms  "
            f"max {figures['max']:8.3f} ms  (n={figures['count']})"
        )


if __name__ == "__main__":
    main()
