"""Health from decoded account states: weighted collateral against weighted borrows, per protocol.

- Kamino (klend ``Obligation``): the program caches, at the last ``refresh_obligation``, the
  liquidation-threshold weighted collateral (``unhealthy_borrow_value_sf``) and the borrow-factor
  adjusted debt (``borrow_factor_adjusted_debt_value_sf``), both USD with 60 fraction bits. An obligation
  is liquidatable when the debt exceeds the weighted collateral. ``kamino_collateral_from_reserves``
  recomputes the weighted collateral from each deposit's cached market value and its reserve's
  ``liquidation_threshold_pct``, to check the cache against the reserves.
- marginfi (``MarginfiAccount`` + ``Bank`` + prices): maintenance health = sum of asset shares x asset
  share value x price x ``asset_weight_maint`` minus liability shares x liability share value x price x
  ``liability_weight_maint``, native units scaled by the mint decimals (marginfi's ``RiskEngine``, without
  its oracle confidence discount). Every active balance needs its bank and price.
- Drift (``User`` + a declared table of market parameters and oracle prices, ``DriftMarkets``): total
  collateral against the maintenance margin requirement (``drift_health``). The Drift fixtures hold users
  only, no ``SpotMarket``/``PerpMarket`` accounts, so the market side is an input the user declares
  (TOML with its ``source``), read from the market accounts or Drift's SDK at the snapshot's slot.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
from msgspec.toml import decode as decode_toml

from datasets.onchain.errors import AccountDecodeError, InputFileError
from datasets.onchain.states import i80f48, scaled_fraction

_EMPTY_KEY = "11111111111111111111111111111111"


@dataclass(frozen=True, slots=True)
class Health:
    """Weighted collateral and weighted debt (USD) and whether the account can be liquidated."""

    weighted_collateral_usd: Decimal
    weighted_debt_usd: Decimal

    @property
    def liquidatable(self) -> bool:
        """Return whether the weighted debt exceeds the weighted collateral."""
        return self.weighted_debt_usd > self.weighted_collateral_usd

    @property
    def margin_usd(self) -> Decimal:
        """Return weighted collateral minus weighted debt (negative: liquidatable)."""
        return self.weighted_collateral_usd - self.weighted_debt_usd


def kamino_health(obligation: Mapping[str, Any]) -> Health:
    """Return an obligation's health from the values the program cached at its last refresh."""
    return Health(
        scaled_fraction(obligation["unhealthy_borrow_value_sf"]),
        scaled_fraction(obligation["borrow_factor_adjusted_debt_value_sf"]),
    )


def kamino_collateral_from_reserves(
    obligation: Mapping[str, Any], reserves: Mapping[str, Mapping[str, Any]]
) -> Decimal:
    """Return the liquidation-threshold weighted collateral (USD) from each deposit's reserve.

    Raises
    ------
    AccountDecodeError
        If a deposit's reserve is not in ``reserves``.
    """
    total = Decimal(0)
    for deposit in obligation["deposits"]:
        reserve_key = deposit["deposit_reserve"]
        if reserve_key == _EMPTY_KEY:
            continue
        reserve = reserves.get(reserve_key)
        if reserve is None:
            raise AccountDecodeError(f"deposit reserve {reserve_key} is needed for the obligation's health; pass it")
        threshold = Decimal(reserve["config"]["liquidation_threshold_pct"]) / 100
        total += scaled_fraction(deposit["market_value_sf"]) * threshold
    return total


def marginfi_health(
    account: Mapping[str, Any], banks: Mapping[str, Mapping[str, Any]], prices_usd: Mapping[str, Decimal]
) -> Health:
    """Return a marginfi account's maintenance health from its banks and a USD price per bank mint.

    Raises
    ------
    AccountDecodeError
        If an active balance's bank, or the price of its mint, is missing.
    """
    collateral, debt = Decimal(0), Decimal(0)
    for balance in account["lending_account"]["balances"]:
        if not balance["active"]:
            continue
        bank = banks.get(balance["bank_pk"])
        if bank is None:
            raise AccountDecodeError(f"bank {balance['bank_pk']} of an active balance is needed; pass it")
        price = prices_usd.get(bank["mint"])
        if price is None:
            raise AccountDecodeError(f"a USD price of mint {bank['mint']} (bank {balance['bank_pk']}) is needed")
        scale = Decimal(10) ** bank["mint_decimals"]
        config = bank["config"]
        assets = i80f48(balance["asset_shares"]) * i80f48(bank["asset_share_value"]) / scale
        liabilities = i80f48(balance["liability_shares"]) * i80f48(bank["liability_share_value"]) / scale
        collateral += assets * price * i80f48(config["asset_weight_maint"])
        debt += liabilities * price * i80f48(config["liability_weight_maint"])
    return Health(collateral, debt)


# ------------------------------------------------------------------------------------------------ drift
# Drift precisions (protocol-v2 programs/drift/src/math/constants.rs): spot balances 1e9, cumulative
# interest 1e10, perp base 1e9, quote 1e6.
DRIFT_SPOT_BALANCE_DECIMALS = 9
DRIFT_CUMULATIVE_INTEREST_DECIMALS = 10
DRIFT_PERP_BASE_DECIMALS = 9
DRIFT_QUOTE_DECIMALS = 6


class DriftSpotMarket(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    """What Drift's maintenance margin needs of one spot market (its ``SpotMarket`` account and oracle).

    Weights are fractions (the account stores them x 1e4); cumulative interests are as the account
    stores them (x 1e10).
    """

    market_index: int
    mint: str
    decimals: int
    oracle_price: Decimal
    cumulative_deposit_interest: int
    cumulative_borrow_interest: int
    maintenance_asset_weight: Decimal
    maintenance_liability_weight: Decimal


class DriftPerpMarket(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    """What Drift's maintenance margin needs of one perp market: oracle price and margin ratios (fractions)."""

    market_index: int
    oracle_price: Decimal
    margin_ratio_maintenance: Decimal
    unrealized_pnl_maintenance_asset_weight: Decimal


class DriftMarkets(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    """A declared table of Drift market parameters and oracle prices, with its source (``--drift-markets``)."""

    source: str
    spot: list[DriftSpotMarket] = msgspec.field(default_factory=list)
    perp: list[DriftPerpMarket] = msgspec.field(default_factory=list)


def load_drift_markets(path: Path) -> DriftMarkets:
    """Read a Drift market table (TOML: ``source``, ``[[spot]]`` and ``[[perp]]`` entries).

    Raises
    ------
    InputFileError
        If the file cannot be read, a field is unknown, missing or of the wrong type, or a market repeats.
    """
    try:
        markets: DriftMarkets = decode_toml(path.read_bytes(), type=DriftMarkets)
    except OSError as error:
        raise InputFileError(f"{path}: expected a readable Drift market table, was {error.strerror}") from None
    except (msgspec.ValidationError, msgspec.DecodeError) as error:
        raise InputFileError(
            f"{path}: expected a Drift market table (source, [[spot]], [[perp]]; see the README), was: {error}"
        ) from None
    for kind, entries in (("spot", markets.spot), ("perp", markets.perp)):
        indices = [entry.market_index for entry in entries]
        if len(set(indices)) != len(indices):
            raise InputFileError(f"{path}: a {kind} market_index is listed twice, was {indices}")
        for entry in entries:
            if not entry.oracle_price.is_finite() or entry.oracle_price <= 0:
                raise InputFileError(
                    f"{path}: {kind} market {entry.market_index} field oracle_price: expected a positive decimal, "
                    f"was {entry.oracle_price}"
                )
    return markets


@dataclass(frozen=True, slots=True)
class Position:
    """One position of an account, valued: ``shares`` in the protocol's unit, ``amount`` in native units."""

    kind: str
    market: str
    mint: str | None
    shares: Decimal
    amount: Decimal | None = None
    decimals: int | None = None
    price_usd: Decimal | None = None
    value_usd: Decimal | None = None
    weight: Decimal | None = None


def drift_positions(user: Mapping[str, Any], markets: DriftMarkets | None) -> list[Position]:
    """Return a Drift ``User``'s open spot and perp positions, valued when ``markets`` has their market."""
    spot = {m.market_index: m for m in (markets.spot if markets else ())}
    perp = {m.market_index: m for m in (markets.perp if markets else ())}
    positions = []
    for entry in user["spot_positions"]:
        if entry["scaled_balance"] == 0:
            continue
        deposit = entry["balance_type"] == "Deposit"
        market = spot.get(entry["market_index"])
        shares = Decimal(entry["scaled_balance"]).scaleb(-DRIFT_SPOT_BALANCE_DECIMALS)
        label = f"spot:{entry['market_index']}"
        if market is None:
            positions.append(Position("deposit" if deposit else "borrow", label, None, shares))
            continue
        interest = market.cumulative_deposit_interest if deposit else market.cumulative_borrow_interest
        scale = 10 ** (DRIFT_SPOT_BALANCE_DECIMALS + DRIFT_CUMULATIVE_INTEREST_DECIMALS - market.decimals)
        product = entry["scaled_balance"] * interest
        # Drift rounds deposits down and borrows up (get_token_amount).
        raw = product // scale if deposit else -(-product // scale)
        value = Decimal(raw).scaleb(-market.decimals) * market.oracle_price
        weight = market.maintenance_asset_weight if deposit else market.maintenance_liability_weight
        kind = "deposit" if deposit else "borrow"
        positions.append(
            Position(
                kind, label, market.mint, shares, Decimal(raw), market.decimals, market.oracle_price, value, weight
            )
        )
    for entry in user["perp_positions"]:
        if entry["base_asset_amount"] == 0 and entry["quote_asset_amount"] == 0:
            continue
        base = Decimal(entry["base_asset_amount"]).scaleb(-DRIFT_PERP_BASE_DECIMALS)
        label = f"perp:{entry['market_index']}"
        market_p = perp.get(entry["market_index"])
        if market_p is None:
            positions.append(Position("perp", label, None, base))
            continue
        value = abs(base) * market_p.oracle_price
        positions.append(
            Position(
                "perp", label, None, base, None, None, market_p.oracle_price, value, market_p.margin_ratio_maintenance
            )
        )
    return positions


def drift_health(user: Mapping[str, Any], markets: DriftMarkets) -> Health:
    """Return a Drift user's total collateral and maintenance margin requirement (USD), per Drift's rules.

    Collateral: each deposit's token amount x oracle price x maintenance asset weight, plus each perp's
    unrealized pnl (base x oracle price + quote; a gain weighted by the market's unrealized pnl
    maintenance asset weight, a loss in full). Requirement: each borrow's value x maintenance liability
    weight, plus each perp's |base| x oracle price x maintenance margin ratio. Not counted: open orders'
    worst case, unsettled funding, and the quote market's price (pnl is taken as USD).

    Raises
    ------
    AccountDecodeError
        If a position's market is not in ``markets``.
    """
    collateral, requirement = Decimal(0), Decimal(0)
    quotes = {
        entry["market_index"]: entry["quote_asset_amount"]
        for entry in user["perp_positions"]
        if entry["base_asset_amount"] or entry["quote_asset_amount"]
    }
    perp = {m.market_index: m for m in markets.perp}
    for position in drift_positions(user, markets):
        if position.value_usd is None or position.weight is None or position.price_usd is None:
            raise AccountDecodeError(
                f"Drift {position.market.replace(':', ' market ')} is not in the market table "
                f"({markets.source}); add it"
            )
        if position.kind == "deposit":
            collateral += position.value_usd * position.weight
        elif position.kind == "borrow":
            requirement += position.value_usd * position.weight
        else:
            index = int(position.market.split(":")[1])
            pnl = position.shares * position.price_usd + Decimal(quotes[index]).scaleb(-DRIFT_QUOTE_DECIMALS)
            collateral += pnl * perp[index].unrealized_pnl_maintenance_asset_weight if pnl > 0 else pnl
            requirement += position.value_usd * position.weight
    return Health(collateral, requirement)
