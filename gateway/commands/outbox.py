"""`huxiao outbox`: what waits for which platform, read straight from the database (the gateway may be running)."""

from __future__ import annotations

import time
from pathlib import Path

from gateway.services.storage import connect


def outbox_report(path: Path) -> str:
    if not path.exists():
        return f"{path}: no database yet (the gateway has not run with this config)"
    conn = connect(path, synchronous="NORMAL")
    try:
        rows = conn.execute(
            "SELECT d.upstream, d.state, COUNT(*), MIN(e.created_at), MAX(d.attempts), "
            "MAX(CASE WHEN d.state = 'pending' THEN d.last_error END) "
            "FROM deliveries d JOIN events e ON e.seq = d.event_seq GROUP BY d.upstream, d.state ORDER BY 1, 2"
        ).fetchall()
    finally:
        conn.close()
    if not rows:
        return "the outbox is empty: no event has been stored yet"
    now = time.time()
    lines = [f"{'upstream':16}{'state':12}{'events':>8}  oldest        attempts  last error"]
    for upstream, state, count, oldest, attempts, error in rows:
        age = f"{now - oldest:9.0f} s ago" if state == "pending" else ""
        lines.append(f"{upstream:16}{state:12}{count:8d}  {age:13} {attempts:8d}  {error or ''}")
    return "\n".join(lines)
