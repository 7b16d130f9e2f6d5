"""GB/T 28181 signalling speed: the device against the simulated platform, with floors measured in the same run.

- REGISTER: from the platform sending its 200 to the device counting itself registered (target ≤ 50 ms);
  floor: a bare asyncio UDP echo round trip on 127.0.0.1.
- Catalog of 1,000 channels: from the platform's query to the last item collected (target ≤ 1 s); floor: as many
  bare UDP round trips as the answer has MESSAGEs (one query + one per MESSAGE).
- Alarm: MQTT publish of a press (real Mosquitto) → the Alarm MESSAGE at the platform, through the real alarm path
  (outbox commit included; target p99 ≤ 20 ms); floor: the same publish to a bare paho subscriber.

Device, platform and alarm path share one process (one clock, so the times are comparable); the machine is shared
with other work, so figures are noisy.

    .venv/bin/python bench/gb28181.py            # about 30 s
    .venv/bin/python bench/gb28181.py --quick
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from adapters.gb28181 import manscdp  # noqa: E402
from adapters.gb28181.channels import Channel, ChannelKind, StaticChannels, channel_id  # noqa: E402
from adapters.gb28181.device import GbDevice  # noqa: E402
from gateway.domain.config import Gb28181UpstreamConfig, parse_config  # noqa: E402
from gateway.services.alarm_path import AlarmPath  # noqa: E402
from simulators.broker import MosquittoBroker  # noqa: E402
from simulators.buttons import SimulatedButton  # noqa: E402
from simulators.gb_platform import GbPlatform  # noqa: E402

DEVICE = "51040200001180000001"
SCHOOL = "51040200001"
PASSWORD = "bench-pass"


def percentiles(samples_ms: list[float]) -> dict[str, float]:
    ordered = sorted(samples_ms)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 3)

    return {"p50": round(statistics.median(ordered), 3), "p95": at(0.95), "p99": at(0.99), "n": len(ordered)}


class _Echo(asyncio.DatagramProtocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.DatagramTransport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str | object, int]) -> None:
        self.transport.sendto(data, addr)


class _Client(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.arrived: asyncio.Queue[bytes] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: tuple[str | object, int]) -> None:
        self.arrived.put_nowait(data)


async def udp_floor(rounds: int, size: int = 600) -> list[float]:
    """Bare UDP round trips of `size` bytes through the event loop, in ms."""
    loop = asyncio.get_running_loop()
    echo, _ = await loop.create_datagram_endpoint(_Echo, local_addr=("127.0.0.1", 0))
    client_transport, client = await loop.create_datagram_endpoint(_Client, local_addr=("127.0.0.1", 0))
    target = echo.get_extra_info("sockname")
    payload = b"x" * size
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        client_transport.sendto(payload, target)
        await client.arrived.get()
        samples.append((time.perf_counter() - started) * 1000)
    client_transport.close()
    echo.close()
    return samples


def device_config(platform: GbPlatform) -> Gb28181UpstreamConfig:
    return Gb28181UpstreamConfig.model_validate(
        {
            "name": "gb",
            "kind": "gb28181",
            "server": platform.server_uri,
            "device_id": DEVICE,
            "password": PASSWORD,
            "local": "127.0.0.1:0",
        }
    )


async def bench_register_and_catalog(rounds: int, channels: int) -> dict[str, object]:
    items = [
        Channel(channel_id(DEVICE, ChannelKind.CAMERA, n), f"教学楼{n}号", ChannelKind.CAMERA, n % 3 != 0, f"c{n}")
        for n in range(1, channels + 1)
    ]
    async with (
        GbPlatform(password=PASSWORD, ask_after_register=False) as platform,
        GbDevice(device_config(platform), StaticChannels(items)) as device,
    ):
        register_ms = []
        for _ in range(rounds):
            await device.register()
            register_ms.append((time.perf_counter() - platform.register_answered_at[-1]) * 1000)
        record = platform.devices[DEVICE]
        catalog_ms = []
        for _ in range(max(3, rounds // 10)):
            done_before = len(record.complete_catalogs)
            started = time.perf_counter()
            sn = await platform.query(DEVICE, "Catalog")
            while len(record.complete_catalogs) == done_before:
                await asyncio.wait_for(platform.changed.wait(), 5)
                platform.changed.clear()
            catalog_ms.append((time.perf_counter() - started) * 1000)
            assert len(record.catalogs[sn]) == channels
        messages = len(manscdp.catalog_responses("1", DEVICE, items, "GB2312"))
    floor = await udp_floor(rounds * 5)
    floor_catalog = []
    for _ in range(3):
        trips = await udp_floor(messages + 1)
        floor_catalog.append(sum(trips))
    return {
        "register_after_platform_200_ms": percentiles(register_ms),
        "register_target_ms": 50,
        "udp_echo_round_trip_ms": percentiles(floor),
        "catalog_channels": channels,
        "catalog_messages": messages,
        "catalog_ms": percentiles(catalog_ms),
        "catalog_target_ms": 1000,
        "catalog_floor_round_trips_ms": percentiles(floor_catalog),
    }


async def bench_alarm(presses: int, tmp: Path) -> dict[str, object]:
    with MosquittoBroker(tmp / "broker") as broker:
        async with GbPlatform(password=PASSWORD, ask_after_register=False) as platform:
            document = {
                "school": {"id": SCHOOL, "name": "攀枝花市第一小学"},
                "storage": {"path": str(tmp / "gw.db")},
                "mqtt": {"url": broker.url, "client_id": "bench-gw"},
                # A latency test: every press must go out one by one, so flood folding is out of the way.
                "buttons": [{"id": "b1", "name": "门卫室", "flood": {"presses": 1_000_000}}],
                "upstreams": [
                    {
                        "name": "gb",
                        "kind": "gb28181",
                        "server": platform.server_uri,
                        "device_id": DEVICE,
                        "password": PASSWORD,
                        "local": "127.0.0.1:0",
                    }
                ],
            }
            config = parse_config(json.dumps(document), env={})
            async with AlarmPath(config) as path:
                await asyncio.wait_for(path.service.listener.connected.wait(), 10)
                while DEVICE not in platform.devices:
                    await asyncio.wait_for(platform.changed.wait(), 10)
                    platform.changed.clear()
                record = platform.devices[DEVICE]
                button = SimulatedButton("b1", broker.port, school_id=SCHOOL)
                await asyncio.to_thread(button.connect)
                samples = []
                for n in range(presses):
                    pressed = time.perf_counter()
                    button.press()
                    while len(record.alarm_received_at) <= n:
                        await asyncio.wait_for(platform.changed.wait(), 10)
                        platform.changed.clear()
                    samples.append((record.alarm_received_at[n] - pressed) * 1000)
                await asyncio.to_thread(button.disconnect)
        floor = await asyncio.to_thread(mqtt_floor, broker.port, presses)
    return {
        "alarm_press_to_platform_ms": percentiles(samples),
        "alarm_target_p99_ms": 20,
        "mqtt_publish_to_bare_subscriber_ms": percentiles(floor),
    }


def mqtt_floor(port: int, count: int) -> list[float]:
    received = threading.Event()
    arrived: list[float] = []

    def on_message(*_: object) -> None:
        arrived.append(time.perf_counter())
        received.set()

    subscriber = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-floor-sub")
    subscriber.on_message = on_message
    subscriber.connect("127.0.0.1", port)
    subscriber.subscribe("floor/#", qos=1)
    subscriber.loop_start()
    publisher = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-floor-pub")
    publisher.connect("127.0.0.1", port)
    publisher.loop_start()
    time.sleep(0.5)  # the subscription is in place (a bench, not a test: no poll helper here)
    samples = []
    for _ in range(count):
        received.clear()
        started = time.perf_counter()
        publisher.publish("floor/b1/alarm", b'{"id":"x","type":"panic"}', qos=1)
        if received.wait(5):
            samples.append((arrived[-1] - started) * 1000)
    for client in (publisher, subscriber):
        client.loop_stop()
        client.disconnect()
    return samples


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    rounds, presses = (20, 30) if args.quick else (100, 200)
    results: dict[str, object] = {}
    results.update(await bench_register_and_catalog(rounds, 1000))
    with tempfile.TemporaryDirectory() as tmp:
        results.update(await bench_alarm(presses, Path(tmp)))
    print(json.dumps(results, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
