"""``python -m engine.live [--mode paper|live] CONFIG [--replay] [--live] ...``: run a paper or live node.

Paper is the default. Live needs ``--live``, the operator typing YES on a terminal, risk limits in
the config and credentials for every venue (README, "Paper and live trading"). SIGINT/SIGTERM stop the node
gracefully: open orders are cancelled, positions flattened if configured, state and report written.

Exit codes (``datasets.exit_codes``): 0 ok, 2 bad config, 3 missing data, 6 refused by a safety rule
(or unsafe/missing credentials), 7 unusable saved state, 8 node or strategy failure, 9 accounting mismatch.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from datasets.exit_codes import ExitCode
from engine.cli import moment, progress
from engine.errors import EngineError, exit_code
from engine.live.logs import configure_logging
from engine.live.secrets import REDACTOR, install_stdio_redaction
from engine.live.session import SessionOptions, run_session
from engine.loading import load_config, with_overrides
from engine.results.artefacts import render_reports
from engine.results.summary import summarize


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m engine.live", description="Run a paper or live trading node.")
    parser.add_argument("config", metavar="CONFIG", help="run config TOML (the same file a backtest uses)")
    parser.add_argument("--mode", choices=("paper", "live"), default="paper", help="default: paper")
    parser.add_argument("--live", action="store_true", help="confirm live trading with real funds (live mode only)")
    parser.add_argument("--replay", action="store_true", help="paper only: replay the catalog instead of venue data")
    parser.add_argument("--speed", type=float, help="replay clock acceleration (default live.replay_speed; 0 = max)")
    parser.add_argument("--catalog", help="catalog directory (overrides data.catalog)")
    parser.add_argument("--start", type=moment, help="override start (ISO, UTC offset required)")
    parser.add_argument("--end", type=moment, help="override end (ISO, UTC offset required)")
    parser.add_argument("--out", type=Path, default=Path("runs/paper"), help="artefacts directory (default runs/paper)")
    parser.add_argument("--state-dir", type=Path, help="paper state directory (overrides live.state_dir)")
    parser.add_argument("--fresh", action="store_true", help="ignore a saved paper state")
    parser.add_argument("--secrets", type=Path, help="secrets file (TOML, mode 600) with [venue] api_key/api_secret")
    parser.add_argument("--replay-until", type=moment, help="stop a replay after this historical moment (ISO)")
    parser.add_argument("--duration-secs", type=float, help="stop gracefully after this many seconds")
    parser.add_argument("--flatten-on-stop", action=argparse.BooleanOptionalAction, default=None)
    parser.add_argument("--metrics-port", type=int, help="serve Prometheus metrics on 127.0.0.1:PORT")
    parser.add_argument("--log-level", default="WARNING", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one node from the command line; return the process exit code."""
    args = _parser().parse_args(argv)
    redaction = install_stdio_redaction(REDACTOR)
    try:
        configure_logging()
        return _run(args)
    finally:
        redaction.close()


def _run(args: argparse.Namespace) -> int:
    if args.mode == "paper" and args.live:
        print("error: --live confirms live trading; it has no meaning with --mode paper", file=sys.stderr)
        return ExitCode.USAGE
    try:
        config = with_overrides(load_config(args.config), catalog=args.catalog, start=args.start, end=args.end)
        options = SessionOptions(
            mode=args.mode,
            replay=args.replay,
            confirmed_live=args.live,
            interactive=sys.stdin.isatty(),
            secrets_file=args.secrets,
            out_dir=args.out,
            state_dir=args.state_dir,
            speed=args.speed,
            duration_secs=args.duration_secs,
            fresh=args.fresh,
            flatten_on_stop=args.flatten_on_stop,
            metrics_port=args.metrics_port,
            log_level=args.log_level,
            replay_until=args.replay_until,
        )
        session = run_session(config, options, progress=progress)
    except EngineError as exc:
        print(f"error ({type(exc).__name__}): {REDACTOR.redact(str(exc))}", file=sys.stderr)
        return exit_code(exc)
    session.result.run_dir = session.run_dir
    if session.run_dir is not None:
        render_reports(session.run_dir)
    print(summarize(session.result), flush=True)
    print(f"  mode: {session.result.stats['mode']}; stopped: {session.stop_reason}", flush=True)
    if session.state_path is not None:
        print(f"  state: {session.state_path}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
