"""``engine.live.anomalies.AnomalyDetector`` fed events with an injected clock (ns), and the config section."""

from __future__ import annotations

from decimal import Decimal

import pytest

from engine.backtest import parse_config
from engine.config import AnomalyConfig
from engine.errors import ConfigError
from engine.live.anomalies import AnomalyDetector
from engine.loading import config_hash, config_json

S = 1_000_000_000
MS = 1_000_000
D = Decimal


def test_silence_longer_than_the_limit_is_a_connectivity_anomaly_once() -> None:
    detector = AnomalyDetector(AnomalyConfig(max_disconnected_secs=2.0))
    detector.arm(["BINANCE", "BYBIT"], 0)
    detector.seen("BINANCE", 1 * S)
    assert detector.check(2 * S) == []  # BYBIT silent for exactly 2 s: not above the limit
    found = detector.check(2 * S + 1)
    assert [(a.kind, a.subject) for a in found] == [("connectivity", "BYBIT")]
    assert detector.check(3 * S + 1)[0].subject == "BINANCE"  # 2 s + 1 ns after its last event
    assert detector.check(10 * S) == []  # each venue fires once


def test_ack_latency_above_the_limit_answered_or_in_flight() -> None:
    detector = AnomalyDetector(AnomalyConfig(max_ack_latency_ms=250))
    assert detector.acknowledged("BTCUSDT-PERP.BINANCE", 250 * MS) is None  # at the limit
    anomaly = detector.acknowledged("BTCUSDT-PERP.BINANCE", 251 * MS)
    assert anomaly is not None
    assert (anomaly.kind, anomaly.value, anomaly.limit) == ("ack_latency", "251.000", "250")
    # An order still unanswered after 300 ms on another instrument.
    found = detector.check(0, in_flight_ns={"ETHUSDT-PERP.BINANCE": 300 * MS})
    assert [(a.kind, a.subject) for a in found] == [("ack_latency", "ETHUSDT-PERP.BINANCE")]


def test_rejects_count_within_a_sliding_window() -> None:
    detector = AnomalyDetector(AnomalyConfig(max_rejects=3, reject_window_secs=10))
    assert detector.rejected("X", 0) is None
    assert detector.rejected("X", 5 * S) is None
    # The first left the window (10 s old): two within it.
    assert detector.rejected("X", 10 * S) is None
    anomaly = detector.rejected("X", 11 * S)  # 5, 10, 11: three within 10 s
    assert anomaly is not None
    assert (anomaly.kind, anomaly.value, anomaly.limit) == ("rejects", "3", "3")


def test_a_balance_change_without_fill_or_settlement_is_an_anomaly() -> None:
    detector = AnomalyDetector(AnomalyConfig(max_unexplained_balance_change=D("0.5"), balance_grace_secs=2))
    key = ("BINANCE", "USDT")
    assert detector.check(0, balances={key: D("1000")}) == []  # the first reading is the baseline
    detector.filled("BINANCE", "BTCUSDT-PERP.BINANCE", D("-0.1"), 1 * S, own=True)
    assert detector.check(3 * S, balances={key: D("990")}) == []  # a fill since the last reading: explained
    detector.explain("BINANCE", 8 * S)  # an announced funding instant
    assert detector.check(7 * S, balances={key: D("985")}) == []  # 1 s before it, within the 2 s grace
    assert detector.check(20 * S, balances={key: D("985.4")}) == []  # 0.4 moved: within the tolerance
    found = detector.check(30 * S, balances={key: D("1235.4")})
    assert [(a.kind, a.subject, a.value) for a in found] == [("unexplained_balance", "BINANCE USDT", "250.0")]
    assert "BINANCE USDT balance moved +250.0 (985.4 -> 1235.4)" in found[0].reason

    # A fill anywhere between two readings explains the change, however long before the second one.
    detector = AnomalyDetector(AnomalyConfig(max_unexplained_balance_change=D(0), balance_grace_secs=0))
    assert detector.check(0, balances={key: D(100)}) == []
    detector.filled("BINANCE", "BTCUSDT-PERP.BINANCE", D(1), 5 * S, own=True)
    assert detector.check(60 * S, balances={key: D(99)}) == []
    assert detector.check(61 * S, balances={key: D(98)})[0].kind == "unexplained_balance"


def test_a_position_difference_that_lasts_past_the_grace_is_an_anomaly() -> None:
    detector = AnomalyDetector(AnomalyConfig(check_positions=True, position_grace_secs=1), ours={"A": D("-0.5")})
    assert detector.check(0, positions={"A": D("-0.5")}) == []
    detector.filled("V", "A", D("0.5"), 1 * S, own=True)  # ours: flat
    assert detector.check(1 * S, positions={}) == []
    # Reconciliation's own fill (not the strategy's) does not change ours; the venue now shows a short.
    detector.filled("V", "A", D("-0.2"), 2 * S, own=False)
    assert detector.check(2 * S, positions={"A": D("-0.2")}) == []  # just seen: within the grace
    found = detector.check(3 * S, positions={"A": D("-0.2")})
    # ours: -0.5 + 0.5 = 0.0 (Decimal keeps the exponent)
    assert [(a.kind, a.subject, a.value, a.limit) for a in found] == [("position_mismatch", "A", "-0.2", "0.0")]


def test_a_difference_that_resolves_within_the_grace_is_none() -> None:
    detector = AnomalyDetector(AnomalyConfig(check_positions=True, position_grace_secs=1))
    assert detector.check(0, positions={"A": D(1)}) == []
    detector.filled("V", "A", D(1), S // 2, own=True)
    assert detector.check(2 * S, positions={"A": D(1)}) == []


def test_checks_without_limits_never_fire() -> None:
    detector = AnomalyDetector(AnomalyConfig())
    detector.arm(["BINANCE"], 0)
    assert detector.rejected("X", 0) is None
    assert detector.acknowledged("X", 10**12) is None
    assert (
        detector.check(10**15, in_flight_ns={"X": 10**12}, balances={("V", "USDT"): D(1)}, positions={"A": D(1)}) == []
    )
    assert detector.check(10**15, balances={("V", "USDT"): D(10**6)}) == []


BASE = """
name = "t"
start = 2024-01-01T00:00:00Z
end = 2024-02-01T00:00:00Z
[[venues]]
name = "binance"
instruments = ["BTC-USDT-PERP"]
starting_balances = ["1000 USDT"]
[strategy]
path = "strategies.demo:FundingShort"
[strategy.params]
instrument_ids = ["binance:BTC-USDT-PERP"]
[live]
"""


def test_an_absent_anomalies_section_leaves_the_config_hash_alone() -> None:
    config = parse_config(BASE.encode())
    assert "anomalies" not in config_json(config)
    with_section = parse_config((BASE + "[live.anomalies]\nmax_rejects = 3\n").encode())
    assert config_hash(with_section) != config_hash(config)


@pytest.mark.parametrize(
    ("line", "match"),
    [
        ("max_rejects = 0", "max_rejects: expected >= 1, was 0"),
        ("max_ack_latency_ms = -5", "max_ack_latency_ms: expected > 0"),
        ("max_unexplained_balance_change = -1", "max_unexplained_balance_change: expected >= 0"),
        ("max_disconected_secs = 5", r"unknown field `max_disconected_secs`.*\$\.live\.anomalies"),
    ],
)
def test_a_bad_anomalies_field_fails_at_load_with_its_path(line: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        parse_config((BASE + f"[live.anomalies]\n{line}\n").encode())
