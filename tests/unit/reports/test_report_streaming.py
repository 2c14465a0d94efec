"""A run's report read lazily from its artefacts: the same figures as from whole frames, never the bars whole."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from engine.results.artefacts import write_frame
from reports import tearsheet as ts
from reports.backtest import main, render_report, render_run

D = pl.Decimal(38, 18)
NS = pl.Datetime("ns", "UTC")
T0 = datetime(2024, 3, 1, tzinfo=UTC)
MINUTES = 400
# Three traded instruments (several non-zero notionals at one close) and two that are never traded.
INSTRUMENTS = ("A.BINANCE", "B.BINANCE", "C.KRAKEN", "D.BINANCE", "E.KRAKEN")
TRADED = INSTRUMENTS[:3]


def _decimals(values: Any, places: int) -> list[Decimal]:
    return [Decimal(f"{v:.{places}f}") for v in values]


def _bars(rng: np.random.Generator, instrument_id: str) -> pl.DataFrame:
    # A minute grid with some closes missing, so the instruments sharing a close instant vary.
    minutes = np.sort(rng.choice(MINUTES, size=MINUTES - 40, replace=False))
    closes = 100 + np.cumsum(rng.normal(0, 0.5, minutes.size))
    return pl.DataFrame(
        {
            "instrument_id": [instrument_id] * minutes.size,
            "ts": [T0 + timedelta(minutes=int(m)) for m in minutes],
            "close": _decimals(closes, 4),
        },
        schema={"instrument_id": pl.String, "ts": NS, "close": D},
    )


def _fills(rng: np.random.Generator) -> pl.DataFrame:
    rows = []
    for instrument_id in TRADED:
        # Fills between closes too (seconds in), before the first close and at a close instant.
        for minute in sorted(rng.choice(MINUTES, size=12, replace=False)):
            rows.append(
                {
                    "ts": T0 + timedelta(minutes=int(minute), seconds=int(rng.integers(0, 2)) * 30),
                    "venue": instrument_id.split(".")[1].lower(),
                    "instrument_id": instrument_id,
                    "position_id": f"{instrument_id}-1",
                    "side": "BUY" if rng.random() < 0.55 else "SELL",
                    "quantity": Decimal(f"{rng.uniform(0.1, 3):.3f}"),
                    "price": Decimal(f"{100 + rng.normal(0, 2):.4f}"),
                    "commission": Decimal(f"{rng.uniform(0, 0.2):.6f}"),
                }
            )
    schema = {"ts": NS, "quantity": D, "price": D, "commission": D}
    return pl.DataFrame(rows, schema_overrides=schema).sort("ts")


def _equity(rng: np.random.Generator) -> pl.DataFrame:
    frames = []
    for currency in ("USDT", "USD"):
        pnl = {k: _decimals(np.cumsum(rng.normal(0, 3, MINUTES)), 6) for k in ("pnl_price", "pnl_funding", "pnl_fees")}
        frame = pl.DataFrame(
            {"ts": [T0 + timedelta(minutes=m) for m in range(MINUTES)], "currency": [currency] * MINUTES, **pnl},
            schema_overrides={"ts": NS, **dict.fromkeys(pnl, D)},
        )
        frames.append(frame.with_columns(pnl_total=pl.col("pnl_price") + pl.col("pnl_funding") + pl.col("pnl_fees")))
    return pl.concat(frames)


def write_run(run_dir: Path, *, seed: int = 7) -> Path:
    """Write a run folder whose ``bars.parquet`` is written stream by stream (one row group per instrument)."""
    rng = np.random.default_rng(seed)
    run_dir.mkdir(parents=True)
    write_frame([_bars(rng, i).lazy() for i in INSTRUMENTS], run_dir / "bars.parquet")
    write_frame(_equity(rng), run_dir / "equity.parquet")
    write_frame(_fills(rng), run_dir / "fills.parquet")
    funding = pl.DataFrame(
        {
            "ts": [T0 + timedelta(hours=h) for h in (1, 2, 3)],
            "venue": ["binance"] * 3,
            "instrument_id": ["A.BINANCE"] * 3,
            "position_size": [Decimal(-2)] * 3,
            "mark_price": [Decimal(100)] * 3,
            "amount": [Decimal("0.02"), Decimal("0.01"), Decimal("-0.005")],
            "currency": ["USDT"] * 3,
        },
        schema_overrides={"ts": NS, "position_size": D, "mark_price": D, "amount": D},
    )
    write_frame(funding, run_dir / "funding.parquet")
    positions = pl.DataFrame(
        {
            "position_id": ["A.BINANCE-1", "B.BINANCE-1"],
            "instrument_id": ["A.BINANCE", "B.BINANCE"],
            "ts_opened": [T0, T0 + timedelta(hours=1)],
            "ts_closed": [T0 + timedelta(hours=2), None],
            "realized_pnl": [Decimal("1.5"), Decimal(0)],
            "currency": ["USDT", "USDT"],
        },
        schema_overrides={"ts_opened": NS, "ts_closed": NS, "realized_pnl": D},
    )
    write_frame(positions, run_dir / "positions.parquet")
    stats = {
        "name": "streaming",
        "config_hash": "abc123",
        "starting_balances": {"USDT": "10000", "USD": "5000"},
        "by_currency": {"USDT": {"pnl_total": "1"}, "USD": {"pnl_total": "2"}},
        "pnl_total": "3",
        "bars": MINUTES,
    }
    (run_dir / "stats.json").write_text(json.dumps(stats))
    (run_dir / "config.json").write_text(json.dumps({"strategy": {"params": {"entry_apr": "0.1"}}}))
    return run_dir


def whole_frame_exposure(
    fills: pl.DataFrame, bars: pl.DataFrame, equity: pl.DataFrame, starting_capital: Decimal
) -> pl.DataFrame:
    # The exposure as computed before the report streamed: every bar at once.
    signed = pl.when(pl.col("side") == "BUY").then(pl.col("quantity")).otherwise(-pl.col("quantity"))
    held = (
        fills.sort("ts")
        .select("ts", "instrument_id", signed.cast(pl.Float64).alias("change"))
        .with_columns(position=pl.col("change").cum_sum().over("instrument_id"))
        .group_by("instrument_id", "ts", maintain_order=True)
        .agg(pl.col("position").last())
        .sort("ts")
    )
    closes = bars.sort("ts").with_columns(pl.col("close").cast(pl.Float64))
    marked = closes.join_asof(
        held, on="ts", by="instrument_id", strategy="backward", check_sortedness=False
    ).with_columns(notional=pl.col("position").fill_null(0.0) * pl.col("close"))
    totals = marked.group_by("ts").agg(
        pl.col("notional").abs().sum().alias("gross"), pl.col("notional").sum().alias("net")
    )
    curve = (
        equity.group_by("ts")
        .agg(pl.col("pnl_total").sum())
        .select("ts", (pl.col("pnl_total").cast(pl.Float64) + float(starting_capital)).alias("equity"))
    )
    joined = totals.sort("ts").join_asof(curve.sort("ts"), on="ts", strategy="backward")
    return joined.select(
        "ts", "gross", "net", pl.when(pl.col("equity") > 0).then(pl.col("gross") / pl.col("equity")).alias("leverage")
    )


def whole_frame_costs(fills: pl.DataFrame, bars: pl.DataFrame) -> pl.DataFrame:
    # The fees and slippage as computed before the report streamed: one as-of join on every bar.
    closes = bars.sort("ts").select("instrument_id", "ts", pl.col("close").alias("reference"))
    joined = fills.sort("ts").join_asof(
        closes, on="ts", by="instrument_id", strategy="backward", check_sortedness=False
    )
    direction = pl.when(pl.col("side") == "BUY").then(1).otherwise(-1)
    paid = ((pl.col("price") - pl.col("reference")) * pl.col("quantity") * direction).fill_null(0)
    return (
        joined.group_by("instrument_id")
        .agg(pl.len().alias("fills"), pl.col("commission").sum().alias("fees"), paid.sum().alias("slippage"))
        .sort("instrument_id")
    )


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    return write_run(tmp_path / "run")


def test_bars_artefact_spans_several_row_groups(run_dir: Path) -> None:
    import pyarrow.parquet as pq

    assert pq.ParquetFile(run_dir / "bars.parquet").metadata.num_row_groups >= len(INSTRUMENTS)


@pytest.mark.parametrize("window_rows", [1, 97, 500, 10**9])
def test_windowed_exposure_equals_the_whole_frame_exactly(run_dir: Path, window_rows: int) -> None:
    bars = pl.read_parquet(run_dir / "bars.parquet")
    fills, equity = pl.read_parquet(run_dir / "fills.parquet"), pl.read_parquet(run_dir / "equity.parquet")
    capital = Decimal(15000)
    lazy = ts.exposure(
        fills,
        pl.scan_parquet(run_dir / "bars.parquet"),
        pl.scan_parquet(run_dir / "equity.parquet"),
        capital,
        window_rows=window_rows,
    )
    expected = whole_frame_exposure(fills, bars, equity, capital)
    assert lazy.height == bars["ts"].n_unique()
    assert (lazy.filter(pl.col("gross") > 0).height) > MINUTES // 2  # positions are held most of the run
    assert_frame_equal(lazy, expected, check_exact=True)


def test_costs_read_per_instrument_equal_the_whole_frame(run_dir: Path) -> None:
    bars, fills = pl.read_parquet(run_dir / "bars.parquet"), pl.read_parquet(run_dir / "fills.parquet")
    lazy = ts.costs(fills, pl.scan_parquet(run_dir / "bars.parquet"))
    assert lazy["instrument_id"].to_list() == sorted(TRADED)
    assert_frame_equal(lazy, whole_frame_costs(fills, bars), check_exact=True)


def test_streamed_report_is_the_whole_frame_report(run_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    frames = {n: pl.read_parquet(run_dir / f"{n}.parquet") for n in ("equity", "fills", "bars", "funding", "positions")}
    whole = render_report(
        run_dir.parent / "whole.html",
        stats=json.loads((run_dir / "stats.json").read_text()),
        config=json.loads((run_dir / "config.json").read_text()),
        **frames,
    ).read_text()
    monkeypatch.setattr(ts, "WINDOW_ROWS", 97)  # several slices of close instants
    streamed = render_run(run_dir).read_text()
    assert "Exposure and leverage" in streamed
    assert streamed.count("Plotly.newPlot") == 4 + len(TRADED)
    assert streamed == whole


def _recording_collect(monkeypatch: pytest.MonkeyPatch) -> list[tuple[list[str], int]]:
    collected: list[tuple[list[str], int]] = []
    original: Callable[..., pl.DataFrame] = pl.LazyFrame.collect

    def collect(self: pl.LazyFrame, *args: Any, **kwargs: Any) -> pl.DataFrame:
        frame = original(self, *args, **kwargs)
        collected.append((frame.columns, frame.height))
        return frame

    monkeypatch.setattr(pl.LazyFrame, "collect", collect)
    return collected


def test_render_run_never_holds_the_bars_whole(run_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    read_parquet = pl.read_parquet

    def refuse_per_bar(source: Any, *args: Any, **kwargs: Any) -> pl.DataFrame:
        if Path(source).name in ("bars.parquet", "equity.parquet"):
            raise AssertionError(f"{Path(source).name} read whole")
        return read_parquet(source, *args, **kwargs)

    monkeypatch.setattr(pl, "read_parquet", refuse_per_bar)
    monkeypatch.setattr(ts, "WINDOW_ROWS", 200)
    collected = _recording_collect(monkeypatch)
    render_run(run_dir)
    total = pl.scan_parquet(run_dir / "bars.parquet").select(pl.len()).collect().item()
    per_instrument = total // len(INSTRUMENTS)
    closes = [height for columns, height in collected if "close" in columns]
    # One slice of close instants (about 200 bars) or one traded instrument's closes at a time.
    assert closes
    assert max(closes) <= per_instrument < total


def test_the_collect_probe_sees_a_whole_frame_read(run_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    collected = _recording_collect(monkeypatch)
    total = pl.scan_parquet(run_dir / "bars.parquet").collect().height
    assert ([c for c, _ in collected][-1], max(h for _, h in collected)) == (["instrument_id", "ts", "close"], total)


def test_a_run_folder_without_bars_is_refused(run_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (run_dir / "bars.parquet").unlink()
    with pytest.raises(FileNotFoundError, match=r"no bars\.parquet in"):
        render_run(run_dir)
    assert main([str(run_dir)]) == 3
    assert "expected a run folder with stats.json and the ledgers, no bars.parquet in" in capsys.readouterr().err
