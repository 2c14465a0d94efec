"""Seeded run folders (``run.json``, ``config.json``, ``stats.json``) for registry tests and benchmarks."""

from __future__ import annotations

import hashlib
import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

T0 = datetime(2024, 6, 1, tzinfo=UTC)


def write_run(
    root: Path,
    folder: str,
    *,
    name: str = "demo",
    environment: str = "backtest",
    status: str = "ok",
    pnl_total: str = "100.5",
    files: dict[str, str] | None = None,
    describe: str = "v1",
    finished: datetime = T0,
    params: dict[str, Any] | None = None,
) -> Path:
    """Write one run folder under ``root`` and return it."""
    run_dir = root / folder
    run_dir.mkdir(parents=True, exist_ok=True)
    files = files if files is not None else {"venues.json": "a"}
    listing = [{"path": p, "bytes": 1, "sha256": h} for p, h in sorted(files.items())]
    digest = hashlib.sha256(json.dumps(listing, sort_keys=True).encode()).hexdigest()
    config = {"name": name, "strategy": {"params": params or {"notional": "1000"}}}
    config_hash = hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:12]
    manifest = {
        "manifest_version": 1,
        "config_hash": config_hash,
        "name": name,
        "environment": environment,
        "status": status,
        "error": None if status == "ok" else "EngineRunError (exit 8): boom",
        "folder": folder,
        "started_at": (finished - timedelta(seconds=5)).isoformat(),
        "finished_at": finished.isoformat(),
        "data_start": "2024-01-01T00:00:00+00:00",
        "data_end": "2024-04-01T00:00:00+00:00",
        "code": {"describe": describe, "commit": describe, "dirty": False, "diff_sha256": None},
        "lineage": {"catalog": "catalog", "files": listing, "digest": digest},
        "input_key": hashlib.sha256(f"{config_hash}{describe}{digest}".encode()).hexdigest(),
    }
    (run_dir / "run.json").write_text(json.dumps(manifest))
    (run_dir / "config.json").write_text(json.dumps(config))
    stats = {
        "currency": "USDT",
        "pnl_total": pnl_total,
        "pnl_price": pnl_total,
        "pnl_funding": "0",
        "pnl_fees": "0",
        "max_drawdown": "10",
        "max_drawdown_pct": 0.01,
        "sharpe": 1.25,
        "orders": 4,
        "fills": 4,
        "positions": 2,
        "funding_settlements": 0,
        "bars": 100,
    }
    (run_dir / "stats.json").write_text(json.dumps(stats))
    return run_dir


def seed_runs(root: Path, count: int, *, seed: int = 7) -> list[Path]:
    """Write ``count`` run folders with seeded names, environments, PnL and lineage."""
    rng = random.Random(seed)
    folders = []
    for index in range(count):
        environment = rng.choice(["backtest", "backtest", "paper", "live"])
        folders.append(
            write_run(
                root,
                f"{environment}/{index:05d}",
                name=f"strategy-{index % 12}",
                environment=environment,
                status="failed" if rng.random() < 0.05 else "ok",
                pnl_total=f"{rng.uniform(-1000, 1000):.6f}",
                files={"venues.json": "v", f"data/bars/X{index % 5}/a.parquet": str(rng.randrange(3))},
                finished=T0 + timedelta(minutes=index),
                params={"notional": str(index)},
            )
        )
    return folders
