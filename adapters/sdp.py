"""SDP (RFC 8866) as RTSP cameras send it: codec and picture size of the video stream.

The size comes from `a=framesize` / `a=x-dimensions` where the camera sends them, else from the H.264 sequence
parameter set in `sprop-parameter-sets` (cameras from the big Chinese vendors send only the latter).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

_HIGH_PROFILES = frozenset({100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135})


@dataclass(frozen=True, slots=True)
class MediaDescription:
    kind: str  # video, audio, application
    codec: str | None  # H264, H265, JPEG, PCMA...
    width: int | None
    height: int | None
    control: str | None


class _Bits:
    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    def u(self, n: int) -> int:
        value = 0
        for _ in range(n):
            byte = self._data[self._pos >> 3] if (self._pos >> 3) < len(self._data) else 0
            if (self._pos >> 3) >= len(self._data):
                raise ValueError("SPS ends early")
            value = (value << 1) | ((byte >> (7 - (self._pos & 7))) & 1)
            self._pos += 1
        return value

    def ue(self) -> int:
        zeros = 0
        while self.u(1) == 0:
            zeros += 1
            if zeros > 31:
                raise ValueError("bad exp-Golomb code")
        return (1 << zeros) - 1 + self.u(zeros)

    def se(self) -> int:
        k = self.ue()
        return (k + 1) // 2 if k % 2 else -(k // 2)


def _unescape(nal: bytes) -> bytes:
    """Remove emulation-prevention bytes (00 00 03 → 00 00)."""
    out = bytearray()
    zeros = 0
    for byte in nal:
        if zeros >= 2 and byte == 3:
            zeros = 0
            continue
        out.append(byte)
        zeros = zeros + 1 if byte == 0 else 0
    return bytes(out)


def h264_sps_size(sps: bytes) -> tuple[int, int]:
    """Picture width and height from an H.264 SPS NAL unit (with its one-byte header), cropping applied."""
    bits = _Bits(_unescape(sps[1:]))
    profile = bits.u(8)
    bits.u(16)  # constraint flags, level
    bits.ue()  # seq_parameter_set_id
    chroma = 1
    separate_planes = 0
    if profile in _HIGH_PROFILES:
        chroma = bits.ue()
        if chroma == 3:
            separate_planes = bits.u(1)
        bits.ue()  # bit_depth_luma_minus8
        bits.ue()  # bit_depth_chroma_minus8
        bits.u(1)  # qpprime_y_zero_transform_bypass_flag
        if bits.u(1):  # seq_scaling_matrix_present_flag
            for index in range(12 if chroma == 3 else 8):
                if bits.u(1):
                    last = next_ = 8
                    for _ in range(16 if index < 6 else 64):
                        if next_ != 0:
                            next_ = (last + bits.se() + 256) % 256
                        last = next_ if next_ != 0 else last
    bits.ue()  # log2_max_frame_num_minus4
    poc_type = bits.ue()
    if poc_type == 0:
        bits.ue()
    elif poc_type == 1:
        bits.u(1)
        bits.se()
        bits.se()
        for _ in range(bits.ue()):
            bits.se()
    bits.ue()  # max_num_ref_frames
    bits.u(1)  # gaps_in_frame_num_value_allowed_flag
    width_mbs = bits.ue() + 1
    height_units = bits.ue() + 1
    frame_mbs_only = bits.u(1)
    if not frame_mbs_only:
        bits.u(1)  # mb_adaptive_frame_field_flag
    bits.u(1)  # direct_8x8_inference_flag
    crop = (0, 0, 0, 0)
    if bits.u(1):
        crop = (bits.ue(), bits.ue(), bits.ue(), bits.ue())
    if chroma == 0 or separate_planes:
        unit_x, unit_y = 1, 2 - frame_mbs_only
    else:
        unit_x = 1 if chroma == 3 else 2
        unit_y = (2 if chroma == 1 else 1) * (2 - frame_mbs_only)
    width = width_mbs * 16 - unit_x * (crop[0] + crop[1])
    height = (2 - frame_mbs_only) * height_units * 16 - unit_y * (crop[2] + crop[3])
    return width, height


def _fmtp_params(value: str) -> dict[str, str]:
    params = {}
    for item in value.split(";"):
        key, _, val = item.strip().partition("=")
        if key:
            params[key.lower()] = val.strip()
    return params


def parse_sdp(text: str) -> list[MediaDescription]:
    """Every media section, with what could be learnt of it; unknown or broken lines are passed over."""
    sections: list[dict[str, object]] = []
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("m="):
            parts = line[2:].split()
            sections.append({"kind": parts[0] if parts else "", "pts": parts[3:], "rtpmap": {}, "fmtp": {}})
            continue
        if not sections or not line.startswith("a="):
            continue
        current = sections[-1]
        attr, _, value = line[2:].partition(":")
        if attr == "rtpmap":
            pt, _, encoding = value.partition(" ")
            current["rtpmap"][pt] = encoding.split("/")[0].upper()  # type: ignore[index]
        elif attr == "fmtp":
            pt, _, params = value.partition(" ")
            current["fmtp"][pt] = _fmtp_params(params)  # type: ignore[index]
        elif attr == "framesize":
            _, _, size = value.partition(" ")
            w, _, h = size.partition("-")
            current["size"] = (w, h)
        elif attr == "x-dimensions":
            w, _, h = value.partition(",")
            current["size"] = (w, h)
        elif attr == "control":
            current["control"] = value
    return [_describe(section) for section in sections]


def _describe(section: dict[str, object]) -> MediaDescription:
    pts = section["pts"]
    rtpmap: dict[str, str] = section["rtpmap"]  # type: ignore[assignment]
    fmtp: dict[str, dict[str, str]] = section["fmtp"]  # type: ignore[assignment]
    pt = pts[0] if isinstance(pts, list) and pts else ""
    codec = rtpmap.get(pt)
    if codec is None and pt == "26":
        codec = "JPEG"  # static payload type 26 (RFC 3551) needs no rtpmap
    width = height = None
    size = section.get("size")
    if isinstance(size, tuple) and all(str(v).strip().isdigit() for v in size):
        width, height = int(size[0]), int(size[1])
    elif codec == "H264":
        sprop = fmtp.get(pt, {}).get("sprop-parameter-sets", "")
        for item in filter(None, sprop.split(",")):
            try:
                nal = base64.b64decode(item + "=" * (-len(item) % 4))
                if nal and nal[0] & 0x1F == 7:
                    width, height = h264_sps_size(nal)
                    break
            except (binascii.Error, ValueError, IndexError):
                continue
    control = section.get("control")
    return MediaDescription(str(section["kind"]), codec, width, height, control if isinstance(control, str) else None)
