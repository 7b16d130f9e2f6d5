"""`https://` upstreams against a real aiohttp HTTPS platform with certificates made by trustme: verified always,
a private CA through `ca`, a wrong CA a clear delivery error that the outbox retries."""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import trustme
from aiohttp import web

from adapters.upstreams.http import HttpUpstream
from gateway.app import ALARMS
from gateway.domain.config import HttpUpstreamConfig, parse_config
from gateway.domain.errors import ConfigError, UpstreamError
from simulators.broker import MosquittoBroker
from simulators.buttons import SimulatedButton
from simulators.platform import PlatformReceiver
from tests.adapters.upstreams.test_http import event
from tests.fixtures.gateway_app import SCHOOL, connected, running
from tests.fixtures.mosquitto import broker
from tests.fixtures.platform import PLATFORM_SECRET
from tests.fixtures.ports import free_port
from tests.fixtures.waiting import eventually

__all__ = ["broker"]


def server_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    return context


async def serve(receiver: PlatformReceiver, context: ssl.SSLContext, port: int) -> web.AppRunner:
    runner = web.AppRunner(receiver.app(), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, ssl_context=context).start()
    return runner


@pytest.fixture
def cas(tmp_path: Path) -> tuple[trustme.CA, Path, trustme.CA]:
    private, other = trustme.CA(), trustme.CA()
    pem = tmp_path / "police-ca.pem"
    private.cert_pem.write_to_path(str(pem))
    return private, pem, other


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


def police(url: str, session: aiohttp.ClientSession, ca: Path | None) -> HttpUpstream:
    config = HttpUpstreamConfig.model_validate(
        {"name": "police", "kind": "http", "url": url, "secret": PLATFORM_SECRET, "ca": ca}
    )
    return HttpUpstream(config, session)


async def test_a_platform_signed_by_the_configured_ca_gets_the_alarm(
    cas: tuple[trustme.CA, Path, trustme.CA], session: aiohttp.ClientSession
) -> None:
    private, pem, _ = cas
    receiver, port = PlatformReceiver(secret=PLATFORM_SECRET), free_port()
    runner = await serve(receiver, server_context(private), port)
    try:
        await police(f"https://127.0.0.1:{port}/alarms", session, pem).send(event())
        assert receiver.ids() == ["ce-7"]
    finally:
        await runner.cleanup()


async def test_a_certificate_from_another_ca_or_unknown_to_the_system_is_refused_clearly(
    cas: tuple[trustme.CA, Path, trustme.CA], session: aiohttp.ClientSession
) -> None:
    _, pem, other = cas
    receiver, port = PlatformReceiver(secret=PLATFORM_SECRET), free_port()
    runner = await serve(receiver, server_context(other), port)
    try:
        url = f"https://127.0.0.1:{port}/alarms"
        with pytest.raises(UpstreamError, match=r"police: TLS: the platform's certificate is not trusted by the CA in"):
            await police(url, session, pem).send(event())
        with pytest.raises(UpstreamError, match="not trusted by the system's CA store"):
            await police(url, session, None).send(event())
        assert receiver.ids() == []
    finally:
        await runner.cleanup()


def test_ca_with_a_clear_text_url_is_a_config_error(cas: tuple[trustme.CA, Path, trustme.CA]) -> None:
    _, pem, _ = cas
    text = (
        "school: {id: '51040200001', name: 一小}\n"
        f"upstreams:\n  - {{name: police, kind: http, url: 'http://127.0.0.1:9000/alarms', ca: {pem}}}\n"
    )
    with pytest.raises(ConfigError, match=r"gw.yaml:3: upstreams\[0\]: .*use an https:// url"):
        parse_config(text, "gw.yaml", env={})


async def test_a_wrong_certificate_fails_delivery_which_is_retried_until_the_right_one_is_back(
    tmp_path: Path, broker: MosquittoBroker, cas: tuple[trustme.CA, Path, trustme.CA]
) -> None:
    private, pem, other = cas
    receiver, port = PlatformReceiver(secret=PLATFORM_SECRET), free_port()
    impostor = await serve(receiver, server_context(other), port)
    document = {
        "school": {"id": SCHOOL, "name": "攀枝花市第一小学"},
        "storage": {"path": str(tmp_path / "gw.db")},
        "mqtt": {"url": broker.url, "client_id": f"gw-{tmp_path.name}"},
        "buttons": [{"id": "guard-room", "name": "门卫室"}],
        "upstreams": [
            {
                "name": "police",
                "kind": "http",
                "url": f"https://127.0.0.1:{port}/alarms",
                "secret": PLATFORM_SECRET,
                "ca": str(pem),
                "retry_first": "50ms",
                "retry_max": "200ms",
            }
        ],
        "web": {"listen": "127.0.0.1:0"},
    }
    async with running(parse_config(json.dumps(document), env={})) as server:
        service = server.app[ALARMS]
        guard = await asyncio.to_thread(connected, SimulatedButton("guard-room", broker.port, school_id=SCHOOL))
        event_id = guard.press("panic")
        await eventually(
            lambda: "not trusted" in str(service.forwarders[0].upstream.state.last_error or ""),
            what="the certificate refusal as the upstream's last error",
        )
        assert receiver.events == []
        await impostor.cleanup()
        genuine = await serve(receiver, server_context(private), port)
        try:
            await receiver.wait_for(1, kind="cn.huxiao.alarm.panic")
            assert receiver.events[0].data["button_event_id"] == event_id
            assert await asyncio.to_thread(guard.wait_for_ack, event_id, "delivered")
        finally:
            guard.disconnect()
            await genuine.cleanup()
