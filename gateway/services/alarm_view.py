"""The alarm path as the faces read it: buttons, upstream links, recent alarms, delivery latency."""

from __future__ import annotations

from typing import Any

from gateway.services.alarms import AlarmService
from monitoring.compliance import ButtonReading
from monitoring.latency import LatencyHistogram


class AlarmView:
    """`gateway.services.status.AlarmSource` over a running AlarmService."""

    def __init__(self, service: AlarmService) -> None:
        self._service = service

    def buttons(self) -> list[ButtonReading]:
        return [
            ButtonReading(s.config.id, s.config.name, bool(s.online), s.last_test_at)
            for s in self._service.supervision.buttons.values()
        ]

    def upstreams(self) -> list[dict[str, Any]]:
        return [
            {
                "name": f.upstream.name,
                "kind": f.upstream.kind,
                "role": f.upstream.role,
                "link": f.upstream.state.link,
                "since": f.upstream.state.since,
                "last_error": f.upstream.state.last_error,
                "pending": f.pending,
            }
            for f in self._service.forwarders
        ]

    def recent_alarms(self, limit: int) -> list[dict[str, Any]]:
        """Blocking (a database read): call from a thread."""
        return self._service.outbox.recent_alarms(limit)

    def delivery_latency(self) -> dict[str, LatencyHistogram]:
        return {f.upstream.name: f.latency for f in self._service.forwarders}

    def refused_messages(self) -> dict[tuple[str, str], int]:
        """Signed-button messages refused, by (button, reason)."""
        return dict(self._service.intake.refused)

    def storage_failures(self) -> dict[str, int]:
        """Commits of presses that failed, and the presses sent from memory instead."""
        intake = self._service.intake
        return {"failed_commits": intake.storage_failures, "unstored_alarms": intake.unstored_alarms}
