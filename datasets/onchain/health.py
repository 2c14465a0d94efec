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
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from datasets.onchain.errors import AccountDecodeError
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
