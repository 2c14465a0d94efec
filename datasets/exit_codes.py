"""The exit codes of every command line of the project, one meaning per code.

``python -m datasets``, ``python -m engine.backtest`` and ``python -m engine.live`` all return these,
so a script or scheduler can branch on a code without knowing which command it ran. The table lives
in the bottom layer because every CLI imports it.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Process exit codes: 0 ok, 1 unexpected, 2 usage, then one per way a command can refuse or fail."""

    OK = 0
    ERROR = 1  # unexpected: a bug, report it with the traceback
    USAGE = 2  # bad arguments or a bad run config
    BAD_INPUT = 3  # input data refused (nothing written), or the data a run needs is missing
    CONFLICT = 4  # the input disagrees with data already stored
    FINDINGS = 5  # ``datasets check --strict`` found warnings; ``fetch``/``update`` recorded known gaps
    SAFETY = 6  # a safety rule refused to start (live trading), or credentials are missing/unsafe
    STATE = 7  # a saved node state is unusable
    RUN_FAILED = 8  # the engine, node or strategy failed while running
    ACCOUNTING = 9  # a run's ledgers disagree with the engine's accounts (a bug, never a user error)
    STORE = 10  # the store cannot be written: read-only, full disk, or another operating-system error
