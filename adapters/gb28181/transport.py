"""SIP over one socket on asyncio (UDP, or TCP framed by Content-Length), with RFC 3261 transactions.

One socket for both directions: platforms send their requests to the address the device registered from, so the
device sends and listens on the same port. Client transactions retransmit over UDP (T1 doubling to T2, given up at
64×T1); server transactions answer a retransmitted request with the answer already given, and a 2xx to an INVITE is
repeated until its ACK comes (RFC 3261 §13.3.1.4), because the platform's media setup waits on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Literal

from adapters.gb28181.sip import SipMessage, SipParseError, StreamFramer, parse, response_to
from gateway.domain.errors import DeviceTimeout, DeviceUnreachable

logger = logging.getLogger(__name__)

# RFC 3261 §17.1.1.1: T1 is the round-trip estimate (500 ms), T2 the longest gap between retransmissions of a
# non-INVITE request (4 s); a transaction that has had no final answer after 64×T1 (32 s) has failed.
T1_S = 0.5
T2_S = 4.0
TRANSACTION_TIMEOUT_S = 64 * T1_S
# How long a server transaction keeps its answer for retransmitted requests: the client gives up at 64×T1 too.
ANSWER_CACHE_S = 64 * T1_S
# Connecting a TCP signalling link: the platform is on the school's network or a private line; 5 s is generous.
CONNECT_TIMEOUT_S = 5.0

Address = tuple[str, int]
Kind = Literal["udp", "tcp"]
RequestHandler = Callable[[SipMessage, Address], Awaitable[SipMessage | None]]


@dataclass
class _Answer:
    response: SipMessage | None
    at: float


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self, owner: SipTransport) -> None:
        self._owner = owner

    def datagram_received(self, data: bytes, addr: tuple[str | object, int]) -> None:
        self._owner._received(data, (str(addr[0]), int(addr[1])), datagram=True)

    def error_received(self, exc: Exception) -> None:
        # An ICMP port unreachable from a peer that went away: the transaction's timeout reports it.
        logger.debug("%s: UDP error %s", self._owner.name, exc)


class SipTransport:
    """`async with SipTransport(...) as sip:` then `await sip.request(message, to)`; requests that arrive are
    passed to `handler`, whose answer is sent back (and kept for retransmissions)."""

    def __init__(
        self,
        name: str,
        kind: Kind,
        local: Address,
        handler: RequestHandler,
        *,
        listen: bool = False,
        t1: float = T1_S,
        on_lost: Callable[[Address], None] | None = None,
    ) -> None:
        self.name = name
        self.kind = kind
        self._local = local
        self._handler = handler
        self._listen = listen  # TCP: accept connections (a platform) instead of only connecting out (a device)
        self._t1 = t1
        self._on_lost = on_lost  # TCP: a connection closed (the device re-registers over a new one)
        self._udp: asyncio.DatagramTransport | None = None
        self._server: asyncio.Server | None = None
        self._streams: dict[Address, asyncio.StreamWriter] = {}
        self._pending: dict[str, asyncio.Future[SipMessage]] = {}
        self._answers: dict[tuple[str, str, str], _Answer] = {}
        self._awaiting_ack: dict[str, asyncio.Event] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._connecting = asyncio.Lock()
        self.dropped = 0  # datagrams or streams we could not read: for tests and the log
        self.local_address: Address = local

    async def __aenter__(self) -> SipTransport:
        loop = asyncio.get_running_loop()
        if self.kind == "udp":
            transport, _ = await loop.create_datagram_endpoint(lambda: _Datagrams(self), local_addr=self._local)
            self._udp = transport
            sockname = transport.get_extra_info("sockname")
            self.local_address = (str(sockname[0]), int(sockname[1]))
        elif self._listen:
            self._server = await asyncio.start_server(self._accepted, self._local[0], self._local[1])
            sockname = self._server.sockets[0].getsockname()
            self.local_address = (str(sockname[0]), int(sockname[1]))
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for writer in list(self._streams.values()):
            writer.close()
        self._streams.clear()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        if self._udp is not None:
            self._udp.close()

    # Sending.

    async def connect(self, peer: Address) -> None:
        """TCP: open the signalling connection to `peer` from our local port (no-op over UDP or when open)."""
        if self.kind != "tcp" or peer in self._streams:
            return
        # One connection per peer: a re-REGISTER and a query's answer may both find the link gone at once.
        async with self._connecting:
            if peer not in self._streams:
                await self._open(peer)

    async def _open(self, peer: Address) -> None:
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT_S):
                reader, writer = await asyncio.open_connection(
                    peer[0], peer[1], local_addr=self._local if self._local[1] else None
                )
        except TimeoutError:
            raise DeviceTimeout(
                self.name, f"no TCP connection to {peer[0]}:{peer[1]} within {CONNECT_TIMEOUT_S} s"
            ) from None
        except OSError as exc:
            raise DeviceUnreachable(self.name, f"TCP connection to {peer[0]}:{peer[1]}: {exc}") from None
        sockname = writer.get_extra_info("sockname")
        self.local_address = (str(sockname[0]), int(sockname[1]))
        self._adopt(peer, reader, writer)

    def send(self, message: SipMessage, peer: Address) -> None:
        data = message.encode()
        if self._udp is not None:
            self._udp.sendto(data, peer)
            return
        writer = self._streams.get(peer)
        if writer is None or writer.is_closing():
            raise DeviceUnreachable(self.name, f"no TCP connection to {peer[0]}:{peer[1]}")
        writer.write(data)

    async def request(self, message: SipMessage, peer: Address, *, timeout: float | None = None) -> SipMessage:
        """Send a non-INVITE request and return its final response; DeviceTimeout after 64×T1 without one."""
        await self.connect(peer)
        branch = message.branch
        future: asyncio.Future[SipMessage] = asyncio.get_running_loop().create_future()
        self._pending[branch] = future
        limit = timeout if timeout is not None else 64 * self._t1
        interval = self._t1
        try:
            async with asyncio.timeout(limit):
                while True:
                    self.send(message, peer)
                    if self.kind == "tcp":  # a reliable transport: no retransmission (RFC 3261 §17.1.2.2)
                        return await future
                    done, _ = await asyncio.wait({future}, timeout=interval)
                    if done:
                        return future.result()
                    interval = min(interval * 2, T2_S)
        except TimeoutError:
            method = message.method or "request"
            raise DeviceTimeout(
                self.name, f"no answer to {method} from {peer[0]}:{peer[1]} within {limit:g} s"
            ) from None
        finally:
            self._pending.pop(branch, None)

    # Receiving.

    def _received(self, data: bytes, peer: Address, *, datagram: bool) -> None:
        if datagram and data.strip(b"\r\n") == b"":
            return  # a CRLF keep-alive ping (RFC 5626 §4.4.1)
        try:
            message = parse(data, peer=f"{peer[0]}:{peer[1]}", datagram=datagram)
        except SipParseError as exc:
            self.dropped += 1
            logger.warning("%s: dropped unreadable SIP from %s:%d: %s", self.name, peer[0], peer[1], exc.message)
            return
        self._dispatch(message, peer)

    def _dispatch(self, message: SipMessage, peer: Address) -> None:
        try:
            branch = message.branch
            _, cseq_method = message.cseq
        except SipParseError as exc:
            self.dropped += 1
            logger.warning("%s: dropped SIP without a usable Via/CSeq from %s:%d: %s", self.name, *peer, exc)
            return
        if not message.is_request:
            future = self._pending.get(branch)
            if future is not None and not future.done() and (message.status or 0) >= 200:
                future.set_result(message)
            return
        if message.method == "ACK":
            event = self._awaiting_ack.pop(message.call_id, None)
            if event is not None:
                event.set()
            self._spawn(self._handle(message, peer, None))
            return
        key = (branch, message.call_id, cseq_method)
        self._forget_old_answers()
        answer = self._answers.get(key)
        if answer is not None:
            if answer.response is not None:  # a retransmission: the same answer again (RFC 3261 §17.2.2)
                self.send(answer.response, peer)
            return  # still being handled: the answer goes out when it is ready
        self._answers[key] = _Answer(None, time.monotonic())
        self._spawn(self._handle(message, peer, key))

    def _forget_old_answers(self) -> None:
        # Answers are kept in arrival order, so the old ones are at the front: stop at the first young one
        # (a scan of the whole cache per request made a 500-MESSAGE Catalog quadratic).
        horizon = time.monotonic() - ANSWER_CACHE_S
        while self._answers:
            key, answer = next(iter(self._answers.items()))
            if answer.at >= horizon:
                return
            del self._answers[key]

    async def _handle(self, message: SipMessage, peer: Address, key: tuple[str, str, str] | None) -> None:
        try:
            response = await self._handler(message, peer)
        except SipParseError as exc:
            logger.warning("%s: bad %s from %s:%d: %s", self.name, message.method, peer[0], peer[1], exc.message)
            response = response_to(message, 400) if key is not None else None
        if key is None or response is None:
            if key is not None:
                self._answers.pop(key, None)
            return
        self._answers[key].response = response
        try:
            self.send(response, peer)
        except DeviceUnreachable as exc:
            logger.warning("%s: could not answer %s: %s", self.name, message.method, exc.message)
            return
        if message.method == "INVITE" and 200 <= (response.status or 0) < 300 and self.kind == "udp":
            await self._repeat_until_ack(message.call_id, response, peer)

    async def _repeat_until_ack(self, call_id: str, response: SipMessage, peer: Address) -> None:
        acked = asyncio.Event()
        self._awaiting_ack[call_id] = acked
        interval = self._t1
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(64 * self._t1):
                while not acked.is_set():
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(interval):
                            await acked.wait()
                    if not acked.is_set():
                        self.send(response, peer)
                        interval = min(interval * 2, T2_S)
        self._awaiting_ack.pop(call_id, None)

    def _spawn(self, coroutine: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("%s: request handler failed", self.name, exc_info=task.exception())

    # TCP.

    async def _accepted(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peername = writer.get_extra_info("peername")
        self._adopt((str(peername[0]), int(peername[1])), reader, writer)

    def _adopt(self, peer: Address, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._streams[peer] = writer
        self._spawn(self._read_stream(peer, reader, writer))

    async def _read_stream(self, peer: Address, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        framer = StreamFramer(peer=f"{peer[0]}:{peer[1]}")
        try:
            while data := await reader.read(65536):
                for message in framer.feed(data):
                    self._dispatch(message, peer)
        except SipParseError as exc:
            # A stream that cannot be framed has no next message to find: close it; the peer reconnects.
            self.dropped += 1
            logger.warning("%s: closing TCP from %s:%d: %s", self.name, peer[0], peer[1], exc.message)
        except ConnectionError as exc:
            logger.info("%s: TCP from %s:%d lost: %s", self.name, peer[0], peer[1], exc)
        finally:
            if self._streams.get(peer) is writer:
                del self._streams[peer]
            writer.close()
            if self._on_lost is not None:
                self._on_lost(peer)

    def connected(self, peer: Address) -> bool:
        return self.kind == "udp" or peer in self._streams
