"""The event loop never waits on the disk: a 1,000-camera round with a transition for every camera, the gateway
whole, with API requests during the round.

Every SQLite connection the gateway opens is traced, and each statement notes the thread it runs on: a statement
on the event loop's thread (a commit with fsync for each transition, a database read in a request handler) is a
loop held for as long as the disk takes, and fails the test naming the SQL. (A watchdog on wake-up lateness or
asyncio's debug mode cannot tell such a wait from the CPU work of a thousand answers arriving at once on a
shared 2-core machine; the thread a statement runs on can.)
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from gateway.app import create_app
from gateway.domain.config import parse_config
from gateway.services import database as database_module
from gateway.services import outbox as outbox_module
from gateway.services import storage
from gateway.services.storage import connect
from simulators.broker import MosquittoBroker
from tests.fixtures.mosquitto import broker
from tests.fixtures.paths import REPO

__all__ = ["broker"]

CAMERAS = 1000


@pytest.fixture
def farm_ports() -> Iterator[list[int]]:
    """A thousand simulated ONVIF cameras in a process of their own (so their work is not on our loop)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "simulators.onvif_camera", "--count", str(CAMERAS)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().startswith("READY")
    ports = [int(p) for p in proc.stdout.readline().split()[1].split(",")]
    yield ports
    proc.terminate()
    proc.wait(timeout=10)
    proc.stdout.close()


@pytest.mark.timeout(180)
async def test_a_thousand_camera_round_with_transitions_never_holds_the_loop(
    tmp_path: Path, broker: MosquittoBroker, farm_ports: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    loop_thread = threading.get_ident()
    on_loop: list[str] = []
    statements = 0

    def traced(path: Path | str, *, synchronous: str = "FULL") -> sqlite3.Connection:
        conn = connect(path, synchronous=synchronous)

        def trace(sql: str) -> None:
            nonlocal statements
            statements += 1
            if threading.get_ident() == loop_thread and watching:
                on_loop.append(sql)

        conn.set_trace_callback(trace)
        return conn

    watching = False
    monkeypatch.setattr(storage, "connect", traced)
    monkeypatch.setattr(outbox_module, "connect", traced)
    monkeypatch.setattr(database_module, "connect", traced)
    cameras = [
        {
            "id": f"cam-{i:04d}",
            "name": f"摄像机{i}",
            "onvif": f"http://127.0.0.1:{port}/onvif/device_service",
            "username": "admin",
            # Every third camera with a wrong password: three kinds of transition in one round.
            "password": "wrong" if i % 3 == 0 else "admin123",
        }
        for i, port in enumerate(farm_ports)
    ]
    document = {
        "school": {"id": "51040200001", "name": "一小"},
        "storage": {"path": str(tmp_path / "gw.db")},
        "mqtt": {"url": broker.url},
        "polling": {"interval": "2s", "timeout": "5s"},
        "patrol": {"interval": "1h", "open_timeout": "60s"},  # this test is about the health round
        "cameras": cameras,
        "web": {"listen": "127.0.0.1:0"},
    }
    config = parse_config(json.dumps(document), env={})
    server = TestServer(create_app(config), host="127.0.0.1")
    try:
        await server.start_server()
        base = f"http://127.0.0.1:{server.port}"
        watching = True  # from here on: the round, its transitions, the requests
        deadline = time.monotonic() + 60
        async with aiohttp.ClientSession() as http:
            while True:
                async with http.get(base + "/api/summary") as response:
                    counts = (await response.json())["cameras"]
                # Requests during the round: the handlers run on the same loop.
                async with http.get(base + "/api/alarms?limit=50") as response:
                    assert response.status == 200
                if counts["unknown"] == 0 and counts["total"] == CAMERAS:
                    break
                assert time.monotonic() < deadline, f"the round did not finish: {counts}"
                await asyncio.sleep(0.2)
        assert counts["degraded"] >= CAMERAS // 3
        watching = False
    finally:
        await server.close()
    assert statements > CAMERAS  # the trace saw the transitions being written (off the loop)
    assert not on_loop, f"{len(on_loop)} SQL statements ran on the event loop, e.g.:\n" + "\n".join(on_loop[:5])
