"""The stored history that uptime is computed from: camera transitions and the gateway's own runs."""

from __future__ import annotations

import itertools
import json
import sqlite3
from collections import defaultdict
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class StoredTransition:
    camera_id: str
    at: float
    old: str
    new: str
    reasons: tuple[str, ...]


def record_transition(
    conn: sqlite3.Connection, camera_id: str, at: float, old: str, new: str, reasons: frozenset[str] | tuple[str, ...]
) -> None:
    conn.execute(
        "INSERT INTO camera_transitions (camera_id, at, old_state, new_state, reasons) VALUES (?, ?, ?, ?, ?)",
        (camera_id, at, old, new, json.dumps(sorted(reasons))),
    )


def transitions_since(conn: sqlite3.Connection, since: float) -> dict[str, list[StoredTransition]]:
    """Each camera's transitions after `since`, oldest first, plus the last one before it (the state at `since`)."""
    out: dict[str, list[StoredTransition]] = defaultdict(list)
    rows = conn.execute(
        """
        SELECT camera_id, at, old_state, new_state, reasons FROM camera_transitions
        WHERE at >= ?
           OR id IN (SELECT MAX(id) FROM camera_transitions WHERE at < ? GROUP BY camera_id)
        ORDER BY camera_id, at, id
        """,
        (since, since),
    )
    for camera_id, at, old, new, reasons in rows:
        out[camera_id].append(StoredTransition(camera_id, at, old, new, tuple(json.loads(reasons))))
    return dict(out)


def gateway_downtime(conn: sqlite3.Connection, since: float, now: float) -> list[tuple[float, float]]:
    """Periods in [since, now] when no gateway process was running (from the gaps between recorded runs)."""
    runs = conn.execute(
        "SELECT started_at, COALESCE(stopped_at, alive_at) FROM gateway_runs ORDER BY started_at"
    ).fetchall()
    gaps: list[tuple[float, float]] = []
    for (_, end), (start, _) in itertools.pairwise(runs):
        lo, hi = max(end, since), min(start, now)
        if hi > lo:
            gaps.append((lo, hi))
    return gaps
