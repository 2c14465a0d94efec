"""Instrument specs (``datasets.instruments``) -> Nautilus instruments: ``CurrencyPair`` spot, ``CryptoPerpetual`` perp.

Instruments carry no fees in Nautilus 2.x (fees live in the venue's ``MakerTakerFeeModel``, built from
the catalog's ``venues.json``). They are stamped ``ts_event = ts_init = 0`` so any backtest range sees them.
An inferred spec's instrument carries ``info = {"inferred": True, "spec_source": ...}``; a stored spec's
carries none (so its catalog files do not change with the spec's provenance).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nautilus_trader.model import CryptoPerpetual, Currency, CurrencyPair, Price, Quantity, Symbol

from datasets.catalog.files import instrument_directory_name
from datasets.instruments import InstrumentSpec


def build_instrument(spec: InstrumentSpec) -> Any:
    """Return the Nautilus instrument of a spec (``CryptoPerpetual`` for perps, ``CurrencyPair`` for spot)."""
    common: dict[str, Any] = {
        "instrument_id": spec.instrument_id,
        "raw_symbol": Symbol(spec.raw_symbol),
        "base_currency": Currency.from_str(spec.base),
        "quote_currency": Currency.from_str(spec.quote),
        "price_precision": spec.price_precision,
        "size_precision": spec.size_precision,
        "price_increment": Price.from_str(str(spec.price_increment)),
        "size_increment": Quantity.from_str(str(spec.size_increment)),
        "ts_event": 0,
        "ts_init": 0,
        "min_quantity": Quantity.from_str(str(spec.min_quantity)),
    }
    if spec.inferred:
        common["info"] = {"inferred": True, "spec_source": spec.source}
    if spec.market == "spot":
        return CurrencyPair(**common)
    return CryptoPerpetual(
        **common,
        settlement_currency=Currency.from_str(spec.settlement),
        is_inverse=False,
        multiplier=Quantity.from_str(str(spec.multiplier)),
        margin_init=spec.margin_init,
        margin_maint=spec.margin_maint,
    )


def instrument_type_directory(spec: InstrumentSpec) -> Path:
    """Return the catalog directory of a spec's instrument (``data/crypto_perpetual/BTCUSDT-PERP.BINANCE``)."""
    kind = "crypto_perpetual" if spec.market == "perp" else "currency_pair"
    return Path("data", kind, instrument_directory_name(str(spec.instrument_id)))
