"""Liquidation prices of linear (USD-margined) perpetual positions from maintenance-margin tiers.

Pure and exact: every input and result is a ``Decimal``. The formula is Binance USD-M's, one-way mode
(Binance Support, "How to Calculate Liquidation Price of USDⓈ-M Contracts"), for one position::

    LP = (WB - TMM + UPNL + cum - side x Q x EP) / (Q x MMR - side x Q)

``WB`` is the margin backing the position: the isolated margin of the position (isolated mode) or the
account's wallet balance (cross mode); ``TMM`` and ``UPNL`` are the maintenance margin and unrealised
PnL of the account's *other* positions (cross mode; zero in isolated mode); ``side`` is +1 long and
-1 short; ``Q`` the absolute quantity in base units; ``EP`` the entry price; ``MMR`` and ``cum`` (the
maintenance amount) those of the bracket holding the position's notional. At ``LP`` the margin left,
``WB - TMM + UPNL + side x Q x (LP - EP)``, equals the maintenance margin ``Q x LP x MMR - cum``.

The bracket is chosen by the position's notional at the price given (the entry price or the mark), as
Binance and freqtrade do. A venue without tiers is one bracket with its flat maintenance rate and no
maintenance amount (``flat_tiers(instrument.margin_maint)``). A price at or below zero means the
position cannot be liquidated (a long fully backed by margin): ``liquidation_price`` then returns None.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

MarginMode = Literal["cross", "isolated"]
HUNDRED = Decimal(100)


class MarginTierError(ValueError):
    """Maintenance-margin tiers are malformed (unsorted, overlapping, negative)."""


@dataclass(frozen=True, slots=True)
class MaintenanceTier:
    """One maintenance-margin bracket: notionals in ``[notional_floor, notional_cap)`` use it.

    Attributes
    ----------
    notional_floor : Decimal
        Lowest position notional (quote currency) of the bracket.
    notional_cap : Decimal, optional
        Notional where the next bracket starts; None for the last bracket.
    maintenance_rate : Decimal
        Maintenance margin rate (0.004 = 0.4 % of the notional).
    maintenance_amount : Decimal
        Binance's ``cum``: what makes the maintenance margin continuous across brackets.
    """

    notional_floor: Decimal
    notional_cap: Decimal | None
    maintenance_rate: Decimal
    maintenance_amount: Decimal = Decimal(0)


def flat_tiers(maintenance_rate: Decimal) -> tuple[MaintenanceTier, ...]:
    """Return one bracket of ``maintenance_rate`` for every notional (a venue without published tiers)."""
    return (MaintenanceTier(Decimal(0), None, maintenance_rate),)


def check_tiers(tiers: Sequence[MaintenanceTier], *, where: str = "margin_tiers") -> tuple[MaintenanceTier, ...]:
    """Return ``tiers`` as a tuple after checking they start at 0, are contiguous and have rates in [0, 1).

    Raises
    ------
    MarginTierError
        If not; the message names ``where`` and the bracket.
    """
    if not tiers:
        raise MarginTierError(f"{where}: expected at least one bracket, was none")
    if tiers[0].notional_floor != 0:
        raise MarginTierError(f"{where}[0].notional_floor: expected 0, was {tiers[0].notional_floor}")
    for index, tier in enumerate(tiers):
        if not Decimal(0) <= tier.maintenance_rate < 1:
            raise MarginTierError(
                f"{where}[{index}].maintenance_rate: expected within [0, 1), was {tier.maintenance_rate}"
            )
        if tier.maintenance_amount < 0:
            raise MarginTierError(f"{where}[{index}].maintenance_amount: expected >= 0, was {tier.maintenance_amount}")
        last = index == len(tiers) - 1
        if tier.notional_cap is None and not last:
            raise MarginTierError(f"{where}[{index}].notional_cap: expected a cap (only the last bracket is open)")
        if tier.notional_cap is not None and tier.notional_cap <= tier.notional_floor:
            raise MarginTierError(
                f"{where}[{index}].notional_cap: expected above {tier.notional_floor}, was {tier.notional_cap}"
            )
        if not last and tiers[index + 1].notional_floor != tier.notional_cap:
            raise MarginTierError(
                f"{where}[{index + 1}].notional_floor: expected the previous cap {tier.notional_cap}, "
                f"was {tiers[index + 1].notional_floor}"
            )
    return tuple(tiers)


def tiers_from_mapping(
    rows: Sequence[Mapping[str, Any]], *, where: str = "margin_tiers"
) -> tuple[MaintenanceTier, ...]:
    """Return checked brackets from config rows (``MaintenanceTier`` fields as keys).

    Values are numbers or decimal text; ``notional_cap`` may be absent on the last row.

    Raises
    ------
    MarginTierError
        If a row lacks a field, holds a non-number, or the brackets are malformed.
    """
    tiers = []
    for index, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise MarginTierError(f"{where}[{index}]: expected a table of bracket fields, was {row!r}")
        unknown = sorted(set(row) - {"notional_floor", "notional_cap", "maintenance_rate", "maintenance_amount"})
        if unknown:
            raise MarginTierError(f"{where}[{index}]: unknown field {unknown[0]!r}")
        cap = row.get("notional_cap")
        tiers.append(
            MaintenanceTier(
                notional_floor=_number(row, "notional_floor", f"{where}[{index}]"),
                notional_cap=None if cap is None else _number(row, "notional_cap", f"{where}[{index}]"),
                maintenance_rate=_number(row, "maintenance_rate", f"{where}[{index}]"),
                maintenance_amount=_number(row, "maintenance_amount", f"{where}[{index}]", default=Decimal(0)),
            )
        )
    return check_tiers(tiers, where=where)


def _number(row: Mapping[str, Any], name: str, where: str, *, default: Decimal | None = None) -> Decimal:
    if name not in row:
        if default is not None:
            return default
        raise MarginTierError(f"{where}.{name}: expected a number, was missing")
    try:
        value = Decimal(str(row[name]))
    except ArithmeticError:
        value = Decimal("NaN")
    if not value.is_finite():
        raise MarginTierError(f"{where}.{name}: expected a finite number, was {row[name]!r}")
    return value


def bracket(tiers: Sequence[MaintenanceTier], notional: Decimal) -> MaintenanceTier:
    """Return the bracket holding ``|notional|``: the last one whose floor is at or below it."""
    size = abs(notional)
    chosen = tiers[0]
    for tier in tiers:
        if tier.notional_floor > size:
            break
        chosen = tier
    return chosen


def maintenance_margin(tiers: Sequence[MaintenanceTier], notional: Decimal) -> Decimal:
    """Return the maintenance margin of a position of ``notional``: ``|notional| x MMR - cum`` of its bracket."""
    tier = bracket(tiers, notional)
    return abs(notional) * tier.maintenance_rate - tier.maintenance_amount


def liquidation_price(
    tiers: Sequence[MaintenanceTier],
    *,
    quantity: Decimal,
    entry_price: Decimal,
    margin: Decimal,
    other_maintenance: Decimal = Decimal(0),
    other_unrealised: Decimal = Decimal(0),
    bracket_price: Decimal | None = None,
) -> Decimal | None:
    """Return the liquidation price of a position, or None when no positive price liquidates it.

    Parameters
    ----------
    tiers : Sequence[MaintenanceTier]
        The instrument's maintenance brackets.
    quantity : Decimal
        Signed position in base units (+ long, - short); not zero.
    entry_price : Decimal
        The position's average entry price.
    margin : Decimal
        ``WB``: the position's isolated margin, or the account's wallet balance in cross mode.
    other_maintenance, other_unrealised : Decimal
        Cross mode: maintenance margin and unrealised PnL of the account's other positions.
    bracket_price : Decimal, optional
        The price whose notional selects the bracket (the mark); the entry price when None.

    Raises
    ------
    ValueError
        If ``quantity`` is zero or a price is not positive.
    """
    if quantity == 0:
        raise ValueError("quantity: expected a position, was 0")
    if entry_price <= 0 or (bracket_price is not None and bracket_price <= 0):
        raise ValueError(f"entry_price: expected > 0, was {entry_price} (bracket price {bracket_price})")
    side = Decimal(1) if quantity > 0 else Decimal(-1)
    size = abs(quantity)
    tier = bracket(tiers, size * (entry_price if bracket_price is None else bracket_price))
    numerator = margin - other_maintenance + other_unrealised + tier.maintenance_amount - side * size * entry_price
    denominator = size * tier.maintenance_rate - side * size
    price = numerator / denominator
    return price if price > 0 else None


def liquidation_distance_pct(liquidation: Decimal | None, mark: Decimal) -> Decimal:
    """Return how far the mark may move against the position before it is liquidated, in percent of the mark.

    ``|LP - mark| / mark x 100``; 100 when nothing liquidates the position (a price of 0 is a 100 % fall).
    """
    if liquidation is None:
        return HUNDRED
    return abs(liquidation - mark) / mark * HUNDRED


def largest_safe_quantity(
    tiers: Sequence[MaintenanceTier],
    *,
    side: int,
    mark: Decimal,
    margin: Decimal,
    min_distance_pct: Decimal,
    margin_mode: MarginMode,
    leverage: Decimal = Decimal(1),
    other_maintenance: Decimal = Decimal(0),
    other_unrealised: Decimal = Decimal(0),
) -> Decimal:
    """Return the largest base quantity opened at ``mark`` whose liquidation price is ``min_distance_pct`` away.

    A position opened at the mark with wallet margin ``W`` (cross) is liquidated at the distance
    ``d = (W' / (Q x mark) - MMR + cum / (Q x mark)) / (1 - side x MMR)`` of the mark, where
    ``W' = W - other_maintenance + other_unrealised``: ``d`` falls as ``Q`` grows, so the largest safe
    ``Q`` solves ``d = min_distance`` bracket by bracket, lowest first:
    ``Q = (W' + cum) / (mark x (D x (1 - side x MMR) + MMR))`` with ``D = min_distance_pct / 100``, kept
    when its notional falls in that bracket. In isolated mode the margin is the position's own,
    ``Q x mark / leverage``, so ``d = 1 / leverage - MMR + cum / (Q x mark)`` over ``(1 - side x MMR)``:
    the quantity is unbounded when ``1 / leverage - MMR`` alone reaches the distance (returned as
    ``margin x leverage / mark``, all the margin can buy), else bounded by the maintenance amount.

    Raises
    ------
    ValueError
        If ``side`` is not +1 or -1, or ``mark`` or ``leverage`` is not positive.
    """
    if side not in (1, -1) or mark <= 0 or leverage <= 0:
        raise ValueError(f"side/mark/leverage: expected +-1, > 0, > 0, was {side}, {mark}, {leverage}")
    distance = min_distance_pct / HUNDRED
    best = Decimal(0)
    for tier in tiers:
        factor = distance * (1 - side * tier.maintenance_rate) + tier.maintenance_rate
        if margin_mode == "cross":
            backing = margin - other_maintenance + other_unrealised + tier.maintenance_amount
            quantity = backing / (mark * factor) if backing > 0 else Decimal(0)
        else:
            spare = 1 / leverage - factor
            affordable = margin * leverage / mark
            if spare >= 0:
                quantity = affordable
            else:
                quantity = min(affordable, tier.maintenance_amount / (mark * -spare))
        notional = quantity * mark
        if notional < tier.notional_floor:
            break
        if tier.notional_cap is not None and notional >= tier.notional_cap:
            best = tier.notional_cap / mark  # the whole bracket is safe: look at the next one
            continue
        best = max(best, quantity)
        break
    return max(best, Decimal(0))


@dataclass(frozen=True, slots=True)
class OpenLeg:
    """One open position as the guard needs it: signed base quantity, exact entry price, its venue."""

    instrument_id: str
    venue: str
    quantity: Decimal
    entry_price: Decimal


@dataclass(frozen=True, slots=True)
class Book:
    """What the liquidation prices of a strategy's legs depend on: its open legs, wallets per venue and prices."""

    legs: Sequence[OpenLeg]
    wallet: Mapping[str, Decimal]
    prices: Mapping[str, Decimal]


@dataclass(slots=True)
class _Watch:
    side: int
    liquidation: Decimal | None
    trigger: Decimal | None  # the price beyond which the distance is below the minimum
    worst: Decimal | None = None  # the price seen closest to the liquidation price
    # Floats of trigger and worst for ``screen``: a bar that is neither a new worst nor near the trigger
    # needs no exact price.
    trigger_float: float | None = None
    worst_float: float | None = None


class LiquidationGuard:
    """Liquidation prices of a strategy's open perp legs, the prices that breach the distance, and the worst seen.

    Pure (no Nautilus): the strategy feeds it positions, wallet balances and prices. Liquidation prices
    move only with positions and balances, so ``refresh`` recomputes them after a fill or a balance change
    and ``observe`` per decision is one comparison per open leg with its trigger price
    (short: ``mark >= LP / (1 + D)``; long: ``mark <= LP / (1 - D)``, ``D`` the minimum distance).
    In cross mode the venue's other perp legs enter ``TMM`` and ``UPNL`` at the prices of the refresh; spot
    legs do not (on Binance they sit in the spot wallet, not the futures wallet that margins the perp, so
    a carry's hedge gains nothing to the perp's margin in a spike).

    Parameters
    ----------
    tiers : Mapping[str, tuple[MaintenanceTier, ...]]
        Instrument id -> brackets (the liquidatable instruments: perps).
    min_distance_pct : Decimal, optional
        The minimum distance; None: only report distances.
    margin_mode : {"cross", "isolated"}
    isolated_leverage : Decimal
        Isolated mode: the margin of a position is its entry notional / this leverage.
    """

    def __init__(
        self,
        tiers: Mapping[str, tuple[MaintenanceTier, ...]],
        *,
        min_distance_pct: Decimal | None,
        margin_mode: MarginMode = "cross",
        isolated_leverage: Decimal = Decimal(1),
    ) -> None:
        self.tiers = dict(tiers)
        self.min_distance_pct = min_distance_pct
        self.margin_mode: MarginMode = margin_mode
        self.isolated_leverage = isolated_leverage
        self.watches: dict[str, _Watch] = {}
        self.worst_distance_pct: dict[str, Decimal] = {}

    def margin_of(self, leg: OpenLeg, book: Book) -> tuple[Decimal, Decimal, Decimal]:
        """Return ``(WB, TMM, UPNL)`` of ``leg``: its isolated margin, or the venue's wallet and its other legs."""
        if self.margin_mode == "isolated":
            return abs(leg.quantity) * leg.entry_price / self.isolated_leverage, Decimal(0), Decimal(0)
        maintenance = unrealised = Decimal(0)
        for other in book.legs:
            # Only contracts count: a spot leg is not collateral of the futures wallet (Binance keeps it apart).
            if other.instrument_id == leg.instrument_id or other.venue != leg.venue:
                continue
            tiers = self.tiers.get(other.instrument_id)
            if tiers is None:
                continue
            price = book.prices.get(other.instrument_id, other.entry_price)
            unrealised += other.quantity * (price - other.entry_price)
            maintenance += maintenance_margin(tiers, other.quantity * price)
        return book.wallet.get(leg.venue, Decimal(0)), maintenance, unrealised

    def price_of(self, leg: OpenLeg, book: Book) -> Decimal | None:
        """Return the liquidation price of ``leg`` (None: nothing liquidates it)."""
        margin, maintenance, unrealised = self.margin_of(leg, book)
        return liquidation_price(
            self.tiers[leg.instrument_id],
            quantity=leg.quantity,
            entry_price=leg.entry_price,
            margin=margin,
            other_maintenance=maintenance,
            other_unrealised=unrealised,
            bracket_price=book.prices.get(leg.instrument_id),
        )

    def refresh(self, book: Book) -> None:
        """Recompute the liquidation and trigger prices of the open legs (after a fill or a balance change)."""
        self._fold()
        self.watches = {}
        distance = None if self.min_distance_pct is None else self.min_distance_pct / HUNDRED
        for leg in book.legs:
            if leg.instrument_id not in self.tiers or leg.quantity == 0:
                continue
            side = 1 if leg.quantity > 0 else -1
            liquidation = self.price_of(leg, book)
            trigger = None
            if liquidation is not None and distance is not None:
                trigger = liquidation / (1 + distance) if side < 0 else liquidation / (1 - distance)
            self.watches[leg.instrument_id] = _Watch(
                side, liquidation, trigger, trigger_float=None if trigger is None else float(trigger)
            )

    def observe(self, prices: Mapping[str, Decimal]) -> list[str]:
        """Track the worst price of each open leg; return the legs whose trigger price the mark crossed."""
        crossed = []
        for instrument_id, watch in self.watches.items():
            price = prices.get(instrument_id)
            if price is None:
                continue
            if watch.worst is None or (price > watch.worst if watch.side < 0 else price < watch.worst):
                watch.worst, watch.worst_float = price, float(price)
            trigger = watch.trigger
            if trigger is not None and (price >= trigger if watch.side < 0 else price <= trigger):
                crossed.append(instrument_id)
        return crossed

    def screen(self, instrument_id: str, price: float) -> bool:
        """Return whether ``price`` (the float of an exact price) may be a new worst or reach the trigger.

        Only then does ``observe`` need the exact price: rounding to the nearest float keeps the order of
        two prices, and the trigger is compared with a margin far above a float's error.
        """
        watch = self.watches.get(instrument_id)
        if watch is None:
            return False
        worst, edge = watch.worst_float, _screen_edge(watch)
        if watch.side < 0:
            return worst is None or price > worst or (edge is not None and price >= edge)
        return worst is None or price < worst or (edge is not None and price <= edge)

    def quiet_bounds(self, instrument_id: str) -> tuple[float, float] | None:
        """Return the closed interval of float prices at which ``screen`` flags no trigger (None: not observed yet).

        A decision whose price lies inside can reach no trigger on this leg: ``screen`` flags it only as a
        possible new worst price, which ``observe`` then records. An instrument the guard does not watch
        is quiet at every price.
        """
        watch = self.watches.get(instrument_id)
        if watch is None:
            return -math.inf, math.inf
        if watch.worst_float is None:
            return None
        edge = _screen_edge(watch)
        if edge is None:
            return -math.inf, math.inf
        if watch.side < 0:
            return -math.inf, math.nextafter(edge, -math.inf)
        return math.nextafter(edge, math.inf), math.inf

    def worst_bounds(self, instrument_id: str) -> tuple[float, float]:
        """Return the closed interval of float prices that ``screen`` flags as no new worst price.

        Every price is, for a leg not watched or not observed yet (``quiet_bounds`` is None for the latter).
        """
        watch = self.watches.get(instrument_id)
        if watch is None or watch.worst_float is None:
            return -math.inf, math.inf
        if watch.side < 0:
            return -math.inf, watch.worst_float
        return watch.worst_float, math.inf

    def distances_pct(self, prices: Mapping[str, Decimal]) -> dict[str, Decimal]:
        """Return each open leg's liquidation distance at ``prices``, in percent of the price."""
        result = {}
        for instrument_id, watch in self.watches.items():
            price = prices.get(instrument_id)
            if price is not None and price > 0:
                result[instrument_id] = liquidation_distance_pct(watch.liquidation, price)
        return result

    def worst_pct(self) -> dict[str, Decimal]:
        """Return each leg's smallest liquidation distance seen at a decision over the run, in percent."""
        self._fold()
        return dict(sorted(self.worst_distance_pct.items()))

    def _fold(self) -> None:
        for instrument_id, watch in self.watches.items():
            if watch.worst is None:
                continue
            distance = liquidation_distance_pct(watch.liquidation, watch.worst)
            known = self.worst_distance_pct.get(instrument_id)
            self.worst_distance_pct[instrument_id] = distance if known is None else min(known, distance)

    def safe_quantity(
        self,
        instrument_id: str,
        venue: str,
        *,
        side: int,
        own_unrealised: Decimal,
        book: Book,
        mark: Decimal,
    ) -> Decimal:
        """Return the largest absolute base quantity on ``side`` of ``instrument_id`` keeping the distance at ``mark``.

        The position is valued at the mark: in cross mode its unrealised PnL ``own_unrealised`` joins
        the wallet, which is exact for the liquidation price of a position grown or cut at the mark
        (its entry notional is ``Q x mark - own_unrealised x side``). In isolated mode the venue's wallet
        bounds what can be posted.

        Raises
        ------
        ValueError
            If ``side`` is not +1 or -1 or ``mark`` is not positive.
        """
        if self.min_distance_pct is None:
            raise ValueError("min_distance_pct: expected a minimum distance to size against, was None")
        probe = OpenLeg(instrument_id, venue, Decimal(side), mark)
        margin, maintenance, unrealised = self.margin_of(probe, book)
        if self.margin_mode == "isolated":
            margin = book.wallet.get(venue, Decimal(0))
        else:
            margin += own_unrealised
        return largest_safe_quantity(
            self.tiers[instrument_id],
            side=side,
            mark=mark,
            margin=margin,
            min_distance_pct=self.min_distance_pct,
            margin_mode=self.margin_mode,
            leverage=self.isolated_leverage,
            other_maintenance=maintenance,
            other_unrealised=unrealised,
        )

    def distance_if(
        self,
        instrument_id: str,
        venue: str,
        *,
        quantity: Decimal,
        own_unrealised: Decimal,
        book: Book,
        mark: Decimal,
    ) -> Decimal:
        """Return the liquidation distance (percent of ``mark``) of a position of ``quantity`` base units at the mark.

        As ``safe_quantity``: the position's unrealised PnL ``own_unrealised`` joins the wallet (cross).
        """
        probe = OpenLeg(instrument_id, venue, quantity, mark)
        margin, maintenance, unrealised = self.margin_of(probe, book)
        if self.margin_mode == "cross":
            margin += own_unrealised
        liquidation = liquidation_price(
            self.tiers[instrument_id],
            quantity=quantity,
            entry_price=mark,
            margin=margin,
            other_maintenance=maintenance,
            other_unrealised=unrealised,
        )
        return liquidation_distance_pct(liquidation, mark)

    def disarm(self, instrument_id: str) -> None:
        """Stop reporting ``instrument_id`` as crossed until the next ``refresh`` (a reduction is on its way)."""
        watch = self.watches.get(instrument_id)
        if watch is not None:
            watch.trigger = watch.trigger_float = None


def _screen_edge(watch: _Watch) -> float | None:
    # The trigger widened by far more than a float's error, towards the mark: a price beyond it may breach.
    trigger = watch.trigger_float
    if trigger is None:
        return None
    return trigger * (1 - 1e-9) if watch.side < 0 else trigger * (1 + 1e-9)
