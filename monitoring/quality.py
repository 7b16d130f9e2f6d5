"""Picture-quality diagnosis for video patrol: pure functions over frames (BGR uint8 arrays), no I/O.

Each check gives a score, its threshold and whether it fired; the verdict is the first check that fired in the
order of `PRIORITY`. Every threshold is named, with where it comes from, and can be overridden per camera (a
corridor that is dark at night is not a fault): `Thresholds.from_overrides({"too_dark_mean": 20})`.

The checks run on a copy scaled down to `ANALYSIS_WIDTH`: they need the structure of the picture, not its detail,
and a diagnosis then costs a few milliseconds whatever the camera's resolution.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from functools import cache
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

Frame = NDArray[Any]  # BGR, uint8 by convention (OpenCV's stubs type its results loosely)

VERDICTS = ("ok", "no_signal", "black", "frozen", "blurred", "covered", "color_cast", "too_dark", "too_bright")
# When several checks fire, the verdict names the one that explains the others: a black picture is also too dark
# and has no edges; a saturated white one is also flat, and unchanging (clipped pixels carry no sensor noise); a
# covered lens is also blurred; a picture too dark to see in shows no change either (its shadows are crushed to
# one level, and the encoder smooths what noise is left); any fault can come with a dull colour balance.
PRIORITY = ("black", "too_bright", "covered", "too_dark", "frozen", "blurred", "color_cast")
ANALYSIS_WIDTH = 320
# Blocks the sharpness is measured in (rows, columns of the analysis frame): the median over blocks ignores the
# camera's burnt-in clock and logo, which stay sharp on a blurred picture.
BLUR_GRID = (6, 10)
# A block counts towards sharpness only if its coarse detail (the 2-4 px band) has a standard deviation of at
# least 2 grey levels: sky, walls and shadows say nothing about focus.
BLUR_BLOCK_MIN_ENERGY = 4.0
BLUR_MIN_BLOCKS = 3
# Lightness (Lab L, 0-255) between which a pixel shows a colour at all: shadows and blown highlights are grey.
CAST_LIT_RANGE = (0.2 * 255, 0.97 * 255)
# Side of the square blocks (analysis pixels) the frozen check averages differences over: 8 px at 320 wide is
# 16 at 640, a macroblock, the unit an encoder's noise comes in; a walker at 20 m still covers several.
FROZEN_BLOCK = 8
# A block has structure when its coarse detail (the 2-4 px band) reaches 1 grey level (energy 1) along some
# direction: a covered lens's light leak and sensor noise stay under a tenth of that (noise of 5 grey levels at
# 640 px wide reaches about 0.2), a grey surface with anything on it (stones, cracks, a crater) goes over it.
COVERED_STRUCTURE_ENERGY = 1.0
# The blocks (of BLUR_GRID's 60) a camera's OSD can take: its clock and name are drawn after the lens, so they
# stay sharp on a covered one. A 200 x 20 px clock at 640 wide takes 4 blocks, 8 when it straddles a row of
# blocks; a clock and a camera name, up to 9. The covered check leaves them out of its edge density (a clock in
# a dark box alone is about 1% of the pixels as edges, the whole threshold) as it does of its structured share.
OSD_BLOCKS = 9


@dataclass(frozen=True, slots=True)
class Thresholds:
    # ffmpeg blackdetect: a pixel is black below 10% of full scale (pix_th 0.10), a picture when 98% are (pic_th).
    black_pixel: float = 0.10 * 255
    black_fraction: float = 0.98
    # Covered lens (video-quality diagnosis tools): no edges and a flat grey level (standard deviation < 10): a
    # hand, tape, a cloth or spray paint over the lens. The tools' edge threshold, a Canny edge density under 1%,
    # leaves room for the camera's clock, drawn after the lens; the edges are counted outside the blocks an OSD
    # can take (OSD_BLOCKS) instead, and there a covered lens has none: its light leak and sensor noise stay under
    # Canny's automatic thresholds. So under 0.1% (a stray pixel in a thousand), where a dim, low-contrast scene
    # (a grey surface at night) still has a few tenths of a percent. The spread is taken with the brightest and
    # darkest 2% of pixels clipped, so the clock text does not make a covered picture look varied either.
    covered_edge_density: float = 0.001
    covered_grey_std: float = 10.0
    # ...and structure in hardly any block: the camera's own OSD (a clock, a name) is drawn after the lens and
    # takes a few of the 60 blocks (a 200 x 20 px clock at 640 wide, 4); more than 9 blocks with structure is a
    # scene, however low its contrast (a concrete floor, a grey surface filling the view).
    covered_structured_fraction: float = 0.15
    # Frozen: two frames seconds apart that are the same picture but for compression noise. A hung sensor or ISP
    # behind a live encoder (the usual field failure) has its last picture re-encoded under bitrate control at a
    # quantizer that varies from key frame to key frame: the decoded frames differ by about 0.2 grey levels on
    # average, a few pixels by up to 13, scattered over the detail of the picture. Such noise averages out over a
    # block of `FROZEN_BLOCK` pixels; a live change does not. So the picture is frozen when (a) fewer than 1% of
    # its blocks changed by more than 3 grey levels on average (someone walking through changes 2% and more; a
    # clock drawn over the picture by the camera or a recorder, 0.2-1%, when its hour turns), and (b) the
    # median block changed by less than 0.5 grey levels: a live sensor's noise in a still scene changes every
    # block by 0.7 and more, flat walls included, where compression repeats a flat area exactly.
    frozen_block_delta: float = 3.0
    frozen_changed_fraction: float = 0.01
    frozen_noise_floor: float = 0.5
    # Mean luma (Rec. 601, 0-255) below which a picture is too dark to recognise a face; the mid-grey a camera's
    # auto-exposure aims at is about 118, so 45 is some 1.4 stops under. Dark corridors at night override it.
    too_dark_mean: float = 45.0
    # Over-exposed: a mean above 200 (about 0.8 stop over mid-grey, a washed-out picture), or more than a quarter
    # of the picture clipped at white (sun on the lens, a failed iris).
    too_bright_mean: float = 200.0
    clipped_level: float = 250.0
    clipped_fraction: float = 0.25
    # Blur: the energy of the finest detail (the 0-1 px band) over that of coarse detail (the 2-4 px band), taken
    # along four directions (so a shake along one is seen) in blocks, the median block, the weakest direction. It
    # is a ratio, so exposure and contrast do not count (a dark or low-contrast scene is not a blurred one). At
    # 320 px sharp pictures measure 0.18 and up (a slightly soft lens and JPEG included), pictures out of focus by
    # 1.5 px or more, or shaken over 7 px, below 0.09.
    blur_sharpness: float = 0.12
    # Colour cast (the Lab equivalent-circle method of video-diagnosis tools): cast factor K = D / M, D the
    # distance of the mean (a, b) from neutral, M the mean spread around it (OpenCV 8-bit Lab units), taken over
    # the lit pixels only (shadows and blown highlights are grey whatever the cast); the textbook threshold is
    # K > 1.5. Alone it flags pictures that are merely colourful in one hue, so a cast also needs D > 10 (a
    # difference anyone sees on a grey surface) and no neutral surface left: under a real cast not even a white or
    # grey wall, road or shirt stays grey (chroma < 8) in more than 2% of the lit picture. A view filled by one
    # warm subject (a brown door, a red running track) has no grey either: give that camera its own threshold.
    cast_factor: float = 1.5
    cast_min_distance: float = 10.0
    cast_neutral_chroma: float = 8.0
    cast_max_neutral_fraction: float = 0.02

    @classmethod
    def from_overrides(cls, overrides: Mapping[str, float]) -> Thresholds:
        """The defaults with a camera's overrides (its `quality:` config); unknown names are errors."""
        return cls().with_overrides(overrides)

    def with_overrides(self, overrides: Mapping[str, float]) -> Thresholds:
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

    def check(self, name: str) -> Check | None:
        return next((c for c in self.checks if c.name == name), None)


def analysis_frames(frame: Frame) -> tuple[Frame, Frame]:
    """The frame at analysis width, in colour (BGR) and in grey."""
    if frame.ndim == 2:
        frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
    height, width = frame.shape[:2]
    if width > ANALYSIS_WIDTH:
        size = (ANALYSIS_WIDTH, max(1, round(height * ANALYSIS_WIDTH / width)))
        frame = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
    return frame, cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)


# --- the measurements, each a pure function of the analysis frames ---


def black_fraction(grey: Frame, pixel_threshold: float) -> float:
    return float((grey < pixel_threshold).mean())


def robust_std(grey: Frame) -> float:
    """The grey level's standard deviation with the brightest and darkest 2% clipped (burnt-in text, a logo)."""
    low, high = np.percentile(grey, (2, 98))
    return float(np.clip(grey, low, high).std())


def edge_density(grey: Frame) -> float:
    """The share of edge pixels outside the OSD_BLOCKS blocks (of BLUR_GRID) with the most edges."""
    # Edge thresholds follow the picture's own level (the usual automatic Canny), so a dark but sharp scene still
    # has edges and only a featureless one (a covered lens) has none.
    median = float(np.median(grey))
    edges = cv2.Canny(grey, max(10.0, 0.66 * median), max(20.0, 1.33 * median))
    per_block = np.sort(_block_means(edges.astype(np.float32) / 255.0))
    if per_block.size <= OSD_BLOCKS:
        return float(np.count_nonzero(edges)) / edges.size
    return float(per_block[:-OSD_BLOCKS].mean())


def block_changes(grey: Frame, previous_grey: Frame) -> NDArray[np.float32]:
    """The mean absolute difference of the two frames in each block of FROZEN_BLOCK x FROZEN_BLOCK pixels."""
    difference = cv2.absdiff(grey, previous_grey).astype(np.float32)
    rows, cols = max(1, difference.shape[0] // FROZEN_BLOCK), max(1, difference.shape[1] // FROZEN_BLOCK)
    # INTER_AREA at an exact integer ratio is the block mean.
    return np.asarray(cv2.resize(difference, (cols, rows), interpolation=cv2.INTER_AREA), np.float32).ravel()


def changed_fraction(grey: Frame, previous_grey: Frame, block_delta: float) -> tuple[float, float]:
    """(share of blocks that changed by more than `block_delta` on average, the median block's change)."""
    changes = block_changes(grey, previous_grey)
    return float((changes > block_delta).mean()), float(np.median(changes))


@cache
def _directional_kernel(sigma: float, direction: int) -> NDArray[np.float32]:
    """A 1-D Gaussian along 0°, 90° (its taps) or along 45°, 135° (a square kernel with the taps on a diagonal)."""
    step = 1.0 if direction < 2 else float(np.sqrt(2.0))  # diagonal neighbours are √2 apart
    radius = max(1, int(np.ceil(3 * sigma / step)))
    x = np.arange(-radius, radius + 1, dtype=np.float32) * step
    taps = np.asarray(np.exp(-(x**2) / (2 * sigma**2)), np.float32)
    taps /= taps.sum()
    if direction < 2:
        return taps
    square = np.diag(taps) if direction == 2 else np.fliplr(np.diag(taps))
    return np.ascontiguousarray(square, dtype=np.float32)


def _smooth(grey: NDArray[np.float32], sigma: float, direction: int) -> NDArray[np.float32]:
    kernel = _directional_kernel(sigma, direction)
    one = np.ones(1, np.float32)
    if direction == 0:
        return np.asarray(cv2.sepFilter2D(grey, -1, kernel, one), np.float32)
    if direction == 1:
        return np.asarray(cv2.sepFilter2D(grey, -1, one, kernel), np.float32)
    return np.asarray(cv2.filter2D(grey, -1, kernel), np.float32)


def _block_means(values: NDArray[np.float32]) -> NDArray[np.float32]:
    rows, cols = BLUR_GRID
    height, width = values.shape
    bh, bw = height // rows, width // cols
    if bh == 0 or bw == 0:
        return np.asarray([values.mean()], np.float32)
    trimmed = values[: bh * rows, : bw * cols]
    return np.asarray(trimmed.reshape(rows, bh, cols, bw).mean(axis=(1, 3)).ravel(), np.float32)


def band_energies(grey: Frame) -> list[tuple[NDArray[np.float32], NDArray[np.float32]]]:
    """Per direction, the energy of the finest detail (0-1 px band) and of coarse detail (2-4 px) in each block."""
    image = grey.astype(np.float32)
    bands = []
    for direction in range(4):
        fine = image - _smooth(image, 1.0, direction)
        sigma2 = _smooth(image, 2.0, direction)
        # Sigma 4 as sigma 2 three more times (Gaussians compose: 2² x 4 = 4²): a diagonal kernel that wide
        # would cost a Fourier transform, four small ones cost a tenth of that.
        sigma4 = sigma2
        for _ in range(3):
            sigma4 = _smooth(sigma4, 2.0, direction)
        coarse = sigma2 - sigma4
        bands.append((_block_means(fine * fine), _block_means(coarse * coarse)))
    return bands


def sharpness(grey: Frame, bands: list[tuple[NDArray[np.float32], NDArray[np.float32]]] | None = None) -> float:
    """Fine over coarse detail energy (see `Thresholds.blur_sharpness`); higher is sharper."""
    per_direction = []
    for fine_energy, coarse_energy in bands if bands is not None else band_energies(grey):
        structured = coarse_energy >= BLUR_BLOCK_MIN_ENERGY
        if np.count_nonzero(structured) < BLUR_MIN_BLOCKS:
            # Nothing in the picture shows whether it is in focus: not blurred for all we can tell (a flat
            # picture is the covered check's business).
            structured = coarse_energy > 0
            if not structured.any():
                return 1.0
        per_direction.append(float(np.median(fine_energy[structured] / coarse_energy[structured])))
    return min(per_direction)


def structured_fraction(bands: list[tuple[NDArray[np.float32], NDArray[np.float32]]]) -> float:
    """The share of blocks with any structure: coarse detail of 1 grey level or more along some direction."""
    coarse = np.max([coarse_energy for _, coarse_energy in bands], axis=0)
    return float((coarse >= COVERED_STRUCTURE_ENERGY).mean())


def color_cast(small: Frame, neutral_chroma: float) -> tuple[float, float, float]:
    """(cast factor K, distance D of the mean chroma from neutral, fraction of neutral pixels), over lit pixels."""
    lab = cv2.cvtColor(small, cv2.COLOR_BGR2LAB)
    lit = (lab[..., 0] > CAST_LIT_RANGE[0]) & (lab[..., 0] < CAST_LIT_RANGE[1])
    if np.count_nonzero(lit) < lit.size * 0.05:
        return 0.0, 0.0, 1.0  # hardly anything lit (black, dark or blown out): no colour to judge
    a = lab[..., 1][lit].astype(np.float32) - 128.0
    b = lab[..., 2][lit].astype(np.float32) - 128.0
    da, db = float(a.mean()), float(b.mean())
    distance = float(np.hypot(da, db))
    spread = float(np.hypot(np.abs(a - da).mean(), np.abs(b - db).mean()))
    neutral = float((np.hypot(a, b) < neutral_chroma).mean())
    return distance / max(spread, 1e-6), distance, neutral


# --- the verdict ---


def diagnose(frame: Frame | None, previous: Frame | None = None, thresholds: Thresholds | None = None) -> Diagnosis:
    """The verdict on one frame (and, for the frozen check, the frame grabbed a few seconds before it)."""
    t = thresholds or Thresholds()
    if frame is None or frame.size == 0:
        return Diagnosis("no_signal", (Check("signal", 0.0, 1.0, True),))
    small, grey = analysis_frames(frame)
    mean = float(grey.mean())
    spread = robust_std(grey)
    black = black_fraction(grey, t.black_pixel)
    clipped = float((grey >= t.clipped_level).mean())
    edges = edge_density(grey)
    bands = band_energies(grey)
    structured = structured_fraction(bands)
    cast, cast_distance, neutral = color_cast(small, t.cast_neutral_chroma)
    checks = {
        "black": Check("black", black, t.black_fraction, black >= t.black_fraction),
        "too_bright": Check(
            "too_bright", mean, t.too_bright_mean, mean > t.too_bright_mean or clipped > t.clipped_fraction
        ),
        "covered": Check(
            "covered",
            edges,
            t.covered_edge_density,
            edges < t.covered_edge_density
            and spread < t.covered_grey_std
            and structured < t.covered_structured_fraction,
        ),
        "too_dark": Check("too_dark", mean, t.too_dark_mean, mean < t.too_dark_mean),
        "color_cast": Check(
            "color_cast",
            cast,
            t.cast_factor,
            cast > t.cast_factor and cast_distance > t.cast_min_distance and neutral < t.cast_max_neutral_fraction,
        ),
    }
    sharp = sharpness(grey, bands)
    checks["blurred"] = Check("blurred", sharp, t.blur_sharpness, sharp < t.blur_sharpness)
    if previous is not None and previous.size and previous.shape[:2] == frame.shape[:2]:
        _, previous_grey = analysis_frames(previous)
        changed, median_change = changed_fraction(grey, previous_grey, t.frozen_block_delta)
        frozen = changed < t.frozen_changed_fraction and median_change < t.frozen_noise_floor
        checks["frozen"] = Check("frozen", changed, t.frozen_changed_fraction, frozen)
    ordered = tuple(checks[name] for name in PRIORITY if name in checks)
    verdict = next((c.name for c in ordered if c.failed), "ok")
    return Diagnosis(verdict, ordered)


def make_thumbnail(frame: Frame, width: int = 320, quality: int = 75) -> bytes:
    """A small JPEG for the status page and the patrol report."""
    height = max(1, round(frame.shape[0] * width / frame.shape[1]))
    interpolation = cv2.INTER_AREA if width < frame.shape[1] else cv2.INTER_LINEAR
    small = cv2.resize(frame, (width, height), interpolation=interpolation)
    ok, encoded = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("could not encode the thumbnail")
    return bytes(encoded.tobytes())
