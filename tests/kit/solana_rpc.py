"""A loopback Solana JSON-RPC node for the on-chain fetch tests: nothing here leaves 127.0.0.1.

``SolanaRpcServer`` answers JSON-RPC 2.0 over HTTP POST on 127.0.0.1 for ``getSlot``,
``getSignaturesForAddress`` (newest first, ``before``/``until`` exclusive, ``limit`` up to 1,000; a
``before`` of another program's transaction lists what is older than its block),
``getTransaction`` (``encoding: json`` or ``jsonParsed``, see ``json_parsed``; a v0 transaction without
``maxSupportedTransactionVersion`` is refused with -32015, as nodes do), ``getBlock`` (signatures only;
some empty slots skipped, -32007), ``getProgramAccounts`` (base64, ``memcmp`` and ``dataSize``
filters, ``withContext``) and ``getMultipleAccounts`` (base64, at most 100 keys). The response
shapes are written from Solana's JSON-RPC documentation (solana.com/docs/rpc/http: the method pages'
"Response" sections and their examples), not recorded from a node: field names, nesting, ``null``
where the docs say a field may be null, and the error objects ``{code, message, data}``.

The history is built by the test (``TransactionSpec`` -> ``transaction_result``): minimal legacy
and v0 transactions, with ``meta.loadedAddresses`` for v0 ones whose ``addressTableLookups`` point
into lookup tables the node also serves as accounts. They need not be real liquidations: the fetch
tests decode them with a stub.

Misbehaviours (``RpcFault``) are injected per method, after a number of calls: HTTP 429 with
``Retry-After``, HTTP 503, a JSON-RPC -32005 node-behind error, a connection reset before any byte
of the answer, an answer later than the client's timeout, and any other JSON-RPC error. Every call
is counted (``calls``) and every successful answer too (``served``); ``wait_served`` blocks until a
count is reached, so a test can kill a client after exactly N answers without sleeping.
"""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler
from typing import Any, Literal

from solders.pubkey import Pubkey
from solders.signature import Signature

from tests.kit.http_server import LocalHttpServer

LOOKUP_TABLE_PROGRAM = "AddressLookupTab1e1111111111111111111111111"
SYSTEM_PROGRAM = "11111111111111111111111111111111"
API_VERSION = "2.0.15"


def pubkey(name: str) -> str:
    """Return a deterministic base58 public key for ``name``."""
    return str(Pubkey.from_bytes(hashlib.sha256(name.encode()).digest()))


def signature(name: str) -> str:
    """Return a deterministic base58 transaction signature for ``name``."""
    return str(Signature.from_bytes(hashlib.sha512(name.encode()).digest()))


@dataclass(frozen=True, slots=True)
class Lookup:
    """An address table lookup of a v0 message: the table and the indexes it loads."""

    table: str
    writable: tuple[int, ...] = ()
    readonly: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class TransactionSpec:
    """A minimal transaction calling ``program`` once with ``accounts`` (indexes into the full key list)."""

    name: str
    slot: int
    block_time: int | None
    program: str
    static_keys: tuple[str, ...]
    accounts: tuple[int, ...]
    logs: tuple[str, ...] = ()
    failed: bool = False
    version: Literal["legacy", 0] = "legacy"
    lookups: tuple[Lookup, ...] = ()
    loaded_writable: tuple[str, ...] = ()
    loaded_readonly: tuple[str, ...] = ()
    send_loaded_addresses: bool = True

    @property
    def signature(self) -> str:
        return signature(self.name)


def transaction_result(spec: TransactionSpec) -> dict[str, Any]:
    """Return the ``getTransaction`` result (``encoding: json``) of ``spec``, as the docs describe it."""
    keys = list(spec.static_keys)
    program_index = keys.index(spec.program)
    message: dict[str, Any] = {
        "accountKeys": keys,
        "header": {"numReadonlySignedAccounts": 0, "numReadonlyUnsignedAccounts": 1, "numRequiredSignatures": 1},
        "instructions": [
            {
                "accounts": list(spec.accounts),
                "data": "3Bxs4h24hBtQy9rw",
                "programIdIndex": program_index,
                "stackHeight": None,
            }
        ],
        "recentBlockhash": pubkey(f"blockhash {spec.slot}"),
    }
    if spec.version == 0:
        message["addressTableLookups"] = [
            {
                "accountKey": lookup.table,
                "readonlyIndexes": list(lookup.readonly),
                "writableIndexes": list(lookup.writable),
            }
            for lookup in spec.lookups
        ]
    err = {"InstructionError": [0, {"Custom": 6001}]} if spec.failed else None
    total = len(keys) + len(spec.loaded_writable) + len(spec.loaded_readonly)
    meta: dict[str, Any] = {
        "computeUnitsConsumed": 41_000,
        "err": err,
        "fee": 5_000,
        "innerInstructions": [],
        "logMessages": [f"Program {spec.program} invoke [1]", *spec.logs, f"Program {spec.program} success"],
        "postBalances": [1_000_000] * total,
        "postTokenBalances": [],
        "preBalances": [1_005_000] + [1_000_000] * (total - 1),
        "preTokenBalances": [],
        "rewards": [],
        "status": {"Err": err} if spec.failed else {"Ok": None},
    }
    if spec.send_loaded_addresses:
        meta["loadedAddresses"] = {"readonly": list(spec.loaded_readonly), "writable": list(spec.loaded_writable)}
    return {
        "blockTime": spec.block_time,
        "meta": meta,
        "slot": spec.slot,
        "transaction": {"message": message, "signatures": [spec.signature]},
        "version": spec.version,
    }


def json_parsed(result: dict[str, Any]) -> dict[str, Any]:
    """Return an ``encoding: json`` result as ``encoding: jsonParsed`` shows it (agave ``UiParsedMessage``).

    The message loses its ``header``; ``accountKeys`` become ``{pubkey, signer, writable, source}`` for the
    static keys (``transaction``) and then the loaded writable and readonly addresses (``lookupTable``);
    instructions name their ``programId`` and ``accounts`` by pubkey. Instructions of programs the node
    parses (System, SPL Token, ...) would show ``{program, parsed}``; the fixtures call none of them, and
    compute-budget and Anchor programs are shown unparsed, as here.
    """
    message, meta = result["transaction"]["message"], result["meta"]
    header = message["header"]
    static = message["accountKeys"]
    signed, readonly_signed = int(header["numRequiredSignatures"]), int(header["numReadonlySignedAccounts"])
    readonly_unsigned = int(header["numReadonlyUnsignedAccounts"])

    def writable(index: int) -> bool:
        if index < signed:
            return index < signed - readonly_signed
        return index < len(static) - readonly_unsigned

    loaded = meta.get("loadedAddresses") or {"writable": [], "readonly": []}
    keys = [
        {"pubkey": key, "signer": i < signed, "source": "transaction", "writable": writable(i)}
        for i, key in enumerate(static)
    ]
    keys += [{"pubkey": k, "signer": False, "source": "lookupTable", "writable": True} for k in loaded["writable"]]
    keys += [{"pubkey": k, "signer": False, "source": "lookupTable", "writable": False} for k in loaded["readonly"]]
    names = [key["pubkey"] for key in keys]

    def parsed(instruction: dict[str, Any]) -> dict[str, Any]:
        return {
            "accounts": [names[i] for i in instruction["accounts"]],
            "data": instruction["data"],
            "programId": names[instruction["programIdIndex"]],
            "stackHeight": instruction.get("stackHeight"),
        }

    parsed_message = {
        "accountKeys": keys,
        "instructions": [parsed(ix) for ix in message["instructions"]],
        "recentBlockhash": message["recentBlockhash"],
    }
    if "addressTableLookups" in message:
        parsed_message["addressTableLookups"] = message["addressTableLookups"]
    inner = [
        {"index": group["index"], "instructions": [parsed(ix) for ix in group["instructions"]]}
        for group in meta.get("innerInstructions") or []
    ]
    return {
        **result,
        "meta": {**meta, "innerInstructions": inner},
        "transaction": {"message": parsed_message, "signatures": result["transaction"]["signatures"]},
    }


def lookup_table_account(addresses: list[str], *, authority: str) -> dict[str, Any]:
    """Return an address lookup table account: the 56-byte ``LookupTableMeta``, then the addresses."""
    meta = (
        struct.pack("<I", 1)  # ProgramState::LookupTable
        + struct.pack("<Q", 2**64 - 1)  # deactivation_slot: active
        + struct.pack("<Q", 1)  # last_extended_slot
        + bytes([0])  # last_extended_slot_start_index
        + bytes([1])
        + bytes(Pubkey.from_string(authority))  # authority: Some(pubkey)
        + bytes(2)  # padding
    )
    data = meta + b"".join(bytes(Pubkey.from_string(a)) for a in addresses)
    return account_json(data, owner=LOOKUP_TABLE_PROGRAM)


def account_json(data: bytes, *, owner: str, lamports: int = 2_039_280) -> dict[str, Any]:
    """Return an account as ``getMultipleAccounts``/``getProgramAccounts`` show it with ``encoding: base64``."""
    return {
        "data": [base64.b64encode(data).decode(), "base64"],
        "executable": False,
        "lamports": lamports,
        "owner": owner,
        "rentEpoch": 18_446_744_073_709_551_615,
        "space": len(data),
    }


FaultKind = Literal["http_429", "http_503", "node_behind", "reset", "slow", "rpc_error"]


@dataclass(slots=True)
class RpcFault:
    """Answer ``times`` calls of ``method`` (after ``after`` good ones) with a misbehaviour."""

    method: str
    kind: FaultKind
    times: int = 1
    after: int = 0
    code: int = -32602
    message: str = "Invalid params"
    delay_secs: float = 0.0


@dataclass(slots=True)
class SolanaRpcServer:
    """A JSON-RPC node on 127.0.0.1 serving a test-built history (see the module docstring).

    ``history`` maps an address to its signatures as ``getSignaturesForAddress`` entries, newest first.
    """

    slot: int
    history: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    transactions: dict[str, dict[str, Any]] = field(default_factory=dict)
    accounts: dict[str, dict[str, Any]] = field(default_factory=dict)
    block_firsts: dict[str, int] = field(default_factory=dict)
    faults: list[RpcFault] = field(default_factory=list)
    calls: Counter[str] = field(default_factory=Counter)
    served: Counter[str] = field(default_factory=Counter)
    log: list[tuple[str, list[Any]]] = field(default_factory=list)
    _http: LocalHttpServer | None = None
    _changed: threading.Condition = field(default_factory=threading.Condition)

    def add(self, spec: TransactionSpec) -> str:
        """Add a transaction as the newest of its program's history; return its signature."""
        return self.add_result(transaction_result(spec), program=spec.program)

    def add_result(self, result: dict[str, Any], *, program: str) -> str:
        """Add a ``getTransaction`` result (e.g. from ``tests.kit.solana``) as the newest of ``program``'s history."""
        signature = str(result["transaction"]["signatures"][0])
        self.transactions[signature] = result
        entry = {
            "blockTime": result["blockTime"],
            "confirmationStatus": "finalized",
            "err": result["meta"]["err"],
            "memo": None,
            "signature": signature,
            "slot": result["slot"],
        }
        self.history.setdefault(program, []).insert(0, entry)
        return signature

    @property
    def url(self) -> str:
        if self._http is None:
            raise RuntimeError("the server is not running: use it as a context manager")
        host, port = self._http.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def signatures_fetched(self) -> list[str]:
        """Return the signatures of every ``getTransaction`` call, in arrival order (faulted ones included)."""
        return [params[0] for method, params in self.log if method == "getTransaction"]

    def wait_served(self, method: str, count: int, *, timeout_secs: float = 30.0) -> bool:
        """Block until ``count`` answers of ``method`` were sent in full; return False on timeout."""
        with self._changed:
            return self._changed.wait_for(lambda: self.served[method] >= count, timeout=timeout_secs)

    def __enter__(self) -> SolanaRpcServer:
        self._http = LocalHttpServer(_handler_for(self), name="fake-solana-rpc")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._http is not None:
            self._http.close()

    # ------------------------------------------------------------------------------- answers
    def answer(self, body: Any) -> tuple[int, dict[str, str], bytes, FaultKind | None, float]:
        request_id = body.get("id") if isinstance(body, dict) else None
        method = body.get("method") if isinstance(body, dict) else None
        params = body.get("params") or [] if isinstance(body, dict) else []
        if not isinstance(method, str):
            return 200, {}, _error(None, -32600, "Invalid request"), None, 0.0
        with self._changed:
            self.calls[method] += 1
            self.log.append((method, params))
            fault = next((f for f in self.faults if _due(f, method)), None)
        if fault is not None and fault.kind != "slow":
            status, headers, payload = _faulted(fault, request_id)
            return status, headers, payload, fault.kind, 0.0
        handler = _METHODS.get(method)
        if handler is None:
            return 200, {}, _error(request_id, -32601, "Method not found"), None, 0.0
        try:
            result = handler(self, params)
        except _RpcFailure as failure:
            return 200, {}, _error(request_id, failure.code, str(failure)), None, 0.0
        payload = json.dumps({"jsonrpc": "2.0", "result": result, "id": request_id}).encode()
        if fault is not None and fault.kind == "slow":
            return 200, {}, payload, fault.kind, fault.delay_secs
        return 200, {}, payload, None, 0.0

    def mark_served(self, method: str) -> None:
        with self._changed:
            self.served[method] += 1
            self._changed.notify_all()

    def get_slot(self, params: list[Any]) -> Any:
        return self.slot

    def get_signatures_for_address(self, params: list[Any]) -> Any:
        address, config = params[0], (params[1] if len(params) > 1 else {}) or {}
        limit = int(config.get("limit", 1000))
        if not 1 <= limit <= 1000:
            raise _RpcFailure(-32602, "Invalid limit; max 1000")
        minimum = config.get("minContextSlot")
        if minimum is not None and minimum > self.slot:
            raise _RpcFailure(-32016, f"Minimum context slot has not been reached, context slot: {self.slot}")
        entries = self.history.get(address, [])
        order = [entry["signature"] for entry in entries]
        start = 0
        before = config.get("before")
        if before is not None and before in order:
            start = order.index(before) + 1
        elif before is not None:
            # Another program's signature (from getBlock): everything older than its block, as agave resolves it.
            if before not in self.block_firsts:
                return []
            start = next((i for i, e in enumerate(entries) if e["slot"] < self.block_firsts[before]), len(entries))
        end = len(entries)
        if config.get("until") is not None and config["until"] in order:
            end = order.index(config["until"])
        return entries[start:end][:limit]

    def get_block(self, params: list[Any]) -> Any:
        """``getBlock`` with ``transactionDetails: signatures``: a foreign transaction first, then the history's.

        Slots without a history transaction that are a multiple of 7 were skipped by their leader (-32007).
        """
        slot, config = params[0], (params[1] if len(params) > 1 else {}) or {}
        if config.get("transactionDetails") != "signatures":
            raise _RpcFailure(-32602, "Invalid params: the loopback node serves transactionDetails=signatures only")
        if slot > self.slot:
            raise _RpcFailure(-32004, f"Block not available for slot {slot}")
        ours = [e["signature"] for entries in self.history.values() for e in reversed(entries) if e["slot"] == slot]
        if not ours and slot % 7 == 0:
            raise _RpcFailure(-32007, f"Slot {slot} was skipped, or missing due to ledger jump to recent snapshot")
        first = signature(f"block {slot} vote")
        self.block_firsts[first] = slot
        return {"blockHeight": slot - 1_000, "blockTime": None, "parentSlot": slot - 1, "signatures": [first, *ours]}

    def get_transaction(self, params: list[Any]) -> Any:
        signature, config = params[0], (params[1] if len(params) > 1 else {}) or {}
        encoding = config.get("encoding", "json")
        if encoding not in ("json", "jsonParsed"):
            raise _RpcFailure(-32602, "Invalid params: only json and jsonParsed in the loopback node")
        result = self.transactions.get(signature)
        if (
            result is not None
            and result["version"] != "legacy"
            and config.get("maxSupportedTransactionVersion") is None
        ):
            raise _RpcFailure(
                -32015,
                "Transaction version (0) is not supported by the requesting client. Please try the request again "
                'with the following configuration parameter: "maxSupportedTransactionVersion": 0',
            )
        return json_parsed(result) if result is not None and encoding == "jsonParsed" else result

    def get_program_accounts(self, params: list[Any]) -> Any:
        program, config = params[0], (params[1] if len(params) > 1 else {}) or {}
        found = []
        for key, account in sorted(self.accounts.items()):
            if account["owner"] != program:
                continue
            data = base64.b64decode(account["data"][0])
            if all(_passes(f, data) for f in config.get("filters", [])):
                found.append({"account": account, "pubkey": key})
        if config.get("withContext"):
            return {"context": {"apiVersion": API_VERSION, "slot": self.slot}, "value": found}
        return found

    def get_multiple_accounts(self, params: list[Any]) -> Any:
        keys = params[0]
        if len(keys) > 100:
            raise _RpcFailure(-32602, "Too many inputs provided; max 100")
        return {
            "context": {"apiVersion": API_VERSION, "slot": self.slot},
            "value": [self.accounts.get(key) for key in keys],
        }


def _faulted(fault: RpcFault, request_id: Any) -> tuple[int, dict[str, str], bytes]:
    if fault.kind == "http_429":
        return 429, {"Retry-After": "1"}, b"Too many requests for a specific RPC call"
    if fault.kind == "http_503":
        return 503, {}, b"<html><body>503 Service Temporarily Unavailable</body></html>"
    if fault.kind == "node_behind":
        return 200, {}, _error(request_id, -32005, "Node is behind by 170 slots", {"numSlotsBehind": 170})
    if fault.kind == "rpc_error":
        return 200, {}, _error(request_id, fault.code, fault.message)
    return 0, {}, b""  # reset: the handler drops the connection


class _RpcFailure(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


_METHODS = {
    "getSlot": SolanaRpcServer.get_slot,
    "getBlock": SolanaRpcServer.get_block,
    "getSignaturesForAddress": SolanaRpcServer.get_signatures_for_address,
    "getTransaction": SolanaRpcServer.get_transaction,
    "getProgramAccounts": SolanaRpcServer.get_program_accounts,
    "getMultipleAccounts": SolanaRpcServer.get_multiple_accounts,
}


def _passes(rule: dict[str, Any], data: bytes) -> bool:
    if "dataSize" in rule:
        return len(data) == int(rule["dataSize"])
    memcmp = rule["memcmp"]
    text = memcmp["bytes"]
    wanted = base64.b64decode(text) if memcmp.get("encoding") == "base64" else _b58decode(text)
    offset = int(memcmp["offset"])
    return data[offset : offset + len(wanted)] == wanted


_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def _b58decode(text: str) -> bytes:
    number = 0
    for char in text:
        number = number * 58 + _B58.index(char)
    body = number.to_bytes((number.bit_length() + 7) // 8, "big") if number else b""
    return bytes(len(text) - len(text.lstrip("1"))) + body


def _error(request_id: Any, code: int, message: str, data: Any = None) -> bytes:
    error: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return json.dumps({"jsonrpc": "2.0", "error": error, "id": request_id}).encode()


def _due(fault: RpcFault, method: str) -> bool:
    if fault.method != method:
        return False
    if fault.after > 0:
        fault.after -= 1
        return False
    if fault.times > 0:
        fault.times -= 1
        return True
    return False


def _handler_for(server: SolanaRpcServer) -> type[BaseHTTPRequestHandler]:
    return type("Handler", (_Handler,), {"node": server})


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    node: SolanaRpcServer

    def handle(self) -> None:
        try:
            super().handle()
        except ConnectionResetError:
            self.close_connection = True  # a client killed mid-connection (kill -9 tests)

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            body = json.loads(raw)
        except json.JSONDecodeError:
            self._reply(200, {}, _error(None, -32700, "Parse error"))
            return
        status, headers, payload, fault, delay = self.node.answer(body)
        method = body.get("method") if isinstance(body, dict) else None
        if fault == "reset":
            # SO_LINGER 0: closing sends a TCP reset instead of a FIN, as a dropped connection does.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            self.close_connection = True
            return
        if delay:
            time.sleep(delay)  # an answer later than the client's timeout
        self._reply(status, headers, payload)
        if status == 200 and fault is None and isinstance(method, str):
            self.node.mark_served(method)

    def _reply(self, status: int, headers: dict[str, str], payload: bytes) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json" if payload[:1] in (b"{", b"[") else "text/html")
            self.send_header("Content-Length", str(len(payload)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        return


# ----------------------------------------------------------------------------------- decoder stub
LIQUIDATE_LOG = "Program log: Instruction: LiquidateObligationAndRedeemReserveCollateral"


@dataclass(frozen=True, slots=True)
class StubDecoded:
    """The shape of ``datasets.onchain.decode.DecodedTransaction`` the fetch relies on."""

    liquidations: list[dict[str, Any]]
    extras: list[dict[str, Any]]
    skips: list[str]


def stub_decoder(protocol: str) -> Callable[[dict[str, Any]], StubDecoded]:
    """Return a decoder that reads one liquidation from every transaction logging ``LIQUIDATE_LOG``.

    The liquidated account and the liquidator are the instruction's first two accounts, resolved
    through the full key list (static keys, then loaded addresses), so a v0 transaction whose
    liquidator sits in a lookup table shows whether the fetch completed its account keys.
    """
    from datasets.onchain.fetch import account_keys
    from datasets.onchain.idl import PROGRAM_IDS

    program = PROGRAM_IDS[protocol]

    def decode(tx: dict[str, Any]) -> StubDecoded:
        keys = account_keys(tx)
        signature = tx["transaction"]["signatures"][0]
        rows: list[dict[str, Any]] = []
        skips: list[str] = []
        for index, instruction in enumerate(tx["transaction"]["message"]["instructions"]):
            if keys[instruction["programIdIndex"]] != program:
                continue
            if LIQUIDATE_LOG not in tx["meta"]["logMessages"]:
                skips.append(f"{signature}:{index}: not a liquidation")
                continue
            rows.append(
                {
                    "venue": "solana",
                    "protocol": protocol,
                    "symbol": "SOL-USDC",
                    "market": None,
                    "ts": datetime.fromtimestamp(tx["blockTime"], UTC),
                    "side": "long",
                    "price": Decimal("150.25"),
                    "quantity": Decimal("2"),
                    "notional_usd": Decimal("300.5"),
                    "account": keys[instruction["accounts"][0]],
                    "liquidator": keys[instruction["accounts"][1]],
                    "order_id": None,
                    "tx_signature": signature,
                    "source": "test stub decoder",
                    "event_id": f"{signature}:{index}",
                }
            )
        return StubDecoded(rows, [], skips)

    return decode


def main_with_stub_decoder(argv: list[str]) -> int:
    """Run ``python -m datasets`` with the stub decoder in place of ``datasets.onchain.decode`` (subprocess tests)."""
    import datasets.onchain.fetch as onchain_fetch
    from datasets.cli import main

    def load_stub(protocol: str, **_: Any) -> Callable[[dict[str, Any]], StubDecoded]:
        return stub_decoder(protocol)

    onchain_fetch.load_decoder = load_stub  # type: ignore[assignment]
    return main(argv)


if __name__ == "__main__":
    import sys

    sys.exit(main_with_stub_decoder(sys.argv[1:]))
