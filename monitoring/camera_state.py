"""The state machine of one camera: debounced, flap-suppressed, every change with its time and reasons.

Pure: observations in, (state, transition) out. The poller feeds it; nothing here reads a clock or a socket.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum


class CameraState(StrEnum):
    UNKNOWN = "unknown"
    ONLINE = "online"
    DEGRADED = "degraded"
    OFFLINE = "offline"
    MAINTENANCE = "maintenance"


# How bad a state is, for flap suppression: a flapping camera is held in the worse of the states it swings between.
_SEVERITY = {CameraState.ONLINE: 0, CameraState.DEGRADED: 1, CameraState.OFFLINE: 2}


@dataclass(frozen=True, slots=True)
class Observation:
    """One poll round of one camera, or a maintenance order (`maintenance` True/False)."""

    at: float
    reachable: bool
    reasons: frozenset[str] = frozenset()
    maintenance: bool | None = None


@dataclass(frozen=True, slots=True)
class Policy:
    interval: float = 30.0
    offline_after: int = 3
    # One good round brings a camera back: a reachable camera is working now, and flap suppression below
    # (not a slower recovery for everyone) is what keeps an unstable one from bouncing on the page.
    online_after: int = 1
    # More than 4 changes in 10 minutes is flapping (a loose cable, a camera rebooting in a loop): such a camera
    # stays in its worse state until it has been good for 5 minutes, so staff see one fault, not twenty.
    flap_window: float = 600.0
    flap_max_changes: int = 4
    flap_hold: float = 300.0


@dataclass(frozen=True, slots=True)
class MachineState:
    state: CameraState = CameraState.UNKNOWN
    reasons: frozenset[str] = frozenset()
    since: float | None = None
    failures: int = 0
    first_failure_at: float | None = None
    successes: int = 0
    good_since: float | None = None
    changes: tuple[float, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class Transition:
    at: float
    old: CameraState
    new: CameraState
    reasons: frozenset[str]


def _move(
    machine: MachineState, at: float, new: CameraState, reasons: frozenset[str], policy: Policy
) -> tuple[MachineState, Transition]:
    recent = tuple(t for t in machine.changes if at - t < policy.flap_window)
    if new != machine.state:
        recent = (*recent, at)
    moved = replace(machine, state=new, reasons=reasons, since=at if new != machine.state else machine.since)
    moved = replace(moved, changes=recent)
    return moved, Transition(at, machine.state, new, reasons)


def _flapping(machine: MachineState, at: float, policy: Policy) -> bool:
    return sum(1 for t in machine.changes if at - t < policy.flap_window) >= policy.flap_max_changes


def advance(machine: MachineState, obs: Observation, policy: Policy) -> tuple[MachineState, Transition | None]:
    """The camera's next state after `obs`, and the transition if there was one."""
    if obs.maintenance is True:
        if machine.state is CameraState.MAINTENANCE:
            return machine, None
        cleared = MachineState(changes=machine.changes)
        return _move(replace(cleared, state=machine.state), obs.at, CameraState.MAINTENANCE, frozenset(), policy)
    if obs.maintenance is False:
        if machine.state is not CameraState.MAINTENANCE:
            return machine, None
        return _move(machine, obs.at, CameraState.UNKNOWN, frozenset(), policy)
    if machine.state is CameraState.MAINTENANCE:
        return machine, None

    if not obs.reachable:
        first = machine.first_failure_at if machine.first_failure_at is not None else obs.at
        machine = replace(machine, failures=machine.failures + 1, first_failure_at=first, successes=0, good_since=None)
        if machine.state is CameraState.OFFLINE:
            return replace(machine, reasons=obs.reasons or machine.reasons), None
        # Offline after N failed rounds, or once the first failure is N intervals old: rounds that each wait out
        # a timeout must not stretch the time to report a dead camera.
        overdue = obs.at - first >= policy.offline_after * policy.interval
        if machine.failures >= policy.offline_after or overdue:
            return _move(machine, obs.at, CameraState.OFFLINE, obs.reasons, policy)
        return machine, None

    good_since = machine.good_since if machine.good_since is not None else obs.at
    machine = replace(
        machine, failures=0, first_failure_at=None, successes=machine.successes + 1, good_since=good_since
    )
    target = CameraState.DEGRADED if obs.reasons else CameraState.ONLINE
    current = machine.state
    if current is CameraState.OFFLINE and machine.successes < policy.online_after:
        return machine, None
    if (
        current in _SEVERITY
        and _SEVERITY[target] < _SEVERITY[current]
        and _flapping(machine, obs.at, policy)
        and obs.at - good_since < policy.flap_hold
    ):
        held = machine.reasons | {"flapping"}
        if held != machine.reasons:
            return _move(machine, obs.at, current, held, policy)
        return machine, None
    if target != current or obs.reasons != machine.reasons:
        return _move(machine, obs.at, target, obs.reasons, policy)
    return machine, None
