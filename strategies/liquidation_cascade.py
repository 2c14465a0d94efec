"""Liquidation cascade: trade a burst of one side's forced closes, with exits placed as venue orders.

``LiquidationCascade`` listens to one perp's bars and to the ``Liquidation`` custom data of that perp
(``datasets.catalog.liquidations``: a backtest's catalog stream, a paper replay of it, or the live
venue stream of ``engine.live.liquidations``). At every bar close, while flat, it sums the
liquidations of the last ``window_bars`` bars per liquidated side (``long``: a long was force-sold;
``short``: a short was force-bought) and triggers when one side reaches the threshold chosen by
``trigger``:

- ``notional``: liquidated notional (USD) >= ``threshold_notional_usd``;
- ``count``: number of liquidations >= ``threshold_count``;
- ``volume_multiple``: liquidated notional >= ``threshold_volume_multiple`` x the mean quote volume
  (volume x close) of the last ``volume_lookback_bars`` bars x ``window_bars``.

When both sides trigger, the larger notional wins (a tie trades nothing). ``reaction = "follow"``
trades with the forced flow (longs liquidated -> sell), ``"fade"`` against it (longs liquidated ->
buy). The entry is a market order for ``notional`` quote at the close (or what the shared sizing,
``strategies.sizing``, makes of it), sent through the shared risk gate
(``strategies.risk.RiskManagedStrategy.submit_checked``: exposure caps, leverage, stale data, and the
liquidation-distance control, which cuts or refuses it). At every bar close the open leg's liquidation
distance is checked as the carry's legs are (``RiskManagedStrategy.check_liquidation``): a mark that
came within ``risk.min_liquidation_distance_pct`` reduces the position to the largest safe size, and
the smallest distance seen is the run's ``liquidation_distance_pct``. Once the entry has filled, three
reduce-only exits are placed at once from the fill price ``P`` (long; mirrored for a short):

- stop-loss: STOP_MARKET triggered at ``P x (1 - stop_loss_pct / 100)`` (rounded away from ``P`` to the tick);
- take-profit: LIMIT at ``P x (1 + take_profit_pct / 100)`` (rounded away from ``P``);
- trailing stop: TRAILING_STOP_MARKET ``trailing_stop_pct`` behind the best price since entry
  (offset in basis points, on the last price).

They are one-cancels-the-others, managed here: Nautilus' ``bracket`` holds one stop and one target,
not three exits, so the strategy submits the three on the entry fill and cancels the survivors when
the position closes (by an exit, by ``max_holding_bars`` or by the risk breakers). The liquidations
that triggered an entry are consumed: the next entry needs a new burst.

Measured on Nautilus 2.0.0rc6 with bar execution (tests/integration/test_liquidation_cascade.py): the
stop-loss fills at its trigger and the take-profit at its limit on the bar that trades through them;
the trailing stop needs a first trigger price (the risk engine denies it ``MARKET_PRICE_UNAVAILABLE``
without one on bars), follows the bars' highs and fills when the bar that raised it trades back through
it, but a trailing stop raised on an earlier bar was not triggered by a later bar's low (an xfail test
keeps that on record). The fixed stop-loss is the backstop either way.
"""

from __future__ import annotations

import json
from collections import deque
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any, ClassVar, Literal

from nautilus_trader.model import (
    Bar,
    BarType,
    DataType,
    InstrumentId,
    OrderSide,
    Price,
    Quantity,
    TrailingOffsetType,
    TriggerType,
)
from nautilus_trader.trading import StrategyConfig

from strategies.carry import DEFAULT_BAR_SPEC, bar_interval_ns, decimal_param
from strategies.risk import RiskManagedStrategy
from strategies.risk_limits import RiskLimits
from strategies.risk_state import load_state_document, state_decimal, state_field
from strategies.signals import ParameterRange, parameter_range
from strategies.sizing import Sizing

LIQUIDATION_TYPE_NAME = "Liquidation"  # ``datasets.catalog.liquidations.TYPE_NAME``: the stream's data type
Trigger = Literal["notional", "count", "volume_multiple"]
Reaction = Literal["fade", "follow"]
TRIGGERS: tuple[Trigger, ...] = ("notional", "count", "volume_multiple")
REACTIONS: tuple[Reaction, ...] = ("fade", "follow")
LIQUIDATED_SIDES = ("long", "short")
CASCADE_STATE_KEY = "liquidation_cascade"


class LiquidationCascadeConfig(StrategyConfig):  # type: ignore[misc]
    """Parameters of ``LiquidationCascade``.

    Parameters
    ----------
    instrument_id : str
        The perp traded, whose bars and liquidations drive it (run configs may write ``"venue:SYMBOL"``).
    bar_spec : str
        Time bars that drive decisions (``15-MINUTE-LAST-EXTERNAL``).
    notional : str
        Quote amount of an entry (quantity = notional / close, rounded down to the lot).
    trigger : {"notional", "count", "volume_multiple"}
        Which threshold triggers an entry.
    threshold_notional_usd, threshold_count, threshold_volume_multiple : str, int, str
        The thresholds of each trigger (only the chosen one is used).
    window_bars : int
        Bars of liquidations summed (the closing bar included).
    volume_lookback_bars : int
        Bars of quote volume averaged for ``volume_multiple``.
    reaction : {"fade", "follow"}
        Trade against or with the forced flow.
    stop_loss_pct, take_profit_pct, trailing_stop_pct : str
        Exit distances from the entry fill price, percent (the trailing stop's behind the best price).
    max_holding_bars : int
        Close at market after this many bar closes in a position.
    risk : dict
        ``strategies.risk_limits.RiskLimits`` fields.
    sizing : dict, optional
        ``strategies.sizing.Sizing`` fields (the run config's ``[sizing]``); None: fixed ``notional``.

    Raises
    ------
    ValueError
        If a parameter is malformed or out of range; the message names it.
    """

    PARAMETER_SPACE: ClassVar[dict[str, ParameterRange]] = {
        "threshold_notional_usd": parameter_range("50000", "500000", "50000"),
        "threshold_count": parameter_range("5", "50", "5", integer=True),
        "threshold_volume_multiple": parameter_range("0.05", "0.5", "0.05"),
        "window_bars": parameter_range("1", "4", "1", integer=True),
        "stop_loss_pct": parameter_range("0.5", "3", "0.5"),
        "take_profit_pct": parameter_range("0.5", "5", "0.5"),
        "trailing_stop_pct": parameter_range("0.5", "3", "0.5"),
        "max_holding_bars": parameter_range("4", "96", "4", integer=True),
    }

    def __init__(
        self,
        *,
        instrument_id: str,
        bar_spec: str = DEFAULT_BAR_SPEC,
        notional: str = "1000",
        trigger: str = "notional",
        threshold_notional_usd: str = "100000",
        threshold_count: int = 10,
        threshold_volume_multiple: str = "0.1",
        window_bars: int = 1,
        volume_lookback_bars: int = 24,
        reaction: str = "fade",
        stop_loss_pct: str = "2",
        take_profit_pct: str = "3",
        trailing_stop_pct: str = "1.5",
        max_holding_bars: int = 24,
        risk: dict[str, Any] | None = None,
        sizing: dict[str, Any] | None = None,
        order_id_tag: str | None = None,
    ) -> None:
        super().__init__()
        self.instrument_id = InstrumentId.from_str(instrument_id)
        self.bar_spec = bar_spec
        self.bar_interval_ns = bar_interval_ns(bar_spec)
        self.notional = decimal_param("notional", notional)
        if trigger not in TRIGGERS:
            raise ValueError(f"trigger: expected one of {', '.join(TRIGGERS)}, was {trigger!r}")
        self.trigger: Trigger = trigger  # type: ignore[assignment]
        self.threshold_notional_usd = decimal_param("threshold_notional_usd", threshold_notional_usd)
        self.threshold_count = int(threshold_count)
        self.threshold_volume_multiple = decimal_param("threshold_volume_multiple", threshold_volume_multiple)
        self.window_bars = int(window_bars)
        self.volume_lookback_bars = int(volume_lookback_bars)
        if reaction not in REACTIONS:
            raise ValueError(f"reaction: expected one of {', '.join(REACTIONS)}, was {reaction!r}")
        self.reaction: Reaction = reaction  # type: ignore[assignment]
        self.stop_loss_pct = decimal_param("stop_loss_pct", stop_loss_pct)
        self.take_profit_pct = decimal_param("take_profit_pct", take_profit_pct)
        self.trailing_stop_pct = decimal_param("trailing_stop_pct", trailing_stop_pct)
        self.max_holding_bars = int(max_holding_bars)
        self.risk = RiskLimits.from_mapping(risk)
        self.sizing = Sizing.from_mapping(sizing)
        _check_params(self)

    @property
    def warmup_bars(self) -> int:
        """Bars before the first decision: the liquidation window, or the volume lookback when it is used."""
        return self.volume_lookback_bars if self.trigger == "volume_multiple" else self.window_bars


def _check_params(config: LiquidationCascadeConfig) -> None:
    positive = {
        "notional": config.notional,
        "threshold_notional_usd": config.threshold_notional_usd,
        "threshold_volume_multiple": config.threshold_volume_multiple,
    }
    for name, value in positive.items():
        if value <= 0:
            raise ValueError(f"{name}: expected > 0, was {value}")
    for name, count in (
        ("threshold_count", config.threshold_count),
        ("window_bars", config.window_bars),
        ("volume_lookback_bars", config.volume_lookback_bars),
        ("max_holding_bars", config.max_holding_bars),
    ):
        if count < 1:
            raise ValueError(f"{name}: expected >= 1, was {count}")
    for name, pct in (
        ("stop_loss_pct", config.stop_loss_pct),
        ("take_profit_pct", config.take_profit_pct),
        ("trailing_stop_pct", config.trailing_stop_pct),
    ):
        if not Decimal(0) < pct < Decimal(100):
            raise ValueError(f"{name}: expected within (0, 100), was {pct}")


def liquidation_notional(data: Any) -> Decimal:
    """Return a ``Liquidation``'s notional in USD: its ``notional_usd``, else ``price x quantity`` (exact)."""
    if data.notional_usd:
        return Decimal(data.notional_usd)
    if data.price and data.quantity:
        return Decimal(data.price) * Decimal(data.quantity)
    return Decimal(0)


def entry_side(liquidated: str, reaction: Reaction) -> OrderSide:
    """Return the entry side for a burst of ``liquidated`` (``long``/``short``) positions.

    Liquidated longs are force-sold: ``follow`` sells with them, ``fade`` buys against them.
    """
    sells = (liquidated == "long") == (reaction == "follow")
    return OrderSide.SELL if sells else OrderSide.BUY


def exit_prices(
    entry: Decimal,
    *,
    side: OrderSide,
    stop_loss_pct: Decimal,
    take_profit_pct: Decimal,
    trailing_stop_pct: Decimal,
    tick: Decimal,
) -> tuple[Decimal, Decimal, Decimal]:
    """Return ``(stop trigger, take-profit limit, first trailing trigger)`` of a position entered at ``entry``.

    Each is ``entry x (1 -/+ pct / 100)`` (a long's stops below, its target above; mirrored for a
    short) rounded to ``tick`` away from the entry, so an exit is never closer than its percentage.
    """
    long = side == OrderSide.BUY
    sign = Decimal(1 if long else -1)
    stop = _to_tick(entry * (1 - sign * stop_loss_pct / 100), tick, ROUND_FLOOR if long else ROUND_CEILING)
    target = _to_tick(entry * (1 + sign * take_profit_pct / 100), tick, ROUND_CEILING if long else ROUND_FLOOR)
    trail = _to_tick(entry * (1 - sign * trailing_stop_pct / 100), tick, ROUND_FLOOR if long else ROUND_CEILING)
    return stop, target, trail


def _to_tick(value: Decimal, tick: Decimal, rounding: str) -> Decimal:
    return (value / tick).to_integral_value(rounding=rounding) * tick


class LiquidationCascade(RiskManagedStrategy):
    """Enter on a burst of one side's liquidations, exit by stop-loss, take-profit, trailing stop or time."""

    def __init__(self, config: LiquidationCascadeConfig) -> None:
        super().__init__(config, limits=config.risk)
        self.params = config
        self.instrument_id = config.instrument_id
        self.liquidations: deque[tuple[int, str, Decimal]] = deque()  # (ts_event, liquidated side, notional)
        self.quote_volumes: deque[Decimal] = deque(maxlen=config.volume_lookback_bars)
        # Closes for the realised volatility, kept only when the sizing mode reads them.
        self.sizing_closes: deque[Decimal] | None = (
            deque(maxlen=config.sizing.volatility_window_bars) if config.sizing.mode == "volatility_target" else None
        )
        self.bars_seen = 0
        self.entry_orders: set[str] = set()
        self.exit_orders: set[str] = set()
        self.entered_bars = 0  # bar closes seen while in a position

    def on_start(self) -> None:
        self.start_risk([self.instrument_id])
        self.subscribe_bars(BarType.from_str(f"{self.instrument_id}-{self.params.bar_spec}"))
        self.subscribe_data(DataType(LIQUIDATION_TYPE_NAME, identifier=str(self.instrument_id)))

    def on_data(self, data: Any) -> None:
        liquidation = getattr(data, "data", data)  # a CustomData wrapper, or the Liquidation itself
        if getattr(liquidation, "instrument_id", None) != str(self.instrument_id):
            return
        if liquidation.side not in LIQUIDATED_SIDES:
            return
        self.liquidations.append((liquidation.ts_event, liquidation.side, liquidation_notional(liquidation)))

    def on_bar(self, bar: Bar) -> None:
        if bar.bar_type.instrument_id != self.instrument_id:
            return
        self.observe_last_bar(self.instrument_id.value, bar)
        self.quote_volumes.append(bar.volume.as_decimal() * bar.close.as_decimal())
        if self.sizing_closes is not None:
            self.sizing_closes.append(bar.close.as_decimal())
        self.bars_seen += 1
        window_start = bar.ts_event - self.params.window_bars * self.params.bar_interval_ns
        while self.liquidations and self.liquidations[0][0] <= window_start:
            self.liquidations.popleft()
        self.check_equity()
        if not self.gate.halted:
            self.check_liquidation()  # as the carry: an open leg the mark brought too close is reduced
        if self.holding(self.instrument_id) != 0 or self.entry_orders:
            self._hold(bar)
            return
        if self.gate.halted or self.bars_seen < self.params.warmup_bars:
            return
        burst = self.burst()
        if burst is not None:
            self._enter(*burst)

    def burst(self) -> tuple[str, Decimal, int] | None:
        """Return ``(liquidated side, notional, count)`` of the side that reached the threshold, or None."""
        notionals = dict.fromkeys(LIQUIDATED_SIDES, Decimal(0))
        counts = dict.fromkeys(LIQUIDATED_SIDES, 0)
        for _, side, notional in self.liquidations:
            notionals[side] += notional
            counts[side] += 1
        threshold = self._notional_threshold()
        hits = [
            (side, notionals[side], counts[side])
            for side in LIQUIDATED_SIDES
            if counts[side]
            and (counts[side] >= self.params.threshold_count if threshold is None else notionals[side] >= threshold)
        ]
        if len(hits) == 2:
            if hits[0][1] == hits[1][1]:
                return None
            hits = [max(hits, key=lambda hit: hit[1])]
        return hits[0] if hits else None

    def _notional_threshold(self) -> Decimal | None:
        params = self.params
        if params.trigger == "notional":
            return params.threshold_notional_usd
        if params.trigger == "volume_multiple":
            mean = sum(self.quote_volumes, Decimal(0)) / len(self.quote_volumes)
            return params.threshold_volume_multiple * mean * params.window_bars
        return None

    def _enter(self, side: str, notional: Decimal, count: int) -> None:
        close = self.last_price.get(self.instrument_id)
        if not close:
            return
        quantity = self.entry_notional() / close / self.multiplier(self.instrument_id)
        signed = quantity if entry_side(side, self.params.reaction) == OrderSide.BUY else -quantity
        self.liquidations.clear()  # consumed: the next entry needs a new burst
        before = set(self.pending)
        if self.submit_checked([(self.instrument_id, signed)]):
            self.entry_orders = set(self.pending) - before
            self.entered_bars = 0
            self.log.info(f"cascade: {count} {side} liquidations, {notional} USD: entering")

    def entry_notional(self) -> Decimal:
        """Return an entry's notional: the sizing mode's, scaled down to the correlated exposure cap."""
        return self.sized_notional(
            self.params.sizing,
            self.params.notional,
            closes=list(self.sizing_closes or ()),
            bar_interval_ns=self.params.bar_interval_ns,
            added=lambda notional: {str(self.instrument_id): notional},
        )

    def _hold(self, bar: Bar) -> None:
        if self.entry_orders:
            return
        self.entered_bars += 1
        if self.entered_bars >= self.params.max_holding_bars:
            self.cancel_all_orders(self.instrument_id)
            self.exit_orders.clear()
            self.submit_checked([(self.instrument_id, -self.holding(self.instrument_id))])

    def on_order_filled(self, event: Any) -> None:
        super().on_order_filled(event)
        key = str(event.client_order_id)
        if key in self.entry_orders and key not in self.pending:
            self.entry_orders.discard(key)
            self._place_exits(event)

    def _place_exits(self, fill: Any) -> None:
        instrument = self.cache.instrument(self.instrument_id)
        position = self.holding(self.instrument_id)
        if instrument is None or position == 0:
            return
        params = self.params
        side = OrderSide.BUY if position > 0 else OrderSide.SELL
        exit_side = OrderSide.SELL if position > 0 else OrderSide.BUY
        quantity = Quantity.from_decimal_dp(abs(position), instrument.size_precision)
        stop, target, trail = exit_prices(
            fill.last_px.as_decimal(),
            side=side,
            stop_loss_pct=params.stop_loss_pct,
            take_profit_pct=params.take_profit_pct,
            trailing_stop_pct=params.trailing_stop_pct,
            tick=instrument.price_increment.as_decimal(),
        )
        precision = instrument.price_precision
        factory = self.order_factory
        orders = [
            factory.stop_market(
                self.instrument_id,
                exit_side,
                quantity,
                Price.from_decimal_dp(stop, precision),
                trigger_type=TriggerType.LAST_PRICE,
                reduce_only=True,
            ),
            factory.limit(
                self.instrument_id, exit_side, quantity, Price.from_decimal_dp(target, precision), reduce_only=True
            ),
            factory.trailing_stop_market(
                self.instrument_id,
                exit_side,
                quantity,
                params.trailing_stop_pct * 100,
                trailing_offset_type=TrailingOffsetType.BASIS_POINTS,
                trigger_price=Price.from_decimal_dp(trail, precision),  # the risk engine needs a start
                trigger_type=TriggerType.LAST_PRICE,
                reduce_only=True,
            ),
        ]
        for order in orders:
            self.exit_orders.add(str(order.client_order_id))
            self.submit_order(order)

    def on_position_closed(self, event: Any) -> None:
        super().on_position_closed(event)
        if event.instrument_id == self.instrument_id and self.exit_orders:
            # One-cancels-the-others: whatever closed the position, the remaining exits go.
            self.exit_orders.clear()
            self.cancel_all_orders(self.instrument_id)

    def on_save(self) -> dict[str, bytes]:
        """Return the cascade's state (window, volumes, orders in flight, holding time) and the breakers'."""
        document = {
            "liquidations": [[ts, side, str(notional)] for ts, side, notional in self.liquidations],
            "quote_volumes": [str(volume) for volume in self.quote_volumes],
            "bars_seen": self.bars_seen,
            "entry_orders": sorted(self.entry_orders),
            "exit_orders": sorted(self.exit_orders),
            "entered_bars": self.entered_bars,
        }
        return {**super().on_save(), CASCADE_STATE_KEY: json.dumps(document, sort_keys=True).encode()}

    def on_load(self, state: dict[str, bytes]) -> None:
        """Restore what ``on_save`` returned (nothing when ``state`` has no cascade entry).

        Raises
        ------
        ValueError
            If the entry is not the document ``on_save`` writes; the message names the field.
        """
        super().on_load(state)
        if CASCADE_STATE_KEY not in state:
            return
        key = CASCADE_STATE_KEY
        document = load_state_document(state, key)
        window = state_field(document, key, "liquidations", list)
        self.liquidations = deque(
            (int(ts), str(side), state_decimal({"notional": notional}, f"{key}.liquidations", "notional"))
            for ts, side, notional in window
        )
        volumes = state_field(document, key, "quote_volumes", list)
        self.quote_volumes = deque(
            (state_decimal({"volume": v}, f"{key}.quote_volumes", "volume") for v in volumes),
            maxlen=self.params.volume_lookback_bars,
        )
        self.bars_seen = state_field(document, key, "bars_seen", int)
        self.entry_orders = set(state_field(document, key, "entry_orders", list))
        self.exit_orders = set(state_field(document, key, "exit_orders", list))
        self.entered_bars = state_field(document, key, "entered_bars", int)

    def on_order_lost(self, instrument_id: InstrumentId) -> None:
        self.entry_orders.clear()

    def on_risk_flatten(self) -> None:
        self.entry_orders.clear()
        self.exit_orders.clear()
