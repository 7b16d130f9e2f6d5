"""The running gateway as the faces see it: assembles the API's JSON from the live parts and the history."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from typing import Any

from gateway.config import GatewayConfig


class GatewayStatus:
    """Implements `monitoring.web.StatusSource` over whichever parts this gateway runs."""

    def __init__(
        self, config: GatewayConfig, db: Callable[[], sqlite3.Connection], *, clock: Callable[[], float] = time.time
    ) -> None:
        self.config = config
        self._db = db
        self._clock = clock

    def _camera_rows(self) -> list[dict[str, Any]]:
        return [
            {
                "id": camera.id,
                "name": camera.name,
                "area": camera.area,
                "state": "maintenance" if camera.maintenance else "unknown",
                "reasons": [],
                "since": None,
                "last_seen": None,
                "rtt_ms": None,
                "clock_skew_s": None,
                "uptime": {"24h": None, "7d": None, "30d": None},
                "stream": {"ok": False, "codec": None, "width": None, "height": None},
                "quality": {"verdict": None, "checks": []},
                "snapshot": None,
            }
            for camera in self.config.cameras
        ]

    def summary(self) -> dict[str, Any]:
        school = self.config.school
        rows = self._camera_rows()
        counts = {s: 0 for s in ("online", "degraded", "offline", "unknown", "maintenance")}
        for row in rows:
            counts[row["state"]] += 1
        return {
            "school": {"id": school.id, "name": school.name, "district": school.district},
            "cameras": {"total": len(rows), **counts},
            "networking_rate": None,
            "target": self.config.targets.networking_rate,
            "compliant": False,
            "compliance": [],
            "buttons": {"total": len(self.config.buttons), "online": 0},
            "upstreams": [
                {"name": u.name, "kind": u.kind, "link": "unknown", "pending": 0} for u in self.config.upstreams
            ],
        }

    def cameras(self) -> list[dict[str, Any]]:
        return self._camera_rows()

    def camera_snapshot(self, camera_id: str) -> bytes | None:
        return None

    def alarms(self, limit: int) -> list[dict[str, Any]]:
        return []

    def set_maintenance(self, camera_id: str, on: bool) -> bool:
        return False

    def metrics(self) -> dict[str, Any]:
        summary = self.summary()
        return {
            "school": self.config.school.id,
            "cameras": self.cameras(),
            "networking_rate": summary["networking_rate"],
            "target": summary["target"],
            "compliant": summary["compliant"],
            "buttons": [],
            "upstreams": summary["upstreams"],
        }
