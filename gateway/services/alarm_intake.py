"""From a button's MQTT message to a stored press: profile, meaning, dedupe, one commit per batch.

Runs in the listener's commit thread: every press of a batch is committed in one transaction (one fsync), and only
then does the listener acknowledge the messages to the broker. What is not a press (availability, signs of life)
and what follows a stored press is handed to the event loop through `LoopCalls`.

When the commit fails (disk full, read-only, I/O error) the presses are not acknowledged, so the broker keeps them,
but they do not wait for the disk: each goes to the upstreams from memory at once, and the failure goes too, as a
`cn.huxiao.gateway.storage_failed` event (once until a commit works again). The press is remembered by its button
event id, so the broker's redelivery, stored once the disk works, keeps the CloudEvent id the police already have.
The copy from memory carries no pictures (it does not wait the 300 ms for them) and `sequence` 0. That memory dies
with the process: a gateway restarted before its disk works gives the redelivered press a new id.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol

import paho.mqtt.client as mqtt

from adapters.mqtt import profiles, signed
from adapters.mqtt.profiles import Availability, PayloadError, Press, Route
from gateway.domain.config import ButtonConfig
from gateway.domain.errors import StorageError
from gateway.domain.events import AlarmType, ButtonPress, OutboxEvent
from gateway.services.alarm_events import AlarmEvents, PressEvent
from gateway.services.flood import Decision, FloodGuard, FloodSettings, FloodSummary
from gateway.services.outbox import Outbox
from gateway.services.sequences import ButtonSequences

logger = logging.getLogger(__name__)

# A broker redelivers an unacknowledged message with DUP set; a stored message with the same payload within this
# window is that message again, for devices that send no id of their own.
DUP_WINDOW_S = 600.0
# Unrecognised payloads are logged at most this often (a misconfigured device may send thousands).
BAD_PAYLOAD_LOG_EVERY_S = 10.0


class LoopCalls(Protocol):
    """What the intake tells the event loop (each call is made thread-safely, in order)."""

    def seen(self, button_id: str) -> None: ...
    def availability(self, button_id: str, online: bool) -> None: ...
    def stored(self, made: PressEvent, event: OutboxEvent) -> None: ...
    def unstored(self, event: OutboxEvent) -> None: ...


class AlarmIntake:
    """The listener's batch handler (`adapters.mqtt.buttons.Handler`)."""

    def __init__(
        self,
        buttons: dict[str, ButtonConfig],
        events: AlarmEvents,
        outbox: Outbox,
        call: Callable[..., None],
        loop_calls: LoopCalls,
        acknowledge: Callable[[str, str, str], None],
        *,
        storage_path: str,
    ) -> None:
        self._buttons = buttons
        self._events = events
        self._outbox = outbox
        self._call = call  # runs a callable on the event loop, from this thread
        self._loop_calls = loop_calls
        self._acknowledge = acknowledge  # (button id, alarm id, state): the ack topic
        self.bad_payloads = 0
        self._bad_logged_at = 0.0
        self._storage_path = storage_path
        self._sequences: ButtonSequences | None = None  # opened on the first signed message, in the commit thread
        self.refused: Counter[tuple[str, str]] = Counter()  # (button, reason) → messages refused
        # Flood folding is decided in this thread and summed up on the loop: one lock between the two.
        self._flood = FloodGuard({b.id: FloodSettings(b.flood.presses, b.flood.within) for b in buttons.values()})
        self._flood_lock = threading.Lock()
        # Presses sent from memory because storing them failed, by (button, button event id), until they are stored;
        # and, for devices that send no id, their payload digest → the id derived at the first delivery.
        self._unstored: dict[tuple[str, str], PressEvent] = {}
        self._unstored_digests: dict[tuple[str, str], str] = {}
        self._derived: dict[tuple[str, str], str] = {}  # this batch's derived ids → their payload digest
        self._failure_told = False  # the storage_failed event went out for the current failure
        # Presses left unacknowledged with the broker because storing them failed: the loop renews the broker
        # session once storage works again, so that they come back (a plain bool: read from the loop).
        self.held = False
        self.unstored_alarms = 0  # presses sent from memory (each once, however often the broker sends it again)
        self.storage_failures = 0  # commits of presses that failed

    def close(self) -> None:
        if self._sequences is not None:
            self._sequences.close()

    def floods_due(self, now: float) -> list[FloodSummary]:
        """Floods over (the button quiet for `within`, or flooding too long): one summary each, once."""
        with self._flood_lock:
            return self._flood.due(now)

    def _folded(self, press: ButtonPress) -> bool:
        # A cancel is never folded: it must reach the police even from a button that flooded.
        if press.type is AlarmType.CANCEL:
            return False
        with self._flood_lock:
            return self._flood.press(press.button_id, press.received_at.timestamp()) is Decision.FOLD

    def __call__(self, batch: list[tuple[Route, mqtt.MQTTMessage]]) -> list[bool]:
        """Store every press of the batch in one transaction, then say which messages to acknowledge (all, unless
        storing failed: those stay with the broker, which sends them again)."""
        verdicts = [True] * len(batch)
        presses: list[tuple[int, PressEvent]] = []
        self._derived.clear()
        for index, (route, message) in enumerate(batch):
            press = self._interpret(route, message)
            if press is None:
                continue
            earlier = self._unstored.get((press.button_id, press.event_id))
            if earlier is not None:
                presses.append((index, earlier))  # the broker again with a press sent from memory: same event
                continue
            if self._folded(press):
                continue  # acknowledged: counted into the button's flood summary
            presses.append((index, self._events.press(self._buttons[route.button_id], press)))
        if not presses:
            return verdicts
        news = [self._events.as_new(made) for _index, made in presses]
        try:
            stored = self._outbox.store_many(news)
        except StorageError as exc:
            logger.error("%d alarms could not be stored (%s); the broker keeps them, sent from memory", len(news), exc)
            for index, _made in presses:
                verdicts[index] = False
            self.held = True
            self._send_unstored([made for _index, made in presses], str(exc))
            return verdicts
        self._failure_told = False
        for (_index, made), event in zip(presses, stored, strict=True):
            key = (made.button.id, made.press.event_id)
            sent_from_memory = self._unstored.pop(key, None) is not None
            if key in self._derived:
                self._unstored_digests.pop((made.button.id, self._derived[key]), None)
            if event is None:
                logger.info("%s: alarm %s again (duplicate), dropped", made.button.id, made.press.event_id)
                continue
            if sent_from_memory:
                logger.warning("%s: alarm %s stored now, after it went from memory", made.button.id, event.id)
                self._call(self._loop_calls.stored, made, event)  # the forwarders know its id: not sent again
                continue
            logger.info(
                "%s: %s alarm received from %s, button event %s",
                made.button.id,
                made.press.type.value,
                made.button.name,
                made.press.event_id,
            )
            self._acknowledge(made.button.id, made.press.event_id, "received")
            self._call(self._loop_calls.stored, made, event)
        return verdicts

    def _send_unstored(self, presses: list[PressEvent], error: str) -> None:
        """Each press not sent yet goes from memory now (the button told `received`: the gateway has it), and the
        failure as an event of its own, once until a commit works again."""
        now = time.time()
        self.storage_failures += 1
        new = [made for made in presses if (made.button.id, made.press.event_id) not in self._unstored]
        for made in new:
            self._unstored[(made.button.id, made.press.event_id)] = made
            digest = self._derived.get((made.button.id, made.press.event_id))
            if digest is not None:
                self._unstored_digests[(made.button.id, digest)] = made.press.event_id
            self.unstored_alarms += 1
            logger.warning("%s: alarm %s not stored; sending it from memory", made.button.id, made.event_id)
            self._acknowledge(made.button.id, made.press.event_id, "received")
            self._call(self._loop_calls.unstored, self._events.unstored(made, now))
        if not self._failure_told:
            self._failure_told = True
            self._call(self._loop_calls.unstored, self._events.storage_failed(error, new, now))

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
            self._call(self._loop_calls.availability, route.button_id, meaning.online)
            if meaning.online:  # an "online" is a sign of life; an "offline" (its Will) is not
                self._call(self._loop_calls.seen, route.button_id)
            return None
        self._call(self._loop_calls.seen, route.button_id)
        if not isinstance(meaning, Press):
            return None
        button = self._buttons[route.button_id]
        if button.secret is not None and self._refused_signature(button, payload, received):
            return None
        if meaning.event_id is None:
            digest = profiles.payload_digest(payload)
            since = received.timestamp() - DUP_WINDOW_S
            earlier = self._unstored_digests.get((route.button_id, digest)) if message.dup else None
            if earlier is not None:
                event_id = earlier  # a press sent from memory, from the broker again: the id derived then
            elif message.dup and self._outbox.seen_digest(route.button_id, digest, since):
                return None
            else:
                event_id = profiles.derived_event_id(route.button_id, payload, received)
            self._derived[(route.button_id, event_id)] = digest
        else:
            event_id = meaning.event_id
        pressed = trusted_press_time(meaning.pressed_at, received, button.window.past, button.window.future)
        return ButtonPress(route.button_id, event_id, meaning.type, pressed, received, meaning.pressed_at)

    def _refused_signature(self, button: ButtonConfig, payload: bytes, received: datetime) -> bool:
        """Check a signed button's mac, seq and time window; count and log what is refused."""
        assert button.secret is not None
        if self._sequences is None:
            self._sequences = ButtonSequences(self._storage_path)
        verdict = signed.verify(
            payload,
            button_id=button.id,
            secret=button.secret.get_secret_value(),
            last=self._sequences.last(button.id),
            now=received,
            past_s=button.window.past,
            future_s=button.window.future,
        )
        if isinstance(verdict, signed.Refusal):
            self.refused[(button.id, verdict.value)] += 1
            logger.warning("%s: signed message refused (%s)", button.id, verdict.value)
            return True
        try:
            self._sequences.accept(button.id, verdict.seq, verdict.event_id)
        except StorageError as exc:
            # The mac is good and the seq new: a genuine press, which must not wait for the disk any more than an
            # unsigned one. Its redelivery passes again (same seq and id) and is recognised by its id.
            logger.error("%s: sequence %d not recorded (%s); the press goes on", button.id, verdict.seq, exc)
        return False

    def _bad_payload(self, route: Route, exc: PayloadError) -> None:
        self.bad_payloads += 1
        now = time.monotonic()
        if now - self._bad_logged_at >= BAD_PAYLOAD_LOG_EVERY_S:
            self._bad_logged_at = now
            logger.warning("%s: unrecognised message (%s); %d so far", route.button_id, exc, self.bad_payloads)


def trusted_press_time(claimed: datetime | None, received: datetime, past_s: float, future_s: float) -> datetime:
    """The press time to tell the police: the device's own when it is within the button's window of our clock,
    else our receipt time (a device clock at 9999-12-31 or in 1970 is a claim, kept as `device_time`)."""
    if claimed is None:
        return received
    offset = (claimed - received).total_seconds()
    return claimed if -past_s <= offset <= future_s else received
