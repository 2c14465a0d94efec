"""Safety rules a live node must pass before it is built; paper needs none of them.

1. An explicit ``--live`` flag; ``--replay`` is paper-only (a live node never trades on replayed data).
2. An explicit environment: ``[live.connections.<venue>] environment`` is ``production`` for every
   venue, or ``testnet`` for every venue. A venue without one is ``paper`` and is refused.
3. Risk limits in the config (``[risk.max_notional_per_order]`` names every configured instrument),
   and limits that can bind (``engine.limits``: notional within equity x leverage, leverage within
   the venue's maximum, a daily loss limit within equity).
4. Credentials (environment or secrets file) for every configured venue.
5. Production only, the operator's confirmation, asked last: on a terminal by typing ``YES``;
   without one (a pipe, ``/dev/null``, a service) only ``--confirm-live <config hash>``, the hash
   ``--dry-run`` prints, so no stdin can start a production node. End of input, another word or
   another hash refuses. Testnet needs no confirmation beyond ``--live`` (and refuses
   ``--confirm-live``, which confirms real funds).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Literal

from engine.config import ConnectionConfig, LiveConfig, RunConfig, VenueEnvironment
from engine.errors import CredentialsError, SafetyError
from engine.limits import limit_findings
from engine.live.secrets import Credentials, missing_credentials
from engine.loading import config_hash

CONFIRMATION = "YES"
LiveEnvironment = Literal["testnet", "production"]


def venue_environments(config: RunConfig) -> dict[str, VenueEnvironment]:
    """Return each configured venue's environment (``paper`` when ``[live.connections.<venue>]`` says none)."""
    connections = (config.live or LiveConfig()).connections
    return {v.name: connections.get(v.name, ConnectionConfig()).environment for v in config.venues}


def live_environment(config: RunConfig) -> LiveEnvironment:
    """Return the one environment every venue of a live config names.

    Raises
    ------
    SafetyError
        If a venue is ``paper``, or the venues name different environments.
    """
    environments = venue_environments(config)
    paper = [name for name, environment in environments.items() if environment == "paper"]
    if paper:
        raise SafetyError(
            f'live mode expects environment = "production" (or "testnet") in [live.connections.<venue>] for every '
            f"venue, was paper for {', '.join(paper)}; this config runs only in --mode paper"
        )
    if set(environments.values()) == {"testnet"}:
        return "testnet"
    if set(environments.values()) == {"production"}:
        return "production"
    raise SafetyError(
        f"live mode expects one environment for every venue, was {environments}; "
        'make them all "testnet" or all "production"'
    )


def check_risk_limits(config: RunConfig) -> None:
    """Check that every configured instrument has a per-order notional limit and every limit can bind.

    Raises
    ------
    SafetyError
        If ``[risk.max_notional_per_order]`` misses an instrument, or ``engine.limits`` finds a limit
        that cannot bind.
    """
    limited = set(config.risk.max_notional_per_order)
    missing = [f"{v.name}:{s}" for v in config.venues for s in v.instruments if f"{v.name}:{s}" not in limited]
    if missing:
        lines = "\n".join(f'"{m}" = <max notional in quote currency>' for m in missing)
        raise SafetyError(
            f"live mode expects a per-order notional limit for every instrument, was missing for {missing}; "
            f"add to [risk.max_notional_per_order]:\n{lines}"
        )
    findings = limit_findings(config)
    if findings:
        raise SafetyError(
            f"live mode expects every limit to be able to bind, {len(findings)} cannot: " + "; ".join(findings)
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
    confirm_hash: str | None = None,
    confirm: bool = True,
) -> LiveEnvironment:
    """Run every live safety rule and return the environment; the operator is asked last.

    ``confirm=False`` (``--dry-run``) runs every rule but the operator's confirmation.

    Raises
    ------
    SafetyError
        If ``--live`` is absent, replay was requested, a venue is not ``production``/``testnet`` (or
        they differ), risk limits are missing or cannot bind, or the confirmation fails: no terminal
        and no ``--confirm-live``, a wrong hash, end of input or another word than YES at the prompt,
        ``--confirm-live`` for a testnet config.
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
    environment = live_environment(config)
    check_risk_limits(config)
    check_credentials(config, credentials)
    if confirm:
        confirm_live(config, environment, confirm_hash=confirm_hash, interactive=interactive, ask=ask)
    return environment


def confirm_live(
    config: RunConfig,
    environment: LiveEnvironment,
    *,
    confirm_hash: str | None,
    interactive: bool,
    ask: Callable[[str], str] = input,
) -> None:
    """Check the operator's confirmation of a live start (see rule 5 of the module docstring).

    Raises
    ------
    SafetyError
        If the confirmation is absent, wrong, or given for a testnet config.
    """
    venues = ", ".join(v.name for v in config.venues)
    if environment == "testnet":
        if confirm_hash is not None:
            raise SafetyError(
                f"--confirm-live confirms trading real funds, was given for a testnet config ({venues}); "
                'drop it (testnet needs only --live), or set environment = "production" if you meant real funds'
            )
        return
    digest = config_hash(config)
    if confirm_hash is not None:
        if confirm_hash.strip() != digest:
            raise SafetyError(
                f"--confirm-live expects the hash of this config as --dry-run prints it, was {confirm_hash[:40]!r}; "
                "the config (or --start/--end/--catalog) changed since: run --dry-run with the same arguments"
            )
        return
    if not interactive:
        raise SafetyError(
            "live mode with real funds expects the operator's confirmation, and stdin is not a terminal to type "
            f"{CONFIRMATION} on; pass --confirm-live <config hash> (printed by --dry-run with the same arguments)"
        )
    prompt = f"LIVE trading on {venues} with real funds (config {digest}). Type {CONFIRMATION} to start:\n"
    try:
        answer = ask(prompt)
    except EOFError:
        raise SafetyError(
            f"live mode expects the operator to type {CONFIRMATION}, was end of input; nothing was started"
        ) from None
    if answer.strip() != CONFIRMATION:
        raise SafetyError(f"live mode expects the operator to type {CONFIRMATION}, was {answer.strip()[:40]!r}")
