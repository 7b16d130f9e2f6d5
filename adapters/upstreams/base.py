"""The one shape every upstream platform adapter has: http now; gb28181 and mqtt slot in beside it."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Protocol

from gateway.domain.events import OutboxEvent


@dataclass
class LinkState:
    """Is the path to this platform working? Up after a delivery, down after a failed attempt."""

    link: str = "unknown"  # up | down | unknown
    since: float = field(default_factory=time.time)
    last_error: str | None = None

    def up(self, now: float) -> None:
        if self.link != "up":
            self.link, self.since = "up", now
        self.last_error = None

    def down(self, now: float, error: str) -> None:
        if self.link != "down":
            self.link, self.since = "down", now
        self.last_error = error


class Upstream(Protocol):
    """A platform that takes events. `send` returns once the platform has it, or raises UpstreamError."""

    name: str
    kind: str
    role: str
    state: LinkState

    async def send(self, event: OutboxEvent) -> None: ...
