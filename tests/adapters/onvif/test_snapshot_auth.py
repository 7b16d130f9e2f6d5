"""Snapshots from cameras that ask for HTTP Basic or digest (MD5, SHA-256, with qop or without): each challenge
answered, checked against a real server we did not write (lighttpd's mod_auth) and, for digest without qop,
which lighttpd never sends, against a small server of ours that verifies RFC 2617's old form."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from adapters.digest import parse_authorization, verify_authorization
from adapters.onvif.client import fetch_snapshot
from gateway.domain.errors import AuthFailed
from tests.fixtures.lighttpd import MOUNTS, PASSWORD, USER, SnapshotServer, lighttpd

__all__ = ["lighttpd"]


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.mark.parametrize("mount", list(MOUNTS))
async def test_each_challenge_lighttpd_sends_is_answered(
    lighttpd: SnapshotServer, http: aiohttp.ClientSession, mount: str
) -> None:
    async with http.get(lighttpd.url(mount)) as plain:
        assert plain.status == 401  # the server does ask
        challenge = plain.headers["WWW-Authenticate"]
    assert challenge.lower().startswith("basic" if mount == "basic" else "digest")
    if mount.endswith("sha256"):
        assert "SHA-256" in challenge
    jpeg = await fetch_snapshot(http, "gate-1", lighttpd.url(mount), USER, PASSWORD, 5.0)
    assert jpeg == lighttpd.jpeg


@pytest.mark.parametrize("mount", list(MOUNTS))
async def test_a_wrong_password_is_auth_failed_naming_the_camera(
    lighttpd: SnapshotServer, http: aiohttp.ClientSession, mount: str
) -> None:
    with pytest.raises(AuthFailed) as failed:
        await fetch_snapshot(http, "gate-1", lighttpd.url(mount), USER, "wrong", 5.0)
    assert failed.value.device == "gate-1"
    assert "wrong" not in str(failed.value)


async def test_digest_without_qop_is_answered(http: aiohttp.ClientSession) -> None:
    realm, nonce = "IPC", "b2c1f0"

    async def snapshot(request: web.Request) -> web.Response:
        params = parse_authorization(request.headers.get("Authorization", ""))
        if (
            params
            and "qop" not in params
            and verify_authorization(params, method="GET", password=PASSWORD, realm=realm)
        ):
            return web.Response(body=b"\xff\xd8 a jpeg", content_type="image/jpeg")
        return web.Response(status=401, headers={"WWW-Authenticate": f'Digest realm="{realm}", nonce="{nonce}"'})

    app = web.Application()
    app.router.add_get("/snap.jpg", snapshot)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = runner.addresses[0][1]
        jpeg = await fetch_snapshot(http, "gate-1", f"http://127.0.0.1:{port}/snap.jpg", USER, PASSWORD, 5.0)
        assert jpeg.startswith(b"\xff\xd8")
    finally:
        await runner.cleanup()
