"""Research-only funding venues: dYdX v4, Drift, Lighter importers, fetchers, status and the engine's refusal.

Real formats: the dYdX and Lighter samples in ``../shared/data/exchange_payloads`` and a real mainnet Drift
``FundingRateRecord`` (decoded from ``drift_tx_logs.json``); the loopback histories are synthetic
(``tests/kit/dex_funding.py`` says so and where each format comes from).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from datasets.acquire.dex_funding import fetch_dex_funding
from datasets.acquire.errors import FetchError, MalformedPageError, PlanError
from datasets.acquire.retry import RetryPolicy
from datasets.cli import main
from datasets.errors import SourceFormatError
from datasets.exit_codes import ExitCode
from datasets.importers.base import ImportOptions
from datasets.importers.drift import DriftFundingImporter
from datasets.importers.dydx import DydxFundingImporter
from datasets.importers.lighter import LighterFundingImporter
from datasets.onchain.decode import decode_transaction
from datasets.onchain.idl import load_idls
from datasets.onchain.mints import MintTable
from datasets.status import coverage, summarise
from datasets.store import Store
from engine.errors import ConfigError
from engine.loading import parse_config
from tests.kit import solana as solana_kit
from tests.kit.dex_funding import DexFundingVenue, started, synthetic_rate

PAYLOADS = Path("exchange_payloads/crates/adapters")
START = datetime(2025, 1, 6, tzinfo=UTC)


def _rows(batches: list[object]) -> pl.DataFrame:
    (batch,) = batches
    return batch.frame  # type: ignore[attr-defined,no-any-return]


def test_dydx_sample_imports_hourly_rates_exactly_at_the_hour(shared_data: Path) -> None:
    path = shared_data / PAYLOADS / "dydx/test_data/http_get_historical_funding.json"
    frame = _rows(DydxFundingImporter().read(path, ImportOptions()))
    # The sample's three settlements, newest first, stamped 0.112-0.586 s after 14:00, 15:00, 16:00.
    assert frame["ts"].to_list() == [datetime(2025, 12, 8, h, tzinfo=UTC) for h in (14, 15, 16)]
    assert frame["rate"].to_list() == [Decimal("0.000000625"), Decimal("0.000000375"), Decimal("0.000002375")]
    assert frame["index_price"].to_list()[-1] == Decimal("89993.8")
    assert set(frame["symbol"]) == {"BTC-USDC-PERP"}
    assert set(frame["venue"]) == {"dydx"}
    assert set(frame["interval"]) == {"1h"}


def test_lighter_sample_rates_are_signed_fractions_of_its_percentages(shared_data: Path, tmp_path: Path) -> None:
    path = tmp_path / "lighter_fundings_BTC.json"
    shutil.copy(shared_data / PAYLOADS / "lighter/test_data/http_fundings.json", path)
    frame = _rows(LighterFundingImporter().read(path, ImportOptions()))
    # 0.0012 % paid by longs -> +0.0012 / 100; 0.0002 % paid by shorts -> -0.0002 / 100.
    assert frame["rate"].to_list() == [Decimal("0.000012"), Decimal("-0.000002")]
    assert frame["ts"].to_list() == [datetime.fromtimestamp(t, UTC) for t in (1_778_702_400, 1_778_706_000)]
    assert set(frame["symbol"]) == {"BTC-USDC-PERP"}


def test_lighter_file_without_its_market_in_the_name_is_exit_3_and_writes_nothing(
    shared_data: Path, store_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = shared_data / PAYLOADS / "lighter/test_data/http_fundings.json"
    assert main(["import", str(path), "--store", str(store_root), "--no-progress"]) == ExitCode.BAD_INPUT
    err = capsys.readouterr().err
    assert "expected the market at the end of the file name (e.g. lighter_fundings_BTC.json)" in err
    assert "Traceback" not in err
    assert not store_root.exists() or not list(store_root.rglob("*.parquet"))


def _real_drift_funding_record(shared_data: Path) -> dict[str, int]:
    idls = load_idls(shared_data / "solana" / "solana_idls")
    tx = solana_kit.drift_log_transactions(shared_data)[0]
    event = decode_transaction(tx, protocol="drift", idls=idls, mints=MintTable.default()).events[1].event
    assert event.name == "FundingRateRecord"
    return dict(event.fields)


def test_drift_rate_from_a_real_mainnet_funding_rate_record(shared_data: Path, tmp_path: Path) -> None:
    fields = _real_drift_funding_record(shared_data)
    # The data API serves the event's fields in camelCase, integers as text.
    record = {
        "ts": str(fields["ts"]),
        "recordId": str(fields["record_id"]),
        "marketIndex": fields["market_index"],
        "fundingRate": str(fields["funding_rate"]),
        "oraclePriceTwap": str(fields["oracle_price_twap"]),
        "markPriceTwap": str(fields["mark_price_twap"]),
    }
    path = tmp_path / "drift_fundingRates_DRIFT.json"
    path.write_text(json.dumps({"fundingRates": [record]}))
    frame = _rows(DriftFundingImporter().read(path, ImportOptions()))
    (rate,) = frame["rate"].to_list()
    # fundingRate 94,833 (1e9) over oracle TWAP 620,724 (1e6): 94833e-9 / 0.620724 = 1.52778046281439...e-4,
    # by long division 94,833,000 / 620,724 = 152.778046281439 (x 1e-6), rounded to 18 places.
    assert (fields["funding_rate"], fields["oracle_price_twap"]) == (94_833, 620_724)
    assert rate == Decimal("0.000152778046281439")
    # Plausible: Drift's hourly rate is the mark/oracle TWAP premium over 24, here (622,876 - 620,724) / 620,724 / 24.
    premium = Decimal(622_876 - 620_724) / Decimal(620_724) / 24
    assert abs(rate - premium) / premium < Decimal("0.1")
    # Cranked 115 s after the hour (1,756,580,515 = 487,939 h + 115 s): that hour's settlement.
    assert frame["ts"].to_list() == [datetime.fromtimestamp(487_939 * 3_600, UTC)]
    assert frame["index_price"].to_list() == [Decimal("0.620724")]
    assert frame["mark_price"].to_list() == [Decimal("0.622876")]
    assert frame["symbol"].to_list() == ["DRIFT-USDC-PERP"]


@pytest.mark.parametrize(
    ("name", "importer", "document", "match"),
    [
        (
            "lighter_fundings_BTC.json",
            LighterFundingImporter(),
            {"fundings": [{"timestamp": 1_778_702_400, "rate": "0.001", "direction": "up"}]},
            r"lighter_fundings_BTC.json: record 0, field 'direction': expected 'long' or 'short'",
        ),
        (
            "lighter_fundings_BTC.json",
            LighterFundingImporter(),
            {"fundings": [{"timestamp": 1_778_702_400, "rate": "-0.001", "direction": "long"}]},
            r"record 0, field 'rate': expected an unsigned percentage",
        ),
        (
            "funding.json",
            DydxFundingImporter(),
            {"historicalFunding": [{"ticker": "BTC-PERP", "rate": "0", "effectiveAt": "2025-12-08T16:00:00Z"}]},
            r"record 0, field 'ticker': expected a perp like BTC-USD, was 'BTC-PERP'",
        ),
        (
            "funding.json",
            DydxFundingImporter(),
            {"historicalFunding": [{"ticker": "BTC-USD", "rate": "0", "effectiveAt": "yesterday"}]},
            r"record 0, field 'effectiveAt': expected an ISO 8601 UTC time",
        ),
        (
            "funding.json",
            DydxFundingImporter(),
            {"historicalFunding": [{"ticker": "BTC-USD", "rate": "0", "effectiveAt": "2025-12-08T16:31:00Z"}]},
            r"record 0, field 'ts': expected a settlement on dydx's funding clock",
        ),
        (
            "drift_fundingRates_SOL.json",
            DriftFundingImporter(),
            {"fundingRates": [{"ts": "1756580515", "fundingRate": "1.5", "oraclePriceTwap": "620724"}]},
            r"record 0, field 'fundingRate': expected an integer in Drift's fixed-point precision, was '1.5'",
        ),
        (
            "drift_fundingRates_SOL.json",
            DriftFundingImporter(),
            {"fundingRates": [{"ts": "1756580515", "fundingRate": "15"}]},
            r"record 0: key 'oraclePriceTwap' is missing",
        ),
        (
            "drift_fundingRates_SOL.json",
            DriftFundingImporter(),
            {"error": "market not found"},
            r"page 0: expected a Drift fundingRates page with a 'fundingRates' list",
        ),
    ],
)
def test_malformed_record_names_file_record_and_field(
    tmp_path: Path, name: str, importer: object, document: object, match: str
) -> None:
    path = tmp_path / name
    path.write_text(json.dumps(document))
    with pytest.raises(SourceFormatError, match=match):
        importer.read(path, ImportOptions())  # type: ignore[attr-defined]


@pytest.fixture
def venue() -> Iterator[DexFundingVenue]:
    server = started(START, hours=2_200)
    yield server
    server.stop()


def _no_sleep() -> tuple[RetryPolicy, list[float]]:
    waits: list[float] = []
    return RetryPolicy(attempts=4, sleep=waits.append), waits


@pytest.mark.parametrize(("name", "requests"), [("dydx", 1 + 3), ("lighter", 1 + 5), ("drift", 1)])
def test_fetch_stores_every_settlement_of_the_range_and_resumes(
    venue: DexFundingVenue, store_root: Path, name: str, requests: int
) -> None:
    store = Store(store_root)
    policy, _ = _no_sleep()
    until = START + timedelta(hours=2_040)
    report = fetch_dex_funding(store, name, ["BTC"], since=START, until=until, api_url=venue.url, retry=policy)
    # 2,040 hourly settlements; dYdX: markets + 1,000-row pages backwards (3); Lighter: order books + 500-hour
    # windows (2,040 / 500 -> 5); Drift: one request answers all its records (filtered to the range).
    assert (report.rows, report.requests) == (2_040, requests)
    frame = store.scan("funding", venue=name).sort("ts").collect()
    assert frame["ts"].to_list() == [START + timedelta(hours=i) for i in range(2_040)]
    assert frame["rate"].to_list() == [synthetic_rate(i) for i in range(2_040)]
    assert set(frame["symbol"]) == {"BTC-USDC-PERP"}
    again = fetch_dex_funding(store, name, ["BTC"], since=None, until=until, api_url=venue.url, retry=policy)
    assert (again.rows, again.requests) == (0, 0)


def test_transient_statuses_are_retried_with_capped_backoff(venue: DexFundingVenue, store_root: Path) -> None:
    venue.fail_first = [503, 429]
    policy, waits = _no_sleep()
    until = START + timedelta(hours=24)
    report = fetch_dex_funding(
        Store(store_root), "drift", ["SOL"], since=START, until=until, api_url=venue.url, retry=policy
    )
    assert report.rows == 24
    assert waits == [1.0, 2.0]


def test_refused_request_is_not_retried_and_writes_nothing(venue: DexFundingVenue, store_root: Path) -> None:
    venue.fail_first = [404]
    policy, waits = _no_sleep()
    with pytest.raises(FetchError, match=r"lighter GET /api/v1/orderBooks: the venue refused the request \(HTTP 404"):
        fetch_dex_funding(
            Store(store_root),
            "lighter",
            ["BTC"],
            since=START,
            until=START + timedelta(hours=5),
            api_url=venue.url,
            retry=policy,
        )
    assert waits == []
    assert not list(store_root.rglob("*.parquet"))


def test_html_page_is_malformed_and_writes_nothing(venue: DexFundingVenue, store_root: Path) -> None:
    venue.html_next = True
    policy, _ = _no_sleep()
    with pytest.raises(MalformedPageError, match=r"drift GET /fundingRates: expected JSON, was '<html>"):
        fetch_dex_funding(
            Store(store_root),
            "drift",
            ["SOL"],
            since=START,
            until=START + timedelta(hours=5),
            api_url=venue.url,
            retry=policy,
        )
    assert not list(store_root.rglob("*.parquet"))


def test_unlisted_market_is_a_plan_error(venue: DexFundingVenue, store_root: Path) -> None:
    with pytest.raises(PlanError, match="lighter lists no market DOGE: expected one of BTC, ETH, SOL"):
        fetch_dex_funding(
            Store(store_root), "lighter", ["DOGE"], since=START, until=START + timedelta(hours=5), api_url=venue.url
        )


def test_cli_fetch_then_status_says_research_only(
    venue: DexFundingVenue, store_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    common = ["--store", str(store_root), "--api-url", venue.url, "--since", "2025-01-06", "--until", "2025-01-07"]
    assert main(["fetch", "--venue", "dydx", "--kind", "funding", "--symbols", "BTC,ETH", *common]) == ExitCode.OK
    assert "fetched dydx funding of 2 symbols in 3 requests: 48 rows" in capsys.readouterr().out
    assert main(["status", "--store", str(store_root), "--summary"]) == ExitCode.OK
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].split() == [
        "dydx",
        "funding",
        "rate",
        "1h",
        "2",
        "2025-01-06",
        "00:00",
        "2025-01-06",
        "23:00",
        "48",
        "2",
        "research-only",
    ]
    rows = coverage(Store(store_root))
    assert [r.research_only for r in rows] == [True, True]
    assert summarise(rows)[0].symbols == 2


def test_cli_fetch_of_other_kinds_on_a_research_venue_is_refused(
    store_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["fetch", "--venue", "drift", "--kind", "ohlcv", "--symbols", "SOL", "--store", str(store_root)]
    assert main(argv) == ExitCode.ERROR
    assert "drift is a research-only funding venue: expected --kind funding" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["dydx", "drift", "lighter"])
def test_engine_refuses_a_run_config_on_a_research_only_venue(name: str) -> None:
    config = f"""
name = "t"
start = 2024-01-01T00:00:00Z
end = 2024-02-01T00:00:00Z
[[venues]]
name = "{name}"
instruments = ["BTC-USDC-PERP"]
starting_balances = ["1000 USDC"]
[strategy]
path = "strategies.demo:FundingShort"
[strategy.params]
instrument_ids = ["{name}:BTC-USDC-PERP"]
[live]
[live.connections.{name}]
environment = "production"
"""
    with pytest.raises(
        ConfigError, match=rf"'{name}' is a research-only venue .* cannot run in a backtest, paper or live node"
    ):
        parse_config(config.encode())
