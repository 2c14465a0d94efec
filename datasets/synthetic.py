"""Seeded SYNTHETIC market data in the canonical schemas: for demos and tests, never for research.

``synthetic_frames`` builds hourly spot, perp and mark bars plus funding settlements for a few bases on
Binance (8-hourly funding, spot + perp) and Hyperliquid (hourly funding, perp only). Prices follow a
geometric random walk with regime-switching volatility; each perp trades at a premium to spot that
mean-reverts around a funding regime (a hidden Markov chain: euphoric, normal, bearish), and every
settlement's rate is the average premium over its interval, clamped like venues do. The same seed
always gives the same frames, byte for byte. Every batch written by ``write_synthetic_store`` carries
``synthetic://`` lineage so nobody mistakes it for recorded data.

``synthetic_bars`` builds one long series of OHLCV bars (a seeded geometric random walk on a price tick)
for benchmarks; write it with ``SYNTHETIC_SOURCE``, the ``synthetic://`` lineage of such batches.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import numpy as np
import polars as pl

from datasets.numeric import decimal_from_float
from datasets.schemas import FUNDING, OHLCV, PL_DECIMAL, interval_secs
from datasets.store import SourceInfo, Store, WriteSummary
from datasets.symbols import market_of
from datasets.testing import write_fixture_instruments
from datasets.validate import ROW

SYNTHETIC_VERSION = "1"
HOUR = timedelta(hours=1)
# Regimes of the funding premium: (mean premium per 8 h, stickiness per hour).
REGIMES = {"euphoric": (0.00035, 0.995), "normal": (0.0001, 0.997), "bearish": (-0.00008, 0.99)}
START_PRICES = {"BTC": 42_000.0, "ETH": 2_300.0, "SOL": 100.0}
PRICE_DECIMALS = {"BTC": 1, "ETH": 2, "SOL": 3}


@dataclass(frozen=True, slots=True)
class SyntheticSpec:
    """What to generate.

    Attributes
    ----------
    start : datetime
        First bar close (UTC, on the hour).
    hours : int
        Number of hourly bars per series.
    bases : tuple[str, ...]
        Base assets (``BTC``, ``ETH``, ``SOL``).
    seed : int
        Seed of the generator: same seed, same frames.
    """

    start: datetime = datetime(2024, 1, 1, tzinfo=UTC)
    hours: int = 24 * 91
    bases: tuple[str, ...] = ("BTC", "ETH")
    seed: int = 7

    def source(self) -> str:
        bases = "+".join(self.bases)
        return f"synthetic://datasets.synthetic?seed={self.seed}&start={self.start:%Y-%m-%d}&hours={self.hours}&bases={bases}"


def synthetic_frames(spec: SyntheticSpec) -> dict[str, pl.DataFrame]:
    """Return canonical ``ohlcv`` and ``funding`` frames (with ``_row``) for ``spec``.

    Raises
    ------
    ValueError
        If ``start`` is not a whole UTC hour, ``hours`` < 24, or a base has no starting price.
    """
    if spec.start.tzinfo is None or spec.start.minute or spec.start.second or spec.start.microsecond:
        raise ValueError(f"start must be a whole UTC hour, was {spec.start.isoformat()}")
    if spec.hours < 24:
        raise ValueError(f"hours must be at least 24, was {spec.hours}")
    unknown = [b for b in spec.bases if b not in START_PRICES]
    if unknown:
        raise ValueError(f"no starting price for {unknown}: known bases are {', '.join(START_PRICES)}")
    rng = np.random.default_rng(spec.seed)
    times = [spec.start + i * HOUR for i in range(spec.hours)]
    ohlcv: list[pl.DataFrame] = []
    funding: list[pl.DataFrame] = []
    for base in spec.bases:
        spot = _price_path(rng, START_PRICES[base], spec.hours)
        premium_8h = _premium_path(rng, spec.hours)
        decimals = PRICE_DECIMALS[base]
        # Binance: spot + USDT perp, 8-hourly funding. Hyperliquid: USDC perp, hourly funding, own premium.
        binance_perp = spot * (1 + premium_8h * 3)
        hyper_premium = premium_8h * 1.1 + rng.normal(0, 0.00002, spec.hours)
        hyper_perp = spot * (1 + hyper_premium * 3)
        ohlcv.append(_bars(rng, times, spot, "binance", f"{base}-USDT", "spot", "trade", decimals))
        ohlcv.append(_bars(rng, times, binance_perp, "binance", f"{base}-USDT-PERP", "perp", "trade", decimals))
        ohlcv.append(
            _bars(rng, times, binance_perp * (1 - 0.00005), "binance", f"{base}-USDT-PERP", "perp", "mark", decimals)
        )
        ohlcv.append(_bars(rng, times, hyper_perp, "hyperliquid", f"{base}-USDC-PERP", "perp", "trade", decimals))
        ohlcv.append(
            _bars(rng, times, hyper_perp * (1 - 0.00003), "hyperliquid", f"{base}-USDC-PERP", "perp", "mark", decimals)
        )
        funding.append(_funding(times, premium_8h, binance_perp, "binance", f"{base}-USDT-PERP", 8, decimals))
        funding.append(_funding(times, hyper_premium / 8, hyper_perp, "hyperliquid", f"{base}-USDC-PERP", 1, decimals))
    return {
        "ohlcv": pl.concat(ohlcv).with_row_index("_row").with_columns(pl.col("_row").cast(pl.Int64)),
        "funding": pl.concat(funding).with_row_index("_row").with_columns(pl.col("_row").cast(pl.Int64)),
    }


def write_synthetic_store(store: Store, spec: SyntheticSpec | None = None) -> dict[str, WriteSummary]:
    """Generate ``spec`` (default: BTC and ETH, 2024-01-01, 91 days) and write it through ``Store.write``.

    The store also gets the fixture instrument specs (``datasets.testing.write_fixture_instruments``), so
    it exports to a catalog as it is.

    Raises
    ------
    ValidationError, ConflictError
        From the store, if the generated rows break an invariant or clash with stored rows.
    """
    spec = spec or SyntheticSpec()
    info = _synthetic_source(spec.source())
    frames = synthetic_frames(spec)
    written = {kind: store.write(kind, frame, info) for kind, frame in frames.items()}
    # The instruments of the synthetic symbols: the hand-typed fixture table (datasets.testing).
    written["instruments"] = write_fixture_instruments(store)
    return written


def synthetic_bars(
    n_bars: int,
    *,
    venue: str,
    symbol: str,
    start: datetime,
    interval: str = "1m",
    price_type: str = "trade",
    first_price: float = 30_000.0,
    volatility: float = 0.0005,
    tick: str = "0.01",
    seed: int = 42,
) -> pl.DataFrame:
    """Return ``n_bars`` consecutive OHLCV rows of a seeded geometric random walk, as a store batch.

    Prices are multiples of ``tick``, volumes have three decimals; high and low enclose open and close.
    """
    rng = np.random.default_rng(seed)
    closes = first_price * np.exp(np.cumsum(rng.normal(0.0, volatility, n_bars)))
    opens = np.concatenate(([first_price], closes[:-1]))
    wick = np.abs(rng.normal(0.0, volatility / 2, (2, n_bars))) * closes
    highs = np.maximum(opens, closes) + wick[0]
    lows = np.minimum(opens, closes) - wick[1]
    volumes = rng.gamma(2.0, 5.0, n_bars)
    last = start + timedelta(seconds=interval_secs(interval) * (n_bars - 1))
    ts = pl.datetime_range(start, last, interval, eager=True, time_unit="ns").cast(pl.Datetime("ns", "UTC"))

    step = float(tick)
    places = max(0, -Decimal(tick).as_tuple().exponent)  # type: ignore[operator]

    def on_tick(values: np.ndarray) -> pl.Series:
        return pl.Series(np.round(np.round(values / step) * step, places)).cast(pl.String).cast(PL_DECIMAL)

    frame = pl.DataFrame(
        {
            "venue": venue,
            "symbol": symbol,
            "market": market_of(symbol),
            "price_type": price_type,
            "interval": interval,
            "ts": ts,
            "open": on_tick(opens),
            "high": on_tick(np.maximum(highs, step)),
            "low": on_tick(np.maximum(lows, step)),
            "close": on_tick(closes),
            "volume": pl.Series(np.round(volumes, 3)).cast(pl.String).cast(PL_DECIMAL),
        }
    )
    return frame.with_row_index(ROW).with_columns(pl.col(ROW).cast(pl.Int64)).select(*OHLCV.columns, ROW)


def _synthetic_source(source: str) -> SourceInfo:
    return SourceInfo(
        source=source,
        sha256=hashlib.sha256(source.encode()).hexdigest(),
        importer="datasets.synthetic",
        importer_version=SYNTHETIC_VERSION,
        extra=(("synthetic", "true"),),
    )


SYNTHETIC_SOURCE = _synthetic_source("synthetic://datasets.synthetic.synthetic_bars")


def has_store(root: Path) -> bool:
    """Return True when ``root`` holds any canonical ohlcv partition."""
    return any((root / "ohlcv").glob("**/data.parquet"))


def _price_path(rng: np.random.Generator, start: float, hours: int) -> np.ndarray:
    # Hourly log returns with volatility regimes (calm ~35%/yr, stressed ~90%/yr) and a slight drift.
    stressed = np.zeros(hours, dtype=bool)
    state = False
    for i in range(hours):
        if rng.random() < (0.02 if state else 0.004):
            state = not state
        stressed[i] = state
    sigma = np.where(stressed, 0.0096, 0.0037)
    returns = rng.normal(0.00002, 1.0, hours) * sigma
    return start * np.exp(np.cumsum(returns))


def _premium_path(rng: np.random.Generator, hours: int) -> np.ndarray:
    names = list(REGIMES)
    regime = "normal"
    premium = np.empty(hours)
    value = REGIMES[regime][0]
    for i in range(hours):
        mean, stickiness = REGIMES[regime]
        if rng.random() > stickiness:
            regime = names[int(rng.integers(len(names)))]
        value += 0.08 * (mean - value) + rng.normal(0, 0.00004)
        premium[i] = value
    return premium


def _bars(
    rng: np.random.Generator,
    times: list[datetime],
    close: np.ndarray,
    venue: str,
    symbol: str,
    market: str,
    price_type: str,
    decimals: int,
) -> pl.DataFrame:
    scale = 10.0**decimals
    close = np.round(close, decimals)
    open_ = np.round(np.concatenate([[close[0]], close[:-1]]), decimals)
    wiggle = np.abs(rng.normal(0, 0.002, len(close)))
    high = np.ceil(np.maximum(open_, close) * (1 + wiggle) * scale) / scale
    low = np.floor(np.minimum(open_, close) * (1 - np.abs(rng.normal(0, 0.002, len(close)))) * scale) / scale
    volume = np.round(rng.lognormal(3.0, 0.6, len(close)), 3) if price_type == "trade" else np.zeros(len(close))
    return (
        pl.DataFrame(
            {
                "venue": venue,
                "symbol": symbol,
                "market": market,
                "price_type": price_type,
                "interval": "1h",
                "ts": pl.Series(times, dtype=pl.Datetime("ns", "UTC")),
                "open": open_,
                "high": high,
                "low": low,
                "close": close,
                "volume": volume,
            }
        )
        .with_columns(decimal_from_float(pl.col(c)).alias(c) for c in ("open", "high", "low", "close", "volume"))
        .select(OHLCV.columns)
    )


def _funding(
    times: list[datetime],
    premium: np.ndarray,
    perp_close: np.ndarray,
    venue: str,
    symbol: str,
    every_hours: int,
    decimals: int,
) -> pl.DataFrame:
    rows_ts, rates, marks = [], [], []
    for i, ts in enumerate(times):
        if ts.hour % every_hours or i < every_hours:
            continue
        window = premium[i - every_hours + 1 : i + 1]
        rate = float(np.clip(window.mean(), -0.0075, 0.0075))
        rows_ts.append(ts)
        rates.append(round(rate, 8))
        marks.append(round(float(perp_close[i]) * (1 - 0.00005), decimals))
    frame = pl.DataFrame(
        {
            "venue": venue,
            "symbol": symbol,
            "ts": pl.Series(rows_ts, dtype=pl.Datetime("ns", "UTC")),
            "rate": rates,
            "interval": f"{every_hours}h",
            "mark_price": marks,
        }
    )
    nothing = pl.lit(None, dtype=FUNDING.polars_schema["rate"])
    return frame.with_columns(
        decimal_from_float(pl.col("rate")).alias("rate"),
        decimal_from_float(pl.col("mark_price")).alias("mark_price"),
        nothing.alias("index_price"),
        nothing.alias("premium"),
    ).select(FUNDING.columns)
