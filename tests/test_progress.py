"""Progress of `check`: a bar on a terminal (a real pseudo-terminal), log lines otherwise."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import struct
import subprocess
import sys
import termios
from collections.abc import Iterator
from pathlib import Path

import pytest

from fixtures.cms_api import CmsApiFixture
from monitor.progress import LogProgress

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def config(tmp_path: Path) -> Iterator[Path]:
    with CmsApiFixture(scenario="week1") as server:
        path = tmp_path / "monitor.toml"
        path.write_text(f"""
[database]
url = "sqlite:///{tmp_path / "monitor.store.db"}"

[[sources]]
name = "cms"
kind = "cms_coverage"
base_url = "{server.base_url}"
""")
        yield path


def _check(config: Path, *, terminal: bool) -> tuple[int, str]:
    command = [sys.executable, "-m", "monitor.cli", "--config", str(config), "check"]
    if not terminal:
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
        return done.returncode, done.stderr
    primary, secondary = pty.openpty()
    # A real terminal has a size; a fresh pseudo-terminal says 0x0.
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    process = subprocess.Popen(command, cwd=ROOT, stdout=secondary, stderr=secondary)
    os.close(secondary)
    chunks = []
    while True:
        try:
            chunk = os.read(primary, 4096)
        except OSError:  # the terminal closes when the process ends
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(primary)
    return process.wait(timeout=120), b"".join(chunks).decode(errors="replace")


@pytest.mark.slow
def test_plain_log_lines_when_not_on_a_terminal(config: Path) -> None:
    code, stderr = _check(config, terminal=False)
    assert code == 0
    assert "cms: 17 documents to fetch" in stderr
    assert "cms: 17/17 documents (100 %)" in stderr
    assert "\r" not in stderr  # no bar redrawing in a log file


@pytest.mark.slow
def test_a_bar_on_a_terminal(config: Path) -> None:
    code, screen = _check(config, terminal=True)
    assert code == 0
    assert re.search(r"cms: +\d+%\|.*\| \d+/17 \[", screen), screen  # tqdm's bar, redrawn
    assert "documents to fetch" not in screen
    assert "cms: success (baseline)" in screen


def test_log_progress_reports_each_tenth_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="policy_monitor.progress")
    progress = LogProgress("src", every_seconds=3600)
    progress.start(100)
    for _ in range(100):
        progress.advance()
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0] == "src: 100 documents to fetch"
    assert len(lines) == 11 and lines[-1] == "src: 100/100 documents (100 %)"
