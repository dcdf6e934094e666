"""1C's own clock, read from the `Date` header of its answers.

Why: 1C writes every date as wall time without an offset in its server's zone (contract §1), so a client that
knows the zone wrong, or runs a clock of its own that is off, cannot tell 1C's "now" from its stamps. The `Date`
header every HTTP server sends (RFC 9110 §6.6.1) is the one reading of that clock that is absolute (GMT): incremental
sync compares 1C's stamps with it to catch a configured zone that disagrees with 1C's, and reports how far 1C's
clock is from this machine's.
"""

from __future__ import annotations

import email.utils
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta


@dataclass(frozen=True)
class ClockReading:
    """The newest `Date` 1C sent (aware, UTC, whole seconds) and this machine's clock when it arrived."""

    server: datetime
    local: datetime

    @property
    def skew(self) -> timedelta:
        """How far 1C's clock runs ahead of this machine's (negative: behind), to within a second or so."""
        return self.server - self.local


class ServerClock:
    """Thread-safe: every page-fetching thread reports the answers it gets; the newest `Date` wins."""

    def __init__(self, now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._now = now
        self._lock = threading.Lock()
        self._latest: ClockReading | None = None

    def observe(self, header: str | None) -> None:
        """Note one answer's `Date` header; a missing or unreadable one is ignored (proxies may drop it)."""
        server = parse_http_date(header)
        if server is None:
            return
        reading = ClockReading(server, self._now())
        with self._lock:
            if self._latest is None or server >= self._latest.server:
                self._latest = reading

    def latest(self) -> ClockReading | None:
        with self._lock:
            return self._latest


def parse_http_date(header: str | None) -> datetime | None:
    """An HTTP date (IMF-fixdate, or the obsolete forms email.utils reads) as an aware UTC instant."""
    if not header:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(header)
    except (TypeError, ValueError, IndexError):
        return None
    if parsed.tzinfo is None:  # "-0000" means UTC with no zone information (RFC 5322 §3.3)
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)
