"""`X-Huxiao-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">`: how a platform knows an alarm is ours.

The timestamp inside the signed text lets the receiver refuse replays: a signature older or newer than the window
(±300 s) is refused even when the HMAC is right.
"""

from __future__ import annotations

import hashlib
import hmac

HEADER = "X-Huxiao-Signature"
WINDOW_S = 300


def sign(secret: str, body: bytes, timestamp: int) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify(secret: str, body: bytes, header: str, now: float, window_s: int = WINDOW_S) -> str | None:
    """None when the signature is good and fresh, else why not (for the receiver's log and its answer)."""
    fields: dict[str, list[str]] = {}
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        fields.setdefault(key, []).append(value)
    try:
        timestamp = int(fields["t"][0])
    except (KeyError, ValueError):
        return "signature has no timestamp"
    if abs(now - timestamp) > window_s:
        return f"signature timestamp is {int(now - timestamp)} s off (window ±{window_s} s)"
    expected = sign(secret, body, timestamp).split("v1=", 1)[1]
    if not any(hmac.compare_digest(expected, given) for given in fields.get("v1", [])):
        return "signature does not match"
    return None
