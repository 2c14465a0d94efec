"""Run independent backtest configs side by side: local processes (``--workers``) or a Ray cluster (``--ray``).

Each config is one ``run_backtest`` in its own process (a Nautilus engine is bound to its thread, and
streams its data chunk by chunk, so N workers hold N chunks). Runs share nothing but the catalog they
read, so their artefacts are byte-identical to running the configs one after another. Processes are
spawned, never forked: a forked child would inherit the parent's Rust runtime threads.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from engine.backtest.runner import run_backtest
from engine.config import RunConfig
from engine.errors import EngineError, exit_code
from engine.results.artefacts import render_reports, write_failure
from engine.results.manifest import now
from engine.results.summary import summarize


@dataclass(frozen=True, slots=True)
class RunOutcome:
    """What one run of a config printed: its summary and warnings, or its error and exit code (0: success)."""

    name: str
    summary: str = ""
    warnings: list[str] = field(default_factory=list)
    error: str = ""
    exit_code: int = 0


def default_workers() -> int:
    """Return the cores this process may use (the default of ``--workers``)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _quiet(_: str) -> None:
    return None


def run_one(config: RunConfig, out_dir: str, progress: Callable[[str], None] = _quiet) -> RunOutcome:
    """Run ``config``, render its reports and return its outcome; a failure leaves its ``run.json``."""
    started = now()
    try:
        result = run_backtest(config, out_dir=out_dir, progress=progress)
    except EngineError as exc:
        error = f"{type(exc).__name__} (exit {exit_code(exc)}): {exc}"
        write_failure(config, Path(out_dir), environment="backtest", error=error, started_at=started)
        return RunOutcome(config.name, error=f"error ({type(exc).__name__}): {exc}", exit_code=int(exit_code(exc)))
    if result.run_dir is not None:
        render_reports(result.run_dir)
    return RunOutcome(config.name, summarize(result), list(result.stats.get("warnings", [])))


def run_configs(
    configs: list[RunConfig], *, out_dir: str, workers: int, ray_address: str | None = None
) -> Iterator[RunOutcome]:
    """Yield the outcome of every config, in the order given, running up to ``workers`` at once.

    ``ray_address`` (``auto``, ``ray://host:10001``) runs each config as a Ray task instead; the
    cluster's workers must import this project and read the catalog at the configured path.
    """
    if ray_address:
        yield from _on_ray(configs, out_dir, ray_address)
        return
    if workers <= 1:
        for config in configs:
            yield run_one(config, out_dir)
        return
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=min(workers, len(configs)), mp_context=context) as pool:
        futures = [pool.submit(run_one, config, out_dir) for config in configs]
        for future in futures:
            yield future.result()


def _on_ray(configs: list[RunConfig], out_dir: str, address: str) -> Iterator[RunOutcome]:
    import ray

    if not ray.is_initialized():
        ray.init(address=address, log_to_driver=False)
    task = ray.remote(run_one)
    # A Ray worker does not run in this directory: hand it absolute paths.
    refs = [task.remote(config, str(Path(out_dir).resolve())) for config in configs]
    for ref in refs:
        yield ray.get(ref)
