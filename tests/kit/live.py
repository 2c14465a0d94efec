"""Paper-session test helpers: replay options, the real-data files and configs, the ledger columns compared.

``replay_options`` is how every in-process paper test runs a node: a replay at ``--speed 0`` writing
under ``tmp_path``, without signal handlers (pytest owns them). The real-data carry catalogs are built
from ``../shared/data`` (``shared_data`` fixture) with ``tests.kit.store.catalog_from_files``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl

from engine.live import SessionOptions
from tests.kit.engine import build_catalog, hourly_bars
from tests.kit.store import catalog_from_files

# The ledger columns two runs must agree on exactly (client order ids embed the wall clock: never compared).
ORDER_COLUMNS = ["ts_init", "instrument_id", "side", "type", "quantity", "filled_quantity", "status"]
FILL_COLUMNS = ["ts", "instrument_id", "side", "quantity", "price", "commission", "commission_currency"]
FUNDING_COLUMNS = ["ts", "instrument_id", "position_size", "mark_price", "rate", "amount", "currency"]
RISK_COLUMNS = ["ts", "control", "action", "instrument_id", "value", "limit", "reason"]

# Binance BTC spot + perp (freqtrade files under binance_freqtrade/).
SPOT_PERP_FILES = (
    "binance_freqtrade/spot/BTC_USDT-1h.feather",
    "binance_freqtrade/futures/BTC_USDT_USDT-1h-futures.feather",
    "binance_freqtrade/futures/BTC_USDT_USDT-1h-mark.feather",
    "binance_freqtrade/futures/BTC_USDT_USDT-1h-funding_rate.feather",
)
# Binance BTC perp (8 h funding, USDT) and Hyperliquid BTC perp (1 h funding, USDC).
CROSS_VENUE_FILES = (
    "binance_freqtrade/futures/BTC_USDT_USDT-1h-futures.feather",
    "binance_freqtrade/futures/BTC_USDT_USDT-1h-mark.feather",
    "binance_freqtrade/futures/BTC_USDT_USDT-1h-funding_rate.feather",
    "hyperliquid_freqtrade/BTC_USDC_USDC-1h-futures.feather",
    "hyperliquid_freqtrade/BTC_USDC_USDC-8h-mark.feather",
    "hyperliquid_freqtrade/BTC_USDC_USDC-1h-funding_rate.feather",
)


def replay_options(tmp_path: Path, **overrides: Any) -> SessionOptions:
    """Return paper replay options at full speed, artefacts in ``tmp_path/runs``, the journal in ``tmp_path/state``."""
    options = SessionOptions(
        mode="paper",
        replay=True,
        speed=0,
        out_dir=tmp_path / "runs",
        state_dir=tmp_path / "state",
        install_signal_handlers=False,
    )
    for key, value in overrides.items():
        setattr(options, key, value)
    return options


def spot_perp_catalog(root: Path, shared_data: Path, *, start: datetime, end: datetime) -> Path:
    """Return a catalog of Binance BTC spot + perp for ``[start, end)``, built under ``root``."""
    return catalog_from_files(root, [shared_data / name for name in SPOT_PERP_FILES], start=start, end=end)


def cross_venue_catalog(root: Path, shared_data: Path, *, start: datetime, end: datetime) -> Path:
    """Return a catalog of the Binance and Hyperliquid BTC perps for ``[start, end)``, built under ``root``."""
    return catalog_from_files(
        root,
        [shared_data / name for name in CROSS_VENUE_FILES],
        start=start,
        end=end,
        venues=["binance", "hyperliquid"],
        symbols=["BTC-USDT-PERP", "BTC-USDC-PERP"],
    )


def spot_perp_carry_toml(catalog: Path, *, name: str, start: str, end: str, params: str, risk: str) -> str:
    """Return a ``SpotPerpCarry`` run config on Binance BTC spot + perp (one margin account, slippage 0).

    ``params`` and ``risk`` are TOML lines of ``[strategy.params]`` (after the two legs) and
    ``[strategy.params.risk]``.
    """
    return f"""
name = "{name}"
start = {start}
end = {end}
[data]
catalog = "{catalog}"
[[venues]]
name = "binance"
instruments = ["BTC-USDT", "BTC-USDT-PERP"]
starting_balances = ["100000 USDT"]
leverage = 3
funding_interval = "8h"
[fill]
slippage_bps = 0
[risk]
max_order_submit_rate = "100/00:00:01"
[risk.max_notional_per_order]
"binance:BTC-USDT" = 250000
"binance:BTC-USDT-PERP" = 250000
[strategy]
path = "strategies.spot_perp_carry:SpotPerpCarry"
[strategy.params]
spot_id = "binance:BTC-USDT"
perp_id = "binance:BTC-USDT-PERP"
{params.strip()}
[strategy.params.risk]
{risk.strip()}
"""


FLAT_START = datetime(2024, 1, 1, tzinfo=UTC)


def flat_perp_catalog(root: Path) -> Path:
    """Return a hand-made catalog: Binance BTC-USDT-PERP at a flat 100.0 (bars and marks) for two days from
    ``FLAT_START``, funding of 0.5 % every 8 hours, bar volume far above any test order."""
    key = ("binance", "BTC-USDT-PERP")
    hour = timedelta(hours=1)
    return build_catalog(
        root,
        bars={key: hourly_bars(FLAT_START, ["100.0"] * 48, volume="1000000")},
        marks={key: hourly_bars(FLAT_START, ["100.0"] * 48)},
        funding={key: ("8h", [(FLAT_START + 8 * hour * i, "0.005") for i in range(1, 6)])},
    )


def risk_hold_toml(catalog: Path, *, name: str, end: str, risk: str = "") -> str:
    """Return a run config of ``tests.kit.engine:RiskHold`` on ``flat_perp_catalog``: from 01:00 on ``FLAT_START``
    to ``end``, a long of 100 contracts opened on the bar closing 02:00; ``risk`` are TOML lines of its
    ``[strategy.params.risk]`` (none by default)."""
    risk_table = f"[strategy.params.risk]\n{risk.strip()}\n" if risk.strip() else ""
    return f"""
name = "{name}"
start = 2024-01-01T01:00:00Z
end = {end}
[data]
catalog = "{catalog}"
[[venues]]
name = "binance"
instruments = ["BTC-USDT-PERP"]
starting_balances = ["100000 USDT"]
leverage = 2
funding_interval = "8h"
[fill]
slippage_bps = 0
[risk]
max_order_submit_rate = "100/00:00:01"
[strategy]
path = "tests.kit.engine:RiskHold"
[strategy.params]
instrument_id = "binance:BTC-USDT-PERP"
quantity = "100"
open_at = "2024-01-01T02:00:00+00:00"
{risk_table}"""


def sorted_rows(frame: pl.DataFrame, columns: list[str], keys: list[str]) -> pl.DataFrame:
    """Return ``columns`` of ``frame`` sorted by ``keys`` (stable), the form two ledgers are compared in."""
    return frame.select(columns).sort(keys, maintain_order=True)


def open_positions(positions: pl.DataFrame) -> pl.DataFrame:
    """Return the rows of a positions ledger that are open (not snapshots, not flat)."""
    return positions.filter(~pl.col("is_snapshot") & (pl.col("side") != "FLAT"))
