"""Read one downloaded MCD export zip safely: the zip inside the zip, guarded against zip bombs,
and its CSV files, robust to a missing header row, mixed-case headers, stray non-UTF-8 bytes and
HTML fields of many megabytes.

Nothing is decompressed whole: each CSV member is read row by row from the zip (a counted
decompressing stream, `io.TextIOWrapper`, `csv.reader`), and the zip inside the zip is read in
place when it is stored (the real exports store it), else spooled through a temporary file.
Every byte decompressed goes through a counter: the export as a whole may not expand beyond
`ArchiveLimits.max_uncompressed_bytes`, no member beyond `max_member_bytes` nor beyond
`max_compression_ratio` times its compressed size (declared sizes are checked first, actual bytes
while reading, since a zip can lie about its sizes); past a limit the read stops at once with
an `ExportArchiveError`, and the run publishes nothing of that export. The rows the join needs
are kept as tuples of interned strings (ids, dates and code descriptions repeat thousands of
times), grouped by (document id, version): the uncompressed budget bounds them.
"""

from __future__ import annotations

import codecs
import contextvars
import csv
import io
import logging
import shutil
import struct
import sys
import tempfile
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from diffing.mcd import (
    COLUMNS,
    ExportData,
    ExportSpec,
    ExportTable,
    Row,
    doc_key,
    is_keyed,
    resolve_header,
)
from monitor.errors import SourceError

log = logging.getLogger("policy_monitor.sources.mcd")

# Below this many bytes a member's compression ratio is not judged: tiny files (a header, a
# lookup of ten rows) compress unpredictably and cannot hurt.
RATIO_FLOOR_BYTES = 1 << 20
_CHUNK = 1 << 20


class ExportArchiveError(SourceError):
    """An export zip that cannot be read safely: not a zip (a cut download), a file missing,
    or a member that expands too far (a zip bomb)."""

    def __init__(self, source: str, archive: str, reason: str) -> None:
        self.archive = archive
        super().__init__(source, f"{archive}: {reason}")


@dataclass(frozen=True, kw_only=True)
class ArchiveLimits:
    max_uncompressed_bytes: int
    max_compression_ratio: float
    max_field_bytes: int
    max_member_bytes: int | None = None  # one member's bytes; None: the whole budget

    @property
    def member_bytes(self) -> int:
        if self.max_member_bytes is None:
            return self.max_uncompressed_bytes
        return min(self.max_member_bytes, self.max_uncompressed_bytes)


@dataclass(kw_only=True)
class ReadStats:
    """What reading an export noticed without failing."""

    rows: int = 0
    # Bytes that were not UTF-8 and were read as cp1252 instead, per file.
    non_utf8_bytes: dict[str, int] = field(default_factory=dict)
    headerless_files: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


# -- non-UTF-8 bytes -----------------------------------------------------------------------------

_bad_bytes: contextvars.ContextVar[list[int] | None] = contextvars.ContextVar(
    "mcd_bad_bytes", default=None
)
_CP1252_UNDEFINED = frozenset({0x81, 0x8D, 0x8F, 0x90, 0x9D})


def _cp1252_fallback(error: UnicodeError) -> tuple[str, int]:
    """Decode the bytes UTF-8 refused as cp1252 (latin-1 where cp1252 has a hole), counting
    them: the real exports are UTF-8 with the odd Windows-1252 byte."""
    if not isinstance(error, UnicodeDecodeError):
        raise error
    chunk = error.object[error.start : error.end]
    counter = _bad_bytes.get()
    if counter is not None:
        counter[0] += len(chunk)
    text = "".join(
        chr(byte) if byte in _CP1252_UNDEFINED else bytes((byte,)).decode("cp1252")
        for byte in chunk
    )
    return text, error.end


ERRORS_HANDLER = "policy-monitor-cp1252"
codecs.register_error(ERRORS_HANDLER, _cp1252_fallback)


# -- guarded decompression -----------------------------------------------------------------------


@dataclass(kw_only=True)
class _Budget:
    source: str
    archive: str
    limits: ArchiveLimits
    used: int = 0

    def refuse(self, reason: str) -> ExportArchiveError:
        return ExportArchiveError(self.source, self.archive, reason)

    def check_declared(self, info: zipfile.ZipInfo, where: str) -> None:
        limits = self.limits
        if info.file_size > limits.max_uncompressed_bytes - self.used:
            raise self.refuse(
                f"{where} declares {info.file_size} bytes uncompressed, over the limit of "
                f"{limits.max_uncompressed_bytes} bytes for the whole export "
                f"(max_uncompressed_bytes); refusing a possible zip bomb"
            )
        self.check_member(info.file_size, where, declared=True)
        self.check_ratio(info.file_size, info.compress_size, where)

    def check_ratio(self, size: int, compressed: int, where: str) -> None:
        ratio = self.limits.max_compression_ratio
        if size > RATIO_FLOOR_BYTES and size > ratio * max(compressed, 1):
            raise self.refuse(
                f"{where} expands {size / max(compressed, 1):.0f}x "
                f"({compressed} -> {size} bytes), over the limit of {ratio:g}x "
                f"(max_compression_ratio); refusing a possible zip bomb"
            )

    def check_member(self, size: int, where: str, *, declared: bool = False) -> None:
        limit = self.limits.member_bytes
        if size > limit:
            verb = f"declares {size} bytes" if declared else "expands beyond"
            raise self.refuse(
                f"{where} {verb}{'' if declared else f' {limit} bytes'} uncompressed, over the "
                f"limit of {limit} bytes for one member (max_member_bytes); refusing a possible "
                f"zip bomb"
            )

    def add(self, count: int, where: str) -> None:
        self.used += count
        if self.used > self.limits.max_uncompressed_bytes:
            raise self.refuse(
                f"{where}: the export expands beyond {self.limits.max_uncompressed_bytes} bytes "
                f"(max_uncompressed_bytes); refusing a possible zip bomb"
            )


class _GuardedMember(io.RawIOBase):
    """A zip member's decompressed bytes, counted against the budget and its own ratio."""

    def __init__(
        self, archive: zipfile.ZipFile, info: zipfile.ZipInfo, budget: _Budget, where: str
    ) -> None:
        super().__init__()
        budget.check_declared(info, where)
        self._stream = archive.open(info)
        self._info = info
        self._budget = budget
        self._where = where
        self._size = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        try:
            data = self._stream.read(len(buffer))
        except (zipfile.BadZipFile, EOFError, zlib.error) as exc:
            # A bad CRC: the member holds more (or other) bytes than its entry declares, which
            # zipfile stops reading at. A lying zip bomb ends here.
            raise self._budget.refuse(
                f"{self._where} is corrupt or not what its zip entry declares ({exc}); refusing it"
            ) from exc
        count = len(data)
        buffer[:count] = data
        self._size += count
        self._budget.add(count, self._where)
        self._budget.check_member(self._size, self._where)
        self._budget.check_ratio(self._size, self._info.compress_size, self._where)
        return count

    def close(self) -> None:
        self._stream.close()
        super().close()


def _open_zip(path: Path, budget: _Budget, what: str) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise budget.refuse(f"{what} is not a readable zip file ({exc}); a cut download?") from exc


def _member(archive: zipfile.ZipFile, file_name: str) -> zipfile.ZipInfo | None:
    """The member called `file_name` in any folder and any case."""
    wanted = file_name.lower()
    for info in archive.infolist():
        if info.filename.replace("\\", "/").rsplit("/", 1)[-1].lower() == wanted:
            return info
    return None


def _inner_zip(outer: zipfile.ZipFile) -> zipfile.ZipInfo | None:
    zips = [i for i in outer.infolist() if i.filename.lower().endswith(".zip")]
    preferred = [i for i in zips if i.filename.lower().endswith("_csv.zip")]
    chosen = preferred or zips
    return chosen[0] if chosen else None


# -- CSV -----------------------------------------------------------------------------------------


def _rows(stream: IO[bytes], counter: list[int]) -> Iterator[list[str]]:
    text = io.TextIOWrapper(stream, encoding="utf-8", errors=ERRORS_HANDLER, newline="")
    token = _bad_bytes.set(counter)
    try:
        yield from csv.reader(text)
    except csv.Error as exc:
        raise ValueError(str(exc)) from exc
    finally:
        _bad_bytes.reset(token)


def _read_table(
    archive: zipfile.ZipFile,
    info: zipfile.ZipInfo,
    file_name: str,
    budget: _Budget,
    stats: ReadStats,
) -> ExportTable:
    where = f"{info.filename}"
    keyed = is_keyed(file_name)
    counter = [0]
    intern = sys.intern
    by_document: dict[tuple[str, str], list[Row]] = {}
    flat: list[Row] = []
    keys: dict[tuple[str, str], tuple[str, str]] = {}
    columns: tuple[str, ...] = ()
    id_at = version_at = 0
    malformed = 0
    with _GuardedMember(archive, info, budget, where) as raw:
        buffered = io.BufferedReader(raw, _CHUNK)
        try:
            rows = _rows(buffered, counter)
            for row in rows:
                if not columns:
                    columns, has_header = resolve_header(file_name, row)
                    if keyed:
                        id_at, version_at = (
                            columns.index(_id_column(file_name, 0)),
                            columns.index(_id_column(file_name, 1)),
                        )
                    if not has_header:
                        stats.headerless_files.append(file_name)
                    else:
                        continue
                if len(row) != len(columns):
                    if any(cell.strip() for cell in row):
                        malformed += 1
                    continue
                values = tuple(map(intern, row))
                if keyed:
                    pair = (values[id_at], values[version_at])
                    key = keys.get(pair)
                    if key is None:  # normalising ids is the slow part: once per version
                        key = keys[pair] = doc_key(*pair)
                    by_document.setdefault(key, []).append(values)
                else:
                    flat.append(values)
        except ValueError as exc:
            raise budget.refuse(f"{where}: not readable as CSV ({exc})") from exc
    count = sum(len(v) for v in by_document.values()) + len(flat)
    stats.rows += count
    if counter[0]:
        stats.non_utf8_bytes[file_name] = counter[0]
    if malformed:
        stats.problems.append(
            f"{budget.archive}: {where}: {malformed} row(s) without the {len(columns)} columns "
            f"of its header were skipped"
        )
    # csv.reader's cells and the names made of them (or the known ones) are all `str`.
    return ExportTable(
        name=file_name, columns=columns, by_document=by_document, rows=flat, plain_text=True
    )


def _id_column(file_name: str, position: int) -> str:
    return COLUMNS[file_name][position]


def read_export(
    path: Path,
    spec: ExportSpec,
    *,
    source: str,
    limits: ArchiveLimits,
    temp_dir: str | None = None,
) -> tuple[ExportData, ReadStats]:
    """Read the files `spec` needs from the export zip at `path` (blocking; CPU-bound)."""
    csv.field_size_limit(max(limits.max_field_bytes, 131_072))
    budget = _Budget(source=source, archive=spec.zip_name, limits=limits)
    stats = ReadStats()
    with _open_zip(path, budget, spec.zip_name) as outer:
        inner_info = _inner_zip(outer)
        if inner_info is None:  # CSV files directly in the download: read them there
            return _read_files(outer, spec, budget, stats), stats
        where = f"{spec.zip_name}/{inner_info.filename}"
        with _inner_zip_file(path, outer, inner_info, budget, where, temp_dir) as inner_file:
            try:
                inner = zipfile.ZipFile(inner_file)
            except zipfile.BadZipFile as exc:
                raise budget.refuse(f"{where} is not a readable zip file ({exc})") from exc
            with inner:
                return _read_files(inner, spec, budget, stats), stats


# Inner zips up to this size are spooled in memory when they must be copied at all.
SPOOL_BYTES = 8 << 20
_LOCAL_HEADER = struct.Struct("<4s22sHH")  # signature, fixed fields, name and extra lengths


def _inner_zip_file(
    path: Path,
    outer: zipfile.ZipFile,
    info: zipfile.ZipInfo,
    budget: _Budget,
    where: str,
    temp_dir: str | None,
) -> IO[bytes]:
    """A seekable file of the zip inside the zip: a window on the download itself when it is
    stored uncompressed and unencrypted (no copy), else its bytes decompressed through the
    budget into a spooled temporary file (memory up to `SPOOL_BYTES`, then disk)."""
    budget.check_declared(info, where)
    if info.compress_type == zipfile.ZIP_STORED and not info.flag_bits & 0x1:
        start = _data_offset(path, info)
        if start is not None and start + info.compress_size <= path.stat().st_size:
            budget.add(info.file_size, where)  # counted as if copied, as before
            return io.BufferedReader(_Window(path, start, info.compress_size), _CHUNK)
    spooled = tempfile.SpooledTemporaryFile(SPOOL_BYTES, dir=temp_dir)  # noqa: SIM115
    try:
        with _GuardedMember(outer, info, budget, where) as member:
            shutil.copyfileobj(member, spooled, _CHUNK)
        spooled.seek(0)
    except BaseException:
        spooled.close()
        raise
    return spooled  # type: ignore[return-value]


def _data_offset(path: Path, info: zipfile.ZipInfo) -> int | None:
    """Where a member's bytes start in the zip file (after its local header), or None when
    the local header is not where the central directory says."""
    with path.open("rb") as handle:
        handle.seek(info.header_offset)
        header = handle.read(_LOCAL_HEADER.size)
    if len(header) < _LOCAL_HEADER.size:
        return None
    signature, _fixed, name_length, extra_length = _LOCAL_HEADER.unpack(header)
    if signature != b"PK\x03\x04":
        return None
    return info.header_offset + _LOCAL_HEADER.size + name_length + extra_length


class _Window(io.RawIOBase):
    """Bytes `start` .. `start + size` of a file, as a seekable read-only file of their own."""

    def __init__(self, path: Path, start: int, size: int) -> None:
        super().__init__()
        self._file = path.open("rb")
        self._start = start
        self._size = size
        self._position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._size}[whence]
        self._position = max(0, min(self._size, base + offset))
        return self._position

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        wanted = min(len(buffer), self._size - self._position)
        if wanted <= 0:
            return 0
        self._file.seek(self._start + self._position)
        count = self._file.readinto(memoryview(buffer)[:wanted])
        self._position += count
        return count

    def close(self) -> None:
        self._file.close()
        super().close()


def _read_files(
    archive: zipfile.ZipFile, spec: ExportSpec, budget: _Budget, stats: ReadStats
) -> ExportData:
    tables: dict[str, ExportTable] = {}
    for file_name in dict.fromkeys(spec.files):
        info = _member(archive, file_name)
        if info is None:
            if file_name == spec.main_file:
                raise budget.refuse(f"{file_name} is missing from the export")
            stats.problems.append(f"{spec.zip_name}: {file_name} is missing from the export")
            continue
        tables[file_name] = _read_table(archive, info, file_name, budget, stats)
    for file_name, count in stats.non_utf8_bytes.items():
        log.warning(
            "%s: %s: %d byte(s) were not UTF-8; read as cp1252", spec.zip_name, file_name, count
        )
    return ExportData(spec=spec, tables=tables)
