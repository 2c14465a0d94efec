"""``python -m datasets update`` on a store of dYdX, Drift and Lighter funding, ``--api-url`` on one loopback.

The loopback (``tests/kit/dex_funding.py``) serves a **synthetic** hourly history of 61 settlements whose last
is the hour before the current one, so whatever the wall clock reads when ``update`` asks, exactly the 13
settlements after the two stored days (hours 48 .. 60) are missing, and nothing newer exists.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from datasets.acquire.dex_funding import IMPORTER
from datasets.cli import main
from datasets.exit_codes import ExitCode
from datasets.store import Store
from tests.kit.dex_funding import DexFundingVenue, started

HOUR = timedelta(hours=1)
SERVED = 61
STORED = 48
VENUES = ("drift", "dydx", "lighter")


@pytest.fixture
def start() -> datetime:
    return datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - SERVED * HOUR


@pytest.fixture
def venue(start: datetime) -> Iterator[DexFundingVenue]:
    server = started(start, hours=SERVED)
    yield server
    server.stop()


@pytest.fixture
def store_of_two_days(venue: DexFundingVenue, start: datetime, store_root: Path) -> Path:
    until = (start + STORED * HOUR).isoformat()
    for name in VENUES:
        argv = ["fetch", "--venue", name, "--kind", "funding", "--symbols", "BTC,ETH", "--since", start.isoformat()]
        assert main([*argv, "--until", until, "--store", str(store_root), "--api-url", venue.url]) == ExitCode.OK
    return store_root


def _counts(root: Path) -> dict[tuple[str, str], int]:
    frame = Store(root).scan("funding").group_by("venue", "symbol").len().collect()
    return {(row["venue"], row["symbol"]): row["len"] for row in frame.iter_rows(named=True)}


def test_update_plans_fetches_the_missing_hours_and_a_second_run_writes_nothing(
    store_of_two_days: Path, venue: DexFundingVenue, capsys: pytest.CaptureFixture[str]
) -> None:
    common = ["--store", str(store_of_two_days), "--api-url", venue.url, "--no-progress"]
    capsys.readouterr()
    assert main(["update", "--dry-run", *common]) == ExitCode.OK
    plan = capsys.readouterr().out.splitlines()
    # One line per stored (venue, symbol), from the hour after its last settlement; nothing skipped.
    assert [line.split(" funding: ")[0] for line in plan[:-1]] == [
        f"{name} {base}-USDC-PERP" for name in VENUES for base in ("BTC", "ETH")
    ]
    assert all(f"[from {IMPORTER}]" in line for line in plan[:-1])
    # One page per symbol (13 settlements), one market list each for dYdX and Lighter.
    assert plan[-1] == "6 series, 8 requests planned"
    assert set(_counts(store_of_two_days).values()) == {STORED}  # a dry run writes nothing

    assert main(["update", *common]) == ExitCode.OK
    out = capsys.readouterr().out
    for name, requests in (("drift", 2), ("dydx", 1 + 2), ("lighter", 1 + 2)):
        assert f"fetched {name} funding of 2 symbols in {requests} requests: {2 * 13} rows" in out
    assert "0 series" not in out  # no empty ccxt report beside them
    assert set(_counts(store_of_two_days).values()) == {SERVED}  # 48 + the 13 missing hours, each
    files = {path: path.read_bytes() for path in store_of_two_days.rglob("*.parquet")}

    # The current hour's settlement is due (the loopback has none yet): asked for again, nothing written.
    assert main(["update", *common]) == ExitCode.OK
    out = capsys.readouterr().out
    for name in VENUES:
        assert f"fetched {name} funding of 2 symbols in " in out
    assert out.count(": 0 rows, 0 partitions written") == 3
    assert {path: path.read_bytes() for path in store_of_two_days.rglob("*.parquet")} == files


def test_a_refused_endpoint_exits_1_naming_venue_and_endpoint_and_writes_none_of_that_venue(
    store_of_two_days: Path, venue: DexFundingVenue, capsys: pytest.CaptureFixture[str]
) -> None:
    venue.refuse_path = "/api/v1/fundings"
    capsys.readouterr()
    argv = ["update", "--venue", "lighter", "--store", str(store_of_two_days), "--api-url", venue.url]
    assert main([*argv, "--no-progress"]) == ExitCode.ERROR
    err = capsys.readouterr().err
    assert "error: lighter GET /api/v1/fundings: the venue refused the request (HTTP 403" in err
    assert "Traceback" not in err
    assert set(_counts(store_of_two_days).values()) == {STORED}
