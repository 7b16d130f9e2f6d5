"""The CloudEvents the alarm path stores and sends, each built in one place.

A press becomes one event whose body is fixed once it is stored (its `sequence` is the outbox's number, known only
inside the storing transaction, hence a body function of the sequence); the same builder makes the body again with
the linked cameras' pictures when they arrive within the wait.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from gateway.domain.config import ButtonConfig, GatewayConfig
from gateway.domain.events import (
    BUTTON_FLOOD,
    BUTTON_OFFLINE,
    BUTTON_ONLINE,
    EVENT_TYPES,
    PICTURES,
    STORAGE_FAILED,
    UNSTORED_SEQ,
    ButtonPress,
    OutboxEvent,
    alarm_data,
    button_json,
    cloudevent,
    iso,
    new_event_id,
    press_event_id,
    school_json,
)
from gateway.services.flood import FloodSummary
from gateway.services.outbox import NewEvent


@dataclass(frozen=True, slots=True)
class PressEvent:
    """Everything a press's CloudEvent is made of, but the pictures and the sequence number."""

    event_id: str
    event_type: str
    button: ButtonConfig
    press: ButtonPress

    def body(self, config: GatewayConfig, seq: int, cameras: list[dict[str, Any]]) -> bytes:
        data = alarm_data(config.school, self.button, self.press, cameras)
        data["sequence"] = seq
        return cloudevent(self.event_id, self.event_type, config.school, self.press.received_at, data)


class AlarmEvents:
    """Builds the events of one gateway's alarm path from its config."""

    def __init__(self, config: GatewayConfig) -> None:
        self._config = config
        self._cameras = {c.id: (c.name, c.rtsp) for c in config.cameras}

    def press(self, button: ButtonConfig, press: ButtonPress) -> PressEvent:
        return PressEvent(press_event_id(self._config.school.id, press), EVENT_TYPES[press.type], button, press)

    def as_new(self, made: PressEvent) -> NewEvent:
        """The press for the outbox: its body names the linked cameras, their pictures not yet in."""
        linked = [self.camera_json(cid, None) for cid in made.button.cameras]
        return NewEvent(
            made.event_id,
            made.event_type,
            made.button.id,
            made.press.event_id,
            lambda seq: made.body(self._config, seq, linked),
        )

    def unstored(self, made: PressEvent, at: float) -> OutboxEvent:
        """The press as it goes from memory when the outbox cannot store it: the same id and body it gets on disk
        (so a platform that later receives it from the outbox sees a repeat), but no sequence number yet."""
        new = self.as_new(made)
        return OutboxEvent(
            UNSTORED_SEQ,
            new.event_id,
            new.event_type,
            new.button_id,
            new.button_event_id,
            new.body_of(UNSTORED_SEQ),
            at,
        )

    def storage_failed(self, error: str, alarms: list[PressEvent], at: float) -> OutboxEvent:
        """The gateway's own alarm that its disk refused a commit: the error, and the alarms sent from memory."""
        event_id, moment = new_event_id(), datetime.fromtimestamp(at, UTC)
        data = {
            "school": school_json(self._config.school),
            "at": iso(moment),
            "error": error,
            "storage": str(self._config.storage.path),
            "alarms": [
                {"id": made.event_id, "button": button_json(made.button), "button_event_id": made.press.event_id}
                for made in alarms
            ],
        }
        body = cloudevent(event_id, STORAGE_FAILED, self._config.school, moment, data)
        return OutboxEvent(UNSTORED_SEQ, event_id, STORAGE_FAILED, None, None, body, at)

    def availability(self, button: ButtonConfig, online: bool, reason: str) -> NewEvent:
        event_id, event_type, now = new_event_id(), BUTTON_ONLINE if online else BUTTON_OFFLINE, datetime.now(UTC)
        data = {
            "school": school_json(self._config.school),
            "button": button_json(button),
            "at": iso(now),
            "reason": reason,
        }
        body = cloudevent(event_id, event_type, self._config.school, now, data)
        return NewEvent(event_id, event_type, button.id, None, lambda _seq: body)

    def flood(self, button: ButtonConfig, summary: FloodSummary) -> NewEvent:
        """Presses folded while the button was pressed over and over: one event with their count."""
        event_id, now = new_event_id(), datetime.now(UTC)
        data = {
            "school": school_json(self._config.school),
            "button": button_json(button),
            "count": summary.count,
            "first_at": iso(datetime.fromtimestamp(summary.first_at, UTC)),
            "last_at": iso(datetime.fromtimestamp(summary.last_at, UTC)),
        }
        body = cloudevent(event_id, BUTTON_FLOOD, self._config.school, now, data)
        return NewEvent(event_id, BUTTON_FLOOD, button.id, None, lambda _seq: body)

    def late_pictures(self, button: ButtonConfig, press: ButtonPress, pictures: dict[str, bytes]) -> NewEvent:
        event_id = new_event_id()
        data = {
            "school": school_json(self._config.school),
            "button": button_json(button),
            "button_event_id": press.event_id,
            "cameras": [self.camera_json(cid, jpeg) for cid, jpeg in pictures.items()],
        }
        body = cloudevent(event_id, PICTURES, self._config.school, datetime.now(UTC), data)
        return NewEvent(event_id, PICTURES, button.id, None, lambda _seq: body)

    def camera_json(self, camera_id: str, jpeg: bytes | None) -> dict[str, Any]:
        name, stream = self._cameras.get(camera_id, (camera_id, None))
        return {
            "id": camera_id,
            "name": name,
            "stream_uri": without_credentials(stream),
            "snapshot_jpeg_base64": base64.b64encode(jpeg).decode() if jpeg else None,
        }


def without_credentials(uri: str | None) -> str | None:
    if uri is None or "@" not in uri:
        return uri
    scheme, _, rest = uri.partition("://")
    return f"{scheme}://{rest.split('@', 1)[1]}"
