"""``python -m engine.backtest CONFIG... [--catalog DIR] [--out DIR] [--start ISO --end ISO]``.

Exit codes (``datasets.exit_codes``): 0 success (limits that cannot bind are warnings: printed and
recorded in ``stats.json`` under ``"warnings"``), 2 bad config, 3 missing data, 8 engine or strategy
failure, 9 accounting mismatch. A run that fails after its config loaded leaves
``<out>/<config-hash>/run.json`` with ``status = "failed"`` and the error (``engine.results.manifest``),
so the run registry lists it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from engine.backtest.runner import run_backtest
from engine.cli import moment, progress
from engine.errors import EngineError, exit_code
from engine.loading import load_config, with_overrides
from engine.results.artefacts import render_reports, write_failure
from engine.results.manifest import now
from engine.results.summary import summarize


def main(argv: list[str] | None = None) -> int:
    """Run every config given and print a summary of each; return the process exit code."""
    parser = argparse.ArgumentParser(prog="python -m engine.backtest", description="Run config-driven backtests.")
    parser.add_argument("configs", nargs="+", metavar="CONFIG", help="run config TOML file(s)")
    parser.add_argument("--catalog", help="Nautilus catalog directory (overrides data.catalog)")
    parser.add_argument("--out", default="runs", help="directory of run artefacts (default: runs)")
    parser.add_argument("--start", type=moment, help="override start (ISO, UTC offset required)")
    parser.add_argument("--end", type=moment, help="override end (ISO, UTC offset required)")
    args = parser.parse_args(argv)
    try:
        configs = [
            with_overrides(load_config(path), catalog=args.catalog, start=args.start, end=args.end)
            for path in args.configs
        ]
        for index, config in enumerate(configs, start=1):
            print(f"[{index}/{len(configs)}] {config.name}", file=sys.stderr, flush=True)
            started = now()
            try:
                result = run_backtest(config, out_dir=args.out, progress=progress)
            except EngineError as exc:
                error = f"{type(exc).__name__} (exit {exit_code(exc)}): {exc}"
                write_failure(config, Path(args.out), environment="backtest", error=error, started_at=started)
                raise
            if result.run_dir is not None:
                render_reports(result.run_dir)
            print(summarize(result), flush=True)
            for warning in result.stats.get("warnings", []):  # limits that cannot bind (engine.limits)
                print(f"  warning: {warning}", file=sys.stderr, flush=True)
    except EngineError as exc:
        print(f"error ({type(exc).__name__}): {exc}", file=sys.stderr)
        return exit_code(exc)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
