"""The bad-input corpus (``tests/kit/corpus.py``) against a store that already holds good real data.

Each case asserts its exit code; a refused case also asserts that its message names what is wrong
(file, line or record, field) and that no byte of the store changed. The session prints how many cases
were tried, refused clearly and accepted, per importer.
"""

from __future__ import annotations

import hashlib
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from datasets.cli import main
from datasets.exit_codes import ExitCode
from tests.kit.corpus import BASE_INPUTS, Case, Tally, case_id, cases

CASES = cases()


@pytest.fixture(scope="module")
def tally(request: pytest.FixtureRequest) -> Iterator[Tally]:
    counts = Tally()
    yield counts
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and capture is not None:
        with capture.global_and_fixture_disabled():
            reporter.write_line("")
            for line in counts.lines():
                reporter.write_line(line)


@pytest.fixture(scope="module")
def good_store(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    store = tmp_path_factory.mktemp("corpus") / "store"
    paths = [str(shared_data / name) for name in BASE_INPUTS]
    assert main(["import", *paths, "--store", str(store), "--no-progress"]) == ExitCode.OK
    return store


def _hashes(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _run(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exited:  # argparse refuses bad arguments with exit 2
        return int(exited.code or 0)


def test_corpus_has_at_least_80_distinct_bad_inputs_and_some_legitimate_ones() -> None:
    refused = [c for c in CASES if not c.accepted]
    assert len(refused) >= 80, f"expected at least 80 bad inputs, was {len(refused)}"
    assert len([c for c in CASES if c.accepted]) >= 5


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_bad_input_gets_its_exit_code_a_clear_message_and_leaves_the_store_unchanged(
    case: Case,
    shared_data: Path,
    good_store: Path,
    tmp_path: Path,
    tally: Tally,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    store = tmp_path / "store"
    shutil.copytree(good_store, store)
    work = tmp_path / "inputs"
    work.mkdir()
    if case.prepare is not None:
        case.prepare(store)
    argv = [*case.build(shared_data, work), "--store", str(store)]
    if argv[0] == "import":
        argv.append("--no-progress")
    before = _hashes(store)
    if case.patch is not None:
        case.patch(monkeypatch)
    code = _run(argv)
    monkeypatch.undo()
    err = capsys.readouterr().err
    assert code == case.code, f"expected exit {case.code.value}, was {code}: {err}"
    assert "Traceback" not in err
    for pattern in case.expect:
        assert re.search(pattern, err), f"expected the message to match {pattern!r}, was: {err}"
    if case.accepted:
        if case.check is not None:
            case.check(store)
    else:
        assert _hashes(store) == before, "a refused input changed the store"
    tally.add(case)
