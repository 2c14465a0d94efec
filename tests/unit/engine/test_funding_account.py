"""Paper funding booked into the sandbox account (``engine.live.funding_account``): the balance arithmetic,
what the account then reports, and routing settlements to their venue's client."""

from __future__ import annotations

from decimal import Decimal

from nautilus_trader.core import UUID4
from nautilus_trader.model import (
    AccountBalance,
    AccountId,
    AccountState,
    AccountType,
    Currency,
    MarginAccount,
    Money,
    OmsType,
    Venue,
)

from engine.live.funding import Settlement
from engine.live.funding_account import FundingAccounts, booked_balances

USDT = Currency.from_str("USDT")


def _balance(total: str, locked: str) -> AccountBalance:
    return AccountBalance(
        Money.from_str(f"{total} USDT"),
        Money.from_str(f"{locked} USDT"),
        Money.from_decimal(Decimal(total) - Decimal(locked), USDT),
    )


def _settlement(amount: str, *, venue: str = "binance", currency: str = "USDT") -> Settlement:
    return Settlement(
        ts=1,
        venue=venue,
        instrument_id="BTCUSDT-PERP.BINANCE",
        position_id="P-1",
        position_size=Decimal("-0.470"),
        mark_price=Decimal("42810.74"),
        rate=Decimal("0.00033601"),
        amount=Decimal(amount),
        currency=currency,
    )


def test_booked_balances_move_total_and_free_by_the_exact_amount_and_keep_the_margin() -> None:
    # 16 significant digits: a float round trip would not keep the last one.
    [booked] = booked_balances([_balance("90071992.54740993", "39.97538000")], {"USDT": Decimal("0.00000001")})
    assert booked.total.as_decimal() == Decimal("90071992.54740994")
    assert booked.free.as_decimal() == Decimal("90071992.54740994") - Decimal("39.97538000")
    assert booked.locked.as_decimal() == Decimal("39.97538000")


def test_booked_balances_pay_funding_and_open_a_currency_the_account_lacks() -> None:
    usdt, usdc = booked_balances([_balance("1000", "20")], {"USDT": Decimal("-50"), "USDC": Decimal("6.76087327")})
    assert (usdt.total.as_decimal(), usdt.free.as_decimal()) == (Decimal(950), Decimal(930))
    assert str(usdc.currency.code) == "USDC"
    assert (usdc.total.as_decimal(), usdc.locked.as_decimal(), usdc.free.as_decimal()) == (
        Decimal("6.76087327"),
        Decimal(0),
        Decimal("6.76087327"),
    )


def test_a_margin_account_applying_the_booking_reports_balance_plus_funding() -> None:
    # What the breakers read (``RiskManagedStrategy._venue_balances``: ``balances_total`` of USD stablecoins).
    account_id = AccountId("BINANCE-SANDBOX-001")

    def state(balances: list[AccountBalance]) -> AccountState:
        return AccountState(account_id, AccountType.MARGIN, balances, [], True, UUID4(), 0, 0)

    account = MarginAccount(state([_balance("99990.00615500", "39.97538000")]), False)
    settled = [_settlement("6.76087327"), _settlement("13.68887507")]
    amount = sum((s.amount for s in settled), Decimal(0))
    account.apply(state(booked_balances(account.last_event.balances, {"USDT": amount})))
    assert account.balances_total()[USDT].as_decimal() == Decimal("99990.00615500") + Decimal("20.44974834")


def test_settlements_of_a_venue_without_a_funding_client_are_not_booked() -> None:
    accounts = FundingAccounts()
    accounts.factory(
        "binance",
        venue=Venue("BINANCE"),
        account_id=AccountId("BINANCE-SANDBOX-001"),
        account_type=AccountType.MARGIN,
        oms_type=OmsType.NETTING,
    )
    accounts.book(_settlement("1"))  # the node has not created the client yet
    accounts.book(_settlement("1", venue="okx"))  # no client for that venue at all (live mode has none)
    assert accounts.landed()
    assert accounts.newly_landed() == []
