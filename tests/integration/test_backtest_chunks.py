"""Streaming: a run fed in chunks writes the same artefacts as one fed the whole window at once."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from datasets.catalog.files import write_parquet
from engine.backtest import RunResult, parse_config
from engine.backtest.runner import run_backtest
from engine.run_data import load_run_data, open_catalog
from tests.kit.engine import build_catalog, hourly_bars

T0 = datetime(2024, 1, 1, tzinfo=UTC)
BINANCE, HYPERLIQUID = ("binance", "BTC-USDT-PERP"), ("hyperliquid", "BTC-USDC-PERP")
CLOSES = [f"{42000 + 10 * i}.0" for i in range(24)]
MARKS = [f"{42005 + 10 * i}.0" for i in range(24)]


def _at(hour: int) -> datetime:
    return T0.replace(hour=hour)


@pytest.fixture
def catalog(tmp_path: Path) -> Path:
    return build_catalog(
        tmp_path,
        bars={BINANCE: hourly_bars(T0, CLOSES), HYPERLIQUID: hourly_bars(T0, CLOSES)},
        marks={BINANCE: hourly_bars(T0, MARKS), HYPERLIQUID: hourly_bars(T0, MARKS)},
        funding={
            BINANCE: ("8h", [(_at(8), "0.0001"), (_at(16), "0.0002")]),
            HYPERLIQUID: ("1h", [(_at(h), f"0.0000{h % 7 + 1}") for h in range(2, 23)]),
        },
    )


def _config(catalog: Path) -> bytes:
    orders = [
        (2, "BTCUSDT-PERP.BINANCE", "SELL", "1.000"),
        (8, "BTCUSDT-PERP.BINANCE", "BUY", "0.500"),
        (20, "BTCUSDT-PERP.BINANCE", "BUY", "0.500"),
        (3, "BTC-USD-PERP.HYPERLIQUID", "BUY", "1.00000"),
        (16, "BTC-USD-PERP.HYPERLIQUID", "SELL", "1.00000"),
    ]
    rows = ", ".join(f'["{_at(h).isoformat()}", "{i}", "{side}", "{q}"]' for h, i, side, q in orders)
    return f"""
name = "chunks"
start = 2024-01-01T01:00:00Z
end = 2024-01-02T00:00:00Z
[data]
catalog = "{catalog}"
mark_prices = true
funding = true
[[venues]]
name = "binance"
instruments = ["BTC-USDT-PERP"]
starting_balances = ["100000 USDT"]
leverage = 5
[[venues]]
name = "hyperliquid"
instruments = ["BTC-USDC-PERP"]
starting_balances = ["100000 USDC"]
leverage = 5
[strategy]
path = "tests.kit.engine:Scripted"
[strategy.params]
orders = [{rows}]
""".encode()


def _artefacts(result: RunResult) -> dict[str, bytes]:
    assert result.run_dir is not None
    return {p.name: p.read_bytes() for p in sorted(result.run_dir.iterdir()) if p.suffix == ".parquet"} | {
        "stats.json": (result.run_dir / "stats.json").read_bytes()
    }


@pytest.mark.parametrize(
    "chunk_bars",
    [
        pytest.param(1, id="every settlement on a chunk boundary"),
        pytest.param(7, id="the 08:00 settlement on a boundary"),
        pytest.param(5, id="boundaries between settlements"),
    ],
)
def test_chunked_run_writes_byte_identical_artefacts(catalog: Path, tmp_path: Path, chunk_bars: int) -> None:
    config = parse_config(_config(catalog))
    whole = run_backtest(config, out_dir=tmp_path / "whole", chunk_bars=0)
    chunked = run_backtest(config, out_dir=tmp_path / "chunked", chunk_bars=chunk_bars)
    assert whole.stats["funding_settlements"] == 2 + 13  # binance 08:00; hyperliquid hourly while held
    assert _artefacts(chunked) == _artefacts(whole)


def test_chunks_split_on_ts_init_and_keep_every_event_once(catalog: Path) -> None:
    data = load_run_data(parse_config(_config(catalog)), open_catalog(catalog), progress=lambda _: None)
    hour = 3_600_000_000_000
    chunks = list(data.feed.chunks(7 * hour))
    edges = data.feed.boundaries(7 * hour)
    assert edges == [int(_at(h).timestamp()) * 1_000_000_000 for h in (8, 15, 22)]
    whole = data.feed.objects()
    assert sum(len(c) for c in chunks) == len(whole) == data.feed.event_count
    for index, chunk in enumerate(chunks):
        low = edges[index - 1] if index else None
        high = edges[index] if index < len(edges) else None
        assert all((low is None or e.ts_init >= low) and (high is None or e.ts_init < high) for e in chunk)
    # A chunk starts on a bar close: the mark and funding update stamped 08:00 open it, the bar closing then follows.
    assert min(e.ts_init for e in chunks[1]) == edges[0]


def _split_files(catalog: Path, at: datetime) -> Path:
    # The same catalog with every bar and mark file cut in two at ``at`` (files named by their ts_init
    # range, as the catalog writer names them): streams then span two files.
    split = catalog.parent / "split-catalog"
    shutil.copytree(catalog, split)
    cut = pa.scalar(int(at.timestamp()) * 1_000_000_000, pa.timestamp("ns", "UTC"))
    for path in [*split.glob("data/bars/*/*.parquet"), *split.glob("data/mark_prices/*/*.parquet")]:
        table = pq.read_table(path)
        before = pc.less(table["ts_init"], cut)
        path.unlink()
        for part in (table.filter(before), table.filter(pc.invert(before))):
            write_parquet(part, path.parent)
    return split


def test_streams_spanning_several_files_write_the_same_artefacts(catalog: Path, tmp_path: Path) -> None:
    split = _split_files(catalog, _at(10))
    assert len(list(split.glob("data/bars/BTCUSDT-PERP.BINANCE-1-HOUR-LAST-EXTERNAL/*.parquet"))) == 2
    whole = run_backtest(parse_config(_config(catalog)), out_dir=tmp_path / "whole", chunk_bars=0)
    chunked = run_backtest(parse_config(_config(split)), out_dir=tmp_path / "split", chunk_bars=5)
    expected, found = _artefacts(whole), _artefacts(chunked)
    # The configs differ by the catalog path only: so do their hashes, which stats.json names.
    stats = [json.loads(a.pop("stats.json")) for a in (expected, found)]
    assert [s.pop("config_hash") for s in stats] == [whole.config_hash, chunked.config_hash]
    assert found == expected
    assert stats[1] == stats[0]
