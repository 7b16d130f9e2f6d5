"""With a GB/T 28181 upstream, a camera is networked only while the platform has the gateway registered: a real
gateway, real RTSP cameras and the simulated platform, which stops, comes back, refuses and takes the device
again. `/api/summary` shows the link (registration, keepalive, clock, live viewers) as the OpenAPI says."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aiohttp import ClientSession
from aiohttp.test_utils import TestServer

from adapters.gb28181.channels import camera_ids
from gateway.app import STATUS, create_app
from gateway.domain.config import parse_config
from gateway.services.status import GatewayStatus
from simulators.broker import MosquittoBroker
from simulators.gb_platform import GbPlatform
from simulators.rtsp import RtspServer
from tests.fixtures.mosquitto import broker
from tests.fixtures.rtsp import rtsp_server
from tests.fixtures.waiting import eventually
from tests.gateway.faces.test_api_schema import conforms

__all__ = ["broker", "rtsp_server"]
SCHOOL = "51040200001"
DEVICE = "51040200001180000001"
PASSWORD = "gb-secret"


def gb_config(tmp_path: Path, broker: MosquittoBroker, rtsp: RtspServer, server_uri: str) -> dict[str, Any]:
    return {
        "school": {"id": SCHOOL, "name": "攀枝花市第一小学"},
        "storage": {"path": str(tmp_path / "gw.db")},
        "mqtt": {"url": broker.url, "client_id": "gw-gb-link"},
        "polling": {"interval": "1s", "timeout": "2s"},
        "patrol": {"interval": "1h", "open_timeout": "60s"},
        "cameras": [
            {"id": "gate-1", "name": "校门口", "area": "entrance", "rtsp": rtsp.url("moving")},
            {"id": "gate-2", "name": "北门", "area": "entrance", "rtsp": rtsp.url("moving")},
        ],
        "buttons": [{"id": "guard-room", "name": "门卫室一键报警"}],
        "upstreams": [
            {
                "name": "police-gb",
                "kind": "gb28181",
                "server": server_uri,
                "device_id": DEVICE,
                "password": PASSWORD,
                "local": "127.0.0.1:0",
                # Short, so that a platform gone silent is noticed within ~2 s (2 keepalives unanswered).
                "keepalive": "1s",
                "keepalive_misses": 2,
            }
        ],
        "web": {"listen": "127.0.0.1:0"},
    }


def link(status: GatewayStatus) -> dict[str, Any]:
    (row,) = status.summary()["gb28181"]
    return dict(row)


def networking_reason(status: GatewayStatus) -> str:
    return next(str(c["reason"]) for c in status.summary()["compliance"] if c["criterion"] == "networking_rate")


async def test_the_rate_counts_cameras_only_while_the_gb_platform_has_the_device_registered(
    tmp_path: Path, broker: MosquittoBroker, rtsp_server: RtspServer
) -> None:
    first = GbPlatform(workdir=tmp_path, password=PASSWORD)
    await first.__aenter__()
    port = first.address[1]
    document = gb_config(tmp_path, broker, rtsp_server, first.server_uri)
    config = parse_config(json.dumps(document), env={})
    channel = camera_ids(DEVICE, config.cameras)["gate-1"]
    server = TestServer(create_app(config), host="127.0.0.1")
    await server.start_server()
    status = server.app[STATUS]
    stopped = False
    try:
        # Registered, both cameras streaming: both count.
        await eventually(lambda: status.summary()["networking_rate"] == 1.0, timeout=20, what="rate 100 %")
        await eventually(lambda: link(status)["last_keepalive_at"] is not None, timeout=5, what="a keepalive")
        row = link(status)
        assert row["registered"] is True
        assert isinstance(row["registered_since"], float)
        assert abs(row["clock_offset_s"]) < 5  # the simulator runs on this machine's clock
        assert (row["platform"], row["device_id"], row["last_error"]) == (first.id, DEVICE, None)
        assert row["live"] == {"viewers": 0, "cameras": []}

        # The platform plays a camera: the summary counts the viewer, and the frames its pull relays.
        play = await first.invite(DEVICE, channel, "udp")
        await eventually(lambda: link(status)["live"]["viewers"] == 1, what="one viewer")
        await eventually(lambda: link(status)["live"]["cameras"][0]["frames"] > 5, timeout=10, what="frames")
        assert link(status)["live"]["cameras"][0]["id"] == "gate-1"
        async with ClientSession() as http:
            spec = await (await http.get(server.make_url("/api/openapi.json"))).json()
            schema = spec["paths"]["/api/summary"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
            answer = await (await http.get(server.make_url("/api/summary"))).json()
        assert conforms(answer, schema, spec) == []
        assert answer["gb28181"][0]["live"]["cameras"][0]["viewers"] == 1
        assert PASSWORD not in json.dumps(answer)
        await first.bye(DEVICE, play)
        await eventually(lambda: link(status)["live"]["viewers"] == 0, what="viewer gone after BYE")

        # The platform stops: the cameras still stream, but none is networked, and the reason says why.
        await first.__aexit__(None, None, None)
        stopped = True
        await eventually(lambda: status.summary()["networking_rate"] == 0.0, timeout=15, what="rate 0 when stopped")
        row = link(status)
        assert (row["registered"], row["registered_since"]) == (False, None)
        assert "keepalives unanswered" in str(row["last_error"])
        reason = networking_reason(status)
        assert "GB/T 28181 平台未注册" in reason, reason
        assert "not registered with the GB/T 28181 platform" in reason, reason
        assert "keepalives unanswered" in reason
        assert status.summary()["cameras"]["online"] == 2  # the cameras themselves are fine
        assert all(c["usable"] for c in status.cameras())  # and still up for their own uptime
        assert status.summary()["upstreams"][0]["link"] == "down"

        # It comes back on the same address, knowing nothing of the device: the device registers again.
        async with GbPlatform(workdir=tmp_path, password=PASSWORD, port=port) as second:
            await eventually(lambda: second.online(DEVICE), timeout=20, what="registered with the restarted one")
            await eventually(lambda: status.summary()["networking_rate"] == 1.0, timeout=5, what="rate back")
            assert status.summary()["upstreams"][0]["link"] == "up"

            # It refuses the device (its password changed there, then a restart): 0 again, with the 403.
            second.password = "changed-on-the-platform"
            second.forget()
            await eventually(lambda: "403" in networking_reason(status), timeout=15, what="the refusal")
            assert status.summary()["networking_rate"] == 0.0
            assert link(status)["registered"] is False

            # Set right again: registered again, every camera counts.
            second.password = PASSWORD
            await eventually(lambda: status.summary()["networking_rate"] == 1.0, timeout=20, what="rate back")
            assert link(status)["registered"] is True
            assert "GB/T 28181" not in networking_reason(status)
    finally:
        await server.close()
        if not stopped:
            await first.__aexit__(None, None, None)
