"""`policy-monitor` and the workers' fork server end without tearing their interpreters down
(`monitor.cli.main.console_main`, `monitor.pipeline.forkserver_exit`), and lose nothing by it:
the output is all there, the exit status is the command's, exit handlers run, and a thread
still alive is waited for."""

from __future__ import annotations

import multiprocessing
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

from monitor.pipeline import forkserver_exit
from monitor.pipeline.workers import EXIT_MODULE, start_workers_early, worker_context

ROOT = Path(__file__).resolve().parents[1]

# A module-level object whose finaliser writes a marker: it runs when the interpreter is torn
# down (a normal exit), not when the process leaves with os._exit.
_SENTINEL = """
import sys
class _Teardown:
    def __del__(self):
        sys.stderr.write("torn-down\\n")
_teardown = _Teardown()
"""


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120
    )


def test_console_main_keeps_all_output_the_status_and_the_exit_handlers() -> None:
    result = _run(
        _SENTINEL
        + """
import atexit
import monitor.cli.main
cli = sys.modules["monitor.cli.main"]  # the package exports a function of that name
atexit.register(lambda: sys.stderr.write("handler-ran\\n"))
def fake_main(argv=None):
    sys.stdout.write("x" * 300_000 + "\\n")  # more than a pipe holds
    return 3
cli.main = fake_main
cli.console_main()
"""
    )
    assert result.returncode == 3
    assert result.stdout == "x" * 300_000 + "\n"
    assert "handler-ran" in result.stderr
    assert "torn-down" not in result.stderr  # it left without tearing down


def test_console_main_waits_for_a_live_thread() -> None:
    result = _run(
        _SENTINEL
        + """
import threading, time
import monitor.cli.main
cli = sys.modules["monitor.cli.main"]  # the package exports a function of that name
def late():
    time.sleep(0.3)
    sys.stdout.write("thread-finished\\n")
def fake_main(argv=None):
    threading.Thread(target=late).start()
    return 0
cli.main = fake_main
cli.console_main()
"""
    )
    assert result.returncode == 0
    assert result.stdout == "thread-finished\n"
    assert "torn-down" in result.stderr  # the normal exit, which joins the thread


def test_console_main_is_the_installed_command() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert 'policy-monitor = "monitor.cli:console_main"' in pyproject


def test_the_quick_exit_is_refused_outside_the_fork_server() -> None:
    assert not forkserver_exit.in_fork_server()
    assert forkserver_exit.install() is False
    assert forkserver_exit.INSTALLED is False
    result = _run(_SENTINEL + "import monitor.pipeline.forkserver_exit as m\nprint(m.install())")
    assert result.stdout.strip() == "False"  # a plain `python -c` is not a fork server
    assert "torn-down" in result.stderr


def test_the_quick_exit_leaves_with_output_flushed() -> None:
    # What the fork server's exit handler does, registered in a plain process.
    result = _run(
        _SENTINEL
        + """
import atexit
import monitor.pipeline.forkserver_exit as m
assert not m.INSTALLED
atexit.register(m._exit_now)
sys.stdout.write("flushed")
"""
    )
    assert result.returncode == 0
    assert result.stdout == "flushed"
    assert "torn-down" not in result.stderr


def _in_worker(_: object) -> tuple[bool, bool]:
    return EXIT_MODULE in sys.modules, forkserver_exit.INSTALLED


@pytest.mark.skipif(
    "forkserver" not in multiprocessing.get_all_start_methods(), reason="no fork server here"
)
def test_the_fork_server_preloads_the_quick_exit() -> None:
    start_workers_early()
    with ProcessPoolExecutor(max_workers=1, mp_context=worker_context()) as pool:
        loaded, installed = pool.submit(_in_worker, None).result(timeout=120)
    # A worker is a fork of the server: what it has loaded and registered, the server had.
    assert loaded
    assert installed
