"""Capped exponential backoff around calls that may fail transiently.

Which errors are transient is decided by exception type only (ccxt's ``NetworkError`` family:
``RequestTimeout``, ``DDoSProtection``, ``RateLimitExceeded``, ``ExchangeNotAvailable``), never by the
venue's name or the message text. Every other error propagates at once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import ccxt

from datasets.acquire.errors import FetchError, MalformedPageError, RetryExhaustedError

log = logging.getLogger(__name__)

# RequestTimeout, DDoSProtection, RateLimitExceeded and ExchangeNotAvailable all derive from NetworkError.
TRANSIENT_CCXT_ERRORS: tuple[type[BaseException], ...] = (ccxt.NetworkError,)


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """How often and how patiently a transient failure is retried.

    Attributes
    ----------
    attempts : int
        Calls in total, the first included (``1`` disables retrying).
    base_secs : float
        The first backoff; each next one doubles.
    cap_secs : float
        The longest single backoff.
    sleep : Callable[[float], None]
        Called with each backoff in seconds; tests inject a recorder so they run instantly.
    """

    attempts: int = 6
    base_secs: float = 1.0
    cap_secs: float = 60.0
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"attempts must be >= 1, was {self.attempts}")
        if self.base_secs < 0 or self.cap_secs < self.base_secs:
            raise ValueError(f"need 0 <= base_secs <= cap_secs, was {self.base_secs} and {self.cap_secs}")

    def backoff_secs(self, failure: int) -> float:
        """Return the wait after the ``failure``-th consecutive failure (counted from 1)."""
        return float(min(self.cap_secs, self.base_secs * 2 ** (failure - 1)))


def call_with_retry[T](
    call: Callable[[], T],
    policy: RetryPolicy,
    *,
    what: str,
    transient: tuple[type[BaseException], ...] = TRANSIENT_CCXT_ERRORS,
) -> T:
    """Return ``call()``, retrying it with capped exponential backoff while it raises a transient error.

    Parameters
    ----------
    call : Callable[[], T]
        The request.
    policy : RetryPolicy
        Attempts and backoff.
    what : str
        The request in words, for log lines and the final error.
    transient : tuple of exception types
        Errors worth retrying; anything else propagates unchanged on the first occurrence.

    Raises
    ------
    RetryExhaustedError
        If every attempt failed transiently; chained to the last error.
    """
    for failure in range(1, policy.attempts + 1):
        try:
            return call()
        except transient as exc:
            if failure == policy.attempts:
                raise RetryExhaustedError(
                    f"{what}: gave up after {policy.attempts} attempts, last error {type(exc).__name__}: "
                    f"{_short(exc)}; the venue or network is unavailable or rate-limiting: run the same "
                    "command again later (it resumes where it stopped)"
                ) from exc
            wait = policy.backoff_secs(failure)
            log.warning(
                "%s: %s (%s), retry %d/%d in %.1f s",
                what,
                type(exc).__name__,
                _short(exc),
                failure,
                policy.attempts - 1,
                wait,
            )
            policy.sleep(wait)
    raise AssertionError("unreachable: the loop returns or raises")


# What ccxt raises when a venue's page does not have the shape its parser expects.
CCXT_PARSE_ERRORS: tuple[type[BaseException], ...] = (TypeError, KeyError, ValueError, IndexError, AttributeError)


def call_ccxt[T](
    call: Callable[[], T],
    policy: RetryPolicy,
    *,
    what: str,
    venue: str,
    refused_hint: str,
    page: Callable[[], str] = lambda: "nothing was written",
) -> T:
    """Return ``call()`` (a ccxt request), retrying transient errors and naming every other failure.

    Parameters
    ----------
    call : Callable[[], T]
        The ccxt request.
    policy : RetryPolicy
        Attempts and backoff for ccxt's ``NetworkError`` family.
    what : str
        The request in words, for log lines and errors.
    venue : str
        The ccxt exchange id, for the errors.
    refused_hint : str
        How to fix a request the venue refused.
    page : Callable[[], str]
        Describes the page ccxt could not parse (called only on that error).

    Raises
    ------
    FetchError
        If the venue refused the request (any ccxt error but a network one): not retried.
    MalformedPageError
        If ccxt could not parse the venue's answer.
    RetryExhaustedError
        If every attempt failed transiently.
    """

    def guarded() -> T:
        try:
            return call()
        except ccxt.NetworkError:
            raise
        except ccxt.BaseError as exc:
            raise FetchError(
                f"{what}: {venue} refused the request ({type(exc).__name__}: {exc}); it is not retried "
                f"(the error is not transient): {refused_hint}"
            ) from exc
        except CCXT_PARSE_ERRORS as exc:
            raise MalformedPageError(
                f"{what}: {venue} answered a page ccxt cannot parse ({type(exc).__name__}: {exc}); {page()}"
            ) from exc

    return call_with_retry(guarded, policy, what=what)


def _short(exc: BaseException) -> str:
    text = str(exc).replace("\n", " ")
    return text if len(text) <= 200 else text[:200] + "..."
