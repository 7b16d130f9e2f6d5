"""HTTP/RTSP authentication as pure functions: digest (RFC 2617 / RFC 7616, MD5 and SHA-256, with or without
qop) and Basic (RFC 7617).

Cameras speak digest on both ONVIF (HTTP) and RTSP; both edges share this one implementation. Many inexpensive
cameras (and some NVRs) ask for Basic on their snapshot URI: `answer_challenge` answers whichever the server sent.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from dataclasses import dataclass

_PARAM = re.compile(r'(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))')


@dataclass(frozen=True, slots=True)
class DigestChallenge:
    """One `WWW-Authenticate: Digest ...` challenge."""

    realm: str
    nonce: str
    qop: str | None = None
    opaque: str | None = None
    algorithm: str = "MD5"
    stale: bool = False


def parse_challenge(header: str) -> DigestChallenge | None:
    """Parse a WWW-Authenticate value; None when it offers no digest challenge.

    A server may send several challenges in one header (Basic, then Digest); the digest one is taken.
    """
    start = header.lower().find("digest")
    if start < 0:
        return None
    params: dict[str, str] = {}
    for match in _PARAM.finditer(header[start + len("digest") :]):
        key = match.group(1).lower()
        value = match.group(2) if match.group(2) is not None else match.group(3)
        params.setdefault(key, value.replace('\\"', '"'))
    if "nonce" not in params:
        return None
    qop = params.get("qop")
    if qop is not None:
        offered = [q.strip() for q in qop.split(",")]
        qop = "auth" if "auth" in offered else None
    return DigestChallenge(
        realm=params.get("realm", ""),
        nonce=params["nonce"],
        qop=qop,
        opaque=params.get("opaque"),
        algorithm=params.get("algorithm", "MD5").upper(),
        stale=params.get("stale", "").lower() == "true",
    )


def _hash(algorithm: str, text: str) -> str:
    name = "sha256" if algorithm.startswith("SHA-256") else "md5"
    return hashlib.new(name, text.encode()).hexdigest()


def response_digest(
    challenge: DigestChallenge,
    *,
    method: str,
    uri: str,
    username: str,
    password: str,
    nc: str = "00000001",
    cnonce: str = "",
) -> str:
    """The `response=` value of RFC 2617 section 3.2.2.1 (qop=auth or none)."""
    ha1 = _hash(challenge.algorithm, f"{username}:{challenge.realm}:{password}")
    ha2 = _hash(challenge.algorithm, f"{method}:{uri}")
    if challenge.qop == "auth":
        return _hash(challenge.algorithm, f"{ha1}:{challenge.nonce}:{nc}:{cnonce}:auth:{ha2}")
    return _hash(challenge.algorithm, f"{ha1}:{challenge.nonce}:{ha2}")


def authorization(
    challenge: DigestChallenge,
    *,
    method: str,
    uri: str,
    username: str,
    password: str,
    nc: int = 1,
    cnonce: str | None = None,
) -> str:
    """A complete `Authorization: Digest ...` header value answering `challenge`."""
    nc_text = f"{nc:08x}"
    cnonce = cnonce if cnonce is not None else os.urandom(8).hex()
    response = response_digest(
        challenge, method=method, uri=uri, username=username, password=password, nc=nc_text, cnonce=cnonce
    )
    parts = [
        f'username="{username}"',
        f'realm="{challenge.realm}"',
        f'nonce="{challenge.nonce}"',
        f'uri="{uri}"',
        f'response="{response}"',
    ]
    if challenge.algorithm != "MD5":
        parts.append(f"algorithm={challenge.algorithm}")
    if challenge.opaque is not None:
        parts.append(f'opaque="{challenge.opaque}"')
    if challenge.qop == "auth":
        parts += ["qop=auth", f"nc={nc_text}", f'cnonce="{cnonce}"']
    return "Digest " + ", ".join(parts)


def parse_authorization(header: str) -> dict[str, str]:
    """The parameters of an `Authorization: Digest ...` header, for servers (the simulators) to verify."""
    if not header.lower().startswith("digest"):
        return {}
    return {
        m.group(1).lower(): (m.group(2) if m.group(2) is not None else m.group(3))
        for m in _PARAM.finditer(header[len("digest") :])
    }


def verify_authorization(params: dict[str, str], *, method: str, password: str, realm: str) -> bool:
    """Whether a parsed Authorization answers a challenge for `realm` with `password` (server side)."""
    try:
        challenge = DigestChallenge(
            realm=realm,
            nonce=params["nonce"],
            qop=params.get("qop"),
            algorithm=params.get("algorithm", "MD5").upper(),
        )
        expected = response_digest(
            challenge,
            method=method,
            uri=params["uri"],
            username=params["username"],
            password=password,
            nc=params.get("nc", ""),
            cnonce=params.get("cnonce", ""),
        )
    except KeyError:
        return False
    return params.get("realm") == realm and params.get("response") == expected


def basic_authorization(username: str, password: str) -> str:
    """An `Authorization: Basic ...` value (RFC 7617: UTF-8 `user:password` in base64)."""
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode("ascii")


def offers_basic(header: str) -> bool:
    """Whether a WWW-Authenticate value (one or several challenges) offers Basic."""
    return re.search(r"(?:^|,)\s*basic(?:\s|$|,)", header, re.IGNORECASE) is not None


def answer_challenge(headers: list[str], *, method: str, uri: str, username: str, password: str) -> str | None:
    """The Authorization value answering the server's WWW-Authenticate headers, or None if none is spoken here.

    Digest is preferred when both are offered: it never sends the password. Basic sends it in the clear (only
    base64), which is what such a camera asks for on its own network.
    """
    for header in headers:
        challenge = parse_challenge(header)
        if challenge is not None:
            return authorization(challenge, method=method, uri=uri, username=username, password=password)
    if any(offers_basic(header) for header in headers):
        return basic_authorization(username, password)
    return None
