"""Print the decode throughput (transactions/s) of ``datasets.onchain.decode`` on the fixture transactions.

The transactions are those of the tests (tests/kit/solana.py): the 19 reconstructed marginfi liquidations,
the 3 real Drift logs wrapped in transactions, and synthetic Drift and Kamino liquidations, valued with a
synthetic price table. Then the account-state decode (``datasets.onchain.account_states``) of the real
account dumps: the 100 Drift users, the Kamino obligation and reserve, the marginfi bank and account. Usage:
``.venv/bin/python -m benchmarks.onchain_decode [--shared ../shared/data] [--rounds 200]``.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl

from datasets.onchain.account_states import decode_states
from datasets.onchain.decode import decode_transaction
from datasets.onchain.idl import PROGRAM_IDS, Idls, load_idls
from datasets.onchain.mints import MintTable
from datasets.onchain.prices import MintPrice, PriceTable
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


# Synthetic prices (not market data): they only make the valuation code run.
PRICES = PriceTable(MintPrice(mint, Decimal(price), "synthetic") for mint, price in ((kit.USDC, 1), (kit.SOL, 150)))
_DUMPS = "solana/solana_decoder_fixtures/marginfi_v2_fixtures"


def _accounts(shared: Path) -> list[tuple[str, pl.DataFrame]]:
    users = json.loads(
        (shared / "solana/solana_decoder_fixtures/drift_sdk_tests/drift_user_account_buffers.json").read_text()
    )
    drift = [(f"user{i}", PROGRAM_IDS["drift"], b) for i, b in enumerate(users["user_account_buffers_base64"])]
    frames = [("drift", drift)]
    for protocol, names in (
        ("kamino", ("test-utils_src_fixtures_kamino_usdc_obligation", "test-utils_src_fixtures_kamino_usdc_reserve")),
        (
            "marginfi",
            (
                "programs_marginfi_tests_fixtures_bank_bank_sample_1",
                "programs_marginfi_tests_fixtures_marginfi_account_marginfi_account_sample_1",
            ),
        ),
    ):
        docs = [json.loads((shared / _DUMPS / f"{name}.json").read_text()) for name in names]
        frames.append((protocol, [(d["pubkey"], d["account"]["owner"], d["account"]["data"][0]) for d in docs]))
    return [(p, pl.DataFrame(rows, schema=["pubkey", "owner", "data_base64"], orient="row")) for p, rows in frames]


def _account_states(shared: Path, idls: Idls, rounds: int) -> str:
    snapshots = _accounts(shared)
    now = datetime(2025, 1, 1, tzinfo=UTC)
    started = time.perf_counter()
    rows = 0
    for _ in range(rounds):
        for protocol, frame in snapshots:
            states = decode_states(frame, protocol=protocol, idls=idls, slot=1, ts=now, source="benchmark")
            rows += len(states.rows)
    elapsed = time.perf_counter() - started
    count = rounds * sum(frame.height for _, frame in snapshots)
    rate = count / elapsed
    return f"account states: {count} accounts in {elapsed:.3f} s: {rate:,.0f} accounts/s, {rows // rounds} rows a round"


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
        decode_transaction(tx, protocol=protocol, idls=idls, mints=mints, prices=PRICES)
    started = time.perf_counter()
    rows = 0
    for _ in range(args.rounds):
        for protocol, tx in corpus:
            rows += len(decode_transaction(tx, protocol=protocol, idls=idls, mints=mints, prices=PRICES).liquidations)
    elapsed = time.perf_counter() - started
    count = args.rounds * len(corpus)
    print(f"IDL load: {load_secs * 1e3:.1f} ms for {sum(len(idls.versions(p)) for p in idls.protocols)} IDL files")
    print(f"decoded {count} transactions ({len(corpus)} distinct) in {elapsed:.3f} s: {count / elapsed:,.0f} tx/s")
    print(f"liquidation rows: {rows // args.rounds} per round")
    print(_account_states(args.shared, idls, max(1, args.rounds // 20)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
