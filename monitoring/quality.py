"""Picture-quality diagnosis for video patrol: pure functions over frames (BGR uint8 arrays), no I/O.

Each check gives a score, its threshold and whether it fired; the verdict is the first check that fired in order
of severity. Every threshold is named, with where it comes from, and can be overridden per camera (a corridor that
is dark at night is not a fault): `Thresholds.with_overrides({"too_dark_mean": 20})`.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

Frame = NDArray[Any]  # BGR, uint8 by convention (OpenCV's stubs type its results loosely)

VERDICTS = ("ok", "no_signal", "black", "frozen", "blurred", "covered", "color_cast", "too_dark", "too_bright")
# Frames are analysed at this width: the checks need structure, not detail, and a 320 px frame costs ~2 ms.
ANALYSIS_WIDTH = 320


@dataclass(frozen=True, slots=True)
class Thresholds:
    # ffmpeg blackdetect: a pixel is black below 10% of full scale (pix_th 0.10), a picture when 98% are (pic_th).
    black_pixel: float = 0.10 * 255
    black_fraction: float = 0.98
    # Covered lens (industry video-diagnosis practice): almost no edges (Canny edge density < 1%) and a flat grey
    # level (standard deviation < 10) — a hand, tape, a cloth or spray paint over the lens.
    covered_edge_density: float = 0.01
    covered_grey_std: float = 10.0
    # Frozen: two frames seconds apart where (almost) no pixel changed by more than 2 grey levels. A live sensor's
    # noise alone changes far more pixels than this 0.1%, even in a still scene; a hung encoder changes none.
    frozen_changed_fraction: float = 0.001
    frozen_pixel_delta: float = 2.0
    # Mean brightness (Rec. 601 luma) below which a picture is too dark to see a face, above which washed out.
    too_dark_mean: float = 45.0
    too_bright_mean: float = 215.0
    # Or, for too bright: more than 40% of the pixels clipped at white.
    clipped_fraction: float = 0.40
    # Blur: variance of the Laplacian at the analysis width, divided by the grey variance so that exposure does
    # not count (a dark corridor is not a blurred one). Sharp scenes score 0.07 and up (a slightly soft lens
    # included), a picture out of focus or behind a smeared window below 0.02.
    blur_sharpness: float = 0.045
    # Colour cast (the Lab equivalent-circle method used by video-diagnosis tools): cast factor K = D / M, where D
    # is the distance of the mean (a, b) from neutral (OpenCV's 8-bit Lab) and M the spread around it. The
    # textbook K > 1.5 flags warm but normal scenes (a ginger cat on a wooden floor: K 2.8, D 23); a tint that
    # staff call a fault measured K > 3.7 and D > 34 in our corpus, so both must be high.
    cast_factor: float = 3.0
    cast_min_distance: float = 30.0

    def with_overrides(self, overrides: dict[str, float]) -> Thresholds:
        known = {f.name for f in fields(self)}
        unknown = set(overrides) - known
        if unknown:
            raise ValueError(f"unknown picture-quality thresholds: {', '.join(sorted(unknown))}")
        return replace(self, **{k: float(v) for k, v in overrides.items()})


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    score: float
    threshold: float
    failed: bool

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "score": round(self.score, 4), "threshold": self.threshold, "failed": self.failed}


@dataclass(frozen=True, slots=True)
class Diagnosis:
    verdict: str
    checks: tuple[Check, ...]

    def as_json(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "checks": [c.as_json() for c in self.checks]}


def analysis_grey(frame: Frame) -> tuple[Frame, Frame]:
    """The frame at analysis width, in colour and in grey."""
    height, width = frame.shape[:2]
    if width > ANALYSIS_WIDTH:
        size = (ANALYSIS_WIDTH, max(1, round(height * ANALYSIS_WIDTH / width)))
        frame = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
    if frame.ndim == 2:
        frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
    return frame, cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)


def _cast(small: Frame) -> tuple[float, float]:
    lab = cv2.cvtColor(small, cv2.COLOR_BGR2LAB).astype(np.float32)
    a, b = lab[..., 1] - 128.0, lab[..., 2] - 128.0
    da, db = float(a.mean()), float(b.mean())
    distance = float(np.hypot(da, db))
    spread = float(np.hypot(np.abs(a - da).mean(), np.abs(b - db).mean()))
    return distance / max(spread, 1e-6), distance


def diagnose(frame: Frame | None, previous: Frame | None = None, thresholds: Thresholds | None = None) -> Diagnosis:
    """The verdict on one frame (and, for the frozen check, the frame grabbed a few seconds before it)."""
    t = thresholds or Thresholds()
    if frame is None or frame.size == 0:
        return Diagnosis("no_signal", (Check("signal", 0.0, 1.0, True),))
    small, grey = analysis_grey(frame)
    mean = float(grey.mean())
    std = float(grey.std())
    black_fraction = float((grey < t.black_pixel).mean())
    # Edge thresholds follow the picture's own level (the usual automatic Canny), so a dark but sharp scene still
    # has edges and only a featureless one (a covered lens) has none.
    median = float(np.median(grey))
    edges = cv2.Canny(grey, max(10.0, 0.66 * median), max(20.0, 1.33 * median))
    edge_density = float((edges > 0).mean())
    sharpness = float(cv2.Laplacian(grey, cv2.CV_64F).var()) / max(std, 1.0) ** 2
    clipped = float((grey >= 250).mean())
    cast, cast_distance = _cast(small)
    too_bright = Check("too_bright", mean, t.too_bright_mean, mean > t.too_bright_mean or clipped > t.clipped_fraction)
    checks = [
        Check("black", black_fraction, t.black_fraction, black_fraction >= t.black_fraction),
        too_bright,  # before `covered`: a washed-out picture is also flat, but its cause is the light
        Check(
            "covered",
            edge_density,
            t.covered_edge_density,
            edge_density < t.covered_edge_density and std < t.covered_grey_std,
        ),
    ]
    if previous is not None and previous.shape == frame.shape:
        _, previous_grey = analysis_grey(previous)
        delta = cv2.absdiff(grey, previous_grey)
        changed = float((delta > t.frozen_pixel_delta).mean())
        checks.append(Check("frozen", changed, t.frozen_changed_fraction, changed < t.frozen_changed_fraction))
    checks += [
        Check("too_dark", mean, t.too_dark_mean, mean < t.too_dark_mean),
        Check("blurred", sharpness, t.blur_sharpness, sharpness < t.blur_sharpness),
        Check("color_cast", cast, t.cast_factor, cast > t.cast_factor and cast_distance > t.cast_min_distance),
    ]
    # Severity order: what hides the picture entirely first, then what spoils it.
    verdict = next((c.name for c in checks if c.failed), "ok")
    return Diagnosis(verdict, tuple(checks))


def make_thumbnail(frame: Frame, width: int = 320, quality: int = 75) -> bytes:
    """A small JPEG for the status page and the patrol report."""
    height = max(1, round(frame.shape[0] * width / frame.shape[1]))
    small = cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA)
    ok, encoded = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("could not encode the thumbnail")
    return bytes(encoded.tobytes())
