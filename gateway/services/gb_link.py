"""The GB/T 28181 link as the networking rate and the faces see it.

With a `gb28181` upstream configured, the police count a camera as networked (联网) only when they can see it on
their own video platform: the camera delivers a stream *and* the platform has the gateway's device registered (its
Catalog, and so each channel's status, is what the platform's own networking rate is counted from). The devices
that decide are the `gb28181` upstreams of role `police`, or every `gb28181` upstream when none is the police's;
one registered device is enough, since each carries every camera as a channel. Without a `gb28181` upstream the
rate is judged as before, by the police link alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from adapters.upstreams.gb28181 import Gb28181Upstream
from gateway.domain.config import GatewayConfig, Gb28181UpstreamConfig
from gateway.services.live_video import PullStats


@dataclass(frozen=True, slots=True)
class PlatformCoverage:
    """Whether a GB/T 28181 platform registration is needed for a camera to count, whether there is one, and why
    not (Chinese, English) when there is none."""

    required: bool
    registered: bool
    problem: tuple[str, str] | None = None


def _deciding(configs: Sequence[Gb28181UpstreamConfig]) -> set[str]:
    police = {c.name for c in configs if c.role == "police"}
    return police or {c.name for c in configs}


def coverage(config: GatewayConfig, devices: Sequence[Gb28181Upstream]) -> PlatformCoverage:
    """`devices`: the gb28181 upstreams the alarm path has opened (none yet while the gateway starts)."""
    names = _deciding([u for u in config.upstreams if isinstance(u, Gb28181UpstreamConfig)])
    if not names:
        return PlatformCoverage(required=False, registered=True)
    opened = {u.name: u for u in devices if u.name in names}
    if any(u.device.registered.is_set() for u in opened.values()):
        return PlatformCoverage(required=True, registered=True)
    why_en = []
    for name in sorted(names):
        upstream = opened.get(name)
        error = "not started" if upstream is None else upstream.device.last_error or "registering"
        why_en.append(f"{name}: {error}")
    return PlatformCoverage(
        required=True,
        registered=False,
        problem=(
            f"GB/T 28181 平台未注册（{'、'.join(sorted(names))}），摄像机不计入联网",
            f"not registered with the GB/T 28181 platform ({'; '.join(why_en)}), so no camera counts as networked",
        ),
    )


def link_rows(devices: Sequence[Gb28181Upstream], pulls: Mapping[str, PullStats]) -> list[dict[str, Any]]:
    """Each gb28181 upstream's link for /api/summary: registration, keepalive, clock, live viewers per camera.

    `pulls`: the live relay's pulls by camera (frames relayed and lost are the camera's, shared by every viewer
    on every platform; the viewers counted here are this platform's calls)."""
    rows = []
    for upstream in devices:
        device = upstream.device
        viewers = device.viewers()
        rows.append(
            {
                "name": upstream.name,
                "platform": device.server_id,
                "device_id": device.device_id,
                "registered": device.registered.is_set(),
                "registered_since": device.registered_since,
                "last_keepalive_at": device.last_keepalive_at,
                "last_error": device.last_error,
                "clock_offset_s": round(device.clock_offset_s, 3) if device.clock_offset_s is not None else None,
                "live": {
                    "viewers": sum(viewers.values()),
                    "cameras": [
                        {
                            "id": camera_id,
                            "viewers": count,
                            "frames": pulls[camera_id].frames if camera_id in pulls else 0,
                            "frames_lost": pulls[camera_id].frames_lost if camera_id in pulls else 0,
                        }
                        for camera_id, count in sorted(viewers.items())
                    ],
                },
            }
        )
    return rows
