"""Exceptions raised by the engine: one root, one subclass per way a run can fail, and their exit codes.

Every message says what was expected, what was found (", was X") and how to fix it. ``exit_code``
maps each subclass to the project's one exit-code table (``datasets.exit_codes.ExitCode``), which
``python -m engine.backtest`` and ``python -m engine.live`` both return.
"""

from __future__ import annotations

from datasets.exit_codes import ExitCode


class EngineError(Exception):
    """Root of every error raised by ``engine``."""


class ConfigError(EngineError):
    """A run config is malformed: unknown key, bad value, unknown venue, strategy that does not import."""


class MissingDataError(EngineError):
    """The catalog lacks data the run needs: an instrument, or the requested time range of one."""


class EngineRunError(EngineError):
    """NautilusTrader, a node or the strategy failed while building or running."""


class AccountingError(EngineError):
    """The run's ledgers disagree with the engine's account: a bug, never a user error."""


class SafetyError(EngineError):
    """A safety rule refused to start a node: no confirmation, no risk limits, missing credentials."""


class CredentialsError(SafetyError):
    """Credentials are missing, or their source (a secrets file) is unreadable or too widely readable."""


class NodeError(EngineRunError):
    """The Nautilus node failed to build, connect or run."""


class StateError(EngineError):
    """A persisted node state does not belong to this config or cannot be read."""


EXIT_CODES: dict[type[EngineError], ExitCode] = {
    ConfigError: ExitCode.USAGE,
    MissingDataError: ExitCode.BAD_INPUT,
    EngineRunError: ExitCode.RUN_FAILED,
    AccountingError: ExitCode.ACCOUNTING,
    SafetyError: ExitCode.SAFETY,
    StateError: ExitCode.STATE,
}


def exit_code(error: EngineError) -> ExitCode:
    """Return the exit code of ``error`` (its most specific class in ``EXIT_CODES``)."""
    for cls in type(error).__mro__:
        if cls in EXIT_CODES:
            return EXIT_CODES[cls]
    return ExitCode.ERROR
