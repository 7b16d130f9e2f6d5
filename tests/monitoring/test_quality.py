"""The picture-quality checks one by one, on frames made to show each fault."""

from __future__ import annotations

import numpy as np
import pytest

from monitoring.quality import Thresholds, diagnose, make_thumbnail
from tests.monitoring.corpus import samples


def test_missing_frame_is_no_signal() -> None:
    assert diagnose(None).verdict == "no_signal"
    assert diagnose(np.zeros((0, 0, 3), np.uint8)).verdict == "no_signal"


def test_every_check_reports_score_and_threshold() -> None:
    clean = next(s for s in samples() if s.label == "ok")
    result = diagnose(clean.frame, clean.previous)
    assert result.verdict == "ok"
    names = [c.name for c in result.checks]
    assert names == ["black", "too_bright", "covered", "frozen", "too_dark", "blurred", "color_cast"]
    assert not any(c.failed for c in result.checks)


def test_a_dark_corridor_is_fine_with_its_own_threshold() -> None:
    dark = next(s for s in samples() if s.label == "too_dark")
    assert diagnose(dark.frame, dark.previous).verdict == "too_dark"
    corridor = Thresholds().with_overrides({"too_dark_mean": 15})
    assert diagnose(dark.frame, dark.previous, corridor).verdict == "ok"
    with pytest.raises(ValueError, match="unknown"):
        Thresholds().with_overrides({"darkness": 3})


def test_frozen_needs_two_frames_and_sensor_noise_is_not_frozen() -> None:
    frozen = next(s for s in samples() if s.label == "frozen")
    assert diagnose(frozen.frame, frozen.previous).verdict == "frozen"
    assert diagnose(frozen.frame).verdict == "ok"  # one frame cannot tell


def test_thumbnail_is_a_small_jpeg() -> None:
    frame = next(s for s in samples()).frame
    jpeg = make_thumbnail(frame)
    assert jpeg.startswith(b"\xff\xd8")
    assert len(jpeg) < 40_000
