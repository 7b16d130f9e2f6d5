"""Precision and recall of the picture-quality verdicts on a labelled corpus of real photographs."""

from __future__ import annotations

from collections import Counter

from monitoring.quality import diagnose
from tests.monitoring.corpus import samples

TARGET = 0.95
# Known limits, kept visible instead of tuned away. Fine textures filling the whole picture (a brick wall, a
# lawn) blurred: hard blur leaves a featureless grey that one frame cannot tell from a covered lens (3 cases,
# reported `covered`); mild blur (sigma 4) leaves mostly sensor noise, which reads as detail (2 cases, `ok`).
# So 5 of the 24 blurred pictures are missed; on scenes with objects in them blur is found every time.
KNOWN_LIMITS = {("blurred", "recall"): 0.75, ("covered", "precision"): 0.85, ("ok", "precision"): 0.94}


def test_precision_and_recall_per_verdict() -> None:
    confusion: Counter[tuple[str, str]] = Counter()
    for sample in samples():
        confusion[(sample.label, diagnose(sample.frame, sample.previous).verdict)] += 1
    labels = sorted({label for label, _ in confusion})
    lines = [f"{'verdict':12}{'precision':>10}{'recall':>8}{'n':>5}"]
    failures = []
    for label in labels:
        hit = confusion[(label, label)]
        missed = sum(n for (truth, said), n in confusion.items() if truth == label and said != label)
        false = sum(n for (truth, said), n in confusion.items() if said == label and truth != label)
        precision = hit / (hit + false) if hit + false else 1.0
        recall = hit / (hit + missed)
        lines.append(f"{label:12}{precision:10.2f}{recall:8.2f}{hit + missed:5d}")
        for kind, value in (("precision", precision), ("recall", recall)):
            if value < KNOWN_LIMITS.get((label, kind), TARGET):
                failures.append(f"{label} {kind} {value:.2f}")
    print("\n" + "\n".join(lines))
    assert not failures, failures
