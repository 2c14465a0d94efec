"""Errors raised while acquiring data from venues."""

from __future__ import annotations

from datasets.errors import DatasetError


class AcquisitionError(DatasetError):
    """Root of the errors raised by ``datasets.acquire``."""


class PlanError(AcquisitionError):
    """A fetch, dump or recorder request cannot be planned (unknown venue, unsupported kind, bad range)."""


class FetchError(AcquisitionError):
    """A venue refused a request (an exchange error other than a transient one)."""


class RetryExhaustedError(FetchError):
    """A request kept failing with transient errors until the retry budget ran out."""


class MalformedPageError(AcquisitionError):
    """A venue answered with a page that is not the format expected; nothing of it is written."""


class ChecksumError(AcquisitionError):
    """A downloaded file does not match its published checksum; it is never imported."""
