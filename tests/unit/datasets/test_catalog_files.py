"""datasets.catalog.files.CatalogWriter: staged streams and files land together or not at all."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from datasets.catalog import CatalogError, files
from datasets.catalog.files import CatalogWriter


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _stage(writer: CatalogWriter, version: str) -> None:
    for stream in ("a", "b"):
        directory = writer.staged_directory(Path("data", stream))
        directory.mkdir(parents=True)
        (directory / "rows.parquet").write_text(f"{stream} {version}")
    writer.stage_file(Path("venues.json"), f"venues {version}".encode())


def _export(root: Path, version: str) -> list[Path]:
    with CatalogWriter(root) as writer:
        _stage(writer, version)
        return writer.commit()


@pytest.fixture
def catalog(tmp_path: Path) -> Path:
    _export(tmp_path / "catalog", "old")
    return tmp_path / "catalog"


def _fail_when(monkeypatch: pytest.MonkeyPatch, failing: str, *, times: int = 1) -> None:
    real = os.replace
    left = [times]

    def replace(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        if str(Path(dst)).endswith(failing) and left[0]:
            left[0] -= 1
            raise OSError(f"no space left publishing {failing}")
        real(src, dst)

    monkeypatch.setattr(files.os, "replace", replace)


def test_commit_swaps_streams_and_then_files(catalog: Path) -> None:
    assert _tree(catalog) == {
        "data/a/rows.parquet": b"a old",
        "data/b/rows.parquet": b"b old",
        "venues.json": b"venues old",
    }
    published = _export(catalog, "new")
    assert published == [catalog / "data" / "a", catalog / "data" / "b", catalog / "venues.json"]
    assert _tree(catalog) == {
        "data/a/rows.parquet": b"a new",
        "data/b/rows.parquet": b"b new",
        "venues.json": b"venues new",
    }


@pytest.mark.parametrize("failing", ["catalog/data/b", "catalog/venues.json"])
def test_failed_swap_moves_every_swapped_path_back(
    catalog: Path, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    before = _tree(catalog)
    _fail_when(monkeypatch, failing)
    with pytest.raises(OSError, match=f"no space left publishing {failing}"):
        _export(catalog, "new")
    assert _tree(catalog) == before
    assert not list(catalog.glob(".export-staging-*"))


def test_failed_roll_back_keeps_the_previous_versions_in_staging(
    catalog: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fail_when(monkeypatch, "catalog/data/b", times=2)  # the swap of b, then the restore of its old version
    with pytest.raises(CatalogError, match=r"could not .*the previous versions are in .*old: move them back"):
        _export(catalog, "new")
    (staging,) = catalog.glob(".export-staging-*")
    assert (staging / "old" / "data" / "b" / "rows.parquet").read_text() == "b old"


def test_a_path_staged_twice_is_refused(tmp_path: Path) -> None:
    with CatalogWriter(tmp_path / "catalog") as writer:
        writer.stage_file(Path("venues.json"), b"{}")
        with pytest.raises(CatalogError, match=r"venues\.json was staged twice in one export"):
            writer.stage_file(Path("venues.json"), b"{}")
