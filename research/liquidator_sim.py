"""A liquidator bot replayed over historical liquidations: vectorised kernels with a stated model of winning.

The bot sees every historical event (``research.liquidator.event_economics`` rows) and competes with the
liquidator who really won it. Its policy (``BotPolicy``): capital ``capital_usd``, a priority fee bid as a
share of the bonus it expects, a latency, how long it holds the seized collateral before selling it and
the cost of that sale.

Model of winning (``WinModel``), per event *i* with the winner's observed priority fee ``w_i``::

    p_i = sigmoid((ln b_i - ln w_i) / scale) * exp(-latency_ms / latency_scale_ms)

The first factor says the bot outbids the winner with a probability that grows with the log ratio of the
bids (1/2 at an equal bid): the winner's bid on a rerun is uncertain, with the spread of winning bids seen in
the data (``calibrate_win_model``: ``scale = sd * sqrt(3) / pi``, the logistic of the same standard deviation
as the log priority fee per compute unit of winners within a protocol and day). The second says the bot's
transaction lands in time with a probability that halves every ``latency_scale_ms * ln 2`` of latency: an
assumption (no landing times are in the decoded data), declared in ``WinModel`` and swept by ``sensitivity``.

Per event, in time order, the bot liquidates the fraction ``f_i = min(1, available_i / repaid_usd_i)``
(partial liquidation), where ``available_i`` is its capital less what earlier wins still hold until sold,
sells the seized collateral at the first bar close at or after ``ts + latency + hold`` (``sell_prices``) less
``sell_cost_bps``, and pays its fees (base fee of the winner's transaction + its bid) on every attempt
(``pay_fees_on_loss``) or only when it wins (a bundle that lands only if it wins). It attempts an event when
the bonus it expects at the liquidation price exceeds those fees. Outcomes are expectations (``p_i`` times
the result), so the replay is deterministic; a win holds ``f_i * repaid_usd_i`` from the event until the
sale, so capital in use is ``p_i * f_i * repaid_usd_i`` over that span, and never exceeds ``capital_usd``.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from datetime import timedelta
from typing import Any

import numpy as np
import polars as pl

from research.errors import ResearchError
from research.liquidator import LAMPORTS_PER_SOL

SIM_COLUMNS = (
    "ts",
    "seized_symbol",
    "seized_units",
    "repaid_usd",
    "bonus_usd",
    "fee_lamports",
    "priority_fee_lamports",
    "compute_units",
    "sol_usd",
)


class SimulationError(ResearchError, ValueError):
    """The simulator's inputs or assumptions are unusable."""


@dataclass(frozen=True, kw_only=True, slots=True)
class WinModel:
    """How the chance of winning depends on the bid and the latency (see the module docstring)."""

    scale: float
    latency_scale_ms: float = 400.0  # one Solana slot: an assumption, swept in the notebook

    def __post_init__(self) -> None:
        if not (self.scale > 0 and self.latency_scale_ms > 0):
            raise SimulationError(f"WinModel needs positive scales, was {self}")


@dataclass(frozen=True, kw_only=True, slots=True)
class BotPolicy:
    """A liquidator bot's capital, bidding, latency and exit."""

    capital_usd: float
    priority_fee_share: float = 0.2  # of the bonus it expects, bid as priority fee
    latency_ms: float = 200.0
    hold_secs: float = 3600.0  # until the seized collateral is sold
    sell_cost_bps: float = 10.0
    pay_fees_on_loss: bool = True

    def __post_init__(self) -> None:
        if self.capital_usd <= 0 or not 0 <= self.priority_fee_share < 1:
            raise SimulationError(
                f"BotPolicy needs capital_usd > 0 and 0 <= priority_fee_share < 1, was {self.capital_usd}, "
                f"{self.priority_fee_share}"
            )
        if min(self.latency_ms, self.hold_secs, self.sell_cost_bps) < 0:
            raise SimulationError(f"BotPolicy needs non-negative latency, hold and sell cost, was {self}")


@dataclass(frozen=True, slots=True)
class SimulationResult:
    """Per-event expectations and their totals."""

    events: pl.DataFrame
    pnl_usd: float
    win_rate: float
    expected_wins: float
    attempts: int
    fees_usd: float
    capital_peak_usd: float
    capital_mean_usd: float


def calibrate_win_model(events: pl.DataFrame, *, latency_scale_ms: float = 400.0) -> WinModel:
    """Return the ``WinModel`` whose bid spread is that of winning bids within a protocol and day.

    The standard deviation is pooled: of ``ln(priority fee per compute unit)`` around each protocol-day
    mean, over the events with a positive priority fee.

    Raises
    ------
    SimulationError
        If fewer than two events per group carry a priority fee, or the bids do not vary.
    """
    logs = events.filter(pl.col("priority_fee_lamports") > 0, pl.col("compute_units") > 0).select(
        "protocol",
        "day",
        log_fee=(pl.col("priority_fee_lamports") / pl.col("compute_units")).log(),
    )
    deviations = logs.with_columns(dev=pl.col("log_fee") - pl.col("log_fee").mean().over("protocol", "day"))
    groups = deviations.select(pl.struct("protocol", "day").n_unique()).item()
    dof = deviations.height - groups
    if dof < 1:
        raise SimulationError(
            f"calibrating the win model needs two winning bids in some protocol-day, found {deviations.height} "
            f"bids in {groups} groups"
        )
    sd = math.sqrt(float((deviations["dev"] ** 2).sum()) / dof)
    if sd == 0:
        raise SimulationError("calibrating the win model needs winning bids that vary, all were equal")
    return WinModel(scale=sd * math.sqrt(3) / math.pi, latency_scale_ms=latency_scale_ms)


def win_probability(
    bid_lamports: np.ndarray, winner_lamports: np.ndarray, *, latency_ms: float, model: WinModel
) -> np.ndarray:
    """Return the chance of winning each event (0 for a zero bid, 1/2 x landing at the winner's bid)."""
    bid = np.asarray(bid_lamports, dtype=np.float64)
    winner = np.maximum(np.asarray(winner_lamports, dtype=np.float64), 1.0)
    with np.errstate(divide="ignore"):
        z = (np.log(bid) - np.log(winner)) / model.scale
    outbid = 1.0 / (1.0 + np.exp(-np.clip(z, -700, 700)))
    return np.where(bid > 0, outbid, 0.0) * math.exp(-latency_ms / model.latency_scale_ms)


def sell_prices(events: pl.DataFrame, bars: pl.DataFrame, *, delay_secs: float) -> pl.Series:
    """Return per event the first bar close of its seized symbol at or after ``ts + delay_secs``.

    ``bars`` holds ``symbol, ts, close`` (bar-close stamps); an event past the last bar gets null.
    """
    left = events.select(
        row=pl.int_range(pl.len()),
        symbol=pl.col("seized_symbol"),
        ts=(pl.col("ts") + timedelta(seconds=delay_secs)).cast(pl.Datetime("ns", "UTC")),
    ).sort("ts")
    right = bars.select(
        pl.col("symbol").cast(pl.String), pl.col("ts").cast(pl.Datetime("ns", "UTC")), pl.col("close").cast(pl.Float64)
    ).sort("ts")
    joined = left.join_asof(right, on="ts", by="symbol", strategy="forward", check_sortedness=False).sort("row")
    return joined["close"]


def simulate(events: pl.DataFrame, bars: pl.DataFrame, *, policy: BotPolicy, model: WinModel) -> SimulationResult:
    """Replay ``policy`` over ``events`` against their winners and return the expected outcome.

    Raises
    ------
    SimulationError
        If a column is missing from ``events``, or a fee is below its priority fee.
    """
    missing = [c for c in SIM_COLUMNS if c not in events.columns]
    if missing:
        raise SimulationError(f"events lack {missing}; pass research.liquidator.event_economics rows")
    hold = timedelta(seconds=policy.latency_ms / 1000 + policy.hold_secs)
    usable = events.filter(pl.col("repaid_usd") > 0, pl.col("bonus_usd").is_not_null(), pl.col("sol_usd") > 0)
    sale = sell_prices(usable, bars, delay_secs=hold.total_seconds())
    usable = usable.with_columns(sell_price=sale).filter(pl.col("sell_price").is_not_null()).sort("ts")
    market = _Market(
        repaid=usable["repaid_usd"].to_numpy(),
        bonus=usable["bonus_usd"].to_numpy(),
        lamport_usd=usable["sol_usd"].to_numpy() / LAMPORTS_PER_SOL,
        winner=usable["priority_fee_lamports"].to_numpy().astype(np.float64),
        base_fee=(usable["fee_lamports"] - usable["priority_fee_lamports"]).to_numpy().astype(np.float64),
    )
    if np.any(market.base_fee < 0):
        raise SimulationError(
            f"{int(np.sum(market.base_fee < 0))} events have fee_lamports below priority_fee_lamports; a transaction's "
            "fee includes its priority fee: fix the decoded rows"
        )
    start = usable["ts"].dt.epoch("ns").to_numpy()
    end = start + int(hold.total_seconds() * 1e9)
    fraction = _allocate(market, start, end, policy=policy, model=model)
    bid, fees, attempt, p = _bids(market, fraction, policy=policy, model=model)
    proceeds = fraction * usable["seized_units"].to_numpy() * usable["sell_price"].to_numpy()
    gross = proceeds * (1 - policy.sell_cost_bps / 10_000) - fraction * market.repaid
    paid = np.where(attempt, fees * (1.0 if policy.pay_fees_on_loss else p), 0.0)
    pnl = p * gross - paid
    peak, mean = _capital_in_use(start, end, p * fraction * market.repaid)
    per_event = usable.with_columns(
        fraction=fraction, bid_lamports=bid, attempt=attempt, win_probability=p, gross_usd=gross, pnl_usd=pnl
    )
    attempts = int(attempt.sum())
    return SimulationResult(
        events=per_event,
        pnl_usd=float(pnl.sum()),
        win_rate=float(p.sum() / attempts) if attempts else 0.0,
        expected_wins=float(p.sum()),
        attempts=attempts,
        fees_usd=float(paid.sum()),
        capital_peak_usd=peak,
        capital_mean_usd=mean,
    )


@dataclass(frozen=True, slots=True)
class _Market:
    repaid: np.ndarray
    bonus: np.ndarray
    lamport_usd: np.ndarray
    winner: np.ndarray
    base_fee: np.ndarray

    def at(self, i: int) -> _Market:
        return _Market(*(getattr(self, f.name)[i : i + 1] for f in fields(self)))


def _bids(
    market: _Market, fraction: np.ndarray, *, policy: BotPolicy, model: WinModel
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    expected_bonus = fraction * market.bonus
    bid = np.floor(policy.priority_fee_share * np.maximum(expected_bonus, 0.0) / market.lamport_usd)
    fees = (market.base_fee + bid) * market.lamport_usd
    attempt = expected_bonus > fees
    p = np.where(attempt, win_probability(bid, market.winner, latency_ms=policy.latency_ms, model=model), 0.0)
    return bid, fees, attempt, p


def _allocate(market: _Market, start: np.ndarray, end: np.ndarray, *, policy: BotPolicy, model: WinModel) -> np.ndarray:
    # Sequential by nature: what an event can take depends on the capital earlier wins still hold.
    fraction = np.zeros(start.size)
    held: list[tuple[int, float]] = []
    locked = 0.0
    for i in range(start.size):
        while held and held[0][0] <= start[i]:
            locked -= heapq.heappop(held)[1]
        available = max(policy.capital_usd - locked, 0.0)
        fraction[i] = min(1.0, available / market.repaid[i])
        *_, p = _bids(market.at(i), fraction[i : i + 1], policy=policy, model=model)
        lock = float(p[0]) * fraction[i] * market.repaid[i]
        if lock > 0:
            heapq.heappush(held, (int(end[i]), lock))
            locked += lock
    return fraction


def _capital_in_use(start: np.ndarray, end: np.ndarray, capital: np.ndarray) -> tuple[float, float]:
    if capital.size == 0:
        return 0.0, 0.0
    times = np.concatenate([start, end])
    change = np.concatenate([capital, -capital])
    order = np.lexsort((change, times))  # at equal times a release comes before a new use
    level = np.cumsum(change[order])
    span = times[order]
    durations = np.diff(span)
    total = span[-1] - span[0]
    mean = float(np.sum(level[:-1] * durations) / total) if total > 0 else float(level.max())
    return float(level.max()), mean


def sensitivity(
    events: pl.DataFrame,
    bars: pl.DataFrame,
    *,
    policy: BotPolicy,
    model: WinModel,
    grid: Mapping[str, Sequence[float]],
) -> pl.DataFrame:
    """Return the outcome with one assumption changed at a time: one row per (parameter, value).

    ``grid`` names fields of ``BotPolicy`` or ``WinModel`` (``latency_scale_ms``, ``scale``).

    Raises
    ------
    SimulationError
        If ``grid`` names something neither has.
    """
    policy_fields = {f.name for f in fields(BotPolicy)}
    model_fields = {f.name for f in fields(WinModel)}
    rows = []
    for name, values in grid.items():
        if name not in policy_fields | model_fields:
            raise SimulationError(
                f"sensitivity grid names {name!r}; expected one of {sorted(policy_fields | model_fields)}"
            )
        for value in values:
            change: dict[str, Any] = {name: value}
            p = replace(policy, **change) if name in policy_fields else policy
            m = replace(model, **change) if name in model_fields else model
            result = simulate(events, bars, policy=p, model=m)
            rows.append(
                {
                    "parameter": name,
                    "value": float(value),
                    "pnl_usd": result.pnl_usd,
                    "win_rate": result.win_rate,
                    "expected_wins": result.expected_wins,
                    "attempts": result.attempts,
                    "fees_usd": result.fees_usd,
                    "capital_peak_usd": result.capital_peak_usd,
                }
            )
    return pl.DataFrame(rows)
