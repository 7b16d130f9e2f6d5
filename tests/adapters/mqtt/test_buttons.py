"""The button listener against a real Mosquitto: acknowledgement only after storing, the persistent session,
reconnecting with a fresh client after the broker restarts."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import paho.mqtt.client as mqtt
import pytest

from adapters.mqtt.buttons import ButtonListener
from adapters.mqtt.profiles import Route
from adapters.mqtt.session import RECONNECT_FIRST_S, RECONNECT_MAX_S
from gateway.domain.config import MqttConfig
from gateway.services.supervisor import Supervisor
from simulators.broker import MosquittoBroker
from simulators.buttons import SimulatedButton
from tests.fixtures.mosquitto import broker
from tests.fixtures.waiting import eventually

__all__ = ["broker"]
SCHOOL = "51040200001"
TOPIC = f"huxiao/{SCHOOL}/buttons/b1/alarm"
ROUTES = {TOPIC: Route("b1", "alarm")}


class Store:
    """The handler: records what it is given (in the commit thread) and says whether it was stored."""

    def __init__(self, stored: bool = True) -> None:
        self.stored = stored
        self.seen: list[tuple[bytes, bool]] = []
        self._lock = threading.Lock()

    def __call__(self, batch: list[tuple[Route, mqtt.MQTTMessage]]) -> list[bool]:
        with self._lock:
            self.seen += [(bytes(m.payload), bool(m.dup)) for _r, m in batch]
        return [self.stored] * len(batch)

    def payloads(self) -> list[bytes]:
        with self._lock:
            return [p for p, _ in self.seen]


@pytest.fixture
async def button(broker: MosquittoBroker) -> AsyncIterator[SimulatedButton]:
    sim = await asyncio.to_thread(_connected, SimulatedButton("b1", broker.port, school_id=SCHOOL))
    yield sim
    sim.disconnect()


def _connected(sim: SimulatedButton) -> SimulatedButton:
    sim.connect()
    return sim


def listener(
    broker: MosquittoBroker, handler: Callable[[list[tuple[Route, mqtt.MQTTMessage]]], list[bool]]
) -> ButtonListener:
    config = MqttConfig(url=broker.url, client_id="gw-test")
    return ButtonListener(config, SCHOOL, ROUTES, handler)


@dataclass
class Running:
    """A listener with its session held by a supervisor, as the gateway runs it."""

    listener: ButtonListener
    supervisor: Supervisor

    @property
    def connections(self) -> int:
        return self.listener.connections

    async def stop(self) -> None:
        await self.supervisor.stop()
        await self.listener.stop()


async def running(listener: ButtonListener) -> Running:
    listener.start()
    supervisor = Supervisor()
    supervisor.start("buttons", listener.run)
    await asyncio.wait_for(listener.connected.wait(), 10)
    return Running(listener, supervisor)


async def published(sim: SimulatedButton, payload: bytes) -> None:
    await asyncio.to_thread(sim.publish_raw(TOPIC, payload).wait_for_publish, 5)


async def test_a_message_that_could_not_be_stored_is_not_acknowledged_and_comes_again(
    broker: MosquittoBroker, button: SimulatedButton
) -> None:
    failing = Store(stored=False)  # as when the disk is full
    first = await running(listener(broker, failing))
    await published(button, b'{"id":"p1"}')
    await eventually(lambda: failing.payloads() == [b'{"id":"p1"}'], what="message handed over")
    await first.stop()

    working = Store()
    second = await running(listener(broker, working))
    await eventually(lambda: working.payloads() == [b'{"id":"p1"}'], what="message sent again")
    assert working.seen[0][1] is True  # the broker's redelivery, flagged DUP
    await second.stop()

    third = Store()
    last = await running(listener(broker, third))
    await published(button, b'{"id":"p2"}')
    await eventually(lambda: third.payloads() == [b'{"id":"p2"}'], what="next message")
    assert b'{"id":"p1"}' not in third.payloads()  # acknowledged once stored: not sent a third time
    await last.stop()


async def test_what_arrives_while_the_gateway_is_away_is_queued_for_it(
    broker: MosquittoBroker, button: SimulatedButton
) -> None:
    store = Store()
    first = await running(listener(broker, store))
    await first.stop()
    for n in range(5):
        await published(button, f'{{"id":"away-{n}"}}'.encode())
    again = await running(listener(broker, store))
    await eventually(lambda: len(store.payloads()) == 5, what="queued messages")
    assert store.payloads() == [f'{{"id":"away-{n}"}}'.encode() for n in range(5)]
    await again.stop()


async def test_a_broker_restart_is_survived_with_a_fresh_client(
    broker: MosquittoBroker, button: SimulatedButton
) -> None:
    store = Store()
    buttons = await running(listener(broker, store))
    assert buttons.connections == 1
    await asyncio.to_thread(broker.restart)
    await eventually(lambda: buttons.connections == 2, timeout=20, what="gateway reconnected")
    await eventually(button.is_connected, timeout=20, what="button reconnected")
    await published(button, b'{"id":"after"}')
    await eventually(lambda: store.payloads() == [b'{"id":"after"}'], what="message after the restart")
    await buttons.stop()


def test_reconnect_delays_double_up_to_the_cap_with_jitter() -> None:
    config = MqttConfig(url="mqtt://127.0.0.1:1")
    draws = iter([0.0] * 10 + [0.999])
    subject = ButtonListener(config, SCHOOL, ROUTES, Store(), draw=lambda: next(draws))
    delays = [subject._delay(n) for n in range(1, 11)]
    assert delays[0] == RECONNECT_FIRST_S
    assert delays[1] == 2 * RECONNECT_FIRST_S
    assert max(delays) == RECONNECT_MAX_S
    assert subject._delay(1) < RECONNECT_FIRST_S  # jitter only ever shortens a delay
