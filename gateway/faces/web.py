"""The gateway's HTTP faces: health, the JSON API, Prometheus metrics and the status page.

What the pages show comes from a `StatusSource` (the running gateway implements it); this module only decides
who may see it and how it is encoded.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from importlib import resources
from typing import Any, Protocol

from aiohttp import web

from adapters.static_pages import add_static_routes
from gateway.domain.access import is_loopback, role_of
from gateway.faces.metrics import render_metrics

STATIC = resources.files("gateway.faces") / "static"
MAX_ALARMS = 500


class StatusSource(Protocol):
    """What the faces read from the running gateway."""

    def summary(self) -> dict[str, Any]: ...
    def cameras(self) -> list[dict[str, Any]]: ...
    def camera_snapshot(self, camera_id: str) -> bytes | None: ...
    def alarms(self, limit: int) -> list[dict[str, Any]]: ...
    def set_maintenance(self, camera_id: str, on: bool) -> bool: ...
    def metrics(self) -> dict[str, Any]: ...


SOURCE = web.AppKey("status_source", StatusSource)
TOKENS = web.AppKey("tokens", dict)  # role -> token (plain str), from the config's web.tokens
LOOPBACK_ONLY = web.AppKey("loopback_only", bool)
HealthReport = Callable[[], tuple[dict[str, Any], int]]
HEALTH: web.AppKey[HealthReport] = web.AppKey("health")

ROLE_RANK = {"patrol": 1, "admin": 2}


def _presented_role(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    token = header[7:].strip() if header.lower().startswith("bearer ") else request.query.get("token", "")
    tokens: dict[str, str] = request.app[TOKENS]
    return role_of(token, tokens, ROLE_RANK)


def require(request: web.Request, role: str) -> None:
    """Read access is open when the gateway listens on loopback only; writing always needs `admin`
    when an admin token is configured (and otherwise is allowed only on loopback)."""
    presented = _presented_role(request)
    if presented is not None and ROLE_RANK.get(presented, 0) >= ROLE_RANK[role]:
        return
    loopback = request.app[LOOPBACK_ONLY]
    if role == "patrol" and loopback:
        return
    if role == "admin" and loopback and not request.app[TOKENS].get("admin"):
        return
    raise web.HTTPUnauthorized(
        text=json.dumps({"error": "a valid token is required (Authorization: Bearer ...)"}),
        content_type="application/json",
        headers={"WWW-Authenticate": 'Bearer realm="huxiao"'},
    )


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=lambda d: json.dumps(d, ensure_ascii=False))


async def healthz(request: web.Request) -> web.Response:
    """200 for ok and degraded, 503 for failing; Docker's HEALTHCHECK and load balancers read this. Open to all:
    it names parts and their state, never a secret."""
    body, status = request.app[HEALTH]()
    return _json(body, status)


async def summary(request: web.Request) -> web.Response:
    require(request, "patrol")
    return _json(request.app[SOURCE].summary())


async def cameras(request: web.Request) -> web.Response:
    require(request, "patrol")
    return _json(request.app[SOURCE].cameras())


async def snapshot(request: web.Request) -> web.Response:
    require(request, "patrol")
    jpeg = request.app[SOURCE].camera_snapshot(request.match_info["camera_id"])
    if jpeg is None:
        raise web.HTTPNotFound(text="no picture of this camera yet")
    return web.Response(body=jpeg, content_type="image/jpeg", headers={"Cache-Control": "no-cache"})


async def alarms(request: web.Request) -> web.Response:
    require(request, "patrol")
    try:
        limit = max(1, min(MAX_ALARMS, int(request.query.get("limit", "50"))))
    except ValueError:
        raise web.HTTPBadRequest(text="limit must be a whole number") from None
    # A database read: off the loop.
    return _json(await asyncio.to_thread(request.app[SOURCE].alarms, limit))


async def maintenance(request: web.Request) -> web.Response:
    require(request, "admin")
    camera_id = request.match_info["camera_id"]
    on = request.method == "PUT"
    if not request.app[SOURCE].set_maintenance(camera_id, on):
        raise web.HTTPNotFound(text=f"no camera {camera_id!r}")
    return _json({"camera": camera_id, "maintenance": on})


async def metrics(request: web.Request) -> web.Response:
    require(request, "patrol")
    body = render_metrics(request.app[SOURCE].metrics())
    return web.Response(body=body, headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})


async def openapi(request: web.Request) -> web.Response:
    return web.Response(body=(STATIC / "openapi.json").read_bytes(), content_type="application/json", charset="utf-8")


def add_routes(
    app: web.Application, source: StatusSource, tokens: dict[str, str], listen_host: str, *, health: HealthReport
) -> None:
    app[SOURCE] = source
    app[HEALTH] = health
    app[TOKENS] = dict(tokens)
    app[LOOPBACK_ONLY] = is_loopback(listen_host)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/api/summary", summary)
    app.router.add_get("/api/cameras", cameras)
    app.router.add_get("/api/cameras/{camera_id}/snapshot.jpg", snapshot)
    app.router.add_put("/api/cameras/{camera_id}/maintenance", maintenance)
    app.router.add_delete("/api/cameras/{camera_id}/maintenance", maintenance)
    app.router.add_get("/api/alarms", alarms)
    app.router.add_get("/api/openapi.json", openapi)
    app.router.add_get("/metrics", metrics)
    add_static_routes(app, STATIC)
