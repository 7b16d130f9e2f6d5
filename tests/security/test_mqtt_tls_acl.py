"""The button broker locked down as deploy/mosquitto/ says: TLS that the gateway verifies, an account per button, an
ACL that keeps each button to its own topics. A real Mosquitto, a real gateway app, a real HTTP platform."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiohttp.test_utils import TestServer

from adapters.mqtt.buttons import ButtonListener
from gateway.app import ALARMS, create_app
from gateway.domain.config import GatewayConfig, MqttConfig, parse_config
from gateway.domain.errors import ConfigError
from gateway.services.supervisor import Supervisor
from simulators.buttons import SimulatedButton
from simulators.platform import PlatformReceiver
from tests.fixtures.platform import PLATFORM_SECRET, platform
from tests.fixtures.secure_mosquitto import GATEWAY_ACCOUNT, GATEWAY_PASSWORD, SecureBroker, password_of, secure_broker
from tests.fixtures.waiting import eventually

__all__ = ["platform", "secure_broker"]
SCHOOL = "51040200001"
BUTTONS = [{"id": "guard-room", "name": "门卫室一键报警"}, {"id": "office", "name": "校长室"}]


def gateway_config(tmp_path: Path, broker: SecureBroker, url: str, **mqtt: Any) -> GatewayConfig:
    document = {
        "school": {"id": SCHOOL, "name": "攀枝花市第一小学"},
        "storage": {"path": str(tmp_path / "gw.db")},
        "mqtt": {
            "url": broker.url,
            "client_id": f"gw-{tmp_path.name}",
            "username": GATEWAY_ACCOUNT,
            "password": GATEWAY_PASSWORD,
            "ca": str(broker.ca),
            **mqtt,
        },
        "buttons": BUTTONS,
        "upstreams": [{"name": "police", "kind": "http", "url": url, "secret": PLATFORM_SECRET, "retry_first": "50ms"}],
        "web": {"listen": "127.0.0.1:0"},
    }
    return parse_config(json.dumps(document), env={})


@contextlib.asynccontextmanager
async def running(config: GatewayConfig) -> AsyncIterator[TestServer]:
    server = TestServer(create_app(config), host="127.0.0.1")
    await server.start_server()
    try:
        await asyncio.wait_for(server.app[ALARMS].listener.connected.wait(), 10)
        yield server
    finally:
        await server.close()


def button(broker: SecureBroker, button_id: str, *, account: str | None = None, password: str | None = None) -> Any:
    account = account or button_id
    sim = SimulatedButton(
        button_id,
        broker.port,
        school_id=SCHOOL,
        username=account,
        password=password or password_of(account),
        ca=str(broker.ca),
    )
    return sim


async def test_a_button_over_tls_with_its_own_account_raises_an_alarm(
    tmp_path: Path, secure_broker: SecureBroker, platform: tuple[PlatformReceiver, str]
) -> None:
    receiver, url = platform
    async with running(gateway_config(tmp_path, secure_broker, url)):
        guard = button(secure_broker, "guard-room")
        await asyncio.to_thread(guard.connect)
        event_id = guard.press("panic")
        await receiver.wait_for(1, kind="cn.huxiao.alarm.panic")
        assert receiver.events[0].data["button_event_id"] == event_id
        assert await asyncio.to_thread(guard.wait_for_ack, event_id, "delivered")
        guard.disconnect()


async def test_a_wrong_password_cannot_connect_so_cannot_raise_an_alarm(secure_broker: SecureBroker) -> None:
    intruder = button(secure_broker, "guard-room", password="guessed")
    with pytest.raises(TimeoutError):
        await asyncio.to_thread(intruder.connect, 3.0)
    assert intruder.refused_connection is not None
    assert "authori" in intruder.refused_connection.lower()
    intruder.disconnect(clean=False)


async def test_a_button_cannot_publish_for_another_button(
    tmp_path: Path, secure_broker: SecureBroker, platform: tuple[PlatformReceiver, str]
) -> None:
    receiver, url = platform
    async with running(gateway_config(tmp_path, secure_broker, url)) as server:
        office = button(secure_broker, "office")
        await asyncio.to_thread(office.connect)
        guard = button(secure_broker, "guard-room")
        await asyncio.to_thread(guard.connect)
        # The office's account forges a panic and an `offline` for the guard room's button.
        forged = json.dumps({"id": "forged-1", "type": "panic", "ts": "2026-01-01T00:00:00Z"}).encode()
        base = f"huxiao/{SCHOOL}/buttons/guard-room"
        office.publish_raw(f"{base}/alarm", forged).wait_for_publish(5)
        office.publish_raw(f"{base}/status", b"offline", retain=True).wait_for_publish(5)
        # Then the real guard-room button presses: once it is through, the forged one (sent first) had its chance.
        real = guard.press("panic")
        await receiver.wait_for(1, kind="cn.huxiao.alarm.panic")
        assert await asyncio.to_thread(guard.wait_for_ack, real, "delivered")
        assert [e.data["button_event_id"] for e in receiver.events if e.type == "cn.huxiao.alarm.panic"] == [real]
        assert "cn.huxiao.button.offline" not in [e.type for e in receiver.events]
        assert server.app[ALARMS].buttons["guard-room"].online is True
        office.disconnect()
        guard.disconnect()


async def test_the_gateway_refuses_a_broker_its_ca_did_not_sign(
    tmp_path: Path, secure_broker: SecureBroker, caplog: pytest.LogCaptureFixture
) -> None:
    config = MqttConfig(
        url=secure_broker.url,
        username=GATEWAY_ACCOUNT,
        password=GATEWAY_PASSWORD,
        ca=secure_broker.other_ca,
        client_id=f"gw-{tmp_path.name}",
    )
    listener = ButtonListener(config, SCHOOL, {}, lambda batch: [True] * len(batch))
    caplog.set_level(logging.WARNING, logger="adapters.mqtt.session")
    listener.start()
    supervisor = Supervisor()
    supervisor.start("buttons", listener.run)
    try:
        await eventually(lambda: "not trusted" in caplog.text, timeout=10, what="a certificate refusal logged")
        assert not listener.connected.is_set()
        assert f"the CA in {secure_broker.other_ca}" in caplog.text
        assert GATEWAY_PASSWORD not in caplog.text
    finally:
        await supervisor.stop()
        await listener.stop()


async def test_the_gateway_checks_the_brokers_name(tmp_path: Path, secure_broker: SecureBroker) -> None:
    """The certificate is for 127.0.0.1 and localhost; the same broker under another name is refused.

    127.0.0.2 is loopback too (the whole 127/8 is), so this is the same broker reached by a name not in its
    certificate."""
    config = MqttConfig(
        url=f"mqtts://127.0.0.2:{secure_broker.port}",
        username=GATEWAY_ACCOUNT,
        password=GATEWAY_PASSWORD,
        ca=secure_broker.ca,
        client_id=f"gw-{tmp_path.name}",
    )
    listener = ButtonListener(config, SCHOOL, {}, lambda batch: [True] * len(batch))
    listener.start()
    supervisor = Supervisor()
    supervisor.start("buttons", listener.run)
    try:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(listener.connected.wait(), 3)
    finally:
        await supervisor.stop()
        await listener.stop()


def test_tls_settings_are_checked_when_the_config_loads(tmp_path: Path) -> None:
    not_pem = tmp_path / "ca.pem"
    not_pem.write_text("hello", encoding="utf-8")
    text = "\n".join(
        [
            "school: {id: '51040200001', name: 一小}",
            "mqtt:",
            "  url: mqtts://127.0.0.1:8883",
            f"  ca: {not_pem}",
            f"  cert: {tmp_path / 'missing.pem'}",
        ]
    )
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "gw.yaml", env={})
    problems = "\n".join(caught.value.problems)
    assert "gw.yaml:4: mqtt.ca:" in problems
    assert "not a PEM file" in problems
    assert "gw.yaml:5: mqtt.cert:" in problems
    assert "no such file" in problems
    good_ca = tmp_path / "good-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(good_ca))
    clear = f"school: {{id: '51040200001', name: 一小}}\nmqtt: {{url: 'mqtt://127.0.0.1:1883', ca: {good_ca}}}\n"
    with pytest.raises(ConfigError, match=r"gw.yaml:2: mqtt: .*use an mqtts:// url"):
        parse_config(clear, "gw.yaml", env={})
