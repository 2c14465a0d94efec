"""Decode Solana liquidation transactions of marginfi v2, Drift v2 and Kamino klend into store rows.

Interface (shared with ``datasets.onchain.fetch``)::

    decode_transaction(tx, *, protocol, idls, mints, position_in_block=None, prices=None) -> DecodedTransaction

``tx`` is one ``getTransaction`` result (``json`` or ``jsonParsed``, ``maxSupportedTransactionVersion: 0``);
``protocol`` is ``"marginfi"``, ``"drift"`` or ``"kamino"``; ``idls`` comes from ``load_idls(directory)``;
``mints`` from ``MintTable.default()``. ``position_in_block`` is the only addition to the agreed signature:
``getTransaction`` does not say where a transaction sat in its block (``getBlock`` does), so a caller that
knows passes it and the extras row carries it. ``prices`` (a ``datasets.onchain.prices.PriceTable``) prices the
marginfi and Kamino legs, whose transactions carry no oracle price.

The result holds ``liquidations`` rows (the ``liquidations`` kind), ``extras`` rows (``liquidation_extras``),
the decoded ``events`` and ``skips``: a transaction or instruction that cannot be decoded into a right row
(failed transaction, logs that do not match the IDL, truncated event body, unknown program version, a
mint the table lacks) is recorded as a ``Skip`` with the signature and the reason, never as a guessed row.
``liquidations_frame`` and ``extras_frame`` turn results into frames of the canonical schemas.

What each protocol's rows say:

- marginfi ``lending_account_liquidate``: the ``LendingAccountLiquidateEvent`` of the same invocation names
  the asset (seized) and liability (repaid) mints; the seized amount is the instruction's exact
  ``asset_amount``; the repaid amount is the liquidatee's liability change in the event, which the program
  logs as f64 native units (rounded to the nearest unit). Pre/post health are the event's.
- Drift ``liquidate_perp``, ``liquidate_spot``, ``liquidate_borrow_for_perp_pnl``,
  ``liquidate_perp_pnl_for_deposit`` (and ``liquidate_perp_with_fill``): one row per ``LiquidationRecord``
  the invocation emits, from its perp/spot sub-record; prices are the record's oracle prices (USD), so
  ``notional_usd`` is known. Pre-health is ``total_collateral - margin_requirement`` (USD).
- Values: with a USD price of both mints (the Drift record's oracle prices, or ``prices`` for marginfi and
  Kamino), the extras row carries ``repaid_value_usd``, ``seized_value_usd``, the liquidation bonus
  ``liquidation_bonus_usd`` = seized value - repaid value and ``liquidation_bonus_bps`` = bonus / repaid
  value x 10,000, and ``price_source``; the liquidation row's ``notional_usd`` = quantity x the base's price.
- Kamino ``liquidate_obligation_and_redeem_reserve_collateral`` (and ``_v2``): no event exists, so the
  instruction's accounts name the obligation, reserves and the liquidator's token accounts, and the
  repaid and seized amounts are those token accounts' ``pre``/``postTokenBalances`` deltas.

A lending liquidation becomes a pair row: the asset earlier in ``QUOTE_PRIORITY`` (USDC, USDT, ..., SOL)
quotes. If the seized collateral is the base, the liquidated position was long it (``side=long``,
``quantity`` = seized base units, ``price`` = repaid quote per seized base); if the repaid debt is the base,
it was short (``side=short``, ``quantity`` = repaid units, ``price`` = seized quote per repaid unit). The
price therefore includes the liquidation bonus.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, localcontext
from typing import Any, Literal

import polars as pl

from datasets.onchain.errors import IdlError, OnchainError
from datasets.onchain.idl import PROGRAM_IDS, DecodedEvent, DecodedInstruction, Idls
from datasets.onchain.mints import (
    DRIFT_PERP_MARKETS,
    DRIFT_PRICE_DECIMALS,
    DRIFT_QUOTE_DECIMALS,
    MintInfo,
    MintTable,
    pair_symbol,
)
from datasets.onchain.prices import PriceTable
from datasets.onchain.transaction import Frame, Instruction, Transaction, decode_base64, read_logs, read_transaction

Protocol = Literal["marginfi", "drift", "kamino"]
PROTOCOLS: tuple[Protocol, ...] = ("marginfi", "drift", "kamino")
VENUE = "solana"
COMPUTE_BUDGET_PROGRAM = "ComputeBudget111111111111111111111111111111"
DEFAULT_UNITS_PER_INSTRUCTION = 200_000
MAX_COMPUTE_UNITS = 1_400_000
MICRO_LAMPORTS = 1_000_000
DRIFT_BASE_DECIMALS = 9
_QUANTUM = Decimal("1e-18")

LIQUIDATION_INSTRUCTIONS: Mapping[str, frozenset[str]] = {
    "marginfi": frozenset({"lending_account_liquidate"}),
    "drift": frozenset(
        {
            "liquidate_perp",
            "liquidate_perp_with_fill",
            "liquidate_spot",
            "liquidate_borrow_for_perp_pnl",
            "liquidate_perp_pnl_for_deposit",
        }
    ),
    "kamino": frozenset(
        {"liquidate_obligation_and_redeem_reserve_collateral", "liquidate_obligation_and_redeem_reserve_collateral_v2"}
    ),
}


@dataclass(frozen=True, slots=True)
class Skip:
    """A transaction, or one instruction of it, left out of the rows, and why."""

    signature: str
    reason: str
    instruction_index: int | None = None


@dataclass(frozen=True, slots=True)
class LocatedEvent:
    """A decoded Anchor event and the instruction whose invocation emitted it."""

    instruction_index: int | None
    inner_instruction_index: int | None
    event: DecodedEvent


@dataclass(slots=True)
class DecodedTransaction:
    """What ``decode_transaction`` found in one transaction."""

    signature: str
    slot: int
    liquidations: list[dict[str, Any]] = field(default_factory=list)
    extras: list[dict[str, Any]] = field(default_factory=list)
    events: list[LocatedEvent] = field(default_factory=list)
    skips: list[Skip] = field(default_factory=list)


class _SkipInstruction(OnchainError):
    """Raised inside a protocol decoder: the instruction yields no row, for the reason given."""


@dataclass(frozen=True, slots=True)
class _Context:
    tx: Transaction
    protocol: str
    idls: Idls
    mints: MintTable
    frames: list[Frame]
    position_in_block: int | None
    budget: tuple[int | None, int | None]
    prices: PriceTable | None


def decode_transaction(
    tx: Mapping[str, Any],
    *,
    protocol: str,
    idls: Idls,
    mints: MintTable,
    position_in_block: int | None = None,
    prices: PriceTable | None = None,
) -> DecodedTransaction:
    """Decode the liquidations of ``protocol`` in one ``getTransaction`` result.

    Parameters
    ----------
    tx : Mapping
        A ``getTransaction`` result, ``json`` or ``jsonParsed`` encoding.
    protocol : {"marginfi", "drift", "kamino"}
        Whose instructions and events to decode.
    idls : Idls
        The Anchor IDLs (``load_idls``), every known version of the protocol.
    mints : MintTable
        Mint symbols and decimals.
    position_in_block : int, optional
        The transaction's index in its block, when the caller knows it (``getBlock``).
    prices : PriceTable, optional
        USD prices of mints, for the marginfi and Kamino legs (``notional_usd`` and the bonus).

    Returns
    -------
    DecodedTransaction
        Rows, events and skips. A failed transaction yields one skip and no rows.

    Raises
    ------
    TransactionFormatError
        If ``tx`` is not a ``getTransaction`` result (a field is missing or of the wrong shape).
    IdlError
        If ``protocol`` is unknown or no IDL of it was loaded.
    """
    if protocol not in PROTOCOLS:
        raise IdlError(f"protocol must be one of {', '.join(PROTOCOLS)}, was {protocol!r}")
    idls.versions(protocol)
    parsed = read_transaction(tx)
    result = DecodedTransaction(parsed.signature, parsed.slot)
    if parsed.err is not None:
        result.skips.append(Skip(parsed.signature, f"transaction failed on chain ({parsed.err}); nothing changed"))
        return result
    program_id = PROGRAM_IDS[protocol]
    targets = [i for i in parsed.all_instructions() if i.program_id == program_id and i.data is not None]
    if not targets:
        return result
    if parsed.logs is None:
        result.skips.append(Skip(parsed.signature, "meta.logMessages is missing; events cannot be read"))
        return result
    logs = read_logs(parsed.logs, parsed)
    context = _Context(parsed, protocol, idls, mints, logs.frames, position_in_block, _compute_budget(parsed), prices)
    result.events.extend(_events(context, result))
    for instruction in targets:
        _decode_instruction(context, instruction, result, truncated=logs.truncated)
    return result


def _decode_instruction(
    context: _Context, instruction: Instruction, result: DecodedTransaction, *, truncated: bool
) -> None:
    tx = context.tx
    assert instruction.data is not None
    if (
        context.idls.instruction_name(context.protocol, instruction.data)
        not in LIQUIDATION_INSTRUCTIONS[context.protocol]
    ):
        return
    try:
        decoded = context.idls.decode_instruction(context.protocol, instruction.data, instruction.accounts)
    except IdlError as error:
        result.skips.append(Skip(tx.signature, str(error), instruction.index))
        return
    if decoded is None:
        return
    if truncated:
        result.skips.append(
            Skip(tx.signature, "logs were truncated by the node; events may be missing", instruction.index)
        )
        return
    if tx.block_time is None:
        result.skips.append(Skip(tx.signature, "blockTime is null; a row needs its time", instruction.index))
        return
    events = [
        e.event
        for e in result.events
        if e.instruction_index == instruction.index and e.inner_instruction_index == instruction.inner_index
    ]
    decoder = _DECODERS[context.protocol]
    try:
        rows = decoder(context, instruction, decoded, events)
    except _SkipInstruction as error:
        result.skips.append(Skip(tx.signature, str(error), instruction.index))
        return
    for liquidation, extras in rows:
        if liquidation is not None:
            liquidation["source"] = f"solana-rpc/{context.protocol}-idl-{decoded.version}"
            result.liquidations.append(liquidation)
        result.extras.append(extras)


def _events(context: _Context, result: DecodedTransaction) -> list[LocatedEvent]:
    program_id = PROGRAM_IDS[context.protocol]
    located = []
    for frame in context.frames:
        if frame.program_id != program_id:
            continue
        for payload in frame.data:
            raw = decode_base64(payload)
            if raw is None:
                result.skips.append(
                    Skip(context.tx.signature, f"Program data {payload[:16]!r}... is not base64", frame.index)
                )
                continue
            try:
                event = context.idls.decode_event(context.protocol, raw)
            except IdlError as error:
                result.skips.append(Skip(context.tx.signature, str(error), frame.index))
                continue
            if event is not None:
                located.append(LocatedEvent(frame.index, frame.inner_index, event))
    return located


def _compute_budget(tx: Transaction) -> tuple[int | None, int | None]:
    limit: int | None = None
    price: int | None = None
    for instruction in tx.instructions:
        data = instruction.data
        if instruction.program_id != COMPUTE_BUDGET_PROGRAM or not data:
            continue
        if data[0] == 2 and len(data) >= 5:
            limit = int.from_bytes(data[1:5], "little")
        elif data[0] == 3 and len(data) >= 9:
            price = int.from_bytes(data[1:9], "little")
    return limit, price


def _base_extras(context: _Context, instruction: Instruction, decoded: DecodedInstruction) -> dict[str, Any]:
    tx = context.tx
    limit, price = context.budget
    if limit is None:
        others = sum(1 for i in tx.instructions if i.program_id != COMPUTE_BUDGET_PROGRAM)
        limit_used = min(DEFAULT_UNITS_PER_INSTRUCTION * others, MAX_COMPUTE_UNITS)
    else:
        limit_used = limit
    priority = None if price is None else math.ceil(price * limit_used / MICRO_LAMPORTS)
    return {
        "venue": VENUE,
        "protocol": context.protocol,
        "ts": _ts(tx),
        "slot": tx.slot,
        "tx_signature": tx.signature,
        "instruction_index": instruction.index,
        "inner_instruction_index": instruction.inner_index,
        "instruction": decoded.name,
        "idl_version": decoded.version,
        "compute_unit_limit": limit,
        "compute_unit_price_micro_lamports": price,
        "priority_fee_lamports": priority,
        "fee_lamports": tx.fee,
        "compute_units_consumed": tx.compute_units_consumed,
        "position_in_block": context.position_in_block,
        "record_index": 0,
        "liquidation_bonus_bps": None,
    }


def _ts(tx: Transaction) -> datetime:
    assert tx.block_time is not None
    return datetime.fromtimestamp(tx.block_time, UTC)


def _units(amount: int, decimals: int) -> Decimal:
    return Decimal(amount).scaleb(-decimals)


def _ratio(numerator: Decimal, denominator: Decimal) -> Decimal | None:
    if denominator == 0:
        return None
    with localcontext() as ctx:
        ctx.prec = 60
        return (numerator / denominator).quantize(_QUANTUM)


def _event_id(tx: Transaction, instruction: Instruction, position: int = 0) -> str:
    inner = "" if instruction.inner_index is None else f".{instruction.inner_index}"
    suffix = "" if position == 0 else f"#{position}"
    return f"{tx.signature}:{instruction.index}{inner}{suffix}"


def _mint(context: _Context, mint: str) -> MintInfo:
    info = context.mints.get(mint)
    if info is None:
        raise _SkipInstruction(
            f"mint {mint} is not in the mint table; add it (symbol, decimals, source) to datasets/onchain/mints.py"
        )
    return info


@dataclass(frozen=True, slots=True)
class _LendingFill:
    collateral: MintInfo
    seized: int
    debt: MintInfo
    repaid: int
    account: str
    liquidator: str
    collateral_price_usd: Decimal | None = None
    debt_price_usd: Decimal | None = None
    price_source: str | None = None


def _priced(context: _Context, fill: _LendingFill) -> _LendingFill:
    table = context.prices
    if table is None or fill.collateral.mint not in table or fill.debt.mint not in table:
        return fill
    collateral, debt = table[fill.collateral.mint], table[fill.debt.mint]
    sources = dict.fromkeys((collateral.source, debt.source))
    return dataclasses.replace(
        fill,
        collateral_price_usd=collateral.price_usd,
        debt_price_usd=debt.price_usd,
        price_source=f"price table: {'; '.join(sources)}",
    )


def _lending_row(context: _Context, instruction: Instruction, fill: _LendingFill, position: int = 0) -> dict[str, Any]:
    base, quote, _ = pair_symbol(fill.collateral.symbol, fill.debt.symbol)
    seized = _units(fill.seized, fill.collateral.decimals)
    repaid = _units(fill.repaid, fill.debt.decimals)
    if base == fill.collateral.symbol:
        side, quantity, price, base_price = "long", seized, _ratio(repaid, seized), fill.collateral_price_usd
    else:
        side, quantity, price, base_price = "short", repaid, _ratio(seized, repaid), fill.debt_price_usd
    notional = None if base_price is None else (quantity * base_price).quantize(_QUANTUM)
    return _liquidation(
        context, instruction, f"{base}-{quote}", "spot", side, price, quantity, notional, fill, position
    )


def _liquidation(
    context: _Context,
    instruction: Instruction,
    symbol: str,
    market: str,
    side: str | None,
    price: Decimal | None,
    quantity: Decimal | None,
    notional: Decimal | None,
    fill: _LendingFill | tuple[str, str],
    position: int,
) -> dict[str, Any]:
    account, liquidator = (fill.account, fill.liquidator) if isinstance(fill, _LendingFill) else fill
    return {
        "venue": VENUE,
        "protocol": context.protocol,
        "symbol": symbol,
        "market": market,
        "ts": _ts(context.tx),
        "side": side,
        "price": price if price is None or price > 0 else None,
        "quantity": None if quantity is None else quantity.quantize(_QUANTUM),
        "notional_usd": notional,
        "account": account,
        "liquidator": liquidator,
        "order_id": None,
        "tx_signature": context.tx.signature,
        "source": f"solana-rpc/{context.protocol}",
        "event_id": _event_id(context.tx, instruction, position),
    }


# ------------------------------------------------------------------------------------------ marginfi
def _decode_marginfi(
    context: _Context, instruction: Instruction, decoded: DecodedInstruction, events: list[DecodedEvent]
) -> list[tuple[dict[str, Any] | None, dict[str, Any]]]:
    found = [e for e in events if e.name == "LendingAccountLiquidateEvent"]
    if len(found) != 1:
        raise _SkipInstruction(
            f"expected one LendingAccountLiquidateEvent in the logs of lending_account_liquidate, found {len(found)}; "
            "the logs do not match the IDL"
        )
    event = found[0].fields
    accounts = decoded.accounts
    liquidator_account = accounts.get("liquidator_marginfi_account")
    expected = {
        "asset_bank": (event["asset_bank"], accounts.get("asset_bank")),
        "liability_bank": (event["liability_bank"], accounts.get("liab_bank")),
        "liquidator account": (event["header"]["marginfi_account"], liquidator_account),
        "liquidatee account": (event["liquidatee_marginfi_account"], accounts.get("liquidatee_marginfi_account")),
    }
    for what, (in_event, in_instruction) in expected.items():
        if in_event != in_instruction:
            raise _SkipInstruction(
                f"the event's {what} {in_event} is not the instruction's {in_instruction}; the logs do not match"
            )
    pre, post = event["pre_balances"], event["post_balances"]
    repaid = round(pre["liquidatee_liability_balance"] - post["liquidatee_liability_balance"])
    signer = event["header"]["signer"] or accounts.get("authority") or accounts.get("signer")
    fill = _LendingFill(
        collateral=_mint(context, event["asset_mint"]),
        seized=int(decoded.args["asset_amount"]),
        debt=_mint(context, event["liability_mint"]),
        repaid=repaid,
        account=event["liquidatee_marginfi_account"],
        liquidator=str(signer),
    )
    fill = _priced(context, fill)
    extras = {
        **_base_extras(context, instruction, decoded),
        **_fill_extras(fill),
        "liquidator_account": liquidator_account,
        "account_authority": event["liquidatee_marginfi_account_authority"],
        "liquidator_fee_mint": None,
        "liquidator_fee_amount": None,
        "pre_health": _float_decimal(event["liquidatee_pre_health"]),
        "post_health": _float_decimal(event["liquidatee_post_health"]),
        "amount_notes": "seized = asset_amount argument (exact); repaid = liquidatee liability change in the "
        "event (f64 native units, rounded); health = the event's f64",
        "event_id": _event_id(context.tx, instruction),
    }
    return [(_lending_row(context, instruction, fill), extras)]


def _fill_extras(fill: _LendingFill) -> dict[str, Any]:
    return {
        **_values(fill),
        "account": fill.account,
        "liquidator": fill.liquidator,
        "repay_mint": fill.debt.mint,
        "repay_amount": Decimal(fill.repaid),
        "repay_decimals": fill.debt.decimals,
        "seized_mint": fill.collateral.mint,
        "seized_amount": Decimal(fill.seized),
        "seized_decimals": fill.collateral.decimals,
    }


def _float_decimal(value: float | None) -> Decimal | None:
    if value is None or not math.isfinite(value):
        return None
    return Decimal(repr(value)).quantize(_QUANTUM)


# --------------------------------------------------------------------------------------------- drift
def _bps(part: Decimal, whole: Decimal) -> Decimal | None:
    ratio = _ratio(part * 10_000, whole)
    return ratio


def _values(fill: _LendingFill) -> dict[str, Any]:
    if fill.collateral_price_usd is None or fill.debt_price_usd is None:
        return {}
    seized = (_units(fill.seized, fill.collateral.decimals) * fill.collateral_price_usd).quantize(_QUANTUM)
    repaid = (_units(fill.repaid, fill.debt.decimals) * fill.debt_price_usd).quantize(_QUANTUM)
    return {
        "repaid_value_usd": repaid,
        "seized_value_usd": seized,
        "liquidation_bonus_usd": seized - repaid,
        "liquidation_bonus_bps": _bps(seized - repaid, repaid),
        "price_source": fill.price_source,
    }


def _decode_drift(
    context: _Context, instruction: Instruction, decoded: DecodedInstruction, events: list[DecodedEvent]
) -> list[tuple[dict[str, Any] | None, dict[str, Any]]]:
    records = [e.fields for e in events if e.name == "LiquidationRecord"]
    if not records:
        raise _SkipInstruction(f"{decoded.name} emitted no LiquidationRecord; the logs do not match the IDL")
    rows: list[tuple[dict[str, Any] | None, dict[str, Any]]] = []
    for position, record in enumerate(records):
        kind = record["liquidation_type"]
        handler = _DRIFT_KINDS.get(kind)
        if handler is None:
            continue  # bankruptcy records settle losses; they are not liquidation fills
        liquidation, extras = handler(context, instruction, record, position)
        authority = decoded.accounts.get("authority")
        extras = {
            **_base_extras(context, instruction, decoded),
            "account": record["user"],
            "liquidator": authority,
            "liquidator_account": record["liquidator"],
            "account_authority": None,
            "pre_health": Decimal(record["total_collateral"] - record["margin_requirement"]).scaleb(
                -DRIFT_QUOTE_DECIMALS
            ),
            "post_health": None,
            "event_id": _event_id(context.tx, instruction, position),
            "record_index": position,
            **extras,
        }
        liquidation["liquidator"] = authority
        rows.append((liquidation, extras))
    return rows


def _drift_perp(
    context: _Context, instruction: Instruction, record: dict[str, Any], position: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    perp = record["liquidate_perp"]
    market = DRIFT_PERP_MARKETS.get(perp["market_index"])
    if market is None:
        raise _SkipInstruction(f"Drift perp market {perp['market_index']} is not in DRIFT_PERP_MARKETS; add it")
    base_amount = perp["base_asset_amount"]
    quantity = _units(abs(base_amount), DRIFT_BASE_DECIMALS)
    price = _units(perp["oracle_price"], DRIFT_PRICE_DECIMALS)
    side = "long" if base_amount < 0 else "short"  # the change of the liquidated user's position
    notional = (quantity * price).quantize(_QUANTUM)
    row = _liquidation(
        context,
        instruction,
        f"{market[0]}-USDC-PERP",
        "perp",
        side,
        price,
        quantity,
        notional,
        (record["user"], record["liquidator"]),
        position,
    )
    usdc = context.mints.drift_spot_mint(0)
    extras = {
        "repay_mint": None,
        "repay_amount": None,
        "repay_decimals": None,
        "seized_mint": None,
        "seized_amount": None,
        "seized_decimals": None,
        "liquidator_fee_mint": usdc,
        "liquidator_fee_amount": Decimal(perp["liquidator_fee"]),
        "liquidation_bonus_bps": _bps(Decimal(perp["liquidator_fee"]), Decimal(abs(perp["quote_asset_amount"]))),
        "liquidation_bonus_usd": _units(perp["liquidator_fee"], DRIFT_QUOTE_DECIMALS),
        "price_source": "the LiquidationRecord's oracle price; the liquidator fee in USDC taken at 1 USD",
        "amount_notes": f"perp: base {base_amount} (1e9), quote {perp['quote_asset_amount']} (1e6), "
        f"liquidator fee and if_fee {perp['if_fee']} in USDC (1e6)",
    }
    return row, extras


def _drift_spot_mint(context: _Context, index: int) -> MintInfo:
    mint = context.mints.drift_spot_mint(index)
    if mint is None:
        raise _SkipInstruction(f"Drift spot market {index} has no mint in the mint table; add it")
    return _mint(context, mint)


def _drift_spot_like(
    context: _Context,
    instruction: Instruction,
    record: dict[str, Any],
    position: int,
    legs: tuple[int, int, int, int, int, int],
    note: str,
) -> tuple[dict[str, Any], dict[str, Any]]:
    asset_index, asset_transfer, asset_price, liability_index, liability_transfer, liability_price = legs
    fill = _LendingFill(
        collateral=_drift_spot_mint(context, asset_index),
        seized=asset_transfer,
        debt=_drift_spot_mint(context, liability_index),
        repaid=liability_transfer,
        account=record["user"],
        liquidator=record["liquidator"],
        collateral_price_usd=_units(asset_price, DRIFT_PRICE_DECIMALS),
        debt_price_usd=_units(liability_price, DRIFT_PRICE_DECIMALS),
        price_source="the LiquidationRecord's oracle prices",
    )
    extras = {
        **_fill_extras(fill),
        "liquidator_fee_mint": None,
        "liquidator_fee_amount": None,
        "amount_notes": note,
    }
    for name in ("account", "liquidator"):
        extras.pop(name)
    return _lending_row(context, instruction, fill, position), extras


def _drift_spot(
    context: _Context, instruction: Instruction, record: dict[str, Any], position: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    spot = record["liquidate_spot"]
    legs = (
        spot["asset_market_index"],
        spot["asset_transfer"],
        spot["asset_price"],
        spot["liability_market_index"],
        spot["liability_transfer"],
        spot["liability_price"],
    )
    return _drift_spot_like(context, instruction, record, position, legs, f"spot: if_fee {spot['if_fee']}")


def _drift_borrow_for_pnl(
    context: _Context, instruction: Instruction, record: dict[str, Any], position: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    leg = record["liquidate_borrow_for_perp_pnl"]
    # The liquidator takes the user's borrow and is paid in the user's positive perp pnl (USDC).
    legs = (
        0,
        leg["pnl_transfer"],
        10**DRIFT_PRICE_DECIMALS,
        leg["liability_market_index"],
        leg["liability_transfer"],
        leg["liability_price"],
    )
    note = f"borrow for perp pnl: perp market {leg['perp_market_index']}, pnl transfer in USDC (1e6)"
    return _drift_spot_like(context, instruction, record, position, legs, note)


def _drift_pnl_for_deposit(
    context: _Context, instruction: Instruction, record: dict[str, Any], position: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    leg = record["liquidate_perp_pnl_for_deposit"]
    # The liquidator takes the user's negative perp pnl (USDC) and is paid in the user's deposit.
    legs = (
        leg["asset_market_index"],
        leg["asset_transfer"],
        leg["asset_price"],
        0,
        leg["pnl_transfer"],
        10**DRIFT_PRICE_DECIMALS,
    )
    note = f"perp pnl for deposit: perp market {leg['perp_market_index']}, pnl transfer in USDC (1e6)"
    return _drift_spot_like(context, instruction, record, position, legs, note)


_DRIFT_KINDS = {
    "LiquidatePerp": _drift_perp,
    "LiquidateSpot": _drift_spot,
    "LiquidateBorrowForPerpPnl": _drift_borrow_for_pnl,
    "LiquidatePerpPnlForDeposit": _drift_pnl_for_deposit,
}


# -------------------------------------------------------------------------------------------- kamino
def _decode_kamino(
    context: _Context, instruction: Instruction, decoded: DecodedInstruction, events: list[DecodedEvent]
) -> list[tuple[dict[str, Any] | None, dict[str, Any]]]:
    accounts = decoded.accounts
    source, destination = accounts["user_source_liquidity"], accounts["user_destination_liquidity"]
    same_accounts = [
        i
        for i in context.tx.all_instructions()
        if i.program_id == instruction.program_id and i is not instruction and {source, destination} & set(i.accounts)
    ]
    if same_accounts:
        raise _SkipInstruction(
            "another Kamino instruction of this transaction uses the same liquidator token accounts; "
            "their balance deltas cannot be split between the two"
        )
    repay_mint, repay_delta, repay_decimals = _delta(context.tx, source)
    seized_mint, seized_delta, seized_decimals = _delta(context.tx, destination)
    if repay_delta >= 0 or seized_delta <= 0:
        raise _SkipInstruction(
            f"expected the liquidator's source account {source} to fall and destination {destination} to rise, "
            f"were {repay_delta} and {seized_delta}; no redeemed liquidation to record"
        )
    collateral, debt = _mint(context, seized_mint), _mint(context, repay_mint)
    for info, decimals in ((collateral, seized_decimals), (debt, repay_decimals)):
        if info.decimals != decimals:
            raise _SkipInstruction(f"mint {info.mint} has {decimals} decimals on chain, the table says {info.decimals}")
    fill = _LendingFill(collateral, seized_delta, debt, -repay_delta, accounts["obligation"], accounts["liquidator"])
    fill = _priced(context, fill)
    extras = {
        **_base_extras(context, instruction, decoded),
        **_fill_extras(fill),
        "liquidator_account": None,
        "account_authority": None,
        "liquidator_fee_mint": None,
        "liquidator_fee_amount": None,
        "pre_health": None,
        "post_health": None,
        "amount_notes": f"token balance deltas of {source} (repaid) and {destination} (seized); "
        f"repay reserve {accounts['repay_reserve']}, withdraw reserve {accounts['withdraw_reserve']}, "
        f"liquidity_amount argument {decoded.args['liquidity_amount']}",
        "event_id": _event_id(context.tx, instruction),
    }
    return [(_lending_row(context, instruction, fill), extras)]


def _delta(tx: Transaction, account: str) -> tuple[str, int, int]:
    pre = {b.account: b for b in tx.pre_token_balances}
    post = {b.account: b for b in tx.post_token_balances}
    before, after = pre.get(account), post.get(account)
    known = after or before
    if known is None:
        raise _SkipInstruction(f"token account {account} has no pre/postTokenBalances entry; amounts unknown")
    return known.mint, (after.amount if after else 0) - (before.amount if before else 0), known.decimals


_DECODERS = {"marginfi": _decode_marginfi, "drift": _decode_drift, "kamino": _decode_kamino}


# -------------------------------------------------------------------------------------------- frames
def liquidations_frame(decoded: Iterable[DecodedTransaction]) -> pl.DataFrame:
    """Return the liquidation rows of ``decoded`` as a frame of the ``liquidations`` schema."""
    from datasets.schemas import LIQUIDATIONS

    rows = [row for d in decoded for row in d.liquidations]
    return (
        pl.DataFrame(rows, schema=LIQUIDATIONS.polars_schema, orient="row")
        if rows
        else pl.DataFrame(schema=LIQUIDATIONS.polars_schema)
    )


def extras_frame(decoded: Iterable[DecodedTransaction]) -> pl.DataFrame:
    """Return the extras rows of ``decoded`` as a frame of the ``liquidation_extras`` schema."""
    from datasets.schemas import LIQUIDATION_EXTRAS

    schema = LIQUIDATION_EXTRAS.polars_schema
    rows = [{name: row.get(name) for name in schema} for d in decoded for row in d.extras]
    return pl.DataFrame(rows, schema=schema, orient="row") if rows else pl.DataFrame(schema=schema)
