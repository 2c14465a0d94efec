"""Safety rules a live node must pass before it is built; paper needs none of them.

1. An explicit ``--live`` flag and, when stdin is a terminal, the operator typing ``YES``.
2. Risk limits in the config: ``[risk.max_notional_per_order]`` names every configured instrument.
3. Credentials (environment or secrets file) for every configured venue.
Replay is paper-only: a live node never trades on replayed data.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from engine.config import RunConfig
from engine.errors import CredentialsError, SafetyError
from engine.live.secrets import Credentials, missing_credentials

CONFIRMATION = "YES"


def check_risk_limits(config: RunConfig) -> None:
    """Check that every configured instrument has a per-order notional limit.

    Raises
    ------
    SafetyError
        If ``[risk.max_notional_per_order]`` misses an instrument.
    """
    limited = set(config.risk.max_notional_per_order)
    missing = [f"{v.name}:{s}" for v in config.venues for s in v.instruments if f"{v.name}:{s}" not in limited]
    if missing:
        lines = "\n".join(f'"{m}" = <max notional in quote currency>' for m in missing)
        raise SafetyError(
            f"live mode expects a per-order notional limit for every instrument, was missing for {missing}; "
            f"add to [risk.max_notional_per_order]:\n{lines}"
        )


def check_credentials(config: RunConfig, credentials: Mapping[str, Credentials]) -> None:
    """Check that every configured venue has credentials.

    Raises
    ------
    CredentialsError
        Naming each venue without credentials and the variables to set.
    """
    missing = missing_credentials([v.name for v in config.venues], credentials)
    if missing:
        raise CredentialsError("live mode expects credentials for every venue, missing:\n  " + "\n  ".join(missing))


def check_live(
    config: RunConfig,
    *,
    confirmed: bool,
    replay: bool,
    credentials: Mapping[str, Credentials],
    interactive: bool,
    ask: Callable[[str], str] = input,
) -> None:
    """Run every live safety rule; the operator is asked last, only once everything else passed.

    Raises
    ------
    SafetyError
        If ``--live`` is absent, replay was requested, risk limits are missing, or the operator did not type YES.
    CredentialsError
        If a venue has no credentials.
    """
    if not confirmed:
        raise SafetyError(
            "live mode trades real money and expects the explicit --live flag, was absent; "
            "add --live, or run --mode paper (the default)"
        )
    if replay:
        raise SafetyError("live mode expects venue data, was --replay; replay runs only in --mode paper")
    check_risk_limits(config)
    check_credentials(config, credentials)
    if interactive:
        venues = ", ".join(v.name for v in config.venues)
        answer = ask(f"LIVE trading on {venues} with real funds. Type {CONFIRMATION} to start: ")
        if answer.strip() != CONFIRMATION:
            raise SafetyError(f"live mode expects the operator to type {CONFIRMATION}, was {answer.strip()!r}")
