"""Write a run's artefacts (data only) and hand the run folder to the installed report renderers.

The engine writes ``config.json``, one Parquet file per ledger and ``stats.json`` to
``<out_dir>/<config-hash>/``. It renders nothing itself: renderers are plugins registered under the
``carrylab.run_reports`` entry-point group (``reports`` registers the HTML report in pyproject.toml),
each called with the run folder and returning the file it wrote. The engine never imports them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from importlib.metadata import entry_points
from pathlib import Path

from engine.loading import config_json
from engine.results.result import RunResult

RENDERERS_GROUP = "carrylab.run_reports"


def write_artefacts(result: RunResult, out_dir: Path, *, folder: str | None = None) -> Path:
    """Write the run's ledgers, stats and resolved config to ``out_dir/<folder>/`` and return that folder.

    ``folder`` defaults to the config hash (a paper session writes ``<hash>/session-<n>`` this way).
    """
    run_dir = out_dir / (folder or result.config_hash)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.json").write_text(config_json(result.config))
    for name, frame in result.frames().items():
        frame.write_parquet(run_dir / f"{name}.parquet", compression="zstd", statistics=False)
    (run_dir / "stats.json").write_text(json.dumps(result.stats, sort_keys=True, indent=2) + "\n")
    return run_dir


def renderers() -> dict[str, Callable[[Path], Path]]:
    """Return the installed run renderers by entry-point name (empty when the project is not installed)."""
    return {point.name: point.load() for point in entry_points(group=RENDERERS_GROUP)}


def render_reports(run_dir: Path) -> list[Path]:
    """Call every installed renderer on ``run_dir``; return the files they wrote."""
    return [render(run_dir) for _, render in sorted(renderers().items())]
