"""Print the decode throughput (transactions/s) of ``datasets.onchain.decode`` on the fixture transactions.

The transactions are those of the tests (tests/kit/solana.py): the 19 reconstructed marginfi liquidations,
the 3 real Drift logs wrapped in transactions, and synthetic Drift and Kamino liquidations. Usage:
``.venv/bin/python -m benchmarks.onchain_decode [--shared ../shared/data] [--rounds 200]``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from datasets.onchain.decode import decode_transaction
from datasets.onchain.idl import load_idls
from datasets.onchain.mints import MintTable
from tests.kit import solana as kit


def _corpus(shared: Path) -> list[tuple[str, dict[str, Any]]]:
    corpus = [("marginfi", tx) for tx in kit.marginfi_liquidation_transactions(shared).values()]
    corpus += [("drift", tx) for tx in kit.drift_log_transactions(shared)]
    user, liquidator, authority = kit.synthetic_key("u"), kit.synthetic_key("l"), kit.synthetic_key("a")
    record = kit.drift_liquidation_record_bytes(
        kind=1, user=user, liquidator=liquidator, spot=(1, 150_000_000, 10**10, 0, 1_000_000, 1_450_000_000, 0)
    )
    args = bytes(4) + (10**9).to_bytes(16, "little") + b"\x00"
    corpus.append(
        (
            "drift",
            kit.drift_liquidation_transaction(
                "5" * 64, "liquidate_spot", args, [record], authority=authority, user=user, liquidator=liquidator
            ),
        )
    )
    corpus.append(
        (
            "kamino",
            kit.kamino_liquidation_transaction(
                "8" * 64, liquidator=liquidator, repay=(kit.USDC, 5 * 10**9, 3 * 10**9), seized=(kit.SOL, 0, 10**10)
            ),
        )
    )
    return corpus


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--shared", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    idls = load_idls(args.shared / "solana" / "solana_idls")
    load_secs = time.perf_counter() - started
    mints = MintTable.default()
    corpus = _corpus(args.shared)
    for protocol, tx in corpus:  # warm: compile the layouts used
        decode_transaction(tx, protocol=protocol, idls=idls, mints=mints)
    started = time.perf_counter()
    rows = 0
    for _ in range(args.rounds):
        for protocol, tx in corpus:
            rows += len(decode_transaction(tx, protocol=protocol, idls=idls, mints=mints).liquidations)
    elapsed = time.perf_counter() - started
    count = args.rounds * len(corpus)
    print(f"IDL load: {load_secs * 1e3:.1f} ms for {sum(len(idls.versions(p)) for p in idls.protocols)} IDL files")
    print(f"decoded {count} transactions ({len(corpus)} distinct) in {elapsed:.3f} s: {count / elapsed:,.0f} tx/s")
    print(f"liquidation rows: {rows // args.rounds} per round")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
