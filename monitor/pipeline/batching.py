"""Publishing in batches: the fetched documents of a run wait here and are published several
per transaction (`monitor.pipeline.publish.publish_batch`).

A batch is published when it holds `size` documents or `max_bytes` of content, when its
oldest document has waited `max_wait` seconds (so a slow source still publishes as it goes),
and at the end of the run. While the previous batch is still being written (in the background),
the next one goes on gathering, up to `max_size` documents or `max_bytes`: when publishing is
slower than fetching, batches grow and there are fewer, larger transactions (on SQLite each
commit rewrites the index pages the batch touched; a full CMS baseline's half a million rule
rows took half the time in 400-document transactions that they took in 32-document ones).
A kill loses at most the batch being written: its listing memory is part of the same
transaction, so the next run fetches and publishes those versions again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from diffing.model import Criteria, RawDocument
from monitor.pipeline.publish import Pending, PublishContext, Published, publish_batch
from monitor.store.core import Store
from sources.base import ListedDocument

BATCH_SIZE = 32  # documents per publishing transaction, at least (unless the run waits or ends)
# The most that gather while the previous batch is written (group commit; see the docstring).
MAX_BATCH_SIZE = 256
# With extraction in worker processes (payer documents), fewer: each one's text waits in
# monitor.pipeline.verification's cache (32 texts) until its batch is published.
ISOLATED_BATCH_SIZE = 16
BATCH_BYTES = 16 * 1024 * 1024  # of fetched content waiting in memory
BATCH_WAIT_SECONDS = 1.0  # the longest a fetched document waits to be published

T = TypeVar("T")


class Batcher:
    """Fetched documents waiting to be published together.

    With `background`, a full batch is published in a thread of its own while the run goes on
    fetching (the database's C code and the HTTP client then overlap); one batch at a time,
    in order, so a document's versions are still published in the order they came."""

    def __init__(
        self,
        store: Store,
        ctx: PublishContext,
        *,
        size: int = BATCH_SIZE,
        max_size: int = MAX_BATCH_SIZE,
        max_bytes: int = BATCH_BYTES,
        max_wait: float = BATCH_WAIT_SECONDS,
        background: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.ctx = ctx
        self.size = max(1, size)
        self.max_size = max(self.size, max_size)
        self.max_bytes = max_bytes
        self.max_wait = max_wait
        self._clock = clock
        self.pending: list[Pending] = []
        self._bytes = 0
        self._since = 0.0
        self._thread = ThreadPoolExecutor(max_workers=1) if background else None
        self._running: asyncio.Future[list[Published]] | None = None

    async def __aenter__(self) -> Batcher:
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._running is not None:  # a run that ended abnormally: let the batch finish
            await asyncio.gather(self._running, return_exceptions=True)
            self._running = None
        if self._thread is not None:
            self._thread.shutdown(wait=True)

    async def add(
        self, raw: RawDocument, listed: ListedDocument, criteria: Criteria | str | None = None
    ) -> list[Published]:
        """Queue one document (with its criteria or extraction error from a worker, if any);
        the results of the batches finished meanwhile, if any."""
        if not self.pending:
            self._since = self._clock()
        self.pending.append(Pending(raw=raw, listed=listed, criteria=criteria))
        self._bytes += len(raw.content)
        if self._writing():  # gather while the previous batch is written, up to the limits
            if len(self.pending) < self.max_size and self._bytes < self.max_bytes:
                return []
            return await self.flush(wait=False)
        if len(self.pending) >= self.size or self._bytes >= self.max_bytes or self.overdue():
            return await self.flush(wait=False)
        return self._finished()

    def overdue(self) -> bool:
        """Waited long enough to be published, and nothing is being written meanwhile (what
        waits then is published as soon as the previous batch is written)."""
        return (
            bool(self.pending)
            and not self._writing()
            and self._clock() - self._since >= self.max_wait
        )

    def _writing(self) -> bool:
        return self._running is not None and not self._running.done()

    async def flush(self, *, wait: bool = True) -> list[Published]:
        """Publish what is waiting (one transaction). The results of every batch finished by
        now; with `wait` (the end of a run), of every batch, this one included."""
        done: list[Published] = []
        if self._running is not None and (wait or self.pending):
            done.extend(await self._running)  # one batch at a time, in order
            self._running = None
        if self.pending:
            items, self.pending, self._bytes = self.pending, [], 0
            if self._thread is None:
                done.extend(publish_batch(self.store, self.ctx, items))
            else:
                loop = asyncio.get_running_loop()
                self._running = loop.run_in_executor(
                    self._thread, publish_batch, self.store, self.ctx, items
                )
        if wait and self._running is not None:
            done.extend(await self._running)
            self._running = None
        return done + self._finished()

    def _finished(self) -> list[Published]:
        """The results of the batch in the thread, if it is done."""
        if self._running is None or not self._running.done():
            return []
        running, self._running = self._running, None
        return running.result()


async def ticking(items: AsyncIterator[T], seconds: float) -> AsyncGenerator[T | None]:
    """`items`, and None whenever `seconds` pass without one (a waiting batch can be published
    then). The wait does not cancel the pending `__anext__`: the source's generator is never
    interrupted mid-request by a tick."""
    pending: asyncio.Future[T] | None = None
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(anext(items))
            done, _ = await asyncio.wait({pending}, timeout=seconds)
            if not done:
                yield None
                continue
            future, pending = pending, None
            try:
                value = future.result()
            except StopAsyncIteration:
                return
            yield value
    finally:
        if pending is not None:
            pending.cancel()
            await asyncio.gather(pending, return_exceptions=True)
        aclose = getattr(items, "aclose", None)
        if aclose is not None:
            await aclose()
