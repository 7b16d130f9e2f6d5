"""What "up" means, seen from every face at once: a camera that answers ONVIF but refuses the configured password
gives no usable picture, so the page's uptime, /metrics and the networking rate all leave it out."""

from __future__ import annotations

import json
from pathlib import Path

import aiohttp
from aiohttp.test_utils import TestServer
from prometheus_client.parser import text_string_to_metric_families

from gateway.app import STATUS, create_app
from gateway.domain.config import parse_config
from simulators.onvif_camera import CameraFarm
from simulators.rtsp import RtspServer
from tests.fixtures.platform import PLATFORM_SECRET, platform
from tests.fixtures.rtsp import rtsp_server
from tests.fixtures.waiting import eventually

__all__ = ["platform", "rtsp_server"]


async def test_a_camera_with_a_wrong_password_is_down_on_the_page_in_metrics_and_in_the_rate(
    rtsp_server: RtspServer, tmp_path: Path, platform: tuple[object, str]
) -> None:
    _receiver, url = platform
    async with CameraFarm(2) as farm:
        good, changed = farm.cameras
        changed.wrong_password = True
        document = {
            "school": {"id": "51040200001", "name": "攀枝花市第一小学", "students": 300, "guards": 2},
            "storage": {"path": str(tmp_path / "gw.db")},
            "mqtt": {"url": "mqtt://127.0.0.1:9"},
            "polling": {"interval": "1s", "timeout": "1s", "offline_after": 2},
            "patrol": {"interval": "1h", "open_timeout": "1s"},
            "upstreams": [{"name": "police", "kind": "http", "url": url, "secret": PLATFORM_SECRET}],
            "cameras": [
                {
                    "id": c.id,
                    "name": c.id,
                    "area": "entrance",
                    "onvif": c.url,
                    "username": "admin",
                    "password": "admin123",
                    "rtsp": rtsp_server.url("moving"),
                }
                for c in (good, changed)
            ],
        }
        server = TestServer(create_app(parse_config(json.dumps(document), env={})), host="127.0.0.1")
        await server.start_server()
        try:
            status = server.app[STATUS]

            def uptimes() -> dict[str, float | None]:
                return {c["id"]: c["uptime"]["24h"] for c in status.cameras()}

            def usable() -> dict[str, bool]:
                return {c["id"]: c["usable"] for c in status.cameras()}

            # Until both uptimes are known and the good camera's first rounds (cold ONVIF discovery, the stream's
            # DESCRIBE, the first patrol) are through: on a loaded machine a first 1 s poll may time out.
            # Within seconds of the first round, not after the minute the old refresh waited.
            await eventually(
                lambda: None not in uptimes().values() and usable().get(good.id) is True, timeout=20, what="settled"
            )
            async with aiohttp.ClientSession() as http:
                async with http.get(server.make_url("/api/cameras")) as response:
                    cameras = {c["id"]: c for c in await response.json()}
                async with http.get(server.make_url("/metrics")) as response:
                    text = await response.text()
            assert cameras[changed.id]["state"] == "degraded"
            assert "auth_failed" in cameras[changed.id]["reasons"]
            assert cameras[changed.id]["usable"] is False
            assert cameras[changed.id]["uptime"]["24h"] == 0.0
            assert cameras[good.id]["usable"] is True
            assert cameras[good.id]["uptime"]["24h"] == 1.0

            samples = {
                (s.name, s.labels.get("camera"), s.labels.get("window")): s.value
                for family in text_string_to_metric_families(text)
                for s in family.samples
            }
            assert samples[("huxiao_camera_up", changed.id, None)] == 0.0
            assert samples[("huxiao_camera_up", good.id, None)] == 1.0
            assert samples[("huxiao_camera_uptime_ratio", changed.id, "24h")] == 0.0
            assert samples[("huxiao_camera_uptime_ratio", good.id, "7d")] == 1.0
            # The same camera is out of the networking rate: one of two cameras networked.
            assert status.summary()["networking_rate"] == 0.5
        finally:
            await server.close()
