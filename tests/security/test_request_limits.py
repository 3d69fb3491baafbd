"""Bounded API input (issue 16, finding 4): a huge body or header sent without a key is
refused (413, 431) before the key is checked, and the serving process's peak memory barely
moves. Measured on a real `serve_forever` process: its VmHWM (peak resident set) before and
after the probe."""

from __future__ import annotations

import os
import select
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
MiB = 1024 * 1024
CHUNK = 256 * 1024


def _peak_rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, int, int]]:
    if not Path("/proc/self/status").exists():
        pytest.skip("needs /proc to read the server's memory")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [sys.executable, str(HERE / "api_process.py"), f"sqlite:///{tmp_path / 'm.db'}"],
        stdout=subprocess.PIPE,
        env=env,
        text=True,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:"), url
        yield "127.0.0.1", int(url.rsplit(":", 1)[1]), process.pid
    finally:
        process.terminate()
        process.wait(30)
        if process.stdout is not None:
            process.stdout.close()


def _send_until_answered(host: str, port: int, head: bytes, filler: bytes, total: int) -> bytes:
    """Send `head`, then `filler` up to `total` bytes, stopping as soon as the server answers
    (or closes); returns what it answered."""
    with socket.create_connection((host, port), timeout=30) as conn:
        conn.sendall(head)
        sent = 0
        try:
            while sent < total:
                readable, _, _ = select.select([conn], [], [], 0)
                if readable:
                    break
                conn.sendall(filler)
                sent += len(filler)
        except (BrokenPipeError, ConnectionResetError):
            pass
        answer = b""
        try:
            while chunk := conn.recv(65536):
                answer += chunk
                if b"\r\n\r\n" in answer:
                    break
        except (ConnectionResetError, TimeoutError):
            pass
        return answer


def _status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else 0


def test_a_100_mb_body_without_a_key_is_413_and_costs_no_memory(
    served: tuple[str, int, int],
) -> None:
    host, port, pid = served
    before = _peak_rss(pid)
    size = 100 * MiB
    head = (
        f"POST /changes/1/review HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {size}\r\n\r\n"
    ).encode()
    answer = _send_until_answered(host, port, head, b"x" * CHUNK, size)
    growth = _peak_rss(pid) - before
    print(f"100 MB body: status {_status(answer)}, peak RSS growth {growth / MiB:.1f} MiB")
    assert _status(answer) == 413
    assert growth < 20 * MiB


def test_a_chunked_body_over_the_limit_is_413(served: tuple[str, int, int]) -> None:
    host, port, pid = served
    before = _peak_rss(pid)
    head = (
        f"POST /changes/1/review HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
    ).encode()
    chunk = b"%x\r\n" % CHUNK + b"x" * CHUNK + b"\r\n"
    answer = _send_until_answered(host, port, head, chunk, 100 * MiB)
    growth = _peak_rss(pid) - before
    print(f"chunked body: status {_status(answer)}, peak RSS growth {growth / MiB:.1f} MiB")
    assert _status(answer) == 413
    assert growth < 20 * MiB


def test_a_50_mb_header_without_a_key_is_431_and_costs_no_memory(
    served: tuple[str, int, int],
) -> None:
    host, port, pid = served
    before = _peak_rss(pid)
    head = f"GET /changes HTTP/1.1\r\nHost: {host}\r\nX-API-Key: ".encode()
    answer = _send_until_answered(host, port, head, b"k" * CHUNK, 50 * MiB)
    growth = _peak_rss(pid) - before
    print(f"50 MB header: status {_status(answer)}, peak RSS growth {growth / MiB:.1f} MiB")
    assert _status(answer) == 431
    assert growth < 20 * MiB


def test_many_headers_are_431_too(served: tuple[str, int, int]) -> None:
    host, port, _pid = served
    head = f"GET /changes HTTP/1.1\r\nHost: {host}\r\n".encode()
    filler = b"".join(b"X-Filler-%d: %s\r\n" % (i, b"v" * 100) for i in range(2000))
    answer = _send_until_answered(host, port, head, filler, 2 * len(filler))
    assert _status(answer) == 431


def test_a_body_in_the_same_read_as_the_head_does_not_count_as_header(
    served: tuple[str, int, int],
) -> None:
    host, port, _pid = served
    body = b'{"reviewer": "' + b"r" * (200 * 1024) + b'"}'
    head = (
        f"POST /changes/1/review HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    answer = _send_until_answered(host, port, head + body, b"", 0)
    assert _status(answer) == 401  # under both limits: the key check answers
