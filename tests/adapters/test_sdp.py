"""SDP parsing on what cameras really send."""

from __future__ import annotations

import base64
from pathlib import Path

from adapters.sdp import h264_sps_size, parse_sdp

# Captured from the project's GStreamer RTSP server (simulators/rtsp_server.py), mount /moving.
GSTREAMER_SDP = (Path(__file__).resolve().parents[1] / "data" / "gstreamer_moving.sdp").read_text(encoding="utf-8")

# The layout of a 1080p main stream from a common Chinese IPC vendor (reconstructed from its documented form):
# High profile, 1088 coded lines cropped to 1080.
VENDOR_SDP = """v=0
o=- 1109162014219182 1109162014219192 IN IP4 127.0.0.1
s=Media Presentation
e=NONE
b=AS:5100
t=0 0
a=control:rtsp://127.0.0.1:554/Streaming/Channels/101/
m=video 0 RTP/AVP 96
c=IN IP4 0.0.0.0
b=AS:5000
a=recvonly
a=x-dimensions:1920,1080
a=control:rtsp://127.0.0.1:554/Streaming/Channels/101/trackID=1
a=rtpmap:96 H264/90000
a=fmtp:96 profile-level-id=420029; packetization-mode=1; sprop-parameter-sets=Z00AKpY1QPAET8s3AQEBQAABwgAAV+QB,aO48gA==
m=audio 0 RTP/AVP 8
a=rtpmap:8 PCMA/8000
"""

H265_SDP = """v=0
m=video 0 RTP/AVP 98
a=rtpmap:98 H265/90000
a=fmtp:98 sprop-vps=QAEMAf//AWAAAAMAAAMAAAMAAAMAlqwJ
a=framesize:98 2560-1440
"""


def test_gstreamer_sdp_size_from_the_sps() -> None:
    video = parse_sdp(GSTREAMER_SDP)[0]
    assert (video.kind, video.codec, video.width, video.height) == ("video", "H264", 640, 360)
    assert video.control == "stream=0"


def test_vendor_sdp_with_x_dimensions_and_audio() -> None:
    video, audio = parse_sdp(VENDOR_SDP)
    assert (video.codec, video.width, video.height) == ("H264", 1920, 1080)
    assert (audio.kind, audio.codec) == ("audio", "PCMA")


def test_h265_with_framesize() -> None:
    video = parse_sdp(H265_SDP)[0]
    assert (video.codec, video.width, video.height) == ("H265", 2560, 1440)


def test_sps_with_cropping() -> None:
    # High profile 1920x1080: 120x68 macroblocks (1088 lines) with 8 lines cropped at the bottom.
    sps = base64.b64decode("Z2QAKKzZQHgCJ+XARAAAAwAEAAADAMg8YMZY")
    assert h264_sps_size(sps) == (1920, 1080)


def test_broken_sdp_gives_what_it_can() -> None:
    media = parse_sdp("m=video\na=rtpmap\na=fmtp:96 sprop-parameter-sets=!!!\nm=")
    assert media[0].kind == "video"
    assert media[0].width is None
    assert parse_sdp("garbage\x00\x01") == []
