"""Structured logs of paper and live nodes: one JSON object per line on stderr, secrets redacted.

Every rendered line passes ``Redactor.redact`` as the last step, so a secret that reaches an event
field by accident (an exception text, a config repr) is masked before it is written.
"""

from __future__ import annotations

import sys
from typing import Any, TextIO

import structlog

from engine.live.secrets import REDACTOR, Redactor


def _redacting_renderer(redactor: Redactor) -> Any:
    render = structlog.processors.JSONRenderer(sort_keys=False, default=str)

    def renderer(logger: Any, method: str, event: dict[str, Any]) -> str:
        return redactor.redact(str(render(logger, method, event)))

    return renderer


def configure_logging(*, stream: TextIO | None = None, redactor: Redactor = REDACTOR) -> None:
    """Configure structlog for the node: ISO UTC timestamps, level, JSON, redaction."""
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            _redacting_renderer(redactor),
        ],
        logger_factory=structlog.PrintLoggerFactory(file=stream or sys.stderr),
        cache_logger_on_first_use=False,
    )


def get_logger(name: str) -> Any:
    """Return a structlog logger bound to ``component=name``."""
    return structlog.get_logger().bind(component=name)
