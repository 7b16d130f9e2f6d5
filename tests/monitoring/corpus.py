"""A labelled picture-quality corpus made from real photographs that scikit-image ships (no download).

Each photograph is framed like a CCTV picture (640x360) and each fault applied at several strengths; clean
pictures are also varied (JPEG compression, sensor noise, exposure) and must stay `ok`. The strengths follow what
the faults look like in the field, not what the detector happens to catch.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray
from skimage import data

Frame = NDArray[Any]  # BGR, uint8 by convention (OpenCV's stubs type its results loosely)
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "camera", "immunohistochemistry", "brick", "grass")
# Photographs that are one colour by nature (a stained tissue sample; a brown coffee cup on a brown table, close
# up) are no plausible clean CCTV scene: they serve the faults only, where their content does not decide the label.
FAULT_ONLY = frozenset({"immunohistochemistry", "coffee"})


@dataclass(frozen=True, slots=True)
class Sample:
    name: str
    label: str
    frame: Frame
    previous: Frame


def _cctv(image: NDArray[np.uint8]) -> Frame:
    if image.ndim == 2:
        image = np.dstack([image] * 3)
    bgr = cv2.cvtColor(image[..., :3], cv2.COLOR_RGB2BGR)
    height, width = bgr.shape[:2]
    crop_h = min(height, int(width * 9 / 16))
    top = (height - crop_h) // 2
    return cv2.resize(bgr[top : top + crop_h], (640, 360), interpolation=cv2.INTER_AREA)


def _noise(frame: Frame, sigma: float, rng: np.random.Generator) -> Frame:
    noisy = frame.astype(np.float32) + rng.normal(0, sigma, frame.shape)
    return np.clip(noisy, 0, 255).astype(np.uint8)


def _jpeg(frame: Frame, quality: int) -> Frame:
    _, encoded = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, quality])
    decoded = cv2.imdecode(encoded, cv2.IMREAD_COLOR)
    assert decoded is not None
    return np.asarray(decoded, dtype=np.uint8)


def _gain(frame: Frame, gain: float, offset: float = 0.0) -> Frame:
    scaled: Frame = np.clip(frame.astype(np.float32) * gain + offset, 0, 255).astype(np.uint8)
    return scaled


def _luma(frame: Frame) -> float:
    return float(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY).mean())


def _tint(frame: Frame, bgr: tuple[int, int, int], alpha: float) -> Frame:
    solid = np.zeros_like(frame)
    solid[:] = bgr
    return cv2.addWeighted(frame, 1 - alpha, solid, alpha, 0)


def samples(seed: int = 2926) -> Iterator[Sample]:
    rng = np.random.default_rng(seed)
    for name in PHOTOS:
        base = _cctv(getattr(data, name)())

        def live(frame: Frame) -> Frame:
            """The frame a live camera would send a few seconds later: the same scene, new sensor noise."""
            return _noise(frame, 2.0, rng)

        if name not in FAULT_ONLY:
            clean = [
                base,
                _jpeg(base, 35),
                _noise(base, 4.0, rng),
                _gain(base, 0.85),
                _gain(base, 1.1, 10),
                cv2.GaussianBlur(base, (0, 0), 0.8),  # a slightly soft lens is still a usable picture
            ]
            for index, frame in enumerate(clean):
                yield Sample(f"{name}/ok{index}", "ok", frame, live(frame))
        for strength in (0.0, 0.02, 0.05):
            frame = _noise(_gain(base, strength), 1.5, rng)
            yield Sample(f"{name}/black{strength}", "black", frame, live(frame))
        for level in (25, 38):  # an unlit corridor at night (mean luma); darker still is `black` (ffmpeg's rule)
            frame = _noise(_gain(base, level / _luma(base)), 1.5, rng)
            yield Sample(f"{name}/dark{level}", "too_dark", frame, live(frame))
        for gain, offset in ((1.8, 120), (0.4, 200)):  # over-exposed: sun on the lens, a failed iris
            frame = _gain(base, gain, offset)
            yield Sample(f"{name}/bright{gain}", "too_bright", frame, live(frame))
        for sigma in (4.0, 7.0, 12.0):
            frame = _noise(cv2.GaussianBlur(base, (0, 0), sigma), 1.0, rng)
            yield Sample(f"{name}/blur{sigma}", "blurred", frame, live(frame))
        for grey in (40, 90, 140):  # a hand (dark), tape (mid), a cloth or frosting (light) over the lens
            covered = cv2.GaussianBlur(base, (0, 0), 40).astype(np.float32) * 0.15 + grey * 0.85
            frame = _noise(np.clip(covered, 0, 255).astype(np.uint8), 1.5, rng)
            yield Sample(f"{name}/covered{grey}", "covered", frame, live(frame))
        for color, alpha in (((40, 40, 220), 0.45), ((40, 200, 40), 0.5), ((220, 60, 30), 0.55)):
            frame = _tint(base, color, alpha)
            yield Sample(f"{name}/cast{color}", "color_cast", frame, live(frame))
        frame = _jpeg(base, 60)
        yield Sample(f"{name}/frozen", "frozen", frame, frame.copy())
