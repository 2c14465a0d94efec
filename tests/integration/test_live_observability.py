"""Observability of a replay paper node: ``/metrics`` (prometheus_client) and ``/healthz`` scraped while it
runs, the kill switch turning health to 503, and each order's latencies in the journal.

The node runs ``tests.kit.engine:RiskHold`` on the hand-made flat catalog (``tests.kit.live``), replayed at a
speed that keeps it running for a few seconds while a thread scrapes it.
"""

from __future__ import annotations

import json
import socket
import sqlite3
import threading
import time
import urllib.error
import urllib.request
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from nautilus_trader.common import DataActor

from engine.backtest import parse_config
from engine.live import run_session
from strategies.risk import KILL_SWITCH_TOPIC
from tests.kit.live import flat_perp_catalog, replay_options, risk_hold_toml

# 47 hours of bars in about 8 s of wall time.
SPEED = 47 * 3600 / 8


class KillOnEvent(DataActor):  # type: ignore[misc]
    """Publish the kill switch once ``event`` is set: an operator's control actor, driven by the test."""

    def __new__(cls, **_: Any) -> KillOnEvent:
        instance: KillOnEvent = super().__new__(cls)
        return instance

    def __init__(self, *, event: threading.Event) -> None:
        super().__init__()
        self.event = event
        self.sent = False

    def on_start(self) -> None:
        self.clock.set_timer_ns("kill-on-event", 50_000_000, callback=self._check)

    def _check(self, _event: Any) -> None:
        if self.event.is_set() and not self.sent:
            self.sent = True
            self.publish_message(KILL_SWITCH_TOPIC, {"reason": "operator test"})


def _free_port() -> int:
    with closing(socket.socket()) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _get(url: str) -> tuple[int, str, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - loopback URL of our node
            return response.status, response.headers["Content-Type"], response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], error.read().decode()


class _Scraper(threading.Thread):
    # Waits (states, not times) for: metrics with a position and a latency sample, healthz 200; then pulls
    # the kill switch and waits for healthz 503.
    def __init__(self, port: int, kill: threading.Event) -> None:
        super().__init__(name="scraper", daemon=True)
        self.root = f"http://127.0.0.1:{port}"
        self.kill = kill
        self.metrics = ""
        self.content_type = ""
        self.healthy: tuple[int, dict[str, Any]] | None = None
        self.halted: tuple[int, dict[str, Any]] | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._scrape()
        except BaseException as exc:
            self.error = exc

    def _poll(self, path: str) -> tuple[int, str, str] | None:
        try:
            return _get(self.root + path)
        except OSError:
            return None  # not serving yet

    def _scrape(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            found = self._poll("/metrics")
            if (
                found is not None
                and "carrylab_position_quantity{" in found[2]
                and "submit_to_ack_seconds_count" in found[2]
            ):
                _, self.content_type, self.metrics = found
                break
            time.sleep(0.05)
        health = self._poll("/healthz")
        if health is not None:
            self.healthy = (health[0], json.loads(health[2]))
        self.kill.set()
        while time.monotonic() < deadline:
            health = self._poll("/healthz")
            if health is not None and health[0] == 503:
                self.halted = (health[0], json.loads(health[2]))
                return
            time.sleep(0.05)


@pytest.fixture(scope="module")
def flat_catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return flat_perp_catalog(tmp_path_factory.mktemp("observability"))


def test_metrics_and_healthz_scraped_during_a_replay_and_kill_switch_turns_health_503(
    flat_catalog: Path, tmp_path: Path
) -> None:
    config = parse_config(risk_hold_toml(flat_catalog, name="observability", end="2024-01-02T23:00:00Z").encode())
    port = _free_port()
    kill = threading.Event()
    scraper = _Scraper(port, kill)
    scraper.start()
    options = replay_options(tmp_path, fresh=True, speed=SPEED, metrics_port=port, actors=[KillOnEvent(event=kill)])
    session = run_session(config, options)
    scraper.join(timeout=60)
    assert scraper.error is None, scraper.error

    body = scraper.metrics
    assert scraper.content_type.startswith("text/plain; version=0.0.4")
    assert "carrylab_up 1.0" in body
    assert 'carrylab_position_quantity{instrument_id="BTCUSDT-PERP.BINANCE"} 100.0' in body
    assert 'carrylab_exposure{currency="USDT"}' in body
    # The status snapshot's liquidation distance of the open perp leg (strategies.risk): a long of 100 at 100.0
    # on a 100,000 USDT wallet has LP = (W - 100 x 100) / (100 x 0.004 - 100) < 0, nothing liquidates it: 100 %.
    assert 'carrylab_liquidation_distance_pct{instrument_id="BTCUSDT-PERP.BINANCE"} 100.0' in body
    assert 'carrylab_pnl_component{component="realized",currency="USDT"}' in body
    assert 'carrylab_data_age_seconds{instrument_id="BTCUSDT-PERP.BINANCE",stream="bars"}' in body
    assert 'carrylab_last_data_age_seconds{instrument_id="BTCUSDT-PERP.BINANCE"}' in body
    assert 'carrylab_signal_to_submit_seconds_count{instrument_id="BTCUSDT-PERP.BINANCE"} 1.0' in body
    assert (
        'carrylab_submit_to_ack_seconds_bucket{ack="FILLED",instrument_id="BTCUSDT-PERP.BINANCE",le="+Inf"} 1.0' in body
    )
    assert "carrylab_healthy 1.0" in body

    assert scraper.healthy is not None
    code, health = scraper.healthy
    assert (code, health["status"], health["reasons"]) == (200, "ok", [])
    assert "BTCUSDT-PERP.BINANCE bars" in health["data_age_secs"]
    assert health["max_data_age_secs"] == 3 * 3600  # three 1-hour bars by default

    assert scraper.halted is not None
    code, health = scraper.halted
    assert (code, health["status"]) == (503, "unhealthy")
    assert health["reasons"] == ["strategy halted: kill switch: operator test"]
    assert session.session_result is not None
    assert "kill_switch" in session.session_result.risk_events["control"].to_list()

    assert session.state_path is not None
    with closing(sqlite3.connect(f"file:{session.state_path}?mode=ro", uri=True)) as connection:
        rows = connection.execute(
            "SELECT instrument_id, ack, signal_to_submit_ns, submit_to_ack_ns FROM order_latency ORDER BY seq"
        ).fetchall()
    # The opening order, sent from on_bar (the sandbox fills a market order without an OrderAccepted). The
    # kill switch's market exit sends its orders inside Nautilus, past the strategy's Python submit_order.
    assert [(r[0], r[1]) for r in rows] == [("BTCUSDT-PERP.BINANCE", "FILLED")]
    _, _, signal_to_submit_ns, submit_to_ack_ns = rows[0]
    assert 0 < signal_to_submit_ns < 1_000_000_000
    assert 0 < submit_to_ack_ns < 10_000_000_000
