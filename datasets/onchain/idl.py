"""Anchor IDLs loaded at run time: instructions, events and accounts by discriminator, per program version.

Nothing is vendored: ``load_idls(directory)`` reads every ``*.json`` IDL of a directory (the shared set is
``../shared/data/solana/solana_idls``) and groups them by protocol, newest version first. Both IDL formats
are read: the legacy one (camelCase names, discriminators derived as ``sha256("global:<snake_name>")``,
``sha256("event:<Name>")``, ``sha256("account:<Name>")``) and the 0.30+ one (explicit discriminators,
event and account bodies in ``types``).

A discriminator alone does not tell versions apart (marginfi 0.1.0 and 0.1.7 share the one of
``lending_account_liquidate`` but not its arguments), so ``decode_instruction`` and ``decode_event`` try
each version newest first and accept the first whose layout consumes the bytes exactly and whose account
list fits; when none does, the error names every version tried and what each expected.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from datasets.onchain.borsh import Reader, TypeCompiler, snake_case
from datasets.onchain.errors import BorshError, IdlError

DISCRIMINATOR_BYTES = 8

# The IDL's declared name -> the protocol label rows carry; other IDLs load under their own name.
PROTOCOL_OF_IDL_NAME: Mapping[str, str] = {
    "drift": "drift",
    "kamino_lending": "kamino",
    "marginfi": "marginfi",
    "mango_v4": "mango",
}
PROGRAM_IDS: Mapping[str, str] = {
    "drift": "dRiftyHA39MWEi3m9aunc5MzRF1JYuBsbn6VPcn33UH",
    "kamino": "KLend2g3cP87fffoy8q1mQqGKjrxjC8boSyAYavgmjD",
    "marginfi": "MFv2hWf31Z9kbCa1snEPYctwafyhdvnV7FZnsebVacA",
}


@dataclass(frozen=True, slots=True)
class IdlInstruction:
    """One instruction of one IDL version: its snake_case name, flattened account names and argument reader."""

    name: str
    accounts: tuple[str, ...]
    args: Reader
    version: str


@dataclass(frozen=True, slots=True)
class IdlLayout:
    """An event or account type of one IDL version: its name and Borsh reader."""

    name: str
    reader: Reader
    version: str


@dataclass(frozen=True, slots=True)
class DecodedInstruction:
    """Instruction arguments decoded with the IDL version that matched them."""

    name: str
    version: str
    args: dict[str, Any]
    accounts: dict[str, str]


@dataclass(frozen=True, slots=True)
class DecodedEvent:
    """An Anchor event decoded with the IDL version that matched it."""

    name: str
    version: str
    fields: dict[str, Any]


@dataclass(slots=True)
class IdlVersion:
    """Everything the decoders need from one IDL file."""

    protocol: str
    version: str
    path: Path
    instructions: dict[bytes, IdlInstruction] = field(default_factory=dict)
    events: dict[bytes, IdlLayout] = field(default_factory=dict)
    accounts: dict[bytes, IdlLayout] = field(default_factory=dict)
    instructions_by_name: dict[str, bytes] = field(default_factory=dict)
    events_by_name: dict[str, bytes] = field(default_factory=dict)
    accounts_by_name: dict[str, bytes] = field(default_factory=dict)


class Idls:
    """The IDL versions of each protocol, newest first.

    Parameters
    ----------
    versions : Mapping[str, list[IdlVersion]]
        Protocol label -> its IDL versions, newest first.
    """

    def __init__(self, versions: Mapping[str, list[IdlVersion]]) -> None:
        self._versions = {protocol: list(found) for protocol, found in versions.items()}

    @property
    def protocols(self) -> tuple[str, ...]:
        """Return the protocol labels with at least one IDL."""
        return tuple(self._versions)

    def versions(self, protocol: str) -> list[IdlVersion]:
        """Return the IDL versions of ``protocol``, newest first.

        Raises
        ------
        IdlError
            If no IDL of that protocol was loaded.
        """
        found = self._versions.get(protocol)
        if not found:
            raise IdlError(
                f"no IDL of protocol {protocol!r} was loaded; loaded: {', '.join(self._versions) or 'none'}; "
                "pass the directory that holds its Anchor IDL JSON"
            )
        return found

    def instruction_name(self, protocol: str, data: bytes) -> str | None:
        """Return the snake_case name of the instruction ``data`` opens with, or ``None`` when no version knows it."""
        key = bytes(data[:DISCRIMINATOR_BYTES])
        for version in self.versions(protocol):
            instruction = version.instructions.get(key)
            if instruction is not None:
                return instruction.name
        return None

    def decode_instruction(self, protocol: str, data: bytes, accounts: list[str]) -> DecodedInstruction | None:
        """Decode instruction ``data`` of ``protocol`` with the newest IDL version that fits it exactly.

        Returns ``None`` when no version knows the discriminator (an instruction the decoders ignore).

        Raises
        ------
        IdlError
            If the discriminator is known but no version's arguments consume ``data`` exactly or
            its account list is longer than the ``accounts`` given (an unknown program version).
        """
        key = bytes(data[:DISCRIMINATOR_BYTES])
        tried = []
        for version in self.versions(protocol):
            instruction = version.instructions.get(key)
            if instruction is None:
                continue
            problem = _instruction_misfit(instruction, data, accounts)
            if problem is None:
                args, _ = instruction.args(data, DISCRIMINATOR_BYTES)
                return DecodedInstruction(
                    instruction.name, version.version, args, dict(zip(instruction.accounts, accounts, strict=False))
                )
            tried.append(f"{version.version}: {problem}")
        if not tried:
            return None
        name = next(v.instructions[key].name for v in self.versions(protocol) if key in v.instructions)
        raise IdlError(
            f"{protocol} instruction {name} matches no known program version ({'; '.join(tried)}); "
            "load the IDL of the program version that produced it"
        )

    def decode_event(self, protocol: str, data: bytes) -> DecodedEvent | None:
        """Decode one Anchor event (the bytes of a ``Program data:`` line) with the newest version that fits.

        Returns ``None`` when no version knows the discriminator.

        Raises
        ------
        IdlError
            If the discriminator is known but no version's layout consumes the body exactly (a
            truncated body, or a program version whose event carries other fields).
        """
        key = bytes(data[:DISCRIMINATOR_BYTES])
        tried = []
        for version in self.versions(protocol):
            event = version.events.get(key)
            if event is None:
                continue
            try:
                fields, end = event.reader(data, DISCRIMINATOR_BYTES)
            except BorshError as error:
                tried.append(f"{version.version}: {error}")
                continue
            if end == len(data):
                return DecodedEvent(event.name, version.version, fields)
            tried.append(f"{version.version}: layout ends at byte {end}, the body has {len(data)}")
        if not tried:
            return None
        name = next(v.events[key].name for v in self.versions(protocol) if key in v.events)
        raise IdlError(f"{protocol} event {name} matches no known layout ({'; '.join(tried)})")

    def account_layout(self, protocol: str, data: bytes) -> Iterator[IdlLayout]:
        """Yield the account layouts whose discriminator opens ``data``, newest IDL version first."""
        key = bytes(data[:DISCRIMINATOR_BYTES])
        for version in self.versions(protocol):
            layout = version.accounts.get(key)
            if layout is not None:
                yield layout


def _instruction_misfit(instruction: IdlInstruction, data: bytes, accounts: list[str]) -> str | None:
    if len(accounts) < len(instruction.accounts):
        return f"needs {len(instruction.accounts)} accounts, the instruction has {len(accounts)}"
    try:
        _, end = instruction.args(data, DISCRIMINATOR_BYTES)
    except BorshError as error:
        return f"arguments do not fit: {error}"
    if end != len(data):
        return f"arguments end at byte {end}, the data has {len(data)}"
    return None


def load_idls(directory: Path) -> Idls:
    """Load every Anchor IDL JSON file of ``directory``, grouped by protocol, newest version first.

    Raises
    ------
    IdlError
        If the directory holds no IDL, or a file is not valid IDL JSON.
    """
    paths = sorted(Path(directory).glob("*.json"))
    if not paths:
        raise IdlError(f"expected Anchor IDL *.json files in {directory}, found none")
    grouped: dict[str, list[IdlVersion]] = {}
    for path in paths:
        version = load_idl(path)
        grouped.setdefault(version.protocol, []).append(version)
    for found in grouped.values():
        found.sort(key=lambda v: _version_key(v.version), reverse=True)
    return Idls(grouped)


def load_idl(path: Path) -> IdlVersion:
    """Load one Anchor IDL file (legacy or 0.30+ format).

    Raises
    ------
    IdlError
        If the file is not JSON or lacks the fields of an Anchor IDL.
    """
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
        metadata = document.get("metadata") or {}
        name = document.get("name") or metadata["name"]
        version_label = document.get("version") or metadata["version"]
        instructions = document["instructions"]
    except (OSError, ValueError, KeyError, AttributeError) as error:
        raise IdlError(
            f"{path}: expected an Anchor IDL JSON (name, version, instructions), was unreadable: {error}"
        ) from None
    legacy = "metadata" not in document
    definitions = {t["name"]: t["type"] for t in document.get("types") or []}
    if legacy:
        for account in document.get("accounts") or []:
            definitions.setdefault(account["name"], account["type"])
        for event in document.get("events") or []:
            definitions.setdefault(event["name"], {"kind": "struct", "fields": event["fields"]})
    compiler = TypeCompiler(definitions)
    idl = IdlVersion(PROTOCOL_OF_IDL_NAME.get(name, name), str(version_label), Path(path))
    for instruction in instructions:
        _add_instruction(idl, compiler, instruction, legacy=legacy)
    for event in document.get("events") or []:
        key = _discriminator(event, "event", event["name"], legacy=legacy)
        layout = IdlLayout(event["name"], _lazy(compiler, event["name"]), idl.version)
        idl.events[key] = layout
        idl.events_by_name[event["name"]] = key
    for account in document.get("accounts") or []:
        key = _discriminator(account, "account", account["name"], legacy=legacy)
        idl.accounts[key] = IdlLayout(account["name"], _lazy(compiler, account["name"]), idl.version)
        idl.accounts_by_name[account["name"]] = key
    return idl


def _add_instruction(idl: IdlVersion, compiler: TypeCompiler, instruction: dict[str, Any], *, legacy: bool) -> None:
    name = snake_case(instruction["name"])
    key = _discriminator(instruction, "global", name, legacy=legacy)
    args = instruction.get("args") or []
    idl.instructions[key] = IdlInstruction(
        name, tuple(_flatten_accounts(instruction.get("accounts") or [])), _lazy_fields(compiler, args), idl.version
    )
    idl.instructions_by_name[name] = key


def _lazy(compiler: TypeCompiler, name: str) -> Reader:
    # IDLs declare hundreds of types the liquidation decoders never read: compile on first use.
    compiled: list[Reader] = []

    def read(buffer: bytes, offset: int) -> tuple[Any, int]:
        if not compiled:
            compiled.append(compiler.defined(name))
        return compiled[0](buffer, offset)

    return read


def _lazy_fields(compiler: TypeCompiler, fields: list[Any]) -> Reader:
    compiled: list[Reader] = []

    def read(buffer: bytes, offset: int) -> tuple[Any, int]:
        if not compiled:
            compiled.append(compiler.fields(fields))
        return compiled[0](buffer, offset)

    return read


def _flatten_accounts(accounts: list[dict[str, Any]]) -> list[str]:
    paths: list[tuple[str, ...]] = []

    def walk(items: list[dict[str, Any]], prefix: tuple[str, ...]) -> None:
        for item in items:
            path = (*prefix, snake_case(item["name"]))
            if "accounts" in item:
                walk(item["accounts"], path)
            else:
                paths.append(path)

    walk(accounts, ())
    leaves = [path[-1] for path in paths]
    return [path[-1] if leaves.count(path[-1]) == 1 else ".".join(path) for path in paths]


def _discriminator(item: dict[str, Any], namespace: str, name: str, *, legacy: bool) -> bytes:
    explicit = item.get("discriminator")
    if explicit is not None and not legacy:
        return bytes(explicit)
    return hashlib.sha256(f"{namespace}:{name}".encode()).digest()[:DISCRIMINATOR_BYTES]


def _version_key(label: str) -> tuple[int, ...]:
    parts = []
    for part in label.split("."):
        digits = "".join(ch for ch in part if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)
