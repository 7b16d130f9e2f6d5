# ruff: noqa: E501  (captured SDP lines are kept verbatim: a camera sends each attribute on one line)
"""SDP parsing on what cameras really send: SDPs captured from the project's GStreamer server, and vendor SDPs
in their documented layout with parameter sets made by real encoders (x264, x265) at known sizes."""

from __future__ import annotations

import base64

import pytest

from adapters.rtsp.sdp import h264_sps_size, h265_sps_size, parse_sdp
from tests.fixtures.paths import DATA

# Captured from the project's GStreamer RTSP server (simulators/rtsp_server.py), mount /moving.
GSTREAMER_SDP = (DATA / "gstreamer_moving.sdp").read_text(encoding="utf-8")

# Captured from the same server, mount `hevc=moving:h265` (x265enc, 640x360).
GSTREAMER_H265_SDP = """v=0
o=- 4120613292329157833 1 IN IP4 127.0.0.1
s=Session streamed with GStreamer
i=rtsp-server
t=0 0
a=tool:GStreamer
a=type:broadcast
a=control:*
a=range:npt=now-
m=video 0 RTP/AVP 96
c=IN IP4 0.0.0.0
a=rtpmap:96 H265/90000
a=framerate:5
a=fmtp:96 sprop-vps=QAEMAf//AWAAAAMAkAAAAwAAAwA/ugJA;sprop-sps=QgEBAWAAAAMAkAAAAwAAAwA/oAUCAXHy5bpKTC//AAEAAWoMDAwIAAADAAgAAAMAKEA=;sprop-pps=RAHAcYMS
a=control:stream=0
a=ts-refclk:local
a=mediaclk:sender
a=ssrc:3657888007 cname:user2799976624@host-7ab3f093
"""

# Hikvision's layout (main stream, /Streaming/Channels/101): x-dimensions beside the parameter sets, PCMA audio.
HIKVISION_SDP = """v=0
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
a=Media_header:MEDIAINFO=494D4B48010200000400000100000000000000000000000000000000000000000000000000000000;
a=appversion:1.0
m=audio 0 RTP/AVP 8
c=IN IP4 0.0.0.0
b=AS:50
a=recvonly
a=control:rtsp://127.0.0.1:554/Streaming/Channels/101/trackID=2
a=rtpmap:8 PCMA/8000
"""

# Hikvision's sub stream (Channels/102) leaves out x-dimensions: the size is in the SPS only (x264, 720x576
# High profile, as a D1 encoder sends).
HIKVISION_SUB_SDP = """v=0
o=- 1109162014219182 1109162014219192 IN IP4 127.0.0.1
s=Media Presentation
t=0 0
m=video 0 RTP/AVP 96
a=control:rtsp://127.0.0.1:554/Streaming/Channels/102/trackID=1
a=rtpmap:96 H264/90000
a=fmtp:96 profile-level-id=64001F; packetization-mode=1; sprop-parameter-sets=Z2QAH6zZQLQk2AtQYGBqUAAAAwAQAAADA8nxYtlg,aO48gA==
"""

# Dahua's layout (/cam/realmonitor?channel=1&subtype=0): no size attribute at all, a fractional frame rate, audio
# and an ONVIF metadata track. The SPS is x264's for 1920x1080 (1088 coded lines cropped to 1080).
DAHUA_SDP = """v=0
o=- 2251938208 2251938208 IN IP4 0.0.0.0
s=Media Server
c=IN IP4 0.0.0.0
t=0 0
a=control:*
a=packetization-supported:DH
a=rtppayload-supported:DH
a=range:npt=now-
m=video 0 RTP/AVP 96
a=control:trackID=0
a=framerate:25.000000
a=rtpmap:96 H264/90000
a=fmtp:96 packetization-mode=1;profile-level-id=42C028;sprop-parameter-sets=Z0LAKNoB4AiflwFqAgICgAAAAwCAAAAeR4wZUA==,aM48gA==
a=recvonly
m=audio 0 RTP/AVP 8
a=control:trackID=1
a=rtpmap:8 PCMA/8000
a=recvonly
m=application 0 RTP/AVP 107
a=control:trackID=4
a=rtpmap:107 vnd.onvif.metadata/90000
a=recvonly
"""

# Dahua's H.265 main stream: only sprop-vps/sps/pps (x265's, 2560x1440).
DAHUA_H265_SDP = """v=0
o=- 2251938208 2251938208 IN IP4 0.0.0.0
s=Media Server
t=0 0
m=video 0 RTP/AVP 98
a=control:trackID=0
a=framerate:25.000000
a=rtpmap:98 H265/90000
a=fmtp:98 profile-id=1;sprop-sps=QgEBAWAAAAMAkAAAAwAAAwCWoAFAIAWhZZWVKTC//AAEAAWoCAgIIAAAAwAgAAADA8E=;sprop-pps=RAHAc8GJ;sprop-vps=QAEMAf//AWAAAAMAkAAAAwAAAwCWlZQJ
a=recvonly
"""

FRAMESIZE_SDP = """v=0
m=video 0 RTP/AVP 98
a=rtpmap:98 H265/90000
a=fmtp:98 sprop-vps=QAEMAf//AWAAAAMAAAMAAAMAAAMAlqwJ
a=framesize:98 2560-1440
"""

MJPEG_SDP = "v=0\nm=video 0 RTP/AVP 26\na=control:trackID=1\n"


@pytest.mark.parametrize(
    ("sdp", "codec", "size", "framerate"),
    [
        (GSTREAMER_SDP, "H264", (640, 360), 5.0),
        (GSTREAMER_H265_SDP, "H265", (640, 360), 5.0),
        (HIKVISION_SDP, "H264", (1920, 1080), None),
        (HIKVISION_SUB_SDP, "H264", (720, 576), None),
        (DAHUA_SDP, "H264", (1920, 1080), 25.0),
        (DAHUA_H265_SDP, "H265", (2560, 1440), 25.0),
        (FRAMESIZE_SDP, "H265", (2560, 1440), None),
        (MJPEG_SDP, "JPEG", (None, None), None),
    ],
    ids=["gstreamer", "gstreamer-h265", "hikvision", "hikvision-sub", "dahua", "dahua-h265", "framesize", "mjpeg"],
)
def test_video_codec_size_and_rate(
    sdp: str, codec: str, size: tuple[int | None, int | None], framerate: float | None
) -> None:
    video = parse_sdp(sdp)[0]
    assert (video.kind, video.codec, (video.width, video.height), video.framerate) == (
        "video",
        codec,
        size,
        framerate,
    )


def test_every_media_section_is_listed_with_its_control() -> None:
    kinds = [(m.kind, m.codec, m.control) for m in parse_sdp(DAHUA_SDP)]
    assert kinds == [
        ("video", "H264", "trackID=0"),
        ("audio", "PCMA", "trackID=1"),
        ("application", "VND.ONVIF.METADATA", "trackID=4"),
    ]
    assert parse_sdp(GSTREAMER_SDP)[0].control == "stream=0"


@pytest.mark.parametrize(
    ("sps", "size"),
    [
        ("Z0LAFtoCgL/lwFqDAwNSgAAAAwCAAAAFR4sXUA==", (640, 360)),  # baseline, 368 coded lines cropped by 8
        ("Z2QAKKzZQHgCJ+XARAAAAwAEAAADAMg8YMZY", (1920, 1080)),  # high profile 4:2:0, 1088 cropped to 1080
        ("Z/QAKJGWgHgCJ+JwFqAgICgAAAMACAAAAwHkeMGV", (1920, 1080)),  # high 4:4:4: crop units of 1 sample
    ],
)
def test_h264_sps_with_cropping(sps: str, size: tuple[int, int]) -> None:
    assert h264_sps_size(base64.b64decode(sps)) == size


def test_h265_sps_conformance_window() -> None:
    # x265 codes 1916x1074 as 1920x1080 with a conformance window of 2 and 3 chroma samples.
    sps = base64.b64decode("QgEBAWAAAAMAkAAAAwAAAwB4oAPAgBEHcRllZUpML/8AAQABagICAggAAAMACAAAAwDwQA==")
    assert h265_sps_size(sps) == (1916, 1074)


def test_truncated_sps_is_refused_not_misread() -> None:
    sps = base64.b64decode("Z0LAFtoCgL/lwFqDAwNSgAAAAwCAAAAFR4sXUA==")
    with pytest.raises(ValueError, match="ends early"):
        h264_sps_size(sps[:6])


def test_broken_sdp_gives_what_it_can() -> None:
    media = parse_sdp("m=video\na=rtpmap\na=fmtp:96 sprop-parameter-sets=!!!\na=framerate:fast\nm=")
    assert media[0].kind == "video"
    assert (media[0].width, media[0].framerate) == (None, None)
    assert parse_sdp("garbage\x00\x01") == []
    truncated_sps = DAHUA_SDP.replace("Z0LAKNoB4AiflwFqAgICgAAAAwCAAAAeR4wZUA==", "Z0LAKNoB")
    assert (parse_sdp(truncated_sps)[0].codec, parse_sdp(truncated_sps)[0].width) == ("H264", None)
