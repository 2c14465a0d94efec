"""``update`` brings the stored funding of the research-only venues (dYdX, Drift, Lighter) up to now.

Against the loopback of ``tests/kit/dex_funding.py`` (a **synthetic** hourly history, one settlement per
hour from 2025-01-06 00:00 UTC, rate ``(i % 7 - 3) * 1e-6``); ``now`` is injected, so every count below is
read off the hourly clock.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from datasets.acquire.dex_funding import IMPORTER, fetch_dex_funding
from datasets.acquire.errors import FetchError
from datasets.acquire.retry import RetryPolicy
from datasets.acquire.update import UpdatePlan, plan_update, run_dex_update
from datasets.store import Store
from tests.kit.dex_funding import DexFundingVenue, started, synthetic_rate

START = datetime(2025, 1, 6, tzinfo=UTC)
HOUR = timedelta(hours=1)
VENUES = ("drift", "dydx", "lighter")
BASES = ("BTC", "ETH")
# Two days stored: settlements 0..47 (2025-01-06 00:00 .. 2025-01-07 23:00).
STORED = 48
# 2025-01-09 06:30: the settlements of hours 48 .. 78 (06:00 today, before now) are missing, 31 of them.
NOW = START + 78 * HOUR + timedelta(minutes=30)
MISSING = 78 - 48 + 1


@pytest.fixture
def venue() -> Iterator[DexFundingVenue]:
    # 100 hours served, past NOW as well: the update must stop at now, not at the end of what is served.
    server = started(START, hours=100)
    yield server
    server.stop()


def _no_sleep() -> tuple[RetryPolicy, list[float]]:
    waits: list[float] = []
    return RetryPolicy(attempts=4, sleep=waits.append), waits


@pytest.fixture
def store(venue: DexFundingVenue, store_root: Path) -> Store:
    store = Store(store_root)
    policy, _ = _no_sleep()
    for name in VENUES:
        fetch_dex_funding(
            store, name, list(BASES), since=START, until=START + STORED * HOUR, api_url=venue.url, retry=policy
        )
    return store


def _stored(store: Store, venue: str, base: str) -> pl.DataFrame:
    return store.scan("funding", venue=venue, symbol=f"{base}-USDC-PERP").sort("ts").collect()


def _files(store: Store) -> dict[Path, bytes]:
    return {path: path.read_bytes() for path in sorted(store.root.rglob("*.parquet"))}


def test_plan_lists_each_stored_symbol_from_the_hour_after_its_last_settlement(store: Store) -> None:
    plan = plan_update(store, now=NOW)
    assert plan.plans == ()
    assert plan.skipped == ()
    assert [(p.venue, p.symbol, p.start, p.end) for p in plan.dex] == [
        (name, f"{base}-USDC-PERP", START + STORED * HOUR, NOW) for name in VENUES for base in BASES
    ]
    # One history page per symbol (31 settlements < dYdX's 1,000 and Lighter's 500 a page; Drift answers
    # all at once) and one market list each for dYdX and Lighter: 6 + 2.
    assert plan.requests == 8
    assert plan.series_count == 6
    assert plan.lines()[0] == (
        "drift BTC-USDC-PERP funding: [2025-01-08T00:00:00Z, 2025-01-09T06:30:00Z), 1 requests "
        f"(stored 2025-01-06T00:00:00Z .. 2025-01-07T23:00:00Z) [from {IMPORTER}]"
    )


def _update(store: Store, venue: DexFundingVenue, policy: RetryPolicy) -> UpdatePlan:
    plan = plan_update(store, now=NOW)
    run_dex_update(store, plan.dex, api_url=venue.url, retry=policy)
    return plan


def test_update_stores_exactly_the_missing_settlements_and_a_second_writes_nothing(
    store: Store, venue: DexFundingVenue
) -> None:
    policy, _ = _no_sleep()
    plan = plan_update(store, now=NOW)
    reports = run_dex_update(store, plan.dex, api_url=venue.url, retry=policy)
    assert [(r.venue, r.symbols, r.rows, r.requests) for r in reports] == [
        ("drift", 2, 2 * MISSING, 2),
        ("dydx", 2, 2 * MISSING, 1 + 2),
        ("lighter", 2, 2 * MISSING, 1 + 2),
    ]
    assert sum(r.requests for r in reports) == plan.requests
    for name in VENUES:
        for base in BASES:
            frame = _stored(store, name, base)
            assert frame["ts"].to_list() == [START + i * HOUR for i in range(STORED + MISSING)]
            assert frame["rate"].to_list() == [synthetic_rate(i) for i in range(STORED + MISSING)]
    files = _files(store)
    again = plan_update(store, now=NOW)
    assert again.requests == 0
    assert all(
        line.endswith(f"up to date (stored 2025-01-06T00:00:00Z .. 2025-01-09T06:00:00Z) [from {IMPORTER}]")
        for line in again.lines()
    )
    assert run_dex_update(store, again.dex, api_url=venue.url, retry=policy) == []
    assert _files(store) == files


def test_a_burst_of_5xx_is_retried_with_capped_backoff(store: Store, venue: DexFundingVenue) -> None:
    venue.fail_first = [503, 502, 500]
    policy, waits = _no_sleep()
    _update(store, venue, policy)
    assert waits == [1.0, 2.0, 4.0]
    assert all(_stored(store, name, base).height == STORED + MISSING for name in VENUES for base in BASES)


def test_a_refusal_names_venue_and_endpoint_and_leaves_that_venue_as_it_was(
    store: Store, venue: DexFundingVenue
) -> None:
    venue.refuse_path = "/api/v1/fundings"
    policy, waits = _no_sleep()
    lighter_before = {base: _stored(store, "lighter", base) for base in BASES}
    with pytest.raises(FetchError, match=r"^lighter GET /api/v1/fundings: the venue refused the request \(HTTP 403"):
        _update(store, venue, policy)
    assert waits == []  # a 4xx is not retried
    # Drift and dYdX ran first (each symbol one write, complete); Lighter is exactly as stored before.
    assert all(_stored(store, name, base).height == STORED + MISSING for name in ("dydx", "drift") for base in BASES)
    for base in BASES:
        assert _stored(store, "lighter", base).equals(lighter_before[base])
    # The next update continues: only Lighter is left, one page per symbol and its market list.
    venue.refuse_path = None
    plan = plan_update(store, now=NOW)
    assert plan.requests == 1 + 2
    run_dex_update(store, plan.dex, api_url=venue.url, retry=policy)
    assert all(_stored(store, "lighter", base).height == STORED + MISSING for base in BASES)


def test_venue_filter_plans_only_that_venue(store: Store) -> None:
    plan = plan_update(store, now=NOW, venues=["lighter"])
    assert {p.venue for p in plan.dex} == {"lighter"}
    assert plan.requests == 1 + 2
