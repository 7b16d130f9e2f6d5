"""Faults made to happen for real: the gateway SIGKILLed mid-burst, the broker restarted, a flood of garbage.

The gateway runs as its own process (`python -m gateway run`), as it does at a school.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from simulators.broker import MosquittoBroker
from simulators.buttons import SimulatedButton
from simulators.platform import PlatformReceiver
from tests.fixtures.mosquitto import broker
from tests.fixtures.paths import REPO
from tests.fixtures.platform import PLATFORM_SECRET, platform
from tests.fixtures.ports import free_port
from tests.fixtures.waiting import eventually

__all__ = ["broker", "platform"]
SCHOOL = "51040200001"


class GatewayProcess:
    def __init__(self, tmp_path: Path, broker: MosquittoBroker, platform_url: str, buttons: list[str]) -> None:
        self.port = free_port()
        self.config = tmp_path / "school.yaml"
        self.log = tmp_path / "gateway.log"
        document = {
            "school": {"id": SCHOOL, "name": "一小"},
            "storage": {"path": str(tmp_path / "gw.db")},
            "mqtt": {"url": broker.url},
            # A load test: every press must arrive one by one, so flood folding is out of the way.
            "buttons": [{"id": b, "name": b, "flood": {"presses": 1_000_000}} for b in buttons],
            "upstreams": [
                {
                    "name": "police",
                    "kind": "http",
                    "url": platform_url,
                    "secret": PLATFORM_SECRET,
                    "retry_first": "50ms",
                    "retry_max": "500ms",
                }
            ],
            "web": {"listen": f"127.0.0.1:{self.port}"},
        }
        self.config.write_text(json.dumps(document), encoding="utf-8")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as sink:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "gateway", "--log-level", "WARNING", "run", "-c", str(self.config)],
                cwd=REPO,
                stdout=sink,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=1) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def buttons_connected(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/api/summary", timeout=1) as response:
                return bool(json.loads(response.read())["upstreams"])
        except OSError:
            return False

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def buttons(broker: MosquittoBroker) -> Iterator[list[SimulatedButton]]:
    sims = [SimulatedButton(f"b{i}", broker.port, school_id=SCHOOL) for i in range(4)]
    for sim in sims:
        sim.connect()
    yield sims
    for sim in sims:
        sim.disconnect()


@pytest.fixture
async def gateway(
    tmp_path: Path, broker: MosquittoBroker, platform: tuple[PlatformReceiver, str], buttons: list[SimulatedButton]
) -> AsyncIterator[GatewayProcess]:
    process = GatewayProcess(tmp_path, broker, platform[1], [b.button_id for b in buttons])
    process.start()
    try:
        await eventually(process.healthy, timeout=30, what="gateway healthy")
        yield process
    finally:
        process.stop()


def arrived_in_order(receiver: PlatformReceiver, sent: dict[str, list[str]]) -> None:
    for button_id, ids in sent.items():
        got = [
            e.data["button_event_id"]
            for e in receiver.events
            if e.type == "cn.huxiao.alarm.panic" and e.data["button"]["id"] == button_id
        ]
        assert got == ids, f"{button_id}: {len(got)} of {len(ids)} arrived, or out of order"


async def test_sigkill_mid_burst_loses_nothing(
    gateway: GatewayProcess, platform: tuple[PlatformReceiver, str], buttons: list[SimulatedButton]
) -> None:
    receiver, _ = platform
    # The gateway's broker session exists from its first start; everything sent from now on must arrive.
    await eventually(lambda: receiver.events == [] and gateway.buttons_connected(), what="gateway subscribed")
    sent: dict[str, list[str]] = {b.button_id: [] for b in buttons}
    for round_ in range(150):
        for button in buttons:
            sent[button.button_id].append(button.press())
        if round_ == 40:
            await receiver.wait_for(20, timeout=30)
            gateway.kill()  # mid-burst: some alarms stored and unsent, some received and unacked, some unsent
    gateway.start()
    await receiver.wait_for(600, timeout=90, kind="cn.huxiao.alarm.panic")
    arrived_in_order(receiver, sent)
    # A retry after the crash carries the same CloudEvents id: the platform saw each alarm under one id only.
    ids_per_press: dict[str, set[str]] = {}
    for event in receiver.events:
        ids_per_press.setdefault(event.data.get("button_event_id", ""), set()).add(event.id)
    assert all(len(ids) == 1 for ids in ids_per_press.values())


async def test_broker_restart_mid_stream_loses_nothing(
    gateway: GatewayProcess,
    broker: MosquittoBroker,
    platform: tuple[PlatformReceiver, str],
    buttons: list[SimulatedButton],
) -> None:
    receiver, _ = platform
    sent: dict[str, list[str]] = {b.button_id: [] for b in buttons}
    for _ in range(25):
        for button in buttons:
            sent[button.button_id].append(button.press())
    await asyncio.to_thread(broker.restart)  # clean restart: mosquitto keeps sessions and queued messages
    for _ in range(25):
        for button in buttons:
            sent[button.button_id].append(button.press())
    await receiver.wait_for(200, timeout=90, kind="cn.huxiao.alarm.panic")
    arrived_in_order(receiver, sent)
    assert gateway.healthy()


async def test_ten_thousand_malformed_payloads_and_the_valid_alarms_among_them(
    gateway: GatewayProcess, platform: tuple[PlatformReceiver, str], buttons: list[SimulatedButton]
) -> None:
    receiver, _ = platform
    rng = random.Random(28181)
    button = buttons[0]
    topics = [f"huxiao/{SCHOOL}/buttons/{button.button_id}/{leaf}" for leaf in ("alarm", "status", "heartbeat")]
    shapes = [
        lambda: rng.randbytes(rng.randint(0, 300)),
        lambda: json.dumps({"id": rng.random(), "type": rng.choice(["panic", "fire", None, 7])}).encode()[:-1],
        lambda: json.dumps(rng.choice([[], {}, "x", 3, None, {"type": "panic"}])).encode(),
        lambda: b'{"id": "' + b"x" * rng.randint(100, 40000) + b'"}',
        lambda: rng.choice([b"maybe", b"\x00", b"online!!", b"{}" * 1000]),
    ]
    valid: list[str] = []
    for index in range(10_000):
        topic = rng.choice(topics)
        button.publish_raw(topic, rng.choice(shapes)(), qos=rng.choice([0, 1]))
        if index % 200 == 0:
            valid.append(button.press())
    await receiver.wait_for(len(valid), timeout=90, kind="cn.huxiao.alarm.panic")
    got = [e.data["button_event_id"] for e in receiver.events if e.type == "cn.huxiao.alarm.panic"]
    assert got == valid
    assert gateway.healthy()
    assert gateway.proc is not None
    assert gateway.proc.poll() is None
