"""The SIP parser and builder on their own: what real platforms send, and what hostile peers send."""

from __future__ import annotations

import os

import pytest

from adapters.digest import DigestChallenge, authorization, parse_authorization, verify_authorization
from adapters.gb28181.sip import (
    MAX_MESSAGE_BYTES,
    SipMessage,
    SipParseError,
    StreamFramer,
    parse,
    response_to,
    uri_user,
)

BODY = '<?xml version="1.0" encoding="GB2312"?>\r\n<Query><CmdType>Catalog</CmdType><SN>7</SN></Query>'.encode("gb2312")


def message(body: bytes = BODY, length: int | None = None, extra: str = "") -> bytes:
    head = (
        "MESSAGE sip:51040200001180000001@5104020000 SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 127.0.0.1:5060;rport;branch=z9hG4bK1\r\n"
        "Via: SIP/2.0/UDP 127.0.0.2:5070;branch=z9hG4bK0, SIP/2.0/UDP 127.0.0.3;branch=z9hG4bKx\r\n"
        "From: <sip:34020000002000000001@3402000000>;tag=abc\r\n"
        "To: <sip:51040200001180000001@5104020000>\r\n"
        "Call-ID: 42@127.0.0.1\r\n"
        "CSeq: 20 MESSAGE\r\n"
        "Content-Type: Application/MANSCDP+xml\r\n"
        f"{extra}"
    )
    if length is not None:
        head += f"Content-Length: {length}\r\n"
    return head.encode() + b"\r\n" + body


def test_a_platform_message_is_read_with_every_via_and_its_gb2312_body() -> None:
    parsed = parse(message(length=len(BODY)))
    assert parsed.method == "MESSAGE"
    assert parsed.cseq == (20, "MESSAGE")
    assert parsed.branch == "z9hG4bK1"
    assert len(parsed.all("Via")) == 3
    assert parsed.body == BODY
    assert uri_user(parsed.uri or "") == "51040200001180000001"


def test_compact_and_folded_headers_mean_the_same_as_long_ones() -> None:
    raw = (
        b"SIP/2.0 200 OK\r\n"
        b"v: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bKq\r\n"
        b"f: <sip:a@b>;tag=1\r\n"
        b"t: <sip:c@d>\r\n"
        b"  ;tag=2\r\n"
        b"i: call-1\r\n"
        b"CSeq: 1 REGISTER\r\n"
        b"m: <sip:a@127.0.0.1:5061>\r\n"
        b"c: text/plain\r\n"
        b"l: 2\r\n\r\nhi"
    )
    parsed = parse(raw)
    assert parsed.status == 200
    assert parsed.header("To") == "<sip:c@d> ;tag=2"
    assert parsed.header("Contact") == "<sip:a@127.0.0.1:5061>"
    assert parsed.header("content-type") == "text/plain"
    assert parsed.call_id == "call-1"
    assert parsed.body == b"hi"


def test_content_length_is_checked() -> None:
    with pytest.raises(SipParseError, match="truncated"):
        parse(message(length=len(BODY) + 10))
    # Over UDP the bytes past Content-Length are not part of the message (RFC 3261 §18.3)...
    assert parse(message(length=5)).body == BODY[:5]
    # ... over TCP they are a framing error, and a missing Content-Length is one too.
    with pytest.raises(SipParseError):
        parse(message(length=5), datagram=False)
    with pytest.raises(SipParseError, match="no Content-Length"):
        parse(message(), datagram=False)
    with pytest.raises(SipParseError, match="Content-Length"):
        parse(message(length=None, extra="Content-Length: -1\r\n"))


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\x00\xff" * 100,
        b"INVITE sip:x SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1",
        b"HELLO WORLD\r\n\r\n",
        b"MESSAGE sip:x SIP/2.0\r\nno colon here\r\n\r\n",
        b"MESSAGE sip:x SIP/2.0\r\n CSeq: folded first\r\n\r\n",
        b"MESSAGE sip:x SIP/2.0\r\nVia: a\r\n\r\n",
        b"MESSAGE sip:x SIP/2.0\r\n" + b"X-A: b\r\n" * 200 + b"\r\n",
        message(length=None).replace(b"CSeq: 20 MESSAGE", b"CSeq: twenty"),
        b"SIP/2.0 200 OK\r\n" + b"A" * (MAX_MESSAGE_BYTES + 1),
        os.urandom(1500),
    ],
)
def test_hostile_input_is_a_clear_error_never_a_crash(raw: bytes) -> None:
    with pytest.raises(SipParseError):
        parse(raw)


def test_a_built_response_echoes_the_transaction_and_parses_back() -> None:
    request = parse(message(length=len(BODY)))
    response = response_to(request, 200, to_tag="t1")
    again = parse(response.encode(), datagram=False)
    assert again.status == 200
    assert again.all("Via") == request.all("Via")
    assert again.header("To") == "<sip:51040200001180000001@5104020000>;tag=t1"
    assert again.cseq == (20, "MESSAGE")


def test_a_tcp_stream_is_cut_by_content_length_whatever_the_chunks() -> None:
    one = message(length=len(BODY))
    two = SipMessage(
        method="BYE",
        uri="sip:x@y",
        headers=(
            ("Via", "SIP/2.0/TCP 127.0.0.1;branch=z9hG4bK2"),
            ("From", "<sip:a@b>;tag=1"),
            ("To", "<sip:x@y>"),
            ("Call-ID", "c"),
            ("CSeq", "2 BYE"),
        ),
    ).encode()
    stream = b"\r\n" + one + two
    framer = StreamFramer()
    got = []
    for start in range(0, len(stream), 7):
        got += framer.feed(stream[start : start + 7])
    assert [m.method for m in got] == ["MESSAGE", "BYE"]
    with pytest.raises(SipParseError, match="Content-Length"):
        StreamFramer().feed(message())


@pytest.mark.parametrize("qop", ["auth", None])
def test_register_digest_is_the_shared_md5_digest(qop: str | None) -> None:
    challenge = DigestChallenge(realm="3402000000", nonce="n0", qop=qop)
    header = authorization(
        challenge,
        method="REGISTER",
        uri="sip:34020000002000000001@3402000000",
        username="51040200001180000001",
        password="12345678",
    )
    params = parse_authorization(header)
    assert ("qop" in params) == (qop == "auth")
    assert verify_authorization(params, method="REGISTER", password="12345678", realm="3402000000")
    assert not verify_authorization(params, method="REGISTER", password="wrong", realm="3402000000")
