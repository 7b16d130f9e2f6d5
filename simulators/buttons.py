"""Simulated one-click alarm buttons: they publish presses, heartbeats and a retained Will like real devices,
in each payload profile, and listen for the gateway's acknowledgements.

    button = SimulatedButton("guard-room", broker_port, school_id="51040200001")
    button.connect()
    event_id = button.press("panic")
    button.wait_for_ack(event_id, "delivered", timeout=5)
"""

from __future__ import annotations

import hashlib
import hmac
import json
import ssl
import threading
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from adapters.mqtt.tcp import no_delay


class SimulatedButton:
    def __init__(
        self,
        button_id: str,
        port: int,
        *,
        school_id: str,
        prefix: str = "huxiao",
        profile: str = "huxiao",
        topic: str | None = None,
        host: str = "127.0.0.1",
        username: str | None = None,
        password: str | None = None,
        ca: str | None = None,
        secret: str | None = None,
        first_seq: int = 0,
    ) -> None:
        self.button_id = button_id
        self.profile = profile
        self._port, self._host = port, host
        self.base = f"{prefix}/{school_id}/buttons/{button_id}"
        self.device_topic = topic or {
            "zigbee2mqtt": f"zigbee2mqtt/{button_id}",
            "shelly": f"shellies/{button_id}",
            "tasmota": button_id,
        }.get(profile, self.base)
        self.acks: dict[str, list[str]] = {}
        self._acked = threading.Condition()
        self._presses = 0
        self._client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=f"button-{button_id}-{uuid.uuid4().hex[:6]}",
            protocol=mqtt.MQTTv311,
        )
        self._client.max_inflight_messages_set(1000)
        if username is not None:
            self._client.username_pw_set(username, password)
        if ca is not None:
            self._client.tls_set_context(ssl.create_default_context(cafile=ca))
        # A signed button (`buttons[*].secret`): each press carries a rising seq and an HMAC over its fields.
        self._secret = secret
        self.seq = first_seq
        self.refused_connection: str | None = None
        self._client.will_set(self.availability_topic, self._availability_payload(False), qos=1, retain=True)
        self._client.on_connect = self._on_connect
        self._client.on_socket_open = no_delay
        self._client.on_message = self._on_message
        self._connected = threading.Event()

    @property
    def availability_topic(self) -> str:
        return {
            "zigbee2mqtt": f"{self.device_topic}/availability",
            "shelly": f"{self.device_topic}/online",
            "tasmota": f"tele/{self.device_topic}/LWT",
        }.get(self.profile, f"{self.base}/status")

    def _availability_payload(self, online: bool) -> str:
        if self.profile == "shelly":
            return "true" if online else "false"
        if self.profile == "tasmota":
            return "Online" if online else "Offline"
        return "online" if online else "offline"

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, reason: Any, *_: Any) -> None:
        if reason.is_failure:
            self.refused_connection = str(reason)
            return
        client.subscribe(f"{self.base}/ack", qos=1)
        client.publish(self.availability_topic, self._availability_payload(True), qos=1, retain=True)
        self._connected.set()

    def _on_message(self, _c: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        try:
            ack = json.loads(message.payload)
            alarm_id, state = str(ack["alarm_id"]), str(ack["state"])
        except (ValueError, KeyError, TypeError):
            return
        with self._acked:
            self.acks.setdefault(alarm_id, []).append(state)
            self._acked.notify_all()

    def connect(self, timeout: float = 10.0) -> None:
        self._client.connect(self._host, self._port, keepalive=30)
        self._client.loop_start()
        if not self._connected.wait(timeout):
            raise TimeoutError(f"button {self.button_id} could not reach the broker")

    def is_connected(self) -> bool:
        """paho reconnects the button by itself after the broker comes back, as a real device's firmware does."""
        return bool(self._client.is_connected())

    def disconnect(self, *, clean: bool = True) -> None:
        """A clean goodbye says offline itself; an unclean one (power cut) leaves it to the broker's Will."""
        if clean:
            self._client.publish(self.availability_topic, self._availability_payload(False), qos=1, retain=True)
            self._client.disconnect()
        else:
            sock = self._client.socket()
            if sock is not None:
                sock.close()  # no DISCONNECT packet: the broker publishes the Will
        self._client.loop_stop()

    def press(self, alarm_type: str = "panic", event_id: str | None = None) -> str:
        """Publish one press (QoS 1); returns the event id the gateway will use for it."""
        self._presses += 1
        event_id = event_id or uuid.uuid4().hex
        now = datetime.now(UTC)
        if self.profile == "huxiao":
            topic = f"{self.base}/alarm"
            payload = json.dumps(self.huxiao_payload(event_id, alarm_type, now.isoformat()))
        elif self.profile == "plain":
            topic, payload = f"{self.base}/alarm", "PRESSED"
        elif self.profile == "zigbee2mqtt":
            action = "double" if alarm_type == "test" else "single"
            topic = self.device_topic
            payload = json.dumps({"action": action, "battery": 97, "linkquality": 120})
        elif self.profile == "shelly":
            topic = f"{self.device_topic}/input_event/0"
            payload = json.dumps({"event": "SS" if alarm_type == "test" else "S", "event_cnt": self._presses})
            event_id = f"cnt-{self._presses}"
        elif self.profile == "tasmota":
            topic = f"stat/{self.device_topic}/RESULT"
            payload = json.dumps({"Button1": {"Action": "DOUBLE" if alarm_type == "test" else "SINGLE"}})
        else:
            raise ValueError(f"unknown profile {self.profile!r}")
        self._client.publish(topic, payload, qos=1)
        return event_id

    def huxiao_payload(self, event_id: str, alarm_type: str, ts: str) -> dict[str, Any]:
        """The `huxiao` profile's press; signed (seq, mac) when the button has a secret."""
        payload: dict[str, Any] = {"id": event_id, "type": alarm_type, "ts": ts}
        if self._secret is not None:
            self.seq += 1
            message = f"{self.button_id}|{alarm_type}|{ts}|{self.seq}".encode()
            payload["seq"] = self.seq
            payload["mac"] = hmac.new(self._secret.encode(), message, hashlib.sha256).hexdigest()
        return payload

    def publish_raw(self, topic: str, payload: bytes, qos: int = 1, *, retain: bool = False) -> mqtt.MQTTMessageInfo:
        return self._client.publish(topic, payload, qos=qos, retain=retain)

    def heartbeat(self) -> None:
        topic = f"tele/{self.device_topic}/STATE" if self.profile == "tasmota" else f"{self.base}/heartbeat"
        self._client.publish(topic, json.dumps({"ts": time.time()}), qos=0)

    def wait_for_ack(self, event_id: str, state: str, timeout: float = 10.0) -> bool:
        with self._acked:
            return self._acked.wait_for(lambda: state in self.acks.get(event_id, []), timeout)
