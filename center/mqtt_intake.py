"""MQTT intake: the gateways' `mqtt` upstream, through MQTT v5 shared subscriptions so several centers split it.

`$share/<share>/<topic>/+` carries events and `$share/<share>/<topic>/+/status` reports; the broker gives each
message to one member of the share. A message is acknowledged (PUBACK) only after it is on disk: paho's manual
acknowledgement, the same rule as the gateway's buttons. Answers to reports go out retained on
`<topic>/<school>/acks`, so a gateway that connects later still finds the whole list.

paho's network loop runs in its own thread; each message is handed to the event loop and the thread waits for
the commit before acknowledging. A fresh client per connection: one that failed is never reused.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from center.config import CenterMqttConfig
from center.intake import Intake, Refused
from center.service import CenterService
from center.store import REPORT_TYPE
from gateway.domain.errors import GatewayError

logger = logging.getLogger(__name__)

# The broker is tried again this often after a lost connection (capped back-off would only slow the return of
# a central broker whose clients all reconnect at once; paho spreads them with its own jitter-free delay).
RECONNECT_MIN_S = 0.5
RECONNECT_MAX_S = 5.0
KEEPALIVE_S = 30
CONNECT_TIMEOUT_S = 10.0


class MqttIntake:
    def __init__(self, config: CenterMqttConfig, intake: Intake, service: CenterService, client_id: str) -> None:
        self._config = config
        self._intake = intake
        self._service = service
        self._client_id = client_id
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: mqtt.Client | None = None
        self._connected = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.last_error: str | None = None
        # Callback-side tasks that must be kept alive until they finish.
        self._pending: set[asyncio.Future[Any]] = set()

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._service.publish_acks = self.publish_acks
        self._thread = threading.Thread(target=self._run, name="center-mqtt", daemon=True)
        self._thread.start()
        # Wait (bounded) for the first connection so that a test or an operator sees a bad URL at start.
        await asyncio.to_thread(self._connected.wait, CONNECT_TIMEOUT_S)

    async def stop(self) -> None:
        self._stopping = True
        client = self._client
        if client is not None:
            client.disconnect()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, 5.0)
        self._service.publish_acks = None

    def _new_client(self) -> mqtt.Client:
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=self._client_id, protocol=mqtt.MQTTv5, manual_ack=True
        )
        if self._config.username:
            password = self._config.password.get_secret_value() if self._config.password else None
            client.username_pw_set(self._config.username, password)
        if self._config.url.startswith("mqtts://"):
            client.tls_set()
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        return client

    def _run(self) -> None:
        delay = RECONNECT_MIN_S
        while not self._stopping:
            client = self._new_client()
            self._client = client
            properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            # A persistent session (an hour): QoS 1 messages of the share wait for this member while it reconnects.
            properties.SessionExpiryInterval = 3600
            try:
                client.connect(
                    self._config.host, self._config.port, KEEPALIVE_S, clean_start=False, properties=properties
                )
                delay = RECONNECT_MIN_S
                client.loop_forever(retry_first_connection=False)
            except (OSError, mqtt.WebsocketConnectionError, ValueError) as exc:
                self.last_error = str(exc)
                logger.warning("center mqtt %s:%d: %s", self._config.host, self._config.port, exc)
            self._connected.clear()
            if self._stopping:
                break
            time.sleep(delay)  # in the paho thread, not the event loop
            delay = min(delay * 2, RECONNECT_MAX_S)

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if reason.is_failure:
            self.last_error = str(reason)
            logger.warning("center mqtt: connection refused: %s", reason)
            return
        share, topic = self._config.share, self._config.topic
        options = SubscribeOptions(qos=1)
        client.subscribe([(f"$share/{share}/{topic}/+", options), (f"$share/{share}/{topic}/+/status", options)])
        self.last_error = None
        logger.info("center mqtt: subscribed to $share/%s/%s/+ and .../+/status", share, topic)

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int, reasons: Any, properties: Any) -> None:
        # Ready only once the broker has the subscription (SUBACK): a message published before it would find
        # no member of the share and be dropped.
        failed = [r for r in reasons if getattr(r, "is_failure", False)]
        if failed:
            self.last_error = f"subscription refused: {failed[0]}"
            logger.error("center mqtt: subscription refused: %s", failed[0])
            return
        self._connected.set()

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        self._connected.clear()
        if not self._stopping:
            self.last_error = f"disconnected: {reason}"

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        assert self._loop is not None
        parts = message.topic.split("/")
        base = self._config.topic.split("/")
        tail = parts[len(base) :]
        is_report = len(tail) == 2 and tail[1] == "status"
        if parts[: len(base)] != base or not (len(tail) == 1 or is_report) or tail[0] in ("", "acks"):
            client.ack(message.mid, message.qos)
            return
        # Handed to the event loop without waiting: messages arriving together share one commit (group commit),
        # and each is acknowledged from there once stored.
        asyncio.run_coroutine_threadsafe(
            self._take_and_ack(client, message.mid, message.qos, bytes(message.payload), tail[0], is_report), self._loop
        )

    async def _take_and_ack(
        self, client: mqtt.Client, mid: int, qos: int, payload: bytes, school_id: str, is_report: bool
    ) -> None:
        try:
            stored = await self._take(payload, school_id, is_report)
        except GatewayError as exc:
            logger.error("%s: mqtt event not stored: %s", school_id, exc)
            return  # not acknowledged: the broker gives it again after reconnection
        # A message that came through a connection since lost is not acknowledged: the broker resends it.
        if stored and qos > 0 and client is self._client:
            with contextlib.suppress(ValueError, RuntimeError):
                client.ack(mid, qos)

    async def _take(self, payload: bytes, school_id: str, is_report: bool) -> bool:
        """True when the message may be acknowledged: stored (or refused for good: resending cannot fix it)."""
        try:
            taken = await self._intake.take_mqtt(payload, school_id)
        except Refused:
            return True
        if is_report or taken.event.type == REPORT_TYPE:
            answer = await self._service.report(taken.event, taken.fresh)
            self.publish_acks(school_id, json.dumps(answer, ensure_ascii=False).encode())
        return True

    def publish_acks(self, school_id: str, payload: bytes) -> None:
        client = self._client
        if client is None or not self.connected:
            return  # the next report's answer carries the list again
        with contextlib.suppress(ValueError, RuntimeError):
            client.publish(f"{self._config.topic}/{school_id}/acks", payload, qos=1, retain=True)
