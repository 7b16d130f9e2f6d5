"""RTP for GB/T 28181 live video: the PS payload in packets, and the three ways to send them to the platform.

Packets: payload type 96, SSRC = the platform's `y=` (it drops any other), one timestamp per frame (the media
server ends a frame when the timestamp changes), the marker on a frame's last packet, payloads of at most 1400
bytes (media servers refuse packets over 10 KB; 1400 also fits an Ethernet MTU with IP/UDP/RTP headers) and
sequence numbers without gaps (a gap makes the media server drop the frame).

Senders: UDP from the session's own bound port; TCP with the RFC 4571 two-byte length before each packet, either
connecting out to the platform (`tcp-passive`: the platform listens) or listening for it (`tcp-active`).
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
from typing import Protocol

from gateway.domain.errors import DeviceTimeout, DeviceUnreachable

logger = logging.getLogger(__name__)

MAX_PAYLOAD = 1400
RTP_VERSION_BYTE = 0x80  # V=2, no padding, no extension, no CSRC
# The platform connects to a `tcp-active` device within its own 10 s play timeout, or not at all.
ACCEPT_TIMEOUT_S = 10.0
# A platform that takes no bytes for 5 s is gone (its own no-data limit is 15 s); the viewer ends, others go on.
SEND_TIMEOUT_S = 5.0
CONNECT_TIMEOUT_S = 3.0
CLOSE_TIMEOUT_S = 1.0


class RtpPacketizer:
    """PS bytes of one frame → RTP packets; one per viewer, so each has its own continuous sequence numbers."""

    def __init__(self, ssrc: int, payload_type: int = 96, max_payload: int = MAX_PAYLOAD) -> None:
        self.ssrc = ssrc & 0xFFFFFFFF
        self.payload_type = payload_type & 0x7F
        self.max_payload = max_payload
        # RFC 3550 section 5.1: the first sequence number is random.
        self.sequence = random.randrange(0x10000)

    def packets(self, payload: bytes, timestamp: int) -> list[bytes]:
        chunks = [payload[i : i + self.max_payload] for i in range(0, len(payload), self.max_payload)] or [b""]
        fixed = timestamp.to_bytes(8, "big")[4:] + self.ssrc.to_bytes(4, "big")
        out = []
        last = len(chunks) - 1
        for index, chunk in enumerate(chunks):
            second = self.payload_type | (0x80 if index == last else 0)
            head = bytes([RTP_VERSION_BYTE, second]) + self.sequence.to_bytes(2, "big") + fixed
            self.sequence = (self.sequence + 1) & 0xFFFF
            out.append(head + chunk)
        return out


class RtpSender(Protocol):
    @property
    def local_port(self) -> int: ...

    async def send(self, packets: list[bytes]) -> None:
        """Send one frame's packets; DeviceError when the platform is gone."""
        ...

    async def close(self) -> None: ...


class _Datagrams(asyncio.DatagramProtocol):
    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable while the platform's receiver is not up yet: UDP goes on, as media servers expect.
        logger.debug("RTP over UDP: %s", exc)


class UdpSender:
    """RTP over UDP from a port of its own (the `local_port` of the SDP answer) to the platform's port."""

    def __init__(self, device: str, transport: asyncio.DatagramTransport) -> None:
        self.device = device
        self._transport = transport
        self._port = int(transport.get_extra_info("sockname")[1])

    @classmethod
    async def open(cls, device: str, bind_host: str, host: str, port: int) -> UdpSender:
        loop = asyncio.get_running_loop()
        try:
            transport, _ = await loop.create_datagram_endpoint(
                _Datagrams, local_addr=(bind_host, 0), remote_addr=(host, port)
            )
        except OSError as exc:
            raise DeviceUnreachable(device, f"RTP over UDP to {host}:{port}: {exc.strerror or exc}") from None
        return cls(device, transport)

    @property
    def local_port(self) -> int:
        return self._port

    async def send(self, packets: list[bytes]) -> None:
        if self._transport.is_closing():
            raise DeviceUnreachable(self.device, "RTP over UDP: socket closed")
        for packet in packets:
            self._transport.sendto(packet)

    async def close(self) -> None:
        self._transport.close()


def _framed(packets: list[bytes]) -> bytes:
    """RFC 4571: each packet after its two-byte big-endian length."""
    return b"".join(len(p).to_bytes(2, "big") + p for p in packets)


class TcpSender:
    """RTP over TCP (RFC 4571 framing), connected out (`tcp-passive`) or accepted (`tcp-active`)."""

    def __init__(self, device: str, port: int) -> None:
        self.device = device
        self._port = port
        self._writer: asyncio.StreamWriter | None = None
        self._server: asyncio.Server | None = None
        self._connected = asyncio.Event()

    @classmethod
    async def connect(cls, device: str, bind_host: str, host: str, port: int) -> TcpSender:
        """`tcp-passive`: the platform listens on host:port; the device connects from a port of its own."""
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT_S):
                _, writer = await asyncio.open_connection(host, port, local_addr=(bind_host, 0))
        except TimeoutError:
            raise DeviceTimeout(
                device, f"RTP over TCP: {host}:{port} did not accept within {CONNECT_TIMEOUT_S:g} s"
            ) from None
        except OSError as exc:
            raise DeviceUnreachable(device, f"RTP over TCP to {host}:{port}: {exc.strerror or exc}") from None
        sender = cls(device, int(writer.get_extra_info("sockname")[1]))
        sender._attach(writer)
        return sender

    @classmethod
    async def listen(cls, device: str, bind_host: str) -> TcpSender:
        """`tcp-active`: the device listens on `local_port` and the platform connects (once) after the 200 OK."""
        holder: list[TcpSender] = []

        async def accepted(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            sender = holder[0]
            if sender._writer is not None:
                writer.close()  # one platform connection per session; a second is not ours
                return
            sender._attach(writer)

        try:
            server = await asyncio.start_server(accepted, bind_host, 0, family=socket.AF_INET)
        except OSError as exc:
            raise DeviceUnreachable(device, f"RTP over TCP: cannot listen: {exc.strerror or exc}") from None
        sender = cls(device, int(server.sockets[0].getsockname()[1]))
        sender._server = server
        holder.append(sender)
        return sender

    def _attach(self, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        if sock is not None:
            # One frame's packets go out in one write; no Nagle delay behind the previous frame's tail.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._writer = writer
        self._connected.set()
        if self._server is not None:
            self._server.close()  # stop listening: the platform is here

    @property
    def local_port(self) -> int:
        return self._port

    async def send(self, packets: list[bytes]) -> None:
        try:
            if self._writer is None:
                async with asyncio.timeout(ACCEPT_TIMEOUT_S):
                    await self._connected.wait()
            writer = self._writer
            assert writer is not None
            if writer.is_closing():
                raise DeviceUnreachable(self.device, "RTP over TCP: the platform closed the connection")
            writer.write(_framed(packets))
            async with asyncio.timeout(SEND_TIMEOUT_S):
                await writer.drain()
        except TimeoutError:
            raise DeviceTimeout(self.device, "RTP over TCP: the platform took no data in time") from None
        except (ConnectionError, OSError) as exc:
            raise DeviceUnreachable(self.device, f"RTP over TCP: {type(exc).__name__}") from None

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()
            try:
                async with asyncio.timeout(CLOSE_TIMEOUT_S):
                    await writer.wait_closed()
            except (TimeoutError, ConnectionError, OSError):
                pass
