"""Hard invariants every batch must satisfy before anything reaches the store.

A batch is a polars DataFrame with the kind's canonical columns plus ``_row``: the row of the source
file each record came from, so an error can point a user at the line to fix. The first violation
raises ``ValidationError`` naming the source, the row and the field; nothing is written.
"""

from __future__ import annotations

from dataclasses import dataclass

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
    _first_violation(batch, [*_required(spec), *_labels(batch), *_numbers(spec)], source)
    _check_unique_key(batch, spec, source)


@dataclass(frozen=True, slots=True)
class _Rule:
    mask: pl.Expr
    field: str
    message: str


def _first_violation(batch: pl.DataFrame, rules: list[_Rule], source: str) -> None:
    hits = batch.select(pl.coalesce(r.mask, False).arg_true().first().alias(str(i)) for i, r in enumerate(rules))
    for i, rule in enumerate(rules):
        hit = hits[str(i)][0]
        if hit is not None:
            value = batch[rule.field][hit] if rule.field in batch.columns else None
            raise ValidationError(source, batch[ROW][hit], rule.field, rule.message.format(value=value))


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


def _required(spec: KindSpec) -> list[_Rule]:
    return [
        _Rule(pl.col(f.name).is_null(), f.name, "is empty or could not be parsed; it is required")
        for f in spec.schema
        if not f.nullable
    ]


def _labels(batch: pl.DataFrame) -> list[_Rule]:
    rules = []
    patterns = {"venue": VENUE_PATTERN, "symbol": SYMBOL_PATTERN, "interval": INTERVAL_PATTERN}
    for name, pattern in patterns.items():
        if name in batch.columns:
            rule = _Rule(
                ~pl.col(name).str.contains(pattern.pattern), name, f"must match {pattern.pattern}, was {{value!r}}"
            )
            rules.append(rule)
    choices = {"market": MARKETS, "price_type": PRICE_TYPES, "side": LIQUIDATED_SIDES}
    for name, allowed in choices.items():
        if name in batch.columns:
            mask = pl.col(name).is_not_null() & ~pl.col(name).is_in(list(allowed))
            rules.append(_Rule(mask, name, f"must be one of {', '.join(allowed)}, was {{value!r}}"))
    return rules


def _numbers(spec: KindSpec) -> list[_Rule]:
    rules = [_Rule(pl.col(name) <= 0, name, "prices must be > 0, was {value}") for name in spec.price_columns]
    rules += [_Rule(pl.col(name) < 0, name, "must be >= 0, was {value}") for name in spec.nonnegative_columns]
    if spec.kind == "ohlcv":
        top = pl.max_horizontal("open", "close")
        bottom = pl.min_horizontal("open", "close")
        rules.append(_Rule(pl.col("high") < top, "high", "high must be >= max(open, close), was {value}"))
        rules.append(_Rule(pl.col("low") > bottom, "low", "low must be <= min(open, close), was {value}"))
    return rules


def _check_unique_key(batch: pl.DataFrame, spec: KindSpec, source: str) -> None:
    if not batch.select(pl.struct(spec.key).is_duplicated().any()).item():
        return
    clashes = batch.with_columns(_n=pl.struct(spec.columns).n_unique().over(spec.key))
    rule = _Rule(
        pl.col("_n") > 1,
        "ts",
        f"key ({', '.join(spec.key)}) appears more than once with different values at ts={{value}}; "
        "the source holds two records for one key: fix or split the input",
    )
    _first_violation(clashes, [rule], source)
