"""Who may read and write the HTTP faces (the gateway's and the center's): the loopback rule and token matching.

Bound to loopback only, a face is reachable from this machine alone, so reads are open; on any other address every
read needs a bearer token. Tokens are compared in constant time; the highest role a token matches wins.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Mapping


def is_loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def role_of(token: str, tokens: Mapping[str, str], rank: Mapping[str, int]) -> str | None:
    """The highest-ranked role whose configured token is `token`, or None."""
    if not token:
        return None
    best: str | None = None
    for role, expected in tokens.items():
        matches = bool(expected) and hmac.compare_digest(token.encode(), str(expected).encode())
        if matches and (best is None or rank.get(role, 0) > rank.get(best, 0)):
            best = role
    return best
