"""Configs that list independent runs of one strategy: ``[[pairs]]``, each entry expanded into a full ``RunConfig``.

An entry (``engine.config.PairConfig``) names a run and the strategy params that differ from
``[strategy.params]``. Its run is the config with those params merged in (tables key by key, other values
replaced), each venue's instruments restricted to the ones the merged params name (venues left with
none dropped, ``risk.max_notional_per_order`` and ``[live.connections]`` likewise) and the name
``"<config name>-<entry name>"``. The expansion builds the TOML document a hand-written config of that
run would have and converts it the same way, so the run has that config's hash and writes its bytes.
Runs share nothing: each has its own accounts with the configured starting balances (no shared margin).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import msgspec

from engine.config import INSTRUMENT_REFERENCE, PairConfig, RunConfig
from engine.errors import ConfigError
from engine.loading import (
    check_config,
    config_document,
    config_from_document,
    max_notional_per_order,
    read_config,
    strategy_takes,
)


def load_runs(path: str | Path) -> list[RunConfig]:
    """Read a config file and return its runs, each checked as ``load_config`` checks one.

    A config without ``[[pairs]]`` is one run; one with them is one run per entry, in entry order.

    Raises
    ------
    ConfigError
        If the file or any run is wrong (as ``load_config``), or an entry is: an unknown key, a duplicate
        name, a param the strategy does not take, an instrument no venue lists, or no instrument at all.
        The message names the file, the entry and the field.
    """
    path = Path(path)
    source = str(path)
    document = config_document(read_config(path), source=source)
    if "pairs" not in document:
        config = config_from_document(document, source=source)
        check_config(config)
        return [config]
    return expand(document, source=source)


def expand(document: dict[str, Any], *, source: str) -> list[RunConfig]:
    """Return one checked run per ``[[pairs]]`` entry of a config's TOML document.

    Raises
    ------
    ConfigError
        As ``load_runs``.
    """
    base_document = {key: value for key, value in document.items() if key != "pairs"}
    base = config_from_document(base_document, source=source)
    entries = _entries(document["pairs"], source=source)
    try:
        max_notional_per_order(base)  # a key naming no configured instrument would vanish in every run
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    seen: set[str] = set()
    runs = []
    for index, entry in enumerate(entries):
        where = f"{source}: pairs[{index}] ({entry.name!r})"
        if entry.name in seen:
            raise ConfigError(f"{where}: name: expected each entry's name once, was {entry.name!r} again; rename it")
        seen.add(entry.name)
        run_document = _run_document(base_document, base, entry, where=where)
        run = config_from_document(run_document, source=where)
        try:
            check_config(run)
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None
        runs.append(run)
    return runs


def _entries(raw: Any, *, source: str) -> list[PairConfig]:
    if not isinstance(raw, list) or not raw:
        raise ConfigError(f"{source}: pairs: expected one or more [[pairs]] tables, was {raw!r}")
    entries = []
    for index, item in enumerate(raw):
        label = f" ({item['name']!r})" if isinstance(item, dict) and "name" in item else ""
        try:
            entries.append(msgspec.convert(item, PairConfig))
        except msgspec.ValidationError as exc:
            raise ConfigError(
                f"{source}: pairs[{index}]{label}: {exc}; an entry has a name and the params that differ"
            ) from None
    return entries


def _run_document(base_document: dict[str, Any], base: RunConfig, entry: PairConfig, *, where: str) -> dict[str, Any]:
    for key in entry.params:
        if not strategy_takes(base, key):
            config_path = base.strategy.config_path or f"{base.strategy.path}Config"
            raise ConfigError(
                f"{where}: params.{key}: expected a parameter of {config_path} (its keyword arguments), was {key!r}; "
                "fix the name or remove it"
            )
    listed = {(venue.name, symbol) for venue in base.venues for symbol in venue.instruments}
    for field, venue, symbol in _references(entry.params, "params"):
        if (venue, symbol) not in listed:
            raise ConfigError(
                f"{where}: {field}: expected an instrument a venue lists ({', '.join(sorted(map(':'.join, listed)))}), "
                f"was '{venue}:{symbol}'; add {symbol!r} to venue {venue!r}'s instruments or fix the reference"
            )
    params = _merged(base_document["strategy"].get("params", {}), entry.params)
    named = {(venue, symbol) for _, venue, symbol in _references(params, "params")}
    if not named:
        raise ConfigError(
            f"{where}: params: expected the merged strategy params to name the run's instruments "
            "('venue:SYMBOL', e.g. spot_id/perp_id), they name none; set them in the entry"
        )
    document = copy.deepcopy(base_document)
    document["name"] = f"{base.name}-{entry.name}"
    document["strategy"]["params"] = params
    venues = []
    for venue in document["venues"]:
        venue["instruments"] = [symbol for symbol in venue["instruments"] if (venue["name"], symbol) in named]
        if venue["instruments"]:
            venues.append(venue)
    document["venues"] = venues
    kept = {venue["name"] for venue in venues}
    limits = document.get("risk", {}).get("max_notional_per_order")
    if limits is not None:
        document["risk"]["max_notional_per_order"] = {
            key: value for key, value in limits.items() if tuple(key.split(":", 1)) in named
        }
    connections = document.get("live", {}).get("connections")
    if connections is not None:
        document["live"]["connections"] = {name: value for name, value in connections.items() if name in kept}
    return document


def _merged(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merged(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _references(value: Any, field: str) -> Iterator[tuple[str, str, str]]:
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from _references(item, f"{field}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _references(item, f"{field}[{index}]")
    elif isinstance(value, str) and (match := INSTRUMENT_REFERENCE.match(value)):
        yield field, match["venue"], match["symbol"]
