"""The `mqtt` upstream against real Mosquitto brokers: the school's button broker and a central one.

PUBACK is delivery; a broker restart loses nothing (the outbox sends again on the new connection); a publish the
broker's ACL refuses is not counted as delivered and goes through once the ACL allows it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from adapters.upstreams.mqtt import MqttUpstream
from gateway.domain.config import GatewayConfig, MqttUpstreamConfig, parse_config
from gateway.domain.errors import UpstreamError
from gateway.domain.events import OutboxEvent
from gateway.services.alarm_path import AlarmPath
from simulators.broker import MosquittoBroker
from simulators.buttons import SimulatedButton
from tests.fixtures.center import CenterSubscriber
from tests.fixtures.mosquitto import broker
from tests.fixtures.waiting import eventually

__all__ = ["broker"]
SCHOOL = "51040200001"


@pytest.fixture
def central(tmp_path: Path) -> Iterator[MosquittoBroker]:
    with MosquittoBroker(tmp_path / "central") as running:
        yield running


def upstream_config(url: str, **extra: Any) -> dict[str, Any]:
    return {"name": "city", "kind": "mqtt", "url": url, "retry_first": "50ms", "retry_max": "300ms", **extra}


def school(tmp_path: Path, broker: MosquittoBroker, upstream: dict[str, Any]) -> GatewayConfig:
    document = {
        "school": {"id": SCHOOL, "name": "攀枝花市第一小学"},
        "storage": {"path": str(tmp_path / "gw.db")},
        "mqtt": {"url": broker.url, "client_id": f"gw-{tmp_path.name}"},
        "buttons": [{"id": "guard-room", "name": "门卫室一键报警"}],
        "upstreams": [upstream],
    }
    return parse_config(json.dumps(document), env={})


def event(event_id: str) -> OutboxEvent:
    body = json.dumps({"specversion": "1.0", "id": event_id, "type": "cn.huxiao.alarm.panic", "data": {}}).encode()
    return OutboxEvent(1, event_id, "cn.huxiao.alarm.panic", "guard-room", "p-1", body, 0.0)


async def test_send_returns_at_the_pubAck_and_the_center_has_the_event_on_the_school_topic(
    central: MosquittoBroker,
) -> None:
    center = await asyncio.to_thread(CenterSubscriber(central.port).connect)
    config = MqttUpstreamConfig.model_validate(upstream_config(central.url))
    async with MqttUpstream(config, SCHOOL) as city:
        await city.send(event("ce-1"))
        await eventually(lambda: len(center.events()) == 1, what="the center has the event")
        assert center.topics() == [f"huxiao/events/{SCHOOL}"]
        assert center.events()[0]["id"] == "ce-1"
    center.disconnect()


async def test_no_broker_is_an_upstream_error_naming_the_upstream() -> None:
    config = MqttUpstreamConfig.model_validate(upstream_config("mqtt://127.0.0.1:1", timeout="300ms"))
    async with MqttUpstream(config, SCHOOL) as city:
        with pytest.raises(UpstreamError, match=r"^city: no PUBACK"):
            await city.send(event("ce-1"))


async def test_alarms_pressed_while_the_central_broker_restarts_all_arrive(
    tmp_path: Path, broker: MosquittoBroker, central: MosquittoBroker
) -> None:
    center = await asyncio.to_thread(CenterSubscriber(central.port).connect)
    config = school(tmp_path, broker, upstream_config(central.url))
    async with AlarmPath(config) as path:
        await asyncio.wait_for(path.service.listener.connected.wait(), 10)
        button = SimulatedButton("guard-room", broker.port, school_id=SCHOOL)
        await asyncio.to_thread(button.connect)
        first = button.press("panic")
        await eventually(lambda: len(center.events()) == 1, what="the first alarm")
        await asyncio.to_thread(central.stop)
        later = [button.press("panic") for _ in range(3)]
        await asyncio.to_thread(central.start)
        ids = {first, *later}
        await eventually(
            lambda: {e["data"]["button_event_id"] for e in center.events()} == ids, 20, "every alarm at the center"
        )
        forwarder = path.service.forwarders[0]
        await eventually(lambda: forwarder.pending == 0, what="nothing pending")
        await eventually(lambda: path.service.outbox.counts()["city"] == {"pending": 0, "delivered": 4})
        button.disconnect()
    center.disconnect()


async def test_a_publish_the_acl_refuses_is_not_delivered_and_goes_through_once_allowed(
    tmp_path: Path, broker: MosquittoBroker
) -> None:
    acl = tmp_path / "acl"
    # Everyone may read the events (the center), nobody may write them yet (the gateway).
    acl.write_text("topic read huxiao/events/#\n", encoding="utf-8")
    with MosquittoBroker(tmp_path / "central", extra=[f"acl_file {acl}"]) as central:
        center = await asyncio.to_thread(CenterSubscriber(central.port).connect)
        config = MqttUpstreamConfig.model_validate(upstream_config(central.url))
        async with MqttUpstream(config, SCHOOL) as city:
            with pytest.raises(UpstreamError, match="refused"):
                await city.send(event("ce-1"))
        path_config = school(tmp_path, broker, upstream_config(central.url))
        async with AlarmPath(path_config) as path:
            await asyncio.wait_for(path.service.listener.connected.wait(), 10)
            button = SimulatedButton("guard-room", broker.port, school_id=SCHOOL)
            await asyncio.to_thread(button.connect)
            pressed = button.press("panic")
            forwarder = path.service.forwarders[0]
            await eventually(lambda: forwarder.upstream.state.link == "down", what="the refusal seen")
            assert forwarder.pending == 1
            acl.write_text(f"topic read huxiao/events/#\ntopic readwrite huxiao/events/{SCHOOL}\n", encoding="utf-8")
            central.reload()
            await eventually(lambda: len(center.events()) == 1, 10, "the alarm at the center once allowed")
            assert center.events()[0]["data"]["button_event_id"] == pressed
            button.disconnect()
        center.disconnect()
