"""One run per source at a time, across threads and processes: a named, try-only lock per source.

PostgreSQL: a session-level advisory lock, ``pg_try_advisory_lock(k)`` where ``k`` is a stable
64-bit hash (BLAKE2b) of ``policy-monitor:source:<name>``, taken on a dedicated connection that is
held for the whole run and closed afterwards. The lock belongs to the server session, so it dies
with the connection: a process killed at any moment (``kill -9`` included) never leaves a stale
lock behind, and there is no lease length to tune against run length or clock skew. Leases in a
table would need expiry and renewal to survive a dead holder; advisory locks get that from the
server for free. A vanished *host* is noticed when the server's TCP keepalive gives up on the
connection, which this module shortens to about two minutes on the lock connection.

SQLite: ``fcntl.flock`` on ``<database file>.<source>.lock`` next to the database. SQLite is one
host's file, so a kernel lock is exactly as wide as needed and, like the advisory lock, is released
by the kernel when its holder dies. The lock file is never deleted: unlinking it while another
process holds or waits on the old inode would let a third process lock a new file and run too.
An in-memory database cannot be shared between processes, so it gets a lock within the process.

Locks are tried, never waited for: a taken lock means the source is running elsewhere, and the
caller skips this firing instead of queueing a second run behind it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType

from sqlalchemy import Engine, create_engine, make_url, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from monitor.errors import StoreError

LOCK_NAMESPACE = "policy-monitor:source:"


def lock_key(source: str, schema: str | None = None) -> int:
    """The advisory lock key of `source`: a signed 64-bit integer, the same in every process
    (Python's own ``hash()`` is salted per process, so it cannot be used).

    An advisory lock belongs to the whole database, so the key of a store kept in a schema
    other than ``public`` (a ``search_path`` in the URL) names that schema too: two stores in
    one database do not hold each other's sources. In ``public`` it is the source's alone, as
    it always was (an instance of an earlier release still meets this one's locks)."""
    scoped = source if schema in (None, "public") else f"{schema}.{source}"
    digest = hashlib.blake2b((LOCK_NAMESPACE + scoped).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class SourceLease:
    """A held source lock; `release` (or leaving the ``with`` block) gives it up.

    `still_held` answers whether the lock is still ours. Kernel file locks cannot be lost; an
    advisory lock is lost with its connection (a server restart, a dropped network path), after
    which another instance may take the source. A run asks between documents and stops.
    """

    def __init__(
        self,
        source: str,
        release: Callable[[], None],
        *,
        check: Callable[[], bool] | None = None,
        check_every_seconds: float = 5.0,
    ) -> None:
        self.source = source
        self._release: Callable[[], None] | None = release
        self._check = check
        self._check_every = check_every_seconds
        self._checked_at = time.monotonic()
        self._lost = False

    def still_held(self) -> bool:
        """False once the lock is known lost; asks the lock's owner at most every few seconds."""
        if self._release is None or self._lost:
            return False
        if self._check is None or time.monotonic() - self._checked_at < self._check_every:
            return True
        self._checked_at = time.monotonic()
        self._lost = not self._check()
        return not self._lost

    @property
    def held(self) -> bool:
        return self._release is not None

    def release(self) -> None:
        release, self._release = self._release, None
        if release is not None:
            release()

    def __enter__(self) -> SourceLease:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


class SourceLocks(ABC):
    """Where the locks of one database live."""

    @abstractmethod
    def try_acquire(self, source: str) -> SourceLease | None:
        """The lease, or None when another run of `source` holds the lock."""

    @contextlib.contextmanager
    def lease(self, source: str) -> Iterator[SourceLease | None]:
        """``with locks.lease(name) as lease:`` -- None when someone else has the lock."""
        lease = self.try_acquire(source)
        try:
            yield lease
        finally:
            if lease is not None:
                lease.release()

    @contextlib.contextmanager
    def holding(self, source: str) -> Iterator[bool]:
        """``with locks.holding(name) as held:`` -- held is False when someone else has it."""
        lease = self.try_acquire(source)
        try:
            yield lease is not None
        finally:
            if lease is not None:
                lease.release()

    def close(self) -> None:  # noqa: B027 - most lock kinds own nothing else
        """Release what this object owns besides the leases (held leases stay held)."""


class PostgresLocks(SourceLocks):
    # Server-side keepalive on the lock connection: a holder whose host vanished (no FIN, no
    # RST) is dropped, and its lock freed, after about 60 + 3 * 20 s instead of the OS default
    # of over two hours. Ignored on Unix-socket connections, where it cannot happen.
    KEEPALIVE = (
        "SET tcp_keepalives_idle = 60",
        "SET tcp_keepalives_interval = 20",
        "SET tcp_keepalives_count = 3",
    )

    HELD = (
        "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted "
        "AND pid = pg_backend_pid() AND ((classid::bigint << 32) | objid::bigint) = :key)"
    )

    def __init__(self, url: str | URL) -> None:
        # NullPool: closing a lock connection really closes the session, which frees the lock
        # even if the explicit unlock was never reached.
        self._engine: Engine = create_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT")

    def try_acquire(self, source: str) -> SourceLease | None:
        try:
            connection = self._engine.connect()
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot open a lock connection for {source!r}: {exc}") from exc
        try:
            for statement in self.KEEPALIVE:
                connection.execute(text(statement))
            key = lock_key(source, connection.scalar(text("SELECT current_schema()")))
            got = connection.scalar(text("SELECT pg_try_advisory_lock(:key)"), {"key": key})
        except SQLAlchemyError as exc:
            connection.close()
            raise StoreError(f"cannot take the lock of source {source!r}: {exc}") from exc
        if not got:
            connection.close()
            return None

        def release() -> None:
            try:
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
            except SQLAlchemyError:
                pass  # the connection is gone, and the lock with it
            finally:
                connection.close()

        def check() -> bool:
            # The lock lives exactly as long as this session: if the session answers and still
            # lists the lock, it is ours.
            try:
                held = connection.scalar(text(self.HELD), {"key": key})
            except SQLAlchemyError:
                return False
            return bool(held)

        return SourceLease(source, release, check=check)

    def close(self) -> None:
        self._engine.dispose()


class FileLocks(SourceLocks):
    def __init__(self, database_file: Path) -> None:
        self.database_file = database_file

    def path_of(self, source: str) -> Path:
        # Source names are [A-Za-z0-9_.-]{1,100} (checked by the config): a plain file name.
        return self.database_file.with_name(f"{self.database_file.name}.{source}.lock")

    def try_acquire(self, source: str) -> SourceLease | None:
        path = self.path_of(source)
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise StoreError(f"cannot open lock file {path}: {exc.strerror or exc}") from exc
        try:
            # flock locks belong to the open file description: a second open() of the same file,
            # in this process or another, is refused as well.
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        except OSError as exc:
            os.close(fd)
            raise StoreError(f"cannot lock {path}: {exc.strerror or exc}") from exc
        return SourceLease(source, lambda: os.close(fd))  # closing the file unlocks it


class ProcessLocks(SourceLocks):
    """For an in-memory SQLite database, which only this process can see."""

    def __init__(self) -> None:
        self._held: set[str] = set()
        self._guard = threading.Lock()

    def try_acquire(self, source: str) -> SourceLease | None:
        with self._guard:
            if source in self._held:
                return None
            self._held.add(source)

        def release() -> None:
            with self._guard:
                self._held.discard(source)

        return SourceLease(source, release)


def source_locks(database_url: str) -> SourceLocks:
    """The lock kind that fits the database at `database_url`."""
    url = make_url(database_url)
    if url.get_backend_name() == "postgresql":
        return PostgresLocks(url)
    if url.get_backend_name() == "sqlite":
        database = url.database or ""
        if database in ("", ":memory:") or database.startswith("file:"):
            return ProcessLocks()
        return FileLocks(Path(database).absolute())
    raise StoreError(f"no source locks for database {url.render_as_string()!r}")
