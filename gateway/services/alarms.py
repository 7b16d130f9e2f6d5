"""The alarm pipeline of one gateway: button message → intake (on disk) → ack → pictures → forwarders → ack again.

The parts, each in its own module: `alarm_intake` (the commit thread stores each press and only then lets the
listener acknowledge it and tell the button `received`), `alarm_pictures` (at most 300 ms for the linked cameras'
pictures), `forwarder` (one per upstream), `button_supervision` (Wills and silence become events) and
`alarm_events` (every body built in one place). This module joins them: the first police platform to take an alarm
makes the button's ack `delivered`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

from adapters.mqtt import profiles
from adapters.mqtt.buttons import ButtonListener
from adapters.upstreams.base import Upstream
from gateway.domain.config import GatewayConfig
from gateway.domain.errors import StorageError
from gateway.domain.events import BUTTON_OFFLINE, BUTTON_ONLINE, EVENT_TYPES, AlarmType, OutboxEvent
from gateway.services.alarm_events import AlarmEvents, PressEvent
from gateway.services.alarm_intake import AlarmIntake
from gateway.services.alarm_pictures import AlarmPictures, SnapshotSource
from gateway.services.button_supervision import ButtonState, ButtonSupervision
from gateway.services.forwarder import Backoff, Forwarder
from gateway.services.outbox import Outbox
from gateway.services.supervisor import TaskSet

logger = logging.getLogger(__name__)

# Delivery marks reach the database this often (or sooner, with the next alarm's commit): `huxiao outbox` and the
# API lag by at most this much, and a crash within it costs one resend under the same id.
RECORD_DELIVERIES_EVERY_S = 0.2
# After the outbox failed to store (disk full, I/O error), it is tried again this often; once it works, the broker
# session is renewed so that the broker sends again the presses it still holds unacknowledged (it resends them only
# on a new connection), instead of their waiting for the next network hiccup.
STORAGE_RETRY_EVERY_S = 1.0
# A flood's summary goes out within this of the button falling quiet for its `within`.
FLOOD_CHECK_EVERY_S = 1.0
# Alarms whose button was told `delivered`, remembered so that a second police platform taking the same alarm
# does not tell it again: the most recent this many (months of a school's presses, daily test presses included; a
# gateway runs for years, and an alarm forgotten here costs at most one repeated `delivered`, shown as it was).
DELIVERED_ACKS_KEPT = 10_000


class RecentIds:
    """A set of the last `size` ids added: the oldest is forgotten when a new one comes."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._ids: OrderedDict[str, None] = OrderedDict()

    def __contains__(self, event_id: object) -> bool:
        return event_id in self._ids

    def __len__(self) -> int:
        return len(self._ids)

    def add(self, event_id: str) -> None:
        self._ids[event_id] = None
        self._ids.move_to_end(event_id)
        if len(self._ids) > self._size:
            self._ids.popitem(last=False)


class AlarmService:
    """Owns the button listener, the outbox's users and the forwarders of one gateway."""

    def __init__(
        self,
        config: GatewayConfig,
        outbox: Outbox,
        upstreams: list[Upstream],
        *,
        snapshots: SnapshotSource | None = None,
        tasks: TaskSet | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.outbox = outbox
        self._tasks = tasks if tasks is not None else TaskSet(Counter())
        self._loop: asyncio.AbstractEventLoop | None = None
        events = AlarmEvents(config)
        retry = {u.name: Backoff(u.retry_first, u.retry_max) for u in config.upstreams}
        self.forwarders = [
            Forwarder(u, outbox, backoff=retry.get(u.name, Backoff()), on_delivered=self._delivered, tasks=self._tasks)
            for u in upstreams
        ]
        self.supervision = ButtonSupervision(config.buttons, events, outbox, self._submit, clock=clock)
        self._pictures = (
            AlarmPictures(config, events, outbox, snapshots, self._submit) if snapshots is not None else None
        )
        routes = profiles.routes(config.mqtt.topic_prefix, config.school.id, config.buttons)
        self.intake = AlarmIntake(
            {b.id: b for b in config.buttons},
            events,
            outbox,
            self._call,
            self,
            self._publish_ack,
            storage_path=str(config.storage.path),
        )
        self._events = events
        self.listener = ButtonListener(config.mqtt, config.school.id, routes, self.intake)
        self._acked_delivered = RecentIds(DELIVERED_ACKS_KEPT)

    @property
    def buttons(self) -> dict[str, ButtonState]:
        return self.supervision.buttons

    # -- lifecycle ------------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Load what the outbox still holds and open the commit thread; the parts then run under a supervisor."""
        self._loop = asyncio.get_running_loop()
        self.supervision.start()
        self.supervision.note_tests(await asyncio.to_thread(self.outbox.last_test_at))
        self.supervision.note_reported(
            await asyncio.to_thread(self.outbox.last_event_types, (BUTTON_ONLINE, BUTTON_OFFLINE))
        )
        for forwarder in self.forwarders:
            await forwarder.load()
        self.listener.start()

    def parts(self) -> dict[str, Callable[[], Awaitable[None]]]:
        """The long-running parts, for a supervisor to own: the broker session, button silence, delivery marks."""
        return {
            "buttons": self.listener.run,
            "button-supervision": self.supervision.run,
            "delivery-marks": self._record_deliveries,
            "storage-recovery": self._recover_storage,
            "floods": self._flood_summaries,
        }

    async def stop(self) -> None:
        await self.listener.stop()
        for forwarder in self.forwarders:
            await forwarder.stop()
        self.intake.close()

    async def _record_deliveries(self) -> None:
        while True:
            await asyncio.sleep(RECORD_DELIVERIES_EVERY_S)
            try:
                await asyncio.to_thread(self.outbox.flush_marks)
            except StorageError:
                logger.exception("delivery marks not saved yet; retrying")

    async def _flood_summaries(self) -> None:
        while True:
            await asyncio.sleep(FLOOD_CHECK_EVERY_S)
            for summary in self.intake.floods_due(time.time()):
                button = self.supervision.buttons[summary.button_id].config
                logger.warning("%s: %d presses folded into one flood event", summary.button_id, summary.count)
                try:
                    (event,) = await asyncio.to_thread(self.outbox.store_many, [self._events.flood(button, summary)])
                except StorageError:
                    logger.exception("%s: flood event could not be stored", summary.button_id)
                    continue
                if event is not None:
                    self._submit(event)

    async def _recover_storage(self) -> None:
        while True:
            await asyncio.sleep(STORAGE_RETRY_EVERY_S)
            # `held`, not only the outbox's last error: another write (a delivery mark, a button event) that works
            # clears that error, yet the presses the broker holds come back only on a new connection.
            if self.outbox.failure is None and not self.intake.held:
                continue
            if await asyncio.to_thread(self.outbox.probe):
                logger.warning("storage: the outbox can store again; asking the broker for what it still holds")
                self.intake.held = False  # set again if the redelivered presses cannot be stored either
                self.listener.renew()

    # -- from the commit thread (through the loop) -----------------------------------------------------------

    def _call(self, callback: Callable[..., Any], *args: Any) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(callback, *args)

    def seen(self, button_id: str) -> None:
        if self.supervision.seen(button_id):
            self._tasks.spawn("button-supervision", self.supervision.change(button_id, True, "message"))

    def availability(self, button_id: str, online: bool) -> None:
        reason = "status" if online else "will"
        self._tasks.spawn("button-supervision", self.supervision.change(button_id, online, reason))

    def stored(self, made: PressEvent, event: OutboxEvent) -> None:
        if made.press.type is AlarmType.TEST:
            self.supervision.buttons[made.button.id].last_test_at = event.created_at
        if made.button.cameras and self._pictures is not None:
            self._tasks.spawn("alarm-pictures", self._pictures.attach(made, event))
        else:
            self._submit(event)

    def unstored(self, event: OutboxEvent) -> None:
        """An event the outbox could not store (a press, or the storage failure itself): every upstream, from memory."""
        for forwarder in self.forwarders:
            forwarder.submit_unstored(event)

    # -- the event loop -------------------------------------------------------------------------------------

    def _submit(self, event: OutboxEvent) -> None:
        for forwarder in self.forwarders:
            forwarder.submit(event)

    def _publish_ack(self, button_id: str, alarm_id: str, state: str) -> None:
        self.listener.publish_ack(button_id, alarm_id, state)

    def _delivered(self, upstream: Upstream, event: OutboxEvent) -> None:
        if upstream.role != "police" or event.type not in EVENT_TYPES.values() or event.button_id is None:
            return
        if event.id in self._acked_delivered:
            return
        self._acked_delivered.add(event.id)
        if event.button_event_id is not None:
            self._publish_ack(event.button_id, event.button_event_id, "delivered")
