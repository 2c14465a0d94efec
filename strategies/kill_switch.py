"""Pull the kill switch (``strategies.risk.KILL_SWITCH_TOPIC``) at a set time, through the message bus."""

from __future__ import annotations

from typing import Any

from nautilus_trader.common import DataActor, DataActorConfig

from strategies.risk import KILL_SWITCH_TOPIC


class KillSwitchTimerConfig(DataActorConfig):  # type: ignore[misc]
    """Parameters of ``KillSwitchTimer``.

    Parameters
    ----------
    at_ns : int
        When to pull the switch (UNIX ns, UTC).
    reason : str
    strategy_id : str, optional
        Only this strategy halts; every risk-managed strategy when None.
    """

    def __init__(self, at_ns: int, reason: str = "scheduled kill switch", strategy_id: str | None = None) -> None:
        super().__init__()
        self.at_ns = at_ns
        self.reason = reason
        self.strategy_id = strategy_id


class KillSwitchTimer(DataActor):  # type: ignore[misc]
    """Publish the kill switch at a set time: how a test (or a scheduled shutdown) pulls it through Nautilus.

    An operator's switch is the same message sent by any component on the bus (a control actor
    of the live node, a REST handler): strategies never read files or the environment.
    """

    def __init__(self, config: KillSwitchTimerConfig) -> None:
        super().__init__(config)
        self.params = config

    def on_start(self) -> None:
        self.clock.set_time_alert_ns("kill-switch", self.params.at_ns, self._fire)

    def _fire(self, _event: Any) -> None:
        message: dict[str, str] = {"reason": self.params.reason}
        if self.params.strategy_id is not None:
            message["strategy_id"] = self.params.strategy_id
        self.publish_message(KILL_SWITCH_TOPIC, message)
