"""SIP messages (RFC 3261) as values: parse bytes from the wire, build requests and responses, frame a TCP stream.

Only what a GB/T 28181 device meets is covered, but hostile input of any shape ends in `SipParseError`, never in
another exception: the transport drops (or answers 400 to) what it cannot read and keeps running.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

from gateway.domain.errors import DeviceProtocolError

# A GB/T 28181 message is a few hundred bytes; a Catalog MESSAGE stays under one datagram. 64 KiB is the largest
# UDP payload and bounds what a TCP peer may make us buffer for one message.
MAX_MESSAGE_BYTES = 65535
# Header lines of a sane peer number a dozen or two; a flood of them is an attack on our memory and time.
MAX_HEADERS = 100

COMPACT = {
    "v": "Via",
    "f": "From",
    "t": "To",
    "i": "Call-ID",
    "m": "Contact",
    "l": "Content-Length",
    "c": "Content-Type",
    "s": "Subject",
    "k": "Supported",
    "e": "Content-Encoding",
}
_CANONICAL = {
    name.lower(): name
    for name in (
        "Via",
        "From",
        "To",
        "Call-ID",
        "CSeq",
        "Contact",
        "Content-Length",
        "Content-Type",
        "Max-Forwards",
        "Expires",
        "User-Agent",
        "WWW-Authenticate",
        "Authorization",
        "Date",
        "Subject",
        "Allow",
        "Supported",
        "Content-Encoding",
        "Event",
        "Subscription-State",
        "Record-Route",
        "Route",
    )
}
_STATUS_LINE = re.compile(r"^SIP/2\.0 (\d{3}) ?(.*)$")
_REQUEST_LINE = re.compile(r"^([A-Z]{2,16}) (\S+) SIP/2\.0$")
_TOKEN = re.compile(r"^[A-Za-z0-9.!%*_+`'~-]+$")
REASONS = {
    100: "Trying",
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    408: "Request Timeout",
    415: "Unsupported Media Type",
    481: "Call/Transaction Does Not Exist",
    486: "Busy Here",
    488: "Not Acceptable Here",
    500: "Server Internal Error",
    503: "Service Unavailable",
}


class SipParseError(DeviceProtocolError):
    """Bytes that are not a SIP message we can take (truncated, oversized, garbage)."""

    def __init__(self, message: str, peer: str = "sip peer") -> None:
        super().__init__(peer, message)


def canonical(name: str) -> str:
    """`v` → `Via`, `call-id` → `Call-ID`: one spelling for lookups and for what we send."""
    name = name.strip()
    lowered = name.lower()
    if lowered in COMPACT:
        return COMPACT[lowered]
    return _CANONICAL.get(lowered, "-".join(part.capitalize() for part in lowered.split("-")))


@dataclass(frozen=True, slots=True)
class SipMessage:
    """A request (`method` set) or a response (`status` set); headers keep their order and repeats."""

    method: str | None = None
    uri: str | None = None
    status: int | None = None
    reason: str = ""
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""

    @property
    def is_request(self) -> bool:
        return self.method is not None

    def header(self, name: str) -> str | None:
        wanted = canonical(name)
        for key, value in self.headers:
            if key == wanted:
                return value
        return None

    def all(self, name: str) -> list[str]:
        """Every value of a header, comma-joined ones split (`Via: a, b` is two Vias)."""
        wanted = canonical(name)
        values: list[str] = []
        for key, value in self.headers:
            if key == wanted:
                values += split_commas(value) if key in ("Via", "Route", "Record-Route") else [value]
        return values

    def require(self, name: str) -> str:
        value = self.header(name)
        if value is None:
            raise SipParseError(f"no {canonical(name)} header")
        return value

    @property
    def call_id(self) -> str:
        return self.require("Call-ID")

    @property
    def cseq(self) -> tuple[int, str]:
        parts = self.require("CSeq").split()
        if len(parts) != 2 or not parts[0].isdigit():
            raise SipParseError(f"bad CSeq {self.header('CSeq')!r}")
        return int(parts[0]), parts[1].upper()

    @property
    def branch(self) -> str:
        vias = self.all("Via")
        if not vias:
            raise SipParseError("no Via header")
        return header_params(vias[0]).get("branch", "")

    def with_headers(self, **changes: str) -> SipMessage:
        """A copy with headers replaced (or added), keyed by their Python names: `Call_ID="x"`."""
        headers = list(self.headers)
        for raw, value in changes.items():
            name = canonical(raw.replace("_", "-"))
            headers = [(k, v) for k, v in headers if k != name]
            headers.append((name, value))
        return replace(self, headers=tuple(headers))

    def encode(self) -> bytes:
        if self.method is not None:
            start = f"{self.method} {self.uri} SIP/2.0"
        else:
            start = f"SIP/2.0 {self.status} {self.reason or REASONS.get(self.status or 0, '')}"
        lines = [start]
        lines += [f"{k}: {v}" for k, v in self.headers if k != "Content-Length"]
        lines.append(f"Content-Length: {len(self.body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8") + self.body


def split_commas(value: str) -> list[str]:
    """Split a header value at commas outside quotes and angle brackets."""
    parts: list[str] = []
    depth, quoted, start = 0, False, 0
    for index, char in enumerate(value):
        if char == '"':
            quoted = not quoted
        elif not quoted and char == "<":
            depth += 1
        elif not quoted and char == ">":
            depth = max(0, depth - 1)
        elif not quoted and depth == 0 and char == ",":
            parts.append(value[start:index].strip())
            start = index + 1
    parts.append(value[start:].strip())
    return [p for p in parts if p]


def header_params(value: str) -> dict[str, str]:
    """`;tag=x;branch=y` parameters after a header's main value (outside `<...>`), lower-cased names."""
    tail = value.rsplit(">", 1)[1] if ">" in value else value
    params: dict[str, str] = {}
    for piece in tail.split(";")[1:]:
        name, _, val = piece.partition("=")
        params[name.strip().lower()] = val.strip().strip('"')
    return params


def address_uri(value: str) -> str:
    """The URI inside a name-addr (`"x" <sip:a@b>;tag=1` → `sip:a@b`) or an addr-spec."""
    if "<" in value and ">" in value:
        return value[value.index("<") + 1 : value.index(">")]
    return value.split(";", 1)[0].strip()


def uri_user(uri: str) -> str:
    """`sip:34020000001320000001@3402000000` → `34020000001320000001`."""
    rest = uri.split(":", 1)[1] if ":" in uri else uri
    return rest.split("@", 1)[0] if "@" in rest else ""


def new_tag() -> str:
    return os.urandom(6).hex()


def new_branch() -> str:
    # RFC 3261 §8.1.1.7: the magic cookie tells peers the branch is unique per transaction.
    return "z9hG4bK" + os.urandom(8).hex()


def new_call_id(host: str) -> str:
    return f"{os.urandom(10).hex()}@{host}"


def _split_head(data: bytes) -> tuple[bytes, bytes]:
    for separator in (b"\r\n\r\n", b"\n\n"):
        index = data.find(separator)
        if index >= 0:
            return data[:index], data[index + len(separator) :]
    raise SipParseError("no blank line after the headers (truncated message)")


def _header_lines(head: bytes) -> Iterator[str]:
    text = head.decode("utf-8", errors="replace").replace("\r\n", "\n")
    current: str | None = None
    for line in text.split("\n")[1:]:
        if line[:1] in (" ", "\t"):
            # RFC 3261 §7.3.1: a line starting with white space continues the header above (folding).
            if current is None:
                raise SipParseError("continuation line before any header")
            current += " " + line.strip()
            continue
        if current is not None:
            yield current
        current = line
    if current is not None:
        yield current


def parse(data: bytes, *, peer: str = "sip peer", datagram: bool = True) -> SipMessage:
    """One SIP message from bytes. Over UDP (`datagram`) bytes past Content-Length are dropped (RFC 3261 §18.3)
    and a missing Content-Length means the rest of the datagram; over TCP it must be present and exact."""
    if len(data) > MAX_MESSAGE_BYTES:
        raise SipParseError(f"message of {len(data)} bytes is over the {MAX_MESSAGE_BYTES}-byte limit", peer)
    data = data.lstrip(b"\r\n")  # keep-alive CRLFs (RFC 5626) before a message are not part of it
    if not data:
        raise SipParseError("empty message", peer)
    try:
        head, rest = _split_head(data)
        first = head.split(b"\n", 1)[0].rstrip(b"\r").decode("utf-8", errors="replace")
        headers: list[tuple[str, str]] = []
        for line in _header_lines(head):
            if len(headers) >= MAX_HEADERS:
                raise SipParseError(f"more than {MAX_HEADERS} headers")
            name, colon, value = line.partition(":")
            if not colon or not _TOKEN.match(name.strip()):
                raise SipParseError(f"not a header line: {line[:60]!r}")
            headers.append((canonical(name), value.strip()))
        message = _start_line(first, tuple(headers))
        length_text = message.header("Content-Length")
        if length_text is None:
            if not datagram:
                raise SipParseError("no Content-Length over a stream transport")
            body = rest
        else:
            if not length_text.isdigit():
                raise SipParseError(f"bad Content-Length {length_text!r}")
            length = int(length_text)
            if length > len(rest):
                raise SipParseError(f"Content-Length {length} but only {len(rest)} body bytes (truncated)")
            if length < len(rest) and not datagram:
                raise SipParseError(f"Content-Length {length} but {len(rest)} body bytes")
            body = rest[:length]
        for needed in ("Via", "From", "To", "Call-ID", "CSeq"):
            message.require(needed)
        message.cseq  # noqa: B018 - validates the CSeq's shape now, not when a transaction first reads it
        return replace(message, body=body)
    except SipParseError as exc:
        raise SipParseError(exc.message, peer) from None


def _start_line(first: str, headers: tuple[tuple[str, str], ...]) -> SipMessage:
    status = _STATUS_LINE.match(first)
    if status:
        return SipMessage(status=int(status.group(1)), reason=status.group(2), headers=headers)
    request = _REQUEST_LINE.match(first)
    if request:
        return SipMessage(method=request.group(1), uri=request.group(2), headers=headers)
    raise SipParseError(f"not a SIP start line: {first[:60]!r}")


def response_to(
    request: SipMessage,
    status: int,
    *,
    to_tag: str | None = None,
    body: bytes = b"",
    extra: tuple[tuple[str, str], ...] = (),
) -> SipMessage:
    """A response carrying the request's Via, From, To (tagged), Call-ID and CSeq (RFC 3261 §8.2.6.2)."""
    headers: list[tuple[str, str]] = [("Via", via) for via in request.all("Via")]
    to = request.require("To")
    if to_tag is not None and "tag" not in header_params(to) and status > 100:
        to = f"{to};tag={to_tag}"
    headers += [("From", request.require("From")), ("To", to), ("Call-ID", request.call_id)]
    headers.append(("CSeq", request.require("CSeq")))
    headers += list(extra)
    return SipMessage(status=status, reason=REASONS.get(status, ""), headers=tuple(headers), body=body)


@dataclass
class StreamFramer:
    """Cuts a TCP byte stream into SIP messages by Content-Length (RFC 3261 §18.3)."""

    peer: str = "sip peer"
    _buffer: bytearray = field(default_factory=bytearray)

    def feed(self, data: bytes) -> list[SipMessage]:
        """The complete messages the bytes so far make; raises SipParseError when the stream cannot be framed
        (the connection must then be closed: there is no way to find the next message)."""
        self._buffer += data
        messages: list[SipMessage] = []
        while True:
            while self._buffer[:2] == b"\r\n":
                del self._buffer[:2]
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self._buffer) > MAX_MESSAGE_BYTES:
                    raise SipParseError("headers over the message limit with no end", self.peer)
                return messages
            head = bytes(self._buffer[:end])
            match = re.search(rb"(?im)^(?:content-length|l)[ \t]*:[ \t]*(\d+)[ \t]*$", head)
            if match is None:
                raise SipParseError("no Content-Length over a stream transport", self.peer)
            total = end + 4 + int(match.group(1))
            if total > MAX_MESSAGE_BYTES:
                raise SipParseError(f"message of {total} bytes is over the limit", self.peer)
            if len(self._buffer) < total:
                return messages
            chunk = bytes(self._buffer[:total])
            del self._buffer[:total]
            messages.append(parse(chunk, peer=self.peer, datagram=False))
