"""Rank every perp the store holds by annualised funding and cross-venue spread over a window.

``rank_perps`` gives one row per venue and perp: settlements, mean and median annualised funding
(each settlement's rate x settlements per year on its own clock: the vector form of
``strategies.signals.annualize``, with the same ``SECONDS_PER_YEAR``), the share of positive
settlements, and the coin's best cross-venue spread. ``cross_venue_spreads`` compares every two
venues listing the same coin on the days both settled (daily mean APR of one minus the other).
``pick_candidates`` keeps the best perps a spot-perp carry can run on (those with spot and perp
bars and specs in the catalog the caller can export), and ``spot_perp_config`` turns the repo's
spot-perp carry config into one for another coin.

Floats here are research vectors (``Store.scan(floats=True)``); a pick is re-run through the engine.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

import msgspec
import polars as pl

from datasets.schemas import interval_secs
from datasets.store import Store
from engine.config import RunConfig
from strategies.signals import SECONDS_PER_YEAR

# A perp with fewer settlements in the window is left out of the ranking (too short to say anything).
MIN_SETTLEMENTS = 10


def annualised_funding(funding: pl.DataFrame) -> pl.DataFrame:
    """Return funding rows with ``coin``, ``interval_secs`` and ``apr`` (rate x settlements per year)."""
    seconds = {label: interval_secs(label) for label in funding["interval"].unique().to_list()}
    return funding.with_columns(
        coin=pl.col("symbol").str.split("-").list.first(),
        interval_secs=pl.col("interval").replace_strict(seconds, return_dtype=pl.Int64),
    ).with_columns(apr=pl.col("rate") * SECONDS_PER_YEAR / pl.col("interval_secs"))


def load_funding(store: Store, *, start: datetime, end: datetime) -> pl.DataFrame:
    """Return every perp's settlements in ``[start, end)`` as float vectors with ``coin`` and ``apr``."""
    scanned = store.scan("funding", start=start, end=end, floats=True)
    return annualised_funding(scanned.select("venue", "symbol", "ts", "rate", "interval").collect())


def cross_venue_spreads(funding: pl.DataFrame) -> pl.DataFrame:
    """Return, per coin and ordered pair of venues, the mean daily APR spread on the days both settled.

    Columns: ``coin, short_venue, long_venue, days, spread_apr`` (short the perp that pays more, long
    the other: the carry of a cross-venue trade before costs), sorted by spread, best first.
    """
    daily = funding.group_by("venue", "coin", pl.col("ts").dt.truncate("1d").alias("day")).agg(pl.col("apr").mean())
    pairs = daily.join(daily, on=["coin", "day"], suffix="_other").filter(pl.col("venue") != pl.col("venue_other"))
    return (
        pairs.group_by("coin", pl.col("venue").alias("short_venue"), pl.col("venue_other").alias("long_venue"))
        .agg(days=pl.len(), spread_apr=(pl.col("apr") - pl.col("apr_other")).mean())
        .sort("spread_apr", "coin", "short_venue", descending=[True, False, False])
    )


def rank_perps(funding: pl.DataFrame, *, min_settlements: int = MIN_SETTLEMENTS) -> pl.DataFrame:
    """Return one row per venue and perp, ranked by mean annualised funding (highest first).

    Columns: ``rank, venue, symbol, coin, settlements, interval, mean_apr, median_apr, positive_share,
    best_spread_apr, spread_short_venue, spread_long_venue`` (the coin's best cross-venue pair, null
    when it trades on one venue only). Perps with fewer than ``min_settlements`` are left out.
    """
    perps = funding.filter(pl.col("symbol").str.ends_with("-PERP"))
    ranked = (
        perps.group_by("venue", "symbol", "coin")
        .agg(
            settlements=pl.len(),
            interval=pl.col("interval").mode().first(),
            mean_apr=pl.col("apr").mean(),
            median_apr=pl.col("apr").median(),
            positive_share=(pl.col("rate") > 0).mean(),
        )
        .filter(pl.col("settlements") >= min_settlements)
    )
    best = (
        cross_venue_spreads(perps)
        .group_by("coin", maintain_order=True)
        .first()
        .select(
            "coin",
            pl.col("spread_apr").alias("best_spread_apr"),
            pl.col("short_venue").alias("spread_short_venue"),
            pl.col("long_venue").alias("spread_long_venue"),
        )
    )
    return (
        ranked.join(best, on="coin", how="left")
        .sort(["mean_apr", "venue", "symbol"], descending=[True, False, False])
        .with_row_index("rank", offset=1)
    )


def pick_candidates(ranking: pl.DataFrame, *, tradable: Collection[tuple[str, str]], top: int = 3) -> pl.DataFrame:
    """Return the ``top`` best-ranked perps with positive mean funding among ``tradable`` (venue, symbol) pairs."""
    keys = pl.DataFrame(list(tradable), schema={"venue": pl.String, "symbol": pl.String}, orient="row")
    return ranking.join(keys, on=["venue", "symbol"], how="semi").filter(pl.col("mean_apr") > 0).sort("rank").head(top)


def spot_perp_config(template: RunConfig, *, coin: str, catalog: str, start: datetime, end: datetime) -> RunConfig:
    """Return a one-venue spot-perp carry config of ``template`` retargeted at ``coin`` (``BTC`` -> ``SOL``).

    The template's spot and perp ids, instruments and per-order notional limits are renamed from its
    coin to ``coin``; every other parameter is kept.
    """
    raw: dict[str, Any] = msgspec.json.decode(msgspec.json.encode(template))
    old = raw["strategy"]["params"]["perp_id"].split(":")[1].split("-")[0]

    def rename(text: str) -> str:
        return text.replace(f"{old}-", f"{coin}-")

    raw["venues"][0]["instruments"] = [rename(i) for i in raw["venues"][0]["instruments"]]
    params = raw["strategy"]["params"]
    params["spot_id"], params["perp_id"] = rename(params["spot_id"]), rename(params["perp_id"])
    limits = raw["risk"].get("max_notional_per_order") or {}
    raw["risk"]["max_notional_per_order"] = {rename(k): v for k, v in limits.items()}
    raw["name"] = f"{raw['name']}-{coin.lower()}"
    raw["data"]["catalog"], raw["start"], raw["end"] = catalog, start.isoformat(), end.isoformat()
    return msgspec.json.decode(msgspec.json.encode(raw), type=RunConfig)
