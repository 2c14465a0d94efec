"""Live funding updates completed from the venue's funding clock, seeded books, and bars paired by slot."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from nautilus_trader.model import Bar, BarType, FundingRateUpdate, InstrumentId, Price, Quantity

from datasets.catalog.files import write_parquet
from datasets.catalog.funding import funding_table
from engine.loading import load_config, load_strategy
from strategies.carry import CarryConfig, funding_clocks, funding_seeds
from strategies.cross_venue_carry import CrossVenueCarry, CrossVenueCarryConfig
from strategies.funding import FundingBook
from tests.kit.store import canonical_frame

D = Decimal
BINANCE = InstrumentId.from_str("BTCUSDT-PERP.BINANCE")
HYPERLIQUID = InstrumentId.from_str("BTC-USD-PERP.HYPERLIQUID")
SECOND_NS = 1_000_000_000


def ns(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()) * SECOND_NS


def update(ts_event: int, *, interval: int | None, next_funding_ns: int | None) -> FundingRateUpdate:
    return FundingRateUpdate(BINANCE, D("0.0001"), ts_event, ts_event, interval, next_funding_ns)


def test_an_update_without_interval_settles_on_the_clocks_interval() -> None:
    book = FundingBook(8 * 3600)
    book.add(update(ns("2024-01-01T03:00"), interval=None, next_funding_ns=ns("2024-01-01T08:00")))
    assert book.announced == {ns("2024-01-01T08:00"): (D("0.0001"), 28_800)}


def test_an_update_with_its_interval_keeps_it_whatever_the_clock() -> None:
    # Hyperliquid settled 8-hourly before 2023-06-08 on a 1 h clock: the update's own interval wins.
    book = FundingBook(3600)
    book.add(update(ns("2023-01-01T03:00"), interval=480, next_funding_ns=ns("2023-01-01T08:00")))
    assert book.announced == {ns("2023-01-01T08:00"): (D("0.0001"), 28_800)}


@pytest.mark.parametrize(
    ("ts_event", "settles_at"),
    [
        ("2024-01-01T10:20:05", "2024-01-01T11:00"),  # inside the hour: its end
        ("2024-01-01T11:00:00", "2024-01-01T12:00"),  # on a boundary: the next one (that one just settled)
    ],
)
def test_an_update_without_settlement_instant_settles_at_the_clocks_next_boundary(
    ts_event: str, settles_at: str
) -> None:
    book = FundingBook(3600)
    book.add(update(ns(ts_event), interval=60, next_funding_ns=None))
    assert book.announced == {ns(settles_at): (D("0.0001"), 3600)}


def test_without_a_clock_incomplete_updates_stay_as_before() -> None:
    book = FundingBook()
    book.add(update(ns("2024-01-01T10:20"), interval=60, next_funding_ns=None))
    assert book.announced == {}
    book.add(update(ns("2024-01-01T03:00"), interval=None, next_funding_ns=ns("2024-01-01T08:00")))
    assert book.announced == {ns("2024-01-01T08:00"): (D("0.0001"), 0)}


def test_a_seeded_book_answers_before_any_settlement() -> None:
    book = FundingBook(8 * 3600)
    assert book.expected_apr(lookback=2, predicted_weight=D(0)) is None
    book.seed([(D("0.0001"), 28_800), (D("0.0003"), 28_800)])
    # mean(0.0001, 0.0003) = 0.0002 per 8 h x 3 x 365 = 0.219 a year.
    assert book.expected_apr(lookback=2, predicted_weight=D(0)) == D("0.219")
    assert book.settled == [D("0.0001"), D("0.0003")]
    assert book.interval_secs == 28_800


def test_the_config_builds_seeded_books_on_each_perps_clock() -> None:
    config = CrossVenueCarryConfig(
        first_id=str(BINANCE),
        second_id=str(HYPERLIQUID),
        lookback_settlements=1,
        predicted_weight="0",
        funding_clock_secs={str(BINANCE): 28_800, str(HYPERLIQUID): 3600},
        funding_seed={str(HYPERLIQUID): [["0.00001", 3600]]},
    )
    strategy = CrossVenueCarry(config)
    # 0.00001 an hour x 24 x 365 = 0.0876; Binance has no seed and no settlement yet.
    assert strategy.books[HYPERLIQUID].expected_apr(lookback=1, predicted_weight=D(0)) == D("0.0876")
    assert strategy.books[BINANCE].expected_apr(lookback=1, predicted_weight=D(0)) is None
    strategy.books[BINANCE].add(update(ns("2024-01-01T03:00"), interval=None, next_funding_ns=ns("2024-01-01T08:00")))
    assert strategy.books[BINANCE].announced[ns("2024-01-01T08:00")][1] == 28_800


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("funding_clock_secs", {"X.BINANCE": 0}, r"funding_clock_secs\.X\.BINANCE: expected a positive"),
        ("funding_clock_secs", {"X.BINANCE": "8h"}, r"funding_clock_secs\.X\.BINANCE: expected a positive"),
        ("funding_seed", {"X.BINANCE": [["0.0001"]]}, r"funding_seed\.X\.BINANCE\[0\]: expected \[rate, positive"),
        ("funding_seed", {"X.BINANCE": [["0.0001", -1]]}, r"funding_seed\.X\.BINANCE\[0\]: expected \[rate, positive"),
        ("funding_seed", {"X.BINANCE": [["abc", 3600]]}, r"funding_seed\.X\.BINANCE\[0\]: expected a decimal"),
    ],
)
def test_malformed_clocks_and_seeds_are_rejected_by_field(field: str, value: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CarryConfig(**{field: value})


def test_clocks_and_seeds_default_to_empty() -> None:
    assert funding_clocks(None) == {}
    assert funding_seeds(None) == {}


class _Recorder(CrossVenueCarry):
    decided: list[int]

    def decide(self, ts_ns: int) -> None:
        self.decided.append(ts_ns)


def _bar(instrument_id: InstrumentId, ts_event: int) -> Bar:
    price, size = Price.from_str("42000.0"), Quantity.from_str("1")
    bar_type = BarType.from_str(f"{instrument_id}-1-MINUTE-LAST-EXTERNAL")
    return Bar(bar_type, price, price, price, price, size, ts_event, ts_event)


def test_bars_of_the_two_legs_pair_by_their_minute_slot() -> None:
    config = CrossVenueCarryConfig(first_id=str(BINANCE), second_id=str(HYPERLIQUID), bar_spec="1-MINUTE-LAST-EXTERNAL")
    strategy = _Recorder(config)
    strategy.decided = []
    close = ns("2024-01-01T10:01")
    # Binance stamps the 10:00 kline at its close time 10:00:59.999, Hyperliquid at 10:01:00.
    strategy.on_bar(_bar(BINANCE, close - 1_000_000))
    assert strategy.decided == []
    strategy.on_bar(_bar(HYPERLIQUID, close))
    assert strategy.decided == [close]
    # The next Binance bar is another slot: no decision until Hyperliquid's 10:02 bar.
    strategy.on_bar(_bar(BINANCE, close + 60 * SECOND_NS - 1_000_000))
    assert strategy.decided == [close]


def _run_config(tmp_path: Path) -> Path:
    config = tmp_path / "run.toml"
    config.write_text(f"""
name = "funding-clock"
start = 2024-01-01T00:00:00Z
end = 2024-02-01T00:00:00Z
[data]
catalog = "{tmp_path / "catalog"}"
[[venues]]
name = "binance"
instruments = ["BTC-USDT-PERP"]
starting_balances = ["100000 USDT"]
[[venues]]
name = "hyperliquid"
instruments = ["BTC-USDC-PERP"]
starting_balances = ["100000 USDC"]
[strategy]
path = "strategies.cross_venue_carry:CrossVenueCarry"
[strategy.params]
first_id = "binance:BTC-USDT-PERP"
second_id = "hyperliquid:BTC-USDC-PERP"
lookback_settlements = 2
""")
    return config


def _write_funding(root: Path) -> None:
    # Synthetic settlements (made up, not market data) in the format datasets.catalog.funding writes.
    rows = [
        {"ts": datetime(2024, 1, 1, hour, tzinfo=UTC), "rate": rate, "interval": "8h"}
        for hour, rate in ((0, "0.0001"), (8, "0.0002"), (16, "0.0003"))
    ]
    frame = canonical_frame("funding", rows, venue="binance", symbol="BTC-USDT-PERP")
    write_parquet(funding_table(frame, instrument_id=str(BINANCE)), root / "data" / "funding_rates" / str(BINANCE))


def test_the_loader_passes_each_venues_clock_and_seeds_only_a_live_node(tmp_path: Path) -> None:
    _write_funding(tmp_path / "catalog")
    config = load_config(_run_config(tmp_path))
    backtest = load_strategy(config).config
    assert backtest.funding_clock_secs == {str(BINANCE): 28_800, str(HYPERLIQUID): 3600}
    assert backtest.funding_seed == {}
    # Live at 2024-01-01T12:00: 00:00 and 08:00 have settled (lookback 2), 16:00 has not.
    live = load_strategy(config, seed_funding_before_ns=ns("2024-01-01T12:00")).config
    assert live.funding_seed == {str(BINANCE): [(D("0.0001"), 28_800), (D("0.0002"), 28_800)]}
