"""The batcher gathers while the previous batch is written (group commit), in order, and waits
only when what gathered reaches its limit (`monitor.pipeline.batching`)."""

from __future__ import annotations

import asyncio
import threading

from test_batch_publish import DOCUMENTS, _content, _context, stores  # noqa: F401

from diffing.cms import cms_criteria
from diffing.model import Criteria, RawDocument
from monitor.pipeline.batching import Batcher
from monitor.pipeline.publish import publish
from monitor.store.core import Store


def test_documents_gather_while_a_batch_is_written_and_wait_at_the_limit(
    stores: tuple[Store, Store],  # noqa: F811
) -> None:
    batched, alone = stores
    gate = threading.Event()  # the first batch's extraction waits for it: "still writing"
    extracted: list[str] = []

    def extract(raw: RawDocument) -> Criteria:
        gate.wait(timeout=30)
        extracted.append(f"{raw.key}/{raw.source_version}")
        return cms_criteria(raw.content)

    async def scenario() -> tuple[list[list[str]], list[str], int]:
        results: list[list[str]] = []
        async with Batcher(
            batched,
            _context(batched, baseline=False, extract=extract),
            size=1,
            max_size=3,
            background=True,
        ) as batcher:
            for raw, listed in DOCUMENTS[:3]:  # the first is written, the next two gather
                done = await batcher.add(raw, listed)
                results.append([f"{r.key}/{r.source_version}" for r, _res, _e in done])
            gathered = [f"{p.raw.key}/{p.raw.source_version}" for p in batcher.pending]
            waiting = len(extracted)
            # The fourth reaches the limit: the batcher waits for the first batch to be written.
            asyncio.get_running_loop().call_later(0.2, gate.set)
            done = await batcher.add(*DOCUMENTS[3])
            results.append([f"{r.key}/{r.source_version}" for r, _res, _e in done])
            results.append([f"{r.key}/{r.source_version}" for r, _res, _e in await batcher.flush()])
        return results, gathered, waiting

    results, gathered, waiting = asyncio.run(scenario())
    assert gathered == ["L2/1", "L2/2"]  # gathered without waiting for the first batch
    assert waiting == 0  # the first batch was still being written meanwhile
    assert results == [[], [], [], ["L1/1"], ["L2/1", "L2/2", "L3/4"]]
    assert extracted == ["L1/1", "L2/1", "L2/2", "L3/4"]  # one batch at a time, in order
    one_ctx = _context(alone, baseline=False)
    for raw, listed in DOCUMENTS:
        publish(alone, one_ctx, raw, listed)
    assert _content(batched) == _content(alone)
