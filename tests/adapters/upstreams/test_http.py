"""The `http` upstream against a real aiohttp platform: signed CloudEvents, what counts as delivered, link state."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from adapters.upstreams.http import HttpUpstream
from adapters.upstreams.signing import HEADER, sign, verify
from gateway.domain.config import HttpUpstreamConfig
from gateway.domain.errors import UpstreamError
from gateway.domain.events import OutboxEvent
from simulators.platform import PlatformReceiver
from tests.fixtures.platform import PLATFORM_SECRET, platform
from tests.fixtures.ports import free_port

__all__ = ["platform"]


def event(event_id: str = "ce-7") -> OutboxEvent:
    document = {"specversion": "1.0", "id": event_id, "type": "cn.huxiao.alarm.panic", "data": {"button_event_id": "p"}}
    body = json.dumps(document).encode()
    return OutboxEvent(7, event_id, "cn.huxiao.alarm.panic", "b1", "p", body, 0.0)


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


def upstream(url: str, session: aiohttp.ClientSession, **extra: object) -> HttpUpstream:
    config = HttpUpstreamConfig.model_validate(
        {"name": "police", "kind": "http", "url": url, "secret": PLATFORM_SECRET, **extra}
    )
    return HttpUpstream(config, session)


async def test_a_signed_cloudevent_is_delivered_and_a_resend_counts_as_delivered(
    platform: tuple[PlatformReceiver, str], session: aiohttp.ClientSession
) -> None:
    receiver, url = platform
    police = upstream(url, session)
    await police.send(event())
    await police.send(event())  # the platform answers 409: it already has this id, so this is delivered too
    assert receiver.ids() == ["ce-7"]
    assert receiver.duplicates == 1
    assert receiver.refused == 0


async def test_a_platform_error_or_a_wrong_secret_is_not_delivered(
    platform: tuple[PlatformReceiver, str], session: aiohttp.ClientSession
) -> None:
    receiver, url = platform
    receiver.fail_with = 503
    with pytest.raises(UpstreamError, match="HTTP 503"):
        await upstream(url, session).send(event())
    receiver.fail_with = None
    with pytest.raises(UpstreamError, match="HTTP 401"):
        await upstream(url, session, secret="not-the-secret").send(event())
    assert receiver.events == []


async def test_a_platform_that_never_answers_times_out_by_name(session: aiohttp.ClientSession) -> None:
    async def hang(_request: web.Request) -> web.Response:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    app = web.Application()
    app.router.add_post("/alarms", hang)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        url = f"http://127.0.0.1:{runner.addresses[0][1]}/alarms"
        started = time.monotonic()
        with pytest.raises(UpstreamError, match=r"police: no answer within 0\.3 s"):
            await upstream(url, session, timeout="300ms").send(event())
        assert time.monotonic() - started < 2.0
    finally:
        await runner.cleanup()


async def test_nothing_listening_is_an_upstream_error(session: aiohttp.ClientSession) -> None:
    with pytest.raises(UpstreamError, match="police: ClientConnectorError"):
        await upstream(f"http://127.0.0.1:{free_port()}/alarms", session).send(event())


async def test_the_wire_format_headers_and_signature(session: aiohttp.ClientSession) -> None:
    seen: list[tuple[dict[str, str], bytes]] = []

    async def take(request: web.Request) -> web.Response:
        seen.append((dict(request.headers), await request.read()))
        return web.Response(status=202)

    app = web.Application()
    app.router.add_post("/alarms", take)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        await upstream(f"http://127.0.0.1:{runner.addresses[0][1]}/alarms", session).send(event())
    finally:
        await runner.cleanup()
    ((headers, body),) = seen
    assert headers["Content-Type"].startswith("application/cloudevents+json")
    assert body == event().body
    assert verify(PLATFORM_SECRET, body, headers[HEADER], time.time()) is None


def test_signature_format_and_window() -> None:
    body = b'{"id":"1"}'
    header = sign("k", body, 1_764_288_000)
    assert header.startswith("t=1764288000,v1=")
    assert len(header.split("v1=")[1]) == 64
    assert verify("k", body, header, 1_764_288_000 + 300) is None
    assert verify("k", body, header, 1_764_288_000 + 301) is not None
    assert verify("k", body, header, 1_764_288_000 - 301) is not None
    assert verify("k", body + b" ", header, 1_764_288_000) == "signature does not match"
    assert verify("k", body, "v1=abc", 1_764_288_000) == "signature has no timestamp"
