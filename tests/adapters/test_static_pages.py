"""The one page server of the status page and the console, over a real socket: the page, its scripts and styles,
and nothing outside the folder."""

from __future__ import annotations

from importlib import resources

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from adapters.static_pages import add_static_routes


@pytest.mark.parametrize("package", ["center", "gateway.faces"])
async def test_the_page_and_its_assets_are_served_and_nothing_else(package: str) -> None:
    folder = resources.files(package) / "static"
    app = web.Application()
    add_static_routes(app, folder)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(server.make_url("/")) as page:
                assert page.status == 200
                assert page.content_type == "text/html"
                assert await page.read() == (folder / "index.html").read_bytes()
            scripts = [p.name for p in folder.iterdir() if p.name.endswith(".js")]
            async with http.get(server.make_url(f"/static/{scripts[0]}")) as script:
                assert script.status == 200
                assert script.content_type == "application/javascript"
            for refused in ("/static/index.html", "/static/..%2Fapi.py", "/static/.hidden.js", "/static/none.css"):
                async with http.get(server.make_url(refused)) as answer:
                    assert answer.status == 404, refused
    finally:
        await server.close()
