"""Pictures from the cameras linked to a button, for its alarm: they never hold the alarm back.

What arrives within PICTURE_WAIT_S goes into the alarm's own body (before its first delivery attempt, so every
retry carries the same body); what arrives later, up to LATE_PICTURE_S after the press, follows as a
`cn.huxiao.alarm.pictures` event with the same `button_event_id`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import Protocol

from gateway.domain.config import GatewayConfig
from gateway.domain.errors import StorageError
from gateway.domain.events import OutboxEvent
from gateway.services.alarm_events import AlarmEvents, PressEvent
from gateway.services.outbox import Outbox

logger = logging.getLogger(__name__)

# Pictures never hold an alarm back longer than this (the spec's 300 ms); later ones follow in their own event.
PICTURE_WAIT_S = 0.3
# A late picture is still worth sending for this long after the press.
LATE_PICTURE_S = 5.0


class SnapshotSource(Protocol):
    async def snapshot(self, camera_id: str) -> bytes | None: ...


class AlarmPictures:
    """Attaches the linked cameras' pictures to a stored alarm, then hands it on with `submit`."""

    def __init__(
        self,
        config: GatewayConfig,
        events: AlarmEvents,
        outbox: Outbox,
        source: SnapshotSource,
        submit: Callable[[OutboxEvent], None],
    ) -> None:
        self._config = config
        self._events = events
        self._outbox = outbox
        self._source = source
        self._submit = submit

    async def attach(self, made: PressEvent, event: OutboxEvent) -> None:
        """Wait at most PICTURE_WAIT_S for the pictures, submit the alarm, then send the late ones."""
        cameras = made.button.cameras
        grabs = {cid: asyncio.ensure_future(self._source.snapshot(cid)) for cid in cameras}
        try:
            done, _ = await asyncio.wait(grabs.values(), timeout=PICTURE_WAIT_S)
            ready = {cid: t.result() for cid, t in grabs.items() if t in done and t.exception() is None}
            if any(ready.values()):
                body = made.body(self._config, event.seq, [self._events.camera_json(c, ready.get(c)) for c in cameras])
                try:
                    await asyncio.to_thread(self._outbox.replace_body, event.seq, body)
                except StorageError:
                    # The alarm is stored without pictures; it goes as it is, and the pictures follow late.
                    logger.exception("%s: pictures not added to alarm %s", made.button.id, event.id)
                    ready = {}
                else:
                    event = OutboxEvent(
                        event.seq, event.id, event.type, event.button_id, event.button_event_id, body, event.created_at
                    )
            self._submit(event)
            late = {cid: task for cid, task in grabs.items() if not ready.get(cid)}
            if late:
                await self._late(made, late)
        finally:
            for task in grabs.values():
                task.cancel()

    async def _late(self, made: PressEvent, late: Mapping[str, asyncio.Future[bytes | None]]) -> None:
        await asyncio.wait(late.values(), timeout=LATE_PICTURE_S - PICTURE_WAIT_S)
        pictures = {c: t.result() for c, t in late.items() if t.done() and not t.cancelled() and t.exception() is None}
        got = {cid: jpeg for cid, jpeg in pictures.items() if jpeg}
        if not got:
            return
        new = self._events.late_pictures(made.button, made.press, got)
        try:
            (event,) = await asyncio.to_thread(self._outbox.store_many, [new])
        except StorageError:
            logger.exception("%s: late pictures could not be stored", made.button.id)
            return
        if event is not None:
            self._submit(event)
