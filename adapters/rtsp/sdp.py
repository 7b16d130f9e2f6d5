"""SDP (RFC 8866) as RTSP cameras send it: codec and picture size of each media section.

The size comes from `a=framesize` / `a=x-dimensions` where the camera sends them, else from the sequence
parameter set carried in the fmtp line: `sprop-parameter-sets` for H.264 (RFC 6184) or `sprop-sps` for H.265
(RFC 7798). Cameras from the big Chinese vendors usually send only the parameter sets, so decoding the SPS is what
gives their size. Parsing is forgiving: a line that cannot be understood is passed over, never raised.
"""

from __future__ import annotations

import base64
import binascii
import functools
from dataclasses import dataclass, field

# H.264 profile_idc values whose SPS carries chroma_format_idc and bit depths (ITU-T H.264 7.3.2.1.1).
_H264_HIGH_PROFILES = frozenset({100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135})
# exp-Golomb codes longer than this do not occur in a valid SPS: a guard against garbage looping.
_MAX_GOLOMB_ZEROS = 31
_H264_NAL_SPS = 7
_H265_NAL_SPS = 33
# RTP/AVP static payload type for JPEG (RFC 3551 table 5): sent without an rtpmap line.
_PT_JPEG = "26"


# Decoded sizes kept per SPS: a camera sends the same parameter sets in every DESCRIBE, and decoding them bit by
# bit was most of the cost of reading an SDP (a parse took 84 µs, 12 µs with the cache). Cameras of one model and
# setting share an SPS.
SPS_CACHE_SIZE = 1024


@dataclass(frozen=True, slots=True)
class MediaDescription:
    kind: str  # video, audio, application
    codec: str | None  # H264, H265, JPEG, PCMA...
    width: int | None
    height: int | None
    control: str | None
    framerate: float | None = None
    # SPS/PPS (H.264) or VPS/SPS/PPS (H.265) NAL units from the fmtp line, for a relay to put before key frames.
    parameter_sets: tuple[bytes, ...] = ()


class _Bits:
    """A big-endian bit reader over an RBSP (emulation-prevention bytes already removed)."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    def u(self, n: int) -> int:
        if self._pos + n > len(self._data) * 8:
            raise ValueError("parameter set ends early")
        value = 0
        for _ in range(n):
            byte = self._data[self._pos >> 3]
            value = (value << 1) | ((byte >> (7 - (self._pos & 7))) & 1)
            self._pos += 1
        return value

    def skip(self, n: int) -> None:
        if self._pos + n > len(self._data) * 8:
            raise ValueError("parameter set ends early")
        self._pos += n

    def ue(self) -> int:
        zeros = 0
        while self.u(1) == 0:
            zeros += 1
            if zeros > _MAX_GOLOMB_ZEROS:
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


def _skip_h264_scaling_lists(bits: _Bits, count: int) -> None:
    for index in range(count):
        if bits.u(1):  # seq_scaling_list_present_flag
            last = next_ = 8
            for _ in range(16 if index < 6 else 64):
                if next_ != 0:
                    next_ = (last + bits.se() + 256) % 256
                last = next_ if next_ != 0 else last


@functools.lru_cache(maxsize=SPS_CACHE_SIZE)
def h264_sps_size(sps: bytes) -> tuple[int, int]:
    """Picture width and height from an H.264 SPS NAL unit (with its one-byte header), cropping applied."""
    bits = _Bits(_unescape(sps[1:]))
    profile = bits.u(8)
    bits.skip(16)  # constraint flags, level_idc
    bits.ue()  # seq_parameter_set_id
    chroma = 1  # 4:2:0 unless a high profile says otherwise
    separate_planes = 0
    if profile in _H264_HIGH_PROFILES:
        chroma = bits.ue()
        if chroma == 3:
            separate_planes = bits.u(1)
        bits.ue()  # bit_depth_luma_minus8
        bits.ue()  # bit_depth_chroma_minus8
        bits.skip(1)  # qpprime_y_zero_transform_bypass_flag
        if bits.u(1):  # seq_scaling_matrix_present_flag
            _skip_h264_scaling_lists(bits, 12 if chroma == 3 else 8)
    bits.ue()  # log2_max_frame_num_minus4
    poc_type = bits.ue()
    if poc_type == 0:
        bits.ue()  # log2_max_pic_order_cnt_lsb_minus4
    elif poc_type == 1:
        bits.skip(1)
        bits.se()
        bits.se()
        for _ in range(bits.ue()):
            bits.se()
    bits.ue()  # max_num_ref_frames
    bits.skip(1)  # gaps_in_frame_num_value_allowed_flag
    width_mbs = bits.ue() + 1
    height_units = bits.ue() + 1
    frame_mbs_only = bits.u(1)
    if not frame_mbs_only:
        bits.skip(1)  # mb_adaptive_frame_field_flag
    bits.skip(1)  # direct_8x8_inference_flag
    left = right = top = bottom = 0
    if bits.u(1):  # frame_cropping_flag
        left, right, top, bottom = bits.ue(), bits.ue(), bits.ue(), bits.ue()
    # Crop offsets count in chroma samples (H.264 equations 7-19 to 7-22).
    if chroma == 0 or separate_planes:
        unit_x, unit_y = 1, 2 - frame_mbs_only
    else:
        unit_x = 1 if chroma == 3 else 2
        unit_y = (2 if chroma == 1 else 1) * (2 - frame_mbs_only)
    width = width_mbs * 16 - unit_x * (left + right)
    height = (2 - frame_mbs_only) * height_units * 16 - unit_y * (top + bottom)
    return width, height


def _skip_h265_profile_tier_level(bits: _Bits, max_sub_layers_minus1: int) -> None:
    # general_profile_space .. general_inbld_flag: 2+1+5+32+4+43+1 bits, then general_level_idc (H.265 7.3.3).
    bits.skip(88 + 8)
    present = [(bits.u(1), bits.u(1)) for _ in range(max_sub_layers_minus1)]
    if max_sub_layers_minus1 > 0:
        bits.skip(2 * (8 - max_sub_layers_minus1))  # reserved_zero_2bits
    for profile_present, level_present in present:
        bits.skip(88 * profile_present + 8 * level_present)


@functools.lru_cache(maxsize=SPS_CACHE_SIZE)
def h265_sps_size(sps: bytes) -> tuple[int, int]:
    """Picture width and height from an H.265 SPS NAL unit (with its two-byte header), conformance window applied."""
    bits = _Bits(_unescape(sps[2:]))
    bits.skip(4)  # sps_video_parameter_set_id
    max_sub_layers_minus1 = bits.u(3)
    bits.skip(1)  # sps_temporal_id_nesting_flag
    _skip_h265_profile_tier_level(bits, max_sub_layers_minus1)
    bits.ue()  # sps_seq_parameter_set_id
    chroma = bits.ue()
    separate_planes = bits.u(1) if chroma == 3 else 0
    width = bits.ue()
    height = bits.ue()
    if bits.u(1):  # conformance_window_flag
        left, right, top, bottom = bits.ue(), bits.ue(), bits.ue(), bits.ue()
        # Offsets count in chroma samples (H.265 table 6-1: SubWidthC, SubHeightC).
        sub_width = 2 if chroma in (1, 2) and not separate_planes else 1
        sub_height = 2 if chroma == 1 and not separate_planes else 1
        width -= sub_width * (left + right)
        height -= sub_height * (top + bottom)
    return width, height


def _b64(item: str) -> bytes:
    item = item.strip().replace("\\", "")  # some cameras escape "=" as GStreamer caps do
    return base64.b64decode(item + "=" * (-len(item) % 4), validate=False)


def _size_from_parameter_sets(codec: str | None, params: dict[str, str]) -> tuple[int, int] | None:
    try:
        if codec == "H264":
            for item in filter(None, params.get("sprop-parameter-sets", "").split(",")):
                nal = _b64(item)
                if nal and nal[0] & 0x1F == _H264_NAL_SPS:
                    return h264_sps_size(nal)
        elif codec in ("H265", "HEVC"):
            for item in filter(None, params.get("sprop-sps", "").split(",")):
                nal = _b64(item)
                if len(nal) > 2 and (nal[0] >> 1) & 0x3F == _H265_NAL_SPS:
                    return h265_sps_size(nal)
    except (binascii.Error, ValueError, IndexError):
        return None
    return None


def _parameter_sets(codec: str | None, params: dict[str, str]) -> tuple[bytes, ...]:
    if codec == "H264":
        keys = ["sprop-parameter-sets"]
    elif codec in ("H265", "HEVC"):
        keys = ["sprop-vps", "sprop-sps", "sprop-pps"]
    else:
        return ()
    nals: list[bytes] = []
    for key in keys:
        for item in filter(None, params.get(key, "").split(",")):
            try:
                nal = _b64(item)
            except (binascii.Error, ValueError):
                continue  # a broken set is passed over: the camera repeats them in-band anyway
            if nal:
                nals.append(nal)
    return tuple(nals)


def _fmtp_params(value: str) -> dict[str, str]:
    params = {}
    for item in value.split(";"):
        key, _, val = item.strip().partition("=")
        if key:
            params[key.lower()] = val.strip()
    return params


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


@dataclass(slots=True)
class _Section:
    kind: str
    payload_types: list[str]
    rtpmap: dict[str, str] = field(default_factory=dict)
    fmtp: dict[str, dict[str, str]] = field(default_factory=dict)
    size: tuple[str, str] | None = None
    control: str | None = None
    framerate: float | None = None


def parse_sdp(text: str) -> list[MediaDescription]:
    """Every media section, with what could be learnt of it; unknown or broken lines are passed over."""
    sections: list[_Section] = []
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("m="):
            parts = line[2:].split()
            sections.append(_Section(parts[0] if parts else "", parts[3:]))
            continue
        if not sections or not line.startswith("a="):
            continue
        current = sections[-1]
        attr, _, value = line[2:].partition(":")
        attr = attr.strip().lower()
        if attr == "rtpmap":
            pt, _, encoding = value.strip().partition(" ")
            current.rtpmap[pt] = encoding.split("/")[0].strip().upper()
        elif attr == "fmtp":
            pt, _, params = value.strip().partition(" ")
            current.fmtp[pt] = _fmtp_params(params)
        elif attr == "framesize":  # a=framesize:96 1920-1080 (RealNetworks form, several vendors)
            _, _, size = value.strip().partition(" ")
            w, _, h = size.partition("-")
            current.size = (w, h)
        elif attr == "x-dimensions":  # a=x-dimensions:1920,1080 (Hikvision and others)
            w, _, h = value.partition(",")
            current.size = (w, h)
        elif attr == "framerate":
            current.framerate = _number(value.strip())
        elif attr == "control":
            current.control = value.strip()
    return [_describe(section) for section in sections]


def _describe(section: _Section) -> MediaDescription:
    pt = section.payload_types[0] if section.payload_types else ""
    codec = section.rtpmap.get(pt)
    if codec is None and pt == _PT_JPEG:
        codec = "JPEG"
    size: tuple[int, int] | None = None
    if section.size is not None and all(v.strip().isdigit() for v in section.size):
        size = int(section.size[0]), int(section.size[1])
    else:
        size = _size_from_parameter_sets(codec, section.fmtp.get(pt, {}))
    if codec == "HEVC":
        codec = "H265"  # RFC 7798 names it H265; a few old firmwares wrote HEVC
    return MediaDescription(
        section.kind,
        codec,
        size[0] if size else None,
        size[1] if size else None,
        section.control,
        section.framerate,
        _parameter_sets(codec, section.fmtp.get(pt, {})),
    )
