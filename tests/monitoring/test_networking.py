"""The networking rate (联网率), now and time-weighted over 24 h, on hand-made readings and timelines."""

from __future__ import annotations

import pytest

from gateway.domain.camera import CameraState
from monitoring.networking import (
    CameraReading,
    History,
    NetworkingRate,
    average_networking_rate,
    average_rate,
    is_networked,
    networking_rate,
)

H = 3600.0
NOW = 1000 * 86400.0
NONE = frozenset[str]()


def cam(state: str, stream_ok: bool = True, *reasons: str, linked: bool = True) -> CameraReading:
    return CameraReading(CameraState(state), stream_ok, frozenset(reasons), linked)


def test_counts_live_streams_of_in_service_cameras() -> None:
    cameras = [
        cam("online"),
        cam("degraded", True, "clock_skew"),  # works, clock off: still networked
        cam("degraded", True, "picture:blurred"),  # a poor picture still reaches the platform
        cam("degraded", False, "stream_unreachable"),
        cam("degraded", True, "stream_auth_failed"),  # the reason says the stream fails, whatever the last probe said
        cam("online", False),  # no live stream
        cam("offline", False),
        cam("unknown", False),  # not vouched for yet: in service, not networked
        cam("maintenance", False),  # out of service: in neither part
    ]
    result = networking_rate(cameras, platform_link_ok=True)
    assert (result.networked, result.in_service) == (3, 8)
    assert result.rate == pytest.approx(3 / 8)


def test_a_camera_no_platform_link_covers_is_not_networked() -> None:
    assert not is_networked(cam("online", linked=False))
    assert networking_rate([cam("online"), cam("online", linked=False)], platform_link_ok=True).rate == 0.5


def test_no_platform_link_means_nothing_is_networked() -> None:
    result = networking_rate([cam("online"), cam("online")], platform_link_ok=False)
    assert (result.networked, result.in_service, result.rate) == (0, 2, 0.0)


def test_no_camera_in_service_is_none_not_a_division_by_zero() -> None:
    assert networking_rate([], platform_link_ok=True).rate is None
    assert networking_rate([cam("maintenance")], platform_link_ok=True).rate is None
    assert NetworkingRate(0, 0).rate is None


def test_average_over_24h_in_camera_seconds() -> None:
    histories: list[History] = [
        [(NOW - 30 * H, "online", NONE)],  # networked all day
        # networked 12 h, then 6 h with a lost stream, then 6 h offline
        [
            (NOW - 24 * H, "online", NONE),
            (NOW - 12 * H, "degraded", {"stream_unreachable"}),
            (NOW - 6 * H, "offline", NONE),
        ],
    ]
    result = average_networking_rate(histories, NOW)
    assert result.networked == pytest.approx(36 * H)
    assert result.in_service == pytest.approx(48 * H)
    assert result.rate == pytest.approx(0.75)


def test_average_excludes_maintenance_and_gateway_downtime_and_counts_link_outages() -> None:
    histories: list[History] = [
        [(NOW - 24 * H, "online", NONE), (NOW - 20 * H, "maintenance", NONE), (NOW - 10 * H, "online", NONE)],
        [(NOW - 24 * H, "degraded", ("clock_skew",))],
    ]
    # Maintenance: camera 1 is in service 14 h. The gateway was off 2 h (neither part), the link down 4 h, of
    # which 1 h while the gateway was off too.
    gateway_down = [(NOW - 6 * H, NOW - 4 * H)]
    link_down = [(NOW - 5 * H, NOW - H)]
    result = average_networking_rate(histories, NOW, link_down=link_down, gateway_down=gateway_down)
    assert result.in_service == pytest.approx((14 - 2) * H + (24 - 2) * H)
    assert result.networked == pytest.approx((14 - 2 - 3) * H + (24 - 2 - 3) * H)


def test_average_window_edges_and_unknown_time() -> None:
    histories: list[History] = [
        # entered the window offline; after a restart unknown for 1 h (in service, not networked); online since
        [(NOW - 3 * 86400, "offline", NONE), (NOW - 2 * H, "unknown", NONE), (NOW - H, "online", NONE)],
        [(NOW + H, "online", NONE)],  # only after `now`: contributes nothing
    ]
    result = average_networking_rate(histories, NOW)
    assert result.networked == pytest.approx(H)
    assert result.in_service == pytest.approx(24 * H)
    short = average_networking_rate(histories, NOW, window_s=2 * H)
    assert short.rate == pytest.approx(0.5)


def test_average_with_nothing_in_service_is_none() -> None:
    assert average_networking_rate([], NOW).rate is None
    assert average_networking_rate([[(NOW - 30 * H, "maintenance", NONE)]], NOW).rate is None
    assert average_networking_rate([[(NOW - H, "online", NONE)]], NOW, gateway_down=[(NOW - 2 * H, NOW)]).rate is None


def test_plain_mean_of_uptimes_kept_for_older_callers() -> None:
    assert average_rate([None, None]) is None
    assert average_rate([1.0, 0.5, None]) == 0.75
