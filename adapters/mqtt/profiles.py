"""What alarm buttons publish, per device family, turned into presses, heartbeats and availability.

Pure parsing: topic routing and payload decoding, no MQTT client. The payload forms of the third-party devices
follow their public documentation (zigbee2mqtt's `action` property and availability topic; Shelly Gen1
`input_event` and Gen2 `NotifyEvent` over `events/rpc`; Tasmota's `RESULT` and `LWT`); the examples in
tests/data/buttons were written from those documents, not captured from a device.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from gateway.domain.config import ButtonConfig
from gateway.domain.errors import GatewayError
from gateway.domain.events import AlarmType

# A button message is a few hundred bytes; anything far larger is not from a button.
MAX_PAYLOAD_BYTES = 16 * 1024


class PayloadError(GatewayError):
    """A message on a button topic that matches no form its profile knows."""


@dataclass(frozen=True, slots=True)
class Press:
    type: AlarmType
    event_id: str | None  # None: the device sends no id; the gateway derives one
    pressed_at: datetime | None


@dataclass(frozen=True, slots=True)
class Availability:
    online: bool


@dataclass(frozen=True, slots=True)
class Heartbeat:
    pass


ButtonMessage = Press | Availability | Heartbeat


@dataclass(frozen=True, slots=True)
class Route:
    button_id: str
    kind: str  # which decoder reads this topic


def routes(prefix: str, school_id: str, buttons: list[ButtonConfig]) -> dict[str, Route]:
    """Every exact topic the gateway subscribes to, and whose it is."""
    table: dict[str, Route] = {}
    for button in buttons:
        base = f"{prefix}/{school_id}/buttons/{button.id}"
        if button.profile in ("huxiao", "plain"):
            table[f"{base}/alarm"] = Route(button.id, "plain_alarm" if button.profile == "plain" else "alarm")
            table[f"{base}/status"] = Route(button.id, "status")
            table[f"{base}/heartbeat"] = Route(button.id, "heartbeat")
        elif button.profile == "zigbee2mqtt":
            topic = button.topic or f"zigbee2mqtt/{button.id}"
            table[topic] = Route(button.id, "z2m")
            table[f"{topic}/availability"] = Route(button.id, "z2m_availability")
        elif button.profile == "shelly":
            topic = button.topic or f"shellies/{button.id}"
            table[f"{topic}/input_event/0"] = Route(button.id, "shelly_input")
            table[f"{topic}/events/rpc"] = Route(button.id, "shelly_rpc")
            table[f"{topic}/online"] = Route(button.id, "shelly_online")
        elif button.profile == "tasmota":
            topic = button.topic or button.id
            table[f"stat/{topic}/RESULT"] = Route(button.id, "tasmota_result")
            table[f"tele/{topic}/LWT"] = Route(button.id, "tasmota_lwt")
            table[f"tele/{topic}/STATE"] = Route(button.id, "heartbeat")
    return table


def _json(payload: bytes) -> Any:
    try:
        return json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PayloadError(f"not JSON: {type(exc).__name__}") from None
    except RecursionError:
        # `[[[[...` a few thousand deep exhausts the decoder's stack: garbage, not a reason to drop the whole batch
        raise PayloadError("JSON nested too deeply") from None


def _timestamp(value: object) -> datetime | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = value / 1000 if value > 1e12 else value  # some devices send milliseconds
        try:
            return datetime.fromtimestamp(seconds, UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return None


def _alarm(payload: bytes) -> Press:
    data = _json(payload)
    if not isinstance(data, dict):
        raise PayloadError("alarm payload is not a JSON object")
    kind = data.get("type", "panic")
    try:
        alarm_type = AlarmType(kind)
    except ValueError:
        raise PayloadError(f"unknown alarm type {str(kind)[:20]!r}") from None
    event_id = data.get("id")
    if not isinstance(event_id, str | int) or isinstance(event_id, bool) or not str(event_id).strip():
        raise PayloadError("alarm payload has no id")
    if len(str(event_id)) > 128:
        raise PayloadError("alarm id longer than 128 characters")
    return Press(alarm_type, str(event_id), _timestamp(data.get("ts")))


def _online(text: str) -> Availability:
    word = text.strip().strip('"').lower()
    if word in ("online", "true", "1"):
        return Availability(True)
    if word in ("offline", "false", "0"):
        return Availability(False)
    raise PayloadError(f"availability {word[:20]!r} is neither online nor offline")


# zigbee2mqtt `action` values of one-, two- and many-button remotes: a double press is the monthly test, any other
# press an alarm (a person in danger may press long or twice; we would rather forward it than argue).
_Z2M_TEST = frozenset({"double", "double_click", "2_single"})


def _z2m(payload: bytes) -> ButtonMessage:
    data = _json(payload)
    if not isinstance(data, dict):
        raise PayloadError("zigbee2mqtt payload is not a JSON object")
    action = data.get("action") or data.get("click")
    if not action:
        return Heartbeat()  # battery, link quality: the device is alive
    action = str(action).lower()
    alarm_type = AlarmType.TEST if action in _Z2M_TEST else AlarmType.PANIC
    return Press(alarm_type, None, None)


def _z2m_availability(payload: bytes) -> Availability:
    text = payload.decode("utf-8", "replace")
    if text.lstrip().startswith("{"):
        data = _json(payload)
        if isinstance(data, dict) and "state" in data:
            return _online(str(data["state"]))
        raise PayloadError("zigbee2mqtt availability without state")
    return _online(text)


_SHELLY_GEN1 = {"S": AlarmType.PANIC, "L": AlarmType.PANIC, "SS": AlarmType.TEST, "SSS": AlarmType.TEST}
_SHELLY_GEN2 = {
    "single_push": AlarmType.PANIC,
    "long_push": AlarmType.PANIC,
    "double_push": AlarmType.TEST,
    "triple_push": AlarmType.TEST,
}


def _shelly_input(payload: bytes) -> ButtonMessage:
    data = _json(payload)
    if not isinstance(data, dict) or "event" not in data:
        raise PayloadError("Shelly input_event without event")
    event = str(data["event"])
    if event == "":
        return Heartbeat()  # Gen1 publishes an empty event after a restart
    if event not in _SHELLY_GEN1:
        raise PayloadError(f"Shelly event {event[:10]!r} unknown")
    count = data.get("event_cnt")
    return Press(_SHELLY_GEN1[event], f"cnt-{count}" if isinstance(count, int) else None, None)


def _shelly_rpc(payload: bytes) -> ButtonMessage:
    data = _json(payload)
    if not isinstance(data, dict) or data.get("method") != "NotifyEvent":
        return Heartbeat()  # status notifications: alive
    params = data.get("params")
    events = params.get("events") if isinstance(params, dict) else None
    if not isinstance(events, list):
        raise PayloadError("Shelly NotifyEvent without events")
    for event in events:
        if isinstance(event, dict) and event.get("event") in _SHELLY_GEN2:
            stamp = event.get("ts")
            return Press(_SHELLY_GEN2[event["event"]], f"ts-{stamp}" if stamp else None, _timestamp(stamp))
    return Heartbeat()


def _tasmota_result(payload: bytes) -> ButtonMessage:
    data = _json(payload)
    if not isinstance(data, dict):
        raise PayloadError("Tasmota RESULT is not a JSON object")
    for key, value in data.items():
        if key.startswith("Button") and isinstance(value, dict) and "Action" in value:
            action = str(value["Action"]).upper()
            return Press(AlarmType.TEST if action == "DOUBLE" else AlarmType.PANIC, None, None)
    return Heartbeat()


def decode(kind: str, payload: bytes) -> ButtonMessage:
    """The meaning of one message on a route of the given kind; PayloadError when it has none."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise PayloadError(f"payload of {len(payload)} bytes refused")
    if kind == "alarm":
        return _alarm(payload)
    if kind == "plain_alarm":
        return Press(AlarmType.PANIC, None, None)  # any payload is a press
    if kind == "heartbeat":
        return Heartbeat()
    if kind in ("status", "shelly_online", "tasmota_lwt"):
        return _online(payload.decode("utf-8", "replace"))
    if kind == "z2m":
        return _z2m(payload)
    if kind == "z2m_availability":
        return _z2m_availability(payload)
    if kind == "shelly_input":
        return _shelly_input(payload)
    if kind == "shelly_rpc":
        return _shelly_rpc(payload)
    if kind == "tasmota_result":
        return _tasmota_result(payload)
    raise PayloadError(f"no decoder for {kind!r}")


def derived_event_id(button_id: str, payload: bytes, received_at: datetime) -> str:
    """An id for devices that send none: unique per message, so only the broker's own redelivery (DUP) of the very
    same message can be recognised, by its payload digest."""
    digest = hashlib.sha1(payload).hexdigest()[:12]
    return f"{button_id}-{received_at.strftime('%Y%m%dT%H%M%S.%f')}-{digest}"


def payload_digest(payload: bytes) -> str:
    return hashlib.sha1(payload).hexdigest()[:12]
