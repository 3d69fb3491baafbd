"""`policy-monitor backfill`: a whole export into an empty database, with progress (a bar on a
terminal, log lines otherwise), from the server or from downloaded zips."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import shutil
import struct
import subprocess
import sys
import termios
from collections.abc import Iterator
from pathlib import Path

import pytest

from fixtures.mcd_export import EXPORT_NAMES, McdExportFixture
from monitor.cli.main import main
from monitor.store.core import Store
from monitor.store.models.core import DocumentVersion

ROOT = Path(__file__).resolve().parents[1]
REALDATA = ROOT.parent / "shared" / "realdata"


def _config(tmp_path: Path, base_url: str) -> Path:
    path = tmp_path / "monitor.toml"
    path.write_text(f"""
[database]
url = "sqlite:///{tmp_path / "monitor.store.db"}"

[[sources]]
name = "mcd"
kind = "mcd_downloads"
base_url = "{base_url}"
max_retries = 0
""")
    return path


@pytest.fixture
def config(tmp_path: Path) -> Iterator[Path]:
    with McdExportFixture(scenario="week1") as exports:
        yield _config(tmp_path, exports.exports_url)


def _backfill(config: Path, *, terminal: bool) -> tuple[int, str]:
    command = [
        sys.executable,
        "-m",
        "monitor.cli",
        "--config",
        str(config),
        "backfill",
        "--source",
        "mcd",
    ]
    if not terminal:
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
        return done.returncode, done.stdout + done.stderr
    primary, secondary = pty.openpty()
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    process = subprocess.Popen(command, cwd=ROOT, stdout=secondary, stderr=secondary)
    os.close(secondary)
    chunks = []
    while True:
        try:
            chunk = os.read(primary, 4096)
        except OSError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(primary)
    return process.wait(timeout=120), b"".join(chunks).decode(errors="replace")


def test_backfill_logs_progress_lines_when_not_on_a_terminal(config: Path) -> None:
    code, output = _backfill(config, terminal=False)
    assert code == 0, output
    assert "mcd backfill: 17 documents to fetch" in output
    assert "mcd backfill: 17/17 documents (100 %)" in output
    assert "\r" not in output
    assert "mcd: success (baseline) - 17 listed, 17 fetched, 17 new versions" in output


@pytest.mark.slow
def test_backfill_draws_a_bar_on_a_terminal(config: Path) -> None:
    code, screen = _backfill(config, terminal=True)
    assert code == 0, screen
    assert re.search(r"mcd backfill: +\d+%\|.*\| \d+/17 \[", screen), screen
    assert "documents to fetch" not in screen


def test_backfill_from_downloaded_files_needs_no_server(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with McdExportFixture(scenario="week1") as exports:
        folder = exports.directory()
    for name in EXPORT_NAMES:
        shutil.copyfile(folder / name, tmp_path / name)
    # Nothing listens on the configured URL: every byte must come from the files.
    config = _config(tmp_path, "http://127.0.0.1:9/exports")
    files = [arg for name in EXPORT_NAMES for arg in ("--file", str(tmp_path / name))]
    assert main(["--config", str(config), "backfill", "--source", "mcd", *files]) == 0
    assert "17 new versions" in capsys.readouterr().out
    store = Store.open(f"sqlite:///{tmp_path / 'monitor.store.db'}")
    try:
        assert store.count(DocumentVersion) == 17
        assert {c.baseline for c in store.changes(source="mcd")} == {True}
    finally:
        store.close()
    # The database has its baseline now: a second backfill is refused.
    assert main(["--config", str(config), "backfill", "--source", "mcd", *files]) == 2
    assert "already has a baseline" in capsys.readouterr().err


def test_backfill_of_one_file_reads_only_that_export(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with McdExportFixture(scenario="week1") as exports:
        ncd = exports.directory() / "ncd.zip"
    config = _config(tmp_path, "http://127.0.0.1:9/exports")
    assert main(["--config", str(config), "backfill", "--source", "mcd", "--file", str(ncd)]) == 0
    assert "3 listed, 3 fetched, 3 new versions" in capsys.readouterr().out


def test_backfill_refuses_a_source_of_another_kind(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "monitor.toml"
    config.write_text(f"""
[database]
url = "sqlite:///{tmp_path / "monitor.store.db"}"

[[sources]]
name = "cms"
kind = "cms_coverage"
""")
    assert main(["--config", str(config), "backfill", "--source", "cms"]) == 2
    assert "backfill reads mcd_downloads sources" in capsys.readouterr().err


def _real_exports() -> list[Path]:
    if not REALDATA.is_dir():
        return []
    return sorted(
        path
        for path in REALDATA.rglob("*.zip")
        if any(token in path.name.lower() for token in ("lcd", "article", "ncd"))
    )


@pytest.mark.skipif(not _real_exports(), reason="no MCD export zip in ../shared/realdata")
def test_real_export_sample_backfills(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = _config(tmp_path, "http://127.0.0.1:9/exports")
    files = [arg for path in _real_exports() for arg in ("--file", str(path))]
    assert main(["--config", str(config), "backfill", "--source", "mcd", *files]) == 0
    assert "new versions" in capsys.readouterr().out
