"""``python -m datasets``: import, status, check and export-catalog on the canonical store."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from datasets.errors import ConflictError, DatasetError, SourceFormatError, ValidationError
from datasets.importers import IMPORTERS
from datasets.importers.base import ImportOptions
from datasets.store import Store

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_BAD_INPUT = 3
EXIT_CONFLICT = 4
EXIT_FINDINGS = 5

log = logging.getLogger("datasets")


def main(argv: list[str] | None = None) -> int:
    """Run the datasets command line; return the process exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except (SourceFormatError, ValidationError) as exc:
        print(f"error: {exc}\nnothing was written: fix the input and run the import again", file=sys.stderr)
        return EXIT_BAD_INPUT
    except ConflictError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_CONFLICT
    except DatasetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m datasets", description=__doc__)
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    formats = "\n".join(f"  {i.name}: {i.description}" for i in IMPORTERS)
    imp = commands.add_parser(
        "import",
        help="import source files or folders into the store",
        description=f"Import files (folders are walked recursively). Supported formats:\n{formats}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    imp.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    _store_option(imp)
    imp.add_argument("--venue", help="venue to assume when a file does not say (e.g. binance)")
    imp.add_argument("--tz", help="time zone of local-time exports, e.g. Europe/London (never guessed)")
    imp.add_argument("--no-progress", action="store_true", help="hide progress bars")
    imp.set_defaults(handler=_import)

    status = commands.add_parser("status", help="coverage per venue, symbol, kind, interval and range")
    _store_option(status)
    status.add_argument("--json", action="store_true", help="print JSON instead of a table")
    status.set_defaults(handler=_status)

    check = commands.add_parser("check", help="report soft findings: gaps, interval changes, placeholders, outliers")
    _store_option(check)
    check.add_argument("--venue", action="append", help="only this venue (repeatable)")
    check.add_argument("--symbol", action="append", help="only this symbol (repeatable)")
    check.add_argument("--json", action="store_true", help="print JSON instead of a table")
    check.add_argument("--strict", action="store_true", help=f"exit {EXIT_FINDINGS} when there is any warning")
    check.set_defaults(handler=_check)

    export = commands.add_parser("export-catalog", help="write a NautilusTrader 2.x catalog from the store")
    _store_option(export)
    export.add_argument("--catalog", type=Path, default=Path("data/catalog"), help="catalog directory")
    export.add_argument("--venue", action="append", help="only this venue (repeatable)")
    export.add_argument("--symbol", action="append", help="only this symbol (repeatable)")
    export.add_argument("--start", type=_utc, help="first instant, ISO 8601 (UTC if no offset)")
    export.add_argument("--end", type=_utc, help="end instant (exclusive), ISO 8601")
    export.add_argument("--no-progress", action="store_true", help="hide progress bars")
    export.set_defaults(handler=_export)
    return parser


def _store_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store", type=Path, help="store root (default: $DATA_ROOT or ./data/store)")


def _utc(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an ISO 8601 time like 2024-01-31T00:00Z, was {text!r}") from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _zone(name: str | None) -> ZoneInfo | None:
    if name is None:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise DatasetError(f"--tz {name!r} is not a known IANA time zone; use e.g. Europe/London or UTC") from None


def _import(args: argparse.Namespace) -> int:
    from datasets.pipeline import import_paths

    store = Store(args.store)
    options = ImportOptions(venue=args.venue, tz=_zone(args.tz))
    report = import_paths(args.paths, store, options=options, progress=not args.no_progress)
    for path in report.skipped:
        log.info("skipped %s: no importer recognises it", path)
    print(
        f"imported {report.files} files, {report.rows:,} rows into {store.root}: "
        f"{report.partitions_written} partitions written, {report.partitions_unchanged} already up to date"
    )
    return EXIT_OK


def _status(args: argparse.Namespace) -> int:
    from datasets.status import coverage, coverage_json, format_coverage

    rows = coverage(Store(args.store))
    print(coverage_json(rows) if args.json else format_coverage(rows))
    return EXIT_OK


def _check(args: argparse.Namespace) -> int:
    from datasets.check import check_store, findings_to_json, format_findings

    findings = check_store(Store(args.store), venues=args.venue, symbols=args.symbol)
    print(findings_to_json(findings) if args.json else format_findings(findings))
    warnings = [f for f in findings if f.severity == "warning"]
    return EXIT_FINDINGS if args.strict and warnings else EXIT_OK


def _export(args: argparse.Namespace) -> int:
    from datasets.catalog import export_catalog

    summary = export_catalog(
        Store(args.store),
        args.catalog,
        venues=args.venue,
        symbols=args.symbol,
        start=args.start,
        end=args.end,
        progress=not args.no_progress,
    )
    print(summary)
    print(f"catalog written to {args.catalog}")
    return EXIT_OK
