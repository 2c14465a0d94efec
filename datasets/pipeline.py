"""Import source files into the store: find the importer, read, validate everything, then write.

All inputs of one call are read and validated before the first write, so a bad file anywhere in
the call leaves the store exactly as it was.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from datasets.errors import DatasetError
from datasets.importers import find_importer, require_importer
from datasets.importers.base import Batch, ImportOptions, sha256_of
from datasets.schemas import spec_for
from datasets.store import SourceInfo, Store
from datasets.validate import validate_batch

READ_THREADS = min(4, os.cpu_count() or 1)


@dataclass(slots=True)
class ImportReport:
    """What an import did."""

    files: int = 0
    rows: int = 0
    partitions_written: int = 0
    partitions_unchanged: int = 0
    skipped: list[Path] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Read:
    path: Path
    info: SourceInfo
    batches: list[Batch]


def expand_inputs(paths: Iterable[Path]) -> tuple[list[Path], list[Path]]:
    """Return (files some importer recognises, files skipped) for files and folders walked recursively.

    A file named explicitly must be recognised; inside a folder, unrecognised files (READMEs,
    licences) are skipped and reported.

    Raises
    ------
    DatasetError
        If a path does not exist.
    UnknownSourceError
        If a file named explicitly is in no supported format.
    """
    chosen: list[Path] = []
    skipped: list[Path] = []
    for path in paths:
        if not path.exists():
            raise DatasetError(f"{path}: no such file or folder")
        if path.is_file():
            require_importer(path)
            chosen.append(path)
            continue
        for child in sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith(".")):
            (chosen if find_importer(child) is not None else skipped).append(child)
    return chosen, skipped


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
    ConflictError
        If an input disagrees with data already stored; inputs before it in sorted order are kept.
    """
    options = options or ImportOptions()
    files, skipped = expand_inputs(paths)
    report = ImportReport(files=len(files), skipped=skipped)
    with ThreadPoolExecutor(max_workers=READ_THREADS) as pool:
        reads = list(
            tqdm(
                pool.map(lambda path: _read_one(path, options), files),
                total=len(files),
                desc="read+validate",
                unit="file",
                disable=not progress,
            )
        )
    for read in tqdm(reads, desc="write", unit="file", disable=not progress):
        for batch in read.batches:
            summary = store.write(batch.kind, batch.frame, read.info, validate=False)
            report.rows += summary.rows_in
            report.partitions_written += len(summary.partitions_written)
            report.partitions_unchanged += len(summary.partitions_unchanged)
    return report


def _read_one(path: Path, options: ImportOptions) -> _Read:
    importer = require_importer(path)
    batches = importer.read(path, options)
    info = SourceInfo(
        source=str(path),
        sha256=sha256_of(path),
        importer=importer.name,
        importer_version=importer.version,
    )
    for batch in batches:
        validate_batch(batch.frame, spec_for(batch.kind), source=info.source)
    return _Read(path, info, batches)
