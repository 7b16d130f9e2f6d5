"""Precision and recall of the picture-quality verdicts: on the labelled corpus the thresholds were tuned on, and
separately on the held-out set written after them (`tests/monitoring/heldout.py`: other photographs, and streams
through x264 / x265 at a bit rate with a burnt-in clock).

Run with `-s` to see both tables. Known limits that the corpus leaves out on purpose are written down in
`tests/monitoring/corpus.py` (warm close-ups and colour cast; blurring a full-frame texture), and the grey zone
between a soft and a blurred picture is left unlabelled.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable

import pytest

from monitoring.quality import VERDICTS, diagnose
from tests.monitoring.corpus import Sample, corpus
from tests.monitoring.heldout import heldout

TARGET = 0.95
# Where the held-out set shows the detector short of the target today, the figure it must not fall below (so a
# regression still fails) and why it falls short. Each is a known limit, not a tuned-away miss:
# - frozen (recall) and ok (precision): the streams' frames are taken as the patrol takes them, a key frame of a
#   settled encoder and the one 2 s later (a key frame too). A hung picture's two key frames are the same
#   picture (median block change 0.00) on 8 of the 12 hung streams, but under VBV-constrained average bit rate
#   x264 and x265 now and then re-encode a key frame at another quantizer: 0.83-4.84 grey levels per block
#   (page at 1024 kbit/s and text at 512 through x264, page at 640 through x265, the garage at 512 through
#   x264, where 80% of the blocks change by over 3), against 0.74 and up for a quiet sensor's walker and 1.22
#   and up for a live still scene. Two frames cannot tell them apart.
# - blurred (recall): page/shake20, printed text shaken over 20 px at 60 degrees, keeps a fine-over-coarse ratio
#   of 0.134 along its weakest direction (sharp text measures 1.1-3.5, 4 px out of focus 0.04). Not because 60
#   degrees falls between the four directions measured (at 30 degree steps it measures 0.128): a shake at an
#   even speed smears each thin stroke into a streak whose ends are as sharp as the stroke was wide, so fine
#   text keeps fine detail along the shake itself.
HELDOUT_FLOORS = {  # (precision, recall), today's figures rounded down
    "frozen": (0.95, 0.65),
    "ok": (0.85, 0.95),
    "blurred": (0.95, 0.80),
}


def table(samples: Iterable[Sample], title: str) -> tuple[dict[str, tuple[float, float]], list[str]]:
    """Per verdict (precision, recall), printed as a table with the mistakes under it."""
    confusion: Counter[tuple[str, str]] = Counter()
    mistakes = []
    elapsed = 0.0
    for sample in samples:
        started = time.perf_counter()
        verdict = diagnose(sample.frame, sample.previous).verdict
        elapsed += time.perf_counter() - started
        confusion[(sample.label, verdict)] += 1
        if verdict != sample.label:
            mistakes.append(f"{sample.name}: {verdict}")
    total = sum(confusion.values())
    labels = sorted({label for label, _ in confusion})
    assert set(labels) == set(VERDICTS) - {"no_signal"}  # no_signal is a missing frame, tested on its own
    lines = [title, f"{'verdict':12}{'precision':>10}{'recall':>8}{'n':>5}"]
    figures = {}
    for label in labels:
        hit = confusion[(label, label)]
        missed = sum(n for (truth, said), n in confusion.items() if truth == label and said != label)
        false = sum(n for (truth, said), n in confusion.items() if said == label and truth != label)
        figures[label] = (hit / (hit + false) if hit + false else 1.0, hit / (hit + missed))
        lines.append(f"{label:12}{figures[label][0]:10.2f}{figures[label][1]:8.2f}{hit + missed:5d}")
    lines.append(f"{total} pictures, {elapsed / total * 1000:.1f} ms per diagnosis (640x360 pair)")
    print("\n" + "\n".join(lines + mistakes))
    return figures, mistakes


def test_precision_and_recall_per_verdict() -> None:
    figures, mistakes = table(corpus(), "corpus (the thresholds were tuned on it)")
    failures = [
        f"{label} {kind} {value:.2f}"
        for label, pair in figures.items()
        for kind, value in zip(("precision", "recall"), pair, strict=True)
        if value < TARGET
    ]
    assert not failures, (failures, mistakes)


# The held-out set is built when first asked for: 30-odd clips through FFmpeg's x264 and x265 on one thread each,
# about 90 s on a slow two-core machine, and once 120 s under a full CI run (the project's default time-out).
@pytest.mark.timeout(300)
def test_precision_and_recall_on_the_held_out_set() -> None:
    figures, mistakes = table(heldout(), "held out (never tuned on)")
    failures = []
    for label, pair in figures.items():
        floors = HELDOUT_FLOORS.get(label, (TARGET, TARGET))
        for kind, value, floor in zip(("precision", "recall"), pair, floors, strict=True):
            if value < floor:
                failures.append(f"{label} {kind} {value:.2f} < {floor:.2f}")
    assert not failures, (failures, mistakes)
