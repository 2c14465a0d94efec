"""Live mode end to end against a loopback Kraken Futures venue on 127.0.0.1 (``tests/kit/kraken_futures.py``).

The unchanged ``strategies.demo:FundingShort`` runs on a live node built by ``engine.live`` with Nautilus'
Kraken adapter (``KrakenProductType.FUTURES``), ``base_url``, ``ws_public_url`` and ``ws_url`` pointed at the
loopback: connect -> ``GET /derivatives/api/v3/instruments`` -> ``accounts``, ``openorders``, ``fills``,
``openpositions`` -> WebSocket ``challenge`` and the private ``open_orders``/``fills`` feeds, public ``ticker``
(mark price, funding), ``book`` (quotes) and ``trade`` -> submit (``POST /derivatives/api/v3/sendorder``,
answered with an EXECUTION event) -> fill (the ``fills`` feed) -> stop keeping the position; a second session
reconciles the short from ``openpositions`` and the graceful stop flattens it with a reduce-only ``mkt``.

Bars are the blocker: Nautilus 2.0.0rc6's Kraken futures data client logs ``Cannot subscribe to
PF_XBTUSD.KRAKEN-1-MINUTE-LAST-EXTERNAL bars: Kraken Futures does not support EXTERNAL bar streaming``
(Kraken Futures' WebSocket has no candle feed), so with the ``-EXTERNAL`` bars every other venue's config
uses, FundingShort never decides (the strict xfail below). With ``1-MINUTE-LAST-INTERNAL`` Nautilus builds
the bars from the ``trade`` feed, and the first one closes at the next wall-clock minute: the entry test
runs until 6 s past the first minute boundary at least 6 s after the node starts (7 to 67 s). Without bars
the risk engine prices a market order from a quote only (``MARKET_PRICE_UNAVAILABLE`` otherwise), which is
why ``engine.live.venues.needs_quotes`` names Kraken and the node subscribes quotes (the ``book`` feed).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from tests.kit.kraken_futures import KrakenFuturesLoopback
from tests.kit.loopback_venue import funding_short_toml, run_live_cli

FAKE_KEY = "loopbackFAKEapiKEY0123456789abcdef"
FAKE_SECRET = "bG9vcGJhY2tGQUtFc2VjcmV0WFlaOTg3NjU0MzIxMGZlZGNiYQ=="  # noqa: S105 - base64, as Kraken's are
ENVIRON = {"CARRYLAB_KRAKEN_API_KEY": FAKE_KEY, "CARRYLAB_KRAKEN_API_SECRET": FAKE_SECRET}
# 2000 USD at 42000: 0.047619..., rounded down to the 4 decimals of contractValueTradePrecision.
SHORT = Decimal("0.0476")


@pytest.fixture
def venue() -> Iterator[KrakenFuturesLoopback]:
    server = KrakenFuturesLoopback()
    server.start()
    yield server
    server.stop()


def _config(venue: KrakenFuturesLoopback, tmp_path: Path, *, bars: str = "EXTERNAL") -> Path:
    config = tmp_path / "live.toml"
    toml = funding_short_toml(
        venue="kraken", instrument="BTC-USD-PERP", quote="USD", connection=venue.connection_toml()
    )
    config.write_bytes(toml.replace(b"-LAST-EXTERNAL", f"-LAST-{bars}".encode()))
    return config


def _past_the_next_minute() -> float:
    # Seconds to run so that a minute closes at least 6 s after the start (the node connects first), plus 6 s.
    to_boundary = 60 - time.time() % 60
    return (to_boundary if to_boundary >= 6 else to_boundary + 60) + 6


@pytest.mark.slow
def test_live_node_trades_and_reconciles_the_unchanged_strategy_on_a_loopback_kraken_futures(
    venue: KrakenFuturesLoopback, tmp_path: Path
) -> None:
    config = _config(venue, tmp_path, bars="INTERNAL")
    # Session 1: connect -> instruments -> subscribe -> (a minute of trades) -> submit -> fill; keep the position.
    code, first_output, first = run_live_cli(
        config, tmp_path / "first", environ=ENVIRON, duration_secs=_past_the_next_minute, flatten=False
    )
    assert code == 0, first_output[-3000:]
    for path in ("instruments", "accounts", "openorders", "fills", "openpositions", "sendorder"):
        assert f"/derivatives/api/v3/{path}" in venue.paths()
    assert {"open_orders", "fills", "ticker", "book", "trade"} <= set(venue.feeds)
    assert first["bars"] > 0
    assert _orders(venue) == [("sell", "mkt", str(SHORT), None)]
    fills = pl.read_parquet(next((tmp_path / "first").glob("*/fills.parquet")))
    assert fills["side"].to_list() == ["SELL"]
    assert fills["quantity"].to_list() == [SHORT]
    assert venue.state.position == -SHORT

    # Session 2: reconciliation recovers the short from openpositions; the graceful stop flattens it.
    code, second_output, _ = run_live_cli(config, tmp_path / "second", environ=ENVIRON, duration_secs=3, flatten=True)
    assert code == 0, second_output[-3000:]
    assert "Reconciliation complete for KRAKEN" in second_output
    assert f"PF_XBTUSD.KRAKEN net_position=-{SHORT}" in second_output
    assert _orders(venue)[1:] == [("buy", "mkt", str(SHORT), "true")]
    assert venue.state.position == 0
    for output in (first_output, second_output):
        assert FAKE_SECRET not in output


def _orders(venue: KrakenFuturesLoopback) -> list[tuple[str, str, str, str | None]]:
    return [(o["side"], o["orderType"], o["size"], o.get("reduceOnly")) for o in venue.state.orders]


@pytest.mark.slow
@pytest.mark.xfail(
    reason="rc6 and rc7 Kraken futures data client: 'does not support EXTERNAL bar streaming', so FundingShort never "
    "gets a bar to decide on",
    strict=True,
)
def test_the_unchanged_strategy_enters_on_loopback_kraken_futures_with_external_bars(
    venue: KrakenFuturesLoopback, tmp_path: Path
) -> None:
    code, output, stats = run_live_cli(
        _config(venue, tmp_path), tmp_path / "run", environ=ENVIRON, duration_secs=3, flatten=False
    )
    assert code == 0, output[-3000:]
    assert stats["bars"] > 0
    assert [o["side"] for o in venue.state.orders] == ["sell"]
