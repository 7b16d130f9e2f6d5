"""SIP transactions over a real UDP socket: retransmission with T1 doubling, the timeout, repeated answers."""

from __future__ import annotations

import asyncio
import itertools
import socket
import time

import pytest

from adapters.gb28181.sip import SipMessage, new_branch, parse, response_to
from adapters.gb28181.transport import T1_S, T2_S, TRANSACTION_TIMEOUT_S, Address, SipTransport
from gateway.domain.errors import DeviceTimeout
from tests.fixtures.waiting import eventually

T1 = 0.05  # scaled down from 500 ms so the test runs in a second; the doubling and the 64×T1 bound are the same


def request(method: str = "MESSAGE") -> SipMessage:
    return SipMessage(
        method=method,
        uri="sip:34020000002000000001@127.0.0.1",
        headers=(
            ("Via", f"SIP/2.0/UDP 127.0.0.1:1;branch={new_branch()}"),
            ("From", "<sip:51040200001180000001@5104020000>;tag=a"),
            ("To", "<sip:34020000002000000001@3402000000>"),
            ("Call-ID", "c1@127.0.0.1"),
            ("CSeq", f"1 {method}"),
        ),
        body=b"",
    )


async def nothing(message: SipMessage, peer: Address) -> SipMessage | None:
    return None


def test_the_timers_are_rfc_3261s() -> None:
    assert (T1_S, T2_S, TRANSACTION_TIMEOUT_S) == (0.5, 4.0, 32.0)


async def test_a_request_is_retransmitted_at_doubling_intervals_until_answered() -> None:
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    peer.bind(("127.0.0.1", 0))
    peer.setblocking(False)
    loop = asyncio.get_running_loop()
    arrivals: list[float] = []

    async def platform() -> None:
        while True:
            data, source = await loop.sock_recvfrom(peer, 65535)
            arrivals.append(time.monotonic())
            if len(arrivals) == 4:  # answer only the fourth copy
                await loop.sock_sendto(peer, response_to(parse(data), 200).encode(), source)
                return

    async with SipTransport("dev", "udp", ("127.0.0.1", 0), nothing, t1=T1) as sip:
        server = asyncio.ensure_future(platform())
        response = await sip.request(request(), peer.getsockname())
        await server
    peer.close()
    assert response.status == 200
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    assert gaps[0] >= T1 * 0.9
    assert gaps[1] >= gaps[0] * 1.5  # doubling: T1, 2·T1, 4·T1
    assert gaps[2] >= gaps[1] * 1.5


async def test_no_answer_is_a_device_timeout_after_64_t1() -> None:
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))
    async with SipTransport("dev", "udp", ("127.0.0.1", 0), nothing, t1=T1) as sip:
        started = time.monotonic()
        with pytest.raises(DeviceTimeout, match="no answer to MESSAGE"):
            await sip.request(request(), silent.getsockname())
        assert 64 * T1 * 0.95 <= time.monotonic() - started < 64 * T1 + 1.0
    silent.close()


async def test_a_retransmitted_request_gets_the_same_answer_and_is_handled_once() -> None:
    handled: list[SipMessage] = []

    async def handler(message: SipMessage, peer: Address) -> SipMessage | None:
        handled.append(message)
        return response_to(message, 200, to_tag="only-one")

    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    client.bind(("127.0.0.1", 0))
    client.settimeout(5)
    async with SipTransport("dev", "udp", ("127.0.0.1", 0), handler, t1=T1) as sip:
        data = request().encode()
        answers = []
        for _ in range(3):
            client.sendto(data, sip.local_address)
            answers.append(await asyncio.to_thread(client.recv, 65535))
        client.sendto(b"\x00garbage\r\n\r\n", sip.local_address)
        client.sendto(data.replace(b"CSeq: 1 MESSAGE", b"CSeq: x"), sip.local_address)
        client.sendto(request("OPTIONS").encode(), sip.local_address)  # still served after the junk
        answers.append(await asyncio.to_thread(client.recv, 65535))
    client.close()
    assert len(handled) == 2
    assert answers[0] == answers[1] == answers[2]
    assert parse(answers[3]).cseq == (1, "OPTIONS")
    assert sip.dropped == 2


def drain(sock: socket.socket) -> int:
    count = 0
    try:
        while True:
            sock.recv(65535)
            count += 1
    except TimeoutError:
        return count


async def test_a_2xx_to_invite_is_repeated_until_the_ack_comes() -> None:
    acks: list[SipMessage] = []

    async def handler(message: SipMessage, peer: Address) -> SipMessage | None:
        if message.method == "ACK":
            acks.append(message)
            return None
        return response_to(message, 200, to_tag="t")

    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    client.bind(("127.0.0.1", 0))
    client.settimeout(5)
    async with SipTransport("dev", "udp", ("127.0.0.1", 0), handler, t1=T1) as sip:
        client.sendto(request("INVITE").encode(), sip.local_address)
        copies = [await asyncio.to_thread(client.recv, 65535) for _ in range(3)]  # the 200, then two repeats
        ack = request("ACK")
        client.sendto(ack.encode(), sip.local_address)
        await eventually(lambda: len(acks) == 1, what="the ACK handed to the device")
        client.settimeout(16 * T1)  # longer than the next repeat (at 4·T1 after the last) would take
        late = await asyncio.to_thread(drain, client)
    client.close()
    assert late <= 1  # at most one repeat already on its way when the ACK arrived, then silence
    assert all(parse(copy).status == 200 for copy in copies)
