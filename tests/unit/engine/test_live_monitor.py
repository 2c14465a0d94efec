"""The node's metrics registry, /healthz, the latency tracker and the journal's order_latency table, without a node."""

from __future__ import annotations

import json
import sqlite3
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
from prometheus_client import generate_latest

from engine.live.journal import Journal
from engine.live.latency import LatencyTracker, OrderLatency, percentiles_ms
from engine.live.monitor import MetricsServer, NodeMetrics, NodeStatus, health

SECOND = 1_000_000_000


class _Now:
    def __init__(self, ns: int) -> None:
        self.ns = ns

    def __call__(self) -> int:
        return self.ns


@pytest.fixture
def served() -> Iterator[tuple[NodeStatus, _Now, NodeMetrics, str]]:
    status = NodeStatus(max_data_age_secs=60)
    now = _Now(1_000 * SECOND)
    metrics = NodeMetrics(status, now_ns=now)
    server = MetricsServer(metrics, port=0).start()
    try:
        yield status, now, metrics, f"http://127.0.0.1:{server.port}"
    finally:
        server.close()


def _get(url: str) -> tuple[int, str, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - loopback test server
            return response.status, response.headers["Content-Type"], response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], error.read().decode()


def test_healthz_is_200_while_fresh_and_503_naming_the_stale_stream(
    served: tuple[NodeStatus, _Now, NodeMetrics, str],
) -> None:
    status, now, _, root = served
    with status.lock:
        status.observe("BTCUSDT-PERP.BINANCE", "bars", 990 * SECOND)
        status.observe("BTCUSDT-PERP.BINANCE", "funding_rates", 995 * SECOND)
    code, content_type, body = _get(f"{root}/healthz")
    assert (code, content_type) == (200, "application/json")
    assert json.loads(body)["status"] == "ok"

    now.ns = 1_055 * SECOND  # bars 65 s old, funding 60 s: only bars are above the 60 s limit
    code, _, body = _get(f"{root}/healthz")
    document = json.loads(body)
    assert (code, document["status"]) == (503, "unhealthy")
    assert document["reasons"] == ["stale data: BTCUSDT-PERP.BINANCE bars is 65.0 s old, above max_data_age_secs 60"]
    _, _, text = _get(f"{root}/metrics")
    assert "carrylab_healthy 0.0" in text
    assert 'carrylab_data_age_seconds{instrument_id="BTCUSDT-PERP.BINANCE",stream="bars"} 65.0' in text
    assert 'carrylab_last_data_age_seconds{instrument_id="BTCUSDT-PERP.BINANCE"} 60.0' in text


def test_healthz_is_503_while_the_strategy_is_halted(served: tuple[NodeStatus, _Now, NodeMetrics, str]) -> None:
    status, _, _, root = served
    with status.lock:
        status.halted_reason = "kill switch: operator"
    code, _, body = _get(f"{root}/healthz")
    assert code == 503
    assert json.loads(body)["reasons"] == ["strategy halted: kill switch: operator"]
    assert "carrylab_halted 1.0" in _get(f"{root}/metrics")[2]


def test_unknown_path_is_404(served: tuple[NodeStatus, _Now, NodeMetrics, str]) -> None:
    assert _get(f"{served[3]}/")[0] == 404


def test_each_node_has_its_own_registry_with_latency_histograms_and_risk_event_counters() -> None:
    first, second = (NodeMetrics(NodeStatus(), now_ns=lambda: 0) for _ in range(2))
    first.on_latency(OrderLatency("O-1", "X.BINANCE", 0, "ACCEPTED", 2_000_000, 30_000_000))
    first.on_latency(OrderLatency("O-2", "X.BINANCE", 0, "REJECTED", None, 40_000_000))
    first.on_risk_event({"control": "daily_loss", "action": "halt"})
    text = generate_latest(first.registry).decode()
    assert 'carrylab_signal_to_submit_seconds_count{instrument_id="X.BINANCE"} 1.0' in text
    assert 'carrylab_signal_to_submit_seconds_bucket{instrument_id="X.BINANCE",le="0.0025"} 1.0' in text
    assert 'carrylab_submit_to_ack_seconds_count{ack="ACCEPTED",instrument_id="X.BINANCE"} 1.0' in text
    assert 'carrylab_submit_to_ack_seconds_count{ack="REJECTED",instrument_id="X.BINANCE"} 1.0' in text
    assert 'carrylab_risk_events_total{action="halt",control="daily_loss"} 1.0' in text
    assert "carrylab_submit_to_ack_seconds_count{" not in generate_latest(second.registry).decode()


def test_snapshot_gauges_carry_the_pnl_components() -> None:
    status = NodeStatus()
    status.snapshot = {
        "positions": {"X.BINANCE": "-0.5"},
        "exposure": {"USDT": "21000.5"},
        "pnl": {"USDT": "12"},
        "pnl_realized": {"USDT": "10"},
        "pnl_unrealized": {"USDT": "-1"},
        "funding": {"USDT": "3"},
        "orders": 4,
        "open_orders": 1,
    }
    text = generate_latest(NodeMetrics(status, now_ns=lambda: 0).registry).decode()
    for line in (
        'carrylab_position_quantity{instrument_id="X.BINANCE"} -0.5',
        'carrylab_exposure{currency="USDT"} 21000.5',
        'carrylab_pnl{currency="USDT"} 12.0',
        'carrylab_pnl_component{component="realized",currency="USDT"} 10.0',
        'carrylab_pnl_component{component="unrealized",currency="USDT"} -1.0',
        'carrylab_pnl_component{component="funding",currency="USDT"} 3.0',
        'carrylab_funding{currency="USDT"} 3.0',
        "carrylab_orders 4.0",
        "carrylab_open_orders 1.0",
    ):
        assert line in text


def test_a_stream_resuming_after_a_silence_above_the_limit_counts_a_gap() -> None:
    status = NodeStatus(max_data_age_secs=10)
    with status.lock:
        for ts in (0, 5, 30, 35):  # one silence of 25 s
            status.observe("X.BINANCE", "bars", ts * SECOND)
    assert status.data_gaps == {("X.BINANCE", "bars"): 1}
    text = generate_latest(NodeMetrics(status, now_ns=lambda: 35 * SECOND).registry).decode()
    assert 'carrylab_data_gaps_total{instrument_id="X.BINANCE",stream="bars"} 1.0' in text


def test_health_without_a_limit_ignores_data_age() -> None:
    status = NodeStatus()
    with status.lock:
        status.observe("X.BINANCE", "bars", 0)
    assert health(status, now_ns=10**6 * SECOND)[0] is True


def test_tracker_measures_an_order_once_and_forgets_a_denied_one() -> None:
    seen: list[OrderLatency] = []
    tracker = LatencyTracker(listeners=[seen.append])
    tracker.submitted("O-1", "X.BINANCE", submit_ns=1_000, signal_to_submit_ns=400)
    tracker.submitted("O-2", "X.BINANCE", submit_ns=2_000, signal_to_submit_ns=None)
    latency = tracker.acknowledged("O-1", ack="ACCEPTED", ack_ns=6_000)
    assert latency is not None
    assert (latency.signal_to_submit_ns, latency.submit_to_ack_ns, latency.ack) == (400, 5_000, "ACCEPTED")
    assert tracker.acknowledged("O-1", ack="FILLED", ack_ns=9_000) is None  # the first answer counts
    tracker.forget("O-2")
    assert tracker.acknowledged("O-2", ack="ACCEPTED", ack_ns=9_000) is None
    tracker.notify(latency)
    assert seen == [latency]
    assert tracker.percentiles()["submit_to_ack"]["count"] == 1


def test_percentiles_are_nearest_rank_in_milliseconds() -> None:
    samples = [n * 1_000_000 for n in range(1, 101)]  # 1..100 ms
    assert percentiles_ms(samples) == {"count": 100, "p50": 50.0, "p99": 99.0, "max": 100.0}
    assert percentiles_ms([]) == {"count": 0}


def test_a_journal_written_before_order_latency_existed_gains_the_table(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    Journal.open(path, config_hash="abc").close()
    with closing(sqlite3.connect(path)) as connection, connection:
        connection.execute("DROP TABLE order_latency")
    journal = Journal.open(path, config_hash="abc")
    try:
        journal.begin_session(mode="paper", resumed_after_ns=0)
        journal.record({"order_latency": [{"client_order_id": "O-1", "ack": "FILLED", "submit_to_ack_ns": 7}]})
        frame = journal.frame("order_latency")
    finally:
        journal.close()
    assert frame.select("client_order_id", "ack", "submit_to_ack_ns").rows() == [("O-1", "FILLED", 7)]


def test_max_data_age_secs_must_be_positive() -> None:
    from engine.config import LiveConfig

    with pytest.raises(ValueError, match=r"max_data_age_secs: expected > 0, was 0"):
        LiveConfig(max_data_age_secs=0)
