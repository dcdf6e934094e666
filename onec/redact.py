"""Keeping credentials out of everything a person or a log collector can read.

A module of the core, not of `onec.http`: the configuration, the command line and the Dagster code print the
configured URLs too, and every one of them goes through `redact_url`.
"""

from __future__ import annotations

import threading
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

SECRET_PARAMS = frozenset({"api_key", "apikey", "token", "access_token", "refresh_token", "password", "key", "secret"})
MASK = "***"


def redact_url(url: str) -> str:
    """Mask userinfo and secret-looking query parameters: the seed allows `?api_key=`; people paste URLs. A URL
    that does not even parse is masked whole (it may still hold a password)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return MASK
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{MASK}@{netloc.rpartition('@')[2]}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(k, MASK if k.lower() in SECRET_PARAMS else v) for k, v in pairs], safe="*:,")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


class Scrubber:
    """Removes known secret values from free text, because 1C error messages may echo what it was sent."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: set[str] = set()

    def add(self, value: str) -> None:
        if len(value) >= 4:  # shorter values would mask ordinary words and reveal more than they hide
            with self._lock:
                self._values.add(value)

    def scrub(self, text: str) -> str:
        with self._lock:
            values = sorted(self._values, key=len, reverse=True)
        for value in values:
            text = text.replace(value, MASK)
        return text
