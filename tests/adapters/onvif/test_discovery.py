"""WS-Discovery with a directed probe to a responder on 127.0.0.1 (never multicast in tests)."""

from __future__ import annotations

import asyncio
import sys

import yaml

from adapters.onvif.discovery import PROBE, discover, parse_matches
from gateway.domain.config import parse_config
from simulators.onvif_camera import HOSTILE_XML, CameraFarm
from simulators.ws_discovery_responder import start_responder
from tests.fixtures.paths import REPO


async def test_directed_probe_finds_every_camera_that_is_up() -> None:
    async with CameraFarm(3) as farm:
        await farm.set_down(farm.cameras[1], True)
        transport, port = await start_responder(farm)
        try:
            found = await discover(timeout=0.5, target=("127.0.0.1", port), bind="127.0.0.1")
        finally:
            transport.close()
    assert [c.xaddrs[0] for c in found] == sorted([farm.cameras[0].url, farm.cameras[2].url])
    assert {c.scope("name") for c in found} == {"cam-001", "cam-003"}
    assert found[0].scope("hardware") == "IPC-S1"
    assert found[0].scope("location") == "country/china"
    assert found[0].address.startswith("urn:uuid:")


async def test_probe_for_another_device_type_gets_no_answer() -> None:
    async with CameraFarm(2) as farm:
        transport, port = await start_responder(farm)
        try:
            loop = asyncio.get_running_loop()
            answers: asyncio.Queue[bytes] = asyncio.Queue()

            class Listener(asyncio.DatagramProtocol):
                def datagram_received(self, data: bytes, addr: tuple[str | object, int]) -> None:
                    answers.put_nowait(data)

            mine, _ = await loop.create_datagram_endpoint(Listener, local_addr=("127.0.0.1", 0))
            try:
                printer = PROBE.format(message_id="1").replace("dn:NetworkVideoTransmitter", "dn:Printer")
                mine.sendto(printer.encode(), ("127.0.0.1", port))
                mine.sendto(PROBE.format(message_id="2").encode(), ("127.0.0.1", port))
                async with asyncio.timeout(5):
                    first = await answers.get()  # the camera probe's answers; none came for the printer probe
            finally:
                mine.close()
        finally:
            transport.close()
    assert parse_matches(first, "2")
    assert answers.qsize() <= 1  # the second camera's answer, maybe; never one to message 1
    while not answers.empty():
        assert parse_matches(answers.get_nowait(), "1") == []


def test_answers_to_other_probes_and_hostile_xml_are_ignored() -> None:
    assert parse_matches(HOSTILE_XML, "x") == []
    assert parse_matches(b"not xml at all", "x") == []


async def test_discover_cli_prints_config_that_check_config_accepts() -> None:
    async with CameraFarm(2) as farm:
        transport, port = await start_responder(farm)
        try:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "gateway",
                "discover",
                "--timeout",
                "0.5",
                "--target",
                f"127.0.0.1:{port}",
                cwd=REPO,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            out, err = await asyncio.wait_for(proc.communicate(), 60)
        finally:
            transport.close()
    assert proc.returncode == 0, err.decode()
    pasted = yaml.safe_load(out)
    assert [c["onvif"] for c in pasted["cameras"]] == sorted(c.url for c in farm.cameras)
    config = parse_config(
        yaml.safe_dump({"school": {"id": "51040200001", "name": "一小"}, **pasted}), env={"CAM_PASSWORD": "x"}
    )
    assert len(config.cameras) == 2
