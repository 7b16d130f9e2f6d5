"""Flood folding: a button pressed over and over (a stuck contact, a child, an attacker with the account) must not
bury the police in alarms, nor hide a real one.

Per button, presses closer together than `within` form one burst. The first `presses` of a burst go out as usual;
the rest are folded and counted. When the button has been quiet for `within`, or a burst has been folding for
`MAX_FLOOD_S`, one summary is due (`cn.huxiao.button.flood` with the count). Pure: times come from the caller, so
the tests need no clock; thread-safe because presses arrive on the MQTT commit thread and summaries are taken on
the event loop.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from enum import StrEnum

# A flood that never pauses still gets reported this often: the police learn of a stuck button within a minute.
MAX_FLOOD_S = 60.0


class Decision(StrEnum):
    ADMIT = "admit"  # store and forward as a press
    FOLD = "fold"  # counted into the button's next flood summary


@dataclass(frozen=True, slots=True)
class FloodSettings:
    presses: int
    within: float


@dataclass(frozen=True, slots=True)
class FloodSummary:
    button_id: str
    count: int  # presses folded
    first_at: float  # the first folded press
    last_at: float  # the latest folded press


@dataclass(slots=True)
class _Burst:
    presses: int = 0
    last_at: float = 0.0
    folded: int = 0
    folding_since: float = 0.0
    last_folded_at: float = 0.0


class FloodGuard:
    def __init__(self, settings: dict[str, FloodSettings], *, max_flood_s: float = MAX_FLOOD_S) -> None:
        self._settings = settings
        self._max_flood_s = max_flood_s
        self._bursts: dict[str, _Burst] = {}
        self._lock = threading.Lock()
        self._ended: list[FloodSummary] = []

    def press(self, button_id: str, now: float) -> Decision:
        settings = self._settings.get(button_id)
        if settings is None:
            return Decision.ADMIT
        with self._lock:
            burst = self._bursts.setdefault(button_id, _Burst())
            if burst.presses and now - burst.last_at >= settings.within:
                # Quiet long enough: this press starts a new burst; the old one's summary waits for `due`.
                if burst.folded:
                    self._ended.append(_summary(button_id, burst))
                burst = self._bursts[button_id] = _Burst()
            burst.presses += 1
            burst.last_at = now
            if burst.presses <= settings.presses:
                return Decision.ADMIT
            if not burst.folded:
                burst.folding_since = now
            burst.folded += 1
            burst.last_folded_at = now
            return Decision.FOLD

    def due(self, now: float) -> list[FloodSummary]:
        """Summaries of floods that ended (quiet for `within`) or have folded for `max_flood_s`; each once."""
        with self._lock:
            out, self._ended = self._ended, []
            for button_id, burst in self._bursts.items():
                if not burst.folded:
                    continue
                quiet = now - burst.last_at >= self._settings[button_id].within
                long = now - burst.folding_since >= self._max_flood_s
                if not (quiet or long):
                    continue
                out.append(_summary(button_id, burst))
                if quiet:
                    self._bursts[button_id] = _Burst()
                else:  # still flooding: keep folding, the next summary counts from here
                    burst.folded = 0
        return out


def _summary(button_id: str, burst: _Burst) -> FloodSummary:
    return FloodSummary(button_id, burst.folded, burst.folding_since, burst.last_folded_at)
