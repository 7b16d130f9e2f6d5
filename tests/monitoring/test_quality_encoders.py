"""Frozen or live, as real encoders send them: the picture verdicts on streams from the GStreamer simulator
encoded as school cameras encode (x264 / x265 under bitrate control, a key frame a second, 15 fps, a burnt-in
clock). Before the block-wise frozen check, a hung sensor behind a live encoder was reported `ok`: its frames
differ by compression noise on more than 0.5% of the pixels."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from adapters.frame_grabber import FrameGrabber
from monitoring.quality import diagnose
from simulators.rtsp import RtspServer

# What the patrol uses: two frames two seconds apart, so they come from two different key-frame intervals.
INTERVAL_S = 2.0
# (mount spec, verdict): a sub-stream's usual 512 kbit/s and a generous 1 Mbit/s, in both codecs.
CASES = [
    ("frozen:h264:512", "frozen"),
    ("frozen:h264:1024", "frozen"),
    ("frozen:h265:512", "frozen"),
    ("still:h264:512", "ok"),
    ("still:h265:512", "ok"),
    ("still:h264:256", "ok"),
    ("moving:h264:512", "ok"),
]


@pytest.fixture(scope="module")
def encoder_server() -> Iterator[RtspServer]:
    with RtspServer({spec.replace(":", "-"): spec for spec, _ in CASES}) as server:
        yield server


async def test_a_hung_sensor_behind_a_live_encoder_is_frozen_and_a_live_still_scene_is_not(
    encoder_server: RtspServer,
) -> None:
    async with FrameGrabber(workers=len(CASES)) as grabber:
        grabs = await asyncio.gather(
            *(
                grabber.grab(spec, encoder_server.url(spec.replace(":", "-")), interval_s=INTERVAL_S)
                for spec, _ in CASES
            )
        )
    verdicts = {}
    for (spec, _), grab in zip(CASES, grabs, strict=True):
        assert grab.failure is None, grab.error
        diagnosis = diagnose(grab.latest, grab.previous)
        assert diagnosis.check("frozen") is not None  # two frames came, so the frozen check ran
        verdicts[spec] = diagnosis.verdict
    assert verdicts == dict(CASES)
