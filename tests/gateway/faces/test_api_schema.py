"""Every field the spec lists, in the API of a running gateway (real cameras simulated, a real broker and
platform, one real alarm), checked against the OpenAPI description the gateway serves."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from aiohttp import ClientSession
from aiohttp.test_utils import TestServer

from gateway.app import ALARMS, STATUS, create_app
from gateway.domain.config import parse_config
from simulators.broker import MosquittoBroker
from simulators.buttons import SimulatedButton
from simulators.onvif_camera import CameraFarm
from simulators.platform import PlatformReceiver
from simulators.rtsp import RtspServer
from tests.fixtures.mosquitto import broker
from tests.fixtures.platform import PLATFORM_SECRET, platform
from tests.fixtures.rtsp import rtsp_server
from tests.fixtures.waiting import eventually

__all__ = ["broker", "platform", "rtsp_server"]
TYPES: dict[str, type | tuple[type, ...]] = {
    "string": str,
    "number": (int, float),
    "integer": int,
    "boolean": bool,
    "array": list,
    "object": dict,
}


def conforms(value: Any, schema: dict[str, Any], spec: dict[str, Any], path: str = "$") -> list[str]:
    """Where `value` departs from `schema` (required keys, types, enums, array items); [] when it conforms."""
    if "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    kinds = schema.get("type")
    if kinds is not None:
        allowed = [kinds] if isinstance(kinds, str) else kinds
        if value is None:
            return [] if "null" in allowed else [f"{path}: null"]
        if not any(
            isinstance(value, TYPES[k]) and not (k != "boolean" and isinstance(value, bool))
            for k in allowed
            if k != "null"
        ):
            return [f"{path}: {type(value).__name__} is not {allowed}"]
    if "enum" in schema and value not in schema["enum"]:
        return [f"{path}: {value!r} not in {schema['enum']}"]
    problems = []
    if isinstance(value, dict):
        problems += [f"{path}.{key}: missing" for key in schema.get("required", []) if key not in value]
        for key, sub in schema.get("properties", {}).items():
            if key in value:
                problems += conforms(value[key], sub, spec, f"{path}.{key}")
    if isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            problems += conforms(item, schema["items"], spec, f"{path}[{index}]")
    return problems


async def test_api_answers_match_the_openapi_description(
    tmp_path: Path, broker: MosquittoBroker, platform: tuple[PlatformReceiver, str], rtsp_server: RtspServer
) -> None:
    receiver, url = platform
    async with CameraFarm(2) as farm:
        document = {
            "school": {"id": "51040200001", "name": "一小", "district": "东区", "students": 300, "guards": 2},
            "storage": {"path": str(tmp_path / "gw.db")},
            "mqtt": {"url": broker.url},
            "polling": {"interval": "1s", "timeout": "1s"},
            "patrol": {"open_timeout": "1s"},
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
                for c in farm.cameras
            ],
            "buttons": [{"id": "b1", "name": "门卫室", "cameras": [farm.cameras[0].id]}],
            "upstreams": [{"name": "police", "kind": "http", "url": url, "secret": PLATFORM_SECRET}],
        }
        server = TestServer(create_app(parse_config(json.dumps(document), env={})), host="127.0.0.1")
        await server.start_server()
        try:
            status = server.app[STATUS]
            await eventually(lambda: status.summary()["cameras"]["online"] == 2, timeout=20, what="online")
            await eventually(lambda: all(c["snapshot"] for c in status.cameras()), timeout=30, what="thumbnails")
            await asyncio.wait_for(server.app[ALARMS].listener.connected.wait(), 10)
            button = SimulatedButton("b1", broker.port, school_id="51040200001")
            await asyncio.to_thread(button.connect)
            button.press()
            await receiver.wait_for(1, kind="cn.huxiao.alarm.panic")
            async with ClientSession() as http:
                spec = await (await http.get(server.make_url("/api/openapi.json"))).json()
                paths = spec["paths"]
                for path in ("/api/summary", "/api/cameras", "/api/alarms"):
                    answer = await (await http.get(server.make_url(path))).json()
                    schema = paths[path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
                    assert conforms(answer, schema, spec) == [], path
                    assert answer, path
                camera_id = farm.cameras[0].id
                snapshot = await http.get(server.make_url(f"/api/cameras/{camera_id}/snapshot.jpg"))
                assert snapshot.content_type == "image/jpeg"
                alarms = await (await http.get(server.make_url("/api/alarms?limit=5"))).json()
                assert alarms[0]["deliveries"][0]["upstream"] == "police"
                summary = await (await http.get(server.make_url("/api/summary"))).json()
                buttons = summary["buttons"]
                assert (buttons["total"], buttons["online"]) == (1, 1)
                assert [(b["id"], b["online"], b["last_test"]) for b in buttons["items"]] == [("b1", True, None)]
                assert summary["upstreams"][0]["name"] == "police"
                button.press("test")  # the monthly test: the page shows when it last happened
                await receiver.wait_for(1, kind="cn.huxiao.alarm.test")
                summary = await (await http.get(server.make_url("/api/summary"))).json()
                assert isinstance(summary["buttons"]["items"][0]["last_test"], float)
                body = json.dumps([summary, alarms])
                assert PLATFORM_SECRET not in body
                assert "admin123" not in body
            button.disconnect()
        finally:
            await server.close()
