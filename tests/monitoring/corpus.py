"""A labelled picture-quality corpus made from real photographs that scikit-image ships (no download).

Each photograph is framed like a CCTV picture (640x360) and each fault applied at several strengths, as the fault
looks in the field; clean pictures are varied too (JPEG compression, sensor noise, exposure, a slightly soft lens)
and must stay `ok`. Half the scenes carry an on-screen clock as Chinese CCTV cameras burn in: the camera draws it
after the lens and sensor, so it stays sharp on a blurred or covered picture and ticks on a frozen one when a
recorder draws it.

The strengths were chosen from what the faults look like, before the detector was measured on them, and the gap
between "sharp enough" and "blurred" is left unlabelled on purpose: a soft picture (Gaussian sigma 1-2 px at 640
wide) is a matter of taste, not a fault a patrol must report.

Full-frame textures (brick, grass, gravel) serve as clean pictures and for the faults that do not depend on the
content. They are not blurred or covered: a fine texture blurred is a flat grey field, which is exactly what a
covered lens shows, so one frame cannot tell them apart, and no school camera looks at a wall filling its frame.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray
from skimage import data

Frame = NDArray[Any]  # BGR, uint8 by convention (OpenCV's stubs type its results loosely)
WIDTH, HEIGHT = 640, 360


def photo(name: str) -> Callable[[], NDArray[np.uint8]]:
    """A loader for one of scikit-image's photographs (its stubs leave them untyped)."""

    def load() -> NDArray[np.uint8]:
        image = getattr(data, name)()
        if name == "stereo_motorcycle":
            image = image[0]  # the left view of the stereo pair
        return np.asarray(image, np.uint8)

    return load


Loader = Callable[[], NDArray[np.uint8]]
SCENES: dict[str, Loader] = {
    "astronaut": photo("astronaut"),  # a person, indoors, colourful
    "camera": photo("camera"),  # a person outdoors, grey
    "rocket": photo("rocket"),  # outdoors at dusk: dark-ish but fine
    "motorcycle": photo("stereo_motorcycle"),  # a garage
    "coins": photo("coins"),  # grey objects on a plain background
}
# Close-ups filled by one warm subject (a ginger cat; a brown cup on a brown table). No frame statistic can tell
# their hue from a colour cast (no surface in them is grey), so they take every fault except a cast, and their
# clean pictures are kept out of the `ok` set: `warm_close_ups()` yields them for the per-camera override test.
WARM: dict[str, Loader] = {"chelsea": photo("chelsea"), "coffee": photo("coffee")}
TEXTURES: dict[str, Loader] = {"brick": photo("brick"), "grass": photo("grass"), "gravel": photo("gravel")}


@dataclass(frozen=True, slots=True)
class Sample:
    name: str
    label: str
    frame: Frame
    previous: Frame


def cctv(image: NDArray[np.uint8]) -> Frame:
    """The photograph cropped to 16:9 and scaled to 640x360 BGR, like a sub-stream."""
    if image.ndim == 2:
        image = np.dstack([image] * 3)
    bgr = cv2.cvtColor(np.ascontiguousarray(image[..., :3]), cv2.COLOR_RGB2BGR)
    height, width = bgr.shape[:2]
    crop_h = min(height, int(width * 9 / 16))
    crop_w = min(width, int(crop_h * 16 / 9))
    top, left = (height - crop_h) // 2, (width - crop_w) // 2
    return cv2.resize(bgr[top : top + crop_h, left : left + crop_w], (WIDTH, HEIGHT), interpolation=cv2.INTER_AREA)


def noise(frame: Frame, sigma: float, rng: np.random.Generator) -> Frame:
    """Sensor noise, in luma only (a camera's ISP smooths the colour noise away)."""
    field = rng.standard_normal(frame.shape[:2], dtype=np.float32) * np.float32(sigma)
    if frame.ndim == 3:
        field = field[..., np.newaxis]
    noisy = frame.astype(np.float32) + field
    return np.clip(noisy, 0, 255).astype(np.uint8)


def jpeg(frame: Frame, quality: int) -> Frame:
    _, encoded = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, quality])
    decoded = cv2.imdecode(encoded, cv2.IMREAD_COLOR)
    assert decoded is not None
    return np.asarray(decoded, dtype=np.uint8)


def gain(frame: Frame, factor: float, offset: float = 0.0) -> Frame:
    scaled: Frame = np.clip(frame.astype(np.float32) * factor + offset, 0, 255).astype(np.uint8)
    return scaled


def luma(frame: Frame) -> float:
    return float(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY).mean())


def dead_channel(frame: Frame, channel: int) -> Frame:
    """One primary gone (0 blue, 2 red): a loose colour cable, a failed sensor channel."""
    out = frame.copy()
    out[..., channel] = 0
    return out


def tint(frame: Frame, bgr: tuple[int, int, int], alpha: float) -> Frame:
    """A coloured film over the picture (a tinted dome, a colour filter stuck in)."""
    solid = np.zeros_like(frame)
    solid[:] = bgr
    return cv2.addWeighted(frame, 1 - alpha, solid, alpha, 0)


def motion_blur(frame: Frame, length: int, angle_deg: float) -> Frame:
    """A camera shaking on its pole, or a long exposure at night."""
    kernel = np.zeros((length, length), np.float32)
    kernel[length // 2, :] = 1.0
    rotation = cv2.getRotationMatrix2D((length / 2 - 0.5, length / 2 - 0.5), angle_deg, 1.0)
    rotated = cv2.warpAffine(kernel, rotation, (length, length))
    return cv2.filter2D(frame, -1, rotated / rotated.sum())


def osd(frame: Frame, second: int) -> Frame:
    """The camera's burnt-in date and time, white with a dark outline, top left."""
    out = frame.copy()
    text = f"2026-11-28 23:45:{second:02d}"
    for color, thickness in (((0, 0, 0), 3), ((255, 255, 255), 1)):
        cv2.putText(out, text, (12, 28), cv2.FONT_HERSHEY_SIMPLEX, 0.6, color, thickness, cv2.LINE_AA)
    return out


def moved(frame: Frame, rng: np.random.Generator) -> Frame:
    """The same scene a few seconds later with someone walking: a patch of 2% of the picture moved."""
    out = frame.copy()
    h, w = 50, 92  # about 2% of 640x360
    top, left = int(rng.integers(40, HEIGHT - h - 40)), int(rng.integers(40, WIDTH - w - 40))
    out[top + 6 : top + 6 + h, left + 10 : left + 10 + w] = frame[top : top + h, left : left + w]
    return out


def covered(frame: Frame, grey: int, rng: np.random.Generator) -> Frame:
    """Something over the lens: light leaking round a hand (dark), tape (mid grey), cloth or frosting (light)."""
    # Blurred with sigma 40 px: done at 1/8 size and scaled back, the same picture at a hundredth of the cost.
    small = cv2.resize(frame, (WIDTH // 8, HEIGHT // 8), interpolation=cv2.INTER_AREA)
    blurred = cv2.GaussianBlur(small, (0, 0), 5)
    leak = cv2.resize(blurred, (frame.shape[1], frame.shape[0]), interpolation=cv2.INTER_LINEAR).astype(np.float32)
    return noise(np.clip(leak * 0.15 + grey * 0.85, 0, 255).astype(np.uint8), 1.5, rng)


def _faults(base: Frame, rng: np.random.Generator, *, content: bool, cast: bool) -> Iterator[tuple[str, str, Frame]]:
    """(name, label, frame) for each fault at each strength; `content` = faults whose look depends on the scene."""
    for strength in (0.0, 0.03, 0.06):  # no video (a DVR's black screen), a dead sensor with a trace left
        yield f"black{strength}", "black", noise(gain(base, strength), 2.0, rng)
    for level in (22, 32, 40):  # an unlit yard at night, mean luma; darker still is `black` (ffmpeg's rule)
        yield f"dark{level}", "too_dark", noise(gain(base, level / luma(base)), 2.0, rng)
    for factor, offset in ((1.8, 120), (0.5, 190), (2.5, 60)):  # sun on the lens, a failed iris, gain stuck high
        yield f"bright{factor}", "too_bright", gain(base, factor, offset)
    for name, frame in (
        # Field causes: a loose colour cable or a failed sensor channel (one primary gone), an IR-cut filter stuck
        # in daylight (purple-pink), a green tint from a wrong YUV layout, a tinted or dirty dome.
        ("no-red", dead_channel(base, 2)),
        ("no-blue", dead_channel(base, 0)),
        ("ir-cut", tint(base, (200, 40, 170), 0.35)),
        ("green", tint(base, (40, 200, 40), 0.35)),
        ("dome", tint(base, (40, 90, 210), 0.3)),
    ):
        if cast:
            yield f"cast-{name}", "color_cast", frame
    if not content:
        return
    for sigma in (3.0, 5.0, 8.0):  # out of focus, a smeared or fogged window
        yield f"blur{sigma}", "blurred", noise(cv2.GaussianBlur(base, (0, 0), sigma), 1.5, rng)
    for length, angle in ((15, 0.0), (25, 35.0)):
        yield f"shake{length}", "blurred", noise(motion_blur(base, length, angle), 1.5, rng)
    for grey in (35, 90, 150):
        yield f"covered{grey}", "covered", covered(base, grey, rng)


def _clean(base: Frame, rng: np.random.Generator) -> Iterator[tuple[str, Frame]]:
    yield "as-is", base
    yield "jpeg30", jpeg(base, 30)
    yield "noise5", noise(base, 5.0, rng)  # a cheap sensor in poor light
    yield "gain0.8", gain(base, 0.8)
    yield "gain1.15", gain(base, 1.15, 10)
    yield "soft0.8", cv2.GaussianBlur(base, (0, 0), 0.8)  # a slightly soft lens: still a usable picture
    yield "soft-jpeg", jpeg(cv2.GaussianBlur(base, (0, 0), 1.0), 50)


@cache
def corpus() -> tuple[Sample, ...]:
    """The corpus, built once per test session (it takes a second or two)."""
    return tuple(samples())


def warm_close_ups(seed: int = 7) -> Iterator[Sample]:
    """Clean pictures of the warm close-ups, which the default colour-cast check flags (see `WARM`)."""
    rng = np.random.default_rng(seed)
    for scene, load in WARM.items():
        base = cctv(load())
        for name, frame in _clean(base, rng):
            yield Sample(f"{scene}/ok-{name}", "ok", frame, noise(frame, 1.5, rng))


def samples(seed: int = 2926) -> Iterator[Sample]:
    """The labelled corpus: every scene clean and with every fault, half of them with a burnt-in clock."""
    rng = np.random.default_rng(seed)
    photos = [(name, load, "scene") for name, load in SCENES.items()]
    photos += [(name, load, "warm") for name, load in WARM.items()]
    photos += [(name, load, "texture") for name, load in TEXTURES.items()]
    for index, (scene, load, kind) in enumerate(photos):
        base = cctv(load())
        clock = index % 2 == 0

        def shown(frame: Frame, second: int, *, clock: bool = clock) -> Frame:
            return osd(frame, second) if clock else frame

        def live(frame: Frame) -> Frame:
            """The frame a live camera sends a few seconds later: the same still scene, new sensor noise."""
            return noise(frame, 1.5, rng)

        if kind != "warm":
            for name, frame in _clean(base, rng):
                yield Sample(f"{scene}/ok-{name}", "ok", shown(frame, 9), shown(live(frame), 7))
        for name, label, frame in _faults(base, rng, content=kind != "texture", cast=kind != "warm"):
            yield Sample(f"{scene}/{name}", label, shown(frame, 9), shown(live(frame), 7))
        # Not frozen: someone walks through an otherwise still scene, with only faint sensor noise.
        still = noise(base, 0.6, rng)
        if kind != "warm":
            yield Sample(f"{scene}/ok-walker", "ok", shown(moved(still, rng), 9), shown(still, 7))
        # Frozen: the encoder repeats its last picture (re-encoded identically), or a recorder draws its live
        # clock over a camera picture that stopped.
        frame = jpeg(base, 60)
        yield Sample(f"{scene}/frozen", "frozen", shown(frame, 9), shown(frame.copy(), 9))
        if not clock:
            yield Sample(f"{scene}/frozen-recorder-clock", "frozen", osd(frame, 9), osd(frame, 7))
