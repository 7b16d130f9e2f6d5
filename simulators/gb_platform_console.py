"""The simulated GB/T 28181 platform's operator console over HTTP, for the demo: what a police operator does when
they click a school camera on their video platform, as one request.

    GET /                      the devices the platform has, registered or not, and the cameras it can play
    GET /watch/<camera>?seconds=5
                               INVITE the camera's channel of the gateway's device, take N seconds of the RTP,
                               BYE, and answer the reassembled MPEG-PS (`video/MP2P`): FFmpeg opens it as it is

The camera may be named by the gateway's camera id (`gate-1`) or by its 20-digit channel id.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from aiohttp import web

from gateway.domain.errors import GatewayError
from simulators.gb_platform import GbPlatform

# A recording is asked for in whole seconds: at least one key frame (the simulated cameras send one a second), at
# most a minute, so that a mistyped number does not hold a play open for hours.
MIN_SECONDS = 1.0
MAX_SECONDS = 60.0
DEFAULT_SECONDS = 5.0


class GbPlatformConsole:
    """`console.app()` serves the console for one device of `platform`; `channels`: camera id → channel id."""

    def __init__(self, platform: GbPlatform, device_id: str, channels: dict[str, str] | None = None) -> None:
        self.platform = platform
        self.device_id = device_id
        self.channels = dict(channels or {})

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/", self._index)
        app.router.add_get("/watch/{camera}", self._watch)
        return app

    async def _index(self, request: web.Request) -> web.Response:
        devices = [
            {"id": d.id, "registered": self.platform.online(d.id), "keepalives": d.keepalives}
            for d in self.platform.devices.values()
        ]
        return web.json_response({"platform": self.platform.id, "devices": devices, "cameras": self.channels})

    def _channel(self, name: str) -> str | None:
        if name in self.channels:
            return self.channels[name]
        return name if name in self.channels.values() else None

    async def _watch(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["camera"].removesuffix(".ps")
        channel = self._channel(name)
        if channel is None:
            known = ", ".join(sorted(self.channels)) or "none"
            raise web.HTTPNotFound(text=f"no camera {name!r} (cameras: {known})\n")
        try:
            seconds = float(request.query.get("seconds", DEFAULT_SECONDS))
        except ValueError:
            raise web.HTTPBadRequest(text="seconds: a number, e.g. 5\n") from None
        if not MIN_SECONDS <= seconds <= MAX_SECONDS:
            raise web.HTTPBadRequest(text=f"seconds: between {MIN_SECONDS:g} and {MAX_SECONDS:g}\n")
        if not self.platform.online(self.device_id):
            raise web.HTTPServiceUnavailable(text=f"device {self.device_id} is not registered with the platform\n")
        try:
            play = await self.platform.invite(self.device_id, channel, "udp")
        except GatewayError as exc:
            raise web.HTTPBadGateway(text=f"the gateway refused to play {name}: {exc}\n") from None
        try:
            await asyncio.sleep(seconds)  # the recording's length: what was asked for, not a wait for a result
        finally:
            with contextlib.suppress(GatewayError):
                await self.platform.bye(self.device_id, play)
        body = await asyncio.to_thread(_take, play.out)
        if not body:
            raise web.HTTPBadGateway(text=f"no video from {name} in {seconds:g} s\n")
        return web.Response(
            body=body,
            content_type="video/MP2P",
            headers={"Content-Disposition": f'attachment; filename="{name}.ps"', "X-Rtp-Packets": str(play.packets)},
        )


def _take(path: Path) -> bytes:
    """The recording's bytes; the file is the platform's scratch and goes once read."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return b""
    path.unlink()
    return data
