"""The paper node's journal on real data: kill -9 at random moments, restarts of both carry strategies
(SpotPerpCarry, CrossVenueCarry), a restart after the replay ended, and a corrupt journal refused with exit 7.

Real Binance BTC spot + perp (and Hyperliquid BTC perp) hourly data from ../shared/data; every replay
runs at ``--speed 0``. The torture test kills a CLI node at random journal row counts (never after a
random sleep), so it does not depend on the machine's speed.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from engine.backtest import load_config, parse_config, with_overrides
from engine.config import RunConfig
from engine.live import run_session
from engine.live.journal import journal_path
from tests.kit.live import (
    FILL_COLUMNS,
    FUNDING_COLUMNS,
    cross_venue_catalog,
    open_positions,
    replay_options,
    sorted_rows,
    spot_perp_carry_toml,
    spot_perp_catalog,
)

REPO = Path(__file__).resolve().parents[2]
DATA_WINDOW = (datetime(2023, 12, 29, tzinfo=UTC), datetime(2024, 1, 25, tzinfo=UTC))
# Oct-Nov 2024 on Binance and Hyperliquid: CrossVenueCarry (configs/carry_binance_hyperliquid_btc.toml)
# holds five positions, the first from Oct 24 02:00 to Oct 25 08:00; 797 settlements on the two clocks.
CROSS_VENUE_WINDOW = (datetime(2024, 10, 1, tzinfo=UTC), datetime(2024, 12, 1, tzinfo=UTC))
FILL_KEYS = ["ts", "instrument_id"]
KILLS = 20
SEED = 20240101


@pytest.fixture(scope="module")
def catalog(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return spot_perp_catalog(tmp_path_factory.mktemp("journal"), shared_data, start=DATA_WINDOW[0], end=DATA_WINDOW[1])


@pytest.fixture(scope="module")
def cross_catalog(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return cross_venue_catalog(
        tmp_path_factory.mktemp("journal-cross"), shared_data, start=CROSS_VENUE_WINDOW[0], end=CROSS_VENUE_WINDOW[1]
    )


def _config_text(catalog: Path, *, end: str = "2024-01-22T00:00:00Z") -> str:
    # Three weeks of January 2024, short holding periods: 19 round trips and 58 settlements in the backtest.
    return spot_perp_carry_toml(
        catalog,
        name="journal-carry",
        start="2024-01-01T00:00:00Z",
        end=end,
        params="""
notional = "40000"
entry_apr = "0.05"
exit_apr = "0.02"
lookback_settlements = 3
round_trip_cost_bps = "32"
max_holding_hours = 48
""",
        risk="""
max_total_exposure_usd = 160000
max_leverage = { BINANCE = 2 }
daily_loss_limit_usd = 5000
max_drawdown_pct = 15
""",
    )


def _rows(database: Path, table: str, columns: list[str]) -> list[tuple[object, ...]]:
    # Read-only, as an operator's tool would: never blocks or changes the node's journal.
    if not database.exists():
        return []
    try:
        connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5)
    except sqlite3.OperationalError:
        return []  # being renamed into place
    try:
        quoted = ", ".join(f'"{c}"' for c in columns)
        return connection.execute(f"SELECT {quoted} FROM {table} ORDER BY seq").fetchall()  # noqa: S608
    except sqlite3.OperationalError:
        return []  # not created yet
    finally:
        connection.close()


def _sessions(database: Path) -> int:
    if not database.exists():
        return 0
    try:
        connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5)
    except sqlite3.OperationalError:
        return 0
    try:
        count: int = connection.execute("SELECT count(*) FROM sessions").fetchone()[0]
        return count
    except sqlite3.OperationalError:
        return 0
    finally:
        connection.close()


def _committed(database: Path) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    fills = _rows(database, "fills", ["session", "client_order_id", "trade_id", "ts", "quantity", "price"])
    funding = _rows(database, "funding", ["ts", "instrument_id", "amount"])
    return fills, funding


def _cli(config: Path, tmp_path: Path, *extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "engine.live", str(config), "--replay", "--speed", "0",
         "--out", str(tmp_path / "runs"), "--state-dir", str(tmp_path / "state"), "--log-level", "ERROR", *extra],
        cwd=REPO,
        env={**os.environ, "PYTHONHASHSEED": "0"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip


@pytest.mark.slow
def test_kill_9_at_random_moments_loses_nothing_and_the_resumed_pnl_is_exact(catalog: Path, tmp_path: Path) -> None:
    """20 kill -9 during a paper replay of SpotPerpCarry; the resumed run equals an uninterrupted one exactly.

    Each kill lands once the journal holds a random number of fill + funding rows (seeded), polled
    read-only. After each kill the journal must still hold every row committed before it (checked again
    after every restart and at the end), and the final cumulative ledger must equal an uninterrupted
    run's: every fill (time, instrument, side, quantity, price, commission), every funding settlement
    and ``pnl_total``, ``pnl_price``, ``pnl_funding``, ``pnl_fees``. Tolerance: none.
    """
    config = parse_config(_config_text(catalog).encode())
    reference = run_session(config, replay_options(tmp_path / "reference", fresh=True)).result
    total_rows = reference.fills.height + reference.funding.height
    assert reference.fills.height >= 30
    assert reference.funding.height >= 40

    config_file = tmp_path / "carry.toml"
    config_file.write_text(_config_text(catalog))
    database = journal_path(tmp_path / "state", reference.config_hash)
    rng = random.Random(SEED)
    targets = sorted(rng.sample(range(1, total_rows), KILLS))
    snapshots: list[tuple[list[tuple[object, ...]], list[tuple[object, ...]]]] = []
    kills = 0
    for index, target in enumerate(targets):
        started = 0 if index == 0 else _sessions(database)
        process = _cli(config_file, tmp_path, *(["--fresh"] if index == 0 else []))
        deadline = time.monotonic() + 120
        # Kill only once this process has opened its session: a target the earlier sessions already
        # passed must not kill it during start-up, before it journals anything (a loaded machine).
        while process.poll() is None and _sessions(database) <= started and time.monotonic() < deadline:
            time.sleep(0.002)
        while process.poll() is None and time.monotonic() < deadline:
            fills, funding = _committed(database)
            if len(fills) + len(funding) >= target:
                break
            time.sleep(0.002)
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            kills += 1
        process.wait(timeout=30)
        assert process.stderr is not None
        process.stderr.close()
        committed = _committed(database)
        for earlier in snapshots:  # nothing committed before an earlier kill went missing
            assert set(earlier[0]) <= set(committed[0])
            assert set(earlier[1]) <= set(committed[1])
        snapshots.append(committed)
    final = _cli(config_file, tmp_path)
    _, errors = final.communicate(timeout=300)
    assert final.returncode == 0, errors.decode()[-2000:]
    fills, funding = _committed(database)
    for earlier in snapshots:
        assert set(earlier[0]) <= set(fills)
        assert set(earlier[1]) <= set(funding)
    assert kills >= KILLS

    run_dir = tmp_path / "runs" / reference.config_hash
    resumed_fills = pl.read_parquet(run_dir / "fills.parquet")
    resumed_funding = pl.read_parquet(run_dir / "funding.parquet")
    assert sorted_rows(resumed_fills, FILL_COLUMNS, FILL_KEYS).equals(
        sorted_rows(reference.fills, FILL_COLUMNS, FILL_KEYS)
    )
    assert resumed_funding.select(FUNDING_COLUMNS).equals(reference.funding.select(FUNDING_COLUMNS))
    stats = json.loads((run_dir / "stats.json").read_text())
    for key in ("pnl_total", "pnl_price", "pnl_funding", "pnl_fees", "fills", "funding_settlements"):
        assert stats[key] == reference.stats[key], key
    assert stats["sessions"] >= KILLS + 1
    assert len(list(run_dir.glob("session-*"))) >= 1


def _assert_restart_keeps_the_legs(config: RunConfig, tmp_path: Path, legs: set[str]) -> None:
    # Paused 6 h after the first fill (inside the first position), resumed: the two RESTORE orders come
    # first and fill; then the strategy trades what an uninterrupted run trades.
    reference = run_session(config, replay_options(tmp_path / "reference", fresh=True)).result
    pause = reference.fills.row(0, named=True)["ts"] + timedelta(hours=6)
    first = run_session(config, replay_options(tmp_path, fresh=True, replay_until=pause))
    assert first.stop_reason == "replay paused"
    assert first.result.stats["restored_positions"] == {}
    assert first.session_result is not None
    held = open_positions(first.session_result.positions)
    assert set(held["instrument_id"]) == legs, "the pause must fall inside a position"

    second = run_session(config, replay_options(tmp_path))
    assert second.session == 2
    assert set(second.restored_positions) == legs
    assert second.session_result is not None
    restore = second.session_result.orders.sort("ts_init").head(2)
    assert set(restore["instrument_id"]) == legs
    assert set(restore["status"]) == {"FILLED"}
    assert sorted_rows(second.result.fills, FILL_COLUMNS, FILL_KEYS).equals(
        sorted_rows(reference.fills, FILL_COLUMNS, FILL_KEYS)
    )
    assert second.result.funding.select(FUNDING_COLUMNS).equals(reference.funding.select(FUNDING_COLUMNS))
    for key in ("pnl_total", "pnl_price", "pnl_funding", "pnl_fees", "fills", "funding_settlements"):
        assert second.result.stats[key] == reference.stats[key], key
    run_dir = tmp_path / "runs" / reference.config_hash
    assert (run_dir / "session-1" / "stats.json").exists()
    assert (run_dir / "session-2" / "stats.json").exists()


@pytest.mark.slow
def test_spot_perp_carry_restart_keeps_the_restored_legs(catalog: Path, tmp_path: Path) -> None:
    """Stopped mid-position, restarted: both legs are re-opened at the last close and held, not traded flat.

    The second session's first orders are the two ``RESTORE`` market orders (at the journal's last close);
    after them the strategy trades exactly what an uninterrupted run trades (the cumulative fills,
    funding and PnL equal it, no tolerance).
    """
    config = parse_config(_config_text(catalog).encode())
    _assert_restart_keeps_the_legs(config, tmp_path, {"BTCUSDT.BINANCE", "BTCUSDT-PERP.BINANCE"})


@pytest.mark.slow
def test_cross_venue_carry_restart_keeps_the_restored_legs_on_both_venues(cross_catalog: Path, tmp_path: Path) -> None:
    """CrossVenueCarry (configs/carry_binance_hyperliquid_btc.toml, Oct-Nov 2024), the same as for SpotPerpCarry.

    One leg on each venue (two sandboxes, two funding clocks: Binance 8 h in USDT, Hyperliquid 1 h in
    USD): each restored leg is re-opened in its own venue's sandbox, whose balance includes its own
    funding; the cumulative fills, funding and PnL equal an uninterrupted run's, no tolerance.
    """
    config = with_overrides(
        load_config(REPO / "configs" / "carry_binance_hyperliquid_btc.toml"),
        catalog=str(cross_catalog),
        start=CROSS_VENUE_WINDOW[0],
        end=CROSS_VENUE_WINDOW[1],
    )
    _assert_restart_keeps_the_legs(config, tmp_path, {"BTCUSDT-PERP.BINANCE", "BTC-USD-PERP.HYPERLIQUID"})


@pytest.mark.slow
def test_restart_after_the_replay_ended_still_restores_the_positions(catalog: Path, tmp_path: Path) -> None:
    """A replay that ends holding a position, restarted: the re-opening orders fill at once (priming bar)."""
    config = parse_config(_config_text(catalog, end="2024-01-08T08:00:00Z").encode())
    first = run_session(config, replay_options(tmp_path, fresh=True))
    assert first.session_result is not None
    held = open_positions(first.session_result.positions)
    assert held.height == 2, "the window must end inside a position"
    second = run_session(config, replay_options(tmp_path))
    assert second.stop_reason == "replay finished"
    assert set(second.restored_positions) == set(held["instrument_id"])
    assert second.session_result is not None
    orders = second.session_result.orders
    assert orders.height == 2
    assert set(orders["status"]) == {"FILLED"}
    reopened = open_positions(second.session_result.positions)
    assert sorted(reopened["quantity"].to_list()) == sorted(held["quantity"].to_list())
    assert second.result.stats["pnl_total"] == first.result.stats["pnl_total"]
    assert Decimal(second.result.stats["pnl_total"]) != 0


@pytest.mark.slow
def test_a_corrupt_journal_is_refused_with_exit_7_naming_the_field(catalog: Path, tmp_path: Path) -> None:
    config_file = tmp_path / "carry.toml"
    config_file.write_text(_config_text(catalog, end="2024-01-03T00:00:00Z"))
    config = parse_config(config_file.read_bytes())
    run_session(config, replay_options(tmp_path, fresh=True))
    database = next((tmp_path / "state").glob("*/journal.sqlite"))
    with closing(sqlite3.connect(database)) as connection, connection:
        connection.execute("UPDATE account SET total = 'abc USDT'")
    process = _cli(config_file, tmp_path)
    _, errors = process.communicate(timeout=120)
    assert process.returncode == 7
    assert b"account.total" in errors
