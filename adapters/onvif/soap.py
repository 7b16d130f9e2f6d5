"""ONVIF SOAP messages as plain text templates, and safe parsing of the answers.

The per-round probes send a handful of fixed operations, so they are kept as ready-made envelopes instead of
being built from the WSDL for each camera (which costs a WSDL client hundreds of milliseconds and megabytes per
camera). Answers are parsed with defusedxml: a hostile or broken camera gets a DeviceProtocolError, never an
entity expansion or a crash.
"""

from __future__ import annotations

import base64
import hashlib
import os
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from gateway.domain.errors import DeviceProtocolError

SOAP_CONTENT_TYPE = "application/soap+xml; charset=utf-8"
DEVICE_NS = "http://www.onvif.org/ver10/device/wsdl"
MEDIA_NS = "http://www.onvif.org/ver10/media/wsdl"
_WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
_WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
_DIGEST_TYPE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordDigest"
_NONCE_TYPE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary"

_ENVELOPE = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" '
    'xmlns:tds="http://www.onvif.org/ver10/device/wsdl" xmlns:trt="http://www.onvif.org/ver10/media/wsdl" '
    'xmlns:tt="http://www.onvif.org/ver10/schema">'
    "<s:Header>{header}</s:Header><s:Body>{body}</s:Body></s:Envelope>"
)

BODIES = {
    "GetSystemDateAndTime": "<tds:GetSystemDateAndTime/>",
    "GetDeviceInformation": "<tds:GetDeviceInformation/>",
    "GetCapabilities": "<tds:GetCapabilities><tds:Category>All</tds:Category></tds:GetCapabilities>",
    "GetServices": "<tds:GetServices><tds:IncludeCapability>false</tds:IncludeCapability></tds:GetServices>",
    "GetProfiles": "<trt:GetProfiles/>",
}

# The probe is the same bytes every round for every camera: build it once.
SYSTEM_DATE_AND_TIME = _ENVELOPE.format(header="", body=BODIES["GetSystemDateAndTime"]).encode()


_MEDIA_OPERATIONS = frozenset({"GetProfiles", "GetStreamUri", "GetSnapshotUri"})
_ACTIONS: dict[str, str] = {}


def action(operation: str) -> str:
    """The SOAP 1.2 Content-Type with the operation's action (made once per operation, used every request)."""
    found = _ACTIONS.get(operation)
    if found is None:
        ns = MEDIA_NS if operation in _MEDIA_OPERATIONS else DEVICE_NS
        found = _ACTIONS[operation] = f'{SOAP_CONTENT_TYPE}; action="{ns}/{operation}"'
    return found


def username_token(username: str, password: str, created: datetime, nonce: bytes | None = None) -> str:
    """WS-Security UsernameToken with PasswordDigest = Base64(SHA1(nonce + created + password))."""
    nonce = nonce if nonce is not None else os.urandom(16)
    stamp = created.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    digest = base64.b64encode(hashlib.sha1(nonce + stamp.encode() + password.encode()).digest()).decode()
    return (
        f'<wsse:Security xmlns:wsse="{_WSSE}" xmlns:wsu="{_WSU}" s:mustUnderstand="1"><wsse:UsernameToken>'
        f"<wsse:Username>{_escape(username)}</wsse:Username>"
        f'<wsse:Password Type="{_DIGEST_TYPE}">{digest}</wsse:Password>'
        f'<wsse:Nonce EncodingType="{_NONCE_TYPE}">{base64.b64encode(nonce).decode()}</wsse:Nonce>'
        f"<wsu:Created>{stamp}</wsu:Created></wsse:UsernameToken></wsse:Security>"
    )


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def envelope(body: str, header: str = "") -> bytes:
    return _ENVELOPE.format(header=header, body=body).encode()


def stream_uri_body(profile_token: str) -> str:
    return (
        "<trt:GetStreamUri><trt:StreamSetup><tt:Stream>RTP-Unicast</tt:Stream>"
        "<tt:Transport><tt:Protocol>RTSP</tt:Protocol></tt:Transport></trt:StreamSetup>"
        f"<trt:ProfileToken>{_escape(profile_token)}</trt:ProfileToken></trt:GetStreamUri>"
    )


def snapshot_uri_body(profile_token: str) -> str:
    return f"<trt:GetSnapshotUri><trt:ProfileToken>{_escape(profile_token)}</trt:ProfileToken></trt:GetSnapshotUri>"


# What the XML parsers raise for a body that is broken, hostile or in an encoding expat cannot read.
XML_ERRORS = (ET.ParseError, DefusedXmlException, ValueError)
_DTD = b"<!DOCTYPE"


def safe_fromstring(body: bytes) -> ET.Element:
    """Parse XML from a device without letting it expand entities or reach outside.

    Entities can only be declared in a DTD. A body without one is read by the C parser as UTF-8 whatever its
    declaration says (ONVIF Core requires UTF-8; forcing it keeps an exotic declared encoding such as UTF-7 from
    hiding a DTD from the byte check); that is three times faster than defusedxml's pure-Python parser, and every
    answer of every round goes through here. Anything else (a DTD, another encoding) goes to defusedxml, which
    refuses DTDs in any encoding. Raises one of XML_ERRORS.
    """
    if _DTD not in body:
        parser = ET.XMLParser(encoding="utf-8")
        try:
            parser.feed(body)
            root: ET.Element = parser.close()
            return root
        except ET.ParseError:
            pass  # maybe another encoding: defusedxml gives the verdict
    guarded: ET.Element = fromstring(body, forbid_dtd=True)
    return guarded


def parse(camera_id: str, body: bytes) -> ET.Element:
    """The SOAP envelope's root, or DeviceProtocolError for anything that is not safe, well-formed XML."""
    try:
        return safe_fromstring(body)
    except XML_ERRORS as exc:
        raise DeviceProtocolError(camera_id, f"answer is not usable XML ({type(exc).__name__})") from None


def local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def find(root: ET.Element, name: str) -> ET.Element | None:
    """The first element anywhere below `root` whose local name is `name` (cameras vary their prefixes)."""
    for element in root.iter():
        if local(element.tag) == name:
            return element
    return None


def text(root: ET.Element, name: str) -> str | None:
    element = find(root, name)
    return element.text.strip() if element is not None and element.text else None


def texts(root: ET.Element, names: frozenset[str]) -> dict[str, str]:
    """The first text of each wanted local name below `root`, in one walk of the tree (answers are read every
    round for every camera, so walking once instead of once per field matters)."""
    found: dict[str, str] = {}
    for element in root.iter():
        name = element.tag.rsplit("}", 1)[-1]
        if name in names and name not in found and element.text and element.text.strip():
            found[name] = element.text.strip()
    return found


def fault_reason(root: ET.Element) -> str | None:
    """The subcode or text of a SOAP Fault (`ter:NotAuthorized`...), None when the answer is no fault."""
    fault = find(root, "Fault")
    if fault is None:
        return None
    values = [e.text.strip() for e in fault.iter() if local(e.tag) == "Value" and e.text]
    reason = text(fault, "Text")
    return values[-1] if values else (reason or "fault")


def is_not_authorized(root: ET.Element) -> bool:
    reason = (fault_reason(root) or "").lower()
    return "notauthorized" in reason or "not authorized" in reason or "authority" in reason


_DATE_PARTS = frozenset({"Year", "Month", "Day", "Hour", "Minute", "Second"})


def utc_datetime(camera_id: str, root: ET.Element) -> datetime:
    """The camera's UTC clock from a GetSystemDateAndTime answer."""
    utc = find(root, "UTCDateTime")
    if utc is None:
        raise DeviceProtocolError(camera_id, "GetSystemDateAndTime answer has no UTCDateTime")
    try:
        found = texts(utc, _DATE_PARTS)
        parts = {name: int(found.get(name, "")) for name in _DATE_PARTS}
        return datetime(
            parts["Year"], parts["Month"], parts["Day"], parts["Hour"], parts["Minute"], tzinfo=UTC
        ) + timedelta(seconds=parts["Second"])
    except ValueError as exc:
        raise DeviceProtocolError(camera_id, f"camera clock is not a date: {exc}") from None
