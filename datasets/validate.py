"""Hard invariants every batch must satisfy before anything reaches the store.

A batch is a polars DataFrame with the kind's canonical columns plus ``_row``: the row of the source
file each record came from, so an error can point a user at the line to fix. The first violation
raises ``ValidationError`` naming the source, the row and the field; nothing is written.

Beyond types and keys, every batch passes the sanity checks of ``datasets.venues``: the venue is in
the registry, timestamps lie between the venue's launch (per market) and now + 1 day, bars sit on
their interval's grid and are spaced by it, and funding rates stay within the venue's cap (unless
``limits=False``: data imported deliberately with ``--allow-extreme``).

A batch of one venue and series in strictly increasing time (most inputs) is shown to pass every check
in one query; any other batch, and one that query finds a problem in, goes through the checks one by
one, which name the first violation (``tests/unit/datasets/test_ingest_fast_paths.py`` holds both to
the same verdicts).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from functools import partial

import polars as pl

from datasets.errors import ValidationError
from datasets.schemas import (
    BOUND_UNITS,
    INTERVAL_PATTERN,
    LIQUIDATED_SIDES,
    MARKETS,
    PRICE_TYPES,
    SYMBOL_PATTERN,
    VENUE_PATTERN,
    KindSpec,
    interval_secs,
)
from datasets.venues import DATA_VENUES, EARLIEST_DATA, unknown_venue_message

ROW = "_row"
# How far past the validating clock a timestamp may lie (a bar opened a few hours ahead in another zone).
FUTURE_SLACK = timedelta(days=1)
# A series this long with no two bars one interval apart holds another interval than it declares.
SPACING_MIN_BARS = 24
_WEEK_ANCHOR_SECS = 4 * 86_400  # 1970-01-01 was a Thursday; weekly bars open on Mondays
_SERIES = ("venue", "symbol", "price_type", "interval")  # one series of bars


def validate_batch(
    batch: pl.DataFrame, spec: KindSpec, *, source: str, limits: bool = True, now: datetime | None = None
) -> None:
    """Check ``batch`` against every hard invariant of ``spec``.

    Parameters
    ----------
    batch : pl.DataFrame
        Canonical columns of ``spec`` plus ``_row``.
    spec : KindSpec
        The kind the batch claims to be.
    source : str
        Name of the input, used in error messages.
    limits : bool
        Refuse funding rates beyond the venue's cap (``datasets.venues.FundingClock``); turn off only
        to store deliberately extreme data, whose rates ``over_cap_rows`` then counts.
    now : datetime, optional
        The validating clock for the "not in the future" bound (default: the current UTC time).

    Raises
    ------
    ValidationError
        At the first broken invariant: wrong or missing columns, wrong types, nulls in required
        fields, non-UTC or unparsed timestamps, bad labels, non-positive prices, negative volumes,
        high/low outside open/close, duplicate keys with different values, a venue not in the
        registry, a timestamp before the venue's launch or in the future, a bar off its interval's
        grid or spaced unlike its interval, or (with ``limits``) a funding rate above the venue's cap.
    """
    _check_columns(batch, spec, source)
    if batch.height == 0:
        return
    clock = now or datetime.now(UTC)
    if _passes_every_check(batch, spec, limits=limits, now=clock):
        return
    _first_violation(batch, [*_required(spec), *_labels(batch), *_numbers(spec)], source)
    _check_venues(batch, source)
    _check_time_range(batch, source, clock, column=spec.time_column)
    if spec.kind == "ohlcv":
        _check_bar_grid(batch, source)
        _check_bar_spacing(batch, source)
    if spec.kind == "funding" and limits:
        hit = batch.select(_over_cap(batch).arg_true().first()).item()
        if hit is not None:
            venue, interval = batch["venue"][hit], batch["interval"][hit]
            cap = DATA_VENUES[venue].funding.cap_for(interval)
            raise ValidationError(
                source,
                batch[ROW][hit],
                "rate",
                f"expected |rate| <= {cap} per {interval} settlement ({venue}'s published cap, "
                f"datasets/venues.py), was {batch['rate'][hit]}; if the data really is that extreme, import it "
                "with --allow-extreme (stored with a lineage note, and `check` reports it)",
            )
    _check_unique_key(batch, spec, source)


def over_cap_rows(batch: pl.DataFrame) -> int:
    """Return how many settlements of a validated funding batch exceed their venue's rate cap."""
    if batch.height == 0:
        return 0
    return int(batch.select(_over_cap(batch).sum()).item())


def _over_cap(batch: pl.DataFrame) -> pl.Expr:
    return _over_cap_of(batch.select("venue", "interval").unique().rows())


def _over_cap_of(pairs: list[tuple[str, str]]) -> pl.Expr:
    caps: pl.Expr = pl.lit(None, dtype=pl.Float64)
    for venue, interval in pairs:
        cap = float(DATA_VENUES[venue].funding.cap_for(interval))
        caps = pl.when((pl.col("venue") == venue) & (pl.col("interval") == interval)).then(cap).otherwise(caps)
    return (pl.col("rate").cast(pl.Float64).abs() > caps).fill_null(False)


def _passes_every_check(batch: pl.DataFrame, spec: KindSpec, *, limits: bool, now: datetime) -> bool:
    # A clean batch of one venue (and interval) in strictly increasing time, one series of bars or rates
    # as most inputs are, shown to pass every check below in one select instead of one or more per check.
    # False means only "not shown": the checks then run one by one and name the first violation.
    time_column = spec.time_column
    if "venue" not in batch.columns or time_column not in spec.key:
        return False
    venue = batch["venue"][0]
    interval = batch["interval"][0] if "interval" in batch.columns else None
    stamps = pl.col(time_column).dt.epoch("ns")
    kind_checks = _kind_checks(spec, venue, interval, stamps, limits=limits)
    if venue not in DATA_VENUES or kind_checks is None:
        return False
    # One venue, and the one series or interval the grid or the cap was computed for.
    same = _SERIES if spec.kind == "ohlcv" else ("venue", "interval") if kind_checks else ("venue",)
    broken = [
        *(rule.mask.any() for rule in [*_required(spec), *_numbers(spec)]),  # any() skips nulls: coalesce(mask, False)
        *(bad(pl.col(name).unique()).any() for name, bad, _ in _label_tests(batch)),
        *kind_checks,
        pl.max_horizontal(pl.col(name).n_unique() for name in same) != 1,
    ]
    summary = batch.select(
        pl.any_horizontal(broken).alias("broken"),
        _market(batch).unique().implode().alias("markets"),
        stamps.min().alias("first"),
        stamps.max().alias("last"),
        stamps.diff().min().alias("step"),
    ).row(0, named=True)
    step = summary["step"]
    if summary["broken"] or (batch.height > 1 and not step > 0):  # keys may repeat, spacing needs a group-by
        return False
    if (
        spec.kind == "ohlcv"
        and batch.height >= SPACING_MIN_BARS
        and step // 1_000_000_000 != interval_secs(str(interval))
    ):
        return False
    tightest = max(_earliest(venue, market) for market in summary["markets"])
    latest = now.astimezone(UTC) + FUTURE_SLACK
    return bool(_epoch_ns(tightest) <= summary["first"] and summary["last"] <= _epoch_ns(latest))


def _kind_checks(
    spec: KindSpec, venue: object, interval: object, stamps: pl.Expr, *, limits: bool
) -> list[pl.Expr] | None:
    # What a batch of one venue and interval must not hold beyond the common checks: bars off their
    # grid, rates over the cap. None when the first row's interval or venue cannot name them.
    if spec.kind != "ohlcv" and not (spec.kind == "funding" and limits):
        return []
    if not isinstance(interval, str) or not INTERVAL_PATTERN.fullmatch(interval) or venue not in DATA_VENUES:
        return None
    if spec.kind == "funding":
        return [_over_cap_of([(str(venue), interval)]).any()]
    grid, anchor = _grid_secs(interval)
    return [((stamps - anchor * 1_000_000_000) % (grid * 1_000_000_000) != 0).any()]


def _check_venues(batch: pl.DataFrame, source: str) -> None:
    for venue in _distinct(batch, "venue"):
        if venue not in DATA_VENUES:
            hit = batch.select((pl.col("venue") == venue).arg_true().first()).item()
            raise ValidationError(source, batch[ROW][hit], "venue", unknown_venue_message(venue))


def _market(batch: pl.DataFrame) -> pl.Expr:
    return pl.col("market").fill_null("perp") if "market" in batch.columns else pl.lit("perp")


def _check_time_range(batch: pl.DataFrame, source: str, now: datetime, *, column: str) -> None:
    market = _market(batch)
    latest = now.astimezone(UTC) + FUTURE_SLACK
    # Every time within the tightest bounds of any venue and any market present: no row needs a look.
    # (Distinct values per column are much cheaper than distinct pairs, which only the slow path needs.)
    venues, markets = batch.select(pl.col("venue").unique().implode(), market.unique().implode()).row(0)
    tightest = max(_earliest(venue, market_name) for venue in venues for market_name in markets)
    # As integer nanoseconds: a datetime literal costs more to build and compare than the whole check.
    stamps = pl.col(column).dt.epoch("ns")
    inside = (stamps.min() >= _epoch_ns(tightest)) & (stamps.max() <= _epoch_ns(latest))
    if batch.select(inside.fill_null(True)).item():
        return
    framed = batch.with_columns(market.alias("_market"))
    for venue, market_name in framed.select("venue", "_market").unique(maintain_order=True).rows():
        earliest = _earliest(venue, market_name)
        mine = (pl.col("venue") == venue) & (pl.col("_market") == market_name)
        outside = (pl.col(column) < earliest) | (pl.col(column) > latest)
        hit = framed.select((mine & outside).arg_true().first()).item()
        if hit is not None:
            raise ValidationError(
                source,
                framed[ROW][hit],
                column,
                f"expected a time from {earliest:%Y-%m-%d} ({venue} {market_name} launch, datasets/venues.py) to "
                f"now + 1 day ({latest:%Y-%m-%d %H:%M} UTC), was {framed[column][hit]}; such a time comes from "
                "the wrong epoch unit (seconds read as milliseconds), a shifted column or a typo: fix the source",
            )


def _distinct(batch: pl.DataFrame, column: str) -> list[str]:
    # Through a select: a column filled from one literal is then counted without being materialised.
    return batch.select(pl.col(column).unique(maintain_order=True)).to_series().to_list()


def _epoch_ns(moment: datetime) -> int:
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1) * 1_000


def _earliest(venue: str, market: str) -> datetime:
    launch = DATA_VENUES[venue].launch(market) if venue in DATA_VENUES else EARLIEST_DATA
    return datetime.combine(max(launch, EARLIEST_DATA), time(), tzinfo=UTC)


def _grid_secs(interval: str) -> tuple[int, int]:
    secs = interval_secs(interval)
    if interval == "1w":
        return secs, _WEEK_ANCHOR_SECS
    if secs <= 86_400 and 86_400 % secs == 0:
        return secs, 0
    return (86_400, 0) if secs % 86_400 == 0 else (60, 0)


def _check_bar_grid(batch: pl.DataFrame, source: str) -> None:
    epoch_secs = pl.col("ts").dt.epoch("ns")
    intervals = _distinct(batch, "interval")
    for interval in intervals:
        grid, anchor = _grid_secs(interval)
        off = (epoch_secs - anchor * 1_000_000_000) % (grid * 1_000_000_000) != 0
        if len(intervals) > 1:
            off = (pl.col("interval") == interval) & off
        hit = batch.select(off.arg_true().first()).item()
        if hit is not None:
            raise ValidationError(
                source,
                batch[ROW][hit],
                "ts",
                f"expected a {interval} bar to open on the {interval} grid (a multiple of {grid} s from "
                f"{'a Monday' if anchor else '00:00 UTC'}), was {batch['ts'][hit]}; the interval in the file name "
                "is wrong or the times are shifted: fix the source",
            )


def _check_bar_spacing(batch: pl.DataFrame, source: str) -> None:
    # Gaps are allowed (``check`` reports them), so only a long series without a single pair of bars
    # one interval apart is refused: a file of 4h bars named 1h. Bars off the grid are refused above.
    series = list(_SERIES)
    if max(batch.select(pl.col(series).n_unique()).row(0)) == 1 and batch["ts"].is_sorted():
        # One series already in time order (every file of bars): its distinct times are the rows
        # one step later than the previous, so no group-by, unique or sort is needed.
        step_ns = pl.col("ts").dt.epoch("ns").diff()
        spacing = batch.select(
            *(pl.col(c).first() for c in series),
            (step_ns.filter(step_ns > 0).min() // 1_000_000_000).alias("_closest"),
            ((step_ns > 0).sum() + 1).alias("_n"),
        )
    else:
        spacing = batch.group_by(series).agg(
            pl.col("ts").unique().sort().diff().dt.total_seconds().min().alias("_closest"),
            pl.col("ts").n_unique().alias("_n"),
        )
    for row in spacing.filter(pl.col("_n") >= SPACING_MIN_BARS).iter_rows(named=True):
        secs = interval_secs(row["interval"])
        if row["_closest"] != secs:
            mine = pl.all_horizontal(pl.col(c) == row[c] for c in series)
            hit = batch.select(mine.arg_true().first()).item()
            raise ValidationError(
                source,
                batch[ROW][hit],
                "ts",
                f"expected {row['interval']} bars, some {secs} s apart, was {row['_n']} bars at least "
                f"{row['_closest']} s apart; the file holds another interval than it says: fix its name",
            )


@dataclass(frozen=True, slots=True)
class _Rule:
    mask: pl.Expr
    field: str
    message: str


def _first_violation(batch: pl.DataFrame, rules: list[_Rule], source: str) -> None:
    hits = batch.select(pl.coalesce(r.mask, False).arg_true().first().alias(str(i)) for i, r in enumerate(rules))
    for i, rule in enumerate(rules):
        hit = hits[str(i)][0]
        if hit is not None:
            value = batch[rule.field][hit] if rule.field in batch.columns else None
            raise ValidationError(source, batch[ROW][hit], rule.field, rule.message.format(value=value))


def _check_columns(batch: pl.DataFrame, spec: KindSpec, source: str) -> None:
    expected = spec.polars_schema
    missing = [name for name in expected if name not in batch.columns]
    if missing:
        raise ValidationError(
            source, None, missing[0], f"column is missing; a {spec.kind} batch needs {', '.join(expected)}"
        )
    if ROW not in batch.columns:
        raise ValidationError(source, None, ROW, "column is missing: importers must record the source row")
    extra = [name for name in batch.columns if name not in expected and name != ROW]
    if extra:
        raise ValidationError(source, None, extra[0], f"column is not part of the {spec.kind} schema; drop it")
    found = batch.schema
    for name, dtype in expected.items():
        if found[name] != dtype:
            raise ValidationError(
                source, None, name, f"expected type {dtype}, was {found[name]}; convert it in the importer"
            )


def _required(spec: KindSpec) -> list[_Rule]:
    return [
        _Rule(pl.col(f.name).is_null(), f.name, "is empty or could not be parsed; it is required")
        for f in spec.schema
        if not f.nullable
    ]


def _label_tests(batch: pl.DataFrame) -> list[tuple[str, Callable[[pl.Expr], pl.Expr], str]]:
    tests: list[tuple[str, Callable[[pl.Expr], pl.Expr], str]] = []
    patterns = {
        "venue": VENUE_PATTERN,
        "symbol": SYMBOL_PATTERN,
        "interval": INTERVAL_PATTERN,
        "funding_interval": INTERVAL_PATTERN,
    }
    for name, pattern in patterns.items():
        if name in batch.columns:
            tests.append(
                (name, partial(_unmatched, regex=pattern.pattern), f"must match {pattern.pattern}, was {{value!r}}")
            )
    choices = {"market": MARKETS, "price_type": PRICE_TYPES, "side": LIQUIDATED_SIDES, "bound_unit": BOUND_UNITS}
    for name, allowed in choices.items():
        if name in batch.columns:
            message = f"must be one of {', '.join(allowed)}, was {{value!r}}"
            tests.append((name, partial(_not_one_of, values=list(allowed)), message))
    return tests


def _labels(batch: pl.DataFrame) -> list[_Rule]:
    tests = _label_tests(batch)
    if not tests:
        return []
    # A label column holds a few distinct values: test those in one pass, and search rows only for a column that fails.
    failing = batch.select(
        bad(pl.col(name).unique()).any().alias(str(i)) for i, (name, bad, _) in enumerate(tests)
    ).row(0)
    return [
        _Rule(bad(pl.col(name)), name, message) for (name, bad, message), hit in zip(tests, failing, strict=True) if hit
    ]


def _unmatched(column: pl.Expr, *, regex: str) -> pl.Expr:
    return column.is_not_null() & ~column.str.contains(regex)


def _not_one_of(column: pl.Expr, *, values: list[str]) -> pl.Expr:
    return column.is_not_null() & ~column.is_in(values)


def _numbers(spec: KindSpec) -> list[_Rule]:
    rules = [_Rule(pl.col(name) <= 0, name, "prices must be > 0, was {value}") for name in spec.price_columns]
    rules += [_Rule(pl.col(name) < 0, name, "must be >= 0, was {value}") for name in spec.nonnegative_columns]
    if spec.kind == "ohlcv":
        top = pl.max_horizontal("open", "close")
        bottom = pl.min_horizontal("open", "close")
        rules.append(_Rule(pl.col("high") < top, "high", "high must be >= max(open, close), was {value}"))
        rules.append(_Rule(pl.col("low") > bottom, "low", "low must be <= min(open, close), was {value}"))
    return rules


def has_duplicate_keys(batch: pl.DataFrame, spec: KindSpec) -> bool:
    """Return whether two rows of ``batch`` share a key of ``spec``.

    When the key includes the time column and no two rows share a time, no two can share a key: one
    pass over an integer column instead of hashing every key column.
    """
    time_column = spec.time_column
    if time_column in spec.key and batch[time_column].n_unique() == batch.height:
        return False
    return bool(batch.select(pl.struct(spec.key).is_duplicated().any()).item())


def _check_unique_key(batch: pl.DataFrame, spec: KindSpec, source: str) -> None:
    if not has_duplicate_keys(batch, spec):
        return
    clashes = batch.with_columns(_n=pl.struct(spec.columns).n_unique().over(spec.key))
    rule = _Rule(
        pl.col("_n") > 1,
        spec.time_column,
        f"key ({', '.join(spec.key)}) appears more than once with different values at {spec.time_column}={{value}}; "
        "the source holds two records for one key: fix or split the input",
    )
    _first_violation(clashes, [rule], source)
