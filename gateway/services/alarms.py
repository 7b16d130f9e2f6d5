"""The alarm pipeline: button message → profile → dedupe → outbox (on disk) → ack → forwarders → ack again.

The MQTT thread stores each press and only then acknowledges it to the broker and tells the button `received`;
the event loop then attaches pictures (at most 300 ms) and hands the event to one forwarder per upstream; the first
police platform to take it makes the button's ack `delivered`. Button silence and Wills become events too.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import paho.mqtt.client as mqtt

from adapters.mqtt import profiles
from adapters.mqtt.buttons import ButtonListener
from adapters.mqtt.profiles import Availability, PayloadError, Press, Route
from adapters.upstreams.base import Upstream
from gateway.domain.config import ButtonConfig, GatewayConfig
from gateway.domain.errors import StorageError
from gateway.domain.events import (
    BUTTON_OFFLINE,
    BUTTON_ONLINE,
    EVENT_TYPES,
    PICTURES,
    ButtonPress,
    OutboxEvent,
    alarm_data,
    button_json,
    cloudevent,
    iso,
    new_event_id,
    school_json,
)
from gateway.services.forwarder import Backoff, Forwarder
from gateway.services.outbox import NewEvent, Outbox
from monitoring.compliance import ButtonReading

logger = logging.getLogger(__name__)

# Pictures never hold an alarm back longer than this (the spec's 300 ms); later ones follow in their own event.
PICTURE_WAIT_S = 0.3
# A late picture is still worth sending for this long after the press.
LATE_PICTURE_S = 5.0
# A broker redelivers an unacknowledged message with DUP set; a stored message with the same payload within this
# window is that message again, for devices that send no id of their own.
DUP_WINDOW_S = 600.0
# How often button silence is checked: offline is reported within heartbeat_timeout + this.
SUPERVISION_EVERY_S = 1.0
# Delivery marks reach the database this often (or sooner, with the next alarm's commit): `huxiao outbox` and the
# API lag by at most this much, and a crash within it costs one resend under the same id.
RECORD_DELIVERIES_EVERY_S = 0.2
# Unrecognised payloads are logged at most this often (a misconfigured device may send thousands).
BAD_PAYLOAD_LOG_EVERY_S = 10.0


class SnapshotSource(Protocol):
    async def snapshot(self, camera_id: str) -> bytes | None: ...


@dataclass
class ButtonState:
    config: ButtonConfig
    online: bool | None = None
    # The availability last stored for the platforms (from the outbox at start): a status replayed after a
    # restart that says the same is not news, neither on the console nor for the police.
    reported: bool | None = None
    last_seen: float | None = None
    last_test_at: float | None = None


class AlarmService:
    """Owns the button listener, the outbox and the forwarders of one gateway."""

    def __init__(
        self,
        config: GatewayConfig,
        outbox: Outbox,
        upstreams: list[Upstream],
        *,
        snapshots: SnapshotSource | None = None,
        camera_names: dict[str, tuple[str, str | None]] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.outbox = outbox
        self._snapshots = snapshots
        self._camera_names = camera_names or {c.id: (c.name, c.rtsp) for c in config.cameras}
        self._clock = clock
        self.buttons = {b.id: ButtonState(b) for b in config.buttons}
        for button_id, at in outbox.last_test_at().items():
            if button_id in self.buttons:
                self.buttons[button_id].last_test_at = at
        retry = {u.name: Backoff(u.retry_first, u.retry_max) for u in config.upstreams}
        self.forwarders = [
            Forwarder(u, outbox, backoff=retry.get(u.name, Backoff()), on_delivered=self._delivered) for u in upstreams
        ]
        routes = profiles.routes(config.mqtt.topic_prefix, config.school.id, config.buttons)
        self.listener = ButtonListener(config.mqtt, config.school.id, routes, self._on_batch)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.bad_payloads = 0
        self._bad_logged_at = 0.0
        self._acked_delivered: set[str] = set()
        self._started_at = clock()

    # -- lifecycle ------------------------------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._started_at = self._clock()
        for forwarder in self.forwarders:
            forwarder.load()
        stored = await asyncio.to_thread(self.outbox.last_event_types, (BUTTON_ONLINE, BUTTON_OFFLINE))
        for button_id, event_type in stored.items():
            if button_id in self.buttons:
                self.buttons[button_id].reported = event_type == BUTTON_ONLINE
        self._spawn(self._record_deliveries())
        await self.listener.start()

    async def stop(self) -> None:
        await self.listener.stop()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for forwarder in self.forwarders:
            await forwarder.stop()

    async def _record_deliveries(self) -> None:
        while True:
            await asyncio.sleep(RECORD_DELIVERIES_EVERY_S)
            try:
                await asyncio.to_thread(self.outbox.flush_marks)
            except StorageError:
                logger.exception("delivery marks not saved yet; retrying")

    async def supervise(self) -> None:
        """Report buttons that fall silent for longer than their heartbeat timeout."""
        while True:
            now = self._clock()
            for state in self.buttons.values():
                # A button never heard from since the start counts from the start: a configured button that stays
                # silent is a fault to report too, not a button to forget.
                heard = state.last_seen if state.last_seen is not None else self._started_at
                if state.online is not False and now - heard > state.config.heartbeat_timeout:
                    await self._availability(state, False, "heartbeat_timeout")
            await asyncio.sleep(SUPERVISION_EVERY_S)

    # -- the MQTT thread ------------------------------------------------------------------------------------

    def _on_batch(self, batch: list[tuple[Route, mqtt.MQTTMessage]]) -> list[bool]:
        """Runs in the commit thread: store every press of the batch in one transaction, then say which messages
        to acknowledge (all, unless storing failed: those stay with the broker)."""
        verdicts = [True] * len(batch)
        presses: list[tuple[int, ButtonConfig, ButtonPress, NewEvent]] = []
        for index, (route, message) in enumerate(batch):
            press = self._interpret(route, message)
            if press is not None:
                button = self.buttons[route.button_id].config
                presses.append((index, button, press, self._new_event(button, press)))
        if not presses:
            return verdicts
        try:
            stored = self.outbox.store_many([new for *_, new in presses])
        except StorageError:
            logger.exception("%d alarms could not be stored; the broker keeps them", len(presses))
            for index, *_ in presses:
                verdicts[index] = False
            return verdicts
        for (_index, button, press, _new), event in zip(presses, stored, strict=True):
            if event is None:
                logger.info("%s: alarm %s again (duplicate), dropped", button.id, press.event_id)
                continue
            logger.info(
                "%s: %s alarm received from %s, button event %s",
                button.id,
                press.type.value,
                button.name,
                press.event_id,
            )
            self.listener.publish_ack(button.id, press.event_id, "received")
            self._call(self._stored, button, press, event)
        return verdicts

    def _interpret(self, route: Route, message: mqtt.MQTTMessage) -> ButtonPress | None:
        """What one message means; presses are returned for storing, the rest handled on the event loop."""
        received = datetime.now(UTC)
        payload = bytes(message.payload)
        try:
            meaning = profiles.decode(route.kind, payload)
        except PayloadError as exc:
            self._bad_payload(route, exc)
            return None  # garbage stays garbage: acknowledging it stops the broker from sending it forever
        if message.retain and not isinstance(meaning, Availability):
            # Replayed from the broker's retained store on (re)subscribing: old news, not a press or a sign of life.
            # A zigbee2mqtt device with `retain: true` keeps its last `{"action": "single"}` there, which would
            # otherwise raise the same alarm again at every gateway reconnect.
            return None
        if isinstance(meaning, Availability):
            self._call(self._availability_from_device, route.button_id, meaning.online)
            if meaning.online:  # an "online" is a sign of life; an "offline" (its Will) is not
                self._call(self._seen, route.button_id)
            return None
        self._call(self._seen, route.button_id)
        if not isinstance(meaning, Press):
            return None
        if meaning.event_id is None:
            digest = profiles.payload_digest(payload)
            since = received.timestamp() - DUP_WINDOW_S
            if message.dup and self.outbox.seen_digest(route.button_id, digest, since):
                return None
            event_id = profiles.derived_event_id(route.button_id, payload, received)
        else:
            event_id = meaning.event_id
        return ButtonPress(route.button_id, event_id, meaning.type, meaning.pressed_at or received, received)

    def _new_event(self, button: ButtonConfig, press: ButtonPress) -> NewEvent:
        event_id = new_event_id()
        event_type = EVENT_TYPES[press.type]
        data = alarm_data(self.config.school, button, press, [])
        school = self.config.school

        def body(seq: int) -> bytes:
            data["sequence"] = seq
            return cloudevent(event_id, event_type, school, press.received_at, data)

        return NewEvent(event_id, event_type, button.id, press.event_id, body)

    def _bad_payload(self, route: Route, exc: PayloadError) -> None:
        self.bad_payloads += 1
        now = time.monotonic()
        if now - self._bad_logged_at >= BAD_PAYLOAD_LOG_EVERY_S:
            self._bad_logged_at = now
            logger.warning("%s: unrecognised message (%s); %d so far", route.button_id, exc, self.bad_payloads)

    def _call(self, callback: Callable[..., Any], *args: Any) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(callback, *args)

    # -- the event loop -------------------------------------------------------------------------------------

    def _spawn(self, coroutine: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _seen(self, button_id: str) -> None:
        state = self.buttons[button_id]
        state.last_seen = self._clock()
        if not state.online:
            self._spawn(self._availability(state, True, "message"))

    def _availability_from_device(self, button_id: str, online: bool) -> None:
        self._spawn(self._availability(self.buttons[button_id], online, "will" if not online else "status"))

    async def _availability(self, state: ButtonState, online: bool, reason: str) -> None:
        if state.online is online:
            return
        was = state.online
        state.online = online
        if online:
            state.last_seen = self._clock()
        if was is None and state.reported is online:
            return  # the first word after a start says what was stored before it: a replay, not a change
        logger.info("%s: button %s (%s)", state.config.id, "online" if online else "offline", reason)
        if was is None and online and state.reported is None:
            return  # first sighting, nothing stored before: nothing changed for the police (told offline: tell them)
        event_type = BUTTON_ONLINE if online else BUTTON_OFFLINE
        event_id = new_event_id()
        now = datetime.now(UTC)
        data = {
            "school": school_json(self.config.school),
            "button": button_json(state.config),
            "at": iso(now),
            "reason": reason,
        }
        body = cloudevent(event_id, event_type, self.config.school, now, data)
        try:
            event = await asyncio.to_thread(
                self.outbox.store, event_id, event_type, state.config.id, None, lambda _seq: body
            )
        except StorageError:
            logger.exception("%s: button %s event could not be stored", state.config.id, event_type)
            return
        if event is not None:
            state.reported = online
            self._submit(event)

    def _stored(self, button: ButtonConfig, press: ButtonPress, event: OutboxEvent) -> None:
        if press.type.value == "test":
            self.buttons[button.id].last_test_at = event.created_at
        if button.cameras and self._snapshots is not None:
            self._spawn(self._with_pictures(button, press, event))
        else:
            self._submit(event)

    def _submit(self, event: OutboxEvent) -> None:
        for forwarder in self.forwarders:
            forwarder.submit(event)

    async def _with_pictures(self, button: ButtonConfig, press: ButtonPress, event: OutboxEvent) -> None:
        assert self._snapshots is not None
        source = self._snapshots
        grabs = {cid: asyncio.ensure_future(source.snapshot(cid)) for cid in button.cameras}
        done, _ = await asyncio.wait(grabs.values(), timeout=PICTURE_WAIT_S)
        ready = {cid: task.result() for cid, task in grabs.items() if task in done and task.exception() is None}
        cameras = [self._camera_json(cid, ready.get(cid)) for cid in button.cameras]
        if any(ready.values()):
            data = alarm_data(self.config.school, button, press, cameras)
            data["sequence"] = event.seq
            body = cloudevent(event.id, event.type, self.config.school, press.received_at, data)
            await asyncio.to_thread(self.outbox.replace_body, event.seq, body)
            event = OutboxEvent(
                event.seq, event.id, event.type, event.button_id, event.button_event_id, body, event.created_at
            )
        self._submit(event)
        late = {cid: task for cid, task in grabs.items() if cid not in ready or ready[cid] is None}
        if late:
            await self._late_pictures(button, press, late)

    async def _late_pictures(
        self, button: ButtonConfig, press: ButtonPress, late: Mapping[str, asyncio.Future[bytes | None]]
    ) -> None:
        await asyncio.wait(late.values(), timeout=LATE_PICTURE_S - PICTURE_WAIT_S)
        pictures = {cid: t.result() for cid, t in late.items() if t.done() and t.exception() is None and t.result()}
        for task in late.values():
            task.cancel()
        if not pictures:
            return
        event_id = new_event_id()
        data = {
            "school": school_json(self.config.school),
            "button": button_json(button),
            "button_event_id": press.event_id,
            "cameras": [self._camera_json(cid, jpeg) for cid, jpeg in pictures.items()],
        }
        body = cloudevent(event_id, PICTURES, self.config.school, datetime.now(UTC), data)
        try:
            event = await asyncio.to_thread(self.outbox.store, event_id, PICTURES, button.id, None, lambda _s: body)
        except StorageError:
            logger.exception("%s: late pictures could not be stored", button.id)
            return
        if event is not None:
            self._submit(event)

    def _camera_json(self, camera_id: str, jpeg: bytes | None) -> dict[str, Any]:
        name, stream = self._camera_names.get(camera_id, (camera_id, None))
        return {
            "id": camera_id,
            "name": name,
            "stream_uri": _without_credentials(stream),
            "snapshot_jpeg_base64": base64.b64encode(jpeg).decode() if jpeg else None,
        }

    def _delivered(self, upstream: Upstream, event: OutboxEvent) -> None:
        if upstream.role != "police" or event.type not in EVENT_TYPES.values() or event.button_id is None:
            return
        key = event.id
        if key in self._acked_delivered:
            return
        self._acked_delivered.add(key)
        if event.button_event_id is not None:
            self.listener.publish_ack(event.button_id, event.button_event_id, "delivered")

    # -- what the faces read --------------------------------------------------------------------------------

    def button_readings(self) -> list[ButtonReading]:
        return [
            ButtonReading(s.config.id, s.config.name, bool(s.online), s.last_test_at) for s in self.buttons.values()
        ]

    def upstream_rows(self) -> list[dict[str, Any]]:
        return [
            {
                "name": f.upstream.name,
                "kind": f.upstream.kind,
                "role": f.upstream.role,
                "link": f.upstream.state.link,
                "since": f.upstream.state.since,
                "last_error": f.upstream.state.last_error,
                "pending": f.pending,
            }
            for f in self.forwarders
        ]


def _without_credentials(uri: str | None) -> str | None:
    if uri is None or "@" not in uri:
        return uri
    scheme, _, rest = uri.partition("://")
    return f"{scheme}://{rest.split('@', 1)[1]}"


class AlarmFaces:
    """The alarm path as `gateway.services.status.AlarmView` for the status page, API and metrics."""

    def __init__(self, service: AlarmService) -> None:
        self._service = service

    def buttons(self) -> list[ButtonReading]:
        return self._service.button_readings()

    def upstreams(self) -> list[dict[str, Any]]:
        return self._service.upstream_rows()

    def recent_alarms(self, limit: int) -> list[dict[str, Any]]:
        return self._service.outbox.recent_alarms(limit)

    def delivery_latency(self) -> dict[str, Any]:
        return {f.upstream.name: f.latency for f in self._service.forwarders}
