"""Alarm latency through the `mqtt` upstream: button press → the center's subscriber on a central broker.

Two real Mosquittos (the school's and the city's), the gateway as its own process (`python -m gateway run`) with
one `mqtt` upstream, and a bare paho subscriber as the center. In the same run, the floor: the same presses
through the school's broker straight to a bare subscriber (one QoS 1 hop). The gateway's path is two hops plus the
fsync'd outbox commit, so its figure is compared with twice the floor.

    .venv/bin/python bench/mqtt_upstream.py            # 300 single alarms
    .venv/bin/python bench/mqtt_upstream.py --quick    # 100
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from simulators.broker import MosquittoBroker  # noqa: E402
from simulators.buttons import SimulatedButton  # noqa: E402

SCHOOL = "51040200001"
TOPIC = "huxiao/events"


def percentiles(samples_ms: list[float]) -> tuple[float, float, float]:
    if not samples_ms:
        return (float("nan"),) * 3
    ordered = sorted(samples_ms)
    return (
        statistics.median(ordered),
        ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))],
        ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))],
    )


def run_singles(buttons: list[SimulatedButton], count: int, arrived: Callable[[str], float | None]) -> list[float]:
    """One alarm at a time, waiting for each: latency without queueing."""
    samples = []
    for index in range(count):
        sent = time.time()
        event_id = buttons[index % len(buttons)].press()
        deadline = time.monotonic() + 5
        while (at := arrived(event_id)) is None and time.monotonic() < deadline:
            time.sleep(0.0005)
        if at is not None:
            samples.append((at - sent) * 1000)
    return samples


def wait_healthy(port: int) -> None:
    for _ in range(300):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("the gateway did not start")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Arrivals:
    """A bare paho QoS 1 subscriber on `topic`: when each message arrived, by the id `key` finds in it."""

    def __init__(self, port: int, topic: str, key: Callable[[dict[str, Any]], object], name: str) -> None:
        self.arrivals: dict[str, float] = {}
        self._lock = threading.Lock()
        self._key = key
        self.client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=name)
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.subscribe(topic, qos=1)
        self.client.loop_start()

    def _on_message(self, _c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
        now = time.time()
        try:
            event_id = str(self._key(json.loads(message.payload)))
        except (ValueError, KeyError, TypeError):
            return
        with self._lock:
            self.arrivals.setdefault(event_id, now)

    def arrival(self, event_id: str) -> float | None:
        with self._lock:
            return self.arrivals.get(event_id)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--singles", type=int, default=300)
    parser.add_argument("--buttons", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="100 singles")
    args = parser.parse_args()
    if args.quick:
        args.singles = 100

    work = Path(tempfile.mkdtemp(prefix="huxiao-bench-mqtt-"))
    school_broker = MosquittoBroker(work / "school")
    city_broker = MosquittoBroker(work / "city")
    school_broker.start()
    city_broker.start()
    button_ids = [f"b{i:02d}" for i in range(args.buttons)]
    web_port = _free_port()
    config = {
        "school": {"id": SCHOOL, "name": "bench"},
        "storage": {"path": str(work / "gw.db")},
        "mqtt": {"url": school_broker.url},
        "buttons": [{"id": b, "name": b} for b in button_ids],
        "upstreams": [{"name": "city", "kind": "mqtt", "url": city_broker.url, "topic": TOPIC}],
        "web": {"listen": f"127.0.0.1:{web_port}"},
    }
    (work / "school.yaml").write_text(json.dumps(config), encoding="utf-8")
    log = (work / "gateway.log").open("wb")
    gateway = subprocess.Popen(
        [sys.executable, "-m", "gateway", "--log-level", "WARNING", "run", "-c", str(work / "school.yaml")],
        cwd=REPO,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    buttons = [SimulatedButton(b, school_broker.port, school_id=SCHOOL) for b in button_ids]
    center = Arrivals(
        city_broker.port,
        f"{TOPIC}/+",
        lambda d: d["data"]["button_event_id"],
        "bench-center",
    )
    try:
        wait_healthy(web_port)
        for button in buttons:
            button.connect()
        time.sleep(1.0)  # the gateway's subscriptions and its upstream session settle

        floor = Arrivals(school_broker.port, f"huxiao/{SCHOOL}/buttons/+/alarm", lambda d: d["id"], "bench-floor")
        floor_singles = run_singles(buttons, args.singles, floor.arrival)
        floor.close()
        time.sleep(2.0)  # the gateway forwards the floor's presses too; let them drain before measuring it
        gateway_singles = run_singles(buttons, args.singles, center.arrival)
    finally:
        for button in buttons:
            button.disconnect()
        center.close()
        gateway.send_signal(signal.SIGTERM)
        gateway.wait(timeout=10)
        log.close()
        city_broker.stop()
        school_broker.stop()

    print(f"\nalarm latency over the mqtt upstream (ms); loopback; {os.cpu_count()} cores; shared machine: noisy")
    print(f"{'':50}{'p50':>8}{'p95':>8}{'p99':>8}{'n':>8}")
    for name, samples in (
        ("floor: one QoS 1 hop to a bare subscriber", floor_singles),
        ("gateway: press → outbox (fsync) → central broker", gateway_singles),
    ):
        p50, p95, p99 = percentiles(samples)
        print(f"{name:50}{p50:8.2f}{p95:8.2f}{p99:8.2f}{len(samples):8d}")
    ratio = percentiles(gateway_singles)[0] / max(2 * percentiles(floor_singles)[0], 1e-9)
    print(f"\ngateway p50 = {ratio:.1f}× two floor hops; targets p50 ≤ 5 ms, p99 ≤ 20 ms (policy ≤ 2 s)")
    print(f"lost: {args.singles - len(gateway_singles)} of {args.singles}")


if __name__ == "__main__":
    main()
