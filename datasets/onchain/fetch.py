"""Resumable fetches of Solana lending and perp liquidations from a program's transaction history.

For one protocol (its program id in ``PROGRAM_IDS``) a fetch pages ``getSignaturesForAddress``
(finalized, 1,000 per page, newest first, ``before``/``until``), skips the transactions that failed
on chain (their ``err`` is set: no request for them), fetches the others with ``getTransaction``
(``maxSupportedTransactionVersion: 0``, finalized) with bounded concurrency, completes their account
keys (v0 transactions name accounts through address lookup tables: ``meta.loadedAddresses``, or the
tables themselves when a node leaves that out), hands each one to the protocol's decoder
(``datasets.onchain.decode``), and writes the rows through the store's validated atomic writer with
lineage (endpoint, request range, fetch time).

A range that ends in the past at a slot (``--until-slot``) starts at the first block at or after that
slot (``getBlock``, signatures only): its first signature as ``before`` lists exactly the older
signatures, so nothing above the range is paged. A transaction the decoder cannot read is a skip recorded
with its signature (``datasets.onchain.skips``), not the end of the fetch.

The plan comes from the store alone (no network): the processed spans of the program's history in
the protocol's progress record (``datasets.onchain.progress``), which also covers the signatures
that held no liquidation. A second run fetches only what lies above the newest span (and any hole
an interrupted run left); a run killed at any point continues at the last batch it wrote, with no
gap and no duplicate. Rows are written before the span grows over their signatures.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol

import polars as pl
from solders.pubkey import Pubkey
from tqdm import tqdm

from datasets.acquire.errors import PlanError
from datasets.acquire.tasks import spawn
from datasets.onchain.errors import OnchainError
from datasets.onchain.idl import PROGRAM_IDS
from datasets.onchain.prices import PriceTable
from datasets.onchain.progress import (
    Bound,
    Position,
    Progress,
    Region,
    Span,
    load_progress,
    position_of,
    progress_lock,
    save_progress,
)
from datasets.onchain.rpc import SIGNATURES_PAGE_LIMIT, MalformedRpcResponseError, SolanaRpc, TransactionEncoding
from datasets.onchain.skips import SkipRecord, append_skips
from datasets.schemas import spec_for
from datasets.store import SourceInfo, Store
from datasets.validate import ROW

log = logging.getLogger(__name__)

OnchainProtocol = Literal["kamino", "marginfi", "drift"]
CHAIN = "solana"
IMPORTER = "solana-rpc-fetch"
IMPORTER_VERSION = "1"
EXTRAS_KIND = "liquidation_extras"
DEFAULT_CONCURRENCY = 8
DEFAULT_BATCH_SIGNATURES = 100
# How many slots from an --until-slot a seek looks for a block (slots a leader skipped hold none).
SEEK_SLOTS = 64
ADDRESS_LOOKUP_TABLE_PROGRAM = "AddressLookupTab1e1111111111111111111111111"
# An address lookup table account: a 56-byte LookupTableMeta, then the addresses, 32 bytes each.
LOOKUP_TABLE_META_BYTES = 56
Clock = Callable[[], datetime]
# What a decoder raises on a transaction it cannot read: its own errors, and those a result of an
# unexpected shape provokes. Anything else (a bug, an interrupt) stops the fetch at the batch.
DECODE_ERRORS = (OnchainError, KeyError, IndexError, TypeError, ValueError, ArithmeticError)


class Decoded(Protocol):
    """What a decoder returns for one transaction (``datasets.onchain.decode.DecodedTransaction``)."""

    @property
    def liquidations(self) -> Any: ...

    @property
    def extras(self) -> Any: ...

    @property
    def skips(self) -> Any: ...


Decoder = Callable[[dict[str, Any]], Decoded]


def utc_now() -> datetime:
    """Return the current time, tz-aware UTC."""
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class OnchainPlan:
    """What a fetch of one protocol will walk: the unprocessed regions of its program's history in a range."""

    protocol: str
    program_id: str
    since: Bound | None
    until: Bound | None
    regions: tuple[Region, ...]
    processed_signatures: int
    stored_liquidations: int

    def describe(self) -> str:
        lines = [
            f"{self.protocol} ({self.program_id}): range "
            f"[{'the first signature' if self.since is None else self.since.describe()}, "
            f"{'the tip' if self.until is None else self.until.describe()}); "
            f"{self.processed_signatures:,} signatures processed before, {self.stored_liquidations:,} "
            "liquidations stored"
        ]
        if not self.regions:
            lines.append("  up to date: nothing to fetch")
        lines.extend(f"  {region.describe()}" for region in self.regions)
        if self.regions and self.until is not None and self.until.unit == "slot":
            lines.append(
                f"  below the tip, walks start at the first block at or after {self.until.describe()} (getBlock)"
            )
        return "\n".join(lines)


@dataclass(slots=True)
class OnchainReport:
    """What a fetch did."""

    protocol: str
    regions: int = 0
    pages: int = 0
    signatures: int = 0
    failed: int = 0
    transactions: int = 0
    liquidations: int = 0
    extras: int = 0
    skips: int = 0
    writes: int = 0
    partitions_written: int = 0
    lookup_tables_fetched: int = 0
    rpc: str = ""

    def __str__(self) -> str:
        return (
            f"{self.protocol}: {self.regions} regions, {self.pages} signature pages, {self.signatures:,} signatures "
            f"({self.failed:,} failed on chain, skipped), {self.transactions:,} transactions fetched, "
            f"{self.liquidations:,} liquidations and {self.extras:,} extras rows in {self.writes} writes "
            f"({self.partitions_written} partition files written), {self.skips:,} transactions or instructions "
            f"skipped by the decoder (onchain-skips.solana.{self.protocol}.jsonl); {self.rpc}"
        )


def load_decoder(protocol: str, *, idls_dir: Path, prices: PriceTable | None = None) -> Decoder:
    """Return the transaction decoder of ``protocol``: ``datasets.onchain.decode`` with its IDLs and mint table.

    ``prices`` (USD per mint, ``datasets.onchain.prices``) values the marginfi and Kamino legs.

    Raises
    ------
    IdlError
        If ``idls_dir`` holds no Anchor IDL of the protocol.
    """
    from datasets.onchain.decode import decode_transaction
    from datasets.onchain.idl import load_idls
    from datasets.onchain.mints import MintTable

    idls = load_idls(idls_dir)
    idls.versions(protocol)
    mints = MintTable.default()

    def decoder(tx: dict[str, Any]) -> Decoded:
        return decode_transaction(tx, protocol=protocol, idls=idls, mints=mints, prices=prices)

    return decoder


def program_id(protocol: str) -> str:
    """Return the program id of a protocol.

    Raises
    ------
    PlanError
        If the protocol is not one of ``PROGRAM_IDS``.
    """
    try:
        return PROGRAM_IDS[protocol]
    except KeyError:
        raise PlanError(f"expected a protocol among {', '.join(PROGRAM_IDS)}, was {protocol!r}") from None


def plan_onchain(store: Store, protocol: str, *, since: Bound | None, until: Bound | None) -> OnchainPlan:
    """Return the regions of the protocol's history still to fetch in ``[since, until)``; no network.

    Without ``since`` the fetch reaches back as far as the oldest start asked for before (kept in the
    progress record), so a bare re-run finishes an interrupted one; the first fetch needs one.

    Raises
    ------
    PlanError
        If nothing was fetched yet and there is no ``since``, or ``since`` is not before ``until``.
    """
    program = program_id(protocol)
    progress = load_progress(store.root, protocol, program)
    if since is not None and until is not None and since.unit == until.unit and since.value >= until.value:
        raise PlanError(f"--since must be before --until, was {since.describe()} and {until.describe()}")
    effective = since or progress.since
    if effective is None and not progress.spans:
        raise PlanError(
            f"{protocol}: nothing fetched yet, so --since or --since-slot is needed to say how far back to start"
        )
    regions = progress.regions(since=effective, until=until)
    return OnchainPlan(
        protocol=protocol,
        program_id=program,
        since=effective,
        until=until,
        regions=tuple(regions),
        processed_signatures=sum(span.signatures for span in progress.spans),
        stored_liquidations=_stored_liquidations(store, protocol),
    )


def _stored_liquidations(store: Store, protocol: str) -> int:
    if not (store.root / "liquidations").is_dir() or not store.files("liquidations", venue=CHAIN):
        return 0
    frame = store.scan("liquidations", venue=CHAIN).filter(pl.col("protocol") == protocol).select(pl.len()).collect()
    return int(frame.item())


def account_keys(tx: dict[str, Any]) -> list[str]:
    """Return every account a transaction names, in index order: static keys, then loaded writable, then readonly.

    Instruction ``accounts`` and ``programIdIndex`` index this list. Call ``OnchainFetcher`` (or
    ``complete_lookups``) first for a v0 transaction, so its ``meta.loadedAddresses`` is present.
    """
    message = tx["transaction"]["message"]
    if _parsed_keys(message):
        return [str(key["pubkey"]) for key in message["accountKeys"]]  # jsonParsed: loaded addresses included
    loaded = (tx.get("meta") or {}).get("loadedAddresses") or {}
    return [*message["accountKeys"], *loaded.get("writable", []), *loaded.get("readonly", [])]


def _parsed_keys(message: dict[str, Any]) -> bool:
    keys = message.get("accountKeys") or []
    return bool(keys) and isinstance(keys[0], dict)


@dataclass(slots=True)
class _Walk:
    region: Region
    newer: Span | None
    older: Span | None
    span: Span | None = None
    skipped_above: bool = False
    before: str | None = None
    last_slot: int | None = None


@dataclass(slots=True)
class _Batch:
    infos: list[dict[str, Any]]
    failed: int = 0
    transactions: int = 0
    liquidations: list[pl.DataFrame] = field(default_factory=list)
    extras: list[pl.DataFrame] = field(default_factory=list)
    skips: list[SkipRecord] = field(default_factory=list)


class OnchainFetcher:
    """Walk the regions of an ``OnchainPlan`` through a Solana RPC and write what the decoder finds.

    Parameters
    ----------
    store : Store
        Where rows and the progress record go.
    rpc : SolanaRpc
        An entered RPC client.
    decoder : Decoder
        Turns a ``getTransaction`` result into liquidation rows, extras rows and skips.
    page_limit : int
        Signatures per ``getSignaturesForAddress`` page (1..1000).
    batch_signatures : int
        Signatures fetched and written per batch: what a kill loses at most.
    concurrency : int
        ``getTransaction`` requests in flight at once.
    encoding : {"json", "jsonParsed"}
        The ``getTransaction`` encoding asked for (both decode the same).
    progress : bool
        Show a progress bar.
    clock : callable
        The fetch time recorded in lineage.
    """

    def __init__(
        self,
        store: Store,
        rpc: SolanaRpc,
        decoder: Decoder,
        *,
        page_limit: int = SIGNATURES_PAGE_LIMIT,
        batch_signatures: int = DEFAULT_BATCH_SIGNATURES,
        concurrency: int = DEFAULT_CONCURRENCY,
        encoding: TransactionEncoding = "json",
        progress: bool = True,
        clock: Clock = utc_now,
    ) -> None:
        if not 1 <= page_limit <= SIGNATURES_PAGE_LIMIT:
            raise PlanError(f"the page size must be 1..{SIGNATURES_PAGE_LIMIT}, was {page_limit}")
        if batch_signatures < 1 or concurrency < 1:
            raise PlanError(f"batch size and concurrency must be >= 1, were {batch_signatures} and {concurrency}")
        self.store = store
        self.rpc = rpc
        self.decoder = decoder
        self.page_limit = page_limit
        self.batch_signatures = batch_signatures
        self.concurrency = concurrency
        self.encoding: TransactionEncoding = encoding
        self.progress = progress
        self.clock = clock
        self._tables: dict[str, list[str]] = {}

    async def run(self, plan: OnchainPlan) -> OnchainReport:
        """Fetch every region of ``plan``, writing rows and progress batch by batch.

        Raises
        ------
        RpcError, RetryExhaustedError
            If the RPC refuses a request or keeps failing transiently (what was written stays written).
        MalformedRpcResponseError
            If the node answers outside its documented shapes.
        StoreError
            If another fetch of the protocol is running, or the progress record is unreadable.
        """
        report = OnchainReport(protocol=plan.protocol)
        with progress_lock(self.store.root, plan.protocol):
            progress = load_progress(self.store.root, plan.protocol, plan.program_id)
            if plan.since is not None and (progress.since is None or _earlier(plan.since, progress.since)):
                progress.since = plan.since
                save_progress(self.store.root, progress)
            # Re-derived under the lock: the spans may have changed since the plan was printed.
            regions = progress.regions(since=plan.since, until=plan.until)
            tip = await self.rpc.get_slot() if regions else None
            # Spans by reference, taken before any walk merges two of them and shifts the indices.
            walks = [
                _Walk(
                    region=region,
                    newer=None if region.newer is None else progress.spans[region.newer],
                    older=None if region.older is None else progress.spans[region.older],
                    before=None if region.before is None else region.before.signature,
                )
                for region in regions
            ]
            with tqdm(desc=f"{plan.protocol} signatures", unit="sig", disable=not self.progress, leave=False) as bar:
                for walk in walks:
                    await self._seek(plan, walk, tip)
                    await self._walk(plan, progress, walk, tip, bar, report)
                    report.regions += 1
        report.rpc = self.rpc.stats.line()
        return report

    async def _walk(
        self, plan: OnchainPlan, progress: Progress, walk: _Walk, tip: int | None, bar: Any, report: OnchainReport
    ) -> None:
        until = walk.region.until.signature if walk.region.until is not None else None
        while True:
            page = await self.rpc.get_signatures_for_address(
                plan.program_id, before=walk.before, until=until, limit=self.page_limit, min_context_slot=tip
            )
            report.pages += 1
            self._check_order(walk, page)
            below: Position | None = None
            for chunk in _chunks(page, self.batch_signatures):
                wanted: list[dict[str, Any]] = []
                for info in chunk:
                    position = position_of(info)
                    if plan.until is not None and not _inside_top(plan.until, position):
                        walk.skipped_above = True
                        continue
                    if plan.since is not None and _before_start(plan.since, position):
                        below = position
                        break
                    wanted.append(info)
                if wanted:
                    await self._process(plan, progress, walk, wanted, report)
                    bar.update(len(wanted))
                if below is not None:
                    break
            if below is not None:
                self._stopped_below(progress, walk, below)
                return
            if len(page) < self.page_limit:
                self._reached_end(progress, walk)
                return
            walk.before = page[-1]["signature"]

    async def _seek(self, plan: OnchainPlan, walk: _Walk, tip: int | None) -> None:
        # A range that ends below the region's top (--until-slot in the past) starts at the first block at or
        # after its end: that block's first signature as ``before`` lists exactly the older ones, so the
        # signatures above the range cost no page. Time bounds have no slot to seek to; they page from the top.
        until = plan.until
        if until is None or until.unit != "slot" or tip is None or until.value > tip:
            return
        top = walk.region.before
        if top is not None and top.slot <= until.value:
            return
        for slot in range(until.value, min(until.value + SEEK_SLOTS, tip + 1)):
            signatures = await self.rpc.get_block_signatures(slot)
            if signatures is None:
                continue
            if signatures and (top is None or slot < top.slot):
                walk.before, walk.skipped_above = signatures[0], True
            return

    def _check_order(self, walk: _Walk, page: list[dict[str, Any]]) -> None:
        slots = [info["slot"] for info in page]
        previous = walk.last_slot
        for slot in slots:
            if previous is not None and slot > previous:
                raise MalformedRpcResponseError(
                    f"getSignaturesForAddress: expected signatures newest first (slots not increasing), was slot "
                    f"{slot:,} after {previous:,}; nothing of this page was written: the node's index is inconsistent, "
                    "pass another --rpc"
                )
            previous = slot
        walk.last_slot = previous

    async def _process(
        self, plan: OnchainPlan, progress: Progress, walk: _Walk, infos: list[dict[str, Any]], report: OnchainReport
    ) -> None:
        batch = _Batch(infos)
        live = [info["signature"] for info in infos if info.get("err") is None]
        batch.failed = len(infos) - len(live)
        for tx in await self._transactions(live):
            if (tx.get("meta") or {}).get("err") is not None:
                batch.failed += 1
                continue
            await self._complete_lookups(tx)
            batch.transactions += 1
            signature, slot = tx["transaction"]["signatures"][0], tx.get("slot")
            try:
                decoded = self.decoder(tx)
                liquidations = _frame(decoded.liquidations, "liquidations")
                extras = _frame(decoded.extras, EXTRAS_KIND) if _has_rows(decoded.extras) else None
            except DECODE_ERRORS as error:
                # One transaction the decoder cannot read is a recorded skip, not the end of the fetch.
                reason = f"the decoder failed: {type(error).__name__}: {error}"
                log.warning("skipped transaction %s: %s", signature, reason)
                batch.skips.append(SkipRecord(signature, slot, None, reason))
                continue
            batch.liquidations.append(liquidations)
            if extras is not None:
                batch.extras.append(extras)
            batch.skips.extend(_skip_record(skip, signature, slot) for skip in decoded.skips or ())
        self._write(plan, walk, batch, report)
        append_skips(self.store.root, plan.protocol, batch.skips)
        self._advance(progress, walk, batch)
        save_progress(self.store.root, progress)
        report.signatures += len(infos)
        report.failed += batch.failed
        report.transactions += batch.transactions
        report.skips += len(batch.skips)

    async def _transactions(self, signatures: list[str]) -> list[dict[str, Any]]:
        if not signatures:
            return []
        gate = asyncio.Semaphore(self.concurrency)

        async def one(signature: str) -> dict[str, Any]:
            async with gate:
                tx = await self.rpc.get_transaction(signature, encoding=self.encoding)
            if tx is None:
                raise MalformedRpcResponseError(
                    f"getTransaction {signature}: the node has no such transaction although it listed the signature "
                    "as finalized; its history may not reach back this far: pass an archive --rpc"
                )
            return tx

        tasks = [spawn(one(signature), name=f"getTransaction {signature[:12]}") for signature in signatures]
        try:
            return list(await asyncio.gather(*tasks))
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise

    async def _complete_lookups(self, tx: dict[str, Any]) -> None:
        message = tx["transaction"]["message"]
        lookups = message.get("addressTableLookups") or []
        if not lookups or _parsed_keys(message):
            return
        signature = tx["transaction"]["signatures"][0]
        meta = tx.setdefault("meta", {})
        wanted = (
            sum(len(lookup["writableIndexes"]) for lookup in lookups),
            sum(len(lookup["readonlyIndexes"]) for lookup in lookups),
        )
        loaded = meta.get("loadedAddresses")
        if loaded is None:
            missing = [lookup["accountKey"] for lookup in lookups if lookup["accountKey"] not in self._tables]
            if missing:
                await self._load_tables(missing, signature)
            meta["loadedAddresses"] = {
                "writable": [self._entry(x["accountKey"], i, signature) for x in lookups for i in x["writableIndexes"]],
                "readonly": [self._entry(x["accountKey"], i, signature) for x in lookups for i in x["readonlyIndexes"]],
            }
            return
        found = (len(loaded.get("writable", [])), len(loaded.get("readonly", [])))
        if found != wanted:
            raise MalformedRpcResponseError(
                f"getTransaction {signature}: expected {wanted[0]} writable and {wanted[1]} readonly loaded addresses "
                f"(its address table lookups), was {found[0]} and {found[1]}; the account metas would be wrong: "
                "pass another --rpc"
            )

    async def _load_tables(self, tables: list[str], signature: str) -> None:
        for start in range(0, len(tables), 100):
            keys = tables[start : start + 100]
            _, accounts = await self.rpc.get_multiple_accounts(keys)
            for key, account in zip(keys, accounts, strict=True):
                if account is None or account.get("owner") != ADDRESS_LOOKUP_TABLE_PROGRAM:
                    raise MalformedRpcResponseError(
                        f"transaction {signature} loads accounts from lookup table {key}, which "
                        f"{'no longer exists' if account is None else 'is not an address lookup table'}, and the "
                        "node sent no meta.loadedAddresses: its account keys cannot be completed; pass an --rpc "
                        "that returns loadedAddresses"
                    )
                self._tables[key] = _lookup_table_addresses(account, key)

    def _entry(self, table: str, index: int, signature: str) -> str:
        addresses = self._tables[table]
        if not 0 <= index < len(addresses):
            raise MalformedRpcResponseError(
                f"transaction {signature} loads entry {index} of lookup table {table}, which holds "
                f"{len(addresses)} addresses; the table was closed or replaced: pass an --rpc that returns "
                "loadedAddresses"
            )
        return addresses[index]

    def _write(self, plan: OnchainPlan, walk: _Walk, batch: _Batch, report: OnchainReport) -> None:
        newest, oldest = position_of(batch.infos[0]), position_of(batch.infos[-1])
        info = SourceInfo(
            source=f"{self.rpc.endpoint.public} getTransaction {plan.program_id}",
            sha256=hashlib.sha256("\n".join(i["signature"] for i in batch.infos).encode()).hexdigest(),
            importer=IMPORTER,
            importer_version=IMPORTER_VERSION,
            extra=(
                ("chain", CHAIN),
                ("protocol", plan.protocol),
                ("program_id", plan.program_id),
                ("endpoint", self.rpc.endpoint.public),
                ("methods", "getSignaturesForAddress, getTransaction"),
                ("request_before", walk.region.before.signature if walk.region.before else "tip"),
                ("request_until", walk.region.until.signature if walk.region.until else "range start"),
                ("signature_newest", newest.signature),
                ("signature_oldest", oldest.signature),
                ("slot_newest", str(newest.slot)),
                ("slot_oldest", str(oldest.slot)),
                ("signatures", str(len(batch.infos))),
                ("fetched_at", self.clock().astimezone(UTC).isoformat()),
            ),
        )
        for kind, frames in (("liquidations", batch.liquidations), (EXTRAS_KIND, batch.extras)):
            rows = [frame for frame in frames if frame.height]
            if not rows:
                continue
            frame = pl.concat(rows, how="vertical").with_columns(pl.int_range(pl.len(), dtype=pl.Int64).alias(ROW))
            summary = self.store.write(kind, frame, info)
            report.writes += 1
            report.partitions_written += len(summary.partitions_written)
            if kind == "liquidations":
                report.liquidations += frame.height
            else:
                report.extras += frame.height

    def _advance(self, progress: Progress, walk: _Walk, batch: _Batch) -> None:
        newest, oldest = position_of(batch.infos[0]), position_of(batch.infos[-1])
        span = walk.span
        if span is None:
            if walk.newer is not None and not walk.skipped_above:
                span = walk.newer
            else:
                span = Span(newest=newest, oldest=newest)
                at = 0 if walk.newer is None else progress.spans.index(walk.newer) + 1
                progress.spans.insert(at, span)
            walk.span = span
        span.oldest = oldest
        span.below = None
        span.signatures += len(batch.infos)
        span.failed += batch.failed
        span.transactions += batch.transactions
        span.liquidations += sum(frame.height for frame in batch.liquidations)
        span.extras += sum(frame.height for frame in batch.extras)
        span.skips += len(batch.skips)

    def _continuing(self, walk: _Walk) -> Span | None:
        if walk.span is not None:
            return walk.span
        return walk.newer if walk.newer is not None and not walk.skipped_above else None

    def _stopped_below(self, progress: Progress, walk: _Walk, below: Position) -> None:
        span = self._continuing(walk)
        if span is not None:
            span.below = below
            save_progress(self.store.root, progress)

    def _reached_end(self, progress: Progress, walk: _Walk) -> None:
        span = self._continuing(walk)
        if span is None:
            return
        if walk.older is None:
            span.history_start = True
        else:
            span.absorb(walk.older)
            progress.spans.remove(walk.older)
        save_progress(self.store.root, progress)


def _lookup_table_addresses(account: dict[str, Any], key: str) -> list[str]:
    data = account.get("data")
    raw = base64.b64decode(data[0]) if isinstance(data, list) and data and isinstance(data[0], str) else b""
    body = raw[LOOKUP_TABLE_META_BYTES:]
    if len(raw) < LOOKUP_TABLE_META_BYTES or len(body) % 32:
        raise MalformedRpcResponseError(
            f"lookup table {key}: expected a {LOOKUP_TABLE_META_BYTES}-byte header and 32-byte addresses, was "
            f"{len(raw)} bytes"
        )
    return [str(Pubkey.from_bytes(body[i : i + 32])) for i in range(0, len(body), 32)]


def _frame(rows: Any, kind: str) -> pl.DataFrame:
    spec = spec_for(kind)
    if isinstance(rows, pl.DataFrame):
        return rows.select(spec.columns)
    schema = spec.polars_schema
    return pl.DataFrame([{name: row.get(name) for name in schema} for row in rows or ()], schema=schema)


def _skip_record(skip: Any, signature: str, slot: int | None) -> SkipRecord:
    reason = getattr(skip, "reason", None)
    if reason is None:
        return SkipRecord(signature, slot, None, str(skip))
    return SkipRecord(skip.signature, slot, skip.instruction_index, reason)


def _has_rows(rows: Any) -> bool:
    if isinstance(rows, pl.DataFrame):
        return rows.height > 0
    return bool(rows)


def _chunks(items: Sequence[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def _inside_top(until: Bound, position: Position) -> bool:
    value = until.of(position)
    return value is None or value < until.value


def _before_start(since: Bound, position: Position) -> bool:
    value = since.of(position)
    return value is not None and value < since.value


def _earlier(one: Bound, other: Bound) -> bool:
    return one.unit != other.unit or one.value < other.value
