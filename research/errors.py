"""Errors of ``research``: one root, a subclass per domain."""

from __future__ import annotations


class ResearchError(Exception):
    """Root of every error raised by ``research``."""


class SplitError(ResearchError, ValueError):
    """A split cannot be made with the sizes asked for."""


class SweepError(ResearchError):
    """A sweep is misconfigured or its inputs are missing."""


class ToleranceError(SweepError):
    """The engine's re-run of a sweep's picks disagrees with the fast kernel beyond the stated tolerance."""
