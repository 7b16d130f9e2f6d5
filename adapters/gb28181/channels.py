"""The device's channels: the school's cameras (type 132) and alarm buttons (type 134), with their GB ids."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from gateway.domain.config import ButtonConfig, CameraConfig


class ChannelKind(StrEnum):
    CAMERA = "132"  # GB/T 28181 type code of an IP camera
    ALARM_INPUT = "134"  # an alarm input: the one-click button


@dataclass(frozen=True, slots=True)
class Channel:
    """One channel as the platform sees it; `online` is its Catalog Status (ON/OFF) right now."""

    id: str  # the 20-digit channel id
    name: str
    kind: ChannelKind
    online: bool
    local_id: str  # the camera's or button's id in the gateway's config


class ChannelSource(Protocol):
    """Where the device reads its channels from (camera health and button state), injected by the app."""

    def channels(self) -> list[Channel]: ...


ChangeHook = Callable[[Channel], None]


def channel_id(device_id: str, kind: ChannelKind, position: int) -> str:
    """The derived id: first 10 digits of the device id, the type code, network digit 0, position from 000001."""
    return f"{device_id[:10]}{kind.value}0{position:06d}"


def camera_ids(device_id: str, cameras: list[CameraConfig]) -> dict[str, str]:
    """Camera id → channel id (the configured `gb_id`, else derived from its position)."""
    return {c.id: c.gb_id or channel_id(device_id, ChannelKind.CAMERA, n) for n, c in enumerate(cameras, 1)}


def button_ids(device_id: str, buttons: list[ButtonConfig]) -> dict[str, str]:
    """Button id → channel id (the configured `gb_id`, else derived from its position)."""
    return {b.id: b.gb_id or channel_id(device_id, ChannelKind.ALARM_INPUT, n) for n, b in enumerate(buttons, 1)}


@dataclass
class StaticChannels:
    """A channel source whose states are set from outside (the app's health loop, tests, the demo)."""

    items: list[Channel]

    def channels(self) -> list[Channel]:
        return list(self.items)

    def set_online(self, channel: str, online: bool) -> Channel | None:
        """Change one channel's state; returns the changed channel, or None when nothing changed."""
        for index, item in enumerate(self.items):
            if item.id == channel and item.online != online:
                changed = Channel(item.id, item.name, item.kind, online, item.local_id)
                self.items[index] = changed
                return changed
        return None
