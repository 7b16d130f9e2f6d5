"""Retained MQTT state topics for Home Assistant and Node-RED users.

`<prefix>/<school>/gateway/status` is `online` while the gateway runs and `offline` otherwise (its Will covers a
crash); `<prefix>/<school>/cameras/<id>/state` holds each camera's latest state as retained JSON.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt

from adapters.mqtt import session
from adapters.mqtt.security import explain, secure
from adapters.mqtt.session import CONNECT_TIMEOUT_S
from gateway.domain.config import MqttConfig

logger = logging.getLogger(__name__)

# Bound on the clean stop's `offline` publish: a broker that is away must not hold the gateway's shutdown.
STOP_PUBLISH_S = 1.0


class StatePublisher:
    """Publishes the gateway's and cameras' retained state topics; safe to call from the event loop.

    Like the button listener, it holds its connection with a fresh paho client per connection (`run()`, owned by
    the supervisor). Retained state is republished after every (re)connect: a broker restarted without persistence
    would otherwise forget it until each camera next changes state.
    """

    def __init__(
        self,
        config: MqttConfig,
        school_id: str,
        *,
        client_id: str | None = None,
        draw: Callable[[], float] = random.random,
    ) -> None:
        self._base = f"{config.topic_prefix}/{school_id}"
        self._config = config
        self._client_id = client_id or f"huxiao-state-{school_id}"
        self._draw = draw
        self._retained: dict[str, str] = {}
        self._client: mqtt.Client | None = None
        self._lost = asyncio.Event()
        self.connections = 0
        self.connected = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def gateway_topic(self) -> str:
        return f"{self._base}/gateway/status"

    def camera_topic(self, camera_id: str) -> str:
        return f"{self._base}/cameras/{camera_id}/state"

    def _new_client(self) -> mqtt.Client:
        client = session.new_client(self._client_id, clean_session=True)
        secure(client, self._config)
        client.will_set(self.gateway_topic, "offline", qos=1, retain=True)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        return client

    def _on_connect(self, client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any) -> None:
        if reason.is_failure:
            logger.warning("state topics: broker refused the connection: %s", reason)
            self._signal(self._lost.set)
            return
        client.publish(self.gateway_topic, "online", qos=1, retain=True)
        for topic, payload in list(self._retained.items()):
            client.publish(topic, payload, qos=1, retain=True)
        self._signal(self._up)

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        self._signal(self.connected.clear)
        self._signal(self._lost.set)

    def _up(self) -> None:
        self.connections += 1
        self.connected.set()

    def _signal(self, callback: Callable[[], object]) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(callback)

    def _current(self, client: mqtt.Client | None) -> None:
        self._client = client

    async def run(self) -> None:
        """Hold the connection until cancelled."""
        self._loop = asyncio.get_running_loop()
        config = self._config
        await session.hold(
            "state topics",
            f"{config.host}:{config.port}",
            self._new_client,
            lambda client: client.connect(config.host, config.port, int(config.keepalive)),
            self._lost,
            connections=lambda: self.connections,
            on_client=self._current,
            on_unreachable=lambda _why: None,
            draw=self._draw,
            explain=lambda exc: explain(exc, config),
        )

    def publish_camera(self, camera_id: str, state: dict[str, Any]) -> None:
        topic = self.camera_topic(camera_id)
        payload = json.dumps(state, ensure_ascii=False, separators=(",", ":"))
        if self._retained.get(topic) == payload:
            return
        self._retained[topic] = payload
        client = self._client
        if client is not None:  # else it goes out with the rest on the next connect
            client.publish(topic, payload, qos=1, retain=True)

    async def stop(self) -> None:
        """After `run()` was cancelled: say `offline` ourselves with a last short connection (a clean stop sends
        no Will), bounded so that a broker that is away cannot hold the shutdown."""
        client = self._new_client()
        client.on_connect = None
        client.on_disconnect = None
        try:
            async with asyncio.timeout(STOP_PUBLISH_S + CONNECT_TIMEOUT_S):
                await asyncio.to_thread(_say_offline, client, self._config, self.gateway_topic)
        except (OSError, TimeoutError, RuntimeError, ValueError):
            logger.info("state topics: broker not reached at stop; its Will says offline")


def _say_offline(client: mqtt.Client, config: MqttConfig, topic: str) -> None:
    client.connect(config.host, config.port, int(config.keepalive))
    client.loop_start()
    try:
        client.publish(topic, "offline", qos=1, retain=True).wait_for_publish(STOP_PUBLISH_S)
    finally:
        client.disconnect()
        client.loop_stop()
