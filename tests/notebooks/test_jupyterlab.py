"""`jupyter lab` started at the repo root, as the README says, serves research/*.py as notebooks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
TOKEN = "carrylab-test-token"  # noqa: S105 - a throwaway token for a loopback server
START_TIMEOUT_SECS = 120


def _get(base_url: str, path: str) -> Any:
    headers = {"Authorization": f"token {TOKEN}"}
    request = urllib.request.Request(f"{base_url}{path}", headers=headers)  # noqa: S310 - http to our loopback
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - as above
        return json.load(response)


def _wait_for_server(process: subprocess.Popen[bytes], runtime_dir: Path, log: Path) -> str:
    deadline = time.monotonic() + START_TIMEOUT_SECS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log.read_text(errors="replace")[-3000:]
            raise AssertionError(f"expected jupyter lab to keep running, it exited with {process.returncode}:\n{tail}")
        info = runtime_dir / f"jpserver-{process.pid}.json"
        if info.is_file():
            try:
                base_url = f"http://127.0.0.1:{json.loads(info.read_text())['port']}"
                _get(base_url, "/api/status")
                return base_url
            except (ValueError, OSError):  # the file is half written, or the server not listening yet
                pass
        time.sleep(0.1)
    raise AssertionError(f"expected jupyter lab to answer within {START_TIMEOUT_SECS} s, it did not; see {log}")


@pytest.fixture(scope="module")
def lab_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    home = tmp_path_factory.mktemp("jupyter")
    # A private config and runtime dir: the user's own Jupyter settings play no part; the venv's do.
    env = {"JUPYTER_CONFIG_DIR": str(home / "config"), "JUPYTER_RUNTIME_DIR": str(home / "runtime")}
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", "--port=0"]
    command += ["--ServerApp.ip=127.0.0.1", f"--IdentityProvider.token={TOKEN}"]
    log = home / "server.log"
    with log.open("wb") as output:
        process = subprocess.Popen(command, cwd=REPO, env={**os.environ, **env}, stdout=output, stderr=output)
    try:
        yield _wait_for_server(process, home / "runtime", log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_lab_serves_a_jupytext_script_as_a_notebook(lab_url: str) -> None:
    model = _get(lab_url, "/api/contents/research/funding_carry.py?type=notebook")
    assert (model["type"], model["format"]) == ("notebook", "json")
    assert model["content"]["metadata"]["kernelspec"]["name"] == "python3"
    first_code = next(cell["source"] for cell in model["content"]["cells"] if cell["cell_type"] == "code")
    assert "from research.carry_vbt import" in first_code


def test_lab_opens_python_files_with_the_notebook_viewer(lab_url: str) -> None:
    settings = _get(lab_url, "/lab/api/settings/@jupyterlab/docmanager-extension:plugin")
    assert settings["schema"]["properties"]["defaultViewers"]["default"]["python"] == "Jupytext Notebook"
