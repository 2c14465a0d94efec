"""A Borsh reader driven by Anchor IDL type definitions (legacy and 0.30+ IDL formats).

``compile_type`` turns an IDL type (``"u64"``, ``{"vec": "u32"}``, ``{"defined": "LiquidationBalances"}``,
``{"defined": {"name": "WrappedI80F48"}}``, ...) into a reader ``(buffer, offset) -> (value, offset)``,
resolving defined types through the IDL's ``types`` (and, for legacy IDLs, ``accounts`` and ``events``).
Values come out as plain Python: integers stay exact ``int``, floats ``float``, public keys base58 ``str``,
structs ``dict`` keyed by snake_case field names (so a legacy camelCase IDL and a current snake_case
one give the same keys), unit enum variants their name, other variants ``{name: fields}``.

Why not anchorpy or borsh-construct: both pin ``construct-typing<0.6`` and ``solana 0.41`` needs
``>=0.8.1``, so neither installs beside the declared ``solana`` dependency; anchorpy 0.21 also rejects
the 0.30 IDL format of marginfi 0.1.7 and klend 1.11 (measured, see ``datasets/onchain/__init__.py``).
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable, Mapping
from typing import Any

from solders.pubkey import Pubkey

from datasets.onchain.errors import BorshError, IdlError

Reader = Callable[[bytes, int], tuple[Any, int]]

_CAMEL = re.compile(r"(?<=[a-z0-9])([A-Z])|(?<=[A-Z])([A-Z])(?=[a-z])")


def snake_case(name: str) -> str:
    """Return ``name`` in snake_case (``liquidateeMarginfiAccount -> liquidatee_marginfi_account``)."""
    return _CAMEL.sub(lambda m: "_" + (m.group(1) or m.group(2)), name).lower()


def _fixed(fmt: str) -> Reader:
    packer = struct.Struct("<" + fmt)
    size = packer.size

    def read(buffer: bytes, offset: int) -> tuple[Any, int]:
        end = offset + size
        if end > len(buffer):
            raise BorshError(f"expected {size} more bytes for {fmt!r} at offset {offset}, was {len(buffer) - offset}")
        return packer.unpack_from(buffer, offset)[0], end

    return read


def _wide(size: int, *, signed: bool) -> Reader:
    def read(buffer: bytes, offset: int) -> tuple[Any, int]:
        end = offset + size
        if end > len(buffer):
            raise BorshError(f"expected {size} more bytes at offset {offset}, was {len(buffer) - offset}")
        return int.from_bytes(buffer[offset:end], "little", signed=signed), end

    return read


def _pubkey(buffer: bytes, offset: int) -> tuple[Any, int]:
    end = offset + 32
    if end > len(buffer):
        raise BorshError(f"expected 32 more bytes for a public key at offset {offset}, was {len(buffer) - offset}")
    return str(Pubkey.from_bytes(buffer[offset:end])), end


_U32 = struct.Struct("<I")


def _length(buffer: bytes, offset: int) -> tuple[int, int]:
    if offset + 4 > len(buffer):
        raise BorshError(f"expected a 4-byte length at offset {offset}, was {len(buffer) - offset} bytes")
    return _U32.unpack_from(buffer, offset)[0], offset + 4


def _bytes(buffer: bytes, offset: int) -> tuple[Any, int]:
    size, start = _length(buffer, offset)
    end = start + size
    if end > len(buffer):
        raise BorshError(f"expected {size} bytes at offset {start}, was {len(buffer) - start}")
    return bytes(buffer[start:end]), end


def _string(buffer: bytes, offset: int) -> tuple[Any, int]:
    raw, end = _bytes(buffer, offset)
    try:
        return raw.decode("utf-8"), end
    except UnicodeDecodeError as error:
        raise BorshError(f"expected a UTF-8 string at offset {offset}: {error}") from None


def _bool(buffer: bytes, offset: int) -> tuple[Any, int]:
    if offset >= len(buffer):
        raise BorshError(f"expected a bool at offset {offset}, was the end of the data")
    tag = buffer[offset]
    if tag > 1:
        raise BorshError(f"expected a bool (0 or 1) at offset {offset}, was {tag}")
    return tag == 1, offset + 1


PRIMITIVES: Mapping[str, Reader] = {
    "bool": _bool,
    "u8": _fixed("B"),
    "i8": _fixed("b"),
    "u16": _fixed("H"),
    "i16": _fixed("h"),
    "u32": _fixed("I"),
    "i32": _fixed("i"),
    "u64": _fixed("Q"),
    "i64": _fixed("q"),
    "f32": _fixed("f"),
    "f64": _fixed("d"),
    "u128": _wide(16, signed=False),
    "i128": _wide(16, signed=True),
    "u256": _wide(32, signed=False),
    "i256": _wide(32, signed=True),
    "publicKey": _pubkey,
    "pubkey": _pubkey,
    "string": _string,
    "bytes": _bytes,
}


def _option(inner: Reader, *, tag_size: int) -> Reader:
    def read(buffer: bytes, offset: int) -> tuple[Any, int]:
        if offset + tag_size > len(buffer):
            raise BorshError(f"expected an option tag at offset {offset}, was the end of the data")
        tag = int.from_bytes(buffer[offset : offset + tag_size], "little")
        if tag == 0:
            return None, offset + tag_size
        if tag != 1:
            raise BorshError(f"expected an option tag 0 or 1 at offset {offset}, was {tag}")
        return inner(buffer, offset + tag_size)

    return read


def _vec(inner: Reader) -> Reader:
    def read(buffer: bytes, offset: int) -> tuple[Any, int]:
        count, offset = _length(buffer, offset)
        if count > len(buffer) - offset:
            raise BorshError(f"a vector of {count} items cannot fit in the {len(buffer) - offset} bytes left")
        items = []
        for _ in range(count):
            item, offset = inner(buffer, offset)
            items.append(item)
        return items, offset

    return read


def _array(inner: Reader, count: int, *, byte_array: bool) -> Reader:
    if byte_array:

        def read_bytes(buffer: bytes, offset: int) -> tuple[Any, int]:
            end = offset + count
            if end > len(buffer):
                raise BorshError(f"expected {count} bytes at offset {offset}, was {len(buffer) - offset}")
            return bytes(buffer[offset:end]), end

        return read_bytes

    def read(buffer: bytes, offset: int) -> tuple[Any, int]:
        items = []
        for _ in range(count):
            item, offset = inner(buffer, offset)
            items.append(item)
        return items, offset

    return read


def _struct(fields: list[tuple[str, Reader]]) -> Reader:
    def read(buffer: bytes, offset: int) -> tuple[Any, int]:
        value: dict[str, Any] = {}
        for name, reader in fields:
            value[name], offset = reader(buffer, offset)
        return value, offset

    return read


def _enum(name: str, variants: list[tuple[str, Reader | None]]) -> Reader:
    def read(buffer: bytes, offset: int) -> tuple[Any, int]:
        if offset >= len(buffer):
            raise BorshError(f"expected a {name} variant tag at offset {offset}, was the end of the data")
        tag = buffer[offset]
        if tag >= len(variants):
            raise BorshError(f"expected a {name} variant tag below {len(variants)} at offset {offset}, was {tag}")
        variant, reader = variants[tag]
        if reader is None:
            return variant, offset + 1
        fields, end = reader(buffer, offset + 1)
        return {variant: fields}, end

    return read


class TypeCompiler:
    """Compile IDL types into Borsh readers, resolving and caching defined types by name.

    Parameters
    ----------
    definitions : Mapping[str, dict]
        Every defined type of one IDL by name: its ``{"kind": "struct" | "enum" | "type", ...}`` body.
    """

    def __init__(self, definitions: Mapping[str, dict[str, Any]]) -> None:
        self._definitions = definitions
        self._cache: dict[str, Reader] = {}

    def defined(self, name: str) -> Reader:
        """Return the reader of the defined type ``name``.

        Raises
        ------
        IdlError
            If the IDL defines no such type, or it uses a construct this reader does not support.
        """
        cached = self._cache.get(name)
        if cached is not None:
            return cached
        body = self._definitions.get(name)
        if body is None:
            raise IdlError(f"the IDL defines no type {name!r}; check the IDL file or the type name")
        # A placeholder breaks recursion (a type naming itself is not Borsh-decodable anyway).
        self._cache[name] = _recursive_guard(name)
        reader = self._body(name, body)
        self._cache[name] = reader
        return reader

    def compile(self, idl_type: Any, generics: Mapping[str, Any] | None = None) -> Reader:
        """Return the reader of one IDL type expression.

        Raises
        ------
        IdlError
            If the expression is not a type this reader supports.
        """
        if isinstance(idl_type, str):
            reader = PRIMITIVES.get(idl_type)
            if reader is None:
                raise IdlError(f"unsupported IDL type {idl_type!r}; expected a Borsh primitive or a compound type")
            return reader
        if not isinstance(idl_type, dict) or len(idl_type) != 1:
            raise IdlError(f"expected an IDL type expression, was {idl_type!r}")
        ((tag, argument),) = idl_type.items()
        return self._compound(tag, argument, generics or {})

    def _compound(self, tag: str, argument: Any, generics: Mapping[str, Any]) -> Reader:
        if tag == "option":
            return _option(self.compile(argument, generics), tag_size=1)
        if tag == "coption":
            return _option(self.compile(argument, generics), tag_size=4)
        if tag == "vec":
            return _vec(self.compile(argument, generics))
        if tag == "array":
            element, count = argument
            if isinstance(count, dict) and "generic" in count:
                count = generics[count["generic"]]
            return _array(self.compile(element, generics), int(count), byte_array=element == "u8")
        if tag == "generic":
            return self.compile(generics[argument], generics)
        if tag == "defined":
            if isinstance(argument, str):
                return self.defined(argument)
            if argument.get("generics"):
                raise IdlError(f"generic defined types are not supported, was {argument!r}")
            return self.defined(argument["name"])
        raise IdlError(f"unsupported IDL type {tag!r}; expected option, coption, vec, array or defined")

    def _body(self, name: str, body: dict[str, Any]) -> Reader:
        kind = body.get("kind")
        if kind == "struct":
            return self.fields(body.get("fields") or [])
        if kind == "enum":
            variants = [
                (variant["name"], self.fields(variant["fields"]) if variant.get("fields") else None)
                for variant in body["variants"]
            ]
            return _enum(name, variants)
        if kind == "type":
            return self.compile(body["alias"])
        raise IdlError(f"type {name!r} has kind {kind!r}; expected struct, enum or type")

    def fields(self, fields: list[Any]) -> Reader:
        """Return the reader of a struct with these IDL fields (named, or a tuple's bare types).

        Raises
        ------
        IdlError
            If a field's type is not supported.
        """
        compiled: list[tuple[str, Reader]] = []
        for position, field in enumerate(fields):
            if isinstance(field, dict) and "name" in field:
                compiled.append((snake_case(field["name"]), self.compile(field["type"])))
            else:
                compiled.append((str(position), self.compile(field)))
        return _struct(compiled)


def _recursive_guard(name: str) -> Reader:
    def read(buffer: bytes, offset: int) -> tuple[Any, int]:
        raise IdlError(f"type {name!r} contains itself; it cannot be read as Borsh")

    return read
