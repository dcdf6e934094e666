"""When to try again and how long to wait: full-jitter backoff never shorter than the server's Retry-After."""

from __future__ import annotations

import email.utils
import random
from datetime import UTC, datetime

BACKOFF_BASE_S = 0.25
BACKOFF_CAP_S = 30.0
MAX_RETRY_AFTER_S = 300.0  # a longer wait is an outage to report now, not a pause to sit through silently


class Transient(Exception):
    """An attempt that may succeed if repeated; `nothing_applied` marks refusals safe to repeat for writes."""

    def __init__(self, reason: str, *, retry_after: float | None = None, nothing_applied: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after
        self.nothing_applied = nothing_applied


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header, which 1C may send as a number or as an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def backoff_delay(retry: int, retry_after: float | None, rng: random.Random) -> float:
    """Full jitter spreads the retries of many threads; Retry-After is a floor: the server knows best."""
    jitter = rng.uniform(0.0, min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2**retry))
    return max(jitter, retry_after or 0.0)
