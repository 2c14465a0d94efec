"""Import source files into the store: find the importer, read, validate everything, then write.

All inputs of one call are read and validated before the first write, so a bad file anywhere in
the call leaves the store exactly as it was. Each input is staged (merged in memory, and encoded
to temp files by the store) as soon as it passes, while the next ones are read: the store's files
change only when the last input has passed.

Inputs are checked before any importer sees them: a path that is not a regular file or folder (a
FIFO, a device), a 0-byte file, a folder with nothing importable and text that is not UTF-8 are refused
by name (``EmptyInputError`` / ``SourceFormatError``) unless ``skip_unrecognised`` is set, which skips
them instead. Text with a UTF-16 or UTF-32 byte-order mark is decoded to UTF-8 first (the lineage
records the original file and its sha256).
"""

from __future__ import annotations

import codecs
import csv
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
import pyarrow as pa
from tqdm import tqdm

from datasets.errors import ConflictError, EmptyInputError, SourceFormatError, UnknownSourceError
from datasets.importers import find_importer, require_importer
from datasets.importers.base import Batch, Importer, ImportOptions, head_bytes, sha256_of
from datasets.schemas import spec_for
from datasets.store import SourceInfo, Store
from datasets.validate import over_cap_rows, validate_batch

# Byte-order marks of the encodings decoded transparently, longest first (UTF-32 LE starts like UTF-16 LE).
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_TEXT_SUFFIXES = (".csv", ".json", ".jsonl", ".txt", ".ndjson")

READ_THREADS = min(4, os.cpu_count() or 1)


@dataclass(slots=True)
class ImportReport:
    """What an import did."""

    files: int = 0
    rows: int = 0
    partitions_written: int = 0
    partitions_unchanged: int = 0
    skipped: list[Path] = field(default_factory=list)
    extreme_rates: int = 0


@dataclass(frozen=True, slots=True)
class _Read:
    path: Path
    info: SourceInfo
    batches: list[Batch]


def expand_inputs(
    paths: Iterable[Path], *, skip_unrecognised: bool = False, decoded: dict[Path, Path] | None = None
) -> tuple[list[Path], list[Path]]:
    """Return (files some importer recognises, files skipped) for files and folders walked recursively.

    A file named explicitly must be recognised; inside a folder, unrecognised files (READMEs,
    licences) and non-regular files are skipped and reported. Empty files, text that is not UTF-8 and
    a call with nothing importable are refused unless ``skip_unrecognised``. Files with a UTF-16/32
    byte-order mark are sniffed through their UTF-8 copy in ``decoded`` (original -> copy), when given.

    Raises
    ------
    SourceFormatError
        If a path does not exist or is not a regular file or folder, or a text file is not UTF-8.
    EmptyInputError
        If a file is empty, or no file at all is importable (unless ``skip_unrecognised``).
    UnknownSourceError
        If a file named explicitly is in no supported format (unless ``skip_unrecognised``).
    """
    chosen: list[Path] = []
    skipped: list[Path] = []
    copies = decoded if decoded is not None else {}
    for path in paths:
        if not path.exists():
            raise SourceFormatError(f"{path}: expected a file or folder to import, was nothing: no such path")
        if path.is_dir():
            children = sorted(p for p in path.rglob("*") if not p.name.startswith(".") and not p.is_dir())
            candidates = [(child, False) for child in children]
        else:
            candidates = [(path, True)]
        for candidate, explicit in candidates:
            try:
                if _recognise(candidate, explicit=explicit, copies=copies):
                    chosen.append(candidate)
                else:
                    skipped.append(candidate)
            except (EmptyInputError, UnknownSourceError, SourceFormatError):
                if not skip_unrecognised:
                    raise
                skipped.append(candidate)
    if not chosen and not skip_unrecognised:
        names = ", ".join(str(p) for p in paths)
        raise EmptyInputError(
            f"{names}: expected at least one file in a supported format, was none ({len(skipped)} files found, "
            "none importable; `python -m datasets import --help` lists the formats); pass --skip-unrecognised "
            "to accept an import of nothing"
        )
    return chosen, skipped


def _recognise(path: Path, *, explicit: bool, copies: dict[Path, Path]) -> bool:
    if not path.is_file():
        if explicit:
            raise SourceFormatError(
                f"{path}: expected a regular file or a folder, was a FIFO, socket or device; "
                "copy the data into a file and import that"
            )
        return False
    if path.stat().st_size == 0:
        raise EmptyInputError(
            f"{path}: expected data, was an empty file (0 bytes); delete it or download it again "
            "(or pass --skip-unrecognised to skip empty files)"
        )
    text = path.suffix.lower() in _TEXT_SUFFIXES
    sniffed = copies.get(path, path)
    if sniffed is path and text:
        head = head_bytes(path, 4)
        encoding = next((name for bom, name in _BOMS if head.startswith(bom)), None)
        if encoding is not None:
            sniffed = _decoded_copy(path, encoding, copies)
    if find_importer(sniffed) is None:
        if text and sniffed is path and b"\x00" in head_bytes(path, 4096):
            raise SourceFormatError(
                f"{path}: expected UTF-8 text, was text with NUL bytes (UTF-16 without a byte-order mark, or a "
                "binary file): re-save it as UTF-8 (or UTF-16 with a byte-order mark, which is decoded)"
            )
        if explicit:
            require_importer(sniffed)
        return False
    if text and sniffed is path:
        _require_utf8(path)
    return True


def _decoded_copy(path: Path, encoding: str, copies: dict[Path, Path]) -> Path:
    try:
        text = path.read_bytes().decode(encoding)
    except UnicodeDecodeError as exc:
        raise SourceFormatError(
            f"{path}: expected {encoding.upper()} text after its byte-order mark, was an undecodable byte at "
            f"offset {exc.start}; re-save the file as UTF-8"
        ) from exc
    folder = Path(tempfile.mkdtemp(prefix="carrylab-decoded-"))
    copy = folder / path.name
    copy.write_text(text, encoding="utf-8")
    copies[path] = copy
    return copy


def _require_utf8(path: Path) -> None:
    data = path.read_bytes()
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise SourceFormatError(
            f"{path}: line {line}: expected UTF-8 text, was byte {data[exc.start : exc.start + 1]!r} at offset "
            f"{exc.start}, which is not UTF-8 (Latin-1 or Windows-1252?): re-save the file as UTF-8"
        ) from exc


@contextmanager
def _decoding() -> Iterator[dict[Path, Path]]:
    copies: dict[Path, Path] = {}
    try:
        yield copies
    finally:
        for copy in copies.values():
            shutil.rmtree(copy.parent, ignore_errors=True)


def import_paths(
    paths: Iterable[Path],
    store: Store,
    *,
    options: ImportOptions | None = None,
    progress: bool = False,
) -> ImportReport:
    """Import files and folders into ``store``.

    Raises
    ------
    SourceFormatError, ValidationError
        If any input is malformed; nothing is written.
    EmptyInputError
        If an input holds no records, or nothing is importable (unless ``options.skip_unrecognised``).
    ConflictError
        If an input disagrees with data already stored; inputs before it in sorted order are kept.
    StoreWriteError
        If the store cannot be written (read-only, full disk); every partition is either old or new.
    """
    options = options or ImportOptions()
    with _decoding() as copies:
        files, skipped = expand_inputs(paths, skip_unrecognised=options.skip_unrecognised, decoded=copies)

        def read_file(path: Path) -> _Read | None:
            return _read_or_skip(path, copies.get(path, path), options)

        report = ImportReport(skipped=skipped)
        # Inputs are staged in sorted order as they pass, while the pool reads the next ones (and the
        # store encodes what is staged); nothing reaches the store before every input has passed.
        with ThreadPoolExecutor(max_workers=READ_THREADS) as pool:
            results = tqdm(
                pool.map(read_file, files),
                total=len(files),
                desc="read+validate+stage",
                unit="file",
                disable=not progress,
            )
            _write_reads(_counted(zip(files, results, strict=True), report, options), store, report)
    return report


def _counted(
    results: Iterable[tuple[Path, _Read | None]], report: ImportReport, options: ImportOptions
) -> Iterator[_Read]:
    for path, read in results:
        if read is None:
            report.skipped.append(path)
            continue
        report.files += 1
        if options.allow_extreme:
            report.extreme_rates += sum(over_cap_rows(b.frame) for b in read.batches if b.kind == "funding")
        yield read


def import_with(
    importer: Importer,
    paths: Sequence[Path],
    store: Store,
    *,
    options: ImportOptions | None = None,
    extra: tuple[tuple[str, str], ...] = (),
) -> ImportReport:
    """Import files named explicitly through one importer, without sniffing (a tidy table and its mapping).

    Every file is read and validated before anything is written; ``extra`` goes into each file's lineage.

    Raises
    ------
    SourceFormatError, ValidationError
        If a path is not a file or an input is malformed; nothing is written.
    ConflictError, StoreWriteError
        As ``import_paths``.
    """
    options = options or ImportOptions()
    reads: list[_Read] = []
    for path in paths:
        if not path.is_file():
            raise SourceFormatError(f"{path}: expected a file to import, was no regular file")
        try:
            batches = importer.read(path, options)
        except (pl.exceptions.PolarsError, pa.ArrowException, OverflowError) as exc:
            raise SourceFormatError(
                f"{path}: expected a readable {importer.name} file, was one its reader failed on "
                f"({type(exc).__name__}: {exc}); re-export it"
            ) from exc
        for batch in batches:
            validate_batch(batch.frame, spec_for(batch.kind), source=str(path), limits=not options.allow_extreme)
        info = SourceInfo(str(path), sha256_of(path), importer.name, importer.version, extra)
        reads.append(_Read(path, info, batches))
    report = ImportReport(files=len(reads), skipped=[])
    _write_reads(reads, store, report)
    return report


def _write_reads(reads: Iterable[_Read], store: Store, report: ImportReport) -> None:
    # One lock and one commit for the inputs of the call (up to the store's row budget), not one per
    # input. A read that fails raises out of the block: nothing is committed. A conflict commits the
    # inputs before it only once every later input has been read and validated, so a bad file anywhere
    # still leaves the store as it was.
    conflict: ConflictError | None = None
    with store.deferred():
        for read in reads:
            if conflict is not None:
                continue
            try:
                for batch in read.batches:
                    summary = store.write(batch.kind, batch.frame, read.info, validate=False)
                    report.rows += summary.rows_in
                    report.partitions_written += len(summary.partitions_written)
                    report.partitions_unchanged += len(summary.partitions_unchanged)
            except ConflictError as exc:
                conflict = exc
        if conflict is not None:
            raise conflict


def _read_or_skip(path: Path, readable: Path, options: ImportOptions) -> _Read | None:
    try:
        return _read_one(path, readable, options)
    except EmptyInputError:
        if options.skip_unrecognised:
            return None
        raise


def _read_one(path: Path, readable: Path, options: ImportOptions) -> _Read:
    importer = require_importer(readable)
    try:
        batches = importer.read(readable, options)
    except SourceFormatError as exc:
        if readable == path:
            raise
        raise type(exc)(str(exc).replace(str(readable), f"{path} (decoded from its byte-order mark)")) from exc
    except (pl.exceptions.PolarsError, pa.ArrowException, csv.Error, UnicodeDecodeError, OverflowError) as exc:
        # A reader tripping over malformed bytes is bad input, not a bug: name the file, never a traceback.
        raise SourceFormatError(
            f"{path}: expected a readable {importer.name} file, was one its reader failed on "
            f"({type(exc).__name__}: {exc}); re-download or re-export it"
        ) from exc
    if not batches or all(batch.frame.height == 0 for batch in batches):
        raise EmptyInputError(
            f"{path}: expected at least one record, was none; re-download it "
            "(or pass --skip-unrecognised to skip empty files)"
        )
    extra: tuple[tuple[str, str], ...] = ()
    for batch in batches:
        validate_batch(batch.frame, spec_for(batch.kind), source=str(path), limits=not options.allow_extreme)
        if batch.kind == "funding" and options.allow_extreme and (count := over_cap_rows(batch.frame)):
            extra = (
                (
                    "allow_extreme",
                    f"{count} settlements above the venue's funding-rate cap (datasets/venues.py), "
                    "imported deliberately with --allow-extreme",
                ),
            )
    info = SourceInfo(
        source=str(path),
        sha256=sha256_of(path),
        importer=importer.name,
        importer_version=importer.version,
        extra=extra,
    )
    return _Read(path, info, batches)
