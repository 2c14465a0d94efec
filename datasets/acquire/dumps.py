"""Binance public dumps (data.binance.vision): kline and funding zips, verified, then imported.

Each file is published as ``<name>.zip`` beside ``<name>.zip.CHECKSUM`` holding ``<sha256>  <name>.zip``.
A zip is imported only when its sha256 matches; a mismatch raises ``ChecksumError`` and nothing of it
is written. The CSV inside is extracted into a folder that mirrors the dump's own layout (so the
importer reads spot/futures and mark/index from the path) and read by the existing importers
(``binance_vision`` for klines, ``binance_dump_funding`` for ``fundingRate``). Lineage records the zip's
URL and sha256, so a second run skips every file already imported without touching the network.
A file the dump does not have (HTTP 404: a month not yet closed, a symbol not yet listed) is
skipped and reported.

Layout (``<T>`` ticker such as ``BTCUSDT``, ``<I>`` interval, ``<P>`` ``YYYY-MM`` or ``YYYY-MM-DD``)::

    data/spot/{monthly|daily}/klines/<T>/<I>/<T>-<I>-<P>.zip
    data/futures/um/{monthly|daily}/{klines|markPriceKlines|indexPriceKlines}/<T>/<I>/<T>-<I>-<P>.zip
    data/futures/um/monthly/fundingRate/<T>/<T>-fundingRate-<P>.zip
"""

from __future__ import annotations

import hashlib
import io
import logging
import re
import shutil
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import Literal

from tqdm import tqdm

from datasets.acquire.errors import ChecksumError, FetchError, MalformedPageError, PlanError
from datasets.acquire.retry import RetryPolicy, call_with_retry
from datasets.importers import require_importer
from datasets.importers.base import ImportOptions
from datasets.schemas import interval_secs
from datasets.store import SourceInfo, Store
from datasets.symbols import PERP_SUFFIX

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://data.binance.vision"
DEFAULT_TIMEOUT_SECS = 60.0
DumpKind = Literal["klines", "markPriceKlines", "indexPriceKlines", "fundingRate"]
DUMP_KINDS: tuple[DumpKind, ...] = ("klines", "markPriceKlines", "indexPriceKlines", "fundingRate")
Period = Literal["monthly", "daily"]
CHECKSUM_LINE = re.compile(r"^(?P<sha256>[0-9a-fA-F]{64})\s+\*?(?P<name>\S+)\s*$")


class TransientHTTPError(Exception):
    """An HTTP failure worth retrying: 429, a 5xx, a timeout or a dropped connection."""


HttpGet = Callable[[str], bytes | None]


def http_get(url: str, *, timeout_secs: float = DEFAULT_TIMEOUT_SECS) -> bytes | None:
    """Return the body at ``url``, or None on HTTP 404.

    Raises
    ------
    TransientHTTPError
        On 429, 5xx, timeouts and connection failures (the caller retries).
    FetchError
        On any other HTTP error status.
    """
    if not url.startswith(("http://", "https://")):
        raise PlanError(f"dump URLs must be http(s), was {url!r}")
    try:
        with urllib.request.urlopen(url, timeout=timeout_secs) as response:  # noqa: S310 (scheme checked above)
            body: bytes = response.read()
            return body
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None
        if exc.code == 429 or exc.code >= 500:
            raise TransientHTTPError(f"HTTP {exc.code} from {url}") from exc
        raise FetchError(f"{url}: HTTP {exc.code} {exc.reason}; the dump refused the request") from exc
    except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
        raise TransientHTTPError(f"{url}: {exc}") from exc


@dataclass(frozen=True, slots=True)
class DumpFile:
    """One published dump zip."""

    base_url: str
    market: Literal["spot", "perp"]
    kind: DumpKind
    ticker: str
    interval: str | None
    period: Period
    label: str

    @property
    def name(self) -> str:
        middle = "fundingRate" if self.kind == "fundingRate" else str(self.interval)
        return f"{self.ticker}-{middle}-{self.label}.zip"

    @property
    def relative(self) -> PurePosixPath:
        root = PurePosixPath("data", "spot") if self.market == "spot" else PurePosixPath("data", "futures", "um")
        folder = root / self.period / self.kind / self.ticker
        if self.interval is not None:
            folder = folder / self.interval
        return folder / self.name

    @property
    def url(self) -> str:
        return f"{self.base_url.rstrip('/')}/{self.relative}"

    @property
    def checksum_url(self) -> str:
        return f"{self.url}.CHECKSUM"


@dataclass(slots=True)
class DumpReport:
    """What a dump download did."""

    planned: int = 0
    imported: int = 0
    already_imported: int = 0
    not_published: list[str] = field(default_factory=list)
    rows: int = 0
    bytes_downloaded: int = 0

    def __str__(self) -> str:
        return (
            f"{self.planned} files planned: {self.imported} imported ({self.rows:,} rows, "
            f"{self.bytes_downloaded:,} bytes), {self.already_imported} already imported, "
            f"{len(self.not_published)} not published"
        )


def plan_dumps(
    symbols: Sequence[str],
    *,
    kind: DumpKind,
    start: date,
    end: date,
    interval: str | None = "1h",
    period: Period = "monthly",
    base_url: str = DEFAULT_BASE_URL,
) -> list[DumpFile]:
    """Return the dump files covering ``[start, end]`` (whole months or days) for canonical ``symbols``; no network.

    Raises
    ------
    PlanError
        If a symbol, kind, interval or period does not exist in the dumps, or ``start`` is after ``end``.
    """
    if start > end:
        raise PlanError(f"the first period must not be after the last, was {start} and {end}")
    if kind == "fundingRate":
        if period != "monthly":
            raise PlanError("Binance publishes fundingRate dumps monthly only: use --period monthly")
        interval = None
    elif interval is None:
        raise PlanError(f"{kind} dumps need an interval such as 1h")
    else:
        interval_secs(interval)
    files = []
    for symbol in symbols:
        market: Literal["spot", "perp"] = "perp" if symbol.endswith(PERP_SUFFIX) else "spot"
        if market == "spot" and kind != "klines":
            raise PlanError(f"{symbol}: spot dumps hold trade klines only, not {kind}; use a -PERP symbol")
        parts = symbol.removesuffix(PERP_SUFFIX).split("-")
        if len(parts) != 2:
            raise PlanError(f"expected a canonical symbol like BTC-USDT-PERP, was {symbol!r}")
        ticker = "".join(parts)
        for label in _labels(start, end, period):
            files.append(DumpFile(base_url, market, kind, ticker, interval, period, label))
    return files


def _labels(start: date, end: date, period: Period) -> list[str]:
    if period == "daily":
        return [(start + timedelta(days=n)).isoformat() for n in range((end - start).days + 1)]
    labels = []
    year, month = start.year, start.month
    while (year, month) <= (end.year, end.month):
        labels.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return labels


def parse_checksum(text: str, *, expected_name: str, url: str) -> str:
    """Return the sha256 in a ``.CHECKSUM`` file (``<sha256>  <name>``).

    Raises
    ------
    ChecksumError
        If the text is not one such line, or names another file.
    """
    match = CHECKSUM_LINE.match(text.strip())
    if match is None:
        raise ChecksumError(f"{url}: expected '<sha256>  <file name>', was {text[:120]!r}")
    if match["name"] != expected_name:
        raise ChecksumError(f"{url}: the checksum is for {match['name']!r}, expected {expected_name!r}")
    return match["sha256"].lower()


class DumpDownloader:
    """Download, verify and import Binance dump files.

    Parameters
    ----------
    store : Store
        Where rows go.
    workdir : Path
        Where zips are extracted (in the dump's own layout); extracted CSVs are removed after import.
    get : callable, optional
        ``url -> bytes | None`` (None for 404); default ``http_get``.
    retry : RetryPolicy, optional
        Backoff for transient HTTP errors.
    progress : bool
        Show a tqdm bar.
    clock : callable
        Current UTC time, for lineage.
    """

    def __init__(
        self,
        store: Store,
        *,
        workdir: Path,
        get: HttpGet | None = None,
        retry: RetryPolicy | None = None,
        progress: bool = False,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store = store
        self.workdir = workdir
        self.get: HttpGet = get or http_get
        self.retry = retry or RetryPolicy()
        self.progress = progress
        self.clock = clock

    def run(self, files: Sequence[DumpFile]) -> DumpReport:
        """Download, verify and import every file not imported before.

        Raises
        ------
        ChecksumError
            If a zip does not match its checksum (files before it stay imported; it is not).
        RetryExhaustedError, FetchError
            If the dump keeps failing or refuses a request.
        SourceFormatError, ValidationError, ConflictError
            If a CSV inside is malformed or disagrees with stored rows.
        """
        report = DumpReport(planned=len(files))
        known = self._imported_sources()
        for dump in tqdm(files, desc="binance dumps", unit="file", disable=not self.progress):
            if dump.url in known:
                report.already_imported += 1
                continue
            self._one(dump, report)
        return report

    def _imported_sources(self) -> set[str]:
        if not self.store.root.is_dir():
            return set()
        return {entry.source for info in self.store.partitions() for entry in info.lineage}

    def _fetch(self, url: str) -> bytes | None:
        return call_with_retry(lambda: self.get(url), self.retry, what=url, transient=(TransientHTTPError,))

    def _one(self, dump: DumpFile, report: DumpReport) -> None:
        checksum_text = self._fetch(dump.checksum_url)
        if checksum_text is None:
            log.info("%s: not published (404), skipped", dump.url)
            report.not_published.append(dump.url)
            return
        expected = parse_checksum(
            checksum_text.decode("utf-8", errors="replace"), expected_name=dump.name, url=dump.checksum_url
        )
        body = self._fetch(dump.url)
        if body is None:
            raise FetchError(f"{dump.url}: the checksum is published but the zip is not (404); try again later")
        report.bytes_downloaded += len(body)
        actual = hashlib.sha256(body).hexdigest()
        if actual != expected:
            raise ChecksumError(
                f"{dump.url}: sha256 {actual} does not match the published {expected} ({dump.checksum_url}); "
                "the download is corrupt or was changed: nothing of it was imported, run again to re-download"
            )
        folder = self.workdir / dump.relative.parent
        csv_path = _extract_csv(body, folder, dump)
        try:
            importer = require_importer(csv_path)
            info = SourceInfo(
                source=dump.url,
                sha256=actual,
                importer=importer.name,
                importer_version=importer.version,
                extra=(
                    ("venue", "binance"),
                    ("checksum_url", dump.checksum_url),
                    ("member", csv_path.name),
                    ("fetched_at", self.clock().astimezone(UTC).isoformat()),
                ),
            )
            for batch in importer.read(csv_path, ImportOptions(venue="binance")):
                summary = self.store.write(batch.kind, batch.frame, info)
                report.rows += summary.rows_in
        finally:
            csv_path.unlink(missing_ok=True)
        report.imported += 1
        log.info("%s: imported", dump.url)


def _extract_csv(body: bytes, folder: Path, dump: DumpFile) -> Path:
    expected = dump.name.removesuffix(".zip") + ".csv"
    try:
        with zipfile.ZipFile(io.BytesIO(body)) as archive:
            names = [n for n in archive.namelist() if not n.endswith("/")]
            if names != [expected]:
                raise MalformedPageError(f"{dump.url}: expected one member {expected!r}, found {names}")
            folder.mkdir(parents=True, exist_ok=True)
            target = folder / expected
            with archive.open(expected) as source, open(target, "wb") as sink:
                shutil.copyfileobj(source, sink)
            return target
    except zipfile.BadZipFile as exc:
        raise MalformedPageError(f"{dump.url}: matches its checksum but is not a zip ({exc})") from exc
