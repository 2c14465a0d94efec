"""A run's result from the engine's cache: ledgers, PnL attribution, reconciliation and stats.

The backtest runner and the paper/live report read the same ledgers from a Nautilus cache
(``read_ledgers``) and turn them into the same ``RunResult`` (``assemble_result``). Only the funding
ledger comes from elsewhere: the engine's settlements in a backtest, the paper funding book in a session.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl

from engine.config import RunConfig
from engine.fill import describe_fill_model
from engine.loading import config_hash
from engine.results import ledger, records
from engine.results.schemas import RISK_EVENTS_SCHEMA, text
from engine.results.stats import build_stats
from engine.run_data import RunData
from engine.venue_models import VenueModel

# The ledgers written as ``<name>.parquet``; ``bars`` (the closes replayed) lets a report draw prices
# without the catalog.
ARTEFACTS = ("orders", "fills", "positions", "account", "funding", "equity", "risk_events", "bars")


@dataclass(slots=True)
class RunResult:
    """What one run produced: its ledgers as polars frames, its statistics and where it was written.

    Attributes
    ----------
    config : RunConfig
    config_hash : str
    orders, fills, positions, account, funding, equity : pl.DataFrame
        The ledgers; ``equity`` is the PnL attribution on every bar close, per currency.
    risk_events : pl.DataFrame
        Every decision of the strategy's risk controls (``strategies.risk``), in order.
    stats : dict
        The ``stats.json`` document.
    bars : pl.DataFrame | list[pl.LazyFrame]
        The closes replayed: a frame, or (a backtest) one lazy catalog scan per instrument, written
        stream by stream so the whole window is never held.
    run_dir : Path | None
        ``runs/<config-hash>/`` when artefacts were written.
    timings_secs : dict[str, float]
        Wall time of ``catalog_load``, ``engine_build`` (the engine, its venues and instruments),
        ``feed`` (building and adding the chunks' objects), ``engine_run``, ``ledgers`` (reading them from the engine's
        cache) and ``artefacts`` (writing files and the HTML report).
    """

    config: RunConfig
    config_hash: str
    orders: pl.DataFrame
    fills: pl.DataFrame
    positions: pl.DataFrame
    account: pl.DataFrame
    funding: pl.DataFrame
    equity: pl.DataFrame
    stats: dict[str, Any]
    bars: pl.DataFrame | list[pl.LazyFrame]
    run_dir: Path | None = None
    timings_secs: dict[str, float] = field(default_factory=dict)
    risk_events: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=RISK_EVENTS_SCHEMA))

    def frames(self) -> dict[str, pl.DataFrame | list[pl.LazyFrame]]:
        """Return the ledgers by artefact name."""
        return {name: getattr(self, name) for name in ARTEFACTS}


@dataclass(frozen=True, slots=True)
class Ledgers:
    """The ledgers read from a Nautilus cache, in the schemas of ``engine.results.schemas``."""

    orders: pl.DataFrame
    fills: pl.DataFrame
    positions: pl.DataFrame
    account: pl.DataFrame


def read_ledgers(cache: Any, *, models: Sequence[VenueModel], data: RunData) -> Ledgers:
    """Return the orders, fills, positions (closed NETTING cycles included) and account states of ``cache``."""
    every_order = cache.orders()
    accounts = ((m.name, cache.account_for_venue(m.venue)) for m in models)
    return Ledgers(
        orders=records.orders_frame(every_order, records.order_reasons(every_order)),
        fills=records.fills_frame(every_order, data.venue_of, currency_of=_currency_of(data)),
        positions=records.positions_frame(cache.positions(), cache.position_snapshots()),
        account=records.account_frame((name, a) for name, a in accounts if a is not None),
    )


def assemble_result(
    config: RunConfig,
    ledgers: Ledgers,
    *,
    funding: pl.DataFrame,
    models: Sequence[VenueModel],
    data: RunData,
    extra: Mapping[str, Any] | None = None,
) -> RunResult:
    """Return the ``RunResult`` of ``ledgers`` and the ``funding`` ledger: PnL attribution and stats.

    ``stats.reconciliation`` compares the ledger's PnL per currency (funding included) with the venue
    accounts plus open positions marked at the last close; there is none without account states. The
    accounts book the funding ledger: the backtest engine settles it, a paper session books its
    settlements into the sandbox accounts (``engine.live.funding_account``). ``extra`` entries are added
    to the stats.

    Raises
    ------
    ValueError
        If the run settles in currencies other than USD stablecoins that cannot be added at par.
    """
    currency_of = _currency_of(data)
    attribution = ledger.attribute(ledgers.fills, funding, data, currency_of)
    starting: dict[str, Decimal] = {}
    for model in models:
        for money in model.starting_balances:
            starting[money.currency.code] = starting.get(money.currency.code, Decimal(0)) + money.as_decimal()
    reconciliation = (
        _reconcile(attribution, ledgers.account, ledgers.positions, data, currency_of, starting)
        if ledgers.account.height
        else {}
    )
    orders, fills, positions = ledgers.orders, ledgers.fills, ledgers.positions
    counts = {
        "orders": orders.height,
        "orders_denied": orders.filter(pl.col("status") == "DENIED").height,
        "fills": fills.height,
        "positions": positions.height,
        "funding_settlements": funding.height,
        "bars": data.bar_count,
    }
    stats_extra = {
        "name": config.name,
        "config_hash": config_hash(config),
        "start": config.start.isoformat(),
        "end": config.end.isoformat(),
        "fill_model": describe_fill_model(config.fill.slippage_bps),
        "venues": [m.describe() for m in models],
        "reconciliation": reconciliation,
        **(extra or {}),
    }
    return RunResult(
        config=config,
        config_hash=config_hash(config),
        orders=orders,
        fills=fills,
        positions=positions,
        account=ledgers.account,
        funding=funding,
        equity=attribution.curve,
        stats=build_stats(attribution=attribution, starting=starting, counts=counts, extra=stats_extra),
        bars=data.bars_source(),
    )


def settlement_currency(instrument: Any) -> str:
    """Return the code of the currency Nautilus books ``instrument``'s PnL, fees and funding in."""
    # Linear instruments settle in the quote currency (Hyperliquid perps: USD, not USDC), inverse in the base.
    currency = instrument.base_currency if getattr(instrument, "is_inverse", False) else instrument.quote_currency
    return str(currency.code)


def _currency_of(data: RunData) -> dict[str, str]:
    return {str(i): settlement_currency(instrument) for i, instrument in data.instruments.items()}


def _reconcile(
    attribution: ledger.Attribution,
    account: pl.DataFrame,
    positions: pl.DataFrame,
    data: RunData,
    currency_of: dict[str, str],
    starting: dict[str, Decimal],
) -> dict[str, dict[str, str]]:
    """Compare the ledger's PnL with the engine's balances plus open positions marked at the last close.

    Nautilus keeps average entry prices as binary floats, so realised PnL of partial closes can differ
    from the exact ledger in the last decimals; the difference is reported, not hidden.
    """
    result: dict[str, dict[str, str]] = {}
    final = account.group_by("venue", "currency", maintain_order=True).last()
    engine_change: dict[str, Decimal] = {}
    for row in final.iter_rows(named=True):
        engine_change[row["currency"]] = engine_change.get(row["currency"], Decimal(0)) + row["total"]
    for currency, amount in starting.items():
        engine_change[currency] = engine_change.get(currency, Decimal(0)) - amount
    for row in positions.filter(~pl.col("is_snapshot") & (pl.col("side") != "FLAT")).iter_rows(named=True):
        currency = currency_of.get(row["instrument_id"], row["currency"])
        signed = row["quantity"] if row["side"] == "LONG" else -row["quantity"]
        unrealized = (
            signed
            * (data.last_close(row["instrument_id"]) - Decimal(row["avg_price_open"]))
            * ledger.multiplier_of(data, row["instrument_id"])
        )
        engine_change[currency] = engine_change.get(currency, Decimal(0)) + unrealized
    for currency, values in attribution.final.items():
        change = engine_change.get(currency, Decimal(0))
        result[currency] = {
            "ledger_pnl_total": text(values["pnl_total"]),
            "engine_pnl_total": text(change),
            "difference": text(values["pnl_total"] - change),
        }
    return result
