"""MANSCDP (GB/T 28181 §A): the XML bodies of MESSAGE and NOTIFY, built in the configured charset and parsed safely.

Bodies go out as `encoding="GB2312"` by default because that is what platforms decode whatever the declaration says
(WVP reads every body as GB2312); a character the charset lacks becomes `?`, never an error. Incoming bodies are
parsed without a DTD: entity expansion (billion laughs) and external entities are refused.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from xml.etree.ElementTree import Element
from xml.sax.saxutils import escape

import defusedxml.ElementTree as SafeElementTree
from defusedxml import DefusedXmlException

from adapters.gb28181.channels import Channel, ChannelKind
from gateway.domain.errors import DeviceProtocolError

CONTENT_TYPE = "Application/MANSCDP+xml"
# A Catalog answer is split so that every MESSAGE fits one UDP datagram of ~1400 bytes (a path MTU of 1500 minus
# IP/UDP headers and slack): WVP broke on Catalogs that arrived as IP fragments. About 400 bytes go to SIP headers.
CATALOG_BODY_BUDGET = 1000
MAX_BODY_BYTES = 65535
_DECLARATION = re.compile(rb"^\s*<\?xml[^>]*?encoding\s*=\s*[\"']([A-Za-z0-9_.-]+)[\"'][^>]*\?>")
_ANY_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>")
MANUFACTURER = "huxiao"
MODEL = "huxiao-gateway"


@dataclass(frozen=True, slots=True)
class Manscdp:
    """A parsed body: `<Query>`/`<Notify>`/`<Response>`/`<Control>`, its CmdType, SN, DeviceID, and the element."""

    root: str
    cmd_type: str
    sn: str
    device_id: str
    element: Element = field(compare=False, repr=False)

    def text(self, path: str) -> str | None:
        found = self.element.find(path)
        return found.text.strip() if found is not None and found.text is not None else None


def decode(body: bytes) -> str:
    """Body bytes → text. GB2312 declared (or nothing) is read as GB18030, its superset, since devices write GBK
    characters under a GB2312 label; undecodable bytes are replaced, never fatal."""
    declared = _DECLARATION.match(body)
    encoding = declared.group(1).decode().lower() if declared else "gb18030"
    if encoding in ("gb2312", "gbk", "gb18030", "gb-2312"):
        encoding = "gb18030"
    try:
        return body.decode(encoding, errors="replace")
    except LookupError:
        return body.decode("gb18030", errors="replace")


def parse(body: bytes, peer: str = "platform") -> Manscdp:
    if len(body) > MAX_BODY_BYTES:
        raise DeviceProtocolError(peer, f"MANSCDP body of {len(body)} bytes is over the limit")
    text = _ANY_DECLARATION.sub("", decode(body), count=1)
    try:
        root = SafeElementTree.fromstring(text, forbid_dtd=True)
    except DefusedXmlException as exc:
        raise DeviceProtocolError(peer, f"MANSCDP body refused: {type(exc).__name__}") from None
    except SafeElementTree.ParseError as exc:
        raise DeviceProtocolError(peer, f"MANSCDP body is not XML: {exc}") from None

    def child(name: str) -> str:
        found = root.find(name)
        return (found.text or "").strip() if found is not None else ""

    cmd_type = child("CmdType")
    if not cmd_type:
        raise DeviceProtocolError(peer, f"MANSCDP <{root.tag}> without CmdType")
    return Manscdp(root.tag, cmd_type, child("SN"), child("DeviceID"), root)


def encode(xml: str, charset: str) -> bytes:
    """The document with its declaration, in `charset`; characters it cannot hold become `?`."""
    return f'<?xml version="1.0" encoding="{charset}"?>\r\n{xml}'.encode(charset, errors="replace")


def _fields(pairs: Iterable[tuple[str, object]], separator: str = "\r\n") -> str:
    return "".join(f"<{name}>{escape(str(value))}</{name}>{separator}" for name, value in pairs)


def document(root: str, cmd_type: str, sn: int | str, device_id: str, *pairs: tuple[str, object]) -> str:
    head = _fields([("CmdType", cmd_type), ("SN", sn), ("DeviceID", device_id)])
    return f"<{root}>\r\n{head}{_fields(pairs)}</{root}>\r\n"


def keepalive(sn: int, device_id: str, charset: str) -> bytes:
    return encode(document("Notify", "Keepalive", sn, device_id, ("Status", "OK")), charset)


def _item(channel: Channel, device_id: str, civil_code: str, event: str | None = None) -> str:
    pairs: list[tuple[str, object]] = [
        ("DeviceID", channel.id),
        ("Name", channel.name),
        ("Manufacturer", MANUFACTURER),
        ("Model", "IPC" if channel.kind is ChannelKind.CAMERA else "AlarmIn"),
        ("Owner", "0"),
        ("CivilCode", civil_code),
        ("Address", ""),
        ("Parental", 0),
        ("ParentID", device_id),
        ("SafetyWay", 0),
        ("RegisterWay", 1),
        ("Secrecy", 0),
        ("Status", "ON" if channel.online else "OFF"),
    ]
    if event is not None:
        pairs.append(("Event", event))
    # Items without line breaks inside: a few more fit in one datagram.
    return f"<Item>{_fields(pairs, separator='')}</Item>\r\n"


def catalog_responses(
    sn: str, device_id: str, channels: list[Channel], charset: str, budget: int = CATALOG_BODY_BUDGET
) -> list[bytes]:
    """The Catalog answer as several bodies of a few items each, every one within `budget` bytes (at least one
    item per body, and one empty answer when there are no channels); all carry the query's SN and `SumNum`."""
    civil_code = device_id[:6]
    total = len(channels)

    def body(items: list[str]) -> bytes:
        listing = f'<DeviceList Num="{len(items)}">\r\n{"".join(items)}</DeviceList>\r\n'
        xml = document("Response", "Catalog", sn, device_id, ("SumNum", total))
        return encode(xml.replace("</Response>", listing + "</Response>"), charset)

    bodies: list[bytes] = []
    batch: list[str] = []
    for channel in channels:
        item = _item(channel, device_id, civil_code)
        if batch and len(body([*batch, item])) > budget:
            bodies.append(body(batch))
            batch = []
        batch.append(item)
    if batch or not bodies:
        bodies.append(body(batch))
    return bodies


def catalog_notify(sn: int, device_id: str, channel: Channel, charset: str) -> bytes:
    """A channel's ON/OFF change as a Catalog NOTIFY item with `<Event>`."""
    item = _item(channel, device_id, device_id[:6], event="ON" if channel.online else "OFF")
    listing = f'<DeviceList Num="1">\r\n{item}</DeviceList>\r\n'
    xml = document("Notify", "Catalog", sn, device_id, ("SumNum", 1))
    return encode(xml.replace("</Notify>", listing + "</Notify>"), charset)


def device_info(sn: str, device_id: str, name: str, channels: int, charset: str) -> bytes:
    pairs: list[tuple[str, object]] = [
        ("Result", "OK"),
        ("DeviceName", name),
        ("Manufacturer", MANUFACTURER),
        ("Model", MODEL),
        ("Firmware", "0.1.0"),
        ("Channel", channels),
    ]
    return encode(document("Response", "DeviceInfo", sn, device_id, *pairs), charset)


def device_status(sn: str, device_id: str, now: datetime, charset: str) -> bytes:
    pairs: list[tuple[str, object]] = [
        ("Result", "OK"),
        ("Online", "ONLINE"),
        ("Status", "OK"),
        ("Encode", "ON"),
        ("Record", "OFF"),
        ("DeviceTime", gb_time(now)),
    ]
    return encode(document("Response", "DeviceStatus", sn, device_id, *pairs), charset)


def basic_param(sn: str, device_id: str, name: str, expires: int, keepalive: int, misses: int, charset: str) -> bytes:
    """ConfigDownload BasicParam: HeartBeatInterval and HeartBeatCount always filled (nulls made devices fall
    offline on WVP)."""
    param = _fields(
        [
            ("Name", name),
            ("Expiration", expires),
            ("HeartBeatInterval", keepalive),
            ("HeartBeatCount", misses),
            ("PositionCapability", 0),
        ]
    )
    xml = document("Response", "ConfigDownload", sn, device_id, ("Result", "OK"))
    return encode(xml.replace("</Response>", f"<BasicParam>\r\n{param}</BasicParam>\r\n</Response>"), charset)


def alarm(
    sn: int,
    channel_id: str,
    *,
    priority: int,
    method: int,
    at: datetime,
    description: str,
    alarm_type: int,
    charset: str,
) -> bytes:
    pairs: list[tuple[str, object]] = [
        ("AlarmPriority", priority),
        ("AlarmMethod", method),
        ("AlarmTime", gb_time(at)),
        ("AlarmDescription", description),
        ("Longitude", "0"),
        ("Latitude", "0"),
    ]
    xml = document("Notify", "Alarm", sn, channel_id, *pairs)
    info = f"<Info>\r\n{_fields([('AlarmType', alarm_type)])}</Info>\r\n"
    return encode(xml.replace("</Notify>", info + "</Notify>"), charset)


def gb_time(moment: datetime) -> str:
    """GB/T 28181 times are local wall-clock `yyyy-MM-ddTHH:mm:ss`, without a zone."""
    return moment.astimezone().strftime("%Y-%m-%dT%H:%M:%S")
