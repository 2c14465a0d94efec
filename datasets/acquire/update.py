"""Bring every downloadable series already in the store up to now.

The series come from the store itself: each partition's values (venue, symbol, and for candles the
price type and interval) name a series, its footer says where it ends, and its lineage says which
inputs built it. Each series continues from its last stored row (``plan_series`` without ``since``),
whatever first put it there (a file import or an earlier fetch), and by default the holes between its
stored rows are fetched too, except the known gaps the venue was asked for before and did not return
(``datasets.gaps``; ``retry_known_gaps`` asks for them again). The funding of the research-only
venues (dYdX, Drift, Lighter: ``datasets.acquire.dex_funding``) continues from the hour after its last
stored settlement (holes between stored settlements are left to ``fetch --since``). Series nothing can
extend (index candles, a venue without a fetcher, liquidations) are listed as skipped with the reason.
Instrument specs are refreshed for every venue that has some stored (``stored_instrument_venues``):
a refresh stores a new version only where a spec changed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from datasets.acquire.ccxt_venues import CCXT_VENUES, FetchKind
from datasets.acquire.dex_funding import (
    DEX_VENUES,
    DexFetchReport,
    DexPlan,
    dex_base,
    fetch_dex_funding,
    plan_dex_funding,
    planned_requests,
)
from datasets.acquire.errors import PlanError
from datasets.acquire.fetch import Series, SeriesPlan, plan_series
from datasets.acquire.retry import RetryPolicy
from datasets.store import Store

PRICE_TYPE_KINDS: dict[str, FetchKind] = {"trade": "ohlcv", "mark": "mark"}


@dataclass(frozen=True, slots=True)
class UpdatePlan:
    """The fetch plans of an update, the series left out (with why), and each series' lineage importers.

    ``plans`` go through ccxt (``datasets.acquire.fetch``), ``dex`` through ``datasets.acquire.dex_funding``;
    ``importers`` is keyed by the series' ``describe()``.
    """

    plans: tuple[SeriesPlan, ...]
    skipped: tuple[str, ...]
    importers: dict[str, tuple[str, ...]]
    dex: tuple[DexPlan, ...] = ()

    @property
    def requests(self) -> int:
        return sum(plan.requests for plan in self.plans) + planned_requests(self.dex)

    @property
    def series_count(self) -> int:
        return len(self.plans) + len(self.dex)

    def lines(self) -> list[str]:
        """Return one line per planned series (with the importers that built it) and per skipped one."""
        described = [(plan.series.describe(), plan.describe()) for plan in self.plans]
        described += [(f"{plan.venue} {plan.symbol} funding", plan.describe()) for plan in self.dex]
        lines = [f"{line} [from {', '.join(self.importers[name])}]" for name, line in described]
        return lines + [f"skipped {reason}" for reason in self.skipped]


def plan_update(
    store: Store,
    *,
    now: datetime,
    venues: Sequence[str] | None = None,
    fill_gaps: bool = True,
    retry_known_gaps: bool = False,
) -> UpdatePlan:
    """Return what an update would download to bring every stored series up to ``now``; no network.

    With ``fill_gaps`` (the default) each series' holes between stored rows are planned too, except
    its known gaps unless ``retry_known_gaps``.
    """
    found: dict[Series, set[str]] = {}
    dex: dict[tuple[str, str], set[str]] = {}
    skipped: list[str] = []
    for kind in ("ohlcv", "funding"):
        if not (store.root / kind).is_dir():
            continue
        for info in store.partitions(kind):
            values = info.values
            if venues and values["venue"] not in venues:
                continue
            if kind == "funding" and values["venue"] in DEX_VENUES:
                dex.setdefault((values["venue"], values["symbol"]), set()).update(e.importer for e in info.lineage)
                continue
            try:
                series = _series(kind, values)
            except PlanError as exc:
                reason = f"{kind} {values['venue']} {values['symbol']} {values.get('price_type', '')}: {exc}"
                if reason not in skipped:
                    skipped.append(reason)
                continue
            found.setdefault(series, set()).update(entry.importer for entry in info.lineage)
    plans = tuple(
        plan_series(store, series, since=None, now=now, fill_gaps=fill_gaps, retry_known_gaps=retry_known_gaps)
        for series in sorted(found, key=_order)
    )
    importers = {s.describe(): tuple(sorted(i)) for s, i in found.items()}
    importers |= {f"{venue} {symbol} funding": tuple(sorted(i)) for (venue, symbol), i in dex.items()}
    return UpdatePlan(
        plans=plans,
        skipped=tuple(skipped),
        importers=importers,
        dex=tuple(plan_dex_funding(store, venue, symbol, now=now) for venue, symbol in sorted(dex)),
    )


def run_dex_update(
    store: Store,
    plans: Sequence[DexPlan],
    *,
    api_url: str | None = None,
    retry: RetryPolicy | None = None,
    progress: bool = False,
) -> list[DexFetchReport]:
    """Fetch what ``plans`` (``UpdatePlan.dex``) are missing, venue by venue; return one report per venue fetched.

    Each symbol is written in one store write once its pages are in, so a failure leaves every symbol
    either brought up to date or as it was, and a next update continues from what was stored.

    Raises
    ------
    FetchError, MalformedPageError, PlanError
        As ``fetch_dex_funding``, naming the venue and the endpoint.
    """
    reports = []
    for venue in dict.fromkeys(plan.venue for plan in plans):
        pending = [plan for plan in plans if plan.venue == venue and plan.requests]
        if not pending:
            continue
        reports.append(
            fetch_dex_funding(
                store,
                venue,
                [dex_base(plan.symbol) for plan in pending],
                since=None,
                until=pending[0].end,
                api_url=api_url,
                retry=retry,
                progress=progress,
            )
        )
    return reports


def stored_instrument_venues(store: Store, *, venues: Sequence[str] | None = None) -> list[str]:
    """Return the venues with instrument specs in the store that can be fetched (those ``update`` refreshes)."""
    if not (store.root / "instruments").is_dir():
        return []
    found = {info.values["venue"] for info in store.partitions("instruments")}
    return sorted(v for v in found if v in CCXT_VENUES and (not venues or v in venues))


def _series(kind: str, values: dict[str, str]) -> Series:
    if kind == "funding":
        return Series(values["venue"], "funding", values["symbol"])
    fetch_kind = PRICE_TYPE_KINDS.get(values["price_type"])
    if fetch_kind is None:
        raise PlanError(f"{values['price_type']} candles cannot be fetched (trade and mark only)")
    return Series(values["venue"], fetch_kind, values["symbol"], values["interval"])


def _order(series: Series) -> tuple[str, str, str, str]:
    return (series.venue, series.symbol, series.kind, series.interval or "")
