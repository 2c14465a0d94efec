"""fetch-onchain against a loopback Solana JSON-RPC node: paging, retries, lookup tables, resume, kill -9."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from datasets.acquire.errors import PlanError, RetryExhaustedError
from datasets.acquire.retry import RetryPolicy
from datasets.cli import main
from datasets.exit_codes import ExitCode
from datasets.onchain.fetch import PROGRAM_IDS, OnchainFetcher, OnchainReport, load_decoder, plan_onchain
from datasets.onchain.progress import Bound, load_progress, progress_path
from datasets.onchain.rpc import MalformedRpcResponseError, RpcEndpoint, RpcError, SolanaRpc
from datasets.onchain.snapshots import account_discriminator, snapshot_accounts
from datasets.store import Store
from tests.kit import solana as solana_kit
from tests.kit.solana_rpc import (
    LIQUIDATE_LOG,
    SYSTEM_PROGRAM,
    Lookup,
    RpcFault,
    SolanaRpcServer,
    TransactionSpec,
    account_json,
    lookup_table_account,
    pubkey,
    stub_decoder,
)

PROGRAM = PROGRAM_IDS["kamino"]
DAY = int(datetime(2024, 10, 10, tzinfo=UTC).timestamp())
SINCE_DAY = Bound.at_time(datetime(2024, 10, 10, tzinfo=UTC))
FIRST_SLOT = 293_000_000
REPO = Path(__file__).resolve().parents[3]
SHARED = REPO.parent / "shared" / "data"
IDL_DIR = SHARED / "solana" / "solana_idls"
TABLE = pubkey("lookup table")
LOADED = [pubkey(f"loaded {i}") for i in range(4)]


def _tx(
    index: int, *, liquidation: bool, failed: bool = False, version: str = "legacy", **extra: Any
) -> TransactionSpec:
    keys = (pubkey(f"payer {index}"), pubkey(f"obligation {index}"), pubkey(f"liquidator {index}"), PROGRAM)
    return TransactionSpec(
        name=f"tx {index}",
        slot=FIRST_SLOT + 10 * index,
        block_time=DAY + 3_600 * index,
        program=PROGRAM,
        static_keys=extra.pop("static_keys", keys),
        accounts=extra.pop("accounts", (1, 2)),
        logs=(LIQUIDATE_LOG,) if liquidation else ("Program log: Instruction: RefreshReserve",),
        failed=failed,
        version=0 if version == "v0" else "legacy",
        **extra,
    )


def _history() -> list[TransactionSpec]:
    """Twenty transactions over a day, oldest first: liquidations every third, one failed, two v0 with lookups."""
    specs = []
    for index in range(20):
        if index == 7:
            # v0: the liquidator is the second writable address loaded from the lookup table.
            specs.append(
                _tx(
                    index,
                    liquidation=True,
                    version="v0",
                    static_keys=(pubkey("payer 7"), pubkey("obligation 7"), PROGRAM),
                    accounts=(1, 4),
                    lookups=(Lookup(TABLE, writable=(0, 2), readonly=(3,)),),
                    loaded_writable=(LOADED[0], LOADED[2]),
                    loaded_readonly=(LOADED[3],),
                )
            )
        elif index == 13:
            # v0 from a node that leaves meta.loadedAddresses out: the fetch reads the lookup table itself.
            specs.append(
                _tx(
                    index,
                    liquidation=True,
                    version="v0",
                    static_keys=(pubkey("payer 13"), pubkey("obligation 13"), PROGRAM),
                    accounts=(1, 3),
                    lookups=(Lookup(TABLE, writable=(1,), readonly=()),),
                    loaded_writable=(LOADED[1],),
                    send_loaded_addresses=False,
                )
            )
        elif index == 10:
            specs.append(_tx(index, liquidation=True, failed=True))  # failed on chain: never fetched
        else:
            specs.append(_tx(index, liquidation=index % 3 == 0))
    return specs


def _server(specs: list[TransactionSpec] | None = None, **kwargs: Any) -> SolanaRpcServer:
    server = SolanaRpcServer(slot=FIRST_SLOT + 1_000, **kwargs)
    for spec in specs if specs is not None else _history():
        server.add(spec)
    server.accounts[TABLE] = lookup_table_account(LOADED, authority=pubkey("table authority"))
    return server


class _Sleeps:
    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, secs: float) -> None:
        self.waits.append(secs)


def _fetch(
    store: Store,
    server: SolanaRpcServer,
    *,
    since: Bound | None = SINCE_DAY,
    until: Bound | None = None,
    attempts: int = 6,
    timeout_secs: float = 5.0,
    decoder: Callable[[dict[str, Any]], Any] | None = None,
    sleeps: _Sleeps | None = None,
) -> OnchainReport:
    plan = plan_onchain(store, "kamino", since=since, until=until)

    async def run() -> OnchainReport:
        rpc = SolanaRpc(
            RpcEndpoint(server.url),
            timeout_secs=timeout_secs,
            retry=RetryPolicy(attempts=attempts),
            sleep=sleeps or _Sleeps(),
        )
        async with rpc:
            fetcher = OnchainFetcher(
                store,
                rpc,
                decoder or stub_decoder("kamino"),
                page_limit=4,
                batch_signatures=3,
                concurrency=3,
                progress=False,
            )
            return await fetcher.run(plan)

    return asyncio.run(run())


def _liquidations(store: Store) -> pl.DataFrame:
    return store.scan("liquidations", venue="solana").sort("ts").collect()


def _expected_liquidations() -> list[str]:
    return [spec.signature for spec in _history() if LIQUIDATE_LOG in spec.logs and not spec.failed]


def test_fetch_through_429_node_behind_reset_and_timeout_stores_each_liquidation_once(tmp_path: Path) -> None:
    store, sleeps = Store(tmp_path), _Sleeps()
    faults = [
        RpcFault("getSignaturesForAddress", "http_429"),
        RpcFault("getSignaturesForAddress", "node_behind", after=2),
        RpcFault("getTransaction", "reset", after=3),
        RpcFault("getTransaction", "http_503", after=6),
        RpcFault("getTransaction", "slow", after=9, delay_secs=1.0),
    ]
    with _server(faults=faults) as server:
        report = _fetch(store, server, timeout_secs=0.4, sleeps=sleeps)
        fetched = server.signatures_fetched()

    stored = _liquidations(store)
    assert stored["tx_signature"].to_list() == _expected_liquidations()
    assert stored["event_id"].is_unique().all()
    failed = _history()[10].signature
    assert failed not in fetched, "a transaction that failed on chain is never fetched"
    # Every non-failed signature answered once, plus one retry for each of the three faults on getTransaction.
    assert len(fetched) == 19 + 3
    assert len(set(fetched)) == 19
    assert (report.signatures, report.failed, report.transactions) == (20, 1, 19)
    # Retry-After: 1 on the 429 outweighs the first 1 s backoff; every other fault waits the first backoff.
    assert sleeps.waits == [1.0, 1.0, 1.0, 1.0, 1.0]
    assert "4 retried" not in report.rpc
    assert "5 retried" in report.rpc


def test_lookup_table_addresses_complete_the_account_keys_of_v0_transactions(tmp_path: Path) -> None:
    store = Store(tmp_path)
    with _server() as server:
        _fetch(store, server)
        multiple = [params for method, params in server.log if method == "getMultipleAccounts"]
    rows = {row["tx_signature"]: row for row in _liquidations(store).iter_rows(named=True)}
    history = _history()
    assert rows[history[7].signature]["liquidator"] == LOADED[2]  # from meta.loadedAddresses
    assert rows[history[13].signature]["liquidator"] == LOADED[1]  # read from the table account itself
    assert multiple == [[[TABLE], {"encoding": "base64", "commitment": "finalized"}]]


def test_second_run_makes_zero_get_transaction_calls(tmp_path: Path) -> None:
    store = Store(tmp_path)
    with _server() as server:
        _fetch(store, server)
    first = store.files("liquidations")
    before = {path: path.read_bytes() for path in first}
    with _server() as server:
        report = _fetch(store, server)
        calls = dict(server.calls)
    assert calls == {"getSlot": 1, "getSignaturesForAddress": 1}
    assert report.transactions == 0
    assert {path: path.read_bytes() for path in store.files("liquidations")} == before
    progress = load_progress(tmp_path, "kamino", PROGRAM)
    assert len(progress.spans) == 1
    assert progress.spans[0].signatures == 20


def test_a_rerun_fetches_only_the_signatures_added_since(tmp_path: Path) -> None:
    store = Store(tmp_path)
    with _server() as server:
        _fetch(store, server)
    newer = [_tx(20, liquidation=True), _tx(21, liquidation=False)]
    with _server([*_history(), *newer]) as server:
        report = _fetch(store, server, since=None)
        fetched = server.signatures_fetched()
    # getTransaction calls run concurrently: compare the set fetched, not the order the server saw them in.
    assert sorted(fetched) == sorted([newer[1].signature, newer[0].signature])
    assert report.liquidations == 1
    assert _liquidations(store)["tx_signature"].to_list() == [*_expected_liquidations(), newer[0].signature]
    spans = load_progress(tmp_path, "kamino", PROGRAM).spans
    assert len(spans) == 1
    assert spans[0].signatures == 22, "the new span joined the stored one"


def test_an_earlier_since_fetches_only_what_lies_before_the_stored_span(tmp_path: Path) -> None:
    store = Store(tmp_path)
    with _server() as server:
        _fetch(store, server, since=Bound.at_time(datetime(2024, 10, 10, 12, tzinfo=UTC)))
        first = server.signatures_fetched()
    assert len(first) == 8  # hours 12..19
    with _server() as server:
        _fetch(store, server, since=Bound.at_slot(FIRST_SLOT))
        second = server.signatures_fetched()
        second_pages = [params[1] for method, params in server.log if method == "getSignaturesForAddress"]
    assert set(first).isdisjoint(second)
    assert len(first) + len(second) == 19
    assert second_pages[1]["before"] == _history()[12].signature, "the tail starts below the stored span"
    assert _liquidations(store)["tx_signature"].to_list() == _expected_liquidations()


def test_until_bound_leaves_newer_signatures_for_a_later_run(tmp_path: Path) -> None:
    store = Store(tmp_path)
    with _server() as server:
        _fetch(store, server, until=Bound.at_slot(FIRST_SLOT + 100))
        first = server.signatures_fetched()
    assert sorted(first) == sorted(s.signature for s in _history()[:10])
    with _server() as server:
        _fetch(store, server, since=None)
        second = server.signatures_fetched()
    assert sorted(second) == sorted(s.signature for s in _history()[11:])
    spans = load_progress(tmp_path, "kamino", PROGRAM).spans
    assert len(spans) == 1
    assert spans[0].signatures == 20


def test_a_past_range_seeks_to_its_end_instead_of_paging_down_from_the_tip(tmp_path: Path) -> None:
    store = Store(tmp_path)
    until = FIRST_SLOT + 57  # a multiple of 7 without a transaction: the loopback leader skipped it (-32007)
    with _server() as server:
        report = _fetch(store, server, until=Bound.at_slot(until))
        first = server.signatures_fetched()
        blocks = [params[0] for method, params in server.log if method == "getBlock"]
        pages = [params[1] for method, params in server.log if method == "getSignaturesForAddress"]
    # The next block, slot +58, is the seek point: its first signature as `before` lists transactions 5..0
    # (slots +50..+0), six signatures in pages of four: 2 pages, none spent on the 14 signatures above.
    assert blocks == [until, until + 1]
    assert pages[0]["before"] not in {spec.signature for spec in _history()}
    assert len(pages) == 2
    assert sorted(first) == sorted(spec.signature for spec in _history()[:6])
    assert report.signatures == 6
    with _server() as server:
        _fetch(store, server, since=None)
        second = server.signatures_fetched()
    assert sorted(second) == sorted(s.signature for s in _history()[6:] if not s.failed)
    assert _liquidations(store)["tx_signature"].to_list() == _expected_liquidations()
    spans = load_progress(tmp_path, "kamino", PROGRAM).spans
    assert [span.signatures for span in spans] == [20]


def test_a_crash_mid_run_resumes_at_the_last_written_batch(tmp_path: Path) -> None:
    store = Store(tmp_path)
    decode = stub_decoder("kamino")
    seen: list[str] = []

    def crashing(tx: dict[str, Any]) -> Any:
        seen.append(tx["transaction"]["signatures"][0])
        if len(seen) == 8:
            raise RuntimeError("decoder crashed")
        return decode(tx)

    with _server() as server, pytest.raises(RuntimeError, match="decoder crashed"):
        _fetch(store, server, decoder=crashing)
    written = load_progress(tmp_path, "kamino", PROGRAM).spans[0].signatures
    assert written == 7  # batches of at most three inside pages of four: 3 + 1 + 3
    with _server() as server:
        _fetch(store, server)
        again = server.signatures_fetched()
    processed_before = {s.signature for s in _history()[::-1][:written]}
    assert processed_before.isdisjoint(again)
    assert _liquidations(store)["tx_signature"].to_list() == _expected_liquidations()


def test_a_non_transient_rpc_error_fails_with_its_code_and_message(tmp_path: Path) -> None:
    store = Store(tmp_path)
    fault = RpcFault("getTransaction", "rpc_error", after=4, code=-32602, message="Invalid param: WrongSize")
    with _server(faults=[fault]) as server, pytest.raises(RpcError, match=r"JSON-RPC error -32602.*WrongSize") as err:
        _fetch(store, server)
    assert err.value.code == -32602
    assert load_progress(tmp_path, "kamino", PROGRAM).spans[0].signatures == 4, "the batches before it are kept"


def test_a_node_that_keeps_rate_limiting_exhausts_the_retries(tmp_path: Path) -> None:
    store = Store(tmp_path)
    with (
        _server(faults=[RpcFault("getSlot", "http_429", times=5)]) as server,
        pytest.raises(RetryExhaustedError, match=r"getSlot on http://127\.0\.0\.1:\d+: gave up after 3 attempts"),
    ):
        _fetch(store, server, attempts=3)


def test_loaded_addresses_that_disagree_with_the_lookups_are_refused(tmp_path: Path) -> None:
    bad = _tx(
        0,
        liquidation=True,
        version="v0",
        static_keys=(pubkey("payer"), pubkey("obligation"), PROGRAM),
        accounts=(1, 3),
        lookups=(Lookup(TABLE, writable=(0, 1)),),
        loaded_writable=(LOADED[0],),
    )
    with _server([bad]) as server, pytest.raises(MalformedRpcResponseError, match="expected 2 writable and 0"):
        _fetch(Store(tmp_path), server)


@pytest.mark.skipif(not IDL_DIR.is_dir(), reason="needs ../shared/data/solana")
def test_the_real_decoders_through_the_fetch_store_what_they_decode_directly(tmp_path: Path) -> None:
    # marginfi's 19 reconstructed liquidations (tests.kit.solana) among plain transactions, oldest first.
    built = sorted(solana_kit.marginfi_liquidation_transactions(SHARED).values(), key=lambda tx: tx["slot"])
    marginfi = PROGRAM_IDS["marginfi"]
    server = SolanaRpcServer(slot=built[-1]["slot"] + 100)
    for position, tx in enumerate(built):
        server.add_result(tx, program=marginfi)
        plain = TransactionSpec(
            name=f"plain {position}",
            slot=tx["slot"],
            block_time=tx["blockTime"],
            program=marginfi,
            static_keys=(pubkey(f"payer {position}"), marginfi),
            accounts=(0,),
        )
        server.add(plain)
    decoder = load_decoder("marginfi", idls_dir=IDL_DIR)
    direct = [row for tx in built for row in decoder(tx).liquidations]
    store = Store(tmp_path)
    plan = plan_onchain(store, "marginfi", since=Bound.at_slot(built[0]["slot"]), until=None)

    async def run() -> OnchainReport:
        async with SolanaRpc(RpcEndpoint(server.url), timeout_secs=5.0) as rpc:
            fetcher = OnchainFetcher(store, rpc, decoder, page_limit=10, batch_signatures=4, progress=False)
            return await fetcher.run(plan)

    with server:
        report = asyncio.run(run())
    stored = store.scan("liquidations", venue="solana").collect()
    assert report.transactions == 38
    assert report.liquidations == len(direct) > 0
    assert sorted(stored["event_id"].to_list()) == sorted(row["event_id"] for row in direct)
    assert stored["protocol"].unique().to_list() == ["marginfi"]
    extras = store.scan("liquidation_extras", venue="solana").collect()
    assert extras.height == report.extras > 0
    assert set(extras["event_id"].to_list()) <= set(stored["event_id"].to_list())


def test_the_first_fetch_needs_a_start() -> None:
    with pytest.raises(PlanError, match="nothing fetched yet, so --since or --since-slot is needed"):
        plan_onchain(Store("/nonexistent/store"), "kamino", since=None, until=None)


def test_cli_dry_run_and_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fetch-onchain", "--store", str(tmp_path), "--protocol", "drift", "--dry-run"]) == ExitCode.USAGE
    assert "--since or --since-slot is needed" in capsys.readouterr().err
    argv = ["fetch-onchain", "--store", str(tmp_path), "--protocol", "drift", "--since", "2024-10-10", "--dry-run"]
    assert main(argv) == ExitCode.OK
    assert "head: below the tip down to the range start" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["fetch-onchain", "--protocol", "drift", "--since", "2024-10-10", "--since-slot", "5"])


def test_rpc_url_keeps_its_secret_out_of_logs_and_lineage(tmp_path: Path) -> None:
    endpoint = RpcEndpoint.resolve("https://mainnet.example-rpc.com/v1/SECRET?api-key=SECRET")
    assert endpoint.public == "https://mainnet.example-rpc.com"
    assert "SECRET" not in repr(endpoint)
    store = Store(tmp_path)
    with _server() as server:
        _fetch(store, server)
    lineage = [entry for info in store.partitions("liquidations") for entry in info.lineage]
    assert lineage
    assert all(entry.extra["endpoint"].startswith("http://127.0.0.1:") for entry in lineage)
    assert {entry.extra["protocol"] for entry in lineage} == {"kamino"}
    assert all(entry.extra["fetched_at"] for entry in lineage)


def test_account_snapshots_through_get_program_accounts_and_get_multiple_accounts(tmp_path: Path) -> None:
    store = Store(tmp_path)
    obligation = account_discriminator("Obligation") + bytes(40)
    reserve = account_discriminator("Reserve") + bytes(24)
    server = _server([])
    server.accounts.update(
        {
            pubkey("obligation A"): account_json(obligation, owner=PROGRAM),
            pubkey("obligation B"): account_json(obligation, owner=PROGRAM),
            pubkey("reserve"): account_json(reserve, owner=PROGRAM),
            pubkey("someone else"): account_json(obligation, owner=SYSTEM_PROGRAM),
        }
    )

    async def run() -> tuple[Any, Any]:
        async with SolanaRpc(RpcEndpoint(server.url), timeout_secs=5.0) as rpc:
            typed = await snapshot_accounts(store, rpc, protocol="kamino", account_type="Obligation")
            chosen = await snapshot_accounts(
                store, rpc, protocol="kamino", addresses=[pubkey("reserve"), pubkey("closed")]
            )
            return typed, chosen

    with server:
        typed, chosen = asyncio.run(run())
    assert typed.accounts == 2
    assert sorted(pl.read_parquet(typed.path)["pubkey"].to_list()) == sorted(
        [pubkey("obligation A"), pubkey("obligation B")]
    )
    assert chosen.accounts == 1
    assert chosen.missing == 1
    assert pl.read_parquet(chosen.path)["space"].to_list() == [32]
    assert [kind for kind in os.listdir(tmp_path) if (tmp_path / kind).is_dir()] == []


def test_kill_9_mid_fetch_then_rerun_stores_each_liquidation_once(tmp_path: Path) -> None:
    # Larger history, so the kill lands mid-run: 120 transactions, a liquidation in every fifth.
    specs = [_tx(i, liquidation=i % 5 == 0) for i in range(120)]
    expected = [s.signature for s in specs if i_of(s) % 5 == 0]
    argv = [
        "fetch-onchain",
        "--store",
        str(tmp_path),
        "--protocol",
        "kamino",
        "--since",
        "2024-10-10",
        "--page-size",
        "10",
        "--batch-signatures",
        "5",
        "--concurrency",
        "2",
        "--no-progress",
    ]
    with _server(specs) as server:
        child = _cli(argv, server.url)
        assert server.wait_served("getTransaction", 37), "the child fetched too little before the kill"
        child.send_signal(signal.SIGKILL)
        child.communicate(timeout=30)
        assert child.returncode == -signal.SIGKILL
        first = server.signatures_fetched()
        done = load_progress(tmp_path, "kamino", PROGRAM).spans[0].signatures
        assert 0 < done < 120
    with _server(specs) as server:
        rerun = _cli(argv, server.url)
        _, err = rerun.communicate(timeout=120)
        assert rerun.returncode == 0, err
        second = server.signatures_fetched()
    committed = {s.signature for s in specs[::-1][:done]}
    assert committed.isdisjoint(second), "nothing written before the kill is fetched again"
    assert set(first) | set(second) == {s.signature for s in specs}
    assert len(set(first) & set(second)) <= 5 + 2, "only the batch cut by the kill is fetched again"
    stored = _liquidations(Store(tmp_path))
    assert sorted(stored["tx_signature"].to_list()) == sorted(expected)
    assert stored["event_id"].is_unique().all()
    with _server(specs) as server:
        third = _cli(argv, server.url)
        third.communicate(timeout=60)
        assert third.returncode == 0
        assert server.calls["getTransaction"] == 0
    record = json.loads(progress_path(tmp_path, "kamino").read_text())
    assert len(record["spans"]) == 1
    assert record["spans"][0]["signatures"] == 120


def i_of(spec: TransactionSpec) -> int:
    return int(spec.name.split()[1])


def _cli(argv: list[str], url: str) -> subprocess.Popen[str]:
    env = {**os.environ, "SOLANA_RPC_URL": url, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-m", "tests.kit.solana_rpc", *argv],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
