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

from monitoring.quality import VERDICTS, diagnose
from tests.monitoring.corpus import Sample, corpus
from tests.monitoring.heldout import heldout

TARGET = 0.95
# Where the held-out set shows the detector short of the target today, the figure it must not fall below (so a
# regression still fails) and why it falls short. Each is a known limit, not a tuned-away miss:
# - frozen: a hung picture re-encoded at 512 kbit/s by FFmpeg's x264 and x265 differs between a frame just
#   after a key frame and one late in the GOP (the encoder refines a still picture between key frames) by a
#   median 0.7-2.4 grey levels per block, as much as a live sensor's noise; the field's cameras (and the
#   GStreamer simulator) show 0.2. Telling those apart needs more than two frames. A walker over the field of
#   cells, through x265 at 768 kbit/s, is taken for frozen.
# - ok, covered, blurred, color_cast, too_dark: a grey surface filling the frame (the moon) is taken for a
#   covered lens and a field of cells for a blurred picture, tinted or clean alike; the corpus keeps such
#   textures out of its clean and content-fault pictures.
HELDOUT_FLOORS = {  # (precision, recall), today's figures rounded down
    "frozen": (0.80, 0.60),
    "ok": (0.80, 0.60),
    "covered": (0.45, 0.95),
    "blurred": (0.35, 0.80),
    "color_cast": (0.95, 0.45),
    "too_dark": (0.90, 0.95),
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


def test_precision_and_recall_on_the_held_out_set() -> None:
    figures, mistakes = table(heldout(), "held out (never tuned on)")
    failures = []
    for label, pair in figures.items():
        floors = HELDOUT_FLOORS.get(label, (TARGET, TARGET))
        for kind, value, floor in zip(("precision", "recall"), pair, floors, strict=True):
            if value < floor:
                failures.append(f"{label} {kind} {value:.2f} < {floor:.2f}")
    assert not failures, (failures, mistakes)
