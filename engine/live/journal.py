"""The durable journal of a paper or live node: an embedded SQLite database written as events happen.

One file per config, ``<state_dir>/<config-hash>/journal.sqlite`` (WAL, ``synchronous=FULL``, one
transaction per event), holding the backtest's ledgers in their own columns
(``engine.results.schemas``: decimals as exact text, timestamps as int nanoseconds UTC) plus what a
restart needs:

- ``meta``: ``format``, ``version``, ``config_hash``, ``cursor_events`` and ``cursor_ns`` (how many events
  a replay has fully processed, and the historical time of the last: a resumed replay continues after it);
- ``sessions``: one row per run of the node (start, mode, resumed cursor, stop reason);
- ``orders`` (ORDERS_SCHEMA), ``fills`` (FILLS_SCHEMA + ``trade_id``), ``positions`` (POSITIONS_SCHEMA),
  ``account`` (ACCOUNT_SCHEMA), ``funding`` (FUNDING_SCHEMA), ``risk_events`` (RISK_EVENTS_SCHEMA), each
  with its ``session``; orders and fills also carry ``restore`` (1 for the orders that re-open a
  restored position: not trades of the strategy, left out of the cumulative ledgers);
- ``strategy_state``: what ``Strategy.on_save()`` returned, per strategy and key;
- ``order_latency``: per acknowledged order, the node's signal-to-submit and submit-to-ack in wall-clock
  nanoseconds (``engine.live.latency``); a journal written before the table existed gains it at open.

A fill is one transaction: the fill, its order, its position, the venue's balances and the strategy's
saved state. Kill -9 at any moment loses nothing committed. ``Journal.backup`` copies the database with
SQLite's online backup API (at each start and daily), keeping the newest ``keep``.

Every input read back is validated (``Journal.open``): a missing table or column, text where a decimal or
an integer is expected, a negative balance, a journal of another config raise ``StateError`` naming the
table and the field.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import polars as pl

from engine.errors import StateError
from engine.results.schemas import (
    ACCOUNT_SCHEMA,
    FILLS_SCHEMA,
    FUNDING_SCHEMA,
    ORDERS_SCHEMA,
    POSITIONS_SCHEMA,
    RISK_EVENTS_SCHEMA,
)
from engine.run_data import DECIMAL, NS
from strategies.positions import average_open_price

FORMAT = "carrylab.live.journal"
VERSION = 1
FILE_NAME = "journal.sqlite"
BACKUP_INTERVAL_NS = 86_400 * 1_000_000_000
FRESH_HINT = "pass --fresh to start over (the old journal is kept in backups/)"

LEDGERS: dict[str, dict[str, Any]] = {
    "orders": ORDERS_SCHEMA,
    "fills": {**FILLS_SCHEMA, "trade_id": pl.String},
    "positions": POSITIONS_SCHEMA,
    "account": ACCOUNT_SCHEMA,
    "funding": FUNDING_SCHEMA,
    "risk_events": RISK_EVENTS_SCHEMA,
    "order_latency": {
        "client_order_id": pl.String,
        "instrument_id": pl.String,
        "ts_submit": NS,
        "ack": pl.String,
        "signal_to_submit_ns": pl.Int64,
        "submit_to_ack_ns": pl.Int64,
    },
}
# Tables added after VERSION 1 shipped: created in an older journal at open instead of refusing it.
ADDED_TABLES = ("order_latency",)
RESTORE_FLAGGED = ("orders", "fills")
# Ledger columns that may never be negative (``account``: a balance below zero is refused).
NON_NEGATIVE = {
    "account": ("total", "locked", "free"),
    "fills": ("quantity", "price", "commission"),
    "orders": ("quantity", "filled_quantity"),
}
UNIQUE = {
    "orders": "UNIQUE (session, client_order_id) ON CONFLICT REPLACE",
    "fills": "UNIQUE (session, client_order_id, trade_id) ON CONFLICT IGNORE",
    "positions": "UNIQUE (session, position_id, ts_opened) ON CONFLICT REPLACE",
}
SESSIONS_COLUMNS = {
    "session": "INTEGER",
    "started_at": "TEXT",
    "mode": "TEXT",
    "resumed_after_ns": "INTEGER",
    "stopped_at": "TEXT",
    "stop_reason": "TEXT",
}


def _sql_type(dtype: Any) -> str:
    if dtype == NS:
        return "INTEGER"
    if dtype in (pl.Boolean, pl.Int64):
        return "INTEGER"
    return "TEXT"


def _columns(table: str) -> dict[str, str]:
    columns = {"session": "INTEGER", **{name: _sql_type(t) for name, t in LEDGERS[table].items()}}
    if table in RESTORE_FLAGGED:
        columns["restore"] = "INTEGER"
    return columns


EXPECTED: dict[str, dict[str, str]] = {
    "meta": {"key": "TEXT", "value": "TEXT"},
    "sessions": SESSIONS_COLUMNS,
    "strategy_state": {"strategy_id": "TEXT", "key": "TEXT", "value": "BLOB"},
    **{table: _columns(table) for table in LEDGERS},
}


def _table_sql(table: str) -> str:
    columns = ", ".join(f'"{name}" {kind}' for name, kind in _columns(table).items())
    unique = f", {UNIQUE[table]}" if table in UNIQUE else ""
    return f"CREATE TABLE {table} (seq INTEGER PRIMARY KEY AUTOINCREMENT, {columns}{unique})"


def _schema_sql() -> list[str]:
    statements = [
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        "CREATE TABLE sessions (session INTEGER PRIMARY KEY, started_at TEXT, mode TEXT, resumed_after_ns INTEGER, "
        "stopped_at TEXT, stop_reason TEXT)",
        "CREATE TABLE strategy_state (strategy_id TEXT NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL, "
        "PRIMARY KEY (strategy_id, key))",
    ]
    statements += [_table_sql(table) for table in LEDGERS]
    return statements


def journal_path(state_dir: str | Path, config_hash: str) -> Path:
    """Return where the journal of a config lives."""
    return Path(state_dir) / config_hash / FILE_NAME


@dataclass(slots=True)
class ResumePoint:
    """What a restarted node resumes from, read from the journal.

    Attributes
    ----------
    session : int
        The number of the session about to start (1 for a new journal).
    cursor_ns : int
        Historical time of the last event a replay processed (0: none).
    cursor_events : int
        How many events of the replay were processed.
    positions : dict[str, Decimal]
        Signed size of every non-flat position, from the strategy's fills (restore orders excluded).
    strategy_state : dict[str, dict[str, bytes]]
        ``Strategy.on_save()`` of each strategy, by strategy id.
    settled_until : dict[str, int]
        Per perp, the last funding settlement journaled.
    """

    session: int = 1
    cursor_ns: int = 0
    cursor_events: int = 0
    positions: dict[str, Decimal] = field(default_factory=dict)
    strategy_state: dict[str, dict[str, bytes]] = field(default_factory=dict)
    settled_until: dict[str, int] = field(default_factory=dict)


class Journal:
    """The journal database of one config (see the module docstring). Thread-safe: one lock per connection.

    Use ``Journal.open``; ``close`` when done.
    """

    def __init__(self, connection: sqlite3.Connection, path: Path, *, keep_backups: int) -> None:
        self.connection = connection
        self.path = path
        self.keep_backups = keep_backups
        self.lock = threading.Lock()
        self.session = 0
        self.last_backup_ns = 0

    @classmethod
    def open(cls, path: Path, *, config_hash: str, fresh: bool = False, keep_backups: int = 7) -> Journal:
        """Open (or create) the journal at ``path`` and validate everything in it.

        ``fresh`` backs up an existing journal and starts an empty one.

        Raises
        ------
        StateError
            If the file is not a journal, belongs to another config, misses a table or column, or holds a
            value that is not of its column's type (a decimal, an integer), or a negative balance.
        """
        path.parent.mkdir(parents=True, exist_ok=True)
        if fresh and path.exists():
            try:
                old = cls(_connect(path), path, keep_backups=keep_backups)
                try:
                    old.backup(label="replaced")
                finally:
                    old.close()
            except sqlite3.DatabaseError:
                pass  # not a database at all: nothing worth keeping
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
        try:
            if not path.exists():
                _create(path, config_hash)
            journal = cls(_connect(path), path, keep_backups=keep_backups)
            try:
                journal.validate(config_hash=config_hash)
                journal._add_missing_tables()
            except BaseException:
                journal.connection.close()
                raise
        except sqlite3.DatabaseError as exc:
            raise StateError(
                f"expected a journal database at {path}, could not read it ({exc}); {FRESH_HINT}"
            ) from None
        return journal

    def close(self) -> None:
        """Close the connection (everything is already committed)."""
        with self.lock:
            self.connection.close()

    # Validation -------------------------------------------------------------------------------------

    def validate(self, *, config_hash: str) -> None:
        """Check tables, columns, meta and every value (see ``open``).

        Raises
        ------
        StateError
            On the first problem, naming the table and the field.
        """
        self._validate_tables()
        meta = dict(self.connection.execute("SELECT key, value FROM meta").fetchall())
        for key in ("format", "version", "config_hash", "cursor_ns", "cursor_events"):
            if key not in meta:
                raise StateError(f"journal {self.path}: expected meta.{key}, was missing; {FRESH_HINT}")
        if meta["format"] != FORMAT or meta["version"] != str(VERSION):
            raise StateError(
                f"journal {self.path}: expected meta.format {FORMAT!r} version {VERSION}, was {meta['format']!r} "
                f"version {meta['version']!r}; {FRESH_HINT}"
            )
        if meta["config_hash"] != config_hash:
            raise StateError(
                f"journal {self.path}: expected meta.config_hash {config_hash} (this config), was "
                f"{meta['config_hash']}; {FRESH_HINT}"
            )
        _integer("meta", "cursor_ns", meta["cursor_ns"], self.path)
        _integer("meta", "cursor_events", meta["cursor_events"], self.path)
        tables = self._tables()
        for table, schema in LEDGERS.items():
            if table in tables:  # every other table was checked above; an added one may not exist yet
                self._validate_rows(table, schema)
        for strategy_id, key, value in self.connection.execute("SELECT strategy_id, key, value FROM strategy_state"):
            if not isinstance(value, bytes):
                raise StateError(
                    f"journal {self.path}: expected strategy_state.value of {strategy_id}/{key} to be bytes, "
                    f"was {type(value).__name__}; {FRESH_HINT}"
                )

    def _tables(self) -> set[str]:
        return {row[0] for row in self.connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}

    def _add_missing_tables(self) -> None:
        missing = [table for table in ADDED_TABLES if table not in self._tables()]
        with self.lock, self.connection:
            for table in missing:
                self.connection.execute(_table_sql(table))

    def _validate_tables(self) -> None:
        tables = self._tables()
        for table, columns in EXPECTED.items():
            if table in ADDED_TABLES and table not in tables:
                continue
            if table not in tables:
                raise StateError(f"journal {self.path}: expected a table {table!r}, there is none; {FRESH_HINT}")
            found = {row[1] for row in self.connection.execute(f"PRAGMA table_info({table})")}
            missing = [c for c in columns if c not in found]
            if missing:
                raise StateError(
                    f"journal {self.path}: expected column {table}.{missing[0]}, was missing "
                    f"(columns {sorted(found)}); {FRESH_HINT}"
                )

    def _validate_rows(self, table: str, schema: dict[str, Any]) -> None:
        names = [name for name, dtype in schema.items() if dtype in (DECIMAL, NS)]
        if not names:
            return
        non_negative = NON_NEGATIVE.get(table, ())
        query = f"SELECT seq, {_names(names)} FROM {table}"  # noqa: S608 - names come from our schemas
        for row in self.connection.execute(query):
            for name, value in zip(names, row[1:], strict=True):
                if value is None:
                    continue
                if schema[name] == NS:
                    _integer(table, name, value, self.path, row=row[0])
                    continue
                number = _decimal(table, name, value, self.path, row=row[0])
                if name in non_negative and number < 0:
                    what = "balance" if table == "account" else "value"
                    raise StateError(
                        f"journal {self.path}: expected {table}.{name} >= 0 (row {row[0]}), was a negative "
                        f"{what} {value}; {FRESH_HINT}"
                    )

    # Writing ----------------------------------------------------------------------------------------

    def begin_session(self, *, mode: str, resumed_after_ns: int) -> int:
        """Start a new session row and return its number."""
        with self.lock, self.connection:
            cursor = self.connection.execute(
                "INSERT INTO sessions (started_at, mode, resumed_after_ns) VALUES (?, ?, ?)",
                (datetime.now(UTC).isoformat(), mode, resumed_after_ns),
            )
            self.session = int(cursor.lastrowid or 0)
        return self.session

    def end_session(self, reason: str) -> None:
        """Record why the session stopped."""
        with self.lock, self.connection:
            self.connection.execute(
                "UPDATE sessions SET stopped_at = ?, stop_reason = ? WHERE session = ?",
                (datetime.now(UTC).isoformat(), reason, self.session),
            )

    def record(self, rows: Mapping[str, Sequence[Mapping[str, Any]]], *, strategy_state: Any = None) -> None:
        """Insert ``rows`` (table -> ledger rows) and the strategy state in one transaction.

        ``strategy_state`` is ``(strategy_id, on_save() dict)`` or None.
        """
        with self.lock, self.connection:
            for table, table_rows in rows.items():
                self._insert(table, table_rows)
            if strategy_state is not None:
                self._save_state(*strategy_state)

    def record_cursor(self, events: int, cursor_ns: int, *, strategy_state: Any = None) -> None:
        """Advance the replay cursor (and save the strategy state with it) in one transaction."""
        with self.lock, self.connection:
            self.connection.executemany(
                "UPDATE meta SET value = ? WHERE key = ?",
                [(str(cursor_ns), "cursor_ns"), (str(events), "cursor_events")],
            )
            if strategy_state is not None:
                self._save_state(*strategy_state)

    def replace_session_rows(self, table: str, rows: Sequence[Mapping[str, Any]]) -> None:
        """Replace this session's rows of ``table`` by ``rows`` (the final positions at the stop)."""
        with self.lock, self.connection:
            self.connection.execute(f"DELETE FROM {table} WHERE session = ?", (self.session,))  # noqa: S608
            self._insert(table, rows)

    def _insert(self, table: str, rows: Sequence[Mapping[str, Any]]) -> None:
        if not rows:
            return
        columns = list(_columns(table))
        placeholders = ", ".join("?" for _ in columns)
        statement = f"INSERT INTO {table} ({_names(columns)}) VALUES ({placeholders})"  # noqa: S608
        self.connection.executemany(
            statement,
            [[_sql_value(row.get(c, self.session if c == "session" else None)) for c in columns] for row in rows],
        )

    def _save_state(self, strategy_id: str, state: Mapping[str, bytes]) -> None:
        self.connection.execute("DELETE FROM strategy_state WHERE strategy_id = ?", (strategy_id,))
        self.connection.executemany(
            "INSERT INTO strategy_state (strategy_id, key, value) VALUES (?, ?, ?)",
            [(strategy_id, key, bytes(value)) for key, value in state.items()],
        )

    def backup(self, *, label: str = "start", now_ns: int | None = None) -> Path:
        """Copy the database to ``backups/journal-<UTC time>-<label>.sqlite`` (online backup API); keep the newest.

        Returns the backup's path.
        """
        folder = self.path.parent / "backups"
        folder.mkdir(parents=True, exist_ok=True)
        moment = datetime.now(UTC) if now_ns is None else datetime.fromtimestamp(now_ns / 1e9, UTC)
        target = folder / f"journal-{moment:%Y%m%dT%H%M%S%fZ}-{label}.sqlite"
        destination = sqlite3.connect(target)
        try:
            with self.lock:
                self.connection.backup(destination)
        finally:
            destination.close()
        self.last_backup_ns = now_ns if now_ns is not None else int(moment.timestamp() * 1e9)
        for old in sorted(folder.glob("journal-*.sqlite"))[: -self.keep_backups or None]:
            old.unlink()
        return target

    def backup_if_due(self, now_ns: int) -> Path | None:
        """Back up when a day has passed since the last backup; return the backup's path if one was made."""
        if now_ns - self.last_backup_ns < BACKUP_INTERVAL_NS:
            return None
        return self.backup(label="daily", now_ns=now_ns)

    # Reading ----------------------------------------------------------------------------------------

    def resume_point(self) -> ResumePoint:
        """Return where the next session resumes (after ``open`` validated the journal)."""
        with self.lock:
            meta = dict(self.connection.execute("SELECT key, value FROM meta").fetchall())
            sessions = self.connection.execute("SELECT COALESCE(MAX(session), 0) FROM sessions").fetchone()[0]
            states: dict[str, dict[str, bytes]] = {}
            for strategy_id, key, value in self.connection.execute(
                "SELECT strategy_id, key, value FROM strategy_state"
            ):
                states.setdefault(str(strategy_id), {})[str(key)] = bytes(value)
            settled = dict(
                self.connection.execute("SELECT instrument_id, MAX(ts) FROM funding GROUP BY instrument_id").fetchall()
            )
        positions = {i: q for i, q in self.net_positions().items() if q != 0}
        return ResumePoint(
            session=int(sessions) + 1,
            cursor_ns=int(meta["cursor_ns"]),
            cursor_events=int(meta["cursor_events"]),
            positions=positions,
            strategy_state=states,
            settled_until={str(i): int(t) for i, t in settled.items()},
        )

    def rows(self, table: str, *, where: str = "", include_restore: bool = False) -> list[dict[str, Any]]:
        """Return the rows of a ledger table as dicts of its columns, in insertion order."""
        columns = ["session", *LEDGERS[table]]
        clauses = [where] if where else []
        if table in RESTORE_FLAGGED and not include_restore:
            clauses.append("COALESCE(restore, 0) = 0")
        condition = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        query = f"SELECT {_names(columns)} FROM {table}{condition} ORDER BY seq"  # noqa: S608
        with self.lock:
            return [dict(zip(columns, row, strict=True)) for row in self.connection.execute(query)]

    def frame(self, table: str, *, where: str = "", include_restore: bool = False) -> pl.DataFrame:
        """Return a ledger table in its ``engine.results.schemas`` schema (decimals exact)."""
        schema = {k: v for k, v in LEDGERS[table].items() if k != "trade_id"}
        rows = self.rows(table, where=where, include_restore=include_restore)
        source = {k: pl.String if v == DECIMAL else pl.Int64 if v == NS else v for k, v in schema.items()}
        columns: dict[str, list[Any]] = {k: [r[k] for r in rows] for k in schema}
        for name, dtype in schema.items():
            if dtype == pl.Boolean:
                columns[name] = [None if v is None else bool(v) for v in columns[name]]
        return pl.DataFrame(columns, schema=source).with_columns(
            pl.col(k).cast(v) for k, v in schema.items() if v in (DECIMAL, NS)
        )

    def net_positions(self) -> dict[str, Decimal]:
        """Return the signed size per instrument from every fill of the strategy (restore fills excluded)."""
        sizes: dict[str, Decimal] = {}
        for row in self.rows("fills"):
            quantity = Decimal(row["quantity"])
            signed = quantity if row["side"] == "BUY" else -quantity
            sizes[row["instrument_id"]] = sizes.get(row["instrument_id"], Decimal(0)) + signed
        return sizes

    def settlements(self) -> list[dict[str, Any]]:
        """Return every funding settlement journaled, decimals as ``Decimal``."""
        rows = self.rows("funding")
        decimals = [k for k, v in FUNDING_SCHEMA.items() if v == DECIMAL]
        return [{**row, **{k: Decimal(row[k]) for k in decimals}} for row in rows]


def marked_balances(
    fills: Iterable[Mapping[str, Any]],
    prices: Mapping[str, Decimal],
    multipliers: Mapping[str, Decimal],
) -> dict[str, Decimal]:
    """Return, per commission currency, the trading PnL of ``fills`` marked at ``prices``, fees included.

    ``-sum(signed qty * price * multiplier) + position * mark * multiplier - commissions``: what a margin
    account's balance plus unrealised PnL has moved since the start through trading (funding excluded: the
    session adds the journaled settlements, which the sandbox accounts book).
    """
    changes: dict[str, Decimal] = {}
    held: dict[str, list[tuple[Decimal, Decimal]]] = {}
    currency_of: dict[str, str] = {}
    for row in fills:
        instrument_id, currency = row["instrument_id"], row["commission_currency"]
        quantity = Decimal(row["quantity"])
        signed = quantity if row["side"] == "BUY" else -quantity
        multiplier = multipliers.get(instrument_id, Decimal(1))
        changes[currency] = (
            changes.get(currency, Decimal(0)) - signed * Decimal(row["price"]) * multiplier - Decimal(row["commission"])
        )
        held.setdefault(instrument_id, []).append((signed, Decimal(row["price"])))
        currency_of[instrument_id] = currency
    for instrument_id, trades in held.items():
        size = sum((q for q, _ in trades), Decimal(0))
        if size == 0:
            continue
        price = prices.get(instrument_id, average_open_price(trades))
        currency = currency_of[instrument_id]
        changes[currency] = changes.get(currency, Decimal(0)) + size * price * multipliers.get(
            instrument_id, Decimal(1)
        )
    return changes


def _create(path: Path, config_hash: str) -> None:
    # Built beside the journal and renamed into place: a crash never leaves half a schema behind.
    temporary = path.with_name(f".{path.name}.creating")
    temporary.unlink(missing_ok=True)
    connection = sqlite3.connect(temporary)
    try:
        with connection:
            for statement in _schema_sql():
                connection.execute(statement)
            connection.executemany(
                "INSERT INTO meta (key, value) VALUES (?, ?)",
                [
                    ("format", FORMAT),
                    ("version", str(VERSION)),
                    ("config_hash", config_hash),
                    ("cursor_ns", "0"),
                    ("cursor_events", "0"),
                ],
            )
    finally:
        connection.close()
    with temporary.open("rb+") as stream:
        os.fsync(stream.fileno())
    temporary.replace(path)


def _connect(path: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(path, check_same_thread=False)
    try:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=FULL")
    except sqlite3.DatabaseError:
        connection.close()
        raise
    return connection


def _names(columns: Iterable[str]) -> str:
    return ", ".join(f'"{name}"' for name in columns)


def _sql_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, bool):
        return int(value)
    return value


def _integer(table: str, name: str, value: Any, path: Path, *, row: int | None = None) -> int:
    where = f" (row {row})" if row is not None else ""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lstrip("-").isdigit():
        return int(value)
    raise StateError(
        f"journal {path}: expected {table}.{name}{where} to be an integer (nanoseconds), was {value!r}; {FRESH_HINT}"
    )


def _decimal(table: str, name: str, value: Any, path: Path, *, row: int) -> Decimal:
    try:
        number = Decimal(str(value)) if isinstance(value, (str, int)) and not isinstance(value, bool) else None
    except InvalidOperation:
        number = None
    if number is None or not number.is_finite():
        raise StateError(
            f"journal {path}: expected {table}.{name} (row {row}) to be a decimal number as text, was {value!r}; "
            f"{FRESH_HINT}"
        )
    return number
