"""The last sequence number accepted from each signed button, on disk, so a replay is refused after a restart too.

Written from the commit thread before the press itself is stored: if the gateway dies in between, the broker sends
the same message again with the same seq and id, which `adapters.mqtt.signed.verify` lets through once more.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

from adapters.mqtt.signed import LastAccepted
from gateway.domain.errors import StorageError
from gateway.services.storage import connect, migrate


class ButtonSequences:
    def __init__(self, path: Path | str, *, clock: Callable[[], float] = time.time) -> None:
        # NORMAL, not FULL: no fsync of its own. The press that follows is committed by the outbox with FULL into
        # the same WAL file, and that fsync makes this earlier frame durable too; one fsync per press, not two.
        self._conn = connect(path, synchronous="NORMAL")
        migrate(self._conn)
        self._clock = clock
        self._lock = threading.Lock()
        try:
            rows = self._conn.execute("SELECT button_id, last_seq, event_id FROM button_sequences").fetchall()
        except sqlite3.Error as exc:
            raise StorageError(f"cannot read button sequences: {exc}") from exc
        self._last = {str(b): LastAccepted(int(seq), str(event)) for b, seq, event in rows}

    def last(self, button_id: str) -> LastAccepted | None:
        return self._last.get(button_id)

    def accept(self, button_id: str, seq: int, event_id: str) -> None:
        with self._lock:
            try:
                self._conn.execute(
                    "INSERT INTO button_sequences (button_id, last_seq, event_id, accepted_at) VALUES (?, ?, ?, ?)"
                    " ON CONFLICT (button_id) DO UPDATE SET last_seq = excluded.last_seq,"
                    " event_id = excluded.event_id, accepted_at = excluded.accepted_at",
                    (button_id, seq, event_id, self._clock()),
                )
            except sqlite3.Error as exc:
                raise StorageError(f"{button_id}: cannot record sequence {seq}: {exc}") from exc
            self._last[button_id] = LastAccepted(seq, event_id)

    def close(self) -> None:
        self._conn.close()
