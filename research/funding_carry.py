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
# # Funding carry: landscape, a spot-perp carry backtest, its vectorbt twin and a sweep
#
# Real recorded data from `../shared/data` (Binance, Bybit, Hyperliquid; BTC, ETH, SOL), imported into
# a fresh temporary store with `datasets.pipeline.import_paths`, exported to a Nautilus catalog, and
# backtested with `engine.backtest.run_backtest` (the same path as `python -m engine.backtest`).
#
# 1. Funding landscape: annualised rates, distributions, regimes, cross-venue spreads.
# 2. The spot-perp carry (`strategies.spot_perp_carry`) on Binance BTC over the longest window with spot,
#    perp and funding, with its PnL attribution.
# 3. The same signals in vectorbt (`research.carry_vbt`) and the difference to the engine.
# 4. A parameter sweep over the strategy's declared `PARAMETER_SPACE`.
# 5. Out of sample: walk-forward sweeps of both carry strategies, every pick re-run through the engine.

# %%
import time

import matplotlib.pyplot as plt
import pandas as pd
import polars as pl

from datasets.catalog import export_catalog
from datasets.pipeline import import_paths
from datasets.testing import FIXTURE_INSTRUMENTS
from engine.backtest import load_config, run_backtest, with_overrides
from research.carry_vbt import load_carry_inputs, parameter_grid, params_from_config, run_carry, sweep
from research.notebook_setup import notebook_workspace

started = time.perf_counter()


workspace = notebook_workspace("funding_carry")
REPO, SHARED, WORK, store = workspace.repo, workspace.shared, workspace.work, workspace.store

# %% [markdown]
# ## Import: every funding file of the three venues, and Binance BTC spot, perp and mark bars

# %%
funding_files = sorted(SHARED.glob("*_freqtrade/**/*-funding_rate.feather"))
bar_files = [
    SHARED / "binance_freqtrade/spot/BTC_USDT-1h.feather",
    SHARED / "binance_freqtrade/futures/BTC_USDT_USDT-1h-futures.feather",
    SHARED / "binance_freqtrade/futures/BTC_USDT_USDT-1h-mark.feather",
]
# The instrument specs: the repo's hand-typed fixture table (configs/instruments_mid2025.csv, says so in its header).
report = import_paths([*funding_files, *bar_files, FIXTURE_INSTRUMENTS], store)
print(f"imported {report.rows:,} rows from {report.files} files into {store.root}")

# %% [markdown]
# ## 1. Funding landscape
# Rates are per settlement; APR = rate x settlements per year on the venue's own clock (Binance and
# Bybit 8 h; Hyperliquid 1 h since 2023-06-08, 8 h before).

# %%
SECONDS_PER_YEAR = 365 * 24 * 3600
funding = (
    store.scan("funding", floats=True)
    .select("venue", "symbol", "ts", "rate", "interval")
    .collect()
    .with_columns(
        coin=pl.col("symbol").str.split("-").list.first(),
        interval_secs=pl.col("interval").str.strip_chars_end("h").cast(pl.Int64) * 3600,
    )
    .with_columns(apr=pl.col("rate") * SECONDS_PER_YEAR / pl.col("interval_secs"))
    .sort("venue", "coin", "ts")
)
summary = (
    funding.group_by("venue", "coin")
    .agg(
        pl.col("ts").min().dt.date().alias("from"),
        pl.col("ts").max().dt.date().alias("to"),
        pl.len().alias("settlements"),
        (pl.col("apr").mean() * 100).round(2).alias("mean_apr_pct"),
        (pl.col("apr").median() * 100).round(2).alias("median_apr_pct"),
        (pl.col("apr").quantile(0.05) * 100).round(2).alias("p5_apr_pct"),
        (pl.col("apr").quantile(0.95) * 100).round(2).alias("p95_apr_pct"),
        ((pl.col("rate") > 0).mean() * 100).round(1).alias("positive_pct"),
    )
    .sort("coin", "venue")
)
summary

# %%
fig, axes = plt.subplots(1, 3, figsize=(15, 3.5), sharey=False)
for axis, coin in zip(axes, ("BTC", "ETH", "SOL"), strict=True):
    for venue in ("binance", "bybit", "hyperliquid"):
        values = funding.filter((pl.col("coin") == coin) & (pl.col("venue") == venue))["apr"] * 100
        if values.len():
            axis.hist(values.clip(-100, 150).to_numpy(), bins=80, alpha=0.5, label=venue, density=True)
    axis.set_title(f"{coin}: funding APR distribution (%, clipped to [-100, 150])")
    axis.legend()
plt.tight_layout()
plt.show()

# %% [markdown]
# ### Regimes: 30-day mean APR per venue (daily), and the mean by year

# %%
daily = (
    funding.group_by("venue", "coin", pl.col("ts").dt.truncate("1d").alias("day"))
    .agg(pl.col("apr").mean())
    .sort("venue", "coin", "day")
    .with_columns(apr_30d=pl.col("apr").rolling_mean(30).over("venue", "coin"))
)
fig, axes = plt.subplots(3, 1, figsize=(14, 9), sharex=True)
for axis, coin in zip(axes, ("BTC", "ETH", "SOL"), strict=True):
    for venue in ("binance", "bybit", "hyperliquid"):
        rows = daily.filter((pl.col("coin") == coin) & (pl.col("venue") == venue))
        if rows.height:
            axis.plot(rows["day"].to_numpy(), (rows["apr_30d"] * 100).to_numpy(), label=venue, linewidth=1)
    axis.axhline(0, color="grey", linewidth=0.5)
    axis.set_ylabel(f"{coin} APR %, 30 d mean")
    axis.legend(loc="upper left")
plt.tight_layout()
plt.show()
by_year = (
    funding.group_by("coin", "venue", pl.col("ts").dt.year().alias("year"))
    .agg((pl.col("apr").mean() * 100).round(1).alias("mean_apr_pct"))
    .sort("year")
    .pivot(on="year", index=["coin", "venue"], values="mean_apr_pct")
    .sort("coin", "venue")
)
by_year

# %% [markdown]
# ### Cross-venue spreads (daily mean APR, other venue minus Binance)

# %%
wide = daily.pivot(on="venue", index=["coin", "day"], values="apr").sort("coin", "day")
spreads = wide.with_columns(
    (pl.col("hyperliquid") - pl.col("binance")).alias("hyperliquid_minus_binance"),
    (pl.col("bybit") - pl.col("binance")).alias("bybit_minus_binance"),
)
fig, axes = plt.subplots(1, 3, figsize=(15, 3.5))
for axis, coin in zip(axes, ("BTC", "ETH", "SOL"), strict=True):
    rows = spreads.filter(pl.col("coin") == coin)
    for column in ("hyperliquid_minus_binance", "bybit_minus_binance"):
        axis.plot(rows["day"].to_numpy(), (rows[column] * 100).to_numpy(), label=column, linewidth=0.8)
    axis.axhline(0, color="grey", linewidth=0.5)
    axis.set_title(f"{coin}: daily funding APR spread, %")
    axis.legend(fontsize=7)
plt.tight_layout()
plt.show()
spreads.group_by("coin").agg(
    (pl.col("hyperliquid_minus_binance").mean() * 100).round(2).alias("hl_minus_binance_mean_pct"),
    (pl.col("hyperliquid_minus_binance").abs().mean() * 100).round(2).alias("hl_minus_binance_abs_pct"),
    (pl.col("bybit_minus_binance").mean() * 100).round(2).alias("bybit_minus_binance_mean_pct"),
    (pl.col("bybit_minus_binance").abs().mean() * 100).round(2).alias("bybit_minus_binance_abs_pct"),
).sort("coin")

# %% [markdown]
# ## 2. Spot-perp carry on Binance BTC through the engine
# `configs/carry_binance_btc_spot_perp.toml`: the longest window with spot, perp and funding
# (2019-09-10 to 2026-05-16), 40,000 USDT per leg, risk controls on. The catalog is exported from the
# temporary store.

# %%
catalog = WORK / "catalog"
export_catalog(store, catalog, venues=["binance"], symbols=["BTC-USDT", "BTC-USDT-PERP"])
config = with_overrides(load_config(REPO / "configs/carry_binance_btc_spot_perp.toml"), catalog=str(catalog))
result = run_backtest(config, out_dir=None)
stats = result.stats
pd.Series(
    {
        k: stats[k]
        for k in (
            "start",
            "end",
            "pnl_total",
            "pnl_funding",
            "pnl_price",
            "pnl_fees",
            "funding_settlements",
            "fills",
            "max_drawdown_pct",
            "sharpe",
            "risk_events",
        )
    }
)

# %% [markdown]
# PnL attribution over time: funding carries the result; price PnL (basis moves of a hedged book) stays
# near zero; fees are paid at every entry and exit (90-day maximum holding rolls the position).

# %%
curve = result.equity.with_columns(pl.col("pnl_price", "pnl_funding", "pnl_fees", "pnl_total").cast(pl.Float64))
fig, axis = plt.subplots(figsize=(14, 4))
for column in ("pnl_total", "pnl_funding", "pnl_price", "pnl_fees"):
    axis.plot(curve["ts"].to_numpy(), curve[column].to_numpy(), label=column, linewidth=1)
axis.set_ylabel("USDT")
axis.set_title("Spot-perp carry, Binance BTC: cumulative PnL attribution")
axis.legend()
plt.show()
columns = ("pnl_total", "pnl_funding", "pnl_price", "pnl_fees")
yearly = (
    curve.group_by(pl.col("ts").dt.year().alias("year"))
    .agg(pl.col(*columns).last())
    .sort("year")
    .with_columns(pl.col(c).diff().fill_null(pl.col(c)).round(2) for c in columns)
)
yearly

# %%
result.risk_events.group_by("control", "action").len().sort("control")

# %% [markdown]
# ## 3. The same carry in vectorbt, and the difference to the engine
# Same decisions (`strategies.signals.carry_step`), sizing and fill prices; funding added per settlement.

# %%
params = params_from_config(config.strategy.params)
inputs = load_carry_inputs(store, venue="binance", base="BTC", quote="USDT", start=config.start, end=config.end)
vector = run_carry(inputs, slippage_bps=float(config.fill.slippage_bps), **params)
comparison = pd.DataFrame(
    {
        "engine": [
            *(float(stats[k]) for k in ("pnl_total", "pnl_funding", "pnl_price", "pnl_fees")),
            stats["fills"],
            stats["funding_settlements"],
        ],
        "vectorbt": [
            vector.pnl_total,
            vector.pnl_funding,
            vector.pnl_price,
            vector.pnl_fees,
            vector.fills,
            len(vector.funding),
        ],
    },
    index=["pnl_total", "pnl_funding", "pnl_price", "pnl_fees", "fills", "funding_settlements"],
)
comparison["difference"] = comparison["vectorbt"] - comparison["engine"]
comparison

# %% [markdown]
# ## 4. Parameter sweep (vectorbt) over the declared space
# `SpotPerpCarryConfig.PARAMETER_SPACE` gives the ranges of `entry_apr` and `exit_apr`; the other
# parameters stay as in the config. In-sample: this shows sensitivity, not an out-of-sample result.

# %%
combos = parameter_grid(["entry_apr", "exit_apr"])
table = sweep(inputs, combos, base={**params, "slippage_bps": float(config.fill.slippage_bps)})
heat = table.pivot(index="entry_apr", columns="exit_apr", values="pnl_total").astype(float)
fig, axis = plt.subplots(figsize=(7, 4))
image = axis.imshow(heat.to_numpy(), cmap="RdYlGn", aspect="auto", origin="lower")
axis.set_xticks(range(len(heat.columns)), [f"{float(c):.3f}" for c in heat.columns])
axis.set_yticks(range(len(heat.index)), [f"{float(i):.2f}" for i in heat.index])
axis.set_xlabel("exit_apr")
axis.set_ylabel("entry_apr")
axis.set_title("Total PnL, USDT (vectorbt sweep)")
fig.colorbar(image)
plt.show()
table.sort_values("pnl_total", ascending=False).head(10)

# %% [markdown]
# ## 5. Out of sample: walk-forward sweeps of both carry strategies, confirmed by the engine
# `research.sweep` (the same as `python -m research.sweep CONFIG`): rolling walk-forward in whole UTC
# days (train 180 days, test 90, purged by the largest holding time swept: 91 days), every parameter set
# of the declared `PARAMETER_SPACE` scored on train by the numba kernel (`research.carry_kernel`),
# the train-best scored on the following test window, and every pick re-run through the engine: a
# kernel - engine difference above 0.01 USD on any PnL component fails the sweep. The cross-venue
# window is shorter (2024-09 to 2025-07): train 90 days, test 30, purged by the config's 720 h.

# %%
from research.shared_data import prepare_shared_data
from research.sweep import SweepSettings, run_sweep, with_strategy

SWEEPS = {
    "spot-perp (Binance BTC)": (REPO / "configs" / "carry_binance_btc_spot_perp.toml", SweepSettings()),
    "cross-venue (Binance / Hyperliquid BTC)": (
        REPO / "configs" / "carry_binance_hyperliquid_btc.toml",
        SweepSettings(train_days=90, test_days=30, holding_hours=720),
    ),
}
sweeps = {}
for label, (path, settings) in SWEEPS.items():
    base = load_config(path)
    root = WORK / f"sweep_{len(sweeps)}"
    data = prepare_shared_data(
        SHARED,
        root,
        strategy_path=base.strategy.path,
        venues=[v.name for v in base.venues],
        symbols=sorted({s for v in base.venues for s in v.instruments}),
        start=base.start - pd.Timedelta(days=3).to_pytimedelta(),
        end=base.end,
    )
    run_config = with_strategy(base, start=base.start, end=base.end, params={}, catalog=str(data.catalog))
    sweeps[label] = run_sweep(run_config, data.store, settings, out_dir=root / "report", catalog=str(data.catalog))

keys = ["parameter_sets", "folds", "oos_days", "oos_pnl_total_usd", "engine_oos_pnl_total_usd",
        "is_pnl_per_day_usd", "oos_pnl_per_day_usd", "degradation_pct", "oos_positive_folds",
        "oos_rank_pct_mean", "engine_max_difference_usd", "engine_all_within_tolerance"]  # fmt: skip
pd.DataFrame({label: {k: result.summary[k] for k in keys} for label, result in sweeps.items()})

# %%
for label, result in sweeps.items():
    fig, axis = plt.subplots(figsize=(8, 3))
    x = range(len(result.folds))
    axis.bar([i - 0.2 for i in x], result.folds["is_pnl_per_day"], 0.4, label="in sample")
    axis.bar([i + 0.2 for i in x], result.folds["oos_pnl_per_day"], 0.4, label="out of sample")
    axis.set(xlabel="fold", ylabel="PnL per day, USD", title=label)
    axis.legend()
    plt.show()

# %%
columns = ["test", *[c for c in sweeps["spot-perp (Binance BTC)"].folds.columns if c.startswith("param_")],
           "oos_pnl_per_day", "kernel_pnl_total", "engine_pnl_total", "difference_pnl_total"]  # fmt: skip
pd.concat({label: result.folds[columns] for label, result in sweeps.items()})

# %%
print(f"notebook ran in {time.perf_counter() - started:.1f} s")
