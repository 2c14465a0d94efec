"""Decode a raw account snapshot (``datasets.onchain.snapshots``) into typed ``account_states`` rows.

Each account of the snapshot is read by its owner program's IDL (``states.decode_account``), or as a Pyth
v2 price account when its data starts with Pyth's magic: Kamino ``Obligation`` and ``Reserve``, marginfi
``MarginfiAccount`` and ``Bank``, Drift ``User``, and ``PythPrice``. The snapshot is decoded as a whole,
so an obligation is valued with the reserves, and a marginfi account with the banks and the Pyth prices
of the banks' oracles, read in the same snapshot:

- Kamino obligation: deposits (cTokens, cached market value, the reserve's liquidation threshold) and
  borrows (liquidity native units, cached market value, the reserve's borrow factor); health as the
  program cached it at its last refresh (``health.kamino_health``).
- marginfi account: each active balance's asset or liability shares, x the bank's share value in native
  units, priced by the Pyth account of the bank's oracle, else the bank's cached oracle price, else
  ``prices``; health as the program cached it (``health_cache``) when it did, else computed
  (``health.marginfi_health``) when every balance is priced, else null and ``health_source`` says what
  is missing.
- Drift user: spot and perp positions valued and health computed from a declared market table
  (``health.DriftMarkets``); without one, only the positions' scaled balances and base amounts.

An account the IDLs do not know (another type, a closed account) is a ``StateSkip`` with its pubkey, never a
row. The rows are written through the store's validated atomic writer with the raw snapshot as their lineage.
``stored_prices`` turns the stored reserves' and banks' cached oracle prices into a ``PriceTable`` for the
liquidation decoders.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, localcontext
from pathlib import Path
from typing import Any

import polars as pl

from datasets.onchain.errors import AccountDecodeError, InputFileError
from datasets.onchain.health import (
    DriftMarkets,
    Health,
    Position,
    drift_health,
    drift_positions,
    kamino_health,
    marginfi_health,
)
from datasets.onchain.idl import Idls
from datasets.onchain.prices import MintPrice, PriceTable
from datasets.onchain.states import PYTH_MAGIC, DecodedAccount, decode_account, decode_pyth_price, i80f48
from datasets.onchain.states import scaled_fraction as sf
from datasets.schemas import ACCOUNT_STATES
from datasets.store import LINEAGE_KEY, SourceInfo, Store, WriteSummary
from datasets.validate import ROW

KIND = "account_states"
IMPORTER = "solana-account-states"
IMPORTER_VERSION = "1"
_EMPTY_KEY = "11111111111111111111111111111111"
_QUANTUM = Decimal("1e-18")


@dataclass(frozen=True, slots=True)
class StateSkip:
    """An account of the snapshot left out of the rows, and why."""

    pubkey: str
    reason: str


@dataclass(slots=True)
class AccountStates:
    """The rows decoded from one snapshot and the accounts skipped."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    skips: list[StateSkip] = field(default_factory=list)

    def frame(self) -> pl.DataFrame:
        """Return the rows as a frame of the ``account_states`` schema."""
        schema = ACCOUNT_STATES.polars_schema
        return pl.DataFrame([{name: row.get(name) for name in schema} for row in self.rows], schema=schema)


@dataclass(frozen=True, slots=True)
class _Account:
    pubkey: str
    owner: str
    decoded: DecodedAccount | None
    price: Decimal | None = None


@dataclass(frozen=True, slots=True)
class _Snapshot:
    protocol: str
    slot: int
    ts: datetime
    source: str
    reserves: Mapping[str, Mapping[str, Any]]
    banks: Mapping[str, Mapping[str, Any]]
    oracles: Mapping[str, Decimal]
    prices: PriceTable
    drift_markets: DriftMarkets | None


def decode_states(
    accounts: pl.DataFrame,
    *,
    protocol: str,
    idls: Idls,
    slot: int,
    ts: datetime,
    source: str,
    prices: PriceTable | None = None,
    drift_markets: DriftMarkets | None = None,
) -> AccountStates:
    """Decode the accounts of a snapshot frame (``pubkey, owner, data_base64``) into ``account_states`` rows.

    Parameters
    ----------
    accounts : pl.DataFrame
        The snapshot's accounts (``datasets.onchain.snapshots.SNAPSHOT_SCHEMA``).
    protocol : str
        Whose IDL reads the Anchor accounts.
    idls : Idls
        The Anchor IDLs.
    slot, ts : int, datetime
        The slot the snapshot was read at and its fetch time (UTC).
    source : str
        What the rows' ``source`` says (the snapshot file and endpoint).
    prices : PriceTable, optional
        USD prices of mints the snapshot holds no oracle for.
    drift_markets : DriftMarkets, optional
        Drift market parameters and oracle prices, for Drift users' values and health.
    """
    result = AccountStates()
    decoded: list[_Account] = []
    for pubkey, owner, data in accounts.select("pubkey", "owner", "data_base64").iter_rows():
        raw = base64.b64decode(data)
        try:
            if raw[:4] == PYTH_MAGIC.to_bytes(4, "little"):
                decoded.append(_Account(pubkey, owner, None, decode_pyth_price(raw).price))
            else:
                decoded.append(_Account(pubkey, owner, decode_account(raw, protocol=protocol, idls=idls)))
        except AccountDecodeError as error:
            result.skips.append(StateSkip(pubkey, str(error)))
    by_type: dict[str, dict[str, Mapping[str, Any]]] = {}
    for account in decoded:
        if account.decoded is not None:
            by_type.setdefault(account.decoded.name, {})[account.pubkey] = account.decoded.fields
    snapshot = _Snapshot(
        protocol=protocol,
        slot=slot,
        ts=ts,
        source=source,
        reserves=by_type.get("Reserve", {}),
        banks=by_type.get("Bank", {}),
        oracles={a.pubkey: a.price for a in decoded if a.price is not None},
        prices=prices or PriceTable(),
        drift_markets=drift_markets,
    )
    for account in decoded:
        rows = _rows(snapshot, account)
        if rows is None:
            name = account.decoded.name if account.decoded else "?"
            result.skips.append(StateSkip(account.pubkey, f"{name} accounts carry no position or price state"))
            continue
        result.rows.extend(rows)
    return result


def _rows(snapshot: _Snapshot, account: _Account) -> list[dict[str, Any]] | None:
    if account.decoded is None:
        assert account.price is not None
        return [_row(snapshot, account, "PythPrice", None, price_usd=_positive(account.price))]
    fields, name = account.decoded.fields, account.decoded.name
    if name == "Obligation":
        return _obligation(snapshot, account, fields)
    if name == "Reserve":
        liquidity, config = fields["liquidity"], fields["config"]
        return [
            _row(
                snapshot,
                account,
                name,
                None,
                mint=liquidity["mint_pubkey"],
                amount=Decimal(liquidity["available_amount"]),
                decimals=liquidity["mint_decimals"],
                price_usd=_positive(sf(liquidity["market_price_sf"])),
                weight=Decimal(config["liquidation_threshold_pct"]) / 100,
            )
        ]
    if name == "Bank":
        return [
            _row(
                snapshot,
                account,
                name,
                None,
                mint=fields["mint"],
                decimals=fields["mint_decimals"],
                price_usd=_bank_price(snapshot, fields),
                weight=i80f48(fields["config"]["asset_weight_maint"]),
            )
        ]
    if name == "MarginfiAccount":
        return _marginfi_account(snapshot, account, fields)
    if name == "User":
        return _drift_user(snapshot, account, fields)
    return None


def _row(
    snapshot: _Snapshot,
    account: _Account,
    account_type: str,
    position: int | None,
    **values: Any,
) -> dict[str, Any]:
    with localcontext() as context:
        context.prec = 60
        decimals = {k: v.quantize(_QUANTUM) for k, v in values.items() if isinstance(v, Decimal)}
    return {
        "venue": "solana",
        "protocol": snapshot.protocol,
        "account_type": account_type,
        "account": account.pubkey,
        "program_owner": account.owner,
        "slot": snapshot.slot,
        "ts": snapshot.ts,
        "position": position,
        "idl_version": account.decoded.version if account.decoded else None,
        "source": snapshot.source,
        **values,
        **decimals,
    }


def _account_rows(
    snapshot: _Snapshot,
    account: _Account,
    positions: list[Position],
    health: tuple[Health | None, str],
    authority: str,
) -> list[dict[str, Any]]:
    assert account.decoded is not None
    figures, health_source = health
    common: dict[str, Any] = {"authority": authority, "health_source": health_source}
    if figures is not None:
        common["collateral_usd"] = figures.weighted_collateral_usd
        common["borrows_usd"] = figures.weighted_debt_usd
        if figures.weighted_debt_usd > 0:
            common["health_ratio"] = figures.weighted_collateral_usd / figures.weighted_debt_usd
    name = account.decoded.name
    if not positions:
        return [_row(snapshot, account, name, None, **common)]
    return [
        _row(
            snapshot,
            account,
            name,
            index,
            position_kind=p.kind,
            position_market=p.market,
            mint=p.mint,
            shares=p.shares,
            amount=p.amount,
            decimals=p.decimals,
            price_usd=p.price_usd,
            value_usd=p.value_usd,
            weight=p.weight,
            **common,
        )
        for index, p in enumerate(positions)
    ]


def _obligation(snapshot: _Snapshot, account: _Account, fields: Mapping[str, Any]) -> list[dict[str, Any]]:
    positions = []
    for deposit in fields["deposits"]:
        key = deposit["deposit_reserve"]
        if key == _EMPTY_KEY:
            continue
        reserve = snapshot.reserves.get(key)
        weight = None if reserve is None else Decimal(reserve["config"]["liquidation_threshold_pct"]) / 100
        mint = None if reserve is None else reserve["collateral"]["mint_pubkey"]
        decimals = None if reserve is None else reserve["liquidity"]["mint_decimals"]
        shares = Decimal(deposit["deposited_amount"])
        value = sf(deposit["market_value_sf"])
        positions.append(Position("deposit", key, mint, shares, shares, decimals, None, value, weight))
    for borrow in fields["borrows"]:
        key = borrow["borrow_reserve"]
        if key == _EMPTY_KEY:
            continue
        reserve = snapshot.reserves.get(key)
        weight = None if reserve is None else Decimal(reserve["config"]["borrow_factor_pct"]) / 100
        mint = None if reserve is None else reserve["liquidity"]["mint_pubkey"]
        decimals = None if reserve is None else reserve["liquidity"]["mint_decimals"]
        amount = sf(borrow["borrowed_amount_sf"])
        value = sf(borrow["market_value_sf"])
        positions.append(Position("borrow", key, mint, amount, amount, decimals, None, value, weight))
    health = (kamino_health(fields), f"cached by the program at slot {fields['last_update']['slot']}")
    return _account_rows(snapshot, account, positions, health, fields["owner"])


def _bank_price(snapshot: _Snapshot, bank: Mapping[str, Any]) -> Decimal | None:
    for key in bank["config"]["oracle_keys"]:
        if key in snapshot.oracles:
            return snapshot.oracles[key]
    cached = _positive(i80f48(bank["cache"]["last_oracle_price"])) if "cache" in bank else None
    return cached if cached is not None else snapshot.prices.usd(bank["mint"])


def _marginfi_account(snapshot: _Snapshot, account: _Account, fields: Mapping[str, Any]) -> list[dict[str, Any]]:
    positions, missing = [], []
    for balance in fields["lending_account"]["balances"]:
        if not balance["active"]:
            continue
        key = balance["bank_pk"]
        bank = snapshot.banks.get(key)
        price = None if bank is None else _bank_price(snapshot, bank)
        if bank is None:
            missing.append(f"bank {key}")
        elif price is None:
            missing.append(f"a price of mint {bank['mint']}")
        for kind, shares_field, value_field, weight_field in (
            ("deposit", "asset_shares", "asset_share_value", "asset_weight_maint"),
            ("borrow", "liability_shares", "liability_share_value", "liability_weight_maint"),
        ):
            shares = i80f48(balance[shares_field])
            if shares == 0:
                continue
            if bank is None:
                positions.append(Position(kind, key, None, shares))
                continue
            amount = shares * i80f48(bank[value_field])
            value = None if price is None else amount.scaleb(-bank["mint_decimals"]) * price
            weight = i80f48(bank["config"][weight_field])
            positions.append(
                Position(kind, key, bank["mint"], shares, amount, bank["mint_decimals"], price, value, weight)
            )
    return _account_rows(
        snapshot, account, positions, _marginfi_figures(snapshot, fields, missing), fields["authority"]
    )


def _marginfi_figures(snapshot: _Snapshot, fields: Mapping[str, Any], missing: list[str]) -> tuple[Health | None, str]:
    cache = fields.get("health_cache")
    if cache is not None and cache["timestamp"] > 0:
        figures = Health(i80f48(cache["asset_value_maint"]), i80f48(cache["liability_value_maint"]))
        return figures, f"cached by the program at unix time {cache['timestamp']}"
    if missing:
        return None, f"not computable: {', '.join(dict.fromkeys(missing))} not in the snapshot or price table"
    prices = {bank["mint"]: _bank_price(snapshot, bank) for bank in snapshot.banks.values()}
    known = {mint: price for mint, price in prices.items() if price is not None}
    return marginfi_health(fields, snapshot.banks, known), "computed from the snapshot's banks and prices"


def _drift_user(snapshot: _Snapshot, account: _Account, fields: Mapping[str, Any]) -> list[dict[str, Any]]:
    markets = snapshot.drift_markets
    positions = drift_positions(fields, markets)
    if markets is None:
        health: tuple[Health | None, str] = (None, "not computable: no Drift market table (--drift-markets)")
    else:
        try:
            health = (drift_health(fields, markets), f"computed from the Drift market table ({markets.source})")
        except AccountDecodeError as error:
            health = (None, f"not computable: {error}")
    return _account_rows(snapshot, account, positions, health, fields["authority"])


def _positive(value: Decimal) -> Decimal | None:
    return value if value > 0 else None


def stored_prices(store: Store) -> PriceTable:
    """Return the newest USD price per mint of the stored Reserve and Bank rows (their cached oracle prices).

    Each price's source names the account and slot it was read at; empty when no account states are stored.
    """
    if not (store.root / KIND).is_dir() or not store.files(KIND, venue="solana"):
        return PriceTable()
    wanted = pl.col("account_type").is_in(["Reserve", "Bank"]) & pl.col("price_usd").is_not_null()
    rows = store.scan(KIND, venue="solana").filter(wanted).collect()
    return PriceTable(
        MintPrice(mint, Decimal(price), f"{kind} {account} at slot {slot}")
        for mint, price, kind, account, slot in rows.sort("slot")
        .select("mint", "price_usd", "account_type", "account", "slot")
        .iter_rows()
    )


def write_account_states(
    store: Store,
    snapshot_path: Path,
    *,
    idls: Idls,
    prices: PriceTable | None = None,
    drift_markets: DriftMarkets | None = None,
) -> tuple[WriteSummary, AccountStates]:
    """Decode a raw snapshot file and write its rows to the ``account_states`` kind (idempotent).

    Raises
    ------
    InputFileError
        If the file is not a raw snapshot written by ``snapshot_accounts`` (no lineage, no accounts table).
    ValidationError, ConflictError, StoreWriteError
        From the store's writer (nothing is written).
    """
    try:
        metadata = pl.read_parquet_metadata(snapshot_path)
        accounts = pl.read_parquet(snapshot_path)
        lineage = json.loads(metadata[LINEAGE_KEY])[0]
        protocol, slot = lineage["protocol"], int(lineage["slot"])
        ts = datetime.fromisoformat(lineage["fetched_at"])
    except (OSError, KeyError, ValueError, IndexError, pl.exceptions.PolarsError) as error:
        raise InputFileError(
            f"{snapshot_path}: expected a raw account snapshot of fetch-onchain --accounts, was unreadable ({error})"
        ) from None
    states = decode_states(
        accounts,
        protocol=protocol,
        idls=idls,
        slot=slot,
        ts=ts,
        source=f"{lineage['endpoint']} {lineage['method']} snapshot {snapshot_path.name}",
        prices=prices,
        drift_markets=drift_markets,
    )
    info = SourceInfo(
        source=str(snapshot_path),
        sha256=hashlib.sha256(snapshot_path.read_bytes()).hexdigest(),
        importer=IMPORTER,
        importer_version=IMPORTER_VERSION,
        extra=tuple(sorted((str(k), str(v)) for k, v in lineage.items())),
    )
    frame = states.frame().with_columns(pl.int_range(pl.len(), dtype=pl.Int64).alias(ROW))
    return store.write(KIND, frame, info), states
