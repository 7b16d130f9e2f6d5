"""`huxiao demo` as a new user runs it: it comes up, serves the school, and stops cleanly on Ctrl-C."""

from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.paths import REPO
from tests.fixtures.ports import free_port


def get_json(url: str) -> object:
    with urllib.request.urlopen(url, timeout=3) as response:
        return json.loads(response.read())


def test_demo_comes_up_with_a_school_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "demo.log"
    with (
        log.open("wb") as sink,
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gateway",
                "--log-level",
                "WARNING",
                "demo",
                "--port",
                str(port),
                "--workdir",
                str(tmp_path / "demo"),
            ],
            cwd=REPO,
            stdout=sink,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        ) as proc,
    ):
        try:
            deadline = time.monotonic() + 60
            summary: dict[str, object] = {}
            while time.monotonic() < deadline and proc.poll() is None:
                try:
                    summary = get_json(f"http://127.0.0.1:{port}/api/summary")  # type: ignore[assignment]
                    cameras = summary["cameras"]
                    if isinstance(cameras, dict) and cameras["unknown"] == 0:
                        break
                except OSError:
                    pass
                time.sleep(0.2)
            assert summary, log.read_text()
            health = get_json(f"http://127.0.0.1:{port}/healthz")
            assert isinstance(health, dict)
            assert health["status"] == "ok", health
            assert {"storage", "buttons", "cameras", "patrol", "upstream:police"} <= set(health["parts"])
            cameras = summary["cameras"]
            assert isinstance(cameras, dict)
            assert cameras["total"] == 12
            assert cameras["offline"] == 1  # fence-east, switched off on purpose
            assert cameras["degraded"] >= 1  # fence-west, its password changed
            banner = log.read_text()
            assert "status page" in banner
            _banner_lets_a_new_user_try_every_part(banner, port)
            _the_center_shows_the_city_and_takes_the_duty_token(banner)
            _banner_lets_a_new_user_watch_a_camera_through_gb28181(banner, port, tmp_path)
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=15)
            assert proc.returncode == 0, log.read_text()
        finally:
            if proc.poll() is None:
                proc.kill()
    assert "demo stopped" in log.read_text()
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0  # nothing left listening


def _command(line: str) -> list[str]:
    """A command line the banner prints, run with this interpreter (the banner names the console script or
    `python -m gateway`, whichever this machine has)."""
    words = shlex.split(line)
    verb = next(words.index(v) for v in ("press", "discover", "watch") if v in words)
    return [sys.executable, "-m", "gateway", *words[verb:]]


def _banner_lets_a_new_user_try_every_part(banner: str, port: int) -> None:
    base = f"http://127.0.0.1:{port}"
    assert f"{base}/healthz" in banner
    assert f"{base}/api/openapi.json" in banner
    # Three cameras are staged faulty: switched off, password changed, a too dark picture.
    assert "12 cameras, 3 of them faulty" in banner
    for camera in ("fence-east", "fence-west", "corridor-2"):
        assert camera in banner

    press_lines = [line.strip() for line in banner.splitlines() if " press --" in line]
    assert len(press_lines) == 3, banner
    guard_room = next(line for line in press_lines if "guard-room" in line)
    pressed = subprocess.run(_command(guard_room), capture_output=True, text=True, timeout=30, cwd=REPO, check=False)
    assert pressed.returncode == 0, pressed.stderr
    event_id = pressed.stdout.split("event id")[-1].strip()
    deadline = time.monotonic() + 15
    alarm: dict[str, object] = {}
    while time.monotonic() < deadline and not alarm:
        alarms = get_json(f"{base}/api/alarms?limit=20")
        assert isinstance(alarms, list)
        alarm = next((a for a in alarms if a.get("button_event_id") == event_id), {})
        if not alarm:
            time.sleep(0.1)
    assert alarm.get("button") == "guard-room", alarm
    assert alarm.get("type") == "panic", alarm

    discover_line = next(line.strip() for line in banner.splitlines() if " discover --target " in line)
    found = subprocess.run(_command(discover_line), capture_output=True, text=True, timeout=30, cwd=REPO, check=False)
    assert found.returncode == 0, found.stderr
    # Every camera but the one switched off answers the directed probe.
    assert "11 camera(s) answered" in found.stdout, found.stdout


def _the_center_shows_the_city_and_takes_the_duty_token(banner: str) -> None:
    """The banner names the center's console and a duty token; the city view lists the demo school and the
    simulated city, and the demo school's alarm (the monthly test pressed at start) is acknowledged with it."""
    center = next(line.split()[3] for line in banner.splitlines() if "command center" in line).rstrip("/")
    token = next(line.split()[3] for line in banner.splitlines() if "duty token" in line)
    health: Any = get_json(f"{center}/healthz")
    assert health["status"] == "ok", health
    deadline = time.monotonic() + 30
    city: Any = {}
    alarms: Any = []
    while time.monotonic() < deadline:
        city, alarms = get_json(f"{center}/api/city"), get_json(f"{center}/api/alarms")
        # A few dozen schools report every 10 s, each starting at a random moment of its first interval.
        if city["reporting"] >= 20 and alarms:
            break
        time.sleep(0.2)
    assert city["schools"] == 37, city  # the demo school and 36 simulated ones
    assert 20 <= city["reporting"] < 37, city  # a few never report
    assert len(city["by_district"]) == 5, city
    schools: Any = get_json(f"{center}/api/schools")
    demo = next(s for s in schools if s["id"] == "51040200001")
    assert demo["cameras"], demo
    below = [s for s in schools if s["reporting"] and s["networking_rate"] < 0.8]
    assert below, "a realistic city has schools below the 80% target"
    alarm = next(a for a in alarms if a["school"]["id"] == "51040200001")
    url = f"{center}/api/alarms/{alarm['id']}/ack"
    request = urllib.request.Request(url, data=b'{"by": "demo"}', method="POST")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=5)
    refused.value.close()
    assert refused.value.code == 401  # an ack needs the duty token
    request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=5) as answer:
        assert json.loads(answer.read())["acknowledged"]["by"] == "demo"


def _banner_lets_a_new_user_watch_a_camera_through_gb28181(banner: str, port: int, tmp_path: Path) -> None:
    """The watch line: the simulated police video platform plays a camera through the gateway's GB/T 28181
    device, and FFmpeg's own probe (guessing the format itself, as `ffplay FILE` does) reads the saved PS."""
    deadline = time.monotonic() + 15
    links: list[dict[str, object]] = []
    while time.monotonic() < deadline and not (links and links[0]["registered"]):
        summary = get_json(f"http://127.0.0.1:{port}/api/summary")
        assert isinstance(summary, dict)
        links = summary["gb28181"]
        if not (links and links[0]["registered"]):
            time.sleep(0.2)
    assert links, "no gb28181 upstream in the demo"
    assert links[0]["registered"], links
    (line,) = [line.strip() for line in banner.splitlines() if " watch --platform " in line]
    words = shlex.split(line)
    out = Path(words[words.index("--out") + 1])
    watched = subprocess.run(_command(line), capture_output=True, text=True, timeout=60, cwd=REPO, check=False)
    assert watched.returncode == 0, watched.stderr
    assert f"ffplay {out}" in watched.stdout
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-count_frames", "-show_streams", "-of", "json", str(out)],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    (stream,) = json.loads(probe.stdout)["streams"]
    assert (stream["codec_name"], stream["width"], stream["height"]) == ("h264", 640, 360), stream
    # Five seconds of a 15 fps camera: well over one key frame's worth, whatever the load on the machine.
    assert int(stream["nb_read_frames"]) >= 15, stream
