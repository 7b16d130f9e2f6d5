"""`huxiao watch`: watch a camera as the police platform does, through the gateway's GB/T 28181 device.

For the demo (and any test bench with the simulated platform): the platform's console INVITEs the camera's channel,
the gateway pulls the camera over RTSP and sends it back as MPEG-PS over RTP, and the console hands over what
arrived in N seconds. The file is the very PS the platform received: `ffplay` or `ffprobe` opens it, so what the
user sees is what a real platform would have been sent.
"""

from __future__ import annotations

import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from gateway.domain.errors import GatewayError

# The console answers after the recording; beyond it, an INVITE and a cold RTSP open take well under 10 s (the
# platform's own play timeout), so a request unanswered that long after is not coming.
ANSWER_MARGIN_S = 15.0


@dataclass(frozen=True, slots=True)
class Recording:
    path: Path
    size: int
    rtp_packets: int


def watch(platform: str, camera: str, seconds: float, out: Path) -> Recording:
    """Ask the platform console at `platform` (http://host:port) to play `camera` for `seconds`; save to `out`."""
    url = f"{platform.rstrip('/')}/watch/{urllib.parse.quote(camera)}?seconds={seconds:g}"
    try:
        with urllib.request.urlopen(url, timeout=seconds + ANSWER_MARGIN_S) as response:
            body = response.read()
            packets = int(response.headers.get("X-Rtp-Packets") or 0)
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode("utf-8", errors="replace").strip()
        raise GatewayError(f"the platform answered {exc.code}: {detail}") from None
    except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
        raise GatewayError(f"no platform console at {platform}: {exc}: is the demo running?") from None
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(body)
    return Recording(out, len(body), packets)
