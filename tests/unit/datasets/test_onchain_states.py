"""Decode the real account dumps of ../shared/data/solana/solana_decoder_fixtures and compute health from them."""

from __future__ import annotations

import base64
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from datasets.onchain.errors import AccountDecodeError
from datasets.onchain.health import kamino_collateral_from_reserves, kamino_health, marginfi_health
from datasets.onchain.idl import Idls, load_idls
from datasets.onchain.states import decode_account, decode_pyth_price, i80f48

SHARED = Path(__file__).resolve().parents[4] / "shared" / "data" / "solana"
FIXTURES = SHARED / "solana_decoder_fixtures"
pytestmark = pytest.mark.skipif(not SHARED.is_dir(), reason="needs ../shared/data/solana")


@pytest.fixture(scope="module")
def idls() -> Idls:
    return load_idls(SHARED / "solana_idls")


def _dump(name: str) -> tuple[dict[str, Any], bytes]:
    document = json.loads((FIXTURES / "marginfi_v2_fixtures" / name).read_text())
    return document, base64.b64decode(document["account"]["data"][0])


def test_drift_user_buffers_all_decode_to_their_full_size(idls: Idls) -> None:
    buffers = json.loads((FIXTURES / "drift_sdk_tests" / "drift_user_account_buffers.json").read_text())
    users = [
        decode_account(base64.b64decode(b), protocol="drift", idls=idls) for b in buffers["user_account_buffers_base64"]
    ]
    assert len(users) == 100
    assert {u.name for u in users} == {"User"}
    for user in users:
        fields = user.fields
        assert len(fields["spot_positions"]) == 8
        assert len(fields["perp_positions"]) == 8
        assert fields["name"].rstrip(b" ").decode("utf-8", errors="strict")  # a readable sub-account name
        assert fields["authority"] != "11111111111111111111111111111111"


def test_kamino_obligation_and_reserve_decode_and_agree(idls: Idls) -> None:
    obligation_doc, obligation_raw = _dump("test-utils_src_fixtures_kamino_usdc_obligation.json")
    reserve_doc, reserve_raw = _dump("test-utils_src_fixtures_kamino_usdc_reserve.json")
    obligation = decode_account(obligation_raw, protocol="kamino", idls=idls)
    reserve = decode_account(reserve_raw, protocol="kamino", idls=idls)
    assert (obligation.name, reserve.name) == ("Obligation", "Reserve")
    assert obligation.fields["deposits"][0]["deposit_reserve"] == reserve_doc["pubkey"]
    liquidity = reserve.fields["liquidity"]
    assert (liquidity["mint_pubkey"], liquidity["mint_decimals"]) == ("EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v", 6)
    health = kamino_health(obligation.fields)
    assert not health.liquidatable  # no debt
    assert health.weighted_debt_usd == 0
    recomputed = kamino_collateral_from_reserves(obligation.fields, {reserve_doc["pubkey"]: reserve.fields})
    # the cached weighted collateral is the deposit's value x the reserve's 90 % liquidation threshold
    assert abs(recomputed - health.weighted_collateral_usd) < Decimal("0.000001")
    assert obligation_doc["account"]["space"] == len(obligation_raw)


def test_marginfi_bank_account_group_decode(idls: Idls) -> None:
    _, bank_raw = _dump("programs_marginfi_tests_fixtures_bank_bank_sample_1.json")
    _, account_raw = _dump("programs_marginfi_tests_fixtures_marginfi_account_marginfi_account_sample_1.json")
    group_doc, group_raw = _dump("tests_fixtures_mainnet_group.json")
    bank = decode_account(bank_raw, protocol="marginfi", idls=idls)
    account = decode_account(account_raw, protocol="marginfi", idls=idls)
    group = decode_account(group_raw, protocol="marginfi", idls=idls)
    assert (bank.name, account.name, group.name) == ("Bank", "MarginfiAccount", "MarginfiGroup")
    assert bank.fields["mint"] == "J1toso1uCk3RLmjorhTtrVwY9HJ7X8V9yYac6Y7kGCPn"
    assert bank.fields["mint_decimals"] == 9
    assert bank.fields["group"] == account.fields["group"] == group_doc["pubkey"]
    # stored as the I80F48 nearest the f32 0.8 the bank was configured with: exact, 1.2e-8 above 0.8
    assert i80f48(bank.fields["config"]["asset_weight_maint"]) == Decimal("0.800000011920928955078125")
    active = [b for b in account.fields["lending_account"]["balances"] if b["active"]]
    assert len(active) >= 2


def test_marginfi_health_needs_every_bank(idls: Idls) -> None:
    _, account_raw = _dump("programs_marginfi_tests_fixtures_marginfi_account_marginfi_account_sample_1.json")
    account = decode_account(account_raw, protocol="marginfi", idls=idls)
    with pytest.raises(AccountDecodeError, match=r"bank \S+ of an active balance is needed"):
        marginfi_health(account.fields, {}, {})


def test_marginfi_health_of_one_bank(idls: Idls) -> None:
    _, bank_raw = _dump("programs_marginfi_tests_fixtures_bank_bank_sample_1.json")
    bank = decode_account(bank_raw, protocol="marginfi", idls=idls).fields
    one = (10**9 * 2**48).to_bytes(16, "little", signed=True)  # 1 jitoSOL of shares
    zero = bytes(16)
    balance = {"active": 1, "bank_pk": "B", "asset_shares": {"value": one}, "liability_shares": {"value": zero}}
    health = marginfi_health({"lending_account": {"balances": [balance]}}, {"B": bank}, {bank["mint"]: Decimal(200)})
    expected = i80f48(bank["asset_share_value"]) * 200 * i80f48(bank["config"]["asset_weight_maint"])
    assert health.weighted_collateral_usd == expected
    assert health.weighted_debt_usd == 0


def test_pyth_sol_price_decodes(idls: Idls) -> None:
    _, raw = _dump("tests_fixtures_sol_pyth_oracle.json")
    price = decode_pyth_price(raw)
    assert price.exponent == -8
    assert Decimal(1) < price.price < Decimal(1_000)  # SOL in USD
    assert price.confidence < price.price / 100


def test_wrong_account_data_raises(idls: Idls) -> None:
    _, raw = _dump("programs_marginfi_tests_fixtures_bank_bank_sample_1.json")
    with pytest.raises(AccountDecodeError, match="matches no known layout"):
        decode_account(raw[:-8], protocol="marginfi", idls=idls)
    with pytest.raises(AccountDecodeError, match="no kamino IDL has an account"):
        decode_account(raw, protocol="kamino", idls=idls)
    with pytest.raises(AccountDecodeError, match="expected Pyth magic"):
        decode_pyth_price(raw)
