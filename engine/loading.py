"""From a config file to what a node runs: parse, check, import the strategy and build its config.

This is the role of Nautilus' ``StrategyFactory``: ``load_config`` reads and checks a run config
(``engine.config`` is the schema) and ``load_strategy`` imports the strategy class, resolves its
parameters (``"venue:SYMBOL"`` -> Nautilus instrument ids, the bar spec from ``[data]`` unless the
strategy sets its own, each instrument's funding clock from ``datasets.venues`` and, for a live node,
the rates that settled before it started from the catalog) and builds its config. Every config error,
including an unknown instrument in ``risk.max_notional_per_order`` or a balance currency Nautilus does
not know, fails here, before any data is read.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import msgspec.toml as msgspec_toml
from nautilus_trader.model import Currency, InstrumentId, NautilusDataType
from nautilus_trader.persistence import ParquetDataCatalog

from datasets.errors import DatasetError, NotInStoreError
from datasets.instruments import margin_tiers_at
from datasets.schemas import interval_secs
from datasets.store import Store
from datasets.venues import instrument_id_for as _instrument_id_for
from datasets.venues import venue_spec
from engine.config import INSTRUMENT_REFERENCE, LiveConfig, RunConfig, parse_money
from engine.correlation import estimate_correlation
from engine.errors import ConfigError, SafetyError


def parse_config(raw: bytes, *, source: str = "<config>") -> RunConfig:
    """Parse TOML bytes into a ``RunConfig`` (types, ranges, unknown keys; no imports).

    Raises
    ------
    ConfigError
        If the TOML is malformed or a field is unknown, mistyped or out of range; the message
        names the field path. Also for a config listing ``[[pairs]]`` (``engine.batch.load_runs`` reads those).
    """
    return config_from_document(config_document(raw, source=source), source=source)


def config_document(raw: bytes, *, source: str) -> dict[str, Any]:
    """Return the TOML document of a config file, unchecked.

    Raises
    ------
    ConfigError
        If it is not valid TOML.
    """
    try:
        document: dict[str, Any] = msgspec_toml.decode(raw)
    except msgspec.DecodeError as exc:
        raise ConfigError(f"{source}: expected valid TOML, was not ({exc})") from None
    return document


def config_from_document(document: dict[str, Any], *, source: str) -> RunConfig:
    """Return the ``RunConfig`` of a TOML document: what ``parse_config`` checks, the same conversion.

    Raises
    ------
    ConfigError
        If a field is unknown, mistyped or out of range, or the document lists ``[[pairs]]``.
    """
    if "pairs" in document:
        raise ConfigError(
            f"{source}: lists [[pairs]] (independent runs of one strategy) where one run was expected; run it "
            "with python -m engine.backtest, which expands it into one run per entry, or write one config per run"
        )
    try:
        # What msgspec.toml.decode(raw, type=RunConfig) does after parsing the TOML.
        return msgspec.convert(document, RunConfig, builtin_types=(datetime, date, time), str_keys=True)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"{source}: {exc}; fix that field (see configs/demo.toml for the format)") from None


def read_config(path: Path) -> bytes:
    """Return the bytes of a config file.

    Raises
    ------
    ConfigError
        If it cannot be read.
    """
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"expected a readable config file, was {path} ({exc.strerror}); check the path") from None


def load_config(path: str | Path) -> RunConfig:
    """Read, parse and check a run config file: its strategy, risk limits and balances included.

    Raises
    ------
    ConfigError
        If the file is missing or malformed, names a strategy that does not import or rejects its
        params, an instrument the config does not declare, or a currency Nautilus does not know.
    """
    path = Path(path)
    config = parse_config(read_config(path), source=str(path))
    check_config(config)
    return config


def check_config(config: RunConfig) -> None:
    """Check what the schema alone cannot: strategy, instrument references, currencies.

    Raises
    ------
    ConfigError
        If any of them is wrong; the message names the field.
    """
    instrument_ids(config)
    max_notional_per_order(config)
    for venue in config.venues:
        for text in venue.starting_balances:
            currency(parse_money(text)[1], where=f"venues[{venue.name}].starting_balances")
    load_strategy(config)


def with_overrides(
    config: RunConfig,
    *,
    catalog: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> RunConfig:
    """Return ``config`` with the command-line overrides applied and re-checked.

    Raises
    ------
    ConfigError
        If the result is inconsistent (``end`` before ``start``, naive datetimes).
    """
    for label, value in (("--start", start), ("--end", end)):
        if value is not None and value.tzinfo is None:
            raise ConfigError(f"{label}: expected a UTC offset (2024-01-01T00:00:00Z), was {value.isoformat()}")
    raw = msgspec.json.decode(msgspec.json.encode(config))
    if catalog is not None:
        raw["data"]["catalog"] = catalog
    if start is not None:
        raw["start"] = start.isoformat()
    if end is not None:
        raw["end"] = end.isoformat()
    try:
        return msgspec.json.decode(msgspec.json.encode(raw), type=RunConfig)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"command-line overrides: {exc}") from None


def config_json(config: RunConfig) -> str:
    """Return the resolved config as canonical JSON (sorted keys, decimals and datetimes as text).

    An absent ``[live]`` or ``[sizing]`` section is left out, so adding it to the format did not change any
    backtest's hash;
    so is a connection's default ``environment = "paper"``, so saying it explicitly changes no hash either.
    """
    document = msgspec.to_builtins(config)
    if document["data"].get("store") is None:  # added with the liquidation control: no hash changed
        document["data"].pop("store", None)
    if document.get("sizing") is None:
        document.pop("sizing", None)
    if document.get("live") is None:
        document.pop("live", None)
    else:
        if document["live"].get("anomalies") is None:
            document["live"].pop("anomalies", None)
        for connection in document["live"]["connections"].values():
            if connection.get("environment") == "paper":
                del connection["environment"]
    return json.dumps(document, sort_keys=True, indent=2) + "\n"


def config_hash(config: RunConfig) -> str:
    """Return the first 12 hex digits of the sha256 of ``config_json(config)``: the run's directory name."""
    return hashlib.sha256(config_json(config).encode()).hexdigest()[:12]


def instrument_id_for(venue: str, symbol: str) -> InstrumentId:
    """Return the Nautilus instrument id of a canonical symbol on a venue.

    Raises
    ------
    ConfigError
        If the venue or symbol has no spec in ``datasets.venues``.
    """
    try:
        return _instrument_id_for(venue, symbol)
    except DatasetError as exc:
        raise ConfigError(f"{venue}:{symbol}: {exc}") from None


def instrument_ids(config: RunConfig) -> list[InstrumentId]:
    """Return the Nautilus ids of every configured instrument, venue by venue, in config order."""
    return [instrument_id_for(v.name, s) for v in config.venues for s in v.instruments]


def venue_of(config: RunConfig) -> dict[str, str]:
    """Return instrument id -> configured venue name."""
    return {str(instrument_id_for(v.name, s)): v.name for v in config.venues for s in v.instruments}


def resolve_instrument(config: RunConfig, venue: str, symbol: str, *, where: str) -> InstrumentId:
    """Return the Nautilus instrument id of ``venue:symbol``, checking the config declares it.

    Raises
    ------
    ConfigError
        If the venue or the symbol is not in the config.
    """
    declared = {v.name: v for v in config.venues}
    if venue not in declared:
        raise ConfigError(f"{where}: expected a configured venue ({', '.join(declared)}), was {venue!r}")
    if symbol not in declared[venue].instruments:
        raise ConfigError(
            f"{where}: expected one of {venue}'s instruments {declared[venue].instruments}, was {symbol!r}; "
            "add it to the venue's instruments"
        )
    return instrument_id_for(venue, symbol)


def max_notional_per_order(config: RunConfig) -> dict[InstrumentId, Decimal]:
    """Return ``risk.max_notional_per_order`` keyed by Nautilus instrument id.

    Raises
    ------
    ConfigError
        If a key names a venue or symbol the config does not declare.
    """
    return {
        resolve_instrument(config, *key.split(":", 1), where=f"risk.max_notional_per_order[{key!r}]"): value
        for key, value in config.risk.max_notional_per_order.items()
    }


def currency(code: str, *, where: str) -> Currency:
    """Return the Nautilus currency ``code``.

    Raises
    ------
    ConfigError
        If Nautilus does not know it.
    """
    try:
        return Currency.from_str(code, strict=True)
    except (ValueError, KeyError):
        raise ConfigError(f"{where}: expected a currency Nautilus knows, was {code!r}") from None


def import_object(path: str, *, field: str) -> Any:
    """Return the object named by ``"package.module:Name"``.

    Raises
    ------
    ConfigError
        If the module does not import or lacks the name.
    """
    module_name, _, attribute = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(
            f"{field}: expected an importable module, was {module_name!r} ({exc}); check the spelling and PYTHONPATH"
        ) from None
    try:
        return getattr(module, attribute)
    except AttributeError:
        raise ConfigError(f"{field}: expected {module_name} to define {attribute!r}, it does not") from None


@dataclass(frozen=True, slots=True)
class StrategyPlan:
    """A strategy ready to instantiate: its class and its built config."""

    strategy_class: type
    config: Any
    path: str

    def create(self, wrap: Any = None) -> Any:
        """Return a new strategy instance, its class first passed through ``wrap`` (a harness) if given."""
        strategy_class = wrap(self.strategy_class) if wrap is not None else self.strategy_class
        return strategy_class(self.config)


def load_strategy(config: RunConfig, *, seed_funding_before_ns: int | None = None) -> StrategyPlan:
    """Import the strategy and build its config from the resolved params.

    A strategy config that takes ``funding_clock_secs`` gets each instrument's venue funding interval
    (the venue's ``funding_interval`` unless it is ``"data"``, else ``datasets.venues``). With
    ``seed_funding_before_ns`` (a live node: now) one that takes ``funding_seed`` gets, per instrument,
    its last ``lookback_settlements`` rates the catalog ``[data].catalog`` holds settled by then (none
    when the catalog is absent or holds no funding for it), no older than ``[live]
    max_funding_seed_age_secs``; backtests and replays are never seeded, nor a strategy whose params set
    ``funding_seed`` (``{}``: unseeded).

    Raises
    ------
    ConfigError
        If either class does not import, or the config class rejects the params.
    SafetyError
        If a seed is older than ``[live] max_funding_seed_age_secs`` (``funding_seed_params``).
    """
    strategy_path = config.strategy.path
    config_path = config.strategy.config_path or f"{strategy_path}Config"
    strategy_class = import_object(strategy_path, field="strategy.path")
    config_class = import_object(config_path, field="strategy.config_path")
    params = resolve_params(config)
    if "bar_spec" not in params and "bar_spec" in _parameters(config_class):
        params["bar_spec"] = config.data.bar_spec
    if config.sizing is not None:
        params["sizing"] = sizing_params(config, config_class, params)
    if config.data.store is not None and _takes(config_class, "risk"):
        params["risk"] = margin_tier_params(config, params.get("risk"))
    if "funding_clock_secs" not in params and _accepts(config_class, "funding_clock_secs"):
        params["funding_clock_secs"] = funding_clock_params(config)
    built = _build(config_class, config_path, params)
    if seed_funding_before_ns is not None and "funding_seed" not in params and _accepts(config_class, "funding_seed"):
        params["funding_seed"] = funding_seed_params(
            config, settlements=int(built.lookback_settlements), before_ns=seed_funding_before_ns
        )
        built = _build(config_class, config_path, params)
    return StrategyPlan(strategy_class=strategy_class, config=built, path=strategy_path)


def strategy_takes(config: RunConfig, name: str) -> bool:
    """Return whether the strategy's config class takes the keyword ``name`` (itself or through a base).

    Raises
    ------
    ConfigError
        If the class does not import.
    """
    config_path = config.strategy.config_path or f"{config.strategy.path}Config"
    return _accepts(import_object(config_path, field="strategy.config_path"), name)


def _build(config_class: type, config_path: str, params: dict[str, Any]) -> Any:
    try:
        return config_class(**params)
    except (TypeError, ValueError) as exc:
        raise ConfigError(
            f"strategy.params: {config_path} rejected the params ({exc}); expected its keyword arguments"
        ) from None


def funding_clock_params(config: RunConfig) -> dict[str, int]:
    """Return instrument id -> funding interval in seconds of every configured instrument's venue."""
    clocks = {}
    for venue in config.venues:
        clock = venue.funding_interval if venue.funding_interval != "data" else venue_spec(venue.name).funding_interval
        for symbol in venue.instruments:
            clocks[str(instrument_id_for(venue.name, symbol))] = interval_secs(clock)
    return clocks


def funding_seed_params(config: RunConfig, *, settlements: int, before_ns: int) -> dict[str, list[list[Any]]]:
    """Return instrument id -> its last ``settlements`` ``[rate, interval secs]`` settled by ``before_ns``.

    Read from the catalog ``[data].catalog``; empty when it is absent (an instrument without funding
    there is left out). Updates without a settlement instant or an interval are skipped.

    Raises
    ------
    ConfigError
        If the catalog cannot be read.
    SafetyError
        If an instrument's newest settlement is older than ``[live] max_funding_seed_age_secs`` at
        ``before_ns``: the message names it, the age, the limit and the fixes.
    """
    root = Path(config.data.catalog)
    if not (root / "data" / "funding_rates").is_dir():
        return {}
    catalog = ParquetDataCatalog(str(root))
    limit_secs = (config.live or LiveConfig()).max_funding_seed_age_secs
    seeds: dict[str, list[list[Any]]] = {}
    for instrument_id in instrument_ids(config):
        try:
            updates = catalog.query(NautilusDataType.FundingRateUpdate, [str(instrument_id)], end=before_ns)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"data.catalog: expected a readable catalog at {root}, was not ({exc})") from None
        settled = sorted(
            (u for u in updates if u.next_funding_ns is not None and u.next_funding_ns <= before_ns and u.interval),
            key=lambda u: u.next_funding_ns,
        )
        if settled:
            _check_seed_age(str(instrument_id), settled[-1].next_funding_ns, before_ns, limit_secs, root)
            seeds[str(instrument_id)] = [[str(u.rate), u.interval * 60] for u in settled[-settlements:]]
    return seeds


def _check_seed_age(instrument_id: str, settled_ns: int, before_ns: int, limit_secs: float, root: Path) -> None:
    age_secs = (before_ns - settled_ns) / 1e9
    if age_secs <= limit_secs:
        return
    settled = datetime.fromtimestamp(settled_ns / 1e9, UTC).strftime("%Y-%m-%d %H:%M")
    raise SafetyError(
        f"{instrument_id}: expected a funding seed at most [live] max_funding_seed_age_secs = {limit_secs:g} s old, "
        f"was {timedelta(seconds=round(age_secs))} old (the newest settlement in the catalog {root} is {settled} UTC): "
        "the node would start its funding books from stale rates. Bring the catalog up to date "
        f"(python -m datasets update, then python -m datasets export-catalog --catalog {root}), raise "
        "[live] max_funding_seed_age_secs, or start unseeded with strategy.params.funding_seed = {} "
        "(the books then warm up on live settlements)"
    )


def sizing_params(config: RunConfig, config_class: type, params: dict[str, Any]) -> dict[str, Any]:
    """Return the strategy's ``sizing`` parameter from ``[sizing]``, with the estimated correlation matrix.

    Raises
    ------
    ConfigError
        If the strategy takes no ``sizing``, the params set it too, or the correlation cannot be estimated.
    """
    sizing = config.sizing
    if sizing is None:
        return {}
    if not _takes(config_class, "sizing"):
        raise ConfigError(
            f"sizing: expected a strategy config with a sizing parameter, {config_class.__name__} has none"
        )
    if "sizing" in params:
        raise ConfigError("strategy.params.sizing: expected sizing once, in [sizing]; remove it from strategy.params")
    fields = sizing.strategy_fields()
    instruments = [(v.name, s, str(instrument_id_for(v.name, s))) for v in config.venues for s in v.instruments]
    if sizing.max_correlated_exposure_usd is not None and len(instruments) > 1:
        fields["correlation"] = estimate_correlation(config, sizing, instruments=instruments)
    return fields


def margin_tier_params(config: RunConfig, risk: Mapping[str, Any] | None) -> dict[str, Any]:
    """Return the strategy's ``risk`` param with ``margin_tiers`` read from the store ``[data].store``.

    Each configured instrument with notional brackets in the store gets those in force at ``start``
    (the first stored version for an earlier window: brackets carry no history before their import);
    ``risk.margin_tiers`` set in the params wins. Instruments without brackets keep their flat rate.

    Raises
    ------
    ConfigError
        If the store cannot be read.
    """
    document = dict(risk or {})
    if config.data.store is None or "margin_tiers" in document:
        return document
    store = Store(Path(config.data.store))
    tiers: dict[str, list[dict[str, str | None]]] = {}
    for venue in config.venues:
        for symbol in venue.instruments:
            try:
                rows = margin_tiers_at(store, venue.name, symbol, config.start, before_first="earliest")
            except NotInStoreError:
                continue
            except DatasetError as exc:
                raise ConfigError(
                    f"data.store: expected a readable store at {config.data.store}, was not ({exc})"
                ) from None
            if rows and all(row.bound_unit == "notional" for row in rows):
                tiers[str(instrument_id_for(venue.name, symbol))] = [
                    {
                        "notional_floor": str(row.notional_floor),
                        "notional_cap": None if row.notional_cap is None else str(row.notional_cap),
                        "maintenance_rate": str(row.maintenance_margin),
                        "maintenance_amount": str(row.maintenance_amount or 0),
                    }
                    for row in rows
                ]
    if tiers:
        document["margin_tiers"] = tiers
    return document


def _takes(config_class: type, name: str) -> bool:
    try:
        parameters = inspect.signature(config_class).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == name or p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)


def _accepts(config_class: type, name: str) -> bool:
    # A config passing ``**carry`` on to its base accepts what the base names.
    return any(name in _parameters(base) for base in config_class.__mro__ if "__init__" in vars(base))


def _parameters(config_class: type) -> set[str]:
    try:
        return set(inspect.signature(config_class).parameters)
    except (TypeError, ValueError):
        return set()


def resolve_params(config: RunConfig) -> dict[str, Any]:
    """Return the strategy params with every ``"venue:SYMBOL"`` string replaced by its Nautilus instrument id.

    Raises
    ------
    ConfigError
        If a reference names a venue the config does not declare, or a symbol not listed on that venue.
    """
    return {key: _resolve(value, config, f"strategy.params.{key}") for key, value in config.strategy.params.items()}


def _resolve(value: Any, config: RunConfig, where: str) -> Any:
    if isinstance(value, list):
        return [_resolve(item, config, f"{where}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, dict):
        return {k: _resolve(v, config, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, str) and (match := INSTRUMENT_REFERENCE.match(value)):
        return str(resolve_instrument(config, match["venue"], match["symbol"], where=where))
    return value
