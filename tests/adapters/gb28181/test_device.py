"""The GB/T 28181 device against the simulated platform over real UDP and TCP sockets on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import struct
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from adapters.gb28181.channels import Channel, ChannelKind, StaticChannels, channel_id
from adapters.gb28181.device import GbDevice
from adapters.gb28181.live import MediaOffer, MediaTransport
from adapters.upstreams.gb28181 import Gb28181Upstream
from gateway.domain.config import Gb28181UpstreamConfig, parse_config
from gateway.domain.errors import UpstreamError
from gateway.domain.events import OutboxEvent
from simulators.gb_platform import GbPlatform
from tests.fixtures.waiting import eventually

DEVICE = "51040200001180000001"
CAMERA = channel_id(DEVICE, ChannelKind.CAMERA, 1)
BUTTON = channel_id(DEVICE, ChannelKind.ALARM_INPUT, 1)


def channels(cameras: int = 2) -> StaticChannels:
    items = [
        Channel(channel_id(DEVICE, ChannelKind.CAMERA, n), f"校门口{n}", ChannelKind.CAMERA, True, f"cam-{n}")
        for n in range(1, cameras + 1)
    ]
    items.append(Channel(BUTTON, "门卫室一键报警", ChannelKind.ALARM_INPUT, True, "guard-room"))
    return StaticChannels(items)


def config(platform: GbPlatform, **extra: object) -> Gb28181UpstreamConfig:
    return Gb28181UpstreamConfig.model_validate(
        {
            "name": "police-gb",
            "kind": "gb28181",
            "server": platform.server_uri,
            "device_id": DEVICE,
            "password": "12345678",
            "transport": platform.transport,
            "local": "127.0.0.1:0",
            **extra,
        }
    )


class RtpLive:
    """A small real LiveVideo: sends numbered RTP packets of a fixed payload over UDP or TCP (RFC 4571)."""

    def __init__(self, packets: int = 20) -> None:
        self.packets = packets
        self.offers: list[MediaOffer] = []
        self.sessions: list[RtpSession] = []

    async def open(self, offer: MediaOffer) -> RtpSession:
        self.offers.append(offer)
        session = RtpSession(offer, self.packets)
        await session.prepare()
        self.sessions.append(session)
        return session


class RtpSession:
    def __init__(self, offer: MediaOffer, packets: int) -> None:
        self.offer = offer
        self.count = packets
        self._ended = asyncio.Event()
        self.started = False
        self.stopped = False
        self._sock: socket.socket | None = None
        self._server: asyncio.Server | None = None
        self._accepted: asyncio.Queue[asyncio.StreamWriter] = asyncio.Queue()
        self._port = 0
        self._sender: asyncio.Task[None] | None = None

    async def prepare(self) -> None:
        if self.offer.transport is MediaTransport.TCP_ACTIVE:
            self._server = await asyncio.start_server(lambda r, w: self._accepted.put_nowait(w), "127.0.0.1", 0)
            self._port = self._server.sockets[0].getsockname()[1]
        else:
            self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self._sock.bind(("127.0.0.1", 0))
            self._port = self._sock.getsockname()[1]

    @property
    def local_port(self) -> int:
        return self._port

    @property
    def ended(self) -> asyncio.Event:
        return self._ended

    def packet(self, seq: int) -> bytes:
        header = struct.pack("!BBHII", 0x80, 0x80 | 96, seq, seq * 3600, self.offer.ssrc)
        return header + bytes([seq % 256]) * 100

    async def start(self) -> None:
        self.started = True
        self._sender = asyncio.ensure_future(self._send())

    async def _send(self) -> None:
        if self.offer.transport is MediaTransport.UDP:
            assert self._sock is not None
            for seq in range(self.count):
                self._sock.sendto(self.packet(seq), (self.offer.host, self.offer.port))
                await asyncio.sleep(0)
            return
        if self.offer.transport is MediaTransport.TCP_PASSIVE:
            assert self._sock is not None
            self._sock.close()
            _, writer = await asyncio.open_connection(self.offer.host, self.offer.port)
        else:
            writer = await self._accepted.get()
        for seq in range(self.count):
            data = self.packet(seq)
            writer.write(struct.pack("!H", len(data)) + data)
        await writer.drain()
        writer.close()

    async def stop(self) -> None:
        self.stopped = True
        if self._sender is not None:
            self._sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sender
        if self._sock is not None:
            self._sock.close()
        if self._server is not None:
            self._server.close()


@contextlib.asynccontextmanager
async def running(device: GbDevice) -> AsyncIterator[GbDevice]:
    async with device, registering(device):
        yield device


@contextlib.asynccontextmanager
async def registering(device: GbDevice) -> AsyncIterator[GbDevice]:
    """The device's `run()` (registration, keepalive), as the gateway's supervisor runs it."""
    task = asyncio.ensure_future(device.run())
    try:
        yield device
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@pytest.fixture(params=["udp", "tcp"])
async def platform(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[GbPlatform]:
    async with GbPlatform(transport=request.param, keepalive_s=0.3, workdir=tmp_path) as simulated:
        yield simulated


async def test_the_device_registers_answers_wvps_first_queries_and_keeps_alive(platform: GbPlatform) -> None:
    async with running(GbDevice(config(platform, keepalive="0.3s"), channels(30), name="攀枝花市第一小学")) as device:
        await eventually(lambda: DEVICE in platform.devices and bool(platform.devices[DEVICE].complete_catalogs))
        record = platform.devices[DEVICE]
        assert record.authorized_with_qop
        assert device.clock_offset_s is not None
        assert abs(device.clock_offset_s) < 5
        assert record.info is not None
        assert record.info.text("DeviceName") == "攀枝花市第一小学"
        assert record.basic_param is not None
        assert record.basic_param.text("BasicParam/HeartBeatInterval") == "1"  # whole seconds, at least 1
        catalog = record.catalog()
        assert len(catalog) == 31
        assert catalog[0].name == "校门口1"
        assert catalog[0].parent == DEVICE
        assert catalog[0].status == "ON"
        assert catalog[-1].id == BUTTON
        assert record.largest_message <= 1400  # every Catalog MESSAGE within one datagram
        await eventually(lambda: record.keepalives >= 2, what="two keepalives")
        assert platform.online(DEVICE)
    # Stopping unregisters (Expires: 0).
    assert platform.devices[DEVICE].unregistered


async def test_without_qop_and_with_a_wrong_password(platform: GbPlatform) -> None:
    platform.qop = False
    async with running(GbDevice(config(platform), channels())):
        await eventually(lambda: DEVICE in platform.devices)
        assert not platform.devices[DEVICE].authorized_with_qop
    async with running(GbDevice(config(platform, password="wrong"), channels(), retry_first=0.05)) as device:
        await eventually(lambda: len(platform.refused) >= 2, what="the wrong password refused twice (back-off)")
        assert device.link == "down"
        assert "403" in (device.last_error or "")


async def test_after_a_platform_restart_the_device_registers_again(platform: GbPlatform) -> None:
    async with running(GbDevice(config(platform, keepalive="0.2s"), channels(), retry_first=0.05)):
        await eventually(lambda: DEVICE in platform.devices)
        first_call = platform.devices[DEVICE].call_ids[0]
        platform.forget()
        await eventually(lambda: DEVICE in platform.devices, what="registration after the 404 to a keepalive")
        assert platform.not_found >= 1
        assert platform.devices[DEVICE].call_ids[0] == first_call  # same Call-ID: the device's one registration


async def test_a_channel_change_is_notified_and_an_alarm_is_delivered(platform: GbPlatform) -> None:
    source = channels()
    device = GbDevice(config(platform), source)
    upstream = Gb28181Upstream(config(platform), device, {"guard-room": BUTTON})
    async with upstream, registering(device):
        await eventually(lambda: device.registered.is_set())
        changed = source.set_online(CAMERA, False)
        assert changed is not None
        device.channel_changed(changed)
        await eventually(lambda: platform.devices[DEVICE].catalog_events == [(CAMERA, "OFF")])
        body = {
            "data": {
                "button": {"id": "guard-room", "name": "门卫室"},
                "school": {"name": "一小"},
                "pressed_at": "2026-12-01T08:00:00.000Z",
            }
        }
        event = OutboxEvent(1, "e1", "cn.huxiao.alarm.panic", "guard-room", "p1", json.dumps(body).encode())
        await upstream.send(event)
        (alarm,) = platform.devices[DEVICE].alarms
        assert alarm.device_id == BUTTON
        assert (alarm.text("AlarmPriority"), alarm.text("AlarmMethod")) == ("1", "2")
        assert "一键报警" in (alarm.text("AlarmDescription") or "")
        platform.fail_next["Alarm"] = 500
        with pytest.raises(UpstreamError):
            await upstream.send(event)
        assert upstream.state.link == "down"


async def test_an_alarm_while_not_registered_is_an_upstream_error(tmp_path: Path) -> None:
    async with GbPlatform(workdir=tmp_path) as platform:
        device = GbDevice(config(platform), channels())
        upstream = Gb28181Upstream(config(platform), device, {"guard-room": BUTTON})
        async with device:  # not running: never registered
            body = {"data": {"button": {"id": "guard-room"}, "pressed_at": "2026-12-01T08:00:00Z"}}
            with pytest.raises(UpstreamError, match="not registered"):
                await upstream.send(
                    OutboxEvent(1, "e", "cn.huxiao.alarm.panic", "guard-room", "p", json.dumps(body).encode())
                )


@pytest.mark.parametrize("media", ["udp", "tcp-passive", "tcp-active"])
async def test_live_play_invite_ack_bye(platform: GbPlatform, media: str) -> None:
    live = RtpLive()
    async with running(GbDevice(config(platform), channels(), live=live)) as device:
        await eventually(lambda: device.registered.is_set())
        play = await platform.invite(DEVICE, CAMERA, media, ssrc=110000042)  # type: ignore[arg-type]
        answer = play.answer
        assert "s=Play" in answer
        assert "a=sendonly" in answer
        assert "a=rtpmap:96 PS/90000" in answer
        assert "y=0110000042" in answer
        assert ("TCP/RTP/AVP" in answer) == (media != "udp")
        if media == "tcp-passive":
            assert "a=setup:active" in answer
        (offer,) = live.offers
        assert offer.ssrc == 110000042
        assert offer.camera_id == "cam-1"
        await eventually(lambda: play.packets == 20, what="20 RTP packets at the platform")
        assert play.ssrcs == {110000042}
        assert play.payload_types == {96}
        assert play.out.stat().st_size == 20 * 100
        assert await platform.bye(DEVICE, play) == 200
        assert live.sessions[0].stopped
        assert device.playing == 0


async def test_a_session_that_ends_on_its_own_is_closed_with_bye(platform: GbPlatform) -> None:
    live = RtpLive()
    async with running(GbDevice(config(platform), channels(), live=live)) as device:
        await eventually(lambda: device.registered.is_set())
        play = await platform.invite(DEVICE, CAMERA)
        await eventually(lambda: bool(live.sessions) and live.sessions[0].started)
        live.sessions[0].ended.set()
        await asyncio.wait_for(play.bye_received.wait(), 5)
        assert device.playing == 0


async def test_an_invite_for_a_button_or_an_unknown_channel_is_refused(platform: GbPlatform) -> None:
    async with running(GbDevice(config(platform), channels(), live=RtpLive())) as device:
        await eventually(lambda: device.registered.is_set())
        with pytest.raises(Exception, match="404"):
            await platform.invite(DEVICE, BUTTON)


async def test_hostile_sip_is_dropped_and_the_device_keeps_working(platform: GbPlatform) -> None:
    async with running(GbDevice(config(platform), channels())) as device:
        # After the platform's first queries, so the junk does not cut them off half-way.
        await eventually(lambda: DEVICE in platform.devices and len(platform.devices[DEVICE].complete_catalogs) == 1)
        for junk in (b"\x00" * 300, b"MESSAGE sip:x SIP/2.0\r\nVia: x\r\n\r\n", b"INVITE " + b"A" * 2000):
            if platform.transport == "tcp" and junk.startswith(b"INVITE"):
                continue
            await platform.raw(DEVICE, junk)
        await eventually(lambda: device.sip.dropped >= 1)
        if platform.transport == "tcp":  # the unframeable stream was closed: the device comes back on a new one
            await eventually(lambda: platform.devices[DEVICE].registrations >= 2, what="re-registration over TCP")
        await platform.query(DEVICE, "Catalog")
        await eventually(lambda: len(platform.devices[DEVICE].complete_catalogs) >= 2)


async def test_the_registration_is_refreshed_before_expiry_on_the_same_call_id(platform: GbPlatform) -> None:
    async with running(GbDevice(config(platform, expires="1s"), channels())):
        await eventually(lambda: DEVICE in platform.devices and platform.devices[DEVICE].registrations >= 3)
        record = platform.devices[DEVICE]
        assert len(set(record.call_ids)) == 1
        assert platform.online(DEVICE)


async def test_unanswered_keepalives_take_the_link_down_and_it_comes_back(platform: GbPlatform) -> None:
    settings = config(platform, keepalive="0.2s", keepalive_misses=2)
    device = GbDevice(settings, channels(), retry_first=0.05)
    changes: list[tuple[bool, str | None]] = []
    device.on_link = lambda up, error: changes.append((up, error))
    async with running(device):
        await eventually(lambda: device.link == "up")
        platform.silent = True
        # The platform still answers REGISTER, so the link is down only until the device has registered again:
        # the change itself is what to look for, not a state that may last a millisecond.
        await eventually(lambda: (False, "2 keepalives unanswered") in changes, what="link down after 2 misses")
        platform.silent = False
        answered_after = time.time()
        await eventually(
            lambda: device.link == "up" and (device.last_keepalive_at or 0) > answered_after, what="keepalives again"
        )


async def test_device_status_is_answered_with_the_query_sn(platform: GbPlatform) -> None:
    async with running(GbDevice(config(platform), channels())) as device:
        await eventually(lambda: device.registered.is_set())
        sn = await platform.query(DEVICE, "DeviceStatus")
        await eventually(lambda: platform.devices[DEVICE].status is not None)
        status = platform.devices[DEVICE].status
        assert status is not None
        assert status.sn == sn
        assert status.text("Online") == "ONLINE"


async def test_the_upstream_built_from_config_notifies_a_camera_coming_online(platform: GbPlatform) -> None:
    gateway = parse_config(
        json.dumps(
            {
                "school": {"id": "51040200001", "name": "一小"},
                "cameras": [{"id": "gate-1", "name": "校门口", "rtsp": "rtsp://127.0.0.1:8554/g"}],
                "buttons": [{"id": "guard-room", "name": "门卫室", "gb_id": "51040200001349000007"}],
                "upstreams": [config(platform).model_dump(mode="json") | {"password": "12345678"}],
            }
        ),
        env={},
    )
    upstream_config = gateway.upstreams[0]
    assert isinstance(upstream_config, Gb28181UpstreamConfig)
    async with Gb28181Upstream.from_config(gateway, upstream_config) as upstream, registering(upstream.device):
        await eventually(lambda: DEVICE in platform.devices and bool(platform.devices[DEVICE].complete_catalogs))
        statuses = {item.id: item.status for item in platform.devices[DEVICE].catalog()}
        assert statuses == {CAMERA: "OFF", "51040200001349000007": "ON"}  # a configured gb_id wins
        upstream.set_online("gate-1", True)
        upstream.set_online("gate-1", True)  # no change: no second NOTIFY
        await eventually(lambda: platform.devices[DEVICE].catalog_events == [(CAMERA, "ON")])


async def test_bound_to_every_address_the_device_names_its_route_address(tmp_path: Path) -> None:
    async with GbPlatform(workdir=tmp_path) as platform:
        device = GbDevice(config(platform, local="0.0.0.0:0"), channels())
        async with running(device):
            await eventually(lambda: DEVICE in platform.devices)
            contact = platform.devices[DEVICE].contact
            assert contact.startswith(f"<sip:{DEVICE}@127.0.0.1:")  # not 0.0.0.0: the platform must reach it
