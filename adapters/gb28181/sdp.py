"""The SDP of a GB/T 28181 live-play INVITE: read the platform's offer, write the device's answer."""

from __future__ import annotations

from adapters.gb28181.live import MediaOffer, MediaTransport
from gateway.domain.errors import DeviceProtocolError

PS_PAYLOAD = 96  # GB/T 28181 §C: PS over RTP, dynamic payload type 96 at 90 kHz


def parse_offer(sdp: str, *, channel_id: str, camera_id: str, subject: str | None = None) -> MediaOffer:
    """The offer's address, port, transport and SSRC; DeviceProtocolError naming the channel when unusable."""
    host = port = proto = ssrc = None
    setup = "passive"
    for raw in sdp.replace("\r\n", "\n").split("\n"):
        line = raw.strip()
        if line.startswith("c=IN IP4 "):
            host = line[len("c=IN IP4 ") :].split("/", 1)[0].strip()
        elif line.startswith("m=video "):
            parts = line.split()
            if len(parts) < 4 or not parts[1].isdigit():
                raise DeviceProtocolError(channel_id, f"bad media line {line[:80]!r}")
            port, proto = int(parts[1]), parts[2].upper()
        elif line.startswith("a=setup:"):
            setup = line[len("a=setup:") :].strip().lower()
        elif line.startswith("y="):
            ssrc = line[2:].strip()
    if ssrc is None and subject:
        # Subject: <channel>:<ssrc>,<platform>:0 carries the same SSRC when a platform leaves out y=.
        ssrc = subject.split(",", 1)[0].rpartition(":")[2].strip()
    if host is None or port is None or proto is None:
        raise DeviceProtocolError(channel_id, "INVITE SDP without c= address or m=video line")
    if not ssrc or not ssrc.isdigit() or int(ssrc) >= 2**32:
        raise DeviceProtocolError(channel_id, f"INVITE SDP without a usable y= SSRC ({ssrc!r})")
    if not 0 < port < 65536:
        raise DeviceProtocolError(channel_id, f"INVITE SDP port {port} out of range")
    if proto == "RTP/AVP":
        transport = MediaTransport.UDP
    elif proto == "TCP/RTP/AVP":
        transport = MediaTransport.TCP_ACTIVE if setup == "active" else MediaTransport.TCP_PASSIVE
    else:
        raise DeviceProtocolError(channel_id, f"unsupported media transport {proto!r}")
    return MediaOffer(channel_id, camera_id, host, port, transport, int(ssrc))


def answer(offer: MediaOffer, *, address: str, local_port: int) -> str:
    """The 200 OK's SDP: `s=Play`, `a=sendonly`, PS at 96, the same `y=`; for TCP the opposite `a=setup:`."""
    proto = "RTP/AVP" if offer.transport is MediaTransport.UDP else "TCP/RTP/AVP"
    lines = [
        "v=0",
        f"o={offer.channel_id} 0 0 IN IP4 {address}",
        "s=Play",
        f"c=IN IP4 {address}",
        "t=0 0",
        f"m=video {local_port} {proto} {PS_PAYLOAD}",
        "a=sendonly",
        f"a=rtpmap:{PS_PAYLOAD} PS/90000",
    ]
    if offer.transport is MediaTransport.TCP_PASSIVE:
        lines += ["a=setup:active", "a=connection:new"]  # the platform listens: the device connects out
    elif offer.transport is MediaTransport.TCP_ACTIVE:
        lines += ["a=setup:passive", "a=connection:new"]
    lines.append(f"y={offer.ssrc:010d}")
    return "\r\n".join(lines) + "\r\n"
