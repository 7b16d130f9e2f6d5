"""A held-out picture-quality set: pictures and streams the thresholds were never tuned on.

`tests/monitoring/corpus.py` tuned and tested the thresholds at once; this set was written after them and is
not to be tuned on (a threshold change that helps here must be argued from what the fault looks like, and the
set grown). It has two parts:

- photographs from scikit-image that the corpus does not use (the right view of the garage, the moon's grey
  surface, a printed page, a handwritten one), with the faults at strengths the corpus does not use;
- streams encoded as real cameras encode them, by FFmpeg's x264 and x265 (a tool we did not write): bitrate
  control (a VBV buffer of half a second), a key frame every 1 or 2 s, 15 or 25 fps, a burnt-in clock ticking
  every second, one encoding thread (so a clip always encodes the same). Two frames 2 s apart are decoded from
  each, as the patrol grabs them from an encoder that has been running (a key frame, then the frame 2 s later):
  a live still scene (sensor noise new in every frame, someone walking through) must stay `ok`; a hung sensor
  behind the live encoder (the same picture, re-encoded, the clock still ticking) must be `frozen`; black,
  covered and dark pictures keep their verdicts through the codec.

Everything is generated at test time (under a minute on two cores): nothing binary is stored.
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray
from skimage import data

from tests.monitoring.corpus import (
    HEIGHT,
    WIDTH,
    Frame,
    Sample,
    cctv,
    covered,
    dead_channel,
    gain,
    jpeg,
    luma,
    motion_blur,
    moved,
    noise,
    tint,
)

# FFmpeg's own time-out for one clip: it encodes 3 s of 640x360 in well under a second.
ENCODE_TIMEOUT_S = 60.0
# A camera's encoder has been running for days when the patrol opens its stream: its rate control has settled.
# FFmpeg's starts from a guessed quantizer and takes seconds to settle (x264's first key frames of a still
# picture differ by up to 5 grey levels per block, its key frames 4 s in by none), so the frames are taken after
# WARM_UP_S. The grabber's first frame is a key frame (decoding can only start at one) and its second the frame
# 2 s of stream time later: with a key frame every 1 or 2 s, a key frame too.
WARM_UP_S = 4.0
FIRST_AT_S, SECOND_AT_S = WARM_UP_S, WARM_UP_S + 2.0
CLIP_S = SECOND_AT_S + 0.2


# Scenes that fill the frame with one texture (a grey surface, a handwritten page) take only the faults that do
# not depend on the content, as the corpus's textures do: blurred or covered, a texture is a flat field.
TEXTURES = ("moon", "text")


def _scenes() -> dict[str, NDArray[np.uint8]]:
    # scikit-image's loaders are untyped: taken by name, as the corpus does.
    loader = "stereo_motorcycle"
    garage = np.asarray(getattr(data, loader)()[1], np.uint8)  # the right view; the corpus has the left
    return {"garage-right": garage} | {
        name: np.asarray(getattr(data, load)(), np.uint8)
        # Not scikit-image's `cell`: clean, that microscope picture is as soft as a 4 px blur, not an `ok` camera
        # picture. `text` (a photographed page of handwriting) is sharp and fills the frame, like the corpus's
        # textures, which it does not share.
        for name, load in (("moon", "moon"), ("page", "page"), ("text", "text"))
    }


def clock(frame: Frame, second: int) -> Frame:
    """A camera's clock as another vendor draws it: bottom right, white on a dark box."""
    out = frame.copy()
    text = f"2026-12-01 08:{second // 60:02d}:{second % 60:02d}"
    (w, h), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_PLAIN, 1.2, 1)
    x, y = WIDTH - w - 14, HEIGHT - 14
    cv2.rectangle(out, (x - 4, y - h - 4), (x + w + 4, y + 4), (16, 16, 16), -1)
    cv2.putText(out, text, (x, y), cv2.FONT_HERSHEY_PLAIN, 1.2, (235, 235, 235), 1, cv2.LINE_AA)
    return out


def encode_and_grab(frames: list[Frame], fps: int, codec: str, kbps: int, gop_s: float) -> tuple[Frame, Frame]:
    """The clip through FFmpeg's encoder at a bit rate, decoded back; the frames at FIRST_AT_S and SECOND_AT_S."""
    encoder = {
        "h264": ["libx264", "-x264-params", "log-level=error"],
        "h265": ["libx265", "-x265-params", "log-level=error:pools=1:frame-threads=1"],
    }[codec]
    with tempfile.TemporaryDirectory() as folder:
        clip = Path(folder) / "clip.mkv"
        command = ["ffmpeg", "-v", "error", "-f", "rawvideo", "-pix_fmt", "bgr24", "-s", f"{WIDTH}x{HEIGHT}"]
        # One encoding thread (x265: one pool, one frame thread): x264 and x265 share their rate control between
        # frame threads, so under load two runs of the same clip gave other quantizers and other frames (other
        # verdicts from one run to the next); a camera's encoder chip is deterministic.
        command += ["-r", str(fps), "-i", "-", "-c:v", *encoder, "-threads", "1"]
        command += ["-preset", "ultrafast", "-tune", "zerolatency"]
        command += ["-b:v", f"{kbps}k", "-maxrate", f"{kbps}k", "-bufsize", f"{kbps // 2}k"]
        command += ["-g", str(round(gop_s * fps)), "-pix_fmt", "yuv420p", str(clip)]
        subprocess.run(command, input=b"".join(f.tobytes() for f in frames), check=True, timeout=ENCODE_TIMEOUT_S)
        capture = cv2.VideoCapture(str(clip), cv2.CAP_FFMPEG)
        decoded = []
        try:
            while True:
                ok, frame = capture.read()
                if not ok:
                    break
                decoded.append(np.asarray(frame))
        finally:
            capture.release()
    assert len(decoded) == len(frames), f"decoded {len(decoded)} of {len(frames)} frames"
    return decoded[round(FIRST_AT_S * fps)], decoded[round(SECOND_AT_S * fps)]


def _stream_samples(rng: np.random.Generator) -> Iterator[Sample]:
    settings = [("h264", 512, 1.0, 15), ("h265", 512, 2.0, 25), ("h264", 1024, 2.0, 25), ("h265", 768, 1.0, 15)]
    # Each scene also through a second encoder setting (added with the warm-up: streams the frozen check's
    # thresholds had not seen), for the live and hung pictures only.
    second_settings = [("h265", 1024, 1.0, 25), ("h264", 768, 2.0, 15), ("h265", 640, 2.0, 15), ("h264", 512, 2.0, 25)]
    runs = [(index, scene, image, settings[index]) for index, (scene, image) in enumerate(_scenes().items())]
    runs += [
        (4 + index, scene, image, second_settings[index]) for index, (scene, image) in enumerate(_scenes().items())
    ]
    for index, scene, image, (codec, kbps, gop_s, fps) in runs:
        base = cctv(image)
        count = round(CLIP_S * fps)
        tag = f"{scene}/stream-{codec}-{kbps}k-gop{gop_s:g}s-{fps}fps"

        def clip(
            pictures: list[Frame], fps: int = fps, codec: str = codec, kbps: int = kbps, gop_s: float = gop_s
        ) -> tuple[Frame, Frame]:
            ticking = [clock(p, 5 + i // fps) for i, p in enumerate(pictures)]
            return encode_and_grab(ticking, fps, codec, kbps, gop_s)

        # Live, nothing moving: a new sensor noise in every frame (a sensor in daylight, sigma 1.5-2.5).
        sigma = 1.5 + index % 3 * 0.5
        first, second = clip([noise(base, sigma, rng) for _ in range(count)])
        yield Sample(f"{tag}/ok-still", "ok", second, first)
        # Live: someone walks through a still scene seen by a quiet sensor, whose noise is new in every frame.
        walked, arrives = moved(base, rng), round((FIRST_AT_S + SECOND_AT_S) / 2 * fps)
        walking = [noise(base if i < arrives else walked, 0.8, rng) for i in range(count)]
        first, second = clip(walking)
        yield Sample(f"{tag}/ok-walker", "ok", second, first)
        # Frozen: the sensor or ISP hung on its last picture, which the ISP had denoised (3D noise reduction
        # leaves some 0.5 grey levels): the encoder re-encodes it, the clock ticks on. (A picture hung with a
        # raw sensor's full noise in it re-encodes with noise as large as a live sensor's: see the report in
        # test_quality_accuracy.py.)
        hung = noise(base, 0.5, rng)
        first, second = clip([hung] * count)
        yield Sample(f"{tag}/frozen", "frozen", second, first)
        if index >= 2:
            continue  # the faults through the codec on two scenes, one setting, are enough (a clip costs a second)
        # Faults keep their verdict through the codec.
        for label, picture in (
            ("black", noise(gain(base, 0.04), 2.0, rng)),
            ("covered", covered(base, 70, rng)),
            ("too_dark", noise(gain(base, 30 / luma(base)), 2.0, rng)),
        ):
            first, second = clip([noise(picture, 1.0, rng) for _ in range(count)])
            yield Sample(f"{tag}/{label}", label, second, first)


def _picture_samples(rng: np.random.Generator) -> Iterator[Sample]:
    """The held-out photographs, clean and with each fault at strengths the corpus does not use."""
    for scene, image in _scenes().items():
        base = cctv(image)

        def live(frame: Frame) -> Frame:
            return noise(frame, 1.8, rng)

        pictures: list[tuple[str, str, Frame]] = [
            ("ok-as-is", "ok", base),
            ("ok-jpeg40", "ok", jpeg(base, 40)),
            ("ok-noise3", "ok", noise(base, 3.0, rng)),
            ("ok-gain0.9", "ok", gain(base, 0.9)),
            ("ok-soft0.7", "ok", cv2.GaussianBlur(base, (0, 0), 0.7)),
            ("black0.02", "black", noise(gain(base, 0.02), 1.5, rng)),
            ("black0.05", "black", noise(gain(base, 0.05), 2.5, rng)),
            ("dark27", "too_dark", noise(gain(base, 27 / luma(base)), 2.0, rng)),
            ("dark36", "too_dark", noise(gain(base, 36 / luma(base)), 2.0, rng)),
            ("bright2.0", "too_bright", gain(base, 2.0, 90)),
            ("bright0.6", "too_bright", gain(base, 0.6, 170)),
            ("cast-no-green", "color_cast", dead_channel(base, 1)),
            ("cast-magenta", "color_cast", tint(base, (180, 30, 200), 0.4)),
            ("cast-yellow", "color_cast", tint(base, (20, 190, 210), 0.35)),
            ("blur4", "blurred", noise(cv2.GaussianBlur(base, (0, 0), 4.0), 1.5, rng)),
            ("blur6", "blurred", noise(cv2.GaussianBlur(base, (0, 0), 6.0), 1.5, rng)),
            ("shake20", "blurred", noise(motion_blur(base, 20, 60.0), 1.5, rng)),
            ("covered60", "covered", covered(base, 60, rng)),
            ("covered120", "covered", covered(base, 120, rng)),
        ]
        for name, label, frame in pictures:
            if scene in TEXTURES and label in ("blurred", "covered"):
                continue
            yield Sample(f"{scene}/{name}", label, frame, live(frame))
        frame = jpeg(base, 50)
        yield Sample(f"{scene}/frozen", "frozen", clock(frame, 7), clock(frame, 5))


@cache
def heldout() -> tuple[Sample, ...]:
    """The held-out set, built once per test session."""
    rng = np.random.default_rng(1201)
    return tuple(_picture_samples(rng)) + tuple(_stream_samples(rng))
