"""RTP packets as a GB/T 28181 media server checks them."""

from __future__ import annotations

import itertools

from adapters.gb28181.rtp import MAX_PAYLOAD, RtpPacketizer
from adapters.rtsp.depacketize import parse_rtp


def test_one_timestamp_per_frame_marker_on_its_last_packet_and_continuous_sequence() -> None:
    packetizer = RtpPacketizer(ssrc=123456789)
    first = packetizer.packets(b"a" * 3000, 1000)
    second = packetizer.packets(b"b" * 10, 4600)
    headers = []
    for packet in first + second:
        parsed = parse_rtp(packet)
        assert parsed is not None
        headers.append(parsed[0])
        assert len(parsed[1]) <= MAX_PAYLOAD
    assert [len(p) - 12 for p in first] == [1400, 1400, 200]
    assert [h.marker for h in headers] == [False, False, True, True]
    assert [h.timestamp for h in headers] == [1000, 1000, 1000, 4600]
    assert all(h.ssrc == 123456789 and h.payload_type == 96 for h in headers)
    sequences = [h.sequence for h in headers]
    assert all((b - a) & 0xFFFF == 1 for a, b in itertools.pairwise(sequences))
    assert b"".join(p[12:] for p in first) == b"a" * 3000


def test_sequence_numbers_wrap_without_a_gap() -> None:
    packetizer = RtpPacketizer(ssrc=1)
    packetizer.sequence = 0xFFFF
    packets = packetizer.packets(b"x" * 2000, 0)
    assert [int.from_bytes(p[2:4], "big") for p in packets] == [0xFFFF, 0]
