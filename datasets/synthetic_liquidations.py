"""Seeded SYNTHETIC liquidation cascades and the bars they drive: for tests and demos, never for research.

``synthetic_cascades`` builds one perp's OHLCV bars and its ``liquidations`` rows in the canonical
schemas. Prices follow a seeded random walk; now and then a *cascade* starts: one side is force-closed
in a burst (longs in a fall, shorts in a squeeze), the bar moves ``cascade_move_pct`` against that side
with a wick beyond its close, its volume swells, and the next bars take back part of the move. Outside
cascades a trickle of small liquidations of both sides arrives.

The liquidations are consistent with the bars they belong to: each is stamped inside its bar
(``[open time, open time + interval)``), priced within the bar's ``[low, high]`` on the tick, and a
cascade's prices walk from the bar's open towards its extreme as time passes. ``quantity`` has three
decimals and ``notional_usd`` is ``price x quantity`` exactly. Every batch written by
``write_synthetic_cascades`` carries ``synthetic://`` lineage and ``source`` names this module, so no
row is mistaken for a recorded one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np
import polars as pl

from datasets.importers.common import event_ids
from datasets.importers.liquidations import ID_FIELDS
from datasets.schemas import LIQUIDATIONS, OHLCV, PL_DECIMAL, interval_secs
from datasets.store import Store, WriteSummary
from datasets.symbols import market_of
from datasets.synthetic import _synthetic_source
from datasets.testing import write_fixture_instruments
from datasets.validate import ROW

SOURCE = "synthetic://datasets.synthetic_liquidations"
QUANTITY_PLACES = 3


@dataclass(frozen=True, slots=True)
class CascadeSpec:
    """What to generate.

    Attributes
    ----------
    venue, symbol : str
        The perp (canonical symbol, ``BTC-USDT-PERP``).
    start : datetime
        Open time of the first bar (UTC, on the interval's grid).
    bars : int
        Number of bars.
    interval : str
        Bar interval (``15m``).
    first_price : str
        Open of the first bar.
    tick : str
        Price increment every price is a multiple of.
    volatility : float
        Standard deviation of a calm bar's log return.
    cascade_probability : float
        Chance that a calm bar starts a cascade.
    cascade_move_pct : tuple[float, float]
        Range of a cascade bar's move, percent.
    seed : int
        Same seed, same frames.
    """

    venue: str = "binance"
    symbol: str = "BTC-USDT-PERP"
    start: datetime = datetime(2024, 1, 1, tzinfo=UTC)
    bars: int = 96 * 7
    interval: str = "15m"
    first_price: str = "60000"
    tick: str = "0.1"
    volatility: float = 0.002
    cascade_probability: float = 0.02
    cascade_move_pct: tuple[float, float] = (1.5, 4.0)
    seed: int = 11


def synthetic_cascades(spec: CascadeSpec) -> dict[str, pl.DataFrame]:
    """Return ``{"ohlcv": bars, "liquidations": rows}`` of ``spec`` as store batches (with ``_row``)."""
    rng = np.random.default_rng(spec.seed)
    tick = Decimal(spec.tick)
    step_ns = interval_secs(spec.interval) * 1_000_000_000
    price = Decimal(spec.first_price)
    bars: list[tuple[datetime, Decimal, Decimal, Decimal, Decimal, Decimal]] = []
    liquidations: list[tuple[datetime, str, Decimal, Decimal]] = []
    rebound: list[float] = []  # returns still to come after a cascade
    for index in range(spec.bars):
        opened = spec.start + timedelta(microseconds=index * step_ns // 1000)
        side = None
        if rebound:
            move = rebound.pop(0)
        elif rng.random() < spec.cascade_probability:
            side = "long" if rng.random() < 0.5 else "short"
            size = rng.uniform(*spec.cascade_move_pct) / 100
            move = -size if side == "long" else size
            rebound = [-move * rng.uniform(0.2, 0.5), -move * rng.uniform(0.0, 0.3)]
        else:
            move = rng.normal(0.0, spec.volatility)
        open_ = price
        close = _on_tick(open_ * Decimal(str(float(np.exp(move)))), tick)
        wick = Decimal(str(abs(float(rng.normal(0.0, spec.volatility / 2))) + (abs(move) / 4 if side else 0.0)))
        high = _on_tick(max(open_, close) * (1 + (Decimal(0) if side == "long" else wick)), tick, up=True)
        low = _on_tick(min(open_, close) * (1 - (Decimal(0) if side == "short" else wick)), tick)
        volume = Decimal(str(round(float(rng.gamma(2.0, 5.0)) * (5 if side else 1), 3)))
        bars.append((opened, open_, high, low, close, volume))
        liquidations.extend(_bar_liquidations(rng, opened, step_ns, open_, high, low, side, tick))
        price = close
    return {"ohlcv": _ohlcv_frame(spec, bars), "liquidations": _liquidation_frame(spec, liquidations)}


def write_synthetic_cascades(store: Store, spec: CascadeSpec | None = None) -> dict[str, WriteSummary]:
    """Generate ``spec`` (default: a week of 15-minute Binance BTC perp bars) and write it through ``Store.write``.

    Raises
    ------
    ValidationError, ConflictError
        From the store, if the generated rows break an invariant or clash with stored rows.
    """
    spec = spec or CascadeSpec()
    info = _synthetic_source(f"{SOURCE}?seed={spec.seed}&venue={spec.venue}&symbol={spec.symbol}&bars={spec.bars}")
    written = {kind: store.write(kind, frame, info) for kind, frame in synthetic_cascades(spec).items()}
    # The instrument specs: the hand-typed fixture table (datasets.testing), so the store exports as it is.
    written["instruments"] = write_fixture_instruments(store)
    return written


def _on_tick(value: Decimal, tick: Decimal, *, up: bool = False) -> Decimal:
    return (value / tick).to_integral_value(rounding="ROUND_CEILING" if up else "ROUND_FLOOR") * tick


def _bar_liquidations(
    rng: np.random.Generator,
    opened: datetime,
    step_ns: int,
    open_: Decimal,
    high: Decimal,
    low: Decimal,
    side: str | None,
    tick: Decimal,
) -> list[tuple[datetime, str, Decimal, Decimal]]:
    count = int(rng.poisson(30)) + 10 if side else int(rng.poisson(1.0))
    offsets = np.sort(rng.integers(0, step_ns // 1000, count))  # microseconds into the bar
    rows = []
    for offset in offsets:
        ts = opened + timedelta(microseconds=int(offset))
        if side:
            extreme = low if side == "long" else high
            progress = Decimal(int(offset)) / Decimal(step_ns // 1000)
            price = _on_tick(open_ + (extreme - open_) * progress, tick)
            notional = float(rng.lognormal(9.5, 1.0))  # median ~13k USD
            liquidated = side
        else:
            price = _on_tick(low + (high - low) * Decimal(str(round(float(rng.random()), 6))), tick)
            notional = float(rng.lognormal(7.0, 1.0))  # median ~1.1k USD
            liquidated = "long" if rng.random() < 0.5 else "short"
        price = min(max(price, low), high)
        quantity = max(Decimal(str(round(notional / float(price), QUANTITY_PLACES))), Decimal("0.001"))
        rows.append((ts, liquidated, price, quantity))
    return rows


def _ohlcv_frame(
    spec: CascadeSpec, bars: list[tuple[datetime, Decimal, Decimal, Decimal, Decimal, Decimal]]
) -> pl.DataFrame:
    names = ("open", "high", "low", "close", "volume")
    frame = pl.DataFrame(
        {"ts": [b[0] for b in bars], **{name: [str(b[i + 1]) for b in bars] for i, name in enumerate(names)}},
        schema={"ts": pl.Datetime("ns", "UTC"), **dict.fromkeys(names, pl.String)},
    )
    return (
        frame.with_columns(pl.col(name).cast(PL_DECIMAL) for name in names)
        .with_columns(
            venue=pl.lit(spec.venue),
            symbol=pl.lit(spec.symbol),
            market=pl.lit(market_of(spec.symbol)),
            price_type=pl.lit("trade"),
            interval=pl.lit(spec.interval),
        )
        .select(OHLCV.columns)
        .with_row_index(ROW)
        .with_columns(pl.col(ROW).cast(pl.Int64))
        .select(*OHLCV.columns, ROW)
    )


def _liquidation_frame(spec: CascadeSpec, rows: list[tuple[datetime, str, Decimal, Decimal]]) -> pl.DataFrame:
    schema = LIQUIDATIONS.polars_schema
    frame = (
        pl.DataFrame(
            {
                "ts": [r[0] for r in rows],
                "side": [r[1] for r in rows],
                "price": [str(r[2]) for r in rows],
                "quantity": [str(r[3]) for r in rows],
                "notional_usd": [str(r[2] * r[3]) for r in rows],
            },
            schema={
                "ts": pl.Datetime("ns", "UTC"),
                "side": pl.String,
                "price": pl.String,
                "quantity": pl.String,
                "notional_usd": pl.String,
            },
        )
        .with_columns(pl.col(name).cast(schema[name]) for name in ("price", "quantity", "notional_usd"))
        .with_columns(
            venue=pl.lit(spec.venue),
            symbol=pl.lit(spec.symbol),
            market=pl.lit(market_of(spec.symbol)),
            protocol=pl.lit(None, dtype=pl.String),
            account=pl.lit(None, dtype=pl.String),
            liquidator=pl.lit(None, dtype=pl.String),
            order_id=pl.lit(None, dtype=pl.String),
            tx_signature=pl.lit(None, dtype=pl.String),
            source=pl.lit(SOURCE),
        )
    )
    frame = frame.with_columns(event_ids(frame, ID_FIELDS))
    frame = frame.select(LIQUIDATIONS.columns).with_row_index(ROW).with_columns(pl.col(ROW).cast(pl.Int64))
    return frame.select(*LIQUIDATIONS.columns, ROW)
