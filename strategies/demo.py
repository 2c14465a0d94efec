"""Two small, honest demo strategies that exercise the engine (not trading advice).

``FundingShort`` shorts a perp while the last *settled* funding rate is at or above ``enter_rate`` and
goes flat once it falls to ``exit_rate`` or below: it collects funding when longs pay, and pays fees
and price risk for it. The catalog announces each settlement's realised rate one interval early
(``datasets.catalog.funding``), so the strategy decides on the rate of the update before the latest:
the one that has already settled, which a live trader would also know. ``EmaCross`` flips long/short
on a fast/slow EMA cross and trades often; the benchmark uses it. Both reach the world only through what
Nautilus injects (cache, portfolio, clock, order factory).
"""

from __future__ import annotations

from collections import deque
from decimal import Decimal
from typing import Any, ClassVar

from nautilus_trader.model import Bar, BarType, FundingRateUpdate, InstrumentId, OrderSide, Venue
from nautilus_trader.trading import Strategy, StrategyConfig

from strategies.carry import bar_interval_ns, decimal_param
from strategies.risk_limits import USD_LIKE, lot_quantity
from strategies.sizing import Sizing


class FundingShortConfig(StrategyConfig):  # type: ignore[misc]
    """Parameters of ``FundingShort``.

    Parameters
    ----------
    instrument_ids : list[str]
        Perps to trade (Nautilus ids; run configs may write ``"venue:SYMBOL"``).
    bar_spec : str
        Bars that drive decisions, e.g. ``1-HOUR-LAST-EXTERNAL``.
    notional : str
        Short size in quote currency per instrument, converted at the last close.
    enter_rate, exit_rate : str
        Short when the funding rate >= ``enter_rate``; flatten when it is <= ``exit_rate``.
    sizing : dict, optional
        ``strategies.sizing.Sizing`` fields (the run config's ``[sizing]``); None: fixed ``notional``.
    """

    PARAMETER_SPACE: ClassVar[dict[str, tuple[str, str]]] = {
        "enter_rate": ("0.00002", "0.0005"),
        "exit_rate": ("-0.0001", "0.0001"),
    }
    WARMUP_BARS: ClassVar[int] = 0

    def __init__(
        self,
        instrument_ids: list[str],
        bar_spec: str = "1-HOUR-LAST-EXTERNAL",
        notional: str = "10000",
        enter_rate: str = "0.0001",
        exit_rate: str = "0",
        sizing: dict[str, Any] | None = None,
        order_id_tag: str | None = None,
    ) -> None:
        super().__init__()
        if not instrument_ids:
            raise ValueError("instrument_ids: expected at least one perp, was an empty list")
        self.instrument_ids = [InstrumentId.from_str(i) for i in instrument_ids]
        self.bar_spec = bar_spec
        self.notional = decimal_param("notional", notional)
        self.enter_rate = decimal_param("enter_rate", enter_rate)
        self.exit_rate = decimal_param("exit_rate", exit_rate)
        self.sizing = Sizing.from_mapping(sizing)
        if self.notional <= 0:
            raise ValueError(f"notional: expected > 0, was {notional}")
        if self.exit_rate > self.enter_rate:
            raise ValueError(f"exit_rate: expected <= enter_rate {enter_rate}, was {exit_rate}")


class FundingShort(Strategy):  # type: ignore[misc]
    """Short perps while funding is positive enough; flat otherwise."""

    def __init__(self, config: FundingShortConfig) -> None:
        super().__init__(config)
        self.params = config
        self.announced: dict[InstrumentId, Decimal] = {}
        self.settled: dict[InstrumentId, Decimal] = {}
        window = config.sizing.volatility_window_bars
        self.closes: dict[InstrumentId, deque[Decimal]] = {i: deque(maxlen=window) for i in config.instrument_ids}
        self.bar_interval_ns = bar_interval_ns(config.bar_spec)

    def on_start(self) -> None:
        for instrument_id in self.params.instrument_ids:
            self.subscribe_funding_rates(instrument_id)
            self.subscribe_bars(BarType.from_str(f"{instrument_id}-{self.params.bar_spec}"))

    def on_funding_rate(self, funding_rate: FundingRateUpdate) -> None:
        instrument_id = funding_rate.instrument_id
        if instrument_id in self.announced:
            self.settled[instrument_id] = self.announced[instrument_id]
        self.announced[instrument_id] = funding_rate.rate

    def on_bar(self, bar: Bar) -> None:
        instrument_id = bar.bar_type.instrument_id
        if self.params.sizing.mode == "volatility_target":
            self.closes[instrument_id].append(bar.close.as_decimal())
        rate = self.settled.get(instrument_id)
        if rate is None:
            return
        current = self.portfolio.net_position(instrument_id)
        if rate >= self.params.enter_rate and current >= 0:
            instrument = self.cache.instrument(instrument_id)
            if instrument is None:
                return
            # Contracts of ``multiplier`` base units each (an OKX BTC swap: 0.01 BTC).
            value = bar.close.as_decimal() * instrument.multiplier.as_decimal()
            quantity = lot_quantity(instrument, self.entry_notional(instrument_id) / value)
            target = -quantity.as_decimal()
        elif rate <= self.params.exit_rate and current != 0:
            target = Decimal(0)
        else:
            return
        _trade_towards(self, instrument_id, current, target)

    def entry_notional(self, instrument_id: InstrumentId) -> Decimal:
        """Return the short's notional: the sizing mode's, scaled down to the correlated exposure cap."""
        params = self.params
        sizing = params.sizing
        if sizing.mode == "fixed_notional" and sizing.max_correlated_exposure_usd is None:
            return params.notional
        equity = self._equity(instrument_id.venue) if sizing.mode == "kelly" else Decimal(0)
        closes = list(self.closes[instrument_id])
        notional = sizing.entry_notional(
            params.notional, equity=equity, closes=closes, bar_interval_ns=self.bar_interval_ns
        )
        current = {}
        for position in self.cache.positions_open(strategy_id=self.strategy_id):
            last = self.cache.bar(BarType.from_str(f"{position.instrument_id}-{params.bar_spec}"))
            if last is not None:
                exposure = position.quantity.as_decimal() * position.multiplier.as_decimal() * last.close.as_decimal()
                current[str(position.instrument_id)] = exposure
        return notional * sizing.entry_scale(current, {str(instrument_id): notional})

    def _equity(self, venue: Venue) -> Decimal:
        account = self.portfolio.account(venue)
        if account is None:
            return Decimal(0)
        return sum((m.as_decimal() for c, m in account.balances_total().items() if c.code in USD_LIKE), Decimal(0))


class EmaCrossConfig(StrategyConfig):  # type: ignore[misc]
    """Parameters of ``EmaCross``.

    Parameters
    ----------
    instrument_id : str
    bar_spec : str
    fast_period, slow_period : int
        EMA lengths in bars.
    trade_size : str
        Position size in base units held long or short.
    """

    PARAMETER_SPACE: ClassVar[dict[str, tuple[int, int]]] = {"fast_period": (3, 30), "slow_period": (10, 200)}

    def __init__(
        self,
        instrument_id: str,
        bar_spec: str = "1-MINUTE-LAST-EXTERNAL",
        fast_period: int = 10,
        slow_period: int = 30,
        trade_size: str = "0.01",
        order_id_tag: str | None = None,
    ) -> None:
        super().__init__()
        if not 1 <= fast_period < slow_period:
            raise ValueError(f"fast_period: expected 1 <= fast < slow ({slow_period}), was {fast_period}")
        self.instrument_id = InstrumentId.from_str(instrument_id)
        self.bar_spec = bar_spec
        self.fast_period = fast_period
        self.slow_period = slow_period
        self.trade_size = decimal_param("trade_size", trade_size)
        if self.trade_size <= 0:
            raise ValueError(f"trade_size: expected > 0, was {trade_size}")

    @property
    def warmup_bars(self) -> int:
        return self.slow_period


class EmaCross(Strategy):  # type: ignore[misc]
    """Hold ``trade_size`` long while the fast EMA is above the slow one, short while below."""

    def __init__(self, config: EmaCrossConfig) -> None:
        super().__init__(config)
        self.params = config
        self.fast: float | None = None
        self.slow: float | None = None
        self.seen = 0

    def on_start(self) -> None:
        self.subscribe_bars(BarType.from_str(f"{self.params.instrument_id}-{self.params.bar_spec}"))

    def on_bar(self, bar: Bar) -> None:
        close = float(bar.close)
        self.fast = _ema(self.fast, close, self.params.fast_period)
        self.slow = _ema(self.slow, close, self.params.slow_period)
        self.seen += 1
        if self.seen < self.params.warmup_bars:
            return
        instrument_id = self.params.instrument_id
        size = self.params.trade_size
        target = size if self.fast > self.slow else -size
        _trade_towards(self, instrument_id, self.portfolio.net_position(instrument_id), target)


def _ema(previous: float | None, value: float, period: int) -> float:
    if previous is None:
        return value
    alpha = 2.0 / (period + 1)
    return previous + alpha * (value - previous)


def _trade_towards(strategy: Any, instrument_id: InstrumentId, current: Decimal, target: Decimal) -> None:
    difference = target - current
    if difference == 0:
        return
    instrument = strategy.cache.instrument(instrument_id)
    quantity = lot_quantity(instrument, difference)
    if quantity.as_decimal() <= 0:
        return
    side = OrderSide.BUY if difference > 0 else OrderSide.SELL
    strategy.submit_order(strategy.order_factory.market(instrument_id, side, quantity))
