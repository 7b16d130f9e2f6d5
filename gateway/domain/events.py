"""Alarm-path domain values and the CloudEvents 1.0 they travel upstream as."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from gateway.domain.config import ButtonConfig, SchoolConfig


class AlarmType(StrEnum):
    PANIC = "panic"
    TEST = "test"  # the monthly button test: forwarded, marked as a test
    CANCEL = "cancel"


EVENT_TYPES = {
    AlarmType.PANIC: "cn.huxiao.alarm.panic",
    AlarmType.TEST: "cn.huxiao.alarm.test",
    AlarmType.CANCEL: "cn.huxiao.alarm.cancel",
}
PICTURES = "cn.huxiao.alarm.pictures"
BUTTON_OFFLINE = "cn.huxiao.button.offline"
BUTTON_ONLINE = "cn.huxiao.button.online"
BUTTON_FLOOD = "cn.huxiao.button.flood"  # presses folded while a button was pressed over and over; data.count
# The outbox could not commit an alarm (disk full, read-only, I/O error): the alarm went from memory; data.error
STORAGE_FAILED = "cn.huxiao.gateway.storage_failed"
# The `seq` of an event that is not in the outbox (sent from memory because storing it failed); real ones start at 1.
UNSTORED_SEQ = 0


@dataclass(frozen=True, slots=True)
class ButtonPress:
    """One press as the button reported it."""

    button_id: str
    event_id: str  # the id the button sent (or one derived from its message)
    type: AlarmType
    pressed_at: datetime
    received_at: datetime
    device_time: datetime | None = None  # what the device's own clock said; trusted as pressed_at only when close


@dataclass(frozen=True, slots=True)
class OutboxEvent:
    """A CloudEvent stored in the outbox: its id, type and body never change between retries."""

    seq: int
    id: str
    type: str
    button_id: str | None
    button_event_id: str | None
    body: bytes
    created_at: float = 0.0  # when the gateway stored it: the start of its delivery latency


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_event_id() -> str:
    return str(uuid.uuid4())


# A press's CloudEvents id is derived from the press as the button sent it, not drawn at random: the same message,
# delivered again by the broker after a restart (a press sent to the police from memory while the disk could not
# take it), keeps the id the police already have, and their dedupe by id shows it once. The device's own clock
# reading is part of it, so a button that reuses an id later (a counter reset with a new battery) makes a new id.
PRESS_ID_NAMESPACE = uuid.UUID("7d6c1b1e-3f0a-4c52-9a8e-5b1f2c4d6e80")


def press_event_id(school_id: str, press: ButtonPress) -> str:
    device_time = press.device_time.isoformat() if press.device_time else ""
    name = "\x1f".join((school_id, press.button_id, press.type, press.event_id, device_time))
    return str(uuid.uuid5(PRESS_ID_NAMESPACE, name))


def school_json(school: SchoolConfig) -> dict[str, Any]:
    return {"id": school.id, "name": school.name, "district": school.district}


def button_json(button: ButtonConfig) -> dict[str, Any]:
    return {"id": button.id, "name": button.name, "location": button.location}


def cloudevent(event_id: str, event_type: str, school: SchoolConfig, at: datetime, data: dict[str, Any]) -> bytes:
    """A structured-mode CloudEvents 1.0 JSON document."""
    document = {
        "specversion": "1.0",
        "id": event_id,
        "source": f"huxiao/{school.id}",
        "type": event_type,
        "time": iso(at),
        "datacontenttype": "application/json",
        "data": data,
    }
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()


def alarm_data(
    school: SchoolConfig, button: ButtonConfig, press: ButtonPress, cameras: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "school": school_json(school),
        "button": button_json(button),
        "button_event_id": press.event_id,
        "pressed_at": iso(press.pressed_at),
        "received_at": iso(press.received_at),
        "device_time": _device_time(press.device_time),
        "sequence": 0,  # replaced by the outbox sequence number when stored
        "cameras": cameras,
    }


def _device_time(moment: datetime | None) -> str | None:
    """The device's claim, as it said it (a year 9999 stays 9999 here, for the record, never as `pressed_at`)."""
    if moment is None:
        return None
    try:
        return iso(moment)
    except (OverflowError, ValueError):
        return moment.isoformat()
