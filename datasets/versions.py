"""History of versioned metadata (instrument specs, margin tiers): keep a row only when something changed.

A versioned kind (``KindSpec.versioned_by``) stores one *snapshot* per entity (``venue, symbol``) and
``effective_from``: the entity's rows at that time (one instrument row, or all tiers of a symbol).
A snapshot is in force from its ``effective_from`` until the entity's next one. Writing a snapshot
equal to the one in force just before it (ignoring ``effective_from`` and the ``unversioned_columns``
such as ``source``) adds nothing, so fetching unchanged specs again stores nothing new, and a changed
spec adds a snapshot with its own ``effective_from`` (history is kept, nothing is overwritten).

The store's conflict rule still holds on the full key: two different snapshots of one entity at the
same ``effective_from`` are a ``ConflictError``. A legitimate change never meets it, since it comes
with a later ``effective_from`` (the time it was observed).
"""

from __future__ import annotations

import polars as pl

from datasets.schemas import KindSpec

_FINGERPRINT = "_fingerprint"
_IS_NEW = "_is_new"
_NULL = "\x00"


def compared_columns(spec: KindSpec) -> list[str]:
    """Return the columns whose values make two snapshots of an entity differ."""
    ignored = {spec.time_column, *spec.versioned_by, *spec.unversioned_columns}
    return [c for c in spec.columns if c not in ignored]


def changed_versions(spec: KindSpec, stored: pl.DataFrame, new: pl.DataFrame) -> pl.DataFrame:
    """Return the rows of ``new`` whose snapshot differs from the snapshot in force just before it.

    Parameters
    ----------
    spec : KindSpec
        A versioned kind.
    stored : pl.DataFrame
        The stored rows of the entities in ``new`` (any columns superset of the kind's; may be empty).
    new : pl.DataFrame
        Rows about to be written; extra columns (``_row``) are kept.

    Raises
    ------
    ValueError
        If the kind is not versioned.
    """
    if not spec.versioned_by:
        raise ValueError(f"{spec.kind} is not a versioned kind: only kinds with versioned_by keep snapshots")
    if new.height == 0:
        return new
    group = [*spec.versioned_by, spec.time_column]
    snapshots = pl.concat(
        [
            _snapshots(spec, stored.select(spec.columns)).with_columns(pl.lit(False).alias(_IS_NEW)),
            _snapshots(spec, new.select(spec.columns)).with_columns(pl.lit(True).alias(_IS_NEW)),
        ],
        how="vertical",
    )
    # The same snapshot stored and offered again is one snapshot (the stored one); two different
    # snapshots at one time stay both, and the store's merge reports them as a conflict.
    ordered = (
        snapshots.unique(subset=[*group, _FINGERPRINT], keep="first", maintain_order=True)
        .sort([*group, _IS_NEW])
        .with_columns(pl.col(_FINGERPRINT).shift(1).over(spec.versioned_by).alias("_previous"))
    )
    kept = ordered.filter(pl.col(_IS_NEW) & (pl.col(_FINGERPRINT) != pl.col("_previous")).fill_null(True))
    return new.join(kept.select(group), on=group, how="semi", nulls_equal=True)


def _snapshots(spec: KindSpec, rows: pl.DataFrame) -> pl.DataFrame:
    group = [*spec.versioned_by, spec.time_column]
    text = pl.concat_str([pl.col(c).cast(pl.String).fill_null(_NULL) for c in compared_columns(spec)], separator="\x1f")
    return rows.group_by(group, maintain_order=True).agg(text.sort().str.join("\x1e").alias(_FINGERPRINT))
