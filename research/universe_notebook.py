# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # The whole universe: every perp the store holds, ranked by funding, and a carry on the best candidate
#
# Real recorded data from `../shared/data`: every freqtrade funding file (Binance, Bybit, Hyperliquid),
# the UK-local-time long table `messy_formats/all_exchanges.csv` through its tidy mapping
# (`configs/tidy_all_exchanges.toml`: it adds OKX, and coin-margined perps), the dYdX v4 and Lighter
# funding payload samples (research-only venues: `status` says so), and Binance spot, perp and mark bars.
# The ranking (`research.universe`) annualises each settlement on its own clock (rate x settlements per
# year), compares venues listing the same coin on the days both settled, and picks the best candidates a
# spot-perp carry can run on; the best one is backtested through the engine.

# %%
import shutil
import time
from datetime import UTC, datetime

import matplotlib.pyplot as plt
import polars as pl

from datasets.catalog import export_catalog
from datasets.importers.tidy import TidyImporter, load_mapping
from datasets.pipeline import import_paths, import_with
from datasets.status import coverage, summarise
from datasets.testing import FIXTURE_INSTRUMENTS
from engine.backtest import load_config, run_backtest
from research.notebook_setup import notebook_workspace
from research.universe import cross_venue_spreads, load_funding, pick_candidates, rank_perps, spot_perp_config

started = time.perf_counter()


workspace = notebook_workspace("universe")
REPO, SHARED, WORK, store = workspace.repo, workspace.shared, workspace.work, workspace.store
# The first half of 2024: the four venues' histories overlap (Bybit from 2023-12, OKX to 2024-07).
START, END = datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 7, 1, tzinfo=UTC)

# %% [markdown]
# ## Import: the universe's funding, Binance bars of the coins with spot and perp, instrument specs
# The Lighter sample names no market, so its copy is named after the one it holds (`..._fundings_BTC.json`).
# The instrument specs are the repo's hand-typed fixture (`configs/instruments_mid2025.csv`).

# %%
payloads = SHARED / "exchange_payloads/crates/adapters"
lighter = WORK / "lighter_fundings_BTC.json"
shutil.copy(payloads / "lighter/test_data/http_fundings.json", lighter)
funding_files = sorted(SHARED.glob("*_freqtrade/**/*-funding_rate.feather"))
dex_files = [payloads / "dydx/test_data/http_get_historical_funding.json", lighter]
bar_files = [
    path
    for coin in ("BTC", "ETH", "SOL")
    for path in (
        SHARED / f"binance_freqtrade/spot/{coin}_USDT-1h.feather",
        SHARED / f"binance_freqtrade/futures/{coin}_USDT_USDT-1h-futures.feather",
        SHARED / f"binance_freqtrade/futures/{coin}_USDT_USDT-1h-mark.feather",
    )
]
report = import_paths([*funding_files, *dex_files, *bar_files, FIXTURE_INSTRUMENTS], store)
print(f"imported {report.rows:,} rows from {report.files} files into {store.root}")
tidy = TidyImporter(load_mapping(REPO / "configs/tidy_all_exchanges.toml"))
report = import_with(tidy, [SHARED / "messy_formats/all_exchanges.csv"], store)
print(f"imported {report.rows:,} funding rows of the long table (its Binance and Bybit rows equal the freqtrade ones)")

# %% [markdown]
# ## The store at a glance: `python -m datasets status --summary`

# %%
rows = coverage(store)
pl.DataFrame(summarise(rows)).select(
    "venue", "kind", "series", "interval", "symbols", "first", "last", "rows", "research_only"
)

# %% [markdown]
# ## Ranking every perp over the window
# `mean_apr` is the mean of each settlement's rate x settlements per year; `best_spread_apr` the coin's best
# pair of venues (short the one paying more, long the other), on days both settled. The dYdX and Lighter
# samples hold a handful of settlements, too few to rank (`MIN_SETTLEMENTS`).

# %%
funding = load_funding(store, start=START, end=END)
ranking = rank_perps(funding)
ranking.with_columns(pl.col("mean_apr", "median_apr", "positive_share", "best_spread_apr").round(4))

# %%
spreads = cross_venue_spreads(funding)
spreads.with_columns(pl.col("spread_apr").round(4))

# %%
fig, (left, right) = plt.subplots(1, 2, figsize=(15, 4))
labels = [f"{v} {s}" for v, s in zip(ranking["venue"], ranking["symbol"], strict=True)]
left.barh(labels[::-1], (ranking["mean_apr"] * 100).to_list()[::-1])
left.set_xlabel("mean funding APR, %")
left.set_title(f"Every perp, {START:%Y-%m-%d} to {END:%Y-%m-%d}")
best = spreads.group_by("coin", maintain_order=True).first()
right.bar(
    [f"{c}: short {s} / long {lg}" for c, s, lg in best.select("coin", "short_venue", "long_venue").rows()],
    (best["spread_apr"] * 100).to_list(),
)
right.set_ylabel("mean daily APR spread, %")
right.set_title("Best cross-venue pair per coin")
right.tick_params(axis="x", labelrotation=15)
plt.tight_layout()
plt.show()

# %% [markdown]
# ## Candidates and a spot-perp carry on the best one
# A spot-perp carry needs the coin's spot and perp bars and stored specs on one venue: here Binance for the
# coins whose bars were imported. The best of them by mean funding runs `strategies.spot_perp_carry` with the
# parameters of `configs/carry_binance_btc_spot_perp.toml`, retargeted at that coin. The shared data has
# funding only for BTC, ETH and SOL (and Binance SOL perp bars only from 2025-02), so the candidates here
# are Binance BTC and ETH; a store with fetched specs and funding of more coins ranks and trades them alike.

# %%
held = {(c.venue, c.symbol) for c in rows if c.kind == "ohlcv" and c.series == "trade"}
specs = set(store.scan("instruments").select("venue", "symbol").unique().collect().rows())
tradable = {
    (venue, symbol)
    for venue, symbol in held
    if symbol.endswith("-PERP") and (venue, symbol.removesuffix("-PERP")) in held and (venue, symbol) in specs
}
candidates = pick_candidates(ranking, tradable=tradable, top=3)
candidates.select("rank", "venue", "symbol", "mean_apr", "positive_share")

# %%
pick = candidates.row(0, named=True)
coin = pick["coin"]
catalog = WORK / "catalog"
export_catalog(
    store, catalog, venues=[pick["venue"]], symbols=[f"{coin}-USDT", f"{coin}-USDT-PERP"], start=START, end=END
)
template = load_config(REPO / "configs/carry_binance_btc_spot_perp.toml")
config = spot_perp_config(template, coin=coin, catalog=str(catalog), start=START, end=END)
result = run_backtest(config, out_dir=None)
stats = result.stats
print(f"{config.name}: spot-perp carry on {pick['venue']} {coin}, {START:%Y-%m-%d} to {END:%Y-%m-%d}")
{k: stats[k] for k in ("pnl_total", "pnl_funding", "pnl_price", "pnl_fees", "funding_settlements", "fills")}

# %%
curve = result.equity.with_columns(pl.col("pnl_total", "pnl_funding", "pnl_fees").cast(pl.Float64))
fig, axis = plt.subplots(figsize=(14, 3.5))
for column in ("pnl_total", "pnl_funding", "pnl_fees"):
    axis.plot(curve["ts"].to_numpy(), curve[column].to_numpy(), label=column, linewidth=1)
axis.set_ylabel("USDT")
axis.set_title(f"Spot-perp carry on Binance {coin}: cumulative PnL")
axis.legend()
plt.show()
print(f"notebook ran in {time.perf_counter() - started:.1f} s")
shutil.rmtree(WORK, ignore_errors=True)
