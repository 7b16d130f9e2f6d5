"""Logging for the service: one line per event, key=value friendly, credentials stripped from URLs."""

from __future__ import annotations

import logging
import re
import sys

_USERINFO = re.compile(r"(\b[a-z][a-z0-9+.-]*://)[^/\s@]+@", re.IGNORECASE)


# Secret values from the configuration (`hide`): blanked wherever they appear, in a URL or not.
_HIDDEN: list[str] = []


def hide(values: list[str]) -> None:
    """Blank these values out of every log line and crash report from now on."""
    for value in values:
        if value and value not in _HIDDEN:
            _HIDDEN.append(value)
    _HIDDEN.sort(key=len, reverse=True)  # a secret containing another is blanked whole


def redact(text: str) -> str:
    """Remove `user:password@` from every URL in `text`, and every configured secret."""
    for value in _HIDDEN:
        text = text.replace(value, "***")
    return _USERINFO.sub(r"\1***@", text)


class RedactingFormatter(logging.Formatter):
    """A formatter that never lets a URL's credentials reach the log."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def setup_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # aiohttp's access log is one line per status-page poll: noise at INFO.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
