"""The transactions (and instructions) a fetch left out of the rows, with their signature and the reason.

A fetch does not stop at a transaction the decoder cannot read (logs that do not match the IDL, a
truncated event, an unknown program version, a mint the table lacks, a result of an unexpected shape):
it records a skip and goes on, so a year of history is not held up by one odd transaction, and no
guessed row is written. Skips go to ``<store>/onchain-skips.solana.<protocol>.jsonl``, one JSON object a
line (``signature``, ``slot``, ``instruction_index``, ``reason``), appended and fsynced before the
progress record grows over the batch. A batch cut by a kill is processed again, so a line may repeat
(or be torn); ``load_skips`` returns each whole skip once.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from datasets.errors import StoreWriteError

CHAIN = "solana"


@dataclass(frozen=True, slots=True)
class SkipRecord:
    """One skipped transaction or instruction."""

    signature: str
    slot: int | None
    instruction_index: int | None
    reason: str


def skips_path(root: Path, protocol: str) -> Path:
    """Return the path of a protocol's skip log."""
    return root / f"onchain-skips.{CHAIN}.{protocol}.jsonl"


def append_skips(root: Path, protocol: str, skips: Iterable[SkipRecord]) -> None:
    """Append ``skips`` to the protocol's skip log and fsync it.

    Raises
    ------
    StoreWriteError
        If the log cannot be written.
    """
    lines = [json.dumps(asdict(skip), sort_keys=True) + "\n" for skip in skips]
    if not lines:
        return
    path = skips_path(root, protocol)
    try:
        root.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as handle:
            handle.writelines(lines)
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as exc:
        raise StoreWriteError(
            f"{path}: expected a writable store, was an error writing the skip log ({exc}); free disk space or fix "
            "the permissions and run the command again"
        ) from exc


def load_skips(root: Path, protocol: str) -> list[SkipRecord]:
    """Return the protocol's skips, each once, in the order first recorded (empty without a log)."""
    path = skips_path(root, protocol)
    if not path.exists():
        return []
    unique: dict[SkipRecord, None] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            unique.setdefault(SkipRecord(**json.loads(line)))
        except (ValueError, TypeError):
            continue  # a line torn by a kill mid-append; its batch was processed again and logged whole
    return list(unique)
