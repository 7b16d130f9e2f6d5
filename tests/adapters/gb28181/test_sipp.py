"""The device judged by sipp, a SIP tool nobody here wrote, acting as the platform (a UAS scenario of ours):
it challenges REGISTER and checks the digest with `verifyauth`, takes Keepalives and the Alarm of a button
pressed in a real Mosquitto (through the real alarm path), and sends a Catalog query back to the device."""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.domain.config import GatewayConfig, parse_config
from gateway.services.alarm_path import AlarmPath
from simulators.broker import MosquittoBroker
from simulators.buttons import SimulatedButton
from tests.fixtures.mosquitto import broker
from tests.fixtures.paths import REPO
from tests.fixtures.waiting import eventually

__all__ = ["broker"]
SCENARIO = REPO / "tests" / "data" / "gb28181" / "sipp_platform_uas.xml"
SCHOOL = "51040200001"
DEVICE = "51040200001180000001"
BUTTON_CHANNEL = "51040200001340000001"


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def sipp(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    if shutil.which("sipp") is None:
        pytest.fail("sipp is not installed: apt-get install sip-tester")
    port = free_udp_port()
    log = tmp_path / "sipp.log"
    process = subprocess.Popen(
        [
            "sipp",
            "-sf",
            str(SCENARIO),
            "-i",
            "127.0.0.1",
            "-p",
            str(port),
            "-t",
            "u1",
            "-nostdin",
            "-trace_logs",
            "-log_file",
            str(log),
            "-trace_err",
            "-error_file",
            str(tmp_path / "sipp.err"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=tmp_path,
    )
    try:
        yield port, log
    finally:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def text(log: Path) -> str:
    return log.read_text(errors="replace") if log.exists() else ""


def config(tmp_path: Path, broker: MosquittoBroker, port: int, password: str) -> GatewayConfig:
    document = {
        "school": {"id": SCHOOL, "name": "攀枝花市第一小学"},
        "storage": {"path": str(tmp_path / "gw.db")},
        "mqtt": {"url": broker.url, "client_id": f"gw-{tmp_path.name}"},
        "cameras": [{"id": "gate-1", "name": "校门口", "rtsp": "rtsp://127.0.0.1:8554/gate-1"}],
        "buttons": [{"id": "guard-room", "name": "门卫室一键报警"}],
        "upstreams": [
            {
                "name": "police-gb",
                "kind": "gb28181",
                "server": f"sip:34020000002000000001@127.0.0.1:{port}",
                "device_id": DEVICE,
                "password": password,
                "local": "127.0.0.1:0",
                "keepalive": "1s",
                "retry_first": "50ms",
                "retry_max": "200ms",
            }
        ],
    }
    return parse_config(json.dumps(document), env={})


async def test_sipp_checks_the_digest_takes_keepalives_and_the_alarm_and_gets_a_catalog(
    tmp_path: Path, broker: MosquittoBroker, sipp: tuple[int, Path]
) -> None:
    port, log = sipp
    gateway = config(tmp_path, broker, port, "gbsecret")
    async with AlarmPath(gateway) as path:
        await eventually(lambda: "AUTH-OK" in text(log), timeout=15, what="sipp's verifyauth accepting the digest")
        await eventually(lambda: "cmd=Keepalive" in text(log), timeout=15, what="a keepalive at sipp")
        await asyncio.wait_for(path.service.listener.connected.wait(), 10)
        button = SimulatedButton("guard-room", broker.port, school_id=SCHOOL)
        await asyncio.to_thread(button.connect)
        try:
            button.press()
            await eventually(lambda: "cmd=Alarm" in text(log), timeout=15, what="the Alarm MESSAGE at sipp")
        finally:
            await asyncio.to_thread(button.disconnect)
        assert f"cmd=Alarm device={BUTTON_CHANNEL} method=2 priority=1" in text(log)
        await eventually(lambda: "QUERY-ANSWERED" in text(log), timeout=15, what="the device's 200 to the query")
        await eventually(
            lambda: "cmd=Catalog device=51040200001180000001 method= priority= sumnum=2" in text(log),
            timeout=15,
            what="the Catalog answer at sipp",
        )
        assert "AUTH-BAD" not in text(log)


async def test_sipp_refuses_a_wrong_password(tmp_path: Path, broker: MosquittoBroker, sipp: tuple[int, Path]) -> None:
    port, log = sipp
    async with AlarmPath(config(tmp_path, broker, port, "not-the-secret")):
        await eventually(lambda: "AUTH-BAD" in text(log), timeout=15, what="sipp's verifyauth refusing")
        assert "AUTH-OK" not in text(log)
