"""Whether a run config's limits can bind: a limit looser than anything the account can do is no limit.

``limit_findings(config, instruments)`` is pure (the config and the run's Nautilus instruments, as the
catalog holds them) and shared by every mode: ``--mode live`` refuses to start on any finding
(``engine.live.safety``, exit 6); backtests and paper nodes run anyway and record the findings in
``stats.json`` under ``"warnings"``, a key present only when there is at least one (so the stats of every
config without findings are unchanged). Without ``instruments`` they are read from the config's catalog
(``catalog_instruments``).

What an account can do on a venue:

- **equity**: the venue's ``starting_balances`` in USD-like currencies (``strategies.risk_limits.USD_LIKE``)
  at par; other currencies are not valued (no prices at load time);
- **leverage**: the venue's configured ``leverage``, what Nautilus' margin check lets the account use
  (a cash account uses none: 1);
- **maximum leverage**: ``1 / margin_init`` of the venue's strictest configured instrument (the catalog
  instrument's ``margin_init``, from the stored spec; rates rounded up to 4 decimals make the quotient
  round up to a whole number: 0.0067 is 150x). Spot instruments and inferred specs (margin unknown: 0)
  carry no margin rate and set no maximum. An instrument the catalog lacks leaves the maximum unknown:
  any leverage above 1 on its venue is then a finding (export the catalog, or trade unlevered).

Rules, each naming the field to fix:

1. ``risk.max_notional_per_order[i]`` at most the venue's equity x leverage (compared in the quote
   currency when it is USD-like; other quotes are not checked);
2. a venue's ``leverage`` at most its maximum leverage;
3. the strategy's ``risk.max_leverage[VENUE]`` at most that venue's maximum, and naming a configured venue;
4. the strategy's ``risk.daily_loss_limit_usd`` at most the equity of all venues together;
5. the strategy's ``risk.max_drawdown_pct`` below 100.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import ROUND_CEILING, Decimal
from pathlib import Path
from typing import Any

from nautilus_trader.model import InstrumentId

from datasets.venues import split_symbol, venue_spec
from engine.config import RunConfig, VenueConfig, parse_money
from engine.errors import ConfigError
from engine.loading import instrument_id_for, instrument_ids
from strategies.risk_limits import USD_LIKE, RiskConfigError, RiskLimits

Instruments = Mapping[InstrumentId, Any]


def limit_findings(config: RunConfig, instruments: Instruments | None = None) -> list[str]:
    """Return one message per limit of ``config`` that cannot bind (empty when every limit can).

    Parameters
    ----------
    config : RunConfig
        The run.
    instruments : mapping of InstrumentId to Nautilus instrument, optional
        The run's instruments (a backtest's loaded catalog); default: ``catalog_instruments(config)``.

    Raises
    ------
    ConfigError
        If ``strategy.params.risk`` is malformed (``load_config`` reports it first).
    """
    known = catalog_instruments(config) if instruments is None else instruments
    findings: list[str] = []
    for venue in config.venues:
        findings += _notional_findings(config, venue)
        maximum = max_leverage(venue, known)
        if venue.leverage > 1 and (unknown := _unknown_message(config, venue, known)):
            findings.append(f"venues[{venue.name}].leverage: {unknown}, was {_text(venue.leverage)}")
        elif maximum is not None and venue.leverage > maximum:
            findings.append(
                f"venues[{venue.name}].leverage: expected at most {venue.name}'s maximum {maximum}x "
                f"(1 / margin_init of {_strictest(venue, known)}), was {_text(venue.leverage)}; lower it"
            )
    findings += _strategy_findings(config, known)
    return findings


def catalog_instruments(config: RunConfig) -> dict[InstrumentId, Any]:
    """Return the configured instruments the config's catalog holds (none when there is no catalog)."""
    root = Path(config.data.catalog)
    if not (root / "data").is_dir():
        return {}
    from nautilus_trader.persistence import ParquetDataCatalog

    wanted = [str(i) for i in instrument_ids(config)]
    return {i.id: i for i in ParquetDataCatalog(str(root)).instruments(instrument_ids=wanted)}


def equity_usd(venue: VenueConfig) -> Decimal:
    """Return the venue's starting balances in USD-like currencies, added at par."""
    total = Decimal(0)
    for text in venue.starting_balances:
        amount, currency = parse_money(text)
        if currency in USD_LIKE:
            total += amount
    return total


def max_leverage(venue: VenueConfig, instruments: Instruments) -> Decimal | None:
    """Return the venue's maximum leverage over its configured instruments (None: no margin rate, no maximum)."""
    rates = list(_margin_rates(venue, instruments).values())
    if not rates:
        return None
    return (1 / max(rates)).quantize(Decimal(1), rounding=ROUND_CEILING)


def _margin_rates(venue: VenueConfig, instruments: Instruments) -> dict[str, Decimal]:
    rates = {}
    for symbol in venue.instruments:
        instrument = instruments.get(instrument_id_for(venue.name, symbol))
        rate = Decimal(str(getattr(instrument, "margin_init", 0) or 0))
        if rate > 0:
            rates[symbol] = rate
    return rates


def _unknown_message(config: RunConfig, venue: VenueConfig, instruments: Instruments) -> str | None:
    absent = [s for s in venue.instruments if instrument_id_for(venue.name, s) not in instruments]
    if not absent:
        return None
    return (
        f"expected the margin rates of {', '.join(absent)} to check {venue.name}'s maximum leverage, found no such "
        f"instrument in the catalog {config.data.catalog}; export them (python -m datasets export-catalog "
        f"--catalog {config.data.catalog} --venue {venue.name}) or trade at leverage 1"
    )


def _strictest(venue: VenueConfig, instruments: Instruments) -> str:
    rates = _margin_rates(venue, instruments)
    return max(rates, key=lambda symbol: rates[symbol])


def _notional_findings(config: RunConfig, venue: VenueConfig) -> list[str]:
    limits = {
        key.split(":", 1)[1]: value
        for key, value in config.risk.max_notional_per_order.items()
        if key.split(":", 1)[0] == venue.name
    }
    if not limits:
        return []
    equity = equity_usd(venue)
    leverage = venue.leverage if venue.account_type == "margin" else Decimal(1)
    reach = equity * leverage
    findings = []
    for symbol, limit in limits.items():
        field = f'risk.max_notional_per_order["{venue.name}:{symbol}"]'
        quote = split_symbol(symbol)[1]
        if quote not in USD_LIKE:
            continue
        if equity == 0:
            findings.append(
                f"{field}: expected {venue.name}'s starting_balances to hold a USD-like currency to check the "
                f"limit against, was {venue.starting_balances}; add the account's USD-like equity"
            )
        elif limit > reach:
            findings.append(
                f"{field}: expected at most {venue.name}'s equity x leverage = {_text(equity)} x "
                f"{_text(leverage)} = {_text(reach)} {quote} (a larger limit never binds), was {_text(limit)}; "
                "lower it to the largest order you mean to allow"
            )
    return findings


def _strategy_findings(config: RunConfig, instruments: Instruments) -> list[str]:
    raw = config.strategy.params.get("risk")
    if not isinstance(raw, Mapping):
        return []
    try:
        limits = RiskLimits.from_mapping(raw)
    except RiskConfigError as exc:
        raise ConfigError(f"strategy.params.{exc}") from None
    findings = []
    by_nautilus = {str(venue_spec(v.name).nautilus_venue): v for v in config.venues}
    for name, leverage in limits.max_leverage.items():
        field = f"strategy.params.risk.max_leverage.{name}"
        venue = by_nautilus.get(name)
        if venue is None:
            findings.append(f"{field}: expected a configured venue ({', '.join(by_nautilus)}), was {name!r}")
            continue
        maximum = max_leverage(venue, instruments)
        if leverage > 1 and (unknown := _unknown_message(config, venue, instruments)):
            findings.append(f"{field}: {unknown}, was {_text(leverage)}")
        elif maximum is not None and leverage > maximum:
            findings.append(
                f"{field}: expected at most {venue.name}'s maximum {maximum}x (1 / margin_init of "
                f"{_strictest(venue, instruments)}), was {_text(leverage)}; lower it"
            )
    equity = sum((equity_usd(v) for v in config.venues), Decimal(0))
    if limits.daily_loss_limit_usd is not None and limits.daily_loss_limit_usd > equity:
        findings.append(
            f"strategy.params.risk.daily_loss_limit_usd: expected at most the equity of all venues, "
            f"{_text(equity)} USD (a larger limit never binds), was {_text(limits.daily_loss_limit_usd)}; lower it"
        )
    if limits.max_drawdown_pct is not None and limits.max_drawdown_pct >= 100:
        findings.append(
            f"strategy.params.risk.max_drawdown_pct: expected below 100 (a fall of 100 % empties the account "
            f"first), was {_text(limits.max_drawdown_pct)}; lower it"
        )
    return findings


def _text(value: Decimal) -> str:
    return f"{value.normalize():f}"
