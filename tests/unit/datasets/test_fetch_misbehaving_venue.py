"""`python -m datasets fetch | update | check` against loopback venues that misbehave (tests.kit.venues).

Each case asserts the exit code, that the output names what went wrong, and that the stored series
has no gap and no duplicate, or that the gap the venue would not fill is recorded in the lineage,
listed by ``check``, left alone by ``update`` and asked for again with ``--retry-known-gaps``.
Nothing leaves 127.0.0.1; backoff sleeps are recorded, not slept.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import polars as pl
import pytest

from datasets.acquire.ccxt_venues import make_exchange
from datasets.acquire.retry import RetryPolicy
from datasets.cli import main
from datasets.exit_codes import ExitCode
from datasets.gaps import known_gaps
from datasets.store import Store
from tests.kit.venues import (
    HOUR_MS,
    FakeVenueServer,
    Fault,
    Misbehaviour,
    Route,
    SyntheticMarket,
    binance_routes,
    bybit_routes,
)

START = datetime(2024, 1, 1, tzinfo=UTC)
START_MS = int(START.timestamp() * 1000)
BARS = 3_500  # 4 pages of 1,000 bars (Binance and Bybit)
SETTLEMENTS = 400  # 8-hourly: 4 pages of Binance's 1,000 h, 16 of Bybit's 200 h
UNTIL = START + timedelta(hours=BARS)
MARKET = SyntheticMarket(start_ms=START_MS, bars=BARS, settlements=SETTLEMENTS)
M = "%Y-%m-%d %H:%M"


@dataclass(frozen=True)
class Venue:
    name: str
    routes: Callable[[dict[str, SyntheticMarket]], dict[str, Route]]
    ticker: str
    klines: str
    funding: str
    busy_body: str  # the venue's "slow down" answer, sent with HTTP 200

    def serve(self) -> FakeVenueServer:
        return FakeVenueServer(self.routes({self.ticker: MARKET}))


VENUES = {
    "binance": Venue(
        "binance",
        binance_routes,
        "BTCUSDT",
        "/fapi/v1/klines",
        "/fapi/v1/fundingRate",
        json.dumps({"code": -1003, "msg": "Too many requests; current limit is 2400 request weight per 1 MINUTE."}),
    ),
    "bybit": Venue(
        "bybit",
        bybit_routes,
        "BTCUSDT",
        "/v5/market/kline",
        "/v5/market/funding/history",
        json.dumps({"retCode": 10006, "retMsg": "Too many visits!", "result": {}, "retExtInfo": {}, "time": 0}),
    ),
}


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    recorded: list[float] = []
    monkeypatch.setattr("datasets.acquire.retry.RetryPolicy", partial(RetryPolicy, sleep=recorded.append))
    # The venues' own rate limits only slow a loopback server down.
    monkeypatch.setattr("datasets.acquire.ccxt_venues.make_exchange", partial(make_exchange, enable_rate_limit=False))
    return recorded


@pytest.fixture(params=list(VENUES))
def venue(request: pytest.FixtureRequest) -> Venue:
    return VENUES[str(request.param)]


@pytest.fixture
def server(venue: Venue) -> Iterator[FakeVenueServer]:
    with venue.serve() as fake:
        yield fake


def _ms(hours: int) -> int:
    return START_MS + hours * HOUR_MS


def _at(hours: int, pattern: str = "%Y-%m-%dT%H:%M:%SZ") -> str:
    return (START + timedelta(hours=hours)).strftime(pattern)


def _cli(command: str, server: FakeVenueServer, store_root: Path, venue: str, *extra: str) -> int:
    common = ["--store", str(store_root), "--api-url", server.base_url, "--no-progress"]
    if command == "update":
        return main(["update", *common, *extra])
    return main(
        [
            "fetch",
            "--venue",
            venue,
            "--symbols",
            "BTC",
            "--since",
            START.isoformat(),
            "--until",
            UNTIL.isoformat(),
            *common,
            *extra,
        ]
    )


def _stored(store_root: Path, kind: str) -> pl.Series:
    table = "funding" if kind == "funding" else "ohlcv"
    return Store(store_root).scan(table).select("ts").collect()["ts"].sort()


def _assert_complete(store_root: Path, kind: str) -> None:
    ts = _stored(store_root, kind)
    assert ts.is_unique().all()
    if kind == "funding":
        assert ts.len() == SETTLEMENTS
        assert set(ts.diff().drop_nulls().dt.total_hours()) == {8}
    else:
        assert ts.len() == BARS
        assert set(ts.diff().drop_nulls().dt.total_hours()) == {1}


def _requests_between(server: FakeVenueServer, path: str, low_ms: int, high_ms: int) -> list[dict[str, str]]:
    key = "startTime" if "fapi" in path or "funding" in path else "start"
    return [q for q in server.requests_to(path) if low_ms <= int(q.get(key, -1)) < high_ms]


# ------------------------------------------------------------------------ answered short, then complete
@pytest.mark.parametrize(
    ("case", "kind", "message"),
    [
        # Page 2 starts 150 bars before its startTime: ccxt drops the repeated bars, the page ends 150 early.
        ("repeats_before_start", "ohlcv", f"150 missing from {_at(1_850)} to {_at(1_999)}"),
        # Page 2 is page 1 again: nothing of the second window arrives.
        ("page_2_is_page_1", "ohlcv", f"1000 missing from {_at(1_000)} to {_at(1_999)}"),
        # A 10-bar hole inside page 2.
        ("hole_inside_page", "ohlcv", f"10 missing from {_at(1_500)} to {_at(1_509)}"),
        # Funding: a settlement missing inside a page.
        ("settlement_missing", "funding", f"expected a settlement every 8h, 1 missing at {_at(1_200)}"),
    ],
)
def test_short_answer_is_asked_again_and_the_series_is_complete(
    venue: Venue,
    server: FakeVenueServer,
    store_root: Path,
    sleeps: list[float],
    caplog: pytest.LogCaptureFixture,
    case: str,
    kind: str,
    message: str,
) -> None:
    path = venue.funding if kind == "funding" else venue.klines
    misbehaviour = {
        "repeats_before_start": Misbehaviour(path, "start_earlier", after=1, shift_ms=150 * HOUR_MS),
        "page_2_is_page_1": Misbehaviour(path, "previous_page", after=1),
        "hole_inside_page": Misbehaviour(path, "drop_rows", drop=(_ms(1_500), _ms(1_510))),
        "settlement_missing": Misbehaviour(path, "drop_rows", drop=(_ms(1_200), _ms(1_201))),
    }[case]
    if venue.name == "bybit" and case == "repeats_before_start":
        pytest.skip("Bybit answers the newest rows of [start, end]: a start moved earlier changes nothing")
    server.misbehaviours.append(misbehaviour)

    assert _cli("fetch", server, store_root, venue.name, "--kind", kind) == ExitCode.OK

    assert any(
        "the venue answered short" in r.getMessage() and re.search(message, r.getMessage()) for r in caplog.records
    ), [r.getMessage() for r in caplog.records]
    assert sleeps == [1.0]  # one backoff before asking again (RetryPolicy's first step)
    _assert_complete(store_root, kind)
    assert known_gaps(Store(store_root), "funding" if kind == "funding" else "ohlcv", {"venue": venue.name}) == []


# -------------------------------------------------------------- misbehaviours the fetch absorbs on its own
@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("out_of_order", None),  # ccxt sorts a page; nothing to ask again
        ("conflicting_duplicate", r"timestamps twice with different values, first .*close"),
        ("html_page", r"expected a JSON page from \w+, was '<html><body>502 Bad Gateway"),
        ("busy_body_with_200", r"RateLimitExceeded|DDoSProtection"),
        ("reset_mid_body", r"NetworkError"),
    ],
)
def test_bad_answer_is_asked_again_and_the_series_is_complete(
    venue: Venue,
    server: FakeVenueServer,
    store_root: Path,
    sleeps: list[float],
    caplog: pytest.LogCaptureFixture,
    case: str,
    message: str | None,
) -> None:
    path = venue.klines
    if case == "out_of_order":
        server.misbehaviours.append(Misbehaviour(path, "reversed", after=1, times=2))
    elif case == "conflicting_duplicate":
        server.misbehaviours.append(Misbehaviour(path, "conflicting_duplicate", after=1))
    elif case == "html_page":
        html = "<html><body>502 Bad Gateway</body></html>"
        server.faults.append(Fault(path, 200, html, after=1, content_type="text/html"))
    elif case == "busy_body_with_200":
        server.faults.append(Fault(path, 200, venue.busy_body, after=1))
    else:
        server.misbehaviours.append(Misbehaviour(path, "reset_mid_body", after=1))

    assert _cli("fetch", server, store_root, venue.name, "--kind", "ohlcv") == ExitCode.OK

    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    if message is None:
        assert warnings == []
        assert sleeps == []
    else:
        assert any(re.search(message, w) for w in warnings), warnings
        assert sleeps == [1.0]
    _assert_complete(store_root, "ohlcv")


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("conflicting_duplicate", r"timestamps twice with different values, .*; asked 3 times"),
        ("html_page", r"expected a JSON page from \w+, was '<html>.*; asked 3 times"),
    ],
)
def test_bad_answer_that_keeps_coming_fails_with_its_reason_keeping_earlier_pages(
    venue: Venue,
    server: FakeVenueServer,
    store_root: Path,
    sleeps: list[float],
    capsys: pytest.CaptureFixture[str],
    case: str,
    message: str,
) -> None:
    if case == "conflicting_duplicate":
        server.misbehaviours.append(Misbehaviour(venue.klines, "conflicting_duplicate", after=1, times=100))
    else:
        server.faults.append(Fault(venue.klines, 200, "<html>maintenance</html>", after=1, times=100))

    code = _cli("fetch", server, store_root, venue.name, "--kind", "ohlcv", "--flush-rows", "1")

    assert code == ExitCode.BAD_INPUT
    assert re.search(message, capsys.readouterr().err)
    assert sleeps == [1.0, 2.0]
    ts = _stored(store_root, "ohlcv")  # the first page, whole; nothing of the refused one
    assert ts.len() == 1_000
    assert ts.is_unique().all()
    assert set(ts.diff().drop_nulls().dt.total_hours()) == {1}


# ------------------------------------------------------------------ a hole the venue never fills: a known gap
def test_hole_the_venue_never_fills_is_recorded_listed_and_asked_again_only_on_request(
    venue: Venue, server: FakeVenueServer, store_root: Path, sleeps: list[float], capsys: pytest.CaptureFixture[str]
) -> None:
    hole = (_ms(1_500), _ms(1_510))
    server.misbehaviours.append(Misbehaviour(venue.klines, "drop_rows", times=1_000, drop=hole))

    code = _cli("fetch", server, store_root, venue.name, "--kind", "ohlcv")

    out, err = capsys.readouterr()
    assert code == ExitCode.FINDINGS
    assert "1 known gaps recorded" in out
    assert f"known gap: {venue.name} BTC-USDT-PERP ohlcv 1h: 10 missing from {_at(1_500, M)} to {_at(1_509, M)}" in out
    assert "was asked 3 times and did not return them" in out
    assert "recorded as known gaps in the lineage" in err
    assert sleeps == [1.0, 2.0]
    ts = _stored(store_root, "ohlcv")
    assert (ts.len(), ts.is_unique().all()) == (BARS - 10, True)
    [gap] = known_gaps(Store(store_root), "ohlcv", {"venue": venue.name})
    assert (gap.missing, gap.attempts, gap.endpoint) == (10, 3, venue.klines)

    # check lists it as the venue's gap, and --strict fails on it.
    assert main(["check", "--store", str(store_root), "--strict"]) == ExitCode.FINDINGS
    listed = capsys.readouterr().out
    assert "known_gap" in listed
    assert "1 known_gap" in listed
    assert main(["check", "--store", str(store_root), "--json"]) == ExitCode.OK
    [finding] = [f for f in json.loads(capsys.readouterr().out) if f["code"] in ("gap", "known_gap")]
    assert (finding["code"], finding["count"]) == ("known_gap", 10)

    # update leaves the known gap alone (no request into it) ...
    server.requests.clear()
    assert _cli("update", server, store_root, venue.name) == ExitCode.OK
    assert "1 known gaps left out" in capsys.readouterr().out
    assert _requests_between(server, venue.klines, hole[0] - HOUR_MS, hole[1]) == []
    # ... and asks again on request; the venue now answers, so the series is complete and check is clean.
    server.misbehaviours.clear()
    assert _cli("update", server, store_root, venue.name, "--retry-known-gaps") == ExitCode.OK
    _assert_complete(store_root, "ohlcv")
    capsys.readouterr()
    assert main(["check", "--store", str(store_root), "--json"]) == ExitCode.OK
    assert not [f for f in json.loads(capsys.readouterr().out) if f["code"] in ("gap", "known_gap")]


def test_settlement_the_venue_never_returns_is_a_known_gap_of_the_funding_series(
    venue: Venue, server: FakeVenueServer, store_root: Path, sleeps: list[float], capsys: pytest.CaptureFixture[str]
) -> None:
    server.misbehaviours.append(Misbehaviour(venue.funding, "drop_rows", times=1_000, drop=(_ms(1_200), _ms(1_201))))

    assert _cli("fetch", server, store_root, venue.name, "--kind", "funding") == ExitCode.FINDINGS

    assert f"known gap: {venue.name} BTC-USDT-PERP funding: 1 missing {_at(1_200, M)}" in capsys.readouterr().out
    assert _stored(store_root, "funding").len() == SETTLEMENTS - 1
    assert main(["check", "--store", str(store_root), "--json"]) == ExitCode.OK
    codes = [(f["code"], f["count"], f["ts_start"]) for f in json.loads(capsys.readouterr().out)]
    assert ("known_gap", 1, _at(1_200, "%Y-%m-%dT%H:%M:%S+00:00")) in codes


# ------------------------------------------------------------------------- planning from actual coverage
def test_update_fills_holes_between_stored_rows_and_fetch_does_with_fill_gaps(
    server: FakeVenueServer, venue: Venue, store_root: Path, sleeps: list[float], capsys: pytest.CaptureFixture[str]
) -> None:
    # Two fetches leave [1000 h, 1200 h) out: an interior hole no later fetch used to ask for.
    common = ["--store", str(store_root), "--api-url", server.base_url, "--no-progress", "--kind", "ohlcv"]
    base = ["fetch", "--venue", venue.name, "--symbols", "BTC", *common]
    first = ["--since", START.isoformat(), "--until", (START + timedelta(hours=1_000)).isoformat()]
    second = ["--since", (START + timedelta(hours=1_200)).isoformat(), "--until", UNTIL.isoformat()]
    assert main([*base, *first]) == ExitCode.OK
    assert main([*base, *second]) == ExitCode.OK
    assert _stored(store_root, "ohlcv").len() == BARS - 200
    capsys.readouterr()

    # fetch without --fill-gaps plans only before and after the stored rows; with it, the hole too.
    assert main([*base, "--since", START.isoformat(), "--until", UNTIL.isoformat(), "--dry-run"]) == ExitCode.OK
    assert "up to date" in capsys.readouterr().out
    assert main([*base, *first[:2], "--until", UNTIL.isoformat(), "--dry-run", "--fill-gaps"]) == ExitCode.OK
    assert "[2024-02-11T16:00:00Z, 2024-02-20T00:00:00Z), 1 requests (stored" in capsys.readouterr().out

    assert main(["update", "--dry-run", *common[:2]]) == ExitCode.OK
    assert "1 holes to fill" in capsys.readouterr().out
    server.requests.clear()
    assert _cli("update", server, store_root, venue.name) == ExitCode.OK
    _assert_complete(store_root, "ohlcv")
    assert len(_requests_between(server, venue.klines, _ms(1_000), _ms(1_200))) == 1  # the hole, in one request


def test_range_before_the_venues_first_bar_is_not_a_gap(
    server: FakeVenueServer, venue: Venue, store_root: Path, sleeps: list[float], capsys: pytest.CaptureFixture[str]
) -> None:
    earlier = (START - timedelta(hours=2_500)).isoformat()
    argv = ["fetch", "--venue", venue.name, "--symbols", "BTC", "--kind", "ohlcv,funding", "--since", earlier]
    argv += ["--until", UNTIL.isoformat(), "--store", str(store_root), "--api-url", server.base_url, "--no-progress"]
    assert main(argv) == ExitCode.OK
    assert sleeps == []
    assert "known gap" not in capsys.readouterr().out
    _assert_complete(store_root, "ohlcv")
    _assert_complete(store_root, "funding")
