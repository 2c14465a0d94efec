"""Exact conversions from source numbers to the store's decimal type.

Sources publish decimal text (``"0.00010000"``) or, like freqtrade's feather files, float64 values
that were parsed from decimal text. A float64 is converted through its shortest round-trip
representation (``0.000081`` -> ``"0.000081"``), which recovers the published decimal exactly;
casting the binary value directly would store ``0.000081000000000000005...`` noise.
"""

from __future__ import annotations

import polars as pl

from datasets.schemas import DECIMAL_PRECISION, DECIMAL_SCALE, PL_DECIMAL

# decimal128(38, 18) holds 20 integer digits: magnitudes from this one on do not fit.
MAX_ABS_DECIMAL = 10.0 ** (DECIMAL_PRECISION - DECIMAL_SCALE)


def decimal_from_float(expr: pl.Expr) -> pl.Expr:
    """Return ``expr`` (float64) as the store's decimal, through its shortest decimal text.

    NaN and infinities become null; the validator then rejects them where the column is required.
    """
    finite = expr.is_finite()
    return pl.when(finite).then(expr.cast(pl.String)).otherwise(None).cast(PL_DECIMAL, strict=True)


def decimal_from_text(expr: pl.Expr, *, percent: bool = False) -> pl.Expr:
    """Return ``expr`` (decimal text such as ``"0.0001"``, ``"1e-5"`` or ``"0.010000%"``) as the store's decimal.

    Text that does not parse becomes null (callers that must name the bad row check nulls first
    with ``unparseable_text``). With ``percent=True`` a trailing ``%`` is required and the value is
    divided by 100 exactly.
    """
    text = expr.str.strip_chars()
    if percent:
        text = text.str.strip_suffix("%")
    value = text.cast(PL_DECIMAL, strict=False)
    if percent:
        value = (value / 100).cast(PL_DECIMAL)
    return value


def unparseable_text(frame: pl.DataFrame, column: str) -> int | None:
    """Return the index of the first row whose ``column`` is non-empty text that is not a number, else None."""
    text = pl.col(column).str.strip_chars().str.strip_suffix("%")
    bad = frame.select(
        (text.is_not_null() & (text != "") & text.cast(PL_DECIMAL, strict=False).is_null()).arg_true().first()
    ).item()
    return None if bad is None else int(bad)


def too_precise_text(expr: pl.Expr) -> pl.Expr:
    """Return where decimal text (plain notation) has a non-zero digit beyond the store's 18 decimal places."""
    return expr.str.strip_chars().str.contains(rf"\.\d{{{DECIMAL_SCALE}}}\d*[1-9]")
