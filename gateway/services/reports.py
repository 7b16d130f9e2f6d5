"""Status reports to the command center: every `report_every`, a signed CloudEvent `cn.huxiao.status`.

`data` is the `/api/summary` answer plus `cameras: [{id, state, reasons}]` and `report_every_s`. Over `http` it is
POSTed to the upstream's `report_url`, and the center's answer carries its operators' acknowledgements (and the
school's open hazards), which is how an acknowledgement reaches a gateway behind NAT; over `mqtt` it is published
on `<topic>/<school id>/status` and the acknowledgements come on the retained acks topic.

Reports are not alarms: the latest wins. A report that cannot be delivered is dropped, not put in the outbox: it
is a snapshot, and an old snapshot delivered late would be wrong news (the center judges a school by its newest
report and calls it silent after 3 × report_every); the next report, a full snapshot, follows within report_every,
and an acknowledgement the center still lists rides on its answer. So no report queues up behind a dead link.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol

from gateway.domain.config import HttpUpstreamConfig, MqttUpstreamConfig, SchoolConfig
from gateway.domain.errors import UpstreamError
from gateway.domain.events import cloudevent, new_event_id
from gateway.services.acknowledgements import AckRelay, parse_answer

logger = logging.getLogger(__name__)

STATUS = "cn.huxiao.status"


class ReportTarget(Protocol):
    """An upstream that takes reports: http returns the center's answer, mqtt returns None (acks come apart)."""

    name: str

    async def send_report(self, event_id: str, body: bytes) -> bytes | None: ...


def report_data(summary: dict[str, Any], cameras: list[dict[str, Any]], every_s: float) -> dict[str, Any]:
    """The report's `data`: the summary (without the hazards the center itself sent us), the cameras, the cadence.

    The summary's own `cameras` (the counts by state) would collide with the contract's `cameras` list: the list
    takes the key, the counts move to `camera_counts` (an addition to the contract, so nothing is lost)."""
    data = {key: value for key, value in summary.items() if key != "hazards"}
    data["camera_counts"] = data.pop("cameras", {})
    data["cameras"] = [{"id": c["id"], "state": c["state"], "reasons": list(c.get("reasons", []))} for c in cameras]
    data["report_every_s"] = every_s
    return data


class ReportSender:
    """One loop per reporting upstream, owned by `run` (a TaskGroup), cancelled together."""

    def __init__(
        self,
        school: SchoolConfig,
        targets: list[tuple[HttpUpstreamConfig | MqttUpstreamConfig, ReportTarget]],
        summary: Callable[[], dict[str, Any]],
        cameras: Callable[[], list[dict[str, Any]]],
        relay: AckRelay,
    ) -> None:
        self._school = school
        self._targets = [(c, t) for c, t in targets if c.reports]
        self._summary = summary
        self._cameras = cameras
        self._relay = relay
        self.sent: dict[str, int] = {c.name: 0 for c, _ in self._targets}
        self.failed: dict[str, int] = {c.name: 0 for c, _ in self._targets}

    async def run(self) -> None:
        async with asyncio.TaskGroup() as group:
            group.create_task(self._relay.run(), name="acks")
            for config, target in self._targets:
                group.create_task(self._every(config, target), name=f"reports:{config.name}")

    async def _every(self, config: HttpUpstreamConfig | MqttUpstreamConfig, target: ReportTarget) -> None:
        while True:
            await self.send_once(config, target)
            await asyncio.sleep(config.report_every)

    async def send_once(self, config: HttpUpstreamConfig | MqttUpstreamConfig, target: ReportTarget) -> None:
        event_id = new_event_id()
        data = report_data(self._summary(), self._cameras(), config.report_every)
        body = cloudevent(event_id, STATUS, self._school, datetime.now(UTC), data)
        try:
            answer = await target.send_report(event_id, body)
        except UpstreamError as exc:
            self.failed[config.name] += 1
            logger.warning("%s: status report not delivered (the next one follows): %s", config.name, exc)
            return
        self.sent[config.name] += 1
        if answer is None:
            return
        try:
            self._relay.offer(parse_answer(answer))
        except ValueError as exc:
            logger.warning("%s: the center's answer to a report is unusable: %s", config.name, exc)
