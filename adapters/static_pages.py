"""A page and its scripts and styles, served from a package's `static` folder (the gateway's status page, the
center's console): `/` is `index.html`, `/static/<name>` a `.js` or `.css` file of that folder, nothing else.
Everything ships in the package, so no page needs the internet at run time."""

from __future__ import annotations

from importlib.resources.abc import Traversable

from aiohttp import web

ASSET_TYPES = {"js": "application/javascript", "css": "text/css"}


def add_static_routes(app: web.Application, folder: Traversable) -> None:
    """GET `/` and GET `/static/{name}` from `folder`."""

    async def page(_: web.Request) -> web.Response:
        return web.Response(body=(folder / "index.html").read_bytes(), content_type="text/html", charset="utf-8")

    async def asset(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        kind = name.rsplit(".", 1)[-1]
        # One level, known kinds only: no path out of the folder, no dot files.
        if kind not in ASSET_TYPES or "/" in name or name.startswith("."):
            raise web.HTTPNotFound()
        path = folder / name
        if not path.is_file():
            raise web.HTTPNotFound()
        return web.Response(body=path.read_bytes(), content_type=ASSET_TYPES[kind], charset="utf-8")

    app.router.add_get("/", page)
    app.router.add_get("/static/{name}", asset)
