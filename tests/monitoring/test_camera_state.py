"""The camera state machine on hand-made timelines: debounce, offline deadline, flapping, maintenance."""

from __future__ import annotations

from collections.abc import Iterable

from monitoring.camera_state import CameraState, MachineState, Observation, Policy, Transition, advance

POLICY = Policy(interval=30.0, offline_after=3)
OK = frozenset[str]()


def run(observations: Iterable[Observation], policy: Policy = POLICY) -> tuple[MachineState, list[Transition]]:
    machine = MachineState()
    transitions = []
    for obs in observations:
        machine, transition = advance(machine, obs, policy)
        if transition is not None:
            transitions.append(transition)
    return machine, transitions


def up(at: float, *reasons: str) -> Observation:
    return Observation(at=at, reachable=True, reasons=frozenset(reasons))


def down(at: float, reason: str = "timeout") -> Observation:
    return Observation(at=at, reachable=False, reasons=frozenset({reason}))


def test_first_good_round_makes_an_unknown_camera_online() -> None:
    machine, transitions = run([up(0)])
    assert machine.state is CameraState.ONLINE
    assert transitions == [Transition(0, CameraState.UNKNOWN, CameraState.ONLINE, OK)]


def test_offline_only_after_offline_after_consecutive_failures() -> None:
    machine, transitions = run([up(0), down(30), down(60)])
    assert machine.state is CameraState.ONLINE
    machine, transitions = run([up(0), down(30), down(60), down(90, "refused")])
    assert machine.state is CameraState.OFFLINE
    assert transitions[-1] == Transition(90, CameraState.ONLINE, CameraState.OFFLINE, frozenset({"refused"}))


def test_one_good_round_resets_the_failure_count() -> None:
    machine, _ = run([up(0), down(30), down(60), up(90), down(120), down(150)])
    assert machine.state is CameraState.ONLINE


def test_offline_by_time_when_rounds_take_long() -> None:
    # Only two failed rounds, but the first failure is offline_after × interval old: report it now.
    machine, transitions = run([up(0), down(10), down(100)])
    assert machine.state is CameraState.OFFLINE
    assert transitions[-1].at == 100


def test_degraded_with_reasons_and_reason_changes_are_transitions() -> None:
    machine, transitions = run([up(0), up(30, "clock_skew"), up(60, "clock_skew", "auth_failed"), up(90)])
    assert machine.state is CameraState.ONLINE
    assert [(t.new, t.reasons) for t in transitions] == [
        (CameraState.ONLINE, OK),
        (CameraState.DEGRADED, frozenset({"clock_skew"})),
        (CameraState.DEGRADED, frozenset({"clock_skew", "auth_failed"})),
        (CameraState.ONLINE, OK),
    ]


def test_steady_state_produces_no_transitions() -> None:
    _, transitions = run([up(t) for t in range(0, 3000, 30)])
    assert len(transitions) == 1


def test_flapping_camera_is_held_offline_until_stable() -> None:
    quick = Policy(interval=10.0, offline_after=1, flap_window=600.0, flap_max_changes=4, flap_hold=300.0)
    # Up and down every 10 s: after 4 changes it stays offline, marked flapping, until good for 300 s.
    timeline = [up(0), down(10), up(20), down(30), up(40), down(50), up(60), up(200)]
    machine, transitions = run(timeline, quick)
    assert machine.state is CameraState.OFFLINE
    assert "flapping" in machine.reasons
    machine, transitions = run([*timeline, up(361)], quick)
    assert machine.state is CameraState.ONLINE
    assert transitions[-1].new is CameraState.ONLINE


def test_maintenance_overrides_observations_and_is_recorded() -> None:
    start = MachineState()
    machine, _t1 = advance(start, up(0), POLICY)
    machine, t2 = advance(machine, Observation(at=5, reachable=True, maintenance=True), POLICY)
    assert machine.state is CameraState.MAINTENANCE
    assert t2 == Transition(5, CameraState.ONLINE, CameraState.MAINTENANCE, OK)
    for at in (30, 60, 90, 120):
        machine, transition = advance(machine, down(at), POLICY)
        assert transition is None
    assert machine.state is CameraState.MAINTENANCE
    machine, t3 = advance(machine, Observation(at=130, reachable=True, maintenance=False), POLICY)
    assert machine.state is CameraState.UNKNOWN
    assert t3 is not None
    machine, _t4 = advance(machine, up(150), POLICY)
    assert machine.state is CameraState.ONLINE


def test_online_after_needs_several_good_rounds_when_configured() -> None:
    cautious = Policy(interval=30.0, offline_after=1, online_after=2)
    machine, _ = run([up(0), down(30), up(60)], cautious)
    assert machine.state is CameraState.OFFLINE
    machine, _ = run([up(0), down(30), up(60), up(90)], cautious)
    assert machine.state is CameraState.ONLINE
