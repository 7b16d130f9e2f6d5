"""Answers WS-Discovery probes for a farm of simulated cameras, on a 127.0.0.1 UDP port (a directed probe)."""

from __future__ import annotations

import asyncio
import uuid
import xml.etree.ElementTree as ET

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from simulators.onvif_camera import CameraFarm

MATCH = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" '
    'xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" '
    'xmlns:d="http://schemas.xmlsoap.org/ws/2005/04/discovery" xmlns:dn="http://www.onvif.org/ver10/network/wsdl">'
    "<s:Header><a:MessageID>uuid:{own}</a:MessageID><a:RelatesTo>{relates}</a:RelatesTo>"
    "<a:To>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</a:To>"
    "<a:Action>http://schemas.xmlsoap.org/ws/2005/04/discovery/ProbeMatches</a:Action></s:Header>"
    "<s:Body><d:ProbeMatches><d:ProbeMatch><a:EndpointReference><a:Address>urn:uuid:{device}</a:Address>"
    "</a:EndpointReference><d:Types>dn:NetworkVideoTransmitter</d:Types>"
    "<d:Scopes>onvif://www.onvif.org/type/video_encoder onvif://www.onvif.org/name/{name} "
    "onvif://www.onvif.org/hardware/{model} onvif://www.onvif.org/location/country/china</d:Scopes>"
    "<d:XAddrs>{xaddr}</d:XAddrs><d:MetadataVersion>1</d:MetadataVersion></d:ProbeMatch></d:ProbeMatches>"
    "</s:Body></s:Envelope>"
)


class _Responder(asyncio.DatagramProtocol):
    def __init__(self, farm: CameraFarm) -> None:
        self.farm = farm
        self.transport: asyncio.DatagramTransport | None = None
        self.probes = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # a datagram endpoint's transport

    def datagram_received(self, data: bytes, addr: tuple[str | object, int]) -> None:
        try:
            root = fromstring(data, forbid_dtd=True)
        except (ET.ParseError, DefusedXmlException, ValueError):
            return
        ids = [e.text for e in root.iter() if e.tag.endswith("}MessageID") and e.text]
        if not ids or not any(e.tag.endswith("}Probe") for e in root.iter()) or self.transport is None:
            return
        types = " ".join(e.text or "" for e in root.iter() if e.tag.endswith("}Types"))
        if types.strip() and "NetworkVideoTransmitter" not in types:
            return  # WS-Discovery: answer only probes for a type we are (or for any type)
        self.probes += 1
        for camera in self.farm.cameras:  # each camera answers on its own, as real ones do
            if camera.down:
                continue
            answer = MATCH.format(
                own=uuid.uuid4(),
                relates=ids[0],
                device=uuid.uuid5(uuid.NAMESPACE_URL, camera.url),
                name=camera.id,
                model=camera.model,
                xaddr=camera.url,
            )
            self.transport.sendto(answer.encode(), addr)


async def start_responder(farm: CameraFarm) -> tuple[asyncio.DatagramTransport, int]:
    """Listen on a free 127.0.0.1 UDP port; returns the transport (close it when done) and the port."""
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(lambda: _Responder(farm), local_addr=("127.0.0.1", 0))
    return transport, int(transport.get_extra_info("sockname")[1])
