"""Preloaded by the extraction workers' fork server, after `monitor.pipeline.warm`: the server
ends without tearing its interpreter down.

The fork server lives as long as the process that started it. When that process ends, the
server reads end-of-file on its "alive" pipe and raises `SystemExit`; the interpreter then
frees, module by module, everything the warm-up loaded (trafilatura, lxml, pdfplumber, the
compiled vocabularies): 0.1-0.2 s of CPU at the end of every `policy-monitor check`, during
which a caller reading the command's output sees no end-of-file (the server holds the same
stdout and stderr). The server holds nothing that needs finalising: no files of its own, no
database, no buffered output once stdio is flushed. So, registered last, this exit handler
runs first, flushes stdio, runs `multiprocessing`'s own exit handler, and leaves with
`os._exit`.

Only the fork server may import this module: imported anywhere else, it would end that
process the same way at its exit, skipping every exit handler registered before it (and
losing a non-zero exit status). `install` refuses to act outside the fork server.
"""

from __future__ import annotations

import atexit
import os
import sys
import types


def in_fork_server() -> bool:
    """Whether this module is being preloaded by a `multiprocessing` fork server: its import
    runs inside `multiprocessing.forkserver.main` (its preload loop). Nothing else about the
    process tells it apart (a pytest-xdist worker is a ``python -c`` process too, and may have
    started a fork server of its own)."""
    forkserver = sys.modules.get("multiprocessing.forkserver")
    if forkserver is None:
        return False
    server_main = forkserver.main.__code__
    frame: types.FrameType | None = sys._getframe(1)
    while frame is not None:
        if frame.f_code is server_main:
            return True
        frame = frame.f_back
    return False


def _exit_now() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            pass
    try:
        from multiprocessing import util

        util._exit_function()  # type: ignore[attr-defined]
    finally:
        os._exit(0)


def install() -> bool:
    """Register the quick exit when this process is the fork server; True if registered."""
    if not in_fork_server():
        return False
    atexit.register(_exit_now)
    return True


# Whether the quick exit is registered in this process (True in the fork server, and so in
# the workers it forks, which leave with os._exit of their own and never run it).
INSTALLED = install()
