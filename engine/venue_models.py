"""Venue models: what a simulated venue looks like to the engine (fees, account, funding clock).

The facts (fee schedules, funding clocks, instrument ids) live in ``datasets.venues``; this module
turns a ``VenueConfig`` into the arguments of ``BacktestEngine.add_venue``: the fee model (spot and
perp fee schedules differ on one venue, so each instrument gets its own override), the account and
OMS types and the leverage.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from nautilus_trader.execution import MakerTakerFeeModel
from nautilus_trader.model import AccountType, InstrumentId, Money, OmsType, Venue

from datasets.symbols import market_of
from datasets.venues import venue_spec
from engine.config import VenueConfig, parse_money
from engine.loading import currency, instrument_id_for


@dataclass(frozen=True, slots=True)
class VenueModel:
    """Everything ``BacktestEngine.add_venue`` needs for one configured venue."""

    name: str
    venue: Venue
    oms_type: OmsType
    account_type: AccountType
    starting_balances: tuple[Money, ...]
    leverage: Decimal
    fees: dict[InstrumentId, tuple[Decimal, Decimal]]
    funding_interval: str

    def fee_model(self) -> MakerTakerFeeModel:
        """Return a fee model charging each instrument its own (maker, taker) rates."""
        first = next(iter(self.fees.values()))
        return MakerTakerFeeModel(first[0], first[1], overrides=self.fees)

    def describe(self) -> str:
        """Return one line for reports: account, OMS, leverage, fees and funding clock."""
        fees = ", ".join(f"{i}: maker {m}, taker {t}" for i, (m, t) in self.fees.items())
        return (
            f"{self.name}: {self.account_type.name.lower()} account, {self.oms_type.name.lower()}, "
            f"leverage {self.leverage}, funding clock {self.funding_interval}; fees {fees}"
        )


def build_venue_model(config: VenueConfig) -> VenueModel:
    """Return the venue model of one configured venue: default fees from ``datasets.venues`` unless overridden.

    Raises
    ------
    ConfigError
        If an instrument has no spec on the venue, or a balance currency is unknown to Nautilus.
    """
    spec = venue_spec(config.name)
    fees: dict[InstrumentId, tuple[Decimal, Decimal]] = {}
    for symbol in config.instruments:
        schedule = spec.fees(market_of(symbol))
        maker = config.maker_fee if config.maker_fee is not None else schedule.maker
        taker = config.taker_fee if config.taker_fee is not None else schedule.taker
        fees[instrument_id_for(config.name, symbol)] = (maker, taker)
    balances = []
    for text in config.starting_balances:
        amount, code = parse_money(text)
        known = currency(code, where=f"venues[{config.name}].starting_balances")
        balances.append(Money.from_str(f"{amount} {known.code}"))
    interval = spec.funding_interval if config.funding_interval == "data" else config.funding_interval
    return VenueModel(
        name=config.name,
        venue=Venue(spec.nautilus_venue),
        oms_type=OmsType.NETTING if config.oms == "netting" else OmsType.HEDGING,
        account_type=AccountType.MARGIN if config.account_type == "margin" else AccountType.CASH,
        starting_balances=tuple(balances),
        leverage=config.leverage,
        fees=fees,
        funding_interval=interval,
    )
