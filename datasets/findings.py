"""Pure kernels of the soft checks: a frame of series in, a findings frame out.

A soft finding is something a careful user wants to know before trusting a series (a gap, a listing
placeholder, a spike, a frozen feed) but that breaks no hard invariant, so the store accepted it.

Every kernel takes one or more series in canonical columns and the key columns ``by`` that tell
series apart (``BAR_SERIES`` for OHLCV: venue, symbol, price type and interval; ``FUNDING_SERIES`` for
funding: venue and symbol). The rows of each series must be contiguous and sorted by ``ts`` (sort by
``[*by, "ts"]``); ``by=()`` treats the whole frame as one series. Bars read ``interval`` and ``price_type``
from their rows, settlements their ``interval``. Value columns may be the store's decimals or
float64 (checks are research vectors: ``datasets.check`` reads float64, which is also much faster);
equality tests compare values as given.

Every kernel returns a lazy frame of the ``by`` columns then ``FINDING_SCHEMA``: ``code``,
``severity``, ``ts_start``, ``ts_end``, ``count`` and a ``message`` saying what was expected and what
was found. Kernels work on all series at once with window expressions (one query plan per kernel,
not one per series), so checking ~925k bars takes a second or two.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import polars as pl

Code = Literal["gap", "known_gap", "interval_change", "placeholder", "outlier", "over_cap", "stale"]
Severity = Literal["warning", "info"]

CODES: tuple[Code, ...] = ("gap", "known_gap", "interval_change", "placeholder", "outlier", "over_cap", "stale")
SEVERITIES: tuple[Severity, ...] = ("warning", "info")

BAR_SERIES = ("venue", "symbol", "price_type", "interval")
FUNDING_SERIES = ("venue", "symbol")

TS = pl.Datetime("ns", "UTC")
FINDING_SCHEMA = pl.Schema(
    {
        "code": pl.String(),
        "severity": pl.String(),
        "ts_start": TS,
        "ts_end": TS,
        "count": pl.Int64(),
        "message": pl.String(),
    }
)

# Defaults, chosen against the shared real data; the reasons are in each kernel's docstring.
OUTLIER_WINDOW_BARS = 25
OUTLIER_MADS = 15.0
OUTLIER_MIN_LOG_DEVIATION = 0.05
MAX_FUNDING_RATE_PER_HOUR = 0.01
STALE_MIN_BARS = 6
STALE_MIN_SETTLEMENTS = 3
PLACEHOLDER_VOLUME_RATIO = 0.001
PLACEHOLDER_MIN_FLAT_BARS = 2
FUNDING_LATE_FRACTION = 0.5

PLACEHOLDER = "_placeholder"
SERIES_ID = "_series_id"
_TIME_FORMAT = "%Y-%m-%d %H:%M"
_UNIT_SECS = {"m": 60, "h": 3_600, "d": 86_400, "w": 604_800}


def find_bar_gaps(bars: pl.LazyFrame, *, by: Sequence[str] = BAR_SERIES) -> pl.LazyFrame:
    """Report every run of missing bars.

    ``ts`` is the bar open time, so bars sit exactly one ``interval`` apart. Where two neighbours are
    further apart, the bars expected at ``previous + k * interval`` before the next bar are missing:
    one finding per gap, ``ts_start``/``ts_end`` the first and last missing bar, ``count`` their
    number. Gaps are never merged, however close together.
    """
    return _gaps(bars, by, noun="bar", late_fraction=0.0)


def find_funding_gaps(
    funding: pl.LazyFrame, *, by: Sequence[str] = FUNDING_SERIES, late_fraction: float = FUNDING_LATE_FRACTION
) -> pl.LazyFrame:
    """Report every run of missing settlements.

    A settlement is expected one funding interval (the row's ``interval``) after the previous one, at
    ``previous + k * interval``. Venues sometimes settle late (Hyperliquid: 08:24 instead of 08:00,
    23:02 instead of 23:00), so a slot counts as missing only when no settlement arrived within
    ``late_fraction`` of an interval after it (default one half). Rows whose interval is unknown
    (null) are not judged. One finding per gap, as in ``find_bar_gaps``.

    Raises
    ------
    ValueError
        If ``late_fraction`` is not in [0, 1).
    """
    if not 0 <= late_fraction < 1:
        raise ValueError(f"late_fraction must be in [0, 1), was {late_fraction}")
    return _gaps(funding, by, noun="settlement", late_fraction=late_fraction)


def _gaps(frame: pl.LazyFrame, by: Sequence[str], *, noun: str, late_fraction: float) -> pl.LazyFrame:
    spacing_ns = _over(pl.col("ts").diff()).dt.total_nanoseconds()
    expected_ns = _label_secs(pl.col("interval")) * 1_000_000_000
    grace_ns = (expected_ns.cast(pl.Float64) * late_fraction).cast(pl.Int64)
    # Slots k >= 1 whose grace period ended before the next row: ceil((spacing - grace) / expected) - 1.
    missing = (spacing_ns - grace_ns + expected_ns - 1) // expected_ns - 1
    gaps = (
        _identify(frame, by)
        .select(
            *_columns(by, "ts", "interval"),
            _over(pl.col("ts").shift()).alias("_previous"),
            expected_ns.alias("_expected_ns"),
            missing.alias("_missing"),
        )
        .filter(pl.col("_missing") >= 1)
        .with_columns(
            _first=_plus_ns(pl.col("_previous"), pl.col("_expected_ns")),
            _last=_plus_ns(pl.col("_previous"), pl.col("_expected_ns") * pl.col("_missing")),
        )
    )
    which = (
        pl.when(pl.col("_missing") == 1)
        .then(_format("1 missing at {}", _fmt(pl.col("_first"))))
        .otherwise(
            _format("{} missing from {} to {}", pl.col("_missing"), _fmt(pl.col("_first")), _fmt(pl.col("_last")))
        )
    )
    message = _format(
        f"expected a {noun} every {{}}; found {{}} (last {noun} before at {{}}, next at {{}})",
        pl.col("interval"),
        which,
        _fmt(pl.col("_previous")),
        _fmt(pl.col("ts")),
    )
    return _findings(gaps, by, "gap", "warning", pl.col("_first"), pl.col("_last"), pl.col("_missing"), message)


def find_interval_changes(funding: pl.LazyFrame, *, by: Sequence[str] = FUNDING_SERIES) -> pl.LazyFrame:
    """Report every change of the funding interval.

    A change is a settlement whose ``interval`` differs from the last known interval before it (rows
    with an unknown interval are skipped). ``ts_start`` = ``ts_end`` = the first settlement on the
    new clock; the message names the old and new interval and the last settlement on the old clock.
    """
    changes = (
        _identify(funding, by)
        .select(_columns(by, SERIES_ID, "ts", "interval"))
        .filter(pl.col("interval").is_not_null())
        .with_columns(
            _old=_over(pl.col("interval").shift()),
            _previous=_over(pl.col("ts").shift()),
        )
        .filter(pl.col("_old").is_not_null() & (pl.col("interval") != pl.col("_old")))
    )
    message = _format(
        "expected one funding interval; found a change from {} to {} at {} (last {} settlement at {})",
        pl.col("_old"),
        pl.col("interval"),
        _fmt(pl.col("ts")),
        pl.col("_old"),
        _fmt(pl.col("_previous")),
    )
    return _findings(changes, by, "interval_change", "info", pl.col("ts"), pl.col("ts"), pl.lit(1), message)


def mark_placeholders(
    bars: pl.LazyFrame,
    *,
    by: Sequence[str] = BAR_SERIES,
    volume_ratio: float = PLACEHOLDER_VOLUME_RATIO,
    min_flat_bars: int = PLACEHOLDER_MIN_FLAT_BARS,
) -> pl.LazyFrame:
    """Add a boolean ``_placeholder`` column marking the listing-placeholder bars at the start of each series.

    Exchanges often publish a few bars before trading really opens: Binance's BTC perp starts on
    2019-09-08 17:00 with two bars flat at 10000.0 and volume 0.002 and 0; its ETH perp starts with
    three bars of 0.01, 0.08 and 0 ETH against a median of ~95,000 ETH an hour. The rule, per series:

    * a bar is *untraded* when the series is a traded price (``price_type`` = ``"trade"``; the volume
      of mark and index bars means nothing), some bar has volume > 0, and this bar's volume is null or
      at most ``volume_ratio`` times the median volume of the bars with volume > 0;
    * a bar is *flat at the opening price* when open = high = low = close = the first bar's open.

    The placeholder bars are the longest prefix of the series made of untraded bars, or the longest
    prefix made of flat-at-the-opening-price bars when it holds at least ``min_flat_bars`` bars and
    either the series has no meaningful volume or the opening price is round (at most two
    significant digits, like 10000 or 2.5), whichever prefix is longer. Bars after the first real
    bar are never placeholders, whatever they look like.
    """
    volume = pl.col("volume").cast(pl.Float64)
    traded = pl.col("price_type") == "trade"
    has_volume = traded & _over((volume > 0).any())
    median_volume = _over(volume.filter(volume > 0).median())
    untraded = has_volume & (volume.is_null() | (volume <= volume_ratio * median_volume))
    first_open = _over(pl.col("open").first())
    flat = pl.all_horizontal([pl.col(name) == first_open for name in ("open", "high", "low", "close")])
    opening = first_open.cast(pl.Float64)
    scaled = opening / pl.lit(10.0).pow(opening.log10().floor() - 1)
    round_price = (scaled - scaled.round()).abs() < 1e-9
    return (
        _identify(bars, by)
        .with_columns(_untraded=untraded, _flat=flat, _round=~has_volume | round_price)
        .with_columns(_untraded=_prefix(pl.col("_untraded")), _flat=_prefix(pl.col("_flat")))
        .with_columns(
            (
                pl.col("_untraded")
                | (pl.col("_flat") & pl.col("_round") & (_over(pl.col("_flat").sum()) >= min_flat_bars))
            ).alias(PLACEHOLDER)
        )
        .drop("_untraded", "_flat", "_round", SERIES_ID)
    )


def _prefix(condition: pl.Expr) -> pl.Expr:
    return _over((~condition.fill_null(False)).cast(pl.Int64).cum_sum()) == 0


def find_placeholders(
    bars: pl.LazyFrame,
    *,
    by: Sequence[str] = BAR_SERIES,
    volume_ratio: float = PLACEHOLDER_VOLUME_RATIO,
    min_flat_bars: int = PLACEHOLDER_MIN_FLAT_BARS,
) -> pl.LazyFrame:
    """Report the listing-placeholder bars at the start of each series (rule in ``mark_placeholders``).

    At most one finding per series: ``ts_start``/``ts_end`` the first and last placeholder bar,
    ``count`` their number.
    """
    marked = mark_placeholders(bars, by=by, volume_ratio=volume_ratio, min_flat_bars=min_flat_bars)
    return placeholder_findings(marked, by=by)


def placeholder_findings(marked: pl.LazyFrame, *, by: Sequence[str] = BAR_SERIES) -> pl.LazyFrame:
    """Report the bars a ``mark_placeholders`` frame marks, as ``find_placeholders`` does."""
    hit = pl.col(PLACEHOLDER)
    volume = pl.col("volume").cast(pl.Float64)
    aggregates = [
        pl.col("ts").filter(hit).first().alias("_first"),
        pl.col("ts").filter(hit).last().alias("_last"),
        hit.sum().cast(pl.Int64).alias("_n"),
        pl.col("open").cast(pl.Float64).first().alias("_opening"),
        pl.col("close").filter(hit).n_unique().alias("_prices"),
        volume.filter(hit).max().alias("_max_volume"),
        volume.filter(~hit & (volume > 0)).median().alias("_median_volume"),
        pl.col("ts").filter(~hit).first().alias("_real"),
    ]
    summary = (
        _identify(marked, by)
        .group_by(SERIES_ID, maintain_order=True)
        .agg(*(pl.col(name).first() for name in by), *aggregates)
        .filter(pl.col("_n") > 0)
    )
    volumes = (
        pl.when(pl.col("_max_volume").is_null())
        .then(pl.lit("volume unknown"))
        .when(pl.col("_median_volume").is_null())
        .then(_format("volume at most {}", pl.col("_max_volume")))
        .otherwise(
            _format("volume at most {} against a median of {}", pl.col("_max_volume"), _round(pl.col("_median_volume")))
        )
    )
    message = _format(
        "expected traded prices from the first bar; found {} listing-placeholder bar(s) from {} to {} "
        "(opening at {}, {} distinct close(s), {}); first real bar at {}: drop them before use",
        pl.col("_n"),
        _fmt(pl.col("_first")),
        _fmt(pl.col("_last")),
        pl.col("_opening"),
        pl.col("_prices"),
        volumes,
        pl.coalesce(_fmt(pl.col("_real")), pl.lit("none")),
    )
    return _findings(summary, by, "placeholder", "warning", pl.col("_first"), pl.col("_last"), pl.col("_n"), message)


def find_price_outliers(
    bars: pl.LazyFrame,
    *,
    by: Sequence[str] = BAR_SERIES,
    window_bars: int = OUTLIER_WINDOW_BARS,
    mads: float = OUTLIER_MADS,
    min_log_deviation: float = OUTLIER_MIN_LOG_DEVIATION,
) -> pl.LazyFrame:
    """Report bars whose close departs from its neighbourhood: a Hampel filter on log prices.

    For each bar, ``d = ln(close) - median(ln(close))`` over a centred window of ``window_bars`` bars
    (made odd by adding one if needed; half a window and more at the ends of a series), and ``MAD``
    = the centred rolling median of ``|d|`` (each deviation taken from its own window's median: a
    cheap, close stand-in for the textbook per-window MAD). A bar is an outlier when
    ``|d| > mads * MAD`` and ``|d| > min_log_deviation``.

    Why this and not a fixed log-return threshold: a centred median follows a level shift that
    persists (a real crash moves the median with it within half a window), so only transient
    departures are flagged, such as a bad tick or a one-bar wick in the close; a return threshold
    flags every genuine crash bar, flags a bad tick twice (out and back) and misses a 10% bad tick in
    a calm week. The MAD makes the threshold follow the series' own volatility (1m and 1d bars need
    no separate settings), and ``min_log_deviation`` keeps a collapsed MAD (a flat, coarse-tick or
    untraded stretch) from turning 0.1% moves into findings. The defaults (25 bars, 15 MADs, 0.05)
    flag 28 of the ~925k bars of the shared freqtrade data, each a transient move of 5-23% (news
    spikes, flash crashes) that a user should see before trusting a backtest across it.

    Raises
    ------
    ValueError
        If ``window_bars`` < 3, or ``mads`` or ``min_log_deviation`` is negative.
    """
    if window_bars < 3:
        raise ValueError(f"window_bars must be at least 3, was {window_bars}")
    if mads < 0 or min_log_deviation < 0:
        raise ValueError(f"mads and min_log_deviation must be >= 0, were {mads} and {min_log_deviation}")
    size = window_bars // 2 * 2 + 1
    log_close = pl.col("close").cast(pl.Float64).log()
    median = _over(log_close.rolling_median(size, min_samples=size // 2 + 1, center=True))
    scored = (
        _identify(bars, by)
        .select(
            *by, SERIES_ID, "ts", pl.col("close").cast(pl.Float64), (log_close - median).alias("_d"), median.alias("_m")
        )
        .with_columns(_mad=_over(pl.col("_d").abs().rolling_median(size, min_samples=size // 2 + 1, center=True)))
        .filter((pl.col("_d").abs() > mads * pl.col("_mad")) & (pl.col("_d").abs() > min_log_deviation))
    )
    message = _format(
        "expected a close within {} MADs and {} log points of the {}-bar median {}; found {} ({}%, {} MADs of {}%)",
        pl.lit(mads),
        pl.lit(min_log_deviation),
        pl.lit(size),
        _round(pl.col("_m").exp()),
        pl.col("close"),
        _signed_pct(pl.col("_d").exp() - 1),
        pl.when(pl.col("_mad") > 0)
        .then((pl.col("_d").abs() / pl.col("_mad")).round(1).cast(pl.String))
        .otherwise(pl.lit("inf")),
        (pl.col("_mad") * 100).round(3),
    )
    return _findings(scored, by, "outlier", "warning", pl.col("ts"), pl.col("ts"), pl.lit(1), message)


def find_rate_outliers(
    funding: pl.LazyFrame, *, by: Sequence[str] = FUNDING_SERIES, max_rate_per_hour: float = MAX_FUNDING_RATE_PER_HOUR
) -> pl.LazyFrame:
    """Report funding rates beyond a plausibility bound, per hour of their interval.

    A rate paid every ``interval`` is compared as ``|rate| * 3600 / interval_secs`` with
    ``max_rate_per_hour`` (default 1% an hour, i.e. 8% per 8h settlement: beyond the clamps venues
    apply to majors, so a breach is most likely a unit or scaling error, such as a percentage stored
    as a fraction). Rows with an unknown interval are not judged.

    Raises
    ------
    ValueError
        If ``max_rate_per_hour`` is not positive.
    """
    if max_rate_per_hour <= 0:
        raise ValueError(f"max_rate_per_hour must be > 0, was {max_rate_per_hour}")
    rate = pl.col("rate").cast(pl.Float64)
    hourly = rate * 3_600 / _label_secs(pl.col("interval"))
    hits = funding.select(*_columns(by, "ts", "interval"), rate.alias("_rate"), hourly.alias("_hourly")).filter(
        pl.col("_hourly").abs() > max_rate_per_hour
    )
    message = _format(
        "expected |funding rate| <= {}% per hour; found {} per {} settlement ({}% per hour)",
        pl.lit(round(max_rate_per_hour * 100, 6)),
        pl.col("_rate"),
        pl.col("interval"),
        (pl.col("_hourly") * 100).round(4),
    )
    return _findings(hits, by, "outlier", "warning", pl.col("ts"), pl.col("ts"), pl.lit(1), message)


def find_over_cap_rates(
    funding: pl.LazyFrame, caps: dict[tuple[str, str], float], *, by: Sequence[str] = FUNDING_SERIES
) -> pl.LazyFrame:
    """Report settlements whose ``|rate|`` exceeds the venue's published cap for their interval.

    ``caps`` maps ``(venue, interval)`` to the cap; rows of other pairs are not judged. Such rows reach
    the store only through ``import --allow-extreme``: this keeps them visible.
    """
    cap: pl.Expr = pl.lit(None, dtype=pl.Float64)
    for (venue, interval), value in caps.items():
        cap = pl.when((pl.col("venue") == venue) & (pl.col("interval") == interval)).then(value).otherwise(cap)
    rate = pl.col("rate").cast(pl.Float64)
    hits = funding.select(*_columns(by, "ts", "interval"), rate.alias("_rate"), cap.alias("_cap")).filter(
        pl.col("_rate").abs() > pl.col("_cap")
    )
    message = _format(
        "expected |funding rate| <= the venue's cap {} per {} settlement; found {} (imported with --allow-extreme)",
        pl.col("_cap"),
        pl.col("interval"),
        pl.col("_rate"),
    )
    return _findings(hits, by, "over_cap", "warning", pl.col("ts"), pl.col("ts"), pl.lit(1), message)


def find_stale_bars(
    bars: pl.LazyFrame, *, by: Sequence[str] = BAR_SERIES, min_bars: int = STALE_MIN_BARS
) -> pl.LazyFrame:
    """Report runs of at least ``min_bars`` consecutive bars with the same close.

    * trade prices (``price_type`` = ``"trade"``), warning: the close repeats on bars that all traded
      (volume > 0 or unknown), which a live market does not do: a frozen feed;
    * trade prices, info: bars without trades (volume = 0 and open = high = low = close, the same on
      every bar of the run): the venue was halted, or the downloader filled a gap with the last close;
    * mark and index prices (no meaningful volume), warning: a frozen price feed.

    Runs are over consecutive rows of a series; a missing bar inside a run is reported as a gap, not
    here. The default of 6 bars is above the longest traded run in ~925k real bars (4: SOL spot at a
    $0.01 tick in December 2022, and 1m/5m Hyperliquid bars at a $1 tick).

    Raises
    ------
    ValueError
        If ``min_bars`` < 2.
    """
    if min_bars < 2:
        raise ValueError(f"min_bars must be at least 2, was {min_bars}")
    volume = pl.col("volume").cast(pl.Float64)
    close = pl.col("close")
    traded = pl.col("price_type") == "trade"
    flat = (pl.col("open") == close) & (pl.col("high") == close) & (pl.col("low") == close)
    shown = {"_value": close.cast(pl.Float64)}
    frozen = _runs(bars, by, close, traded & (volume.is_null() | (volume > 0)), min_bars, **shown)
    quiet = _runs(bars, by, close, traded & (volume == 0) & flat, min_bars, **shown)
    frozen_mark = _runs(bars, by, close, ~traded, min_bars, **shown)
    return pl.concat(
        [
            _stale(frozen, by, "warning", "bars that all traded (volume > 0): a frozen feed"),
            _stale(quiet, by, "info", "bars without trades (volume 0): a venue halt or a filled gap"),
            _stale(frozen_mark, by, "warning", "bars: a frozen price feed"),
        ]
    )


def find_stale_funding(
    funding: pl.LazyFrame, *, by: Sequence[str] = FUNDING_SERIES, min_settlements: int = STALE_MIN_SETTLEMENTS
) -> pl.LazyFrame:
    """Report runs of at least ``min_settlements`` settlements repeating both the rate and the mark price.

    A repeated rate alone is no evidence: Binance clamps most settlements of calm markets to exactly
    0.0001 (0.01%), so runs of hundreds of identical rates are real. A feed that copies its last
    record forward repeats the mark price too, which a live market practically never does, so a run
    counts only where ``mark_price`` is present and equal along with ``rate``; series without mark
    prices (freqtrade funding files) are not judged.

    Raises
    ------
    ValueError
        If ``min_settlements`` < 2.
    """
    if min_settlements < 2:
        raise ValueError(f"min_settlements must be at least 2, was {min_settlements}")
    mark = pl.col("mark_price")
    shown = {"_rate": pl.col("rate").cast(pl.Float64), "_mark": mark.cast(pl.Float64)}
    runs = _runs(funding, by, pl.struct("rate", "mark_price"), mark.is_not_null(), min_settlements, **shown)
    message = _format(
        "expected the rate or mark price to change between settlements; found rate {} and mark price {} "
        "repeated on {} consecutive settlements: a stale feed",
        pl.col("_rate"),
        pl.col("_mark"),
        pl.col("_n"),
    )
    return _findings(runs, by, "stale", "warning", pl.col("_first"), pl.col("_last"), pl.col("_n"), message)


def _runs(
    frame: pl.LazyFrame, by: Sequence[str], value: pl.Expr, eligible: pl.Expr, min_length: int, **shown: pl.Expr
) -> pl.LazyFrame:
    eligible = eligible.fill_null(False)
    previous_eligible = _over(eligible.shift(fill_value=False))
    repeat = eligible & previous_eligible & (value == _over(value.shift())).fill_null(False)
    return (
        _identify(frame, by)
        .select(*by, SERIES_ID, "ts", *(expr.alias(name) for name, expr in shown.items()), repeat.alias("_repeat"))
        .with_columns(
            _over((~pl.col("_repeat")).cast(pl.Int64).cum_sum()).alias("_run"),
            _over(pl.col("_repeat") | pl.col("_repeat").shift(-1, fill_value=False)).alias("_in_run"),
        )
        .filter(pl.col("_in_run"))
        .group_by(SERIES_ID, "_run", maintain_order=True)
        .agg(
            *(pl.col(name).first() for name in by),
            pl.col("ts").first().alias("_first"),
            pl.col("ts").last().alias("_last"),
            pl.len().cast(pl.Int64).alias("_n"),
            *(pl.col(name).first() for name in shown),
        )
        .filter(pl.col("_n") >= min_length)
        .drop(SERIES_ID, "_run")
    )


def _stale(runs: pl.LazyFrame, by: Sequence[str], severity: Severity, what: str) -> pl.LazyFrame:
    message = _format(
        f"expected the close to move; found {{}} repeated on {{}} consecutive {what}",
        pl.col("_value"),
        pl.col("_n"),
    )
    return _findings(runs, by, "stale", severity, pl.col("_first"), pl.col("_last"), pl.col("_n"), message)


def _findings(
    frame: pl.LazyFrame,
    by: Sequence[str],
    code: Code,
    severity: Severity,
    ts_start: pl.Expr,
    ts_end: pl.Expr,
    count: pl.Expr,
    message: pl.Expr,
) -> pl.LazyFrame:
    return frame.select(
        *by,
        pl.lit(code).alias("code"),
        pl.lit(severity).alias("severity"),
        ts_start.cast(TS).alias("ts_start"),
        ts_end.cast(TS).alias("ts_end"),
        count.cast(pl.Int64).alias("count"),
        message.alias("message"),
    )


def _columns(by: Sequence[str], *names: str) -> list[str]:
    return list(dict.fromkeys([*by, *names]))


def _over(expr: pl.Expr) -> pl.Expr:
    return expr.over(SERIES_ID)


def _identify(frame: pl.LazyFrame, by: Sequence[str]) -> pl.LazyFrame:
    # One integer per series: windows over an integer are ~20x cheaper than over four strings.
    series_id = pl.struct(*by).rle_id() if by else pl.lit(0, dtype=pl.UInt32)
    return frame.with_columns(series_id.alias(SERIES_ID))


def _label_secs(label: pl.Expr) -> pl.Expr:
    count = label.str.head(-1).cast(pl.Int64, strict=False)
    return count * label.str.tail(1).replace_strict(_UNIT_SECS, default=None, return_dtype=pl.Int64)


def _plus_ns(ts: pl.Expr, nanoseconds: pl.Expr) -> pl.Expr:
    return (ts + pl.duration(nanoseconds=nanoseconds)).cast(TS)


def _format(template: str, *values: pl.Expr) -> pl.Expr:
    # pl.format panics in polars 2.1's streaming engine on some filtered frames read from Parquet
    # ("assertion failed: i < self.len()" in binview); concat_str of the same pieces does not.
    pieces = template.split("{}")
    if len(pieces) != len(values) + 1:
        raise ValueError(f"template {template!r} has {len(pieces) - 1} placeholders, was given {len(values)} values")
    parts: list[pl.Expr] = [pl.lit(pieces[0])]
    for value, piece in zip(values, pieces[1:], strict=True):
        parts += [value.cast(pl.String), pl.lit(piece)]
    return pl.concat_str(parts)


def _fmt(ts: pl.Expr) -> pl.Expr:
    return ts.dt.strftime(_TIME_FORMAT)


def _round(value: pl.Expr) -> pl.Expr:
    return value.round_sig_figs(6)


def _signed_pct(fraction: pl.Expr) -> pl.Expr:
    pct = (fraction * 100).round(2)
    return pl.when(pct > 0).then(_format("+{}", pct)).otherwise(pct.cast(pl.String))
