"""RTP → access units, fed packets built by RFC 6184 / RFC 7798 rules (single NAL, aggregation, fragmentation)."""

from __future__ import annotations

from adapters.rtsp.depacketize import START_CODE, Depacketizer, parse_rtp

SPS = bytes([0x67, 0x42, 0xC0, 0x16])
PPS = bytes([0x68, 0xCE, 0x3C, 0x80])
IDR = bytes([0x65]) + bytes(range(1, 200))
SLICE = bytes([0x41, 0x9A, 0x01])
H265_VPS = bytes([0x40, 0x01, 0x0C])
H265_SPS = bytes([0x42, 0x01, 0x01])
H265_PPS = bytes([0x44, 0x01, 0xC1])
H265_IDR = bytes([0x26, 0x01]) + bytes(range(1, 200))  # type 19, IDR_W_RADL
H265_TRAIL = bytes([0x02, 0x01, 0xD0])  # type 1


def rtp(seq: int, ts: int, payload: bytes, marker: bool = False) -> bytes:
    return (
        bytes([0x80, 0x60 | (0x80 if marker else 0)])
        + seq.to_bytes(2, "big")
        + ts.to_bytes(4, "big")
        + b"\0\0\0\1"
        + payload
    )


def fu_a(nal: bytes, size: int) -> list[bytes]:
    body, header = nal[1:], nal[0]
    chunks = [body[i : i + size] for i in range(0, len(body), size)]
    out = []
    for i, chunk in enumerate(chunks):
        fu = (header & 0x1F) | (0x80 if i == 0 else 0) | (0x40 if i == len(chunks) - 1 else 0)
        out.append(bytes([(header & 0xE0) | 28, fu]) + chunk)
    return out


def fu_h265(nal: bytes, size: int) -> list[bytes]:
    kind, body = (nal[0] >> 1) & 0x3F, nal[2:]
    chunks = [body[i : i + size] for i in range(0, len(body), size)]
    out = []
    for i, chunk in enumerate(chunks):
        fu = kind | (0x80 if i == 0 else 0) | (0x40 if i == len(chunks) - 1 else 0)
        out.append(bytes([(nal[0] & 0x81) | (49 << 1), nal[1], fu]) + chunk)
    return out


def annex_b(*nals: bytes) -> bytes:
    return b"".join(START_CODE + n for n in nals)


def test_h264_stap_a_and_fu_a_make_one_key_frame_with_its_parameter_sets() -> None:
    depack = Depacketizer("H264")
    stap = bytes([24]) + len(SPS).to_bytes(2, "big") + SPS + len(PPS).to_bytes(2, "big") + PPS
    packets = [rtp(1, 3000, stap)] + [rtp(2 + i, 3000, p) for i, p in enumerate(fu_a(IDR, 50))]
    units = [u for p in packets[:-1] for u in depack.push(p)]
    units += depack.push(packets[-1][:1] + bytes([packets[-1][1] | 0x80]) + packets[-1][2:])
    assert len(units) == 1
    assert units[0].key
    assert units[0].timestamp == 3000
    assert units[0].data == annex_b(SPS, PPS, IDR)


def test_a_key_frame_gets_the_sdp_parameter_sets_when_the_camera_sends_none_in_band() -> None:
    depack = Depacketizer("H264", (SPS, PPS))
    (unit,) = depack.push(rtp(1, 0, IDR, marker=True))
    assert unit.data == annex_b(SPS, PPS, IDR)
    (delta,) = depack.push(rtp(2, 3600, SLICE, marker=True))
    assert not delta.key
    assert delta.data == annex_b(SLICE), "parameter sets only before key frames"


def test_a_timestamp_change_ends_a_frame_whose_marker_was_lost() -> None:
    depack = Depacketizer("H264", (SPS, PPS))
    assert depack.push(rtp(1, 0, SLICE)) == []
    (unit,) = depack.push(rtp(2, 3600, SLICE))
    assert unit.timestamp == 0


def test_a_lost_fragment_drops_the_frame_and_the_next_one_comes_through() -> None:
    depack = Depacketizer("H264", (SPS, PPS))
    fragments = fu_a(IDR, 50)
    units = depack.push(rtp(1, 0, fragments[0]))
    units += depack.push(rtp(3, 0, fragments[2], marker=True))  # seq 2 lost
    assert units == []
    assert depack.dropped == 1
    (unit,) = depack.push(rtp(4, 3600, SLICE, marker=True))
    assert unit.data == annex_b(SLICE)


def test_h265_aggregation_and_fragments() -> None:
    depack = Depacketizer("H265")
    ap = bytes([48 << 1, 1]) + b"".join(len(n).to_bytes(2, "big") + n for n in (H265_VPS, H265_SPS, H265_PPS))
    fragments = fu_h265(H265_IDR, 60)
    units = depack.push(rtp(10, 90, ap))
    for i, frag in enumerate(fragments):
        units += depack.push(rtp(11 + i, 90, frag, marker=i == len(fragments) - 1))
    assert len(units) == 1
    assert units[0].key
    assert units[0].data == annex_b(H265_VPS, H265_SPS, H265_PPS, H265_IDR)
    (trail,) = depack.push(rtp(11 + len(fragments), 3690, H265_TRAIL, marker=True))
    assert not trail.key


def test_garbage_is_passed_over() -> None:
    depack = Depacketizer("H264")
    assert depack.push(b"") == []
    assert depack.push(b"\x00" * 40) == []
    assert parse_rtp(b"\x90" + b"\x00" * 12) is None  # an extension header that is not there
