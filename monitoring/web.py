"""The gateway's HTTP faces: health, the JSON API and the status page."""

from __future__ import annotations

from aiohttp import web


async def healthz(request: web.Request) -> web.Response:
    """200 once every part has started; load balancers and Docker's HEALTHCHECK read this."""
    return web.json_response({"status": "ok"})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/healthz", healthz)
