"""`huxiao press`: press a button from the command line, as the device would (one QoS 1 message on its topic).

For trying the alarm path without hardware (the demo's simulated buttons, a bench broker) and for an installer who
wants to see an alarm reach the police before the real button is wired. It speaks the `huxiao` payload profile:
the other profiles are third-party devices whose own firmware is the thing to test.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from gateway.domain.config import GatewayConfig
from gateway.domain.errors import DeviceTimeout, DeviceUnreachable, GatewayError

# The broker is on the school's LAN (or localhost): a few seconds is plenty, and a user waiting at a prompt
# should hear that it is unreachable rather than watch a hang.
CONNECT_TIMEOUT_S = 5.0
# QoS 1: the press counts only once the broker has acknowledged it (PUBACK).
PUBACK_TIMEOUT_S = 5.0
ALARM_TYPES = ("panic", "test", "cancel")
SUPPORTED_PROFILES = ("huxiao", "plain")


@dataclass(frozen=True, slots=True)
class PressTarget:
    """Where one press goes: the broker and the button's alarm topic."""

    host: str
    port: int
    topic: str
    username: str | None = None
    password: str | None = None


def target_from_config(config: GatewayConfig, button_id: str) -> PressTarget:
    known = {b.id: b for b in config.buttons}
    button = known.get(button_id)
    if button is None:
        names = ", ".join(sorted(known)) or "none"
        raise GatewayError(f"no button {button_id!r} in the config (buttons: {names})")
    if button.profile not in SUPPORTED_PROFILES:
        raise GatewayError(
            f"button {button_id} uses the {button.profile} profile: press the device itself"
            " (huxiao press speaks the huxiao profile)"
        )
    host, port = broker_address(config.mqtt.url)
    password = config.mqtt.password.get_secret_value() if config.mqtt.password else None
    topic = f"{config.mqtt.topic_prefix}/{config.school.id}/buttons/{button_id}/alarm"
    return PressTarget(host, port, topic, config.mqtt.username, password)


def target_from_broker(url: str, school_id: str, button_id: str, prefix: str = "huxiao") -> PressTarget:
    host, port = broker_address(url)
    return PressTarget(host, port, f"{prefix}/{school_id}/buttons/{button_id}/alarm")


def broker_address(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    if parts.scheme != "mqtt" or not parts.hostname:
        raise GatewayError(f"broker URL {url!r}: expected mqtt://host:port (mqtts is not supported by press)")
    try:
        port = parts.port or 1883
    except ValueError:
        raise GatewayError(f"broker URL {url!r}: the port is not a number") from None
    return parts.hostname, port


def press(target: PressTarget, button_id: str, alarm_type: str) -> str:
    """Publish one press and wait for the broker's PUBACK; returns the event id the gateway will use."""
    if alarm_type not in ALARM_TYPES:
        raise GatewayError(f"alarm type {alarm_type!r}: expected one of {', '.join(ALARM_TYPES)}")
    event_id = uuid.uuid4().hex
    payload = json.dumps({"id": event_id, "type": alarm_type, "ts": datetime.now(UTC).isoformat()})
    device = f"broker {target.host}:{target.port}"
    client = mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=f"huxiao-press-{button_id}-{event_id[:6]}",
        protocol=mqtt.MQTTv311,
    )
    if target.username:
        client.username_pw_set(target.username, target.password)
    client.connect_timeout = CONNECT_TIMEOUT_S
    try:
        client.connect(target.host, target.port, keepalive=30)
    except OSError as exc:
        raise DeviceUnreachable(device, f"cannot connect ({exc.strerror or exc}); is the broker running?") from None
    client.loop_start()
    try:
        info = client.publish(target.topic, payload, qos=1)
        info.wait_for_publish(PUBACK_TIMEOUT_S)
        if not info.is_published():
            raise DeviceTimeout(device, f"no acknowledgement within {PUBACK_TIMEOUT_S:.0f} s (wrong credentials?)")
    except (RuntimeError, ValueError) as exc:  # paho: not connected / the connection was refused
        raise DeviceUnreachable(device, f"the press was not sent ({exc})") from None
    finally:
        client.disconnect()
        client.loop_stop()
    return event_id
