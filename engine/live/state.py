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
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from nautilus_trader.model import Money

from engine.errors import StateError
from engine.live.funding import PaperFunding, Settlement
from engine.live.monitor import NodeStatus
from engine.live.replay import signed_quantity
from engine.venue_models import VenueModel
from strategies.positions import average_open_price, position_fills

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


def restored_model(model: VenueModel, state: PaperState) -> VenueModel:
    """Return ``model`` starting from the balances ``state`` saved for its venue."""
    balances = state.balances.get(model.name)
    if not balances:
        return model
    return replace(model, starting_balances=tuple(Money.from_str(text) for text in balances))


def capture_state(
    cache: Any,
    digest: str,
    models: list[VenueModel],
    cursor_ns: int,
    funding: PaperFunding,
    status: NodeStatus,
    previous: PaperState | None,
) -> PaperState:
    """Return the state of a stopping paper node from its ``cache``.

    Balances are marked to the last price; positions, every order and the funding so far are kept.
    """
    positions: dict[str, dict[str, str]] = {}
    unrealized: dict[tuple[str, str], Decimal] = {}
    venue_names = {m.venue.value: m.name for m in models}
    for position in cache.positions_open():
        instrument_id = str(position.instrument_id)
        size = signed_quantity(position)
        entry = average_open_price(position_fills(position))
        last = status.last_price.get(instrument_id, entry)
        positions[instrument_id] = {"quantity": str(size), "avg_price": str(entry), "last_price": str(last)}
        key = (venue_names.get(position.instrument_id.venue.value, ""), str(position.settlement_currency.code))
        unrealized[key] = unrealized.get(key, Decimal(0)) + size * (last - entry) * position.multiplier.as_decimal()
    balances: dict[str, list[str]] = {}
    for model in models:
        account = cache.account_for_venue(model.venue)
        if account is None:
            continue
        rows = []
        for money in account.balances_total().values():
            currency = str(money.currency.code)
            amount = money.as_decimal() + unrealized.get((model.name, currency), Decimal(0))
            rows.append(f"{amount.quantize(Decimal(1).scaleb(-money.currency.precision))} {currency}")
        balances[model.name] = rows
    orders = [
        {
            "client_order_id": str(o.client_order_id),
            "instrument_id": str(o.instrument_id),
            "side": o.side.name,
            "quantity": str(o.quantity),
            "filled_quantity": str(o.filled_qty),
            "status": o.status.name,
        }
        for o in cache.orders()
    ]
    return PaperState(
        config_hash=digest,
        cursor_ns=cursor_ns or (previous.cursor_ns if previous is not None else 0),
        balances=balances,
        positions=positions,
        orders=(previous.orders if previous is not None else []) + orders,
        funding=list(funding.settlements),
        sessions=(previous.sessions if previous is not None else 0) + 1,
    )
