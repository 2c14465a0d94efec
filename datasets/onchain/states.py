"""Decode the account states that decide the next liquidation: Kamino obligation and reserve, marginfi bank,
account and group, Drift user (all through their Anchor IDL layouts) and a Pyth v2 price account.

``decode_account(data, protocol=..., idls=...)`` reads an Anchor account by its 8-byte discriminator with the
newest IDL version whose layout fits the data exactly (accounts are fixed-size zero-copy structs, so a
layout that ends before or after the data is the wrong version). Pyth's legacy price account is not an
Anchor account; ``decode_pyth_price`` reads its header and aggregate price (pyth-client ``oracle.h``).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from datasets.onchain.errors import AccountDecodeError, BorshError
from datasets.onchain.idl import DISCRIMINATOR_BYTES, Idls

PYTH_MAGIC = 0xA1B2C3D4
PYTH_PRICE_TYPE = 3
# magic, version, account type, size, price type, exponent, components, quoters, last slot, valid slot
_PYTH_HEADER = struct.Struct("<IIIIIiIIQQ")
# aggregate: price, confidence, status, corporate action, publish slot
_PYTH_AGGREGATE = struct.Struct("<qQIIQ")
_PYTH_AGGREGATE_OFFSET = 208
_PYTH_TIMESTAMP_OFFSET = 96
_PYTH_STATUS = {0: "unknown", 1: "trading", 2: "halted", 3: "auction", 4: "ignored"}


@dataclass(frozen=True, slots=True)
class DecodedAccount:
    """An account's type name, the IDL version that read it, and its fields."""

    name: str
    version: str
    fields: dict[str, Any]


def decode_account(data: bytes, *, protocol: str, idls: Idls) -> DecodedAccount:
    """Decode an Anchor account of ``protocol`` by its discriminator.

    Raises
    ------
    AccountDecodeError
        If no IDL version has an account with that discriminator, or none's layout spans the data exactly.
    """
    tried = []
    for layout in idls.account_layout(protocol, data):
        try:
            fields, end = layout.reader(data, DISCRIMINATOR_BYTES)
        except BorshError as error:
            tried.append(f"{layout.name} {layout.version}: {error}")
            continue
        if end == len(data):
            return DecodedAccount(layout.name, layout.version, fields)
        tried.append(f"{layout.name} {layout.version}: layout spans {end} bytes, the account has {len(data)}")
    if not tried:
        raise AccountDecodeError(
            f"no {protocol} IDL has an account with discriminator {bytes(data[:8]).hex()}; "
            "is the account owned by that program?"
        )
    raise AccountDecodeError(f"{protocol} account matches no known layout ({'; '.join(tried)})")


@dataclass(frozen=True, slots=True)
class PythPrice:
    """A Pyth v2 price account's aggregate: ``price`` and ``confidence`` are exact decimals."""

    price: Decimal
    confidence: Decimal
    exponent: int
    status: str
    publish_slot: int
    timestamp: int


def decode_pyth_price(data: bytes) -> PythPrice:
    """Decode a legacy Pyth v2 price account (magic ``0xa1b2c3d4``, account type 3).

    Raises
    ------
    AccountDecodeError
        If the data is too short, or its magic, version or account type is not a v2 price account's.
    """
    if len(data) < _PYTH_AGGREGATE_OFFSET + _PYTH_AGGREGATE.size:
        raise AccountDecodeError(f"a Pyth v2 price account is at least 240 bytes, was {len(data)}")
    magic, version, account_type, _size, _ptype, exponent, *_ = _PYTH_HEADER.unpack_from(data, 0)
    if (magic, version, account_type) != (PYTH_MAGIC, 2, PYTH_PRICE_TYPE):
        raise AccountDecodeError(
            f"expected Pyth magic 0xa1b2c3d4, version 2, type 3 (price), was {magic:#x}, {version}, {account_type}"
        )
    (timestamp,) = struct.unpack_from("<q", data, _PYTH_TIMESTAMP_OFFSET)
    price, confidence, status, _, publish_slot = _PYTH_AGGREGATE.unpack_from(data, _PYTH_AGGREGATE_OFFSET)
    return PythPrice(
        price=Decimal(price).scaleb(exponent),
        confidence=Decimal(confidence).scaleb(exponent),
        exponent=exponent,
        status=_PYTH_STATUS.get(status, str(status)),
        publish_slot=publish_slot,
        timestamp=timestamp,
    )


def i80f48(value: Any) -> Decimal:
    """Return a marginfi ``WrappedI80F48`` (``{"value": 16 bytes}``, little-endian, 48 fraction bits) exactly."""
    raw = value["value"] if isinstance(value, dict) else value
    return Decimal(int.from_bytes(bytes(raw), "little", signed=True)) / Decimal(2**48)


def scaled_fraction(value: int) -> Decimal:
    """Return a Kamino ``*_sf`` value (a u128 with 60 fraction bits) exactly."""
    return Decimal(value) / Decimal(2**60)
