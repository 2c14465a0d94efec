"""A Solana liquidator's economics from decoded on-chain liquidations: pure functions on polars frames.

Input is the ``liquidation_extras`` kind (``datasets.onchain.decode.extras_frame``): raw repaid and seized
amounts with their mints and decimals, the winning liquidator (the transaction's signer), the fee and
priority fee in lamports and the compute units. Values in USD come from a declared price input, a frame
``symbol, ts, price_usd`` (market prices, e.g. store bars read with ``floats=True``, or oracle prices):
each leg is valued at the latest price at or before the liquidation. ``SOL`` prices the fees.

- ``event_economics``: per event the repaid and seized value, the bonus captured (seized value - repaid
  value), the fees and priority fees paid in lamports and USD, compute units, the winner and its net.
- ``daily_protocol_stats``: per protocol and UTC day the count, volume (repaid USD), bonus distribution
  (sum, p10/p50/p90 in bps) and the concentration of liquidators (share of the top 1/5/10, HHI).
- ``hhi``/``top_share``: the concentration formulas, one place, on a vector of amounts.

float64 throughout: these are research vectors, not the ledger of record.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import polars as pl

from datasets.onchain.mints import MintTable
from research.errors import ResearchError

LAMPORTS_PER_SOL = 1_000_000_000
FEE_SYMBOL = "SOL"
TOP_K: tuple[int, ...] = (1, 5, 10)
PRICE_COLUMNS = ("symbol", "ts", "price_usd")
EXTRAS_COLUMNS = (
    "protocol",
    "ts",
    "tx_signature",
    "event_id",
    "liquidator",
    "repay_mint",
    "repay_amount",
    "repay_decimals",
    "seized_mint",
    "seized_amount",
    "seized_decimals",
    "fee_lamports",
    "priority_fee_lamports",
    "compute_units_consumed",
    "liquidation_bonus_bps",
    "position_in_block",
)


class EconomicsError(ResearchError, ValueError):
    """The liquidations or prices given to the economics lack what they need."""


def hhi(amounts: Sequence[float] | np.ndarray) -> float:
    """Return the Herfindahl-Hirschman index of ``amounts``: the sum of squared shares, in [1/n, 1].

    Raises
    ------
    EconomicsError
        If an amount is negative or none is positive.
    """
    shares = _shares(amounts)
    return float(np.sum(shares * shares))


def top_share(amounts: Sequence[float] | np.ndarray, k: int) -> float:
    """Return the share of the total held by the ``k`` largest of ``amounts`` (1.0 when ``k >= n``).

    Raises
    ------
    EconomicsError
        If ``k < 1``, an amount is negative or none is positive.
    """
    if k < 1:
        raise EconomicsError(f"top_share needs k >= 1, was {k}")
    shares = np.sort(_shares(amounts))[::-1]
    return float(np.sum(shares[:k]))


def _shares(amounts: Sequence[float] | np.ndarray) -> np.ndarray:
    values = np.asarray(amounts, dtype=np.float64)
    if values.size == 0 or np.any(values < 0) or not np.any(values > 0):
        raise EconomicsError(
            f"concentration needs non-negative amounts with a positive total, was {values.tolist()[:10]}"
        )
    return values / values.sum()


def event_economics(extras: pl.DataFrame, prices: pl.DataFrame, *, mints: MintTable | None = None) -> pl.DataFrame:
    """Return one row per liquidation with its values in USD, the bonus captured and the fees paid.

    Parameters
    ----------
    extras : pl.DataFrame
        Rows of the ``liquidation_extras`` kind.
    prices : pl.DataFrame
        ``symbol, ts, price_usd``: each leg is valued at its symbol's latest price at or before the event;
        ``SOL`` values the fees. A leg without a price has null values (and a null bonus).
    mints : MintTable, optional
        Mint -> symbol (``MintTable.default()`` when omitted).

    Returns
    -------
    pl.DataFrame
        ``protocol, day, ts, tx_signature, event_id, liquidator, repay_symbol, seized_symbol, repaid_units,
        seized_units, repaid_usd, seized_usd, bonus_usd, bonus_bps, protocol_bonus_bps, fee_lamports,
        priority_fee_lamports, base_fee_lamports, fee_usd, priority_fee_usd, compute_units,
        priority_fee_per_cu_lamports, net_usd, position_in_block, sol_usd``, sorted by ``ts``.

    Raises
    ------
    EconomicsError
        If a column is missing from ``extras`` or ``prices``.
    """
    _require(extras, EXTRAS_COLUMNS, "liquidation extras")
    _require(prices, PRICE_COLUMNS, "prices")
    table = mints or MintTable.default()
    symbols = {m: info.symbol for m in _mints_of(extras) if (info := table.get(m)) is not None}
    quotes = prices.select(
        pl.col("symbol").cast(pl.String),
        pl.col("ts").cast(pl.Datetime("ns", "UTC")),
        pl.col("price_usd").cast(pl.Float64),
    ).sort("ts")
    events = (
        extras.select(EXTRAS_COLUMNS)
        .with_columns(
            pl.col("ts").cast(pl.Datetime("ns", "UTC")),
            repay_symbol=pl.col("repay_mint").replace_strict(symbols, default=None, return_dtype=pl.String),
            seized_symbol=pl.col("seized_mint").replace_strict(symbols, default=None, return_dtype=pl.String),
            repaid_units=_units("repay"),
            seized_units=_units("seized"),
        )
        .sort("ts")
    )
    for leg in ("repay", "seized"):
        events = _price_leg(events, quotes, symbol_column=f"{leg}_symbol", price_column=f"{leg}_price_usd")
    sol = quotes.filter(pl.col("symbol") == FEE_SYMBOL).select("ts", sol_usd="price_usd")
    events = events.join_asof(sol, on="ts", strategy="backward")
    lamports_usd = pl.col("sol_usd") / LAMPORTS_PER_SOL
    return (
        events.with_columns(
            repaid_usd=pl.col("repaid_units") * pl.col("repay_price_usd"),
            seized_usd=pl.col("seized_units") * pl.col("seized_price_usd"),
            priority_fee_lamports=pl.col("priority_fee_lamports").fill_null(0),
        )
        .with_columns(
            day=pl.col("ts").dt.date(),
            bonus_usd=pl.col("seized_usd") - pl.col("repaid_usd"),
            base_fee_lamports=pl.col("fee_lamports") - pl.col("priority_fee_lamports"),
            fee_usd=pl.col("fee_lamports") * lamports_usd,
            priority_fee_usd=pl.col("priority_fee_lamports") * lamports_usd,
            compute_units=pl.col("compute_units_consumed"),
            priority_fee_per_cu_lamports=pl.col("priority_fee_lamports") / pl.col("compute_units_consumed"),
            protocol_bonus_bps=pl.col("liquidation_bonus_bps").cast(pl.Float64),
        )
        .with_columns(
            bonus_bps=pl.col("bonus_usd") / pl.col("repaid_usd") * 10_000,
            net_usd=pl.col("bonus_usd") - pl.col("fee_usd"),
        )
        .select(
            "protocol",
            "day",
            "ts",
            "tx_signature",
            "event_id",
            "liquidator",
            "repay_symbol",
            "seized_symbol",
            "repaid_units",
            "seized_units",
            "repaid_usd",
            "seized_usd",
            "bonus_usd",
            "bonus_bps",
            "protocol_bonus_bps",
            "fee_lamports",
            "priority_fee_lamports",
            "base_fee_lamports",
            "fee_usd",
            "priority_fee_usd",
            "compute_units",
            "priority_fee_per_cu_lamports",
            "net_usd",
            "position_in_block",
            "sol_usd",
        )
    )


def daily_protocol_stats(
    events: pl.DataFrame, *, by: Literal["volume", "count"] = "volume", top_k: Sequence[int] = TOP_K
) -> pl.DataFrame:
    """Return per protocol and UTC day the volume, count, bonus distribution and liquidator concentration.

    Parameters
    ----------
    events : pl.DataFrame
        The output of ``event_economics``.
    by : {"volume", "count"}
        What a liquidator's share is measured in: repaid USD or number of liquidations won.
    top_k : Sequence[int]
        The ``top_<k>_share`` columns to compute.

    Returns
    -------
    pl.DataFrame
        ``protocol, day, count, volume_usd, bonus_usd, fee_usd, net_usd, bonus_bps_p10, bonus_bps_p50,
        bonus_bps_p90, liquidators, top_<k>_share..., hhi``, sorted by protocol and day.

    Raises
    ------
    EconomicsError
        If a column is missing, or a ``top_k`` is below 1.
    """
    _require(events, ("protocol", "day", "liquidator", "repaid_usd", "bonus_usd", "fee_usd", "net_usd"), "events")
    if any(k < 1 for k in top_k):
        raise EconomicsError(f"top_k must all be >= 1, was {list(top_k)}")
    keys = ("protocol", "day")
    totals = events.group_by(keys).agg(
        count=pl.len(),
        volume_usd=pl.col("repaid_usd").sum(),
        bonus_usd=pl.col("bonus_usd").sum(),
        fee_usd=pl.col("fee_usd").sum(),
        net_usd=pl.col("net_usd").sum(),
        bonus_bps_p10=pl.col("bonus_bps").quantile(0.1, interpolation="linear"),
        bonus_bps_p50=pl.col("bonus_bps").quantile(0.5, interpolation="linear"),
        bonus_bps_p90=pl.col("bonus_bps").quantile(0.9, interpolation="linear"),
    )
    return totals.join(concentration(events, group_by=keys, by=by, top_k=top_k), on=keys).sort(keys)


def concentration(
    events: pl.DataFrame,
    *,
    group_by: Sequence[str] = ("protocol", "day"),
    by: Literal["volume", "count"] = "volume",
    top_k: Sequence[int] = TOP_K,
) -> pl.DataFrame:
    """Return per group the number of liquidators, the share of the top ``k`` and the HHI of their shares.

    Raises
    ------
    EconomicsError
        If a column is missing.
    """
    _require(events, (*group_by, "liquidator", "repaid_usd"), "events")
    amount = pl.col("repaid_usd").fill_null(0).sum() if by == "volume" else pl.len().cast(pl.Float64)
    per_liquidator = events.group_by([*group_by, "liquidator"]).agg(amount=amount)
    share = pl.col("amount") / pl.col("amount").sum()
    ranked = pl.col("amount").sort(descending=True) / pl.col("amount").sum()
    return per_liquidator.group_by(list(group_by)).agg(
        liquidators=pl.len(),
        **{f"top_{k}_share": ranked.head(k).sum() for k in top_k},
        hhi=(share * share).sum(),
    )


def liquidator_league(events: pl.DataFrame) -> pl.DataFrame:
    """Return per liquidator its wins, volume, bonus, fees and net in USD, largest volume first.

    Raises
    ------
    EconomicsError
        If a column is missing.
    """
    _require(events, ("liquidator", "repaid_usd", "bonus_usd", "fee_usd", "net_usd"), "events")
    return (
        events.group_by("liquidator")
        .agg(
            wins=pl.len(),
            volume_usd=pl.col("repaid_usd").sum(),
            bonus_usd=pl.col("bonus_usd").sum(),
            fee_usd=pl.col("fee_usd").sum(),
            net_usd=pl.col("net_usd").sum(),
        )
        .with_columns(volume_share=pl.col("volume_usd") / pl.col("volume_usd").sum())
        .sort(["volume_usd", "liquidator"], descending=[True, False])
    )


def _units(leg: str) -> pl.Expr:
    amount, decimals = pl.col(f"{leg}_amount").cast(pl.Float64), pl.col(f"{leg}_decimals").cast(pl.Float64)
    return amount / pl.lit(10.0).pow(decimals)


def _price_leg(events: pl.DataFrame, quotes: pl.DataFrame, *, symbol_column: str, price_column: str) -> pl.DataFrame:
    right = quotes.rename({"symbol": symbol_column, "price_usd": price_column})
    return events.join_asof(right, on="ts", by=symbol_column, strategy="backward", check_sortedness=False)


def _mints_of(extras: pl.DataFrame) -> set[str]:
    mints = pl.concat([extras["repay_mint"], extras["seized_mint"]]).drop_nulls().unique()
    return set(mints.to_list())


def _require(frame: pl.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise EconomicsError(
            f"{what} lack the columns {missing}; expected {list(columns)}, was {frame.columns}: "
            "pass rows of the liquidation_extras kind and a symbol, ts, price_usd frame"
        )
