"""Out-of-sample sweeps of a carry strategy's declared ``PARAMETER_SPACE``: ``python -m research.sweep CONFIG``.

For every fold of a walk-forward or combinatorial purged split (``research.splits``, in whole UTC
days, purge and embargo sized from the strategy's holding horizon and warm-up), the fast kernel
(``research.carry_kernel``) scores every parameter set on the train range(s) and on the test
range(s); the objective picks one set on train, and its test score is the out-of-sample result.
Then the engine has the last word: each fold's pick is re-run through ``engine.backtest.run_backtest``
on each test range and compared with the kernel's figures, PnL component by component; a difference
above ``tolerance_usd`` fails the sweep (``ToleranceError``).

Work is cut into tasks of (one range's data slice, one chunk of parameter sets): in process
(``workers=1``), on local processes (``concurrent.futures.ProcessPoolExecutor``), or on a Ray
cluster (``ray_address``: ``auto``, ``ray://host:10001``), where each range's slice is ``ray.put``
once and shared by its chunks. The kernel is deterministic, so every executor gives the same table.

Outputs in ``out_dir``: ``results.parquet`` (every parameter set x fold x segment), ``folds.parquet``
(picks, in- and out-of-sample scores, engine figures and differences), ``summary.json`` and plots.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import msgspec
import numpy as np
import pandas as pd

from datasets.store import Store
from engine.backtest import RunConfig, load_config, run_backtest
from engine.errors import EngineError
from engine.loading import config_hash, load_strategy
from research.carry_kernel import (
    METRICS,
    RangeSlice,
    TwoLegInputs,
    full_signals,
    load_two_leg_inputs,
    score,
    signal_keys,
    slice_range,
)
from research.errors import ResearchError, SweepError, ToleranceError
from research.splits import Fold, combinatorial_purged, purge_embargo, walk_forward
from strategies.carry import bar_interval_ns, warmup_bars
from strategies.signals import ParameterRange, cost_apr

Method = Literal["walk-forward", "cpcv"]
Objective = Literal["pnl_total", "sharpe", "pnl_over_drawdown"]
Search = Literal["grid", "random"]
NS_PER_DAY = 86_400 * 1_000_000_000
ENGINE_KEYS = ("pnl_total", "pnl_price", "pnl_funding", "pnl_fees")


@dataclass(frozen=True, slots=True)
class SweepSettings:
    """How to sweep: the split, the search, the objective, the executor and the engine check.

    Attributes
    ----------
    method : {"walk-forward", "cpcv"}
        Walk-forward (rolling, or ``anchored``) or combinatorial purged cross-validation.
    train_days, test_days : int
        Walk-forward window sizes in days.
    groups, test_groups : int
        CPCV: the days are cut in ``groups`` groups; each fold tests ``test_groups`` of them.
    search : {"grid", "random"}
        Every combination of the declared grids, or ``samples`` of them drawn with ``seed``.
    names : tuple[str, ...] | None
        Parameters to sweep (default: every one the strategy declares).
    objective : {"pnl_total", "sharpe", "pnl_over_drawdown"}
        What the pick maximises on train.
    holding_hours, warmup_hours : int | None
        Purge and embargo horizons (default: the largest holding time and lookback swept).
    workers : int
        Local processes (1: in this process).
    ray_address : str | None
        Run on this Ray cluster instead (``auto`` or ``ray://host:10001``).
    chunk_size : int
        Parameter sets per task.
    tolerance_usd : Decimal
        Largest kernel - engine difference allowed on each PnL component of each re-run.
    engine_check : bool
        Re-run every fold's pick through the engine (safety on by default).
    """

    method: Method = "walk-forward"
    train_days: int = 180
    test_days: int = 90
    anchored: bool = False
    groups: int = 6
    test_groups: int = 2
    search: Search = "grid"
    samples: int = 200
    seed: int = 0
    names: tuple[str, ...] | None = None
    objective: Objective = "pnl_total"
    holding_hours: int | None = None
    warmup_hours: int | None = None
    workers: int = 1
    ray_address: str | None = None
    chunk_size: int = 256
    tolerance_usd: Decimal = Decimal("0.01")
    engine_check: bool = True


@dataclass(slots=True)
class SweepResult:
    """A finished sweep: the tables, the summary and where they were written."""

    results: pd.DataFrame
    folds: pd.DataFrame
    summary: dict[str, Any]
    out_dir: Path | None = None
    plots: list[Path] = field(default_factory=list)


def parameter_space(config: RunConfig) -> tuple[dict[str, ParameterRange], dict[str, Any]]:
    """Return the strategy's declared ``PARAMETER_SPACE`` and its ``[strategy.params]`` as ``(space, base)``.

    Raises
    ------
    SweepError
        If the strategy declares no parameter space.
    """
    space = getattr(type(load_strategy(config).config), "PARAMETER_SPACE", None)
    if not space:
        raise SweepError(f"strategy {config.strategy.path}: expected a declared PARAMETER_SPACE, found none")
    return dict(space), dict(config.strategy.params)


def _valid(combo: Mapping[str, Any], base: Mapping[str, Any]) -> bool:
    merged = {**base, **combo}
    return Decimal(str(merged.get("exit_apr", 0))) <= Decimal(str(merged.get("entry_apr", 1)))


def parameter_sets(
    space: Mapping[str, ParameterRange],
    base: Mapping[str, Any],
    *,
    names: Sequence[str] | None = None,
    search: Search = "grid",
    samples: int = 200,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Return the parameter sets to score: the grid of ``names`` (or ``samples`` of it drawn with ``seed``).

    Sets with ``exit_apr > entry_apr`` (which the config refuses) are dropped. Values keep their
    declared types (``Decimal`` or ``int``).

    Raises
    ------
    SweepError
        If a name is not declared or nothing is left to score.
    """
    names = list(names or space)
    unknown = [n for n in names if n not in space]
    if unknown:
        raise SweepError(f"expected parameters declared in PARAMETER_SPACE {sorted(space)}, was {unknown}")
    grids = [space[n].grid() for n in names]
    combos = []
    for index in np.ndindex(*[len(g) for g in grids]):
        combo = {n: g[i] for n, g, i in zip(names, grids, index, strict=True)}
        if _valid(combo, base):
            combos.append(combo)
    if search == "random" and samples < len(combos):
        chosen = sorted(random.Random(seed).sample(range(len(combos)), samples))  # noqa: S311  (seeded research sampling)
        combos = [combos[i] for i in chosen]
    if not combos:
        raise SweepError("expected at least one valid parameter set (exit_apr <= entry_apr), found none")
    return combos


def _merged(combo: Mapping[str, Any], base: Mapping[str, Any]) -> dict[str, Any]:
    return {**base, **combo}


def kernel_rows(combos: list[dict[str, Any]], base: Mapping[str, Any], keys: list[tuple[int, float]]) -> np.ndarray:
    """Return the kernel's parameter rows: signal index, entry, exit, cost APR, max holding secs."""
    index = {k: i for i, k in enumerate(keys)}
    rows = np.empty((len(combos), 5))
    for r, combo in enumerate(combos):
        p = _merged(combo, base)
        key = (int(p.get("lookback_settlements", 6)), float(p.get("predicted_weight", 0.5)))
        cost = cost_apr(Decimal(str(p.get("round_trip_cost_bps", 30))), Decimal(str(p.get("cost_horizon_days", 30))))
        rows[r] = (
            index[key],
            float(p.get("entry_apr", 0.10)),
            float(p.get("exit_apr", 0.02)),
            float(cost),
            int(p.get("max_holding_hours", 2160)) * 3600,
        )
    return rows


def _day_floor(moment: datetime) -> datetime:
    return datetime(moment.year, moment.month, moment.day, tzinfo=UTC)


def make_folds(config: RunConfig, settings: SweepSettings, combos: list[dict[str, Any]]) -> tuple[datetime, list[Fold]]:
    """Return the first day and the folds (in whole UTC days) of the config's window.

    Raises
    ------
    SplitError
        If the window is too short for the split.
    """
    first = (
        _day_floor(config.start)
        if config.start == _day_floor(config.start)
        else _day_floor(config.start) + timedelta(days=1)
    )
    n_days = (config.end - first) // timedelta(days=1)
    merged = [_merged(c, config.strategy.params) for c in combos]
    holding = settings.holding_hours or max(int(p.get("max_holding_hours", 2160)) for p in merged)
    lookback = max(int(p.get("lookback_settlements", 6)) for p in merged)
    bar_spec = str(config.strategy.params.get("bar_spec", config.data.bar_spec))
    warm_bars = warmup_bars(bar_spec, settlements=lookback) if settings.warmup_hours is None else settings.warmup_hours
    bar_hours = 1 if settings.warmup_hours is not None else _bar_hours(bar_spec)
    purge, embargo = purge_embargo(warmup_bars=warm_bars * bar_hours, holding_bars=holding, unit_bars=24)
    if settings.method == "walk-forward":
        folds = walk_forward(
            n_days,
            train_bars=settings.train_days,
            test_bars=settings.test_days,
            purge_bars=purge,
            anchored=settings.anchored,
        )
    else:
        folds = combinatorial_purged(
            n_days, groups=settings.groups, test_groups=settings.test_groups, purge_bars=purge, embargo_bars=embargo
        )
    return first, folds


def _bar_hours(bar_spec: str) -> float:
    return bar_interval_ns(bar_spec) / 3_600_000_000_000


def _ns_range(first: datetime, days: range, end: datetime) -> tuple[int, int]:
    start = first + timedelta(days=days.start)
    stop = min(first + timedelta(days=days.stop), end)
    return int(start.timestamp()) * 1_000_000_000, int(stop.timestamp()) * 1_000_000_000


def _score_task(piece: RangeSlice, rows: np.ndarray, notional: float, slippage_bps: float) -> np.ndarray:
    return score(piece, rows, notional=notional, slippage_bps=slippage_bps)


def _chunks(count: int, size: int) -> list[slice]:
    return [slice(i, min(i + size, count)) for i in range(0, count, size)]


Runner = Callable[[dict[tuple[int, int], RangeSlice], np.ndarray, float, float, int], dict[tuple[int, int], np.ndarray]]


def _run_local(
    pieces: dict[tuple[int, int], RangeSlice],
    rows: np.ndarray,
    notional: float,
    slippage: float,
    chunk: int,
    workers: int,
) -> dict[tuple[int, int], np.ndarray]:
    parts = _chunks(rows.shape[0], chunk)
    if workers <= 1:
        return {
            key: np.vstack([_score_task(piece, rows[part], notional, slippage) for part in parts])
            for key, piece in pieces.items()
        }
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = {
            key: [pool.submit(_score_task, piece, rows[part], notional, slippage) for part in parts]
            for key, piece in pieces.items()
        }
        return {key: np.vstack([f.result() for f in fs]) for key, fs in futures.items()}


def _run_ray(
    pieces: dict[tuple[int, int], RangeSlice],
    rows: np.ndarray,
    notional: float,
    slippage: float,
    chunk: int,
    address: str,
) -> dict[tuple[int, int], np.ndarray]:
    import ray

    if not ray.is_initialized():
        ray.init(address=address, log_to_driver=False)
    task = ray.remote(_score_task)
    parts = _chunks(rows.shape[0], chunk)
    refs = {}
    for key, piece in pieces.items():
        piece_ref = ray.put(piece)  # once per range; its chunks share it
        refs[key] = [task.remote(piece_ref, rows[part], notional, slippage) for part in parts]
    return {key: np.vstack(ray.get(rs)) for key, rs in refs.items()}


def score_ranges(
    inputs: TwoLegInputs,
    combos: list[dict[str, Any]],
    base: Mapping[str, Any],
    ranges: list[tuple[int, int]],
    settings: SweepSettings,
    *,
    slippage_bps: float,
) -> dict[tuple[int, int], np.ndarray]:
    """Return the kernel's ``METRICS`` of every parameter set on every ``[start_ns, end_ns)`` range."""
    keys = signal_keys([_merged(c, base) for c in combos])
    signals = full_signals(inputs, keys)
    rows = kernel_rows(combos, base, keys)
    pieces = {r: slice_range(inputs, signals, keys, start_ns=r[0], end_ns=r[1]) for r in ranges}
    notional = float(base.get("notional", 10000))
    if settings.ray_address:
        return _run_ray(pieces, rows, notional, slippage_bps, settings.chunk_size, settings.ray_address)
    return _run_local(pieces, rows, notional, slippage_bps, settings.chunk_size, settings.workers)


def _combine(parts: list[np.ndarray], days: list[int]) -> np.ndarray:
    stacked = np.stack(parts)  # (R, P, M)
    out = stacked.sum(axis=0)
    weights = np.asarray(days, dtype=np.float64)[:, None]
    out[:, METRICS.index("sharpe")] = (stacked[:, :, METRICS.index("sharpe")] * weights).sum(axis=0) / weights.sum()
    out[:, METRICS.index("max_drawdown")] = stacked[:, :, METRICS.index("max_drawdown")].max(axis=0)
    return out


def objective_values(metrics: np.ndarray, objective: Objective) -> np.ndarray:
    """Return the objective of each row of kernel ``METRICS`` (higher is better)."""
    if objective == "pnl_total":
        return metrics[:, 0].copy()
    if objective == "sharpe":
        return metrics[:, METRICS.index("sharpe")].copy()
    drawdown = metrics[:, METRICS.index("max_drawdown")]
    return metrics[:, 0] / np.maximum(drawdown, 1.0)


def _segments(fold: Fold, first: datetime, end: datetime) -> Iterator[tuple[str, list[tuple[int, int]], list[int]]]:
    yield "train", [_ns_range(first, r, end) for r in fold.train], [len(r) for r in fold.train]
    yield "test", [_ns_range(first, r, end) for r in fold.test], [len(r) for r in fold.test]


def _utc(ns: int) -> datetime:
    return datetime.fromtimestamp(ns / 1e9, tz=UTC)


def run_sweep(
    config: RunConfig,
    store: Store,
    settings: SweepSettings | None = None,
    *,
    out_dir: Path | None = None,
    catalog: str | None = None,
) -> SweepResult:
    """Sweep the config's strategy out of sample, re-run the picks through the engine and write the report.

    Raises
    ------
    SweepError
        If the strategy declares no space or is not a carry strategy the kernel knows.
    SplitError
        If the window is too short for the split.
    ToleranceError
        If an engine re-run differs from the kernel by more than ``settings.tolerance_usd`` (after the
        tables are written, so the report shows where).
    """
    settings = settings or SweepSettings()
    space, base = parameter_space(config)
    combos = parameter_sets(
        space, base, names=settings.names, search=settings.search, samples=settings.samples, seed=settings.seed
    )
    first, folds = make_folds(config, settings, combos)
    fees = {v.name: v.taker_fee for v in config.venues}
    inputs = load_two_leg_inputs(
        store, strategy_path=config.strategy.path, params=base, start=first, end=config.end, taker_fees=fees
    )
    slippage = float(config.fill.slippage_bps)
    segments = {
        (f.index, name): (ranges, days) for f in folds for name, ranges, days in _segments(f, first, config.end)
    }
    unique = sorted({r for ranges, _ in segments.values() for r in ranges})
    scored = score_ranges(inputs, combos, base, unique, settings, slippage_bps=slippage)
    results, fold_rows = _tables(folds, combos, segments, scored, settings)
    if settings.engine_check:
        _engine_check(config, fold_rows, combos, segments, scored, catalog=catalog, tolerance=settings.tolerance_usd)
    folds_frame = pd.DataFrame(fold_rows)
    summary = summarise(folds_frame, combos, settings, config=config, n_sets=len(combos))
    result = SweepResult(results, folds_frame, summary)
    if out_dir is not None:
        write_report(result, out_dir)
    failed = folds_frame[~folds_frame["engine_within_tolerance"]] if settings.engine_check else folds_frame.iloc[0:0]
    if len(failed):
        worst = failed["engine_max_difference_usd"].max()
        raise ToleranceError(
            f"engine re-runs of {len(failed)} fold picks differ from the kernel by up to {worst:.6f} USD, expected "
            f"<= {settings.tolerance_usd}: see folds.parquet in {out_dir}; check risk limits and fees in the config"
        )
    return result


def _tables(
    folds: list[Fold],
    combos: list[dict[str, Any]],
    segments: Mapping[tuple[int, str], tuple[list[tuple[int, int]], list[int]]],
    scored: Mapping[tuple[int, int], np.ndarray],
    settings: SweepSettings,
) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    frames, fold_rows = [], []
    params = pd.DataFrame([{k: float(v) if isinstance(v, Decimal) else v for k, v in c.items()} for c in combos])
    for fold in folds:
        metrics = {}
        for name in ("train", "test"):
            ranges, days = segments[(fold.index, name)]
            metrics[name] = _combine([scored[r] for r in ranges], days)
            frame = pd.DataFrame(metrics[name], columns=list(METRICS))
            frame.insert(0, "objective", objective_values(metrics[name], settings.objective))
            frame.insert(0, "days", sum(days))
            frame.insert(0, "segment", name)
            frame.insert(0, "fold", fold.index)
            frame.insert(0, "set", np.arange(len(combos)))
            frames.append(pd.concat([frame, params], axis=1))
        train_objective = objective_values(metrics["train"], settings.objective)
        pick = int(np.argmax(train_objective))  # the first of equal best: deterministic
        test_objective = objective_values(metrics["test"], settings.objective)
        test_ranges, _ = segments[(fold.index, "test")]
        train_ranges, _ = segments[(fold.index, "train")]
        fold_rows.append(
            {
                "fold": fold.index,
                "train": "; ".join(f"{_utc(a):%Y-%m-%d}..{_utc(b):%Y-%m-%d}" for a, b in train_ranges),
                "test": "; ".join(f"{_utc(a):%Y-%m-%d}..{_utc(b):%Y-%m-%d}" for a, b in test_ranges),
                "train_days": fold.train_bars,
                "test_days": fold.test_bars,
                "pick": pick,
                **{f"param_{k}": float(v) if isinstance(v, Decimal) else v for k, v in combos[pick].items()},
                "is_objective": float(train_objective[pick]),
                "oos_objective": float(test_objective[pick]),
                "is_pnl_per_day": float(metrics["train"][pick, 0] / max(fold.train_bars, 1)),
                "oos_pnl_per_day": float(metrics["test"][pick, 0] / max(fold.test_bars, 1)),
                "oos_rank_pct": float((test_objective > test_objective[pick]).mean() * 100),
                **{f"kernel_{m}": float(metrics["test"][pick, i]) for i, m in enumerate(METRICS)},
            }
        )
    return pd.concat(frames, ignore_index=True), fold_rows


def strategy_params(combo: Mapping[str, Any]) -> dict[str, Any]:
    """Return ``[strategy.params]`` overrides for a parameter set (decimals as text, integers as int)."""
    return {k: str(v) if isinstance(v, Decimal) else v for k, v in combo.items()}


def with_strategy(
    config: RunConfig, *, start: datetime, end: datetime, params: Mapping[str, Any], catalog: str | None
) -> RunConfig:
    """Return ``config`` over ``[start, end)`` with ``params`` merged into ``[strategy.params]``.

    Raises
    ------
    SweepError
        If the result is not a valid run config.
    """
    raw = msgspec.json.decode(msgspec.json.encode(config))
    raw["start"], raw["end"] = start.isoformat(), end.isoformat()
    raw["strategy"]["params"].update(params)
    if catalog is not None:
        raw["data"]["catalog"] = catalog
    try:
        return msgspec.json.decode(msgspec.json.encode(raw), type=RunConfig)
    except msgspec.ValidationError as exc:
        raise SweepError(f"overriding the config with {dict(params)}: {exc}") from None


def _engine_check(
    config: RunConfig,
    fold_rows: list[dict[str, Any]],
    combos: list[dict[str, Any]],
    segments: Mapping[tuple[int, str], tuple[list[tuple[int, int]], list[int]]],
    scored: Mapping[tuple[int, int], np.ndarray],
    *,
    catalog: str | None,
    tolerance: Decimal,
) -> None:
    cache: dict[tuple[int, tuple[int, int]], dict[str, Decimal]] = {}
    for row in fold_rows:
        pick = row["pick"]
        totals = dict.fromkeys(ENGINE_KEYS, Decimal(0))
        kernel = dict.fromkeys(ENGINE_KEYS, 0.0)
        fills = settlements = 0
        for r in segments[(row["fold"], "test")][0]:
            if (pick, r) not in cache:
                run = with_strategy(
                    config, start=_utc(r[0]), end=_utc(r[1]), params=strategy_params(combos[pick]), catalog=catalog
                )
                stats = run_backtest(run, out_dir=None).stats
                cache[(pick, r)] = {
                    **{k: Decimal(stats[k]) for k in ENGINE_KEYS},
                    "fills": Decimal(stats["fills"]),
                    "settlements": Decimal(stats["funding_settlements"]),
                }
            for k in ENGINE_KEYS:
                totals[k] += cache[(pick, r)][k]
                kernel[k] += float(scored[r][pick, METRICS.index(k)])
            fills += int(cache[(pick, r)]["fills"])
            settlements += int(cache[(pick, r)]["settlements"])
        differences = {k: abs(totals[k] - Decimal(repr(kernel[k]))) for k in ENGINE_KEYS}
        row.update({f"engine_{k}": float(totals[k]) for k in ENGINE_KEYS})
        row.update({f"difference_{k}": float(totals[k] - Decimal(repr(kernel[k]))) for k in ENGINE_KEYS})
        row["engine_fills"], row["engine_settlements"] = fills, settlements
        row["engine_max_difference_usd"] = float(max(differences.values()))
        row["engine_within_tolerance"] = (
            max(differences.values()) <= tolerance
            and fills == int(row["kernel_fills"])
            and settlements == int(row["kernel_settlements"])
        )


def summarise(
    folds: pd.DataFrame, combos: list[dict[str, Any]], settings: SweepSettings, *, config: RunConfig, n_sets: int
) -> dict[str, Any]:
    """Return the sweep's summary: out-of-sample totals, in- vs out-of-sample degradation, parameter stability."""
    is_day, oos_day = folds["is_pnl_per_day"].mean(), folds["oos_pnl_per_day"].mean()
    stability = {}
    for name in combos[0]:
        column = folds[f"param_{name}"]
        stability[name] = {
            "values": column.tolist(),
            "modal": column.mode().iloc[0].item() if len(column) else None,
            "modal_share": float((column == column.mode().iloc[0]).mean()) if len(column) else 0.0,
        }
    summary: dict[str, Any] = {
        "config": config.name,
        "strategy": config.strategy.path,
        "method": settings.method,
        "objective": settings.objective,
        "search": settings.search,
        "seed": settings.seed,
        "parameter_sets": n_sets,
        "folds": len(folds),
        "oos_pnl_total_usd": float(folds["kernel_pnl_total"].sum()),
        "oos_days": int(folds["test_days"].sum()),
        "is_pnl_per_day_usd": float(is_day),
        "oos_pnl_per_day_usd": float(oos_day),
        "degradation_pct": float((1 - oos_day / is_day) * 100) if is_day else None,
        "oos_positive_folds": int((folds["kernel_pnl_total"] > 0).sum()),
        "oos_rank_pct_mean": float(folds["oos_rank_pct"].mean()),
        "parameter_stability": stability,
        "tolerance_usd": str(settings.tolerance_usd),
    }
    if "engine_pnl_total" in folds:
        summary["engine_oos_pnl_total_usd"] = float(folds["engine_pnl_total"].sum())
        summary["engine_max_difference_usd"] = float(folds["engine_max_difference_usd"].max())
        summary["engine_all_within_tolerance"] = bool(folds["engine_within_tolerance"].all())
    return summary


def write_report(result: SweepResult, out_dir: Path) -> None:
    """Write ``results.parquet``, ``folds.parquet``, ``summary.json`` and the plots into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, frame in (("results", result.results), ("folds", result.folds)):
        temporary = out_dir / f".{name}.parquet.tmp"
        frame.to_parquet(temporary, index=False)
        temporary.replace(out_dir / f"{name}.parquet")
    (out_dir / "summary.json").write_text(json.dumps(result.summary, indent=2, default=str) + "\n")
    result.out_dir = out_dir
    result.plots = plot_report(result.folds, result.summary, out_dir)


def plot_report(folds: pd.DataFrame, summary: Mapping[str, Any], out_dir: Path) -> list[Path]:
    """Write in- vs out-of-sample PnL per fold, the picks per fold and kernel vs engine PnL as PNG files."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    figure, axis = plt.subplots(figsize=(8, 4))
    x = np.arange(len(folds))
    axis.bar(x - 0.2, folds["is_pnl_per_day"], 0.4, label="in sample (train)")
    axis.bar(x + 0.2, folds["oos_pnl_per_day"], 0.4, label="out of sample (test)")
    axis.set(
        xlabel="fold",
        ylabel="PnL per day, USD",
        title=f"{summary['config']}: {summary['method']}, pick by {summary['objective']}",
    )
    axis.legend()
    paths.append(_save(figure, out_dir / "is_vs_oos.png"))
    names = [c.removeprefix("param_") for c in folds.columns if c.startswith("param_")]
    figure, axes = plt.subplots(len(names), 1, figsize=(8, 1.6 * len(names)), sharex=True, squeeze=False)
    for axis, name in zip(axes[:, 0], names, strict=True):
        axis.step(x, folds[f"param_{name}"], where="mid", marker="o")
        axis.set_ylabel(name, fontsize=7)
    axes[-1, 0].set_xlabel("fold")
    figure.suptitle("Parameters picked per fold")
    paths.append(_save(figure, out_dir / "stability.png"))
    if "engine_pnl_total" in folds:
        figure, axis = plt.subplots(figsize=(5, 5))
        axis.scatter(folds["kernel_pnl_total"], folds["engine_pnl_total"])
        low = float(min(folds["kernel_pnl_total"].min(), folds["engine_pnl_total"].min()))
        high = float(max(folds["kernel_pnl_total"].max(), folds["engine_pnl_total"].max()))
        axis.plot([low, high], [low, high], linewidth=0.5)
        axis.set(xlabel="kernel OOS PnL, USD", ylabel="engine OOS PnL, USD", title="Kernel vs engine, per fold")
        paths.append(_save(figure, out_dir / "kernel_vs_engine.png"))
    return paths


def _save(figure: Any, path: Path) -> Path:
    import matplotlib.pyplot as plt

    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m research.sweep", description=__doc__.split("\n")[0])
    parser.add_argument("config", type=Path, help="a carry run config (configs/carry_*.toml)")
    parser.add_argument("--method", choices=["walk-forward", "cpcv"], default="walk-forward")
    parser.add_argument("--objective", choices=["pnl_total", "sharpe", "pnl_over_drawdown"], default="pnl_total")
    parser.add_argument("--search", choices=["grid", "random"], default="grid")
    parser.add_argument("--samples", type=int, default=200, help="random search: parameter sets drawn")
    parser.add_argument("--seed", type=int, default=0, help="random search: the seed that makes it reproducible")
    parser.add_argument("--param", action="append", dest="names", help="sweep only these parameters (repeat)")
    parser.add_argument("--train-days", type=int, default=180)
    parser.add_argument("--test-days", type=int, default=90)
    parser.add_argument("--anchored", action="store_true", help="walk-forward: train from the first day on")
    parser.add_argument("--groups", type=int, default=6, help="cpcv: groups the days are cut into")
    parser.add_argument("--test-groups", type=int, default=2, help="cpcv: groups tested per fold")
    parser.add_argument(
        "--holding-hours", type=int, help="purge horizon (default: the largest max_holding_hours swept)"
    )
    parser.add_argument("--start", type=datetime.fromisoformat, help="override the config's start (UTC offset)")
    parser.add_argument("--end", type=datetime.fromisoformat, help="override the config's end (UTC offset)")
    parser.add_argument("--workers", type=int, default=1, help="local processes (1: in this process)")
    parser.add_argument("--ray", dest="ray_address", help="Ray cluster address: auto, or ray://host:10001")
    parser.add_argument(
        "--tolerance", type=Decimal, default=Decimal("0.01"), help="kernel - engine USD per PnL component"
    )
    parser.add_argument("--no-engine-check", action="store_true", help="skip the engine re-runs (not recommended)")
    parser.add_argument("--store", type=Path, default=Path("data/store"), help="the Parquet store the kernel reads")
    parser.add_argument("--catalog", help="the catalog the engine reads (default: the config's)")
    parser.add_argument("--shared", type=Path, help="build a fresh store and catalog from this ../shared/data first")
    parser.add_argument("--out", type=Path, help="report folder (default: runs/sweeps/<config-hash>-<method>)")
    return parser


def settings_from_args(args: argparse.Namespace) -> SweepSettings:
    """Return the ``SweepSettings`` of parsed command-line arguments."""
    return SweepSettings(
        method=args.method,
        train_days=args.train_days,
        test_days=args.test_days,
        anchored=args.anchored,
        groups=args.groups,
        test_groups=args.test_groups,
        search=args.search,
        samples=args.samples,
        seed=args.seed,
        names=tuple(args.names) if args.names else None,
        objective=args.objective,
        holding_hours=args.holding_hours,
        workers=args.workers,
        ray_address=args.ray_address,
        tolerance_usd=args.tolerance,
        engine_check=not args.no_engine_check,
    )


def _windowed(config: RunConfig, start: datetime | None, end: datetime | None) -> RunConfig:
    if start is None and end is None:
        return config
    return with_strategy(config, start=start or config.start, end=end or config.end, params={}, catalog=None)


def main(argv: list[str] | None = None) -> int:
    """Run ``python -m research.sweep``; return 0, 1 on a tolerance failure, 2 on bad input."""
    args = _parser().parse_args(argv)
    try:
        config = _windowed(load_config(args.config), args.start, args.end)
        settings = settings_from_args(args)
        out = args.out or Path("runs") / "sweeps" / f"{config_hash(config)}-{settings.method}"
        with tempfile.TemporaryDirectory(prefix="sweep_data_") as scratch:
            store, catalog = Store(args.store), args.catalog
            if args.shared is not None:
                prepared = _prepare(args.shared, Path(scratch), config)
                store, catalog = prepared.store, str(prepared.catalog)
            result = run_sweep(config, store, settings, out_dir=out, catalog=catalog)
    except ToleranceError as exc:
        print(f"sweep failed the engine check: {exc}", file=sys.stderr)
        return 1
    except (ResearchError, EngineError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({k: v for k, v in result.summary.items() if k != "parameter_stability"}, indent=2))
    print(f"report: {out}")
    return 0


def _prepare(shared: Path, root: Path, config: RunConfig) -> Any:
    from research.shared_data import prepare_shared_data  # imports the datasets pipeline only when asked

    return prepare_shared_data(
        shared,
        root,
        strategy_path=config.strategy.path,
        venues=sorted({v.name for v in config.venues}),
        symbols=sorted({s for v in config.venues for s in v.instruments}),
        start=config.start - timedelta(days=3),
        end=config.end,
    )


if __name__ == "__main__":
    raise SystemExit(main())
