"""Print the RPC request counts of a one-day ``fetch-onchain`` plan, first run and re-run, on the loopback node.

The history is synthetic (labelled so; ``tests/kit/solana_rpc.py``): ``--signatures`` program signatures over
one day, every 33rd failed on chain, ``--newer`` more above the day's end; the fetch asks for the day by
slot (``--since-slot``/``--until-slot``), so the walk seeks to the day's end with ``getBlock``. Decoded with the
test kit's stub decoder. Usage: ``.venv/bin/python -m benchmarks.onchain_requests [--signatures 5000] [--newer 3000]``.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path

from datasets.onchain.fetch import PROGRAM_IDS, OnchainFetcher, OnchainPlan, plan_onchain
from datasets.onchain.progress import Bound
from datasets.onchain.rpc import RpcEndpoint, SolanaRpc
from datasets.store import Store
from tests.kit.solana_rpc import LIQUIDATE_LOG, SolanaRpcServer, TransactionSpec, pubkey, stub_decoder

PROGRAM = PROGRAM_IDS["kamino"]
FIRST_SLOT = 300_000_000
DAY_START = 1_728_518_400  # 2024-10-10T00:00:00Z


def _history(day: int, newer: int) -> list[TransactionSpec]:
    return [
        TransactionSpec(
            name=f"synthetic {i}",
            slot=FIRST_SLOT + 2 * i + 1,
            block_time=DAY_START + 86_400 * i // day,
            program=PROGRAM,
            static_keys=(pubkey(f"payer {i}"), pubkey(f"obligation {i}"), pubkey(f"liquidator {i}"), PROGRAM),
            accounts=(1, 2),
            logs=(LIQUIDATE_LOG,) if i % 50 == 0 else ("Program log: Instruction: RefreshReserve",),
            failed=i % 33 == 5,
        )
        for i in range(day + newer)
    ]


async def _fetch(store: Store, url: str, plan: OnchainPlan) -> None:
    async with SolanaRpc(RpcEndpoint(url), timeout_secs=30.0) as rpc:
        await OnchainFetcher(store, rpc, stub_decoder("kamino"), progress=False).run(plan)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--signatures", type=int, default=5_000)
    parser.add_argument("--newer", type=int, default=3_000)
    args = parser.parse_args(argv)
    history = _history(args.signatures, args.newer)
    server = SolanaRpcServer(slot=FIRST_SLOT + 2 * len(history) + 10)
    for spec in history:
        server.add(spec)
    failed = sum(spec.failed for spec in history[: args.signatures])
    since, until = Bound.at_slot(FIRST_SLOT), Bound.at_slot(FIRST_SLOT + 2 * args.signatures + 1)
    print(f"S = {args.signatures:,} signatures in the day, F = {failed:,} failed, {args.newer:,} newer above it")
    with tempfile.TemporaryDirectory() as root, server:
        store = Store(Path(root))
        for label in ("first run", "second run"):
            plan = plan_onchain(store, "kamino", since=since, until=until)
            before = dict(server.calls)

            asyncio.run(_fetch(store, server.url, plan))
            calls = {method: n - before.get(method, 0) for method, n in server.calls.items()}
            print(f"{label}: " + ", ".join(f"{method} {n:,}" for method, n in sorted(calls.items()) if n))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
