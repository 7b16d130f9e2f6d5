"""Digest authentication, checked against the worked example of RFC 2617 section 3.5."""

from __future__ import annotations

from adapters.digest import authorization, parse_authorization, parse_challenge, verify_authorization

RFC_CHALLENGE = (
    'Digest realm="testrealm@host.com", qop="auth,auth-int", '
    'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41"'
)


def test_rfc2617_worked_example() -> None:
    challenge = parse_challenge(RFC_CHALLENGE)
    assert challenge is not None
    assert challenge.qop == "auth"
    header = authorization(
        challenge, method="GET", uri="/dir/index.html", username="Mufasa", password="Circle Of Life", cnonce="0a4f113b"
    )
    assert 'response="6629fae49393a05397450978507c4ef1"' in header
    assert 'opaque="5ccc069c403ebaf9f0171e9517f40e41"' in header


def test_digest_is_found_after_a_basic_challenge() -> None:
    challenge = parse_challenge('Basic realm="cam", Digest realm="IP Camera", nonce="abc", algorithm=MD5')
    assert challenge is not None
    assert (challenge.realm, challenge.nonce, challenge.qop) == ("IP Camera", "abc", None)
    assert parse_challenge('Basic realm="cam"') is None


def test_server_side_verification_accepts_right_and_refuses_wrong_password() -> None:
    challenge = parse_challenge('Digest realm="cam", nonce="n1", qop="auth"')
    assert challenge is not None
    good = parse_authorization(
        authorization(challenge, method="DESCRIBE", uri="rtsp://127.0.0.1/a", username="admin", password="right")
    )
    bad = parse_authorization(
        authorization(challenge, method="DESCRIBE", uri="rtsp://127.0.0.1/a", username="admin", password="wrong")
    )
    assert verify_authorization(good, method="DESCRIBE", password="right", realm="cam")
    assert not verify_authorization(bad, method="DESCRIBE", password="right", realm="cam")
    assert not verify_authorization({}, method="DESCRIBE", password="right", realm="cam")
