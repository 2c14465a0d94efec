"""Exceptions of paper and live nodes (all ``EngineError``s, so the CLIs map them to exit codes)."""

from __future__ import annotations

from engine.errors import EngineError


class LiveError(EngineError):
    """Root of every error raised by ``engine.live``."""


class SafetyError(LiveError):
    """A safety rule refused to start a node: no confirmation, no risk limits, missing credentials."""


class CredentialsError(SafetyError):
    """Credentials are missing, or their source (a secrets file) is unreadable or too widely readable."""


class NodeError(LiveError):
    """The Nautilus node failed to build, connect or run."""


class StateError(LiveError):
    """A persisted node state does not belong to this config or cannot be read."""
