"""``python -m engine.backtest CONFIG... [--catalog DIR] [--out DIR] [--start ISO --end ISO]``.

Exit codes: 0 success, 2 bad config, 3 missing data, 4 engine failure, 5 accounting mismatch.
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime

from engine.backtest.runner import run_backtest
from engine.backtest.summary import summarize
from engine.config import load_config, with_overrides
from engine.errors import AccountingError, ConfigError, EngineError, EngineRunError, MissingDataError

EXIT_CODES: dict[type[EngineError], int] = {
    ConfigError: 2,
    MissingDataError: 3,
    EngineRunError: 4,
    AccountingError: 5,
}


def _moment(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an ISO datetime like 2024-01-01T00:00:00Z, was {text!r}") from None


def _progress(message: str) -> None:
    print(f"  .. {message}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    """Run every config given and print a summary of each; return the process exit code."""
    parser = argparse.ArgumentParser(prog="python -m engine.backtest", description="Run config-driven backtests.")
    parser.add_argument("configs", nargs="+", metavar="CONFIG", help="run config TOML file(s)")
    parser.add_argument("--catalog", help="Nautilus catalog directory (overrides data.catalog)")
    parser.add_argument("--out", default="runs", help="directory of run artefacts (default: runs)")
    parser.add_argument("--start", type=_moment, help="override start (ISO, UTC offset required)")
    parser.add_argument("--end", type=_moment, help="override end (ISO, UTC offset required)")
    args = parser.parse_args(argv)
    try:
        configs = [
            with_overrides(load_config(path), catalog=args.catalog, start=args.start, end=args.end)
            for path in args.configs
        ]
        for index, config in enumerate(configs, start=1):
            print(f"[{index}/{len(configs)}] {config.name}", file=sys.stderr, flush=True)
            result = run_backtest(config, out_dir=args.out, progress=_progress)
            print(summarize(result), flush=True)
    except EngineError as exc:
        kind = type(exc).__name__
        print(f"error ({kind}): {exc}", file=sys.stderr)
        return next((code for cls, code in EXIT_CODES.items() if isinstance(exc, cls)), 1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
