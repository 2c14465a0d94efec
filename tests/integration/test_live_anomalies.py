"""Anomaly halts (``engine.live.anomalies``) triggered on a live node by a loopback Binance venue that misbehaves
on cue (``tests/kit/binance_futures.py``): a dropped WebSocket, slow acknowledgements, a balance moved without a
fill, a position the venue reports and we never traded, repeated rejections; and, raising none, a position held
across restarts and a paper replay with every check on.

Each session runs ``strategies.demo:FundingShort`` in-process on a live node whose Binance adapter points at the
loopback venue. A control actor plays the operator: it pulls the cue after a number of bars and, once the
anomaly's risk event is published (and, where asked, a state the test waits for is reached), requests the
node's graceful stop. Nothing waits for a fixed time: every session is bounded by a generous
``duration_secs`` that a passing test never reaches.
"""

from __future__ import annotations

import json
import socket
import sqlite3
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import closing
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from nautilus_trader.common import DataActor
from nautilus_trader.model import BarType

from engine.backtest import parse_config
from engine.live import SessionOptions, run_session
from engine.live.anomalies import ANOMALY_KINDS
from engine.live.monitor import StopRequest
from engine.loading import config_hash
from strategies.risk import RISK_EVENTS_TOPIC
from tests.kit.binance_futures import RECORDED, BinanceFuturesLoopback
from tests.kit.live import FILL_COLUMNS, FUNDING_COLUMNS, flat_perp_catalog, replay_options, risk_hold_toml, sorted_rows

PERP = "BTCUSDT-PERP.BINANCE"
ENVIRON = {"CARRYLAB_BINANCE_API_KEY": "loopbackFAKEapiKEY0123456789abcdef", "CARRYLAB_BINANCE_API_SECRET": "x" * 32}
BOUND_SECS = 90.0  # a session that passes stops long before


class Operator(DataActor):  # type: ignore[misc]
    """Pull ``cue`` after ``cue_after_bars`` bars; stop the node once ``control``'s risk event came and ``done()``."""

    def __new__(cls, **_: Any) -> Operator:
        instance: Operator = super().__new__(cls)
        return instance

    def __init__(
        self,
        *,
        stop: StopRequest,
        control: str,
        cue: Callable[[], None] | None = None,
        cue_after_bars: int = 0,
        done: Callable[[Operator], bool] = lambda _: True,
        stop_after_bars: int | None = None,
    ) -> None:
        super().__init__()
        self.stop = stop
        self.control = control
        self.cue = cue
        self.cue_after_bars = cue_after_bars
        self.done = done
        self.stop_after_bars = stop_after_bars
        self.bars = 0
        self.bars_at_event = 0
        self.events: list[dict[str, Any]] = []

    def on_start(self) -> None:
        self.subscribe_bars(BarType.from_str(f"{PERP}-1-MINUTE-LAST-EXTERNAL"))
        self.subscribe_topic(RISK_EVENTS_TOPIC, self._on_risk_event)
        self.clock.set_timer_ns("operator", 50_000_000, callback=self._check)

    def on_bar(self, _bar: Any) -> None:
        self.bars += 1
        if self.cue is not None and self.bars == self.cue_after_bars:
            self.cue()

    def _on_risk_event(self, message: object) -> None:
        if isinstance(message, dict) and message.get("control") == self.control:
            self.bars_at_event = self.bars_at_event or self.bars
            self.events.append(message)

    def _check(self, _event: Any) -> None:
        if self.events and self.done(self):
            self.stop.request(f"{self.control} seen", flatten=False)
        elif self.stop_after_bars is not None and self.bars >= self.stop_after_bars:
            self.stop.request(f"{self.bars} bars seen", flatten=False)


@pytest.fixture
def venue() -> Iterator[BinanceFuturesLoopback]:
    if not RECORDED.exists():
        pytest.fail(f"recorded exchangeInfo {RECORDED} not found: clone the repo next to shared/")
    server = BinanceFuturesLoopback().start()
    yield server
    server.stop()


def _config(venue: BinanceFuturesLoopback, anomalies: str, *, trade: bool) -> bytes:
    # Funding on the loopback is 0.0005: an enter_rate of 0.0002 shorts at once, 0.01 never trades.
    enter_rate = "0.0002" if trade else "0.01"
    return f"""
name = "loopback-binance-anomalies"
start = 2024-01-01T00:00:00Z
end = 2024-02-01T00:00:00Z
[data]
bar_spec = "1-MINUTE-LAST-EXTERNAL"
[[venues]]
name = "binance"
instruments = ["BTC-USDT-PERP"]
starting_balances = ["100000 USDT"]
[risk.max_notional_per_order]
"binance:BTC-USDT-PERP" = 5000
[strategy]
path = "strategies.demo:FundingShort"
[strategy.params]
instrument_ids = ["binance:BTC-USDT-PERP"]
bar_spec = "1-MINUTE-LAST-EXTERNAL"
notional = "2000"
enter_rate = "{enter_rate}"
exit_rate = "0.0001"
[live]
status_interval_secs = 0.5
position_check_interval_secs = 1
[live.anomalies]
{anomalies.strip()}
[live.connections.binance]
environment = "production"
base_url_http = "{venue.url}"
base_url_ws = "{venue.ws_url}"
""".encode()


def _run(
    venue: BinanceFuturesLoopback,
    tmp_path: Path,
    operator: Operator,
    anomalies: str,
    *,
    trade: bool,
    port: int | None = None,
) -> Any:
    config = parse_config(_config(venue, anomalies, trade=trade))
    options = SessionOptions(
        mode="live",
        confirmed_live=True,
        confirm_hash=config_hash(config),
        environ=ENVIRON,
        out_dir=tmp_path / "runs",
        state_dir=tmp_path / "state",
        duration_secs=BOUND_SECS,
        install_signal_handlers=False,
        metrics_port=port,
        stop=operator.stop,
        actors=[operator],
    )
    return run_session(config, options)


def _journaled(session: Any, control: str) -> list[tuple[str, str]]:
    with closing(sqlite3.connect(session.state_path)) as connection:
        query = "SELECT control, action FROM risk_events WHERE control = ?"
        return list(connection.execute(query, (control,)))


def _recorded(session: Any, control: str) -> dict[str, Any]:
    assert session.stop_reason == f"{control} seen"  # the operator stopped it, not the bound
    events = session.result.risk_events.filter(session.result.risk_events["control"] == control)
    assert events.height == 1  # each check fires once
    assert _journaled(session, control) == [(control, events["action"][0])]
    return events.row(0, named=True)


@pytest.mark.slow
def test_a_dropped_market_websocket_halts_after_max_disconnected_secs(
    venue: BinanceFuturesLoopback, tmp_path: Path
) -> None:
    operator = Operator(stop=StopRequest(), control="connectivity", cue=venue.drop_market, cue_after_bars=3)
    session = _run(venue, tmp_path, operator, "max_disconnected_secs = 1.5", trade=False)
    event = _recorded(session, "connectivity")
    assert event["instrument_id"] == "BINANCE"
    assert event["action"] == "halt"
    assert Decimal(event["value"]) > Decimal("1.5")
    assert "BINANCE sent nothing for" in event["reason"]


@pytest.mark.slow
def test_a_slow_acknowledgement_halts_new_exposure(venue: BinanceFuturesLoopback, tmp_path: Path) -> None:
    venue.venue.ack_delay_secs = 1.0  # every order answered after 1 s; the limit is 300 ms
    # Stop once the slow order filled: the halt came while it was in flight, and no order followed.
    operator = Operator(
        stop=StopRequest(), control="ack_latency", done=lambda actor: bool(actor.cache.positions_open())
    )
    session = _run(venue, tmp_path, operator, "max_ack_latency_ms = 300", trade=True)
    event = _recorded(session, "ack_latency")
    assert event["instrument_id"] == PERP
    assert Decimal(event["value"]) > 300


@pytest.mark.slow
def test_a_balance_moved_without_a_fill_halts_and_flattens(venue: BinanceFuturesLoopback, tmp_path: Path) -> None:
    # The strategy shorts on the first bars (a fill: a balance change it explains); 8 bars later the venue
    # credits 250 USDT with no fill. flatten = true: the halt closes the short with a reduce-only order.
    operator = Operator(
        stop=StopRequest(),
        control="unexplained_balance",
        cue=lambda: venue.adjust_balance(Decimal(250)),
        cue_after_bars=12,
        done=lambda actor: not actor.cache.positions_open() and venue.venue.position == 0,
    )
    anomalies = "max_unexplained_balance_change = 1\nbalance_grace_secs = 0.5\nflatten = true"
    session = _run(venue, tmp_path, operator, anomalies, trade=True)
    event = _recorded(session, "unexplained_balance")
    assert event["instrument_id"] == "BINANCE USDT"
    assert event["action"] == "flatten"
    assert Decimal(event["value"]) == 250
    sides = [(o["side"], o.get("reduceOnly")) for o in venue.venue.orders]
    assert sides[0] == ("SELL", None)
    assert sides[-1] == ("BUY", "true")
    assert venue.venue.position == 0


@pytest.mark.slow
def test_a_venue_position_we_never_traded_halts_after_reconciliation(
    venue: BinanceFuturesLoopback, tmp_path: Path
) -> None:
    venue.venue.reported_position = Decimal("-0.010")  # positionRisk reports a short; our journal is empty
    operator = Operator(stop=StopRequest(), control="position_mismatch")
    session = _run(venue, tmp_path, operator, "check_positions = true\nposition_grace_secs = 0.5", trade=False)
    event = _recorded(session, "position_mismatch")
    assert event["instrument_id"] == PERP
    assert Decimal(event["value"]) == Decimal("-0.010")  # the venue's
    assert Decimal(event["limit"]) == 0  # ours


def _free_port() -> int:
    with closing(socket.socket()) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - loopback URL of our node
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()
    except OSError:
        return 0, ""


@pytest.mark.slow
def test_repeated_rejects_halt_and_show_in_health_and_metrics(venue: BinanceFuturesLoopback, tmp_path: Path) -> None:
    venue.venue.reject_orders = True
    port = _free_port()
    seen = threading.Event()
    scraped: dict[str, Any] = {}

    def scrape() -> None:
        # Waits (a state, not a time) for /healthz to turn 503 on the halt and the counter to count it.
        while not seen.is_set():
            code, body = _get(f"http://127.0.0.1:{port}/healthz")
            _, metrics = _get(f"http://127.0.0.1:{port}/metrics")
            if code == 503 and 'carrylab_risk_events_total{action="halt",control="rejects"} 1.0' in metrics:
                scraped.update(health=json.loads(body), metrics=metrics)
                seen.set()
            else:
                seen.wait(0.1)

    scraper = threading.Thread(target=scrape, daemon=True)
    scraper.start()
    # Stopped once health and metrics showed the halt and 4 more bars came, each one an entry the strategy tried.
    operator = Operator(
        stop=StopRequest(),
        control="rejects",
        done=lambda actor: seen.is_set() and actor.bars >= actor.bars_at_event + 4,
    )
    session = _run(venue, tmp_path, operator, "max_rejects = 3\nreject_window_secs = 60", trade=True, port=port)
    seen.set()
    scraper.join(timeout=10)
    event = _recorded(session, "rejects")
    assert event["value"] == "3"
    # The third rejection halted at once: the strategy kept trying on every bar, no order left the node again.
    assert [path for method, path, _ in venue.venue.requests if method == "POST"].count("/fapi/v1/order") == 3
    assert scraped["health"]["halted"].startswith("anomaly rejects: 3 orders rejected")
    assert any("strategy halted: anomaly rejects" in reason for reason in scraped["health"]["reasons"])


@pytest.mark.slow
def test_a_paper_replay_with_every_check_on_trades_as_without_and_raises_none(tmp_path: Path) -> None:
    # Paper shares the checks: on the hand-made flat catalog (tests.kit.live) a long of 100 contracts pays
    # 0.5 % funding every 8 h into the sandbox account. Fills and booked settlements explain every balance
    # change, the restore-free positions are ours: nothing fires, and the ledgers equal a run without checks.
    catalog = flat_perp_catalog(tmp_path / "catalog")
    base = risk_hold_toml(catalog, name="paper-anomalies", end="2024-01-02T00:00:00Z")
    checks = (
        "[live]\n[live.anomalies]\nmax_disconnected_secs = 60\nmax_ack_latency_ms = 5000\n"
        "max_unexplained_balance_change = 0\nbalance_grace_secs = 0\ncheck_positions = true\nmax_rejects = 1\n"
    )
    # 8 hours of bars a second: 23 hours in about 3 s, balances read every second, so the readings fall between
    # the fill (02:00) and the settlements (08:00, 16:00) and each change must be explained by its own event.
    speed = 8 * 3600
    plain = run_session(parse_config(base.encode()), replay_options(tmp_path / "plain", speed=speed)).result
    checked = run_session(parse_config((base + checks).encode()), replay_options(tmp_path / "checked", speed=speed))
    result = checked.result
    assert result.risk_events.filter(result.risk_events["control"].is_in(list(ANOMALY_KINDS))).height == 0
    assert result.funding.height == plain.funding.height == 2  # settlements at 08:00 and 16:00
    assert sorted_rows(result.fills, FILL_COLUMNS, ["ts"]).equals(sorted_rows(plain.fills, FILL_COLUMNS, ["ts"]))
    assert result.funding.select(FUNDING_COLUMNS).equals(plain.funding.select(FUNDING_COLUMNS))


@pytest.mark.slow
def test_positions_held_across_restarts_are_ours_and_raise_no_mismatch(
    venue: BinanceFuturesLoopback, tmp_path: Path
) -> None:
    # Session 1 shorts 0.047 and stops without flattening; sessions 2 and 3 recover the short from the venue
    # (reconciliation) and hold it: the journal's fills say the same, so the position check stays quiet.
    anomalies = "check_positions = true\nposition_grace_secs = 0.5"
    for session_number in (1, 2, 3):
        operator = Operator(stop=StopRequest(), control="position_mismatch", stop_after_bars=12)
        session = _run(venue, tmp_path, operator, anomalies, trade=True)
        assert session.session == session_number
        assert session.stop_reason == "12 bars seen", session.stop_reason
        assert operator.events == []
        assert venue.venue.position == Decimal("-0.047")
    assert len(venue.venue.orders) == 1
