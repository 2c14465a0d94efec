"""Exact conversions from source numbers to the store's decimal type.

Sources publish decimal text (``"0.00010000"``) or, like freqtrade's feather files, float64 values
that were parsed from decimal text. A float64 is converted through its shortest round-trip
representation (``0.000081`` -> ``"0.000081"``), which recovers the published decimal exactly;
casting the binary value directly would store ``0.000081000000000000005...`` noise.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation, localcontext

import numpy as np
import polars as pl
import pyarrow as pa

from datasets.schemas import DECIMAL_PRECISION, DECIMAL_SCALE, PL_DECIMAL

# decimal128(38, 18) holds 20 integer digits: magnitudes from this one on do not fit.
MAX_ABS_DECIMAL = 10.0 ** (DECIMAL_PRECISION - DECIMAL_SCALE)
# Scaled magnitudes below this hold at most one decimal of a scale inside a float's round-trip interval.
_EXACT_INT = 2.0**50


def decimal_from_float(expr: pl.Expr) -> pl.Expr:
    """Return ``expr`` (float64) as the store's decimal, through its shortest decimal text.

    NaN and infinities become null; the validator then rejects them where the column is required.
    """
    finite = expr.is_finite()
    return pl.when(finite).then(expr.cast(pl.String)).otherwise(None).cast(PL_DECIMAL, strict=True)


def decimals_from_floats(values: pl.Series) -> pl.Series:
    """Return ``values`` (float64) as the store's decimal: exactly ``decimal_from_float``, without the text.

    Let ``k`` be the largest scale (at most 18) with ``max|v| * 10**k < 2**50`` over the finite values.
    When every finite ``v`` equals ``m / 10**k`` rounded to float64, with ``m = rint(v * 10**k)``, that
    decimal is the value of ``v``'s shortest round-trip text: the check is exact (IEEE division of two
    exact operands rounds correctly), no other ``k``-decimal round-trips (they lie ``10**-k`` apart, ``v``'s
    round-trip interval is under ``10**-k / 4`` wide) and a shorter text would be a ``k``-decimal too. Its
    128-bit integer ``m * 10**(18 - k)`` is then built directly; any other column goes through the text.
    """
    x = values.cast(pl.Float64).to_numpy()
    finite = np.isfinite(x)
    every = bool(finite.all())
    if not every:
        x = np.where(finite, x, 0.0)
    top = float(np.abs(x).max(initial=0.0))
    k = DECIMAL_SCALE
    while k > 0 and top * 10.0**k >= _EXACT_INT:
        k -= 1
    scale = 10.0**k
    m = np.rint(x * scale)
    if float(np.abs(m).max(initial=0.0)) >= _EXACT_INT or not np.array_equal(m / scale, x):
        return values.to_frame().select(decimal_from_float(pl.col(values.name))).to_series()
    ints = pa.array(m.astype(np.int64), mask=None if every else ~finite)
    # At scale 18 - k, m is stored as the 128-bit integer m * 10**(18 - k): read at scale 18 that is m / 10**k.
    scaled = pl.Series(values.name, ints).cast(pl.Decimal(DECIMAL_PRECISION, DECIMAL_SCALE - k)).to_arrow()
    return pl.Series(values.name, scaled.view(pa.decimal128(DECIMAL_PRECISION, DECIMAL_SCALE)))


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
