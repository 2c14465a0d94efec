"""Registry figures over 1,000 seeded run folders: rebuild time, and list/show/diff query times.

``PYTHONPATH=. .venv/bin/python benchmarks/registry_query.py`` (it seeds folders with the test kit)
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from reports import registry
from tests.unit.reports.seed import seed_runs


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        seed_runs(root, 1_000)
        started = time.perf_counter()
        registry.rebuild(root)
        print(f"rebuild 1,000 runs: {time.perf_counter() - started:.3f} s")
        for label, call in (
            ("list (all 1,000)", lambda: registry.list_runs(root)),
            ("list --environment paper", lambda: registry.list_runs(root, environment="paper")),
            (
                "show by id",
                lambda: (
                    registry.show(root, "backtest/00000")
                    if (root / "backtest/00000").exists()
                    else registry.show(root, registry.list_runs(root, limit=1)[0]["run_id"])
                ),
            ),
            ("diff two runs", lambda: registry.diff(root, *[r["run_id"] for r in registry.list_runs(root, limit=2)])),
        ):
            started = time.perf_counter()
            for _ in range(20):
                call()
            print(f"{label}: {(time.perf_counter() - started) / 20 * 1000:.1f} ms")


if __name__ == "__main__":
    main()
