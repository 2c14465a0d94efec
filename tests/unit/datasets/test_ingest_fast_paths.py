"""The import's fast paths give exactly what the general paths give (issue 18, ingest within target).

Each shortcut (float -> decimal without text, per-series validation, year slicing in the store) is
checked against an independent oracle or against the general path on inputs built so that both paths run.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from unittest import mock

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import datasets.numeric
import datasets.validate
from datasets.errors import ValidationError
from datasets.numeric import decimals_from_floats
from datasets.schemas import FUNDING, OHLCV, PL_DECIMAL, KindSpec
from datasets.store import SourceInfo, Store
from datasets.validate import has_duplicate_keys, validate_batch
from tests.kit.store import funding_batch, ohlcv_batch

T0 = datetime(2024, 1, 1, tzinfo=UTC)
INFO = SourceInfo(source="hand-made", sha256="0" * 64, importer="test", importer_version="1")


def _no_text_path(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(expr: pl.Expr) -> pl.Expr:
        raise AssertionError("the column should have taken the fast path")

    monkeypatch.setattr(datasets.numeric, "decimal_from_float", refuse)


def test_prices_convert_to_their_published_decimals_without_text(monkeypatch: pytest.MonkeyPatch) -> None:
    # float64 117329.8 is 117329.80000000000291... in binary; the decimal published (and stored) is 117329.8.
    _no_text_path(monkeypatch)
    values = pl.Series("close", [117329.8, 0.000081, -3.25, 0.0, float("nan"), float("inf")])
    got = decimals_from_floats(values)
    assert got.name == "close"
    assert got.dtype == pl.Decimal(38, 18)
    assert got.to_list() == [Decimal("117329.8"), Decimal("0.000081"), Decimal("-3.25"), Decimal(0), None, None]


def test_a_value_needing_more_digits_than_the_fast_scale_goes_through_its_text() -> None:
    # 0.1 + 0.2 prints as 0.30000000000000004 (17 digits): no 15-decimal number round-trips to it.
    # 1e16 is beyond 2**50, where two decimals can share one float: both take the text path.
    got = decimals_from_floats(pl.Series("v", [0.1 + 0.2, 1.5]))
    assert got.to_list() == [Decimal("0.30000000000000004"), Decimal("1.5")]
    assert decimals_from_floats(pl.Series("v", [1e16])).to_list() == [Decimal("10000000000000000")]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.floats(min_value=-1e15, max_value=1e15, allow_nan=False), min_size=1, max_size=20))
def test_every_float_converts_to_its_shortest_round_trip_decimal(values: list[float]) -> None:
    # Oracle: Python's repr, an independent shortest round-trip printer, read as a Decimal (where it
    # fits the store's 18 decimals); and always the text path, whatever the column takes.
    series = pl.Series("v", values)
    got = decimals_from_floats(series).to_list()
    assert got == series.to_frame().select(datasets.numeric.decimal_from_float(pl.col("v"))).to_series().to_list()
    for value, stored in zip(values, got, strict=True):
        text = Decimal(repr(value))
        if text.as_tuple().exponent >= -18:  # type: ignore[operator]  # finite: an int exponent
            assert stored == text, (value, stored)


def test_duplicate_keys_are_found_with_or_without_unique_times() -> None:
    bars = [(T0, "1", "2", "1", "1", "1"), (T0 + timedelta(hours=1), "1", "2", "1", "1", "1")]
    one = ohlcv_batch(bars)
    assert not has_duplicate_keys(one, OHLCV)
    # Same times, another symbol: times repeat but keys do not.
    two = pl.concat([one, ohlcv_batch(bars, symbol="ETH-USDT-PERP")])
    assert not has_duplicate_keys(two, OHLCV)
    assert has_duplicate_keys(pl.concat([one, one.head(1)]), OHLCV)


def _hourly(count: int, *, step_hours: int = 1, symbol: str = "BTC-USDT-PERP") -> pl.DataFrame:
    bars = [(T0 + timedelta(hours=i * step_hours), "10", "11", "9", "10", "1") for i in range(count)]
    return ohlcv_batch(bars, symbol=symbol)


@pytest.mark.parametrize("series", [1, 2], ids=["one series (fast path)", "two series (group-by)"])
def test_bars_spaced_unlike_their_interval_are_refused_on_either_path(series: int) -> None:
    # 30 bars named 1h but 2 h apart: none one interval (3600 s) apart, closest 7200 s.
    batch = pl.concat([_hourly(30, step_hours=2, symbol=s) for s in ["BTC-USDT-PERP", "ETH-USDT-PERP"][:series]])
    with pytest.raises(ValidationError, match=r"expected 1h bars, some 3600 s apart, was 30 bars at least 7200 s"):
        validate_batch(batch, OHLCV, source="spacing.csv")
    validate_batch(
        pl.concat([_hourly(30, symbol=s) for s in ["BTC-USDT-PERP", "ETH-USDT-PERP"][:series]]),
        OHLCV,
        source="fine.csv",
    )


def test_a_time_before_the_venue_launch_is_named_by_row_past_the_bounds_check() -> None:
    # Row 3 holds 2010-01-01, before Binance perps existed: the batch-wide bounds check fails, the row search names it.
    stamps = [T0 + timedelta(hours=i) for i in range(5)]
    stamps[3] = datetime(2010, 1, 1, tzinfo=UTC)
    batch = ohlcv_batch([(ts, "10", "11", "9", "10", "1") for ts in stamps])
    with pytest.raises(ValidationError, match=r"row 3.*'ts'.*expected a time from 2019-"):
        validate_batch(batch, OHLCV, source="early.csv")


def test_a_bad_label_in_one_row_is_still_named_by_row() -> None:
    batch = _hourly(4).with_columns(
        pl.when(pl.col("_row") == 2).then(pl.lit("btc usdt")).otherwise(pl.col("symbol")).alias("symbol")
    )
    with pytest.raises(ValidationError, match=r"row 2.*symbol.*must match.*'btc usdt'"):
        validate_batch(batch, OHLCV, source="labels.csv")


def test_years_of_one_series_are_sliced_into_the_same_partitions_as_a_group_by(tmp_path: Path) -> None:
    # Bars on 2020-12-31 23:00, 2021-01-01 00:00 and 2023-06-01 (no 2022 rows): three year files, none for 2022.
    stamps = [
        datetime(2020, 12, 31, 23, tzinfo=UTC),
        datetime(2021, 1, 1, tzinfo=UTC),
        datetime(2023, 6, 1, tzinfo=UTC),
    ]
    bars = [(ts, "10", "11", "9", "10", "1") for ts in stamps]
    sliced, grouped = Store(tmp_path / "one"), Store(tmp_path / "two")
    sliced.write("ohlcv", ohlcv_batch(bars), INFO)
    # Two symbols in one batch take the group-by path; its BTC files must be the same bytes.
    grouped.write("ohlcv", pl.concat([ohlcv_batch(bars), ohlcv_batch(bars, symbol="ETH-USDT-PERP")]), INFO)
    years = [p.parent.name for p in sliced.files("ohlcv")]
    assert years == ["year=2020", "year=2021", "year=2023"]
    for path in sliced.files("ohlcv"):
        twin = tmp_path / "two" / path.relative_to(tmp_path / "one")
        assert path.read_bytes() == twin.read_bytes()


# A cell of a clean 30-row batch replaced by one of these (``"previous"``: the row before's time): every check
# of ``validate_batch`` is broken by some of them, in one row or (symbol, interval, venue) as a second series.
NOW = datetime(2025, 1, 1, tzinfo=UTC)
_TIMES = [
    T0 - timedelta(hours=1),
    T0 + timedelta(minutes=30),
    "previous",
    datetime(2010, 1, 1, tzinfo=UTC),
    NOW + timedelta(days=2),
    None,
]
_LABELS: dict[str, list[Any]] = {
    "venue": ["binanse", "Binance", "bybit", None],
    "symbol": ["ETH-USDT-PERP", "btc usdt", None],
    "interval": ["4h", "1x", "1h\n", "8h", None],
}
_MUTATIONS: dict[str, dict[str, list[Any]]] = {
    "ohlcv": {
        **_LABELS,
        "market": ["spot", "swap", None],
        "price_type": ["mark", "last", None],
        "ts": _TIMES,
        **{c: ["0", "-1", "1000", "0.5", None] for c in ("open", "high", "low", "close")},
        "volume": ["-1", "0", None],
    },
    "funding": {**_LABELS, "ts": _TIMES, "rate": ["0.5", "-0.5", "0.0001", None], "mark_price": ["-1", "0", None]},
}


def _clean(kind: str, *, step_hours: int, shift_minutes: int) -> pl.DataFrame:
    # Values differ row to row, so a repeated time is a key with two different rows.
    start = T0 + timedelta(minutes=shift_minutes)
    stamps = [start + timedelta(hours=(8 if kind == "funding" else 1) * i * step_hours) for i in range(30)]
    if kind == "funding":
        return funding_batch([(ts, f"0.000{i % 9 + 1}") for i, ts in enumerate(stamps)])
    return ohlcv_batch([(ts, "10", f"1{i % 9 + 1}", "9", "10", str(i)) for i, ts in enumerate(stamps)])


def _mutated(frame: pl.DataFrame, row: int, column: str, value: Any) -> pl.DataFrame:
    if value == "previous":
        new = pl.col(column).shift(1)
    else:
        dtype = frame.schema[column]
        new = pl.lit(value, dtype=pl.String).cast(PL_DECIMAL) if dtype == PL_DECIMAL else pl.lit(value, dtype=dtype)
    return frame.with_columns(pl.when(pl.col("_row") == row).then(new).otherwise(pl.col(column)).alias(column))


def _outcome(batch: pl.DataFrame, spec: KindSpec, *, limits: bool) -> str:
    try:
        datasets.validate.validate_batch(batch, spec, source="mutated.csv", limits=limits, now=NOW)
    except ValidationError as exc:
        return f"refused: {exc}"
    return "accepted"


@settings(max_examples=400, deadline=None)
@given(
    mutation=st.sampled_from(["ohlcv", "funding"]).flatmap(
        lambda kind: st.tuples(
            st.just(kind),
            st.sampled_from(sorted(_MUTATIONS[kind])).flatmap(
                lambda column: st.tuples(st.just(column), st.sampled_from(_MUTATIONS[kind][column]))
            ),
        )
    ),
    row=st.integers(0, 29),  # of the rows kept
    step_hours=st.sampled_from([1, 2]),
    shift_minutes=st.sampled_from([0, 0, 30]),
    reverse=st.booleans(),
    limits=st.booleans(),
    height=st.sampled_from([1, 2, 23, 30]),
)
def test_the_one_select_check_accepts_and_refuses_exactly_as_the_checks_one_by_one(
    mutation: tuple[str, tuple[str, Any]],
    row: int,
    step_hours: int,
    shift_minutes: int,
    reverse: bool,
    limits: bool,
    height: int,
) -> None:
    # Differential: validate_batch with its one-select shortcut against the same call with the shortcut off.
    kind, (column, value) = mutation
    clean = _clean(kind, step_hours=step_hours, shift_minutes=shift_minutes)
    batch = _mutated(clean, row % height, column, value).head(height)
    batch = batch.reverse() if reverse else batch
    spec = OHLCV if kind == "ohlcv" else FUNDING
    fast = _outcome(batch, spec, limits=limits)
    with mock.patch.object(datasets.validate, "_passes_every_check", return_value=False):
        assert _outcome(batch, spec, limits=limits) == fast


@pytest.mark.parametrize("kind", ["ohlcv", "funding"])
def test_a_clean_series_is_validated_by_the_one_select_check(kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a clean series should not need the checks one by one")

    monkeypatch.setattr(datasets.validate, "_first_violation", refuse)
    datasets.validate.validate_batch(
        _clean(kind, step_hours=1, shift_minutes=0), OHLCV if kind == "ohlcv" else FUNDING, source="x", now=NOW
    )
