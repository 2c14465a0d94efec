"""`python -m datasets fetch --kind instruments`, `update` and `import --as-of` end to end, loopback only."""

from __future__ import annotations

from pathlib import Path

import pytest

from datasets.cli import main
from datasets.exit_codes import ExitCode
from datasets.store import Store
from tests.kit.venues import LISTED_SYMBOLS, FakeVenueServer, SyntheticMarket, bybit_routes

MARKET = SyntheticMarket(start_ms=1_704_067_200_000, bars=10, settlements=3)


def test_fetch_instruments_then_update_refreshes_them(store_root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with FakeVenueServer(bybit_routes({"BTCUSDT": MARKET})) as server:
        common = ["--store", str(store_root), "--api-url", server.base_url]
        assert main(["fetch", "--venue", "bybit", "--kind", "instruments", "--dry-run", *common]) == ExitCode.OK
        assert server.requests == []
        assert main(["fetch", "--venue", "bybit", "--kind", "instruments", *common]) == ExitCode.OK
        assert main(["update", "--dry-run", *common]) == ExitCode.OK
        dry = len(server.requests)
        assert main(["update", *common]) == ExitCode.OK
        assert len(server.requests) > dry
    out = capsys.readouterr().out
    assert f"bybit: {LISTED_SYMBOLS} spot, {LISTED_SYMBOLS} perp instruments; {2 * LISTED_SYMBOLS} new" in out
    assert "instruments bybit: refresh" in out
    assert f"{LISTED_SYMBOLS} perp instruments; 0 new or changed specs and 0 margin-tier rows written" in out
    assert Store(store_root).scan("instruments").collect().height == 2 * LISTED_SYMBOLS
    assert main(["status", "--store", str(store_root)]) == ExitCode.OK
    assert "margin_tiers  versions" in capsys.readouterr().out


def test_series_kinds_still_need_symbols(store_root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["fetch", "--venue", "okx", "--kind", "instruments,funding", "--store", str(store_root), "--dry-run"]
    assert main(argv) == ExitCode.ERROR
    assert "--kind funding needs --symbols" in capsys.readouterr().err


def test_import_binance_brackets_needs_as_of(
    shared_data: Path, store_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = str(shared_data / "binance_margin" / "binance_leverage_tiers.json")
    assert main(["import", path, "--store", str(store_root), "--no-progress"]) == ExitCode.BAD_INPUT
    assert "pass --as-of" in capsys.readouterr().err
    argv = ["import", path, "--store", str(store_root), "--no-progress", "--as-of", "2026-09-01"]
    assert main(argv) == ExitCode.OK
    assert "imported 1 files, 7,244 rows" in capsys.readouterr().out
