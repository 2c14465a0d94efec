"""What the engine's command lines share: argument types and the progress printer."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime


def moment(text: str) -> datetime:
    """Return an ISO datetime argument (an argparse ``type``); the UTC offset is checked by ``with_overrides``."""
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an ISO datetime like 2024-01-01T00:00:00Z, was {text!r}") from None


def progress(message: str) -> None:
    """Print one progress line to stderr."""
    print(f"  .. {message}", file=sys.stderr, flush=True)
