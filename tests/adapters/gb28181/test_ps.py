"""The PS muxer's layout, byte by byte where the standard fixes it (FFmpeg reads the whole stream in the relay's
end-to-end tests)."""

from __future__ import annotations

from adapters.gb28181.ps import MAX_PES_LENGTH, SCR_LEAD, TIMESTAMP_BASE, PsMuxer, _crc32_mpeg, program_stream_map


def read_timestamp(field: bytes) -> int:
    return ((field[0] >> 1) & 0x07) << 30 | field[1] << 22 | (field[2] >> 1) << 15 | field[3] << 7 | field[4] >> 1


def read_scr(pack: bytes) -> int:
    b = pack[4:10]
    return (
        ((b[0] >> 3) & 0x07) << 30
        | (b[0] & 0x03) << 28
        | b[1] << 20
        | (b[2] >> 3) << 15
        | (b[2] & 0x03) << 13
        | b[3] << 5
        | b[4] >> 3
    )


def pes_units(data: bytes) -> list[bytes]:
    """Each PES packet of a muxed frame (after the pack header and any system header and PSM)."""
    out, offset = [], 0
    while offset < len(data):
        assert data[offset : offset + 3] == b"\x00\x00\x01"
        code = data[offset + 3]
        if code == 0xBA:
            offset += 14
            continue
        length = int.from_bytes(data[offset + 4 : offset + 6], "big")
        if code == 0xE0:
            out.append(data[offset : offset + 6 + length])
        offset += 6 + length
    return out


def test_pack_header_on_every_frame_system_header_and_psm_on_key_frames_only() -> None:
    muxer = PsMuxer("H264")
    key = muxer.mux(b"\x00\x00\x00\x01\x65" + b"k" * 100, 9000, key=True)
    delta = muxer.mux(b"\x00\x00\x00\x01\x41" + b"d" * 100, 12600, key=False)
    assert key[:4] == delta[:4] == b"\x00\x00\x01\xba"
    assert key[14:18] == b"\x00\x00\x01\xbb"
    assert b"\x00\x00\x01\xbc" in key
    assert b"\x00\x00\x01\xbb" not in delta
    assert b"\x00\x00\x01\xbc" not in delta
    assert delta[14:18] == b"\x00\x00\x01\xe0"
    (pes,) = pes_units(delta)
    pts = read_timestamp(pes[9:14])
    assert pts == TIMESTAMP_BASE + 12600
    assert read_scr(delta) == pts - SCR_LEAD, "the SCR a little before the DTS"


def test_a_big_frame_is_split_into_pes_packets_of_at_most_0xffff() -> None:
    frame = b"\x00\x00\x00\x01\x65" + bytes(range(256)) * 1000  # 256 KB
    units = pes_units(PsMuxer("H265").mux(frame, 0, key=True))
    assert len(units) == 4
    assert all(int.from_bytes(u[4:6], "big") <= MAX_PES_LENGTH for u in units)
    payload = units[0][14:] + b"".join(u[9:] for u in units[1:])
    assert payload == frame
    assert units[1][7] == 0x00, "only the first PES carries the PTS"


def test_psm_names_the_codec_and_carries_a_valid_crc() -> None:
    assert _crc32_mpeg(b"123456789") == 0x0376E6E7  # the CRC-32/MPEG-2 check value
    for codec, stream_type in (("H264", 0x1B), ("H265", 0x24)):
        psm = program_stream_map(codec)
        assert psm[:4] == b"\x00\x00\x01\xbc"
        assert int.from_bytes(psm[4:6], "big") == len(psm) - 6
        assert psm[12:14] == bytes([stream_type, 0xE0])
        assert _crc32_mpeg(psm) == 0, "CRC over the section including its CRC is zero"


def test_the_rtp_timestamp_wrap_keeps_the_ps_clock_going_forward() -> None:
    muxer = PsMuxer("H264")
    before = pes_units(muxer.mux(b"\x00\x00\x00\x01\x41a", 0xFFFFF000, key=False))[0]
    after = pes_units(muxer.mux(b"\x00\x00\x00\x01\x41b", 0x00000E10, key=False))[0]
    step = read_timestamp(after[9:14]) - read_timestamp(before[9:14])
    assert step == 0x1000 + 0xE10, "one frame later, not 13 hours earlier"
