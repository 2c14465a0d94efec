"""Engine test helpers: scripted and failing strategies, tiny hand-made stores and catalogs.

``Scripted`` submits market orders at given bar close times, so a golden test states exactly when a
position is opened and closed. ``hourly_bars`` turns a list of closes into store bars (open = previous
close), and ``build_catalog`` writes hand-made canonical frames through ``Store.write`` and exports them.
``RiskHold`` opens one position through ``strategies.risk`` and lets the breakers judge every bar.
Run configs name the strategies by import path: ``path = "tests.kit.engine:Scripted"`` (the repo root
must be importable, as it is under pytest and for ``python -m`` run from the repo root).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
from nautilus_trader.model import Bar, BarType, FundingRateUpdate, InstrumentId, OrderSide, Quantity
from nautilus_trader.trading import Strategy, StrategyConfig

from datasets.catalog import export_catalog
from datasets.store import SourceInfo, Store
from datasets.testing import write_fixture_instruments
from strategies.risk import RiskManagedStrategy
from strategies.risk_limits import RiskLimits
from tests.kit.store import funding_batch, ohlcv_batch

HOUR = timedelta(hours=1)
TEST_SOURCE = SourceInfo(source="tests.kit.engine", sha256="0" * 64, importer="tests.kit.engine", importer_version="1")


class ScriptedConfig(StrategyConfig):  # type: ignore[misc]
    """Orders to submit: ``[close time ISO, instrument id, "BUY"|"SELL", quantity text]`` each.

    Parameters
    ----------
    orders : list[list[str]]
    bar_spec : str
    """

    def __init__(self, orders: list[list[str]], bar_spec: str = "1-HOUR-LAST-EXTERNAL") -> None:
        super().__init__()
        self.bar_spec = bar_spec
        self.orders: dict[tuple[int, str], list[tuple[str, str]]] = {}
        instruments = set()
        for when, instrument_id, side, quantity in orders:
            if side not in ("BUY", "SELL"):
                raise ValueError(f"orders: expected side BUY or SELL, was {side!r}")
            key = (int(datetime.fromisoformat(when).timestamp() * 1_000_000_000), instrument_id)
            self.orders.setdefault(key, []).append((side, quantity))
            instruments.add(instrument_id)
        self.instrument_ids = sorted(instruments)


class Scripted(Strategy):  # type: ignore[misc]
    """Submit the configured market orders when the bar closing at their time arrives."""

    def __init__(self, config: ScriptedConfig) -> None:
        super().__init__(config)
        self.script = config

    def on_start(self) -> None:
        for instrument_id in self.script.instrument_ids:
            self.subscribe_bars(BarType.from_str(f"{instrument_id}-{self.script.bar_spec}"))

    def on_bar(self, bar: Bar) -> None:
        instrument_id = str(bar.bar_type.instrument_id)
        for side, quantity in self.script.orders.get((bar.ts_event, instrument_id), []):
            order_side = OrderSide.BUY if side == "BUY" else OrderSide.SELL
            order = self.order_factory.market(
                InstrumentId.from_str(instrument_id), order_side, Quantity.from_str(quantity)
            )
            self.submit_order(order)


def hourly_bars(
    start: datetime, closes: Sequence[str], *, volume: str = "100"
) -> list[tuple[datetime, str, str, str, str, str]]:
    """Return store bars opening at ``start`` + i hours with the given closes (open = previous close)."""
    rows = []
    previous = closes[0]
    for i, close in enumerate(closes):
        low, high = sorted((Decimal(previous), Decimal(close)))
        rows.append((start + i * HOUR, previous, str(high), str(low), close, volume))
        previous = close
    return rows


def build_catalog(
    root: Path,
    *,
    bars: dict[tuple[str, str], list[tuple[datetime, str, str, str, str, str]]],
    marks: dict[tuple[str, str], list[tuple[datetime, str, str, str, str, str]]] | None = None,
    funding: dict[tuple[str, str], tuple[str, list[tuple[datetime, str]]]] | None = None,
) -> Path:
    """Write hand-made bars, mark bars and funding (``(venue, symbol) -> rows``) to a store and export it.

    ``funding`` values are ``(interval, [(settlement ts, rate text), ...])``. Returns the catalog path.
    """
    store = Store(root / "store")
    frames = [ohlcv_batch(rows, venue=v, symbol=s) for (v, s), rows in bars.items()]
    frames += [ohlcv_batch(rows, venue=v, symbol=s, price_type="mark") for (v, s), rows in (marks or {}).items()]
    store.write("ohlcv", pl.concat(frames), TEST_SOURCE)
    if funding:
        batches = [funding_batch(rows, venue=v, symbol=s, interval=i) for (v, s), (i, rows) in funding.items()]
        store.write("funding", pl.concat(batches), TEST_SOURCE)
    write_fixture_instruments(store)
    catalog = root / "catalog"
    export_catalog(store, catalog)
    return catalog


class FailingConfig(StrategyConfig):  # type: ignore[misc]
    """Parameters of ``Failing``: the instrument whose first bar makes it raise."""

    def __init__(self, instrument_id: str, bar_spec: str = "1-HOUR-LAST-EXTERNAL") -> None:
        super().__init__()
        self.instrument_id = instrument_id
        self.bar_spec = bar_spec


class Failing(Strategy):  # type: ignore[misc]
    """Raise on the first bar: what a strategy bug looks like to the engine."""

    def __init__(self, config: FailingConfig) -> None:
        super().__init__(config)
        self.params = config

    def on_start(self) -> None:
        self.subscribe_bars(BarType.from_str(f"{self.params.instrument_id}-{self.params.bar_spec}"))

    def on_bar(self, bar: Bar) -> None:
        raise RuntimeError(f"strategy bug on {bar.bar_type}")


class RiskHoldConfig(StrategyConfig):  # type: ignore[misc]
    """Parameters of ``RiskHold``: open ``quantity`` (signed) of ``instrument_id`` on the bar closing at ``open_at``.

    Parameters
    ----------
    instrument_id : str
    quantity : str
    open_at : str
        ISO time of the bar close the order is sent on.
    risk : dict, optional
        ``strategies.risk_limits.RiskLimits`` fields.
    bar_spec : str
    """

    def __init__(
        self,
        instrument_id: str,
        quantity: str,
        open_at: str,
        risk: dict[str, Any] | None = None,
        bar_spec: str = "1-HOUR-LAST-EXTERNAL",
    ) -> None:
        super().__init__()
        self.instrument_id = instrument_id
        self.quantity = Decimal(quantity)
        self.open_at_ns = int(datetime.fromisoformat(open_at).timestamp()) * 1_000_000_000
        self.risk = RiskLimits.from_mapping(risk)
        self.bar_spec = bar_spec


class RiskHold(RiskManagedStrategy):
    """Open one position through the risk gate and hold it; the breakers judge the equity on every bar."""

    def __init__(self, config: RiskHoldConfig) -> None:
        super().__init__(config, limits=config.risk)
        self.params = config
        self.instrument = InstrumentId.from_str(config.instrument_id)
        self.opened = False

    def on_start(self) -> None:
        self.start_risk([self.instrument], funding=[self.instrument])
        self.subscribe_bars(BarType.from_str(f"{self.instrument}-{self.params.bar_spec}"))
        self.subscribe_funding_rates(self.instrument)

    def on_funding_rate(self, funding_rate: FundingRateUpdate) -> None:
        self.observe_funding(funding_rate.instrument_id, funding_rate.ts_event, funding_rate.next_funding_ns)

    def on_bar(self, bar: Bar) -> None:
        self.observe_bar(self.instrument, bar.close.as_decimal(), bar.ts_event)
        self.check_equity()
        if not self.opened and bar.ts_event == self.params.open_at_ns:
            self.opened = self.submit_checked([(self.instrument, self.params.quantity)])
