"""fetch-onchain with the real decoders over a loopback node: jsonParsed, USD values from a price table, skips.

The transactions are the 19 real marginfi liquidations of ``marginfi_decoded_events.json``, rebuilt by
``tests/kit/solana.py`` (its docstring says how), served by the loopback JSON-RPC node of
``tests/kit/solana_rpc.py``.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from datasets.cli import main
from datasets.exit_codes import ExitCode
from datasets.onchain.account_states import stored_prices, write_account_states
from datasets.onchain.errors import TransactionFormatError
from datasets.onchain.fetch import PROGRAM_IDS, OnchainFetcher, OnchainReport, load_decoder, plan_onchain
from datasets.onchain.idl import load_idls
from datasets.onchain.prices import MintPrice, PriceTable, PriceTableError, load_prices
from datasets.onchain.progress import Bound, load_progress
from datasets.onchain.rpc import RpcEndpoint, SolanaRpc, TransactionEncoding
from datasets.onchain.skips import load_skips, skips_path
from datasets.onchain.snapshots import snapshot_accounts
from datasets.store import Store
from tests.kit import solana as kit
from tests.kit.solana_rpc import SolanaRpcServer, account_json

SHARED = Path(__file__).resolve().parents[4] / "shared" / "data"
IDLS = SHARED / "solana" / "solana_idls"
MARGINFI = PROGRAM_IDS["marginfi"]
USDC = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"
JITOSOL = "J1toso1uCk3RLmjorhTtrVwY9HJ7X8V9yYac6Y7kGCPn"
FIRST = "64dt9xEoEkrS5ML3Bo5xhpLpJLz7L1BoDJPwTK5XFwbzswtYusiTSgHv1d2rH2o8ao2UzJgVpjgxTHhTuV834iB"
pytestmark = pytest.mark.skipif(not SHARED.is_dir(), reason="needs ../shared/data")
# Synthetic prices, for the arithmetic only (not market data): USDC at its peg, jitoSOL at 190 USD.
PRICES = PriceTable(
    [MintPrice(USDC, Decimal(1), "synthetic test price"), MintPrice(JITOSOL, Decimal(190), "synthetic test price")]
)


@pytest.fixture(scope="module")
def transactions() -> dict[str, dict[str, Any]]:
    return kit.marginfi_liquidation_transactions(SHARED)


def _server(transactions: dict[str, dict[str, Any]]) -> SolanaRpcServer:
    server = SolanaRpcServer(slot=259_000_000)
    for tx in sorted(transactions.values(), key=lambda tx: tx["slot"]):
        server.add_result(tx, program=MARGINFI)
    return server


def _fetch(
    store: Store,
    server: SolanaRpcServer,
    *,
    encoding: TransactionEncoding = "json",
    decoder: Callable[[dict[str, Any]], Any] | None = None,
) -> OnchainReport:
    plan = plan_onchain(store, "marginfi", since=Bound.at_slot(257_000_000), until=None)

    async def run() -> OnchainReport:
        async with SolanaRpc(RpcEndpoint(server.url), timeout_secs=5.0) as rpc:
            fetcher = OnchainFetcher(
                store,
                rpc,
                decoder or load_decoder("marginfi", idls_dir=IDLS, prices=PRICES),
                page_limit=5,
                batch_signatures=4,
                encoding=encoding,
                progress=False,
            )
            return await fetcher.run(plan)

    with server:
        return asyncio.run(run())


def _rows(store: Store, kind: str) -> pl.DataFrame:
    return store.scan(kind).sort("event_id").collect()


def test_jsonparsed_results_decode_to_the_same_rows_as_json(
    tmp_path: Path, transactions: dict[str, dict[str, Any]]
) -> None:
    as_json, as_parsed = Store(tmp_path / "json"), Store(tmp_path / "parsed")
    _fetch(as_json, _server(transactions))
    server = _server(transactions)
    report = _fetch(as_parsed, server, encoding="jsonParsed")
    encodings = {params[1]["encoding"] for method, params in server.log if method == "getTransaction"}
    assert encodings == {"jsonParsed"}
    assert report.transactions == 19
    assert report.liquidations == 19
    parsed = _rows(as_parsed, "liquidations")
    assert parsed.equals(_rows(as_json, "liquidations"))
    assert _rows(as_parsed, "liquidation_extras").equals(_rows(as_json, "liquidation_extras"))
    # the jsonParsed path read the accounts by pubkey: the golden liquidatee and signer of the first one
    first = kit.golden_marginfi_liquidations(SHARED)[0]
    row = parsed.filter(pl.col("tx_signature") == FIRST).row(0, named=True)
    assert (row["account"], row["liquidator"]) == (first.liquidatee_asset["account"], first.liquidator_asset["signer"])


def test_price_table_gives_notional_and_bonus_of_a_real_marginfi_liquidation(
    tmp_path: Path, transactions: dict[str, dict[str, Any]]
) -> None:
    store = Store(tmp_path)
    _fetch(store, _server({FIRST: transactions[FIRST]}))
    row = _rows(store, "liquidations").row(0, named=True)
    extras = _rows(store, "liquidation_extras").row(0, named=True)
    # 64dt9...: the liquidator seized 15,232,047 USDC units (6 decimals) = 15.232047 USDC and the
    # liquidatee's jitoSOL liability fell by 75,905,076 units (9 decimals) = 0.075905076 jitoSOL.
    # The repaid debt is the base (USDC quotes): side short, quantity 0.075905076 JITOSOL.
    assert (row["symbol"], row["side"], row["quantity"]) == ("JITOSOL-USDC", "short", Decimal("0.075905076"))
    # notional = 0.075905076 x 190 = 15.1810152 - 0.75905076 = 14.42196444 USD
    assert row["notional_usd"] == Decimal("14.42196444")
    assert extras["repaid_value_usd"] == Decimal("14.42196444")
    assert extras["seized_value_usd"] == Decimal("15.232047")  # 15.232047 x 1
    # bonus = 15.232047 - 14.42196444 = 0.81008256 USD; / 14.42196444 x 10,000 = 561.70... bps
    assert extras["liquidation_bonus_usd"] == Decimal("0.81008256")
    assert abs(extras["liquidation_bonus_bps"] - Decimal("561.70")) < Decimal("0.01")
    assert extras["price_source"] == "price table: synthetic test price"


def test_without_a_price_the_usd_columns_stay_null(tmp_path: Path, transactions: dict[str, dict[str, Any]]) -> None:
    store = Store(tmp_path)
    only_usdc = PriceTable([MintPrice(USDC, Decimal(1), "synthetic test price")])
    _fetch(
        store, _server({FIRST: transactions[FIRST]}), decoder=load_decoder("marginfi", idls_dir=IDLS, prices=only_usdc)
    )
    row, extras = _rows(store, "liquidations").row(0, named=True), _rows(store, "liquidation_extras").row(0, named=True)
    assert row["notional_usd"] is None
    assert (extras["liquidation_bonus_usd"], extras["price_source"]) == (None, None)


def test_a_transaction_the_decoder_cannot_read_is_a_recorded_skip_not_the_end_of_the_fetch(
    tmp_path: Path, transactions: dict[str, dict[str, Any]]
) -> None:
    store = Store(tmp_path)
    real = load_decoder("marginfi", idls_dir=IDLS)
    broken = sorted(transactions)[3]
    truncated = sorted(transactions)[5]
    served = dict(transactions)
    # A real decode failure: the event body of this one is cut short, so it decodes to no row.
    tx = json.loads(json.dumps(served[truncated]))
    logs = tx["meta"]["logMessages"]
    at = next(i for i, line in enumerate(logs) if line.startswith("Program data: "))
    body = base64.b64decode(logs[at].removeprefix("Program data: "))
    logs[at] = "Program data: " + base64.b64encode(body[:40]).decode()
    served[truncated] = tx

    def decoder(tx: dict[str, Any]) -> Any:
        if tx["transaction"]["signatures"][0] == broken:
            raise TransactionFormatError("expected meta.preTokenBalances as a list, was a string")
        return real(tx)

    report = _fetch(store, _server(served), decoder=decoder)
    assert report.transactions == 19
    assert report.liquidations == 17
    stored = set(_rows(store, "liquidations")["tx_signature"])
    assert stored == set(transactions) - {broken, truncated}
    skips = {skip.signature: skip for skip in load_skips(tmp_path, "marginfi")}
    assert set(skips) >= {broken, truncated}
    assert "the decoder failed: TransactionFormatError: expected meta.preTokenBalances" in skips[broken].reason
    assert skips[broken].slot == transactions[broken]["slot"]
    assert skips[truncated].instruction_index is not None
    # every signature is processed: a re-run asks for nothing, and the skip log gains no line
    lines = skips_path(tmp_path, "marginfi").read_text().count("\n")
    assert load_progress(tmp_path, "marginfi", MARGINFI).spans[0].signatures == 19
    again = _fetch(store, _server(served), decoder=decoder)
    assert again.transactions == 0
    assert skips_path(tmp_path, "marginfi").read_text().count("\n") == lines


def test_price_table_file_errors_name_the_row_and_field(tmp_path: Path) -> None:
    path = tmp_path / "prices.csv"
    path.write_text(f"mint,price_usd,source\n{USDC},1,peg\n{JITOSOL},-3,mine\n")
    with pytest.raises(
        PriceTableError, match=r"prices.csv row 3 field price_usd: expected a positive decimal, was '-3'"
    ):
        load_prices(path)
    path.write_text(f"mint,price\n{USDC},1\n")
    with pytest.raises(PriceTableError, match="expected the header mint,price_usd,source"):
        load_prices(path)
    path.write_text(f"mint,price_usd,source\n{USDC},1,peg\n{USDC},1.01,peg\n")
    with pytest.raises(PriceTableError, match=r"row 3 field mint: .* is listed twice"):
        load_prices(path)
    path.write_text(f"mint,price_usd,source\n{USDC},1.0002,pyth at slot 250000000\n")
    assert load_prices(path).usd(USDC) == Decimal("1.0002")


def test_cli_bad_price_table_exits_with_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "prices.csv"
    path.write_text("mint,price_usd,source\n,1,peg\n")
    argv = ["fetch-onchain", "--store", str(tmp_path / "store"), "--protocol", "marginfi", "--since-slot", "1"]
    code = main([*argv, "--rpc", "http://127.0.0.1:9", "--prices", str(path), "--idls", str(IDLS)])
    err = capsys.readouterr().err
    assert code == ExitCode.BAD_INPUT
    assert "prices.csv row 2: mint and source must be set" in err
    assert "Traceback" not in err


def test_cli_prices_from_the_store_and_a_file_value_a_liquidation(
    tmp_path: Path, transactions: dict[str, dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    store = Store(tmp_path)
    # USDC priced by the real Kamino reserve dump's cached price, read into account_states first.
    dump = json.loads(
        (
            SHARED / "solana/solana_decoder_fixtures/marginfi_v2_fixtures/"
            "test-utils_src_fixtures_kamino_usdc_reserve.json"
        ).read_text()
    )
    accounts = SolanaRpcServer(slot=377_800_000)
    accounts.accounts[dump["pubkey"]] = account_json(
        base64.b64decode(dump["account"]["data"][0]), owner=PROGRAM_IDS["kamino"]
    )

    async def snapshot() -> Path:
        async with SolanaRpc(RpcEndpoint(accounts.url), timeout_secs=5.0) as rpc:
            return (await snapshot_accounts(store, rpc, protocol="kamino", addresses=[dump["pubkey"]])).path

    with accounts:
        write_account_states(store, asyncio.run(snapshot()), idls=load_idls(IDLS))
    usdc = stored_prices(store)[USDC].price_usd
    prices = tmp_path / "prices.csv"
    prices.write_text(f"mint,price_usd,source\n{JITOSOL},190,synthetic test price\n")
    server = _server({FIRST: transactions[FIRST]})
    argv = ["fetch-onchain", "--store", str(tmp_path), "--protocol", "marginfi", "--since-slot", "257000000"]
    argv += ["--idls", str(IDLS), "--prices", str(prices), "--prices-from-store", "--no-progress"]
    with server:
        assert main([*argv, "--rpc", server.url]) == ExitCode.OK
    extras = _rows(store, "liquidation_extras").row(0, named=True)
    assert extras["repaid_value_usd"] == Decimal("14.42196444")  # 0.075905076 jitoSOL x 190 (the file)
    assert extras["seized_value_usd"] == (Decimal("15.232047") * usdc).quantize(Decimal("1e-18"))  # x the reserve's
    assert extras["price_source"] == f"price table: Reserve {dump['pubkey']} at slot 377800000; synthetic test price"
