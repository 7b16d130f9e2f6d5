"""What the GB/T 28181 device asks of the live-video relay, and what it gets back.

The SIP side (the device) parses the platform's INVITE into a `MediaOffer`, asks a `LiveVideo` for a
`PlaySession`, puts `session.local_port` in its SDP answer, starts the session on the ACK and stops it on BYE.
The relay (in `gateway/services/`) implements `LiveVideo`: it pulls the camera over RTSP, muxes MPEG-PS and
sends RTP. When the camera dies mid-play the relay sets `session.ended`, and the device then sends BYE.
The composition root injects the relay into the device; neither imports the other.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol


class MediaTransport(StrEnum):
    UDP = "udp"  # m=video <port> RTP/AVP 96
    TCP_PASSIVE = "tcp-passive"  # a=setup:passive: the platform listens, the device connects out
    TCP_ACTIVE = "tcp-active"  # a=setup:active: the platform connects, the device listens


@dataclass(frozen=True, slots=True)
class MediaOffer:
    """Where the platform wants a channel's video: its address, port, transport and the SSRC (`y=`)."""

    channel_id: str
    camera_id: str
    host: str
    port: int
    transport: MediaTransport
    ssrc: int
    payload_type: int = 96


class PlaySession(Protocol):
    """One viewer of one camera."""

    @property
    def local_port(self) -> int:
        """The device's own media port, for the SDP answer (the UDP source port, or the TCP port it listens on
        for `tcp-active`, or the port it connects from for `tcp-passive`)."""
        ...

    @property
    def ended(self) -> asyncio.Event:
        """Set when the stream ended on its own (camera gone, viewer gone): the device sends BYE."""
        ...

    async def start(self) -> None:
        """After the ACK: begin sending (the first picture from the last key frame the relay holds)."""
        ...

    async def stop(self) -> None:
        """On BYE or when the device stops: end sending and release the camera if no one else watches it."""
        ...


class LiveVideo(Protocol):
    async def open(self, offer: MediaOffer) -> PlaySession:
        """Prepare a session (bind or connect the media socket) before the 200 OK; raises GatewayError
        (DeviceError for the camera) when the camera cannot be played."""
        ...
