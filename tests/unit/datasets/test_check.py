"""Soft findings: hand-made series with known defects, a clean series, and the real defects in shared data."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from datasets import findings as kernels
from datasets.check import (
    CheckConfig,
    Finding,
    check_bars,
    check_funding,
    check_store,
    findings_to_json,
    format_findings,
)
from datasets.importers import ImportOptions, require_importer
from datasets.importers.base import sha256_of
from datasets.store import SourceInfo, Store
from tests.kit.store import funding_batch, ohlcv_batch

T0 = datetime(2024, 1, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)
INFO = SourceInfo(source="hand-made", sha256="0" * 64, importer="test", importer_version="1")


def _walk(count: int, *, seed: int = 7, step: float = 0.005, start: float = 100.0) -> list[float]:
    rng = np.random.default_rng(seed)
    return [round(float(x), 2) for x in start * np.exp(np.cumsum(rng.normal(0.0, step, count)))]


def _bars(
    closes: Sequence[float],
    *,
    volumes: Sequence[float | None] | None = None,
    flat: Sequence[int] = (),
    ts: Sequence[datetime] | None = None,
    price_type: str = "trade",
    interval: str = "1h",
    symbol: str = "BTC-USDT-PERP",
) -> pl.DataFrame:
    """Bars opening at the previous close with a 1-wide wick each side; ``flat`` bars have o=h=l=c=close."""
    times = list(ts) if ts is not None else [T0 + i * HOUR for i in range(len(closes))]
    opens = [closes[0], *closes[:-1]]
    rows = []
    for i, (o, c) in enumerate(zip(opens, closes, strict=True)):
        o = c if i in flat else o
        wick = 0.0 if i in flat else 1.0
        rows.append((o, max(o, c) + wick, min(o, c) - wick, c))
    return pl.DataFrame(
        {
            "venue": "binance",
            "symbol": symbol,
            "price_type": price_type,
            "interval": interval,
            "ts": times,
            "open": [r[0] for r in rows],
            "high": [r[1] for r in rows],
            "low": [r[2] for r in rows],
            "close": [r[3] for r in rows],
            "volume": list(volumes) if volumes is not None else [100.0] * len(closes),
        },
        schema_overrides={"ts": pl.Datetime("ns", "UTC"), "volume": pl.Float64},
    )


def _funding(
    ts: Sequence[datetime],
    rates: Sequence[float],
    intervals: Sequence[str | None],
    *,
    marks: Sequence[float | None] | None = None,
    symbol: str = "BTC-USDT-PERP",
) -> pl.DataFrame:
    nothing = [None] * len(ts)
    return pl.DataFrame(
        {
            "venue": "binance",
            "symbol": symbol,
            "ts": list(ts),
            "rate": list(rates),
            "interval": list(intervals),
            "mark_price": list(marks) if marks is not None else nothing,
            "index_price": nothing,
            "premium": nothing,
        },
        schema_overrides={
            "ts": pl.Datetime("ns", "UTC"),
            "interval": pl.String,
            **dict.fromkeys(("mark_price", "index_price", "premium"), pl.Float64),
        },
    )


def _settlements(start: datetime, count: int, every: timedelta) -> list[datetime]:
    return [start + i * every for i in range(count)]


def _rows(findings: pl.LazyFrame) -> list[tuple[str, str, datetime, datetime, int]]:
    frame = findings.collect()
    return list(frame.select("code", "severity", "ts_start", "ts_end", "count").iter_rows())


def _at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


# ----------------------------------------------------------------------------------------- clean


def test_clean_series_yields_no_findings() -> None:
    bars = _bars(_walk(500))
    settlements = _settlements(T0, 90, 8 * HOUR)
    # Binance's clamp makes long runs of exactly 0.0001 real: without mark prices they are not stale.
    funding = _funding(settlements, [0.0001] * 90, ["8h"] * 90)

    assert check_bars(bars).collect().height == 0
    assert check_funding(funding).collect().height == 0


def test_kernels_accept_store_decimals_and_find_the_same() -> None:
    floats = _bars([10000.0, 10000.0, *_walk(60, start=10300.0)], volumes=[0.002, 0.0, *[500.0] * 60], flat=(0, 1))
    decimals = floats.with_columns(
        pl.col(c).cast(pl.String).cast(pl.Decimal(38, 18)) for c in ("open", "high", "low", "close", "volume")
    )

    assert check_bars(decimals).collect().equals(check_bars(floats).collect())


# ------------------------------------------------------------------------------------------- gaps


def test_missing_bars_reported_one_finding_per_gap_with_range_and_count() -> None:
    hours = [h for h in range(24) if h not in (5, 6, 7, 9, 15)]
    bars = _bars(_walk(len(hours)), ts=[_at(h) for h in hours])

    assert _rows(kernels.find_bar_gaps(bars.lazy())) == [
        ("gap", "warning", _at(5), _at(7), 3),
        ("gap", "warning", _at(9), _at(9), 1),
        ("gap", "warning", _at(15), _at(15), 1),
    ]


def test_gap_message_names_interval_range_and_neighbours() -> None:
    bars = _bars(_walk(3), ts=[_at(0), _at(1), _at(5)])

    message = kernels.find_bar_gaps(bars.lazy()).collect()["message"].item()

    assert message == (
        "expected a bar every 1h; found 3 missing from 2024-01-01 02:00 to 2024-01-01 04:00 "
        "(last bar before at 2024-01-01 01:00, next at 2024-01-01 05:00)"
    )


def test_missing_settlements_follow_each_rows_interval_and_tolerate_late_ones() -> None:
    ts = [
        _at(0),
        _at(8),
        _at(24),  # 16:00 missing
        _at(32) + timedelta(minutes=24),  # late, not missing (Hyperliquid 2023-05-23 08:24)
        _at(40),
        _at(41),
        _at(42),
        _at(45),  # 43:00 and 44:00 missing on the hourly clock
        _at(46),
    ]
    intervals = ["8h"] * 5 + ["1h"] * 4
    funding = _funding(ts, [0.0001] * len(ts), intervals)

    assert _rows(kernels.find_funding_gaps(funding.lazy())) == [
        ("gap", "warning", _at(16), _at(16), 1),
        ("gap", "warning", _at(43), _at(44), 2),
    ]


def test_settlements_with_unknown_interval_are_not_judged() -> None:
    funding = _funding([_at(0), _at(30)], [0.0001, 0.0001], [None, None])

    assert kernels.find_funding_gaps(funding.lazy()).collect().height == 0


# --------------------------------------------------------------------------------- interval change


def test_funding_interval_change_reports_first_settlement_on_new_clock() -> None:
    ts = [*_settlements(_at(0), 4, 8 * HOUR), *_settlements(_at(25), 5, HOUR)]
    funding = _funding(ts, [0.0001] * 9, ["8h"] * 4 + ["1h"] * 5)

    found = kernels.find_interval_changes(funding.lazy()).collect()

    assert list(found.select("code", "severity", "ts_start", "ts_end", "count").iter_rows()) == [
        ("interval_change", "info", _at(25), _at(25), 1)
    ]
    assert "from 8h to 1h at 2024-01-02 01:00 (last 8h settlement at 2024-01-02 00:00)" in found["message"].item()


def test_interval_change_skips_rows_with_unknown_interval() -> None:
    funding = _funding(_settlements(_at(0), 4, 8 * HOUR), [0.0001] * 4, ["8h", None, "8h", "4h"])

    assert _rows(kernels.find_interval_changes(funding.lazy())) == [("interval_change", "info", _at(24), _at(24), 1)]


# ------------------------------------------------------------------------------------- placeholders


def test_flat_round_untraded_listing_bars_flagged_as_placeholder() -> None:
    bars = _bars([10000.0, 10000.0, *_walk(48, start=10340.0)], volumes=[0.002, 0.0, *[500.0] * 48], flat=(0, 1))

    found = kernels.find_placeholders(bars.lazy()).collect()

    assert list(found.select("code", "severity", "ts_start", "ts_end", "count").iter_rows()) == [
        ("placeholder", "warning", _at(0), _at(1), 2)
    ]
    assert "first real bar at 2024-01-01 02:00" in found["message"].item()


def test_leading_bars_with_negligible_volume_flagged_even_when_not_flat() -> None:
    # Binance ETH perp, 2019-11-27: 146 flat, 125.03 -> 133 on 0.08 ETH, 133 flat, then real trading.
    closes = [146.0, 133.0, 133.0, *_walk(40, start=142.0)]
    bars = _bars(closes, volumes=[0.01, 0.08, 0.0, *[9000.0] * 40], flat=(0, 2))

    assert _rows(kernels.find_placeholders(bars.lazy())) == [("placeholder", "warning", _at(0), _at(2), 3)]


def test_flat_round_bars_with_real_volume_flagged_from_two_bars() -> None:
    two = _bars([25000.0, 25000.0, *_walk(30, start=25100.0)], flat=(0, 1))
    one = _bars([25000.0, *_walk(30, start=25100.0)], flat=(0,))

    assert _rows(kernels.find_placeholders(two.lazy())) == [("placeholder", "warning", _at(0), _at(1), 2)]
    assert kernels.find_placeholders(one.lazy()).collect().height == 0


def test_flat_bars_at_unround_price_with_real_volume_not_placeholders() -> None:
    bars = _bars([10344.77, 10344.77, *_walk(30, start=10350.0)], flat=(0, 1))

    assert kernels.find_placeholders(bars.lazy()).collect().height == 0


def test_mark_series_flat_start_flagged_whatever_its_volume() -> None:
    bars = _bars([7554.17, 7554.17, 7554.17, *_walk(30, start=7560.0)], volumes=[0.0] * 33, flat=(0, 1, 2))
    mark = bars.with_columns(price_type=pl.lit("mark"))

    assert _rows(kernels.find_placeholders(mark.lazy())) == [("placeholder", "warning", _at(0), _at(2), 3)]


def test_mark_series_without_volume_not_placeholder_when_prices_move() -> None:
    # Hyperliquid 8h mark bars carry volume 0 for months while the price moves: not placeholders.
    mark = _bars(_walk(40), volumes=[0.0] * 20 + [50.0] * 20, price_type="mark")

    assert kernels.find_placeholders(mark.lazy()).collect().height == 0


def test_flat_untraded_bars_after_first_real_bar_not_placeholders() -> None:
    closes = _walk(30)
    bars = _bars(closes, volumes=[100.0, 0.0, 0.0, *[100.0] * 27], flat=(1, 2))

    assert kernels.find_placeholders(bars.lazy()).collect().height == 0


# ------------------------------------------------------------------------------------------ outliers


def test_single_bad_tick_flagged_once_as_outlier() -> None:
    closes = _walk(200)
    closes[120] = round(closes[120] * 1.5, 2)

    found = kernels.find_price_outliers(_bars(closes).lazy()).collect()

    assert list(found.select("code", "severity", "ts_start", "ts_end", "count").iter_rows()) == [
        ("outlier", "warning", _at(120), _at(120), 1)
    ]
    assert "found " + str(closes[120]) in found["message"].item()


def test_level_shift_that_persists_not_flagged_as_outlier() -> None:
    closes = _walk(200)
    shifted = [c * 1.3 if i >= 100 else c for i, c in enumerate(closes)]

    assert kernels.find_price_outliers(_bars(shifted).lazy()).collect().height == 0


def test_small_jump_in_flat_market_not_outlier_below_min_deviation() -> None:
    closes = [100.0] * 30 + [101.0] + [100.0] * 30  # MAD 0: only the 5% floor protects a 1% blip

    assert kernels.find_price_outliers(_bars(closes).lazy()).collect().height == 0
    assert _rows(kernels.find_price_outliers(_bars(closes).lazy(), min_log_deviation=0.005)) == [
        ("outlier", "warning", _at(30), _at(30), 1)
    ]


def test_funding_rate_beyond_hourly_bound_flagged() -> None:
    ts = _settlements(_at(0), 4, 8 * HOUR)
    funding = _funding([*ts, _at(25)], [0.0001, 0.09, -0.07, 0.0001, -0.011], ["8h"] * 4 + ["1h"])

    found = kernels.find_rate_outliers(funding.lazy()).collect()

    assert list(found.select("code", "ts_start", "count").iter_rows()) == [
        ("outlier", _at(8), 1),
        ("outlier", _at(25), 1),
    ]
    assert (
        found["message"][0]
        == "expected |funding rate| <= 1.0% per hour; found 0.09 per 8h settlement (1.125% per hour)"
    )


# --------------------------------------------------------------------------------------------- stale


def test_traded_bars_with_frozen_close_flagged_from_min_bars() -> None:
    six, five = _walk(40), _walk(40)
    six[9:15] = [six[9]] * 6
    five[9:15] = [five[9]] * 5 + [five[9] + 0.5]

    assert _rows(kernels.find_stale_bars(_bars(six).lazy())) == [("stale", "warning", _at(9), _at(14), 6)]
    assert kernels.find_stale_bars(_bars(five).lazy()).collect().height == 0


def test_bars_without_trades_reported_as_info_not_warning() -> None:
    closes = _walk(30)
    closes[11:19] = [closes[10]] * 8
    volumes = [100.0] * 11 + [0.0] * 8 + [100.0] * 11
    bars = _bars(closes, volumes=volumes, flat=range(11, 19))

    found = kernels.find_stale_bars(bars.lazy()).collect()

    assert list(found.select("code", "severity", "ts_start", "ts_end", "count").iter_rows()) == [
        ("stale", "info", _at(11), _at(18), 8)
    ]
    assert "8 consecutive bars without trades (volume 0)" in found["message"].item()


def test_frozen_mark_price_flagged_as_warning() -> None:
    closes = _walk(30)
    closes[5:12] = [closes[5]] * 7
    mark = _bars(closes, volumes=[0.0] * 30, price_type="mark")

    assert _rows(kernels.find_stale_bars(mark.lazy())) == [("stale", "warning", _at(5), _at(11), 7)]


def test_repeated_funding_rate_without_mark_price_not_stale() -> None:
    funding = _funding(_settlements(_at(0), 50, 8 * HOUR), [0.0001] * 50, ["8h"] * 50)

    assert kernels.find_stale_funding(funding.lazy()).collect().height == 0


def test_repeated_rate_and_mark_price_flagged_stale() -> None:
    marks = [100.0, 101.0, 102.0, 102.0, 102.0, 103.0]
    funding = _funding(_settlements(_at(0), 6, 8 * HOUR), [0.0001] * 6, ["8h"] * 6, marks=marks)

    assert _rows(kernels.find_stale_funding(funding.lazy())) == [("stale", "warning", _at(16), _at(32), 3)]


# ------------------------------------------------------------------------------- several series


def test_series_in_one_frame_are_checked_separately() -> None:
    walk = _walk(20)
    level = walk[-1] + 0.3
    btc = _bars([*walk, *[level] * 3], ts=[_at(h) for h in range(23)])
    eth = _bars(
        [*[level] * 3, *_walk(20, start=level * 1.01)], ts=[_at(h) for h in range(40, 63)], symbol="ETH-USDT-PERP"
    )
    both = pl.concat([btc, eth]).sort(*kernels.BAR_SERIES, "ts")

    # No gap between BTC's last bar and ETH's first; the two 3-bar runs at one level do not join into 6.
    assert check_bars(both, config=CheckConfig(stale_min_bars=4)).collect().height == 0
    # The same rows read as one series do hold both defects.
    assert [row[:2] for row in _rows(kernels.find_bar_gaps(both.lazy(), by=()))] == [("gap", "warning")]
    assert _rows(kernels.find_stale_bars(both.lazy(), by=(), min_bars=4)) == [("stale", "warning", _at(20), _at(42), 6)]


def test_placeholder_bars_not_reported_again_as_stale_or_outlier() -> None:
    closes = [1000.0] * 8 + _walk(60, start=1500.0)
    bars = _bars(closes, volumes=[0.0] * 8 + [100.0] * 60, flat=range(8))

    found = check_bars(bars).collect()

    assert list(found.select("code", "ts_start", "ts_end", "count").iter_rows()) == [("placeholder", _at(0), _at(7), 8)]


# ------------------------------------------------------------------------------------ configuration


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("outlier_window_bars", 2, "outlier_window_bars must be at least 3, was 2"),
        ("stale_min_bars", 1, "stale_min_bars must be at least 2, was 1"),
        ("outlier_mads", -1.0, "outlier_mads must be >= 0, was -1.0"),
        ("max_funding_rate_per_hour", 0.0, r"max_funding_rate_per_hour must be > 0, was 0.0"),
        ("funding_late_fraction", 1.0, r"funding_late_fraction must be in \[0, 1\), was 1.0"),
    ],
)
def test_config_out_of_range_raises_naming_the_field(field: str, value: float, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        CheckConfig(**{field: value})


def test_kernel_thresholds_out_of_range_raise() -> None:
    bars = _bars(_walk(10)).lazy()
    funding = _funding([_at(0)], [0.0001], ["8h"]).lazy()
    with pytest.raises(ValueError, match="window_bars must be at least 3, was 1"):
        kernels.find_price_outliers(bars, window_bars=1)
    with pytest.raises(ValueError, match="min_bars must be at least 2, was 0"):
        kernels.find_stale_bars(bars, min_bars=0)
    with pytest.raises(ValueError, match="min_settlements must be at least 2, was 1"):
        kernels.find_stale_funding(funding, min_settlements=1)
    with pytest.raises(ValueError, match="max_rate_per_hour must be > 0, was -1"):
        kernels.find_rate_outliers(funding, max_rate_per_hour=-1)
    with pytest.raises(ValueError, match=r"late_fraction must be in \[0, 1\), was 2"):
        kernels.find_funding_gaps(funding, late_fraction=2)


# ------------------------------------------------------------------------------------------ store


def _hourly(
    start: datetime, closes: Sequence[float], *, skip: Sequence[int] = ()
) -> list[tuple[datetime, str, str, str, str, str]]:
    return [
        (start + i * HOUR, str(c), str(c + 1), str(c - 1), str(c), "5") for i, c in enumerate(closes) if i not in skip
    ]


def _gappy_store(root: Path) -> Store:
    store = Store(root)
    store.write("ohlcv", ohlcv_batch(_hourly(T0, _walk(30), skip=(10, 11))), INFO)
    store.write(
        "ohlcv", ohlcv_batch(_hourly(T0, _walk(30, seed=2), skip=(20,)), venue="bybit", symbol="ETH-USDT-PERP"), INFO
    )
    changed = [*_settlements(T0, 3, 8 * HOUR), *_settlements(_at(17), 3, HOUR)]
    store.write("funding", funding_batch([(t, "0.0001") for t in changed[:3]], interval="8h"), INFO)
    store.write("funding", funding_batch([(t, "0.0001") for t in changed[3:]], interval="1h"), INFO)
    return store


def test_check_store_describes_each_finding_by_kind_venue_symbol_and_series(store_root: Path) -> None:
    findings = check_store(_gappy_store(store_root))

    assert [(f.kind, f.venue, f.symbol, f.series, f.code, f.ts_start, f.count) for f in findings] == [
        ("funding", "binance", "BTC-USDT-PERP", "funding", "interval_change", _at(17), 1),
        ("ohlcv", "binance", "BTC-USDT-PERP", "trade 1h", "gap", _at(10), 2),
        ("ohlcv", "bybit", "ETH-USDT-PERP", "trade 1h", "gap", _at(20), 1),
    ]
    assert all(isinstance(f, Finding) and f.ts_start.tzinfo is not None for f in findings)


def test_check_store_filters_by_kind_venue_and_symbol(store_root: Path) -> None:
    store = _gappy_store(store_root)

    assert [f.venue for f in check_store(store, venues=["bybit"])] == ["bybit"]
    assert [f.kind for f in check_store(store, kinds=["funding"])] == ["funding"]
    assert [f.symbol for f in check_store(store, symbols=["BTC-USDT-PERP"], kinds=["ohlcv"])] == ["BTC-USDT-PERP"]
    assert check_store(store, kinds=["liquidations"]) == []


def test_check_store_on_empty_store_yields_no_findings(store_root: Path) -> None:
    assert check_store(Store(store_root)) == []


def test_check_store_unknown_kind_raises(store_root: Path) -> None:
    with pytest.raises(ValueError, match="unknown dataset kind 'bars'"):
        check_store(Store(store_root), kinds=["bars"])


def test_format_findings_prints_aligned_table_and_totals(store_root: Path) -> None:
    text = format_findings(check_store(_gappy_store(store_root)))
    lines = text.splitlines()

    assert lines[0].split() == ["severity", "code", "venue", "symbol", "series", "start", "end", "count", "message"]
    assert lines[2].startswith(
        "warning   gap              binance  BTC-USDT-PERP  trade 1h  2024-01-01 10:00  2024-01-01 11:00  2 "
    )
    assert lines[-1] == "3 finding(s) (2 warning, 1 info): 2 gap, 1 interval_change"
    assert format_findings([]) == "no findings"


def test_findings_to_json_round_trips_fields_with_iso_timestamps(store_root: Path) -> None:
    findings = check_store(_gappy_store(store_root))

    loaded = json.loads(findings_to_json(findings))

    assert loaded[1] == {
        "kind": "ohlcv",
        "venue": "binance",
        "symbol": "BTC-USDT-PERP",
        "series": "trade 1h",
        "code": "gap",
        "severity": "warning",
        "ts_start": "2024-01-01T10:00:00+00:00",
        "ts_end": "2024-01-01T11:00:00+00:00",
        "count": 2,
        "message": findings[1].message,
    }


# -------------------------------------------------------------------------------------- real data


def _import(store: Store, path: Path) -> None:
    importer = require_importer(path)
    info = SourceInfo(
        source=str(path), sha256=sha256_of(path), importer=importer.name, importer_version=importer.version
    )
    for batch in importer.read(path, ImportOptions()):
        store.write(batch.kind, batch.frame, info)


def test_binance_btc_perp_listing_placeholders_flagged(shared_data: Path, store_root: Path) -> None:
    store = Store(store_root)
    _import(store, shared_data / "binance_freqtrade" / "futures" / "BTC_USDT_USDT-1h-futures.feather")

    findings = check_store(store)

    placeholders = [f for f in findings if f.code == "placeholder"]
    assert [(f.series, f.ts_start, f.ts_end, f.count) for f in placeholders] == [
        ("trade 1h", datetime(2019, 9, 8, 17, tzinfo=UTC), datetime(2019, 9, 8, 18, tzinfo=UTC), 2)
    ]
    assert "opening at 10000.0" in placeholders[0].message
    assert not [f for f in findings if f.code in ("gap", "stale")]


def test_hyperliquid_funding_moves_from_8h_to_1h_once_on_2023_06_08(shared_data: Path, store_root: Path) -> None:
    store = Store(store_root)
    _import(store, shared_data / "hyperliquid_freqtrade" / "BTC_USDC_USDC-1h-funding_rate.feather")

    findings = check_store(store)

    changes = [f for f in findings if f.code == "interval_change"]
    assert [(f.ts_start, f.ts_end) for f in changes] == [(datetime(2023, 6, 8, 1, tzinfo=UTC),) * 2]
    assert "from 8h to 1h" in changes[0].message
    # Late settlements (2023-05-23 08:24, 2023-09-27 23:02, ...) fill their slot; three hours are really missing.
    assert [(f.ts_start, f.count) for f in findings if f.code == "gap"] == [
        (datetime(2023, 7, 2, 20, tzinfo=UTC), 1),
        (datetime(2023, 8, 23, 20, tzinfo=UTC), 1),
        (datetime(2024, 8, 15, 13, tzinfo=UTC), 1),
    ]


def test_rate_above_the_venues_cap_is_reported_even_below_the_outlier_bound() -> None:
    # 0.05 per 8 h is 0.625 %/h: under check's 1 %/h outlier bound, over the 4 % per settlement cap.
    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    funding = funding_batch([(t0 + timedelta(hours=8 * i), r) for i, r in enumerate(["0.0001", "0.05", "-0.0002"])])
    found = kernels.find_over_cap_rates(funding.lazy(), {("binance", "8h"): 0.04}).collect()
    assert found["code"].to_list() == ["over_cap"]
    assert found["ts_start"].to_list() == [t0 + timedelta(hours=8)]
    assert "cap 0.04 per 8h settlement; found 0.05" in found["message"][0]
    assert kernels.find_rate_outliers(funding.lazy()).collect().height == 0
