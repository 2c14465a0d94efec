"""Persisted paper state: what a paper node restarts from instead of starting blind.

Written atomically (temp file, fsync, rename) to ``<state_dir>/<config-hash>/paper.json`` when a paper
node stops, and read when one starts with the same config (``--fresh`` ignores it):

- ``cursor_ns``: the historical time of the last replayed event (a replay resumes after it);
- ``balances``: each venue's account, marked to market at the last price (cash + unrealised PnL),
  which become the sandbox's starting balances;
- ``positions``: signed size, average entry and last price per instrument; the node re-opens each
  one with a market order tagged ``RESTORE`` on the first bar after the restart;
- ``orders``: every order of the stopped session with its final status (open orders are cancelled by
  the graceful stop, so none is left working);
- ``funding``: every paper funding settlement so far, so totals carry over.

Live nodes need none of this: Nautilus reconciliation recovers orders and positions from the venue.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from engine.live.errors import StateError
from engine.live.funding import Settlement

FORMAT = "carrylab.live.state"
VERSION = 1


@dataclass(slots=True)
class PaperState:
    """The state of a stopped paper node."""

    config_hash: str
    cursor_ns: int = 0
    balances: dict[str, list[str]] = field(default_factory=dict)
    positions: dict[str, dict[str, str]] = field(default_factory=dict)
    orders: list[dict[str, str]] = field(default_factory=list)
    funding: list[Settlement] = field(default_factory=list)
    sessions: int = 0

    def to_json(self) -> dict[str, Any]:
        """Return the JSON document."""
        return {
            "format": FORMAT,
            "version": VERSION,
            "written_at": datetime.now(UTC).isoformat(),
            "config_hash": self.config_hash,
            "cursor_ns": self.cursor_ns,
            "balances": self.balances,
            "positions": self.positions,
            "orders": self.orders,
            "funding": [s.to_json() for s in self.funding],
            "sessions": self.sessions,
        }

    def signed_positions(self) -> dict[str, Decimal]:
        """Return instrument id -> signed size of every non-flat position."""
        return {i: Decimal(p["quantity"]) for i, p in self.positions.items() if Decimal(p["quantity"]) != 0}


def state_path(state_dir: str | Path, config_hash: str) -> Path:
    """Return where the paper state of a config lives."""
    return Path(state_dir) / config_hash / "paper.json"


def write_state(state: PaperState, path: Path) -> Path:
    """Write ``state`` to ``path`` atomically and return the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = json.dumps(state.to_json(), sort_keys=True, indent=2) + "\n"
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".paper-", suffix=".json")
    try:
        with os.fdopen(handle, "w") as stream:
            stream.write(payload)
            stream.flush()
            os.fsync(stream.fileno())
        Path(temporary).replace(path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def read_state(path: Path, *, config_hash: str) -> PaperState | None:
    """Return the state at ``path``, or None when there is none.

    Raises
    ------
    StateError
        If the file is not a state document, or belongs to another config.
    """
    if not path.exists():
        return None
    try:
        document = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise StateError(
            f"expected a paper state document at {path}, could not read it ({exc}); pass --fresh"
        ) from None
    if document.get("format") != FORMAT or document.get("version") != VERSION:
        raise StateError(
            f"expected {FORMAT} version {VERSION} at {path}, was {document.get('format')!r} "
            f"version {document.get('version')!r}; pass --fresh to start over"
        )
    if document["config_hash"] != config_hash:
        raise StateError(
            f"expected the state at {path} to belong to config {config_hash}, was {document['config_hash']}; "
            "pass --fresh to start over"
        )
    return PaperState(
        config_hash=document["config_hash"],
        cursor_ns=int(document["cursor_ns"]),
        balances=document["balances"],
        positions=document["positions"],
        orders=document["orders"],
        funding=[Settlement.from_json(row) for row in document["funding"]],
        sessions=int(document.get("sessions", 0)),
    )
