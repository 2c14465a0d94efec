"""The paper/live journal (``engine.live.journal``): what it stores, resumes from, backs up and refuses."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest

from datasets.exit_codes import ExitCode
from engine.errors import StateError, exit_code
from engine.live.journal import Journal, journal_path, marked_balances
from strategies.risk_state import load_state_document, state_decimal, state_field

HASH = "0123456789ab"
FILL = {
    "ts": 1_704_067_200_000_000_001,
    "venue": "binance",
    "instrument_id": "BTCUSDT-PERP.BINANCE",
    "client_order_id": "O-1",
    "venue_order_id": "V-1",
    "position_id": "P-1",
    "side": "SELL",
    "quantity": Decimal("0.470"),
    "price": Decimal("42283.60"),
    "commission": Decimal("9.93664600"),
    "commission_currency": "USDT",
    "liquidity_side": "TAKER",
    "trade_id": "T-1",
    "restore": False,
}
BALANCE = {
    "ts": 1_704_067_200_000_000_001,
    "venue": "binance",
    "currency": "USDT",
    "total": Decimal("99990.063354"),
    "locked": Decimal("0"),
    "free": Decimal("99990.063354"),
}


@pytest.fixture
def path(tmp_path: Path) -> Path:
    journal = Journal.open(journal_path(tmp_path, HASH), config_hash=HASH)
    journal.begin_session(mode="paper", resumed_after_ns=0)
    journal.record({"fills": [FILL], "account": [BALANCE]}, strategy_state=("S-1", {"carry": b'{"direction": -1}'}))
    journal.record_cursor(7, FILL["ts"], strategy_state=("S-1", {"carry": b'{"direction": -1}'}))
    journal.close()
    return journal_path(tmp_path, HASH)


def _corrupt(path: Path, statement: str) -> None:
    with sqlite3.connect(path) as connection:
        connection.execute(statement)
    connection.close()


def test_a_reopened_journal_resumes_positions_cursor_and_strategy_state(path: Path) -> None:
    journal = Journal.open(path, config_hash=HASH)
    resume = journal.resume_point()
    assert resume.session == 2
    assert (resume.cursor_events, resume.cursor_ns) == (7, FILL["ts"])
    assert resume.positions == {"BTCUSDT-PERP.BINANCE": Decimal("-0.470")}
    assert resume.strategy_state == {"S-1": {"carry": b'{"direction": -1}'}}
    fills = journal.frame("fills")
    assert fills["price"].to_list() == [Decimal("42283.60")]
    journal.close()


def test_restore_fills_are_kept_out_of_positions_and_ledgers(path: Path) -> None:
    journal = Journal.open(path, config_hash=HASH)
    journal.begin_session(mode="paper", resumed_after_ns=1)
    journal.record({"fills": [{**FILL, "client_order_id": "O-R", "trade_id": "T-R", "restore": True}]})
    assert journal.resume_point().positions == {"BTCUSDT-PERP.BINANCE": Decimal("-0.470")}
    assert journal.frame("fills").height == 1
    assert journal.frame("fills", include_restore=True).height == 2
    journal.close()


def test_a_fill_recorded_twice_is_kept_once(path: Path) -> None:
    journal = Journal.open(path, config_hash=HASH)
    journal.session = 1
    journal.record({"fills": [FILL]})
    assert journal.frame("fills").height == 1
    journal.close()


@pytest.mark.parametrize(
    ("statement", "match"),
    [
        ("DROP TABLE funding", "expected a table 'funding'"),
        ("ALTER TABLE fills DROP COLUMN price", r"expected column fills\.price, was missing"),
        ("UPDATE fills SET price = 'abc'", r"fills\.price \(row 1\) to be a decimal number as text, was 'abc'"),
        ("UPDATE account SET total = 'abc USDT'", r"account\.total \(row 1\) to be a decimal number"),
        ("UPDATE account SET total = '-5'", r"expected account\.total >= 0 \(row 1\), was a negative balance -5"),
        ("UPDATE fills SET ts = 'yesterday'", r"fills\.ts \(row 1\) to be an integer"),
        (
            "UPDATE meta SET value = '[]' WHERE key = 'cursor_ns'",
            r"meta\.cursor_ns to be an integer \(nanoseconds\), was '\[\]'",
        ),
        ("DELETE FROM meta WHERE key = 'cursor_events'", r"expected meta\.cursor_events, was missing"),
        ("UPDATE meta SET value = 'ffffffffffff' WHERE key = 'config_hash'", "expected meta.config_hash 0123456789ab"),
        ("UPDATE strategy_state SET value = 'text'", r"strategy_state\.value of S-1/carry to be bytes"),
    ],
)
def test_a_corrupt_journal_is_refused_naming_the_field(path: Path, statement: str, match: str) -> None:
    _corrupt(path, statement)
    with pytest.raises(StateError, match=match):
        Journal.open(path, config_hash=HASH)


def test_a_file_that_is_not_a_database_is_refused(tmp_path: Path) -> None:
    path = journal_path(tmp_path, HASH)
    path.parent.mkdir(parents=True)
    path.write_text('{"format": "carrylab.live.state"}')
    with pytest.raises(StateError, match="expected a journal database"):
        Journal.open(path, config_hash=HASH)


def test_state_errors_exit_7() -> None:
    assert exit_code(StateError("x")) == ExitCode.STATE == 7


def test_fresh_backs_the_old_journal_up_and_starts_empty(path: Path) -> None:
    journal = Journal.open(path, config_hash=HASH, fresh=True)
    assert journal.resume_point().session == 1
    assert journal.frame("fills").height == 0
    journal.close()
    backups = list((path.parent / "backups").glob("journal-*-replaced.sqlite"))
    assert len(backups) == 1
    with sqlite3.connect(backups[0]) as connection:
        assert connection.execute("SELECT COUNT(*) FROM fills").fetchone() == (1,)
    connection.close()


def test_backups_keep_the_newest_and_one_a_day(path: Path) -> None:
    journal = Journal.open(path, config_hash=HASH, keep_backups=3)
    day = 86_400 * 10**9
    for n in range(5):
        journal.backup(now_ns=1_704_067_200 * 10**9 + n * 1000)
    assert len(list((path.parent / "backups").glob("journal-*.sqlite"))) == 3
    assert journal.backup_if_due(journal.last_backup_ns + day - 1) is None
    made = journal.backup_if_due(journal.last_backup_ns + day)
    assert made is not None
    assert made.name.endswith("-daily.sqlite")
    journal.close()


def test_marked_balances_rebuild_the_trading_pnl_exactly() -> None:
    fills = [{**FILL, "side": "SELL"}, {**FILL, "side": "BUY", "quantity": Decimal("0.2"), "price": Decimal("42000")}]
    change = marked_balances(fills, {"BTCUSDT-PERP.BINANCE": Decimal("41000")}, {})
    # sold 0.47 at 42283.60, bought 0.2 at 42000, short 0.27 marked at 41000, two commissions
    expected = Decimal("0.470") * Decimal("42283.60") - Decimal("0.2") * 42000 - Decimal("0.27") * 41000
    assert change == {"USDT": expected - 2 * Decimal("9.93664600")}


@pytest.mark.parametrize(
    ("read", "match"),
    [
        (lambda: load_state_document({"carry": b"[1, 2"}, "carry"), "carry: expected a JSON document"),
        (lambda: load_state_document({"carry": b"[]"}, "carry"), "carry: expected a JSON object, was list"),
        (lambda: state_field({"direction": "abc"}, "carry", "direction", int), "carry.direction: expected int"),
        (lambda: state_field({}, "carry", "target", str), "carry.target: expected a value, was missing"),
        (lambda: state_decimal({"target": "abc USDT"}, "carry", "target"), "carry.target: expected decimal text"),
    ],
)
def test_a_malformed_strategy_state_names_the_field(read: Callable[[], object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        read()
