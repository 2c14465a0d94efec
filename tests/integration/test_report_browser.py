"""The HTML reports in a real headless Chromium: key sections render, no network, no console errors.

Chromium is driven over the DevTools protocol (``--remote-debugging-port=0`` and a ``websockets``
client): every request the page makes is seen (``Network.requestWillBeSent``), every console message
and uncaught exception too, and the screenshot comes from ``Page.captureScreenshot``. Host names resolve
to nothing (``--host-resolver-rules``), so a stray CDN reference fails to load rather than leaking.
On CI (``CI`` set) a missing ``chromium`` fails the test (``.ci/run`` installs Debian's package);
elsewhere it skips with how to install it.
"""

from __future__ import annotations

import base64
import json
import os
import queue
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.client import ClientConnection, connect

from datasets.store import Store
from datasets.synthetic import SyntheticSpec, write_synthetic_store
from reports import nightly

TIMEOUT_SECS = 60.0
RUN_CONFIG = """
name = "browser-btc-short"
start = 2024-01-02T00:00:00Z
end = 2024-01-09T00:00:00Z

[data]
catalog = "unused"

[[venues]]
name = "binance"
instruments = ["BTC-USDT-PERP"]
starting_balances = ["100000 USDT"]
leverage = 2

[strategy]
path = "strategies.demo:FundingShort"
[strategy.params]
instrument_ids = ["binance:BTC-USDT-PERP"]
notional = "20000"
enter_rate = "0.00003"
exit_rate = "0"
"""


def chromium_binary() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        message = "chromium not found: install Debian's package (apt-get install -y chromium), as .ci/run does"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return found


@dataclass
class Page:
    """One browser tab over DevTools: commands, and the events seen so far."""

    socket: ClientConnection
    session_id: str
    events: list[dict[str, Any]] = field(default_factory=list)
    replies: dict[int, dict[str, Any]] = field(default_factory=dict)
    next_id: int = 0

    def _pump(self, deadline: float) -> None:
        message = json.loads(self.socket.recv(timeout=max(deadline - time.monotonic(), 0.01)))
        if "id" in message:
            self.replies[message["id"]] = message
        else:
            self.events.append(message)

    def send(self, method: str, params: dict[str, Any] | None = None, *, session: bool = True) -> dict[str, Any]:
        self.next_id += 1
        message: dict[str, Any] = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = self.session_id
        self.socket.send(json.dumps(message))
        deadline = time.monotonic() + TIMEOUT_SECS
        while self.next_id not in self.replies:
            self._pump(deadline)
        reply = self.replies.pop(self.next_id)
        assert "error" not in reply, f"{method} failed: {reply['error']}"
        return dict(reply.get("result", {}))

    def wait_for_event(self, method: str) -> dict[str, Any]:
        deadline = time.monotonic() + TIMEOUT_SECS
        while True:
            for event in self.events:
                if event["method"] == method:
                    return event
            self._pump(deadline)

    def evaluate(self, expression: str) -> Any:
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        assert "exceptionDetails" not in result, result
        return result["result"].get("value")

    def wait_until(self, expression: str) -> None:
        deadline = time.monotonic() + TIMEOUT_SECS
        while not self.evaluate(expression):
            if time.monotonic() > deadline:
                pytest.fail(f"timed out after {TIMEOUT_SECS} s waiting for {expression}")
            self.send(
                "Runtime.evaluate", {"expression": "new Promise(r => requestAnimationFrame(r))", "awaitPromise": True}
            )

    def methods(self, method: str) -> list[dict[str, Any]]:
        return [event["params"] for event in self.events if event["method"] == method]


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[ClientConnection]:
    binary = chromium_binary()
    process = subprocess.Popen(
        [
            binary,
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-extensions",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--host-resolver-rules=MAP * ~NOTFOUND",
            "--window-size=1280,2000",
            f"--user-data-dir={tmp_path / 'chromium-profile'}",
            "--remote-debugging-port=0",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(line) for line in process.stderr or []], daemon=True)
    reader.start()
    url = None
    deadline = time.monotonic() + TIMEOUT_SECS
    seen: list[str] = []
    while url is None:
        try:
            line = lines.get(timeout=max(deadline - time.monotonic(), 0.01))
        except queue.Empty:
            process.kill()
            process.wait()
            pytest.fail(f"chromium printed no DevTools address within {TIMEOUT_SECS} s: {''.join(seen)}")
        seen.append(line)
        if line.startswith("DevTools listening on "):
            url = line.removeprefix("DevTools listening on ").strip()
    try:
        with connect(url, max_size=None, open_timeout=TIMEOUT_SECS) as socket:
            yield socket
    finally:
        process.terminate()
        try:
            process.wait(timeout=TIMEOUT_SECS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        reader.join(timeout=TIMEOUT_SECS)
        process.stderr.close()


def open_page(socket: ClientConnection, path: Path) -> Page:
    page = Page(socket, session_id="")
    target = page.send("Target.createTarget", {"url": "about:blank"}, session=False)["targetId"]
    page.session_id = page.send("Target.attachToTarget", {"targetId": target, "flatten": True}, session=False)[
        "sessionId"
    ]
    for domain in ("Page", "Network", "Runtime", "Log"):
        page.send(f"{domain}.enable")
    page.send("Page.navigate", {"url": path.resolve().as_uri()})
    page.wait_for_event("Page.loadEventFired")
    return page


def assert_offline_and_clean(page: Page) -> None:
    urls = [event["request"]["url"] for event in page.methods("Network.requestWillBeSent")]
    assert urls, "DevTools reported no request at all: the page did not load"
    assert [u for u in urls if not u.startswith(("file://", "data:", "about:"))] == []
    console_errors = [e for e in page.methods("Runtime.consoleAPICalled") if e["type"] in ("error", "assert")]
    assert console_errors == []
    assert page.methods("Runtime.exceptionThrown") == []
    assert [e["entry"] for e in page.methods("Log.entryAdded") if e["entry"]["level"] == "error"] == []


def screenshot(page: Page, path: Path) -> None:
    data = base64.b64decode(
        page.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})["data"]
    )
    path.write_bytes(data)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 20_000  # a blank 1280 px page compresses to a few kB


@pytest.fixture(scope="module")
def night(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Run one night on a small synthetic store; return (a run report, the nightly report)."""
    root = tmp_path_factory.mktemp("browser")
    write_synthetic_store(Store(root / "store"), SyntheticSpec(hours=24 * 10))
    (root / "btc.toml").write_text(RUN_CONFIG)
    config = root / "nightly.toml"
    config.write_text(
        f'store = "{root / "store"}"\ncatalog = "{root / "catalog"}"\nruns_dir = "{root / "runs"}"\n'
        f'reports_dir = "{root / "runs" / "nightly"}"\npaper_dirs = []\nparallel = 1\nupdate = false\n'
        f'\n[[backtests]]\nconfig = "{root / "btc.toml"}"\n'
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CARRYLAB_CODE_VERSION", "test-browser")
        assert nightly.main(["--config", str(config), "--date", "2024-06-01"]) == 0
    (run_report,) = (root / "runs" / "nightly-runs").glob("*/*/report.html")
    return run_report, root / "runs" / "nightly" / "2024-06-01" / "report.html"


def test_run_report_renders_offline_with_no_console_errors(
    browser: ClientConnection, night: tuple[Path, Path], tmp_path: Path
) -> None:
    page = open_page(browser, night[0])
    page.wait_until("document.querySelector('#figure-0 svg.main-svg') !== null")
    assert page.evaluate("document.title").startswith("Backtest browser-btc-short")
    headline = page.evaluate("[...document.querySelectorAll('table')].map(t => t.innerText).join('\\n')")
    assert "pnl_total" in headline
    assert page.evaluate("document.querySelector('#tearsheet h2')?.innerText") == "Tearsheet"
    assert page.evaluate("document.querySelectorAll('#tearsheet table').length") > 0
    assert page.evaluate("document.querySelectorAll('.plotly-graph-div svg.main-svg').length") >= 4
    screenshot(page, tmp_path / "run-report.png")
    assert_offline_and_clean(page)


def test_nightly_report_renders_offline_with_no_console_errors(
    browser: ClientConnection, night: tuple[Path, Path], tmp_path: Path
) -> None:
    page = open_page(browser, night[1])
    page.wait_until("document.querySelector('#equity svg.main-svg') !== null")
    for section in ("steps", "failed", "equity-section", "freshness", "runs"):
        assert page.evaluate(f"document.getElementById('{section}') !== null"), section
    assert "browser-btc-short" in page.evaluate("document.getElementById('runs').innerText")
    screenshot(page, tmp_path / "nightly-report.png")
    assert_offline_and_clean(page)
