"""The report of a paper or live session, built with the backtest's ledger, stats and artefact code.

The node's cache holds orders, fills, positions and account states; ``engine.results.result`` reads
them into the backtest's ledgers and assembles the same ``RunResult``. Funding comes from the paper
funding book (the sandbox does not settle it; the session books each settlement into the sandbox
account, ``engine.live.funding_account``, so the accounts include it as a backtest's do). A replay's
wall-clock timestamps are mapped back to the historical time of the bar they happened on, so the
artefacts line up with a backtest's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from decimal import Decimal
from typing import Any

import polars as pl

from engine.config import RunConfig
from engine.live.funding import Settlement
from engine.results.result import Ledgers, RunResult, assemble_result, read_ledgers
from engine.results.schemas import FUNDING_SCHEMA, frame_of_rows
from engine.run_data import BARS_SCHEMA, FUNDING_UPDATES_SCHEMA, MARKS_SCHEMA, NS, RunData, empty
from engine.venue_models import VenueModel


def funding_frame(settlements: Sequence[Settlement]) -> pl.DataFrame:
    """Return the paper funding ledger in the backtest's ``funding.parquet`` schema."""
    rows = [{column: getattr(s, column) for column in FUNDING_SCHEMA} for s in settlements]
    return frame_of_rows(rows, FUNDING_SCHEMA).sort("ts", "instrument_id")


def _map_times(frame: pl.DataFrame, columns: Sequence[str], to_historical: Callable[[int], int]) -> pl.DataFrame:
    present = [c for c in columns if c in frame.columns]
    if not present or frame.height == 0:
        return frame
    return frame.with_columns(
        pl.col(c).cast(pl.Int64).map_elements(to_historical, return_dtype=pl.Int64, skip_nulls=True).cast(NS).alias(c)
        for c in present
    )


def build_session_result(
    config: RunConfig,
    *,
    cache: Any,
    models: list[VenueModel],
    data: RunData,
    settlements: Sequence[Settlement],
    to_historical: Callable[[int], int],
    mode: str,
    extra: dict[str, Any] | None = None,
) -> RunResult:
    """Return a ``RunResult`` of the session: the same ledgers, stats and artefacts as a backtest.

    ``stats.reconciliation`` compares the ledger with the venue accounts. Paper funding is booked into
    the sandbox accounts, so, as in a backtest, the accounts include the funding ledger.
    """
    read = read_ledgers(cache, models=models, data=data)
    ledgers = Ledgers(
        orders=_map_times(read.orders, ["ts_init", "ts_last"], to_historical),
        fills=_map_times(read.fills, ["ts"], to_historical),
        positions=_map_times(read.positions, ["ts_opened", "ts_closed"], to_historical),
        account=_map_times(read.account, ["ts"], to_historical),
    )
    return assemble_result(
        config,
        ledgers,
        funding=funding_frame(settlements),
        models=models,
        data=data,
        extra={"mode": mode, **(extra or {})},
    )


def observed_run_data(
    bars: Sequence[tuple[str, int, Decimal]], instruments: dict[Any, Any], venue_of: dict[str, str], *, end_ns: int
) -> RunData:
    """Return a ``RunData`` of the bars a session observed on venue data (for its report).

    Each instrument's last close is repeated at ``end_ns`` (the session's end), so fills after the
    last bar (the graceful stop's) fall inside the attribution grid.
    """
    last = {i: close for i, _, close in bars}
    rows = [*bars, *((i, end_ns, close) for i, close in last.items())]
    frame = frame_of_rows([{"instrument_id": i, "ts": ts, "close": close} for i, ts, close in rows], BARS_SCHEMA)
    return RunData(
        instruments=instruments,
        bars=frame.unique(["instrument_id", "ts"], keep="last").sort("ts", "instrument_id"),
        marks=empty(MARKS_SCHEMA),
        funding=empty(FUNDING_UPDATES_SCHEMA),
        venue_of=venue_of,
    )


def replayed_run_data(data: RunData, *, after_ns: int, until_ns: int) -> RunData:
    """Return the part of a replay's ``data`` this session replayed.

    Bars closed in ``(after_ns, until_ns]``, and the marks and funding updates stamped in it.
    """

    def window(frame: pl.DataFrame, column: str, shift_ns: int) -> pl.DataFrame:
        ts = pl.col(column).cast(pl.Int64) + shift_ns
        return frame.filter((ts > after_ns) & (ts <= until_ns))

    return replace(
        data,
        bars=window(data.bars, "ts", 1),
        marks=window(data.marks, "ts", 0),
        funding=window(data.funding, "ts_init", 0),
    )
