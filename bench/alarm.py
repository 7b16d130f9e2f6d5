"""Alarm latency, button press → police platform receipt, with the gateway's disk commit in the path.

A real Mosquitto, the gateway as its own process (`python -m gateway run`), a real HTTP platform and simulated
buttons. In the same run, the floor: the same messages through the same broker straight to a bare paho
subscriber. Prints p50/p95/p99/max side by side for single alarms and for a burst (default 1,000 alarms/s for 10 s),
with the loss count and order violations per button; for two brokers one after the other: ours
(`set_tcp_nodelay true`) and one with Mosquitto's stock settings, as a school's own broker often is.

    .venv/bin/python bench/alarm.py            # full run (about a minute)
    .venv/bin/python bench/alarm.py --quick    # smaller samples
    .venv/bin/python bench/alarm.py --broker stock
    .venv/bin/python bench/alarm.py --gateway ../before   # another checkout's gateway, same bench and peers
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from simulators.broker import MosquittoBroker  # noqa: E402
from simulators.buttons import SimulatedButton  # noqa: E402

SCHOOL = "51040200001"
SECRET = "bench-secret"
# A platform asked to stop closes its connections gracefully; on a busy machine that can take a while.
PLATFORM_STOP_S = 10.0


def percentiles(samples_ms: list[float]) -> tuple[float, float, float]:
    if not samples_ms:
        return (float("nan"),) * 3
    ordered = sorted(samples_ms)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return statistics.median(ordered), at(0.95), at(0.99)


class FloorSubscriber:
    """A bare paho QoS 1 subscriber: what the broker alone costs."""

    def __init__(self, port: int) -> None:
        self.arrivals: dict[str, float] = {}
        self.done = threading.Condition()
        self.client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="floor")
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.subscribe(f"huxiao/{SCHOOL}/buttons/+/alarm", qos=1)
        self.client.loop_start()

    def _on_message(self, _c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
        now = time.time()
        try:
            event_id = json.loads(message.payload)["id"]
        except (ValueError, KeyError):
            return
        with self.done:
            self.arrivals[event_id] = now
            self.done.notify_all()

    def wait(self, count: int, timeout: float) -> None:
        with self.done:
            self.done.wait_for(lambda: len(self.arrivals) >= count, timeout)

    def arrival(self, event_id: str, timeout: float) -> float | None:
        with self.done:
            self.done.wait_for(lambda: event_id in self.arrivals, timeout)
            return self.arrivals.get(event_id)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def run_singles(
    buttons: list[SimulatedButton], count: int, arrival: Callable[[str, float], float | None]
) -> list[float]:
    """One alarm at a time, waiting for each (woken by its arrival, not polling): latency without queueing."""
    samples = []
    for index in range(count):
        button = buttons[index % len(buttons)]
        sent = time.time()
        event_id = button.press()
        at = arrival(event_id, 5.0)
        if at is not None:
            samples.append((at - sent) * 1000)
    return samples


def run_burst(
    buttons: list[SimulatedButton], rate: int, seconds: float
) -> tuple[dict[str, float], dict[str, list[str]]]:
    """`rate` alarms a second spread over the buttons, paced in 10 ms slices; returns send times and order."""
    sent_at: dict[str, float] = {}
    order: dict[str, list[str]] = {b.button_id: [] for b in buttons}
    per_slice = max(1, rate // 100)
    start = time.monotonic()
    slices = int(seconds * 100)
    index = 0
    for slice_ in range(slices):
        target = start + slice_ / 100
        while time.monotonic() < target:
            time.sleep(0.0005)
        for _ in range(per_slice):
            button = buttons[index % len(buttons)]
            index += 1
            now = time.time()
            event_id = button.press()
            sent_at[event_id] = now
            order[button.button_id].append(event_id)
    return sent_at, order


class PlatformProcess:
    """The police platform in a process of its own, so the buttons' publishing does not slow its answers.

    It prints each event as it arrives, and a thread here reads the lines: the bench never polls the platform,
    whose answers to polling would compete with the gateway's deliveries for the same two cores.
    """

    def __init__(self, port: int) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}/alarms"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "simulators.platform", "--port", str(port), "--secret", SECRET, "--print-arrivals"],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.proc.stdout is not None
        self.proc.stdout.readline()  # READY
        self.seen: list[dict[str, object]] = []
        self._by_button_event: dict[str, float] = {}
        self._arrived = threading.Condition()
        self._reader = threading.Thread(target=self._read, args=(self.proc.stdout,), daemon=True)
        self._reader.start()

    def _read(self, lines: IO[str]) -> None:
        for line in lines:
            row = json.loads(line)
            with self._arrived:
                self.seen.append(row)
                self._by_button_event[str(row["button_event_id"])] = float(row["at"])
                self._arrived.notify_all()

    def wait_count(self, count: int, timeout: float) -> int:
        with self._arrived:
            self._arrived.wait_for(lambda: len(self.seen) >= count, timeout)
            return len(self.seen)

    def arrival(self, event_id: str, timeout: float) -> float | None:
        with self._arrived:
            self._arrived.wait_for(lambda: event_id in self._by_button_event, timeout)
            return self._by_button_event.get(event_id)

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=PLATFORM_STOP_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()  # its figures are read already: a slow graceful stop must not lose the run's results
            self.proc.wait()


def wait_healthy(port: int) -> None:
    for _ in range(300):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("the gateway did not start")


@dataclass(frozen=True, slots=True)
class Measured:
    """One broker setting's figures: the floor and the gateway, singles and burst, in ms."""

    floor_singles: list[float]
    gw_singles: list[float]
    floor_burst: list[float]
    gw_burst: list[float]
    sent: int
    lost: int
    out_of_order: int


def measure(args: argparse.Namespace, *, tcp_nodelay: bool, profile: Path | None) -> Measured:
    """A fresh broker (with or without `set_tcp_nodelay`), platform and gateway; the floor, then the gateway."""
    work = Path(tempfile.mkdtemp(prefix="huxiao-bench-"))
    checkout = args.gateway.resolve() if args.gateway else REPO
    broker = MosquittoBroker(work / "broker", tcp_nodelay=tcp_nodelay)
    broker.start()
    platform = PlatformProcess(_free_port())
    button_ids = [f"b{i:02d}" for i in range(args.buttons)]
    web_port = _free_port()
    config = {
        "school": {"id": SCHOOL, "name": "bench"},
        "storage": {"path": str(work / "gw.db")},
        "mqtt": {"url": broker.url},
        "buttons": [{"id": b, "name": b, **_no_flood_folding(checkout)} for b in button_ids],
        "upstreams": [{"name": "police", "kind": "http", "url": platform.url, "secret": SECRET}],
        "web": {"listen": f"127.0.0.1:{web_port}"},
    }
    (work / "school.yaml").write_text(json.dumps(config), encoding="utf-8")
    log = (work / "gateway.log").open("wb")
    profiling = ["-m", "cProfile", "-o", str(profile.resolve())] if profile else []
    python = str(checkout / ".venv" / "bin" / "python") if args.gateway else sys.executable
    gateway = subprocess.Popen(
        [python, *profiling, "-m", "gateway", "--log-level", "WARNING", "run", "-c", str(work / "school.yaml")],
        cwd=checkout,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    buttons = [SimulatedButton(b, broker.port, school_id=SCHOOL) for b in button_ids]
    try:
        wait_healthy(web_port)
        for button in buttons:
            button.connect()
        time.sleep(1.0)  # the gateway's subscriptions settle

        # Floor: the same presses to a bare subscriber (the gateway takes them too; its results are not counted).
        floor = FloorSubscriber(broker.port)
        floor_singles = run_singles(buttons, args.singles, floor.arrival)
        floor.arrivals.clear()
        sent_floor, _ = run_burst(buttons, args.rate, args.seconds)
        floor.wait(len(sent_floor), 60)
        floor_burst = [(floor.arrivals[i] - t) * 1000 for i, t in sent_floor.items() if i in floor.arrivals]
        floor.close()
        platform.wait_count(args.singles + len(sent_floor), 120)  # the gateway finishes the floor's presses first

        # Gateway: press → platform receipt, through the gateway's fsync'd outbox.
        gw_singles = run_singles(buttons, args.singles, platform.arrival)
        before = len(platform.seen)
        sent_gw, order = run_burst(buttons, args.rate, args.seconds)
        platform.wait_count(before + len(sent_gw), 120)
        rows = platform.seen[before:]
        by_id = {str(r["button_event_id"]): float(r["at"]) for r in rows}  # type: ignore[arg-type]
        gw_burst = [(by_id[i] - t) * 1000 for i, t in sent_gw.items() if i in by_id]
        lost = sum(1 for i in sent_gw if i not in by_id)
        violations = 0
        for button_id, ids in order.items():
            got = [str(r["button_event_id"]) for r in rows if r["button"] == button_id]
            violations += sum(1 for a, b in zip(got, ids, strict=False) if a != b)
    finally:
        for button in buttons:
            button.disconnect()
        gateway.send_signal(signal.SIGTERM)
        gateway.wait(timeout=10)
        log.close()
        platform.stop()
        broker.stop()
    return Measured(floor_singles, gw_singles, floor_burst, gw_burst, len(sent_gw), lost, violations)


# The broker settings measured: ours (Nagle off on the broker's side) and Mosquitto's stock one, which a school's
# existing broker has; each beside its own floor.
SETTINGS = {"tuned": True, "stock": False}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--singles", type=int, default=300)
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--buttons", type=int, default=10)
    parser.add_argument("--quick", action="store_true", help="100 singles and a 3 s burst")
    parser.add_argument(
        "--broker",
        choices=[*SETTINGS, "both"],
        default="both",
        help="tuned: set_tcp_nodelay true; stock: Mosquitto's default (Nagle on); both (default): one after the other",
    )
    parser.add_argument("--profile", type=Path, help="write a cProfile of the gateway's event-loop thread here")
    parser.add_argument(
        "--gateway",
        type=Path,
        help="run the gateway of another checkout (with its own .venv) in the same bench: before/after figures",
    )
    args = parser.parse_args()
    if args.quick:
        args.singles, args.seconds = 100, 3.0
    names = list(SETTINGS) if args.broker == "both" else [args.broker]
    results = {
        name: measure(args, tcp_nodelay=SETTINGS[name], profile=_profile_path(args.profile, name)) for name in names
    }

    print(
        f"\nalarm latency, button publish → platform receipt (ms); {args.buttons} buttons; loopback; "
        f"{os.cpu_count()} cores; broker tuned = set_tcp_nodelay true, stock = Mosquitto's default"
    )
    print(f"{'':54}{'p50':>9}{'p95':>9}{'p99':>9}{'max':>9}{'n':>7}")
    for name, got in results.items():
        table = [
            (f"{name}: floor, broker → bare subscriber, single", got.floor_singles),
            (f"{name}: gateway → platform, fsync first, single", got.gw_singles),
            (f"{name}: floor, burst {args.rate}/s × {args.seconds:g} s", got.floor_burst),
            (f"{name}: gateway, burst {args.rate}/s × {args.seconds:g} s", got.gw_burst),
        ]
        for label, samples in table:
            p50, p95, p99 = percentiles(samples)
            worst = max(samples, default=float("nan"))
            print(f"{label:54}{p50:9.2f}{p95:9.2f}{p99:9.2f}{worst:9.2f}{len(samples):7d}")
    print()
    for name, got in results.items():
        p50, _p95, p99 = percentiles(got.gw_singles)
        ratio = p50 / max(percentiles(got.floor_singles)[0], 1e-9)
        print(
            f"{name}: gateway single p50 {p50:.2f} ms = {ratio:.1f}× its broker floor, p99 {p99:.2f} ms; "
            f"burst sent {got.sent}, lost {got.lost}, out of order {got.out_of_order}"
        )
    print("targets: single p50 ≤ 3 ms, p99 ≤ 10 ms with either broker setting (required: p50 ≤ 5 ms, p99 ≤ 20 ms)")


def _no_flood_folding(checkout: Path) -> dict[str, object]:
    """A load test: every press must arrive one by one, so flood folding is set out of the way (where the
    checkout has it: an older one measured with `--gateway` may not)."""
    return {"flood": {"presses": 1_000_000}} if any(checkout.glob("gateway/**/flood.py")) else {}


def _profile_path(asked: Path | None, setting: str) -> Path | None:
    """One profile per broker setting: gateway.prof becomes gateway-tuned.prof and gateway-stock.prof."""
    return asked.with_name(f"{asked.stem}-{setting}{asked.suffix}") if asked else None


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


if __name__ == "__main__":
    main()
