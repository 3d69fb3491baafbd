"""MCD export zips are streamed, never held (issue 16, finding 5): a CSV member that inflates
past the configured budget stops the read at the budget with a clear error, the process's
memory grows by about the budget and not by the bomb, and the run publishes nothing."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from diffing.mcd import COLUMNS, EXPORTS
from fixtures.mcd_export import export_directory
from monitor.config import SourceConfig, parse_config
from monitor.pipeline.runner import run_source
from monitor.store.core import Store
from monitor.store.models.core import ChangeRow, DocumentVersion
from sources.mcd_archive import ArchiveLimits, ExportArchiveError, read_export
from sources.mcd_downloads import McdDownloadsSource

MiB = 1024 * 1024
LCD = next(spec for spec in EXPORTS if spec.doc_type == "LCD")
BOMB_BYTES = 256 * MiB  # what lcd.csv inflates to: a quarter of a gigabyte of rows
MEMBER_BUDGET = 4 * MiB


def _lcd_row(number: int) -> bytes:
    cells = [f"{33000 + number % 1000}", f"{number}", f"title {number}"]
    cells += [""] * (len(COLUMNS["lcd.csv"]) - len(cells))
    return (",".join(cells) + "\r\n").encode()


def _bomb(path: Path, *, inflated: int, stored_inner: bool = True) -> Path:
    """current_lcd.zip whose lcd.csv is a header and `inflated` bytes of distinct rows (a few
    megabytes zipped), the CSV zip stored or deflated inside the download."""
    inner_path = path.with_suffix(".inner.zip")
    with (
        zipfile.ZipFile(inner_path, "w", compression=zipfile.ZIP_DEFLATED) as inner,
        inner.open("lcd.csv", "w") as member,
    ):
        member.write((",".join(COLUMNS["lcd.csv"]) + "\r\n").encode())
        block = b"".join(_lcd_row(n) for n in range(200))  # within deflate's 32 KiB window
        for _ in range(inflated // len(block)):
            member.write(block)
    compression = zipfile.ZIP_STORED if stored_inner else zipfile.ZIP_DEFLATED
    with zipfile.ZipFile(path, "w", compression=compression) as outer:
        outer.write(inner_path, "current_lcd_csv.zip")
    inner_path.unlink()
    return path


@pytest.fixture(scope="module")
def bomb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = _bomb(tmp_path_factory.mktemp("mcd-bomb") / "current_lcd.zip", inflated=BOMB_BYTES)
    assert path.stat().st_size < 4 * MiB  # a quarter of a gigabyte in a few megabytes
    return path


def _limits(**changes: int | float) -> ArchiveLimits:
    values: dict[str, int | float] = {
        "max_uncompressed_bytes": 1_000_000_000,
        "max_compression_ratio": 10_000.0,  # let the byte budgets, not the ratio, stop it
        "max_field_bytes": 1_000_000,
        "max_member_bytes": MEMBER_BUDGET,
        **changes,
    }
    return ArchiveLimits(**values)  # type: ignore[arg-type]


_MEASURE = """
import json, resource, sys, tracemalloc
from pathlib import Path
from diffing.mcd import EXPORTS
from sources.mcd_archive import ArchiveLimits, ExportArchiveError, read_export

spec = next(s for s in EXPORTS if s.doc_type == "LCD")
limits = ArchiveLimits(**json.loads(sys.argv[2]))
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
tracemalloc.start()
error = None
try:
    read_export(Path(sys.argv[1]), spec, source="mcd", limits=limits)
except ExportArchiveError as exc:
    error = str(exc)
_current, traced = tracemalloc.get_traced_memory()
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"error": error, "growth_kib": after - before, "traced_kib": traced // 1024}))
"""


def _measure(path: Path, limits: ArchiveLimits) -> dict[str, object]:
    """Read `path` in a fresh process: its error, how far its peak RSS grew and the peak of
    the memory Python allocated while reading (both in KiB)."""
    answer = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(path), json.dumps(limits.__dict__)],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return dict(json.loads(answer.stdout.strip().splitlines()[-1]))


def test_a_member_declaring_more_than_its_budget_is_refused_unread(bomb: Path) -> None:
    measured = _measure(bomb, _limits())
    error = str(measured["error"])
    assert re.search(r"lcd.csv declares 26\d{7} bytes uncompressed", error), error
    assert "max_member_bytes" in error and "zip bomb" in error
    _assert_bounded(measured, "zip bomb")


def test_a_member_lying_about_its_size_stops_at_the_declared_size(
    bomb: Path, tmp_path: Path
) -> None:
    """A bomb declaring 1 MiB and holding 256: reading stops after the declared size (zipfile
    reads no further) with a clear error, and memory grows by about that, not by the bomb."""
    liar = _declare(bomb, tmp_path / "current_lcd.zip", size=MiB)
    measured = _measure(liar, _limits())
    error = str(measured["error"])
    assert "lcd.csv is corrupt or not what its zip entry declares" in error, error
    _assert_bounded(measured, "lying zip bomb")


def test_the_whole_export_budget_counts_every_member(bomb: Path) -> None:
    # The inner zip itself counts (a few MiB), then each CSV member: the export is over
    # 8 MiB before lcd.csv is read.
    limits = _limits(max_uncompressed_bytes=8 * MiB, max_member_bytes=BOMB_BYTES * 2)
    measured = _measure(bomb, limits)
    error = str(measured["error"])
    assert "max_uncompressed_bytes" in error and "zip bomb" in error, error
    _assert_bounded(measured, "export over budget")


def _assert_bounded(measured: dict[str, object], what: str) -> None:
    """Memory grew by about the budget (a few MiB of rows and buffers), never by the bomb:
    holding its quarter gigabyte of rows would take gigabytes."""
    growth = int(str(measured["growth_kib"])) / 1024
    traced = int(str(measured["traced_kib"])) / 1024
    print(f"{what}: peak RSS grew {growth:.1f} MiB, peak traced {traced:.1f} MiB")
    assert growth < 64 and traced < 64, (growth, traced)


def _declare(bomb: Path, target: Path, *, size: int) -> Path:
    """A copy of `bomb` whose inner lcd.csv entry declares `size` bytes uncompressed (its
    central directory record forged; zipfile reads sizes from there)."""
    with zipfile.ZipFile(bomb) as outer:
        inner = bytearray(outer.read("current_lcd_csv.zip"))
    record = inner.rindex(b"PK\x01\x02")  # the one central directory record: lcd.csv
    inner[record + 24 : record + 28] = size.to_bytes(4, "little")
    with zipfile.ZipFile(target, "w") as outer:
        outer.writestr("current_lcd_csv.zip", bytes(inner))
    return target


def test_a_deflated_inner_zip_is_spooled_and_held_to_the_same_budget(tmp_path: Path) -> None:
    deflated = _bomb(tmp_path / "current_lcd.zip", inflated=32 * MiB, stored_inner=False)
    with zipfile.ZipFile(deflated) as outer:
        assert outer.getinfo("current_lcd_csv.zip").compress_type == zipfile.ZIP_DEFLATED
    with pytest.raises(ExportArchiveError, match="max_member_bytes"):
        read_export(deflated, LCD, source="mcd", limits=_limits())


def test_a_declared_size_over_the_member_budget_is_refused_before_reading(tmp_path: Path) -> None:
    small = _bomb(tmp_path / "current_lcd.zip", inflated=2 * MiB)
    with pytest.raises(ExportArchiveError, match=r"declares .* bytes .*max_member_bytes"):
        read_export(small, LCD, source="mcd", limits=_limits(max_member_bytes=MiB))


@pytest.mark.parametrize("stored_inner", [True, False], ids=["stored", "deflated"])
def test_reading_in_place_and_spooled_give_the_same_rows(
    tmp_path: Path, stored_inner: bool
) -> None:
    """The zip inside the real exports is stored: it is read in place, without a copy; a
    deflated one is spooled. Both give the rows a plain read gives."""
    original = export_directory("week1", "sample") / "current_lcd.zip"
    rezipped = tmp_path / "current_lcd.zip"
    with zipfile.ZipFile(original) as source, zipfile.ZipFile(rezipped, "w") as target:
        for info in source.infolist():
            kind = zipfile.ZIP_STORED if stored_inner else zipfile.ZIP_DEFLATED
            target.writestr(info.filename, source.read(info), compress_type=kind)
    limits = _limits(max_member_bytes=500_000_000, max_field_bytes=200_000_000)
    expected, _ = read_export(original, LCD, source="mcd", limits=limits)
    got, stats = read_export(rezipped, LCD, source="mcd", limits=limits)
    assert stats.rows > 0
    assert {name: dict(t.by_document) for name, t in got.tables.items()} == {
        name: dict(t.by_document) for name, t in expected.tables.items()
    }


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    opened = Store.open(database_url)
    yield opened
    opened.close()


def _config(**options: object) -> SourceConfig:
    table = {"name": "mcd", "kind": "mcd_downloads", "document_types": ["lcd"], **options}
    return parse_config({"sources": [table]}).source("mcd")


def test_a_run_over_a_bomb_fails_clearly_and_publishes_nothing(store: Store, bomb: Path) -> None:
    def factory(config: SourceConfig) -> McdDownloadsSource:
        return McdDownloadsSource(
            name=config.name,
            options=config.options,  # type: ignore[arg-type]
            export_files={"current_lcd.zip": bomb},
        )

    config = _config(max_member_bytes=MEMBER_BUDGET, max_compression_ratio=10_000)
    summary = asyncio.run(run_source(config, store, factory=factory))
    assert summary.outcome == "failed"
    assert "max_member_bytes" in (summary.error or "") and "zip bomb" in (summary.error or "")
    assert store.count(DocumentVersion) == 0 and store.count(ChangeRow) == 0
    # The export's validators are not kept: the next run reads it again, nothing is skipped.
    source_id = store.ensure_source("mcd", "mcd_downloads").id
    assert store.listing_state(source_id) == {}
