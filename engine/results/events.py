"""Record the risk controls' decisions (``strategies.risk``) published on the message bus during a run."""

from __future__ import annotations

from typing import Any

import polars as pl
from nautilus_trader.common import DataActor, DataActorConfig

from engine.results.schemas import RISK_EVENTS_SCHEMA, frame_of_rows
from strategies.risk import RISK_EVENTS_TOPIC


class RiskEventRecorder(DataActor):  # type: ignore[misc]
    """Keep every message published on ``RISK_EVENTS_TOPIC``, in order."""

    def __init__(self) -> None:
        super().__init__(DataActorConfig())
        self.events: list[dict[str, Any]] = []

    def on_start(self) -> None:
        self.subscribe_topic(RISK_EVENTS_TOPIC, self._record)

    def _record(self, message: object) -> None:
        if isinstance(message, dict):
            self.events.append(message)

    def frame(self) -> pl.DataFrame:
        """Return the events as ``risk_events.parquet`` rows (``value``/``limit`` as decimal text)."""
        return frame_of_rows(self.events, RISK_EVENTS_SCHEMA)
