"""A run's manifest, ``run.json``: what produced the artefacts beside it (code, data, environment, times).

The registry (``reports.registry``) is a derived index of these files, so a deleted registry is rebuilt
from the ``runs/`` folders. The fields:

- ``code``: ``git describe --always --dirty --tags``, the commit, the dirty flag and, when dirty, the
  sha256 of ``git diff HEAD`` (so two different uncommitted trees are two code versions). A checkout
  without git (a deployed tarball) sets ``CARRYLAB_CODE_VERSION`` to name its version instead.
- ``lineage``: every catalog file the run reads (the files under ``data/<kind>/<instrument id>[-...]/``
  of each configured instrument, and the catalog's root files such as ``venues.json``) with its size
  and the sha256 of its bytes, and ``digest``, the sha256 of that list. Content hashes, not mtimes: a
  re-export that writes the same bytes is the same data, so only the runs whose instruments' files
  changed count as changed. The catalog is the only data a run reads; the store's own lineage (each
  partition's footer, ``Store().partitions()``) is one hop upstream, through ``export-catalog``.
- ``input_key``: sha256 of config hash, code version and lineage digest. Two runs with the same key
  had the same inputs; the nightly job skips a run whose key already has a successful run.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from engine.config import RunConfig
from engine.loading import config_hash, instrument_ids

MANIFEST = "run.json"
MANIFEST_VERSION = 1
CODE_VERSION_ENV = "CARRYLAB_CODE_VERSION"
ENVIRONMENTS = ("backtest", "paper", "live")
_CHUNK = 1 << 20


def _git(*args: str, cwd: Path) -> str | None:
    try:
        done = subprocess.run(  # noqa: S603 - fixed git arguments, no shell
            ["git", *args],  # noqa: S607 - git from PATH, as a developer runs it
            cwd=cwd,
            capture_output=True,
            check=True,
            timeout=30,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.decode("utf-8", "replace")


def code_version(root: Path | None = None) -> dict[str, Any]:
    """Return ``describe``, ``commit``, ``dirty`` and ``diff_sha256`` of the checkout at ``root``.

    ``root`` defaults to the directory this package was imported from. ``CARRYLAB_CODE_VERSION`` in
    the environment replaces the lot (``dirty`` false), for checkouts without git.
    """
    pinned = os.environ.get(CODE_VERSION_ENV)
    if pinned:
        return {"describe": pinned, "commit": pinned, "dirty": False, "diff_sha256": None}
    where = root or Path(__file__).resolve().parents[2]
    describe = _git("describe", "--always", "--dirty", "--tags", cwd=where)
    commit = _git("rev-parse", "HEAD", cwd=where)
    if describe is None or commit is None:
        return {"describe": "unknown", "commit": None, "dirty": None, "diff_sha256": None}
    dirty = describe.strip().endswith("-dirty")
    diff = _git("diff", "HEAD", "--no-color", "--no-ext-diff", cwd=where) if dirty else None
    return {
        "describe": describe.strip(),
        "commit": commit.strip(),
        "dirty": dirty,
        "diff_sha256": hashlib.sha256(diff.encode()).hexdigest() if diff is not None else None,
    }


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _reads(relative: Path, ids: list[str]) -> bool:
    parts = relative.parts
    if len(parts) == 1:  # root files: venues.json and the like, read by every run
        return True
    if parts[0] != "data" or len(parts) < 4:
        return False
    stream = parts[2]
    return any(stream == i or stream.startswith(f"{i}-") for i in ids)


def catalog_lineage(catalog: str | Path, instrument_ids_read: list[str]) -> dict[str, Any]:
    """Return the lineage of a run reading ``instrument_ids_read`` from ``catalog``: files, sizes, hashes, digest.

    A missing catalog gives an empty file list (a paper session on venue data reads none).
    """
    root = Path(catalog)
    files = []
    if root.is_dir():
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            relative = path.relative_to(root)
            if _reads(relative, instrument_ids_read):
                files.append({"path": relative.as_posix(), "bytes": path.stat().st_size, "sha256": _sha256(path)})
    listing = json.dumps(files, sort_keys=True).encode()
    return {"catalog": str(catalog), "files": files, "digest": hashlib.sha256(listing).hexdigest()}


def config_lineage(config: RunConfig) -> dict[str, Any]:
    """Return the catalog lineage of ``config``: the files of its configured instruments."""
    return catalog_lineage(config.data.catalog, [str(i) for i in instrument_ids(config)])


def input_key(config_digest: str, code: dict[str, Any], lineage_digest: str) -> str:
    """Return the sha256 naming a run's inputs: config hash, code version and data lineage."""
    parts = [config_digest, str(code.get("commit")), str(code.get("diff_sha256")), str(code.get("describe"))]
    return hashlib.sha256("\n".join([*parts, lineage_digest]).encode()).hexdigest()


def build_manifest(
    config: RunConfig,
    *,
    environment: str,
    status: str,
    started_at: datetime,
    finished_at: datetime,
    folder: str,
    error: str | None = None,
    code: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Return the ``run.json`` document of one run of ``config``.

    Raises
    ------
    ValueError
        If ``environment`` is not backtest, paper or live, or ``status`` not ok or failed.
    """
    if environment not in ENVIRONMENTS:
        raise ValueError(f"environment: expected one of {', '.join(ENVIRONMENTS)}, was {environment!r}")
    if status not in ("ok", "failed"):
        raise ValueError(f"status: expected 'ok' or 'failed', was {status!r}")
    code = code or code_version()
    lineage = config_lineage(config)
    digest = config_hash(config)
    return {
        "manifest_version": MANIFEST_VERSION,
        "config_hash": digest,
        "name": config.name,
        "environment": environment,
        "status": status,
        "error": error,
        "folder": folder,
        "started_at": started_at.astimezone(UTC).isoformat(),
        "finished_at": finished_at.astimezone(UTC).isoformat(),
        "data_start": config.start.isoformat(),
        "data_end": config.end.isoformat(),
        "code": code,
        "lineage": lineage,
        "input_key": input_key(digest, code, lineage["digest"]),
    }


def write_manifest(run_dir: Path, manifest: dict[str, Any]) -> Path:
    """Write ``manifest`` to ``run_dir/run.json`` (temp file, then rename) and return its path."""
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / MANIFEST
    temporary = path.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(manifest, sort_keys=True, indent=2) + "\n", encoding="utf-8")
    temporary.replace(path)
    return path


def now() -> datetime:
    """Return the current UTC time (tz-aware)."""
    return datetime.now(UTC)
