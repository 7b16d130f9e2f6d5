"""The gateway's own database connection (camera history, its runs), used from one worker thread only.

Writes such as a camera's transition come from the event loop by the thousand in a bad minute; each would wait on
the disk there. They are queued, in order, to this connection's single thread instead, and their failures are
kept for `/healthz` (storage unwritable is a failing gateway) rather than raised into the poller.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from gateway.domain.errors import StorageError
from gateway.services.storage import connect, open_database

logger = logging.getLogger(__name__)

T = TypeVar("T")


class Database:
    def __init__(self, conn: sqlite3.Connection, path: Path | str) -> None:
        self._conn = conn
        self.path = str(path)
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="database")
        self._worker_ident = self._worker.submit(threading.get_ident).result()
        self._local = threading.local()
        self._others: list[sqlite3.Connection] = []
        self._others_lock = threading.Lock()
        self.failure: str | None = None  # the last write's error, None once a write works again
        self.failed_since: float | None = None

    @property
    def conn(self) -> sqlite3.Connection:
        """A connection of the calling thread's own, for work done in other threads (uptime, patrol results,
        acknowledgements). One connection is never used by two threads: CPython's sqlite3 takes SQLite's
        connection mutex for some calls while holding the GIL and releases the GIL for others, so two threads
        on one connection can deadlock each other and the event loop with them (seen in a 1,000-camera test)."""
        if threading.get_ident() == self._worker_ident:
            return self._conn
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(self.path, synchronous="NORMAL")
            self._local.conn = conn
            with self._others_lock:
                self._others.append(conn)
        return conn

    @classmethod
    async def open(cls, path: Path | str) -> Database:
        """Open and migrate off the loop; StorageError names the file when it cannot be used."""
        try:
            conn = await asyncio.to_thread(open_database, path)
        except (sqlite3.Error, OSError) as exc:
            raise StorageError(f"cannot open the database {path}: {exc}") from exc
        return cls(conn, path)

    async def run(self, work: Callable[..., T], *args: Any) -> T:
        """`work(conn, *args)` on the database thread; its result, or its exception."""
        return await asyncio.wrap_future(self._worker.submit(work, self._conn, *args))

    def write(self, work: Callable[..., object], *args: Any) -> None:
        """Queue `work(conn, *args)` from synchronous code on the loop; order is kept, errors are kept for health."""
        self._worker.submit(self._noting(work), *args).add_done_callback(_never_raises)

    async def write_now(self, work: Callable[..., object], *args: Any) -> bool:
        """Run a write on the database thread and say whether it worked (the health probe)."""
        return bool(await asyncio.wrap_future(self._worker.submit(self._noting(work), *args)))

    def _noting(self, work: Callable[..., object]) -> Callable[..., bool]:
        def noted(*args: Any) -> bool:
            try:
                work(self._conn, *args)
            except sqlite3.Error as exc:
                if self.failure is None:
                    self.failed_since = time.time()
                    logger.error("storage: cannot write to %s: %s", self.path, exc)
                self.failure = f"cannot write to {self.path}: {exc}"
                return False
            if self.failure is not None:
                logger.warning("storage: %s is writable again", self.path)
            self.failure = self.failed_since = None
            return True

        return noted

    def close(self) -> None:
        self._worker.shutdown(wait=True)
        self._conn.close()
        with self._others_lock:
            for conn in self._others:
                conn.close()
            self._others.clear()


def _never_raises(future: Future[bool]) -> None:
    if future.exception() is not None:  # _noting catches sqlite errors; anything else is a bug worth a traceback
        logger.error("storage: a queued write failed", exc_info=future.exception())
