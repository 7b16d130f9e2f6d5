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
    table = [HEADERS]
    for upstream, state, count, oldest, attempts, error in rows:
        age = f"{now - oldest:.0f} 秒前 s ago" if state == "pending" else ""
        table.append([upstream, STATES.get(state, state), str(count), age, str(attempts), error or ""])
    widths = [max(display_width(row[i]) for row in table) for i in range(len(HEADERS))]
    return "\n".join(
        "  ".join(
            pad(cell, width, right=i in NUMERIC) for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in table
    )


# Chinese first, as on the page; the English half for the installer's notes and for grep.
HEADERS = ["上级平台 upstream", "状态 state", "事件 events", "最早 oldest", "尝试 attempts", "最近错误 last error"]
STATES = {"pending": "待送 pending", "delivered": "已送达 delivered"}
NUMERIC = {2, 4}


def display_width(text: str) -> int:
    """Terminal columns: CJK characters take two."""
    return sum(2 if ord(ch) > 0x2E80 else 1 for ch in text)


def pad(text: str, width: int, *, right: bool = False) -> str:
    fill = " " * (width - display_width(text))
    return fill + text if right else text + fill
