"""Which buttons are alive: a button is online from its status topic or any message, offline from its Will or
from silence longer than its heartbeat timeout. A change (but the first sighting after a start) becomes an event.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from gateway.domain.config import ButtonConfig
from gateway.domain.errors import StorageError
from gateway.domain.events import BUTTON_ONLINE, OutboxEvent
from gateway.services.alarm_events import AlarmEvents
from gateway.services.outbox import Outbox

logger = logging.getLogger(__name__)

# How often button silence is checked: offline is reported within heartbeat_timeout + this.
SUPERVISION_EVERY_S = 1.0


@dataclass
class ButtonState:
    config: ButtonConfig
    online: bool | None = None
    # The availability last stored for the platforms (from the outbox at start): a status replayed after a
    # restart that says the same is not news, neither on the console nor for the police.
    reported: bool | None = None
    last_seen: float | None = None
    last_test_at: float | None = None


class ButtonSupervision:
    """Owns every button's liveness; `run()` is the heartbeat check, the rest is called on the event loop."""

    def __init__(
        self,
        buttons: list[ButtonConfig],
        events: AlarmEvents,
        outbox: Outbox,
        submit: Callable[[OutboxEvent], None],
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.buttons = {b.id: ButtonState(b) for b in buttons}
        self._events = events
        self._outbox = outbox
        self._submit = submit
        self._clock = clock
        self._started_at = clock()
        # Told of every change (button id, online): a GB/T 28181 device turns it into its channel's ON/OFF.
        self.watchers: list[Callable[[str, bool], None]] = []

    def start(self) -> None:
        self._started_at = self._clock()

    def note_reported(self, last: dict[str, str]) -> None:
        """The button.online / button.offline event last stored for each button (from the outbox)."""
        for button_id, event_type in last.items():
            if button_id in self.buttons:
                self.buttons[button_id].reported = event_type == BUTTON_ONLINE

    def note_tests(self, last_test_at: dict[str, float]) -> None:
        for button_id, at in last_test_at.items():
            if button_id in self.buttons:
                self.buttons[button_id].last_test_at = at

    async def run(self) -> None:
        """Report buttons that fall silent for longer than their heartbeat timeout."""
        while True:
            now = self._clock()
            for state in self.buttons.values():
                # A button never heard from since the start counts from the start: a configured button that stays
                # silent is a fault to report too, not a button to forget.
                heard = state.last_seen if state.last_seen is not None else self._started_at
                if state.online is not False and now - heard > state.config.heartbeat_timeout:
                    await self.change(state.config.id, False, "heartbeat_timeout")
            await asyncio.sleep(SUPERVISION_EVERY_S)

    def seen(self, button_id: str) -> bool:
        """Any message from the button; True when that brings it back online (the caller then calls change)."""
        state = self.buttons[button_id]
        state.last_seen = self._clock()
        return not state.online

    async def change(self, button_id: str, online: bool, reason: str) -> None:
        state = self.buttons[button_id]
        if state.online is online:
            return
        was, state.online = state.online, online
        if online:
            state.last_seen = self._clock()
        for watcher in self.watchers:
            watcher(button_id, online)
        if was is None and state.reported is online:
            return  # the first word after a start says what was stored before it: a replay, not a change
        logger.info("%s: button %s (%s)", button_id, "online" if online else "offline", reason)
        if was is None and online and state.reported is None:
            return  # first sighting, nothing stored before: nothing changed for the police (told offline: tell them)
        try:
            (event,) = await asyncio.to_thread(
                self._outbox.store_many, [self._events.availability(state.config, online, reason)]
            )
        except StorageError:
            logger.exception("%s: button %s event could not be stored", button_id, "online" if online else "offline")
            return
        if event is not None:
            state.reported = online
            self._submit(event)
