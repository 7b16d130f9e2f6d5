"""The camera state machine on hand-made timelines: every state and transition, debounce, the offline deadline
when rounds hang, flap suppression and maintenance."""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from gateway.domain.camera import CameraState
from monitoring.camera_state import (
    FLAPPING,
    MAINTENANCE_CLEARED,
    MAINTENANCE_SET,
    MachineState,
    Observation,
    Policy,
    Transition,
    advance,
    expire,
    initial,
    offline_deadline,
    set_maintenance,
)

POLICY = Policy(interval=30.0, offline_after=3)
NONE = frozenset[str]()
U, ON, DEG, OFF, MAINT = (
    CameraState.UNKNOWN,
    CameraState.ONLINE,
    CameraState.DEGRADED,
    CameraState.OFFLINE,
    CameraState.MAINTENANCE,
)


def run(
    observations: Iterable[Observation], policy: Policy = POLICY, machine: MachineState | None = None
) -> tuple[MachineState, list[Transition]]:
    machine = machine if machine is not None else initial("cam-1")
    transitions = []
    for obs in observations:
        machine, transition = advance(machine, obs, policy)
        if transition is not None:
            transitions.append(transition)
    return machine, transitions


def up(at: float, *reasons: str) -> Observation:
    return Observation(at=at, reachable=True, reasons=frozenset(reasons))


def down(at: float, error: str = "timeout") -> Observation:
    return Observation(at=at, reachable=False, error=error)


def shown(transitions: list[Transition]) -> list[tuple[float, CameraState, CameraState, frozenset[str]]]:
    return [(t.at, t.old, t.new, t.reasons) for t in transitions]


def test_first_good_round_makes_an_unknown_camera_online_with_its_id_and_time() -> None:
    machine, transitions = run([up(12.5)])
    assert machine.state is ON
    assert machine.since == 12.5
    assert transitions == [Transition(12.5, U, ON, NONE, "cam-1")]


def test_unknown_camera_that_never_answers_goes_offline_after_offline_after_rounds() -> None:
    machine, transitions = run([down(0), down(30)])
    assert machine.state is U
    assert transitions == []
    machine, transitions = run([down(0), down(30), down(60, "refused")])
    assert machine.state is OFF
    assert shown(transitions) == [(60, U, OFF, frozenset({"refused"}))]


def test_offline_only_after_offline_after_consecutive_failures() -> None:
    machine, transitions = run([up(0), down(30), down(60)])
    assert machine.state is ON
    assert len(transitions) == 1
    machine, transitions = run([up(0), down(30), down(60), down(90, "refused")])
    assert machine.state is OFF
    assert shown(transitions)[-1] == (90, ON, OFF, frozenset({"refused"}))


def test_one_good_round_resets_the_failure_count() -> None:
    machine, transitions = run([up(0), down(30), down(60), up(90), down(120), down(150)])
    assert machine.state is ON
    assert len(transitions) == 1


def test_error_in_reasons_and_unreachable_without_description() -> None:
    # The poller may put the error in `reasons` instead of `error`; with neither it is plain "unreachable".
    machine, _ = run([Observation(at=t, reachable=False, reasons=frozenset({"timeout"})) for t in (0, 30, 60)])
    assert machine.reasons == frozenset({"timeout"})
    machine, _ = run([Observation(at=t, reachable=False) for t in (0, 30, 60)])
    assert machine.reasons == frozenset({"unreachable"})


def test_offline_camera_keeps_the_reason_it_went_offline_with() -> None:
    # A dead camera alternating timeout/refused must not write a transition every round.
    machine, transitions = run([up(0), down(30), down(60), down(90), down(120, "refused"), down(150)])
    assert machine.reasons == frozenset({"timeout"})
    assert [t.new for t in transitions] == [ON, OFF]


def test_degraded_with_reasons_and_a_change_of_reasons_is_a_transition() -> None:
    machine, transitions = run([up(0), up(30, "clock_skew"), up(60, "clock_skew", "auth_failed"), up(90), up(120)])
    assert machine.state is ON
    assert shown(transitions) == [
        (0, U, ON, NONE),
        (30, ON, DEG, frozenset({"clock_skew"})),
        (60, DEG, DEG, frozenset({"clock_skew", "auth_failed"})),
        (90, DEG, ON, NONE),
    ]
    assert machine.since == 90


def test_degraded_since_is_kept_across_a_reason_change() -> None:
    machine, _ = run([up(0), up(30, "stream_error"), up(60, "stream_error", "picture:blurred")])
    assert machine.since == 30


def test_degraded_camera_goes_offline_and_comes_back_degraded() -> None:
    machine, transitions = run([up(0, "clock_skew"), down(30), down(60), down(90), up(120, "clock_skew")])
    assert machine.state is DEG
    assert [t.new for t in transitions] == [DEG, OFF, DEG]


def test_steady_state_produces_no_transitions() -> None:
    _, transitions = run([up(t) for t in range(0, 30000, 30)])
    assert len(transitions) == 1


def test_offline_by_time_when_rounds_hang() -> None:
    # The camera hangs: each round waits out a 60 s timeout, so rounds start 60 s apart. Two failed rounds only,
    # but no good round for 90 s (= 3 × 30 s): it is offline now, not at a third round.
    machine, transitions = run([up(0), down(60), down(120)])
    assert machine.state is OFF
    assert transitions[-1].at == 120
    machine, _ = run([up(0), down(60)])
    assert machine.state is ON


def test_deadline_counts_from_the_last_good_round_and_expire_meets_it_between_rounds() -> None:
    machine, _ = run([up(0), down(30)])
    assert offline_deadline(machine, POLICY) == 90.0  # ≤ interval × offline_after after the camera went quiet
    # The round started at 60 hangs; the poller's timer fires at the deadline: offline then, not when it returns.
    still, transition = expire(machine, 89.9, POLICY)
    assert transition is None
    assert still is machine
    machine, transition = expire(machine, 90.0, POLICY)
    assert transition == Transition(90.0, ON, OFF, frozenset({"timeout"}), "cam-1")
    assert offline_deadline(machine, POLICY) is None
    # The hung round finally returns a failure: no second transition, and the failure is counted.
    machine, transition = advance(machine, down(60), POLICY)
    assert transition is None
    assert machine.state is OFF


def test_no_deadline_without_a_failed_round() -> None:
    # A stalled poller (no rounds at all) must not turn healthy cameras offline.
    machine, _ = run([up(0)])
    assert offline_deadline(machine, POLICY) is None
    assert expire(machine, 10_000.0, POLICY) == (machine, None)
    # After a restart nothing good is known yet: the deadline runs from the first failure.
    machine, _ = run([down(100)])
    assert offline_deadline(machine, POLICY) == 190.0


def test_online_after_one_good_round_by_default() -> None:
    machine, transitions = run([up(0), down(30), down(60), down(90), up(120)])
    assert machine.state is ON
    assert shown(transitions)[-1] == (120, OFF, ON, NONE)


def test_online_after_several_good_rounds_when_configured() -> None:
    cautious = Policy(interval=30.0, offline_after=1, online_after=2)
    machine, _ = run([up(0), down(30), up(60)], cautious)
    assert machine.state is OFF
    machine, _ = run([up(0), down(30), up(60), down(90), up(120)], cautious)
    assert machine.state is OFF  # the good rounds must be consecutive
    machine, transitions = run([up(0), down(30), up(60), up(90)], cautious)
    assert machine.state is ON
    assert transitions[-1].at == 90


QUICK = Policy(interval=10.0, offline_after=1, flap_window=600.0, flap_max_changes=4, flap_hold=300.0)
# Up and down every 10 s: changes at 10 (off), 20 (on), 30 (off), 40 (on), 50 (off): the fifth change is "more
# than 4" and the camera is flapping from then on.
FLAPS = [up(0), down(10), up(20), down(30), up(40), down(50)]


def test_four_changes_in_the_window_are_not_yet_flapping() -> None:
    machine, _ = run(FLAPS[:-1], QUICK)
    assert machine.state is ON
    assert not machine.flapping


def test_flapping_camera_is_held_in_its_worse_state_until_stable_for_the_hold_time() -> None:
    machine, transitions = run([*FLAPS, up(60), down(70), up(80), up(200)], QUICK)
    assert machine.state is OFF
    assert machine.reasons == frozenset({"timeout", FLAPPING})
    # Held: the recoveries at 60 and 80 are not shown, only the start of the flapping.
    assert shown(transitions)[-1] == (50, ON, OFF, frozenset({"timeout", FLAPPING}))
    machine, transitions = run([*FLAPS, up(60), down(70), up(80), up(200), up(379)], QUICK)
    assert machine.state is OFF  # good since 80: 299 s
    machine, transitions = run([*FLAPS, up(60), down(70), up(80), up(200), up(380)], QUICK)
    assert machine.state is ON
    assert shown(transitions)[-1] == (380, OFF, ON, NONE)
    assert not machine.flapping


def test_the_change_that_starts_flapping_to_a_better_state_is_held() -> None:
    # Unknown → offline is a first verdict, not a flap; then changes at 10 (on), 20, 30, 40, 50 (on, the fifth).
    timeline = [down(0), up(10), down(20), up(30), down(40), up(50)]
    machine, transitions = run(timeline, QUICK)
    assert machine.state is OFF
    assert shown(transitions)[-1] == (50, OFF, OFF, frozenset({"timeout", FLAPPING}))


def test_released_camera_starts_a_fresh_count() -> None:
    stable = [*FLAPS, up(60), up(360)]
    machine, _ = run(stable, QUICK)
    assert machine.state is ON
    # One more outage after release is an ordinary outage, not flapping, though old changes are in the window.
    machine, _ = run([*stable, down(370)], QUICK)
    assert machine.reasons == frozenset({"timeout"})
    machine, _ = run([*stable, down(370), up(380)], QUICK)
    assert machine.state is ON


def test_flapping_between_online_and_degraded_is_held_degraded() -> None:
    timeline = [up(0), *(up(10 * i, "stream_error") if i % 2 else up(10 * i) for i in range(1, 7))]
    machine, _ = run(timeline, QUICK)
    assert machine.state is DEG
    assert machine.reasons == frozenset({"stream_error", FLAPPING})
    # Offline while held degraded: the worse state is shown at once.
    machine, transitions = run([*timeline, down(70)], QUICK)
    assert shown(transitions)[-1] == (70, DEG, OFF, frozenset({"timeout", FLAPPING}))


def test_slow_changes_are_never_flapping() -> None:
    # Five changes, but spread over more than the window: each outage is shown as it happens.
    timeline = [up(0), down(200), up(400), down(600), up(800), down(1000), up(1200)]
    machine, transitions = run(timeline, QUICK)
    assert machine.state is ON
    assert len(transitions) == 7
    assert all(FLAPPING not in t.reasons for t in transitions)


def test_maintenance_overrides_observations_and_is_recorded() -> None:
    machine, _ = run([up(0, "clock_skew")])
    machine, t_set = advance(machine, Observation(at=5, reachable=True, maintenance=True), POLICY)
    assert machine.state is MAINT
    assert machine.reasons == NONE
    assert t_set == Transition(5, DEG, MAINT, frozenset({MAINTENANCE_SET}), "cam-1")
    for at in (30, 60, 90, 120):
        machine, transition = advance(machine, down(at), POLICY)
        assert transition is None
    assert expire(machine, 1000.0, POLICY)[1] is None
    assert machine.state is MAINT
    # Setting it again is no new transition.
    assert advance(machine, Observation(at=125, reachable=True, maintenance=True), POLICY) == (machine, None)
    machine, t_clear = set_maintenance(machine, 130, False)
    assert t_clear == Transition(130, MAINT, U, frozenset({MAINTENANCE_CLEARED}), "cam-1")
    assert set_maintenance(machine, 131, False) == (machine, None)
    machine, t_back = advance(machine, up(150), POLICY)
    assert t_back is not None
    assert (t_back.old, t_back.new, machine.since) == (U, ON, 150)


def test_maintenance_clears_debounce_and_flap_history() -> None:
    machine, _ = run([*FLAPS, up(60)], QUICK)
    assert machine.flapping
    machine, _ = set_maintenance(machine, 70, True)
    machine, _ = set_maintenance(machine, 80, False)
    machine, _ = run([up(90)], QUICK, machine)
    assert (machine.state, machine.reasons) == (ON, NONE)


def test_a_camera_configured_in_maintenance_starts_there() -> None:
    machine = initial("cam-9", maintenance=True)
    assert machine.state is MAINT
    assert advance(machine, up(0), POLICY) == (machine, None)


@pytest.mark.parametrize(
    "changes",
    [
        {"interval": 0.0},
        {"offline_after": 0},
        {"online_after": 0},
        {"flap_max_changes": 0},
        {"flap_hold": -1.0},
    ],
)
def test_nonsense_policy_is_refused(changes: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must be"):
        Policy(**changes)  # type: ignore[arg-type]
