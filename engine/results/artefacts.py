"""Write a run's artefacts (data only) and hand the run folder to the installed report renderers.

The engine writes ``config.json``, one Parquet file per ledger, ``stats.json`` and the manifest
``run.json`` (code version, data lineage, environment, status, times: ``engine.results.manifest``) to
``<out_dir>/<config-hash>/``; a run that failed gets a ``run.json`` alone (``write_failure``).
It renders nothing itself: renderers are plugins registered under the
``carrylab.run_reports`` entry-point group (``reports`` registers the HTML report in pyproject.toml),
each called with the run folder and returning the file it wrote. The engine never imports them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from importlib.metadata import entry_points
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq

from engine.config import RunConfig
from engine.loading import config_hash, config_json
from engine.results.manifest import build_manifest, now, write_manifest
from engine.results.result import RunResult
from engine.run_data import BARS_SCHEMA

RENDERERS_GROUP = "carrylab.run_reports"


def write_artefacts(result: RunResult, out_dir: Path, *, folder: str | None = None) -> Path:
    """Write the run's ledgers, stats and resolved config to ``out_dir/<folder>/`` and return that folder.

    ``folder`` defaults to the config hash (a paper session writes ``<hash>/session-<n>`` this way).
    The manifest's environment is the stats' ``mode`` (paper, live) or ``backtest``; its start time is
    the finish less the run's timings.
    """
    relative = folder or result.config_hash
    run_dir = out_dir / relative
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.json").write_text(config_json(result.config))
    for name, frame in result.frames().items():
        write_frame(frame, run_dir / f"{name}.parquet")
    (run_dir / "stats.json").write_text(json.dumps(result.stats, sort_keys=True, indent=2) + "\n")
    finished = now()
    started = finished - timedelta(seconds=sum(result.timings_secs.values()))
    environment = str(result.stats.get("mode") or "backtest").split()[0]
    manifest = build_manifest(
        result.config, environment=environment, status="ok", started_at=started, finished_at=finished, folder=relative
    )
    write_manifest(run_dir, manifest)
    return run_dir


def write_frame(frame: pl.DataFrame | list[pl.LazyFrame], path: Path) -> None:
    """Write ``frame`` to ``path`` as zstd Parquet without statistics; lazy frames one after another.

    Each lazy frame (a backtest's bars, one instrument each) is collected and appended as its own row
    groups, so only one is held at a time; the bytes depend on the data alone, not on the run's chunks.
    """
    if isinstance(frame, pl.DataFrame):
        frame.write_parquet(path, compression="zstd", statistics=False)
        return
    tables = (scan.collect().to_arrow() for scan in frame)
    first = next(tables, None)
    if first is None:
        pl.DataFrame(schema=BARS_SCHEMA).write_parquet(path, compression="zstd", statistics=False)
        return
    # Dictionary-encoding only the repeated instrument id: the times and closes do not repeat (and cost 2x to encode).
    with pq.ParquetWriter(
        path, first.schema, compression="zstd", write_statistics=False, use_dictionary=["instrument_id"]
    ) as writer:
        writer.write_table(first)
        for table in tables:
            writer.write_table(table)


def write_failure(
    config: RunConfig, out_dir: Path, *, environment: str, error: str, started_at: datetime, folder: str | None = None
) -> Path:
    """Write the ``run.json`` of a run of ``config`` that failed with ``error``; return the run folder.

    Artefacts an earlier run of the same config left in the folder stay; the manifest says the last
    run failed, and the registry reads no statistics from a failed run.
    """
    name = folder or config_hash(config)
    manifest = build_manifest(
        config,
        environment=environment,
        status="failed",
        started_at=started_at,
        finished_at=now(),
        folder=name,
        error=error,
    )
    run_dir = out_dir / name
    write_manifest(run_dir, manifest)
    return run_dir


def renderers() -> dict[str, Callable[[Path], Path]]:
    """Return the installed run renderers by entry-point name (empty when the project is not installed)."""
    return {point.name: point.load() for point in entry_points(group=RENDERERS_GROUP)}


def render_reports(run_dir: Path) -> list[Path]:
    """Call every installed renderer on ``run_dir``; return the files they wrote."""
    return [render(run_dir) for _, render in sorted(renderers().items())]
