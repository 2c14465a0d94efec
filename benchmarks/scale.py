"""Full-size histories: the do-nothing floor, the bare-engine carry and the project, on one synthetic catalog.

    .venv/bin/python benchmarks/scale.py [--bars 1000000] [--workers 2] [--rounds 3] [--dir DIR] [--phases ...]

Builds (once per directory and size) a seeded catalog of ``--bars`` one-minute bars in all, spread
over 3 venues (Binance and Bybit: 8-hourly funding; Kraken: hourly) x 3 bases (BTC, ETH, SOL), spot
and perp each, plus a mark price per perp bar and funding on each venue's clock. A run is one
spot-perp pair (9 pairs). Each phase runs the 9 pairs in a fresh process, so its peak RSS is its own;
phases are interleaved over ``--rounds`` rounds and the medians printed:

- ``floor``: a bare ``BacktestEngine`` fed ``catalog.query`` objects (bars shifted 1 ns as the
  project does), with a strategy that subscribes to every stream and does nothing;
- ``bare carry``: the same engine and data with ``strategies.spot_perp_carry:SpotPerpCarry``;
- ``project``: ``engine.backtest.run_backtest`` end to end (catalog load, engine, ledgers, artefacts);
- ``single_config``: ``run_backtest`` of ONE config over all 18 instruments with ``Floor`` (the do-nothing
  strategy): the memory of one run over the whole catalog, which must not grow with ``--bars``; then its
  report (``python -m reports.backtest RUN_DIR`` in a child process: wall time and that process's peak RSS);
- ``parallel``: ``python -m engine.backtest`` on the 9 configs with ``--workers 1`` and ``--workers K``
  (wall time, reports included; peak RSS of the largest process).

"catalog load" is, on both sides, opening the catalog, reading the instruments, building every object
the engine is fed and adding it (the bare side's ``Bar`` re-stamping included; the project's
``catalog_load`` plus ``feed``); building the engine, its venues and instruments is ``engine_build`` on
both, and "engine_run" is ``engine.run`` alone on the bare side, adding the strategy and the runs of
every chunk on the project's.

Printed figures only, never asserted (``benchmarks/`` are not timed tests).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from nautilus_trader.model import BarType, InstrumentId
from nautilus_trader.trading import Strategy, StrategyConfig

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.memory import peak_rss_mib  # noqa: E402
from datasets.catalog import export_catalog  # noqa: E402
from datasets.instruments import spec_in_force  # noqa: E402
from datasets.schemas import FUNDING  # noqa: E402
from datasets.store import Store  # noqa: E402
from datasets.synthetic import SYNTHETIC_SOURCE, synthetic_bars  # noqa: E402
from datasets.testing import write_fixture_instruments  # noqa: E402

START = datetime(2022, 1, 1, tzinfo=UTC)
VENUES = {"binance": ("USDT", 8), "bybit": ("USDT", 8), "kraken": ("USD", 1)}
BASES = {"BTC": 30_000.0, "ETH": 2_000.0, "SOL": 100.0}
BAR_STREAMS = len(VENUES) * len(BASES) * 2
PHASES = ("floor", "bare_carry", "project", "single_config")
PAIR_PHASES = PHASES[:3]


def pairs() -> list[tuple[str, str, str]]:
    """Return ``(venue, spot symbol, perp symbol)`` of every run."""
    return [(v, f"{b}-{q}", f"{b}-{q}-PERP") for v, (q, _) in VENUES.items() for b in BASES]


def minutes_of(bars: int) -> int:
    return max(bars // BAR_STREAMS, 24 * 60 * 3)


def build_catalog(directory: Path, bars: int) -> Path:
    """Write the seeded store and catalog of ``bars`` one-minute bars under ``directory`` (once)."""
    catalog = directory / "catalog"
    if (catalog / "data").is_dir():
        return catalog
    store = Store(directory / "store")
    write_fixture_instruments(store)
    minutes = minutes_of(bars)
    end = START + timedelta(minutes=minutes)
    for seed, (venue, spot, perp) in enumerate(pairs(), start=1):
        tick = str(max(spec_in_force(store, venue, s, START).price_increment for s in (spot, perp)))
        first = BASES[spot.split("-")[0]]
        common: dict[str, Any] = {"venue": venue, "start": START, "tick": tick, "seed": seed}
        frames = [
            synthetic_bars(minutes, symbol=spot, first_price=first, **common),
            synthetic_bars(minutes, symbol=perp, first_price=first * 1.0005, **common),
            synthetic_bars(minutes, symbol=perp, first_price=first * 1.0004, price_type="mark", **common),
        ]
        store.write("ohlcv", pl.concat(frames).drop("_row").with_row_index("_row"), SYNTHETIC_SOURCE)
        hours = VENUES[venue][1]
        settlements = pl.datetime_range(START + timedelta(hours=hours), end, f"{hours}h", eager=True, time_unit="ns")
        rng = np.random.default_rng(100 + seed)
        # A regime that switches every few days between paying carry and not, so the carry enters and exits.
        regime = np.repeat(rng.choice([0.0004, -0.00005, 0.0001], size=settlements.len() // 8 + 1), 8)
        rates = regime[: settlements.len()] * hours / 8 + rng.normal(0, 0.00002, settlements.len())
        funding = (
            pl.DataFrame({"ts": settlements.cast(pl.Datetime("ns", "UTC")), "rate": [f"{r:.6f}" for r in rates]})
            .with_row_index("_row")
            .select(
                pl.lit(venue).alias("venue"),
                pl.lit(perp).alias("symbol"),
                "ts",
                pl.col("rate").cast(pl.Decimal(38, 18)),
                pl.lit(f"{hours}h").alias("interval"),
                *(pl.lit(None, dtype=pl.Decimal(38, 18)).alias(c) for c in ("mark_price", "index_price", "premium")),
                pl.col("_row").cast(pl.Int64),
            )
            .select(*FUNDING.columns, "_row")
        )
        store.write("funding", funding, SYNTHETIC_SOURCE)
    export_catalog(store, catalog)
    return catalog


def _header(name: str, catalog: Path, bars: int) -> str:
    # The run window (from the first settlement to the last bar) and the data every run reads.
    end = START + timedelta(minutes=minutes_of(bars))
    return f"""
name = "{name}"
start = {(START + timedelta(hours=8)).isoformat().replace("+00:00", "Z")}
end = {end.isoformat().replace("+00:00", "Z")}
[data]
catalog = "{catalog}"
bar_spec = "1-MINUTE-LAST-EXTERNAL"
mark_prices = true
funding = true"""


def config_text(catalog: Path, bars: int, venue: str, spot: str, perp: str) -> str:
    quote, hours = VENUES[venue]
    return (
        _header(f"scale-{venue}-{spot}", catalog, bars)
        + f"""
[[venues]]
name = "{venue}"
instruments = ["{spot}", "{perp}"]
starting_balances = ["1000000 {quote}"]
account_type = "margin"
leverage = 3
funding_interval = "{hours}h"
[fill]
slippage_bps = 1
[risk]
max_order_submit_rate = "1000/00:00:01"
[strategy]
path = "strategies.spot_perp_carry:SpotPerpCarry"
[strategy.params]
spot_id = "{venue}:{spot}"
perp_id = "{venue}:{perp}"
notional = "20000"
entry_apr = "0.15"
exit_apr = "0.03"
lookback_settlements = 3
max_holding_hours = 720
[strategy.params.risk]
max_total_exposure_usd = 100000
max_leverage = {{ {venue.upper()} = 2 }}
daily_loss_limit_usd = 20000
max_drawdown_pct = 30
max_price_age_secs = 600
max_funding_age_secs = {hours * 3600 + 900}
"""
    )


def single_config_text(catalog: Path, bars: int) -> str:
    """Return one run config over every pair's instruments (3 venues x 6) with ``Floor``: the memory of one big run."""
    from engine.loading import instrument_id_for

    spots = [str(instrument_id_for(venue, spot)) for venue, spot, _ in pairs()]
    perp_ids = [str(instrument_id_for(venue, perp)) for venue, _, perp in pairs()]
    bar_types = ", ".join(f'"{i}-1-MINUTE-LAST-EXTERNAL"' for i in [*spots, *perp_ids])
    perps = ", ".join(f'"{i}"' for i in perp_ids)
    venues = "".join(
        f"""
[[venues]]
name = "{venue}"
instruments = [{", ".join(f'"{s}", "{p}"' for v, s, p in pairs() if v == venue)}]
starting_balances = ["1000000 {quote}"]
account_type = "margin"
funding_interval = "{hours}h"
"""
        for venue, (quote, hours) in VENUES.items()
    )
    return (
        _header("scale-single-config", catalog, bars)
        + f"""
{venues}
[strategy]
path = "benchmarks.scale:Floor"
[strategy.params]
bar_types = [{bar_types}]
perps = [{perps}]
"""
    )


def configs(catalog: Path, bars: int) -> list[Any]:
    from engine.backtest import parse_config

    return [parse_config(config_text(catalog, bars, *pair).encode()) for pair in pairs()]


def bare_run(config: Any, *, carry: bool) -> dict[str, float]:
    """Run ``config`` on a bare ``BacktestEngine`` fed ``catalog.query`` objects; return its timings."""
    from nautilus_trader.backtest import BacktestEngine, BacktestEngineConfig
    from nautilus_trader.common import LoggerConfig, LogLevel
    from nautilus_trader.model import Bar, NautilusDataType, TraderId
    from nautilus_trader.persistence import ParquetDataCatalog

    from datasets.symbols import market_of
    from engine.fill import SlippageFillModel
    from engine.loading import instrument_id_for, load_strategy
    from engine.run_data import LOOKBACK, ns_of
    from engine.venue_models import build_venue_models

    models = build_venue_models(config)
    engine_config = BacktestEngineConfig(
        trader_id=TraderId("BENCH-001"), logging=LoggerConfig(stdout_level=LogLevel.ERROR)
    )
    built = time.perf_counter()
    engine = BacktestEngine(engine_config)
    for model in models:
        engine.add_venue(
            model.venue,
            model.oms_type,
            model.account_type,
            list(model.starting_balances),
            default_leverage=model.leverage,
            fill_model=SlippageFillModel(config.fill.slippage_bps),
            fee_model=model.fee_model(),
            bar_execution=True,
        )
    built = time.perf_counter() - built
    # The load, as the project's catalog_load + feed: open the catalog, read the instruments, build every
    # object the engine is fed (bars re-stamped 1 ns later, as the project feeds them) and add it.
    started = time.perf_counter()
    catalog = ParquetDataCatalog(str(config.data.catalog))
    start_ns, end_ns = ns_of(config.start), ns_of(config.end) - 1
    bar_types = [f"{i}-{config.data.bar_spec}" for i in _instrument_ids(config)]
    perp = [str(instrument_id_for(v.name, s)) for v in config.venues for s in v.instruments if market_of(s) == "perp"]
    instruments = catalog.instruments(instrument_ids=[str(i) for i in _instrument_ids(config)])
    objects: list[Any] = [
        Bar(b.bar_type, b.open, b.high, b.low, b.close, b.volume, b.ts_event, b.ts_init + 1)
        for b in catalog.query(NautilusDataType.Bar, bar_types, start=start_ns, end=end_ns)
    ]
    lookback = ns_of(config.start - LOOKBACK)
    objects += catalog.query(NautilusDataType.MarkPriceUpdate, perp, start=lookback, end=end_ns)
    # The updates of the window's settlements, as the project keeps (engine.run_data): both see the same funding.
    objects += [
        u
        for u in catalog.query(NautilusDataType.FundingRateUpdate, perp, start=lookback, end=end_ns)
        if u.next_funding_ns is not None and start_ns < u.next_funding_ns < end_ns + 1
    ]
    adding = time.perf_counter()
    for instrument in instruments:
        engine.add_instrument(instrument)
    adding = time.perf_counter() - adding
    built += adding  # the project adds its instruments while it builds the engine
    engine.add_data(objects, sort=True)
    loaded = time.perf_counter() - started - adding
    if carry:
        strategy = load_strategy(config).create(lambda s: s)
    else:
        strategy = Floor(FloorConfig(bar_types=bar_types, perps=perp))
    engine.add_strategy(strategy)
    started = time.perf_counter()
    engine.run()
    ran = time.perf_counter() - started
    orders = len(engine.cache.orders())
    engine.dispose()
    del engine, strategy, objects
    return {"catalog_load": loaded, "engine_build": built, "engine_run": ran, "orders": orders}


def _instrument_ids(config: Any) -> list[Any]:
    from engine.loading import instrument_id_for

    return [instrument_id_for(v.name, s) for v in config.venues for s in v.instruments]


class FloorConfig(StrategyConfig):  # type: ignore[misc]
    """Parameters of ``Floor``: the bar types and the perps (funding and marks) it subscribes to."""

    def __init__(self, bar_types: list[str], perps: list[str]) -> None:
        super().__init__()
        self.bar_types = list(bar_types)
        self.perps = list(perps)


class Floor(Strategy):  # type: ignore[misc]
    """Subscribe to every stream and do nothing: the engine's own cost (``path = "benchmarks.scale:Floor"``)."""

    def __init__(self, config: FloorConfig) -> None:
        super().__init__(config)
        self.streams = config

    def on_start(self) -> None:
        for bar_type in self.streams.bar_types:
            self.subscribe_bars(BarType.from_str(bar_type))
        for perp in self.streams.perps:
            self.subscribe_funding_rates(InstrumentId.from_str(perp))
            self.subscribe_mark_prices(InstrumentId.from_str(perp))

    def on_bar(self, bar: Any) -> None:
        return None


def project_run(config: Any, out_dir: Path, chunk_bars: int | None) -> dict[str, float]:
    from engine.backtest import run_backtest

    options: dict[str, Any] = {"chunk_bars": chunk_bars} if chunk_bars is not None else {}
    result = run_backtest(config, out_dir=out_dir, **options)
    timings = dict(result.timings_secs)
    # Building the chunks' objects (and adding them) is part of loading the data.
    timings["catalog_load"] = timings.get("catalog_load", 0.0) + timings.pop("feed", 0.0)
    return {**timings, "orders": float(result.stats["orders"])}


def phase(name: str, directory: Path, bars: int, chunk_bars: int | None = None) -> dict[str, Any]:
    """Run one phase in this process (every pair, or the single config); return summed timings and peak RSS."""
    from engine.backtest import parse_config
    from engine.loading import config_hash

    catalog = build_catalog(directory, bars)
    totals: dict[str, float] = {}
    if name == "single_config":
        config = parse_config(single_config_text(catalog, bars).encode())
        runs = [project_run(config, directory / "runs", chunk_bars)]
        runs[0]["report"], runs[0]["report_peak_rss_mib"] = report_step(directory / "runs" / config_hash(config))
    elif name == "project":
        runs = [project_run(config, directory / "runs", chunk_bars) for config in configs(catalog, bars)]
    else:
        runs = [bare_run(config, carry=name == "bare_carry") for config in configs(catalog, bars)]
    for timings in runs:
        for key, value in timings.items():
            totals[key] = totals.get(key, 0.0) + value
    totals["peak_rss_mib"] = peak_rss_mib()
    return totals


def cli_wall(directory: Path, bars: int, workers: int) -> tuple[float, float]:
    """Return the wall time and the largest process's peak RSS (MiB) of ``python -m engine.backtest`` on every pair."""
    catalog = build_catalog(directory, bars)
    folder = directory / "configs"
    folder.mkdir(exist_ok=True)
    paths = []
    for venue, spot, perp in pairs():
        path = folder / f"{venue}-{spot}.toml"
        path.write_text(config_text(catalog, bars, venue, spot, perp))
        paths.append(str(path))
    out = directory / f"runs-cli-{workers}"
    command = [sys.executable, "-m", "engine.backtest", *paths, "--out", str(out), "--workers", str(workers)]
    return _children_wall_rss(command)


def report_step(run_dir: Path) -> tuple[float, float]:
    """Return the wall time and peak RSS (MiB) of ``python -m reports.backtest run_dir`` (the report step alone)."""
    return _children_wall_rss([sys.executable, "-m", "reports.backtest", str(run_dir)])


def _children_wall_rss(command: list[str]) -> tuple[float, float]:
    # A wrapper process whose children are the command and its workers: its RUSAGE_CHILDREN is theirs alone.
    wrapper = (
        "import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, capture_output=True); "
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", wrapper, *command], check=True, capture_output=True, text=True, cwd=REPO
    )
    return time.perf_counter() - started, int(done.stdout.split()[-1]) / 1024


def _subprocess(name: str, directory: Path, bars: int, chunk_bars: int | None) -> dict[str, Any]:
    wall = time.perf_counter()
    chunking = ["--chunk-bars", str(chunk_bars)] if chunk_bars is not None else []
    out = subprocess.run(
        [sys.executable, __file__, "--phase", name, "--bars", str(bars), "--dir", str(directory), *chunking],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    result["wall"] = time.perf_counter() - wall
    return result


def _load() -> str:
    path = Path("/proc/loadavg")
    return "/".join(path.read_text().split()[:3]) if path.exists() else "n/a"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bars", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=None)
    parser.add_argument("--chunk-bars", type=int, default=None, help="bar intervals per chunk fed to the engine")
    parser.add_argument(
        "--phases",
        default=",".join([*PHASES, "parallel"]),
        help="comma-separated phases to run (default: all): floor, bare_carry, project, single_config, parallel",
    )
    parser.add_argument("--phase", choices=PHASES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    directory = args.dir or Path(tempfile.gettempdir()) / f"bench-scale-{args.bars}"
    directory.mkdir(parents=True, exist_ok=True)
    if args.phase:
        print(json.dumps(phase(args.phase, directory, args.bars, args.chunk_bars)))
        return
    chosen = [name.strip() for name in args.phases.split(",") if name.strip()]
    started = time.perf_counter()
    build_catalog(directory, args.bars)
    minutes = minutes_of(args.bars)
    print(
        f"catalog ready in {time.perf_counter() - started:.1f} s: {minutes * BAR_STREAMS:,} bars "
        f"({minutes:,} per stream x {BAR_STREAMS} streams), {len(pairs())} spot-perp runs; "
        f"{_disk_mib(directory):,.0f} MiB on disk (store and catalog)"
    )
    names = [name for name in PHASES if name in chosen]
    samples: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    loads = []
    for _ in range(args.rounds):
        for name in names:
            loads.append(_load())
            samples[name].append(_subprocess(name, directory, args.bars, args.chunk_bars))
    median = {name: {key: statistics.median(s[key] for s in runs) for key in runs[0]} for name, runs in samples.items()}
    bars = minutes * BAR_STREAMS
    for name in names:
        m = median[name]
        print(
            f"{name:<13} catalog_load {m['catalog_load']:7.2f} s  engine_run {m['engine_run']:7.2f} s "
            f"({bars / m['engine_run']:>9,.0f} bars/s)  wall {m['wall']:7.2f} s  orders {m['orders']:,.0f}  "
            f"peak RSS {m['peak_rss_mib']:,.0f} MiB"
            + (f"; report {m['report']:.2f} s, peak RSS {m['report_peak_rss_mib']:,.0f} MiB" if "report" in m else "")
        )
    if all(name in median for name in PAIR_PHASES):
        _ratios(median)
    if "parallel" in chosen:
        walls = {}
        for workers in (1, args.workers):
            loads.append(_load())
            walls[workers] = cli_wall(directory, args.bars, workers)
        for workers, (wall, rss) in walls.items():
            print(f"parallel --workers {workers}: wall {wall:.2f} s, peak RSS {rss:,.0f} MiB (largest process)")
        print(
            f"python -m engine.backtest on the {len(pairs())} configs (config -> artefacts -> reports): "
            f"--workers 1 {walls[1][0]:.2f} s, --workers {args.workers} {walls[args.workers][0]:.2f} s wall "
            f"({walls[1][0] / walls[args.workers][0]:.2f}x)"
        )
    print(f"load averages at each phase start: {' '.join(loads)}")


def _ratios(median: dict[str, dict[str, float]]) -> None:
    floor, carry, project = median["floor"], median["bare_carry"], median["project"]
    print(f"ratio bare carry / floor (engine_run): {carry['engine_run'] / floor['engine_run']:.2f}x")
    print(f"ratio project / bare carry (engine_run): {project['engine_run'] / carry['engine_run']:.2f}x")
    print(f"ratio project / floor (engine_run): {project['engine_run'] / floor['engine_run']:.2f}x")
    # Both sides: open the catalog, read the instruments, build every object fed and add it to the engine.
    print(
        f"ratio project / bare catalog load: {project['catalog_load'] / carry['catalog_load']:.2f}x "
        f"(bare carry's; floor's {project['catalog_load'] / floor['catalog_load']:.2f}x)"
    )
    stages = ("catalog_load", "engine_build", "engine_run", "ledgers", "artefacts")
    ends = {name: sum(median[name].get(k, 0.0) for k in stages) for name in PAIR_PHASES}
    print(
        "ratio project / bare carry (end to end: load, build, run, ledgers, artefacts): "
        f"{ends['project'] / ends['bare_carry']:.2f}x"
    )
    extra = {k: v for k, v in project.items() if k in ("engine_build", "ledgers", "artefacts")}
    print(f"bare carry engine_build {carry.get('engine_build', 0.0):.2f} s")
    print("project also: " + ", ".join(f"{k} {v:.2f} s" for k, v in extra.items()))


def _disk_mib(directory: Path) -> float:
    return (
        sum(p.stat().st_size for folder in ("store", "catalog") for p in (directory / folder).rglob("*") if p.is_file())
        / 2**20
    )


if __name__ == "__main__":
    main()
