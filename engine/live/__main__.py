"""``python -m engine.live [--mode paper|live] CONFIG [--replay] [--live] [--dry-run] [--confirm-live HASH] ...``.

Paper is the default. Live needs ``--live``, a config whose venues all say ``environment = "production"``
(or all ``"testnet"``), risk limits that can bind and credentials for every venue; production also
needs the operator's confirmation: typing YES on a terminal, or ``--confirm-live <config hash>`` (the
hash ``--dry-run`` prints) without one (README, "Paper and live trading"). ``--dry-run`` runs every
check, prints the config hash and builds nothing.

SIGINT/SIGTERM are handled from the first instant (``engine.live.signals``): during start-up they abort
it (nothing connected, traded or written; exit 0); once the node runs they stop it gracefully: open
orders are cancelled, positions flattened if configured, state and report written.

Exit codes (``datasets.exit_codes``): 0 ok (also a stop by signal, during start-up or after), 2 bad
config or arguments, 3 missing data, 6 refused by a safety rule (or unsafe/missing credentials),
7 unusable saved state, 8 node or strategy failure, 9 accounting mismatch.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

# Only light imports above the handlers: Nautilus (1-2 s to import) is imported after them, in _run.
from datasets.exit_codes import ExitCode
from engine.cli import moment, progress
from engine.errors import EngineError, exit_code
from engine.live.signals import SignalGate, StartupAborted, interruptible_input

if TYPE_CHECKING:
    from datetime import datetime

    from engine.config import RunConfig
    from engine.live.session import SessionResult


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m engine.live", description="Run a paper or live trading node.")
    parser.add_argument("config", metavar="CONFIG", help="run config TOML (the same file a backtest uses)")
    parser.add_argument("--mode", choices=("paper", "live"), default="paper", help="default: paper")
    parser.add_argument("--live", action="store_true", help="confirm live trading (live mode only)")
    parser.add_argument(
        "--confirm-live",
        metavar="HASH",
        help="confirm a production start without a terminal: the config hash --dry-run prints",
    )
    parser.add_argument("--dry-run", action="store_true", help="run every check, print the config hash, build nothing")
    parser.add_argument("--replay", action="store_true", help="paper only: replay the catalog instead of venue data")
    parser.add_argument("--speed", type=float, help="replay clock acceleration (default live.replay_speed; 0 = max)")
    parser.add_argument("--catalog", help="catalog directory (overrides data.catalog)")
    parser.add_argument("--start", type=moment, help="override start (ISO, UTC offset required)")
    parser.add_argument("--end", type=moment, help="override end (ISO, UTC offset required)")
    parser.add_argument("--out", type=Path, default=Path("runs/paper"), help="artefacts directory (default runs/paper)")
    parser.add_argument("--state-dir", type=Path, help="paper state directory (overrides live.state_dir)")
    parser.add_argument(
        "--fresh",
        action="store_true",
        help="back the journal up and start an empty one (the old run folder is renamed <hash>.before-<time>)",
    )
    parser.add_argument("--secrets", type=Path, help="secrets file (TOML, mode 600) with [venue] api_key/api_secret")
    parser.add_argument("--replay-until", type=moment, help="stop a replay after this historical moment (ISO)")
    parser.add_argument("--duration-secs", type=float, help="stop gracefully after this many seconds")
    parser.add_argument("--flatten-on-stop", action=argparse.BooleanOptionalAction, default=None)
    parser.add_argument("--metrics-port", type=int, help="serve Prometheus metrics on 127.0.0.1:PORT")
    parser.add_argument("--log-level", default="WARNING", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    return parser


def main(
    argv: list[str] | None = None,
    *,
    ask: Callable[[str], str] = interruptible_input,
    interactive: bool | None = None,
) -> int:
    """Run one node from the command line; return the process exit code.

    ``ask`` and ``interactive`` (default: whether stdin is a terminal) are how the operator is asked to
    confirm a production start; tests inject them.
    """
    gate = SignalGate().install()
    redaction = None
    try:
        args = _parser().parse_args(argv)
        from engine.live.logs import configure_logging
        from engine.live.secrets import REDACTOR, install_stdio_redaction

        with gate.held():
            redaction = install_stdio_redaction(REDACTOR)
        configure_logging()
        if interactive is None:
            interactive = sys.stdin is not None and sys.stdin.isatty()
        return _run(args, gate, ask=ask, interactive=interactive)
    except StartupAborted as stopped:
        gate.arm()  # a second signal now is only remembered
        print(f"stopped during start-up ({stopped.reason}): nothing was traded or written", file=sys.stderr)
        return ExitCode.OK
    finally:
        gate.arm()  # finishing: a signal now changes nothing
        if redaction is not None:
            redaction.close()
        gate.restore()


def _run(args: argparse.Namespace, gate: SignalGate, *, ask: Callable[[str], str], interactive: bool) -> int:
    if args.mode == "paper" and (args.live or args.confirm_live is not None):
        flag = "--live" if args.live else "--confirm-live"
        print(f"error: {flag} confirms live trading; it has no meaning with --mode paper", file=sys.stderr)
        return ExitCode.USAGE
    from engine.live.secrets import REDACTOR
    from engine.live.session import SessionOptions, check_session, run_session
    from engine.loading import load_config, with_overrides
    from engine.results.manifest import now

    try:
        config = with_overrides(load_config(args.config), catalog=args.catalog, start=args.start, end=args.end)
        options = SessionOptions(
            mode=args.mode,
            replay=args.replay,
            confirmed_live=args.live,
            interactive=interactive,
            ask=ask,
            confirm_hash=args.confirm_live,
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
            signals=gate,
        )
        if args.dry_run:
            checked = check_session(config, options)
            environments = ", ".join(f"{venue} {env}" for venue, env in checked.environments.items())
            print(f"dry run, {args.mode} mode ({environments}): every check passed; nothing was built")
            for warning in checked.warnings:
                print(f"  warning: {warning}")
            print(f"  config hash: {checked.config_hash}")
            if args.mode == "live" and set(checked.environments.values()) == {"production"}:
                print(f"  start without a terminal: add --confirm-live {checked.config_hash} (same arguments)")
            return 0
        started = now()
        try:
            session = run_session(config, options, progress=progress)
        except EngineError as exc:
            _record_failure(config, args, exc, started)
            raise
    except EngineError as exc:
        print(f"error ({type(exc).__name__}): {REDACTOR.redact(str(exc))}", file=sys.stderr)
        return exit_code(exc)
    _report(session)
    return 0


def _record_failure(config: RunConfig, args: argparse.Namespace, exc: EngineError, started: datetime) -> None:
    # A session that failed while running (exit 8, 9) leaves a manifest beside the sessions
    # (<hash>/failed-<time>), never over the cumulative run's run.json, so the registry lists the failure
    # and keeps the runs before it. A refusal to start (config, data, safety, journal) writes nothing.
    if exit_code(exc) not in (ExitCode.RUN_FAILED, ExitCode.ACCOUNTING):
        return
    from engine.live.secrets import REDACTOR
    from engine.loading import config_hash
    from engine.results.artefacts import write_failure

    error = REDACTOR.redact(f"{type(exc).__name__} (exit {exit_code(exc)}): {exc}")
    folder = f"{config_hash(config)}/failed-{started:%Y%m%dT%H%M%S}"
    write_failure(config, args.out, environment=args.mode, error=error, started_at=started, folder=folder)


def _report(session: SessionResult) -> None:
    from engine.results.artefacts import render_reports
    from engine.results.summary import summarize

    session.result.run_dir = session.run_dir
    for folder in (session.session_dir, session.run_dir):  # this session's report, then the cumulative one
        if folder is not None:
            render_reports(folder)
    print(summarize(session.result), flush=True)
    print(f"  mode: {session.result.stats['mode']}; stopped: {session.stop_reason}", flush=True)
    for warning in session.result.stats.get("warnings", []):
        print(f"  warning: {warning}", flush=True)
    if session.session_dir is not None:
        report = session.session_dir / "report.html"
        shown = f"  (report: {report})" if report.exists() else ""
        print(f"  session {session.session}: {session.session_dir}{shown}", flush=True)
    if session.state_path is not None:
        print(f"  journal: {session.state_path}", flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
