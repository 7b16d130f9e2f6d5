"""MPEG-PS (ISO/IEC 13818-1 section 2.5) as GB/T 28181 media servers read it: one video stream, 90 kHz clock.

Layout (the one STANDARDS.md "PS layout that works" records): a pack header before every frame, with the SCR a
little before the frame's DTS; the system header and the program stream map before every key frame, so a
viewer joining at any key frame learns the stream type; the frame in PES packets of at most 0xFFFF bytes, the
PTS on the first. The cameras here send no B-frames, so PTS = DTS and only the PTS is written.
"""

from __future__ import annotations

from enum import IntEnum

# Stream types (ISO/IEC 13818-1 table 2-34, and GB/T 28181 annex C for H.265).
STREAM_TYPES = {"H264": 0x1B, "H265": 0x24}


class StreamId(IntEnum):
    VIDEO = 0xE0  # the first MPEG video stream id


PACK_START = b"\x00\x00\x01\xba"
SYSTEM_HEADER_START = b"\x00\x00\x01\xbb"
PSM_START = b"\x00\x00\x01\xbc"
PES_VIDEO_START = b"\x00\x00\x01\xe0"
# The SCR leads the DTS by 40 ms (one frame at 25 fps, 3600 ticks): the buffer model wants the pack's bytes to
# arrive before their picture is due.
SCR_LEAD = 3600
# Timestamps start this far in so that SCR = DTS - SCR_LEAD never goes below zero.
TIMESTAMP_BASE = 90_000
# PES_packet_length is 16 bits; it counts the 3 header bytes after it, the optional fields and the payload.
MAX_PES_LENGTH = 0xFFFF
# 13818-1 program_mux_rate, in units of 50 bytes/s: 20 Mbit/s, above any school camera's stream.
MUX_RATE = 20_000_000 // 8 // 50
# P-STD buffer bound for video: 1024-byte units (scale 1), 400 KB, above any single frame we relay.
VIDEO_BUFFER_BOUND_KB = 400
_TIMESTAMP_MASK = (1 << 33) - 1
# A backward step of more than half the 32-bit range is the RTP timestamp wrapping, not a late frame.
RTP_HALF_RANGE = 1 << 31


def _timestamp_field(prefix: int, ts: int) -> bytes:
    """A 5-byte PTS/DTS field (13818-1 section 2.4.3.7): prefix, 33 bits with marker bits between."""
    ts &= _TIMESTAMP_MASK
    return bytes(
        [
            (prefix << 4) | (((ts >> 30) & 0x07) << 1) | 1,
            (ts >> 22) & 0xFF,
            (((ts >> 15) & 0x7F) << 1) | 1,
            (ts >> 7) & 0xFF,
            ((ts & 0x7F) << 1) | 1,
        ]
    )


def pack_header(scr: int) -> bytes:
    """The 14-byte MPEG-2 pack header (no stuffing) with `scr` in 90 kHz units (extension 0)."""
    scr &= _TIMESTAMP_MASK
    value = 0b01 << 46  # '01' marks MPEG-2
    value |= ((scr >> 30) & 0x07) << 43
    value |= 1 << 42
    value |= ((scr >> 15) & 0x7FFF) << 27
    value |= 1 << 26
    value |= (scr & 0x7FFF) << 11
    value |= 1 << 10
    value |= 0 << 1  # SCR extension (27 MHz remainder) is zero: our clock is 90 kHz
    value |= 1
    rate = (MUX_RATE << 2) | 0b11
    return PACK_START + value.to_bytes(6, "big") + rate.to_bytes(3, "big") + bytes([0xF8])  # reserved, 0 stuffing


def system_header() -> bytes:
    """The system header (13818-1 section 2.5.3.5) for one video stream and no audio."""
    rate_bound = (1 << 23) | (MUX_RATE << 1) | 1
    body = rate_bound.to_bytes(3, "big")
    body += bytes([0x00])  # audio_bound 0, fixed_flag 0, CSPS_flag 0
    body += bytes([0xE1])  # system audio lock, system video lock, marker, video_bound 1
    body += bytes([0x7F])  # packet_rate_restriction 0, reserved
    bound = (0b11 << 14) | (1 << 13) | VIDEO_BUFFER_BOUND_KB
    body += bytes([StreamId.VIDEO]) + bound.to_bytes(2, "big")
    return SYSTEM_HEADER_START + len(body).to_bytes(2, "big") + body


def _crc32_mpeg(data: bytes) -> int:
    """CRC-32/MPEG-2 (poly 0x04C11DB7, no reflection), as the PSM's CRC_32 field wants."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) & 0xFFFFFFFF if crc & 0x80000000 else (crc << 1) & 0xFFFFFFFF
    return crc


def program_stream_map(codec: str) -> bytes:
    """The PSM (13818-1 section 2.5.4) naming the one video stream's type."""
    entry = bytes([STREAM_TYPES[codec], StreamId.VIDEO]) + (0).to_bytes(2, "big")
    body = bytes([0xE0, 0xFF])  # current_next 1, version 0; reserved, marker
    body += (0).to_bytes(2, "big")  # program_stream_info_length
    body += len(entry).to_bytes(2, "big") + entry
    length = len(body) + 4  # and the CRC
    head = PSM_START + length.to_bytes(2, "big") + body
    return head + _crc32_mpeg(head).to_bytes(4, "big")


def pes_packets(frame: bytes, pts: int) -> list[bytes]:
    """The frame as video PES packets, PTS on the first, each at most 0xFFFF bytes long after its length."""
    packets: list[bytes] = []
    offset = 0
    first = True
    while first or offset < len(frame):
        # The first carries data_alignment and the PTS; the rest of the frame follows with no optional fields.
        optional = bytes([0x84, 0x80, 5]) + _timestamp_field(0b0010, pts) if first else bytes([0x80, 0x00, 0])
        room = MAX_PES_LENGTH - len(optional)
        chunk = frame[offset : offset + room]
        offset += len(chunk)
        packets.append(PES_VIDEO_START + (len(optional) + len(chunk)).to_bytes(2, "big") + optional + chunk)
        first = False
    return packets


class PsMuxer:
    """One camera's frames to PS bytes; `mux()` takes an Annex B frame and its 90 kHz timestamp."""

    def __init__(self, codec: str) -> None:
        if codec not in STREAM_TYPES:
            raise ValueError(f"no PS stream type for {codec}")
        self._headers = system_header() + program_stream_map(codec)
        self._last: int | None = None
        self._wraps = 0

    def _extend(self, timestamp: int) -> int:
        """The 32-bit RTP timestamp carried on past its wrap (every 13.3 h at 90 kHz) into the 33-bit PS clock."""
        if self._last is not None and timestamp < self._last and self._last - timestamp > RTP_HALF_RANGE:
            self._wraps += 1
        self._last = timestamp
        return timestamp + (self._wraps << 32)

    def mux(self, frame: bytes, timestamp: int, key: bool) -> bytes:
        pts = TIMESTAMP_BASE + self._extend(timestamp)
        parts = [pack_header(pts - SCR_LEAD)]
        if key:
            parts.append(self._headers)
        parts += pes_packets(frame, pts)
        return b"".join(parts)
