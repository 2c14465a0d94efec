"""A ``getTransaction`` result (``json`` or ``jsonParsed`` encoding, version 0 or legacy) read into plain parts.

The result is taken as the Solana RPC returns it (``maxSupportedTransactionVersion: 0``): ``slot``,
``blockTime``, ``transaction.{signatures, message.{accountKeys, instructions, addressTableLookups}}`` and
``meta.{err, fee, logMessages, preTokenBalances, postTokenBalances, loadedAddresses, innerInstructions,
computeUnitsConsumed}``. With ``json`` encoding the account list is the message's static keys followed by
``meta.loadedAddresses.writable`` then ``.readonly`` (the runtime's order); ``jsonParsed`` lists them all in
``accountKeys`` already. Instruction data is base58 in both; instructions ``jsonParsed`` shows parsed
(System, SPL Token, ...) carry no raw data and are kept with ``data=None``.

``read_logs`` splits ``logMessages`` into the invocation frames of each program, so an Anchor event (a
``Program data:`` line) is attributed to the program and instruction that emitted it, not to whichever
program's id appears nearby.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from datasets.onchain.errors import TransactionFormatError

_B58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_B58_INDEX = {ch: i for i, ch in enumerate(_B58_ALPHABET)}
_INVOKE = re.compile(r"^Program (\S+) invoke \[(\d+)\]$")
_CONSUMED = re.compile(r"^Program (\S+) consumed (\d+) of (\d+) compute units$")
_EXIT = re.compile(r"^Program (\S+) (success|failed: .*)$")
DATA_PREFIX = "Program data: "
TRUNCATED = "Log truncated"


def b58decode(text: str) -> bytes:
    """Decode a base58 (Bitcoin alphabet) string, as Solana RPC encodes instruction data.

    Raises
    ------
    TransactionFormatError
        If ``text`` holds a character outside the base58 alphabet.
    """
    number = 0
    try:
        for ch in text:
            number = number * 58 + _B58_INDEX[ch]
    except KeyError as error:
        raise TransactionFormatError(f"expected base58 instruction data, found the character {error}") from None
    leading = len(text) - len(text.lstrip("1"))
    body = number.to_bytes((number.bit_length() + 7) // 8, "big") if number else b""
    return b"\x00" * leading + body


@dataclass(frozen=True, slots=True)
class Instruction:
    """One instruction: top level (``inner_index is None``) or invoked by the top-level one ``index``."""

    index: int
    inner_index: int | None
    program_id: str
    accounts: list[str]
    data: bytes | None
    stack_height: int | None = None


@dataclass(frozen=True, slots=True)
class TokenBalance:
    """One ``pre``/``postTokenBalances`` entry: a token account's raw amount of one mint."""

    account: str
    mint: str
    owner: str | None
    amount: int
    decimals: int


@dataclass(slots=True)
class Frame:
    """One program invocation found in the logs, with the ``Program data:`` payloads it emitted."""

    program_id: str
    depth: int
    index: int | None = None
    inner_index: int | None = None
    data: list[str] = field(default_factory=list)
    compute_units: int | None = None
    succeeded: bool | None = None


@dataclass(frozen=True, slots=True)
class Transaction:
    """The parts of a ``getTransaction`` result the decoders read."""

    signature: str
    slot: int
    block_time: int | None
    err: Any
    fee: int | None
    compute_units_consumed: int | None
    account_keys: list[str]
    instructions: list[Instruction]
    inner_instructions: dict[int, list[Instruction]]
    logs: list[str] | None
    pre_token_balances: list[TokenBalance]
    post_token_balances: list[TokenBalance]

    def all_instructions(self) -> list[Instruction]:
        """Return every instruction in execution order: each top-level one, then those it invoked."""
        ordered = []
        for instruction in self.instructions:
            ordered.append(instruction)
            ordered.extend(self.inner_instructions.get(instruction.index, []))
        return ordered


def read_transaction(result: Mapping[str, Any]) -> Transaction:
    """Read a ``getTransaction`` result (``json`` or ``jsonParsed``) into a ``Transaction``.

    Raises
    ------
    TransactionFormatError
        If a field the decoders need is missing or of the wrong shape; the message names the field.
    """
    try:
        transaction = result["transaction"]
        message = transaction["message"]
        signature = str(transaction["signatures"][0])
        meta = result.get("meta") or {}
        keys = _account_keys(message["accountKeys"], meta)
        instructions = [_instruction(raw, keys, i, None) for i, raw in enumerate(message["instructions"])]
        inner = {
            int(group["index"]): [
                _instruction(raw, keys, int(group["index"]), j) for j, raw in enumerate(group["instructions"])
            ]
            for group in meta.get("innerInstructions") or []
        }
        return Transaction(
            signature=signature,
            slot=int(result["slot"]),
            block_time=None if result.get("blockTime") is None else int(result["blockTime"]),
            err=meta.get("err"),
            fee=None if meta.get("fee") is None else int(meta["fee"]),
            compute_units_consumed=_optional_int(meta.get("computeUnitsConsumed")),
            account_keys=keys,
            instructions=instructions,
            inner_instructions=inner,
            logs=None if meta.get("logMessages") is None else list(meta["logMessages"]),
            pre_token_balances=_balances(meta.get("preTokenBalances"), keys),
            post_token_balances=_balances(meta.get("postTokenBalances"), keys),
        )
    except (KeyError, IndexError, TypeError, ValueError) as error:
        raise TransactionFormatError(
            f"expected a getTransaction result (json or jsonParsed encoding) with transaction.signatures, "
            f"transaction.message.accountKeys/instructions and slot; reading it failed at {error!r}"
        ) from None


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)


def _account_keys(raw: Sequence[Any], meta: Mapping[str, Any]) -> list[str]:
    if raw and isinstance(raw[0], dict):
        return [str(entry["pubkey"]) for entry in raw]  # jsonParsed: already holds the loaded addresses
    loaded = meta.get("loadedAddresses") or {}
    return [str(key) for key in raw] + list(loaded.get("writable") or []) + list(loaded.get("readonly") or [])


def _instruction(raw: Mapping[str, Any], keys: list[str], index: int, inner_index: int | None) -> Instruction:
    stack_height = _optional_int(raw.get("stackHeight"))
    if "programIdIndex" in raw:
        program = keys[int(raw["programIdIndex"])]
        accounts = [keys[int(i)] for i in raw["accounts"]]
    else:
        program = str(raw["programId"])
        accounts = [str(a) for a in raw.get("accounts") or []]
    data = b58decode(raw["data"]) if isinstance(raw.get("data"), str) else None
    return Instruction(index, inner_index, program, accounts, data, stack_height)


def _balances(raw: Sequence[Mapping[str, Any]] | None, keys: list[str]) -> list[TokenBalance]:
    balances = []
    for entry in raw or []:
        amount = entry["uiTokenAmount"]
        balances.append(
            TokenBalance(
                account=keys[int(entry["accountIndex"])],
                mint=str(entry["mint"]),
                owner=entry.get("owner"),
                amount=int(amount["amount"]),
                decimals=int(amount["decimals"]),
            )
        )
    return balances


@dataclass(frozen=True, slots=True)
class Logs:
    """The invocation frames of a transaction's logs, and whether the node cut them short."""

    frames: list[Frame]
    truncated: bool


def read_logs(logs: Sequence[str], transaction: Transaction) -> Logs:
    """Split ``logMessages`` into invocation frames and match each to its instruction.

    A top-level frame (``invoke [1]``) is matched to the next top-level instruction of the same program
    (precompiles such as Ed25519 log nothing, so they are passed over); a nested frame to the next inner
    instruction of that top-level instruction, again checked by program id.

    Raises
    ------
    TransactionFormatError
        If the invocations do not nest (an exit with no open invocation, or of another program).
    """
    frames: list[Frame] = []
    stack: list[Frame] = []
    truncated = False
    for line in logs:
        if line.startswith(DATA_PREFIX):
            if stack:
                stack[-1].data.append(line[len(DATA_PREFIX) :])
            continue
        if line.startswith(TRUNCATED):
            truncated = True
            break
        invoke = _INVOKE.match(line)
        if invoke:
            frame = Frame(invoke.group(1), int(invoke.group(2)))
            frames.append(frame)
            stack.append(frame)
            continue
        consumed = _CONSUMED.match(line)
        if consumed and stack and stack[-1].program_id == consumed.group(1):
            stack[-1].compute_units = int(consumed.group(2))
            continue
        exited = _EXIT.match(line)
        if exited:
            if not stack or stack[-1].program_id != exited.group(1):
                raise TransactionFormatError(
                    f"{transaction.signature}: log line {line!r} closes an invocation that is not open; "
                    "the logs do not belong to this transaction or were edited"
                )
            stack.pop().succeeded = exited.group(2) == "success"
    _match_frames(frames, transaction)
    return Logs(frames, truncated)


def _match_frames(frames: list[Frame], transaction: Transaction) -> None:
    top = iter(transaction.instructions)
    current: Instruction | None = None
    inner: list[Instruction] = []
    position = 0
    for frame in frames:
        if frame.depth == 1:
            current = next((i for i in top if i.program_id == frame.program_id), None)
            if current is None:
                return
            frame.index = current.index
            inner = transaction.inner_instructions.get(current.index, [])
            position = 0
            continue
        if current is None:
            continue
        while position < len(inner) and inner[position].program_id != frame.program_id:
            position += 1
        if position < len(inner):
            frame.index = current.index
            frame.inner_index = inner[position].inner_index
            position += 1


def decode_base64(payload: str) -> bytes | None:
    """Return the bytes of a ``Program data:`` payload, or ``None`` when it is not base64."""
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        return None
