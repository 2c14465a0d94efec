"""Structured logs of paper and live nodes: one JSON object per line on stderr, secrets redacted.

Redaction runs twice: on every field of the event (keys, values, nested containers, the rendered
exception) before JSON encoding, so a secret is masked while it is still raw text, and on the rendered
line after it, for the forms encoding produced (``Redactor`` masks a secret in every ``encoded_forms``).
"""

from __future__ import annotations

import sys
from typing import Any, TextIO

import structlog

from engine.live.secrets import REDACTOR, Redactor


def _redacting_fields(redactor: Redactor) -> Any:
    def scrub(value: Any) -> Any:
        if isinstance(value, str):
            return redactor.redact(value)
        if value is None or isinstance(value, bool | int | float):
            return value
        if isinstance(value, dict):
            return {redactor.redact(str(k)): scrub(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [scrub(v) for v in value]
        return redactor.redact(str(value))

    def processor(logger: Any, method: str, event: dict[str, Any]) -> dict[str, Any]:
        scrubbed: dict[str, Any] = scrub(event)
        return scrubbed

    return processor


def _redacting_renderer(redactor: Redactor) -> Any:
    render = structlog.processors.JSONRenderer(sort_keys=False, default=str)

    def renderer(logger: Any, method: str, event: dict[str, Any]) -> str:
        return redactor.redact(str(render(logger, method, event)))

    return renderer


def configure_logging(*, stream: TextIO | None = None, redactor: Redactor = REDACTOR) -> None:
    """Configure structlog for the node: ISO UTC timestamps, level, redacted fields, JSON, redacted line."""
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            _redacting_fields(redactor),
            _redacting_renderer(redactor),
        ],
        logger_factory=structlog.PrintLoggerFactory(file=stream or sys.stderr),
        cache_logger_on_first_use=False,
    )


def get_logger(name: str) -> Any:
    """Return a structlog logger bound to ``component=name``."""
    return structlog.get_logger().bind(component=name)
