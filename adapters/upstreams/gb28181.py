"""The `gb28181` upstream: each outbox event as an Alarm MESSAGE from the button's channel of the gateway's device.

A 200 OK is delivery; anything else, a timeout or no registration is an UpstreamError and the forwarder sends the
same event again. GB/T 28181 has no panic-button alarm type: a press goes as AlarmMethod 2 (device alarm) with a
clear Chinese AlarmDescription; a button gone offline as AlarmMethod 6 (device fault).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

from adapters.gb28181.channels import Channel, ChannelKind, StaticChannels, button_ids, camera_ids
from adapters.gb28181.device import GbDevice
from adapters.gb28181.live import LiveVideo
from adapters.upstreams.base import LinkState
from gateway.domain.config import GatewayConfig, Gb28181UpstreamConfig
from gateway.domain.errors import GatewayError, UpstreamError
from gateway.domain.events import BUTTON_OFFLINE, BUTTON_ONLINE, EVENT_TYPES, PICTURES, AlarmType, OutboxEvent

logger = logging.getLogger(__name__)

METHOD_DEVICE = 2  # AlarmMethod 2: a device alarm (there is no panic-button method)
METHOD_FAULT = 6  # AlarmMethod 6: a device fault
# The Alarm MESSAGE's own bound: the forwarder retries, so one attempt need not wait the whole 64×T1.
SEND_TIMEOUT_S = 5.0


@dataclass(frozen=True, slots=True)
class AlarmShape:
    priority: int  # 1 most urgent … 4 least
    method: int
    description: str


def shape(event_type: str, data: dict[str, Any]) -> AlarmShape | None:
    """How one CloudEvent looks as a GB Alarm; None for events a GB platform has no use for (pictures)."""
    button = data.get("button") or {}
    place = str(button.get("name") or button.get("id") or "")
    if button.get("location"):
        place += f"（{button['location']}）"
    school = str((data.get("school") or {}).get("name") or "")
    if event_type == EVENT_TYPES[AlarmType.PANIC]:
        return AlarmShape(1, METHOD_DEVICE, f"一键报警：{school}{place}紧急求助")
    if event_type == EVENT_TYPES[AlarmType.TEST]:
        return AlarmShape(4, METHOD_DEVICE, f"一键报警测试：{school}{place}（月度测试，非真实警情）")
    if event_type == EVENT_TYPES[AlarmType.CANCEL]:
        return AlarmShape(4, METHOD_DEVICE, f"一键报警解除：{school}{place}")
    if event_type == BUTTON_OFFLINE:
        return AlarmShape(2, METHOD_FAULT, f"报警按钮离线：{school}{place}")
    if event_type == BUTTON_ONLINE:
        return AlarmShape(4, METHOD_FAULT, f"报警按钮恢复在线：{school}{place}")
    if event_type == PICTURES:
        return None
    return AlarmShape(4, 7, f"{school}{place}：{event_type}")


class Gb28181Upstream:
    """The Upstream over one GbDevice. As an async context manager it owns the device's SIP socket; the device's
    `run()` (registration, keepalive) is a long-running part for the owner's supervisor."""

    kind: str = "gb28181"

    def __init__(
        self,
        config: Gb28181UpstreamConfig,
        device: GbDevice,
        buttons: dict[str, str],
        channels: StaticChannels | None = None,
        cameras: dict[str, str] | None = None,
    ) -> None:
        self.name: str = config.name
        self.role: str = config.role
        self.device = device
        self._buttons = buttons  # button id → channel id
        self._cameras = cameras or {}  # camera id → channel id
        self._channels = channels
        self.state = LinkState()
        # The link is the registration: up while the platform has the device registered and answers keepalives,
        # down (with the reason) as soon as it refuses, forgets or stops answering, before any alarm has to fail.
        device.on_link = self._link_changed

    @classmethod
    def from_config(
        cls, gateway: GatewayConfig, config: Gb28181UpstreamConfig, *, live: LiveVideo | None = None
    ) -> Gb28181Upstream:
        """A device whose channels are the config's cameras (OFF until health says otherwise) and buttons."""
        cameras = camera_ids(config.device_id, gateway.cameras)
        buttons = button_ids(config.device_id, gateway.buttons)
        channels = [Channel(cameras[c.id], c.name, ChannelKind.CAMERA, False, c.id) for c in gateway.cameras]
        channels += [Channel(buttons[b.id], b.name, ChannelKind.ALARM_INPUT, True, b.id) for b in gateway.buttons]
        source = StaticChannels(channels)
        device = GbDevice(config, source, name=gateway.school.name, live=live)
        return cls(config, device, buttons, source, cameras)

    def set_online(self, local_id: str, online: bool) -> None:
        """A camera's or button's channel went ON or OFF (from camera health or button state): the platform gets
        a Catalog NOTIFY when it changed. Unknown ids are ignored."""
        channel = self._cameras.get(local_id) or self._buttons.get(local_id)
        if self._channels is None or channel is None:
            return
        changed = self._channels.set_online(channel, online)
        if changed is not None:
            self.device.channel_changed(changed)

    def _link_changed(self, up: bool, error: str | None) -> None:
        if up:
            self.state.up(time.time())
        else:
            self.state.down(time.time(), error or "not registered")

    async def __aenter__(self) -> Gb28181Upstream:
        await self.device.__aenter__()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.device.__aexit__(exc_type, exc, tb)

    async def send(self, event: OutboxEvent) -> None:
        try:
            document = json.loads(event.body)
            data = document.get("data") or {}
            at = datetime.fromisoformat(str(data.get("pressed_at") or document.get("time")).replace("Z", "+00:00"))
        except (ValueError, TypeError, AttributeError) as exc:
            # A body we stored ourselves that we cannot read will never read: say so instead of retrying silently.
            raise UpstreamError(f"{self.name}: event {event.id} unreadable: {exc}") from None
        alarm = shape(event.type, data)
        if alarm is None:
            return  # nothing a GB platform takes: delivered by definition
        channel = self._buttons.get(event.button_id or "")
        if channel is None:
            channel = self.device.device_id  # a gateway-level event: from the device itself
        try:
            await self.device.send_alarm(
                channel,
                priority=alarm.priority,
                method=alarm.method,
                description=alarm.description,
                at=at.astimezone(UTC),
                timeout=SEND_TIMEOUT_S,
            )
        except GatewayError as exc:
            self.state.down(time.time(), str(exc))
            raise UpstreamError(f"{self.name}: {exc}") from None
        self.state.up(time.time())
