"""The state machine of one camera: debounced, flap-suppressed, every change with its time and reasons.

Pure: observations in, (state, transition) out. The poller feeds it one observation per round and, between
rounds, may ask `expire` whether a camera whose rounds hang is overdue; nothing here reads a clock or a socket.

Two layers. The *debounced* state follows the rounds: offline after `offline_after` failed rounds (or once no good
round has been seen for `offline_after × interval`), back after `online_after` good rounds. The *shown* state is
the debounced one, except for a flapping camera, which is held in the worse state it swings between until the
debounced state has stayed put for `flap_hold` seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from gateway.domain.camera import CameraState, Reason

# How bad a state is: a flapping camera is shown in the worst state it swings between.
SEVERITY: dict[CameraState, int] = {CameraState.ONLINE: 0, CameraState.DEGRADED: 1, CameraState.OFFLINE: 2}

# Reason added while a camera is held by flap suppression, so staff see why it is not shown as recovered.
FLAPPING = Reason.FLAPPING
# Reason of an unreachable round that came without any description.
UNREACHABLE = Reason.UNREACHABLE
# Reasons of the transitions that maintenance orders cause (the state itself carries no reasons meanwhile).
MAINTENANCE_SET = Reason.MAINTENANCE_SET
MAINTENANCE_CLEARED = Reason.MAINTENANCE_CLEARED

# Defaults, each overridable from the config.
# One good round brings a camera back: a camera that answered is working now, and reporting its recovery a round
# late helps nobody. Instability is flap suppression's job, which holds back only the cameras that flap instead
# of slowing every recovery down.
DEFAULT_ONLINE_AFTER = 1
# Flapping = more than 4 state changes in 10 minutes. One reboot or one cable pulled and put back costs 2
# changes; with the 30 s × 3 default an offline/online cycle takes at least 2 minutes, so 5 changes in 10 minutes
# means at least two and a half cycles: a reboot loop, a loose cable, a dying PoE port.
DEFAULT_FLAP_WINDOW_S = 600.0
DEFAULT_FLAP_MAX_CHANGES = 4
# A flapping camera is released after 5 minutes without a change: longer than a camera's reboot (1–2 min) so a
# reboot loop cannot slip through between two reboots, short enough that a repaired camera shows green soon.
DEFAULT_FLAP_HOLD_S = 300.0


@dataclass(frozen=True, slots=True)
class Observation:
    """One poll round of one camera, or a maintenance order (`maintenance` True/False, set from outside).

    `reasons`: degradations found while reachable (`auth_failed`, `clock_skew`, `stream_unreachable`,
    `picture:<verdict>`...); for an unreachable round the callers may put the error there too. `error`: what
    went wrong when unreachable (`timeout`, `refused`, `protocol_error`...), added to the offline reasons.
    """

    at: float
    reachable: bool
    reasons: frozenset[str] = frozenset()
    maintenance: bool | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Policy:
    """Timing of one camera's state machine, from the config (`polling:` and per-camera overrides)."""

    interval: float = 30.0
    offline_after: int = 3
    online_after: int = DEFAULT_ONLINE_AFTER
    flap_window: float = DEFAULT_FLAP_WINDOW_S
    flap_max_changes: int = DEFAULT_FLAP_MAX_CHANGES
    flap_hold: float = DEFAULT_FLAP_HOLD_S

    def __post_init__(self) -> None:
        if self.interval <= 0:
            raise ValueError(f"interval must be positive, not {self.interval}")
        if self.offline_after < 1 or self.online_after < 1:
            raise ValueError("offline_after and online_after must be at least 1")
        if self.flap_max_changes < 1 or self.flap_window < 0 or self.flap_hold < 0:
            raise ValueError("flap_max_changes must be at least 1, flap_window and flap_hold not negative")

    @property
    def offline_deadline_s(self) -> float:
        """Longest time without a good round before a camera that has failed a round is called offline."""
        return self.offline_after * self.interval


@dataclass(frozen=True, slots=True)
class MachineState:
    """Everything the machine remembers of one camera; `state`, `reasons` and `since` are what is shown."""

    state: CameraState = CameraState.UNKNOWN
    reasons: frozenset[str] = frozenset()
    since: float | None = None
    camera_id: str | None = None
    # The debounced state before flap suppression, its reasons and when it last changed.
    debounced: CameraState = CameraState.UNKNOWN
    debounced_reasons: frozenset[str] = frozenset()
    debounced_since: float | None = None
    failures: int = 0
    first_failure_at: float | None = None
    failure_reasons: frozenset[str] = frozenset()
    successes: int = 0
    last_ok_at: float | None = None
    # Times of the debounced state's changes within the flap window, oldest first.
    changes: tuple[float, ...] = field(default=())
    flapping: bool = False


@dataclass(frozen=True, slots=True)
class Transition:
    """A change of the shown state, or of the reasons within it; `camera_id` is the machine's, if it has one."""

    at: float
    old: CameraState
    new: CameraState
    reasons: frozenset[str]
    camera_id: str | None = None


def initial(camera_id: str | None = None, *, maintenance: bool = False) -> MachineState:
    """A camera's machine at gateway start: unknown, or in maintenance when the config says so."""
    return MachineState(state=CameraState.MAINTENANCE if maintenance else CameraState.UNKNOWN, camera_id=camera_id)


def advance(machine: MachineState, obs: Observation, policy: Policy) -> tuple[MachineState, Transition | None]:
    """The camera's next state after `obs`, and the transition if the shown state or its reasons changed."""
    if obs.maintenance is not None:
        return set_maintenance(machine, obs.at, obs.maintenance)
    if machine.state is CameraState.MAINTENANCE:
        return machine, None  # a camera under maintenance is not judged by its rounds
    if obs.reachable:
        return _succeeded(machine, obs, policy)
    return _failed(machine, obs, policy)


def set_maintenance(machine: MachineState, at: float, on: bool) -> tuple[MachineState, Transition | None]:
    """Put a camera into maintenance or take it out; either way its history starts afresh (someone worked on it)."""
    if on == (machine.state is CameraState.MAINTENANCE):
        return machine, None
    new = CameraState.MAINTENANCE if on else CameraState.UNKNOWN
    fresh = MachineState(state=new, since=at, camera_id=machine.camera_id)
    reason = MAINTENANCE_SET if on else MAINTENANCE_CLEARED
    return fresh, Transition(at, machine.state, new, frozenset({reason}), machine.camera_id)


def offline_deadline(machine: MachineState, policy: Policy, *, outstanding: bool = False) -> float | None:
    """When a camera that has started failing must be shown offline even if no further round has come back.

    Counted from the last good round (or, if none since the start, the first failure): on a regular schedule
    that is the moment the count rule fires too, and when rounds hang the camera is still reported within
    `offline_after × interval` of going quiet. `outstanding`: a poll has been sent and not answered, which counts
    as failing too (a camera that accepts and never answers has no failed round to show for it until its poll
    times out). None when nothing is failing or the camera is offline already.
    """
    if (machine.failures == 0 and not outstanding) or machine.debounced is CameraState.OFFLINE:
        return None
    if machine.state is CameraState.MAINTENANCE:
        return None
    reference = machine.last_ok_at if machine.last_ok_at is not None else machine.first_failure_at
    return None if reference is None else reference + policy.offline_deadline_s


def expire(
    machine: MachineState, now: float, policy: Policy, *, outstanding: bool = False
) -> tuple[MachineState, Transition | None]:
    """Between rounds: declare a failing camera offline once its deadline has passed (see `offline_deadline`).

    For the poller's timer, so a camera whose rounds hang is reported on time rather than when the hung round
    finally gives up. It counts no round.
    """
    deadline = offline_deadline(machine, policy, outstanding=outstanding)
    if deadline is None or now < deadline:
        return machine, None
    silent = frozenset({Reason.TIMEOUT}) if outstanding and not machine.failures else frozenset({UNREACHABLE})
    return _settle(machine, now, CameraState.OFFLINE, machine.failure_reasons or silent, policy)


def _failed(machine: MachineState, obs: Observation, policy: Policy) -> tuple[MachineState, Transition | None]:
    reasons = (obs.reasons | {obs.error}) if obs.error else obs.reasons
    reasons = reasons or frozenset({UNREACHABLE})
    first = machine.first_failure_at if machine.first_failure_at is not None else obs.at
    machine = replace(
        machine, failures=machine.failures + 1, first_failure_at=first, failure_reasons=reasons, successes=0
    )
    if machine.debounced is CameraState.OFFLINE:
        # Still down. An offline camera keeps the reasons it went offline with: a dead camera alternating between
        # `timeout` and `refused` would otherwise write a transition every round (the latest error is the
        # poller's `last_error`).
        return _settle(machine, obs.at, CameraState.OFFLINE, machine.debounced_reasons, policy)
    deadline = offline_deadline(machine, policy)
    if machine.failures >= policy.offline_after or (deadline is not None and obs.at >= deadline):
        return _settle(machine, obs.at, CameraState.OFFLINE, reasons, policy)
    return _settle(machine, obs.at, machine.debounced, machine.debounced_reasons, policy)


def _succeeded(machine: MachineState, obs: Observation, policy: Policy) -> tuple[MachineState, Transition | None]:
    machine = replace(
        machine,
        failures=0,
        first_failure_at=None,
        failure_reasons=frozenset(),
        successes=machine.successes + 1,
        last_ok_at=obs.at,
    )
    # Coming back from offline takes `online_after` good rounds; from unknown the first good round is all the
    # evidence there is, so it counts at once.
    if machine.debounced is CameraState.OFFLINE and machine.successes < policy.online_after:
        return _settle(machine, obs.at, CameraState.OFFLINE, machine.debounced_reasons, policy)
    target = CameraState.DEGRADED if obs.reasons else CameraState.ONLINE
    return _settle(machine, obs.at, target, obs.reasons, policy)


def _settle(
    machine: MachineState, at: float, debounced: CameraState, reasons: frozenset[str], policy: Policy
) -> tuple[MachineState, Transition | None]:
    """Apply flap suppression to the new debounced state and emit the transition of what is shown, if any."""
    changed = debounced != machine.debounced
    since = at if changed or machine.debounced_since is None else machine.debounced_since
    changes = tuple(t for t in machine.changes if at - t < policy.flap_window)
    if changed and machine.debounced is not CameraState.UNKNOWN:  # the first verdict on a camera is no flap
        changes = (*changes, at)
    flapping = machine.flapping or len(changes) > policy.flap_max_changes
    if flapping and not changed and at - since >= policy.flap_hold:
        flapping, changes = False, ()  # stable for the hold time: released, and its count starts afresh

    shown, shown_reasons = debounced, reasons
    if flapping:
        held = SEVERITY.get(machine.state, -1) > SEVERITY.get(debounced, -1)
        shown, shown_reasons = (machine.state, machine.reasons) if held else (debounced, reasons)
        shown_reasons = shown_reasons | {FLAPPING}

    new = replace(
        machine,
        state=shown,
        reasons=shown_reasons,
        since=at if shown != machine.state else machine.since,
        debounced=debounced,
        debounced_reasons=reasons,
        debounced_since=since,
        changes=changes,
        flapping=flapping,
    )
    if shown == machine.state and shown_reasons == machine.reasons:
        return new, None
    return new, Transition(at, machine.state, shown, shown_reasons, machine.camera_id)
