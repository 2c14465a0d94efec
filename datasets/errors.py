"""Exceptions raised by the data pipelines.

Every message says what was expected, what was found and how to fix it.
"""

from __future__ import annotations


class DatasetError(Exception):
    """Root of every error raised by ``datasets``."""


class SourceFormatError(DatasetError):
    """An input file cannot be parsed as the format its importer expects."""


class EmptyInputError(SourceFormatError):
    """An input holds no records (a 0-byte file, a header only, an empty payload list, an empty folder)."""


class UnknownSourceError(DatasetError):
    """No importer recognises an input file."""


class ValidationError(DatasetError):
    """A batch breaks a hard invariant of the canonical schema.

    Parameters
    ----------
    source : str
        The input the batch came from (a path or a URL).
    row : int | None
        Zero-based row of the batch, in source order, where the first violation sits.
    field : str
        The offending column.
    message : str
        What was expected, what was found, and how to fix it.
    """

    def __init__(self, source: str, row: int | None, field: str, message: str) -> None:
        self.source = source
        self.row = row
        self.field = field
        where = f"row {row}" if row is not None else "batch"
        super().__init__(f"{source}: {where}, field '{field}': {message}")


class ConflictError(DatasetError):
    """Two inputs disagree on the value stored under one key."""


class StoreError(DatasetError):
    """The store on disk is not in the expected layout or state."""


class StoreWriteError(StoreError):
    """The store cannot be written: read-only, out of space, or another operating-system error."""


class NotInStoreError(DatasetError):
    """The store holds no data for what a command asked for (a venue, symbol or time range)."""
