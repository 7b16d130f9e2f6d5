"""The running gateway as the faces see it: assembles the API's JSON from the live parts and the history."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from adapters.upstreams.gb28181 import Gb28181Upstream
from gateway.domain.camera import CameraState, is_picture_reason
from gateway.domain.config import GatewayConfig
from gateway.services.acknowledgements import AckRelay, acknowledged_by_alarm
from gateway.services.camera_health import CameraHealth, CameraRuntime
from gateway.services.gb_link import coverage, link_rows
from gateway.services.history import gateway_downtime, transitions_since
from gateway.services.live_video import LiveVideoRelay
from monitoring.compliance import AreaCamera, ButtonReading, SchoolFacts, compliant, judge
from monitoring.networking import CameraReading, is_networked, networking_rate
from monitoring.uptime import WINDOWS, counted_state, uptime_windows

# Uptime is recomputed from the stored history: at once after a camera changes (so the page, /metrics and the
# networking rate agree within seconds of a start or a fault), else once a minute for the windows to slide.
UPTIME_EVERY_S = 60.0
UPTIME_STALE_CHECK_S = 2.0


class AlarmSource(Protocol):
    """What the faces read from the alarm path."""

    def buttons(self) -> list[ButtonReading]: ...
    def upstreams(self) -> list[dict[str, Any]]: ...
    def recent_alarms(self, limit: int) -> list[dict[str, Any]]: ...
    def delivery_latency(self) -> dict[str, Any]: ...
    def refused_messages(self) -> dict[tuple[str, str], int]: ...
    def storage_failures(self) -> dict[str, int]: ...


@dataclass
class Pictures:
    """The latest thumbnail and picture-quality verdict of each camera (filled by the patrol)."""

    thumbnails: dict[str, bytes] = field(default_factory=dict)
    quality: dict[str, dict[str, Any]] = field(default_factory=dict)


def _reading(runtime: CameraRuntime, linked: bool = True) -> CameraReading:
    stream_ok = runtime.stream is not None and runtime.stream.ok
    return CameraReading(runtime.machine.state, stream_ok, runtime.machine.reasons, linked)


class GatewayStatus:
    """Implements `gateway.faces.web.StatusSource` over whichever parts this gateway runs."""

    def __init__(
        self, config: GatewayConfig, db: Callable[[], sqlite3.Connection], *, clock: Callable[[], float] = time.time
    ) -> None:
        self.config = config
        self._db = db
        self._clock = clock
        self.health: CameraHealth | None = None
        self.alarm_view: AlarmSource | None = None
        self.relay: AckRelay | None = None  # acknowledgements and hazards from the command center
        self.pictures = Pictures()
        self.crashes: Mapping[str, int] = {}  # the supervisor's crash counts by part, for /metrics
        self.gb_devices: Sequence[Gb28181Upstream] = ()  # the gb28181 upstreams, once the alarm path opened them
        self.live: LiveVideoRelay | None = None  # the relay GB platforms play the cameras through
        self._uptime: dict[str, dict[str, float | None]] = {}
        self._uptime_stale = True

    def note_transition(self) -> None:
        """A camera changed: its uptime is recomputed at the next check rather than up to a minute later."""
        self._uptime_stale = True

    async def keep_uptime(self) -> None:
        """Runs as a supervised part: refresh when a camera changed, and at least every UPTIME_EVERY_S."""
        waited = UPTIME_EVERY_S
        while True:
            if self._uptime_stale or waited >= UPTIME_EVERY_S:
                self._uptime_stale = False
                await asyncio.to_thread(self.refresh_uptime)
                waited = 0.0
            await asyncio.sleep(UPTIME_STALE_CHECK_S)
            waited += UPTIME_STALE_CHECK_S

    def refresh_uptime(self) -> None:
        """Recompute every camera's uptime from the stored history (called now and then, off the event loop)."""
        now = self._clock()
        since = now - max(WINDOWS.values())
        conn = self._db()
        history = transitions_since(conn, since)
        down = gateway_downtime(conn, since, now)
        self._uptime = {
            camera.id: uptime_windows(
                [(t.at, counted_state(t.new, t.reasons)) for t in history.get(camera.id, [])], now, down
            )
            for camera in self.config.cameras
        }

    def _police_link_ok(self) -> bool:
        if self.alarm_view is None:
            return False
        police = [u for u in self.alarm_view.upstreams() if u.get("role") == "police"]
        return bool(police) and any(u.get("link") != "down" for u in police)

    def _runtimes(self) -> list[CameraRuntime]:
        return list(self.health.cameras.values()) if self.health is not None else []

    def cameras(self) -> list[dict[str, Any]]:
        rows = []
        for runtime in self._runtimes():
            camera, machine, stream = runtime.config, runtime.machine, runtime.stream
            quality = self.pictures.quality.get(camera.id, {"verdict": None, "checks": []})
            has_picture = camera.id in self.pictures.thumbnails
            rows.append(
                {
                    "id": camera.id,
                    "name": camera.name,
                    "area": camera.area,
                    "state": machine.state.value,
                    "reasons": sorted(machine.reasons),
                    "since": machine.since,
                    "last_seen": runtime.last_seen,
                    "rtt_ms": round(runtime.rtt_ms, 2) if runtime.rtt_ms is not None else None,
                    "clock_skew_s": round(runtime.clock_skew_s, 1) if runtime.clock_skew_s is not None else None,
                    "uptime": self._uptime.get(camera.id, {name: None for name in WINDOWS}),
                    # Added to the contract: delivers a usable picture now, the test uptime and the rate apply.
                    "usable": is_networked(_reading(runtime)),
                    "stream": {
                        "ok": bool(stream and stream.ok),
                        "codec": stream.codec if stream else None,
                        "width": stream.width if stream else None,
                        "height": stream.height if stream else None,
                    },
                    "quality": quality,
                    "snapshot": f"/api/cameras/{camera.id}/snapshot.jpg" if has_picture else None,
                }
            )
        return rows

    def summary(self) -> dict[str, Any]:
        school = self.config.school
        runtimes = self._runtimes()
        counts = {state.value: 0 for state in CameraState}
        for runtime in runtimes:
            counts[runtime.machine.state.value] += 1
        link_ok = self._police_link_ok()
        # With a gb28181 upstream, a camera counts only while the platform has the device registered.
        platform = coverage(self.config, self.gb_devices)
        rate = networking_rate([_reading(r, platform.registered) for r in runtimes], link_ok)
        buttons = self.alarm_view.buttons() if self.alarm_view is not None else []
        criteria = judge(
            SchoolFacts(
                students=school.students,
                guards=school.guards,
                networking_rate=rate.rate,
                target=self.config.targets.networking_rate,
                # A camera in maintenance covers nothing: its area needs another working camera.
                cameras=[
                    AreaCamera(
                        r.config.id,
                        r.config.area,
                        is_networked(_reading(r)) and not any(is_picture_reason(x) for x in r.machine.reasons),
                    )
                    for r in runtimes
                ],
                buttons=buttons,
                police_link_ok=link_ok,
                now=self._clock(),
                networking_note=platform.problem,
            )
        )
        upstreams = self.alarm_view.upstreams() if self.alarm_view is not None else []
        return {
            "school": {"id": school.id, "name": school.name, "district": school.district},
            "cameras": {"total": len(runtimes), **counts},
            "networking_rate": rate.rate,
            "target": self.config.targets.networking_rate,
            "compliant": compliant(criteria),
            "compliance": [{"criterion": c.criterion, "ok": c.ok, "reason": c.reason} for c in criteria],
            "buttons": {
                "total": len(buttons),
                "online": sum(1 for b in buttons if b.online),
                # Added to the contract for the page: each button with its state and last monthly test.
                "items": [
                    {"id": b.button_id, "name": b.name, "online": b.online, "last_test": b.last_test_at}
                    for b in buttons
                ],
            },
            # `role` added to the contract: the page labels each platform by whose it is (公安平台, 教育平台).
            "upstreams": [
                {"name": u["name"], "kind": u["kind"], "role": u["role"], "link": u["link"], "pending": u["pending"]}
                for u in upstreams
            ],
            # Added to the contract: each gb28181 upstream's registration, keepalive, clock and live viewers.
            "gb28181": link_rows(self.gb_devices, self.live.stats() if self.live is not None else {}),
            # Added to the contract for the page: the open hazards the command center lists for this school.
            "hazards": [
                {"id": h.id, "text": h.text, "level": h.level, "at": h.at}
                for h in (self.relay.hazards if self.relay is not None else ())
            ],
        }

    def camera_snapshot(self, camera_id: str) -> bytes | None:
        return self.pictures.thumbnails.get(camera_id)

    def alarms(self, limit: int) -> list[dict[str, Any]]:
        rows = self.alarm_view.recent_alarms(limit) if self.alarm_view is not None else []
        if rows:
            acknowledged = acknowledged_by_alarm(self._db())
            for row in rows:
                row["acknowledged"] = acknowledged.get((str(row["button"]), str(row.get("button_event_id"))))
        return rows

    def set_maintenance(self, camera_id: str, on: bool) -> bool:
        if self.health is None or camera_id not in self.health.cameras:
            return False
        self.health.set_maintenance(camera_id, on)
        return True

    def metrics(self) -> dict[str, Any]:
        summary = self.summary()
        buttons = self.alarm_view.buttons() if self.alarm_view is not None else []
        return {
            "school": self.config.school.id,
            "cameras": self.cameras(),
            "networking_rate": summary["networking_rate"],
            "target": summary["target"],
            "compliant": summary["compliant"],
            "buttons": [{"id": b.button_id, "online": b.online} for b in buttons],
            "upstreams": summary["upstreams"],
            "delivery_latency": self.alarm_view.delivery_latency() if self.alarm_view is not None else {},
            "part_crashes": dict(self.crashes),
            "refused_messages": self.alarm_view.refused_messages() if self.alarm_view is not None else {},
            "storage_failures": self.alarm_view.storage_failures() if self.alarm_view is not None else {},
        }
