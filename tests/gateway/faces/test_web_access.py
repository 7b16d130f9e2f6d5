"""Who may see what: the faces' access rules, over a real socket, for a gateway on loopback and on a LAN."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import ClientSession, web
from aiohttp.test_utils import TestServer
from prometheus_client.parser import text_string_to_metric_families

from gateway.faces.web import add_routes
from monitoring.latency import LatencyHistogram
from tests.fixtures.paths import REPO

DASHBOARD = REPO / "deploy" / "grafana" / "huxiao-gateway.json"
PATROL = "patrol-token-abc"
ADMIN = "admin-token-xyz"


class FixedSource:
    """A school of two cameras as the gateway would report it."""

    def __init__(self) -> None:
        self.maintenance: dict[str, bool] = {}
        self.latency = LatencyHistogram()
        self.latency.observe(0.003)

    def summary(self) -> dict[str, Any]:
        return {"school": {"id": "51040200001", "name": "一小", "district": "东区"}, "networking_rate": 0.5}

    def cameras(self) -> list[dict[str, Any]]:
        return [{"id": "gate-1", "state": "online"}, {"id": "hall", "state": "offline"}]

    def camera_snapshot(self, camera_id: str) -> bytes | None:
        return b"\xff\xd8jpeg" if camera_id == "gate-1" else None

    def alarms(self, limit: int) -> list[dict[str, Any]]:
        return [{"id": str(i)} for i in range(limit)]

    def set_maintenance(self, camera_id: str, on: bool) -> bool:
        if camera_id not in ("gate-1", "hall"):
            return False
        self.maintenance[camera_id] = on
        return True

    def metrics(self) -> dict[str, Any]:
        return {
            "school": "51040200001",
            "cameras": [
                {
                    "id": "gate-1",
                    "name": "校门口",
                    "state": "online",
                    "usable": True,
                    "rtt_ms": 1.5,
                    "clock_skew_s": 0.2,
                    "uptime": {"24h": 0.99, "7d": None},
                },
            ],
            "networking_rate": 0.5,
            "target": 0.8,
            "compliant": False,
            "buttons": [{"id": "guard-room", "online": True}],
            "upstreams": [{"name": "police", "pending": 2, "link": "up"}],
            "delivery_latency": {"police": self.latency},
        }


async def serve(listen_host: str, tokens: dict[str, str]) -> AsyncIterator[tuple[str, FixedSource]]:
    source = FixedSource()
    app = web.Application()
    add_routes(app, source, tokens, listen_host, health=lambda: ({"status": "ok", "parts": {}}, 200))
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield str(server.make_url("")), source
    finally:
        await server.close()


@pytest.fixture
async def lan_gateway() -> AsyncIterator[tuple[str, FixedSource]]:
    """Configured to listen on every interface: tokens required."""
    async for item in serve("0.0.0.0", {"patrol": PATROL, "admin": ADMIN}):
        yield item


@pytest.fixture
async def loopback_gateway() -> AsyncIterator[tuple[str, FixedSource]]:
    async for item in serve("127.0.0.1", {}):
        yield item


async def test_on_a_lan_bind_only_healthz_is_open(lan_gateway: tuple[str, FixedSource]) -> None:
    base, _ = lan_gateway
    async with ClientSession() as http:
        async with http.get(base + "/healthz") as response:
            assert response.status == 200
        for path in ("/api/summary", "/api/cameras", "/api/alarms", "/metrics", "/api/cameras/gate-1/snapshot.jpg"):
            async with http.get(base + path) as response:
                assert response.status == 401, path
            async with http.get(base + path, headers={"Authorization": "Bearer wrong"}) as response:
                assert response.status == 401, path


async def test_patrol_token_reads_but_cannot_write(lan_gateway: tuple[str, FixedSource]) -> None:
    base, source = lan_gateway
    auth = {"Authorization": f"Bearer {PATROL}"}
    async with ClientSession() as http:
        async with http.get(base + "/api/summary", headers=auth) as response:
            assert response.status == 200
            assert (await response.json())["school"]["name"] == "一小"
        async with http.get(base + f"/api/cameras?token={PATROL}") as response:
            assert [c["id"] for c in await response.json()] == ["gate-1", "hall"]
        async with http.put(base + "/api/cameras/gate-1/maintenance", headers=auth) as response:
            assert response.status == 401
    assert source.maintenance == {}


async def test_admin_token_sets_and_clears_maintenance(lan_gateway: tuple[str, FixedSource]) -> None:
    base, source = lan_gateway
    auth = {"Authorization": f"Bearer {ADMIN}"}
    async with ClientSession() as http:
        async with http.put(base + "/api/cameras/hall/maintenance", headers=auth) as response:
            assert response.status == 200
        assert source.maintenance == {"hall": True}
        async with http.delete(base + "/api/cameras/hall/maintenance", headers=auth) as response:
            assert response.status == 200
        assert source.maintenance == {"hall": False}
        async with http.put(base + "/api/cameras/nope/maintenance", headers=auth) as response:
            assert response.status == 404


async def test_loopback_bind_reads_without_token(loopback_gateway: tuple[str, FixedSource]) -> None:
    base, _ = loopback_gateway
    async with ClientSession() as http:
        async with http.get(base + "/api/summary") as response:
            assert response.status == 200
        async with http.get(base + "/api/alarms?limit=3") as response:
            assert len(await response.json()) == 3
        async with http.get(base + "/api/alarms?limit=lots") as response:
            assert response.status == 400
        async with http.get(base + "/api/cameras/gate-1/snapshot.jpg") as response:
            assert response.status == 200
            assert response.content_type == "image/jpeg"
        async with http.get(base + "/api/cameras/hall/snapshot.jpg") as response:
            assert response.status == 404


async def test_metrics_parse_with_the_prometheus_parser(loopback_gateway: tuple[str, FixedSource]) -> None:
    base, _ = loopback_gateway
    async with ClientSession() as http, http.get(base + "/metrics") as response:
        assert response.status == 200
        text = await response.text()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    up = families["huxiao_camera_up"].samples
    assert [(s.labels["camera"], s.value) for s in up] == [("gate-1", 1.0)]
    assert families["huxiao_networking_rate"].samples[0].value == 0.5
    assert families["huxiao_outbox_pending"].samples[0].value == 2.0
    latency = families["huxiao_delivery_latency_seconds"].samples
    assert any(s.name.endswith("_count") and s.value == 1.0 for s in latency)
    states = {s.labels["state"]: s.value for s in families["huxiao_camera_state"].samples}
    assert states["online"] == 1.0
    assert states["offline"] == 0.0


async def test_status_page_and_openapi_are_served(loopback_gateway: tuple[str, FixedSource]) -> None:
    base, _ = loopback_gateway
    async with ClientSession() as http:
        async with http.get(base + "/") as response:
            html = await response.text()
            assert "联网率" in html
            assert "/static/app.js" in html
        async with http.get(base + "/static/app.js") as response:
            assert response.status == 200
        async with http.get(base + "/static/..%2Fweb.py") as response:
            assert response.status == 404
        async with http.get(base + "/api/openapi.json") as response:
            spec = json.loads(await response.text())
    assert spec["openapi"].startswith("3.")
    for path in ("/api/summary", "/api/cameras", "/api/alarms", "/api/cameras/{camera_id}/maintenance"):
        assert path in spec["paths"]


async def test_grafana_dashboard_only_uses_metrics_the_gateway_exports(
    loopback_gateway: tuple[str, FixedSource],
) -> None:
    base, _ = loopback_gateway
    async with ClientSession() as http, http.get(base + "/metrics") as response:
        text = await response.text()
    exported = {f.name for f in text_string_to_metric_families(text)}
    exprs = [t["expr"] for p in json.loads(DASHBOARD.read_text(encoding="utf-8"))["panels"] for t in p["targets"]]
    used = {re.sub(r"_(bucket|sum|count)$", "", name) for e in exprs for name in re.findall(r"huxiao_\w+", e)}
    assert used
    assert used <= exported, used - exported
