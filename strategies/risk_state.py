"""Read back what a strategy's ``on_save`` wrote: a JSON document per key, fields checked by type.

``strategies.risk`` saves its breakers under ``RISK_STATE_KEY``; ``strategies.carry`` and
``strategies.liquidation_cascade`` save their own documents and read them with the same helpers.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

RISK_STATE_KEY = "risk"


def load_state_document(state: Mapping[str, bytes], key: str) -> dict[str, Any]:
    """Return the JSON object saved under ``key`` of a strategy's ``on_save`` state.

    Raises
    ------
    ValueError
        If it is not a JSON object.
    """
    try:
        document = json.loads(bytes(state[key]).decode())
    except (UnicodeDecodeError, json.JSONDecodeError, TypeError) as exc:
        raise ValueError(f"{key}: expected a JSON document, could not read it ({exc})") from None
    if not isinstance(document, dict):
        raise ValueError(f"{key}: expected a JSON object, was {type(document).__name__}")
    return document


def state_field(document: Mapping[str, Any], key: str, name: str, kinds: type | tuple[type, ...]) -> Any:
    """Return ``document[name]`` if it is of ``kinds``.

    Raises
    ------
    ValueError
        If it is missing or of another type; the message names ``key.name``.
    """
    if name not in document:
        raise ValueError(f"{key}.{name}: expected a value, was missing")
    value = document[name]
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in _tuple(kinds)):
        raise ValueError(f"{key}.{name}: expected {_names(kinds)}, was {value!r}")
    return value


def state_decimal(document: Mapping[str, Any], key: str, name: str, *, optional: bool = False) -> Any:
    """Return ``document[name]`` (decimal text) as a finite ``Decimal`` (None when ``optional`` and null).

    Raises
    ------
    ValueError
        If it is missing or not decimal text; the message names ``key.name``.
    """
    if name not in document:
        raise ValueError(f"{key}.{name}: expected decimal text, was missing")
    value = document[name]
    if value is None and optional:
        return None
    try:
        number = Decimal(value) if isinstance(value, str) else None
    except InvalidOperation:
        number = None
    if number is None or not number.is_finite():
        raise ValueError(f"{key}.{name}: expected decimal text, was {value!r}")
    return number


def _tuple(kinds: type | tuple[type, ...]) -> tuple[type, ...]:
    return kinds if isinstance(kinds, tuple) else (kinds,)


def _names(kinds: type | tuple[type, ...]) -> str:
    return " or ".join("null" if k is type(None) else k.__name__ for k in _tuple(kinds))
