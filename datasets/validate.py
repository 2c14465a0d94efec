"""Hard invariants every batch must satisfy before anything reaches the store.

A batch is a polars DataFrame with the kind's canonical columns plus ``_row``: the row of the source
file each record came from, so an error can point a user at the line to fix. The first violation
raises ``ValidationError`` naming the source, the row and the field; nothing is written.
"""

from __future__ import annotations

import polars as pl

from datasets.errors import ValidationError
from datasets.schemas import (
    INTERVAL_PATTERN,
    LIQUIDATED_SIDES,
    MARKETS,
    PRICE_TYPES,
    SYMBOL_PATTERN,
    VENUE_PATTERN,
    KindSpec,
)

ROW = "_row"


def validate_batch(batch: pl.DataFrame, spec: KindSpec, *, source: str) -> None:
    """Check ``batch`` against every hard invariant of ``spec``.

    Parameters
    ----------
    batch : pl.DataFrame
        Canonical columns of ``spec`` plus ``_row``.
    spec : KindSpec
        The kind the batch claims to be.
    source : str
        Name of the input, used in error messages.

    Raises
    ------
    ValidationError
        At the first broken invariant: wrong or missing columns, wrong types, nulls in required
        fields, non-UTC or unparsed timestamps, bad labels, non-positive prices, negative volumes,
        high/low outside open/close, or duplicate keys with different values.
    """
    _check_columns(batch, spec, source)
    if batch.height == 0:
        return
    _check_required(batch, spec, source)
    _check_labels(batch, spec, source)
    _check_numbers(batch, spec, source)
    _check_unique_key(batch, spec, source)


def _fail_at(batch: pl.DataFrame, mask: pl.Expr, field: str, source: str, message: str) -> None:
    hit = batch.select(mask.fill_null(False).arg_true().first()).item()
    if hit is None:
        return
    row = batch[ROW][hit]
    value = batch[field][hit] if field in batch.columns else None
    raise ValidationError(source, row, field, message.format(value=value))


def _check_columns(batch: pl.DataFrame, spec: KindSpec, source: str) -> None:
    expected = spec.polars_schema
    missing = [name for name in expected if name not in batch.columns]
    if missing:
        raise ValidationError(
            source, None, missing[0], f"column is missing; a {spec.kind} batch needs {', '.join(expected)}"
        )
    if ROW not in batch.columns:
        raise ValidationError(source, None, ROW, "column is missing: importers must record the source row")
    extra = [name for name in batch.columns if name not in expected and name != ROW]
    if extra:
        raise ValidationError(source, None, extra[0], f"column is not part of the {spec.kind} schema; drop it")
    for name, dtype in expected.items():
        if batch.schema[name] != dtype:
            raise ValidationError(
                source, None, name, f"expected type {dtype}, was {batch.schema[name]}; convert it in the importer"
            )


def _check_required(batch: pl.DataFrame, spec: KindSpec, source: str) -> None:
    for field in spec.schema:
        if not field.nullable:
            _fail_at(
                batch,
                pl.col(field.name).is_null(),
                field.name,
                source,
                "is empty or could not be parsed; it is required",
            )


def _check_labels(batch: pl.DataFrame, spec: KindSpec, source: str) -> None:
    patterns = {"venue": VENUE_PATTERN, "symbol": SYMBOL_PATTERN, "interval": INTERVAL_PATTERN}
    for name, pattern in patterns.items():
        if name in batch.columns:
            _fail_at(
                batch,
                ~pl.col(name).str.contains(pattern.pattern),
                name,
                source,
                f"must match {pattern.pattern}, was {{value!r}}",
            )
    choices = {"market": MARKETS, "price_type": PRICE_TYPES, "side": LIQUIDATED_SIDES}
    for name, allowed in choices.items():
        if name in batch.columns:
            _fail_at(
                batch,
                pl.col(name).is_not_null() & ~pl.col(name).is_in(list(allowed)),
                name,
                source,
                f"must be one of {', '.join(allowed)}, was {{value!r}}",
            )


def _check_numbers(batch: pl.DataFrame, spec: KindSpec, source: str) -> None:
    for name in spec.price_columns:
        _fail_at(batch, pl.col(name) <= 0, name, source, "prices must be > 0, was {value}")
    for name in spec.nonnegative_columns:
        _fail_at(batch, pl.col(name) < 0, name, source, "must be >= 0, was {value}")
    if spec.kind == "ohlcv":
        top = pl.max_horizontal("open", "close")
        bottom = pl.min_horizontal("open", "close")
        _fail_at(batch, pl.col("high") < top, "high", source, "high must be >= max(open, close), was {value}")
        _fail_at(batch, pl.col("low") > bottom, "low", source, "low must be <= min(open, close), was {value}")


def _check_unique_key(batch: pl.DataFrame, spec: KindSpec, source: str) -> None:
    distinct = batch.drop(ROW).unique(maintain_order=True)
    if distinct.height == batch.height and not batch.select(spec.key).is_duplicated().any():
        return
    clashes = batch.with_columns(
        _n=pl.struct(spec.columns).n_unique().over(spec.key),
    )
    _fail_at(
        clashes,
        pl.col("_n") > 1,
        "ts",
        source,
        f"key ({', '.join(spec.key)}) appears more than once with different values at ts={{value}}; "
        "the source holds two records for one key: fix or split the input",
    )
