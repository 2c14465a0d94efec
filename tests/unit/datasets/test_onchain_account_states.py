"""Account snapshots decoded into the typed ``account_states`` kind, and Drift health from a market table.

The accounts are the real dumps of ../shared/data/solana/solana_decoder_fixtures (Kamino obligation and
reserve, marginfi bank and account, Drift users), served by the loopback node of tests/kit/solana_rpc.py.
The Drift market tables are synthetic (labelled so): the fixtures hold no Drift market accounts.
"""

from __future__ import annotations

import asyncio
import base64
import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from datasets.cli import main
from datasets.exit_codes import ExitCode
from datasets.onchain.account_states import stored_prices, write_account_states
from datasets.onchain.errors import AccountDecodeError, InputFileError
from datasets.onchain.health import DriftMarkets, DriftPerpMarket, DriftSpotMarket, drift_health, load_drift_markets
from datasets.onchain.idl import PROGRAM_IDS, Idls, load_idls
from datasets.onchain.prices import MintPrice, PriceTable
from datasets.onchain.rpc import RpcEndpoint, SolanaRpc
from datasets.onchain.snapshots import snapshot_accounts
from datasets.onchain.states import decode_account, decode_pyth_price, i80f48
from datasets.store import LINEAGE_KEY, Store
from tests.kit.solana_rpc import SolanaRpcServer, account_json

SHARED = Path(__file__).resolve().parents[4] / "shared" / "data" / "solana"
FIXTURES = SHARED / "solana_decoder_fixtures"
DUMPS = FIXTURES / "marginfi_v2_fixtures"
USDC = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"
SOL = "So11111111111111111111111111111111111111112"
JITOSOL = "J1toso1uCk3RLmjorhTtrVwY9HJ7X8V9yYac6Y7kGCPn"
NOW = datetime(2025, 11, 4, 12, tzinfo=UTC)
pytestmark = pytest.mark.skipif(not SHARED.is_dir(), reason="needs ../shared/data/solana")


@pytest.fixture(scope="module")
def idls() -> Idls:
    return load_idls(SHARED / "solana_idls")


def _dump(name: str) -> tuple[str, dict[str, Any]]:
    document = json.loads((DUMPS / name).read_text())
    raw = base64.b64decode(document["account"]["data"][0])
    return document["pubkey"], account_json(raw, owner=document["account"]["owner"])


def _snapshot(store: Store, protocol: str, accounts: dict[str, dict[str, Any]]) -> Path:
    server = SolanaRpcServer(slot=377_800_000)
    server.accounts.update(accounts)

    async def run() -> Path:
        async with SolanaRpc(RpcEndpoint(server.url), timeout_secs=5.0) as rpc:
            snapshot = await snapshot_accounts(store, rpc, protocol=protocol, addresses=sorted(accounts), now=NOW)
            return snapshot.path

    with server:
        return asyncio.run(run())


def _drift_users() -> list[bytes]:
    buffers = json.loads((FIXTURES / "drift_sdk_tests" / "drift_user_account_buffers.json").read_text())
    return [base64.b64decode(b) for b in buffers["user_account_buffers_base64"]]


# Synthetic market table (not market data): USDC at 1 with weights 1, SOL at 100 with maintenance weights
# 0.9 / 1.1, interest indices at 1.0 (1e10) except USDC deposits at 1.016; SOL-PERP at 100 with a 5 % ratio.
MARKETS = DriftMarkets(
    source="synthetic test table",
    spot=[
        DriftSpotMarket(
            market_index=0,
            mint=USDC,
            decimals=6,
            oracle_price=Decimal(1),
            cumulative_deposit_interest=10_160_000_000,
            cumulative_borrow_interest=10_000_000_000,
            maintenance_asset_weight=Decimal(1),
            maintenance_liability_weight=Decimal(1),
        ),
        DriftSpotMarket(
            market_index=1,
            mint=SOL,
            decimals=9,
            oracle_price=Decimal(100),
            cumulative_deposit_interest=10_000_000_000,
            cumulative_borrow_interest=10_000_000_000,
            maintenance_asset_weight=Decimal("0.9"),
            maintenance_liability_weight=Decimal("1.1"),
        ),
    ],
    perp=[
        DriftPerpMarket(
            market_index=0,
            oracle_price=Decimal(100),
            margin_ratio_maintenance=Decimal("0.05"),
            unrealized_pnl_maintenance_asset_weight=Decimal(1),
        )
    ],
)


def test_kamino_snapshot_becomes_typed_rows_once(tmp_path: Path, idls: Idls) -> None:
    store = Store(tmp_path)
    obligation_key, obligation = _dump("test-utils_src_fixtures_kamino_usdc_obligation.json")
    reserve_key, reserve = _dump("test-utils_src_fixtures_kamino_usdc_reserve.json")
    path = _snapshot(store, "kamino", {obligation_key: obligation, reserve_key: reserve})
    summary, states = write_account_states(store, path, idls=idls)
    assert states.skips == []
    rows = store.scan("account_states", venue="solana", protocol="kamino").sort("account_type").collect()
    assert rows["account_type"].to_list() == ["Obligation", "Reserve"]
    deposit, reserve_row = rows.row(0, named=True), rows.row(1, named=True)
    reserve_fields = decode_account(base64.b64decode(reserve["data"][0]), protocol="kamino", idls=idls).fields
    assert (deposit["position"], deposit["position_kind"], deposit["position_market"]) == (0, "deposit", reserve_key)
    assert deposit["mint"] == reserve_fields["collateral"]["mint_pubkey"]  # a deposit is held in cTokens
    assert deposit["authority"] == "HRpCJaTjXMgxsDAHSLHTQigUmezEitySEf6SWWmLsiNY"  # the dump's obligation owner
    assert (deposit["slot"], deposit["ts"]) == (377_800_000, NOW)
    # the program's cached weighted collateral is the deposit's value x the reserve's 90 % threshold
    assert deposit["weight"] == Decimal("0.9")
    assert abs(deposit["collateral_usd"] - deposit["value_usd"] * deposit["weight"]) < Decimal("0.000001")
    assert deposit["borrows_usd"] == 0
    assert deposit["health_ratio"] is None  # no debt: no ratio
    assert deposit["health_source"].startswith("cached by the program at slot ")
    assert (reserve_row["mint"], reserve_row["decimals"], reserve_row["weight"]) == (USDC, 6, Decimal("0.9"))
    assert abs(reserve_row["price_usd"] - 1) < Decimal("0.01")  # USDC's cached market price
    lineage = json.loads(pl.read_parquet_metadata(summary.partitions_written[0])[LINEAGE_KEY])
    assert lineage[0]["source"] == str(path)
    assert lineage[0]["extra"]["method"] == "getMultipleAccounts"
    again, _ = write_account_states(store, path, idls=idls)
    assert again.partitions_written == []  # the same snapshot twice: nothing changes


def test_stored_reserve_prices_become_a_price_table(tmp_path: Path, idls: Idls) -> None:
    store = Store(tmp_path)
    assert len(stored_prices(store)) == 0
    reserve_key, reserve = _dump("test-utils_src_fixtures_kamino_usdc_reserve.json")
    write_account_states(store, _snapshot(store, "kamino", {reserve_key: reserve}), idls=idls)
    table = stored_prices(store)
    fields = decode_account(base64.b64decode(reserve["data"][0]), protocol="kamino", idls=idls).fields
    # the reserve's cached market price, a u128 with 60 fraction bits, to the store's 18 decimals
    expected = (Decimal(fields["liquidity"]["market_price_sf"]) / 2**60).quantize(Decimal("1e-18"))
    assert table[USDC].price_usd == expected
    assert table[USDC].source == f"Reserve {reserve_key} at slot 377800000"


def test_marginfi_account_is_valued_where_its_bank_and_price_are_known(tmp_path: Path, idls: Idls) -> None:
    store = Store(tmp_path)
    account_key, account = _dump("programs_marginfi_tests_fixtures_marginfi_account_marginfi_account_sample_1.json")
    bank_key, bank = _dump("programs_marginfi_tests_fixtures_bank_bank_sample_1.json")
    path = _snapshot(store, "marginfi", {account_key: account, bank_key: bank})
    prices = PriceTable([MintPrice(JITOSOL, Decimal(200), "synthetic test price")])
    _, states = write_account_states(store, path, idls=idls, prices=prices)
    rows = states.frame()
    bank_fields = decode_account(base64.b64decode(bank["data"][0]), protocol="marginfi", idls=idls).fields
    bank_row = rows.filter(pl.col("account_type") == "Bank").row(0, named=True)
    assert (bank_row["mint"], bank_row["price_usd"]) == (JITOSOL, Decimal(200))  # no oracle in the snapshot
    positions = rows.filter(pl.col("account_type") == "MarginfiAccount")
    assert positions.height >= 2
    assert set(positions["authority"]) == {"Dq7wypbedtaqQK9QqEFvfrxc4ppfRGXCeTVd7ee7n2jw"}
    valued = positions.filter(pl.col("position_market") == bank_key)
    for row in valued.iter_rows(named=True):
        share_value = bank_fields["asset_share_value" if row["position_kind"] == "deposit" else "liability_share_value"]
        # native units = shares x share value; USD = native / 10^9 x 200
        assert row["amount"] == (row["shares"] * i80f48(share_value)).quantize(Decimal("1e-18"))
        assert abs(row["value_usd"] - row["amount"] / 10**9 * 200) < Decimal("1e-12")
    others = positions.filter(pl.col("position_market") != bank_key)
    assert others["amount"].null_count() == others.height  # their banks are not in the snapshot
    assert positions["collateral_usd"].null_count() == positions.height
    assert positions["health_source"][0].startswith("not computable: bank ")


def test_a_pyth_account_in_the_snapshot_prices_the_bank_whose_oracle_it_is(tmp_path: Path, idls: Idls) -> None:
    store = Store(tmp_path)
    bank_key, bank = _dump("programs_marginfi_tests_fixtures_bank_bank_sample_1.json")
    _, pyth = _dump("tests_fixtures_sol_pyth_oracle.json")
    oracle = decode_account(base64.b64decode(bank["data"][0]), protocol="marginfi", idls=idls).fields["config"]
    # The real SOL Pyth dump served at the bank's first oracle address: a pairing made for this test.
    accounts = {bank_key: bank, oracle["oracle_keys"][0]: pyth}
    table = PriceTable([MintPrice(JITOSOL, Decimal(200), "synthetic test price")])
    _, states = write_account_states(store, _snapshot(store, "marginfi", accounts), idls=idls, prices=table)
    rows = {row["account_type"]: row for row in states.frame().iter_rows(named=True)}
    pyth_price = decode_pyth_price(base64.b64decode(pyth["data"][0])).price
    assert rows["PythPrice"]["price_usd"] == pyth_price
    assert rows["Bank"]["price_usd"] == pyth_price  # the oracle in the snapshot beats the price table


def test_drift_health_of_a_real_user_with_a_market_table_by_hand(idls: Idls) -> None:
    user = decode_account(_drift_users()[3], protocol="drift", idls=idls).fields
    # User 3: USDC borrow, scaled 10,774,564,609; SOL deposit, scaled 689,968,170; SOL-PERP base -5.5
    # (-5,500,000,000 at 1e9) with quote +403.467586 (403,467,586 at 1e6).
    # USDC borrow: ceil(10,774,564,609 x 1e10 / 1e13) = 10,774,565 units = 10.774565 USD x 1.0 (liability weight)
    # SOL deposit: floor(689,968,170 x 1e10 / 1e10) = 689,968,170 units = 0.68996817 SOL x 100 x 0.9 = 62.0971353
    # perp pnl: -5.5 x 100 + 403.467586 = -146.532414 (a loss counts in full)
    # collateral = 62.0971353 - 146.532414 = -84.4352787; requirement = 10.774565 + 5.5 x 100 x 0.05 = 38.274565
    health = drift_health(user, MARKETS)
    assert health.weighted_collateral_usd == Decimal("-84.4352787")
    assert health.weighted_debt_usd == Decimal("38.274565")
    assert health.liquidatable


def test_drift_deposit_accrues_the_cumulative_interest(idls: Idls) -> None:
    user = decode_account(_drift_users()[0], protocol="drift", idls=idls).fields
    # User 0: one USDC deposit, scaled 39,371,397,985; x 1.016 (10,160,000,000 at 1e10) / 1e13:
    # floor(40,001,340.35...) = 40,001,340 units = 40.00134 USD; nothing borrowed, no perp.
    health = drift_health(user, MARKETS)
    assert (health.weighted_collateral_usd, health.weighted_debt_usd) == (Decimal("40.00134"), 0)
    assert not health.liquidatable


def test_drift_health_needs_every_market_of_the_user(idls: Idls) -> None:
    user = decode_account(_drift_users()[3], protocol="drift", idls=idls).fields
    no_perp = DriftMarkets(source="synthetic test table", spot=MARKETS.spot)
    with pytest.raises(AccountDecodeError, match=r"Drift perp market 0 is not in the market table"):
        drift_health(user, no_perp)


def test_drift_users_snapshot_rows_with_and_without_a_market_table(tmp_path: Path, idls: Idls) -> None:
    store = Store(tmp_path)
    drift = PROGRAM_IDS["drift"]
    users = {f"DriftUser{i}111111111111111111111111111111"[:44]: _drift_users()[i] for i in (0, 3)}
    accounts = {key: account_json(raw, owner=drift) for key, raw in users.items()}
    path = _snapshot(store, "drift", accounts)
    _, bare = write_account_states(Store(tmp_path / "bare"), path, idls=idls)
    assert set(bare.frame()["health_source"]) == {"not computable: no Drift market table (--drift-markets)"}
    table = tmp_path / "drift-markets.toml"
    table.write_text(
        'source = "synthetic test table"\n'
        '[[spot]]\nmarket_index = 0\nmint = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"\ndecimals = 6\n'
        'oracle_price = "1"\ncumulative_deposit_interest = 10160000000\ncumulative_borrow_interest = 10000000000\n'
        'maintenance_asset_weight = "1"\nmaintenance_liability_weight = "1"\n'
    )
    _, states = write_account_states(store, path, idls=idls, drift_markets=load_drift_markets(table))
    rows = states.frame()
    user0 = rows.filter(pl.col("account") == sorted(users)[0])
    assert user0.select("position_kind", "position_market", "amount").rows() == [
        ("deposit", "spot:0", Decimal(40_001_340))
    ]
    assert user0["collateral_usd"][0] == Decimal("40.00134")
    user3 = rows.filter(pl.col("account") == sorted(users)[1])
    assert (
        user3["health_source"][0]
        == "not computable: Drift spot market 1 is not in the market table (synthetic test table); add it"
    )


def test_drift_market_table_errors_name_the_field(tmp_path: Path) -> None:
    table = tmp_path / "drift-markets.toml"
    table.write_text('source = "x"\n[[perp]]\nmarket_index = 0\noracle_price = "100"\nmargin_ratio = "0.05"\n')
    with pytest.raises(InputFileError, match=r"drift-markets.toml: expected a Drift market table .*margin_ratio"):
        load_drift_markets(table)
    perp = 'market_index = 0\noracle_price = "{}"\nmargin_ratio_maintenance = "0.05"\n'
    perp += 'unrealized_pnl_maintenance_asset_weight = "1"\n'
    table.write_text('source = "x"\n[[perp]]\n' + perp.format("0"))
    with pytest.raises(InputFileError, match=r"perp market 0 field oracle_price: expected a positive decimal, was 0"):
        load_drift_markets(table)
    table.write_text('source = "x"\n[[perp]]\n' + perp.format("100") + "[[perp]]\n" + perp.format("101"))
    with pytest.raises(InputFileError, match=r"a perp market_index is listed twice"):
        load_drift_markets(table)


def test_cli_decodes_a_stored_snapshot_without_network(
    tmp_path: Path, idls: Idls, capsys: pytest.CaptureFixture[str]
) -> None:
    store = Store(tmp_path)
    obligation_key, obligation = _dump("test-utils_src_fixtures_kamino_usdc_obligation.json")
    path = _snapshot(store, "kamino", {obligation_key: obligation})
    argv = ["fetch-onchain", "--store", str(tmp_path), "--protocol", "kamino", "--from-snapshot", str(path)]
    argv += ["--idls", str(SHARED / "solana_idls")]
    assert main(argv) == ExitCode.OK
    assert "account_states: 1 rows (1 Obligation)" in capsys.readouterr().out
    assert main(argv) == ExitCode.OK
    assert "0 partition files written" in capsys.readouterr().out
    bad = tmp_path / "not-a-snapshot.parquet"
    pl.DataFrame({"x": [1]}).write_parquet(bad)
    assert main([*argv[:-3], str(bad), *argv[-2:]]) == ExitCode.BAD_INPUT
    err = capsys.readouterr().err
    assert "expected a raw account snapshot of fetch-onchain --accounts" in err
    assert "Traceback" not in err
