"""Exact conversions from source numbers to the store's decimal type.

Sources publish decimal text (``"0.00010000"``) or, like freqtrade's feather files, float64 values
that were parsed from decimal text. A float64 is converted through its shortest round-trip
representation (``0.000081`` -> ``"0.000081"``), which recovers the published decimal exactly;
casting the binary value directly would store ``0.000081000000000000005...`` noise.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation, localcontext

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


_QUANTUM = Decimal(1).scaleb(-DECIMAL_SCALE)


def exact_decimal(value: object) -> Decimal | None:
    """Return a number a venue sent (decimal text, an int, or a JSON float) as an exact Decimal; None when absent.

    A float goes through its shortest round-trip text (``0.015`` -> ``Decimal("0.015")``), which
    recovers the decimal the venue wrote. Empty text, None, booleans and containers are absent.

    Raises
    ------
    ValueError
        If the value is not a finite decimal with at most 18 decimals and 20 integer digits.
    """
    if value is None or isinstance(value, bool | dict | list):
        return None
    text = repr(value) if isinstance(value, float) else str(value).strip()
    if not text:
        return None
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"expected a decimal number, was {value!r}") from None
    if not number.is_finite():
        raise ValueError(f"expected a finite decimal number, was {value!r}")
    with localcontext(prec=2 * DECIMAL_PRECISION):
        fits = number.adjusted() < DECIMAL_PRECISION - DECIMAL_SCALE and number == number.quantize(_QUANTUM)
    if not fits:
        raise ValueError(f"expected at most {DECIMAL_SCALE} decimals and 20 integer digits, was {value!r}")
    return number


def reciprocal(value: Decimal) -> Decimal:
    """Return ``1 / value`` at the store's 18 decimals (an initial margin rate from a maximum leverage)."""
    return (Decimal(1) / value).quantize(_QUANTUM)
