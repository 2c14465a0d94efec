"""Build ``getTransaction`` results (``json`` encoding, version 0) for the on-chain decoder tests.

No raw ``getTransaction`` JSON of a real Solana liquidation exists in ``../shared/data`` (DATA.md says so),
so every transaction here is *reconstructed*, and this module says exactly from what. It never calls
``datasets.onchain`` (the decoder under test) and never reads an IDL: event and instruction bytes are
packed with ``struct`` from layouts written out here by hand from the programs' Rust sources, so a
decoder that reads the IDL wrongly cannot agree with them by construction.

marginfi (``marginfi_liquidation_transactions``), one transaction per real mainnet signature of
``derisk_notebook_outputs/marginfi_decoded_events.json`` (19 signatures, 80 ``lending_account_liquidate``
records: derisk-solana wrote four records per ``LendingAccountLiquidateEvent``):

- signature, mints, liquidator and liquidatee marginfi accounts and their authorities: the golden
  records (record 1: liquidator asset, 2: liquidatee asset, 3: liquidator liability, 4: liquidatee
  liability; derisk-solana@e75f9a5 ``_record_liquidation``);
- ``asset_amount`` (the instruction argument, legacy 0.1.0 layout: discriminator + u64): record 1's amount;
- the event's f64 balances: only their changes are known (derisk stored ``ceil(post - pre)``), so each
  ``pre`` is an invented base with a binary fraction (``.25``, ``.5``, ``.125``) and ``post = pre + change``,
  exact in f64; the two healths are invented (-0.0125 before, 0.003 after);
- the group ``4qp6Fx6t...`` (``tests_fixtures_mainnet_group.json``) and the jitoSOL bank ``Bohoc1ik...``
  (``programs_marginfi_tests_fixtures_bank_bank_sample_1.json``) are real; the USDC and SOL bank addresses
  are synthetic PDAs (``find_program_address([b"carrylab-test-bank", mint], marginfi)``); the liquidity
  vault, its authority and the insurance vault are the PDAs the IDL's seeds name, derived from the bank;
- slot, blockTime, fee, compute units, the compute-budget instructions, the insurance-fee token transfer
  and the token balances (which carry each mint's real decimals) are invented, plausible values.

``LendingAccountLiquidateEvent`` layout (marginfi-v2 ``programs/marginfi/src/events.rs``): header
(``signer: Option<Pubkey>, marginfi_account, marginfi_account_authority, marginfi_group``),
``liquidatee_marginfi_account, liquidatee_marginfi_account_authority, asset_bank, asset_mint,
liability_bank, liability_mint: Pubkey``, ``liquidatee_pre_health, liquidatee_post_health: f64``,
``pre_balances, post_balances: LiquidationBalances`` (four f64: liquidatee asset, liquidatee liability,
liquidator asset, liquidator liability).

Drift (``drift_log_transactions``): the real ``logMessages`` of ``drift_sdk_tests/drift_tx_logs.json`` with a
synthetic message whose top-level instructions are the programs the logs invoke, in order.
``drift_liquidation_transaction`` packs a synthetic ``LiquidationRecord`` (drift protocol-v2
``programs/drift/src/state/events.rs``) into a ``liquidate_perp`` or ``liquidate_spot`` transaction.

Kamino (``kamino_liquidation_transaction``): a synthetic ``liquidate_obligation_and_redeem_reserve_collateral``
(klend 1.13 account order, klend
``programs/klend/src/handlers/handler_liquidate_obligation_and_redeem_reserve_collateral.rs``)
on the real obligation ``CQNMXyiA...`` and USDC reserve ``D6q6wuQS...`` of the fixtures, with invented token
balances.
"""

from __future__ import annotations

import base64
import hashlib
import json
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from solders.pubkey import Pubkey

MARGINFI = "MFv2hWf31Z9kbCa1snEPYctwafyhdvnV7FZnsebVacA"
DRIFT = "dRiftyHA39MWEi3m9aunc5MzRF1JYuBsbn6VPcn33UH"
KAMINO = "KLend2g3cP87fffoy8q1mQqGKjrxjC8boSyAYavgmjD"
TOKEN_PROGRAM = "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA"  # noqa: S105  (a program id, not a secret)
COMPUTE_BUDGET = "ComputeBudget111111111111111111111111111111"
SYSVAR_INSTRUCTIONS = "Sysvar1nstructions1111111111111111111111111"
MARGINFI_GROUP = "4qp6Fx6tnZkY5Wropq9wUYgtFxXKwE6viZxFHg3rdAG8"
JITOSOL_BANK = "Bohoc1ikHLD7xKJuzTyiTyCwzaL5N7ggJQu75A8mKYM8"
JITOSOL = "J1toso1uCk3RLmjorhTtrVwY9HJ7X8V9yYac6Y7kGCPn"
USDC = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"
SOL = "So11111111111111111111111111111111111111112"
KAMINO_OBLIGATION = "CQNMXyiAmWiANZp4tTpACEnN5z4xmNDaYzirSFLX2hcY"
KAMINO_USDC_RESERVE = "D6q6wuQSrifJKZYpR1M8R4YawnLDtDsMmWM1NbBmgJ59"
DECIMALS = {USDC: 6, SOL: 9, JITOSOL: 9}
_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
GOLDEN_EVENTS = "solana/solana_decoder_fixtures/derisk_notebook_outputs/marginfi_decoded_events.json"
DRIFT_LOGS = "solana/solana_decoder_fixtures/drift_sdk_tests/drift_tx_logs.json"


def b58encode(raw: bytes) -> str:
    number = int.from_bytes(raw, "big")
    out = ""
    while number:
        number, digit = divmod(number, 58)
        out = _B58[digit] + out
    return "1" * (len(raw) - len(raw.lstrip(b"\0"))) + out


def anchor_discriminator(namespace: str, name: str) -> bytes:
    return hashlib.sha256(f"{namespace}:{name}".encode()).digest()[:8]


def pubkey_bytes(key: str) -> bytes:
    return bytes(Pubkey.from_string(key))


def pda(seeds: Sequence[bytes], program: str) -> str:
    return str(Pubkey.find_program_address(list(seeds), Pubkey.from_string(program))[0])


def synthetic_key(label: str) -> str:
    return pda([b"carrylab-test", label.encode()[:32]], MARGINFI)


# ------------------------------------------------------------------------------------ transaction shell
@dataclass
class Ix:
    program: str
    accounts: list[str]
    data: bytes
    inner: list[Ix] | None = None


def build_transaction(
    signature: str,
    instructions: list[Ix],
    logs: list[str],
    *,
    slot: int,
    block_time: int | None,
    payer: str,
    token_balances: tuple[list[dict[str, Any]], list[dict[str, Any]]] = ([], []),
    err: Any = None,
) -> dict[str, Any]:
    """Assemble a ``getTransaction`` ``json`` result; token balances use account keys, turned into indices here."""
    keys: list[str] = []

    def index(key: str) -> int:
        if key not in keys:
            keys.append(key)
        return keys.index(key)

    index(payer)  # the fee payer signs and leads the account keys

    def compiled(ix: Ix, stack: int | None) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "programIdIndex": index(ix.program),
            "accounts": [index(a) for a in ix.accounts],
            "data": b58encode(ix.data),
        }
        if stack is not None:
            entry["stackHeight"] = stack
        return entry

    outer = [compiled(ix, None) for ix in instructions]
    inner = [
        {"index": i, "instructions": [compiled(sub, 2) for sub in ix.inner]}
        for i, ix in enumerate(instructions)
        if ix.inner
    ]

    def balances(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [
            {
                "accountIndex": index(e["account"]),
                "mint": e["mint"],
                "owner": e.get("owner"),
                "programId": TOKEN_PROGRAM,
                "uiTokenAmount": {
                    "amount": str(e["amount"]),
                    "decimals": e["decimals"],
                    "uiAmountString": str(e["amount"] / 10 ** e["decimals"]),
                },
            }
            for e in entries
        ]

    pre, post = balances(token_balances[0]), balances(token_balances[1])
    return {
        "slot": slot,
        "blockTime": block_time,
        "version": 0,
        "transaction": {
            "signatures": [signature],
            "message": {
                "accountKeys": keys,
                "header": {
                    "numRequiredSignatures": 1,
                    "numReadonlySignedAccounts": 0,
                    "numReadonlyUnsignedAccounts": 0,
                },
                "recentBlockhash": "11111111111111111111111111111111",
                "instructions": outer,
                "addressTableLookups": [],
            },
        },
        "meta": {
            "err": err,
            "status": {"Ok": None} if err is None else {"Err": err},
            "fee": fee_lamports(instructions),
            "computeUnitsConsumed": 98_765,
            "logMessages": logs,
            "preTokenBalances": pre,
            "postTokenBalances": post,
            "innerInstructions": inner,
            "loadedAddresses": {"writable": [], "readonly": []},
            "rewards": [],
            "preBalances": [],
            "postBalances": [],
        },
    }


def compute_budget(limit: int, price_micro_lamports: int) -> list[Ix]:
    return [
        Ix(COMPUTE_BUDGET, [], bytes([2]) + struct.pack("<I", limit)),
        Ix(COMPUTE_BUDGET, [], bytes([3]) + struct.pack("<Q", price_micro_lamports)),
    ]


def fee_lamports(instructions: list[Ix]) -> int:
    """Return what the runtime charges: 5,000 lamports for the one signature plus the priority fee
    (compute-unit limit x price in micro-lamports, rounded up), as a real transaction's ``meta.fee`` does."""
    limit = price = 0
    for ix in instructions:
        if ix.program == COMPUTE_BUDGET and ix.data[0] == 2:
            (limit,) = struct.unpack("<I", ix.data[1:5])
        elif ix.program == COMPUTE_BUDGET and ix.data[0] == 3:
            (price,) = struct.unpack("<Q", ix.data[1:9])
    return 5_000 + -(-limit * price // 1_000_000)


def compute_budget_logs() -> list[str]:
    return [f"Program {COMPUTE_BUDGET} invoke [1]", f"Program {COMPUTE_BUDGET} success"] * 2


# ---------------------------------------------------------------------------------------------- marginfi
@dataclass(frozen=True)
class GoldenLiquidation:
    """The four derisk records of one ``LendingAccountLiquidateEvent``, in the golden file's order."""

    signature: str
    records: tuple[dict[str, Any], ...]

    @property
    def liquidator_asset(self) -> dict[str, Any]:
        return self.records[0]

    @property
    def liquidatee_asset(self) -> dict[str, Any]:
        return self.records[1]

    @property
    def liquidator_liability(self) -> dict[str, Any]:
        return self.records[2]

    @property
    def liquidatee_liability(self) -> dict[str, Any]:
        return self.records[3]


def golden_marginfi_liquidations(shared: Path) -> list[GoldenLiquidation]:
    """Return the golden file's liquidation records in fours, in file order (64dt9... appears twice:
    the notebook parsed it alone in cell 3 and again among 429 transactions in cell 9)."""
    records = [
        r
        for r in json.loads((shared / GOLDEN_EVENTS).read_text())
        if r["instruction_name"] == "lending_account_liquidate"
    ]
    groups = [records[i : i + 4] for i in range(0, len(records), 4)]
    return [GoldenLiquidation(group[0]["transaction_id"], tuple(group)) for group in groups]


def bank_for(mint: str) -> str:
    return JITOSOL_BANK if mint == JITOSOL else pda([b"carrylab-test-bank", pubkey_bytes(mint)], MARGINFI)


def marginfi_event_bytes(golden: GoldenLiquidation, *, health: tuple[float, float] = (-0.0125, 0.003)) -> bytes:
    """Pack the ``LendingAccountLiquidateEvent`` of ``golden`` (layout in the module docstring)."""
    liquidator, liquidatee = golden.liquidator_asset, golden.liquidatee_asset
    asset_mint, liability_mint = liquidator["token"], golden.liquidator_liability["token"]
    changes = [
        int(golden.liquidatee_asset["amount"]),
        int(golden.liquidatee_liability["amount"]),
        int(golden.liquidator_asset["amount"]),
        int(golden.liquidator_liability["amount"]),
    ]
    pre = [abs(changes[0]) + 12_345.5, abs(changes[1]) + 6_789.125, 1_000.25, 0.5]
    post = [base + change for base, change in zip(pre, changes, strict=True)]
    body = b"".join(
        [
            b"\x01" + pubkey_bytes(liquidator["signer"]),
            pubkey_bytes(liquidator["account"]),
            pubkey_bytes(liquidator["signer"]),
            pubkey_bytes(MARGINFI_GROUP),
            pubkey_bytes(liquidatee["account"]),
            pubkey_bytes(liquidatee["signer"]),
            pubkey_bytes(bank_for(asset_mint)),
            pubkey_bytes(asset_mint),
            pubkey_bytes(bank_for(liability_mint)),
            pubkey_bytes(liability_mint),
            struct.pack("<dd", *health),
            struct.pack("<4d", *pre),
            struct.pack("<4d", *post),
        ]
    )
    return anchor_discriminator("event", "LendingAccountLiquidateEvent") + body


def marginfi_liquidation_transaction(
    golden: GoldenLiquidation,
    *,
    slot: int,
    block_time: int,
    layout: str = "0.1.0",
    event: bytes | None = None,
    extra_logs: Sequence[str] = (),
) -> dict[str, Any]:
    """Return a ``getTransaction`` result holding the liquidation of ``golden`` (see the module docstring).

    ``layout`` picks the instruction arguments: ``"0.1.0"`` (u64 asset_amount), ``"0.1.7"`` (u64 + two u8
    account counts) or ``"unknown"`` (u64 + u32, a layout no IDL has).
    """
    liquidator, liquidatee = golden.liquidator_asset, golden.liquidatee_asset
    asset_bank, liab_bank = bank_for(liquidator["token"]), bank_for(golden.liquidator_liability["token"])
    liab_bank_key = pubkey_bytes(liab_bank)
    vault_authority = pda([b"liquidity_vault_auth", liab_bank_key], MARGINFI)
    vault = pda([b"liquidity_vault", liab_bank_key], MARGINFI)
    insurance = pda([b"insurance_vault", liab_bank_key], MARGINFI)
    args = struct.pack("<Q", int(liquidator["amount"]))
    if layout == "0.1.7":
        args += struct.pack("<BB", 4, 6)
    elif layout == "unknown":
        args += struct.pack("<I", 7)
    accounts = [
        MARGINFI_GROUP,
        asset_bank,
        liab_bank,
        liquidator["account"],
        liquidator["signer"],
        liquidatee["account"],
        vault_authority,
        vault,
        insurance,
        TOKEN_PROGRAM,
    ]
    liab_mint = golden.liquidator_liability["token"]
    fee_amount = abs(int(golden.liquidator_liability["amount"]) + int(golden.liquidatee_liability["amount"]))
    transfer = Ix(TOKEN_PROGRAM, [vault, insurance, vault_authority], bytes([3]) + struct.pack("<Q", fee_amount))
    liquidate = Ix(MARGINFI, accounts, anchor_discriminator("global", "lending_account_liquidate") + args, [transfer])
    payload = base64.b64encode(event if event is not None else marginfi_event_bytes(golden)).decode()
    logs = [
        *compute_budget_logs(),
        f"Program {MARGINFI} invoke [1]",
        "Program log: Instruction: LendingAccountLiquidate",
        f"Program {TOKEN_PROGRAM} invoke [2]",
        "Program log: Instruction: Transfer",
        f"Program {TOKEN_PROGRAM} consumed 4645 of 350000 compute units",
        f"Program {TOKEN_PROGRAM} success",
        *extra_logs,
        f"Program data: {payload}",
        f"Program {MARGINFI} consumed 91234 of 399700 compute units",
        f"Program {MARGINFI} success",
    ]
    owner_pre = {"account": vault, "mint": liab_mint, "owner": vault_authority, "decimals": DECIMALS[liab_mint]}
    insurance_pre = {"account": insurance, "mint": liab_mint, "owner": vault_authority, "decimals": DECIMALS[liab_mint]}
    asset_mint = liquidator["token"]
    liquidator_ata = synthetic_key(f"ata-{liquidator['signer'][:8]}-{asset_mint[:8]}")
    ata = {
        "account": liquidator_ata,
        "mint": asset_mint,
        "owner": liquidator["signer"],
        "decimals": DECIMALS[asset_mint],
    }
    pre = [{**owner_pre, "amount": 10**12}, {**insurance_pre, "amount": 10**9}, {**ata, "amount": 0}]
    post = [
        {**owner_pre, "amount": 10**12 - fee_amount},
        {**insurance_pre, "amount": 10**9 + fee_amount},
        {**ata, "amount": 0},
    ]
    return build_transaction(
        golden.signature,
        [*compute_budget(400_000, 50_000), liquidate],
        logs,
        slot=slot,
        block_time=block_time,
        payer=liquidator["signer"],
        token_balances=(pre, post),
    )


def marginfi_liquidation_transactions(shared: Path) -> dict[str, dict[str, Any]]:
    """Return one reconstructed transaction per golden signature (19), keyed by signature."""
    built: dict[str, dict[str, Any]] = {}
    for position, golden in enumerate(golden_marginfi_liquidations(shared)):
        if golden.signature not in built:
            built[golden.signature] = marginfi_liquidation_transaction(
                golden, slot=258_000_000 + position, block_time=1_712_000_000 + 60 * position
            )
    return built


# ------------------------------------------------------------------------------------------------- drift
def drift_log_transactions(shared: Path) -> list[dict[str, Any]]:
    """Wrap each real Drift log of ``drift_tx_logs.json`` in a synthetic transaction (see the module docstring)."""
    documents = json.loads((shared / DRIFT_LOGS).read_text())["transactions_logs"]
    built = []
    for position, logs in enumerate(documents):
        programs = [line.split()[1] for line in logs if line.endswith("invoke [1]")]
        # Non-liquidation instructions: the decoder must pass them over whatever their bytes.
        instructions = [Ix(program, [synthetic_key(f"payer-{position}")], b"\x00" * 8) for program in programs]
        signature = b58encode(hashlib.sha512(f"drift-log-{position}".encode()).digest())
        built.append(
            build_transaction(
                signature,
                instructions,
                logs,
                slot=360_000_000 + position,
                block_time=1_756_600_000,
                payer=synthetic_key(f"payer-{position}"),
            )
        )
    return built


def drift_liquidation_record_bytes(
    *,
    kind: int,
    user: str,
    liquidator: str,
    perp: tuple[int, int, int, int, int, int] = (0, 0, 0, 0, 0, 0),
    spot: tuple[int, int, int, int, int, int, int] = (0, 0, 0, 0, 0, 0, 0),
    margin_requirement: int = 0,
    total_collateral: int = 0,
) -> bytes:
    """Pack a ``LiquidationRecord``.

    ``kind``: 0 LiquidatePerp, 1 LiquidateSpot, 4 PerpBankruptcy. ``perp``: (market_index, oracle_price,
    base_asset_amount, quote_asset_amount, liquidator_fee, if_fee). ``spot``: (asset_market_index,
    asset_price, asset_transfer, liability_market_index, liability_price, liability_transfer, if_fee).
    """
    market_index, oracle_price, base, quote, liquidator_fee, perp_if_fee = perp
    asset_index, asset_price, asset_transfer, liability_index, liability_price, liability_transfer, spot_if_fee = spot
    zero128 = (0).to_bytes(16, "little")
    body = b"".join(
        [
            struct.pack("<q", 1_756_600_000),
            bytes([kind]),
            pubkey_bytes(user),
            pubkey_bytes(liquidator),
            margin_requirement.to_bytes(16, "little"),
            total_collateral.to_bytes(16, "little", signed=True),
            struct.pack("<QHB", 5_000_000, 77, 0),  # margin_freed, liquidation_id, bankrupt
            struct.pack("<I", 2) + struct.pack("<II", 11, 12),  # canceled_order_ids: vec<u32>
            # LiquidatePerpRecord
            struct.pack("<Hqqq", market_index, oracle_price, base, quote),
            struct.pack("<QQIIQQ", 0, 991, 0, 0, liquidator_fee, perp_if_fee),
            # LiquidateSpotRecord
            struct.pack("<Hq", asset_index, asset_price) + asset_transfer.to_bytes(16, "little"),
            struct.pack("<Hq", liability_index, liability_price) + liability_transfer.to_bytes(16, "little"),
            struct.pack("<Q", spot_if_fee),
            # LiquidateBorrowForPerpPnlRecord, LiquidatePerpPnlForDepositRecord
            (struct.pack("<Hq", 0, 0) + zero128 + struct.pack("<Hq", 0, 0) + zero128) * 2,
            # PerpBankruptcyRecord: market_index, pnl, if_payment, clawback_user None, payment None, delta
            struct.pack("<H", 0) + zero128 + zero128 + b"\x00" + b"\x00" + zero128,
            # SpotBankruptcyRecord
            struct.pack("<H", 0) + zero128 * 3,
            bytes([0]),  # bit_flags
        ]
    )
    return anchor_discriminator("event", "LiquidationRecord") + body


def drift_liquidation_transaction(
    signature: str,
    instruction: str,
    args: bytes,
    records: Sequence[bytes],
    *,
    authority: str,
    user: str,
    liquidator: str,
) -> dict[str, Any]:
    """Return a Drift ``instruction`` (``liquidate_perp`` ...) transaction whose logs carry ``records``."""
    # Drift order: state, authority, liquidator, liquidator_stats, user, user_stats.
    accounts = [
        synthetic_key("drift-state"),
        authority,
        liquidator,
        synthetic_key("liq-stats"),
        user,
        synthetic_key("user-stats"),
    ]
    ix = Ix(DRIFT, accounts, anchor_discriminator("global", instruction) + args)
    logs = [
        *compute_budget_logs(),
        f"Program {DRIFT} invoke [1]",
        f"Program log: Instruction: {''.join(p.title() for p in instruction.split('_'))}",
        *(f"Program data: {base64.b64encode(r).decode()}" for r in records),
        f"Program {DRIFT} consumed 120000 of 1399700 compute units",
        f"Program {DRIFT} success",
    ]
    return build_transaction(
        signature,
        [*compute_budget(1_400_000, 1_000), ix],
        logs,
        slot=361_000_000,
        block_time=1_756_600_100,
        payer=authority,
    )


# ------------------------------------------------------------------------------------------------ kamino
def kamino_liquidation_transaction(
    signature: str,
    *,
    liquidator: str,
    repay: tuple[str, int, int],
    seized: tuple[str, int, int],
    v2: bool = False,
    legacy_accounts: bool = False,
) -> dict[str, Any]:
    """Return a Kamino liquidation of the fixtures' obligation, repaying ``repay`` = (mint, before, after) of the
    liquidator's source account and receiving ``seized`` = (mint, before, after) on its destination account."""
    source, destination = synthetic_key("kamino-src"), synthetic_key("kamino-dst")
    withdraw_reserve = synthetic_key("kamino-sol-reserve")
    named = {
        "liquidator": liquidator,
        "obligation": KAMINO_OBLIGATION,
        "lending_market": synthetic_key("market"),
        "lending_market_authority": synthetic_key("market-auth"),
        "repay_reserve": KAMINO_USDC_RESERVE,
        "repay_reserve_liquidity_mint": repay[0],
        "repay_reserve_liquidity_supply": synthetic_key("usdc-supply"),
        "withdraw_reserve": withdraw_reserve,
        "withdraw_reserve_liquidity_mint": seized[0],
        "withdraw_reserve_collateral_mint": synthetic_key("ksol-mint"),
        "withdraw_reserve_collateral_supply": synthetic_key("ksol-supply"),
        "withdraw_reserve_liquidity_supply": synthetic_key("sol-supply"),
        "withdraw_reserve_liquidity_fee_receiver": synthetic_key("sol-fee"),
        "user_source_liquidity": source,
        "user_destination_collateral": synthetic_key("kamino-dst-collateral"),
        "user_destination_liquidity": destination,
        "collateral_token_program": TOKEN_PROGRAM,
        "repay_liquidity_token_program": TOKEN_PROGRAM,
        "withdraw_liquidity_token_program": TOKEN_PROGRAM,
        "instruction_sysvar_account": SYSVAR_INSTRUCTIONS,
    }
    order = list(named)
    if legacy_accounts:  # klend 0.1.0: no liquidity mints, one token program
        order = [
            n
            for n in order
            if n
            not in {
                "repay_reserve_liquidity_mint",
                "withdraw_reserve_liquidity_mint",
                "repay_liquidity_token_program",
                "withdraw_liquidity_token_program",
            }
        ]
    accounts = [named[n] for n in order]
    name = "liquidate_obligation_and_redeem_reserve_collateral"
    if v2:
        accounts += [synthetic_key(f"farm-{i}") for i in range(4)] + [synthetic_key("farms-program")]
        name += "_v2"
    args = struct.pack("<QQQ", repay[1] - repay[2], 1, 0)
    ix = Ix(KAMINO, accounts, anchor_discriminator("global", name) + args)
    logs = [
        *compute_budget_logs(),
        f"Program {KAMINO} invoke [1]",
        "Program log: Instruction: LiquidateObligationAndRedeemReserveCollateral",
        f"Program {KAMINO} consumed 150000 of 399700 compute units",
        f"Program {KAMINO} success",
    ]
    balances = (
        [
            {
                "account": source,
                "mint": repay[0],
                "owner": liquidator,
                "amount": repay[1],
                "decimals": DECIMALS[repay[0]],
            },
            {
                "account": destination,
                "mint": seized[0],
                "owner": liquidator,
                "amount": seized[1],
                "decimals": DECIMALS[seized[0]],
            },
        ],
        [
            {
                "account": source,
                "mint": repay[0],
                "owner": liquidator,
                "amount": repay[2],
                "decimals": DECIMALS[repay[0]],
            },
            {
                "account": destination,
                "mint": seized[0],
                "owner": liquidator,
                "amount": seized[2],
                "decimals": DECIMALS[seized[0]],
            },
        ],
    )
    return build_transaction(
        signature,
        [*compute_budget(600_000, 250_000), ix],
        logs,
        slot=362_000_000,
        block_time=1_760_000_000,
        payer=liquidator,
        token_balances=balances,
    )
