"""Venue models: what a simulated venue looks like to the engine (fees, account, funding clock).

The fees come from the catalog a run reads: its ``venues.json`` (written by
``datasets.catalog.export_catalog`` from the venues' fee schedules at export time) lists each exported
instrument's maker/taker rates, each venue's funding clock, and which instruments' specs were inferred
from the data rather than stored (``VenueModel.inferred``; a run reports them, ``inferred_warning``).
``read_catalog_fees`` reads it once per run, and ``build_venue_model`` turns a ``VenueConfig`` into the arguments of
``BacktestEngine.add_venue`` or a sandbox execution client: the fee model (spot and perp rates differ
on one venue, so each instrument gets its own override; ``maker_fee``/``taker_fee`` in the config
override both), the account and OMS types and the leverage. A backtest therefore charges the fees of
the catalog it replays, and a paper node those of the catalog its config names.

Live mode simulates no fees and needs no catalog: ``build_venue_model(config, None)`` returns a model
whose fees the venue charges; its venue name and funding clock (report text only) then come from
``datasets.venues``, the one source there is without a catalog.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Literal

from nautilus_trader.execution import MakerTakerFeeModel
from nautilus_trader.model import AccountType, InstrumentId, Money, OmsType, Venue

from datasets.catalog import VENUES_FILE, CatalogError, CatalogVenue, read_venues_file
from datasets.venues import venue_spec
from engine.config import RunConfig, VenueConfig, parse_money
from engine.errors import EngineRunError, MissingDataError
from engine.loading import currency, instrument_id_for

FeeSource = Literal["catalog", "venue"]


@dataclass(frozen=True, slots=True)
class VenueModel:
    """Everything ``BacktestEngine.add_venue`` needs for one configured venue.

    ``fees`` maps each instrument to its (maker, taker) rates; ``None`` means the venue itself charges
    them (live mode), so there is no fee model to simulate.
    """

    name: str
    venue: Venue
    oms_type: OmsType
    account_type: AccountType
    starting_balances: tuple[Money, ...]
    leverage: Decimal
    fees: dict[InstrumentId, tuple[Decimal, Decimal]] | None
    funding_interval: str
    inferred: tuple[str, ...] = ()

    def fee_model(self) -> MakerTakerFeeModel:
        """Return a fee model charging each instrument its own (maker, taker) rates.

        Raises
        ------
        EngineRunError
            If the model is a live venue's, whose fees the venue charges.
        """
        if self.fees is None:
            raise EngineRunError(
                f"expected a simulated venue model, {self.name} is a live one (fees charged by the venue); "
                "build it from the catalog's venues.json (build_venue_models(config)) to simulate fees"
            )
        first = next(iter(self.fees.values()))
        return MakerTakerFeeModel(first[0], first[1], overrides=self.fees)

    def describe(self) -> str:
        """Return one line for reports: account, OMS, leverage, fees and funding clock."""
        if self.fees is None:
            fees = "charged by the venue"
        else:
            fees = ", ".join(f"{i}: maker {m}, taker {t}" for i, (m, t) in self.fees.items())
        return (
            f"{self.name}: {self.account_type.name.lower()} account, {self.oms_type.name.lower()}, "
            f"leverage {self.leverage}, funding clock {self.funding_interval}; fees {fees}"
        )


@dataclass(frozen=True, slots=True)
class CatalogFees:
    """The venues of a catalog's ``venues.json`` (keyed by Nautilus venue name) and the file's path."""

    path: Path
    venues: Mapping[str, CatalogVenue]

    def venue(self, name: str) -> CatalogVenue:
        """Return the entry of a store venue (``binance``).

        Raises
        ------
        MissingDataError
            If the file does not list that venue.
        """
        for entry in self.venues.values():
            if entry.store_venue == name:
                return entry
        listed = ", ".join(sorted(e.store_venue for e in self.venues.values())) or "none"
        raise MissingDataError(
            f"expected venue {name} in {self.path}, was absent (it lists: {listed}); re-export the catalog "
            f"with that venue: python -m datasets export-catalog --catalog {self.path.parent} --venue {name}"
        )


def read_catalog_fees(catalog_dir: str | Path) -> CatalogFees:
    """Return the fee schedules of a catalog: its ``venues.json``.

    Raises
    ------
    MissingDataError
        If the catalog or its ``venues.json`` is absent, or the file is not in the documented format.
    """
    root = Path(catalog_dir)
    path = root / VENUES_FILE
    export = f"python -m datasets export-catalog --catalog {root}"
    if not root.is_dir():
        raise MissingDataError(
            f"expected a Nautilus catalog (a directory with data/ and {VENUES_FILE}) at {root}, was absent; "
            f"export one ({export}) or pass --catalog"
        )
    if not path.is_file():
        raise MissingDataError(
            f"expected the catalog's venue fees in {path}, was absent; re-export the catalog ({export}): "
            "the engine charges the fees the export wrote there"
        )
    try:
        return CatalogFees(path=path, venues=read_venues_file(root))
    except CatalogError as exc:
        raise MissingDataError(f"the catalog's venue fees are unreadable: {exc}") from None


def build_venue_models(config: RunConfig, *, fees: FeeSource = "catalog") -> list[VenueModel]:
    """Return the venue model of every configured venue, reading ``venues.json`` once.

    Parameters
    ----------
    config : RunConfig
        The run; its ``data.catalog`` holds the ``venues.json`` read when ``fees="catalog"``.
    fees : {"catalog", "venue"}
        ``"catalog"`` simulates the catalog's fees (backtest, paper); ``"venue"`` leaves them to the
        venue (live) and reads no catalog.

    Raises
    ------
    MissingDataError
        If ``fees="catalog"`` and the catalog's ``venues.json`` is absent, unreadable, or lacks a
        configured venue or instrument.
    ConfigError
        If an instrument has no spec on the venue, or a balance currency is unknown to Nautilus.
    """
    catalog = read_catalog_fees(config.data.catalog) if fees == "catalog" else None
    return [build_venue_model(venue, catalog) for venue in config.venues]


def build_venue_model(config: VenueConfig, catalog: CatalogFees | None) -> VenueModel:
    """Return the venue model of one configured venue: fees from the catalog's ``venues.json`` unless overridden.

    Parameters
    ----------
    config : VenueConfig
        The configured venue.
    catalog : CatalogFees or None
        The run's ``read_catalog_fees(...)``; ``None`` for a live venue, whose fees the venue charges.

    Raises
    ------
    MissingDataError
        If ``venues.json`` does not list the venue or one of its configured instruments.
    ConfigError
        If an instrument has no spec on the venue, or a balance currency is unknown to Nautilus.
    """
    instrument_ids = {symbol: instrument_id_for(config.name, symbol) for symbol in config.instruments}
    balances = []
    for text in config.starting_balances:
        amount, code = parse_money(text)
        known = currency(code, where=f"venues[{config.name}].starting_balances")
        balances.append(Money.from_str(f"{amount} {known.code}"))
    fees: dict[InstrumentId, tuple[Decimal, Decimal]] | None = None
    inferred: tuple[str, ...] = ()
    if catalog is None:
        spec = venue_spec(config.name)
        venue, clock = spec.nautilus_venue, spec.funding_interval
    else:
        entry = catalog.venue(config.name)
        venue, clock = entry.nautilus_venue, entry.funding_interval
        inferred = tuple(str(i) for i in instrument_ids.values() if str(i) in entry.inferred)
        fees = {}
        for symbol, instrument_id in instrument_ids.items():
            maker, taker = _listed_fees(catalog, entry, config.name, symbol, instrument_id)
            fees[instrument_id] = (
                config.maker_fee if config.maker_fee is not None else maker,
                config.taker_fee if config.taker_fee is not None else taker,
            )
    return VenueModel(
        name=config.name,
        venue=Venue(venue),
        oms_type=OmsType.NETTING if config.oms == "netting" else OmsType.HEDGING,
        account_type=AccountType.MARGIN if config.account_type == "margin" else AccountType.CASH,
        starting_balances=tuple(balances),
        leverage=config.leverage,
        fees=fees,
        funding_interval=clock if config.funding_interval == "data" else config.funding_interval,
        inferred=inferred,
    )


def inferred_warning(instrument_ids: list[str]) -> str:
    """Return the run warning for instruments whose specs the catalog export inferred from the data."""
    return (
        f"inferred instrument specs: {', '.join(instrument_ids)}: tick and lot were derived from the data "
        "(export-catalog --infer-instruments), margins are unknown and no venue maximum leverage was checked; "
        "fetch the venue's specs (python -m datasets fetch --kind instruments --venue V) and re-export"
    )


def _listed_fees(
    catalog: CatalogFees, entry: CatalogVenue, venue: str, symbol: str, instrument_id: InstrumentId
) -> tuple[Decimal, Decimal]:
    try:
        return entry.fee_overrides[instrument_id]
    except KeyError:
        listed = ", ".join(sorted(str(i) for i in entry.fee_overrides)) or "none"
        raise MissingDataError(
            f"expected {instrument_id} ({venue}:{symbol}) in {catalog.path}, was absent ({entry.nautilus_venue} "
            f"lists: {listed}); re-export the catalog with that symbol: python -m datasets export-catalog "
            f"--catalog {catalog.path.parent} --venue {venue} --symbol {symbol}"
        ) from None
