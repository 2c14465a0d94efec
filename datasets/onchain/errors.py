"""Errors of the on-chain decoders: every one is a ``DatasetError``."""

from __future__ import annotations

from datasets.errors import DatasetError, SourceFormatError


class OnchainError(DatasetError):
    """Root of the errors raised by ``datasets.onchain``."""


class IdlError(OnchainError):
    """An Anchor IDL cannot be loaded, or it lacks a type, instruction, event or account asked for."""


class BorshError(OnchainError):
    """Bytes do not match the Borsh layout they are read with (too short, too long, a bad tag)."""


class TransactionFormatError(OnchainError):
    """A ``getTransaction`` result lacks a field the decoder needs or holds one of the wrong shape."""


class AccountDecodeError(OnchainError):
    """An account's data does not match the layout of the account type it is decoded as."""


class InputFileError(OnchainError, SourceFormatError):
    """A declared input file (price table, Drift market table, raw account snapshot) is not in its format."""
