"""Several centers on one PostgreSQL: each console sees every alarm and ack, whichever instance took it.

An instance that stores alarms (or an acknowledgement) sends `NOTIFY huxiao_center` in the same transaction, so
the notice goes out only once the rows are committed; every other instance LISTENs on a connection of its own (in
a thread: psycopg's wait for notices blocks), reads those rows and puts them on its own consoles' feed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Callable, Coroutine
from typing import Any

from gateway.domain.errors import GatewayError

logger = logging.getLogger(__name__)

CHANNEL = "huxiao_center"
# The listening thread looks up from its wait this often to see whether it should stop.
STOP_CHECK_S = 0.5
# After the listening connection fails it is opened again after this pause.
RECONNECT_S = 2.0


# PostgreSQL takes payloads up to 8,000 bytes; rows are packed into notices below this.
MAX_PAYLOAD = 7500


def notice(instance: str, kind: str, items: list[Any]) -> str:
    """The payload: `<instance>|<kind>|<JSON list>`: alarm rows themselves (so the other instances show them
    without reading the database), or ids for acks."""
    return f"{instance}|{kind}|{json.dumps(items, ensure_ascii=False, separators=(',', ':'))}"


def notices(instance: str, kind: str, items: list[Any]) -> list[str]:
    """`items` packed into as few notices as fit (an item too big on its own goes alone; PostgreSQL refuses it,
    and that instance's consoles see it at their next reload)."""
    out: list[str] = []
    batch: list[Any] = []
    for item in items:
        if batch and len(notice(instance, kind, [*batch, item]).encode()) > MAX_PAYLOAD:
            out.append(notice(instance, kind, batch))
            batch = []
        batch.append(item)
    if batch:
        out.append(notice(instance, kind, batch))
    return out


def parse_notice(payload: str) -> tuple[str, str, list[Any]] | None:
    parts = payload.split("|", 2)
    if len(parts) != 3:
        return None
    try:
        items = json.loads(parts[2])
    except ValueError:
        return None
    return (parts[0], parts[1], items) if isinstance(items, list) else None


class CrossInstanceFeed:
    def __init__(
        self,
        connect: Callable[[], Any],
        instance: str,
        deliver: Callable[[str, list[Any]], Coroutine[Any, Any, None]],
    ) -> None:
        self._connect = connect
        self._instance = instance
        self._deliver = deliver
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._listening = threading.Event()

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._run, name="center-pg-listen", daemon=True)
        self._thread.start()
        await asyncio.to_thread(self._listening.wait, 10.0)

    async def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, 5.0)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn = self._connect()
            except Exception as exc:  # psycopg's OperationalError; the thread must outlive a database restart
                logger.warning("cross-instance feed: cannot connect: %s", exc)
                self._stop.wait(RECONNECT_S)
                continue
            try:
                conn.execute(f"LISTEN {CHANNEL}")
                self._listening.set()
                while not self._stop.is_set():
                    for item in conn.notifies(timeout=STOP_CHECK_S):
                        self._received(item.payload)
            except Exception as exc:  # a dropped connection: listen again on a new one
                logger.warning("cross-instance feed: %s", exc)
                self._stop.wait(RECONNECT_S)
            finally:
                conn.close()

    def _received(self, payload: str) -> None:
        parsed = parse_notice(payload)
        if parsed is None or parsed[0] == self._instance or self._loop is None:
            return
        _, kind, items = parsed
        future = asyncio.run_coroutine_threadsafe(self._deliver(kind, items), self._loop)
        try:
            future.result(10.0)
        except (GatewayError, TimeoutError) as exc:
            logger.warning("cross-instance feed: %s %d rows not shown: %s", kind, len(items), exc)
