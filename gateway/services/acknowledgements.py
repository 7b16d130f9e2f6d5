"""Operator acknowledgements from the command center, relayed to the buttons: `acknowledged`, once per alarm.

The center lists them in its answer to a status report (http) or in the retained `<topic>/<school>/acks` message
(mqtt), the whole list every time. Each new one is written to the `acknowledgements` table first and published on
the button's ack topic (with the same `alarm_id` as `received`/`delivered`: the button's own event id); the row's
`published_at` then records that it went out, so neither a repeat of the list nor a restart publishes it twice,
and one that could not go out (button broker away) goes out when the broker is back.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.domain.errors import StorageError
from gateway.domain.events import EVENT_TYPES
from gateway.services.storage import connect, migrate

logger = logging.getLogger(__name__)

# Acknowledgements that could not be published (button broker away) are tried again this often; the button
# listener reconnects within 5 s, so this keeps the LED at most a few seconds behind the broker's return.
RETRY_EVERY_S = 2.0
# Longest `by` kept: a name, not a document.
MAX_BY = 100

_ALARM_TYPES = tuple(EVENT_TYPES.values())


@dataclass(frozen=True, slots=True)
class Acknowledgement:
    button_event_id: str
    by: str
    at: str


@dataclass(frozen=True, slots=True)
class Hazard:
    """An open hazard (隐患) the center recorded for this school, as shown on the status page."""

    id: str
    text: str
    level: str
    at: str


@dataclass(frozen=True, slots=True)
class CenterAnswer:
    acks: tuple[Acknowledgement, ...]
    hazards: tuple[Hazard, ...] | None  # None: the answer said nothing about hazards (keep the last list)


def parse_answer(payload: bytes) -> CenterAnswer:
    """The center's answer: `[{button_event_id, by, at}]`, or `{acks: [...], hazards: [...]}`.

    Raises ValueError with the reason when it is neither; items that are not acknowledgements are skipped."""
    try:
        document = json.loads(payload) if payload.strip() else {}
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"the answer is not JSON: {exc}") from None
    hazards: tuple[Hazard, ...] | None = None
    if isinstance(document, list):
        items: Any = document
    elif isinstance(document, dict):
        items = document.get("acks", document.get("acknowledgements", []))
        if isinstance(document.get("hazards"), list):
            hazards = tuple(h for h in (_hazard(x) for x in document["hazards"]) if h is not None)
    else:
        raise ValueError("the answer is neither a list nor an object")
    if not isinstance(items, list):
        raise ValueError("`acks` is not a list")
    acks = []
    for item in items:
        if isinstance(item, dict) and isinstance(item.get("button_event_id"), str) and item["button_event_id"]:
            by = item.get("by")
            acks.append(
                Acknowledgement(item["button_event_id"], str(by)[:MAX_BY] if by else "", str(item.get("at", "")))
            )
    return CenterAnswer(tuple(acks), hazards)


def _hazard(item: object) -> Hazard | None:
    if not isinstance(item, dict):
        return None
    text = next((str(item[k]) for k in ("title", "text", "description", "kind") if item.get(k)), "")
    if not text:
        return None
    return Hazard(str(item.get("id", "")), text[:200], str(item.get("level", "")), str(item.get("at", "")))


class AckRelay:
    """Keeps the acknowledgements table and publishes each new one through `publish(button_id, alarm_id)`.

    `publish` returns False when it could not hand the message to the button broker (then it is tried again)."""

    def __init__(
        self,
        path: Path | str,
        publish: Callable[[str, str], bool],
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._conn = connect(path, synchronous="FULL")
        migrate(self._conn)
        self._lock = threading.Lock()
        self._publish = publish
        self._clock = clock
        self._inbox: asyncio.Queue[tuple[Acknowledgement, ...]] = asyncio.Queue()
        self.hazards: tuple[Hazard, ...] = ()

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def offer(self, answer: CenterAnswer) -> None:
        """A center's answer (on the event loop); the table work happens in `run`."""
        if answer.hazards is not None:
            self.hazards = answer.hazards
        if answer.acks:
            self._inbox.put_nowait(answer.acks)

    def offer_payload(self, payload: bytes) -> None:
        """The retained acks message of an mqtt upstream; a bad one is logged, never fatal."""
        try:
            self.offer(parse_answer(payload))
        except ValueError as exc:
            logger.warning("acks: the center's acks message is unusable: %s", exc)

    async def run(self) -> None:
        """Record what arrives and publish what is new, retrying unpublished ones, until cancelled."""
        while True:
            try:
                async with asyncio.timeout(RETRY_EVERY_S):
                    acks = await self._inbox.get()
            except TimeoutError:
                acks = ()
            try:
                unpublished = await asyncio.to_thread(self._record, acks)
            except StorageError:
                logger.exception(
                    "acks: %d acknowledgements not recorded; the center's next answer repeats them", len(acks)
                )
                continue
            for button_id, button_event_id in unpublished:
                if not self._publish(button_id, button_event_id):
                    break  # the button broker is away: all of them wait for the next round
                await asyncio.to_thread(self._published, button_id, button_event_id)
                logger.info("%s: alarm %s acknowledged by the center", button_id, button_event_id)

    def _record(self, acks: tuple[Acknowledgement, ...]) -> list[tuple[str, str]]:
        """Store the new acknowledgements (of alarms this gateway has) and return every one not yet published."""
        marks = ",".join("?" for _ in _ALARM_TYPES)
        with self._lock:
            conn = self._conn
            try:
                if acks:
                    conn.execute("BEGIN IMMEDIATE")
                    for ack in acks:
                        row = conn.execute(
                            f"SELECT button_id FROM events WHERE button_event_id = ? AND type IN ({marks}) "
                            "ORDER BY seq DESC LIMIT 1",
                            (ack.button_event_id, *_ALARM_TYPES),
                        ).fetchone()
                        if row is None or row[0] is None:
                            continue  # not an alarm of this gateway (or one it no longer holds)
                        conn.execute(
                            "INSERT OR IGNORE INTO acknowledgements (button_id, button_event_id, by, at, received_at) "
                            "VALUES (?, ?, ?, ?, ?)",
                            (row[0], ack.button_event_id, ack.by, ack.at, self._clock()),
                        )
                    conn.execute("COMMIT")
                rows = conn.execute(
                    "SELECT button_id, button_event_id FROM acknowledgements WHERE published_at IS NULL "
                    "ORDER BY received_at"
                ).fetchall()
            except sqlite3.Error as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise StorageError(f"cannot record acknowledgements: {exc}") from exc
        return [(str(b), str(e)) for b, e in rows]

    def _published(self, button_id: str, button_event_id: str) -> None:
        with self._lock:
            self._conn.execute(
                "UPDATE acknowledgements SET published_at = ? WHERE button_id = ? AND button_event_id = ?",
                (self._clock(), button_id, button_event_id),
            )


def acknowledged_by_alarm(conn: sqlite3.Connection) -> dict[tuple[str, str], dict[str, str]]:
    """`{(button_id, button_event_id): {by, at}}` for `/api/alarms`."""
    rows = conn.execute("SELECT button_id, button_event_id, by, at FROM acknowledgements").fetchall()
    return {(str(b), str(e)): {"by": str(by), "at": str(at)} for b, e, by, at in rows}
