"""Book paper funding into the sandbox account, so balances, equity and the breakers include it.

The 2.0.0rc6 sandbox does not settle funding (``engine.live.funding`` computes it), and Python cannot
change its account directly: ``cache.account_for_venue`` returns a copy (``apply`` changes only the
copy), the Python ``Portfolio`` has no ``update_account``, a data client's output refuses account
states ("Execution output is not bound to an active node"), and an ``AccountState`` published on the
message bus (``events.account.<id>``, ``ExecEngine.process``) reaches no engine. What does work is an
execution client: the node processes the account states a Python ``ExecutionClient`` generates for
its ``account_id`` like a venue's, so ``FundingAccountClient`` shares the sandbox's account id (on a
venue of its own, so no order is ever routed to it) and reports the account with each settlement
added to its balance. The sandbox builds the next fill's account state on that balance, as a venue
would, so the funding stays booked.

A booking is absolute (a whole ``AccountState``), so it is only sent while no order of the venue is
in flight or open: a fill being processed at the same time would otherwise be overwritten.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from nautilus_trader.live import ExecutionClientConfig
from nautilus_trader.live.clients import ExecutionClient, ExecutionClientFactory
from nautilus_trader.model import (
    AccountBalance,
    AccountId,
    AccountType,
    Currency,
    Money,
    OmsType,
    Venue,
)

from engine.live.funding import Settlement

FUNDING_CLIENT_SUFFIX = "-FUNDING"


def booked_balances(balances: Sequence[Any], amounts: Mapping[str, Decimal]) -> list[AccountBalance]:
    """Return ``balances`` (``AccountBalance``s) with ``amounts`` (currency code -> signed amount) added.

    Funding moves the total and the free balance; the locked margin does not change. A currency the
    account does not hold yet gets a balance of its own.
    """
    result = []
    left = dict(amounts)
    for balance in balances:
        code = str(balance.currency.code)
        amount = left.pop(code, Decimal(0))
        total = Money.from_decimal(balance.total.as_decimal() + amount, balance.currency)
        free = Money.from_decimal(balance.free.as_decimal() + amount, balance.currency)
        result.append(AccountBalance(total, balance.locked, free))
    for code, amount in sorted(left.items()):
        currency = Currency.from_str(code)
        money = Money.from_decimal(amount, currency)
        result.append(AccountBalance(money, Money.zero(currency), money))
    return result


class FundingAccountClient(ExecutionClient):  # type: ignore[misc]
    """Report the sandbox account of one venue with paper funding settled into it (see the module docstring)."""

    def __init__(self, *, trading_venue: Venue, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.trading_venue = trading_venue
        self.pending: list[Settlement] = []
        self.expected_events = 0

    async def _connect(self) -> None:
        return None

    async def _disconnect(self) -> None:
        return None

    def flush(self) -> bool:
        """Send the pending settlements as one account state if the venue is quiet; return whether sent."""
        if not self.pending:
            return False
        venue = self.trading_venue
        if self.cache.orders_inflight(venue=venue) or self.cache.orders_open(venue=venue):
            return False
        account = self.cache.account(self.account_id)
        if account is None or account.last_event is None:
            return False
        amounts: dict[str, Decimal] = {}
        for settlement in self.pending:
            amounts[settlement.currency] = amounts.get(settlement.currency, Decimal(0)) + settlement.amount
        last = account.last_event
        self.generate_account_state(
            booked_balances(last.balances, amounts), list(last.margins), True, self.clock.timestamp_ns()
        )
        self.expected_events = account.event_count + 1
        self.pending.clear()
        return True

    def landed(self) -> bool:
        """Return whether every booking sent so far is in the node's account."""
        if not self.expected_events:
            return True
        account = self.cache.account(self.account_id)
        return account is not None and account.event_count >= self.expected_events


class FundingAccountClientFactory(ExecutionClientFactory):  # type: ignore[misc]
    """Create the funding client of one venue (the factory keeps it for ``FundingAccounts``)."""

    def __init__(self, *, venue: Venue, account_id: AccountId, account_type: AccountType, oms_type: OmsType) -> None:
        self.venue = venue
        self.account_id = account_id
        self.account_type = account_type
        self.oms_type = oms_type
        self.client: FundingAccountClient | None = None

    def create(
        self, *, name: str, config: ExecutionClientConfig, cache: Any, clock: Any, trader_id: Any
    ) -> FundingAccountClient:
        self.client = FundingAccountClient(
            trading_venue=self.venue,
            name=name,
            config=config,
            cache=cache,
            clock=clock,
            trader_id=trader_id,
            venue=Venue(f"{self.venue.value}{FUNDING_CLIENT_SUFFIX}"),
            account_id=self.account_id,
            account_type=self.account_type,
            oms_type=self.oms_type,
        )
        return self.client


@dataclass(slots=True)
class FundingAccounts:
    """The funding clients of a paper node by venue name: book settlements, tell when they landed."""

    factories: dict[str, FundingAccountClientFactory] = field(default_factory=dict)
    unannounced: list[Settlement] = field(default_factory=list)

    def factory(
        self, name: str, *, venue: Venue, account_id: AccountId, account_type: AccountType, oms_type: OmsType
    ) -> FundingAccountClientFactory:
        """Return (and keep) the client factory of venue ``name`` (a run config's venue name)."""
        factory = FundingAccountClientFactory(
            venue=venue, account_id=account_id, account_type=account_type, oms_type=oms_type
        )
        self.factories[name] = factory
        return factory

    def book(self, settlement: Settlement) -> None:
        """Queue ``settlement`` for its venue's account (sent by the next ``flush``)."""
        factory = self.factories.get(settlement.venue)
        if factory is not None and factory.client is not None:
            factory.client.pending.append(settlement)
            self.unannounced.append(settlement)

    def flush(self) -> None:
        """Send what each quiet venue has pending."""
        for factory in self.factories.values():
            if factory.client is not None:
                factory.client.flush()

    def landed(self) -> bool:
        """Flush, then return whether every settlement booked so far is in the node's accounts."""
        self.flush()
        return all(f.client is None or (not f.client.pending and f.client.landed()) for f in self.factories.values())

    def newly_landed(self) -> list[Settlement]:
        """Flush; once everything landed, return the settlements not returned before (else none)."""
        if not self.unannounced or not self.landed():
            return []
        landed, self.unannounced = self.unannounced, []
        return landed
