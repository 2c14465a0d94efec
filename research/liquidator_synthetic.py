"""SYNTHETIC liquidation events for the liquidator research: a seeded split of a real hourly volume.

No decoded on-chain liquidation of a whole day exists in ``../shared/data`` (no raw ``getTransaction``
of a real liquidation is there; the decoder's fixtures are a few rebuilt transactions), so the economics are
shown on events generated here. Only the hourly totals are real (the DeFi-Kai panel's debt repaid per hour,
``research.liquidator_markets.load_hourly_panel``); everything per event is drawn from stated
distributions with a seed: the split of each hour into events, the protocol, the direction, the bonus,
the winning liquidator, its priority fee and compute units. Every row's ``amount_notes`` says synthetic.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

import numpy as np
import polars as pl

from datasets.schemas import LIQUIDATION_EXTRAS
from research.liquidator import LAMPORTS_PER_SOL

SOL_MINT = "So11111111111111111111111111111111111111112"
USDC_MINT = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"
BASE_FEE_LAMPORTS = 5_000
NOTE = "SYNTHETIC: research.liquidator_synthetic (seeded split of a real hourly volume)"


@dataclass(frozen=True, kw_only=True, slots=True)
class SyntheticLiquidations:
    """The distributions the events are drawn from (all assumptions, none measured)."""

    seed: int = 14
    mean_event_usd: float = 25_000.0  # events per hour = ceil(volume / mean); sizes Dirichlet(1)
    liquidators: int = 40  # winners drawn with Zipf weights rank^-zipf_exponent
    zipf_exponent: float = 1.3
    protocol_weights: tuple[tuple[str, float, float], ...] = (("kamino", 0.7, 0.05), ("marginfi", 0.3, 0.025))
    bonus_spread_bps: float = 100.0  # uniform +- around each protocol's bonus
    long_share: float = 0.9  # SOL collateral, USDC debt; the rest USDC collateral, SOL debt
    priority_share_log_mean: float = float(np.log(0.05))  # winner's bid as a share of the bonus: lognormal
    priority_share_log_sd: float = 1.0


def synthetic_liquidation_extras(
    panel: pl.DataFrame, spec: SyntheticLiquidations | None = None, *, sol_prices: pl.DataFrame | None = None
) -> pl.DataFrame:
    """Return SYNTHETIC ``liquidation_extras`` rows whose hourly repaid USD sums to the panel's.

    ``panel`` is ``load_hourly_panel``'s frame. Both legs are priced (USDC at 1) at the SOL price the
    protocol would see: the latest of ``sol_prices`` (``ts, price_usd``) at or before the event when given,
    else the hour's ``price_usd``; so an event's bonus at that price is the drawn bonus.
    """
    spec = spec or SyntheticLiquidations()
    rng = np.random.default_rng(spec.seed)
    hours = panel.filter(pl.col("liquidations_usd") > 0)
    counts = np.ceil(hours["liquidations_usd"].to_numpy() / spec.mean_event_usd).astype(np.int64)
    sizes = np.concatenate(
        [rng.dirichlet(np.ones(n)) * v for n, v in zip(counts, hours["liquidations_usd"], strict=True)]
    )
    n = sizes.size
    start_ns = np.repeat(hours["ts"].dt.epoch("ns").to_numpy(), counts)
    ts_ns = np.sort(start_ns + rng.integers(0, 3_600_000_000_000, n))
    sol_usd = np.repeat(hours["price_usd"].to_numpy(), counts)
    if sol_prices is not None:
        sol_usd = _price_at(ts_ns, sol_prices, fallback=sol_usd)
    names = [p for p, _, _ in spec.protocol_weights]
    weights = np.array([w for _, w, _ in spec.protocol_weights])
    protocol = rng.choice(len(names), size=n, p=weights / weights.sum())
    bonus = np.array([b for _, _, b in spec.protocol_weights])[protocol]
    bonus = bonus + rng.uniform(-1, 1, n) * spec.bonus_spread_bps / 10_000
    long = rng.random(n) < spec.long_share
    ranks = np.arange(1, spec.liquidators + 1, dtype=np.float64) ** -spec.zipf_exponent
    winner = rng.choice(spec.liquidators, size=n, p=ranks / ranks.sum())
    share = np.exp(rng.normal(spec.priority_share_log_mean, spec.priority_share_log_sd, n))
    priority = np.floor(np.minimum(share, 0.9) * sizes * bonus / sol_usd * LAMPORTS_PER_SOL).astype(np.int64)
    units = rng.integers(150_000, 400_000, n)
    seized_units = sizes * (1 + bonus) / np.where(long, sol_usd, 1.0)
    repaid_units = sizes / np.where(long, 1.0, sol_usd)
    frame = pl.DataFrame(
        {
            "venue": "solana",
            "protocol": np.array(names)[protocol],
            "ts": pl.Series(ts_ns).cast(pl.Datetime("ns", "UTC")),
            "slot": np.arange(n, dtype=np.int64),
            "tx_signature": [f"synthetic-{i:06d}" for i in range(n)],
            "instruction_index": 0,
            "record_index": 0,
            "instruction": "synthetic",
            "idl_version": "synthetic",
            "liquidator": [f"synthetic-liquidator-{w + 1:02d}" for w in winner],
            "repay_mint": np.where(long, USDC_MINT, SOL_MINT),
            "repay_amount": _raw(repaid_units, np.where(long, 6, 9)),
            "repay_decimals": np.where(long, 6, 9),
            "seized_mint": np.where(long, SOL_MINT, USDC_MINT),
            "seized_amount": _raw(seized_units, np.where(long, 9, 6)),
            "seized_decimals": np.where(long, 9, 6),
            "compute_unit_limit": units + 50_000,
            "priority_fee_lamports": priority,
            "fee_lamports": priority + BASE_FEE_LAMPORTS,
            "compute_units_consumed": units,
            "position_in_block": rng.integers(0, 1_500, n),
            "amount_notes": NOTE,
            "event_id": [f"synthetic-{i:06d}" for i in range(n)],
        }
    )
    schema = LIQUIDATION_EXTRAS.polars_schema
    return frame.select(
        pl.col(name).cast(dtype) if name in frame.columns else pl.lit(None, dtype).alias(name)
        for name, dtype in schema.items()
    ).sort("ts")


def _price_at(ts_ns: np.ndarray, prices: pl.DataFrame, *, fallback: np.ndarray) -> np.ndarray:
    quotes = prices.select(pl.col("ts").cast(pl.Datetime("ns", "UTC")), pl.col("price_usd").cast(pl.Float64)).sort("ts")
    events = pl.DataFrame({"ts": pl.Series(ts_ns).cast(pl.Datetime("ns", "UTC"))})
    found = events.join_asof(quotes, on="ts", strategy="backward")["price_usd"].to_numpy()
    return np.where(np.isnan(found), fallback, found)


def _raw(units: np.ndarray, decimals: np.ndarray) -> pl.Series:
    raw = np.floor(units * 10.0**decimals).astype(np.int64)
    return pl.Series([Decimal(int(v)) for v in raw], dtype=pl.Decimal(38, 0))


def shifted(frame: pl.DataFrame, *, by: timedelta) -> pl.DataFrame:
    """Return ``frame`` with its ``ts`` moved by ``by`` (to lay synthetic events on another period's bars)."""
    return frame.with_columns(pl.col("ts") + by)
