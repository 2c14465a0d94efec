"""Every accidental way to start a live node, through ``python -m engine.live`` in a subprocess.

Each refuses with exit 6 and one ``error (...)`` line, and builds no node: the config points the venue
at a loopback listener that counts connections, and none arrives; the node's ``starting`` log line never
appears; no state or run directory is written. Stdin is a pipe, ``/dev/null`` or a pseudo-terminal, so
the terminal check is the real one. The positive control confirms with the hash ``--dry-run`` printed
and is seen connecting to the listener (then stopped by SIGTERM while it connects: exit 0).

Backtests run the same limit rules as warnings: exit 0, recorded in ``stats.json`` only when there are any.
"""

from __future__ import annotations

import json
import os
import pty
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from engine.loading import config_hash, load_config

REPO = Path(__file__).resolve().parents[2]
KEY = "safetyFAKEapiKEY0123456789abcdef"
SECRET = "safetyFAKEsecretXYZ9876543210fedcba"  # noqa: S105 - a fake key the test hunts for
KEYS = {"CARRYLAB_BINANCE_API_KEY": KEY, "CARRYLAB_BINANCE_API_SECRET": SECRET}


class Listener:
    """A TCP listener on 127.0.0.1 that accepts, counts and closes every connection (any protocol)."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.connections = 0
        self.connected = threading.Event()
        self.thread = threading.Thread(target=self._accept, name="listener", daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.server.accept()
            except OSError:
                return
            self.connections += 1
            self.connected.set()
            connection.close()

    def close(self) -> None:
        self.server.close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    server = Listener()
    yield server
    server.close()


def _config(listener: Listener, *, environment: str | None = "production", venue: str = "", risk: str = "") -> str:
    connection = f'environment = "{environment}"\n' if environment else ""
    return f"""
name = "live-safety-cli"
start = 2024-01-01T00:00:00Z
end = 2024-02-01T00:00:00Z
[data]
bar_spec = "1-MINUTE-LAST-EXTERNAL"
[[venues]]
name = "binance"
instruments = ["BTC-USDT-PERP"]
starting_balances = ["100000 USDT"]
{venue}
[risk.max_notional_per_order]
"binance:BTC-USDT-PERP" = {risk or "5000"}
[strategy]
path = "strategies.demo:FundingShort"
[strategy.params]
instrument_ids = ["binance:BTC-USDT-PERP"]
bar_spec = "1-MINUTE-LAST-EXTERNAL"
notional = "2000"
enter_rate = "0.0002"
exit_rate = "0.0001"
[live.connections.binance]
{connection}base_url_http = "http://127.0.0.1:{listener.port}"
base_url_ws = "ws://127.0.0.1:{listener.port}"
"""


def _command(tmp_path: Path, config: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "engine.live", "--mode", "live", str(config), "--log-level", "INFO",
            "--out", str(tmp_path / "runs"), "--state-dir", str(tmp_path / "state"), *args]  # fmt: skip


def _environ(keys: dict[str, str] | None) -> dict[str, str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CARRYLAB_")}
    return {**environ, **(KEYS if keys is None else keys)}


@contextmanager
def _at_the_prompt(tmp_path: Path, config: Path) -> Iterator[tuple[subprocess.Popen[str], int, str]]:
    # A production start on a pseudo-terminal, read until it asks for YES; yields the process, the
    # terminal's controlling end (what the operator types into) and the output so far.
    controller, terminal = pty.openpty()
    try:
        process = subprocess.Popen(
            _command(tmp_path, config, "--live"),
            cwd=REPO,
            env=_environ(None),
            stdin=terminal,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        os.close(terminal)
        assert process.stdout is not None
        prompt = ""
        while "Type YES to start" not in prompt:
            line = process.stdout.readline()
            assert line, "the node exited before asking"
            prompt += line
        yield process, controller, prompt
    finally:
        os.close(controller)


def _assert_refused(code: int, output: str, listener: Listener, tmp_path: Path, expected: str) -> None:
    assert code == 6, output[-3000:]
    errors = [line for line in output.splitlines() if line.startswith("error (")]
    assert len(errors) == 1, output[-3000:]
    assert expected in output[output.index(errors[0]) :], errors[0]
    assert '"event": "starting"' not in output
    assert listener.connections == 0
    assert not (tmp_path / "state").exists()
    assert not (tmp_path / "runs").exists()
    assert KEY not in output
    assert SECRET not in output


@pytest.mark.parametrize("answer", ["YES\n", "NO\n"], ids=["pipe YES", "pipe NO"])
def test_a_piped_answer_never_confirms_production(tmp_path: Path, listener: Listener, answer: str) -> None:
    config = tmp_path / "live.toml"
    config.write_text(_config(listener))
    done = subprocess.run(
        _command(tmp_path, config, "--live"),
        cwd=REPO,
        env=_environ(None),
        input=answer,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    _assert_refused(done.returncode, done.stdout + done.stderr, listener, tmp_path, "stdin is not a terminal")


@pytest.mark.parametrize(
    ("case", "args", "expected"),
    [
        ("dev/null", ("--live",), "stdin is not a terminal to type YES on; pass --confirm-live"),
        ("paper config", ("--live",), "was paper for binance; this config runs only in --mode paper"),
        ("testnet asking for production", ("--live", "--confirm-live", "HASH"), "was given for a testnet config"),
        ("missing credentials", ("--live", "--confirm-live", "HASH"), "CARRYLAB_BINANCE_API_KEY and CARRYLAB_BIN"),
        ("wrong hash", ("--live", "--confirm-live", "0123456789ab"), "expects the hash of this config"),
        ("limits that cannot bind", ("--live", "--confirm-live", "HASH"), "100000 x 1 = 100000 USDT"),
        # No catalog holds the perp, so its maximum is unknown (engine.limits): leverage above 1 is refused.
        (
            "leverage over the venue maximum",
            ("--live", "--confirm-live", "HASH"),
            "venues[binance].leverage: expected the margin rates of BTC-USDT-PERP",
        ),
        ("short credential", ("--live", "--confirm-live", "HASH"), "CARRYLAB_BINANCE_API_KEY: expected a credential"),
        ("no --live", ("--confirm-live", "HASH"), "expects the explicit --live flag"),
        ("replay", ("--live", "--replay", "--confirm-live", "HASH"), "replay runs only in --mode paper"),
    ],
)
def test_accidental_live_starts_are_refused_with_exit_6_and_no_node(
    tmp_path: Path, listener: Listener, case: str, args: tuple[str, ...], expected: str
) -> None:
    text = {
        "paper config": _config(listener, environment=None),
        "testnet asking for production": _config(listener, environment="testnet"),
        "limits that cannot bind": _config(listener, risk="1e12"),
        "leverage over the venue maximum": _config(listener, venue="leverage = 1000"),
    }.get(case, _config(listener))
    keys = {"missing credentials": {}, "short credential": {**KEYS, "CARRYLAB_BINANCE_API_KEY": "short-key"}}.get(case)
    config = tmp_path / "live.toml"
    config.write_text(text)
    digest = config_hash(load_config(config))
    command = _command(tmp_path, config, *(digest if a == "HASH" else a for a in args))
    done = subprocess.run(
        command,
        cwd=REPO,
        env=_environ(keys),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = done.stdout + done.stderr
    _assert_refused(done.returncode, output, listener, tmp_path, expected)
    assert "short-key" not in output


@pytest.mark.skipif(sys.platform == "win32", reason="pseudo-terminals are POSIX")
@pytest.mark.parametrize(
    ("typed", "expected"),
    [(b"\x04", "to type YES, was end of input"), (b"NO\n", "to type YES, was 'NO'")],
    ids=["end of input", "another word"],
)
def test_on_a_terminal_only_yes_confirms(tmp_path: Path, listener: Listener, typed: bytes, expected: str) -> None:
    config = tmp_path / "live.toml"
    config.write_text(_config(listener))
    with _at_the_prompt(tmp_path, config) as (process, controller, prompt):
        os.write(controller, typed)
        output, _ = process.communicate(timeout=60)
    _assert_refused(process.returncode, prompt + output, listener, tmp_path, expected)


@pytest.mark.skipif(sys.platform == "win32", reason="pseudo-terminals are POSIX")
def test_ctrl_c_at_the_prompt_aborts_the_start_with_exit_0(tmp_path: Path, listener: Listener) -> None:
    config = tmp_path / "live.toml"
    config.write_text(_config(listener))
    with _at_the_prompt(tmp_path, config) as (process, _, _):
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=60)
    assert process.returncode == 0, output[-3000:]
    assert "stopped during start-up (signal SIGINT)" in output
    assert "Traceback" not in output
    assert listener.connections == 0
    assert not (tmp_path / "state").exists()


def test_the_dry_run_hash_confirms_production_and_sigterm_while_connecting_stops_it(
    tmp_path: Path, listener: Listener
) -> None:
    config = tmp_path / "live.toml"
    config.write_text(_config(listener))
    dry = subprocess.run(
        _command(tmp_path, config, "--live", "--dry-run"),
        cwd=REPO,
        env=_environ(None),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert dry.returncode == 0, dry.stderr[-3000:]
    assert listener.connections == 0
    digest = next(line.split()[-1] for line in dry.stdout.splitlines() if "config hash:" in line)
    process = subprocess.Popen(
        _command(tmp_path, config, "--live", "--confirm-live", digest),
        cwd=REPO,
        env=_environ(None),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        # Confirmed: the node connects to the venue (here the listener, which answers nothing useful).
        assert listener.connected.wait(timeout=120)
        process.send_signal(signal.SIGTERM)
        started = time.monotonic()
        output, _ = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, output[-3000:]
    assert "stopped during start-up (signal SIGTERM while the node was starting)" in output
    # Stopped while Nautilus still connects, not after its 60 s readiness timeout.
    assert time.monotonic() - started < 55
    assert not (tmp_path / "runs").exists()


def test_a_backtest_records_limits_that_cannot_bind_as_warnings(tmp_path: Path) -> None:
    from engine.backtest.__main__ import main
    from tests.kit.engine import build_catalog, hourly_bars

    start = __import__("datetime").datetime(2024, 1, 1, tzinfo=__import__("datetime").UTC)
    catalog = build_catalog(tmp_path, bars={("binance", "BTC-USDT-PERP"): hourly_bars(start, ["42000.0"] * 6)})
    body = f"""
name = "limits"
start = 2024-01-01T01:00:00Z
end = 2024-01-01T06:00:00Z
[data]
catalog = "{catalog}"
mark_prices = false
funding = false
[[venues]]
name = "binance"
instruments = ["BTC-USDT-PERP"]
starting_balances = ["10000 USDT"]
[strategy]
path = "tests.kit.engine:Scripted"
[strategy.params]
orders = []
"""
    unbound = tmp_path / "unbound.toml"
    unbound.write_text(body + '[risk.max_notional_per_order]\n"binance:BTC-USDT-PERP" = 1e12\n')
    sane = tmp_path / "sane.toml"
    sane.write_text(body + '[risk.max_notional_per_order]\n"binance:BTC-USDT-PERP" = 5000\n')
    assert main([str(unbound), str(sane), "--out", str(tmp_path / "runs")]) == 0
    unbound_stats = json.loads((tmp_path / "runs" / config_hash(load_config(unbound)) / "stats.json").read_text())
    sane_stats = json.loads((tmp_path / "runs" / config_hash(load_config(sane)) / "stats.json").read_text())
    (warning,) = unbound_stats["warnings"]
    assert warning.startswith('risk.max_notional_per_order["binance:BTC-USDT-PERP"]: expected at most')
    assert "warnings" not in sane_stats


# Secrets with a quote, a backslash and non-ASCII letters: each encoder prints them differently, none unmasked.
AWKWARD = {
    "CARRYLAB_BINANCE_API_KEY": 'awk"ward\\key-ünïcødé-€-0123456789',
    "CARRYLAB_BINANCE_API_SECRET": "sec'ret\\\"quotes-ß-✓-9876543210",
}
LEAK_SCRIPT = """
import json, os, sys
from engine.live.logs import configure_logging, get_logger
from engine.live.secrets import REDACTOR, install_stdio_redaction, load_credentials

redaction = install_stdio_redaction(REDACTOR)
configure_logging()
credentials = load_credentials(["binance"])["binance"]
for value in (credentials.api_key.reveal(), credentials.api_secret.reveal()):
    print(value, json.dumps(value), json.dumps(value, ensure_ascii=False), repr(value), ascii(value), {"k": value})
    print(value.encode("unicode_escape").decode(), file=sys.stderr)
    os.write(1, (repr(value.encode()) + "\\n").encode())  # past Python's streams, as Rust writes
    os.write(2, json.dumps({"line": json.dumps(value)}).encode() + b"\\n")
    get_logger("test").warning(f"leak {value}", value=value, nested={"list": [value]})
    try:
        raise ValueError(value)
    except ValueError:
        get_logger("test").exception("failed")
sys.stdout.flush()
redaction.close()
"""


def _leaked(text: str) -> list[str]:
    # Every form of both values keeps its digit run: finding one means a form slipped through.
    return [run for run in ("0123456789", "9876543210") if run in text]


def test_awkward_secrets_never_reach_stdout_or_stderr_in_any_form() -> None:
    done = subprocess.run(
        [sys.executable, "-c", LEAK_SCRIPT],
        cwd=REPO,
        env=_environ(AWKWARD),
        capture_output=True,
        timeout=120,
        check=False,
    )
    output = (done.stdout + done.stderr).decode("utf-8", errors="replace")
    assert done.returncode == 0, output[-3000:]
    assert output.count("***") >= 20
    assert _leaked(output) == []


def test_awkward_secrets_stay_out_of_the_cli_output(tmp_path: Path, listener: Listener) -> None:
    config = tmp_path / "live.toml"
    config.write_text(_config(listener))
    for args in (("--live", "--dry-run"), ("--live",)):
        done = subprocess.run(
            [*_command(tmp_path, config, *args), "--log-level", "DEBUG"],
            cwd=REPO,
            env=_environ(AWKWARD),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=120,
            check=False,
        )
        output = (done.stdout + done.stderr).decode("utf-8", errors="replace")
        assert done.returncode in (0, 6), output[-3000:]
        assert _leaked(output) == []
    assert listener.connections == 0
