"""Pure kernels on timestamp columns: snapping settlement jitter and inferring funding intervals."""

from __future__ import annotations

import polars as pl

from datasets.schemas import interval_label

# Funding clocks venues actually run. A spacing outside this set is a gap or an irregular record.
FUNDING_INTERVALS_SECS = (3_600, 2 * 3_600, 4 * 3_600, 8 * 3_600)


def snap_to_minute(ts: pl.Expr) -> pl.Expr:
    """Round timestamps to the nearest whole minute (settlements are published with ms-to-s jitter)."""
    return ts.dt.round("1m")


def infer_funding_interval(ts: pl.Expr) -> pl.Expr:
    """Return the funding interval label of each settlement in a sorted timestamp column.

    A settlement's interval is the spacing to the previous settlement when that spacing is a
    standard funding clock (1h, 2h, 4h, 8h) confirmed by a neighbouring spacing; other rows (the
    settlement after a gap, an isolated irregular spacing) take the interval in force before them,
    and leading rows the first confirmed interval after them. Null when nothing is confirmed.
    """
    gap = ts.diff().dt.total_seconds()
    standard = gap.is_in(list(FUNDING_INTERVALS_SECS))
    confirmed = standard & ((gap == gap.shift(1)) | (gap == gap.shift(-1)))
    secs = pl.when(confirmed).then(gap).otherwise(None).forward_fill().backward_fill()
    labels = {s: interval_label(s) for s in FUNDING_INTERVALS_SECS}
    return secs.replace_strict(labels, default=None, return_dtype=pl.String)
