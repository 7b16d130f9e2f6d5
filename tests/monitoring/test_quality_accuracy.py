"""Precision and recall of the picture-quality verdicts on a labelled corpus of real photographs.

Run with `-s` to see the table. Known limits that the corpus leaves out on purpose are written down in
`tests/monitoring/corpus.py` (warm close-ups and colour cast; blurring a full-frame texture), and the grey zone
between a soft and a blurred picture is left unlabelled.
"""

from __future__ import annotations

import time
from collections import Counter

from monitoring.quality import VERDICTS, diagnose
from tests.monitoring.corpus import corpus

TARGET = 0.95


def test_precision_and_recall_per_verdict() -> None:
    confusion: Counter[tuple[str, str]] = Counter()
    mistakes = []
    elapsed = 0.0
    for sample in corpus():
        started = time.perf_counter()
        verdict = diagnose(sample.frame, sample.previous).verdict
        elapsed += time.perf_counter() - started
        confusion[(sample.label, verdict)] += 1
        if verdict != sample.label:
            mistakes.append(f"{sample.name}: {verdict}")
    total = sum(confusion.values())
    labels = sorted({label for label, _ in confusion})
    assert set(labels) == set(VERDICTS) - {"no_signal"}  # no_signal is a missing frame, tested on its own
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
            if value < TARGET:
                failures.append(f"{label} {kind} {value:.2f}")
    lines.append(f"{total} pictures, {elapsed / total * 1000:.1f} ms per diagnosis (640x360 pair)")
    print("\n" + "\n".join(lines + mistakes))
    assert not failures, (failures, mistakes)
