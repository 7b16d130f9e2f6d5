"""Retained state topics as Home Assistant sees them: subscribe late, still get the current state."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from adapters.mqtt.state_topics import StatePublisher
from gateway.domain.config import MqttConfig
from gateway.services.supervisor import Supervisor
from simulators.broker import MosquittoBroker
from tests.fixtures.waiting import eventually


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[MosquittoBroker]:
    with MosquittoBroker(tmp_path / "broker") as running:
        yield running


def read_retained(port: int, topic: str, timeout: float = 5.0) -> str | None:
    """What a client subscribing now receives as the retained message of `topic`."""
    got: list[str] = []
    done = threading.Event()
    client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2)

    def on_message(_c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
        if message.retain:
            got.append(message.payload.decode())
        done.set()

    client.on_message = on_message
    client.on_connect = lambda c, *_: c.subscribe(topic, qos=1)
    client.connect("127.0.0.1", port)
    client.loop_start()
    done.wait(timeout)
    client.loop_stop()
    client.disconnect()
    return got[0] if got else None


async def test_gateway_and_camera_state_are_retained(broker: MosquittoBroker) -> None:
    publisher = StatePublisher(MqttConfig(url=broker.url), "51040200001")
    supervisor = Supervisor()
    supervisor.start("state-topics", publisher.run)
    async with asyncio.timeout(10):
        await publisher.connected.wait()
    publisher.publish_camera("gate-1", {"state": "offline", "reasons": ["timeout"]})
    state = await asyncio.to_thread(read_retained, broker.port, "huxiao/51040200001/cameras/gate-1/state")
    assert state is not None
    assert json.loads(state) == {"state": "offline", "reasons": ["timeout"]}
    status = await asyncio.to_thread(read_retained, broker.port, "huxiao/51040200001/gateway/status")
    assert status == "online"
    await supervisor.stop()
    await publisher.stop()
    status = await asyncio.to_thread(read_retained, broker.port, "huxiao/51040200001/gateway/status")
    assert status == "offline"


async def test_a_broker_restart_gets_a_fresh_client_and_the_state_back(tmp_path: Path) -> None:
    # The failed client is never reused (paho's own reconnect is off); the new one republishes the retained state.
    with MosquittoBroker(tmp_path / "broker") as broker:
        publisher = StatePublisher(MqttConfig(url=broker.url), "51040200001")
        supervisor = Supervisor()
        supervisor.start("state-topics", publisher.run)
        async with asyncio.timeout(10):
            await publisher.connected.wait()
        publisher.publish_camera("gate-1", {"state": "online", "reasons": []})
        first = publisher._client
        await asyncio.to_thread(broker.restart)
        await eventually(lambda: publisher.connections == 2, timeout=20, what="reconnected")
        assert publisher._client is not first
        state = await asyncio.to_thread(read_retained, broker.port, "huxiao/51040200001/cameras/gate-1/state")
        assert state is not None
        assert json.loads(state)["state"] == "online"
        await supervisor.stop()
        await publisher.stop()
