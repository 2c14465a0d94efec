"""Importers of source formats, tried in order; the first whose ``sniff`` accepts a file reads it."""

from __future__ import annotations

from pathlib import Path

from datasets.errors import UnknownSourceError
from datasets.importers.base import Batch, Importer, ImportOptions
from datasets.importers.binance_dump_funding import BinanceDumpFundingImporter
from datasets.importers.binance_export import BinanceFundingExportImporter
from datasets.importers.binance_margin import BinanceLeverageTiersImporter
from datasets.importers.binance_vision import BinanceVisionImporter
from datasets.importers.drift import DriftFundingImporter
from datasets.importers.dydx import DydxFundingImporter
from datasets.importers.freqtrade import FreqtradeImporter
from datasets.importers.funding_payloads import (
    BinanceFundingPayloadImporter,
    BybitFundingPayloadImporter,
    HyperliquidFundingPayloadImporter,
    OkxFundingPayloadImporter,
)
from datasets.importers.hyperliquid import HyperliquidFundingCsvImporter
from datasets.importers.instrument_table import InstrumentTableImporter
from datasets.importers.lighter import LighterFundingImporter
from datasets.importers.liquidations import BinanceForceOrderImporter, HyperliquidLiquidationsImporter

# Each sniff keys on a file-name pattern or header bytes no other format shares, so order matters
# only for speed; freqtrade stays first.
IMPORTERS: list[Importer] = [
    FreqtradeImporter(),
    BinanceVisionImporter(),
    HyperliquidFundingCsvImporter(),
    BinanceFundingExportImporter(),
    BinanceFundingPayloadImporter(),
    BybitFundingPayloadImporter(),
    OkxFundingPayloadImporter(),
    HyperliquidFundingPayloadImporter(),
    BinanceForceOrderImporter(),
    HyperliquidLiquidationsImporter(),
    BinanceDumpFundingImporter(),
    BinanceLeverageTiersImporter(),
    DydxFundingImporter(),
    DriftFundingImporter(),
    LighterFundingImporter(),
    InstrumentTableImporter(),
]

__all__ = ["IMPORTERS", "Batch", "ImportOptions", "Importer", "find_importer"]


def find_importer(path: Path) -> Importer | None:
    """Return the importer for ``path``, or None when no importer recognises it."""
    for importer in IMPORTERS:
        if importer.sniff(path):
            return importer
    return None


def require_importer(path: Path) -> Importer:
    """Return the importer for ``path``.

    Raises
    ------
    UnknownSourceError
        If no importer recognises the file; the message lists the supported formats.
    """
    importer = find_importer(path)
    if importer is None:
        formats = "\n".join(f"  - {i.name}: {i.description}" for i in IMPORTERS)
        raise UnknownSourceError(f"{path}: no importer recognises this file. Supported formats:\n{formats}")
    return importer
