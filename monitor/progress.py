"""Progress of long manual runs: a bar on a terminal, plain log lines otherwise."""

from __future__ import annotations

import logging
import time
from typing import IO, Protocol

log = logging.getLogger("policy_monitor.progress")


class Progress(Protocol):
    def start(self, total: int) -> None: ...

    def advance(self, count: int = 1) -> None: ...

    def close(self) -> None: ...


class BarProgress:
    """A tqdm bar on the terminal `stream`."""

    def __init__(self, label: str, stream: IO[str]) -> None:
        self.label = label
        self.stream = stream
        self._bar: object | None = None

    def start(self, total: int) -> None:
        from tqdm import tqdm  # only needed on a terminal

        self._bar = tqdm(
            total=total,
            desc=self.label,
            unit="doc",
            file=self.stream,
            leave=False,
            dynamic_ncols=True,
        )

    def advance(self, count: int = 1) -> None:
        if self._bar is not None:
            self._bar.update(count)  # type: ignore[attr-defined]

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()  # type: ignore[attr-defined]
            self._bar = None


class LogProgress:
    """One log line per 10 % (and at least every `every_seconds`), for logs and pipes."""

    def __init__(self, label: str, *, every_seconds: float = 30.0) -> None:
        self.label = label
        self.every_seconds = every_seconds
        self.total = 0
        self.done = 0
        self._next_share = 0.1
        self._last = time.monotonic()

    def start(self, total: int) -> None:
        self.total, self.done = total, 0
        if total:
            log.info("%s: %d documents to fetch", self.label, total)

    def advance(self, count: int = 1) -> None:
        self.done += count
        now = time.monotonic()
        share = self.done / self.total if self.total else 1.0
        if share >= self._next_share or now - self._last >= self.every_seconds:
            log.info(
                "%s: %d/%d documents (%.0f %%)", self.label, self.done, self.total, 100 * share
            )
            self._last = now
            while self._next_share <= share:
                self._next_share += 0.1

    def close(self) -> None:
        pass


def progress_for(label: str, stream: IO[str]) -> Progress:
    return BarProgress(label, stream) if stream.isatty() else LogProgress(label)
