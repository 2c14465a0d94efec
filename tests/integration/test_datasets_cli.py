"""`python -m datasets` end to end on the real freqtrade data of three venues."""

from __future__ import annotations

import hashlib
import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from datasets.cli import main
from datasets.exit_codes import ExitCode

VENUE_FOLDERS = ("binance_freqtrade", "bybit_freqtrade", "hyperliquid_freqtrade")


def _snapshot(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*.parquet"))
    }


@pytest.fixture(scope="module")
def imported(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    store = tmp_path_factory.mktemp("cli") / "store"
    paths = [str(shared_data / folder) for folder in VENUE_FOLDERS]
    assert main(["import", *paths, "--store", str(store), "--no-progress"]) == ExitCode.OK
    return store


def test_status_lists_spot_perp_mark_and_funding_for_three_venues(
    imported: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert main(["status", "--store", str(imported), "--json"]) == ExitCode.OK
    rows = json.loads(capsys.readouterr().out)
    series = {(r["venue"], r["symbol"], r["kind"], r["series"]) for r in rows}
    for base in ("BTC", "ETH", "SOL"):
        assert ("binance", f"{base}-USDT", "ohlcv", "trade") in series
        for venue, quote in (("binance", "USDT"), ("bybit", "USDT"), ("hyperliquid", "USDC")):
            for kind, name in (("ohlcv", "trade"), ("ohlcv", "mark"), ("funding", "rate")):
                assert (venue, f"{base}-{quote}-PERP", kind, name) in series
    btc_funding = next(
        r for r in rows if r["venue"] == "binance" and r["symbol"] == "BTC-USDT-PERP" and r["kind"] == "funding"
    )
    assert btc_funding["rows"] == 7_323  # the 1h- and 8h-named files overlap and agree: stored once
    assert datetime.fromisoformat(btc_funding["first"]) == datetime(2019, 9, 10, 8, tzinfo=UTC)


def test_reimport_of_all_three_venues_leaves_store_byte_identical(
    imported: Path, shared_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _snapshot(imported)
    paths = [str(shared_data / folder) for folder in VENUE_FOLDERS]
    assert main(["import", *paths, "--store", str(imported), "--no-progress"]) == ExitCode.OK
    assert "0 partitions written" in capsys.readouterr().out
    assert _snapshot(imported) == before


def test_bad_file_among_good_ones_exits_3_and_writes_nothing(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inputs = tmp_path / "binance"
    inputs.mkdir()
    good = inputs / "BTC_USDT_USDT-8h-funding_rate.feather"
    shutil.copy(shared_data / "binance_freqtrade/futures/BTC_USDT_USDT-8h-funding_rate.feather", good)
    bad = inputs / "ETH_USDT-1h.feather"
    bad.write_bytes((shared_data / "binance_freqtrade/spot/ETH_USDT-1h.feather").read_bytes()[:4096])
    store = tmp_path / "store"
    code = main(["import", str(good), str(bad), "--store", str(store), "--no-progress"])
    assert code == ExitCode.BAD_INPUT
    assert "ETH_USDT-1h.feather: not a readable Arrow IPC" in capsys.readouterr().err
    assert _snapshot(store) == {}


def test_unknown_time_zone_exits_2_naming_the_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "x.feather"
    source.write_bytes(b"")
    with pytest.raises(SystemExit) as exited:
        main(["import", str(tmp_path), "--tz", "Mars/Olympus", "--store", str(tmp_path / "s")])
    assert exited.value.code == ExitCode.USAGE
    assert "--tz: expected an IANA time zone like Europe/London or UTC, was 'Mars/Olympus'" in capsys.readouterr().err


def test_unrecognised_explicit_file_lists_supported_formats(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "notes.csv"
    source.write_text("a,b\n1,2\n")
    assert main(["import", str(source), "--store", str(tmp_path / "s")]) == ExitCode.BAD_INPUT
    assert "no importer recognises this file. Supported formats:" in capsys.readouterr().err
