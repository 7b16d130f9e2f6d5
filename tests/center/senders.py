"""A small gateway stand-in for the center's tests: CloudEvents the way the gateway builds them, signed with the
gateway's own signing code."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from adapters.upstreams.signing import HEADER, sign
from gateway.domain.events import iso

SCHOOL_A = "51040200001"
SCHOOL_B = "51040200002"
SECRETS = {SCHOOL_A: "secret-a", SCHOOL_B: "secret-b"}


def alarm_event(school: str, button_event_id: str | None = None, kind: str = "panic", **extra: Any) -> bytes:
    now = iso(datetime.now(UTC))
    data: dict[str, Any] = {
        "school": {"id": school, "name": "学校", "district": "东区"},
        "button": {"id": "guard-room", "name": "门卫室一键报警", "location": "南门"},
        "button_event_id": button_event_id or str(uuid.uuid4()),
        "pressed_at": now,
        "received_at": now,
        "sequence": 1,
        "cameras": extra.pop("cameras", []),
    }
    return _event(school, f"cn.huxiao.alarm.{kind}", data, **extra)


def report_event(school: str, rate: float, total: int = 10, compliant: bool = True, every: float = 30.0) -> bytes:
    in_service = total
    data: dict[str, Any] = {
        "school": {"id": school, "name": "学校", "district": "东区"},
        "cameras": [
            {"id": f"cam-{i}", "state": "online" if i < round(rate * total) else "offline", "reasons": []}
            for i in range(total)
        ],
        "networking_rate": rate if in_service else None,
        "target": 0.8,
        "compliant": compliant,
        "compliance": [{"criterion": "networking_rate", "ok": rate >= 0.8, "reason": "r"}],
        "buttons": {"total": 1, "online": 1},
        "upstreams": [{"name": "center", "kind": "http", "link": "up", "pending": 0}],
        "report_every_s": every,
    }
    return _event(school, "cn.huxiao.status", data)


def pictures_event(school: str, button_event_id: str, cameras: list[dict[str, Any]]) -> bytes:
    """Pictures that were not ready within 300 ms follow their alarm in an event of their own."""
    data = {
        "school": {"id": school},
        "button": {"id": "guard-room"},
        "button_event_id": button_event_id,
        "cameras": cameras,
    }
    return _event(school, "cn.huxiao.alarm.pictures", data)


def _event(school: str, kind: str, data: dict[str, Any], event_id: str | None = None) -> bytes:
    document = {
        "specversion": "1.0",
        "id": event_id or str(uuid.uuid4()),
        "source": f"huxiao/{school}",
        "type": kind,
        "time": iso(datetime.now(UTC)),
        "datacontenttype": "application/json",
        "data": data,
    }
    return json.dumps(document, ensure_ascii=False).encode()


def signed(school: str, body: bytes, at: float | None = None) -> dict[str, str]:
    return {
        HEADER: sign(SECRETS[school], body, int(time.time() if at is None else at)),
        "Content-Type": "application/cloudevents+json",
    }
