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
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray
from skimage import data

Frame = NDArray[Any]  # BGR, uint8 by convention (OpenCV's stubs type its results loosely)
WIDTH, HEIGHT = 640, 360


def _motorcycle() -> NDArray[np.uint8]:
    left, _, _ = data.stereo_motorcycle()
    return np.asarray(left)


SCENES: dict[str, Callable[[], NDArray[np.uint8]]] = {
    "astronaut": data.astronaut,  # a person, indoors
    "camera": data.camera,  # a person outdoors, grey
    "chelsea": data.chelsea,  # warm tones: must not read as a colour cast
    "coffee": data.coffee,  # a brown cup on a brown table, close up: warm, low texture
    "rocket": data.rocket,  # outdoors at dusk: dark-ish but fine
    "motorcycle": _motorcycle,  # a garage
    "coins": data.coins,  # grey objects on a plain background
}
TEXTURES: dict[str, Callable[[], NDArray[np.uint8]]] = {
    "brick": data.brick,
    "grass": data.grass,
    "gravel": data.gravel,
}


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
    noisy = frame.astype(np.float32) + rng.normal(0, sigma, frame.shape)
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


def white_balance(frame: Frame, b: float, g: float, r: float) -> Frame:
    """A failed white balance or a colour channel dying: each channel's gain off."""
    balanced: Frame = np.clip(frame.astype(np.float32) * np.float32([b, g, r]), 0, 255).astype(np.uint8)
    return balanced


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
    kernel = cv2.warpAffine(kernel, rotation, (length, length))
    return cv2.filter2D(frame, -1, kernel / kernel.sum())


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
    leak = cv2.GaussianBlur(frame, (0, 0), 40).astype(np.float32)
    return noise(np.clip(leak * 0.15 + grey * 0.85, 0, 255).astype(np.uint8), 1.5, rng)


def _faults(base: Frame, rng: np.random.Generator, *, content: bool) -> Iterator[tuple[str, str, Frame]]:
    """(name, label, frame) for each fault at each strength; `content` = faults whose look depends on the scene."""
    for strength in (0.0, 0.03, 0.06):  # no video (a DVR's black screen), a dead sensor with a trace left
        yield f"black{strength}", "black", noise(gain(base, strength), 2.0, rng)
    for level in (22, 32, 40):  # an unlit yard at night, mean luma; darker still is `black` (ffmpeg's rule)
        yield f"dark{level}", "too_dark", noise(gain(base, level / luma(base)), 2.0, rng)
    for factor, offset in ((1.8, 120), (0.5, 190), (2.5, 60)):  # sun on the lens, a failed iris, gain stuck high
        yield f"bright{factor}", "too_bright", gain(base, factor, offset)
    for name, frame in (
        ("red", white_balance(base, 0.55, 0.8, 1.25)),
        ("blue", white_balance(base, 1.3, 0.95, 0.55)),
        ("green", white_balance(base, 0.6, 1.2, 0.6)),
        ("purple-tint", tint(base, (200, 40, 170), 0.4)),
    ):
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


def samples(seed: int = 2926) -> Iterator[Sample]:
    rng = np.random.default_rng(seed)
    photos = [(name, load, True) for name, load in SCENES.items()]
    photos += [(name, load, False) for name, load in TEXTURES.items()]
    for index, (photo, load, content) in enumerate(photos):
        base = cctv(load())
        clock = index % 2 == 0

        def shown(frame: Frame, second: int, *, clock: bool = clock) -> Frame:
            return osd(frame, second) if clock else frame

        def live(frame: Frame) -> Frame:
            """The frame a live camera sends a few seconds later: the same still scene, new sensor noise."""
            return noise(frame, 1.5, rng)

        for name, frame in _clean(base, rng):
            yield Sample(f"{photo}/ok-{name}", "ok", shown(frame, 9), shown(live(frame), 7))
        for name, label, frame in _faults(base, rng, content=content):
            yield Sample(f"{photo}/{name}", label, shown(frame, 9), shown(live(frame), 7))
        # Not frozen: someone walks through an otherwise still scene, with only faint sensor noise.
        still = noise(base, 0.6, rng)
        yield Sample(f"{photo}/ok-walker", "ok", shown(moved(still, rng), 9), shown(still, 7))
        # Frozen: the encoder repeats its last picture (re-encoded identically), or a recorder draws its live
        # clock over a camera picture that stopped.
        frame = jpeg(base, 60)
        yield Sample(f"{photo}/frozen", "frozen", shown(frame, 9), shown(frame.copy(), 9))
        if not clock:
            yield Sample(f"{photo}/frozen-recorder-clock", "frozen", osd(frame, 9), osd(frame, 7))
