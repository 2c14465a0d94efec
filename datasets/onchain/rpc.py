"""The Solana JSON-RPC client of the on-chain fetches: one wrapper, explicit timeouts, capped-backoff retries.

Requests go through ``solana.rpc.async_api.AsyncClient`` (its HTTP transport, JSON-RPC envelope
and error parsing) as raw JSON-RPC calls, so every answer keeps the exact shape the node sent
(``getTransaction`` results reach the decoders as the node's JSON). The client's own transport
retry is turned off: this module alone decides what is retried.

Transient, retried with capped exponential backoff (``datasets.acquire.retry.RetryPolicy``):
HTTP 429 (honouring ``Retry-After`` up to the cap) and 5xx, transport failures (timeouts, refused
or reset connections), a body that is not a JSON-RPC answer (a proxy's error page), and the
JSON-RPC errors a healthy request gets from a lagging node: ``-32005`` (node unhealthy or behind),
``-32016`` (minimum context slot not reached), ``-32004`` (block not available yet) and ``-32014``
(block status not available yet). Any other JSON-RPC or HTTP error fails at once with its code and
message (``RpcError``). The decision is made on status codes and error codes, never on message text.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx2
import pydantic
from solana.exceptions import SolanaRpcException
from solana.rpc.async_api import AsyncClient
from solana.rpc.jsonrpc import JsonRpcRequest, SolanaJsonRpcError

from datasets.acquire.errors import FetchError, MalformedPageError, RetryExhaustedError
from datasets.acquire.retry import RetryPolicy

log = logging.getLogger(__name__)

DEFAULT_RPC_URL = "https://api.mainnet-beta.solana.com"
RPC_URL_ENV = "SOLANA_RPC_URL"
DEFAULT_TIMEOUT_SECS = 30.0
# getSignaturesForAddress answers at most 1,000 signatures; getMultipleAccounts takes at most 100 keys.
SIGNATURES_PAGE_LIMIT = 1_000
MULTIPLE_ACCOUNTS_LIMIT = 100
# getTransaction encodings the decoders read: ``json`` (account keys as strings, loaded addresses in meta)
# and ``jsonParsed`` (account keys as objects, the loaded ones included; known programs' instructions parsed).
TransactionEncoding = Literal["json", "jsonParsed"]
TRANSIENT_RPC_CODES = frozenset({-32004, -32005, -32014, -32016})
# getBlock of a slot that holds no block: skipped by its leader (-32007), or before the node's ledger and
# absent from long-term storage (-32009). Not errors of the request: the caller tries the next slot.
NO_BLOCK_CODES = frozenset({-32007, -32009})
TRANSIENT_HTTP_STATUS = frozenset({408, 425, 429})
Sleep = Callable[[float], Awaitable[None]]


class RpcError(FetchError):
    """The RPC node refused a request with an error that is not transient (kept: ``code``, ``rpc_message``)."""

    def __init__(self, message: str, *, code: int, rpc_message: str) -> None:
        super().__init__(message)
        self.code = code
        self.rpc_message = rpc_message


class MalformedRpcResponseError(MalformedPageError):
    """The node answered a request with a result that is not the shape its JSON-RPC method documents."""


class _Transient(Exception):
    def __init__(self, text: str, *, retry_after_secs: float | None = None) -> None:
        super().__init__(text)
        self.retry_after_secs = retry_after_secs


@dataclass(frozen=True, slots=True)
class RpcEndpoint:
    """An RPC URL; ``public`` (scheme, host and port) is what logs and lineage show.

    Providers put API keys in the path or query (``?api-key=...``), so the full URL never reaches a
    log line, an error message or a Parquet footer; ``repr`` redacts it too.
    """

    url: str = field(repr=False)

    @property
    def public(self) -> str:
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"

    def __repr__(self) -> str:
        return f"RpcEndpoint({self.public!r}, path and query redacted)"

    @classmethod
    def resolve(cls, url: str | None) -> RpcEndpoint:
        """Return ``url``, else ``$SOLANA_RPC_URL``, else the public mainnet endpoint.

        Raises
        ------
        ValueError
            If the URL is not http(s) with a host.
        """
        chosen = url or os.environ.get(RPC_URL_ENV) or DEFAULT_RPC_URL
        parts = urlsplit(chosen)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"expected an http(s) RPC URL such as {DEFAULT_RPC_URL}, was {parts.scheme}://...")
        return cls(chosen)


@dataclass(slots=True)
class RpcStats:
    """Requests sent per method (retries included) and retries per method."""

    requests: Counter[str] = field(default_factory=Counter)
    retries: Counter[str] = field(default_factory=Counter)

    def line(self) -> str:
        sent = ", ".join(f"{method} {count:,}" for method, count in sorted(self.requests.items())) or "none"
        retried = sum(self.retries.values())
        return f"RPC requests: {sent}; {retried} retried after transient errors"


class SolanaRpc:
    """Raw JSON-RPC calls to one Solana RPC endpoint, with timeouts, retries and request counts.

    Use as an async context manager. ``sleep`` is injected so retry tests run instantly.

    Parameters
    ----------
    endpoint : RpcEndpoint
        The node.
    timeout_secs : float
        HTTP timeout of every request (connect, read, write, pool).
    retry : RetryPolicy
        Attempts and backoff for transient errors (its ``sleep`` is not used: async code uses ``sleep``).
    sleep : callable
        Async sleep used for backoff.
    """

    def __init__(
        self,
        endpoint: RpcEndpoint,
        *,
        timeout_secs: float = DEFAULT_TIMEOUT_SECS,
        retry: RetryPolicy | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if timeout_secs <= 0:
            raise ValueError(f"timeout_secs must be > 0, was {timeout_secs}")
        self.endpoint = endpoint
        self.retry = retry or RetryPolicy()
        self.stats = RpcStats()
        self._sleep = sleep
        self._client = AsyncClient(endpoint.url, timeout=timeout_secs, max_transport_retries=0)

    async def __aenter__(self) -> SolanaRpc:
        await self._client.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._client.close()

    # ------------------------------------------------------------------------------- methods
    async def get_slot(self, *, commitment: str = "finalized") -> int:
        """Return the node's latest slot at ``commitment``."""
        result = await self.call("getSlot", [{"commitment": commitment}])
        if not isinstance(result, int) or isinstance(result, bool):
            raise MalformedRpcResponseError(f"getSlot: expected a slot number, was {_shown(result)}")
        return result

    async def get_signatures_for_address(
        self,
        address: str,
        *,
        before: str | None = None,
        until: str | None = None,
        limit: int = SIGNATURES_PAGE_LIMIT,
        min_context_slot: int | None = None,
    ) -> list[dict[str, Any]]:
        """Return one page of an address's finalized signatures, newest first (``before``/``until`` exclusive)."""
        if not 1 <= limit <= SIGNATURES_PAGE_LIMIT:
            raise ValueError(f"limit must be 1..{SIGNATURES_PAGE_LIMIT}, was {limit}")
        config: dict[str, Any] = {"limit": limit, "commitment": "finalized"}
        if before is not None:
            config["before"] = before
        if until is not None:
            config["until"] = until
        if min_context_slot is not None:
            config["minContextSlot"] = min_context_slot
        result = await self.call("getSignaturesForAddress", [address, config])
        if not isinstance(result, list) or not all(_is_signature_info(item) for item in result):
            raise MalformedRpcResponseError(
                f"getSignaturesForAddress {address}: expected a list of {{signature, slot, err, blockTime}}, "
                f"was {_shown(result)}"
            )
        return result

    async def get_block_signatures(self, slot: int) -> list[str] | None:
        """Return the signatures of a finalized block in block order, or None when the slot holds no block."""
        config = {
            "encoding": "json",
            "transactionDetails": "signatures",
            "rewards": False,
            "commitment": "finalized",
            "maxSupportedTransactionVersion": 0,
        }
        try:
            result = await self.call("getBlock", [slot, config])
        except RpcError as error:
            if error.code in NO_BLOCK_CODES:
                return None
            raise
        signatures = result.get("signatures") if isinstance(result, dict) else None
        if not isinstance(signatures, list) or not all(isinstance(s, str) for s in signatures):
            raise MalformedRpcResponseError(f"getBlock {slot}: expected {{signatures: [...]}}, was {_shown(result)}")
        return signatures

    async def get_transaction(self, signature: str, *, encoding: TransactionEncoding = "json") -> dict[str, Any] | None:
        """Return a finalized transaction (legacy and v0) in ``encoding``, or None if the node has none."""
        config = {"encoding": encoding, "commitment": "finalized", "maxSupportedTransactionVersion": 0}
        result = await self.call("getTransaction", [signature, config])
        if result is None:
            return None
        if not isinstance(result, dict) or not isinstance(result.get("transaction"), dict):
            raise MalformedRpcResponseError(
                f"getTransaction {signature}: expected a transaction object, was {_shown(result)}"
            )
        return result

    async def get_program_accounts(
        self, program_id: str, *, filters: list[dict[str, Any]] | None = None
    ) -> list[dict[str, Any]]:
        """Return every account owned by ``program_id`` matching ``filters``, base64-encoded."""
        config: dict[str, Any] = {"encoding": "base64", "commitment": "finalized", "withContext": True}
        if filters:
            config["filters"] = filters
        result = await self.call("getProgramAccounts", [program_id, config])
        value = result.get("value") if isinstance(result, dict) else result
        if not isinstance(value, list) or not all(
            isinstance(item, dict) and isinstance(item.get("pubkey"), str) and isinstance(item.get("account"), dict)
            for item in value
        ):
            raise MalformedRpcResponseError(
                f"getProgramAccounts {program_id}: expected a list of {{pubkey, account}}, was {_shown(result)}"
            )
        return value

    async def get_multiple_accounts(self, pubkeys: list[str]) -> tuple[int, list[dict[str, Any] | None]]:
        """Return the context slot and the accounts (None where there is none), base64, at most 100 keys."""
        if not 1 <= len(pubkeys) <= MULTIPLE_ACCOUNTS_LIMIT:
            raise ValueError(f"getMultipleAccounts takes 1..{MULTIPLE_ACCOUNTS_LIMIT} keys, was {len(pubkeys)}")
        result = await self.call("getMultipleAccounts", [pubkeys, {"encoding": "base64", "commitment": "finalized"}])
        value = result.get("value") if isinstance(result, dict) else None
        context = result.get("context") if isinstance(result, dict) else None
        slot = context.get("slot") if isinstance(context, dict) else None
        if not isinstance(value, list) or len(value) != len(pubkeys) or not isinstance(slot, int):
            raise MalformedRpcResponseError(
                f"getMultipleAccounts: expected {{context: {{slot}}, value: [{len(pubkeys)} accounts]}}, "
                f"was {_shown(result)}"
            )
        return slot, value

    # ------------------------------------------------------------------------------- transport
    async def call(self, method: str, params: list[Any]) -> Any:
        """Send one JSON-RPC request and return its ``result``, retrying transient failures.

        Raises
        ------
        RpcError
            If the node answers with a JSON-RPC or HTTP error that is not transient.
        RetryExhaustedError
            If every attempt failed transiently.
        """
        what = f"{method} on {self.endpoint.public}"
        policy = self.retry
        for failure in range(1, policy.attempts + 1):
            self.stats.requests[method] += 1
            try:
                return await self._send(method, params)
            except _Transient as exc:
                if failure == policy.attempts:
                    raise RetryExhaustedError(
                        f"{what}: gave up after {policy.attempts} attempts, last error: {exc}; the RPC node is "
                        "unavailable, behind or rate-limiting: run the same command again later (it resumes where "
                        "it stopped) or pass another --rpc"
                    ) from exc
                wait = policy.backoff_secs(failure)
                if exc.retry_after_secs is not None:
                    wait = min(policy.cap_secs, max(wait, exc.retry_after_secs))
                self.stats.retries[method] += 1
                log.warning("%s: %s, retry %d/%d in %.1f s", what, exc, failure, policy.attempts - 1, wait)
                await self._sleep(wait)
        raise AssertionError("unreachable: the loop returns or raises")

    async def _send(self, method: str, params: list[Any]) -> Any:
        request = JsonRpcRequest(method=method, params=params)
        try:
            return await self._client.send_rpc_request(request, Any)
        except SolanaJsonRpcError as exc:
            if exc.code in TRANSIENT_RPC_CODES:
                raise _Transient(f"JSON-RPC error {exc.code} ({exc.name}): {exc.message}") from exc
            raise RpcError(
                f"{method} on {self.endpoint.public}: the node refused the request with JSON-RPC error {exc.code}"
                f"{f' ({exc.name})' if exc.name else ''}: {exc.message}; it is not retried (not transient): check "
                "the arguments, the range and whether this node keeps that history",
                code=exc.code,
                rpc_message=exc.message,
            ) from exc
        except SolanaRpcException as exc:
            raise self._transport_error(method, exc) from exc
        except pydantic.ValidationError as exc:
            raise _Transient(f"the answer is not a JSON-RPC response ({exc.error_count()} problems)") from exc

    def _transport_error(self, method: str, exc: SolanaRpcException) -> Exception:
        cause = exc.__cause__
        if isinstance(cause, httpx2.HTTPStatusError):
            status = cause.response.status_code
            if status in TRANSIENT_HTTP_STATUS or status >= 500:
                return _Transient(f"HTTP {status}", retry_after_secs=_retry_after(cause.response))
            return RpcError(
                f"{method} on {self.endpoint.public}: the node refused the request with HTTP {status}: "
                f"{cause.response.text[:200]!r}; it is not retried (not transient): check --rpc and its credentials",
                code=status,
                rpc_message=cause.response.text[:200],
            )
        if isinstance(cause, httpx2.TransportError):
            return _Transient(f"{type(cause).__name__}: {cause or 'no detail'}")
        return RpcError(
            f"{method} on {self.endpoint.public}: the request failed ({type(cause).__name__}: {cause})",
            code=0,
            rpc_message=str(cause),
        )


def _retry_after(response: httpx2.Response) -> float | None:
    text = response.headers.get("Retry-After")
    try:
        return None if text is None else max(0.0, float(text))
    except ValueError:
        return None


def _is_signature_info(item: Any) -> bool:
    return isinstance(item, dict) and isinstance(item.get("signature"), str) and isinstance(item.get("slot"), int)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 160 else text[:160] + "..."
