"""Is the gateway doing its job? Each part's check, its verdict and since when, and the overall status.

`failing` means an alarm pressed now would not reach the disk or the police: storage unwritable, the button listener
dead or away from the broker for more than BROKER_GRACE_S, a background part crashed and not restarted. An upstream
that cannot deliver only makes the status `degraded`: the alarm waits, safe, in the outbox.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

# A broker restart takes a few seconds and the listener retries every 5 s at most: only a longer absence means a
# press would not get through.
BROKER_GRACE_S = 15.0
# The board is evaluated this often between requests, so `since` is right to within this.
EVALUATE_EVERY_S = 1.0


class Status(StrEnum):
    OK = "ok"
    DEGRADED = "degraded"
    FAILING = "failing"


@dataclass(frozen=True, slots=True)
class Verdict:
    ok: bool
    detail: str


@dataclass(frozen=True, slots=True)
class PartHealth:
    ok: bool
    detail: str
    since: float


Check = Callable[[], Verdict]


class HealthBoard:
    """The checks of one running gateway; parts are added as they start."""

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._checks: dict[str, tuple[Check, bool]] = {}
        self._last: dict[str, PartHealth] = {}

    def add(self, name: str, check: Check, *, critical: bool) -> None:
        """`critical`: this part not ok makes the gateway failing; otherwise degraded."""
        self._checks[name] = (check, critical)

    def remove(self, *names: str) -> None:
        for name in names:
            self._checks.pop(name, None)
            self._last.pop(name, None)

    def evaluate(self) -> tuple[Status, dict[str, PartHealth]]:
        now = self._clock()
        status = Status.OK
        parts: dict[str, PartHealth] = {}
        for name, (check, critical) in self._checks.items():
            try:
                verdict = check()
            except Exception as exc:  # a broken check is a failed part, never a broken /healthz
                verdict = Verdict(False, f"health check failed: {type(exc).__name__}: {exc}")
            last = self._last.get(name)
            if last is not None and (last.ok, last.detail) == (verdict.ok, verdict.detail):
                part = last
            elif last is not None and last.ok == verdict.ok:
                part = PartHealth(verdict.ok, verdict.detail, last.since)  # same state, new wording
            else:
                part = PartHealth(verdict.ok, verdict.detail, now)
            self._last[name] = parts[name] = part
            if not part.ok:
                status = max(status, Status.FAILING if critical else Status.DEGRADED, key=_rank)
        return status, parts

    def report(self) -> tuple[dict[str, Any], int]:
        """The `/healthz` document and its HTTP status: 200 for ok and degraded, 503 for failing."""
        status, parts = self.evaluate()
        body = {
            "status": status.value,
            "parts": {
                name: {"ok": p.ok, "detail": p.detail, "since": _iso(p.since)} for name, p in sorted(parts.items())
            },
        }
        return body, 503 if status is Status.FAILING else 200


def _rank(status: Status) -> int:
    return (Status.OK, Status.DEGRADED, Status.FAILING).index(status)


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
