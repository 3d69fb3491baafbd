"""How extraction workers start: light to import, so the CLI can start them first.

The extraction workers are forked by a fork server that has loaded `monitor.pipeline.warm` (the
parsers' imports, the extractor's compiled vocabularies): a worker starts warm in a few
milliseconds instead of ~0.7 s of CPU from a bare interpreter. Where there is no fork server
(not POSIX), workers are spawned as before.

This module imports only `multiprocessing`: `policy-monitor check` starts the fork server
before it imports the pipeline (~0.4 s), so the server's warm-up runs on the other core while
this process loads, opens the store and re-checks the source, and a changed document finds
its worker ready.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.context

WARM_MODULE = "monitor.pipeline.warm"
# Loaded after the warm-up: the server then ends without tearing its interpreter down.
EXIT_MODULE = "monitor.pipeline.forkserver_exit"


def worker_context() -> multiprocessing.context.BaseContext:
    """The start method of extraction workers: `forkserver` preloading `WARM_MODULE` and
    `EXIT_MODULE`, or `spawn` where the platform has no fork server."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([WARM_MODULE, EXIT_MODULE])
    return context


def start_workers_early() -> None:
    """Start the fork server now (it warms in its own process while the run lists the source),
    so that the first worker the run needs is ready when the first document is. Does nothing
    where workers are spawned, or when the server already runs (the daemon's later runs)."""
    context = worker_context()
    if isinstance(context, multiprocessing.context.ForkServerContext):
        from multiprocessing import forkserver

        forkserver.ensure_running()
