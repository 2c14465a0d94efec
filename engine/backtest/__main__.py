"""``python -m engine.backtest CONFIG... [--catalog DIR] [--out DIR] [--start/--end ISO] [--workers N | --ray ADDR]``.

Several configs run side by side, one process each (``--workers``, default the core count), or as
tasks on a Ray cluster (``--ray``, as the sweeps); summaries print in the order the configs were given,
and the artefacts are the same bytes as running them one by one (``engine.backtest.parallel``). A config
listing ``[[pairs]]`` is one run per entry (``engine.batch``), run like separate configs; ``--list``
prints every run (name, config hash, instruments) and exits without running any.

Exit codes (``datasets.exit_codes``): 0 success (limits that cannot bind are warnings: printed and
recorded in ``stats.json`` under ``"warnings"``), 2 bad config (or two runs with one config hash),
3 missing data, 8 engine or strategy failure, 9 accounting mismatch. A run that fails after its config loaded leaves
``<out>/<config-hash>/run.json`` with ``status = "failed"`` and the error (``engine.results.manifest``),
so the run registry lists it.
"""

from __future__ import annotations

import argparse
import sys

from engine.backtest.parallel import RunOutcome, default_workers, run_configs, run_one
from engine.batch import load_runs
from engine.cli import moment, progress
from engine.config import RunConfig
from engine.errors import ConfigError, EngineError, exit_code
from engine.loading import config_hash, with_overrides


def main(argv: list[str] | None = None) -> int:
    """Run every config given and print a summary of each; return the process exit code.

    Every config runs even when one fails; the exit code is that of the first failure, in config order.
    """
    parser = argparse.ArgumentParser(prog="python -m engine.backtest", description="Run config-driven backtests.")
    parser.add_argument("configs", nargs="+", metavar="CONFIG", help="run config TOML file(s)")
    parser.add_argument("--catalog", help="Nautilus catalog directory (overrides data.catalog)")
    parser.add_argument("--out", default="runs", help="directory of run artefacts (default: runs)")
    parser.add_argument("--start", type=moment, help="override start (ISO, UTC offset required)")
    parser.add_argument("--end", type=moment, help="override end (ISO, UTC offset required)")
    parser.add_argument(
        "--workers", type=int, default=default_workers(), help="configs run at once, one process each (default: cores)"
    )
    parser.add_argument("--ray", dest="ray_address", help="run on this Ray cluster instead: auto, or ray://host:10001")
    parser.add_argument(
        "--list", action="store_true", help="print every run (name, config hash, instruments) and exit, running none"
    )
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error(f"--workers: expected >= 1, was {args.workers}")
    try:
        configs = [
            with_overrides(config, catalog=args.catalog, start=args.start, end=args.end)
            for path in args.configs
            for config in load_runs(path)
        ]
        _check_distinct(configs)
    except EngineError as exc:
        print(f"error ({type(exc).__name__}): {exc}", file=sys.stderr)
        return exit_code(exc)
    if args.list:
        for config in configs:
            instruments = " ".join(f"{venue.name}:{symbol}" for venue in config.venues for symbol in venue.instruments)
            print(f"{config.name}  [{config_hash(config)}]  {instruments}")
        return 0
    code = 0
    if args.ray_address or (args.workers > 1 and len(configs) > 1):
        outcomes = run_configs(configs, out_dir=args.out, workers=args.workers, ray_address=args.ray_address)
        for index, outcome in enumerate(outcomes, start=1):
            print(f"[{index}/{len(configs)}] {outcome.name}", file=sys.stderr, flush=True)
            failed = _report(outcome)
            code = code or failed
        return code
    for index, config in enumerate(configs, start=1):
        print(f"[{index}/{len(configs)}] {config.name}", file=sys.stderr, flush=True)
        failed = _report(run_one(config, args.out, progress))
        code = code or failed
    return code


def _check_distinct(configs: list[RunConfig]) -> None:
    # Two runs with one hash would write one run directory at once.
    seen: dict[str, str] = {}
    for config in configs:
        digest = config_hash(config)
        if digest in seen:
            raise ConfigError(
                f"runs {seen[digest]!r} and {config.name!r} are the same run (config hash {digest}); give each once"
            )
        seen[digest] = config.name


def _report(outcome: RunOutcome) -> int:
    if outcome.exit_code:
        print(outcome.error, file=sys.stderr, flush=True)
        return outcome.exit_code
    print(outcome.summary, flush=True)
    for warning in outcome.warnings:  # limits that cannot bind (engine.limits)
        print(f"  warning: {warning}", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
