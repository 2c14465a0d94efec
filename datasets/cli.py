"""``python -m datasets``: import, status, check, export-catalog, fetch, dumps, record and update."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from datasets.acquire.errors import MalformedPageError
from datasets.errors import (
    ConflictError,
    DatasetError,
    NotInStoreError,
    SourceFormatError,
    StoreWriteError,
    UnknownSourceError,
    ValidationError,
)
from datasets.exit_codes import ExitCode
from datasets.importers import IMPORTERS
from datasets.importers.base import ImportOptions
from datasets.store import Store
from datasets.venues import DATA_VENUES, UnknownInstrumentError, UnknownVenueError, unknown_venue_message

if TYPE_CHECKING:
    from datasets.acquire.fetch import FetchReport
    from datasets.onchain.fetch import Decoder, OnchainPlan
    from datasets.onchain.prices import PriceTable
    from datasets.onchain.rpc import RpcEndpoint

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
        return ExitCode.BAD_INPUT
    except ConflictError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return ExitCode.CONFLICT
    except UnknownSourceError as exc:
        print(
            f"error: {exc}\nnothing was written: pass files in a supported format (or --skip-unrecognised)",
            file=sys.stderr,
        )
        return ExitCode.BAD_INPUT
    except NotInStoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return ExitCode.BAD_INPUT
    except StoreWriteError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return ExitCode.STORE
    except UnknownVenueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return ExitCode.USAGE
    except UnknownInstrumentError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return ExitCode.BAD_INPUT
    except MalformedPageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return ExitCode.BAD_INPUT
    except DatasetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return ExitCode.ERROR


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
    imp.add_argument("--venue", type=_venue, help="venue to assume when a file does not say (e.g. binance)")
    imp.add_argument("--tz", type=_zone, help="time zone of local-time exports, e.g. Europe/London (never guessed)")
    imp.add_argument(
        "--allow-extreme",
        action="store_true",
        help="store funding rates beyond the venue's cap (datasets/venues.py) with a lineage note; "
        "`check` reports them",
    )
    imp.add_argument(
        "--skip-unrecognised",
        action="store_true",
        help="skip empty files and files in no supported format instead of refusing them (exit 3)",
    )
    imp.add_argument(
        "--as-of",
        type=_utc,
        help="when the specs of an undated metadata file (Binance leverage brackets) were in force, ISO 8601",
    )
    imp.add_argument(
        "--mapping",
        type=Path,
        help="read the files as tidy long tables (CSV or Parquet) through this TOML mapping "
        "(datasets/importers/tidy.py describes it)",
    )
    imp.add_argument("--no-progress", action="store_true", help="hide progress bars")
    imp.set_defaults(handler=_import)

    status = commands.add_parser("status", help="coverage per venue, symbol, kind, interval and range")
    _store_option(status)
    status.add_argument("--json", action="store_true", help="print JSON instead of a table")
    status.add_argument(
        "--summary",
        action="store_true",
        help="one row per venue, kind, series and interval (symbol count, range, rows): the universe at a glance",
    )
    status.add_argument("--venue", action="append", help="only this venue (repeatable)")
    status.set_defaults(handler=_status)

    check = commands.add_parser("check", help="report soft findings: gaps, interval changes, placeholders, outliers")
    _store_option(check)
    check.add_argument("--venue", action="append", help="only this venue (repeatable)")
    check.add_argument("--symbol", action="append", help="only this symbol (repeatable)")
    check.add_argument("--json", action="store_true", help="print JSON instead of a table")
    check.add_argument("--strict", action="store_true", help=f"exit {ExitCode.FINDINGS} when there is any warning")
    check.set_defaults(handler=_check)

    export = commands.add_parser("export-catalog", help="write a NautilusTrader 2.x catalog from the store")
    _store_option(export)
    export.add_argument("--catalog", type=Path, default=Path("data/catalog"), help="catalog directory")
    export.add_argument("--venue", action="append", type=_venue, help="only this venue (repeatable)")
    export.add_argument("--symbol", action="append", help="only this symbol (repeatable)")
    export.add_argument("--start", type=_utc, help="first instant, ISO 8601 (UTC if no offset)")
    export.add_argument("--end", type=_utc, help="end instant (exclusive), ISO 8601")
    export.add_argument(
        "--infer-instruments",
        action="store_true",
        help="for symbols without stored instrument specs, infer tick and lot from the data (marked inferred) "
        "instead of refusing (exit 3)",
    )
    export.add_argument("--no-progress", action="store_true", help="hide progress bars")
    export.set_defaults(handler=_export)
    _acquisition_commands(commands)
    return parser


def _store_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store", type=Path, help="store root (default: $DATA_ROOT or ./data/store)")


def _venue(text: str) -> str:
    if text not in DATA_VENUES:
        raise argparse.ArgumentTypeError(unknown_venue_message(text))
    return text


def _utc(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an ISO 8601 time like 2024-01-31T00:00Z, was {text!r}") from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise argparse.ArgumentTypeError(
            f"expected an IANA time zone like Europe/London or UTC, was {name!r}"
        ) from None


def _import(args: argparse.Namespace) -> int:
    from datasets.pipeline import import_paths

    store = Store(args.store)
    options = ImportOptions(
        venue=args.venue,
        tz=args.tz,
        allow_extreme=args.allow_extreme,
        skip_unrecognised=args.skip_unrecognised,
        as_of=args.as_of,
    )
    if args.mapping is not None:
        from datasets.importers.tidy import TidyImporter, load_mapping, mapping_digest
        from datasets.pipeline import import_with

        importer = TidyImporter(load_mapping(args.mapping))
        lineage = (("mapping", str(args.mapping)), ("mapping_sha256", mapping_digest(args.mapping)))
        report = import_with(importer, args.paths, store, options=options, extra=lineage)
    else:
        report = import_paths(args.paths, store, options=options, progress=not args.no_progress)
    for path in report.skipped:
        log.info("skipped %s: empty, or no importer recognises it", path)
    if report.extreme_rates:
        log.warning(
            "stored %d funding rates above their venue's cap (--allow-extreme); the lineage says so and "
            "`python -m datasets check` reports them",
            report.extreme_rates,
        )
    print(
        f"imported {report.files} files, {report.rows:,} rows into {store.root}: "
        f"{report.partitions_written} partitions written, {report.partitions_unchanged} already up to date"
    )
    return ExitCode.OK


def _status(args: argparse.Namespace) -> int:
    from datasets.status import coverage, coverage_json, format_coverage, format_summary, summarise

    rows = [row for row in coverage(Store(args.store)) if not args.venue or row.venue in args.venue]
    if args.summary:
        summary = summarise(rows)
        print(coverage_json(summary) if args.json else format_summary(summary))
    else:
        print(coverage_json(rows) if args.json else format_coverage(rows))
    return ExitCode.OK


def _check(args: argparse.Namespace) -> int:
    from datasets.check import check_store, findings_to_json, format_findings

    findings = check_store(Store(args.store), venues=args.venue, symbols=args.symbol)
    print(findings_to_json(findings) if args.json else format_findings(findings))
    warnings = [f for f in findings if f.severity == "warning"]
    return ExitCode.FINDINGS if args.strict and warnings else ExitCode.OK


def _export(args: argparse.Namespace) -> int:
    from datasets.catalog import export_catalog

    summary = export_catalog(
        Store(args.store),
        args.catalog,
        venues=args.venue,
        symbols=args.symbol,
        start=args.start,
        end=args.end,
        infer_instruments=args.infer_instruments,
        progress=not args.no_progress,
    )
    print(summary)
    print(f"catalog written to {args.catalog}")
    return ExitCode.OK


# ------------------------------------------------------------------------------------- acquisition
VENUE_CHOICES = ("binance", "bybit", "okx", "hyperliquid", "kraken", "dydx", "drift", "lighter")
RECORDER_VENUES = ("binance", "bybit", "okx")
DEX_FUNDING_VENUES = ("dydx", "drift", "lighter")  # datasets.acquire.dex_funding, not ccxt_venues


def _acquisition_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    fetch = commands.add_parser(
        "fetch",
        help="download candles, mark candles, funding or instrument specs through ccxt (resumable)",
        description="Download history through ccxt into the store. Resumable: a second call continues from what "
        "the store holds and downloads nothing twice. --dry-run prints the ranges and request counts. "
        "--kind instruments stores the specs and margin tiers of every instrument the venue lists (a new version "
        "only where a spec changed).",
    )
    _store_option(fetch)
    fetch.add_argument("--venue", required=True, choices=VENUE_CHOICES)
    fetch.add_argument(
        "--kind", required=True, type=_kinds, help="ohlcv, mark, funding or instruments; comma-separated for several"
    )
    fetch.add_argument(
        "--symbols",
        type=_csv,
        default=[],
        help="comma-separated: BTC-USDT-PERP, BTC-USDT (spot) or a bare base BTC (instruments take every symbol)",
    )
    fetch.add_argument("--market", choices=("spot", "perp"), help="market of bare bases and -PERP-less pairs")
    fetch.add_argument("--interval", default="1h", help="bar interval for ohlcv and mark (default 1h)")
    fetch.add_argument("--since", type=_utc, help="first instant, ISO 8601 (default: after the last stored row)")
    fetch.add_argument("--until", type=_utc, help="end instant (exclusive), ISO 8601 (default: now)")
    fetch.add_argument("--dry-run", action="store_true", help="print the plan (ranges, request counts); no network")
    fetch.add_argument("--api-url", help="rebase the venue's REST endpoints onto this URL (a proxy or mirror)")
    fetch.add_argument("--flush-rows", type=int, default=5_000, help="rows per store write (default 5000)")
    fetch.add_argument("--retries", type=int, default=6, help="attempts per request on transient errors (default 6)")
    _gap_options(fetch, fill_gaps=False)
    fetch.add_argument("--no-progress", action="store_true", help="hide progress bars")
    fetch.set_defaults(handler=_fetch)

    dumps = commands.add_parser(
        "dumps",
        help="download Binance public dumps (klines, fundingRate), verify checksums, import",
        description="Download data.binance.vision zips, verify each against its .CHECKSUM, import the CSV inside.",
    )
    _store_option(dumps)
    dumps.add_argument("--symbols", required=True, type=_csv, help="comma-separated canonical symbols: BTC-USDT-PERP")
    dumps.add_argument(
        "--kind",
        required=True,
        type=_csv,
        help="klines, markPriceKlines, indexPriceKlines or fundingRate; comma-separated for several",
    )
    dumps.add_argument("--interval", default="1h", help="kline interval (default 1h)")
    dumps.add_argument("--period", choices=("monthly", "daily"), default="monthly")
    dumps.add_argument("--since", required=True, type=_day, help="first month or day: 2024-01 or 2024-01-15")
    dumps.add_argument("--until", required=True, type=_day, help="last month or day (inclusive)")
    dumps.add_argument("--base-url", default=None, help="dump server (default https://data.binance.vision)")
    dumps.add_argument("--dry-run", action="store_true", help="print the files that would be fetched; no network")
    dumps.add_argument("--no-progress", action="store_true", help="hide progress bars")
    dumps.set_defaults(handler=_dumps)

    record = commands.add_parser(
        "record",
        help="record live liquidation streams into the store (runs until interrupted)",
        description="Record a venue's public liquidation stream in small validated batches; Ctrl-C writes the "
        "last batch and stops.",
    )
    record.add_argument("what", choices=("liquidations",))
    _store_option(record)
    record.add_argument("--venue", required=True, choices=RECORDER_VENUES)
    record.add_argument("--symbols", type=_csv, default=[], help="perps to subscribe to (Bybit needs them)")
    record.add_argument("--ws-url", help="WebSocket URL (default: the venue's public endpoint)")
    record.add_argument("--batch-events", type=int, default=200, help="write after this many events (default 200)")
    record.add_argument("--batch-secs", type=float, default=30.0, help="or after this many seconds (default 30)")
    record.add_argument("--status-secs", type=float, default=60.0, help="status line period (default 60)")
    record.set_defaults(handler=_record)

    update = commands.add_parser(
        "update",
        help="bring every candle and funding series in the store up to now (ccxt venues, and the funding of "
        "dYdX, Drift and Lighter), and refresh the instrument specs of every venue that has some stored",
    )
    _store_option(update)
    update.add_argument("--venue", action="append", help="only this venue (repeatable)")
    update.add_argument("--dry-run", action="store_true", help="print the plan; no network")
    update.add_argument("--api-url", help="rebase every venue's REST endpoints onto this URL")
    update.add_argument("--retries", type=int, default=6, help="attempts per request on transient errors (default 6)")
    _gap_options(update, fill_gaps=True)
    update.add_argument("--no-progress", action="store_true", help="hide progress bars")
    update.set_defaults(handler=_update)
    _onchain_command(commands)


def _onchain_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    onchain = commands.add_parser(
        "fetch-onchain",
        help="fetch Solana lending and perp liquidations (Kamino, marginfi, Drift) through an RPC (resumable)",
        description="Page the program's signatures, fetch its transactions, decode liquidations into the store. "
        "Resumable: the processed part of the history is kept in the store (onchain-progress.solana.<protocol>.json), "
        "so a second run fetches nothing already processed. --accounts snapshots program accounts instead.",
    )
    _store_option(onchain)
    onchain.add_argument("--protocol", required=True, choices=("kamino", "marginfi", "drift"))
    since = onchain.add_mutually_exclusive_group()
    since.add_argument("--since", type=_utc, help="first block time, ISO 8601 (default: as far back as asked before)")
    since.add_argument("--since-slot", type=_slot, help="first slot")
    until = onchain.add_mutually_exclusive_group()
    until.add_argument("--until", type=_utc, help="end block time (exclusive), ISO 8601 (default: the tip)")
    until.add_argument("--until-slot", type=_slot, help="end slot (exclusive)")
    onchain.add_argument("--rpc", help="RPC URL (default: $SOLANA_RPC_URL, else the public mainnet endpoint)")
    onchain.add_argument(
        "--accounts",
        help="snapshot accounts instead: 'all' (getProgramAccounts) or comma-separated addresses (getMultipleAccounts)",
    )
    onchain.add_argument("--account-type", help="with --accounts all: only this Anchor account type, e.g. Obligation")
    onchain.add_argument(
        "--from-snapshot",
        type=Path,
        help="decode a raw snapshot file already in the store (onchain-accounts.*.parquet) into account_states; "
        "no network",
    )
    onchain.add_argument(
        "--prices",
        type=Path,
        help="CSV mint,price_usd,source: USD prices for marginfi/Kamino notional_usd and bonus, and account values",
    )
    onchain.add_argument(
        "--prices-from-store",
        action="store_true",
        help="also price mints by the newest stored Kamino reserve / marginfi bank oracle price (account_states); "
        "--prices wins where both have a mint",
    )
    onchain.add_argument(
        "--drift-markets",
        type=Path,
        help="TOML of Drift spot/perp market parameters and oracle prices (with its source) for Drift user health",
    )
    onchain.add_argument(
        "--encoding",
        choices=("json", "jsonParsed"),
        default="json",
        help="getTransaction encoding (default json; both decode alike)",
    )
    onchain.add_argument(
        "--idls",
        type=Path,
        default=Path("../shared/data/solana/solana_idls"),
        help="directory of the Anchor IDL JSON files the decoders read (default ../shared/data/solana/solana_idls)",
    )
    onchain.add_argument("--concurrency", type=int, default=8, help="getTransaction requests in flight (default 8)")
    onchain.add_argument("--page-size", type=int, default=1000, help="signatures per page, 1..1000 (default 1000)")
    onchain.add_argument(
        "--batch-signatures", type=int, default=100, help="signatures per store write: what a kill loses (default 100)"
    )
    onchain.add_argument("--timeout-secs", type=float, default=30.0, help="HTTP timeout per request (default 30)")
    onchain.add_argument("--retries", type=int, default=6, help="attempts per request on transient errors (default 6)")
    onchain.add_argument("--dry-run", action="store_true", help="print the plan from the store; no network")
    onchain.add_argument("--no-progress", action="store_true", help="hide progress bars")
    onchain.set_defaults(handler=_fetch_onchain)


def _slot(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a slot number such as 250000000, was {text!r}")
    return int(text)


def _fetch_onchain(args: argparse.Namespace) -> int:
    import asyncio

    from datasets.acquire.errors import PlanError
    from datasets.onchain.progress import Bound
    from datasets.onchain.rpc import RpcEndpoint

    store = Store(args.store)
    try:
        if args.from_snapshot is not None:
            return _decode_snapshot(args, store, args.from_snapshot)
        endpoint = RpcEndpoint.resolve(args.rpc)
        if args.accounts:
            if args.dry_run:
                print(f"{args.protocol}: snapshot of accounts {args.accounts} through {endpoint.public}")
                return ExitCode.OK
            return asyncio.run(_snapshot_accounts(args, store, endpoint))
        if args.account_type:
            raise PlanError("--account-type goes with --accounts all")
        since = Bound.at_time(args.since) if args.since else None
        since = Bound.at_slot(args.since_slot) if args.since_slot is not None else since
        until = Bound.at_time(args.until) if args.until else None
        until = Bound.at_slot(args.until_slot) if args.until_slot is not None else until
        from datasets.onchain.fetch import load_decoder, plan_onchain

        plan = plan_onchain(store, args.protocol, since=since, until=until)
        print(plan.describe())
        if args.dry_run or not plan.regions:
            return ExitCode.OK
        decoder = load_decoder(args.protocol, idls_dir=args.idls, prices=_prices(args, store))
        return asyncio.run(_walk_onchain(args, store, endpoint, plan, decoder))
    except (PlanError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return ExitCode.USAGE
    except KeyboardInterrupt:
        print("interrupted: the batches written are kept; run the same command again to continue", file=sys.stderr)
        return ExitCode.ERROR


async def _walk_onchain(
    args: argparse.Namespace, store: Store, endpoint: RpcEndpoint, plan: OnchainPlan, decoder: Decoder
) -> int:
    from datasets.acquire.retry import RetryPolicy
    from datasets.onchain.fetch import OnchainFetcher
    from datasets.onchain.rpc import SolanaRpc

    async with SolanaRpc(endpoint, timeout_secs=args.timeout_secs, retry=RetryPolicy(attempts=args.retries)) as rpc:
        fetcher = OnchainFetcher(
            store,
            rpc,
            decoder,
            page_limit=args.page_size,
            batch_signatures=args.batch_signatures,
            concurrency=args.concurrency,
            encoding=args.encoding,
            progress=not args.no_progress,
        )
        report = await fetcher.run(plan)
    print(report)
    return ExitCode.OK


async def _snapshot_accounts(args: argparse.Namespace, store: Store, endpoint: RpcEndpoint) -> int:
    from datasets.acquire.retry import RetryPolicy
    from datasets.onchain.rpc import SolanaRpc
    from datasets.onchain.snapshots import snapshot_accounts

    selection = None if args.accounts == "all" else _csv(args.accounts)
    async with SolanaRpc(endpoint, timeout_secs=args.timeout_secs, retry=RetryPolicy(attempts=args.retries)) as rpc:
        snapshot = await snapshot_accounts(
            store, rpc, protocol=args.protocol, addresses=selection, account_type=args.account_type
        )
        print(f"{snapshot}; {rpc.stats.line()}")
    return _decode_snapshot(args, store, snapshot.path)


def _prices(args: argparse.Namespace, store: Store) -> PriceTable | None:
    from datasets.onchain.account_states import stored_prices
    from datasets.onchain.prices import PriceTable, load_prices

    table = PriceTable() if args.prices is None else load_prices(args.prices)
    if args.prices_from_store:
        table = table.merged(stored_prices(store).values())
    return table or None


def _decode_snapshot(args: argparse.Namespace, store: Store, path: Path) -> int:
    from collections import Counter

    from datasets.onchain.account_states import write_account_states
    from datasets.onchain.health import load_drift_markets
    from datasets.onchain.idl import load_idls

    markets = None if args.drift_markets is None else load_drift_markets(args.drift_markets)
    summary, states = write_account_states(
        store, path, idls=load_idls(args.idls), prices=_prices(args, store), drift_markets=markets
    )
    types = ", ".join(f"{n} {t}" for t, n in sorted(Counter(r["account_type"] for r in states.rows).items()))
    print(
        f"account_states: {len(states.rows):,} rows ({types or 'none'}) from {path.name}, "
        f"{len(summary.partitions_written)} partition files written; {len(states.skips):,} accounts skipped"
    )
    for skip in states.skips[:10]:
        print(f"  skipped {skip.pubkey}: {skip.reason}")
    return ExitCode.OK


def _gap_options(parser: argparse.ArgumentParser, *, fill_gaps: bool) -> None:
    parser.add_argument(
        "--fill-gaps",
        action=argparse.BooleanOptionalAction,
        default=fill_gaps,
        help=f"also fetch the holes between stored rows, except known gaps (default: {'on' if fill_gaps else 'off'})",
    )
    parser.add_argument(
        "--retry-known-gaps",
        action="store_true",
        help="ask again for the known gaps: holes the venue was asked for before and did not return",
    )


def _csv(text: str) -> list[str]:
    items = [item.strip() for item in text.split(",") if item.strip()]
    if not items:
        raise argparse.ArgumentTypeError(f"expected a comma-separated list, was {text!r}")
    return items


def _kinds(text: str) -> list[str]:
    kinds = _csv(text)
    unknown = [k for k in kinds if k not in ("ohlcv", "mark", "funding", "instruments")]
    if unknown:
        raise argparse.ArgumentTypeError(f"kinds are ohlcv, mark, funding and instruments, was {unknown[0]!r}")
    return kinds


def _day(text: str) -> datetime:
    for pattern in ("%Y-%m-%d", "%Y-%m"):
        try:
            return datetime.strptime(text, pattern).replace(tzinfo=UTC)
        except ValueError:
            continue
    raise argparse.ArgumentTypeError(f"expected a month like 2024-01 or a day like 2024-01-15, was {text!r}")


def _fetch(args: argparse.Namespace) -> int:
    from datasets.acquire.ccxt_venues import make_exchange, resolve_symbol
    from datasets.acquire.errors import PlanError
    from datasets.acquire.fetch import Fetcher, Series, plan_series, utc_now
    from datasets.acquire.retry import RetryPolicy

    store = Store(args.store)
    now = utc_now()
    if args.venue in DEX_FUNDING_VENUES:
        return _fetch_dex_funding(args, store, now)
    series_kinds = [kind for kind in args.kind if kind != "instruments"]
    if series_kinds and not args.symbols:
        raise PlanError(f"--kind {','.join(series_kinds)} needs --symbols (e.g. --symbols BTC,ETH)")
    symbols = [resolve_symbol(args.venue, text, args.market) for text in args.symbols]
    plans = [
        plan_series(
            store,
            Series(args.venue, kind, symbol, None if kind == "funding" else args.interval),
            since=args.since,
            until=args.until,
            now=now,
            fill_gaps=args.fill_gaps or args.retry_known_gaps,
            retry_known_gaps=args.retry_known_gaps,
        )
        for kind in series_kinds
        for symbol in symbols
    ]
    for plan in plans:
        print(plan.describe())
    if "instruments" in args.kind:
        print(f"instruments {args.venue}: every listed instrument, {_instrument_requests(args.venue)}")
    if plans:
        print(f"{sum(p.requests for p in plans)} requests planned")
    if args.dry_run:
        return ExitCode.OK
    if "instruments" in args.kind:
        print(_fetch_instruments(store, args.venue, args.api_url, args.retries))
    if not plans:
        return ExitCode.OK
    fetcher = Fetcher(
        store,
        exchange_factory=lambda venue, market: make_exchange(venue, market, api_url=args.api_url),
        retry=RetryPolicy(attempts=args.retries),
        flush_rows=args.flush_rows,
        progress=not args.no_progress,
    )
    return _fetched(fetcher.run(plans))


def _fetch_dex_funding(args: argparse.Namespace, store: Store, now: datetime) -> int:
    from datasets.acquire.dex_funding import dex_base, fetch_dex_funding
    from datasets.acquire.errors import PlanError
    from datasets.acquire.retry import RetryPolicy

    if args.kind != ["funding"] or not args.symbols:
        raise PlanError(
            f"{args.venue} is a research-only funding venue: expected --kind funding and --symbols (e.g. BTC,ETH), "
            f"was --kind {','.join(args.kind)}"
        )
    bases = [dex_base(text) for text in args.symbols]
    print(f"funding {args.venue}: {', '.join(bases)} hourly, from {args.since or 'the last stored settlement'}")
    if args.dry_run:
        return ExitCode.OK
    report = fetch_dex_funding(
        store,
        args.venue,
        bases,
        since=args.since,
        until=args.until or now,
        api_url=args.api_url,
        retry=RetryPolicy(attempts=args.retries),
        progress=not args.no_progress,
    )
    print(report)
    return ExitCode.OK


def _instrument_requests(venue: str) -> str:
    from datasets.acquire.ccxt_venues import ccxt_venue

    row = ccxt_venue(venue)
    calls = ["load_markets"]
    calls += [c for c in (row.tiers_call, row.fees_call, row.funding_interval_call) if c is not None]
    return f"markets {', '.join(row.instrument_markets)} through {', '.join(calls)}"


def _fetch_instruments(store: Store, venue: str, api_url: str | None, retries: int) -> str:
    from datasets.acquire.ccxt_venues import make_exchange
    from datasets.acquire.instruments import fetch_instruments
    from datasets.acquire.retry import RetryPolicy

    report = fetch_instruments(
        store,
        venue,
        exchange_factory=lambda name, market: make_exchange(name, market, api_url=api_url),
        retry=RetryPolicy(attempts=retries),
    )
    return str(report) + "".join(f"\nleft out: {line}" for line in report.skipped)


def _fetched(report: FetchReport) -> int:
    print(report)
    for line in report.known_gaps:
        print(f"known gap: {line}")
    if not report.known_gaps:
        return ExitCode.OK
    print(
        f"{len(report.known_gaps)} ranges the venue kept answering short were recorded as known gaps in the "
        "lineage: `python -m datasets check` lists them, `--retry-known-gaps` asks for them again",
        file=sys.stderr,
    )
    return ExitCode.FINDINGS


def _dumps(args: argparse.Namespace) -> int:
    import tempfile

    from datasets.acquire.dumps import DEFAULT_BASE_URL, DUMP_KINDS, DumpDownloader, plan_dumps

    unknown = [k for k in args.kind if k not in DUMP_KINDS]
    if unknown:
        raise DatasetError(f"--kind must be among {', '.join(DUMP_KINDS)}, was {unknown[0]!r}")
    files = [
        dump
        for kind in args.kind
        for dump in plan_dumps(
            args.symbols,
            kind=kind,
            start=args.since.date(),
            end=args.until.date(),
            interval=args.interval,
            period=args.period,
            base_url=args.base_url or DEFAULT_BASE_URL,
        )
    ]
    if args.dry_run:
        for dump in files:
            print(dump.url)
        print(f"{len(files)} files planned ({2 * len(files)} requests with their checksums)")
        return ExitCode.OK
    store = Store(args.store)
    with tempfile.TemporaryDirectory(prefix="binance-dumps-") as workdir:
        report = DumpDownloader(store, workdir=Path(workdir), progress=not args.no_progress).run(files)
    print(report)
    return ExitCode.OK


def _record(args: argparse.Namespace) -> int:
    import asyncio

    from datasets.acquire.record import LiquidationRecorder, RecorderConfig

    config = RecorderConfig(
        venue=args.venue,
        symbols=tuple(args.symbols),
        url=args.ws_url,
        batch_events=args.batch_events,
        batch_secs=args.batch_secs,
        status_secs=args.status_secs,
    )
    recorder = LiquidationRecorder(Store(args.store), config)
    try:
        asyncio.run(recorder.run())
    except KeyboardInterrupt:
        log.info("stopped: %s", recorder.stats.line(args.venue, recorder.clock()))
    return ExitCode.OK


def _update(args: argparse.Namespace) -> int:
    from datasets.acquire.ccxt_venues import make_exchange
    from datasets.acquire.fetch import Fetcher, utc_now
    from datasets.acquire.retry import RetryPolicy
    from datasets.acquire.update import plan_update, run_dex_update, stored_instrument_venues

    store = Store(args.store)
    plan = plan_update(
        store,
        now=utc_now(),
        venues=args.venue,
        fill_gaps=args.fill_gaps or args.retry_known_gaps,
        retry_known_gaps=args.retry_known_gaps,
    )
    instrument_venues = stored_instrument_venues(store, venues=args.venue)
    for line in plan.lines():
        print(line)
    for venue in instrument_venues:
        print(f"instruments {venue}: refresh, {_instrument_requests(venue)}")
    print(f"{plan.series_count} series, {plan.requests} requests planned")
    if args.dry_run:
        return ExitCode.OK
    for venue in instrument_venues:
        print(_fetch_instruments(store, venue, args.api_url, args.retries))
    fetcher = Fetcher(
        store,
        exchange_factory=lambda venue, market: make_exchange(venue, market, api_url=args.api_url),
        retry=RetryPolicy(attempts=args.retries),
        progress=not args.no_progress,
    )
    # A store of research-venue funding only prints their reports, not an empty ccxt one.
    code = _fetched(fetcher.run(plan.plans)) if plan.plans or not plan.dex else ExitCode.OK
    retry = RetryPolicy(attempts=args.retries)
    for report in run_dex_update(store, plan.dex, api_url=args.api_url, retry=retry, progress=not args.no_progress):
        print(report)
    return code
