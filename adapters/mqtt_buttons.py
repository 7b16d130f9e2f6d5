"""The MQTT side of the alarm buttons: a persistent QoS 1 session whose acknowledgements we send ourselves.

paho-mqtt's manual acknowledgement lets the PUBACK wait until the alarm is committed to disk: a gateway killed
between receiving and storing leaves the message with the broker, which sends it again when we come back (the
session is persistent, so the broker also queues what arrives while we are away). paho's network loop runs in
its own thread and a commit thread stores what arrives in batches, so the disk commit never blocks the event loop.
"""

from __future__ import annotations

import asyncio
import json
import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from adapters.button_profiles import Route
from adapters.mqtt_socket import no_delay
from gateway.config import MqttConfig

logger = logging.getLogger(__name__)

# paho reconnects by itself, from 1 s doubling to 30 s: a broker restart costs at most half a minute.
RECONNECT_MIN_S = 1
RECONNECT_MAX_S = 30
# Our own QoS 1 publishes (acks to buttons) in flight at once: in a burst every press gets its ack promptly.
MAX_INFLIGHT_OUT = 1000

# Messages handed to the handler at once: one disk commit (fsync) covers the whole batch, so a burst of presses
# costs a flush per batch, not per press, while a lone press is still committed on its own at once.
MAX_BATCH = 500

# Called in the commit thread with messages on button routes, in arrival order; returns, for each, whether to
# acknowledge it (False: not stored, leave it with the broker).
Handler = Callable[[list[tuple[Route, mqtt.MQTTMessage]]], list[bool]]


class ButtonListener:
    def __init__(self, config: MqttConfig, school_id: str, routes: dict[str, Route], handler: Handler) -> None:
        self._config = config
        self._routes = routes
        self._handler = handler
        self._ack_base = f"{config.topic_prefix}/{school_id}/buttons"
        client_id = config.client_id or f"huxiao-gw-{school_id}"
        self._client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=mqtt.MQTTv311,
            clean_session=False,
            manual_ack=True,
        )
        if config.username:
            secret = config.password.get_secret_value() if config.password else None
            self._client.username_pw_set(config.username, secret)
        self._client.reconnect_delay_set(RECONNECT_MIN_S, RECONNECT_MAX_S)
        self._client.max_inflight_messages_set(MAX_INFLIGHT_OUT)
        self._client.on_connect = self._on_connect
        self._client.on_socket_open = no_delay
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message
        self.connected = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._inbox: queue.SimpleQueue[tuple[Route, mqtt.MQTTMessage] | None] = queue.SimpleQueue()
        self._committer = threading.Thread(target=self._commit_loop, name="button-commits", daemon=True)

    def _on_connect(self, client: mqtt.Client, _u: Any, flags: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            logger.warning("buttons: broker refused the connection: %s", reason)
            return
        # Subscribing again is harmless with a persistent session and needed after the broker lost it.
        topics = [(topic, 1) for topic in self._routes]
        if topics:
            client.subscribe(topics)
        logger.info(
            "buttons: connected to %s:%d (session present: %s)",
            self._config.host,
            self._config.port,
            getattr(flags, "session_present", "?"),
        )
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self.connected.set)

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        logger.warning("buttons: disconnected from the broker (%s); reconnecting", reason)
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self.connected.clear)

    def _on_message(self, client: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        route = self._routes.get(message.topic)
        if route is None:
            if message.qos > 0:
                client.ack(message.mid, message.qos)
            return
        self._inbox.put((route, message))

    def _commit_loop(self) -> None:
        """The commit thread: take what has arrived, let the handler store it, acknowledge what was stored."""
        while True:
            first = self._inbox.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < MAX_BATCH:
                try:
                    item = self._inbox.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self._inbox.put(None)
                    break
                batch.append(item)
            try:
                verdicts = self._handler(batch)
            except Exception:  # the thread must survive any handler bug; the messages stay unacknowledged
                logger.exception("buttons: handling %d messages failed", len(batch))
                verdicts = [False] * len(batch)
            for (_route, message), acknowledge in zip(batch, verdicts, strict=True):
                if acknowledge and message.qos > 0:
                    self._client.ack(message.mid, message.qos)

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._committer.start()
        self._client.connect_async(self._config.host, self._config.port, keepalive=int(self._config.keepalive))
        self._client.loop_start()

    def publish_ack(self, button_id: str, alarm_id: str, state: str) -> None:
        """Tell the button how far its alarm got (`received`, `delivered`, `acknowledged`); its LED shows it."""
        payload = json.dumps({"alarm_id": alarm_id, "state": state})
        self._client.publish(f"{self._ack_base}/{button_id}/ack", payload, qos=1)

    async def stop(self) -> None:
        self._client.disconnect()
        await asyncio.to_thread(self._client.loop_stop)
        self._inbox.put(None)
        if self._committer.is_alive():
            await asyncio.to_thread(self._committer.join, 5.0)
