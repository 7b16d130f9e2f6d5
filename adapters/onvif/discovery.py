"""WS-Discovery (ONVIF's camera discovery): a Probe for `dn:NetworkVideoTransmitter`, ProbeMatches collected.

At a school the Probe goes to the multicast group 239.255.255.250:3702; the target is a parameter so a directed
probe to one address (a single camera, or a test responder on 127.0.0.1) works the same way.
"""

from __future__ import annotations

import asyncio
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from urllib.parse import unquote

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

MULTICAST = ("239.255.255.250", 3702)
MAX_DATAGRAM = 65535

PROBE = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope" '
    'xmlns:w="http://schemas.xmlsoap.org/ws/2004/08/addressing" '
    'xmlns:d="http://schemas.xmlsoap.org/ws/2005/04/discovery" '
    'xmlns:dn="http://www.onvif.org/ver10/network/wsdl">'
    "<e:Header><w:MessageID>uuid:{message_id}</w:MessageID>"
    '<w:To e:mustUnderstand="true">urn:schemas-xmlsoap-org:ws:2005:04:discovery</w:To>'
    '<w:Action e:mustUnderstand="true">http://schemas.xmlsoap.org/ws/2005/04/discovery/Probe</w:Action>'
    "</e:Header><e:Body><d:Probe><d:Types>dn:NetworkVideoTransmitter</d:Types></d:Probe></e:Body></e:Envelope>"
)


@dataclass(frozen=True, slots=True)
class DiscoveredCamera:
    address: str  # the endpoint reference, urn:uuid:...
    xaddrs: tuple[str, ...]  # device service URLs
    scopes: tuple[str, ...]

    def scope(self, kind: str) -> str | None:
        """A scope value such as `name` or `hardware` (onvif://www.onvif.org/name/IPC → "IPC")."""
        prefix = f"onvif://www.onvif.org/{kind}/"
        for scope in self.scopes:
            if scope.startswith(prefix):
                return unquote(scope[len(prefix) :])
        return None


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _text(root: ET.Element, name: str) -> str:
    for element in root.iter():
        if _local(element.tag) == name and element.text:
            return element.text.strip()
    return ""


def parse_matches(data: bytes, message_id: str) -> list[DiscoveredCamera]:
    """The cameras in one ProbeMatches datagram answering our probe; [] for anything else (or hostile XML)."""
    try:
        root = fromstring(data, forbid_dtd=True)
    except (ET.ParseError, DefusedXmlException, ValueError):
        return []
    if _text(root, "RelatesTo") not in (f"uuid:{message_id}", message_id):
        return []
    cameras = []
    for match in root.iter():
        if _local(match.tag) != "ProbeMatch":
            continue
        xaddrs = tuple(_text(match, "XAddrs").split())
        if xaddrs:
            cameras.append(DiscoveredCamera(_text(match, "Address"), xaddrs, tuple(_text(match, "Scopes").split())))
    return cameras


class _Collector(asyncio.DatagramProtocol):
    def __init__(self, message_id: str) -> None:
        self.message_id = message_id
        self.found: dict[str, DiscoveredCamera] = {}

    def datagram_received(self, data: bytes, addr: tuple[str | object, int]) -> None:
        for camera in parse_matches(data, self.message_id):
            self.found.setdefault(camera.address or camera.xaddrs[0], camera)


async def discover(
    timeout: float = 3.0, target: tuple[str, int] = MULTICAST, bind: str = "0.0.0.0"
) -> list[DiscoveredCamera]:
    """Send one Probe to `target` and collect the answers for `timeout` seconds."""
    message_id = str(uuid.uuid4())
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(lambda: _Collector(message_id), local_addr=(bind, 0))
    try:
        transport.sendto(PROBE.format(message_id=message_id).encode(), target)
        await asyncio.sleep(timeout)  # answers arrive whenever each camera gets round to it: collect for a while
    finally:
        transport.close()
    return sorted(protocol.found.values(), key=lambda c: c.xaddrs[0])
