"""The `mqtt` upstream: the same CloudEvents as `http`, published QoS 1 on `<topic>/<school id>`; PUBACK = delivered.

MQTT 5, so that a broker that refuses a publish (its ACL) says so in the PUBACK's reason code: over MQTT 3.1.1
Mosquitto acknowledges a refused QoS 1 publish like any other and drops it, which would count a lost alarm as
delivered. The session is persistent (Clean Start 0, a stable client id, a session expiry) so that the retained
acks topic the center writes is read again on every reconnect and what the broker queued for us is kept.

Each connection is a fresh paho client (a client that failed is never reused). Publishes waiting for their PUBACK
when a connection is lost fail with UpstreamError: the outbox sends them again, with the same id, on the next one.
"""

from __future__ import annotations

import asyncio
import logging
import random
import ssl
from collections.abc import Callable
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from adapters.mqtt import session
from adapters.upstreams.base import LinkState
from gateway.domain.config import MqttUpstreamConfig
from gateway.domain.errors import UpstreamError
from gateway.domain.events import OutboxEvent

logger = logging.getLogger(__name__)

# Reconnecting as every MQTT link does (adapters.mqtt.session), but doubling up to half a minute: the gateways of a
# whole city come back to one central broker, their delays cut by a random part so not all in the same instant.
RECONNECT_MAX_S = 30.0
# How long the broker keeps our session (queued messages, subscriptions) while we are away: a day covers a night's
# outage of a school's line; longer would only keep a decommissioned gateway's session forever.
SESSION_EXPIRY_S = 86400
# Publishes in flight at once: a burst of alarms is not held back by paho's default window of 20.
MAX_INFLIGHT = 1000

# Called (on the event loop) with the payload of the retained acks message the center keeps for this school.
AcksHandler = Callable[[bytes], None]


class MqttUpstream:
    """One persistent MQTT 5 session with a central broker; `send` returns once the broker has the event."""

    kind: str = "mqtt"

    def __init__(
        self,
        config: MqttUpstreamConfig,
        school_id: str,
        *,
        on_acks: AcksHandler | None = None,
        draw: Callable[[], float] = random.random,
    ) -> None:
        self.name: str = config.name
        self.role: str = config.role
        self.state = LinkState()
        self._config = config
        self.events_topic = f"{config.topic}/{school_id}"
        self.status_topic = f"{self.events_topic}/status"
        self.acks_topic = f"{self.events_topic}/acks"
        self._client_id = config.client_id or f"huxiao-up-{school_id}-{config.name}"
        self.on_acks = on_acks
        self.latest_acks: bytes | None = None  # kept for a handler set after the retained message arrived
        self._draw = draw
        self._client: mqtt.Client | None = None
        self._waiting: dict[int, asyncio.Future[None]] = {}
        self.connected = asyncio.Event()
        self.connections = 0  # successful connections so far (a test and a metric)
        self._lost = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: asyncio.Task[None] | None = None

    # -- lifecycle --------------------------------------------------------------------------------------------

    async def __aenter__(self) -> MqttUpstream:
        self._loop = asyncio.get_running_loop()
        self._runner = asyncio.create_task(self._run(), name=f"upstream-mqtt:{self.name}")
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._runner is not None:
            self._runner.cancel()
            await asyncio.gather(self._runner, return_exceptions=True)
            self._runner = None

    def _new_client(self) -> mqtt.Client:
        client = session.new_client(self._client_id, protocol=MQTTProtocolVersion.MQTTv5)
        config = self._config
        if config.username:
            client.username_pw_set(config.username, config.password.get_secret_value() if config.password else None)
        if urlsplit(config.url).scheme == "mqtts":
            client.tls_set_context(ssl.create_default_context())
        client.max_inflight_messages_set(MAX_INFLIGHT)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        return client

    async def _run(self) -> None:
        """Hold the connection until cancelled: connect, wait for the loss, back off, connect a fresh client."""
        config = self._config

        def connect(client: mqtt.Client) -> None:
            properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            properties.SessionExpiryInterval = SESSION_EXPIRY_S
            client.connect(config.host, config.port, int(config.keepalive), clean_start=False, properties=properties)

        await session.hold(
            self.name,
            f"{config.host}:{config.port}",
            self._new_client,
            connect,
            self._lost,
            connections=lambda: self.connections,
            on_client=self._current,
            on_unreachable=lambda why: self._link_lost(why, logged=True),
            draw=self._draw,
            most_delay_s=RECONNECT_MAX_S,
        )

    def _current(self, client: mqtt.Client | None) -> None:
        self._client = client

    # -- paho's thread ----------------------------------------------------------------------------------------

    def _signal(self, callback: Callable[..., object], *args: Any) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(callback, *args)

    def _on_connect(self, client: mqtt.Client, _u: Any, flags: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            self._signal(self._link_lost, f"the broker refused the connection: {reason}", client)
            return
        # Subscribing again is harmless in a kept session and needed after the broker lost it; the acks message is
        # retained, so each (re)subscription hands us the center's current list.
        client.subscribe(self.acks_topic, qos=1)
        logger.info(
            "%s: connected to %s:%d (session present: %s)",
            self.name,
            self._config.host,
            self._config.port,
            getattr(flags, "session_present", "?"),
        )
        self._signal(self._up, client)

    def _on_disconnect(self, client: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        self._signal(self._link_lost, f"disconnected from the broker ({reason})", client)

    def _on_publish(self, client: mqtt.Client, _u: Any, mid: int, reason: Any, _p: Any) -> None:
        self._signal(self._puback, mid, None if not reason.is_failure else str(reason), client)

    def _on_message(self, _c: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        if message.topic == self.acks_topic:
            self._signal(self._acks, bytes(message.payload))

    # -- the event loop ---------------------------------------------------------------------------------------

    def _acks(self, payload: bytes) -> None:
        self.latest_acks = payload
        if self.on_acks is not None:
            self.on_acks(payload)

    def _up(self, client: mqtt.Client) -> None:
        if client is not self._client:
            return  # a late word from a connection already given up
        self.connections += 1
        self.connected.set()

    def _link_lost(self, why: str, client: mqtt.Client | None = None, *, logged: bool = False) -> None:
        if client is not None and client is not self._client:
            return  # the goodbye of a client we closed ourselves; mids of an old client mean nothing now
        if not logged:
            logger.warning("%s: %s", self.name, why)
        self.connected.clear()
        self._lost.set()
        # The PUBACKs of this connection will never come: the outbox resends these on the next one (same ids).
        waiting, self._waiting = self._waiting, {}
        for future in waiting.values():
            if not future.done():
                future.set_exception(UpstreamError(f"{self.name}: connection lost before the broker's PUBACK"))

    def _puback(self, mid: int, refused: str | None, client: mqtt.Client) -> None:
        if client is not self._client:
            return  # packet ids are per connection: an old client's mid may be reused by the new one
        future = self._waiting.pop(mid, None)
        if future is None or future.done():
            return
        if refused is None:
            future.set_result(None)
        else:
            future.set_exception(UpstreamError(f"{self.name}: the broker refused the publish: {refused}"))

    async def publish(self, topic: str, body: bytes) -> None:
        """Publish QoS 1 and return at the broker's PUBACK; UpstreamError when refused, lost or late."""
        timeout = self._config.timeout
        try:
            async with asyncio.timeout(timeout):
                await self.connected.wait()
                client = self._client
                if client is None:
                    raise UpstreamError(f"{self.name}: not connected to the broker")
                # paho's publish only queues the packet and writes to a non-blocking socket: it does not block.
                # The PUBACK's callback reaches this loop through call_soon_threadsafe, so it always runs after the
                # future below is registered, however fast the broker answers.
                info = client.publish(topic, body, qos=1)
                if info.rc != mqtt.MQTT_ERR_SUCCESS:
                    raise UpstreamError(f"{self.name}: publish not queued: {mqtt.error_string(info.rc)}")
                future = asyncio.get_running_loop().create_future()
                self._waiting[info.mid] = future
                try:
                    await future
                finally:
                    self._waiting.pop(info.mid, None)
        except TimeoutError:
            raise UpstreamError(f"{self.name}: no PUBACK from the broker within {timeout:g} s") from None

    async def send(self, event: OutboxEvent) -> None:
        await self.publish(self.events_topic, event.body)

    async def send_report(self, _event_id: str, body: bytes) -> None:
        """A status report on `<topic>/<school id>/status`; the center answers on the retained acks topic."""
        await self.publish(self.status_topic, body)
