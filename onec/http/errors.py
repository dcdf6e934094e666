"""The errors the 1C transport raises: few, each a single line a person can act on.

Callers branch on the class (retry later, fix credentials, report a bug in 1C, handle a business refusal),
so the hierarchy follows what to do about an error rather than where it happened.
"""

from __future__ import annotations

from typing import Any

import orjson

from onec.errors import UnavailableError, UserFacingError


class OneCError(UserFacingError):
    """Anything that went wrong talking to 1C."""


class OneCAuthError(OneCError):
    """1C refused the credentials (or answered with its login page): retrying will not help."""


class OneCUnavailable(OneCError, UnavailableError):
    """1C could not be reached or kept failing: retries exhausted, circuit open, connection refused."""


class OneCProtocolError(OneCError):
    """1C answered something that is not the JSON the contract promises."""


class OneCIncompleteError(OneCError):
    """Paging could not produce a consistent result: the data kept moving for every allowed pass."""


class OneCHTTPError(OneCError):
    """A 4xx answer with the contract's error body (§1.7), e.g. 409 DOCUMENT_EXISTS or 413 BATCH_TOO_LARGE."""

    def __init__(
        self,
        status: int,
        code: str | None,
        message: str,
        details: dict[str, Any] | None = None,
        *,
        where: str = "",
    ) -> None:
        self.status = status
        self.code = code
        self.message = message
        self.details = details or {}
        label = f"{status} {code}" if code else str(status)
        suffix = f" ({where})" if where else ""
        super().__init__(f"1C refused the request with {label}: {message}{suffix}")


def error_fields(body: bytes) -> dict[str, Any] | None:
    """The §1.7 error body (`code`, `message`, `details`) when `body` is one; OData's
    `{"odata.error": {"code", "message": {"value"}}}` is read into the same shape, so both read alike."""
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if isinstance(parsed, dict) and isinstance(parsed.get("odata.error"), dict):
        error = parsed["odata.error"]
        message = error.get("message")
        return {"code": error.get("code"), "message": message.get("value") if isinstance(message, dict) else message}
    return parsed if isinstance(parsed, dict) else None
