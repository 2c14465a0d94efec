"""Decode reconstructed Solana liquidation transactions (tests/kit/solana.py says how each is built)."""

from __future__ import annotations

import base64
import math
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from datasets.onchain.decode import DecodedTransaction, decode_transaction, extras_frame, liquidations_frame
from datasets.onchain.errors import IdlError, TransactionFormatError
from datasets.onchain.idl import Idls, load_idls
from datasets.onchain.mints import MintTable
from datasets.onchain.prices import MintPrice, PriceTable
from datasets.schemas import LIQUIDATION_EXTRAS, LIQUIDATIONS
from tests.kit import solana as kit

SHARED = Path(__file__).resolve().parents[4] / "shared" / "data"
IDL_DIR = SHARED / "solana" / "solana_idls"
pytestmark = pytest.mark.skipif(not IDL_DIR.is_dir(), reason="needs ../shared/data/solana")


@pytest.fixture(scope="module")
def idls() -> Idls:
    return load_idls(IDL_DIR)


@pytest.fixture(scope="module")
def mints() -> MintTable:
    return MintTable.default()


def _derisk_records(decoded: DecodedTransaction) -> list[dict[str, Any]]:
    # derisk-solana@e75f9a5 `_record_liquidation`: four records per event, amounts ceil(post - pre) of the
    # event's f64 balances; its fourth record carries the *asset* mint's decimals (their bug, reproduced
    # here so the comparison is exact; our own rows carry the liability's true decimals, checked below).
    (extras,) = decoded.extras
    (located,) = [e for e in decoded.events if e.event.name == "LendingAccountLiquidateEvent"]
    event = located.event.fields
    pre, post = event["pre_balances"], event["post_balances"]

    def change(name: str) -> int:
        return math.ceil(post[name] - pre[name])

    liquidator = (event["header"]["marginfi_account"], event["header"]["signer"])
    liquidatee = (event["liquidatee_marginfi_account"], event["liquidatee_marginfi_account_authority"])
    asset, liability = event["asset_mint"], event["liability_mint"]
    asset_decimals, liability_decimals = extras["seized_decimals"], extras["repay_decimals"]
    rows = [
        ("asset", asset, change("liquidator_asset_balance"), asset_decimals, liquidator),
        ("liability", asset, change("liquidatee_asset_balance"), asset_decimals, liquidatee),
        ("liability", liability, change("liquidator_liability_balance"), liability_decimals, liquidator),
        ("liability", liability, change("liquidatee_liability_balance"), asset_decimals, liquidatee),
    ]
    return [
        {
            "transaction_id": decoded.signature,
            "position": position,
            "token": token,
            "amount": str(amount),
            "amount_decimal": str(decimals),
            "account": who[0],
            "signer": who[1],
        }
        for position, token, amount, decimals, who in rows
    ]


def test_marginfi_golden_80_records_reproduced_exactly(idls: Idls, mints: MintTable) -> None:
    built = kit.marginfi_liquidation_transactions(SHARED)
    decoded = {sig: decode_transaction(tx, protocol="marginfi", idls=idls, mints=mints) for sig, tx in built.items()}
    fields = ("transaction_id", "position", "token", "amount", "amount_decimal", "account", "signer")
    golden = [{k: r[k] for k in fields} for g in kit.golden_marginfi_liquidations(SHARED) for r in g.records]
    ours = [r for g in kit.golden_marginfi_liquidations(SHARED) for r in _derisk_records(decoded[g.signature])]
    assert len(built) == 19
    assert len(golden) == 80
    assert ours == golden
    for result in decoded.values():
        assert result.skips == []
        (extras,) = result.extras
        assert extras["idl_version"] == "0.1.0"
        assert extras["priority_fee_lamports"] == 20_000  # 50,000 micro-lamports x 400,000 units
    by_signature = {g.signature: g for g in kit.golden_marginfi_liquidations(SHARED)}
    for signature, result in decoded.items():
        g, (extras,), (row,) = by_signature[signature], result.extras, result.liquidations
        assert extras["seized_amount"] == int(g.liquidator_asset["amount"])
        assert extras["repay_amount"] == -int(g.liquidatee_liability["amount"])
        assert extras["repay_decimals"] == int(g.liquidator_liability["amount_decimal"])
        assert row["account"] == g.liquidatee_asset["account"]
        assert row["liquidator"] == g.liquidator_asset["signer"]


def test_marginfi_rows_fit_the_canonical_schemas(idls: Idls, mints: MintTable) -> None:
    built = kit.marginfi_liquidation_transactions(SHARED)
    decoded = [decode_transaction(tx, protocol="marginfi", idls=idls, mints=mints) for tx in built.values()]
    liquidations, extras = liquidations_frame(decoded), extras_frame(decoded)
    assert liquidations.schema == LIQUIDATIONS.polars_schema
    assert extras.schema == LIQUIDATION_EXTRAS.polars_schema
    assert liquidations.height == extras.height == 19
    assert set(liquidations["symbol"]) == {"JITOSOL-USDC", "JITOSOL-SOL"}
    assert liquidations["event_id"].n_unique() == 19


def test_marginfi_current_idl_layout_decodes_with_0_1_7(idls: Idls, mints: MintTable) -> None:
    golden = kit.golden_marginfi_liquidations(SHARED)[0]
    tx = kit.marginfi_liquidation_transaction(golden, slot=1, block_time=1_712_000_000, layout="0.1.7")
    decoded = decode_transaction(tx, protocol="marginfi", idls=idls, mints=mints)
    assert decoded.skips == []
    assert decoded.extras[0]["idl_version"] == "0.1.7"
    assert decoded.extras[0]["seized_amount"] == 15_232_047


def test_marginfi_unknown_program_version_is_a_recorded_skip(idls: Idls, mints: MintTable) -> None:
    golden = kit.golden_marginfi_liquidations(SHARED)[0]
    tx = kit.marginfi_liquidation_transaction(golden, slot=1, block_time=1_712_000_000, layout="unknown")
    decoded = decode_transaction(tx, protocol="marginfi", idls=idls, mints=mints)
    assert decoded.liquidations == []
    assert decoded.extras == []
    (skip,) = decoded.skips
    assert skip.signature == golden.signature
    assert "matches no known program version" in skip.reason


def test_marginfi_truncated_event_body_is_a_recorded_skip(idls: Idls, mints: MintTable) -> None:
    golden = kit.golden_marginfi_liquidations(SHARED)[0]
    event = kit.marginfi_event_bytes(golden)[:-9]
    tx = kit.marginfi_liquidation_transaction(golden, slot=1, block_time=1_712_000_000, event=event)
    decoded = decode_transaction(tx, protocol="marginfi", idls=idls, mints=mints)
    assert decoded.liquidations == []
    reasons = [s.reason for s in decoded.skips]
    assert any("LendingAccountLiquidateEvent matches no known layout" in r for r in reasons)
    assert any("found 0" in r for r in reasons)


def test_marginfi_logs_of_another_liquidation_are_a_recorded_skip(idls: Idls, mints: MintTable) -> None:
    goldens = kit.golden_marginfi_liquidations(SHARED)
    first, other = goldens[0], kit.marginfi_event_bytes(goldens[4])  # 64dt9... with the event of 3TDLzx...
    tx = kit.marginfi_liquidation_transaction(first, slot=1, block_time=1_712_000_000, event=other)
    decoded = decode_transaction(tx, protocol="marginfi", idls=idls, mints=mints)
    assert decoded.liquidations == []
    (skip,) = decoded.skips
    assert "the logs do not match" in skip.reason


def test_event_logged_by_another_program_is_not_attributed(idls: Idls, mints: MintTable) -> None:
    golden = kit.golden_marginfi_liquidations(SHARED)[0]
    foreign = [
        f"Program {kit.TOKEN_PROGRAM} invoke [2]",
        f"Program data: {base64.b64encode(kit.marginfi_event_bytes(golden)).decode()}",
        f"Program {kit.TOKEN_PROGRAM} success",
    ]
    tx = kit.marginfi_liquidation_transaction(golden, slot=1, block_time=1_712_000_000, extra_logs=foreign)
    decoded = decode_transaction(tx, protocol="marginfi", idls=idls, mints=mints)
    assert len(decoded.events) == 1
    assert len(decoded.liquidations) == 1


def test_failed_transaction_yields_a_skip_and_no_rows(idls: Idls, mints: MintTable) -> None:
    golden = kit.golden_marginfi_liquidations(SHARED)[0]
    tx = kit.marginfi_liquidation_transaction(golden, slot=1, block_time=1_712_000_000)
    tx["meta"]["err"] = {"InstructionError": [2, {"Custom": 6009}]}
    decoded = decode_transaction(tx, protocol="marginfi", idls=idls, mints=mints)
    assert decoded.liquidations == []
    assert "transaction failed on chain" in decoded.skips[0].reason


def test_not_a_get_transaction_result_raises(idls: Idls, mints: MintTable) -> None:
    with pytest.raises(TransactionFormatError, match="expected a getTransaction result"):
        decode_transaction({"slot": 1}, protocol="marginfi", idls=idls, mints=mints)


def test_unknown_protocol_raises(idls: Idls, mints: MintTable) -> None:
    with pytest.raises(IdlError, match="protocol must be one of"):
        decode_transaction({}, protocol="solend", idls=idls, mints=mints)


def test_drift_real_logs_decode_to_their_event_types(idls: Idls, mints: MintTable) -> None:
    decoded = [
        decode_transaction(tx, protocol="drift", idls=idls, mints=mints) for tx in kit.drift_log_transactions(SHARED)
    ]
    names = [[e.event.name for e in d.events] for d in decoded]
    assert names == [
        ["CurveRecord", "FundingRateRecord"],
        [],
        ["SpotInterestRecord", "SpotInterestRecord", "SwapRecord"],
    ]
    assert all(d.skips == [] and d.liquidations == [] for d in decoded)
    funding = decoded[0].events[1].event.fields
    assert funding["market_index"] == 30
    assert funding["ts"] == 1_756_580_515
    swap = decoded[2].events[2].event.fields
    assert (swap["in_market_index"], swap["out_market_index"]) == (0, 1)  # USDC in, SOL out
    assert swap["amount_in"] == 100_000_000_000  # 100,000 USDC
    assert 100 < swap["out_oracle_price"] / 1e6 < 500  # SOL in USD
    assert 0.99 < swap["in_oracle_price"] / 1e6 < 1.01  # USDC in USD
    spot = [e.event.fields["market_index"] for e in decoded[2].events[:2]]
    assert spot == [0, 1]


def test_drift_liquidate_perp_row(idls: Idls, mints: MintTable) -> None:
    user, liquidator, authority = (
        kit.synthetic_key("drift-user"),
        kit.synthetic_key("drift-liq"),
        kit.synthetic_key("auth"),
    )
    record = kit.drift_liquidation_record_bytes(
        kind=0,
        user=user,
        liquidator=liquidator,
        perp=(0, 150_250_000, -2_000_000_000, 300_000_000, 1_500_000, 500_000),
        margin_requirement=10_000_000,
        total_collateral=9_000_000,
    )
    args = bytes.fromhex("0000") + (2_000_000_000).to_bytes(8, "little") + b"\x00"
    tx = kit.drift_liquidation_transaction(
        "5" * 64, "liquidate_perp", args, [record], authority=authority, user=user, liquidator=liquidator
    )
    decoded = decode_transaction(tx, protocol="drift", idls=idls, mints=mints)
    assert decoded.skips == []
    (row,), (extras,) = decoded.liquidations, decoded.extras
    assert (row["symbol"], row["market"], row["side"]) == ("SOL-USDC-PERP", "perp", "long")
    assert row["quantity"] == 2
    assert row["price"] == Decimal("150.25")
    assert row["notional_usd"] == Decimal("300.5")
    assert (row["account"], row["liquidator"]) == (user, authority)
    assert extras["pre_health"] == -1
    assert extras["liquidator_fee_amount"] == 1_500_000
    assert extras["liquidation_bonus_bps"] == 50


def test_drift_liquidate_spot_row(idls: Idls, mints: MintTable) -> None:
    user, liquidator, authority = (
        kit.synthetic_key("drift-user"),
        kit.synthetic_key("drift-liq"),
        kit.synthetic_key("auth"),
    )
    # The user deposited SOL (market 1) and borrowed USDC (market 0): 10 SOL seized for 1,450 USDC repaid.
    record = kit.drift_liquidation_record_bytes(
        kind=1, user=user, liquidator=liquidator, spot=(1, 150_000_000, 10_000_000_000, 0, 1_000_000, 1_450_000_000, 0)
    )
    args = bytes.fromhex("01000000") + (10**9).to_bytes(16, "little") + b"\x00"
    tx = kit.drift_liquidation_transaction(
        "6" * 64, "liquidate_spot", args, [record], authority=authority, user=user, liquidator=liquidator
    )
    decoded = decode_transaction(tx, protocol="drift", idls=idls, mints=mints)
    (row,), (extras,) = decoded.liquidations, decoded.extras
    assert (row["symbol"], row["side"], row["quantity"], row["price"]) == ("SOL-USDC", "long", 10, 145)
    assert row["notional_usd"] == 1_500
    assert (extras["seized_amount"], extras["repay_amount"]) == (10_000_000_000, 1_450_000_000)
    assert extras["liquidation_bonus_bps"] == Decimal("344.827586206896551724")  # 50 / 1,450 USD, exact to 1e-18


def test_drift_bankruptcy_record_yields_no_fill(idls: Idls, mints: MintTable) -> None:
    user, liquidator, authority = (
        kit.synthetic_key("drift-user"),
        kit.synthetic_key("drift-liq"),
        kit.synthetic_key("auth"),
    )
    record = kit.drift_liquidation_record_bytes(kind=4, user=user, liquidator=liquidator)
    args = bytes.fromhex("0000") + (1).to_bytes(8, "little") + b"\x00"
    tx = kit.drift_liquidation_transaction(
        "7" * 64, "liquidate_perp", args, [record], authority=authority, user=user, liquidator=liquidator
    )
    decoded = decode_transaction(tx, protocol="drift", idls=idls, mints=mints)
    assert decoded.liquidations == []
    assert decoded.skips == []


def test_kamino_liquidation_amounts_from_token_balance_deltas(idls: Idls, mints: MintTable) -> None:
    liquidator = kit.synthetic_key("kamino-liquidator")
    tx = kit.kamino_liquidation_transaction(
        "8" * 64,
        liquidator=liquidator,
        repay=(kit.USDC, 5_000_000_000, 3_550_000_000),
        seized=(kit.SOL, 0, 10_000_000_000),
    )
    decoded = decode_transaction(tx, protocol="kamino", idls=idls, mints=mints)
    assert decoded.skips == []
    (row,), (extras,) = decoded.liquidations, decoded.extras
    assert (row["symbol"], row["side"], row["quantity"], row["price"]) == ("SOL-USDC", "long", 10, 145)
    assert (row["account"], row["liquidator"]) == (kit.KAMINO_OBLIGATION, liquidator)
    assert (extras["repay_amount"], extras["repay_decimals"], extras["seized_amount"]) == (1_450_000_000, 6, 10**10)
    assert extras["idl_version"] == "1.13.0"
    assert extras["priority_fee_lamports"] == 150_000


def test_kamino_liquidation_valued_with_a_price_table(idls: Idls, mints: MintTable) -> None:
    # Synthetic transaction and prices: 1,450 USDC repaid (5,000 -> 3,550), 10 SOL seized; SOL 150, USDC 1.
    prices = PriceTable([MintPrice(kit.SOL, Decimal(150), "test SOL"), MintPrice(kit.USDC, Decimal(1), "test USDC")])
    tx = kit.kamino_liquidation_transaction(
        "8" * 64,
        liquidator=kit.synthetic_key("kamino-liquidator"),
        repay=(kit.USDC, 5_000_000_000, 3_550_000_000),
        seized=(kit.SOL, 0, 10_000_000_000),
    )
    decoded = decode_transaction(tx, protocol="kamino", idls=idls, mints=mints, prices=prices)
    (row,), (extras,) = decoded.liquidations, decoded.extras
    assert row["notional_usd"] == 1_500  # long 10 SOL (the seized base) x 150
    assert (extras["seized_value_usd"], extras["repaid_value_usd"]) == (1_500, 1_450)
    assert extras["liquidation_bonus_usd"] == 50  # 1,500 - 1,450
    # 50 / 1,450 x 10,000 = 344.827586206896551724... bps
    assert extras["liquidation_bonus_bps"] == Decimal("344.827586206896551724")
    assert extras["price_source"] == "price table: test SOL; test USDC"


def test_kamino_v2_and_legacy_account_layouts(idls: Idls, mints: MintTable) -> None:
    liquidator = kit.synthetic_key("kamino-liquidator")
    for v2, legacy, version in ((True, False, "1.13.0"), (False, True, "0.1.0")):
        tx = kit.kamino_liquidation_transaction(
            "9" * 64,
            liquidator=liquidator,
            repay=(kit.USDC, 2_000_000, 1_000_000),
            seized=(kit.SOL, 0, 7_000_000),
            v2=v2,
            legacy_accounts=legacy,
        )
        decoded = decode_transaction(tx, protocol="kamino", idls=idls, mints=mints)
        assert decoded.skips == []
        assert decoded.extras[0]["idl_version"] == version
        assert decoded.extras[0]["seized_amount"] == 7_000_000


def test_kamino_without_a_redeemed_amount_is_a_recorded_skip(idls: Idls, mints: MintTable) -> None:
    tx = kit.kamino_liquidation_transaction(
        "A" * 64, liquidator=kit.synthetic_key("k"), repay=(kit.USDC, 5, 5), seized=(kit.SOL, 0, 0)
    )
    decoded = decode_transaction(tx, protocol="kamino", idls=idls, mints=mints)
    assert decoded.liquidations == []
    assert "no redeemed liquidation" in decoded.skips[0].reason
