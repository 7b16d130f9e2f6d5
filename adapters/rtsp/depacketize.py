"""RTP → access units (one picture's NAL units in Annex B form) for H.264 (RFC 6184) and H.265 (RFC 7798).

Nothing is decoded: NAL headers tell the packet kinds, key frames and parameter sets. A key frame always leaves
here with its parameter sets in front (from the SDP's sprop, replaced by in-band ones as they come), so a viewer
that starts on it can decode it. An access unit ends on the RTP marker bit or when the timestamp changes; one
damaged by a lost packet (a sequence gap) is dropped whole rather than sent half.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

logger = logging.getLogger(__name__)

START_CODE = b"\x00\x00\x00\x01"
_RTP_VERSION = 2
_RTP_HEADER = 12
# H.264 NAL unit types (H.264 table 7-1) and RTP payload types (RFC 6184 section 5.2).
H264_IDR = 5
H264_SPS, H264_PPS = 7, 8
H264_AUD = 9
H264_STAP_A, H264_FU_A = 24, 28
# H.265 NAL unit types (H.265 table 7-1) and RTP payload types (RFC 7798 section 4.4).
H265_IRAP = range(16, 24)  # BLA, IDR, CRA (and reserved IRAP): a decoder may start here
H265_VPS, H265_SPS, H265_PPS = 32, 33, 34
H265_AUD = 35
H265_AP, H265_FU = 48, 49
# A picture larger than this is not a camera's: a guard against a stream that never sets the marker.
MAX_ACCESS_UNIT_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class AccessUnit:
    """One picture: Annex B bytes (start codes), its 90 kHz RTP timestamp, whether a decoder can start on it."""

    timestamp: int
    data: bytes
    key: bool


@dataclass(frozen=True, slots=True)
class RtpHeader:
    sequence: int
    timestamp: int
    marker: bool
    payload_type: int
    ssrc: int


def parse_rtp(packet: bytes) -> tuple[RtpHeader, bytes] | None:
    """The header and payload of an RTP packet (CSRCs, extension and padding removed); None if it is not RTP."""
    if len(packet) < _RTP_HEADER or packet[0] >> 6 != _RTP_VERSION:
        return None
    csrc_count = packet[0] & 0x0F
    offset = _RTP_HEADER + 4 * csrc_count
    if packet[0] & 0x10:  # header extension: 4 bytes, then its length in 32-bit words
        if len(packet) < offset + 4:
            return None
        offset += 4 + 4 * int.from_bytes(packet[offset + 2 : offset + 4], "big")
    end = len(packet)
    if packet[0] & 0x20:  # padding: its count in the last byte
        end -= packet[-1]
    if offset > end:
        return None
    header = RtpHeader(
        sequence=int.from_bytes(packet[2:4], "big"),
        timestamp=int.from_bytes(packet[4:8], "big"),
        marker=bool(packet[1] & 0x80),
        payload_type=packet[1] & 0x7F,
        ssrc=int.from_bytes(packet[8:12], "big"),
    )
    return header, packet[offset:end]


class Depacketizer:
    """Feed RTP packets with `push()`; it returns the access units they complete."""

    def __init__(self, codec: str, parameter_sets: tuple[bytes, ...] = ()) -> None:
        if codec not in ("H264", "H265"):
            raise ValueError(f"no depacketizer for {codec}")
        self.codec = codec
        self._h265 = codec == "H265"
        self._params: dict[int, bytes] = {}
        for nal in parameter_sets:
            self._remember_parameter_set(nal)
        self._nals: list[bytes] = []
        self._size = 0
        self._fragment: bytearray | None = None
        self._timestamp: int | None = None
        self._next_sequence: int | None = None
        self._damaged = False
        self.dropped = 0  # access units dropped because a packet was lost

    def _type(self, nal: bytes) -> int:
        return (nal[0] >> 1) & 0x3F if self._h265 else nal[0] & 0x1F

    def _is_parameter_set(self, kind: int) -> bool:
        return kind in (H265_VPS, H265_SPS, H265_PPS) if self._h265 else kind in (H264_SPS, H264_PPS)

    def _remember_parameter_set(self, nal: bytes) -> None:
        if nal and self._is_parameter_set(self._type(nal)):
            self._params[self._type(nal)] = nal

    def push(self, packet: bytes) -> list[AccessUnit]:
        parsed = parse_rtp(packet)
        if parsed is None:
            return []
        header, payload = parsed
        done: list[AccessUnit] = []
        if self._next_sequence is not None and header.sequence != self._next_sequence:
            self._damaged = True
            self._fragment = None
        self._next_sequence = (header.sequence + 1) & 0xFFFF
        if self._timestamp is not None and header.timestamp != self._timestamp and self._nals:
            unit = self._finish()
            if unit is not None:
                done.append(unit)
        self._timestamp = header.timestamp
        if payload:
            self._take(payload)
        if header.marker:
            unit = self._finish()
            if unit is not None:
                done.append(unit)
        return done

    def _take(self, payload: bytes) -> None:
        header_len = 2 if self._h265 else 1
        if len(payload) <= header_len:
            return
        kind = self._type(payload)
        if kind == (H265_AP if self._h265 else H264_STAP_A):
            offset = header_len
            while offset + 2 <= len(payload):
                size = int.from_bytes(payload[offset : offset + 2], "big")
                offset += 2
                if size == 0 or offset + size > len(payload):
                    self._damaged = True
                    return
                self._add(payload[offset : offset + size])
                offset += size
        elif kind == (H265_FU if self._h265 else H264_FU_A):
            self._take_fragment(payload)
        else:
            self._add(payload)

    def _take_fragment(self, payload: bytes) -> None:
        header_len = 2 if self._h265 else 1
        if len(payload) <= header_len + 1:
            return
        fu = payload[header_len]
        start, end = bool(fu & 0x80), bool(fu & 0x40)
        if start:
            if self._h265:
                # The NAL header is rebuilt from the payload header with the FU header's type (RFC 7798 4.4.3).
                nal_header = bytes([(payload[0] & 0x81) | ((fu & 0x3F) << 1), payload[1]])
            else:
                nal_header = bytes([(payload[0] & 0xE0) | (fu & 0x1F)])
            self._fragment = bytearray(nal_header)
        elif self._fragment is None:
            return  # the middle of a NAL whose start was lost: the gap already marked the unit damaged
        self._fragment += payload[header_len + 1 :]
        if len(self._fragment) > MAX_ACCESS_UNIT_BYTES:
            self._fragment = None
            self._damaged = True
            return
        if end:
            self._add(bytes(self._fragment))
            self._fragment = None

    def _add(self, nal: bytes) -> None:
        kind = self._type(nal)
        if kind == (H265_AUD if self._h265 else H264_AUD):
            return  # delimiters are not needed in PS and would repeat
        self._remember_parameter_set(nal)
        self._size += len(nal)
        if self._size > MAX_ACCESS_UNIT_BYTES:
            self._damaged = True
            return
        self._nals.append(nal)

    def _is_key(self, kind: int) -> bool:
        return kind in H265_IRAP if self._h265 else kind == H264_IDR

    def _finish(self) -> AccessUnit | None:
        nals, self._nals, self._size = self._nals, [], 0
        damaged, self._damaged = self._damaged, False
        self._fragment = None
        if damaged:
            self.dropped += 1
            return None
        pictures = [nal for nal in nals if not self._is_parameter_set(self._type(nal))]
        if not pictures or self._timestamp is None:
            return None  # parameter sets alone (sent before a key frame): remembered, not a picture
        key = any(self._is_key(self._type(nal)) for nal in pictures)
        if key:
            # Parameter sets first, in decoding order (VPS, SPS, PPS), the latest known of each.
            nals = [self._params[k] for k in sorted(self._params)] + pictures
        return AccessUnit(self._timestamp, b"".join(START_CODE + nal for nal in nals), key)
