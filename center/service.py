"""The running center: what happens after an event is on disk, and the read model the faces show.

After the commit: an alarm goes to the consoles at once (built from the event itself, no second read, so the
live path stays one fsync long); a report updates the school's row, its automatic hazards and the answer the
gateway gets (operator acks not yet confirmed, open hazards with deadlines).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any

from center import hazards as rules
from center.config import CenterConfig, SchoolEntry
from center.live import LiveFeed
from center.store import REPORT_TYPE, IncomingEvent, Store, _alarm_type
from monitoring.city import SchoolReading, camera_counts, city_table, is_reporting

logger = logging.getLogger(__name__)

# An ack stays in a school's answers this long after it was first sent: the gateway keeps the whole list and
# publishes each one once, so repeating it covers an answer lost on the way without growing the list for ever.
ACK_REPEAT_S = 3600.0
PICTURES_TYPE = "cn.huxiao.alarm.pictures"


class CenterService:
    def __init__(self, config: CenterConfig, store: Store, live: LiveFeed, clock: Callable[[], float] = time.time):
        self.config = config
        self.store = store
        self.live = live
        self._clock = clock
        # Set when the MQTT intake runs: publishes a school's ack list retained on <topic>/<school>/acks.
        self.publish_acks: Callable[[str, bytes], None] | None = None

    async def acks_changed(self, school_id: str) -> None:
        """An operator acknowledged: MQTT gateways get the school's list at once (HTTP ones with their next report)."""
        await self.school_changed(school_id)
        if self.publish_acks is not None:
            answer = await self.store.read(self.answer_sync, school_id)
            self.publish_acks(school_id, json.dumps(answer, ensure_ascii=False).encode())

    async def school_changed(self, school_id: str) -> None:
        row = await self.store.read(self.school_row_sync, school_id)
        if row is not None:
            self.live.publish("school", row)

    # after the commit ---------------------------------------------------------------------------------------------
    async def taken(self, events: list[IncomingEvent]) -> None:
        for event in events:
            if _alarm_type(event.type) is not None:
                self.live.publish("alarm", self.alarm_row_of(event))
            elif event.type == PICTURES_TYPE:
                row = await self.store.read(
                    self.store.alarm_by_button_event, event.school_id, str(event.data.get("button_event_id", ""))
                )
                if row is not None:
                    self.live.publish("alarm", self.decorate(row))
            elif event.type != REPORT_TYPE:
                self.live.publish("notice", self.notice_of(event))

    def school_json(self, school_id: str) -> dict[str, Any]:
        school = self.config.school(school_id)
        if school is None:
            return {"id": school_id, "name": school_id, "district": ""}
        return {"id": school.id, "name": school.name, "district": school.district}

    def alarm_row_of(self, event: IncomingEvent) -> dict[str, Any]:
        data = event.data
        button = data.get("button") if isinstance(data.get("button"), dict) else {}
        assert isinstance(button, dict)
        cameras = data.get("cameras") if isinstance(data.get("cameras"), list) else []
        assert isinstance(cameras, list)
        pictures = [
            {
                "camera": {"id": str(c.get("id", "")), "name": str(c.get("name", ""))},
                "url": f"/api/pictures/{event.id}/{position}.jpg",
            }
            for position, c in enumerate(cameras)
            if isinstance(c, dict) and c.get("snapshot_jpeg_base64")
        ]
        return {
            "id": event.id,
            "school": self.school_json(event.school_id),
            "button": {
                "id": str(button.get("id", "")),
                "name": str(button.get("name", "")),
                "location": str(button.get("location", "") or ""),
            },
            "type": _alarm_type(event.type),
            "button_event_id": str(data.get("button_event_id") or event.id),
            "pressed_at": data.get("pressed_at"),
            "received_at": data.get("received_at"),
            "pictures": pictures,
            "acknowledged": None,
        }

    def decorate(self, row: dict[str, Any]) -> dict[str, Any]:
        """A stored alarm row as the API shows it (the school's name and district from the config)."""
        out = dict(row)
        out["school"] = self.school_json(str(out.pop("school_id")))
        return out

    def notice_of(self, event: IncomingEvent) -> dict[str, Any]:
        button = event.data.get("button")
        return {
            "id": event.id,
            "school": self.school_json(event.school_id),
            "type": event.type,
            "at": event.time,
            "button": button if isinstance(button, dict) else None,
        }

    # reports ------------------------------------------------------------------------------------------------------
    async def report(self, event: IncomingEvent, fresh: bool) -> dict[str, Any]:
        """Record a status report (when new) and build the answer its gateway gets."""
        school_id = event.school_id
        if fresh:
            # The report itself was filed with its event, in the intake's transaction.
            confirmed = event.data.get("acknowledged")
            if isinstance(confirmed, list) and confirmed:
                await self.store.run(self.store.confirm_acks, school_id, [str(x) for x in confirmed])
            await self.store.read(self.evaluate_hazards, school_id, event.data)
            row = await self.store.read(self.school_row_sync, school_id)
            if row is not None:
                self.live.publish("school", row)
        return await self.store.read(self.answer_sync, school_id)

    def answer_sync(self, school_id: str) -> dict[str, Any]:
        acks = self.store.pending_acks(school_id)
        self.store.acks_told(school_id, [a["button_event_id"] for a in acks], self._clock() - ACK_REPEAT_S)
        open_hazards = self.store.hazards(open_only=True, school_id=school_id)
        self.store.hazards_told([h["id"] for h in open_hazards if h["told_at"] is None])
        return {"acks": acks, "hazards": [self.hazard_for_school(h) for h in open_hazards]}

    def hazard_for_school(self, hazard: dict[str, Any]) -> dict[str, Any]:
        overdue = hazard["deadline_ts"] < self._clock()
        return {
            "id": hazard["id"],
            "title": rules.TITLES.get(hazard["kind"], hazard["detail"] or hazard["kind"]),
            "text": hazard["detail"] or rules.TITLES.get(hazard["kind"], hazard["kind"]),
            "kind": hazard["kind"],
            "level": "overdue" if overdue else "open",
            "at": hazard["opened_at"],
            "deadline": hazard["deadline"],
        }

    def evaluate_hazards(self, school_id: str, data: dict[str, Any]) -> None:
        now = self._clock()
        found = rules.findings(data, self.store.camera_states(school_id), self.config.targets.networking_rate, now)
        current = {(f.kind, f.subject) for f in found}
        for finding in found:
            self.store.open_hazard(
                school_id, finding.kind, finding.subject, finding.detail, now + rules.RECTIFY_WITHIN_S, "center", True
            )
        for hazard in self.store.hazards(open_only=True, school_id=school_id):
            if hazard["auto"] and (hazard["kind"], hazard["subject"]) not in current:
                self.store.close_hazard(hazard["id"], "center", "condition cleared / 已整改")

    # read model ---------------------------------------------------------------------------------------------------
    def _reading(self, school: SchoolEntry, report: tuple[float, float, dict[str, Any]] | None) -> SchoolReading:
        if report is None:
            return SchoolReading(school.id, school.district)
        at, every, data = report
        networked, in_service = camera_counts(data)
        return SchoolReading(
            school.id, school.district, at, every, networked, in_service, data.get("compliant") is True
        )

    def _row(
        self,
        school: SchoolEntry,
        report: tuple[float, float, dict[str, Any]] | None,
        open_hazards: list[dict[str, Any]],
    ) -> dict[str, Any]:
        now = self._clock()
        reading = self._reading(school, report)
        data = report[2] if report is not None else {}
        buttons: dict[str, Any] = data["buttons"] if isinstance(data.get("buttons"), dict) else {}
        upstreams: list[Any] = data["upstreams"] if isinstance(data.get("upstreams"), list) else []
        cameras = data.get("cameras")
        return {
            "id": school.id,
            "name": school.name,
            "district": school.district,
            "reporting": is_reporting(reading, now),
            "last_report_at": _iso(reading.last_report_at),
            "report_every_s": reading.report_every_s,
            "networking_rate": data.get("networking_rate") if report is not None else None,
            "compliant": data.get("compliant") if report is not None else None,
            "compliance": data.get("compliance", []),
            "cameras": {
                "in_service": reading.in_service,
                "networked": reading.networked,
                "offline": sum(1 for c in cameras if isinstance(c, dict) and c.get("state") == "offline")
                if isinstance(cameras, list)
                else None,
            },
            "buttons": {"total": buttons.get("total"), "online": buttons.get("online")},
            "links": [{"name": u.get("name"), "link": u.get("link")} for u in upstreams if isinstance(u, dict)],
            "open_hazards": len(open_hazards),
            "overdue_hazards": sum(1 for h in open_hazards if h["deadline_ts"] < now),
        }

    def school_rows_sync(self) -> list[dict[str, Any]]:
        reports = self.store.reports()
        by_school: dict[str, list[dict[str, Any]]] = {}
        for hazard in self.store.hazards(open_only=True):
            by_school.setdefault(hazard["school_id"], []).append(hazard)
        return [self._row(s, reports.get(s.id), by_school.get(s.id, [])) for s in self.config.schools]

    def school_row_sync(self, school_id: str) -> dict[str, Any] | None:
        school = self.config.school(school_id)
        if school is None:
            return None
        report = self.store.report(school_id)
        return self._row(school, report, self.store.hazards(open_only=True, school_id=school_id))

    def city_sync(self) -> dict[str, Any]:
        reports = self.store.reports()
        readings = [self._reading(s, reports.get(s.id)) for s in self.config.schools]
        targets = self.config.targets
        return city_table(
            readings,
            self._clock(),
            {"networking_rate": targets.networking_rate, "compliant_share": targets.compliant_share},
        )


def _iso(at: float | None) -> str | None:
    from center.store import _iso as store_iso

    return store_iso(at)
