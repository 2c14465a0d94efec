"""`python -m datasets fetch | update | dumps | record` end to end against loopback servers only."""

from __future__ import annotations

import hashlib
import io
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from datasets.cli import main
from datasets.exit_codes import ExitCode
from datasets.store import Store
from tests.kit.venues import HOUR_MS, FakeVenueServer, Route, SyntheticMarket, binance_routes

VENUES = ("binance", "bybit", "okx", "hyperliquid", "kraken")


@pytest.mark.parametrize("venue", VENUES)
def test_dry_run_prints_a_year_of_funding_and_bars_for_three_symbols_without_network(
    venue: str, store_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [
        "fetch",
        "--venue",
        venue,
        "--kind",
        "funding,ohlcv",
        "--symbols",
        "BTC,ETH,SOL",
        "--since",
        "2024-01-01",
        "--until",
        "2025-01-01",
        "--dry-run",
        "--store",
        str(store_root),
        "--api-url",
        "http://127.0.0.1:9",
    ]
    assert main(argv) == ExitCode.OK
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 7  # 2 kinds x 3 symbols, and the total
    assert all("[2024-01-01T00:00:00Z, " in line for line in out[:6])
    assert out[-1].endswith("requests planned")
    assert not store_root.exists()


@pytest.fixture
def live_market() -> SyntheticMarket:
    hour_ms = int(datetime.now(UTC).timestamp() * 1000) // HOUR_MS * HOUR_MS
    return SyntheticMarket(start_ms=hour_ms - 2_500 * HOUR_MS, bars=2_500, settlements=312)


@pytest.fixture
def binance(live_market: SyntheticMarket) -> Iterator[FakeVenueServer]:
    with FakeVenueServer(binance_routes({"BTCUSDT": live_market, "ETHUSDT": live_market})) as server:
        yield server


def test_fetch_then_update_bring_two_symbols_up_to_now_through_ccxt(
    binance: FakeVenueServer, live_market: SyntheticMarket, store_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    since = datetime.fromtimestamp(live_market.start_ms / 1000, UTC).isoformat()
    common = ["--store", str(store_root), "--api-url", binance.base_url, "--no-progress"]
    assert (
        main(
            [
                "fetch",
                "--venue",
                "binance",
                "--kind",
                "ohlcv,mark,funding",
                "--symbols",
                "BTC,ETH",
                "--since",
                since,
                *common,
            ]
        )
        == ExitCode.OK
    )
    store = Store(store_root)
    assert store.scan("ohlcv", price_type="trade").collect().height == 2 * 2_500
    assert store.scan("ohlcv", price_type="mark").collect().height == 2 * 2_500
    assert store.scan("funding").collect().height == 2 * 312

    capsys.readouterr()
    assert main(["update", *common]) == ExitCode.OK
    out = capsys.readouterr().out
    assert "6 series" in out
    assert "[from ccxt-fetch]" in out
    assert store.scan("ohlcv").collect().height == 4 * 2_500  # nothing new, nothing twice


def test_dumps_command_verifies_and_imports_from_a_configured_base_url(
    store_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    name = "BTCUSDT-fundingRate-2024-01"
    csv = b"calc_time,funding_interval_hours,last_funding_rate\n1704067200000,8,0.00010000\n1704096000000,8,0.00012\n"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(f"{name}.csv", csv)
    body = buffer.getvalue()
    path = f"/data/futures/um/monthly/fundingRate/BTCUSDT/{name}.zip"
    routes: dict[str, Route] = {
        path: lambda query: body,
        path + ".CHECKSUM": lambda query: f"{hashlib.sha256(body).hexdigest()}  {name}.zip\n".encode(),
    }
    with FakeVenueServer(routes) as server:
        argv = [
            "dumps",
            "--symbols",
            "BTC-USDT-PERP",
            "--kind",
            "fundingRate",
            "--since",
            "2024-01",
            "--until",
            "2024-01",
            "--base-url",
            server.base_url,
            "--store",
            str(store_root),
            "--no-progress",
        ]
        assert main(argv) == ExitCode.OK
    assert "1 imported (2 rows" in capsys.readouterr().out
    assert Store(store_root).scan("funding").collect().height == 2


def test_record_bybit_without_symbols_exits_with_clear_error(
    store_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["record", "liquidations", "--venue", "bybit", "--store", str(store_root)]) == ExitCode.ERROR
    assert "pass --symbols" in capsys.readouterr().err
