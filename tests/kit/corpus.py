"""A corpus of bad (and a few legitimate but awkward) inputs, made at run time from the real shared files.

Every case takes real files from ``../shared/data``, mutates a copy into a work folder and returns the
``python -m datasets`` arguments that import it. ``tests/integration/test_bad_input_corpus.py`` runs
each against a store already holding good data and asserts the exit code, that the message names the
file, the row and the field, and that a refused input changed no byte of the store. Nothing here
writes to ``../shared/data``.

Cases are grouped by the importer they attack (``Case.importer``) so the run can print how many were
tried, refused clearly and accepted per importer.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from datasets.exit_codes import ExitCode

KLINES = "binance_vision/AVAXUSDT-1m-2024-02.csv"
HL_FUNDING = "hyperliquid_api/funding_history_BTC_ETH.csv"
HL_LIQUIDATIONS = "hyperliquid_official/liquidations.csv"
BINANCE_LIQUIDATIONS = "binance_liquidations/binance_liquidations_head.csv"
EXPORT = "messy_formats/raw_binance/Funding Rate History_BTCUSDT Perpetual_2024-08-09.csv"
SPOT_BARS = "binance_freqtrade/spot/BTC_USDT-1h.feather"
PERP_FUNDING = "binance_freqtrade/futures/BTC_USDT_USDT-1h-funding_rate.feather"
PAYLOADS = "exchange_payloads"
BINANCE_FUNDING_JSON = (
    f"{PAYLOADS}/tests/integration_tests/adapters/binance/resources/http_responses/"
    "http_futures_market_funding_rate.json"
)
BYBIT_FUNDING_JSON = f"{PAYLOADS}/crates/adapters/bybit/test_data/http_get_funding_history.json"
OKX_FUNDING_JSON = f"{PAYLOADS}/crates/adapters/okx/test_data/http_get_funding_rate_history.json"
HL_FUNDING_JSON = f"{PAYLOADS}/crates/adapters/hyperliquid/test_data/http_funding_history.json"
FORCE_ORDER_JSON = f"{PAYLOADS}/crates/adapters/binance/test_data/futures/market_data_json/liquidation_stream.json"

# Files the good store is built from before every case (small, fast, real).
BASE_INPUTS = (PERP_FUNDING, BINANCE_LIQUIDATIONS, HL_LIQUIDATIONS)

Build = Callable[[Path, Path], list[str]]
Check = Callable[[Path], None]
Patch = Callable[[pytest.MonkeyPatch], None]


@dataclass(frozen=True, slots=True)
class Case:
    """One input: how to make it, the exit code it must get and what its message must say."""

    name: str
    importer: str
    build: Build
    code: ExitCode
    expect: tuple[str, ...] = ()
    check: Check | None = None
    patch: Patch | None = None
    prepare: Check | None = None

    @property
    def accepted(self) -> bool:
        return self.code == ExitCode.OK


@dataclass(slots=True)
class Tally:
    """Outcomes of the corpus run, for the summary line."""

    tried: Counter[str] = field(default_factory=Counter)
    refused: Counter[str] = field(default_factory=Counter)
    accepted: Counter[str] = field(default_factory=Counter)

    def add(self, case: Case) -> None:
        self.tried[case.importer] += 1
        (self.accepted if case.accepted else self.refused)[case.importer] += 1

    def lines(self) -> list[str]:
        total = (sum(self.tried.values()), sum(self.refused.values()), sum(self.accepted.values()))
        lines = [f"bad-input corpus: tried {total[0]}, refused clearly {total[1]}, accepted {total[2]}"]
        for importer in sorted(self.tried):
            lines.append(
                f"  {importer}: tried {self.tried[importer]}, refused clearly {self.refused[importer]}, "
                f"accepted {self.accepted[importer]}"
            )
        return lines


# ------------------------------------------------------------------------------------------ helpers
def _lines(shared: Path, name: str, count: int | None = None) -> list[str]:
    lines = (shared / name).read_text(encoding="utf-8-sig").splitlines()
    return lines if count is None else lines[:count]


def _write(work: Path, name: str, lines: Sequence[str], *, encoding: str = "utf-8", newline: bool = True) -> Path:
    path = work / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(("\n".join(lines) + ("\n" if newline else "")).encode(encoding))
    return path


def _field(line: str, index: int, value: str) -> str:
    parts = line.split(",")
    parts[index] = value
    return ",".join(parts)


def _import(*paths: Path, flags: Sequence[str] = ()) -> list[str]:
    return ["import", *(str(p) for p in paths), *flags]


def _ms(ts: datetime) -> int:
    return int(ts.timestamp() * 1000)


# ------------------------------------------------------------------------------------ freqtrade
def _feather(mutate: Callable[[pl.DataFrame], pl.DataFrame], *, name: str = "BTC_USDT-1h.feather") -> Build:
    def build(shared: Path, work: Path) -> list[str]:
        source = SPOT_BARS if "funding" not in name else PERP_FUNDING
        frame = pl.read_ipc(shared / source).head(48)
        if "funding" in name:
            frame = pl.read_ipc(shared / source).slice(3000, 48)
        path = work / "binance" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        mutate(frame).write_ipc(path)
        return _import(path)

    return build


def _at(row: int, column: str, value: object) -> Callable[[pl.DataFrame], pl.DataFrame]:
    def mutate(frame: pl.DataFrame) -> pl.DataFrame:
        values = frame[column].to_list()
        values[row] = value
        return frame.with_columns(pl.Series(column, values, dtype=frame.schema[column]))

    return mutate


def _feather_cases() -> list[Case]:
    group = "freqtrade feather"
    funding = "BTC_USDT_USDT-1h-funding_rate.feather"
    shift = pl.duration(minutes=17, seconds=33)

    def truncated(shared: Path, work: Path) -> list[str]:
        path = work / "binance" / "BTC_USDT-1h.feather"
        path.parent.mkdir(parents=True)
        path.write_bytes((shared / SPOT_BARS).read_bytes()[:5000])
        return _import(path)

    def no_venue(shared: Path, work: Path) -> list[str]:
        path = work / "somewhere" / "BTC_USDT-1h.feather"
        path.parent.mkdir(parents=True)
        pl.read_ipc(shared / SPOT_BARS).head(5).write_ipc(path)
        return _import(path)

    def typo_venue(shared: Path, work: Path) -> list[str]:
        path = work / "somewhere" / "BTC_USDT-1h.feather"
        path.parent.mkdir(parents=True)
        pl.read_ipc(shared / SPOT_BARS).head(5).write_ipc(path)
        return _import(path, flags=["--venue", "binanse"])

    return [
        Case(
            "truncated file", group, truncated, ExitCode.BAD_INPUT, ("BTC_USDT-1h.feather: not a readable Arrow IPC",)
        ),
        Case(
            "price column of text",
            group,
            _feather(lambda f: f.with_columns(pl.col("close").cast(pl.String))),
            ExitCode.BAD_INPUT,
            (r"BTC_USDT-1h\.feather: column 'close' should be float64", "was String"),
        ),
        Case(
            "price 1e30",
            group,
            _feather(_at(7, "high", 1e30)),
            ExitCode.BAD_INPUT,
            (r"BTC_USDT-1h\.feather: record 7, field 'high': expected a number below 1e20",),
        ),
        Case(
            "rate 1e30",
            group,
            _feather(_at(3, "open", 1e30), name=funding),
            ExitCode.BAD_INPUT,
            (r"funding_rate\.feather: record 3, field 'open': expected a number below 1e20",),
        ),
        Case(
            "date column as integers",
            group,
            _feather(lambda f: f.with_columns(pl.col("date").dt.epoch("ms"))),
            ExitCode.BAD_INPUT,
            ("column 'date' should be a timestamp, was Int64",),
        ),
        Case(
            "missing close column",
            group,
            _feather(lambda f: f.drop("close")),
            ExitCode.BAD_INPUT,
            ("column 'close' is missing",),
        ),
        Case(
            "epoch seconds read as milliseconds (1970 bars)",
            group,
            _feather(
                lambda f: f.with_columns(pl.from_epoch(pl.col("date").dt.epoch("s"), "ms").dt.replace_time_zone("UTC"))
            ),
            ExitCode.BAD_INPUT,
            (r"BTC_USDT-1h\.feather: row 0, field 'ts': expected a time from 2017-07-14", "was 1970-01-18"),
        ),
        Case(
            "year 2100",
            group,
            _feather(lambda f: f.with_columns(pl.col("date").dt.offset_by("82y"))),
            ExitCode.BAD_INPUT,
            (r"row 0, field 'ts': expected a time from 2017-07-14 .* to now \+ 1 day", "was 2100-01-01"),
        ),
        Case(
            "1h bars stamped at :17:33",
            group,
            _feather(lambda f: f.with_columns(pl.col("date") + shift)),
            ExitCode.BAD_INPUT,
            (r"row 0, field 'ts': expected a 1h bar to open on the 1h grid", "was 2018-01-01 00:17:33"),
        ),
        Case(
            "rows one minute apart in a file named 1h",
            group,
            _feather(
                lambda f: f.with_columns(
                    pl.datetime_range(
                        f["date"][0],
                        f["date"][0] + timedelta(minutes=47),
                        "1m",
                        eager=True,
                        time_zone="UTC",
                        time_unit="ns",
                    ).alias("date")
                )
            ),
            ExitCode.BAD_INPUT,
            (r"row 1, field 'ts': expected a 1h bar to open on the 1h grid",),
        ),
        Case(
            "4h bars in a file named 1h",
            group,
            _feather(
                lambda f: f.with_columns(pl.col("date").dt.offset_by("0h") + pl.duration(hours=pl.int_range(0, 48) * 3))
            ),
            ExitCode.BAD_INPUT,
            (r"row 0, field 'ts': expected 1h bars, some 3600 s apart, was 48 bars at least",),
        ),
        Case(
            "NaN close",
            group,
            _feather(_at(5, "close", float("nan"))),
            ExitCode.BAD_INPUT,
            (r"row 5, field 'close': is empty or could not be parsed",),
        ),
        Case(
            "negative price",
            group,
            _feather(
                lambda f: f.with_columns(
                    pl.when(pl.int_range(pl.len()) == 9).then(-1.0).otherwise(pl.col("low")).alias("low")
                )
            ),
            ExitCode.BAD_INPUT,
            (r"row 9, field 'low': prices must be > 0",),
        ),
        Case(
            "high below open",
            group,
            _feather(_at(11, "high", 1.0)),
            ExitCode.BAD_INPUT,
            (r"row 11, field 'high': high must be >= max\(open, close\)",),
        ),
        Case(
            "duplicate bar with another price",
            group,
            _feather(lambda f: pl.concat([f, f.head(1).with_columns(pl.col("close") * 1.01, pl.col("high") * 1.02)])),
            ExitCode.BAD_INPUT,
            (r"field 'ts': key \(venue, symbol, price_type, interval, ts\) appears more than once",),
        ),
        Case(
            "funding rate 5.0 per 8h",
            group,
            _feather(_at(4, "open", 5.0), name=funding),
            ExitCode.BAD_INPUT,
            (r"funding_rate\.feather: row 4, field 'rate': expected \|rate\| <= 0.04", "was 5", "--allow-extreme"),
        ),
        Case(
            "funding settlement off the clock",
            group,
            _feather(
                lambda f: f.with_columns(
                    pl.when(pl.int_range(pl.len()) == 6)
                    .then(pl.col("date") + shift)
                    .otherwise(pl.col("date"))
                    .alias("date")
                ),
                name=funding,
            ),
            ExitCode.BAD_INPUT,
            (r"funding_rate\.feather: record 6, field 'date': expected a settlement on binance's funding clock",),
        ),
        Case(
            "funding rate column of text",
            group,
            _feather(lambda f: f.with_columns(pl.col("open").cast(pl.String)), name=funding),
            ExitCode.BAD_INPUT,
            ("column 'open' should be float64",),
        ),
        Case(
            "no rows",
            group,
            _feather(lambda f: f.head(0)),
            ExitCode.BAD_INPUT,
            (r"BTC_USDT-1h\.feather: expected candles, was a feather file with no rows",),
        ),
        Case(
            "folder names no venue",
            group,
            no_venue,
            ExitCode.BAD_INPUT,
            ("cannot tell the venue from the path", "pass --venue"),
        ),
        Case(
            "--venue binanse",
            group,
            typo_venue,
            ExitCode.USAGE,
            ("argument --venue: expected a known venue", "did you mean 'binance'"),
        ),
        Case(
            "spot bars before Binance opened",
            group,
            _feather(lambda f: f.with_columns(pl.col("date").dt.offset_by("-1y"))),
            ExitCode.BAD_INPUT,
            ("expected a time from 2017-07-14 \\(binance spot launch", "was 2017-01-01"),
        ),
        Case(
            "mark price zero",
            group,
            _feather(_at(2, "open", 0.0), name="BTC_USDT_USDT-1h-mark.feather"),
            ExitCode.BAD_INPUT,
            (r"-1h-mark\.feather: row 2, field 'open': prices must be > 0",),
        ),
    ]


# ------------------------------------------------------------------------------- Binance klines
def _klines(
    mutate: Callable[[list[str]], list[str]],
    *,
    name: str = "AVAXUSDT-1m-2024-02.csv",
    newline: bool = True,
    encoding: str = "utf-8",
    folder: str = "um",
) -> Build:
    def build(shared: Path, work: Path) -> list[str]:
        lines = mutate(_lines(shared, KLINES, 301))
        return _import(_write(work / folder, name, lines, newline=newline, encoding=encoding))

    return build


def _kline_row(index: int, column: int, value: str) -> Callable[[list[str]], list[str]]:
    def mutate(lines: list[str]) -> list[str]:
        lines[index] = _field(lines[index], column, value)
        return lines

    return mutate


def _kline_cases() -> list[Case]:
    group = "binance klines csv"
    name = r"AVAXUSDT-1m-2024-02\.csv"
    first_ms = 1706745600000  # 2024-02-01 00:00 UTC, the file's first open_time
    return [
        Case(
            "last line cut inside the volume",
            group,
            _klines(
                lambda ls: [*ls[:-1], ",".join(ls[-1].split(",")[:5]) + "," + ls[-1].split(",")[5][:3]], newline=False
            ),
            ExitCode.BAD_INPUT,
            (rf"{name}: line 301, field 'close_time': is missing", "field 'volume' may be cut off", "truncated"),
        ),
        Case(
            "last line cut inside close_time",
            group,
            _klines(
                lambda ls: [*ls[:-1], ls[-1][: ls[-1].index(",", len(",".join(ls[-1].split(",")[:6]))) + 5]],
                newline=False,
            ),
            ExitCode.BAD_INPUT,
            (rf"{name}: line 301, field 'quote_volume': is missing",),
        ),
        Case(
            "a short line in the middle",
            group,
            _klines(lambda ls: [*ls[:100], ",".join(ls[100].split(",")[:11]), *ls[101:]]),
            ExitCode.BAD_INPUT,
            (rf"{name}: line 101, field 'ignore': is missing",),
        ),
        Case(
            "a line with 13 fields",
            group,
            _klines(lambda ls: [*ls[:50], ls[50] + ",7", *ls[51:]]),
            ExitCode.BAD_INPUT,
            (rf"{name}: line 51, field '#13': expected 12 fields",),
        ),
        Case(
            "price text",
            group,
            _klines(_kline_row(20, 2, "12.3x")),
            ExitCode.BAD_INPUT,
            (rf"{name}: line 21, field 'high': expected a decimal number, was '12.3x'",),
        ),
        Case(
            "price 1e30",
            group,
            _klines(_kline_row(20, 2, "1e30")),
            ExitCode.BAD_INPUT,
            (rf"{name}: line 21, field 'high': expected a number below 1e20",),
        ),
        Case(
            "volume with 21 integer digits",
            group,
            _klines(_kline_row(30, 5, "123456789012345678901.5")),
            ExitCode.BAD_INPUT,
            (rf"{name}: line 31, field 'volume': expected a number below 1e20",),
        ),
        Case(
            "price with 19 decimal places",
            group,
            _klines(_kline_row(30, 4, "35.1234567890123456789")),
            ExitCode.BAD_INPUT,
            (rf"{name}: line 31, field 'close': expected at most 18 decimal places",),
        ),
        Case(
            "negative volume",
            group,
            _klines(_kline_row(40, 5, "-3")),
            ExitCode.BAD_INPUT,
            ("row 40, field 'volume': must be >= 0",),
        ),
        Case(
            "high below low",
            group,
            _klines(_kline_row(41, 2, "0.5")),
            ExitCode.BAD_INPUT,
            ("row 41, field 'high': high must be >= max",),
        ),
        Case(
            "empty close in the middle",
            group,
            _klines(_kline_row(42, 4, "")),
            ExitCode.BAD_INPUT,
            (rf"{name}: line 43, field 'close': is empty",),
        ),
        Case(
            "mixed ms and µs stamps",
            group,
            _klines(
                lambda ls: [ls[0], *ls[1:150], *(_field(line, 0, line.split(",")[0] + "000") for line in ls[150:])]
            ),
            ExitCode.BAD_INPUT,
            (
                rf"{name}: line 151, field 'open_time': expected every timestamp in one unit like the first row \(ms\)",
                r"\(us\)",
            ),
        ),
        Case(
            "stamp between units (11 digits)",
            group,
            _klines(_kline_row(12, 0, "17067456000")),
            ExitCode.BAD_INPUT,
            (rf"{name}: line 13, field 'open_time': expected an epoch timestamp in seconds", "none of them"),
        ),
        Case(
            "a 1973 row (12-digit ms) inside a file named 2024-02",
            group,
            _klines(_kline_row(60, 0, "100000020000")),
            ExitCode.BAD_INPUT,
            (rf"{name}: line 61, field 'open_time': expected an epoch timestamp in seconds", "none of them"),
        ),
        Case(
            "a 2019 row inside a file named 2024-02",
            group,
            _klines(_kline_row(60, 0, "1546300800000")),
            ExitCode.BAD_INPUT,
            (rf"{name}: line 61, field 'open_time': expected a time inside 2024-02", "2019-01-01"),
        ),
        Case(
            "a row of the next month",
            group,
            _klines(_kline_row(300, 0, str(first_ms + 29 * 86_400_000))),
            ExitCode.BAD_INPUT,
            (rf"{name}: line 301, field 'open_time': expected a time inside 2024-02", "2024-03-01"),
        ),
        Case(
            "year 2100 in a file named 2100-02",
            group,
            _klines(
                lambda ls: [
                    ls[0],
                    *(
                        _field(line, 0, str(int(line.split(",")[0]) + _ms(datetime(2100, 2, 1, tzinfo=UTC)) - first_ms))
                        for line in ls[1:]
                    ),
                ],
                name="AVAXUSDT-1m-2100-02.csv",
            ),
            ExitCode.BAD_INPUT,
            (r"AVAXUSDT-1m-2100-02\.csv: row 1, field 'ts': expected a time from 2019-09-08", "was 2100-02-01"),
        ),
        Case(
            "1m bars 30 s off the grid",
            group,
            _klines(lambda ls: [ls[0], *(_field(line, 0, str(int(line.split(",")[0]) + 30_000)) for line in ls[1:])]),
            ExitCode.BAD_INPUT,
            ("row 1, field 'ts': expected a 1m bar to open on the 1m grid", "00:00:30"),
        ),
        Case(
            "1m rows in a file named 1h",
            group,
            _klines(lambda ls: ls, name="AVAXUSDT-1h-2024-02.csv"),
            ExitCode.BAD_INPUT,
            (r"AVAXUSDT-1h-2024-02\.csv: row 2, field 'ts': expected a 1h bar to open on the 1h grid",),
        ),
        Case(
            "header only",
            group,
            _klines(lambda ls: ls[:1]),
            ExitCode.BAD_INPUT,
            (rf"{name}: expected a Binance kline CSV with data lines, was a header only",),
        ),
        Case(
            "0-byte file",
            group,
            _klines(lambda ls: [], newline=False),
            ExitCode.BAD_INPUT,
            (rf"{name}: expected data, was an empty file \(0 bytes\)",),
        ),
        Case(
            "second bars",
            group,
            _klines(lambda ls: ls, name="AVAXUSDT-1s-2024-02.csv"),
            ExitCode.BAD_INPUT,
            ("interval '1s' cannot be stored",),
        ),
        Case(
            "duplicate bar with another close",
            group,
            _klines(lambda ls: [*ls, _field(ls[5], 4, ls[5].split(",")[3])]),
            ExitCode.BAD_INPUT,
            ("field 'ts': key .* appears more than once with different values",),
        ),
        Case(
            "premium index klines",
            group,
            _klines(lambda ls: ls, folder="premiumIndexKlines"),
            ExitCode.BAD_INPUT,
            ("premiumIndexKlines hold the premium index",),
        ),
        Case(
            "bar in the future",
            group,
            _klines(
                lambda ls: [
                    ls[0],
                    *(
                        _field(
                            line,
                            0,
                            str(
                                int(line.split(",")[0])
                                - first_ms
                                + _ms(
                                    (datetime.now(UTC) + timedelta(days=40)).replace(
                                        day=1, hour=0, minute=0, second=0, microsecond=0
                                    )
                                )
                            ),
                        )
                        for line in ls[1:]
                    ),
                ],
                name=f"AVAXUSDT-1m-{(datetime.now(UTC) + timedelta(days=40)):%Y-%m}.csv",
            ),
            ExitCode.BAD_INPUT,
            ("field 'ts': expected a time from 2019-09-08 .* to now \\+ 1 day",),
        ),
        Case(
            "unterminated quote on the last line",
            group,
            _klines(lambda ls: [*ls[:-1], _field(ls[-1], 4, '"35.1')], newline=False),
            ExitCode.BAD_INPUT,
            (rf"{name}: line 301: not valid CSV", "unterminated quote"),
        ),
        Case(
            "Latin-1 byte in a field",
            group,
            _klines(_kline_row(70, 11, "caf\u00e9"), encoding="latin-1"),
            ExitCode.BAD_INPUT,
            (rf"{name}: line 71: expected UTF-8 text, was byte b'\\xe9'",),
        ),
        Case(
            "UTF-16 without a byte-order mark",
            group,
            _klines(lambda ls: ls, encoding="utf-16-le"),
            ExitCode.BAD_INPUT,
            (rf"{name}: expected UTF-8 text, was text with NUL bytes",),
        ),
        Case(
            "UTF-16 with a byte-order mark is decoded",
            group,
            _klines(lambda ls: ls, encoding="utf-16"),
            ExitCode.OK,
            check=lambda store: _assert_rows(store, "ohlcv", 300, symbol="AVAX-USDT-PERP"),
        ),
    ]


# --------------------------------------------------------------------------- Hyperliquid funding
def _hl_csv(
    mutate: Callable[[list[str]], list[str]],
    *,
    newline: bool = True,
    encoding: str = "utf-8",
    flags: Sequence[str] = (),
) -> Build:
    def build(shared: Path, work: Path) -> list[str]:
        # Hourly BTC settlements from 2024 (the file is hourly since 2023-06-08).
        lines = _lines(shared, HL_FUNDING)
        body = [line for line in lines[1:] if line.startswith("2024-03-01") and ",BTC," in line]
        return _import(
            _write(work, "funding_history.csv", mutate([lines[0], *body]), newline=newline, encoding=encoding),
            flags=flags,
        )

    return build


def _hl_json(mutate: Callable[[list[dict[str, object]]], object], *, name: str = "hl_funding.json") -> Build:
    def build(shared: Path, work: Path) -> list[str]:
        records = json.loads((shared / HL_FUNDING_JSON).read_text())
        path = work / name
        path.write_text(json.dumps(mutate(records)))
        return _import(path)

    return build


def _set(index: int, key: str, value: object) -> Callable[[list[dict[str, object]]], list[dict[str, object]]]:
    def mutate(records: list[dict[str, object]]) -> list[dict[str, object]]:
        if value is None and key.startswith("-"):
            del records[index][key[1:]]
        else:
            records[index][key] = value
        return records

    return mutate


def _hl_cases() -> list[Case]:
    csv_group, json_group = "hyperliquid funding csv", "hyperliquid funding json"
    name = r"funding_history\.csv"

    def late(ls: list[str]) -> list[str]:
        return [ls[0], *ls[1:5], ls[5].replace(":00:00.", ":20:00.", 1), *ls[6:]]

    def extreme(ls: list[str]) -> list[str]:
        return [ls[0], *ls[1:3], _field(ls[3], 2, "0.5"), *ls[4:]]

    return [
        Case(
            "last line cut inside the rate",
            csv_group,
            _hl_csv(
                lambda ls: [*ls[:-1], ",".join(ls[-1].split(",")[:2]) + "," + ls[-1].split(",")[2][:5]], newline=False
            ),
            ExitCode.BAD_INPUT,
            (rf"{name}: line 25, field 'premium': is missing", "field 'funding_rate' may be cut off"),
        ),
        Case(
            "time without offset",
            csv_group,
            _hl_csv(lambda ls: [ls[0], _field(ls[1], 0, "2024-03-01T00:00:00"), *ls[2:]]),
            ExitCode.BAD_INPUT,
            (rf"{name}: line 2, field 'timestamp': expected a timestamp like",),
        ),
        Case(
            "rate text",
            csv_group,
            _hl_csv(lambda ls: [ls[0], _field(ls[1], 2, "n/a"), *ls[2:]]),
            ExitCode.BAD_INPUT,
            (rf"{name}: line 2, field 'funding_rate': expected a decimal number, was 'n/a'",),
        ),
        Case(
            "rate 1e30",
            csv_group,
            _hl_csv(lambda ls: [ls[0], ls[1], _field(ls[2], 2, "1e30"), *ls[3:]]),
            ExitCode.BAD_INPUT,
            (rf"{name}: line 3, field 'funding_rate': expected a number below 1e20",),
        ),
        Case(
            "rate 0.5 per hour (cap 4%/h)",
            csv_group,
            _hl_csv(extreme),
            ExitCode.BAD_INPUT,
            (
                r"funding_history\.csv: row 3, field 'rate': expected \|rate\| <= 0.04 per 1h settlement",
                "--allow-extreme",
            ),
        ),
        Case(
            "rate 0.5 per hour with --allow-extreme is stored and checked",
            csv_group,
            _hl_csv(extreme, flags=["--allow-extreme"]),
            ExitCode.OK,
            check=_assert_extreme_reported,
        ),
        Case(
            "year 2100",
            csv_group,
            _hl_csv(lambda ls: [ls[0], *(line.replace("2024-03-01", "2100-03-01") for line in ls[1:])]),
            ExitCode.BAD_INPUT,
            ("row 1, field 'ts': expected a time from 2022-06-01", "was 2100-03-01"),
        ),
        Case(
            "1970",
            csv_group,
            _hl_csv(lambda ls: [ls[0], ls[1].replace("2024-03-01", "1970-01-01"), *ls[2:]]),
            ExitCode.BAD_INPUT,
            ("row 1, field 'ts': expected a time from 2022-06-01", "was 1970-01-01"),
        ),
        Case(
            "settlement at :31:12",
            csv_group,
            _hl_csv(lambda ls: [ls[0], ls[1], ls[2].replace(":00:00.", ":31:12.", 1), *ls[3:]]),
            ExitCode.BAD_INPUT,
            (rf"{name}: line 3, field 'ts': expected a settlement on hyperliquid's funding clock", "01:31:12"),
        ),
        Case(
            "settlement 20 minutes late is snapped to its hour",
            csv_group,
            _hl_csv(late),
            ExitCode.OK,
            check=lambda store: _assert_rows(store, "funding", 24, venue="hyperliquid"),
        ),
        Case(
            "symbol with a slash",
            csv_group,
            _hl_csv(lambda ls: [ls[0], _field(ls[1], 1, "BTC/USD"), *ls[2:]]),
            ExitCode.BAD_INPUT,
            (rf"{name}: line 2, field 'symbol'",),
        ),
        Case(
            "empty symbol",
            csv_group,
            _hl_csv(lambda ls: [ls[0], _field(ls[1], 1, ""), *ls[2:]]),
            ExitCode.BAD_INPUT,
            (rf"{name}: line 2, field 'symbol': is empty",),
        ),
        Case(
            "header only",
            csv_group,
            _hl_csv(lambda ls: ls[:1]),
            ExitCode.BAD_INPUT,
            (rf"{name}: expected a Hyperliquid funding CSV with data lines, was a header only",),
        ),
        Case(
            "two rates for one hour",
            csv_group,
            _hl_csv(lambda ls: [*ls, _field(ls[1], 2, "0.0000999")]),
            ExitCode.BAD_INPUT,
            ("field 'ts': key \\(venue, symbol, ts\\) appears more than once with different values",),
        ),
        Case(
            "UTF-16 with a byte-order mark is decoded",
            csv_group,
            _hl_csv(lambda ls: ls, encoding="utf-16"),
            ExitCode.OK,
            check=lambda store: _assert_rows(store, "funding", 24, venue="hyperliquid"),
        ),
        Case(
            "JSON cut off",
            json_group,
            lambda s, w: _cut(s, w, HL_FUNDING_JSON, "hl_funding.json"),
            ExitCode.BAD_INPUT,
            (r"hl_funding\.json: line \d+, column \d+: not valid JSON",),
        ),
        Case(
            "JSON time in seconds next to ms",
            json_group,
            _hl_json(_set(1, "time", 1769912400)),
            ExitCode.BAD_INPUT,
            (
                r"hl_funding\.json: record 1, field 'time': expected every timestamp in one unit like the first row "
                r"\(ms\)",
            ),
        ),
        Case(
            "JSON missing fundingRate",
            json_group,
            _hl_json(_set(2, "-fundingRate", None)),
            ExitCode.BAD_INPUT,
            (r"hl_funding\.json: record 2: key 'fundingRate' is missing",),
        ),
        Case(
            "JSON fundingRate null",
            json_group,
            _hl_json(_set(0, "fundingRate", None)),
            ExitCode.BAD_INPUT,
            (r"hl_funding\.json: record 0, field 'rate': is empty",),
        ),
        Case(
            "JSON time text",
            json_group,
            _hl_json(_set(1, "time", "yesterday")),
            ExitCode.BAD_INPUT,
            (r"hl_funding\.json: record 1, field 'time': expected an integer epoch timestamp",),
        ),
        Case(
            "JSON rate 1e30",
            json_group,
            _hl_json(_set(1, "fundingRate", "1e30")),
            ExitCode.BAD_INPUT,
            (r"hl_funding\.json: record 1, field 'rate': expected a number below 1e20",),
        ),
        Case(
            "JSON empty list",
            json_group,
            _hl_json(lambda rs: [{"coin": "BTC", "fundingRate": "0", "time": 0}][:0]),
            ExitCode.BAD_INPUT,
            ("hl_funding.json: (no importer recognises|expected Hyperliquid fundingHistory records)",),
        ),
    ]


def _cut(shared: Path, work: Path, source: str, name: str) -> list[str]:
    path = work / name
    text = (shared / source).read_text()
    path.write_text(text[: len(text) * 2 // 3])
    return _import(path)


# ------------------------------------------------------------------------------ REST funding JSON
def _binance_json(mutate: Callable[[list[dict[str, object]]], object]) -> Build:
    def build(shared: Path, work: Path) -> list[str]:
        records = json.loads((shared / BINANCE_FUNDING_JSON).read_text())
        records[0]["fundingRate"] = "0.00010000"  # keep the sample within the cap; the mutations break it
        path = work / "binance_funding.json"
        path.write_text(json.dumps(mutate(records)))
        return _import(path)

    return build


def _stored_settlement(shared: Path, *, offset_ms: int = 0, unit: int = 1) -> list[dict[str, object]]:
    # A real stored Binance settlement (16:00 UTC) as the REST payload would publish it.
    frame = pl.read_ipc(shared / PERP_FUNDING)
    row = frame.filter((pl.col("date").dt.hour() == 16) & (pl.col("date").dt.year() == 2024)).row(0, named=True)
    rate = format(row["open"], "f") if "e" in repr(row["open"]) else repr(row["open"])
    stamp = (_ms(row["date"].replace(microsecond=0)) + offset_ms) // unit
    return [{"symbol": "BTCUSDT", "fundingRate": rate, "fundingTime": stamp}]


def _payload(records: Callable[[Path], object], name: str) -> Build:
    def build(shared: Path, work: Path) -> list[str]:
        path = work / name
        path.write_text(json.dumps(records(shared)))
        return _import(path)

    return build


def _bybit_json(mutate: Callable[[dict[str, object]], object]) -> Build:
    def build(shared: Path, work: Path) -> list[str]:
        page = json.loads((shared / BYBIT_FUNDING_JSON).read_text())
        path = work / "bybit_funding.json"
        path.write_text(json.dumps(mutate(page)))
        return _import(path)

    return build


def _okx_json(mutate: Callable[[dict[str, object]], object]) -> Build:
    def build(shared: Path, work: Path) -> list[str]:
        page = json.loads((shared / OKX_FUNDING_JSON).read_text())
        path = work / "okx_funding.json"
        path.write_text(json.dumps(mutate(page)))
        return _import(path)

    return build


def _item(
    key: str, value: object, *, index: int = 0, listed: str = "list"
) -> Callable[[dict[str, object]], dict[str, object]]:
    def mutate(page: dict[str, object]) -> dict[str, object]:
        items = page["result"]["list"] if listed == "list" else page["data"]  # type: ignore[index]
        items[index][key] = value  # type: ignore[index]
        return page

    return mutate


def _rest_cases() -> list[Case]:
    binance, bybit, okx = "binance funding json", "bybit funding json", "okx funding json"
    name = r"binance_funding\.json"
    return [
        Case(
            "settlement at 16:00:31 snaps to 16:00 and de-duplicates",
            binance,
            _payload(lambda s: _stored_settlement(s, offset_ms=31_000), "binance_funding.json"),
            ExitCode.OK,
            check=lambda store: _assert_rows(store, "funding", 7_323, venue="binance"),
        ),
        Case(
            "settlement time in epoch seconds is detected",
            binance,
            _payload(lambda s: _stored_settlement(s, unit=1000), "binance_funding.json"),
            ExitCode.OK,
            check=lambda store: _assert_rows(store, "funding", 7_323, venue="binance"),
        ),
        Case(
            "settlement at 16:00:31 with another rate conflicts",
            binance,
            _payload(
                lambda s: [{**_stored_settlement(s, offset_ms=31_000)[0], "fundingRate": "0.00012345"}],
                "binance_funding.json",
            ),
            ExitCode.CONFLICT,
            ("keys \\(venue, symbol, ts\\) are already stored", "with different values"),
        ),
        Case(
            "settlement at 16:17:33",
            binance,
            _payload(lambda s: _stored_settlement(s, offset_ms=(17 * 60 + 33) * 1000), "binance_funding.json"),
            ExitCode.BAD_INPUT,
            (rf"{name}: record 0, field 'ts': expected a settlement on binance's funding clock",),
        ),
        Case(
            "rate 5.0",
            binance,
            _binance_json(_set(1, "fundingRate", "5.0")),
            ExitCode.BAD_INPUT,
            (rf"{name}: row 1, field 'rate': expected \|rate\| <= 0.04 per 8h",),
        ),
        Case(
            "rate 1e30",
            binance,
            _binance_json(_set(1, "fundingRate", "1e30")),
            ExitCode.BAD_INPUT,
            (rf"{name}: record 1, field 'rate': expected a number below 1e20",),
        ),
        Case(
            "mixed ms and ns stamps",
            binance,
            _binance_json(_set(1, "fundingTime", 1570636800000000000)),
            ExitCode.BAD_INPUT,
            (rf"{name}: record 1, field 'time': expected every timestamp in one unit",),
        ),
        Case(
            "settlement in 2100",
            binance,
            _binance_json(
                lambda rs: [
                    {
                        **r,
                        "fundingTime": int(str(r["fundingTime"]))
                        + _ms(datetime(2100, 1, 1, tzinfo=UTC))
                        - _ms(datetime(2019, 10, 9, tzinfo=UTC)),
                    }
                    for r in rs
                ]
            ),
            ExitCode.BAD_INPUT,
            (rf"{name}: row 0, field 'ts': expected a time from 2019-09-08", "was 2100-01-01"),
        ),
        Case(
            "settlement before Binance perps",
            binance,
            _binance_json(
                lambda rs: [{**r, "fundingTime": int(str(r["fundingTime"])) - 2 * 365 * 86_400_000} for r in rs]
            ),
            ExitCode.BAD_INPUT,
            (rf"{name}: row 0, field 'ts': expected a time from 2019-09-08",),
        ),
        Case(
            "garbage symbol",
            binance,
            _binance_json(_set(0, "symbol", "BTC USDT")),
            ExitCode.BAD_INPUT,
            (rf"{name}: record 0, field 'symbol'",),
        ),
        Case(
            "error envelope",
            binance,
            _payload(lambda s: {"code": -1121, "msg": "Invalid symbol."}, "binance_funding.json"),
            ExitCode.BAD_INPUT,
            ("no importer recognises this file|holds an error response",),
        ),
        Case(
            "empty rate",
            binance,
            _binance_json(_set(1, "fundingRate", "")),
            ExitCode.BAD_INPUT,
            (rf"{name}: record 1, field 'rate': is empty",),
        ),
        Case(
            "mark price negative",
            binance,
            _binance_json(_set(1, "markPrice", "-5")),
            ExitCode.BAD_INPUT,
            (rf"{name}: row 1, field 'mark_price': prices must be > 0",),
        ),
        Case(
            "mark price 1e30",
            binance,
            _binance_json(_set(1, "markPrice", "1e30")),
            ExitCode.BAD_INPUT,
            (rf"{name}: record 1, field 'mark_price': expected a number below 1e20",),
        ),
        Case(
            "cut off",
            binance,
            lambda s, w: _cut(s, w, BINANCE_FUNDING_JSON, "binance_funding.json"),
            ExitCode.BAD_INPUT,
            (r"binance_funding\.json: line \d+, column \d+: not valid JSON",),
        ),
        Case(
            "bybit error retCode",
            bybit,
            _bybit_json(lambda p: {**p, "retCode": 10001, "retMsg": "params error"}),
            ExitCode.BAD_INPUT,
            (r"bybit_funding\.json: page 0 is a Bybit error response \(retCode 10001",),
        ),
        Case(
            "bybit settlement off the clock",
            bybit,
            _bybit_json(_item("fundingRateTimestamp", "1709885853000")),
            ExitCode.BAD_INPUT,
            (r"bybit_funding\.json: record 0, field 'ts': expected a settlement on bybit's funding clock",),
        ),
        Case(
            "bybit rate above the cap",
            bybit,
            _bybit_json(_item("fundingRate", "-0.25", index=1)),
            ExitCode.BAD_INPUT,
            (r"bybit_funding\.json: row 1, field 'rate': expected \|rate\| <= 0.04",),
        ),
        Case(
            "bybit missing result.list",
            bybit,
            _bybit_json(lambda p: {**p, "result": {"category": "linear"}}),
            ExitCode.BAD_INPUT,
            (r"bybit_funding\.json: page 0 has no result.list",),
        ),
        Case(
            "bybit empty list",
            bybit,
            _bybit_json(lambda p: {**p, "result": {"category": "linear", "list": []}}),
            ExitCode.BAD_INPUT,
            (r"bybit_funding\.json: (expected Bybit funding history records|no importer recognises)",),
        ),
        Case(
            "bybit settlement in 2017",
            bybit,
            _bybit_json(_item("fundingRateTimestamp", "1483228800000")),
            ExitCode.BAD_INPUT,
            (r"bybit_funding\.json: row 0, field 'ts': expected a time from 2018-01-01",),
        ),
        Case(
            "okx error code",
            okx,
            _okx_json(lambda p: {**p, "code": "51001", "msg": "Instrument ID does not exist"}),
            ExitCode.BAD_INPUT,
            (r"okx_funding\.json: page 0 is an OKX error response \(code '51001'",),
        ),
        Case(
            "okx realizedRate 1e30",
            okx,
            _okx_json(_item("realizedRate", "1e30", listed="data")),
            ExitCode.BAD_INPUT,
            (r"okx_funding\.json: record 0, field 'rate': expected a number below 1e20",),
        ),
        Case(
            "okx settlement in 2100",
            okx,
            _okx_json(_item("fundingTime", "4102444800000", listed="data")),
            ExitCode.BAD_INPUT,
            (r"okx_funding\.json: row 0, field 'ts': expected a time from 2018-12-11", "was 2100-01-01"),
        ),
        Case(
            "okx rate above the cap",
            okx,
            _okx_json(_item("realizedRate", "0.3", index=1, listed="data")),
            ExitCode.BAD_INPUT,
            (r"okx_funding\.json: row 1, field 'rate': expected \|rate\| <= 0.04",),
        ),
        Case(
            "okx empty data",
            okx,
            _okx_json(lambda p: {**p, "data": []}),
            ExitCode.BAD_INPUT,
            (r"okx_funding\.json: (expected OKX funding-rate-history records|no importer recognises)",),
        ),
    ]


# ------------------------------------------------------------------------- Binance website export
def _export(
    mutate: Callable[[list[str]], list[str]], *, tz: str | None = "Europe/London", newline: bool = True
) -> Build:
    def build(shared: Path, work: Path) -> list[str]:
        lines = mutate(_lines(shared, EXPORT, 40))
        path = _write(
            work, "Funding Rate History_BTCUSDT Perpetual_2024-08-09.csv", lines, newline=newline, encoding="utf-8-sig"
        )
        return _import(path, flags=["--tz", tz] if tz else [])

    return build


def _quoted(line: str, index: int, value: str) -> str:
    parts = line.split('","')
    parts[index] = value
    return '","'.join(parts)


def _export_cases() -> list[Case]:
    group = "binance website export"
    name = r"Funding Rate History_BTCUSDT Perpetual_2024-08-09\.csv"
    return [
        Case(
            "header only",
            group,
            _export(lambda ls: ls[:1]),
            ExitCode.BAD_INPUT,
            (rf"{name}: expected a Binance funding export CSV with data lines, was a header only",),
        ),
        Case(
            "last line cut after the interval",
            group,
            _export(lambda ls: [*ls[:-1], ",".join(ls[-1].split(",")[:3])], newline=False),
            ExitCode.BAD_INPUT,
            (rf"{name}: line 40, field 'Funding Rate': is missing",),
        ),
        Case(
            "rate without %",
            group,
            _export(lambda ls: [ls[0], _quoted(ls[1], 3, '0.000021"'), *ls[2:]]),
            ExitCode.BAD_INPUT,
            (rf"{name}: line 2, field 'Funding Rate': expected a percentage",),
        ),
        Case(
            "rate 5%",
            group,
            _export(lambda ls: [ls[0], _quoted(ls[1], 3, '5.000000%"'), *ls[2:]]),
            ExitCode.BAD_INPUT,
            (rf"{name}: row 1, field 'rate': expected \|rate\| <= 0.04",),
        ),
        Case(
            "rate 1e30%",
            group,
            _export(lambda ls: [ls[0], _quoted(ls[1], 3, '1e30%"'), *ls[2:]]),
            ExitCode.BAD_INPUT,
            (rf"{name}: line 2, field 'Funding Rate': expected a number below 1e20",),
        ),
        Case(
            "wrong --tz",
            group,
            _export(lambda ls: ls, tz="America/New_York"),
            ExitCode.BAD_INPUT,
            (rf"{name}: line 2, field 'Time': .* not on Binance's funding clock", "--tz is probably wrong"),
        ),
        Case("no --tz", group, _export(lambda ls: ls, tz=None), ExitCode.BAD_INPUT, ("pass it with --tz",)),
        Case(
            "time garbage",
            group,
            _export(lambda ls: [ls[0], _quoted(ls[1], 0, '"09/08/2024 09:00'), *ls[2:]]),
            ExitCode.BAD_INPUT,
            (rf"{name}: line 2, field 'Time': expected a local time",),
        ),
        Case(
            "year 2100",
            group,
            _export(lambda ls: [ls[0], *(line.replace('"2024-', '"2100-') for line in ls[1:])], tz="Etc/GMT-1"),
            ExitCode.BAD_INPUT,
            (rf"{name}: row \d+, field 'ts': expected a time from 2019-09-08", "was 2100-"),
        ),
        Case(
            "interval 3h",
            group,
            _export(lambda ls: [ls[0], _quoted(ls[1], 2, "3 hours"), *ls[2:]]),
            ExitCode.BAD_INPUT,
            (rf"{name}: line 2, field 'Funding Interval'",),
        ),
        Case(
            "contract garbage",
            group,
            _export(lambda ls: [ls[0], _quoted(ls[1], 1, "BTCUSDT Quarterly 0927"), *ls[2:]]),
            ExitCode.BAD_INPUT,
            (rf"{name}: line 2, field 'Contracts'",),
        ),
        Case(
            "--venue binanse",
            group,
            lambda s, w: [*_export(lambda ls: ls)(s, w), "--venue", "binanse"],
            ExitCode.USAGE,
            ("did you mean 'binance'",),
        ),
    ]


# --------------------------------------------------------------------------- forceOrder liquidations
def _force_csv(mutate: Callable[[list[str]], list[str]], *, newline: bool = True) -> Build:
    def build(shared: Path, work: Path) -> list[str]:
        return _import(
            _write(work, "liquidations_capture.csv", mutate(_lines(shared, BINANCE_LIQUIDATIONS)), newline=newline)
        )

    return build


def _force_json(mutate: Callable[[dict[str, object]], object], *, lines: bool = False) -> Build:
    def build(shared: Path, work: Path) -> list[str]:
        event = json.loads((shared / FORCE_ORDER_JSON).read_text())
        result = mutate(event)
        path = work / ("force_orders.jsonl" if lines else "force_order.json")
        events = result if isinstance(result, list) else [result]
        path.write_text("\n".join(json.dumps(e) for e in events) + "\n" if lines else json.dumps(result))
        return _import(path)

    return build


def _order(key: str, value: object) -> Callable[[dict[str, object]], dict[str, object]]:
    def mutate(event: dict[str, object]) -> dict[str, object]:
        order = dict(event["o"])  # type: ignore[call-overload]
        if value is None:
            del order[key]
        else:
            order[key] = value
        return {**event, "o": order}

    return mutate


def _liquidation_cases() -> list[Case]:
    csv_group, json_group, hl_group = (
        "binance forceOrder csv",
        "binance forceOrder json",
        "hyperliquid liquidations csv",
    )
    name = r"liquidations_capture\.csv"

    def cut_quantity(ls: list[str]) -> list[str]:
        last = ls[-1].split(",")
        return [*ls[:-1], ",".join([*last[:4], last[4][:2]])]

    def hl(mutate: Callable[[list[str]], list[str]], *, newline: bool = False) -> Build:
        def build(shared: Path, work: Path) -> list[str]:
            return _import(
                _write(work / "hl", "liquidations.csv", mutate(_lines(shared, HL_LIQUIDATIONS)), newline=newline)
            )

        return build

    hl_name = r"hl/liquidations\.csv"
    return [
        Case(
            "last line cut inside the quantity",
            csv_group,
            _force_csv(cut_quantity, newline=False),
            ExitCode.BAD_INPUT,
            (rf"{name}: line 72, field 'usd_value': is missing", "field 'filled_qty' may be cut off"),
        ),
        Case(
            "side HOLD",
            csv_group,
            _force_csv(lambda ls: [ls[0], _field(ls[1], 2, "HOLD"), *ls[2:]]),
            ExitCode.BAD_INPUT,
            (rf"{name}: line 2, field 'side': expected BUY or SELL",),
        ),
        Case(
            "price 1e30",
            csv_group,
            _force_csv(lambda ls: [ls[0], _field(ls[1], 3, "1e30"), *ls[2:]]),
            ExitCode.BAD_INPUT,
            (rf"{name}: line 2, field 'price': expected a number below 1e20",),
        ),
        Case(
            "negative quantity",
            csv_group,
            _force_csv(lambda ls: [ls[0], _field(ls[1], 4, "-0.04"), *ls[2:]]),
            ExitCode.BAD_INPUT,
            ("field 'quantity': must be >= 0",),
        ),
        Case(
            "year 2100",
            csv_group,
            _force_csv(lambda ls: [ls[0], ls[1].replace("2025-", "2100-", 1), *ls[2:]]),
            ExitCode.BAD_INPUT,
            (rf"{name}: row 1, field 'ts': expected a time from 2019-09-08",),
        ),
        Case(
            "1970",
            csv_group,
            _force_csv(lambda ls: [ls[0], ls[1].replace("2025-", "1970-", 1), *ls[2:]]),
            ExitCode.BAD_INPUT,
            (rf"{name}: row 1, field 'ts': expected a time from 2019-09-08",),
        ),
        Case(
            "time with an offset",
            csv_group,
            _force_csv(lambda ls: [ls[0], _field(ls[1], 0, "2025-10-22T09:36:42+02:00"), *ls[2:]]),
            ExitCode.BAD_INPUT,
            (rf"{name}: line 2, field 'time': expected a timestamp like",),
        ),
        Case(
            "header only",
            csv_group,
            _force_csv(lambda ls: ls[:1]),
            ExitCode.BAD_INPUT,
            (rf"{name}: expected a Binance liquidation CSV with data lines",),
        ),
        Case(
            "JSON lines holding one event twice is stored once",
            json_group,
            _force_json(lambda e: [e, e | {"E": 1}], lines=True),
            ExitCode.OK,
            check=_assert_one_2019_event,
        ),
        Case(
            "JSON lines last line cut",
            json_group,
            lambda s, w: _cut_jsonl(s, w),
            ExitCode.BAD_INPUT,
            (r"force_orders\.jsonl: line 2: not a JSON event",),
        ),
        Case(
            "JSON missing o.ap",
            json_group,
            _force_json(_order("ap", None)),
            ExitCode.BAD_INPUT,
            (r"force_order\.json: record 0: key 'o.ap' is missing",),
        ),
        Case(
            "JSON trade time in 2100",
            json_group,
            _force_json(_order("T", 4102444800000)),
            ExitCode.BAD_INPUT,
            (r"force_order\.json: row 0, field 'ts': expected a time from 2019-09-08",),
        ),
        Case(
            "JSON trade time between units",
            json_group,
            _force_json(_order("T", 156801446089)),
            ExitCode.BAD_INPUT,
            (r"force_order\.json: record 0, field 'time': expected an epoch timestamp in seconds",),
        ),
        Case(
            "JSON wrong event type",
            json_group,
            _force_json(lambda e: [e, {**e, "e": "aggTrade"}]),
            ExitCode.BAD_INPUT,
            (r"force_order\.json: record 1: expected a forceOrder event",),
        ),
        Case(
            "JSON price 1e30",
            json_group,
            _force_json(_order("ap", "1e30")),
            ExitCode.BAD_INPUT,
            (r"force_order\.json: record 0, field 'price': expected a number below 1e20",),
        ),
        Case(
            "JSON quantity text",
            json_group,
            _force_json(_order("z", "lots")),
            ExitCode.BAD_INPUT,
            (r"force_order\.json: record 0, field 'quantity': expected a decimal number",),
        ),
        Case(
            "last line cut inside the notional",
            hl_group,
            hl(lambda ls: [*ls[:-1], ",".join(ls[-1].split(",")[:2]) + "," + ls[-1].split(",")[2][:3]]),
            ExitCode.BAD_INPUT,
            (rf"{hl_name}: line \d+, field 'liquidated_account_value': is missing", "truncated"),
        ),
        Case(
            "time without offset",
            hl_group,
            hl(lambda ls: [ls[0], _field(ls[1], 0, "2023-02-28T21:10:23"), *ls[2:]]),
            ExitCode.BAD_INPUT,
            (rf"{hl_name}: line 2, field 'time': expected a timestamp like",),
        ),
        Case(
            "notional text",
            hl_group,
            hl(lambda ls: [ls[0], _field(ls[1], 2, "big"), *ls[2:]]),
            ExitCode.BAD_INPUT,
            (rf"{hl_name}: line 2, field 'liquidated_ntl_pos': expected a decimal number",),
        ),
        Case(
            "notional 1e30",
            hl_group,
            hl(lambda ls: [ls[0], _field(ls[1], 2, "1e30"), *ls[2:]]),
            ExitCode.BAD_INPUT,
            (rf"{hl_name}: line 2, field 'liquidated_ntl_pos': expected a number below 1e20",),
        ),
        Case(
            "negative notional",
            hl_group,
            hl(lambda ls: [ls[0], _field(ls[1], 2, "-356.8"), *ls[2:]]),
            ExitCode.BAD_INPUT,
            ("field 'notional_usd': must be >= 0",),
        ),
        Case(
            "year 2100",
            hl_group,
            hl(lambda ls: [ls[0], ls[1].replace("2023-", "2100-", 1), *ls[2:]]),
            ExitCode.BAD_INPUT,
            (rf"{hl_name}: row 1, field 'ts': expected a time from 2022-06-01",),
        ),
        Case(
            "before Hyperliquid opened",
            hl_group,
            hl(lambda ls: [ls[0], ls[1].replace("2023-", "2021-", 1), *ls[2:]]),
            ExitCode.BAD_INPUT,
            (rf"{hl_name}: row 1, field 'ts': expected a time from 2022-06-01",),
        ),
        Case(
            "empty user",
            hl_group,
            hl(lambda ls: [ls[0], _field(ls[1], 1, ""), *ls[2:]]),
            ExitCode.BAD_INPUT,
            (rf"{hl_name}: line 2, field 'user': is empty",),
        ),
        Case(
            "header only",
            hl_group,
            hl(lambda ls: ls[:1]),
            ExitCode.BAD_INPUT,
            (rf"{hl_name}: expected a Hyperliquid liquidations CSV with data lines",),
        ),
    ]


def _cut_jsonl(shared: Path, work: Path) -> list[str]:
    event = json.loads((shared / FORCE_ORDER_JSON).read_text())
    text = json.dumps(event)
    path = work / "force_orders.jsonl"
    path.write_text(text + "\n" + text[:40])
    return _import(path)


# ------------------------------------------------------------------------------- inputs and store
def _store_cases() -> list[Case]:  # noqa: C901 (a flat table of cases with one small builder each)
    group = "inputs and store"

    def folder_of_nothing(shared: Path, work: Path) -> list[str]:
        folder = work / "notes"
        folder.mkdir()
        (folder / "README.md").write_text((shared / "hyperliquid_official/README.md").read_text())
        (folder / "notes.csv").write_text("a,b\n1,2\n")
        return _import(folder)

    def folder_of_nothing_skipped(shared: Path, work: Path) -> list[str]:
        return [*folder_of_nothing(shared, work), "--skip-unrecognised"]

    def fifo(shared: Path, work: Path) -> list[str]:
        path = work / "AVAXUSDT-1m-2024-02.csv"
        import os

        os.mkfifo(path)
        return _import(path)

    def empty_among_good(shared: Path, work: Path) -> list[str]:
        folder = work / "hl"
        folder.mkdir()
        (folder / "liquidations.csv").write_bytes((shared / HL_LIQUIDATIONS).read_bytes())
        (folder / "empty.csv").write_bytes(b"")
        return _import(folder)

    def empty_among_good_skipped(shared: Path, work: Path) -> list[str]:
        return [*empty_among_good(shared, work), "--skip-unrecognised"]

    def unknown_file(shared: Path, work: Path) -> list[str]:
        path = work / "trades.csv"
        path.write_text("\n".join(_lines(shared, "hyperliquid_official/non_mm_trades.csv", 20)))
        return _import(path)

    def missing_path(shared: Path, work: Path) -> list[str]:
        return _import(work / "nowhere")

    def good_liquidations(shared: Path, work: Path) -> list[str]:
        return _import(shared / HL_FUNDING_JSON)

    def stale_temp(shared: Path, work: Path) -> list[str]:
        return _import(shared / HL_FUNDING_JSON)

    def export(*flags: str) -> Build:
        def build(shared: Path, work: Path) -> list[str]:
            return ["export-catalog", "--catalog", str(work / "catalog"), "--no-progress", *flags]

        return build

    return [
        Case(
            "folder with nothing importable",
            group,
            folder_of_nothing,
            ExitCode.BAD_INPUT,
            ("expected at least one file in a supported format, was none", "--skip-unrecognised"),
        ),
        Case("folder with nothing importable, --skip-unrecognised", group, folder_of_nothing_skipped, ExitCode.OK),
        Case(
            "FIFO",
            group,
            fifo,
            ExitCode.BAD_INPUT,
            (r"AVAXUSDT-1m-2024-02\.csv: expected a regular file or a folder, was a FIFO",),
        ),
        Case(
            "0-byte CSV among good files",
            group,
            empty_among_good,
            ExitCode.BAD_INPUT,
            (r"empty\.csv: expected data, was an empty file \(0 bytes\)",),
        ),
        Case("0-byte CSV among good files, --skip-unrecognised", group, empty_among_good_skipped, ExitCode.OK),
        Case(
            "file in no supported format",
            group,
            unknown_file,
            ExitCode.BAD_INPUT,
            (r"trades\.csv: no importer recognises this file",),
        ),
        Case(
            "path that does not exist",
            group,
            missing_path,
            ExitCode.BAD_INPUT,
            ("nowhere: expected a file or folder to import, was nothing",),
        ),
        Case(
            "read-only store",
            group,
            good_liquidations,
            ExitCode.STORE,
            ("expected a writable store directory, was not writable", "nothing was written"),
            patch=_read_only_store,
        ),
        Case(
            "full disk mid-write",
            group,
            good_liquidations,
            ExitCode.STORE,
            ("expected a writable store, was an error writing it", "No space left on device", "nothing was changed"),
            patch=_full_disk,
        ),
        Case(
            "stale temp file of a killed write is removed",
            group,
            stale_temp,
            ExitCode.OK,
            check=_assert_no_temp_files,
            prepare=plant_stale_temp,
        ),
        Case(
            "export of a symbol the store lacks",
            group,
            export("--symbol", "ETH-USDC-PERP"),
            ExitCode.BAD_INPUT,
            (
                "expected data of symbol 'ETH-USDC-PERP' in the store, was none",
                "holds binance: ",
                "hyperliquid: ALL-USDC-PERP",
            ),
        ),
        Case(
            "export of a venue the store lacks",
            group,
            export("--venue", "okx"),
            ExitCode.BAD_INPUT,
            ("expected data of venue 'okx' in the store, was none",),
        ),
        Case(
            "export of a range the store lacks",
            group,
            export("--venue", "binance", "--start", "2030-01-01"),
            ExitCode.BAD_INPUT,
            (r"expected data in \[2030-01-01T00:00:00Z, -\), was none: the store holds the selection from 2019",),
        ),
        Case(
            "export --venue binanse", group, export("--venue", "binanse"), ExitCode.USAGE, ("did you mean 'binance'",)
        ),
    ]


def _read_only_store(monkeypatch: pytest.MonkeyPatch) -> None:
    real_open = open

    def refuse(file: object, mode: str = "r", *args: object, **kwargs: object) -> object:
        if str(file).endswith(".lock"):
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, mode, *args, **kwargs)  # type: ignore[call-overload]

    # Root ignores chmod, so the corpus simulates what a read-only mount gives every writer.
    monkeypatch.setattr("datasets.store.open", refuse, raising=False)


def _full_disk(monkeypatch: pytest.MonkeyPatch) -> None:
    def full(self: pl.DataFrame, file: object, *args: object, **kwargs: object) -> None:
        Path(str(file)).write_bytes(b"PAR1 partial")
        raise pl.exceptions.ComputeError("failed to write: No space left on device (os error 28)")

    monkeypatch.setattr(pl.DataFrame, "write_parquet", full)


# ------------------------------------------------------------------------------------ store checks
def _assert_rows(store: Path, kind: str, rows: int, *, venue: str | None = None, symbol: str | None = None) -> None:
    from datasets.store import Store

    frame = Store(store).scan(kind)
    if venue is not None:
        frame = frame.filter(pl.col("venue") == venue)
    if symbol is not None:
        frame = frame.filter(pl.col("symbol") == symbol)
    found = frame.select(pl.len()).collect().item()
    filters = {"venue": venue, "symbol": symbol}
    if found != rows:
        raise AssertionError(f"expected {rows} {kind} rows for {filters}, was {found}")


def _assert_one_2019_event(store: Path) -> None:
    from datasets.store import Store

    day = datetime(2019, 9, 9, tzinfo=UTC)
    found = Store(store).scan("liquidations", venue="binance", start=day, end=day + timedelta(days=1))
    rows = found.select(pl.len()).collect().item()
    if rows != 1:
        raise AssertionError(f"expected the event recorded twice to be stored once, was {rows} rows")


def _assert_extreme_reported(store: Path) -> None:
    from datasets.check import check_store
    from datasets.store import Store

    lineage = [e for p in Store(store).partitions("funding") for e in p.lineage if "allow_extreme" in e.extra]
    if not lineage:
        raise AssertionError("expected a lineage note for the --allow-extreme import, was none")
    findings = check_store(Store(store), kinds=["funding"], venues=["hyperliquid"])
    if not any(f.code == "over_cap" and f.severity == "warning" and "0.5" in f.message for f in findings):
        raise AssertionError(f"expected check to report the extreme rate as over the venue's cap, was {findings}")


def _assert_no_temp_files(store: Path) -> None:
    left = sorted(store.rglob(".*.tmp-*"))
    if left:
        raise AssertionError(f"expected the stale temp files to be removed, was {left}")


def plant_stale_temp(store: Path) -> None:
    """Leave a temp file like a write killed after creating it, in an existing partition."""
    partition = next(store.rglob("data.parquet")).parent
    (partition / ".data.parquet.tmp-999999-1").write_bytes(b"PAR1 half a file")


def cases() -> list[Case]:
    """Return every case of the corpus (names unique within an importer)."""
    found = [
        *_feather_cases(),
        *_kline_cases(),
        *_hl_cases(),
        *_rest_cases(),
        *_export_cases(),
        *_liquidation_cases(),
        *_store_cases(),
    ]
    ids = [f"{c.importer}: {c.name}" for c in found]
    duplicates = [i for i in ids if ids.count(i) > 1]
    if duplicates:
        raise AssertionError(f"corpus case names must be unique, were repeated: {sorted(set(duplicates))}")
    return found


def case_id(case: Case) -> str:
    """Return a pytest id for a case."""
    return re.sub(r"[^a-zA-Z0-9.:%-]+", "-", f"{case.importer}: {case.name}").strip("-")
