"""Venue credentials: read from the environment or a secrets file, never from a run config.

A ``Secret`` holds one value and shows ``Secret('***')`` in every ``repr``/``str``/format; the raw value
is only reachable through ``reveal()``, which the adapter-config builders call at the last moment.
A ``Redactor`` knows every secret loaded in the process and replaces it in any text, raw and in every
form an encoder prints it in (JSON with or without ASCII escapes, ``repr``/``ascii``, ``unicode_escape``,
URL quoting: ``encoded_forms``), so a quote, a backslash or a non-ASCII character in a key cannot slip
past it escaped. The node's logging (before JSON encoding, and again after) and the process's
stdout/stderr pass through it (``install_stdio_redaction``), so a line an adapter or a third-party
library prints cannot carry a key out either. A credential shorter than ``MIN_SECRET_CHARS`` is refused
at load (venues issue far longer keys: a short one is a truncated paste, and would mask ordinary words).

Environment: ``CARRYLAB_<VENUE>_API_KEY`` and ``CARRYLAB_<VENUE>_API_SECRET`` (``BINANCE``, ``BYBIT``,
``OKX``, ``HYPERLIQUID``, ``KRAKEN``); OKX also needs ``CARRYLAB_OKX_PASSPHRASE``. Hyperliquid's
"key" is the account address and its "secret" the signing private key.
Secrets file (TOML, readable by its owner only)::

    [binance]
    api_key = "..."
    api_secret = "..."
"""

from __future__ import annotations

import json
import os
import stat
import sys
import threading
import tomllib
import urllib.parse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.errors import CredentialsError
from engine.live.signals import block_signals

MASK = "***"
ENV_PREFIX = "CARRYLAB"
FIELDS = ("api_key", "api_secret", "passphrase")
# Venues issue far longer keys; shorter is a truncated paste, and masking it would mangle ordinary words.
MIN_SECRET_CHARS = 16


class Secret:
    """One credential value that never shows itself in ``repr``, ``str``, f-strings or pickles."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """Return the raw value (for the adapter config only; never log it)."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret({MASK!r})"

    def __str__(self) -> str:
        return MASK

    def __format__(self, spec: str) -> str:
        return MASK

    def __reduce__(self) -> Any:
        raise TypeError("a Secret cannot be pickled")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))


@dataclass(frozen=True, slots=True)
class Credentials:
    """API credentials of one venue; ``repr`` shows which fields are set, never their values."""

    venue: str
    api_key: Secret
    api_secret: Secret
    passphrase: Secret | None = None
    source: str = "environment"

    def secrets(self) -> list[Secret]:
        """Return every secret value held (for the redactor)."""
        return [s for s in (self.api_key, self.api_secret, self.passphrase) if s is not None]


def encoded_forms(value: str) -> set[str]:
    """Return ``value`` and every form an encoder may print it in, quotes stripped.

    JSON with and without ASCII escapes (and JSON-escaped twice, a JSON line inside a JSON string),
    ``repr`` and ``ascii`` of the text and of its UTF-8 bytes, ``unicode_escape``, and URL quoting.
    """
    escaped = json.dumps(value)[1:-1]
    forms = {
        value,
        escaped,
        json.dumps(value, ensure_ascii=False)[1:-1],
        json.dumps(escaped)[1:-1],
        repr(value)[1:-1],
        ascii(value)[1:-1],
        repr(value.encode())[2:-1],
        value.encode("unicode_escape").decode("ascii"),
        urllib.parse.quote(value, safe=""),
        urllib.parse.quote_plus(value, safe=""),
    }
    return {form for form in forms if form}


class Redactor:
    """Replace every registered secret, in each of its ``encoded_forms``, with ``***`` (thread-safe)."""

    def __init__(self) -> None:
        self._forms: set[str] = set()
        self._ordered: list[str] = []
        self._lock = threading.Lock()

    def add(self, secrets: Iterable[Secret]) -> None:
        """Register secret values (any non-empty length) to redact from now on."""
        with self._lock:
            for secret in secrets:
                if secret.reveal():
                    self._forms |= encoded_forms(secret.reveal())
            # Longest first: a form containing another is replaced whole.
            self._ordered = sorted(self._forms, key=len, reverse=True)

    def redact(self, text: str) -> str:
        """Return ``text`` with every registered secret, raw or encoded, replaced by ``***``."""
        with self._lock:
            forms = self._ordered
        for form in forms:
            if form in text:
                text = text.replace(form, MASK)
        return text

    @property
    def longest(self) -> int:
        """Return the length in UTF-8 bytes of the longest form registered (0 if none)."""
        with self._lock:
            return max((len(f.encode()) for f in self._forms), default=0)


REDACTOR = Redactor()


def env_name(venue: str, field: str) -> str:
    """Return the environment variable of one credential field (``CARRYLAB_BINANCE_API_KEY``)."""
    return f"{ENV_PREFIX}_{venue.upper()}_{field.upper()}"


def load_credentials(
    venues: Iterable[str],
    *,
    environ: Mapping[str, str] | None = None,
    secrets_file: str | Path | None = None,
    redactor: Redactor = REDACTOR,
) -> dict[str, Credentials]:
    """Return the credentials of every venue that has both a key and a secret.

    The environment wins over the secrets file, field by field. Every value found is registered
    with ``redactor`` before this returns.

    Raises
    ------
    CredentialsError
        If the secrets file is missing, unreadable, malformed, or readable by group or others, or a
        value is shorter than ``MIN_SECRET_CHARS`` (the message names the variable or the file's
        field, never the value).
    """
    environ = os.environ if environ is None else environ
    from_file = _read_secrets_file(Path(secrets_file)) if secrets_file is not None else {}
    found: dict[str, Credentials] = {}
    for venue in venues:
        values: dict[str, str] = {}
        sources = set()
        for field in FIELDS:
            value = environ.get(env_name(venue, field))
            if value:
                values[field] = value
                sources.add("environment")
                where = env_name(venue, field)
            elif isinstance(from_file.get(venue, {}).get(field), str) and from_file[venue][field]:
                values[field] = from_file[venue][field]
                sources.add("secrets file")
                where = f"[{venue}] {field} in the secrets file {secrets_file}"
            else:
                continue
            if len(values[field]) < MIN_SECRET_CHARS:
                # Refused, so never used: it is not registered (masking a short text would mangle the message).
                raise CredentialsError(
                    f"{where}: expected a credential of at least {MIN_SECRET_CHARS} characters (venues issue "
                    f"longer keys), was {len(values[field])} characters; set the whole key"
                )
            redactor.add([Secret(values[field])])
        secrets = {k: Secret(v) for k, v in values.items()}
        if "api_key" in secrets and "api_secret" in secrets:
            found[venue] = Credentials(
                venue=venue,
                api_key=secrets["api_key"],
                api_secret=secrets["api_secret"],
                passphrase=secrets.get("passphrase"),
                source=" + ".join(sorted(sources)),
            )
    return found


def missing_credentials(venues: Iterable[str], found: Mapping[str, Credentials]) -> list[str]:
    """Return one line per venue without credentials, naming the variables to set."""
    return [
        f"{venue}: set {env_name(venue, 'api_key')} and {env_name(venue, 'api_secret')} "
        f"(or [{venue}] api_key/api_secret in --secrets FILE)"
        for venue in venues
        if venue not in found
    ]


def _read_secrets_file(path: Path) -> dict[str, dict[str, Any]]:
    try:
        mode = path.stat().st_mode
        raw = path.read_bytes()
    except OSError as exc:
        raise CredentialsError(
            f"expected a readable secrets file at {path}, was {exc.strerror}; check --secrets"
        ) from None
    if os.name == "posix" and mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise CredentialsError(
            f"expected secrets file {path} to be readable by its owner only, was mode {stat.filemode(mode)}; "
            f"run: chmod 600 {path}"
        )
    try:
        document = tomllib.loads(raw.decode())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError):
        # The parser's message may quote the offending line, i.e. a secret: say where, not what.
        raise CredentialsError(
            f"expected TOML tables like [binance] api_key = '...' in {path}, it does not parse"
        ) from None
    return {k: v for k, v in document.items() if isinstance(v, dict)}


class _RedactingStream(threading.Thread):
    def __init__(self, read_fd: int, write_fd: int, redactor: Redactor) -> None:
        super().__init__(name=f"redact-fd{write_fd}", daemon=True)
        self.read_fd = read_fd
        self.write_fd = write_fd
        self.redactor = redactor

    def run(self) -> None:
        block_signals()
        pending = b""
        while True:
            chunk = os.read(self.read_fd, 65_536)
            if not chunk:
                break
            pending += chunk
            # Hold back a tail as long as the longest secret so one split across reads is still caught,
            # cut on a UTF-8 character boundary.
            cut = pending.rfind(b"\n") + 1
            if cut == 0 and len(pending) > 65_536 + self.redactor.longest:
                cut = len(pending) - self.redactor.longest
                while cut > 0 and pending[cut] & 0xC0 == 0x80:
                    cut -= 1
            if cut:
                self._write(pending[:cut])
                pending = pending[cut:]
        if pending:
            self._write(pending)

    def _write(self, data: bytes) -> None:
        text = self.redactor.redact(data.decode(errors="replace"))
        os.write(self.write_fd, text.encode())


@dataclass(slots=True)
class StdioRedaction:
    """Handle of an installed redaction: ``close()`` flushes and restores the original descriptors."""

    saved: dict[int, int]
    threads: list[_RedactingStream]

    def close(self) -> None:
        """Restore stdout/stderr and wait for the last redacted bytes to be written."""
        sys.stdout.flush()
        sys.stderr.flush()
        for fd, original in self.saved.items():
            os.dup2(original, fd)
        for thread in self.threads:
            thread.join(timeout=5)
        for original in self.saved.values():
            os.close(original)


def install_stdio_redaction(redactor: Redactor = REDACTOR) -> StdioRedaction:
    """Route file descriptors 1 and 2 (Python, Rust and C writers alike) through ``redactor``.

    Nautilus logs from Rust straight to the process's descriptors; replacing them with pipes is the
    one place every line passes, whatever printed it.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    saved: dict[int, int] = {}
    threads = []
    for fd in (1, 2):
        original = os.dup(fd)
        read_fd, write_fd = os.pipe()
        os.dup2(write_fd, fd)
        os.close(write_fd)
        thread = _RedactingStream(read_fd, original, redactor)
        thread.start()
        saved[fd] = original
        threads.append(thread)
    return StdioRedaction(saved=saved, threads=threads)
