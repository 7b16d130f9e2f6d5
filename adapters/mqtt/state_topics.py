"""Retained MQTT state topics for Home Assistant and Node-RED users.

`<prefix>/<school>/gateway/status` is `online` while the gateway runs and `offline` otherwise (its Will covers a
crash); `<prefix>/<school>/cameras/<id>/state` holds each camera's latest state as retained JSON.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from adapters.mqtt.security import secure
from adapters.mqtt.tcp import no_delay
from gateway.domain.config import MqttConfig

logger = logging.getLogger(__name__)

# Retained state is republished after every (re)connect: a broker restarted without persistence would otherwise
# forget it until each camera next changes state.
RECONNECT_MIN_S = 1
RECONNECT_MAX_S = 30


class StatePublisher:
    """Publishes the gateway's and cameras' retained state topics; safe to call from the event loop."""

    def __init__(self, config: MqttConfig, school_id: str, *, client_id: str | None = None) -> None:
        self._base = f"{config.topic_prefix}/{school_id}"
        self._config = config
        self._retained: dict[str, str] = {}
        self._client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=client_id or f"huxiao-state-{school_id}",
            protocol=mqtt.MQTTv311,
            clean_session=True,
        )
        secure(self._client, config)
        self._client.will_set(self.gateway_topic, "offline", qos=1, retain=True)
        self._client.reconnect_delay_set(RECONNECT_MIN_S, RECONNECT_MAX_S)
        self._client.on_connect = self._on_connect
        self._client.on_socket_open = no_delay
        self.connected = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def gateway_topic(self) -> str:
        return f"{self._base}/gateway/status"

    def camera_topic(self, camera_id: str) -> str:
        return f"{self._base}/cameras/{camera_id}/state"

    def _on_connect(self, client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any) -> None:
        if reason.is_failure:
            logger.warning("state topics: broker refused the connection: %s", reason)
            return
        client.publish(self.gateway_topic, "online", qos=1, retain=True)
        for topic, payload in list(self._retained.items()):
            client.publish(topic, payload, qos=1, retain=True)
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self.connected.set)

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._client.connect_async(self._config.host, self._config.port, keepalive=int(self._config.keepalive))
        self._client.loop_start()

    def publish_camera(self, camera_id: str, state: dict[str, Any]) -> None:
        topic = self.camera_topic(camera_id)
        payload = json.dumps(state, ensure_ascii=False, separators=(",", ":"))
        if self._retained.get(topic) == payload:
            return
        self._retained[topic] = payload
        self._client.publish(topic, payload, qos=1, retain=True)

    async def stop(self) -> None:
        """Say `offline` ourselves (a clean stop sends no Will), then disconnect."""
        info = self._client.publish(self.gateway_topic, "offline", qos=1, retain=True)
        if self.connected.is_set():
            try:
                await asyncio.wait_for(asyncio.to_thread(info.wait_for_publish, 1.0), timeout=1.5)
            except (TimeoutError, RuntimeError, ValueError):
                logger.warning("state topics: could not publish offline before stopping")
        self._client.disconnect()
        await asyncio.to_thread(self._client.loop_stop)
