"""A camera's state and the reasons behind it, as every layer names them.

States are the state machine's (`monitoring.camera_state` moves between them); reasons are what staff read on the
page and what the networking rate and compliance judge by. A picture verdict from the patrol becomes the reason
`picture:<verdict>`, built and recognised only here.
"""

from __future__ import annotations

from enum import StrEnum


class CameraState(StrEnum):
    UNKNOWN = "unknown"
    ONLINE = "online"
    DEGRADED = "degraded"
    OFFLINE = "offline"
    MAINTENANCE = "maintenance"


class Reason(StrEnum):
    """Why a camera is degraded or offline (besides `picture:<verdict>`)."""

    # Unreachable rounds.
    TIMEOUT = "timeout"
    PROTOCOL_ERROR = "protocol_error"
    UNREACHABLE = "unreachable"
    # Reachable, but something is wrong.
    AUTH_FAILED = "auth_failed"
    CLOCK_SKEW = "clock_skew"
    ONVIF_ERROR = "onvif_error"
    NO_STREAM_URI = "no_stream_uri"
    STREAM_UNREACHABLE = "stream_unreachable"
    STREAM_AUTH_FAILED = "stream_auth_failed"
    # Added by the state machine itself.
    FLAPPING = "flapping"
    MAINTENANCE_SET = "maintenance_set"
    MAINTENANCE_CLEARED = "maintenance_cleared"


PICTURE_PREFIX = "picture:"


def picture_reason(verdict: str) -> str:
    """The reason a patrol verdict other than `ok` puts on its camera."""
    return f"{PICTURE_PREFIX}{verdict}"


def is_picture_reason(reason: str) -> bool:
    return reason.startswith(PICTURE_PREFIX)


# Degradations that mean the platform gets no usable video from the camera. `auth_failed`: the gateway holds wrong
# credentials, so neither it nor a platform pulling through it gets the stream.
STREAM_LOST: frozenset[str] = frozenset(
    {Reason.STREAM_UNREACHABLE, Reason.STREAM_AUTH_FAILED, Reason.NO_STREAM_URI, Reason.AUTH_FAILED}
)
