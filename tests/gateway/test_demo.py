"""`huxiao demo` as a new user runs it: it comes up, serves the school, and stops cleanly on Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

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
            assert "status page" in log.read_text()
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=15)
            assert proc.returncode == 0, log.read_text()
        finally:
            if proc.poll() is None:
                proc.kill()
    assert "demo stopped" in log.read_text()
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0  # nothing left listening
