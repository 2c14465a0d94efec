"""Raw snapshots of a protocol's program accounts (``fetch-onchain --accounts``) for the account decoders.

``--accounts all`` asks ``getProgramAccounts`` for every account the program owns (optionally one
Anchor account type: a ``memcmp`` filter on its 8-byte discriminator, ``sha256("account:<Type>")``);
``--accounts A,B,...`` asks ``getMultipleAccounts`` for those addresses, 100 per request. Both are
read at ``finalized`` commitment and carry the slot they were read at.

A snapshot is first kept raw, as the lineage of the typed rows: one Parquet file per snapshot beside the
store's partitions, ``<store>/onchain-accounts.solana.<protocol>.<selection>.<slot>.parquet`` (columns
``pubkey, owner, lamports, executable, rent_epoch, space, data_base64, slot, fetched_at``), written to a
temp file, fsynced and renamed, with its lineage (endpoint, method, filter, slot, fetch time) in the
footer like every store file. A file at the store root is no kind, so ``status`` and ``check`` leave it
alone. ``datasets.onchain.account_states`` then decodes it into the ``account_states`` kind.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from datasets.errors import StoreWriteError
from datasets.onchain.fetch import CHAIN, program_id
from datasets.onchain.rpc import MULTIPLE_ACCOUNTS_LIMIT, MalformedRpcResponseError, SolanaRpc
from datasets.store import LINEAGE_KEY, Store

SNAPSHOT_SCHEMA: dict[str, pl.DataType] = {
    "pubkey": pl.String(),
    "owner": pl.String(),
    "lamports": pl.Int64(),
    "executable": pl.Boolean(),
    "rent_epoch": pl.Decimal(20, 0),
    "space": pl.Int64(),
    "data_base64": pl.String(),
}


@dataclass(frozen=True, slots=True)
class AccountSnapshot:
    """A written snapshot: its file, accounts found, addresses asked for that hold no account, and its slot."""

    path: Path
    accounts: int
    missing: int
    slot: int

    def __str__(self) -> str:
        missing = f", {self.missing} addresses hold no account" if self.missing else ""
        return f"{self.accounts:,} accounts at slot {self.slot:,} written to {self.path}{missing}"


def account_discriminator(account_type: str) -> bytes:
    """Return the 8-byte Anchor discriminator of an account type (``sha256("account:<Type>")[:8]``)."""
    return hashlib.sha256(f"account:{account_type}".encode()).digest()[:8]


async def snapshot_accounts(
    store: Store,
    rpc: SolanaRpc,
    *,
    protocol: str,
    addresses: list[str] | None = None,
    account_type: str | None = None,
    now: datetime | None = None,
) -> AccountSnapshot:
    """Read a protocol's accounts (all it owns, one type, or ``addresses``) and write them as a raw snapshot.

    Raises
    ------
    RpcError, RetryExhaustedError
        If the RPC refuses or keeps failing (nothing is written).
    MalformedRpcResponseError
        If an account is not base64 data.
    StoreWriteError
        If the file cannot be written.
    """
    program = program_id(protocol)
    fetched_at = (now or datetime.now(UTC)).astimezone(UTC)
    if addresses is None:
        filters = [] if account_type is None else [_discriminator_filter(account_type)]
        slot = await rpc.get_slot()
        found = await rpc.get_program_accounts(program, filters=filters)
        rows = [_row(item["pubkey"], item["account"]) for item in found]
        method, selection, missing = "getProgramAccounts", account_type or "all", 0
    else:
        rows, missing, slot = [], 0, 0
        for start in range(0, len(addresses), MULTIPLE_ACCOUNTS_LIMIT):
            keys = addresses[start : start + MULTIPLE_ACCOUNTS_LIMIT]
            context_slot, accounts = await rpc.get_multiple_accounts(keys)
            slot = max(slot, context_slot)
            missing += sum(account is None for account in accounts)
            rows.extend(_row(key, account) for key, account in zip(keys, accounts, strict=True) if account is not None)
        method, selection = "getMultipleAccounts", "selected"
    frame = pl.DataFrame(rows, schema=SNAPSHOT_SCHEMA, orient="row").with_columns(
        pl.lit(slot, dtype=pl.Int64).alias("slot"), pl.lit(fetched_at).alias("fetched_at")
    )
    lineage = {
        "chain": CHAIN,
        "protocol": protocol,
        "program_id": program,
        "endpoint": rpc.endpoint.public,
        "method": method,
        "selection": selection,
        "addresses": str(len(addresses)) if addresses is not None else "all",
        "slot": str(slot),
        "fetched_at": fetched_at.isoformat(),
    }
    path = store.root / f"onchain-accounts.{CHAIN}.{protocol}.{selection}.{slot}.parquet"
    _write_atomic(path, frame.sort("pubkey"), {LINEAGE_KEY: json.dumps([lineage], sort_keys=True)})
    return AccountSnapshot(path=path, accounts=frame.height, missing=missing, slot=slot)


def _discriminator_filter(account_type: str) -> dict[str, Any]:
    encoded = base64.b64encode(account_discriminator(account_type)).decode()
    return {"memcmp": {"offset": 0, "bytes": encoded, "encoding": "base64"}}


def _row(pubkey: str, account: dict[str, Any]) -> tuple[Any, ...]:
    data = account.get("data")
    if not (isinstance(data, list) and len(data) == 2 and data[1] == "base64" and isinstance(data[0], str)):
        raise MalformedRpcResponseError(f"account {pubkey}: expected data as [base64, 'base64'], was {data!r:.80}")
    return (
        pubkey,
        account.get("owner"),
        account.get("lamports"),
        bool(account.get("executable")),
        account.get("rentEpoch"),
        account.get("space", len(base64.b64decode(data[0]))),
        data[0],
    )


def _write_atomic(path: Path, frame: pl.DataFrame, metadata: dict[str, str]) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        frame.write_parquet(tmp, compression="zstd", metadata=metadata)
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        raise StoreWriteError(
            f"{path}: expected a writable store, was an error writing the account snapshot ({exc}); nothing was "
            "changed: free disk space or fix the permissions"
        ) from exc
    finally:
        tmp.unlink(missing_ok=True)
