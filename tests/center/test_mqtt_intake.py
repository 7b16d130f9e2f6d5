"""The `mqtt` upstream's far end: two centers on one real Mosquitto split the events of a shared subscription,
each stored once; acks go back retained; an event naming another school than its topic is dropped."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator

import aiohttp
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from prometheus_client.parser import text_string_to_metric_families

from simulators.broker import MosquittoBroker
from tests.center.running import center_config, running_center, until
from tests.center.senders import SCHOOL_A, SCHOOL_B, alarm_event, report_event
from tests.fixtures.waiting import eventually

TOPIC = "huxiao/events"
EVENTS = 60


class Gateway:
    """A gateway's `mqtt` upstream stand-in: QoS 1 publishes, and what it sees on its acks topic."""

    def __init__(self, broker: MosquittoBroker, school: str) -> None:
        self.acks: list[dict[str, object]] = []
        self._lock = threading.Lock()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"gw-{school}", protocol=mqtt.MQTTv5)
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", broker.port)
        self.client.subscribe(f"{TOPIC}/{school}/acks", qos=1)
        self.client.loop_start()

    def _on_message(self, client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.acks.append(json.loads(message.payload))

    def publish(self, topic: str, payload: bytes) -> None:
        self.client.publish(topic, payload, qos=1).wait_for_publish(5)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture
def gateway(broker: MosquittoBroker) -> Iterator[Gateway]:
    running = Gateway(broker, SCHOOL_A)
    yield running
    running.close()


async def mqtt_taken(http: aiohttp.ClientSession, base: str) -> float:
    async with http.get(f"{base}/metrics") as answer:
        text = await answer.text()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "huxiao_center_events_total" and sample.labels.get("via") == "mqtt":
                return sample.value
    return 0.0


async def alarm_count(http: aiohttp.ClientSession, base: str) -> int:
    async with http.get(f"{base}/api/alarms?limit=1000") as answer:
        return len(await answer.json())


async def test_two_centers_split_a_shared_subscription_and_store_each_event_once(
    broker: MosquittoBroker, gateway: Gateway, storage_url: str
) -> None:
    first = center_config(storage_url, broker.url)
    second = center_config(storage_url, broker.url)
    async with (
        running_center(first, "one") as base_one,
        running_center(second, "two") as base_two,
        aiohttp.ClientSession() as http,
    ):
        for index in range(EVENTS):
            await asyncio.to_thread(gateway.publish, f"{TOPIC}/{SCHOOL_A}", alarm_event(SCHOOL_A, f"p-{index}"))

        async def all_in() -> bool:
            return await alarm_count(http, base_one) >= EVENTS

        await until(all_in, what=f"{EVENTS} alarms stored")
        assert await alarm_count(http, base_one) == EVENTS
        assert await alarm_count(http, base_two) == EVENTS
        one, two = await mqtt_taken(http, base_one), await mqtt_taken(http, base_two)
    assert one + two == EVENTS
    assert one > 0
    assert two > 0


async def test_a_report_over_mqtt_is_answered_retained_on_the_acks_topic(
    broker: MosquittoBroker, gateway: Gateway, storage_url: str
) -> None:
    async with running_center(center_config(storage_url, broker.url)) as base, aiohttp.ClientSession() as http:
        await asyncio.to_thread(gateway.publish, f"{TOPIC}/{SCHOOL_A}", alarm_event(SCHOOL_A, "mqtt-press"))
        rows: list[dict[str, object]] = []

        async def stored() -> bool:
            async with http.get(f"{base}/api/alarms") as answer:
                rows[:] = await answer.json()
            return bool(rows)

        await until(stored, what="the alarm over MQTT")
        async with http.post(f"{base}/api/alarms/{rows[0]['id']}/ack", json={"by": "李警官"}) as answer:
            assert answer.status == 200
        await eventually(
            lambda: any(a.get("acks") for a in gateway.acks), what="the ack list published on the acks topic"
        )
        gateway.acks.clear()
        await asyncio.to_thread(gateway.publish, f"{TOPIC}/{SCHOOL_A}/status", report_event(SCHOOL_A, 0.9))
        await eventually(lambda: bool(gateway.acks), what="the answer to the report")
        assert gateway.acks[-1]["acks"] == [
            {"button_event_id": "mqtt-press", "by": "李警官", "at": gateway.acks[-1]["acks"][0]["at"]}  # type: ignore[index]
        ]
        async with http.get(f"{base}/api/schools") as answer:
            schools = {s["id"]: s for s in await answer.json()}
        assert schools[SCHOOL_A]["reporting"] is True

    late = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="late-gateway", protocol=mqtt.MQTTv5)
    retained: list[bytes] = []
    late.on_message = lambda c, u, m: retained.append(bytes(m.payload))
    late.connect("127.0.0.1", broker.port)
    late.subscribe(f"{TOPIC}/{SCHOOL_A}/acks", qos=1)
    late.loop_start()
    try:
        await eventually(lambda: bool(retained), what="the retained ack list for a gateway connecting later")
    finally:
        late.loop_stop()
        late.disconnect()
    assert json.loads(retained[0])["acks"][0]["button_event_id"] == "mqtt-press"


async def test_an_event_naming_another_school_than_its_topic_is_dropped(
    broker: MosquittoBroker, gateway: Gateway, storage_url: str
) -> None:
    async with running_center(center_config(storage_url, broker.url)) as base, aiohttp.ClientSession() as http:
        await asyncio.to_thread(gateway.publish, f"{TOPIC}/{SCHOOL_A}", alarm_event(SCHOOL_B, "spoofed"))
        await asyncio.to_thread(gateway.publish, f"{TOPIC}/{SCHOOL_A}", alarm_event(SCHOOL_A, "genuine"))

        async def one_in() -> bool:
            return await alarm_count(http, base) >= 1

        await until(one_in, what="the genuine alarm")
        async with http.get(f"{base}/api/alarms") as answer:
            ids = [a["button_event_id"] for a in await answer.json()]
        async with http.get(f"{base}/metrics") as answer:
            metrics = await answer.text()
        async with http.get(f"{base}/healthz") as answer:
            health = await answer.json()
    assert health["parts"]["mqtt"]["ok"] is True
    assert ids == ["genuine"]
    assert 'huxiao_center_refused_total{reason="wrong_topic"} 1' in metrics
