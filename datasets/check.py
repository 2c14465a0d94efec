"""Soft findings over a store: the backend of ``python -m datasets check``.

Hard invariants (schema, unique keys, positive prices) are enforced when data is written; ``check``
reports what a careful user still wants to know before trusting a series, and never changes data:

========================  ========  ================================================================
code                      severity  what
========================  ========  ================================================================
``gap``                   warning   missing bars, or missing settlements on the series' funding clock
``known_gap``             warning   a gap a download asked the venue for and never got (``datasets.gaps``)
``interval_change``       info      the funding interval changed (Hyperliquid: 8h to 1h on 2023-06-08)
``placeholder``           warning   listing-placeholder bars at the start of a series
``outlier``               warning   a close far from its rolling median; an implausible funding rate
``over_cap``              warning   a funding rate above the venue's published cap (``--allow-extreme``)
``stale``                 warning   a close frozen while trading, a mark price frozen, or rate and mark
                                    price both frozen; ``info`` for runs of bars without any trade
========================  ========  ================================================================

The rules and the reasons for their defaults are in the kernels of ``datasets.findings``.
Liquidations are events, not a clock, so no soft check applies to them.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from typing import TypedDict

import polars as pl

from datasets import findings as kernels
from datasets.findings import Code, Severity
from datasets.gaps import known_gaps_by_series
from datasets.schemas import KINDS, Kind, spec_for
from datasets.store import Store
from datasets.venues import DATA_VENUES


class _SeriesFilters(TypedDict, total=False):
    venue: Sequence[str]
    symbol: Sequence[str]


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckConfig:
    """Thresholds of the soft checks; every field has a default chosen against real data.

    Attributes
    ----------
    outlier_window_bars : int
        Bars in the centred rolling window of the outlier filter.
    outlier_mads : float
        A close is an outlier beyond this many rolling median absolute deviations of log price...
    outlier_min_log_deviation : float
        ...and beyond this log deviation from the rolling median (0.05 is about 5%).
    max_funding_rate_per_hour : float
        Plausibility bound of ``|rate|`` per hour of the funding interval (0.01 = 1% an hour).
    stale_min_bars : int
        Shortest run of identical closes reported as stale.
    stale_min_settlements : int
        Shortest run of settlements repeating both rate and mark price reported as stale.
    placeholder_volume_ratio : float
        A leading bar is untraded at or below this fraction of the series' median volume.
    placeholder_min_flat_bars : int
        Shortest leading run of flat bars at a round price (or without volume) taken as placeholders.
    funding_late_fraction : float
        A settlement up to this fraction of an interval late fills its slot rather than leaving a gap.

    Raises
    ------
    ValueError
        If a threshold is out of its range (the message names it).
    """

    outlier_window_bars: int = kernels.OUTLIER_WINDOW_BARS
    outlier_mads: float = kernels.OUTLIER_MADS
    outlier_min_log_deviation: float = kernels.OUTLIER_MIN_LOG_DEVIATION
    max_funding_rate_per_hour: float = kernels.MAX_FUNDING_RATE_PER_HOUR
    stale_min_bars: int = kernels.STALE_MIN_BARS
    stale_min_settlements: int = kernels.STALE_MIN_SETTLEMENTS
    placeholder_volume_ratio: float = kernels.PLACEHOLDER_VOLUME_RATIO
    placeholder_min_flat_bars: int = kernels.PLACEHOLDER_MIN_FLAT_BARS
    funding_late_fraction: float = kernels.FUNDING_LATE_FRACTION

    def __post_init__(self) -> None:
        minimums = {
            "outlier_window_bars": (self.outlier_window_bars, 3),
            "stale_min_bars": (self.stale_min_bars, 2),
            "stale_min_settlements": (self.stale_min_settlements, 2),
            "placeholder_min_flat_bars": (self.placeholder_min_flat_bars, 1),
        }
        for name, (value, least) in minimums.items():
            if value < least:
                raise ValueError(f"CheckConfig.{name} must be at least {least}, was {value}")
        for name, number in {
            "outlier_mads": self.outlier_mads,
            "outlier_min_log_deviation": self.outlier_min_log_deviation,
            "placeholder_volume_ratio": self.placeholder_volume_ratio,
        }.items():
            if number < 0:
                raise ValueError(f"CheckConfig.{name} must be >= 0, was {number}")
        if not 0 <= self.funding_late_fraction < 1:
            raise ValueError(f"CheckConfig.funding_late_fraction must be in [0, 1), was {self.funding_late_fraction}")
        if self.max_funding_rate_per_hour <= 0:
            raise ValueError(f"CheckConfig.max_funding_rate_per_hour must be > 0, was {self.max_funding_rate_per_hour}")


@dataclass(frozen=True, slots=True)
class Finding:
    """One soft finding about one series.

    Attributes
    ----------
    kind, venue, symbol : str
        The dataset and series the finding is about.
    series : str
        ``"<price_type> <interval>"`` for bars (``"trade 1h"``), ``"funding"`` for settlements.
    code : str
        ``gap``, ``known_gap``, ``interval_change``, ``placeholder``, ``outlier`` or ``stale``.
    severity : str
        ``warning`` (look before trusting the series) or ``info`` (worth knowing).
    ts_start, ts_end : datetime
        First and last timestamp concerned (UTC), equal for a single bar or settlement.
    count : int
        Bars or settlements concerned (missing ones for a gap).
    message : str
        What was expected and what was found.
    """

    kind: Kind
    venue: str
    symbol: str
    series: str
    code: Code
    severity: Severity
    ts_start: datetime
    ts_end: datetime
    count: int
    message: str


def check_bars(bars: pl.LazyFrame | pl.DataFrame, *, config: CheckConfig | None = None) -> pl.LazyFrame:
    """Return the findings of OHLCV bars of one or more series, sorted by series and time.

    ``bars`` holds the canonical OHLCV columns (``market`` may be left out), sorted by ``ts`` within
    each series (venue, symbol, price type, interval). Placeholder bars are reported once, as
    placeholders: the outlier and stale checks skip them (the gap check does not: a placeholder
    bar is still a bar). The result has the series columns then ``FINDING_SCHEMA``.
    """
    config = CheckConfig() if config is None else config
    frame = bars.lazy()
    marked = kernels.mark_placeholders(
        frame, volume_ratio=config.placeholder_volume_ratio, min_flat_bars=config.placeholder_min_flat_bars
    )
    marked = marked.collect().lazy()  # three checks read the marks: compute them once
    real = marked.filter(~pl.col(kernels.PLACEHOLDER))
    outliers = kernels.find_price_outliers(
        real,
        window_bars=config.outlier_window_bars,
        mads=config.outlier_mads,
        min_log_deviation=config.outlier_min_log_deviation,
    )
    return pl.concat(
        [
            kernels.find_bar_gaps(frame),
            kernels.placeholder_findings(marked),
            outliers,
            kernels.find_stale_bars(real, min_bars=config.stale_min_bars),
        ]
    ).sort(*kernels.BAR_SERIES, "ts_start", "code")


def check_funding(funding: pl.LazyFrame | pl.DataFrame, *, config: CheckConfig | None = None) -> pl.LazyFrame:
    """Return the findings of funding settlements of one or more series, sorted by series and time.

    ``funding`` holds the canonical funding columns, sorted by ``ts`` within each series (venue,
    symbol). The result has the series columns then ``FINDING_SCHEMA``.
    """
    config = CheckConfig() if config is None else config
    frame = funding.lazy()
    return pl.concat(
        [
            kernels.find_funding_gaps(frame, late_fraction=config.funding_late_fraction),
            kernels.find_interval_changes(frame),
            kernels.find_rate_outliers(frame, max_rate_per_hour=config.max_funding_rate_per_hour),
            kernels.find_over_cap_rates(frame, _rate_caps(funding)),
            kernels.find_stale_funding(frame, min_settlements=config.stale_min_settlements),
        ]
    ).sort(*kernels.FUNDING_SERIES, "ts_start", "code")


def _rate_caps(funding: pl.LazyFrame | pl.DataFrame) -> dict[tuple[str, str], float]:
    pairs = funding.lazy().select("venue", "interval").unique().collect().rows()
    return {
        (venue, interval): float(DATA_VENUES[venue].funding.cap_for(interval))
        for venue, interval in pairs
        if venue in DATA_VENUES and interval is not None
    }


def check_store(
    store: Store,
    *,
    kinds: Sequence[str] | None = None,
    venues: Sequence[str] | None = None,
    symbols: Sequence[str] | None = None,
    config: CheckConfig | None = None,
) -> list[Finding]:
    """Run every soft check over the matching series of a store; read only, never write.

    Prices, volumes and rates are read as float64 (research vectors: the checks compare and scale,
    they do not account).

    Parameters
    ----------
    store : Store
        The store to read.
    kinds : sequence of str, optional
        Kinds to check (default: all). Liquidations have no soft checks and yield no findings.
    venues, symbols : sequence of str, optional
        Restrict the check to these venues or canonical symbols (default: all).
    config : CheckConfig, optional
        Thresholds (default: ``CheckConfig()``).

    Returns
    -------
    list[Finding]
        Sorted by kind, venue, symbol, series, start time and code.

    Raises
    ------
    ValueError
        If a kind is not one of ``ohlcv``, ``funding``, ``liquidations``.
    """
    config = CheckConfig() if config is None else config
    wanted = [spec_for(kind).kind for kind in (KINDS if kinds is None else kinds)]
    filters: _SeriesFilters = {}
    if venues is not None:
        filters["venue"] = list(venues)
    if symbols is not None:
        filters["symbol"] = list(symbols)
    plans: list[pl.LazyFrame] = []
    if "ohlcv" in wanted:
        bars = store.scan("ohlcv", floats=True, **filters).drop("market").sort(*kernels.BAR_SERIES, "ts").collect()
        found = check_bars(bars, config=config)
        plans.append(_described(found, "ohlcv", pl.format("{} {}", pl.col("price_type"), pl.col("interval"))))
    if "funding" in wanted:
        funding = store.scan("funding", floats=True, **filters).sort(*kernels.FUNDING_SERIES, "ts").collect()
        plans.append(_described(check_funding(funding, config=config), "funding", pl.lit("funding")))
    frames = pl.collect_all(plans)
    rows = [row for frame in frames for row in frame.iter_rows(named=True)]
    findings = _with_known_gaps(store, [Finding(**row) for row in rows])
    return sorted(findings, key=lambda f: (f.kind, f.venue, f.symbol, f.series, f.ts_start, f.code))


def _with_known_gaps(store: Store, findings: list[Finding]) -> list[Finding]:
    # A gap that a download recorded as never returned by the venue is reported as such.
    if not any(f.code == "gap" for f in findings):
        return findings
    recorded = {
        kind: known_gaps_by_series(store, kind, names)
        for kind, names in (("ohlcv", ("venue", "symbol", "price_type", "interval")), ("funding", ("venue", "symbol")))
    }
    marked = []
    for finding in findings:
        key = (finding.venue, finding.symbol, *([] if finding.kind == "funding" else finding.series.split(" ", 1)))
        gaps = recorded.get(finding.kind, {}).get(tuple(key), []) if finding.code == "gap" else []
        hits = [gap for gap in gaps if gap.overlaps(finding.ts_start, finding.ts_end)]
        if hits:
            known = "; ".join(gap.describe() for gap in hits)
            finding = replace(
                finding,
                code="known_gap",
                message=f"{finding.message}; recorded as a known gap: {known}; "
                "`python -m datasets update --retry-known-gaps` asks again",
            )
        marked.append(finding)
    return marked


def _described(findings: pl.LazyFrame, kind: Kind, series: pl.Expr) -> pl.LazyFrame:
    return findings.select(
        pl.lit(kind).alias("kind"),
        "venue",
        "symbol",
        series.alias("series"),
        *kernels.FINDING_SCHEMA.names(),
    )


def findings_to_json(findings: Iterable[Finding]) -> str:
    """Return the findings as a JSON array of objects, timestamps in ISO 8601 UTC."""
    rows = []
    for finding in findings:
        row = asdict(finding)
        row["ts_start"] = finding.ts_start.isoformat()
        row["ts_end"] = finding.ts_end.isoformat()
        rows.append(row)
    return json.dumps(rows, indent=2)


def format_findings(findings: Sequence[Finding]) -> str:
    """Return a compact table of the findings for a terminal, with a count per code at the end."""
    if not findings:
        return "no findings"
    header = ("severity", "code", "venue", "symbol", "series", "start", "end", "count", "message")
    rows = [
        (
            f.severity,
            f.code,
            f.venue,
            f.symbol,
            f.series,
            f.ts_start.strftime("%Y-%m-%d %H:%M"),
            f.ts_end.strftime("%Y-%m-%d %H:%M"),
            str(f.count),
            f.message,
        )
        for f in findings
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header) - 1)]
    lines = [
        "  ".join([*(cell.ljust(w) for cell, w in zip(row[:-1], widths, strict=True)), row[-1]])
        for row in [header, *rows]
    ]
    codes = Counter(f.code for f in findings)
    severities = Counter(f.severity for f in findings)
    by_code = ", ".join(f"{codes[code]} {code}" for code in kernels.CODES if codes[code])
    by_severity = ", ".join(f"{severities[level]} {level}" for level in kernels.SEVERITIES if severities[level])
    lines.append(f"{len(findings)} finding(s) ({by_severity}): {by_code}")
    return "\n".join(lines)
