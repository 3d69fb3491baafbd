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


def in_fork_server() -> bool:
    """Whether this process is a `multiprocessing` fork server (started as ``python -c
    'from multiprocessing.forkserver import main; main(...)'``)."""
    main = sys.modules.get("__main__")
    return (
        sys.argv[:1] == ["-c"]
        and "multiprocessing.forkserver" in sys.modules
        and main is not None
        and getattr(main, "__file__", None) is None
    )


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


install()
