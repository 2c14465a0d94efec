"""``python -m reports.nightly [--config configs/nightly.toml] [--date YYYY-MM-DD] [--no-update]``: one night.

A night, in order:

1. takes ``<reports_dir>/nightly.lock`` (a second night started meanwhile exits 4 at once);
2. ``python -m datasets update`` on the configured store (skipped with a note with ``--no-update``,
   ``update = false``, or when it fails: offline), then ``datasets check --json`` (findings not in
   the previous night's are *new*), ``datasets status --json`` (freshness per series) and
   ``datasets export-catalog`` (deterministic: a series whose rows did not change keeps its bytes);
3. every configured backtest whose input key (config hash, code version, catalog lineage:
   ``engine.results.manifest``) has no successful run in the registry runs, as
   ``python -m engine.backtest`` processes, at most ``parallel`` at once, into
   ``<runs_dir>/nightly-runs/<input key>/``, so a run never overwrites another with other inputs; an
   unchanged one is reused, not re-run;
4. paper and live sessions (``paper_dirs``) that finished since the previous night are collected;
5. everything is registered (``reports.registry``) and one self-contained HTML page is written to
   ``<reports_dir>/<date>/report.html`` beside ``night.json`` (the night's record; the registry's
   ``nights`` come from these files, so they too are rebuilt from disk).

Exit codes: 0 every run ok, 8 a run failed (named on stderr; the report is marked partial), 2 bad
config, 4 another night holds the lock.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import msgspec
import msgspec.toml as msgspec_toml

from engine.errors import EngineError
from engine.loading import config_hash, load_config, with_overrides
from engine.results.manifest import CODE_VERSION_ENV, code_version, config_lineage, input_key
from reports import registry
from reports.nightly_html import render_night

EXIT_FAILED_RUN = 8
EXIT_LOCKED = 4
EXIT_CONFIG = 2
SUBPROCESS_TIMEOUT_SECS = 3600


class NightlyError(Exception):
    """Root of the nightly job's errors."""


class NightLockedError(NightlyError):
    """Another night holds the lock."""


class BacktestEntry(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One configured backtest: its run config (the catalog is the night's)."""

    config: str


class NightlyConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``configs/nightly.toml``: where the data and runs live, what to run, how many at once.

    Attributes
    ----------
    store, catalog : str
        The store to update and check, and the catalog exported from it that the backtests read.
    runs_dir : str
        Registry root; the night's backtests are written below it in ``nightly-runs/``.
    reports_dir : str
        One folder per night (``<date>/night.json``, ``report.html``) and the lock.
    paper_dirs : list[str]
        Folders of paper/live sessions to collect (below ``runs_dir``, or they are registered there too).
    parallel : int
        Backtest processes at once.
    update, export : bool
        Run ``datasets update`` / ``datasets export-catalog`` before the backtests.
    baseline : str
        A pinned run (id or prefix, as ``registry show`` takes) each run is compared with; empty: none.
    backtests : list[BacktestEntry]
    """

    store: str = "data/store"
    catalog: str = "data/catalog"
    runs_dir: str = "runs"
    reports_dir: str = "runs/nightly"
    paper_dirs: list[str] = msgspec.field(default_factory=lambda: ["runs/paper"])
    parallel: int = 2
    update: bool = True
    export: bool = True
    baseline: str = ""
    backtests: list[BacktestEntry] = msgspec.field(default_factory=list)

    def __post_init__(self) -> None:
        if self.parallel < 1:
            raise ValueError(f"parallel: expected >= 1, was {self.parallel}")


def load_nightly_config(path: Path) -> NightlyConfig:
    """Read ``path`` (TOML) into a ``NightlyConfig``.

    Raises
    ------
    NightlyError
        If the file is missing, malformed or has an unknown or mistyped key (the path is named).
    """
    try:
        config: NightlyConfig = msgspec_toml.decode(path.read_bytes(), type=NightlyConfig)
    except OSError as exc:
        raise NightlyError(f"expected a readable nightly config, was {path} ({exc.strerror})") from None
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise NightlyError(f"{path}: {exc}; see configs/nightly.toml") from None
    return config


@dataclass(slots=True)
class RunOutcome:
    """What became of one configured backtest this night."""

    config: str
    name: str = ""
    config_hash: str = ""
    input_key: str = ""
    run_id: str | None = None
    status: str = "ok"  # ok | failed
    action: str = "ran"  # ran | reused | failed
    exit_code: int | None = None
    error: str | None = None
    wall_secs: float = 0.0
    data_changed: bool | None = None


@dataclass(slots=True)
class Night:
    """One night's record (``night.json``)."""

    date: str
    started_at: str
    finished_at: str = ""
    status: str = "ok"  # ok | partial
    notes: list[str] = field(default_factory=list)
    steps: dict[str, dict[str, Any]] = field(default_factory=dict)
    runs: list[RunOutcome] = field(default_factory=list)
    sessions: list[str] = field(default_factory=list)
    findings: list[Any] = field(default_factory=list)
    new_findings: list[Any] = field(default_factory=list)
    freshness: list[Any] = field(default_factory=list)
    previous: str | None = None
    baseline: str | None = None

    def document(self) -> dict[str, Any]:
        """Return the JSON document of the night."""
        return {
            **{k: getattr(self, k) for k in self.__slots__ if k != "runs"},  # type: ignore[attr-defined]
            "runs": [{k: getattr(r, k) for k in r.__slots__} for r in self.runs],  # type: ignore[attr-defined]
        }


@contextmanager
def night_lock(reports_dir: Path) -> Iterator[None]:
    """Hold the nightly lock for the duration of the block.

    Raises
    ------
    NightLockedError
        If another night holds it.
    """
    reports_dir.mkdir(parents=True, exist_ok=True)
    with (reports_dir / "nightly.lock").open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise NightLockedError(
                f"expected no other night to be running, {reports_dir / 'nightly.lock'} is held; wait for it to finish"
            ) from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _python(args: Sequence[str], *, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own CLIs with the running interpreter
        [sys.executable, "-m", *args],
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT_SECS,
        env=env,
        check=False,
    )


def _step(night: Night, name: str, args: Sequence[str]) -> subprocess.CompletedProcess[str]:
    started = time.perf_counter()
    done = _python(args)
    night.steps[name] = {
        "exit_code": done.returncode,
        "wall_secs": round(time.perf_counter() - started, 3),
        "stderr_tail": done.stderr.strip().splitlines()[-3:],
    }
    return done


def _data_steps(config: NightlyConfig, night: Night, *, update: bool, previous: dict[str, Any] | None) -> None:
    store = ["--store", config.store]
    if not update or not config.update:
        night.notes.append("data update skipped (--no-update or update = false)")
    else:
        done = _step(night, "update", ["datasets", "update", *store, "--no-progress"])
        if done.returncode not in (0, 5):
            night.notes.append(f"data update failed (exit {done.returncode}, offline?): the stored data was used")
    checked = _step(night, "check", ["datasets", "check", *store, "--json"])
    night.findings = json.loads(checked.stdout or "[]") if checked.returncode in (0, 5) else []
    known = {json.dumps(f, sort_keys=True) for f in (previous or {}).get("findings", [])}
    night.new_findings = [f for f in night.findings if json.dumps(f, sort_keys=True) not in known]
    status = _step(night, "status", ["datasets", "status", *store, "--json"])
    night.freshness = json.loads(status.stdout or "[]") if status.returncode == 0 else []
    if config.export:
        exported = _step(
            night, "export", ["datasets", "export-catalog", *store, "--catalog", config.catalog, "--no-progress"]
        )
        if exported.returncode != 0:
            night.notes.append(f"catalog export failed (exit {exported.returncode}): the existing catalog was used")


def _known_keys(root: Path) -> dict[str, str]:
    if not registry.registry_file(root).exists():
        return {}
    with registry.connect(root) as connection:
        rows = connection.execute("SELECT input_key, run_id FROM runs WHERE status = 'ok' ORDER BY run_id").fetchall()
    return {str(key): str(run_id) for key, run_id in rows}


def _plan(entry: BacktestEntry, config: NightlyConfig, code: dict[str, Any], known: dict[str, str]) -> RunOutcome:
    outcome = RunOutcome(config=entry.config)
    try:
        run_config = with_overrides(load_config(entry.config), catalog=config.catalog)
    except EngineError as exc:
        outcome.status, outcome.action, outcome.error = "failed", "failed", f"{type(exc).__name__}: {exc}"
        return outcome
    outcome.name = run_config.name
    outcome.config_hash = config_hash(run_config)
    outcome.input_key = input_key(outcome.config_hash, code, config_lineage(run_config)["digest"])
    if outcome.input_key in known:
        outcome.action, outcome.run_id = "reused", known[outcome.input_key]
    return outcome


def _run_one(outcome: RunOutcome, config: NightlyConfig, env: dict[str, str]) -> RunOutcome:
    out_dir = Path(config.runs_dir) / "nightly-runs" / outcome.input_key[:16]
    started = time.perf_counter()
    done = _python(["engine.backtest", outcome.config, "--catalog", config.catalog, "--out", str(out_dir)], env=env)
    outcome.wall_secs = round(time.perf_counter() - started, 3)
    outcome.exit_code = done.returncode
    run_dir = out_dir / outcome.config_hash
    if (run_dir / registry.MANIFEST).exists():
        outcome.run_id = run_dir.resolve().relative_to(Path(config.runs_dir).resolve()).as_posix()
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.startswith("error")] or done.stderr.splitlines()[-3:]
        outcome.status, outcome.action = "failed", "failed"
        outcome.error = f"exit {done.returncode}: {' '.join(lines).strip()}"
    return outcome


def _previous_night(reports_dir: Path, today: str) -> dict[str, Any] | None:
    nights = sorted(p for p in reports_dir.glob("*/night.json") if p.parent.name < today)
    return json.loads(nights[-1].read_text()) if nights else None


def _sessions_since(config: NightlyConfig, since: str | None) -> list[Path]:
    found = []
    for folder in config.paper_dirs:
        for run_dir in registry.run_dirs(Path(folder)) if Path(folder).is_dir() else []:
            manifest = json.loads((run_dir / registry.MANIFEST).read_text())
            if manifest.get("environment") in ("paper", "live") and (since is None or manifest["finished_at"] > since):
                found.append(run_dir)
    return found


def _compare(night: Night, root: Path, previous: dict[str, Any] | None, baseline: str) -> dict[str, Any]:
    before = {r["config"]: r for r in (previous or {}).get("runs", [])}
    comparisons: dict[str, Any] = {}
    for run in night.runs:
        if run.run_id is None:
            continue
        entry: dict[str, Any] = {}
        last = before.get(run.config)
        if last and last.get("run_id"):
            try:
                change = registry.diff(root, last["run_id"], run.run_id)
            except registry.RegistryError:
                change = None
            if change is not None:
                entry["previous"] = change
                run.data_changed = not change["data"]["same"]
        if baseline:
            try:
                entry["baseline"] = registry.diff(root, baseline, run.run_id)
            except registry.RegistryError as exc:
                entry["baseline_error"] = str(exc)
        comparisons[run.config] = entry
    return comparisons


def run_night(config: NightlyConfig, *, day: date, update: bool = True) -> Night:
    """Run one night of ``config`` dated ``day``; return its record (also written to ``night.json``).

    Raises
    ------
    NightLockedError
        If another night is running.
    """
    reports_dir, root = Path(config.reports_dir), Path(config.runs_dir)
    with night_lock(reports_dir):
        night = Night(date=day.isoformat(), started_at=datetime.now(UTC).isoformat())
        previous = _previous_night(reports_dir, night.date)
        night.previous = previous["date"] if previous else None
        _data_steps(config, night, update=update, previous=previous)
        if not registry.registry_file(root).exists():
            registry.rebuild(root)
        code = code_version()
        env = {
            **os.environ,
            CODE_VERSION_ENV: code["describe"] + (f"+{code['diff_sha256'][:12]}" if code["diff_sha256"] else ""),
        }
        pinned = {
            **code,
            "describe": env[CODE_VERSION_ENV],
            "commit": env[CODE_VERSION_ENV],
            "dirty": False,
            "diff_sha256": None,
        }
        known = _known_keys(root)
        plans = [_plan(entry, config, pinned, known) for entry in config.backtests]
        pending = [p for p in plans if p.action == "ran"]
        with ThreadPoolExecutor(max_workers=config.parallel) as pool:
            list(pool.map(lambda p: _run_one(p, config, env), pending))
        failed_dirs = [root / p.run_id for p in plans if p.status == "failed" and p.run_id]
        sessions = _sessions_since(config, previous["started_at"] if previous else None)
        registry.ingest(root, [*failed_dirs, *sessions])
        night.sessions = [s.resolve().relative_to(root.resolve()).as_posix() for s in sessions]
        night.runs = plans
        night.baseline = config.baseline or None
        comparisons = _compare(night, root, previous, config.baseline)
        if any(r.status == "failed" for r in plans):
            night.status = "partial"
        night.finished_at = datetime.now(UTC).isoformat()
        folder = reports_dir / night.date
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "night.json").write_text(json.dumps(night.document(), indent=2, sort_keys=True, default=str) + "\n")
        render_night(folder / "report.html", night=night.document(), comparisons=comparisons, root=root)
    return night


def main(argv: list[str] | None = None) -> int:
    """Run one night from the command line; return the exit code (0 ok, 8 a run failed, 4 locked, 2 config)."""
    parser = argparse.ArgumentParser(prog="python -m reports.nightly", description="Run one night of reports.")
    parser.add_argument("--config", type=Path, default=Path("configs/nightly.toml"))
    parser.add_argument("--date", type=date.fromisoformat, help="the night's date (default: today, UTC)")
    parser.add_argument("--no-update", action="store_true", help="skip `datasets update` (offline)")
    args = parser.parse_args(argv)
    day = args.date or datetime.now(UTC).date()
    try:
        night = run_night(load_nightly_config(args.config), day=day, update=not args.no_update)
    except NightLockedError as exc:
        print(f"error ({type(exc).__name__}): {exc}", file=sys.stderr)
        return EXIT_LOCKED
    except NightlyError as exc:
        print(f"error ({type(exc).__name__}): {exc}", file=sys.stderr)
        return EXIT_CONFIG
    report = Path(load_nightly_config(args.config).reports_dir) / night.date / "report.html"
    ran = sum(r.action == "ran" for r in night.runs)
    reused = sum(r.action == "reused" for r in night.runs)
    print(f"night {night.date}: {night.status}; {ran} ran, {reused} reused; report {report}")
    failed = [r for r in night.runs if r.status == "failed"]
    for run in failed:
        print(f"  failed: {run.name or run.config}: {run.error}", file=sys.stderr)
    return EXIT_FAILED_RUN if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
