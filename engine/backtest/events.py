"""Record the risk controls' decisions (``strategies.risk``) published on the message bus during a run."""

from __future__ import annotations

from typing import Any

import polars as pl
from nautilus_trader.common import DataActor, DataActorConfig

from strategies.risk import RISK_EVENTS_TOPIC

RISK_EVENTS_SCHEMA: dict[str, Any] = {
    "ts": pl.Datetime("ns", "UTC"),
    "strategy_id": pl.String,
    "control": pl.String,
    "action": pl.String,
    "instrument_id": pl.String,
    "value": pl.String,
    "limit": pl.String,
    "reason": pl.String,
}


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
        rows = [{k: event.get(k) for k in RISK_EVENTS_SCHEMA} for event in self.events]
        frame = pl.DataFrame(
            rows, schema={k: (pl.Int64 if k == "ts" else v) for k, v in RISK_EVENTS_SCHEMA.items()}, orient="row"
        )
        return frame.with_columns(pl.col("ts").cast(RISK_EVENTS_SCHEMA["ts"]))
