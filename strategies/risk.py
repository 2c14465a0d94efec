"""Risk controls every strategy shares, in backtest, paper and live alike.

Nautilus' own risk engine already denies orders above a per-order notional, without margin, or too
fast (configured from the run config). What it lacks, and this module and its neighbours add:

- exposure caps across open positions: per instrument and in total (gross, in base units at the last
  price: ``|contracts| x multiplier x price``), checked before every order *with* the orders still in flight;
- a maximum leverage per venue (the venue's gross exposure over its equity);
- a daily loss limit (calendar day, UTC) and a maximum drawdown from peak equity: a breach flattens
  every position of the strategy with ``Strategy.market_exit()`` and stops new entries (until the
  next UTC day for the daily limit, for the rest of the run for the drawdown);
- a kill switch: any message on ``KILL_SWITCH_TOPIC`` (the message bus, so it reaches a strategy in
  every environment without files) flattens and halts for the rest of the run;
- a stale-data guard: no new exposure on an instrument whose last price, or (for perps) last funding
  update, is older than a configured age.

Orders that only reduce positions are always allowed, so flattening never gets stuck behind a limit.
Rc6 cannot set the engine's ``TradingState`` from Python, so the halt lives in ``RiskGate`` and
``market_exit()`` does the flattening.

``RiskGate`` is pure (no Nautilus): it takes positions, prices and equity and answers. The
``RiskManagedStrategy`` base class feeds it from what the kernel injects (portfolio, cache, clock,
message bus), submits orders only through it, and publishes every decision as a plain dict on
``RISK_EVENTS_TOPIC``; the backtest runner records them to ``risk_events.parquet``.

This module holds ``RiskManagedStrategy`` and the topics; the rest lives beside it:
``strategies.risk_limits`` (``RiskLimits``, ``RiskGate``, its intents, decisions and events),
``strategies.quiet_window`` (the float screens that let a decision skip work), ``strategies.quiet_decisions``
(the mixin that builds and checks quiet windows over this class's state), ``strategies.risk_state``
(reading saved state back) and ``strategies.kill_switch`` (``KillSwitchTimer``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from nautilus_trader.model import InstrumentId, OrderSide, Quantity, Venue
from nautilus_trader.trading import Strategy

from strategies.liquidation_price import Book, LiquidationGuard, OpenLeg, flat_tiers
from strategies.positions import OpenPrices
from strategies.quiet_decisions import OpenPosition, QuietDecisions
from strategies.quiet_window import EstimateTerm
from strategies.risk_limits import (
    NS_PER_DAY,
    USD_LIKE,
    Action,
    Decision,
    OrderIntent,
    RiskEvent,
    RiskGate,
    RiskLimits,
    lot_quantity,
    reduces_position,
)
from strategies.risk_state import RISK_STATE_KEY, load_state_document, state_decimal, state_field

RISK_EVENTS_TOPIC = "carrylab.risk.events"
KILL_SWITCH_TOPIC = "carrylab.risk.kill_switch"
# Published by a paper node once funding it settled is booked into the sandbox account: the balances
# then changed outside a fill, so a strategy re-reads them. A backtest settles funding into the account
# itself and publishes nothing here; the message carries no amounts, so nothing is ever counted twice.
FUNDING_BOOKED_TOPIC = "carrylab.funding.booked"


class RiskManagedStrategy(QuietDecisions, Strategy):  # type: ignore[misc]
    """A ``Strategy`` whose orders all pass through a ``RiskGate`` and whose decisions are published.

    Subclasses call ``start_risk`` in ``on_start``; ``observe_last_bar`` (or ``observe_bar``), ``observe_mark``
    and ``observe_funding`` in their data handlers; ``check_equity`` once per decision; and send orders with
    ``submit_checked``. ``on_risk_flatten`` tells them a breaker or the kill switch flattened everything.
    """

    def __init__(self, config: Any, *, limits: RiskLimits) -> None:
        super().__init__(config)
        self.gate = RiskGate(limits)
        self.risk_events: list[RiskEvent] = []
        self._last_price: dict[InstrumentId, Decimal] = {}
        # The last bar of each instrument not read into ``last_price`` yet: most bars change no decision,
        # so its close becomes a Decimal (and its time reaches the gate) only when read. Keyed by the
        # instrument id's text (``InstrumentId.value``): a str hashes in Python, an InstrumentId calls into
        # Rust for every lookup. A subclass's ``on_bar`` may store into it directly (``observe_last_bar``).
        self.latest_bars: dict[str, Any] = {}
        self.pending: dict[str, tuple[InstrumentId, Decimal]] = {}
        self.open_prices = OpenPrices()
        self.risk_instruments: list[InstrumentId] = []
        self.funding_instruments: set[str] = set()
        self._mark_instruments: list[tuple[InstrumentId, str]] = []  # (id, text) of ``start_risk``'s ``marks``
        # Reading an account clones its event history (slower as a run goes on): balances are cached
        # and re-read only after a fill, a funding settlement instant or a paper funding booking
        # (``FUNDING_BOOKED_TOPIC``), the only things that move them.
        self._balances: dict[str, Decimal] | None = None
        self._settlements: set[int] = set()
        self._next_settlement_ns: int | None = None
        self._multipliers: dict[InstrumentId, Decimal] = {}
        # Positions move only on this strategy's fills (one strategy per instrument, as in every run):
        # the net positions and the open positions' exact terms are cached until the next fill or
        # position event, the equity breakers are fed again only when their inputs changed.
        self._net: dict[InstrumentId, Decimal] = {}
        self._open: list[OpenPosition] | None = None
        self._equity_key: tuple[Any, ...] | None = None
        self._flat_key: tuple[Any, ...] | None = None
        self._balances_version = 0
        self._estimate_terms: tuple[object, list[InstrumentId], list[EstimateTerm]] = (None, [], [])
        self._estimate_base: tuple[int, float] = (-1, 0.0)
        self._ids: dict[InstrumentId, str] = {}
        # Price times seen since the gate last looked (``_sync_prices``): a bar or mark is one dict store.
        self._seen: dict[str, int] = {}
        self._instrument_ids: dict[str, InstrumentId] = {}  # text -> id of the instruments with a close
        # Bumped whenever ``holding`` may change (a fill, a position event, an order sent or lost).
        self.holdings_version = 0
        # Bumped by what else ends a ``quiet_window``: a funding update, a paper funding booking, a restore.
        self._events_version = 0
        self.liquidation = LiquidationGuard(
            limits.margin_tiers,
            min_distance_pct=limits.min_liquidation_distance_pct,
            margin_mode=limits.margin_mode,
            isolated_leverage=limits.isolated_leverage,
        )
        self._liquidation_version: int | None = None  # balances version of the guard's last refresh
        self._liquidation_ids: list[tuple[InstrumentId, str]] = []  # the open legs at that refresh

    @property
    def last_price(self) -> dict[InstrumentId, Decimal]:
        """The last bar close of each instrument (the price orders fill at, and the exposure price)."""
        if self.latest_bars:
            prices, ids = self._last_price, self._instrument_ids
            for text, bar in self.latest_bars.items():
                instrument_id = ids.get(text)
                if instrument_id is None:
                    instrument_id = ids[text] = InstrumentId.from_str(text)
                prices[instrument_id] = bar.close.as_decimal()
                self.observe_mark(text, bar.ts_event)
            self.latest_bars.clear()
        return self._last_price

    @last_price.setter
    def last_price(self, prices: dict[InstrumentId, Decimal]) -> None:
        self.latest_bars.clear()
        self._last_price = prices

    def start_risk(
        self,
        instruments: Sequence[InstrumentId],
        *,
        funding: Sequence[InstrumentId] = (),
        marks: Sequence[InstrumentId] = (),
    ) -> None:
        """Declare the instruments under control; listen to the kill switch and to paper funding bookings.

        ``marks`` are instruments whose mark prices (subscribed by the strategy) keep their price fresh:
        the last one is read from the cache when an order is checked, so a mark costs no handler call.
        """
        self.risk_instruments = list(instruments)
        # The registered clock's own method in place of ``_now``: each ``self.clock`` builds a wrapper.
        self._now = self.clock.timestamp_ns  # type: ignore[method-assign]
        self.funding_instruments = {str(i) for i in funding}
        self._mark_instruments = [(i, str(i)) for i in marks]
        self.subscribe_topic(KILL_SWITCH_TOPIC, self._on_kill_switch)
        self.subscribe_topic(FUNDING_BOOKED_TOPIC, self._on_funding_booked)
        for instrument_id in self.risk_instruments:
            instrument = self.cache.instrument(instrument_id)
            key = str(instrument_id)
            if instrument is None or key in self.liquidation.tiers or instrument.is_inverse:
                continue
            if instrument.margin_maint > 0:  # a perp without published tiers: its flat maintenance rate
                self.liquidation.tiers[key] = flat_tiers(instrument.margin_maint)

    def _now(self) -> int:
        # The clock's time (``start_risk`` shadows this with the clock's method; no reference back to self).
        now: int = self.clock.timestamp_ns()
        return now

    def observe_bar(self, instrument_id: InstrumentId, close: Decimal, ts_ns: int) -> None:
        """Record a bar close (the price orders fill at, and the exposure price)."""
        text = self._id_text(instrument_id)
        self.latest_bars.pop(text, None)
        self._last_price[instrument_id] = close
        self.observe_mark(text, ts_ns)

    def observe_last_bar(self, instrument: str, bar: Any) -> None:
        """Record the last bar of ``instrument`` (the id's text): its close and time are read only when needed.

        The same as ``latest_bars[instrument] = bar``, which a per-bar handler may write instead.
        """
        self.latest_bars[instrument] = bar

    def _sync_prices(self) -> None:
        gate = self.gate
        for text, bar in self.latest_bars.items():
            gate.observe_price(text, bar.ts_event)
        for text, ts_ns in self._seen.items():
            gate.observe_price(text, ts_ns)
        self._seen.clear()
        for instrument_id, text in self._mark_instruments:
            mark = self.cache.mark_price(instrument_id)
            if mark is not None:
                gate.observe_price(text, mark.ts_event)

    def _id_text(self, instrument_id: InstrumentId) -> str:
        text = self._ids.get(instrument_id)
        if text is None:
            text = self._ids[instrument_id] = str(instrument_id)
        return text

    def observe_mark(self, instrument: str, ts_ns: int) -> None:
        """Record that a price of ``instrument`` (the id's text) arrived at ``ts_ns``: a mark keeps the price fresh."""
        seen = self._seen
        if seen.get(instrument, ts_ns) <= ts_ns:
            seen[instrument] = ts_ns

    def observe_funding(self, instrument_id: InstrumentId, ts_ns: int, next_funding_ns: int | None = None) -> None:
        """Record that a funding update arrived (and when it settles, which moves the balance)."""
        self._events_version += 1
        self.gate.observe_funding(str(instrument_id), ts_ns)
        if next_funding_ns is not None:
            self._settlements.add(next_funding_ns)
            if self._next_settlement_ns is None or next_funding_ns < self._next_settlement_ns:
                self._next_settlement_ns = next_funding_ns

    def holding(self, instrument_id: InstrumentId) -> Decimal:
        """Return the net position plus the orders in flight (signed, in the instrument's units: perp contracts)."""
        net = self._net.get(instrument_id)
        if net is None:
            net = self._net[instrument_id] = self.portfolio.net_position(instrument_id)
        return net + sum((q for i, q in self.pending.values() if i == instrument_id), Decimal(0))

    def multiplier(self, instrument_id: InstrumentId) -> Decimal:
        """Return the base units in one unit of the instrument (a perp's contract size; 1 for spot).

        1 for an instrument not in the cache (nothing can be sent on it either).
        """
        known = self._multipliers.get(instrument_id)
        if known is not None:
            return known
        instrument = self.cache.instrument(instrument_id)
        if instrument is None:
            return Decimal(1)
        multiplier: Decimal = instrument.multiplier.as_decimal()
        self._multipliers[instrument_id] = multiplier
        return multiplier

    def sized_notional(
        self,
        sizing: Any,
        notional: Decimal,
        *,
        closes: Sequence[Decimal],
        bar_interval_ns: int,
        added: Callable[[Decimal], dict[str, Decimal]],
    ) -> Decimal:
        """Return an entry's notional: ``sizing``'s (``strategies.sizing.Sizing``), scaled to the correlated cap.

        ``added`` maps the sized notional to the exposure the entry adds, per instrument id (its text).
        """
        if sizing.mode == "fixed_notional" and sizing.max_correlated_exposure_usd is None:
            return notional
        equity = self.exact_equity() if sizing.mode == "kelly" else Decimal(0)
        sized: Decimal = sizing.entry_notional(notional, equity=equity, closes=closes, bar_interval_ns=bar_interval_ns)
        prices = self.last_price
        current = {
            str(i): abs(self.holding(i) * self.multiplier(i)) * prices.get(i, Decimal(0)) for i in self.risk_instruments
        }
        scale: Decimal = sizing.entry_scale(current, added(sized))
        return sized * scale

    def equity_by_venue(self) -> dict[str, Decimal]:
        """Return each venue's USD-stablecoin balance plus the unrealised PnL of the strategy's positions there.

        The balance is the venue account's, funding included: a backtest's engine settles funding into
        it, a paper node books its own settlements into the sandbox account (``engine.live.funding_account``).
        """
        result = dict(self._venue_balances())
        open_positions = self._open_positions()
        if not open_positions:
            return result
        prices = self.last_price
        for instrument_id, signed, opened, multiplier, venue in open_positions:
            price = prices.get(instrument_id)
            if price is None:
                continue
            result[venue] = result.get(venue, Decimal(0)) + signed * (price - opened) * multiplier
        return result

    def exact_equity(self) -> Decimal:
        """Return the strategy's equity over all its venues (``equity_by_venue`` summed): what the breakers see."""
        return sum(self.equity_by_venue().values(), Decimal(0))

    def _flat(self) -> bool:
        return not self._open_positions() and self._balances is not None

    def _open_positions(self) -> list[OpenPosition]:
        if self._open is None:
            self._open = []
            for position in self.cache.positions_open(strategy_id=self.strategy_id):
                quantity = position.quantity.as_decimal()
                signed = -quantity if position.is_short else quantity
                # Nautilus keeps the average open price as an f64: rebuild it exactly from the fills.
                opened = self.open_prices.of(position)
                multiplier = position.multiplier.as_decimal()
                instrument_id = position.instrument_id
                self._open.append((instrument_id, signed, opened, multiplier, instrument_id.venue.value))
        return self._open

    def _venue_balances(self) -> dict[str, Decimal]:
        now = self.clock.timestamp_ns()
        if self._next_settlement_ns is not None and self._next_settlement_ns <= now:
            self._settlements = {t for t in self._settlements if t > now}
            self._next_settlement_ns = min(self._settlements, default=None)
            self._balances = None
        if self._balances is None:
            self._balances_version += 1
            self._balances = {}
            for venue in sorted({i.venue.value for i in self.risk_instruments}):
                # The cache's copy of the account: the portfolio's costs ~5x more (each clones the event
                # history, benchmarks/fill_growth.py).
                account = self.cache.account_for_venue(Venue(venue))
                total = Decimal(0)
                if account is not None:
                    for currency, money in account.balances_total().items():
                        if currency.code in USD_LIKE:
                            total += money.as_decimal()
                self._balances[venue] = total
        return self._balances

    def check_equity(self) -> None:
        """Feed the breakers the current equity; on a breach, flatten with ``market_exit()``."""
        now = self.clock.timestamp_ns()
        gate = self.gate
        settling = self._next_settlement_ns is not None and self._next_settlement_ns <= now
        if not settling and self._balances is not None and self._flat_key is not None:
            # Flat, balances unchanged: the equity is the same as at the last check.
            if self._flat_key == (now // NS_PER_DAY, self._balances_version, gate.halted_reason, gate.halted_until_ns):
                return
        if not settling and self._balances is not None:
            estimate, error = self._equity_estimate()
            if gate.update_is_noop(now, estimate, error):
                return  # in a position, far from a new peak and from every limit: nothing to update
        equity = self.exact_equity()
        # The same equity on the same UTC day from the same halt state changes nothing: skip the update.
        if self._equity_key == (now // NS_PER_DAY, equity, gate.halted_reason, gate.halted_until_ns):
            self._flat_key = (
                (now // NS_PER_DAY, self._balances_version, *self._equity_key[2:]) if self._flat() else None
            )
            return
        for decision in gate.update_equity(now, equity):
            if decision.allowed:
                self._record(now, decision, "resume")
                continue
            self._record(now, decision, "halt")
            self._flatten(now, decision)
        self._equity_key = (now // NS_PER_DAY, equity, gate.halted_reason, gate.halted_until_ns)
        self._flat_key = (now // NS_PER_DAY, self._balances_version, *self._equity_key[2:]) if self._flat() else None

    def submit_checked(self, orders: Sequence[tuple[InstrumentId, Decimal]]) -> bool:
        """Submit market orders ``(instrument, signed quantity)`` if the gate allows them all; else none.

        Quantities are in the instruments' units (contracts for perps), rounded down to each
        instrument's lot in exact decimals; returns whether anything was sent.
        """
        now = self.clock.timestamp_ns()
        sized: list[tuple[Any, Quantity, Decimal]] = []
        for instrument_id, signed in orders:
            instrument = self.cache.instrument(instrument_id)
            if instrument is None:
                self.log.error(f"risk: no instrument {instrument_id} in the cache, order not sent")
                continue
            quantity = lot_quantity(instrument, signed)
            if quantity.as_decimal() > 0:
                sized.append((instrument, quantity, quantity.as_decimal() if signed > 0 else -quantity.as_decimal()))
        if not sized:
            return False
        intents = [
            OrderIntent(str(inst.id), inst.id.venue.value, qty, self.last_price.get(inst.id, Decimal(0)))
            for inst, _, qty in sized
        ]
        self._sync_prices()
        decision = self.gate.check(
            intents,
            positions={str(i.id): self.holding(i.id) for i, _, _ in sized}
            | {str(i): self.holding(i) for i in self.risk_instruments},
            prices={str(i): p for i, p in self.last_price.items()},
            equity_by_venue=self.equity_by_venue() if self.gate.limits.max_leverage else {},
            now_ns=now,
            funding_instruments=self.funding_instruments,
            multipliers={str(i): self.multiplier(i) for i in [*self.risk_instruments, *(s.id for s, _, _ in sized)]},
        )
        if decision.allowed:
            sized, decision = self._liquidation_check(now, sized, decision)
            intents = [
                OrderIntent(str(i.id), i.id.venue.value, q, self.last_price.get(i.id, Decimal(0))) for i, _, q in sized
            ]
        described = ", ".join(f"{i.instrument_id} {i.quantity:+}" for i in intents)
        if not decision.allowed:
            self._record(now, decision, "deny", detail=f"denied [{described}]")
            return False
        self._record(now, decision, "allow", detail=f"allowed [{described}]")
        for instrument, quantity, signed in sized:
            side = OrderSide.BUY if signed > 0 else OrderSide.SELL
            order = self.order_factory.market(instrument.id, side, quantity)
            self.pending[str(order.client_order_id)] = (instrument.id, signed)
            self.holdings_version += 1
            self.submit_order(order)
        return True

    def _liquidation_check(
        self, now: int, sized: list[tuple[Any, Quantity, Decimal]], decision: Decision
    ) -> tuple[list[tuple[Any, Quantity, Decimal]], Decision]:
        scale, tight = self.liquidation_room([(i.id, q) for i, _, q in sized])
        if tight is None:
            return sized, decision
        if len(sized) > 1 or scale <= 0:
            return sized, tight
        instrument, _, signed = sized[0]
        quantity = lot_quantity(instrument, signed * scale)
        if quantity.as_decimal() <= 0:
            return sized, tight
        self._record(now, tight, "reduce", detail=f"cut {instrument.id} {signed:+} to {quantity.as_decimal()}")
        return [(instrument, quantity, quantity.as_decimal() if signed > 0 else -quantity.as_decimal())], decision

    def liquidation_room(self, orders: Sequence[tuple[InstrumentId, Decimal]]) -> tuple[Decimal, Decision | None]:
        """Return the fraction of ``orders`` that keeps every perp leg's liquidation distance, and the tightest leg.

        ``orders`` are signed, in the instruments' units. A fraction below 1 comes with a denying
        ``liquidation_distance`` decision naming the leg whose distance at the full size is the smallest;
        at 1 the decision is None. Orders that reduce a leg, and instruments without tiers, always fit.
        """
        guard = self.liquidation
        if guard.min_distance_pct is None or not guard.tiers:
            return Decimal(1), None
        scale, tight = Decimal(1), None
        for instrument_id, signed in orders:
            key = self._id_text(instrument_id)
            held = self.holding(instrument_id)
            mark = self.last_price.get(instrument_id)
            if key not in guard.tiers or not signed or not mark or reduces_position(held, signed):
                continue
            legs = self._legs()
            book = Book(legs, self._venue_balances(), self._leg_prices())
            multiplier = self.multiplier(instrument_id)
            old, delta = held * multiplier, signed * multiplier
            side = 1 if old + delta > 0 else -1
            own = sum((leg.quantity * (mark - leg.entry_price) for leg in legs if leg.instrument_id == key), Decimal(0))
            safe = guard.safe_quantity(
                key, instrument_id.venue.value, side=side, own_unrealised=own, book=book, mark=mark
            )
            same_side = old != 0 and (old > 0) == (side > 0)
            fraction = min(
                Decimal(1), max(Decimal(0), (safe - abs(old) if same_side else abs(old) + safe) / abs(delta))
            )
            if fraction < scale:
                scale = fraction
                distance = guard.distance_if(
                    key, instrument_id.venue.value, quantity=old + delta, own_unrealised=own, book=book, mark=mark
                )
                reason = (
                    f"{key} liquidation price would be {distance:.2f}% from the mark {mark}, minimum "
                    f"{guard.min_distance_pct}%: {fraction:.4f} of the order keeps it"
                )
                tight = Decision(False, "liquidation_distance", reason, distance, guard.min_distance_pct, key)
        return scale, tight

    def check_liquidation(self) -> None:
        """Once per decision: reduce an open perp leg the mark brought within the minimum liquidation distance.

        The liquidation prices are recomputed only after a fill or a balance change; otherwise this is
        one comparison per open leg. ``on_liquidation_reduce`` does the reducing.
        """
        guard = self.liquidation
        if not guard.tiers:
            return
        if not self._open_positions():
            if guard.watches:
                guard.refresh(Book([], {}, {}))
            return
        self._refresh_liquidation()
        crossed = self._observe_worst(self._liquidation_ids)
        if not crossed:
            return
        book = Book(self._legs(), self._venue_balances(), self._leg_prices())
        legs, prices = book.legs, book.prices
        for key in crossed:
            leg = next(leg for leg in legs if leg.instrument_id == key)
            mark = prices[key]
            own = leg.quantity * (mark - leg.entry_price)
            side = 1 if leg.quantity > 0 else -1
            safe = guard.safe_quantity(key, leg.venue, side=side, own_unrealised=own, book=book, mark=mark)
            fraction = min(Decimal(1), max(Decimal(0), safe / abs(leg.quantity)))
            distance = guard.distances_pct(prices)[key]
            reason = (
                f"{key} liquidation price {guard.watches[key].liquidation} is {distance:.2f}% from the mark {mark}, "
                f"minimum {guard.min_distance_pct}%: reducing the position to {fraction:.4f} of it"
            )
            decision = Decision(
                False, "liquidation_distance", reason, distance, guard.min_distance_pct or Decimal(0), key
            )
            self._record(self.clock.timestamp_ns(), decision, "reduce")
            guard.disarm(key)
            self.on_liquidation_reduce(InstrumentId.from_str(key), fraction)

    def on_liquidation_reduce(self, instrument_id: InstrumentId, fraction: Decimal) -> None:
        """Cut the position on ``instrument_id`` to ``fraction`` of it, the kept part rounded down to the lot.

        Rounding what is kept (not what is cut) keeps the leg at or below the safe size, so the next bar
        does not cut again by a lot. A carry cuts both legs instead (``TwoLegCarry``).
        """
        held = self.holding(instrument_id)
        instrument = self.cache.instrument(instrument_id)
        if instrument is None:
            self.submit_checked([(instrument_id, -held * (1 - fraction))])
            return
        kept = lot_quantity(instrument, held * fraction).as_decimal()
        self.submit_checked([(instrument_id, -(held - kept) if held > 0 else -(held + kept))])

    def liquidation_distances(self) -> dict[str, Decimal]:
        """Return each open perp leg's liquidation distance at the last price, in percent (the status line)."""
        if not self.liquidation.tiers:
            return {}
        self._refresh_liquidation()
        return self.liquidation.distances_pct(self._leg_prices())

    def _refresh_liquidation(self) -> Book | None:
        wallet = self._venue_balances()
        if self._liquidation_version == self._balances_version:
            return None
        book = Book(self._legs(), wallet, self._leg_prices())
        self.liquidation.refresh(book)
        self._liquidation_version = self._balances_version
        self._liquidation_ids = [(i, self._id_text(i)) for i, *_ in self._open_positions()]
        return book

    def _legs(self) -> list[OpenLeg]:
        return [
            OpenLeg(self._id_text(i), venue, signed * multiplier, opened)
            for i, signed, opened, multiplier, venue in self._open_positions()
        ]

    def _leg_prices(self) -> dict[str, Decimal]:
        prices = self.last_price
        return {self._id_text(i): prices[i] for i, *_ in self._open_positions() if i in prices}

    def on_save(self) -> dict[str, bytes]:
        """Return the breakers' state (halt, peak and day-start equity, data ages, last prices) for a restart."""
        self._sync_prices()
        gate = self.gate
        document = {
            "halted_reason": gate.halted_reason,
            "halted_until_ns": gate.halted_until_ns,
            "peak_equity": _text_or_none(gate.peak_equity),
            "day": gate.day,
            "day_start_equity": _text_or_none(gate.day_start_equity),
            "price_ts": gate.price_ts,
            "funding_ts": gate.funding_ts,
            "last_price": {str(i): str(p) for i, p in self.last_price.items()},
            "settlements": sorted(self._settlements),
        }
        return {RISK_STATE_KEY: json.dumps(document, sort_keys=True).encode()}

    def on_load(self, state: dict[str, bytes]) -> None:
        """Restore what ``on_save`` returned (nothing when ``state`` has no risk entry).

        Raises
        ------
        ValueError
            If the entry is not the document ``on_save`` writes; the message names the field.
        """
        if RISK_STATE_KEY not in state:
            return
        document = load_state_document(state, RISK_STATE_KEY)
        gate = self.gate
        gate.halted_reason = state_field(document, RISK_STATE_KEY, "halted_reason", (str, type(None)))
        gate.halted_until_ns = state_field(document, RISK_STATE_KEY, "halted_until_ns", (int, type(None)))
        gate.peak_equity = state_decimal(document, RISK_STATE_KEY, "peak_equity", optional=True)
        gate.day = state_field(document, RISK_STATE_KEY, "day", (int, type(None)))
        gate.day_start_equity = state_decimal(document, RISK_STATE_KEY, "day_start_equity", optional=True)
        gate.price_ts = _int_map(document, "price_ts")
        self._seen.clear()
        gate.funding_ts = _int_map(document, "funding_ts")
        prices = state_field(document, RISK_STATE_KEY, "last_price", dict)
        self.last_price = {
            InstrumentId.from_str(i): state_decimal(prices, f"{RISK_STATE_KEY}.last_price", i) for i in prices
        }
        settlements = state_field(document, RISK_STATE_KEY, "settlements", list)
        if not all(isinstance(t, int) for t in settlements):
            raise ValueError(f"{RISK_STATE_KEY}.settlements: expected integer nanoseconds, was {settlements!r}")
        self._settlements = set(settlements)
        self._next_settlement_ns = min(self._settlements, default=None)
        self._balances = None
        self._positions_moved()

    def _positions_moved(self) -> None:
        self._liquidation_version = None
        self.holdings_version += 1
        self._events_version += 1
        self._net.clear()
        self._open = None
        self._equity_key = None
        self._flat_key = None

    def on_position_opened(self, _event: Any) -> None:
        self._positions_moved()

    def on_position_changed(self, _event: Any) -> None:
        self._positions_moved()

    def on_position_closed(self, _event: Any) -> None:
        self._positions_moved()

    def on_order_filled(self, event: Any) -> None:
        self._balances = None
        self._positions_moved()
        key = str(event.client_order_id)
        if key not in self.pending:
            return
        instrument_id, left = self.pending[key]
        filled = event.last_qty.as_decimal()
        left = left - filled if left > 0 else left + filled
        if left == 0:
            del self.pending[key]
        else:
            self.pending[key] = (instrument_id, left)

    def on_order_denied(self, event: Any) -> None:
        self.pending.pop(str(event.client_order_id), None)
        self.holdings_version += 1
        decision = Decision(False, "nautilus_risk_engine", str(event.reason), instrument_id=str(event.instrument_id))
        self._record(self.clock.timestamp_ns(), decision, "deny")
        self.on_order_lost(event.instrument_id)

    def on_order_rejected(self, event: Any) -> None:
        self.pending.pop(str(event.client_order_id), None)
        self.holdings_version += 1
        decision = Decision(False, "nautilus_risk_engine", f"venue rejected: {event.reason}")
        self._record(self.clock.timestamp_ns(), decision, "deny")
        self.on_order_lost(event.instrument_id)

    def on_order_canceled(self, event: Any) -> None:
        self.pending.pop(str(event.client_order_id), None)
        self.holdings_version += 1

    def on_order_lost(self, instrument_id: InstrumentId) -> None:
        """Called when an order of ours was denied or rejected; the next decision re-balances."""

    def on_risk_flatten(self) -> None:
        """Called after a breaker or the kill switch flattened every position."""

    def _on_funding_booked(self, _message: object) -> None:
        self._balances = None
        self._events_version += 1

    def _on_kill_switch(self, message: object) -> None:
        target = message.get("strategy_id") if isinstance(message, Mapping) else None
        if target is not None and str(target) != str(self.strategy_id):
            return
        reason = str(message.get("reason", "requested")) if isinstance(message, Mapping) else str(message)
        now = self.clock.timestamp_ns()
        decision = self.gate.kill(reason)
        self._record(now, decision, "halt")
        self._flatten(now, decision)

    def _flatten(self, now: int, decision: Decision) -> None:
        self.log.warning(f"risk: {decision.control} -> flattening all positions ({decision.reason})")
        self._record(now, decision, "flatten")
        self.pending.clear()
        self.holdings_version += 1
        self.market_exit()
        self.on_risk_flatten()

    def _record(self, now: int, decision: Decision, action: Action, *, detail: str = "") -> None:
        reason = f"{detail}: {decision.reason}" if detail else decision.reason
        event = RiskEvent(
            ts=now,
            strategy_id=str(self.strategy_id),
            control=decision.control,
            action=action,
            instrument_id=decision.instrument_id,
            value=format(decision.value, "f"),
            limit=format(decision.limit, "f"),
            reason=reason,
        )
        self.risk_events.append(event)
        if action in ("deny", "halt", "flatten"):
            self.log.warning(f"risk {action} [{decision.control}]: {reason}")
        self.publish_message(RISK_EVENTS_TOPIC, event.to_dict())


def _text_or_none(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _int_map(document: Mapping[str, Any], name: str) -> dict[str, int]:
    values = state_field(document, RISK_STATE_KEY, name, dict)
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in values.values()):
        raise ValueError(f"{RISK_STATE_KEY}.{name}: expected integer nanoseconds per instrument, was {values!r}")
    return {str(k): int(v) for k, v in values.items()}
