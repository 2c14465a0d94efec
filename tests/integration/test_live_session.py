"""A paper session's files on every way out: the journal closed when the node fails to build or a signal
aborts the start, the old run folder set aside by ``--fresh``, both reports rendered by the CLI.

A hand-made catalog (``tests.kit.live.flat_perp_catalog``): one Binance perp at a flat price, ``RiskHold``
opening one position; each replay takes a second or two.
"""

from __future__ import annotations

import gc
import json
import os
import sqlite3
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest

from engine.backtest import parse_config
from engine.errors import NodeError
from engine.live import run_session
from engine.live import session as session_module
from engine.live.journal import Journal
from engine.live.signals import StartupAborted
from engine.loading import config_hash, load_config
from engine.results.artefacts import renderers
from tests.kit.live import flat_perp_catalog, replay_options, risk_hold_toml

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def flat_catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return flat_perp_catalog(tmp_path_factory.mktemp("session-files"))


def _config_text(catalog: Path) -> str:
    return risk_hold_toml(catalog, name="paper-session-files", end="2024-01-01T12:00:00Z")


def _opened_journals(monkeypatch: pytest.MonkeyPatch) -> list[Journal]:
    opened: list[Journal] = []
    original = Journal.open

    def open_and_remember(path: Path, **kwargs: Any) -> Journal:
        journal = original(path, **kwargs)
        opened.append(journal)
        return journal

    monkeypatch.setattr(Journal, "open", open_and_remember)
    return opened


def _assert_closed(journal: Journal) -> None:
    with pytest.raises(sqlite3.ProgrammingError, match="closed database"):
        journal.connection.execute("SELECT 1")


@pytest.mark.parametrize(
    "failure",
    [NodeError("expected the paper node to build, it failed"), StartupAborted("signal SIGTERM")],
    ids=["node error", "signal during the build"],
)
def test_a_build_failure_after_prepare_closes_the_journal(
    flat_catalog: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failure: BaseException
) -> None:
    """``build_node`` raising after ``prepare()`` opened the journal: the same exception reaches the caller
    (``StartupAborted`` unwrapped: it is a ``BaseException``), the journal is closed, no ResourceWarning."""
    opened = _opened_journals(monkeypatch)

    def failing_build(*args: Any, **kwargs: Any) -> Any:
        raise failure

    monkeypatch.setattr(session_module, "build_node", failing_build)
    config = parse_config(_config_text(flat_catalog).encode())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(type(failure), match=str(failure)):
            run_session(config, replay_options(tmp_path, fresh=True))
        gc.collect()
    assert [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)] == []
    (journal,) = opened
    _assert_closed(journal)
    assert not (tmp_path / "runs").exists()


def test_fresh_sets_the_old_run_folder_aside_instead_of_overwriting_its_sessions(
    flat_catalog: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two sessions, then ``fresh``: the old ``<hash>/`` (session-1, session-2, cumulative) is renamed whole to
    ``<hash>.before-<UTC time>/``; the new journal's session 1 writes a new ``<hash>/``."""
    opened = _opened_journals(monkeypatch)
    config = parse_config(_config_text(flat_catalog).encode())
    first = run_session(config, replay_options(tmp_path, fresh=True))
    second = run_session(config, replay_options(tmp_path))
    assert (first.session, second.session) == (1, 2)
    run_dir = tmp_path / "runs" / first.result.config_hash
    assert run_dir == first.run_dir == second.run_dir
    old_files = {p.relative_to(run_dir): p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}
    assert {p.parts[0] for p in old_files if len(p.parts) > 1} == {"session-1", "session-2"}

    third = run_session(config, replay_options(tmp_path, fresh=True))
    assert third.session == 1
    (aside,) = (tmp_path / "runs").glob(f"{first.result.config_hash}.before-*")
    assert {p.relative_to(aside): p.read_bytes() for p in aside.rglob("*") if p.is_file()} == old_files
    assert sorted(p.name for p in run_dir.glob("session-*")) == ["session-1"]
    assert third.result.stats["sessions"] == 1
    for journal in opened:
        _assert_closed(journal)


@pytest.mark.slow
def test_the_cli_renders_the_session_and_cumulative_reports_and_names_the_journal(
    flat_catalog: Path, tmp_path: Path
) -> None:
    config = tmp_path / "paper.toml"
    config.write_text(_config_text(flat_catalog))
    done = subprocess.run(
        [sys.executable, "-m", "engine.live", str(config), "--replay", "--speed", "0", "--fresh",
         "--out", str(tmp_path / "runs"), "--state-dir", str(tmp_path / "state"), "--log-level", "ERROR"],
        cwd=REPO,
        env={**os.environ},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    (run_dir,) = (tmp_path / "runs").iterdir()
    journal = tmp_path / "state" / run_dir.name / "journal.sqlite"
    assert f"  journal: {journal}" in done.stdout
    assert "  state: " not in done.stdout
    assert f"  session 1: {run_dir / 'session-1'}" in done.stdout
    assert renderers(), "the project is installed (make setup): its HTML renderer is registered"
    assert (run_dir / "report.html").exists()
    assert (run_dir / "session-1" / "report.html").exists()
    digest = config_hash(load_config(config))
    assert run_dir.name == digest
    for folder in (run_dir, run_dir / "session-1"):  # the cumulative run and its session both register
        manifest = json.loads((folder / "run.json").read_text())
        assert (manifest["environment"], manifest["status"], manifest["error"]) == ("paper", "ok", None)
        assert manifest["config_hash"] == digest
        assert manifest["name"] == "paper-session-files"
        assert manifest["code"]["describe"] not in ("", "unknown")
        assert manifest["started_at"] <= manifest["finished_at"]
        assert manifest["input_key"]
