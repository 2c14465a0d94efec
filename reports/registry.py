"""The run registry: one DuckDB row per run folder, derived from the folders' ``run.json`` and artefacts.

``python -m reports.registry [--root runs] list|show RUN|diff A B|rebuild [--json]``.

The registry is an index, never a record: every row comes from a run folder's ``run.json`` (the
manifest the engine writes, ``engine.results.manifest``), ``config.json`` and ``stats.json``, so a
deleted ``registry.duckdb`` is rebuilt from the ``runs/`` folders (``rebuild``) and equals the one
that was deleted. Runs register themselves: ``register_run`` is a ``carrylab.run_reports`` entry point
(pyproject.toml), called by the engine's CLIs after the HTML report with the run folder; the engine
never imports this module. The run's Parquet ledgers stay where they are: ``ledger_sql`` reads them
in place with DuckDB's ``read_parquet``.

A row's ``run_id`` is the run folder relative to the registry's root (``<config-hash>`` for a
backtest written to the root, ``paper/<hash>/session-2`` for a paper session written below it). The
registry file sits in the root (``<root>/registry.duckdb``); writers take ``registry.duckdb.lock``
(DuckDB lets one process at a time open a file for writing, and a night runs backtests in parallel).
"""

from __future__ import annotations

import argparse
import fcntl
import json
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import duckdb

REGISTRY_FILE = "registry.duckdb"
MANIFEST = "run.json"  # engine.results.manifest.MANIFEST (reports reads files, it needs no engine import here)
STAT_COLUMNS = (
    "pnl_total",
    "pnl_price",
    "pnl_funding",
    "pnl_fees",
    "max_drawdown",
    "max_drawdown_pct",
    "sharpe",
    "orders",
    "fills",
    "positions",
    "funding_settlements",
    "bars",
)
COLUMNS: tuple[tuple[str, str], ...] = (
    ("run_id", "VARCHAR PRIMARY KEY"),
    ("config_hash", "VARCHAR NOT NULL"),
    ("name", "VARCHAR"),
    ("environment", "VARCHAR NOT NULL"),
    ("status", "VARCHAR NOT NULL"),
    ("error", "VARCHAR"),
    ("started_at", "TIMESTAMPTZ"),
    ("finished_at", "TIMESTAMPTZ"),
    ("data_start", "TIMESTAMPTZ"),
    ("data_end", "TIMESTAMPTZ"),
    ("code_describe", "VARCHAR"),
    ("code_commit", "VARCHAR"),
    ("code_dirty", "BOOLEAN"),
    ("code_diff_sha256", "VARCHAR"),
    ("catalog", "VARCHAR"),
    ("lineage_digest", "VARCHAR"),
    ("input_key", "VARCHAR"),
    ("currency", "VARCHAR"),
    ("pnl_total", "DECIMAL(38, 18)"),
    ("pnl_price", "DECIMAL(38, 18)"),
    ("pnl_funding", "DECIMAL(38, 18)"),
    ("pnl_fees", "DECIMAL(38, 18)"),
    ("max_drawdown", "DECIMAL(38, 18)"),
    ("max_drawdown_pct", "DOUBLE"),
    ("sharpe", "DOUBLE"),
    ("orders", "BIGINT"),
    ("fills", "BIGINT"),
    ("positions", "BIGINT"),
    ("funding_settlements", "BIGINT"),
    ("bars", "BIGINT"),
    ("report", "VARCHAR"),
    ("config", "JSON"),
    ("code", "JSON"),
    ("lineage", "JSON"),
    ("stats", "JSON"),
)
LIST_COLUMNS = ("run_id", "name", "environment", "status", "finished_at", "code_describe", "pnl_total", "sharpe")


class RegistryError(Exception):
    """Root of the registry's errors: a run folder without a manifest, an unknown run, a bad root."""


class UnknownRunError(RegistryError):
    """No run, or more than one, matches the id or prefix asked for."""


def registry_file(root: Path) -> Path:
    """Return the registry file of the runs under ``root``."""
    return Path(root) / REGISTRY_FILE


def root_of(run_dir: Path) -> Path:
    """Return the registry root of ``run_dir``: the out directory its manifest's ``folder`` is relative to.

    A paper session's folder (``<hash>/session-<n>``) belongs to the root of its cumulative run's folder.
    A registry that already exists up to two levels above that directory is used instead (``runs/`` holds
    the registry and ``runs/paper/`` the paper sessions: they register in ``runs/registry.duckdb``).

    Raises
    ------
    RegistryError
        If ``run_dir`` has no ``run.json``.
    """
    manifest = _manifest(run_dir)
    depth = len(Path(manifest["folder"]).parts)
    out_dir = Path(run_dir).resolve().parents[depth - 1]
    if (out_dir / MANIFEST).exists():  # a paper session's folder inside its cumulative run's folder
        return root_of(out_dir)
    for candidate in (out_dir, *list(out_dir.parents)[:2]):
        if registry_file(candidate).exists():
            return candidate
    return out_dir


def _manifest(run_dir: Path) -> dict[str, Any]:
    path = Path(run_dir) / MANIFEST
    try:
        document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RegistryError(f"expected a run folder with {MANIFEST}, {run_dir} has none; re-run it") from None
    return document


def _json_file(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def _decimal(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def run_row(run_dir: Path, root: Path) -> dict[str, Any]:
    """Return the registry row of ``run_dir`` (under ``root``) from its manifest, config and stats.

    A failed run's statistics are not read (the folder may hold an earlier run's).

    Raises
    ------
    RegistryError
        If ``run_dir`` has no ``run.json``.
    """
    run_dir = Path(run_dir)
    manifest = _manifest(run_dir)
    ok = manifest["status"] == "ok"
    stats: dict[str, Any] = (_json_file(run_dir / "stats.json") or {}) if ok else {}
    code = manifest.get("code") or {}
    lineage = manifest.get("lineage") or {}
    report = run_dir / "report.html"
    row: dict[str, Any] = {
        "run_id": run_dir.resolve().relative_to(Path(root).resolve()).as_posix(),
        "config_hash": manifest["config_hash"],
        "name": manifest.get("name"),
        "environment": manifest["environment"],
        "status": manifest["status"],
        "error": manifest.get("error"),
        "started_at": manifest.get("started_at"),
        "finished_at": manifest.get("finished_at"),
        "data_start": manifest.get("data_start"),
        "data_end": manifest.get("data_end"),
        "code_describe": code.get("describe"),
        "code_commit": code.get("commit"),
        "code_dirty": code.get("dirty"),
        "code_diff_sha256": code.get("diff_sha256"),
        "catalog": lineage.get("catalog"),
        "lineage_digest": lineage.get("digest"),
        "input_key": manifest.get("input_key"),
        "currency": stats.get("currency"),
        **{k: _decimal(stats.get(k)) for k in ("pnl_total", "pnl_price", "pnl_funding", "pnl_fees", "max_drawdown")},
        "max_drawdown_pct": stats.get("max_drawdown_pct"),
        "sharpe": stats.get("sharpe"),
        **{k: stats.get(k) for k in ("orders", "fills", "positions", "funding_settlements", "bars")},
        "report": report.name if ok and report.exists() else None,
        "config": json.dumps(_json_file(run_dir / "config.json"), sort_keys=True),
        "code": json.dumps(code, sort_keys=True),
        "lineage": json.dumps(lineage, sort_keys=True),
        "stats": json.dumps(stats, sort_keys=True),
    }
    return row


def _create(connection: duckdb.DuckDBPyConnection) -> None:
    columns = ", ".join(f"{name} {kind}" for name, kind in COLUMNS)
    connection.execute(f"CREATE TABLE IF NOT EXISTS runs ({columns})")


def _upsert(connection: duckdb.DuckDBPyConnection, rows: Sequence[dict[str, Any]]) -> None:
    names = [name for name, _ in COLUMNS]
    marks = ", ".join("?" for _ in names)
    connection.execute("DELETE FROM runs WHERE run_id IN (SELECT unnest(?))", [[r["run_id"] for r in rows]])
    connection.executemany(
        f"INSERT INTO runs ({', '.join(names)}) VALUES ({marks})",  # noqa: S608 - column names are constants
        [[row[n] for n in names] for row in rows],
    )


@contextmanager
def _locked(root: Path) -> Iterator[None]:
    root.mkdir(parents=True, exist_ok=True)
    with (root / f"{REGISTRY_FILE}.lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextmanager
def connect(root: Path, *, read_only: bool = True) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the registry of ``root`` (read-only by default; writing takes the registry lock).

    Raises
    ------
    RegistryError
        If ``read_only`` and there is no registry and no run folder to build one from (a missing
        registry is rebuilt from the folders first).
    """
    path = registry_file(root)
    if read_only:
        if not path.exists() and run_dirs(root):
            rebuild(root)
        if not path.exists():
            raise RegistryError(f"expected run folders (with run.json) under {root}, there are none")
        with _locked(Path(root)), duckdb.connect(str(path), read_only=True) as connection:
            yield connection
        return
    with _locked(Path(root)), duckdb.connect(str(path)) as connection:
        _create(connection)
        yield connection


def run_dirs(root: Path) -> list[Path]:
    """Return every run folder under ``root`` (a folder with a ``run.json``), sorted."""
    return sorted(p.parent for p in Path(root).rglob(MANIFEST))


def ingest(root: Path, folders: Sequence[Path]) -> int:
    """Add or replace the rows of ``folders`` in the registry of ``root``; return how many."""
    rows = [run_row(folder, root) for folder in folders]
    if rows:
        with connect(root, read_only=False) as connection:
            _upsert(connection, rows)
    return len(rows)


def rebuild(root: Path) -> int:
    """Rebuild the registry of ``root`` from its run folders (a new file, swapped in); return the row count."""
    root = Path(root)
    rows = [run_row(folder, root) for folder in run_dirs(root)]
    with _locked(root):
        with tempfile.TemporaryDirectory(dir=root) as scratch:
            staged = Path(scratch) / REGISTRY_FILE
            with duckdb.connect(str(staged)) as connection:
                _create(connection)
                if rows:
                    _upsert(connection, rows)
            staged.replace(registry_file(root))
    return len(rows)


def register_run(run_dir: Path) -> Path:
    """Add ``run_dir`` to its registry (the ``carrylab.run_reports`` hook); return the registry file.

    Without a registry yet nothing is created: the first query (or ``rebuild``, or a night) builds it
    from the folders, this one included, so a plain CLI run leaves only its run folder in ``--out``.
    """
    root = root_of(run_dir)
    if registry_file(root).exists():
        ingest(root, [run_dir])
    return registry_file(root)


def _records(connection: duckdb.DuckDBPyConnection, sql: str, parameters: Sequence[Any] = ()) -> list[dict[str, Any]]:
    cursor = connection.execute(sql, list(parameters))
    names = [d[0] for d in cursor.description or []]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def list_runs(
    root: Path,
    *,
    environment: str | None = None,
    status: str | None = None,
    name: str | None = None,
    limit: int | None = None,
) -> list[dict[str, Any]]:
    """Return the registry's runs, newest first, optionally filtered."""
    filters, parameters = [], []
    for column, value in (("environment", environment), ("status", status), ("name", name)):
        if value is not None:
            filters.append(f"{column} = ?")
            parameters.append(value)
    where = f"WHERE {' AND '.join(filters)}" if filters else ""
    tail = f"LIMIT {int(limit)}" if limit else ""
    with connect(root) as connection:
        return _records(
            connection,
            f"SELECT {', '.join(LIST_COLUMNS)} FROM runs {where} ORDER BY finished_at DESC, run_id {tail}",  # noqa: S608
            parameters,
        )


def _decode(row: dict[str, Any]) -> dict[str, Any]:
    return {
        k: json.loads(v) if k in ("config", "code", "lineage", "stats") and v is not None else v for k, v in row.items()
    }


def show(root: Path, run: str) -> dict[str, Any]:
    """Return the full row of the run whose id is ``run``, or whose id, config hash or input key starts with it.

    Raises
    ------
    UnknownRunError
        If no run matches, or several do (the message lists them).
    """
    with connect(root) as connection:
        rows = _records(connection, "SELECT * FROM runs WHERE run_id = ?", [run])
        if not rows:
            rows = _records(
                connection,
                "SELECT * FROM runs WHERE starts_with(run_id, ?) OR starts_with(config_hash, ?) "
                "OR starts_with(input_key, ?) ORDER BY run_id",
                [run, run, run],
            )
    if not rows:
        raise UnknownRunError(f"expected a run id, config hash or input key (or a prefix), no run matches {run!r}")
    if len(rows) > 1:
        ids = ", ".join(r["run_id"] for r in rows[:10])
        raise UnknownRunError(f"expected one run to match {run!r}, {len(rows)} do ({ids}); give more of the id")
    return _decode(rows[0])


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(_flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: value}


def _changes(a: Any, b: Any) -> dict[str, dict[str, Any]]:
    left, right = _flatten(a or {}), _flatten(b or {})
    return {k: {"a": left.get(k), "b": right.get(k)} for k in sorted({*left, *right}) if left.get(k) != right.get(k)}


def _stat_change(a: Any, b: Any) -> Any:
    try:
        return str(Decimal(str(b)) - Decimal(str(a))) if a is not None and b is not None else None
    except ArithmeticError:
        return None


def diff_rows(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Return what differs between two decoded registry rows: config, code, data lineage and statistics."""
    files_a = {f["path"]: f["sha256"] for f in (a["lineage"] or {}).get("files", [])}
    files_b = {f["path"]: f["sha256"] for f in (b["lineage"] or {}).get("files", [])}
    stats = {}
    for key in STAT_COLUMNS:
        if a.get(key) != b.get(key):
            stats[key] = {"a": a.get(key), "b": b.get(key), "change": _stat_change(a.get(key), b.get(key))}
    return {
        "a": a["run_id"],
        "b": b["run_id"],
        "same_inputs": a["input_key"] == b["input_key"],
        "config": _changes(a["config"], b["config"]),
        "code": _changes(a["code"], b["code"]),
        "data": {
            "same": a["lineage_digest"] == b["lineage_digest"],
            "added": sorted(set(files_b) - set(files_a)),
            "removed": sorted(set(files_a) - set(files_b)),
            "changed": sorted(p for p in set(files_a) & set(files_b) if files_a[p] != files_b[p]),
        },
        "status": {"a": a["status"], "b": b["status"]} if a["status"] != b["status"] else {},
        "stats": stats,
    }


def diff(root: Path, a: str, b: str) -> dict[str, Any]:
    """Return ``diff_rows`` of the runs ``a`` and ``b`` (ids or prefixes, as ``show`` takes).

    Raises
    ------
    UnknownRunError
        If either does not name exactly one run.
    """
    return diff_rows(show(root, a), show(root, b))


def all_rows(root: Path) -> list[dict[str, Any]]:
    """Return every row of the registry of ``root``, by run id (rebuilds compare equal this way)."""
    with connect(root) as connection:
        return _records(connection, "SELECT * FROM runs ORDER BY run_id")


def ledger_sql(root: Path, ledger: str) -> str:
    """Return DuckDB SQL reading one ledger (``equity``, ``fills``, ...) of every run under ``root`` in place.

    The ``run_id`` column joins it to the registry's ``runs`` table.
    """
    pattern = (Path(root).resolve() / "**" / f"{ledger}.parquet").as_posix().replace("'", "''")
    prefix = len(Path(root).resolve().as_posix()) + 2
    return (
        f"SELECT *, regexp_replace(substr(filename, {prefix}), '/[^/]+$', '') AS run_id "  # noqa: S608
        f"FROM read_parquet('{pattern}', filename = true)"
    )


def _text(value: Any) -> str:
    if isinstance(value, Decimal):
        return _rounded(value)
    if isinstance(value, float):
        return f"{value:.4f}"
    return "" if value is None else str(value)


def _rounded(value: Decimal, places: int = 2) -> str:
    return f"{value.quantize(Decimal(1).scaleb(-places)):,}"


def _print_table(rows: list[dict[str, Any]], columns: Sequence[str]) -> None:
    cells = [[_text(r.get(c)) for c in columns] for r in rows]
    widths = [max([len(c), *(len(row[i]) for row in cells)]) for i, c in enumerate(columns)]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)))
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)))


def _dump(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m reports.registry", description="Query the run registry.")
    parser.add_argument("--root", type=Path, default=Path("runs"), help="runs directory (default: runs)")
    parser.add_argument("--json", action="store_true", help="print JSON")
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("list", help="every run, newest first")
    listing.add_argument("--environment", choices=("backtest", "paper", "live"))
    listing.add_argument("--status", choices=("ok", "failed"))
    listing.add_argument("--name")
    listing.add_argument("--limit", type=int)
    show_parser = commands.add_parser("show", help="one run: config, code, lineage, stats")
    show_parser.add_argument("run", help="run id, or a prefix of a run id, config hash or input key")
    diff_parser = commands.add_parser("diff", help="what differs between two runs")
    diff_parser.add_argument("a")
    diff_parser.add_argument("b")
    commands.add_parser("rebuild", help="rebuild the registry from the run folders under --root")
    for sub in commands.choices.values():
        sub.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print JSON")
    return parser


Command = Literal["list", "show", "diff", "rebuild"]


def main(argv: list[str] | None = None) -> int:
    """Run one registry command; return the exit code (2 usage, 3 no registry or unknown run)."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "rebuild":
            count = rebuild(args.root)
            print(_dump({"runs": count}) if args.json else f"{registry_file(args.root)}: {count} runs")
        elif args.command == "list":
            rows = list_runs(
                args.root, environment=args.environment, status=args.status, name=args.name, limit=args.limit
            )
            print(_dump(rows)) if args.json else _print_table(rows, LIST_COLUMNS)
        elif args.command == "show":
            row = show(args.root, args.run)
            print(_dump(row) if args.json else "\n".join(f"{k}: {_text(v)}" for k, v in row.items()))
        else:
            print(_dump(diff(args.root, args.a, args.b)))
    except RegistryError as exc:
        print(f"error ({type(exc).__name__}): {exc}", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
