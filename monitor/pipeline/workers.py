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
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from concurrent.futures import ProcessPoolExecutor

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


# How long `end_pool` waits for a pool's manager thread. Its workers were sent SIGTERM, so the
# thread only reaps them and closes the pool's pipes (milliseconds); the bound is for a worker
# the kernel cannot end at once (stuck in uninterruptible I/O).
POOL_END_SECONDS = 10.0


def end_pool(pool: ProcessPoolExecutor, *, wait: float = POOL_END_SECONDS) -> None:
    """End `pool` now: terminate its workers (a running call cannot be cancelled, and a loaded
    worker takes seconds to wind down) and wait, at most `wait` seconds, until its manager
    thread has finished with the pool's pipes.

    Whoever makes a new pool next must not race that thread. Without the wait, on CPython 3.11
    under load, the old pool's thread closed a file descriptor the new pool's queue had just
    been given: the new worker's fork failed (`OSError: [Errno 9] Bad file descriptor` in
    `multiprocessing.reduction.sendfds`), the fork server died of it, and the run crashed
    (`tests/test_extraction_isolation.py`: 2 runs in 28 with the cores busy, none in 90 with
    the wait; a plain `ProcessPoolExecutor` replacing its pool 150 times under load failed in
    one of three tries without the wait, in none of three with it)."""
    manager = getattr(pool, "_executor_manager_thread", None)
    for process in list((getattr(pool, "_processes", None) or {}).values()):
        process.terminate()
    pool.shutdown(wait=False, cancel_futures=True)
    if manager is not None:
        manager.join(wait)
