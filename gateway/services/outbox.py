"""The durable outbox: every event to send upstream, and its delivery state per upstream.

An event is committed (WAL, fsync) before the button's message is acknowledged, so once a button has sent an
alarm it survives a crash of the gateway. Each event keeps one id and one body for every retry, so a platform
sees duplicates only as repeats of the same id.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gateway.domain.errors import StorageError
from gateway.domain.events import EVENT_TYPES, AlarmType, OutboxEvent
from gateway.services.storage import connect, migrate, write_error

logger = logging.getLogger(__name__)

ALARM_TYPES = tuple(EVENT_TYPES.values())


# A delivery mark: (state, attempts, delivered_at or next_attempt_at, last error, upstream, event seq).
_Mark = tuple[str, int, float, str | None, str, int]


@dataclass(frozen=True, slots=True)
class NewEvent:
    event_id: str
    event_type: str
    button_id: str | None
    button_event_id: str | None
    body_of: Callable[[int], bytes]


class Outbox:
    """Thread-safe: presses are stored from the MQTT thread, deliveries are marked from the event loop."""

    def __init__(self, path: Path | str, upstreams: list[str], *, clock: Callable[[], float] = time.time) -> None:
        self.upstreams = list(upstreams)
        self._clock = clock
        self._path = path
        # Two connections: the writer commits alarms with fsync (FULL); delivery bookkeeping needs no fsync of its
        # own (a delivery forgotten in a power cut is sent again, with the same id).
        self._writer = connect(path, synchronous="FULL")
        migrate(self._writer)
        self._books = connect(path, synchronous="NORMAL")
        self._write_lock = threading.Lock()
        self._books_lock = threading.Lock()
        # Delivery marks wait here for the next commit or flush, so the event loop never waits on the disk (or on
        # the writer's lock while it fsyncs an alarm) just to record that a platform said 200.
        self._marks: list[_Mark] = []
        self._marks_lock = threading.Lock()
        # The last write's error (disk full, read-only, I/O error), None once a write works again: for /healthz.
        self.failure: str | None = None

    def close(self) -> None:
        try:
            self.flush_marks()
        except StorageError:
            logger.exception("delivery marks not saved; those events will be sent again (same ids)")
        with self._write_lock, self._books_lock:
            self._writer.close()
            self._books.close()

    def store(
        self,
        event_id: str,
        event_type: str,
        button_id: str | None,
        button_event_id: str | None,
        body_of: Callable[[int], bytes],
    ) -> OutboxEvent | None:
        """Commit one event for every upstream; None if the button already sent this event (a duplicate)."""
        return self.store_many([NewEvent(event_id, event_type, button_id, button_event_id, body_of)])[0]

    def store_many(self, new: list[NewEvent]) -> list[OutboxEvent | None]:
        """Commit several events in one transaction (one fsync: a burst costs one disk flush per batch).

        None in the result marks a duplicate (the button already sent that event). `body_of(seq)` builds each body
        once its sequence number is known. Raises StorageError (disk full, I/O error) with nothing stored: the
        caller must then not acknowledge the messages, so the broker keeps them.
        """
        now = self._clock()
        out: list[OutboxEvent | None] = []
        with self._write_lock:
            conn = self._writer
            marks = self._take_marks()  # written in the same transaction: the alarm's fsync covers them too
            try:
                conn.execute("BEGIN IMMEDIATE")
                self._write_marks(conn, marks)
                for item in new:
                    cursor = conn.execute(
                        "INSERT OR IGNORE INTO events (id, type, button_id, button_event_id, created_at, body) "
                        "VALUES (?, ?, ?, ?, ?, '')",
                        (item.event_id, item.event_type, item.button_id, item.button_event_id, now),
                    )
                    if cursor.rowcount == 0:
                        out.append(None)
                        continue
                    seq = int(cursor.lastrowid or 0)
                    body = item.body_of(seq)
                    conn.execute("UPDATE events SET body = ? WHERE seq = ?", (body.decode(), seq))
                    conn.executemany(
                        "INSERT INTO deliveries (upstream, event_seq) VALUES (?, ?)",
                        [(u, seq) for u in self.upstreams],
                    )
                    out.append(
                        OutboxEvent(
                            seq, item.event_id, item.event_type, item.button_id, item.button_event_id, body, now
                        )
                    )
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                self._restore_marks(marks)
                said = write_error(exc, self._path)
                self.failure = f"cannot store alarms: {said}"
                raise StorageError(f"cannot store {len(new)} events: {said}") from exc
        self.failure = None
        return out

    def probe(self) -> bool:
        """After a failed write: can the outbox commit again? A real write of a page (a row put in and taken out in
        one committed transaction), with the same fsync as an alarm's. Clears `failure` when it works."""
        with self._write_lock:
            conn = self._writer
            try:
                conn.execute("BEGIN IMMEDIATE")
                conn.execute(
                    "INSERT INTO events (id, type, button_id, button_event_id, created_at, body) "
                    "VALUES ('~probe', 'probe', NULL, NULL, 0, '')"
                )
                conn.execute("DELETE FROM events WHERE id = '~probe'")
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                self.failure = f"cannot store alarms: {write_error(exc, self._path)}"
                return False
        self.failure = None
        return True

    def replace_body(self, seq: int, body: bytes) -> None:
        """Swap in the body with pictures before the first attempt (retries then carry the same one)."""
        with self._write_lock:
            self._writer.execute("UPDATE events SET body = ? WHERE seq = ?", (body.decode(), seq))

    def pending(self, upstream: str) -> list[tuple[OutboxEvent, int]]:
        """Events not yet delivered to `upstream`, oldest first, with the attempts made so far."""
        with self._books_lock:
            rows = self._books.execute(
                "SELECT e.seq, e.id, e.type, e.button_id, e.button_event_id, e.body, d.attempts, e.created_at "
                "FROM deliveries d JOIN events e ON e.seq = d.event_seq "
                "WHERE d.upstream = ? AND d.state = 'pending' ORDER BY e.seq",
                (upstream,),
            ).fetchall()
        return [(OutboxEvent(r[0], r[1], r[2], r[3], r[4], r[5].encode(), float(r[7])), int(r[6])) for r in rows]

    def mark_delivered(self, upstream: str, seq: int, attempts: int) -> None:
        """Note a delivery; written with the next commit or flush, never on the caller's (event loop) thread."""
        with self._marks_lock:
            self._marks.append(("delivered", attempts, self._clock(), None, upstream, seq))

    def mark_failed(self, upstream: str, seq: int, attempts: int, next_attempt_at: float, error: str) -> None:
        with self._marks_lock:
            self._marks.append(("pending", attempts, next_attempt_at, error[:500], upstream, seq))

    def flush_marks(self) -> int:
        """Write the delivery marks noted so far in one transaction (call from a thread); returns how many."""
        if not self._marks:
            return 0
        with self._write_lock:
            conn = self._writer
            marks = self._take_marks()
            try:
                conn.execute("BEGIN IMMEDIATE")
                self._write_marks(conn, marks)
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                self._restore_marks(marks)
                said = write_error(exc, self._path)
                self.failure = f"cannot record deliveries: {said}"
                raise StorageError(f"cannot record deliveries: {said}") from exc
        self.failure = None
        return len(marks)

    def _take_marks(self) -> list[_Mark]:
        with self._marks_lock:
            marks, self._marks = self._marks, []
        return marks

    def _restore_marks(self, marks: list[_Mark]) -> None:
        with self._marks_lock:
            self._marks[:0] = marks

    @staticmethod
    def _write_marks(conn: sqlite3.Connection, marks: list[_Mark]) -> None:
        """Inside the caller's transaction. A mark lost in a crash only means one more send under the same id."""
        delivered = [(a, at, u, seq) for state, a, at, _e, u, seq in marks if state == "delivered"]
        failed = [(a, at, e, u, seq) for state, a, at, e, u, seq in marks if state == "pending"]
        if failed:
            conn.executemany(
                "UPDATE deliveries SET attempts = ?, next_attempt_at = ?, last_error = ? "
                "WHERE upstream = ? AND event_seq = ? AND state = 'pending'",
                failed,
            )
        if delivered:
            conn.executemany(
                "UPDATE deliveries SET state = 'delivered', attempts = ?, delivered_at = ?, last_error = NULL "
                "WHERE upstream = ? AND event_seq = ?",
                delivered,
            )

    def counts(self) -> dict[str, dict[str, int]]:
        """Pending and delivered events per upstream (`huxiao outbox`)."""
        out = {u: {"pending": 0, "delivered": 0} for u in self.upstreams}
        with self._books_lock:
            for upstream, state, count in self._books.execute(
                "SELECT upstream, state, COUNT(*) FROM deliveries GROUP BY upstream, state"
            ):
                out.setdefault(upstream, {"pending": 0, "delivered": 0})[state] = int(count)
        return out

    def recent_alarms(self, limit: int) -> list[dict[str, Any]]:
        """The newest alarms with their delivery per upstream, as `GET /api/alarms` shows them."""
        marks = ",".join("?" for _ in ALARM_TYPES)
        with self._books_lock:
            events = self._books.execute(
                f"SELECT seq, id, button_id, type, created_at, button_event_id FROM events "
                f"WHERE type IN ({marks}) ORDER BY seq DESC LIMIT ?",
                (*ALARM_TYPES, limit),
            ).fetchall()
            seqs = [e[0] for e in events]
            deliveries: dict[int, list[dict[str, Any]]] = {s: [] for s in seqs}
            if seqs:
                for seq, upstream, state, attempts, delivered_at in self._books.execute(
                    f"SELECT event_seq, upstream, state, attempts, delivered_at FROM deliveries "
                    f"WHERE event_seq IN ({','.join('?' for _ in seqs)}) ORDER BY upstream",
                    seqs,
                ):
                    deliveries[seq].append(
                        {
                            "upstream": upstream,
                            "state": state,
                            "attempts": attempts,
                            "delivered_at": _iso(delivered_at) if delivered_at else None,
                        }
                    )
        return [
            {
                "id": event_id,
                "button": button_id,
                "type": event_type.rsplit(".", 1)[-1],
                "at": _iso(created_at),
                "button_event_id": button_event_id,
                "deliveries": deliveries[seq],
            }
            for seq, event_id, button_id, event_type, created_at, button_event_id in events
        ]

    def last_test_at(self) -> dict[str, float]:
        """When each button last sent a test alarm (for the 90-day test criterion)."""
        with self._books_lock:
            rows = self._books.execute(
                "SELECT button_id, MAX(created_at) FROM events WHERE type = ? GROUP BY button_id",
                (EVENT_TYPES[AlarmType.TEST],),
            ).fetchall()
        return {str(b): float(t) for b, t in rows}

    def seen_digest(self, button_id: str, digest: str, since: float) -> bool:
        """Whether a message with this payload digest was stored for the button since `since` (DUP redelivery)."""
        with self._books_lock:
            row = self._books.execute(
                "SELECT 1 FROM events WHERE button_id = ? AND button_event_id LIKE ? AND created_at >= ? LIMIT 1",
                (button_id, f"%-{digest}", since),
            ).fetchone()
        return row is not None

    def last_event_types(self, types: tuple[str, ...]) -> dict[str, str]:
        """Per button, the type of its latest stored event among `types` (e.g. its last availability)."""
        marks = ",".join("?" * len(types))
        with self._books_lock:
            rows = self._books.execute(
                f"SELECT button_id, type FROM events WHERE seq IN (SELECT MAX(seq) FROM events "
                f"WHERE type IN ({marks}) AND button_id IS NOT NULL GROUP BY button_id)",
                types,
            ).fetchall()
        return {str(button_id): str(event_type) for button_id, event_type in rows}


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
