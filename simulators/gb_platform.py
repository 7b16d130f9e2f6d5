"""A GB/T 28181 platform for tests and the demo, behaving as WVP-GB28181-pro does towards a device.

It challenges REGISTER with `qop="auth"` and realm = the first 10 digits of its id, checks the digest, answers 403
to a From user that is not a 20-digit id, asks DeviceInfo → ConfigDownload/BasicParam → Catalog after a first
registration, collects a Catalog by SN until SumNum, supervises keepalives, answers 404 to a device it does not
know (`forget()` simulates a platform restart), and plays channels over UDP or TCP (passive or active) into an RTP
receiver that writes the reassembled PS payload to a file.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import struct
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from adapters.digest import parse_authorization, verify_authorization
from adapters.gb28181 import manscdp
from adapters.gb28181.sip import (
    SipMessage,
    address_uri,
    header_params,
    new_branch,
    new_call_id,
    new_tag,
    response_to,
    uri_user,
)
from adapters.gb28181.transport import Address, SipTransport
from gateway.domain.errors import DeviceProtocolError

logger = logging.getLogger(__name__)

# The platform's play timeout: WVP gives a device 10 s to answer an INVITE.
PLAY_TIMEOUT_S = 10.0


@dataclass
class CatalogItem:
    id: str
    name: str
    status: str
    parent: str
    civil_code: str


@dataclass
class DeviceRecord:
    """What the platform knows of one device."""

    id: str
    address: Address
    registrations: int = 0
    call_ids: list[str] = field(default_factory=list)
    authorized_with_qop: bool = False
    keepalives: int = 0
    last_keepalive: float = 0.0
    info: manscdp.Manscdp | None = None
    basic_param: manscdp.Manscdp | None = None
    status: manscdp.Manscdp | None = None
    catalogs: dict[str, list[CatalogItem]] = field(default_factory=dict)
    catalog_sumnum: dict[str, int] = field(default_factory=dict)
    complete_catalogs: list[str] = field(default_factory=list)
    catalog_events: list[tuple[str, str]] = field(default_factory=list)  # (channel, ON|OFF)
    alarms: list[manscdp.Manscdp] = field(default_factory=list)
    alarm_received_at: list[float] = field(default_factory=list)
    unregistered: bool = False
    contact: str = ""  # the Contact of the last REGISTER
    largest_message: int = 0  # bytes of the largest MESSAGE/NOTIFY from the device (one datagram?)

    def catalog(self) -> list[CatalogItem]:
        """The last complete Catalog."""
        return self.catalogs[self.complete_catalogs[-1]] if self.complete_catalogs else []


@dataclass
class Play:
    """One INVITE dialog and its RTP receiver."""

    call_id: str
    channel: str
    ssrc: int
    answer: str
    out: Path
    to_header: str = ""
    device: Address = ("127.0.0.1", 0)
    packets: int = 0
    ssrcs: set[int] = field(default_factory=set)
    payload_types: set[int] = field(default_factory=set)
    bye_received: asyncio.Event = field(default_factory=asyncio.Event)
    closers: list[asyncio.BaseTransport | asyncio.Server | asyncio.StreamWriter] = field(default_factory=list)
    readers: list[asyncio.Task[None]] = field(default_factory=list)

    def rtp(self, packet: bytes) -> None:
        if len(packet) < 12 or packet[0] >> 6 != 2:
            return
        self.packets += 1
        self.payload_types.add(packet[1] & 0x7F)
        self.ssrcs.add(struct.unpack("!I", packet[8:12])[0])
        header = 12 + 4 * (packet[0] & 0x0F)
        with self.out.open("ab") as sink:
            sink.write(packet[header:])


class _RtpUdp(asyncio.DatagramProtocol):
    def __init__(self, play: Play) -> None:
        self._play = play

    def datagram_received(self, data: bytes, addr: tuple[str | object, int]) -> None:
        self._play.rtp(data)


class GbPlatform:
    """`async with GbPlatform(id, password, transport) as platform:`; devices register to `platform.address`."""

    def __init__(
        self,
        platform_id: str = "34020000002000000001",
        password: str = "12345678",
        transport: Literal["udp", "tcp"] = "udp",
        *,
        qop: bool = True,
        keepalive_s: float = 60.0,
        keepalive_misses: int = 3,
        workdir: Path | None = None,
        ask_after_register: bool = True,
        port: int = 0,
    ) -> None:
        self.id = platform_id
        self.realm = platform_id[:10]
        self.password = password
        self.qop = qop
        self.keepalive_s = keepalive_s
        self.keepalive_misses = keepalive_misses
        self.ask_after_register = ask_after_register
        self.workdir = workdir or Path(".")
        self.sip = SipTransport(
            f"platform:{platform_id}", transport, ("127.0.0.1", port), self._on_request, listen=True
        )
        self.transport = transport
        self.devices: dict[str, DeviceRecord] = {}
        self.refused: list[tuple[str, int]] = []  # (From user, status) of refused REGISTERs
        self.not_found = 0  # requests answered 404 (unknown device)
        self.changed = asyncio.Event()  # set whenever something arrives; tests wait on conditions instead
        self.register_answered_at: list[float] = []
        self._nonces: set[str] = set()
        self._sn = itertools.count(100)
        self._cseq = itertools.count(1)
        self._tag = new_tag()
        self._plays: dict[str, Play] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.fail_next: dict[str, int] = {}  # CmdType → status to answer once (fault injection)
        self.silent = False  # answer no MESSAGE at all (a platform hung or a link dropping packets)

    async def __aenter__(self) -> GbPlatform:
        await self.sip.__aenter__()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for play in list(self._plays.values()):
            self._close_play(play)
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.sip.__aexit__(exc_type, exc, tb)

    @property
    def address(self) -> Address:
        return self.sip.local_address

    @property
    def server_uri(self) -> str:
        return f"sip:{self.id}@127.0.0.1:{self.address[1]}"

    def online(self, device_id: str) -> bool:
        """Keepalive supervision: online while the last keepalive (or registration) is within misses × interval."""
        record = self.devices.get(device_id)
        if record is None or record.unregistered:
            return False
        return time.monotonic() - record.last_keepalive <= self.keepalive_s * self.keepalive_misses

    def forget(self) -> None:
        """A platform restart: every device is unknown until it registers again."""
        self.devices.clear()

    # Requests from devices.

    async def _on_request(self, request: SipMessage, peer: Address) -> SipMessage | None:
        try:
            if request.method == "REGISTER":
                return self._on_register(request, peer)
            if request.method in ("MESSAGE", "NOTIFY"):
                return None if self.silent else self._on_message(request)
            if request.method == "BYE":
                for play in self._plays.values():
                    if play.call_id == request.call_id:
                        play.bye_received.set()
                        self._close_play(play)
                return response_to(request, 200)
            return response_to(request, 200) if request.method != "ACK" else None
        finally:
            self.changed.set()

    def _on_register(self, request: SipMessage, peer: Address) -> SipMessage:
        user = uri_user(address_uri(request.require("From")))
        if not (len(user) == 20 and user.isdigit()):
            self.refused.append((user, 403))
            return response_to(request, 403, to_tag=new_tag())
        header = request.header("Authorization")
        if header is None:
            nonce = os.urandom(12).hex()
            self._nonces.add(nonce)
            qop = ', qop="auth"' if self.qop else ""
            challenge = f'Digest realm="{self.realm}", nonce="{nonce}"{qop}, algorithm=MD5'
            return response_to(request, 401, to_tag=new_tag(), extra=(("WWW-Authenticate", challenge),))
        params = parse_authorization(header)
        good = params.get("nonce") in self._nonces and verify_authorization(
            params, method="REGISTER", password=self.password, realm=self.realm
        )
        if not good or params.get("username") != user:
            self.refused.append((user, 403))
            return response_to(request, 403, to_tag=new_tag())
        expires_text = request.header("Expires") or header_params(request.header("Contact") or "").get("expires")
        expires = int(expires_text) if expires_text and expires_text.isdigit() else 3600
        date = datetime.now().strftime("%Y-%m-%dT%H:%M:%S.%f")[:23]
        extra = (("Date", date), ("Expires", str(expires)), ("Contact", request.header("Contact") or ""))
        record = self.devices.get(user)
        if expires == 0:
            if record is not None:
                record.unregistered = True
            return response_to(request, 200, to_tag=new_tag(), extra=extra)
        first = record is None
        if record is None:
            record = self.devices[user] = DeviceRecord(user, peer)
        record.address, record.unregistered = peer, False
        record.registrations += 1
        record.contact = request.header("Contact") or ""
        record.call_ids.append(request.call_id)
        record.authorized_with_qop = params.get("qop") == "auth"
        record.last_keepalive = time.monotonic()
        self.register_answered_at.append(time.perf_counter())
        if first and self.ask_after_register:
            self._spawn(self._first_queries(user))
        return response_to(request, 200, to_tag=new_tag(), extra=extra)

    def _on_message(self, request: SipMessage) -> SipMessage:
        user = uri_user(address_uri(request.require("From")))
        record = self.devices.get(user)
        if record is None or record.unregistered:
            self.not_found += 1
            return response_to(request, 404, to_tag=new_tag())
        record.largest_message = max(record.largest_message, len(request.encode()))
        try:
            body = manscdp.parse(request.body, user)
        except DeviceProtocolError:
            return response_to(request, 400, to_tag=new_tag())
        failure = self.fail_next.pop(body.cmd_type, None)
        if failure is not None:
            return response_to(request, failure, to_tag=new_tag())
        if body.cmd_type == "Keepalive":
            record.keepalives += 1
            record.last_keepalive = time.monotonic()
        elif body.cmd_type == "Alarm":
            record.alarms.append(body)
            record.alarm_received_at.append(time.perf_counter())
        elif body.cmd_type == "DeviceInfo":
            record.info = body
        elif body.cmd_type == "ConfigDownload":
            record.basic_param = body
        elif body.cmd_type == "DeviceStatus":
            record.status = body
        elif body.cmd_type == "Catalog" and body.root == "Notify":
            for item in body.element.iter("Item"):
                record.catalog_events.append((item.findtext("DeviceID") or "", item.findtext("Event") or ""))
        elif body.cmd_type == "Catalog":
            self._collect_catalog(record, body)
        return response_to(request, 200, to_tag=new_tag())

    def _collect_catalog(self, record: DeviceRecord, body: manscdp.Manscdp) -> None:
        items = record.catalogs.setdefault(body.sn, [])
        record.catalog_sumnum[body.sn] = int(body.text("SumNum") or "0")
        for item in body.element.iter("Item"):
            items.append(
                CatalogItem(
                    item.findtext("DeviceID") or "",
                    item.findtext("Name") or "",
                    item.findtext("Status") or "",
                    item.findtext("ParentID") or "",
                    item.findtext("CivilCode") or "",
                )
            )
        if len(items) >= record.catalog_sumnum[body.sn] and body.sn not in record.complete_catalogs:
            record.complete_catalogs.append(body.sn)

    # Requests to devices.

    def _request(
        self,
        record: DeviceRecord,
        method: str,
        target: str,
        body: bytes,
        content_type: str,
        extra: tuple[tuple[str, str], ...] = (),
        call_id: str | None = None,
    ) -> SipMessage:
        host, port = self.address
        headers = (
            ("Via", f"SIP/2.0/{self.transport.upper()} {host}:{port};rport;branch={new_branch()}"),
            ("From", f"<sip:{self.id}@{self.realm}>;tag={self._tag}"),
            ("To", f"<sip:{target}@{record.id[:10]}>"),
            ("Call-ID", call_id or new_call_id(host)),
            ("CSeq", f"{next(self._cseq)} {method}"),
            ("Max-Forwards", "70"),
            ("Content-Type", content_type),
            *extra,
        )
        uri = f"sip:{target}@{record.address[0]}:{record.address[1]}"
        return SipMessage(method=method, uri=uri, headers=headers, body=body)

    async def query(self, device_id: str, cmd_type: str) -> str:
        """Send a `<Query>` and return its SN (answers arrive as MESSAGEs matched by CmdType + SN)."""
        record = self.devices[device_id]
        sn = str(next(self._sn))
        body = manscdp.encode(manscdp.document("Query", cmd_type, sn, device_id), "GB2312")
        response = await self.sip.request(
            self._request(record, "MESSAGE", device_id, body, manscdp.CONTENT_TYPE),
            record.address,
            timeout=PLAY_TIMEOUT_S,
        )
        if response.status != 200:
            raise DeviceProtocolError(device_id, f"{cmd_type} query answered {response.status}")
        return sn

    async def raw(self, device_id: str, data: bytes) -> None:
        """Send bytes as they are to a device's SIP address (hostile-input tests)."""
        record = self.devices[device_id]
        if self.sip._udp is not None:
            self.sip._udp.sendto(data, record.address)
        else:
            writer = self.sip._streams[record.address]
            writer.write(data)

    async def _first_queries(self, device_id: str) -> None:
        # WVP's order after a first registration; each answer is awaited by SN so a slow device is not flooded.
        for cmd_type in ("DeviceInfo", "ConfigDownload", "Catalog"):
            try:
                await self.query(device_id, cmd_type)
            except Exception as exc:  # a simulator keeps serving whatever one device does
                logger.warning("platform: %s query to %s failed: %s", cmd_type, device_id, exc)
                return

    async def invite(
        self,
        device_id: str,
        channel: str,
        media: Literal["udp", "tcp-passive", "tcp-active"] = "udp",
        ssrc: int = 110000001,
    ) -> Play:
        """Play `channel`: open a receiver, INVITE, ACK the 200; the PS payload goes to `workdir/<call>.ps`."""
        record = self.devices[device_id]
        call_id = new_call_id("127.0.0.1")
        play = Play(call_id, channel, ssrc, "", self.workdir / f"{call_id.split('@')[0]}.ps")
        loop = asyncio.get_running_loop()
        if media == "udp":
            udp, _ = await loop.create_datagram_endpoint(lambda: _RtpUdp(play), local_addr=("127.0.0.1", 0))
            play.closers.append(udp)
            port, proto, setup = udp.get_extra_info("sockname")[1], "RTP/AVP", ""
        elif media == "tcp-passive":
            server = await asyncio.start_server(lambda r, w: self._tcp_rtp(play, r, w), "127.0.0.1", 0)
            play.closers.append(server)
            port, proto, setup = server.sockets[0].getsockname()[1], "TCP/RTP/AVP", "a=setup:passive\r\n"
        else:
            port, proto, setup = 9, "TCP/RTP/AVP", "a=setup:active\r\n"  # we connect to the device's port
        offer = (
            f"v=0\r\no={self.id} 0 0 IN IP4 127.0.0.1\r\ns=Play\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
            f"m=video {port} {proto} 96 97 98\r\na=recvonly\r\na=rtpmap:96 PS/90000\r\n"
            f"a=rtpmap:98 H264/90000\r\na=rtpmap:97 MPEG4/90000\r\n{setup}y={ssrc:010d}\r\n"
        ).encode()
        extra = (
            ("Subject", f"{channel}:{ssrc:010d},{self.id}:0"),
            ("Contact", f"<sip:{self.id}@{self.address[0]}:{self.address[1]}>"),
        )
        request = self._request(record, "INVITE", channel, offer, "APPLICATION/SDP", extra, call_id=call_id)
        response = await self.sip.request(request, record.address, timeout=PLAY_TIMEOUT_S)
        if response.status != 200:
            self._close_play(play)
            raise DeviceProtocolError(channel, f"INVITE answered {response.status}")
        play.answer = response.body.decode()
        play.to_header = response.require("To")
        play.device = record.address
        ack_headers = tuple((k, v) for k, v in request.headers if k not in ("Content-Type", "Subject", "CSeq", "To"))
        ack_headers = (
            *tuple(
                (k, v if k != "Via" else v.rsplit("branch=", 1)[0] + f"branch={new_branch()}") for k, v in ack_headers
            ),
            ("To", play.to_header),
            ("CSeq", f"{request.cseq[0]} ACK"),
        )
        target = address_uri(response.header("Contact") or "") or (request.uri or "")
        self.sip.send(SipMessage(method="ACK", uri=target, headers=ack_headers), record.address)
        if media == "tcp-active":
            answer_port = next(int(line.split()[1]) for line in play.answer.splitlines() if line.startswith("m=video"))
            reader, writer = await asyncio.open_connection("127.0.0.1", answer_port)
            self._spawn_play(play, self._tcp_rtp(play, reader, writer))
        self._plays[call_id] = play
        return play

    async def bye(self, device_id: str, play: Play) -> int:
        record = self.devices[device_id]
        request = self._request(record, "BYE", play.channel, b"", "application/sdp", call_id=play.call_id)
        headers = tuple((k, v) if k != "To" else ("To", play.to_header) for k, v in request.headers)
        response = await self.sip.request(SipMessage(method="BYE", uri=request.uri, headers=headers), record.address)
        self._close_play(play)
        return response.status or 0

    async def _tcp_rtp(self, play: Play, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        play.closers.append(writer)
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                (length,) = struct.unpack("!H", await reader.readexactly(2))  # RFC 4571 framing
                play.rtp(await reader.readexactly(length))

    def _close_play(self, play: Play) -> None:
        self._plays.pop(play.call_id, None)
        for closer in play.closers:
            closer.close()
        for task in play.readers:
            task.cancel()

    def _spawn_play(self, play: Play, coroutine: Coroutine[Any, Any, None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coroutine)
        play.readers.append(task)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
